/* The session's quota: the user's usage file (quota.h), opened as root at
 * login and kept, read and changed under its lock by every change to the
 * tree (monitor.c) and at the end of every upload (monitor_xfer.c). Each
 * session of a user takes the same lock, so together they never go past
 * the quota by more than one transfer has in flight. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "monitor_auth.h"
#include "monitor_session.h"
#include "quota.h"

int mon_quota_login(struct monitor *m, const struct account *acct)
{
	uint64_t bytes = acct->has_quota_bytes ? acct->quota_bytes : m->cfg->quota_bytes;
	uint64_t files = acct->has_quota_files ? acct->quota_files : m->cfg->quota_files;
	int dfd;

	m->quota.fd = -1;
	m->quota.max_bytes = bytes;
	m->quota.max_files = files;
	if (bytes == 0 && files == 0)
		return 0;
	dfd = quota_dir_open(m->cfg->quota_dir, m->launch->as_root);
	if (dfd < 0) {
		log_warn("quota-dir %s: %s", m->cfg->quota_dir,
			 dfd == -EPERM ? "not owned by root, or writable by others" : strerror(-dfd));
		return dfd;
	}
	m->quota.fd = quota_file_open(dfd, acct->name, m->launch->as_root, &m->quota.empty);
	close(dfd);
	if (m->quota.fd < 0) {
		int r = m->quota.fd;
		log_warn("quota of %s in %s: %s", acct->name, m->cfg->quota_dir,
			 r == -EPERM ? "the usage file is not root's own" : strerror(-r));
		m->quota.fd = -1;
		return r;
	}
	return 0;
}

/* Under the lock: what the tree holds, counted afresh. */
static int rescan(struct monitor *m, struct quota_usage *u, const char *why)
{
	int r = quota_scan(m->quota.root, u);

	if (r < 0) {
		log_warn("quota of %s: cannot scan the tree: %s", m->user, strerror(-r));
		return r;
	}
	r = quota_write(m->quota.fd, u);
	if (r < 0)
		log_warn("quota of %s: cannot write the usage: %s", m->user, strerror(-r));
	log_info("quota of %s: %s; the tree holds %llu bytes in %llu files and directories", m->user,
		 why, (unsigned long long)u->bytes, (unsigned long long)u->files);
	return r;
}

int mon_quota_scan(struct monitor *m, int root)
{
	struct quota_usage u;
	int r;

	m->quota.root = root;
	if (m->quota.fd < 0)
		return 0;
	r = quota_lock(m->quota.fd);
	if (r < 0)
		return r;
	/* Another session may have scanned it meanwhile. */
	r = quota_read(m->quota.fd, &u);
	if (r == -ENODATA || r == -EBADMSG)
		r = rescan(m, &u, r == -ENODATA ? "first use" : "the usage file was broken");
	else if (r == 0 && u.unsettled > 0 && !quota_unsettled_live(m->quota.fd))
		r = rescan(m, &u, "an upload in place was cut off by the end of its session");
	quota_unlock(m->quota.fd);
	return r;
}

bool mon_quota_begin(struct monitor *m, struct quota_usage *u)
{
	int r;

	if (m->quota.fd < 0)
		return false;
	r = quota_lock(m->quota.fd);
	if (r < 0)
		fatalx("quota of %s: cannot lock the usage file: %s", m->user, strerror(-r));
	r = quota_read(m->quota.fd, u);
	if (r == -ENODATA || r == -EBADMSG)
		r = rescan(m, u, r == -ENODATA ? "the usage file was empty" : "the usage file was broken");
	else if (r == 0 && u->unsettled > 0 && !m->quota.unsettled &&
		 !quota_unsettled_live(m->quota.fd))
		r = rescan(m, u, "an upload in place was cut off by the end of its session");
	if (r < 0) {
		/* Fail closed: a usage nobody can read counts as a full quota. */
		u->bytes = m->quota.max_bytes != 0 ? m->quota.max_bytes : UINT64_MAX / 2;
		u->files = m->quota.max_files != 0 ? m->quota.max_files : UINT64_MAX / 2;
	}
	return true;
}

void mon_quota_end(struct monitor *m, const struct quota_usage *u, bool changed)
{
	if (m->quota.fd < 0)
		return;
	if (changed) {
		int r = quota_write(m->quota.fd, u);
		if (r < 0)
			log_warn("quota of %s: cannot write the usage: %s", m->user, strerror(-r));
	}
	quota_unlock(m->quota.fd);
}

void mon_quota_unsettle(struct monitor *m, struct quota_usage *u)
{
	int r = quota_unsettle(m->quota.fd, u);

	if (r < 0)
		log_warn("quota of %s: cannot lock the usage file: %s", m->user, strerror(-r));
	m->quota.unsettled = r == 0;
}

void mon_quota_settle(struct monitor *m, struct quota_usage *u)
{
	if (!m->quota.unsettled)
		return;
	quota_settle(m->quota.fd, u);
	m->quota.unsettled = false;
}

bool mon_quota_over(const struct monitor *m, const struct quota_usage *u, int64_t bytes,
		    int64_t files)
{
	if (m->quota.max_bytes != 0 && bytes > 0 &&
	    (u->bytes > m->quota.max_bytes || (uint64_t)bytes > m->quota.max_bytes - u->bytes))
		return true;
	if (m->quota.max_files != 0 && files > 0 &&
	    (u->files > m->quota.max_files || (uint64_t)files > m->quota.max_files - u->files))
		return true;
	return false;
}

/* The child asks only to write a 552's text: the user's own figures. */
void monitor_quota(struct monitor *m, struct mon_request *req)
{
	struct quota_usage u = { 0, 0, 0 };
	bool q = mon_quota_begin(m, &u);

	(void)req;
	if (q)
		mon_quota_end(m, &u, false);
	struct ipc_msg *a = mon_answer_begin(m, 0);
	ipc_put_u64(a, u.bytes);
	ipc_put_u64(a, m->quota.max_bytes);
	ipc_put_u64(a, u.files);
	ipc_put_u64(a, m->quota.max_files);
	mon_answer_send(m, a, 0);
}
