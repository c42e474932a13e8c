/* Transfers: each one from the IPC_OPEN that starts it to the IPC_XFER
 * that ends it (or the end of the session), with its one record (the
 * journal and xferlog); an upload is put in place at its end only. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "monitor_fs.h"
#include "monitor_session.h"

/* A finished transfer, for its log entries. */
struct xfer_record {
	uint32_t direction;
	uint64_t bytes, ms;
	bool ascii, complete;
	const char *path;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* An upload opened under the quota's lock: what it may add. In place the
 * file is already there at its start size (STOR truncated it, a new one
 * exists), which the usage counts from now on; atomic, nothing changed yet,
 * and the file it would replace is given back only at the end. */
static uint64_t quota_opened(struct monitor *m, struct quota_usage *u, bool *changed)
{
	const struct fs_upload *up = &m->xfer.up;
	uint64_t base;

	if (!up->atomic) {
		quota_add(u, (int64_t)up->start - (int64_t)up->old_size, up->creates ? 1 : 0);
		mon_quota_unsettle(m, u);
		*changed = true;
		base = u->bytes;
	} else {
		/* The tree with this file at its start size in place of the old. */
		base = u->bytes - (up->old_size < u->bytes ? up->old_size : u->bytes) + up->start;
	}
	if (m->quota.max_bytes == 0)
		return UINT64_MAX;
	return base < m->quota.max_bytes ? m->quota.max_bytes - base : 0;
}

void monitor_open(struct monitor *m, struct mon_request *req)
{
	unsigned how = req->u.file.how;
	bool upload = how == IPC_OPEN_WRITE || how == IPC_OPEN_APPEND || how == IPC_OPEN_UNIQUE;
	uint64_t size = 0, allowance = UINT64_MAX;
	int fd = -1, r;

	if (how != IPC_OPEN_READ && m->xfer.open)
		fatalx("the child started a transfer of %s during that of %s", req->u.file.path,
		       m->xfer.path);
	if (upload) {
		/* Hidden upload files of sessions killed outright are stale once
		 * no upload can still be writing them: older than the idle timeout. */
		time_t stale = time(NULL) - (time_t)(m->cfg->idle_timeout_ms / 1000) - 60;
		struct quota_usage qu;
		bool q = mon_quota_begin(m, &qu), changed = false, creates = false;

		/* A new file where quota-files is used up is refused before anything
		 * is created, whatever the child checked before. */
		r = q ? monitor_fs_upload_check(req->u.file.path, how, req->u.file.offset,
						m->atomic_uploads, &creates)
		      : 0;
		if (r == 0 && creates && mon_quota_over(m, &qu, 0, 1))
			r = -EDQUOT;
		if (r == 0)
			r = monitor_fs_upload_open(req->u.file.path, how, req->u.file.offset,
						   m->atomic_uploads, stale, &m->xfer.up, &fd, &size);
		if (r == 0 && q)
			allowance = quota_opened(m, &qu, &changed);
		if (q)
			mon_quota_end(m, &qu, changed);
	} else {
		r = monitor_fs_open(req->u.file.path, how, req->u.file.offset, &fd, &size);
	}
	if (r < 0)
		log_info("open %s: %s", req->u.file.path, strerror(-r));
	if (r == 0 && how != IPC_OPEN_READ) {
		m->xfer.open = true;
		m->xfer.direction = upload ? IPC_XFER_RECEIVED : IPC_XFER_SENT;
		m->xfer.start_ms = mono_ms();
		snprintf(m->xfer.path, sizeof(m->xfer.path), "%s", req->u.file.path);
		record_xfer_start(m, how, size);
	}
	struct ipc_msg *a = mon_answer_begin(m, r);
	ipc_put_u64(a, size);
	ipc_put_u64(a, allowance);
	a->fd = fd;
	mon_answer_send(m, a, 0);
}

/* Active mode's data connection: made here, to the control connection's
 * client and no one else, whatever address PORT or EPRT named (the child
 * checked that it is the client's), and handed over while it connects.
 * The child has no connect (seccomp, Landlock): taken over, it reaches no
 * other host and no port below 1024. */
void monitor_connect(struct monitor *m, struct mon_request *req)
{
	struct sockaddr_storage a = m->launch->peer_addr;
	struct sockaddr_in *in = (struct sockaddr_in *)&a;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
	uint16_t port = htons((uint16_t)req->u.port);
	socklen_t len;
	int fd;

	if (!m->cfg->active_mode) {
		mon_answer_rc(m, -EPERM);
		return;
	}
	/* An IPv4 client on an IPv6 socket (::ffff:a.b.c.d): over IPv4, which
	 * works where new IPv6 sockets are V6ONLY too. */
	if (a.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		struct in_addr v4;
		memcpy(&v4, &in6->sin6_addr.s6_addr[12], sizeof(v4));
		memset(&a, 0, sizeof(a));
		in->sin_family = AF_INET;
		in->sin_addr = v4;
	}
	/* A PROXY header may name what no client has (0.0.0.0 connects to this
	 * host): no active connection there. */
	if (a.ss_family == AF_INET && in->sin_addr.s_addr != htonl(INADDR_ANY) &&
	    !IN_MULTICAST(ntohl(in->sin_addr.s_addr)) &&
	    in->sin_addr.s_addr != htonl(INADDR_BROADCAST)) {
		in->sin_port = port;
		len = sizeof(struct sockaddr_in);
	} else if (a.ss_family == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) &&
		   !IN6_IS_ADDR_MULTICAST(&in6->sin6_addr)) {
		in6->sin6_port = port;
		len = sizeof(struct sockaddr_in6);
	} else {
		log_info("active connection refused: the client's address %s cannot be connected to",
			 m->launch->peer);
		mon_answer_rc(m, -EADDRNOTAVAIL);
		return;
	}
	log_debug("active connection to the client, port %u", (unsigned)req->u.port);
	fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		mon_answer_rc(m, -errno);
		return;
	}
	if (connect(fd, (const struct sockaddr *)&a, len) < 0 && errno != EINPROGRESS) {
		int r = -errno;
		close(fd);
		mon_answer_rc(m, r);
		return;
	}
	struct ipc_msg *ans = mon_answer_begin(m, 0);
	ans->fd = fd;
	mon_answer_send(m, ans, 0);
}

