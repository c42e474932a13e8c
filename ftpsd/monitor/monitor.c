/* The monitor: forks the protocol child, then answers its requests, one at a
 * time, each checked against the session's phase. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "file.h"
#include "handoff.h"
#include "ipc.h"
#include "landlock.h"
#include "log.h"
#include "memory.h"
#include "monitor.h"
#include "monitor_auth.h"
#include "monitor_fs.h"
#include "monitor_limits.h"
#include "monitor_record.h"
#include "monitor_tls.h"
#include "monitor_msg.h"
#include "monitor_session.h"
#include "policy.h"
#include "proctitle.h"
#include "sandbox.h"
#include "tls_proof.h"

/* A certificate chain in PEM */
#define CERT_MAX_SIZE (256 * 1024 - 1)

struct ipc_msg *mon_answer_begin(struct monitor *m, int32_t rc)
{
	struct ipc_msg *a = m->answer;

	ipc_init(a, IPC_ANSWER);
	ipc_put_i32(a, rc);
	return a;
}

void mon_answer_send(struct monitor *m, struct ipc_msg *a, unsigned flags)
{
	int r = ipc_send(m->sock, a);

	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	if (flags & MON_ANSWER_SECRET)
		explicit_bzero(a->payload, a->len);
	if (r < 0) {
		errno = -r;
		fatal("cannot answer the child");
	}
}

void mon_answer_rc(struct monitor *m, int32_t rc)
{
	mon_answer_send(m, mon_answer_begin(m, rc), 0);
}

void monitor_log(struct monitor *m, struct mon_request *req)
{
	int prio = (int)req->u.log.priority;

	/* The child may be compromised: its words are logged as its words,
	 * below error level, never as the monitor's. */
	prio = prio < LOG_WARNING ? LOG_WARNING : prio;
	if (req->u.log.event == IPC_EVENT_DATA_TLS_NOT_RESUMED) {
		/* Searchable: journalctl FTPSD_EVENT=data-tls-not-resumed */
		struct log_field f[] = { { "FTPSD_EVENT", "data-tls-not-resumed" } };
		log_event_as("child", prio, f, 1, req->u.log.line);
	} else {
		log_write_as("child", prio, req->u.log.line);
	}
	mon_answer_rc(m, 0);
}

void monitor_sign(struct monitor *m, struct mon_request *req)
{
	size_t outlen = 0;
	uint8_t out[2048];
	int r;

	if (config_identity(m->root_cfg, req->u.sign.identity) == NULL)
		fatalx("signature asked for TLS identity %u of %zu", req->u.sign.identity,
		       m->root_cfg->nhosts);
	r = monitor_tls_sign(req->u.sign.identity, req->u.sign.kind, req->u.sign.algo,
			     req->u.sign.flags, req->u.sign.input, req->u.sign.len, out, &outlen,
			     sizeof(out));
	struct ipc_msg *a = mon_answer_begin(m, r);
	ipc_put_bytes(a, out, r == 0 ? outlen : 0);
	mon_answer_send(m, a, 0);
}

