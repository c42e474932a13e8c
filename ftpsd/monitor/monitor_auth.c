/* Authentication: the users file (crypt(3) hashes) and PAM. */
#include <crypt.h>
#include <errno.h>
#include <stddef.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "hugepages.h"
#include "ipc.h"
#include "log.h"
#include "monitor_auth.h"
#include "policy.h"

#define USERS_MAX_SIZE (16 * 1024 * 1024)

/* A uid or gid: decimal, at most 2^31 - 1. */
static int parse_id(const char *s, unsigned *out)
{
	unsigned long long v;
	int r = config_parse_uint(s, 0x7fffffffULL, &v);

	if (r == 0)
		*out = (unsigned)v;
	return r;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* cert=sha256:HEX, the hex with or without colons. */
static int parse_pin(const char *s, uint8_t pin[32])
{
	size_t n = 0;

	if (strncmp(s, "sha256:", 7) != 0)
		return -EINVAL;
	for (s += 7; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		int hi = hexval(s[0]), lo = s[1] != '\0' ? hexval(s[1]) : -1;
		if (hi < 0 || lo < 0 || n == 32)
			return -EINVAL;
		pin[n++] = (uint8_t)(hi << 4 | lo);
		s++;
	}
	return n == 32 ? 0 : -EINVAL;
}

/* NAME=VALUE options of numbers (uint) or sizes (K, M, G, T). */
static int parse_number_option(const char *o, struct account *acct)
{
	static const struct {
		const char *name;
		bool size;
		size_t has, value;
	} nums[] = {
		{ "max-sessions=", false, offsetof(struct account, has_max_sessions),
		  offsetof(struct account, max_sessions) },
		{ "quota-files=", false, offsetof(struct account, has_quota_files),
		  offsetof(struct account, quota_files) },
		{ "quota-bytes=", true, offsetof(struct account, has_quota_bytes),
		  offsetof(struct account, quota_bytes) },
		{ "download-rate=", true, offsetof(struct account, has_download_rate),
		  offsetof(struct account, download_rate) },
		{ "upload-rate=", true, offsetof(struct account, has_upload_rate),
		  offsetof(struct account, upload_rate) },
	};
	unsigned long long v;

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		size_t n = strlen(nums[i].name);
		if (strncmp(o, nums[i].name, n) != 0)
			continue;
		if (nums[i].size ? config_parse_size(o + n, &v) < 0
				 : config_parse_uint(o + n, 4000000000ULL, &v) < 0)
			return -EINVAL;
		*(bool *)((char *)acct + nums[i].has) = true;
		if (nums[i].size)
			*(unsigned long long *)((char *)acct + nums[i].value) = v;
		else
			*(unsigned *)((char *)acct + nums[i].value) = (unsigned)v;
		return 0;
	}
	return -EINVAL;
}

static int parse_options(char *opts, struct account *acct)
{
	char *save = NULL;

	for (char *o = strtok_r(opts, ",", &save); o != NULL; o = strtok_r(NULL, ",", &save)) {
		if (strcmp(o, "read-only") == 0)
			acct->flags |= IPC_USER_READ_ONLY;
		else if (strcmp(o, "chmod=off") == 0)
			acct->flags |= IPC_USER_NO_CHMOD;
		else if (strcmp(o, "tls=required") == 0)
			acct->tls = USER_TLS_REQUIRED;
		else if (strcmp(o, "tls=optional") == 0)
			acct->tls = USER_TLS_OPTIONAL;
		else if (strcmp(o, "tls=forbidden") == 0)
			acct->tls = USER_TLS_FORBIDDEN;
		else if (strcmp(o, "upload-mode=atomic") == 0 || strcmp(o, "upload-mode=in-place") == 0) {
			acct->has_upload_mode = true;
			acct->upload_mode = o[12] == 'a' ? UPLOAD_ATOMIC : UPLOAD_IN_PLACE;
		} else if (strcmp(o, "data-tls-reuse=off") == 0 ||
			   strcmp(o, "data-tls-reuse=required") == 0) {
			acct->has_data_tls_reuse = true;
			acct->data_tls_reuse = o[15] == 'r';
		} else if (strncmp(o, "cert=", 5) == 0 && parse_pin(o + 5, acct->pin) == 0)
			acct->has_pin = true;
		else if (parse_number_option(o, acct) < 0)
			return -EINVAL;
	}
	return 0;
}