void monitor_upload_check(struct monitor *m, struct mon_request *req)
{
	struct quota_usage qu;
	bool creates = false;
	int r = monitor_fs_upload_check(req->u.file.path, req->u.file.how, req->u.file.offset,
					m->atomic_uploads, &creates);

	if (r == 0 && creates && mon_quota_begin(m, &qu)) {
		if (mon_quota_over(m, &qu, 0, 1))
			r = -EDQUOT;
		mon_quota_end(m, &qu, false);
	}
	if (r < 0)
		log_info("upload to %s refused: %s", req->u.file.path, strerror(-r));
	mon_answer_rc(m, r);
}

/* The end of an upload, kept (commit) or not, under the quota's lock: the
 * growth is the file's own, never the child's figure. Atomic: put in place
 * only if the tree then holds no more than the quota (else dropped, the
 * previous file intact: -EDQUOT). In place: what was written stays, cut
 * back to what the quota lets it keep (-EDQUOT when cut). */
static int upload_end(struct monitor *m, bool commit)
{
	struct fs_upload *up = &m->xfer.up;
	struct quota_usage qu;
	struct stat st;
	bool q = mon_quota_begin(m, &qu), changed = false;
	int r = 0;

	if (!q) {
		if (commit)
			return monitor_fs_upload_commit(up, m->cfg->upload_fsync);
		monitor_fs_upload_discard(up);
		return 0;
	}
	if (monitor_fs_upload_stat(up, &st) < 0)
		st.st_size = 0;
	if (up->atomic) {
		bool regular = false;
		uint64_t old = monitor_fs_upload_target_size(up, &regular);
		int64_t growth = (int64_t)st.st_size - (int64_t)old, files = regular ? 0 : 1;
		if (!commit) {
			monitor_fs_upload_discard(up);
		} else if (mon_quota_over(m, &qu, growth, files)) {
			log_warn("upload of %s refused: %s would hold %lld bytes more, past its quota",
				 m->xfer.path, m->user, (long long)growth);
			monitor_fs_upload_discard(up);
			r = -EDQUOT;
		} else {
			r = monitor_fs_upload_commit(up, m->cfg->upload_fsync);
			if (r == 0) {
				quota_add(&qu, growth, files);
				changed = true;
			}
		}
	} else {
		int64_t growth = (int64_t)st.st_size - (int64_t)up->start;
		if (mon_quota_over(m, &qu, growth, 0)) {
			uint64_t keep = qu.bytes < m->quota.max_bytes ? m->quota.max_bytes - qu.bytes : 0;
			log_warn("upload of %s cut to %llu bytes: %s is at its quota", m->xfer.path,
				 (unsigned long long)(up->start + keep), m->user);
			if (monitor_fs_upload_truncate(up, up->start + keep) == 0)
				growth = (int64_t)keep;
			r = -EDQUOT;
		}
		quota_add(&qu, growth, 0);
		mon_quota_settle(m, &qu);
		changed = true;
		if (commit) {
			int c = monitor_fs_upload_commit(up, m->cfg->upload_fsync);
			r = r < 0 ? r : c;
		} else {
			monitor_fs_upload_discard(up);
		}
	}
	mon_quota_end(m, &qu, changed);
	return r;
}