/* Become the user: no way back to root after this. */
static int become_user(struct monitor *m, const struct account *acct)
{
	if (!m->launch->as_root)
		return 0;
	if (acct->system_user) {
		if (initgroups(acct->name, acct->gid) < 0)
			return -errno;
	} else if (setgroups(0, NULL) < 0) {
		return -errno;
	}
	if (setresgid(acct->gid, acct->gid, acct->gid) < 0 ||
	    setresuid(acct->uid, acct->uid, acct->uid) < 0)
		return -errno;

	uid_t ru, eu, su;
	if (getresuid(&ru, &eu, &su) < 0 || ru != acct->uid || eu != acct->uid || su != acct->uid)
		fatalx("user id change did not take effect");
	/* A change of ids resets these: the user must not ptrace the monitor. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("PR_SET_DUMPABLE");
	return 0;
}

/* A failed login: counted, logged, delayed by the monitor (a compromised
 * child cannot skip the delay), answered. */
static void login_failed(struct monitor *m, const char *user, int code, const char *why)
{
	m->failures++;
	struct log_field f[] = { { "FTPSD_USER", user }, { "FTPSD_EVENT", "login-failed" } };
	log_event(LOG_NOTICE, f, 2, "login failed for user %s from %s (%u of %u)%s", user,
		  m->launch->peer, m->failures, m->cfg->max_login_failures, why);
	unsigned ms = m->cfg->login_failure_delay_ms * m->failures;
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	mon_answer_rc(m, m->failures >= m->cfg->max_login_failures ? IPC_AUTH_LOCKED : code);
}

/* A login that cannot go on: the child is told, says 421 and ends. The
 * monitor's end would kill it (PR_SET_PDEATHSIG), perhaps before its reply
 * is out, so it waits for the child's next word (its last log line, sent
 * after the reply) or its end, for a while. */
static _Noreturn void login_abort(struct monitor *m, int32_t rc)
{
	struct pollfd p = { .fd = m->sock, .events = POLLIN };

	mon_answer_rc(m, rc);
	while (poll(&p, 1, 2000) < 0 && errno == EINTR)
		;
	exit(1);
}

/* Become the account and lock down; answer the child with code (0 after a
 * password, IPC_USER_LOGGED_IN after a certificate). */
static void login(struct monitor *m, const struct account *acct, bool tls, int code,
		  const char *how)
{
	uint8_t ticket_key[IPC_TICKET_KEY];
	unsigned identity = config_identity_of(m->root_cfg, m->cfg);
	unsigned max = acct->has_max_sessions ? acct->max_sessions : m->cfg->max_sessions_per_user;

	/* The user's slot, before anything of the login happens: none free,
	 * the session ends with a 421 that says which limit. */
	if (!limits_user(&m->lim, m->cfg->host_name != NULL ? m->cfg->host_name : "", acct->name,
			 max)) {
		char text[160];
		limits_text(LIMIT_USER, max, text, sizeof(text));
		struct log_field f[] = { { "FTPSD_USER", acct->name },
					 { "FTPSD_LIMIT", limits_name(LIMIT_USER) },
					 { "FTPSD_EVENT", "session-refused" } };
		log_event(LOG_NOTICE, f, 3, "login of %s refused: %s%s", acct->name, text,
			  acct->has_max_sessions ? " (users-file max-sessions=)" : "");
		m->refused = true;
		struct ipc_msg *a = mon_answer_begin(m, IPC_AUTH_TOO_MANY);
		ipc_put_str(a, text);
		mon_answer_send(m, a, 0);
		return;
	}
	monitor_auth_forget(); /* the hashes must not stay in the user's process */
	/* The usage file is root's: opened now, kept for the session. */
	int r = mon_quota_login(m, acct);
	if (r < 0) {
		login_abort(m, r);
	}
	/* As root still: the pre-login record goes, the user's directory for
	 * the new one is made. */
	record_login_prepare(m, m->lim.sessions, acct->uid, acct->gid);
	r = become_user(m, acct);

	if (r < 0) {
		errno = -r;
		fatal("cannot change to user %s", acct->name);
	}
	int root = open(acct->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		log_warn("login of %s: cannot open root %s: %s", acct->name, acct->root, strerror(errno));
		login_abort(m, -ENOENT);
	}
	if (!mon_landlock_root_allowed(m, root)) {
		struct log_field f[] = { { "FTPSD_USER", acct->name },
					 { "FTPSD_EVENT", "session-refused" } };
		log_event(LOG_WARNING, f, 2,
			  "login of %s refused: its root %s is not beneath a directory the "
			  "monitor may write before login (landlock-writable; or the users "
			  "file gained it after the session began)",
			  acct->name, acct->root);
		login_abort(m, -EACCES);
	}
	umask((mode_t)m->cfg->umask);
	monitor_fs_set_root(root, (acct->flags & IPC_USER_READ_ONLY) != 0);
	m->atomic_uploads = (acct->has_upload_mode ? acct->upload_mode : m->cfg->upload_mode) ==
			    UPLOAD_ATOMIC;
	m->rate_down = acct->has_download_rate ? acct->download_rate : m->cfg->download_rate;
	m->rate_up = acct->has_upload_rate ? acct->upload_rate : m->cfg->upload_rate;
	m->user_flags = acct->flags | (m->cfg->chmod ? 0 : IPC_USER_NO_CHMOD);
	if (acct->has_data_tls_reuse ? !acct->data_tls_reuse : !m->cfg->data_tls_reuse)
		m->user_flags |= IPC_USER_DATA_TLS_ANY;
	else
		m->user_flags &= ~(unsigned)IPC_USER_DATA_TLS_ANY;
	/* With data-tls-reuse every data handshake resumes: no signature can
	 * be needed from now on. */
	m->keys_dropped = !(m->user_flags & IPC_USER_DATA_TLS_ANY);
	if (tls && monitor_tls_ticket_key(identity, acct->name, &m->launch->peer_addr, ticket_key) < 0)
		fatalx("cannot derive the TLS ticket key");
	monitor_tls_forget_ticket_secret();
	/* Least privilege in time: where data connections must resume, no
	 * handshake needs a signature from now on (MON_KEY refuses them), so
	 * the keys go now rather than stay for the session's length. */
	if (m->keys_dropped) {
		monitor_tls_drop_keys();
		log_debug("private keys dropped");
	}
	m->phase = PHASE_LOGGEDIN;
	snprintf(m->user, sizeof(m->user), "%s", acct->name);
	snprintf(m->root, sizeof(m->root), "%s", acct->root);
	/* The record, written as the user from now on, and the title. */
	record_update(m);
	if (m->lim.sessions >= 0)
		close(m->lim.sessions);
	if (m->lim.runtime >= 0)
		close(m->lim.runtime);
	m->lim.sessions = m->lim.runtime = -1;
	log_set_field("FTPSD_USER", acct->name);
	/* A new usage file is filled as the user sees the tree, before the
	 * sandbox (a broken one is scanned again under it). */
	r = mon_quota_scan(m, root);
	if (r < 0) {
		log_warn("login of %s: cannot count the tree for its quota: %s", acct->name,
			 strerror(-r));
		login_abort(m, r);
	}
	struct log_field lf[] = { { "FTPSD_EVENT", "login" } };
	log_event(LOG_INFO, lf, 1, "login: user %s from %s%s, root %s%s", acct->name,
		  m->launch->peer, how, acct->root,
		  (acct->flags & IPC_USER_READ_ONLY) ? ", read-only" : "");
	/* Listing dates call tzset(), which must not open files from now on. */
	tzset();
	mon_landlock(m, root);
	r = sandbox_monitor(m->cfg->active_mode);
	if (r < 0) {
		errno = -r;
		fatal("seccomp");
	}
	struct ipc_msg *a = mon_answer_begin(m, code);
	ipc_put_u32(a, m->user_flags);
	ipc_put_bytes(a, ticket_key, tls ? sizeof(ticket_key) : 0);
	explicit_bzero(ticket_key, sizeof(ticket_key));
	mon_answer_send(m, a, MON_ANSWER_SECRET);
}

void monitor_auth(struct monitor *m, struct mon_request *req)
{
	const char *user = req->u.auth.user;
	bool tls = (req->u.auth.session & IPC_SESSION_TLS) != 0;
	struct account acct;
	int r;

	if (m->refused)
		fatalx("login attempt in a session refused by a limit");
	if (m->failures >= m->cfg->max_login_failures)
		fatalx("login attempt after %u failures", m->failures);
	if (m->user_commands > m->cfg->max_login_failures + 1)
		fatalx("login attempt after %u USER commands", m->user_commands);
	r = monitor_auth_check(m->cfg, m->launch->peer, user, req->u.auth.password, &acct);
	explicit_bzero(req->u.auth.password, sizeof(req->u.auth.password));
	if (r < 0) {
		login_failed(m, user, IPC_AUTH_FAILED, "");
		return;
	}
	/* The user's own TLS rule (RFC 4217 9.1), checked again here whatever the
	 * child said at USER time. */
	if (policy_login(m->cfg, acct.tls, tls) != 0) {
		login_failed(m, user, acct.tls == USER_TLS_FORBIDDEN ? IPC_AUTH_FORBIDS_TLS
								      : IPC_AUTH_NEEDS_TLS,
			     tls ? ": must not use TLS" : ": must use TLS");
		return;
	}
	login(m, &acct, tls, 0, "");
}

/* USER: what happens next. A valid client certificate pinned by this user
 * logs in at once (232); a user whose TLS rule the session breaks is told
 * before sending a password (RFC 4217 9.1); else a password is wanted. */
void monitor_user(struct monitor *m, struct mon_request *req)
{
	const char *user = req->u.auth.user;
	bool tls = (req->u.auth.session & IPC_SESSION_TLS) != 0;
	struct account acct;

	if (m->launch->health_check) {
		/* The balancer's own connection: no one's login. Said as a
		 * refusal (421), the session ends cleanly; the child has no
		 * other way to go on. */
		log_info("USER in a health check session: refused");
		struct ipc_msg *a = mon_answer_begin(m, IPC_AUTH_TOO_MANY);
		ipc_put_str(a, "A health check session cannot log in.");
		mon_answer_send(m, a, 0);
		return;
	}
	if (m->refused)
		fatalx("USER in a session refused by a limit");
	/* Each USER costs the monitor a search of the users file, and the
	 * child, which may be compromised, could send them without end: past
	 * one per allowed failure and one more (a user told to come back over
	 * TLS), the session is locked out as after too many failed passwords. */
	if (++m->user_commands > m->cfg->max_login_failures + 1) {
		if (m->user_commands > m->cfg->max_login_failures + 2)
			fatalx("USER after the lock-out");
		struct log_field f[] = { { "FTPSD_USER", user },
					 { "FTPSD_EVENT", "login-failed" } };
		log_event(LOG_NOTICE, f, 2,
			  "login failed for user %s from %s: more than %u USER commands", user,
			  m->launch->peer, m->cfg->max_login_failures + 1);
		mon_answer_rc(m, IPC_AUTH_LOCKED);
		return;
	}
	bool known = monitor_auth_anonymous(m->cfg, user, &acct) ||
		     monitor_auth_lookup(m->cfg, user, &acct) == 1;

	if (!known) {
		mon_answer_rc(m, IPC_USER_PASSWORD); /* unknown users look like known ones */
		return;
	}
	if (policy_login(m->cfg, acct.tls, tls) != 0) {
		mon_answer_rc(m, acct.tls == USER_TLS_FORBIDDEN ? IPC_AUTH_FORBIDS_TLS : IPC_AUTH_NEEDS_TLS);
		return;
	}
	if (acct.has_pin && m->cert_valid && memcmp(acct.pin, m->cert_sha256, 32) == 0 &&
	    acct.uid != 0 && acct.gid != 0 && !acct.locked) {
		login(m, &acct, tls, IPC_USER_LOGGED_IN, " by client certificate");
		return;
	}
	mon_answer_rc(m, IPC_USER_PASSWORD);
}

/* A part of the control handshake's messages, before IPC_CERT. */
void monitor_handshake(struct monitor *m, struct mon_request *req)
{
	if (req->u.part.len > TLS_PROOF_MAX - m->hs_len)
		fatalx("handshake messages longer than %d bytes from the child", TLS_PROOF_MAX);
	if (m->hs == NULL && (m->hs = malloc(TLS_PROOF_MAX)) == NULL)
		fatal("malloc");
	memcpy(m->hs + m->hs_len, req->u.part.data, req->u.part.len);
	m->hs_len += req->u.part.len;
	mon_answer_rc(m, 0);
}

/* The client's certificate, from the handshake messages the child sent:
 * the client must have signed this session's handshake with the
 * certificate's key (so the child cannot present a certificate it has merely
 * seen), and the chain must verify against tls-client-ca. The child's
 * opinion is not asked. */
void monitor_cert(struct monitor *m, struct mon_request *req)
{
	struct tls_proof proof;
	int r;

	(void)req;
	r = tls_proof_verify(m->hs, m->hs_len, m->proof_random, m->ours, m->n_ours, &proof);
	if (r < 0)
		log_info("client certificate rejected: %s", r == -EBADMSG ? "the handshake messages do not parse"
				: "no proof that the client holds its key");
	else
		r = monitor_tls_verify_chain(proof.der, proof.len, proof.count, m->cert_sha256);
	m->cert_valid = r == 0;
	if (r == 0)
		log_info("client certificate verified");
	else if (r != -EBADMSG)
		r = -EACCES;
	free(m->hs);
	m->hs = NULL;
	m->hs_len = 0;
	mon_answer_rc(m, r);
}

void monitor_stat(struct monitor *m, struct mon_request *req)
{
	struct stat st;
	int r = monitor_fs_stat(req->u.file.path, &st);
	struct ipc_msg *a = mon_answer_begin(m, r);

	ipc_put_u32(a, r == 0 ? (uint32_t)st.st_mode : 0);
	ipc_put_u64(a, r == 0 ? (uint64_t)st.st_size : 0);
	ipc_put_i64(a, r == 0 ? (int64_t)st.st_mtime : 0);
	mon_answer_send(m, a, 0);
}

void monitor_list(struct monitor *m, struct mon_request *req)
{
	int fd = -1, r;

	r = monitor_fs_list(req->u.file.path, req->u.file.format, req->u.file.flags, req->u.file.to,
			    &fd);
	struct ipc_msg *a = mon_answer_begin(m, r);
	a->fd = fd;
	mon_answer_send(m, a, 0);
}

/* HOST or TLS SNI chose a virtual host: its users, roots and policy apply. */
void monitor_host(struct monitor *m, struct mon_request *req)
{
	const struct config *c = config_identity(m->root_cfg, req->u.identity);

	if (c == NULL)
		fatalx("the child chose virtual host %u of %zu", req->u.identity, m->root_cfg->nhosts);
	m->cfg = c;
	log_info("virtual host %s", m->cfg->host_name != NULL ? m->cfg->host_name : "(default)");
	record_update(m);
	mon_answer_rc(m, 0);
}

void monitor_tls_info(struct monitor *m, struct mon_request *req)
{
	log_set_field("TLS_VERSION", req->u.tls.version);
	log_set_field("TLS_CIPHER", req->u.tls.cipher);
	mon_answer_rc(m, 0);
}

/* What the quota's scan counts of an entry named as path's last component:
 * a directory, or a regular file and its bytes (not an upload's hidden one). */
static void counted(const char *path, const struct stat *st, int64_t *bytes, int64_t *files)
{
	const char *slash = strrchr(path, '/'), *base = slash != NULL ? slash + 1 : path;

	*bytes = *files = 0;
	if (S_ISDIR(st->st_mode)) {
		*files = 1;
	} else if (S_ISREG(st->st_mode) && strncmp(base, UPLOAD_PREFIX, strlen(UPLOAD_PREFIX)) != 0) {
		*files = 1;
		*bytes = (int64_t)st->st_size;
	}
}

/* RNTO: what the tree gains (or loses, negative) by the rename. */
static void rename_delta(const char *from, const char *to, int64_t *bytes, int64_t *files)
{
	struct stat fs, ts;
	int64_t b, f;

	*bytes = *files = 0;
	if (monitor_fs_lstat(from, &fs) < 0)
		return;
	bool over = monitor_fs_lstat(to, &ts) == 0;
	if (over && fs.st_dev == ts.st_dev && fs.st_ino == ts.st_ino)
		return; /* two names of one file: rename(2) changes nothing */
	counted(to, &fs, bytes, files); /* from's file under its new name */
	counted(from, &fs, &b, &f);
	*bytes -= b;
	*files -= f;
	if (over) {
		counted(to, &ts, &b, &f); /* the replaced one */
		*bytes -= b;
		*files -= f;
	}
}

/* The changes a user makes to the tree, each logged with its outcome. Those
 * that change what the tree holds do so under the quota's lock. */
void monitor_change(struct monitor *m, struct mon_request *req)
{
	const char *path = req->u.file.path, *what = "?";
	struct quota_usage qu;
	struct stat st;
	int64_t bytes = 0, files = 0;
	bool q = false;
	int r = -EINVAL;

	if (req->type == IPC_MKDIR || req->type == IPC_RMDIR || req->type == IPC_DELETE ||
	    req->type == IPC_RENAME)
		q = mon_quota_begin(m, &qu);
	switch (req->type) {
	case IPC_MKDIR:
		what = "mkdir";
		files = 1;
		r = q && mon_quota_over(m, &qu, 0, 1) ? -EDQUOT : monitor_fs_mkdir(path);
		break;
	case IPC_RMDIR:
	case IPC_DELETE:
		what = req->type == IPC_RMDIR ? "rmdir" : "delete";
		if (q && monitor_fs_lstat(path, &st) == 0)
			counted(path, &st, &bytes, &files);
		bytes = -bytes;
		files = -files;
		r = monitor_fs_remove(path, req->type == IPC_RMDIR);
		break;
	case IPC_RENAME:
		what = "rename";
		if (q)
			rename_delta(path, req->u.file.to, &bytes, &files);
		r = q && mon_quota_over(m, &qu, bytes, files) ? -EDQUOT
							      : monitor_fs_rename(path, req->u.file.to);
		break;
	case IPC_CHMOD:
		what = "chmod";
		/* The child refuses SITE CHMOD itself; one that asks anyway is not
		 * obeyed. */
		if (m->user_flags & IPC_USER_NO_CHMOD)
			r = -EPERM;
		else
			r = monitor_fs_chmod(path, req->u.file.mode);
		break;
	case IPC_SETTIME:
		what = "set time";
		r = monitor_fs_settime(path, (time_t)req->u.file.mtime);
		break;
	default:
		break;
	}
	if (q) {
		if (r == 0)
			quota_add(&qu, bytes, files);
		mon_quota_end(m, &qu, r == 0 && (bytes != 0 || files != 0));
	}
	if (req->type == IPC_RENAME)
		log_info("%s %s to %s: %s", what, path, req->u.file.to, r < 0 ? strerror(-r) : "ok");
	else
		log_info("%s %s: %s", what, path, r < 0 ? strerror(-r) : "ok");
	mon_answer_rc(m, r);
}

#if FTPSD_TEST_HOOKS
/* Test builds only: do something the sandbox forbids, so that a test can
 * see the monitor killed for it, or refused (Landlock: EACCES). */
void monitor_test_hook(struct monitor *m, struct mon_request *req)
{
	log_warn("test hook %u", req->u.hook.n);
	if (req->u.hook.n == TEST_HOOK_MONITOR_EXEC) {
		char *argv[] = { "/bin/true", NULL };
		execv(argv[0], argv);
	} else if (req->u.hook.n == TEST_HOOK_MONITOR_OPEN ||
		   req->u.hook.n == TEST_HOOK_MONITOR_CREATE) {
		/* An absolute path, not resolved in the user's root: what
		 * only Landlock stops (seccomp allows openat2). */
		struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };
		if (req->u.hook.n == TEST_HOOK_MONITOR_CREATE) {
			how.flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
			how.mode = 0600;
		}
		long fd = syscall(SYS_openat2, AT_FDCWD, req->u.hook.path, &how, sizeof(how));
		mon_answer_rc(m, fd < 0 ? -errno : 0);
		if (fd >= 0)
			close((int)fd);
		return;
	} else if (req->u.hook.n == TEST_HOOK_MONITOR_SOCKET) {
		int fd = socket(strcmp(req->u.hook.path, "unix") == 0 ? AF_UNIX : AF_INET,
				SOCK_STREAM, 0);
		mon_answer_rc(m, fd < 0 ? -errno : 0);
		if (fd >= 0)
			close(fd);
		return;
	}
	mon_answer_rc(m, -errno);
}
#endif