int monitor_auth_parse_line(char *line, const char *user, struct account *acct, char **hash)
{
	char *field[6] = { NULL };
	int n = 0;
	char *p = line;

	if (line[0] == '#' || line[0] == '\0')
		return 0;
	/* Five fields split at ':'; the options, the rest of the line, may hold
	 * colons themselves (cert=sha256:...). */
	while (n < 6) {
		field[n++] = p;
		if (n == 6)
			break;
		p = strchr(p, ':');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (n < 5)
		return strcmp(field[0], user) == 0 ? -EINVAL : 0;
	if (strcmp(field[0], user) != 0)
		return 0;

	unsigned uid = 0, gid = 0;
	memset(acct, 0, sizeof(*acct));
	if (strlen(field[0]) >= sizeof(acct->name) || parse_id(field[2], &uid) < 0 ||
	    parse_id(field[3], &gid) < 0 || field[4][0] != '/' ||
	    strlen(field[4]) >= sizeof(acct->root) || field[1][0] == '\0')
		return -EINVAL;
	if (n == 6 && parse_options(field[5], acct) < 0)
		return -EINVAL;
	strcpy(acct->name, field[0]);
	strcpy(acct->root, field[4]);
	acct->uid = uid;
	acct->gid = gid;
	/* ftpsd-user lock puts "!" before the hash: that also keeps a client
	 * certificate from logging the user in ("*" alone is a certificate-only
	 * account, no password). */
	acct->locked = field[1][0] == '!';
	*hash = field[1];
	return 1;
}

/* --check-config: what is wrong with one users-file line, as a login would
 * read it; NULL when nothing is. line is cut into its fields. */
static const char *check_line(char *line, const char **name)
{
	char *field[6] = { NULL };
	struct account acct;
	int n = 0;
	unsigned id = 0;

	for (char *p = line; n < 6;) {
		field[n++] = p;
		if (n == 6 || (p = strchr(p, ':')) == NULL)
			break;
		*p++ = '\0';
	}
	*name = field[0];
	if (n < 5)
		return "fewer than 5 fields (NAME:HASH:UID:GID:ROOT[:OPTIONS])";
	if (field[0][0] == '\0')
		return "no user name";
	if (strlen(field[0]) >= sizeof(acct.name))
		return "user name longer than 255 bytes";
	if (field[1][0] == '\0')
		return "no password hash (a locked account has \"!\" or \"*\")";
	if (parse_id(field[2], &id) < 0)
		return "the uid is not a number from 1 to 2147483647";
	if (id == 0)
		return "uid 0: a user may not log in as root";
	if (parse_id(field[3], &id) < 0)
		return "the gid is not a number from 1 to 2147483647";
	if (id == 0)
		return "gid 0: a user may not log in with group root";
	if (field[4][0] != '/' || strlen(field[4]) >= sizeof(acct.root))
		return "the root is not an absolute path";
	memset(&acct, 0, sizeof(acct));
	if (n == 6 && parse_options(field[5], &acct) < 0)
		return "unknown option or bad value (read-only, chmod=off, tls=, upload-mode=, "
		       "data-tls-reuse=, cert=sha256:HEX, max-sessions=N, quota-bytes=SIZE, "
		       "quota-files=N, download-rate=SIZE, upload-rate=SIZE)";
	return NULL;
}

int monitor_auth_check_file(const char *path, config_error_fn err, void *ctx)
{
	char *text = NULL, msg[1024];
	size_t len = 0;
	unsigned lineno = 0;
	int errors = 0, r;

	r = file_read_all(path, USERS_MAX_SIZE - 1, 0, &text, &len);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s: cannot read it: %s", path, strerror(-r));
		err(ctx, msg);
		return 1;
	}
	/* One copy of each line, names compared across lines. */
	char **names = calloc(len / 2 + 1, sizeof(*names));
	size_t nnames = 0;
	if (names == NULL)
		abort();
	for (char *p = text, *end = text + strlen(text); p < end;) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *name = "", *why;

		if (eol == NULL)
			eol = end;
		*eol = '\0';
		lineno++;
		if (p[0] != '#' && p[0] != '\0') {
			why = check_line(p, &name);
			for (size_t i = 0; why == NULL && i < nnames; i++)
				if (strcmp(names[i], name) == 0)
					why = "the user appears on an earlier line too";
			if (why == NULL) {
				names[nnames++] = (char *)name;
			} else {
				snprintf(msg, sizeof(msg), "%s:%u: user '%.100s': %s", path, lineno, name,
					 why);
				err(ctx, msg);
				errors++;
			}
		}
		p = eol + 1;
	}
	free(names);
	explicit_bzero(text, len);
	free(text);
	return errors;
}

