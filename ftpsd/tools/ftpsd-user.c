/* ftpsd-user: the administrator's tool for the users file (add, passwd, del,
 * lock, unlock, list, show, check), the live sessions (who) and the users'
 * quota usage (quota). Runs as
 * root; what it reads of session records comes from monitors that may be
 * compromised, so it is checked, bounded and escaped when printed. */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "config.h"
#include "monitor_auth.h"
#include "password.h"
#include "quota.h"
#include "sessions.h"
#include "users_edit.h"

#define PROG "ftpsd-user"

enum {
	O_CONFIG = 1 << 0,
	O_HOST = 1 << 1,
	O_USERS = 1 << 2,
	O_ROOT = 1 << 3,
	O_UID = 1 << 4,
	O_GID = 1 << 5,
	O_OPTION = 1 << 6,
	O_PWSTDIN = 1 << 7,
	O_FORCE = 1 << 8,
	O_METHOD = 1 << 9,
	O_KEEP = 1 << 10,
	O_JSON = 1 << 11,
	O_RESCAN = 1 << 12,
	O_GLOBAL = O_CONFIG | O_HOST | O_USERS,
};

#define MAX_OPTIONS 64

struct args {
	unsigned given;
	const char *config, *host, *users, *root, *uid, *gid, *method;
	const char *options[MAX_OPTIONS];
	size_t noptions;
	const char *name;
	/* Resolved. */
	const char *users_path;
	const char *runtime_dir;
	const char *host_name; /* "" for the global users file */
	const struct config *sel; /* the selected configuration, when loaded */
};

static struct config cfg;
static bool cfg_loaded;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [GLOBAL OPTIONS] COMMAND [ARGUMENTS]\n"
		"The users file of ftpsd, and its live sessions.\n"
		"\n"
		"Commands:\n"
		"  add NAME --root DIR [--uid U --gid G] [--option OPT]... [--password-stdin]\n"
		"      [--hash-method METHOD] [--force]   add a user\n"
		"  passwd NAME [--password-stdin] [--hash-method METHOD]   set a new password\n"
		"  del NAME [--keep-sessions]      remove a user, ending its sessions\n"
		"  lock NAME [--keep-sessions]     lock an account, ending its sessions\n"
		"  unlock NAME                     unlock an account\n"
		"  list                            a table of the users\n"
		"  show NAME                       one user's fields and live sessions\n"
		"  check                           check the users file as the server reads it\n"
		"  who [--json]                    the live sessions\n"
		"  quota NAME [--rescan] [--json]  a user's quota usage; --rescan counts it again\n"
		"\n"
		"Global options:\n"
		"  --config FILE   the configuration (default " FTPSD_DEFAULT_CONFIG ")\n"
		"  --host NAME     the users file of that [host NAME] section\n"
		"  --users FILE    this users file\n"
		"  --help          this text\n"
		"  --version       the version\n"
		"\n"
		"Command options:\n"
		"  --root DIR            add: the user's root, an absolute existing directory\n"
		"  --uid U, --gid G      ids of the user (default: the owner of DIR)\n"
		"  --option OPT          a users-file option (read-only, tls=required, ...)\n"
		"  --password-stdin      read the password as one line of standard input\n"
		"  --hash-method METHOD  add, passwd: yescrypt (the default), gost-yescrypt,\n"
		"                        scrypt, bcrypt, sha512crypt, sha256crypt\n"
		"  --force               add: allow uid or gid 0\n"
		"  --keep-sessions       del, lock: leave running sessions alone\n"
		"  --json                who: a JSON array; quota: a JSON object\n"
		"  --rescan              quota: count the user's tree again (as the user) and\n"
		"                        write the usage file\n");
}

/* ------------------------------------------------------------ printing */

/* s (n bytes) for a terminal: printable ASCII and valid UTF-8 as they are,
 * every other byte as \xHH (a compromised monitor must not drive the
 * administrator's terminal). json: escaped for a JSON string instead. */
static void put_text(FILE *f, const char *s, size_t n, bool json)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		size_t len = 0;
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		if (len > 0 && i + len <= n) {
			bool ok = true;
			for (size_t k = 1; k < len; k++)
				ok &= (p[i + k] & 0xc0) == 0x80;
			/* Overlong, surrogates, past U+10FFFF, and the C1 controls. */
			if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0) ||
			    (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90) ||
			    (c == 0xc2 && p[i + 1] < 0xa0))
				ok = false;
			if (ok) {
				fwrite(p + i, 1, len, f);
				i += len;
				continue;
			}
		}
		if (json && (c == '"' || c == '\\'))
			fprintf(f, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc((int)c, f);
		else if (json && c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fprintf(f, json ? "\\\\x%02x" : "\\x%02x", c);
		i++;
	}
}

static void put_str(FILE *f, const char *s)
{
	put_text(f, s, strlen(s), false);
}

/* A field padded to width (what put_text prints, measured first). */
static void put_cell(const char *s, int width)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (m == NULL) {
		printf("%-*s", width, "?");
		return;
	}
	put_text(m, s, strlen(s), false);
	fclose(m);
	printf("%-*s", width, buf);
	free(buf);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void print_error(void *ctx, const char *message)
{
	int *count = ctx;

	(*count)++;
	put_str(stderr, message);
	fputc('\n', stderr);
}