/* Check one request against the table and the session, then do it:
 * anything unexpected ends the session, with the request named. */
static void mon_dispatch(struct monitor *m, struct ipc_msg *msg, struct mon_request *req)
{
	int r = monitor_decode(msg, m->phase, req);

	if (r == -EBADF)
		fatalx("the child sent a descriptor with a message of type %u", msg->type);
	if (r == -EPERM)
		fatalx("request of type %u not allowed in this phase", msg->type);
	if (r == -ENOTSUP)
		fatalx("unknown request type %u from the child", msg->type);
	if (r < 0)
		fatalx("malformed message of type %u from the child", msg->type);

	const struct mon_dispatch *d = monitor_request(req->type);
	const struct mon_dispatch *closer = d != NULL && d->until != 0 ? monitor_request(d->until) : NULL;
	unsigned t = req->type;

	if (d == NULL || t >= MON_TYPES || (d->until != 0 && (closer == NULL || d->until >= MON_TYPES)))
		fatalx("no handler for request type %u", msg->type);
	/* Counted before the checks: what was refused still counts. */
	if (m->served[t] < UINT_MAX)
		m->served[t]++;
	if (m->phase == PHASE_PRELOGIN && m->served_prelogin[t] < UINT_MAX)
		m->served_prelogin[t]++;
	if (d->max != 0 && m->served[t] > d->max)
		fatalx("the child asked for more than %u %ss", d->max, d->what);
	if ((d->flags & MON_ONCE) && m->served[t] > 1)
		fatalx("a second %s from the child", d->what);
	if ((d->flags & MON_ONCE_PRELOGIN) && m->phase == PHASE_PRELOGIN &&
	    m->served_prelogin[t] > 1)
		fatalx("the child asked for a second %s before login", d->what);
	/* The keys go at login where no signature can be needed any more
	 * (monitor_tls_drop_keys). */
	if ((d->flags & MON_KEY) && m->keys_dropped)
		fatalx("the child asked for a %s after login, where data connections resume", d->what);
	if (d->until != 0 && m->served[d->until] > 0)
		fatalx("%s after the %s", d->what, closer->what);
	d->handler(m, req);
	/* The message may have held a password. */
	explicit_bzero(msg->payload, msg->len);
}