/* Compare without an early exit, so timing says nothing of the hash. */
static bool hash_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

ssize_t monitor_auth_hash_setting(const char *h, size_t n)
{
	/* Methods whose cost is the field after the method's name. */
	static const char *const cost_field[] = { "y", "gy", "2a", "2b", "2x", "2y", "sha1" };
	static const char des64[] =
		"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

	if (n > 0 && h[0] == '$') {
		const char *id_end = memchr(h + 1, '$', n - 1);
		if (id_end == NULL || id_end == h + 1)
			return -EINVAL;
		size_t id_len = (size_t)(id_end - h - 1), len = id_len + 2;
		const char *next = memchr(h + len, '$', n - len);
		bool cost = false;
		for (size_t i = 0; i < sizeof(cost_field) / sizeof(cost_field[0]); i++)
			cost |= strlen(cost_field[i]) == id_len &&
				memcmp(h + 1, cost_field[i], id_len) == 0;
		if (id_len == 1 && (h[1] == '5' || h[1] == '6'))
			cost = n - len > 7 && memcmp(h + len, "rounds=", 7) == 0;
		if (cost)
			return next != NULL ? next - h + 1 : -EINVAL;
		/* scrypt: N, r and p in 11 characters after "$7$". */
		if (id_len == 1 && h[1] == '7')
			return n - len >= 11 ? (ssize_t)len + 11 : -EINVAL;
		return (ssize_t)len;
	}
	if (n >= 5 && h[0] == '_')
		return 5;
	if (n != 13)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '\0' || strchr(des64, h[i]) == NULL)
			return -EINVAL;
	}
	return 0;
}

/* A cap on the hashes each password check runs (see users below). */
#define USERS_MAX_SETTINGS 8

/* The users file, read at the first USER or PASS that needs it and kept for
 * the session, so that a USER costs a search of names, not a read and parse
 * of the whole file (one connection could keep the root monitor busy with
 * pipelined USERs). Kept until login only: monitor_auth_forget wipes it, the
 * hashes must not stay in a process that becomes the user.
 *
 * setting[]: one hash of each method and cost the file uses (the first
 * one's), so that every password check can cost the same (auth_users_file). */
static struct {
	char *path;
	char *text; /* NUL-terminated, len bytes */
	size_t len;
	size_t size; /* bytes read, past any NUL: all of them are wiped */
	struct {
		char hash[CRYPT_OUTPUT_SIZE];
		size_t len; /* of its setting (monitor_auth_hash_setting) */
	} setting[USERS_MAX_SETTINGS];
	unsigned nsettings;
	bool more_settings; /* the file has more than USERS_MAX_SETTINGS */
	struct stat st;     /* the file as it was read: a change reads it again */
} users;