static void human_bytes(unsigned long long v, char *out, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%llu B", v);
	else
		snprintf(out, size, "%.1f %s", d, units[u]);
}

static void duration(unsigned long long secs, char *out, size_t size)
{
	if (secs >= 86400)
		snprintf(out, size, "%llud%02lluh", secs / 86400, secs % 86400 / 3600);
	else
		snprintf(out, size, "%02llu:%02llu:%02llu", secs / 3600, secs % 3600 / 60,
			 secs % 60);
}

/* ------------------------------------------------------------ the users file */

/* The fields of one users-file line [start, end): pointers into a copy. */
struct line_fields {
	char *copy;
	char *field[6];
	int n;
};

static int split_line(const char *text, size_t start, size_t end, struct line_fields *lf)
{
	memset(lf, 0, sizeof(*lf));
	lf->copy = strndup(text + start, end - start);
	if (lf->copy == NULL)
		return -ENOMEM;
	for (char *p = lf->copy; lf->n < 6;) {
		lf->field[lf->n++] = p;
		if (lf->n == 6 || (p = strchr(p, ':')) == NULL)
			break;
		*p++ = '\0';
	}
	return 0;
}

static void free_fields(struct line_fields *lf)
{
	if (lf->copy != NULL) {
		explicit_bzero(lf->copy, strlen(lf->copy));
		free(lf->copy);
	}
	lf->copy = NULL;
}

/* Offset of the hash field in a line starting at start, and its length. */
static bool hash_span(const struct users_file *u, size_t start, size_t end, size_t *hs,
		      size_t *he)
{
	const char *c1 = memchr(u->text + start, ':', end - start), *c2;

	if (c1 == NULL)
		return false;
	*hs = (size_t)(c1 - u->text) + 1;
	c2 = memchr(u->text + *hs, ':', end - *hs);
	*he = c2 != NULL ? (size_t)(c2 - u->text) : end;
	return true;
}

static const char *users_error(int r)
{
	switch (r) {
	case -ELOOP:
		return "is a symbolic link: refused";
	case -EINVAL:
		return "is not a regular file";
	default:
		return strerror(-r);
	}
}

static int open_users(struct users_file *u, const struct args *a, bool lock, bool may_create)
{
	int r = users_edit_open(u, a->users_path, lock, may_create);

	if (r < 0) {
		fail("%s: %s", a->users_path, users_error(r));
		users_edit_close(u);
	}
	return r;
}

static int commit_users(struct users_file *u)
{
	int r = users_edit_commit(u);

	if (r < 0)
		fail("%s: cannot write it: %s", u->path, strerror(-r));
	return r;
}

/* A user name the server can find: not empty, no ':', no control byte, not
 * a comment, shorter than 256 bytes. NULL or why not. */
static const char *name_problem(const char *name)
{
	if (name[0] == '\0')
		return "empty user name";
	if (strlen(name) > 255)
		return "user name longer than 255 bytes";
	if (name[0] == '#')
		return "a user name may not start with '#'";
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p == ':')
			return "a user name may not hold ':'";
		if (*p < 0x20 || *p == 0x7f)
			return "a user name may not hold a newline or another control character";
	}
	return NULL;
}

