/* The session's record and the process title: see monitor_record.h. */
#include "monitor_record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "monitor_fs.h"
#include "monitor_session.h"
#include "proctitle.h"

/* For record_remove at exit: the one session of this process. */
static struct session_record *the_record;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Field 22 of /proc/self/stat: what tells this process from a later one
 * with the same pid. Read once, as root, before the sandbox. */
static unsigned long long start_time(void)
{
	char buf[1024];
	unsigned long long v = 0;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command name, which may hold anything: from the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	/* Field 3 (state) follows; 22 is 19 fields further. */
	p++;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (field == 22)
			return strtoull(p, NULL, 10);
		while (*p != ' ' && *p != '\0')
			p++;
	}
	return v;
}

static void human(uint64_t n, char *out, size_t size)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(out, size, "%llu B", (unsigned long long)n);
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(out, size, "%.1f %s", v, unit[u]);
}

static void title(struct monitor *m)
{
	struct session_record *r = &m->rec;
	char user[4 * 64], path[4 * 256], bytes[32];

	if (m->phase != PHASE_LOGGEDIN)
		return;
	log_escape(user, sizeof(user), m->user);
	if (!m->xfer.open) {
		proctitle_set("ftpsd: %s@%s idle", user, m->launch->peer);
		return;
	}
	log_escape(path, sizeof(path), m->xfer.path);
	human(r->bytes, bytes, sizeof(bytes));
	proctitle_set("ftpsd: %s@%s %s %s %s", user, m->launch->peer, r->command, path, bytes);
}

static void failed(struct session_record *r, const char *what, int e)
{
	if (!r->failed)
		log_warn("session record: %s: %s (said once; the session goes on)", what, strerror(e));
	r->failed = true;
}

void record_update(struct monitor *m)
{
	struct session_record *r = &m->rec;
	char tmp[32], size[32], user[4 * IPC_MAX_NAME], host[1024], path[4 * IPC_MAX_PATH];
	char *text;
	size_t cap = sizeof(path) + sizeof(user) + sizeof(host) + 512;

	title(m);
	if (r->dir < 0)
		return;
	text = malloc(cap);
	if (text == NULL)
		return;
	log_escape(user, sizeof(user), m->phase == PHASE_LOGGEDIN ? m->user : "");
	log_escape(host, sizeof(host), m->cfg->host_name != NULL ? m->cfg->host_name : "");
	log_escape(path, sizeof(path), m->xfer.open ? m->xfer.path : "");
	if (r->size_known && m->xfer.open)
		snprintf(size, sizeof(size), "%llu", (unsigned long long)r->size);
	else
		size[0] = '\0';
	int n = snprintf(text, cap,
			 "pid=%s\nstart=%llu\nuser=%s\nhost=%s\naddress=%s\nsince=%lld\nlogin=%lld\n"
			 "command=%s\npath=%s\nbytes=%llu\nsize=%s\nrate=%llu\nupdated=%lld\n",
			 r->name, r->start, user, host, m->launch->peer, (long long)r->since,
			 (long long)r->login, r->command, path,
			 (unsigned long long)(m->xfer.open ? r->bytes : 0), size,
			 (unsigned long long)(m->xfer.open ? r->rate : 0), (long long)time(NULL));
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->name);
	int fd = monitor_fs_openat2_beneath(r->dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
					    0644);
	if (fd < 0) {
		failed(r, "cannot create", -fd);
	} else {
		/* Whatever the session's umask: readable by the tools. */
		bool ok = fchmod(fd, 0644) == 0 && n > 0 && (size_t)n < cap &&
			  write(fd, text, (size_t)n) == n;
		int e = errno;
		close(fd);
		if (!ok || renameat(r->dir, tmp, r->dir, r->name) < 0) {
			failed(r, "cannot write", ok ? errno : e);
			(void)unlinkat(r->dir, tmp, 0);
		}
	}
	free(text);
}

/* sessions/<uid>, made if missing and owned by uid: 0755, a directory,
 * opened without following a symlink. */
static int open_uid_dir(int sessions, uid_t uid, gid_t gid, const char **why)
{
	char name[32];
	struct stat st;

	snprintf(name, sizeof(name), "%u", (unsigned)uid);
	/* 0755 whatever the umask (the unit's is 0077): the tools list it. */
	if (mkdirat(sessions, name, 0755) == 0) {
		if (fchmodat(sessions, name, 0755, 0) < 0) {
			*why = "cannot set its directory's mode";
			return -errno;
		}
	} else if (errno != EEXIST) {
		*why = "cannot make its directory";
		return -errno;
	}
	int fd = openat(sessions, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = "cannot open its directory";
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		*why = "cannot stat its directory";
		int e = errno;
		close(fd);
		return -e;
	}
	/* As root: the directory is the user's, whoever made it; its mode is
	 * set while it is still ours (no CAP_FOWNER is needed). */
	if (geteuid() == 0 && st.st_uid != uid &&
	    (fchmod(fd, 0755) < 0 || fchown(fd, uid, gid) < 0 || fstat(fd, &st) < 0)) {
		*why = "cannot give its directory to the user";
		int e = errno;
		close(fd);
		return -e;
	}
	if (st.st_uid != uid || (st.st_mode & 022) != 0) {
		*why = "its directory is not the user's, or writable by others";
		close(fd);
		return -EPERM;
	}
	return fd;
}

