/* The monitor's Landlock layers (common/landlock.c makes them): before
 * login, as root, what may be written (every root a login may get, since a
 * later layer only narrows); after login, the user's root and the session
 * record. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build_config.h"
#include "landlock.h"
#include "log.h"
#include "monitor_auth.h"
#include "monitor_session.h"

/* More users-file roots than this (all hosts): the directories that hold
 * them are allowed instead, so that a file of 10,000 users costs no
 * session 10,000 rules (some 6 ms a thousand). */
#define PRELOGIN_MAX_ROOTS 256

/* landlock-writable unset, where a host has pam-service: system users'
 * homes, and pam_faillock's tallies (opened read-write even to check one:
 * refused, pam_faillock lets the login through). */
#define PAM_WRITABLE "/home,/run/faillock"
#define FAILLOCK_DIR "/run/faillock"

#define PRELOGIN_RECENT 16

struct prelogin {
	struct monitor *m;
	struct landlock_prelogin ll;
	char *roots[PRELOGIN_MAX_ROOTS]; /* the users files' roots, until too many */
	size_t nroots;
	bool parents; /* too many: the directories that hold them instead */
	char *recent[PRELOGIN_RECENT]; /* parents allowed, as written (some) */
	unsigned next;
	struct stat slash;
};

static bool known(const struct monitor *m, const struct stat *st)
{
	for (size_t i = 0; i < m->nwritable; i++)
		if (m->writable[i].dev == st->st_dev && m->writable[i].ino == st->st_ino)
			return true;
	return false;
}

/* Writes beneath the directory dir (once), kept for the check at login. */
static bool allow_fd(struct prelogin *p, int dir, const char *what)
{
	struct monitor *m = p->m;
	struct stat st;
	int r;

	if (fstat(dir, &st) < 0) {
		log_warn("landlock before login: %s: %s", what, strerror(errno));
		return false;
	}
	if (known(m, &st))
		return true;
	r = landlock_prelogin_allow(&p->ll, dir);
	if (r < 0) {
		log_warn("landlock before login: %s: %s", what, strerror(-r));
		return false;
	}
	if (m->nwritable % 64 == 0) {
		struct dir_id *w = reallocarray(m->writable, m->nwritable + 64, sizeof(*w));
		if (w == NULL)
			abort();
		m->writable = w;
	}
	m->writable[m->nwritable++] = (struct dir_id){ .dev = st.st_dev, .ino = st.st_ino };
	return true;
}

/* A missing directory has nothing to write: a login with it as root fails
 * anyway. */
static bool allow_path(struct prelogin *p, const char *path)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	bool ok;

	if (fd < 0) {
		log_debug("landlock before login: %s: %s", path, strerror(errno));
		return false;
	}
	ok = allow_fd(p, fd, path);
	close(fd);
	return ok;
}

/* The directory that holds root, as the kernel resolves it (symbolic links,
 * ".."); never "/": the root itself there. */
static void allow_parent_resolved(struct prelogin *p, const char *root)
{
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), up;
	struct stat st;

	if (fd < 0) {
		log_debug("landlock before login: %s: %s", root, strerror(errno));
		return;
	}
	up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (up >= 0 && fstat(up, &st) == 0 &&
	    !(st.st_dev == p->slash.st_dev && st.st_ino == p->slash.st_ino))
		(void)allow_fd(p, up, root);
	else
		(void)allow_fd(p, fd, root);
	if (up >= 0)
		close(up);
	close(fd);
}

/* The directory that holds root: its parent as written, each one resolved
 * once (a syscall per root would cost a 20,000-user file some 30 ms a
 * session). A root that holds "." or ".." components, or whose parent would
 * be "/", goes the slow way. A root that is itself a symbolic link to
 * another directory is not followed: its login is refused, saying so, until
 * landlock-writable names where it leads. */