static void reap_child(struct monitor *m)
{
	int status;
	pid_t p;

	do
		p = waitpid(m->child, &status, 0);
	while (p < 0 && errno == EINTR);
	if (p < 0) {
		log_warn("session ended (child not found)");
		return;
	}
	if (WIFSIGNALED(status))
		log_warn("session ended: child killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) != 0)
		log_info("session ended: child exited with status %d", WEXITSTATUS(status));
	else
		log_info("session ended");
}

/* The monitor's own limits, before anything else: no core dump and no
 * ptrace by the user's own uid (the key, the users file), and a write past
 * the launcher's RLIMIT_FSIZE is an error (EFBIG, an FTP 552), not a signal
 * that kills either process; the child inherits the last two. */
static void mon_limits(void)
{
#if FTPSD_TEST_HOOKS
	/* Tests: the fallback for filesystems without O_TMPFILE, on any. */
	if (getenv("FTPSD_TEST_NO_TMPFILE") != NULL)
		monitor_fs_test_no_tmpfile();
#endif
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("PR_SET_DUMPABLE");
	struct rlimit core = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		fatal("RLIMIT_CORE");
	if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR)
		fatal("SIGXFSZ");
}

/* Everything the child needs from the filesystem, read now, before it is
 * locked in its empty root: the certificates, the unprivileged user's ids
 * and the empty directory (as root). The keys are not: see mon_load_keys. */