/* The same file as the one read? ftpsd-user replaces it (a new inode), and
 * a hand edit changes its time or size: a USER sent before a lock or del
 * must not log in by the old copy at its PASS. */
static bool users_unchanged(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == users.st.st_dev && st.st_ino == users.st.st_ino &&
	       st.st_size == users.st.st_size && st.st_mtim.tv_sec == users.st.st_mtim.tv_sec &&
	       st.st_mtim.tv_nsec == users.st.st_mtim.tv_nsec;
}

void monitor_auth_forget(void)
{
	if (users.text != NULL) {
		explicit_bzero(users.text, users.size);
		free(users.text);
	}
	free(users.path);
	explicit_bzero(&users, sizeof(users));
}

/* The hash field of a line (the second), or NULL. */
static const char *line_hash(const char *line, const char *eol, size_t *n)
{
	const char *h = memchr(line, ':', (size_t)(eol - line)), *end;

	if (line == eol || line[0] == '#' || h == NULL)
		return NULL;
	h++;
	end = memchr(h, ':', (size_t)(eol - h));
	*n = (size_t)((end != NULL ? end : eol) - h);
	return h;
}

static int users_load(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if (users.text != NULL && strcmp(users.path, path) == 0 && users_unchanged(path))
		return 0;
	/* Another file (a virtual host of its own chosen after a first USER),
	 * or this one changed. */
	monitor_auth_forget();
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	r = file_read_all(path, USERS_MAX_SIZE - 1, 0, &text, &len);
	if (r < 0)
		return r;
	users.path = strdup(path);
	if (users.path == NULL)
		abort();
	users.text = text;
	users.size = len;
	users.st = st;
	/* The file ends at its first NUL, as it always has for the parser. */
	users.len = strlen(text);
	for (const char *p = text, *end = text + users.len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = 0;
		if (eol == NULL)
			eol = end;
		const char *h = line_hash(p, eol, &n);
		ssize_t s = h != NULL ? monitor_auth_hash_setting(h, n) : -EINVAL;
		unsigned i = 0;
		while (s >= 0 && i < users.nsettings &&
		       !(users.setting[i].len == (size_t)s &&
			 memcmp(users.setting[i].hash, h, (size_t)s) == 0))
			i++;
		if (s >= 0 && i == users.nsettings && n < CRYPT_OUTPUT_SIZE) {
			if (i == USERS_MAX_SETTINGS) {
				users.more_settings = true;
			} else {
				memcpy(users.setting[i].hash, h, n);
				users.setting[i].len = (size_t)s;
				users.nsettings++;
			}
		}
		p = eol + 1;
	}
	return 0;
}

int monitor_auth_roots(const char *path, void (*fn)(const char *root, void *ctx), void *ctx)
{
	char root[sizeof(((struct account *)0)->root)];
	int r = users_load(path), n = 0;

	if (r < 0)
		return r;
	/* Only the fifth field, as monitor_auth_parse_line reads it: at 20,000
	 * users a full parse of each line cost more than the rest of a login. */
	for (const char *p = users.text, *end = users.text + users.len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *f[6] = { p };
		unsigned nf = 1;
		if (eol == NULL)
			eol = end;
		for (const char *c = p; nf < 6 && (c = memchr(c, ':', (size_t)(eol - c))) != NULL;)
			f[nf++] = ++c;
		if (p < eol && p[0] != '#' && nf >= 5 && f[1] - p > 1 && f[4][0] == '/') {
			const char *stop = nf > 5 ? f[5] - 1 : eol;
			size_t len = (size_t)(stop - f[4]);
			if (len < sizeof(root)) {
				memcpy(root, f[4], len);
				root[len] = '\0';
				fn(root, ctx);
				n++;
			}
		}
		p = eol + 1;
	}
	return n;
}

/* user's line in the cached file, parsed: 1 (*line a copy, to wipe and free,
 * which *hash points into), 0 not there, -EINVAL malformed. */