static void allow_parent(struct prelogin *p, const char *root)
{
	char parent[PATH_MAX];
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	while (n > 1 && root[n - 1] != '/')
		n--;
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n <= 1 || n >= sizeof(parent) || strstr(root, "/.") != NULL) {
		allow_parent_resolved(p, root);
		return;
	}
	memcpy(parent, root, n);
	parent[n] = '\0';
	for (unsigned i = 0; i < PRELOGIN_RECENT; i++)
		if (p->recent[i] != NULL && strcmp(p->recent[i], parent) == 0)
			return;
	(void)allow_path(p, parent);
	free(p->recent[p->next]);
	p->recent[p->next] = strdup(parent);
	if (p->recent[p->next] == NULL)
		abort();
	p->next = (p->next + 1) % PRELOGIN_RECENT;
}

/* A users-file root: kept until the count is known. */
static void prelogin_root(const char *root, void *ctx)
{
	struct prelogin *p = ctx;

	if (!p->parents && p->nroots == PRELOGIN_MAX_ROOTS) {
		p->parents = true;
		for (size_t i = 0; i < p->nroots; i++)
			allow_parent(p, p->roots[i]);
	}
	if (p->parents) {
		allow_parent(p, root);
	} else {
		p->roots[p->nroots] = strdup(root);
		if (p->roots[p->nroots++] == NULL)
			abort();
	}
}

static void prelogin_roots_done(struct prelogin *p)
{
	for (size_t i = 0; i < p->nroots; i++) {
		if (!p->parents)
			(void)allow_path(p, p->roots[i]);
		free(p->roots[i]);
	}
	for (unsigned i = 0; i < PRELOGIN_RECENT; i++)
		free(p->recent[i]);
}

/* quota-dir is made at the first login that needs it: its parent until then. */
static void allow_quota_dir(struct prelogin *p, const char *dir)
{
	char parent[PATH_MAX];
	size_t n = strlen(dir);

	if (access(dir, F_OK) == 0 || errno != ENOENT || n >= sizeof(parent)) {
		(void)allow_path(p, dir);
		return;
	}
	while (n > 1 && dir[n - 1] == '/')
		n--;
	while (n > 1 && dir[n - 1] != '/')
		n--;
	memcpy(parent, dir, n);
	parent[n] = '\0';
	(void)allow_path(p, parent);
}

/* landlock-writable: "none", or paths separated by commas; unset,
 * PAM_WRITABLE where a host logs system users in through PAM. */
static void allow_list(struct prelogin *p, const char *list)
{
	char path[PATH_MAX];

	if (strcmp(list, "none") == 0)
		return;
	for (const char *s = list; *s != '\0';) {
		size_t n = strcspn(s, ",");
		if (n < sizeof(path)) {
			memcpy(path, s, n);
			path[n] = '\0';
			(void)allow_path(p, path);
		} else {
			log_warn("landlock-writable: a path of %zu bytes, not allowed", n);
		}
		s += n + (s[n] == ',');
	}
}

/* Was this users file read for an earlier host (they inherit the global
 * part's)? */
static bool users_file_seen(const struct config *cfg, unsigned identity)
{
	const char *path = config_identity(cfg, identity)->users_file;

	for (unsigned i = 0; i < identity; i++) {
		const char *other = config_identity(cfg, i)->users_file;
		if (other != NULL && strcmp(other, path) == 0)
			return true;
	}
	return false;
}

/* Every directory a session of this configuration may write beneath. */
static void allow_all(struct prelogin *p, const struct config *cfg)
{
	bool pam = false;

	for (unsigned i = 0; config_identity(cfg, i) != NULL; i++) {
		const struct config *c = config_identity(cfg, i);
		allow_quota_dir(p, c->quota_dir);
		if (c->anonymous && c->anonymous_root != NULL)
			(void)allow_path(p, c->anonymous_root);
		if (c->users_file != NULL && !users_file_seen(cfg, i) &&
		    monitor_auth_roots(c->users_file, prelogin_root, p) < 0)
			log_debug("landlock before login: %s: cannot read it", c->users_file);
		pam = pam || c->pam_service != NULL;
	}
	prelogin_roots_done(p);
	if (cfg->landlock_writable != NULL) {
		allow_list(p, cfg->landlock_writable);
	} else if (pam) {
		/* As pam_faillock would make it at its first failure. */
		if (mkdir(FAILLOCK_DIR, 0755) < 0 && errno != EEXIST)
			log_debug("landlock before login: %s: %s", FAILLOCK_DIR, strerror(errno));
		allow_list(p, PAM_WRITABLE);
	}
}