static void mon_read_for_child(const struct config *cfg, const struct launch *l,
			       struct child_params *cp)
{
	int r;

	if (config_identities(cfg) > IPC_MAX_IDENTITIES)
		fatalx("at most %d virtual hosts", IPC_MAX_IDENTITIES - 1);
	cp->identities = config_identities(cfg);
	for (unsigned i = 0; i < cp->identities; i++) {
		const struct config *c = config_identity(cfg, i);
		if (c->tls_certificate == NULL)
			continue;
		r = file_read_all(c->tls_certificate, CERT_MAX_SIZE, 0, &cp->cert_pem[i],
				  &cp->cert_len[i]);
		if (r < 0) {
			errno = -r;
			fatal("cannot read tls-certificate %s", c->tls_certificate);
		}
	}
	if (!l->as_root)
		return;
	struct passwd *pw = getpwnam(cfg->unprivileged_user);
	struct stat st;
	if (pw == NULL)
		fatalx("unprivileged-user %s does not exist", cfg->unprivileged_user);
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		fatalx("unprivileged-user %s must not have uid or gid 0", cfg->unprivileged_user);
	cp->uid = pw->pw_uid;
	cp->gid = pw->pw_gid;
	if (stat(cfg->empty_dir, &st) < 0)
		fatal("empty-dir %s", cfg->empty_dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
		fatalx("empty-dir %s must be a directory owned by root and writable by no one else",
		       cfg->empty_dir);
	cp->empty_dir = cfg->empty_dir;
}

/* The monitor's own log files, opened now, as root: after login the
 * monitor may open nothing. */
static void mon_open_logs(struct monitor *m)
{
	if (m->cfg->xferlog == NULL)
		return;
	m->xferlog = open(m->cfg->xferlog,
			  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (m->xferlog < 0)
		fatal("xferlog %s", m->cfg->xferlog);
}

/* Fork the child, which runs child(cp) and never comes back, with one end of
 * a SOCK_SEQPACKET pair; the monitor keeps the other and lets go of the
 * client's connection. */
static void mon_fork_child(struct monitor *m, struct launch *l, struct child_params *cp,
			   child_entry child)
{
	int sv[2];

	/* Fresh for each session, and known to the child (it is not a secret):
	 * the one ServerHello random whose signature by a client key counts. */
	if (getrandom(m->proof_random, sizeof(m->proof_random), 0) != (ssize_t)sizeof(m->proof_random))
		fatal("getrandom");
	memcpy(cp->proof_random, m->proof_random, sizeof(cp->proof_random));

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("socketpair");
	cp->monitor_pid = getpid();
	cp->ipc_fd = sv[1];
	m->child = fork();
	if (m->child < 0)
		fatal("fork");
	if (m->child == 0) {
		close(sv[0]);
		/* An OFD lock lives as long as any copy of its descriptor: the
		 * slots are the monitor's alone, so the child lets go of its
		 * copies first thing (close_others would, a little later). */
		limits_close(&m->lim);
		/* The slots' hash key would let a child taken over search for
		 * addresses that share a victim's slots. */
		explicit_bzero(m->lim.key, sizeof(m->lim.key));
		child(cp);
	}
	close(sv[1]);
	close(l->conn_fd);

	/* The monitor holds few descriptors: a leak stops here. (Listings are
	 * bounded where they are written; files as large as the launcher's
	 * RLIMIT_FSIZE allows.) */
	struct rlimit nofile = { 64, 64 };
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 && !sandbox_under_valgrind())
		fatal("setrlimit");
	m->sock = sv[0];
	proctitle_set("ftpsd: monitor %s", l->peer);
}

/* The private keys, the ticket secret and the client CA: read only after
 * the fork, so that no copy of a key ever reaches the child. Each key is
 * checked against its certificate here (the child does not test it by a
 * signature: one signature is all it gets before login); the certificates'
 * text, the child's now, is freed. */
static void mon_load_keys(struct monitor *m, struct child_params *cp)
{
	const struct config *cfg = m->root_cfg;
	int r;

	for (unsigned i = 0; i < cp->identities; i++) {
		const struct config *c = config_identity(cfg, i);
		if (c->tls_key == NULL)
			continue;
		r = monitor_tls_load_key(i, c->tls_key);
		if (r < 0) {
			errno = -r;
			kill(m->child, SIGKILL);
			reap_child(m);
			fatal("cannot load tls-key %s", c->tls_key);
		}
	}
	monitor_tls_load_ticket_secret(cfg->tls_ticket_secret);
	for (unsigned i = 0; i < cp->identities; i++) {
		const struct config *c = config_identity(cfg, i);
		if (cp->cert_pem[i] == NULL)
			continue;
		r = monitor_tls_leaf(i, cp->cert_pem[i], cp->cert_len[i], m->ours[m->n_ours]);
		if (r < 0) {
			kill(m->child, SIGKILL);
			reap_child(m);
			fatalx("tls-certificate %s %s", c->tls_certificate,
			       r == -EKEYREJECTED ? "does not match tls-key" : "holds no certificate");
		}
		m->n_ours++;
		free(cp->cert_pem[i]);
	}

	/* One CA for client certificates: the global one, else the first host's. */
	const struct config *ca_cfg = cfg;
	for (size_t i = 0; ca_cfg->tls_client_certificate == CLIENT_CERT_OFF && i < cfg->nhosts; i++)
		ca_cfg = &cfg->hosts[i];
	if (ca_cfg->tls_client_certificate != CLIENT_CERT_OFF) {
		r = monitor_tls_load_ca(ca_cfg->tls_client_ca);
		if (r < 0) {
			errno = -r;
			fatal("cannot load tls-client-ca %s", ca_cfg->tls_client_ca);
		}
	}
}

static volatile sig_atomic_t mon_terminate;

static void on_sigterm(int sig)
{
	(void)sig;
	mon_terminate = 1;
}

/* SIGTERM (ftpsd-user lock, del; systemd stopping the service) ends the
 * session cleanly: it is blocked except while the monitor waits for the
 * child, so it never cuts a request in half. The child must say the 421:
 * the monitor may not signal it (other uids after login). */
static void mon_catch_sigterm(sigset_t *waiting)
{
	struct sigaction sa = { .sa_handler = on_sigterm };
	sigset_t term;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &term, waiting) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		fatal("SIGTERM");
	sigdelset(waiting, SIGTERM);
}