/* One wu-ftpd xferlog line: what log analysers have read since the 1990s.
 * Whitespace in names would shift the fields, so it becomes '_'. */
static void write_xferlog(struct monitor *m, const struct xfer_record *x)
{
	char when[64], raw[2 * IPC_MAX_PATH + 2], name[4 * sizeof(raw)], user[4 * 256], line[20000];
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(when, sizeof(when), "Thu Jan  1 00:00:00 1970");
	size_t r = strlen(m->root);
	snprintf(raw, sizeof(raw), "%.*s%s", (int)(r > 0 && m->root[r - 1] == '/' ? r - 1 : r),
		 m->root, x->path);
	/* Controls, DEL, C1 and bad UTF-8 escaped as in every log; then spaces,
	 * which would shift the fields, become '_'. */
	log_escape(name, sizeof(name), raw);
	log_escape(user, sizeof(user), m->user);
	for (char *p = name; *p != '\0'; p++)
		if (*p == ' ')
			*p = '_';
	for (char *p = user; *p != '\0'; p++)
		if (*p == ' ')
			*p = '_';
	int n = snprintf(line, sizeof(line), "%s %llu %s %llu %s %c _ %c r %s ftp 0 * %c\n", when,
			 (unsigned long long)(x->ms + 999) / 1000, m->launch->peer,
			 (unsigned long long)x->bytes, name, x->ascii ? 'a' : 'b',
			 x->direction == IPC_XFER_SENT ? 'o' : 'i', user, x->complete ? 'c' : 'i');
	if (n > 0 && (size_t)n < sizeof(line) && write(m->xferlog, line, (size_t)n) != n)
		log_warn("xferlog: %s", strerror(errno));
}

/* The one record of a transfer that ended: a journal entry and an xferlog
 * line. */