static int users_find(const char *user, struct account *acct, char **line, size_t *line_len,
		      char **hash)
{
	size_t ulen = strlen(user);
	int found = 0;

	*line = NULL;
	/* To the end of the file whatever the user's place in it: the time of a
	 * USER says nothing of it. */
	for (const char *p = users.text, *end = users.text + users.len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		/* The name first: only the user's own line is parsed. */
		if (found == 0 && (size_t)(eol - p) >= ulen && memcmp(p, user, ulen) == 0 &&
		    (p + ulen == eol || p[ulen] == ':')) {
			size_t n = (size_t)(eol - p);
			char *copy = strndup(p, n);
			if (copy == NULL)
				abort();
			found = monitor_auth_parse_line(copy, user, acct, hash);
			if (found != 0) {
				*line = copy;
				*line_len = n;
			} else {
				explicit_bzero(copy, n);
				free(copy);
			}
		}
		p = eol + 1;
	}
	return found;
}

static void users_found_free(char *line, size_t len)
{
	if (line != NULL) {
		explicit_bzero(line, len);
		free(line);
	}
}

/* -ENOENT when the user is not in the file. */
static int auth_users_file(const char *path, const char *user, const char *password,
			   struct account *acct)
{
	char *line, *hash = NULL;
	size_t line_len = 0;
	bool ok = false, ran_own = false;
	int r, found;

	r = users_load(path);
	if (r < 0) {
		errno = -r;
		log_warn("cannot read users file %s: %m", path);
		return r;
	}
	found = users_find(user, acct, &line, &line_len, &hash);
	if (found < 0)
		log_warn("%s: malformed entry for user %s", path, user);
	ssize_t own = found == 1 ? monitor_auth_hash_setting(hash, strlen(hash)) : -EINVAL;

	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		abort();
	hugepages_begin();
	/* One hash of each method and cost in the file, the user's own hash in
	 * place of its setting's: every check costs the same, whether the user
	 * is unknown, its password wrong or right, its method yescrypt or
	 * sha512crypt. Who exists, and with which method, does not show in the
	 * time of the answer. */
	for (unsigned i = 0; i < users.nsettings; i++) {
		if (own >= 0 && !ran_own && users.setting[i].len == (size_t)own &&
		    memcmp(users.setting[i].hash, hash, (size_t)own) == 0) {
			const char *out = crypt_rn(password, hash, cd, (int)sizeof(*cd));
			ok = out != NULL && out[0] != '*' && hash_equal(out, hash);
			ran_own = true;
		} else {
			(void)crypt_rn(password, users.setting[i].hash, cd, (int)sizeof(*cd));
		}
	}
	/* No hash ("*": certificate only), or a setting past the cap. */
	if (found == 1 && !ran_own) {
		const char *out = crypt_rn(password, hash, cd, (int)sizeof(*cd));
		ok = out != NULL && out[0] != '*' && hash_equal(out, hash);
	}
	hugepages_end();
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (found == 1 && !ran_own && own >= 0 && users.more_settings)
		log_warn("%s: more than %d hash methods and costs: checking %s takes longer", path,
			 USERS_MAX_SETTINGS, user);
	users_found_free(line, line_len);
	if (found == 1)
		return ok ? 0 : -EACCES;
	return found == 0 ? -ENOENT : -EACCES;
}

int monitor_auth_lookup(const struct config *cfg, const char *user, struct account *acct)
{
	char *line, *hash;
	size_t len = 0;
	int r;

	if (cfg->users_file == NULL)
		return 0;
	r = users_load(cfg->users_file);
	if (r < 0)
		return r;
	r = users_find(user, acct, &line, &len, &hash);
	users_found_free(line, len);
	return r;
}