void record_begin(struct monitor *m, int sessions)
{
	struct session_record *r = &m->rec;
	const char *why = "";

	the_record = r;
	snprintf(r->name, sizeof(r->name), "%ld", (long)getpid());
	r->start = start_time();
	r->since = time(NULL);
	r->command = "login";
	r->dir = -1;
	if (sessions < 0)
		return;
	/* Not logged in: sessions/0, root's (in development mode, ours). */
	int fd = open_uid_dir(sessions, geteuid() == 0 ? 0 : geteuid(), geteuid() == 0 ? 0 : getegid(),
			      &why);
	if (fd < 0) {
		failed(r, why, -fd);
		return;
	}
	r->dir = fd;
	record_update(m);
}

void record_login_prepare(struct monitor *m, int sessions, uid_t uid, gid_t gid)
{
	struct session_record *r = &m->rec;
	const char *why = "";

	if (r->dir >= 0) {
		(void)unlinkat(r->dir, r->name, 0);
		close(r->dir);
		r->dir = -1;
	}
	r->login = time(NULL);
	r->command = "idle";
	if (sessions < 0)
		return;
	/* In development mode the files are ours, whatever the users file says. */
	if (geteuid() != 0) {
		uid = geteuid();
		gid = getegid();
	}
	int fd = open_uid_dir(sessions, uid, gid, &why);
	if (fd < 0)
		failed(r, why, -fd);
	else
		r->dir = fd;
}

void record_xfer_start(struct monitor *m, unsigned how, uint64_t size)
{
	struct session_record *r = &m->rec;

	r->command = how == IPC_OPEN_SEND ? "RETR" : how == IPC_OPEN_WRITE ? "STOR" :
		     how == IPC_OPEN_APPEND ? "APPE" : "STOU";
	r->bytes = r->rate = r->rate_bytes = 0;
	r->rate_ms = now_ms();
	r->size = size;
	r->size_known = how == IPC_OPEN_SEND;
	record_update(m);
}

void record_xfer_end(struct monitor *m)
{
	struct session_record *r = &m->rec;

	r->command = "idle";
	r->bytes = r->rate = 0;
	r->size_known = false;
	record_update(m);
}

/* IPC_PROGRESS: the child's count, for the record and the title only
 * (nothing is decided on it); the answer's rate is 0, no limit. */
/* The rate this transfer must keep under: the user's download-rate or
 * upload-rate, shared evenly among the user's transfers in that direction
 * (counted by the kernel: lock slots held while they run). 0: none. */
static uint64_t share_rate(struct monitor *m)
{
	bool up = m->xfer.direction == IPC_XFER_RECEIVED;
	uint64_t total = up ? m->rate_up : m->rate_down;

	if (!m->xfer.open || total == 0)
		return 0;
	/* Counting probes RATE_SHARE_SLOTS locks: at most once a second,
	 * however often the child asks. */
	uint64_t now = now_ms();
	if (m->xfer.share.held && m->xfer.share_rate != 0 && now - m->xfer.share_ms < 1000)
		return m->xfer.share_rate;
	if (!m->xfer.share.held)
		(void)limits_share_join(&m->lim, &m->xfer.share,
					m->cfg->host_name != NULL ? m->cfg->host_name : "", m->user, up);
	uint64_t share = total / limits_share_count(&m->lim, &m->xfer.share);
	m->xfer.share_ms = now;
	m->xfer.share_rate = share > 0 ? share : 1;
	return m->xfer.share_rate;
}

void monitor_progress(struct monitor *m, struct mon_request *req)
{
	struct session_record *r = &m->rec;

	uint64_t now = now_ms();

	/* About once a second, whatever a child taken over sends: one write
	 * of the record per 500 ms at most. */
	if (m->xfer.open && now - r->rate_ms >= 500) {
		r->bytes = req->u.progress;
		if (r->bytes >= r->rate_bytes)
			r->rate = (r->bytes - r->rate_bytes) * 1000 / (now - r->rate_ms);
		r->rate_ms = now;
		r->rate_bytes = r->bytes;
		record_update(m);
	}
	struct ipc_msg *a = mon_answer_begin(m, 0);
	ipc_put_u64(a, share_rate(m));
	mon_answer_send(m, a, 0);
}

void record_remove(void)
{
	if (the_record != NULL && the_record->dir >= 0)
		(void)unlinkat(the_record->dir, the_record->name, 0);
}