/* How long a child told to end has before the monitor ends without it. */
#define MON_SHUTDOWN_MS 5000

/* Zeroed memory for the loop's buffers (16 KiB messages, an 8 KiB request)
 * that costs a page only where a message reaches: calloc() would clear, and
 * so dirty, every page of each at once in a reused heap. */
static void *mon_alloc_untouched(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Serve the child, one request at a time, until it goes: then the session
 * ends (a transfer under way is recorded as cut). */
static _Noreturn void mon_loop(struct monitor *m, const sigset_t *waiting)
{
	struct ipc_msg *msg = mon_alloc_untouched(sizeof(*msg));
	struct mon_request *req = mon_alloc_untouched(sizeof(*req));
	struct timespec deadline = { 0, 0 };
	bool told = false;
	int r;

	m->answer = mon_alloc_untouched(sizeof(*m->answer));
	if (msg == NULL || req == NULL || m->answer == NULL)
		abort();
	for (;;) {
		if (mon_terminate && !told) {
			struct log_field f[] = { { "FTPSD_EVENT", "ended-by-administrator" } };
			log_event(LOG_NOTICE, f, 1, "session ended by the administrator (SIGTERM)");
			ipc_init(msg, IPC_SHUTDOWN);
			(void)ipc_send(m->sock, msg);
			told = true;
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_sec += MON_SHUTDOWN_MS / 1000;
		}
		struct pollfd p = { .fd = m->sock, .events = POLLIN };
		struct timespec left, now, *timeout = NULL;
		if (told) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left.tv_sec = deadline.tv_sec - now.tv_sec;
			left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
			if (left.tv_nsec < 0) {
				left.tv_nsec += 1000000000L;
				left.tv_sec--;
			}
			if (left.tv_sec < 0)
				left.tv_sec = left.tv_nsec = 0;
			timeout = &left;
		}
		/* The deadline holds whatever the child sends meanwhile. */
		r = told && left.tv_sec == 0 && left.tv_nsec == 0 ? 0 : ppoll(&p, 1, timeout, waiting);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			/* The child did not end: the session ends without it (it
			 * dies with us, PR_SET_PDEATHSIG). */
			log_warn("the child did not end within %d ms of being told", MON_SHUTDOWN_MS);
			mon_xfer_cut(m);
			exit(1);
		}
		r = ipc_recv(m->sock, msg);
		if (r == -ECONNRESET) {
			mon_xfer_cut(m);
			reap_child(m);
			exit(0);
		}
		if (r < 0) {
			/* After login the monitor may not be allowed to signal the child
			 * (other uids): it will see this socket close and exit anyway,
			 * so nothing waits for it here. */
			(void)kill(m->child, SIGKILL);
			errno = -r;
			fatal("bad message from the child");
		}
		/* Told to end, the child may only log, report its transfer's
		 * progress and end, and ask for a 552's figures: nothing new
		 * starts. */
		if (told && msg->type != IPC_LOG && msg->type != IPC_XFER &&
		    msg->type != IPC_PROGRESS && msg->type != IPC_QUOTA) {
			mon_answer_rc(m, -ESHUTDOWN);
			continue;
		}
		unsigned before = m->phase;
		mon_dispatch(m, msg, req);
		/* Logged in, the monitor idles for the session's length: what
		 * authentication, the filter's compilation and the deeper calls
		 * of login used goes back now, from this shallow frame. */
		if (before != PHASE_LOGGEDIN && m->phase == PHASE_LOGGEDIN)
			memory_release();
	}
}