void mon_landlock_prelogin(struct monitor *m)
{
	const struct config *cfg = m->root_cfg;
	struct prelogin p = { .m = m };
	char what[256];
	int abi;

	if (cfg->landlock != LANDLOCK_MODE_OFF && cfg->landlock_before_login) {
		abi = landlock_prelogin_begin(&p.ll, what, sizeof(what));
		if (abi > 0 && stat("/", &p.slash) < 0)
			fatal("stat /");
		if (abi > 0) {
			/* The session's record and limits (a health check makes
			 * neither: it may be missing); nothing more where no login
			 * may happen (a limit refused it, a health check). */
			(void)allow_path(&p, cfg->runtime_dir);
			if (!m->refused)
				allow_all(&p, cfg);
			abi = landlock_prelogin_end(&p.ll, what, sizeof(what));
			m->writable_limited = abi > 0;
		}
		if (abi < 0) {
			errno = -abi;
			fatal("landlock");
		}
		log_debug("sandbox: %s", what);
	}
#if FTPSD_TEST_HOOKS
	/* Tests: what the root monitor, taken over before login, would run. */
	const char *run = getenv("FTPSD_TEST_EXEC_BEFORE_LOGIN");
	if (run != NULL) {
		pid_t pid = fork();
		if (pid == 0) {
			execl(run, run, (char *)NULL);
			_exit(errno == EACCES ? 13 : 127);
		}
		int status = 0;
		if (pid > 0)
			(void)waitpid(pid, &status, 0);
		log_warn("test hook: exec %s before login: exit status %d", run,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	/* And what it would write. */
	const char *write = getenv("FTPSD_TEST_CREATE_BEFORE_LOGIN");
	if (write != NULL) {
		int fd = open(write, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		log_warn("test hook: create %s before login: %s", write,
			 fd < 0 ? strerror(errno) : "created");
		if (fd >= 0)
			close(fd);
	}
#endif
}

bool mon_landlock_root_allowed(struct monitor *m, int root)
{
	struct stat st, up_st;
	int fd, up;
	bool found = false;

	if (!m->writable_limited)
		return true;
	/* Up from the root as Landlock looks (mount points crossed), by the
	 * user's own search rights, as the root was opened. */
	fd = dup(root);
	for (unsigned depth = 0; fd >= 0 && !found && depth < PATH_MAX / 2 && fstat(fd, &st) == 0;
	     depth++) {
		found = known(m, &st);
		if (found)
			break;
		up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (up < 0 || fstat(up, &up_st) < 0 ||
		    (up_st.st_dev == st.st_dev && up_st.st_ino == st.st_ino)) {
			if (up >= 0)
				close(up);
			break; /* "/", or a directory the user may not search */
		}
		close(fd);
		fd = up;
	}
	if (fd >= 0)
		close(fd);
	free(m->writable);
	m->writable = NULL;
	m->nwritable = 0;
	return found;
}

void mon_landlock(struct monitor *m, int root)
{
	char what[256];
	int abi;

	if (m->root_cfg->landlock == LANDLOCK_MODE_OFF)
		return;
	abi = landlock_monitor(&root, 1, &m->rec.dir, m->rec.dir >= 0 ? 1 : 0, m->cfg->active_mode,
			       what, sizeof(what));
	if (abi < 0) {
		errno = -abi;
		fatal("landlock");
	}
	if (abi == 0 && m->root_cfg->landlock == LANDLOCK_MODE_REQUIRED)
		fatalx("landlock = required: %s", what);
	log_info("sandbox: %s", what);
}