static void record_xfer(struct monitor *m, const struct xfer_record *x, const char *why)
{
	char bytes[32], ms[32];
	bool sent = x->direction == IPC_XFER_SENT;

	snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)x->bytes);
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)x->ms);
	struct log_field f[] = {
		{ "FTPSD_FILE", x->path },
		{ "FTPSD_BYTES", bytes },
		{ "FTPSD_DIRECTION", sent ? "sent" : "received" },
		{ "FTPSD_DURATION_MSEC", ms },
		{ "FTPSD_COMPLETE", x->complete ? "yes" : "no" },
	};
	log_event(LOG_INFO, f, sizeof(f) / sizeof(f[0]), "%s %s: %s bytes in %s ms%s%s",
		  sent ? "sent" : "received", x->path, bytes, ms, x->complete ? "" : " (incomplete",
		  x->complete ? "" : why);
	if (m->xferlog >= 0)
		write_xferlog(m, x);
}

/* A transfer ended, as the child reports it: the bytes are the child's
 * figures (they never pass through the monitor). A complete upload is put
 * in place now, and only now; any other is dropped (atomic uploads). */
void monitor_xfer(struct monitor *m, struct mon_request *req)
{
	bool complete = (req->u.xfer.flags & IPC_XFER_COMPLETE) != 0;
	bool unsure = (req->u.xfer.flags & IPC_XFER_UNSURE) != 0;
	struct xfer_record x = { .direction = req->u.xfer.direction,
				 .bytes = req->u.xfer.bytes,
				 .ms = req->u.xfer.ms,
				 .ascii = (req->u.xfer.flags & IPC_XFER_ASCII) != 0,
				 .path = req->u.xfer.path };
	const char *why = ")";
	int r = 0;

	if (!m->xfer.open && complete)
		fatalx("the child reported a complete transfer of %s that never started",
		       req->u.xfer.path);
	if (m->xfer.open) {
		if (req->u.xfer.direction != m->xfer.direction)
			fatalx("the child ended a transfer of %s in the wrong direction", m->xfer.path);
		x.path = m->xfer.path;
		m->xfer.open = false;
		limits_share_leave(&m->lim, &m->xfer.share);
	}
	if (x.direction == IPC_XFER_RECEIVED && m->xfer.up.fd >= 0) {
		/* The policy is the monitor's to apply: without close_notify an
		 * upload may be cut short, and strict EOF keeps it out. */
		if (complete && unsure && m->cfg->data_tls_strict_eof)
			complete = false;
		if (complete) {
			r = upload_end(m, true);
			if (r == -EDQUOT) {
				complete = false;
				why = m->xfer.up.atomic
					      ? ": past the quota; discarded, the previous file is unchanged)"
					      : ": past the quota; cut back to it)";
			} else if (r < 0) {
				log_warn("upload of %s could not be put in place: %s", x.path, strerror(-r));
				complete = false;
				why = ": not put in place)";
			}
		} else {
			if (m->xfer.up.atomic)
				why = "; discarded, the previous file is unchanged)";
			(void)upload_end(m, false);
		}
	}
	x.complete = complete && !unsure;
	if (complete && unsure)
		why = ": no TLS close_notify, possibly truncated)";
	record_xfer(m, &x, why);
	record_xfer_end(m);
	mon_answer_rc(m, r);
}

/* The child ended during a transfer: its record is written all the same,
 * and an atomic upload is dropped. The bytes are what the monitor can see:
 * an upload's file size; a download's are unknown, so 0. */
void mon_xfer_cut(struct monitor *m)
{
	struct xfer_record x = { .direction = m->xfer.direction,
				 .ms = mono_ms() - m->xfer.start_ms,
				 .path = m->xfer.path };

	if (!m->xfer.open)
		return;
	if (x.direction == IPC_XFER_RECEIVED) {
		x.bytes = monitor_fs_upload_size(&m->xfer.up);
		(void)upload_end(m, false);
	}
	m->xfer.open = false;
	limits_share_leave(&m->lim, &m->xfer.share);
	record_xfer(m, &x, x.direction == IPC_XFER_RECEIVED && !m->atomic_uploads
				   ? ": the session ended during it)"
				   : ": the session ended during it; nothing of it was kept)");
}