/* The session limits, once the client's address is known: total and per
 * address. A refused session (or a runtime-dir that cannot be used: fail
 * closed) gets its 421 here with explicit TLS, where the greeting is
 * plain text; with implicit TLS the child says it after the handshake. */
static void mon_session_limits(struct monitor *m, struct child_params *cp)
{
	const struct config *cfg = m->root_cfg;
	const char *why = "";
	char text[160];
	/* landlock = required: both processes restricted (ABI 2), or no session. */
	int abi = cfg->landlock == LANDLOCK_MODE_REQUIRED ? landlock_abi() : 2;
	int r = limits_open(&m->lim, cfg->runtime_dir, &why);
	enum limit_kind k = LIMIT_NONE;

	if (abi < 2) {
		char have[200];
		landlock_describe(abi, have, sizeof(have));
		struct log_field f[] = { { "FTPSD_EVENT", "session-refused" } };
		log_event(LOG_ERR, f, 1, "session refused: landlock = required, and %s", have);
		snprintf(text, sizeof(text), "Service not available; closing the connection.");
	} else if (r < 0) {
		struct log_field f[] = { { "FTPSD_EVENT", "session-refused" } };
		log_event(LOG_ERR, f, 1, "session refused: runtime-dir %s: %s (%s)", cfg->runtime_dir,
			  why, strerror(-r));
		snprintf(text, sizeof(text), "Service not available; closing the connection.");
	} else {
		k = limits_session(&m->lim, cfg, &m->launch->peer_addr);
		if (k == LIMIT_NONE)
			return;
		limits_text(k, k == LIMIT_TOTAL ? cfg->max_sessions : cfg->max_sessions_per_address,
			    text, sizeof(text));
		struct log_field f[] = { { "FTPSD_LIMIT", limits_name(k) },
					 { "FTPSD_EVENT", "session-refused" } };
		log_event(LOG_NOTICE, f, 2, "session from %s refused: %s", m->launch->peer, text);
	}
	m->refused = true;
	if (m->launch->implicit_tls) {
		snprintf(cp->refusal, sizeof(cp->refusal), "%s", text);
		return;
	}
	char line[200];
	int n = snprintf(line, sizeof(line), "421 %s\r\n", text);
	(void)send(m->launch->conn_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	exit(0);
}

void monitor_run(const struct config *cfg, struct launch *l, child_entry child)
{
	struct monitor m = { .cfg = cfg, .root_cfg = cfg, .launch = l, .phase = PHASE_PRELOGIN,
			     .xferlog = -1, .xfer.up = { .fd = -1, .dirfd = -1 },
			     .quota = { .fd = -1, .root = -1 } };
	struct child_params cp = { .cfg = cfg, .conn_fd = l->conn_fd, .implicit_tls = l->implicit_tls };

	snprintf(cp.peer, sizeof(cp.peer), "%s", l->peer);
	cp.peer_addr = l->peer_addr;
	sigset_t waiting;

	mon_limits();
	if (l->health_check) {
		/* A balancer's check: no limit counts it, no record shows it, and
		 * no login may happen in it (as in a refused session). */
		m.lim.runtime = m.lim.sessions = m.lim.total = m.lim.address = m.lim.user =
			m.lim.rate = -1;
		m.refused = true;
	} else {
		mon_session_limits(&m, &cp);
	}
	mon_read_for_child(cfg, l, &cp);
	mon_open_logs(&m);
	mon_fork_child(&m, l, &cp, child);
	/* After the fork, so that the child keeps the default SIGTERM and an
	 * open mask. */
	mon_catch_sigterm(&waiting);
	atexit(record_remove);
	record_begin(&m, m.refused ? -1 : m.lim.sessions);
	mon_load_keys(&m, &cp);
	mon_landlock_prelogin(&m);
	mon_loop(&m, &waiting);
}