static bool has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static int parse_id_arg(const char *what, const char *s, unsigned *out)
{
	unsigned long long v;

	if (config_parse_uint(s, 0x7fffffffULL, &v) < 0) {
		fail("%s '%s' is not a number from 0 to 2147483647", what, s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* The line a users-file option gives, checked by the parser the server
 * uses: 0, or -EINVAL with a message. */
static int check_option(const char *opt)
{
	char line[8192];
	struct account acct;
	char *hash = NULL;

	if (opt[0] == '\0' || has_control(opt)) {
		fail("empty option, or one holding a control character");
		return -EINVAL;
	}
	if ((size_t)snprintf(line, sizeof(line), "u:x:1:1:/:%s", opt) >= sizeof(line) ||
	    monitor_auth_parse_line(line, "u", &acct, &hash) != 1) {
		fail("unknown option or bad value: '%s' (read-only, chmod=off, "
		     "tls=required|optional|forbidden, upload-mode=atomic|in-place, "
		     "data-tls-reuse=off|required, cert=sha256:HEX, max-sessions=N, "
		     "quota-bytes=SIZE, quota-files=N, download-rate=SIZE, upload-rate=SIZE)",
		     opt);
		return -EINVAL;
	}
	return 0;
}

static int new_hash(const struct args *a, char *hash, size_t size)
{
	const char *prefix = "$y$";
	char password[PASSWORD_MAX];
	int r;

	if (a->method != NULL && (prefix = password_method_prefix(a->method)) == NULL) {
		fail("unknown hash method '%s' (%s)", a->method, password_method_names());
		return -EINVAL;
	}
	r = password_read((a->given & O_PWSTDIN) != 0, password, sizeof(password));
	if (r < 0) {
		fail("%s", password_error(r));
		return r;
	}
	r = password_hash(password, prefix, hash, size);
	explicit_bzero(password, sizeof(password));
	if (r < 0)
		fail("cannot hash the password with %s: %s", a->method ? a->method : "yescrypt",
		     strerror(-r));
	return r;
}

/* The user's line under lock: 0 and its span, or -ENOENT with a message. */
static int find_user(struct users_file *u, const char *name, size_t *start, size_t *end,
		     unsigned *lineno)
{
	if (users_edit_find(u, name, start, end, lineno) == 1)
		return 0;
	fprintf(stderr, PROG ": %s: no user '", u->path);
	put_str(stderr, name);
	fputs("'\n", stderr);
	return -ENOENT;
}

/* ------------------------------------------------------------ sessions */

struct end_ctx {
	const char *user, *host;
	unsigned ended, failed;
	bool count_only;
};

static void end_one(const struct sessions_record *rec, void *p)
{
	struct end_ctx *c = p;

	if (strcmp(rec->user, c->user) != 0 || strcasecmp(rec->host, c->host) != 0)
		return;
	if (c->count_only) {
		c->ended++;
		return;
	}
	int r = session_terminate(rec);
	if (r == 0)
		c->ended++;
	else if (r != -ESRCH)
		c->failed++;
}

/* SIGTERM to each live session of user (uid) on the selected host. */
static int end_sessions(const struct args *a, const char *user, unsigned uid)
{
	struct end_ctx c = { .user = user, .host = a->host_name };
	int r = sessions_scan(a->runtime_dir, uid, end_one, &c);

	if (r < 0) {
		fail("%s/sessions: %s", a->runtime_dir, strerror(-r));
		return 1;
	}
	printf("%u session%s ended\n", c.ended, c.ended == 1 ? "" : "s");
	if (c.failed > 0) {
		fail("%u session(s) could not be signalled", c.failed);
		return 1;
	}
	return 0;
}

static int count_sessions(const struct args *a, const char *user, unsigned uid)
{
	struct end_ctx c = { .user = user, .host = a->host_name, .count_only = true };
	int r = sessions_scan(a->runtime_dir, uid, end_one, &c);

	return r < 0 ? r : (int)c.ended;
}

/* ------------------------------------------------------------ commands */

static int cmd_add(struct args *a)
{
	struct users_file u;
	struct stat st;
	unsigned uid = 0, gid = 0, lineno;
	size_t s, e;
	const char *why = name_problem(a->name);
	char hash[CRYPT_OUTPUT_SIZE], opts[4096] = "";
	int r;

	if (why != NULL) {
		fail("%s", why);
		return 1;
	}
	if (a->root == NULL) {
		fail("add needs --root DIR");
		return 2;
	}
	if (a->root[0] != '/' || strchr(a->root, ':') != NULL || has_control(a->root) ||
	    strlen(a->root) >= 4096) {
		fail("--root '%s': not an absolute path (without ':' or control characters)",
		     a->root);
		return 1;
	}
	if (stat(a->root, &st) < 0) {
		fail("--root %s: %s", a->root, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fail("--root %s: not a directory", a->root);
		return 1;
	}
	uid = st.st_uid;
	gid = st.st_gid;
	if ((a->uid != NULL && parse_id_arg("--uid", a->uid, &uid) < 0) ||
	    (a->gid != NULL && parse_id_arg("--gid", a->gid, &gid) < 0))
		return 1;
	if ((a->uid == NULL && uid == 0) || (a->gid == NULL && gid == 0)) {
		fail("%s belongs to root: give --uid and --gid", a->root);
		return 1;
	}
	if ((uid == 0 || gid == 0) && !(a->given & O_FORCE)) {
		fail("uid or gid 0: refused without --force (and the server refuses such logins)");
		return 1;
	}
	for (size_t i = 0; i < a->noptions; i++) {
		if (check_option(a->options[i]) < 0)
			return 1;
		size_t n = strlen(opts);
		if ((size_t)snprintf(opts + n, sizeof(opts) - n, "%s%s", n ? "," : "",
				     a->options[i]) >= sizeof(opts) - n) {
			fail("options too long");
			return 1;
		}
	}
	/* A first look without the lock, so that a duplicate is refused before
	 * the password is asked; the look that counts is under the lock. */
	r = users_edit_open(&u, a->users_path, false, false);
	if (r == 0 && users_edit_find(&u, a->name, &s, &e, &lineno) == 1) {
		users_edit_close(&u);
		goto duplicate;
	}
	users_edit_close(&u);
	if (r < 0 && r != -ENOENT) {
		fail("%s: %s", a->users_path, users_error(r));
		return 1;
	}
	if (new_hash(a, hash, sizeof(hash)) < 0)
		return 1;

	char *line = NULL;
	int len = asprintf(&line, "%s:%s:%u:%u:%s%s%s", a->name, hash, uid, gid, a->root,
			   opts[0] ? ":" : "", opts);
	explicit_bzero(hash, sizeof(hash));
	if (len < 0) {
		fail("out of memory");
		return 1;
	}
	/* The whole line through the server's parser before it is written. */
	char *copy = strdup(line), *h = NULL;
	struct account acct;
	r = copy != NULL ? monitor_auth_parse_line(copy, a->name, &acct, &h) : -ENOMEM;
	if (copy != NULL) {
		explicit_bzero(copy, (size_t)len);
		free(copy);
	}
	if (r != 1) {
		fail("the new line does not parse as the server reads it");
		goto out_line;
	}
	if (open_users(&u, a, true, true) < 0) {
		r = -1;
		goto out_line;
	}
	if (users_edit_find(&u, a->name, &s, &e, &lineno) == 1) {
		users_edit_close(&u);
		explicit_bzero(line, (size_t)len);
		free(line);
		goto duplicate;
	}
	r = users_edit_append_line(&u, line, (size_t)len);
	if (r < 0)
		fail("%s: %s", a->users_path, strerror(-r));
	else
		r = commit_users(&u);
	users_edit_close(&u);
	if (r == 0) {
		printf("added user '");
		put_str(stdout, a->name);
		printf("' (uid %u, gid %u) to %s\n", uid, gid, a->users_path);
	}
out_line:
	explicit_bzero(line, (size_t)len);
	free(line);
	return r == 0 ? 0 : 1;
duplicate:
	fail("%s: user '%s' already exists (line %u)", a->users_path, a->name, lineno);
	return 1;
}

static int cmd_passwd(struct args *a)
{
	struct users_file u;
	size_t s, e, hs, he;
	unsigned lineno;
	char hash[CRYPT_OUTPUT_SIZE + 1];
	int r;

	if (open_users(&u, a, false, false) < 0)
		return 1;
	r = find_user(&u, a->name, &s, &e, &lineno);
	users_edit_close(&u);
	if (r < 0)
		return 1;
	hash[0] = '!';
	if (new_hash(a, hash + 1, sizeof(hash) - 1) < 0)
		return 1;
	if (open_users(&u, a, true, false) < 0)
		goto out;
	r = find_user(&u, a->name, &s, &e, &lineno);
	if (r == 0 && !hash_span(&u, s, e, &hs, &he)) {
		fail("%s:%u: malformed line", a->users_path, lineno);
		r = -EINVAL;
	}
	bool locked = r == 0 && he > hs && u.text[hs] == '!';
	if (r == 0) {
		/* A locked account stays locked: unlock says when it may log in. */
		const char *h = locked ? hash : hash + 1;
		r = users_edit_splice(&u, hs, he, h, strlen(h));
		if (r < 0)
			fail("%s", strerror(-r));
	}
	if (r == 0)
		r = commit_users(&u);
	users_edit_close(&u);
	if (r == 0)
		printf("password of '%s' changed%s\n", a->name,
		       locked ? " (the account stays locked)" : "");
out:
	explicit_bzero(hash, sizeof(hash));
	return r == 0 ? 0 : 1;
}

/* del, lock, unlock. */
enum edit { EDIT_DEL, EDIT_LOCK, EDIT_UNLOCK };

static int cmd_edit(struct args *a, enum edit what)
{
	struct users_file u;
	struct line_fields lf = { 0 };
	size_t s, e, hs = 0, he = 0;
	unsigned lineno, uid = 0;
	unsigned long long v = 0;
	bool changed = true;
	int r;

	if (open_users(&u, a, true, false) < 0)
		return 1;
	r = find_user(&u, a->name, &s, &e, &lineno);
	if (r == 0 && (split_line(u.text, s, e, &lf) < 0 || lf.n < 5 ||
		       config_parse_uint(lf.field[2], 0x7fffffffULL, &v) < 0 ||
		       !hash_span(&u, s, e, &hs, &he))) {
		/* del of a malformed line is fine; its sessions are not found. */
		if (what != EDIT_DEL) {
			fail("%s:%u: malformed line: fix it by hand", a->users_path, lineno);
			r = -EINVAL;
		}
		v = 0;
	}
	uid = (unsigned)v;
	free_fields(&lf);
	if (r == 0) {
		switch (what) {
		case EDIT_DEL:
			r = users_edit_splice(&u, s, e < u.len ? e + 1 : e, "", 0);
			break;
		case EDIT_LOCK:
			if (he > hs && u.text[hs] == '!')
				changed = false;
			else
				r = users_edit_splice(&u, hs, hs, "!", 1);
			break;
		case EDIT_UNLOCK:
			if (he == hs || u.text[hs] != '!') {
				changed = false;
			} else if (he - hs == 1) {
				fail("'%s' has no password to unlock: set one with passwd", a->name);
				r = -EINVAL;
			} else {
				r = users_edit_splice(&u, hs, hs + 1, "", 0);
			}
			break;
		}
		if (r < 0 && r != -EINVAL)
			fail("%s", strerror(-r));
	}
	if (r == 0 && changed)
		r = commit_users(&u);
	users_edit_close(&u);
	if (r < 0)
		return 1;
	static const char *const done[] = { "removed", "locked", "unlocked" };
	printf("'");
	put_str(stdout, a->name);
	printf("' %s%s\n", changed ? "" : "was already ", done[what]);
	if (what != EDIT_UNLOCK && !(a->given & O_KEEP) && uid != 0)
		return end_sessions(a, a->name, uid);
	return 0;
}

static bool hash_locked(const char *h)
{
	return h[0] == '!' || strcmp(h, "*") == 0;
}

static int cmd_list(struct args *a)
{
	struct users_file u;
	unsigned lineno = 0;
	int bad = 0;

	if (open_users(&u, a, false, false) < 0)
		return 1;
	printf("%-16s %7s %7s %-30s %-6s %s\n", "NAME", "UID", "GID", "ROOT", "LOCKED", "OPTIONS");
	for (size_t p = 0; p < u.len;) {
		const char *eol = memchr(u.text + p, '\n', u.len - p);
		size_t e = eol != NULL ? (size_t)(eol - u.text) : u.len;
		struct line_fields lf;
		lineno++;
		if (e > p && u.text[p] != '#' && split_line(u.text, p, e, &lf) == 0) {
			if (lf.n < 5) {
				fprintf(stderr, "%s:%u: malformed line (see '" PROG " check')\n",
					a->users_path, lineno);
				bad++;
			} else {
				put_cell(lf.field[0], 16);
				putchar(' ');
				printf("%7.7s %7.7s ", lf.field[2], lf.field[3]);
				put_cell(lf.field[4], 30);
				printf(" %-6s ", hash_locked(lf.field[1]) ? "yes" : "no");
				put_str(stdout, lf.n == 6 ? lf.field[5] : "");
				putchar('\n');
			}
			free_fields(&lf);
		}
		p = e + 1;
	}
	users_edit_close(&u);
	return bad ? 1 : 0;
}

static int cmd_show(struct args *a)
{
	struct users_file u;
	struct line_fields lf;
	size_t s, e;
	unsigned lineno;
	unsigned long long uid = 0;
	int r;

	if (open_users(&u, a, false, false) < 0)
		return 1;
	r = find_user(&u, a->name, &s, &e, &lineno);
	if (r == 0 && split_line(u.text, s, e, &lf) < 0)
		r = -ENOMEM;
	users_edit_close(&u);
	if (r < 0)
		return 1;
	static const char *const label[] = { "name", NULL, "uid", "gid", "root", "options" };
	for (int i = 0; i < 6; i++) {
		if (label[i] == NULL)
			continue;
		printf("%-9s", label[i]);
		put_str(stdout, i < lf.n ? lf.field[i] : "");
		putchar('\n');
	}
	printf("%-9s%s\n", "locked", lf.n > 1 && hash_locked(lf.field[1]) ? "yes" : "no");
	printf("%-9s%s:%u\n", "line", a->users_path, lineno);
	if (lf.n < 5 || config_parse_uint(lf.field[2], 0x7fffffffULL, &uid) < 0) {
		fail("%s:%u: malformed line (see '" PROG " check')", a->users_path, lineno);
		free_fields(&lf);
		return 1;
	}
	r = count_sessions(a, lf.field[0], (unsigned)uid);
	free_fields(&lf);
	if (r < 0)
		printf("%-9s? (%s/sessions: %s)\n", "sessions", a->runtime_dir, strerror(-r));
	else
		printf("%-9s%d\n", "sessions", r);
	return 0;
}

static int cmd_check(struct args *a)
{
	struct stat st;
	int errors = 0;

	if (lstat(a->users_path, &st) == 0 && S_ISLNK(st.st_mode)) {
		fail("%s: %s", a->users_path, users_error(-ELOOP));
		return 1;
	}
	(void)monitor_auth_check_file(a->users_path, print_error, &errors);
	if (errors > 0)
		return 1;
	printf("%s: OK\n", a->users_path);
	return 0;
}

struct who_ctx {
	bool json;
	unsigned n;
	time_t now;
};

static void json_field(const char *key, const char *value, bool first)
{
	printf("%s\"%s\": \"", first ? "" : ", ", key);
	put_text(stdout, value, strlen(value), true);
	putchar('"');
}

static void json_number(const char *key, bool has, unsigned long long v)
{
	if (has)
		printf(", \"%s\": %llu", key, v);
	else
		printf(", \"%s\": null", key);
}

static void who_one(const struct sessions_record *r, void *p)
{
	struct who_ctx *c = p;

	if (c->json) {
		printf("%s\n  {\"pid\": %d, \"uid\": %u, \"start\": %llu, ", c->n ? "," : "",
		       (int)r->pid, r->uid, r->start);
		json_field("user", r->user, true);
		json_field("host", r->host, false);
		json_field("address", r->address, false);
		json_field("command", r->command, false);
		json_field("path", r->path, false);
		json_number("since", r->has & SESSION_HAS_SINCE, r->since);
		json_number("login", r->has & SESSION_HAS_LOGIN, r->login);
		json_number("bytes", r->has & SESSION_HAS_BYTES, r->bytes);
		json_number("size", r->has & SESSION_HAS_SIZE, r->size);
		json_number("rate", r->has & SESSION_HAS_RATE, r->rate);
		json_number("updated", r->has & SESSION_HAS_UPDATED, r->updated);
		putchar('}');
	} else {
		char conn[32] = "?", bytes[32] = "", rate[40] = "";
		if ((r->has & SESSION_HAS_SINCE) && (unsigned long long)c->now >= r->since)
			duration((unsigned long long)c->now - r->since, conn, sizeof(conn));
		if (r->has & SESSION_HAS_BYTES)
			human_bytes(r->bytes, bytes, sizeof(bytes));
		if (r->has & SESSION_HAS_RATE) {
			human_bytes(r->rate, rate, sizeof(rate) - 2);
			strcat(rate, "/s");
		}
		printf("%7d ", (int)r->pid);
		put_cell(r->user[0] ? r->user : "-", 12);
		putchar(' ');
		put_cell(r->address, 20);
		putchar(' ');
		put_cell(r->host[0] ? r->host : "-", 12);
		printf(" %-9s ", conn);
		put_cell(r->command, 7);
		printf(" %10s %12s ", bytes, rate);
		put_str(stdout, r->path);
		putchar('\n');
	}
	c->n++;
}

static int cmd_who(struct args *a)
{
	struct who_ctx c = { .json = (a->given & O_JSON) != 0, .now = time(NULL) };
	int r;

	if (c.json)
		putchar('[');
	else
		printf("%7s %-12s %-20s %-12s %-9s %-7s %10s %12s %s\n", "PID", "USER", "ADDRESS",
		       "HOST", "CONNECTED", "COMMAND", "BYTES", "RATE", "PATH");
	r = sessions_scan(a->runtime_dir, -1, who_one, &c);
	if (c.json)
		printf("%s]\n", c.n ? "\n" : "");
	if (r < 0) {
		fail("%s/sessions: %s", a->runtime_dir, strerror(-r));
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ quota */

/* The account as the server reads it: 0, or 1 with a message. */
static int read_account(const struct args *a, struct account *acct)
{
	struct users_file u;
	size_t s, e;
	unsigned lineno;
	char *hash = NULL, *copy;
	int r;

	if (open_users(&u, a, false, false) < 0)
		return 1;
	r = find_user(&u, a->name, &s, &e, &lineno);
	if (r < 0) {
		users_edit_close(&u);
		return 1;
	}
	copy = strndup(u.text + s, e - s);
	users_edit_close(&u);
	if (copy == NULL) {
		fail("out of memory");
		return 1;
	}
	r = monitor_auth_parse_line(copy, a->name, acct, &hash);
	explicit_bzero(copy, strlen(copy));
	free(copy);
	if (r != 1) {
		fail("%s:%u: malformed line (see '" PROG " check')", a->users_path, lineno);
		return 1;
	}
	return 0;
}

/* The usage, read under the lock of the file as it is, nothing created:
 * 0, -ENOENT (no quota-dir or no file yet), -ENODATA (empty), -errno. */
static int quota_peek(const char *dir, const char *fname, struct quota_usage *u)
{
	int dfd, fd, r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return -errno;
	fd = openat(dfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	r = fd < 0 ? -errno : 0;
	close(dfd);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if (st.st_uid != 0 || st.st_nlink != 1 || (st.st_mode & 077) != 0)
		r = -EPERM;
	if (r < 0) {
		close(fd);
		return r;
	}
	r = quota_lock(fd);
	if (r == 0) {
		r = quota_read(fd, u);
		quota_unlock(fd);
	}
	close(fd);
	return r;
}

struct scan_result {
	int r;
	char step[16];
	struct quota_usage u;
};

/* In a child that is the user (as the monitor is when it scans): the tree
 * below acct->root counted and written to the usage file fd under its lock. */
static int rescan_as_user(const struct account *acct, int fd, struct quota_usage *u,
			  const char **step)
{
	static char step_buf[16];
	struct scan_result res;
	int pfd[2], status;
	pid_t pid;
	ssize_t n;

	*step = "fork";
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	if (fflush(stdout) != 0 || fflush(stderr) != 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -EIO;
	}
	pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return e;
	}
	if (pid == 0) {
		memset(&res, 0, sizeof(res));
		close(pfd[0]);
		/* Not dumpable: the user's processes may not ptrace the child,
		 * which holds root's descriptor of the usage file. */
		const char *what = "prctl";
		int root = -1;
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
		    (what = "setgroups", setgroups(0, NULL) < 0) ||
		    (what = "setresgid", setresgid(acct->gid, acct->gid, acct->gid) < 0) ||
		    (what = "setresuid", setresuid(acct->uid, acct->uid, acct->uid) < 0) ||
		    (what = "open root",
		     (root = open(acct->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)) {
			res.r = -errno;
		} else {
			what = "scan";
			res.r = quota_rescan(fd, root, &res.u);
			close(root);
		}
		snprintf(res.step, sizeof(res.step), "%s", what);
		n = write(pfd[1], &res, sizeof(res));
		_exit(n == (ssize_t)sizeof(res) ? 0 : 1);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &res, sizeof(res));
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	*step = "the scanning process";
	if (n < 0)
		return -e;
	if (n != (ssize_t)sizeof(res) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO;
	res.step[sizeof(res.step) - 1] = '\0';
	snprintf(step_buf, sizeof(step_buf), "%s", res.step);
	*step = step_buf;
	if (res.r < 0)
		return res.r;
	*u = res.u;
	return 0;
}

/* "3.0 MiB (3145728)" or "12". */
static void print_amount(bool bytes, uint64_t v)
{
	char h[32];

	if (bytes) {
		human_bytes(v, h, sizeof(h));
		if (v >= 1024)
			printf("%s (%" PRIu64 ")", h, v);
		else
			printf("%s", h);
	} else {
		printf("%" PRIu64, v);
	}
}

static void print_usage_line(const char *label, bool bytes, bool known, uint64_t used,
			     uint64_t max)
{
	printf("%-11s", label);
	if (known)
		print_amount(bytes, used);
	else
		printf("not counted yet");
	printf(" of ");
	if (max == 0) {
		printf("none\n");
		return;
	}
	print_amount(bytes, max);
	if (known)
		printf(", %.1f%%", (double)used * 100.0 / (double)max);
	putchar('\n');
}

static void json_u64(const char *key, bool has, uint64_t v)
{
	json_number(key, has, (unsigned long long)v);
}

static int cmd_quota(struct args *a)
{
	const struct config *sel = a->sel != NULL ? a->sel : &cfg;
	struct account acct;
	struct quota_usage old = { 0, 0, 0 }, now = { 0, 0, 0 };
	char fname[QUOTA_NAME_MAX], path[4096 + QUOTA_NAME_MAX + 2];
	bool json = (a->given & O_JSON) != 0, rescan = (a->given & O_RESCAN) != 0;
	int r, r_old;

	if (!cfg_loaded || sel->quota_dir == NULL) {
		fail("no configuration: quota needs the quota-dir of --config");
		return 1;
	}
	if (read_account(a, &acct) != 0)
		return 1;
	uint64_t max_bytes = acct.has_quota_bytes ? acct.quota_bytes : sel->quota_bytes;
	uint64_t max_files = acct.has_quota_files ? acct.quota_files : sel->quota_files;
	r = quota_file_name(acct.name, fname, sizeof(fname));
	if (r < 0 || (size_t)snprintf(path, sizeof(path), "%s/%s", sel->quota_dir, fname) >=
			     sizeof(path)) {
		fail("%s: the usage file's name is too long", sel->quota_dir);
		return 1;
	}
	r_old = quota_peek(sel->quota_dir, fname, &old);
	if (r_old < 0 && r_old != -ENOENT && r_old != -ENODATA && !(rescan && r_old == -EBADMSG)) {
		fail("%s: %s", path,
		     r_old == -EBADMSG ? "not a usage file (--rescan rewrites it)"
		     : r_old == -EPERM ? "not root's own, or linked or open to others: the "
					 "server refuses it"
					 : strerror(-r_old));
		return 1;
	}
	if (max_bytes != 0 || max_files != 0) {
		/* What the server would refuse at login. */
		const char *why = "";
		if (quota_dir_check(sel->quota_dir, true, &why) < 0)
			fail("warning: quota-dir %s: %s: the server refuses logins with a quota",
			     sel->quota_dir, why);
	}
	r = r_old;
	now = old;
	if (rescan) {
		const char *step = "";
		int dfd = quota_dir_open(sel->quota_dir, true);
		if (dfd < 0) {
			fail("quota-dir %s: %s", sel->quota_dir,
			     dfd == -EPERM ? "not owned by root, or writable by others"
					   : strerror(-dfd));
			return 1;
		}
		bool empty;
		int fd = quota_file_open(dfd, acct.name, true, &empty);
		close(dfd);
		if (fd < 0) {
			fail("%s: %s", path,
			     fd == -EPERM ? "the usage file is not root's own" : strerror(-fd));
			return 1;
		}
		r = rescan_as_user(&acct, fd, &now, &step);
		close(fd);
		if (r == -EBUSY) {
			fail("%s: an upload in place of '%s' is under way (it would be counted "
			     "twice); try again when it has ended", path, acct.name);
			return 1;
		}
		if (r < 0) {
			fail("%s: cannot count the tree of '%s' (%s, as uid %u gid %u): %s", path,
			     acct.name, step, (unsigned)acct.uid, (unsigned)acct.gid, strerror(-r));
			return 1;
		}
	}
	bool known = r == 0, had = r_old == 0;
	if (json) {
		printf("{");
		json_field("user", acct.name, true);
		json_field("file", path, false);
		printf(", \"exists\": %s", r != -ENOENT ? "true" : "false");
		json_u64("bytes", known, now.bytes);
		json_u64("files", known, now.files);
		json_u64("quota_bytes", max_bytes != 0, max_bytes);
		json_u64("quota_files", max_files != 0, max_files);
		printf(", \"rescanned\": %s", rescan ? "true" : "false");
		if (rescan) {
			json_u64("old_bytes", had, old.bytes);
			json_u64("old_files", had, old.files);
		}
		printf("}\n");
		return 0;
	}
	printf("%-11s", "user");
	put_str(stdout, acct.name);
	printf("\n%-11s", "usage file");
	put_str(stdout, path);
	if (r == -ENOENT && (max_bytes != 0 || max_files != 0))
		printf(" (does not exist yet: it is created at the user's first login)");
	else if (r == -ENOENT)
		printf(" (does not exist: without a quota the server keeps none)");
	else if (r == -ENODATA)
		printf(" (empty: it is filled at the user's next login)");
	putchar('\n');
	if (rescan) {
		printf("%-11s", "rescanned");
		if (had)
			printf("bytes %" PRIu64 " -> %" PRIu64 ", files %" PRIu64 " -> %" PRIu64 "\n",
			       old.bytes, now.bytes, old.files, now.files);
		else
			printf("bytes ? -> %" PRIu64 ", files ? -> %" PRIu64 " (%s before)\n",
			       now.bytes, now.files,
			       r_old == -ENOENT ? "no usage file"
			       : r_old == -ENODATA ? "an empty usage file" : "a broken usage file");
	}
	print_usage_line("bytes", true, known, now.bytes, max_bytes);
	print_usage_line("files", false, known, now.files, max_files);
	if (max_bytes == 0 && max_files == 0)
		printf("(no quota: the server keeps no usage for this user)\n");
	return 0;
}

/* ------------------------------------------------------------ main */

static const struct command {
	const char *name;
	bool needs_name, needs_users;
	unsigned allowed;
} commands[] = {
	{ "add", true, true, O_ROOT | O_UID | O_GID | O_OPTION | O_PWSTDIN | O_FORCE | O_METHOD },
	{ "passwd", true, true, O_PWSTDIN | O_METHOD },
	{ "del", true, true, O_KEEP },
	{ "lock", true, true, O_KEEP },
	{ "unlock", true, true, 0 },
	{ "list", false, true, 0 },
	{ "show", true, true, 0 },
	{ "check", false, true, 0 },
	{ "who", false, false, O_JSON },
	{ "quota", true, true, O_JSON | O_RESCAN },
};

static void config_error(void *ctx, const char *message)
{
	print_error(ctx, message);
}

/* The users file and runtime-dir the options select. */
static int resolve(struct args *a, const struct command *c)
{
	a->host_name = a->host != NULL ? a->host : "";
	a->runtime_dir = "/run/ftpsd";
	/* --users alone needs no configuration; --config or --host do. */
	/* quota needs the configuration's quota-dir and quotas. */
	if (a->users == NULL || (a->given & (O_CONFIG | O_HOST)) || strcmp(c->name, "quota") == 0) {
		int errors = 0;
		const char *path = a->config != NULL ? a->config : FTPSD_DEFAULT_CONFIG;
		config_defaults(&cfg);
		cfg_loaded = true;
		config_load(&cfg, path, config_error, &errors);
		if (errors > 0) {
			fail("%s: %d error(s) in the configuration", path, errors);
			return -EINVAL;
		}
		const struct config *sel = &cfg;
		if (a->host != NULL && (sel = config_host(&cfg, a->host)) == NULL) {
			fail("%s: no [host %s] section", path, a->host);
			return -ENOENT;
		}
		a->runtime_dir = cfg.runtime_dir;
		a->sel = sel;
		a->users_path = sel->users_file;
		if (a->users_path == NULL && a->users == NULL && c->needs_users) {
			fail("%s: no users-file is set%s%s; give --users FILE", path,
			     a->host ? " for host " : "", a->host ? a->host : "");
			return -ENOENT;
		}
	}
	if (a->users != NULL)
		a->users_path = a->users;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "users", required_argument, NULL, 'u' },
		{ "root", required_argument, NULL, 'r' },
		{ "uid", required_argument, NULL, 'U' },
		{ "gid", required_argument, NULL, 'G' },
		{ "option", required_argument, NULL, 'o' },
		{ "password-stdin", no_argument, NULL, 'p' },
		{ "hash-method", required_argument, NULL, 'm' },
		{ "force", no_argument, NULL, 'f' },
		{ "keep-sessions", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "rescan", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { 0 };
	int opt, r;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'c': a.config = optarg; a.given |= O_CONFIG; break;
		case 'H': a.host = optarg; a.given |= O_HOST; break;
		case 'u': a.users = optarg; a.given |= O_USERS; break;
		case 'r': a.root = optarg; a.given |= O_ROOT; break;
		case 'U': a.uid = optarg; a.given |= O_UID; break;
		case 'G': a.gid = optarg; a.given |= O_GID; break;
		case 'm': a.method = optarg; a.given |= O_METHOD; break;
		case 'p': a.given |= O_PWSTDIN; break;
		case 'f': a.given |= O_FORCE; break;
		case 'k': a.given |= O_KEEP; break;
		case 'j': a.given |= O_JSON; break;
		case 'R': a.given |= O_RESCAN; break;
		case 'o':
			if (a.noptions == MAX_OPTIONS) {
				fail("more than %d --option", MAX_OPTIONS);
				return 2;
			}
			a.options[a.noptions++] = optarg;
			a.given |= O_OPTION;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", FTPSD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const struct command *c = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, argv[optind]) == 0)
			c = &commands[i];
	if (c == NULL) {
		fail("unknown command '%s' (see --help)", argv[optind]);
		return 2;
	}
	optind++;
	if (c->needs_name) {
		if (optind >= argc) {
			fail("%s needs a user name", c->name);
			return 2;
		}
		a.name = argv[optind++];
	}
	if (optind != argc) {
		fail("%s: unexpected argument '%s'", c->name, argv[optind]);
		return 2;
	}
	unsigned extra = a.given & ~(c->allowed | O_GLOBAL);
	if (extra != 0) {
		for (size_t i = 0; options[i].name != NULL; i++) {
			static const char map[] = "cHurUGopfmkjR";
			const char *m = strchr(map, options[i].val);
			if (m != NULL && (extra & (1u << (m - map))) != 0) {
				fail("--%s is not an option of %s", options[i].name, c->name);
				break;
			}
		}
		return 2;
	}
	if (resolve(&a, c) < 0) {
		r = 1;
	} else if (strcmp(c->name, "add") == 0) {
		r = cmd_add(&a);
	} else if (strcmp(c->name, "passwd") == 0) {
		r = cmd_passwd(&a);
	} else if (strcmp(c->name, "del") == 0) {
		r = cmd_edit(&a, EDIT_DEL);
	} else if (strcmp(c->name, "lock") == 0) {
		r = cmd_edit(&a, EDIT_LOCK);
	} else if (strcmp(c->name, "unlock") == 0) {
		r = cmd_edit(&a, EDIT_UNLOCK);
	} else if (strcmp(c->name, "list") == 0) {
		r = cmd_list(&a);
	} else if (strcmp(c->name, "show") == 0) {
		r = cmd_show(&a);
	} else if (strcmp(c->name, "check") == 0) {
		r = cmd_check(&a);
	} else if (strcmp(c->name, "quota") == 0) {
		r = cmd_quota(&a);
	} else {
		r = cmd_who(&a);
	}
	if (cfg_loaded)
		config_free(&cfg);
	if (fflush(stdout) != 0 || ferror(stdout))
		r = r ? r : 1;
	return r;
}