bool monitor_auth_anonymous(const struct config *cfg, const char *user, struct account *acct)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (!cfg->anonymous || (strcmp(user, "anonymous") != 0 && strcmp(user, "ftp") != 0))
		return false;
	if (getpwnam_r(cfg->anonymous_user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
		log_warn("anonymous-user %s does not exist", cfg->anonymous_user);
		return false;
	}
	if (pw.pw_uid == 0 || pw.pw_gid == 0) {
		log_warn("anonymous-user %s must not have uid or gid 0", cfg->anonymous_user);
		return false;
	}
	memset(acct, 0, sizeof(*acct));
	snprintf(acct->name, sizeof(acct->name), "%s", user);
	snprintf(acct->root, sizeof(acct->root), "%s", cfg->anonymous_root);
	acct->uid = pw.pw_uid;
	acct->gid = pw.pw_gid;
	acct->anonymous = true;
	acct->tls = cfg->anonymous_tls;
	if (!cfg->anonymous_write)
		acct->flags |= IPC_USER_READ_ONLY;
	return true;
}

struct pam_conv_data {
	const char *password;
};

static int pam_conversation(int n, const struct pam_message **msg, struct pam_response **resp,
			    void *appdata)
{
	struct pam_conv_data *d = appdata;
	struct pam_response *r;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
			r[i].resp = strdup(d->password);
			if (r[i].resp == NULL)
				goto fail;
		} else if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			goto fail; /* nothing to answer: the user name is already set */
		}
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (int i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
	return PAM_CONV_ERR;
}

static int auth_pam(const char *service, const char *peer, const char *user, const char *password,
		    struct account *acct)
{
	struct pam_conv_data data = { .password = password };
	struct pam_conv conv = { .conv = pam_conversation, .appdata_ptr = &data };
	pam_handle_t *pamh = NULL;
	int r;

	r = pam_start(service, user, &conv, &pamh);
	if (r != PAM_SUCCESS)
		return -EIO;
	(void)pam_set_item(pamh, PAM_RHOST, peer);
	(void)pam_set_item(pamh, PAM_TTY, "ftp");
	hugepages_begin();
	r = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	hugepages_end();
	if (r == PAM_SUCCESS)
		r = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	if (r != PAM_SUCCESS) {
		log_info("PAM: %s", pam_strerror(pamh, r));
		pam_end(pamh, r);
		return -EACCES;
	}
	pam_end(pamh, PAM_SUCCESS);

	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -EACCES;
	if (strlen(pw.pw_name) >= sizeof(acct->name) || pw.pw_dir == NULL || pw.pw_dir[0] != '/' ||
	    strlen(pw.pw_dir) >= sizeof(acct->root))
		return -EACCES;
	memset(acct, 0, sizeof(*acct));
	strcpy(acct->name, pw.pw_name);
	strcpy(acct->root, pw.pw_dir);
	acct->uid = pw.pw_uid;
	acct->gid = pw.pw_gid;
	acct->system_user = true;
	return 0;
}

int monitor_auth_check(const struct config *cfg, const char *peer, const char *user,
		       const char *password, struct account *acct)
{
	int r = -ENOENT;

	/* Anonymous: any password, which is logged (RFC 1635 asks for an
	 * e-mail address there). */
	if (monitor_auth_anonymous(cfg, user, acct)) {
		char shown[128];
		size_t j = 0;
		for (size_t i = 0; password[i] != '\0' && j + 1 < sizeof(shown); i++)
			shown[j++] = (unsigned char)password[i] < 0x20 ? '?' : password[i];
		shown[j] = '\0';
		log_info("anonymous login from %s, password \"%s\"", peer, shown);
		return 0;
	}
	if (cfg->users_file != NULL)
		r = auth_users_file(cfg->users_file, user, password, acct);
	if (r == -ENOENT && cfg->pam_service != NULL)
		r = auth_pam(cfg->pam_service, peer, user, password, acct);
	if (r < 0)
		return r == -ENOENT ? -EACCES : r;
	if (acct->uid == 0 || acct->gid == 0) {
		log_warn("refusing login of %s: uid or gid 0", user);
		return -EACCES;
	}
	return 0;
}
