/* The FTP session: the event loop, the control connection and the command
 * table. Each command is checked against the session state (TLS policy,
 * login, arguments) in one place before its handler runs. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "ftp_codes.h"
#include "child_mon.h"
#include "child_session.h"
#include "child_tls.h"
#include "ftp_parse.h"
#include "ipc.h"
#include "log.h"
#include "policy.h"
#include "proctitle.h"
#include "tls_proof.h"

#define XFER_BUF_SIZE (256 * 1024)

enum {
	CMD_BEFORE_TLS = 1 << 0, /* runs before TLS whatever allow-before-tls says */
	CMD_LOGIN = 1 << 1,      /* needs a logged-in user */
	CMD_ARG = 1 << 2,        /* argument required */
	CMD_NOARG = 1 << 3,      /* argument forbidden */
	CMD_IN_XFER = 1 << 4,    /* answered while a transfer runs */
};

struct command {
	const char *verb;
	unsigned flags;
	void (*run)(struct session *s, char *arg);
};

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void session_end(struct session *s, int status)
{
	data_end(s);
	if (s->ctl_tls != NULL)
		(void)tls_bye(s->ctl_tls);
	_exit(status);
}

/* Write all of buf to the control connection, waiting at most the idle timeout. */
static void ctl_write(struct session *s, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n;
		if (s->ctl_tls != NULL) {
			n = tls_send(s->ctl_tls, buf + off, len - off);
		} else {
			n = send(s->ctl, buf + off, len - off, MSG_NOSIGNAL);
			if (n < 0)
				n = errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		}
		if (n == -EAGAIN) {
			struct pollfd p = { .fd = s->ctl, .events = POLLOUT };
			if (poll(&p, 1, (int)s->cfg->idle_timeout_ms) <= 0)
				_exit(0);
			continue;
		}
		if (n < 0)
			_exit(0);
		off += (size_t)n;
	}
}

/* The control connection is a Telnet stream (RFC 854): a 0xff byte in a
 * name goes out doubled. */
static void ctl_write_telnet(struct session *s, const char *text)
{
	char out[2048];
	size_t j = 0;

	for (const char *p = text; *p != '\0'; p++) {
		if (j + 2 >= sizeof(out)) {
			ctl_write(s, out, j);
			j = 0;
		}
		out[j++] = *p;
		if ((unsigned char)*p == 0xff)
			out[j++] = *p;
	}
	ctl_write(s, out, j);
}

/* One reply line: "code text" ends a reply, "code-text" starts a longer one. */
__attribute__((format(printf, 4, 0))) static void reply_line(struct session *s, int code, char sep, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%d%c", code, sep);

	vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	/* Nothing a client put in a reply (a path, a name) may end it early. */
	for (char *p = line + n; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	strcat(line, "\r\n");
	ctl_write_telnet(s, line);
}

void reply(struct session *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(s, code, ' ', fmt, ap);
	va_end(ap);
}

/* The first line of a reply of several lines; reply() ends it. */
static void reply_start(struct session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_start(struct session *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(s, code, '-', fmt, ap);
	va_end(ap);
}

/* Lines inside a reply of several lines, as they are. */
static void reply_raw(struct session *s, const char *text)
{
	ctl_write_telnet(s, text);
}

/* A refusal by policy: its code and text come from one table (policy.c). */
static void refuse(struct session *s, enum policy_verdict v)
{
	int code;
	const char *text = policy_reply(v, &code);

	reply(s, code, "%s", text);
}

/* Drive a control handshake to its end, bounded by the login timeout. */
static int ctl_handshake(struct session *s)
{
	uint64_t deadline = now_ms() + s->cfg->login_timeout_ms;

	for (;;) {
		int r = tls_handshake(s->ctl_tls);
		if (r != -EAGAIN)
			return r;
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = s->ctl, .events = tls_want_write(s->ctl_tls) ? POLLOUT : POLLIN };
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return -errno;
	}
}

static void send_ticket(struct session *s);

/* A virtual host was chosen (HOST or SNI): its configuration applies. */
static void select_host(struct session *s, unsigned identity)
{
	s->identity = identity;
	s->cfg = config_identity(s->root_cfg, identity);
	mm_host(identity);
	log_info("virtual host %s", s->cfg->host_name != NULL ? s->cfg->host_name : "(default)");
}

/* TLS 1.3 tickets come after login, under this user's key
 * (tls_login_tickets), so that a user's sessions from one address can
 * resume each other's. But GnuTLS clients such as wget take the session they
 * will resume once, right after the handshake, waiting a round trip and
 * 60 ms for a ticket: a client that says nothing for about that long gets
 * one now, under this process's key, and its data connections then resume
 * this connection's tickets only. Clients that go on at once (curl, rclone,
 * lftp, ...) get theirs after login. Under implicit TLS every client waits
 * for the 220 first: each gets one now. */
static void ticket_before_login(struct session *s, bool implicit)
{
	if (!implicit) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		int ms = 20;
		if (getsockopt(s->ctl, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
			ms += (int)(ti.tcpi_rtt / 1000 > 1000 ? 1000 : ti.tcpi_rtt / 1000);
		struct pollfd p = { .fd = s->ctl, .events = POLLIN };
		if (tls_pending(s->ctl_tls) > 0 || poll(&p, 1, ms) != 0)
			return;
	}
	send_ticket(s);
}

static void start_tls(struct session *s, bool implicit)
{
	char desc[64];

	s->ctl_tls = tls_new(s->ctl, false, s->identity);
	int r = ctl_handshake(s);
	if (r < 0) {
		/* RFC 4217 9.1/9.3: a handshake that failed before the server said
		 * anything leaves the connection in clear: say 421 there. One that
		 * failed midway cannot be answered in any protocol: drop it. */
		bool clear = tls_bytes_sent(s->ctl_tls) == 0;
		log_info("control TLS handshake failed%s", clear ? " before any reply" : "");
		tls_free(s->ctl_tls);
		s->ctl_tls = NULL;
		if (clear)
			reply(s, FTP_TLS_FAIL, "TLS negotiation failed; closing the connection.");
		_exit(0);
	}
	log_info("control connection: %s", tls_describe(s->ctl_tls, desc, sizeof(desc)));
	/* Under TLS 1.3 the client speaks last in the handshake: acknowledge
	 * its Finished now, so that its next command is not held back by
	 * Nagle's algorithm meeting our delayed ACK (some 40 ms per login). */
	int one = 1;
	(void)setsockopt(s->ctl, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	ticket_before_login(s, implicit);
	int sni = tls_sni_identity(s->ctl_tls);
	if (sni >= 0 && (unsigned)sni != s->identity) {
		if (s->host_given) {
			/* RFC 7151: HOST and the TLS server name must agree. */
			reply(s, FTP_TLS_FAIL, "The TLS server name does not match HOST; closing the connection.");
			session_end(s, 0);
		}
		select_host(s, (unsigned)sni);
	}
	const char *version, *cipher;
	tls_names(s->ctl_tls, &version, &cipher);
	mm_tls_info(version, cipher);

	const uint8_t *msgs;
	size_t msgs_len;
	if (tls_has_peer_certificate(s->ctl_tls) &&
	    (tls_handshake_messages(s->ctl_tls, &msgs, &msgs_len) < 0 || mm_cert(msgs, msgs_len) < 0) &&
	    s->cfg->tls_client_certificate_invalid == CERT_INVALID_CLOSE) {
		/* RFC 4217 9.1: a certificate the server does not accept may end
		 * the session at once. */
		reply(s, FTP_TLS_FAIL, "Client certificate not accepted; closing the connection.");
		session_end(s, 0);
	}
}

static struct policy_state policy_state(const struct session *s)
{
	return (struct policy_state){ .tls = s->ctl_tls != NULL,
				      .secured = s->secured,
				      .logged_in = s->logged_in,
				      .pbsz = s->pbsz,
				      .prot_private = s->prot_private };
}

static bool arg_is(const char *arg, const char *want)
{
	return arg != NULL && strcasecmp(arg, want) == 0;
}

/* ---------------------------------------------------------------- commands */

static void cmd_auth(struct session *s, char *arg)
{
	bool private;

	struct policy_state st = policy_state(s);
	enum policy_verdict v = policy_auth(s->cfg, &st);
	if (v != POLICY_ALLOW) {
		refuse(s, v);
		return;
	}
	if (arg_is(arg, "TLS") || arg_is(arg, "TLS-C"))
		private = false;
	else if (arg_is(arg, "SSL") || arg_is(arg, "TLS-P"))
		/* Private by default, unless the policy allows only Clear data. */
		private = !(s->cfg->data_tls == TLS_POLICY_OFF &&
			    s->cfg->data_tls_listings == TLS_POLICY_OFF);
	else {
		reply(s, FTP_BADAUTH, "AUTH type not supported; use AUTH TLS.");
		return;
	}
	if (s->in.len > 0) {
		/* Bytes sent in clear behind AUTH must not run as if they came
		 * through TLS (the STARTTLS command injection). */
		log_warn("discarding %zu bytes sent in clear after AUTH", s->in.len);
		s->in.len = 0;
	}
	reply(s, FTP_AUTHOK, "Proceed with negotiation.");
	start_tls(s, false);
	s->secured = true;
	s->prot_private = private;
	s->pbsz = private; /* AUTH SSL implies a protected data channel */
}

/* CCC (RFC 4217 section 5): the control connection goes back to clear after
 * this reply; data protection stays as it is. */
static void cmd_ccc(struct session *s, char *arg)
{
	struct policy_state st = policy_state(s);
	uint64_t deadline = now_ms() + s->cfg->idle_timeout_ms;

	enum policy_verdict v = policy_ccc(s->cfg, &st);
	if (v != POLICY_ALLOW) {
		refuse(s, v);
		return;
	}
	/* The last ticket this connection can send: data connections after CCC
	 * still resume the control session with it. */
	send_ticket(s);
	reply(s, FTP_CCCOK, "Clearing the control connection.");
	for (;;) {
		int r = tls_bye(s->ctl_tls);
		if (r != -EAGAIN)
			break;
		struct pollfd p = { .fd = s->ctl, .events = POLLOUT };
		uint64_t now = now_ms();
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			_exit(0);
	}
	tls_free(s->ctl_tls);
	s->ctl_tls = NULL;
	/* A client that answers with its own close_notify sends it in what is
	 * now the clear stream: it is skipped there (ctl_read). */
	s->after_ccc = true;
	log_info("control connection cleared (CCC)");
}

static void cmd_pbsz(struct session *s, char *arg)
{
	if (s->ctl_tls == NULL) {
		reply(s, FTP_BADSEQ, "PBSZ needs AUTH first.");
		return;
	}
	if (strspn(arg, "0123456789") != strlen(arg)) {
		reply(s, FTP_BADARGS, "PBSZ takes a number.");
		return;
	}
	s->pbsz = true;
	reply(s, FTP_PBSZOK, "PBSZ=0");
}

static void cmd_prot(struct session *s, char *arg)
{
	struct policy_state st = policy_state(s);
	char level = strlen(arg) == 1 ? arg[0] : '?';

	enum policy_verdict v = policy_prot(s->cfg, &st, level);

	if (v != POLICY_ALLOW) {
		refuse(s, v);
		return;
	}
	s->prot_private = level == 'P' || level == 'p';
	reply(s, FTP_PROTOK, "Protection level set to %s.", s->prot_private ? "Private" : "Clear");
}

static void logged_in(struct session *s, const struct mm_login *login)
{
	s->logged_in = true;
	s->read_only = (login->flags & IPC_USER_READ_ONLY) != 0;
	s->no_chmod = (login->flags & IPC_USER_NO_CHMOD) != 0;
	s->data_tls_reuse = (login->flags & IPC_USER_DATA_TLS_ANY) == 0;
	if (s->data_tls_reuse)
		tls_retire_key();
	/* Before the reply: a TLS 1.3 client reads this user's first ticket
	 * with it (send_ticket). */
	tls_login_tickets(s->ctl_tls, login->ticket_key, login->ticket_key_len);
	if (s->ctl_tls != NULL)
		send_ticket(s);
	snprintf(s->cwd, sizeof(s->cwd), "/");
	proctitle_set("ftpsd: child %s@%s", s->user, s->peer);
}

static void cmd_user(struct session *s, char *arg)
{
	if (s->logged_in) {
		reply(s, FTP_BADSEQ, "Already logged in.");
		return;
	}
	if (strlen(arg) >= sizeof(s->user)) {
		reply(s, FTP_BADARGS, "User name too long.");
		return;
	}
	for (const char *p = arg; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == ':') {
			reply(s, FTP_BADARGS, "Invalid user name.");
			return;
		}
	}
	snprintf(s->user, sizeof(s->user), "%s", arg);
	s->user_given = false;
	struct mm_login login = { 0 };
	int r = mm_user(s->user, s->ctl_tls != NULL, &login);
	if (r == IPC_USER_LOGGED_IN) {
		logged_in(s, &login);
		explicit_bzero(&login, sizeof(login));
		reply(s, FTP_LOGIN_CERTOK, "User logged in, authorized by security data exchange.");
		return;
	}
	if (r == IPC_AUTH_NEEDS_TLS) {
		reply(s, FTP_LOGINERR, "User %s must log in over TLS: send AUTH TLS first.", s->user);
		return;
	}
	if (r == IPC_AUTH_FORBIDS_TLS) {
		reply(s, FTP_LOGINERR, "User %s must log in without TLS.", s->user);
		return;
	}
	if (r == IPC_AUTH_LOCKED) {
		reply(s, FTP_LOGINERR, "Login incorrect.");
		reply(s, FTP_CLOSING, "Too many login attempts; closing the connection.");
		session_end(s, 0);
	}
	s->user_given = true;
	reply(s, FTP_GIVEPWORD, "Password required for %s.", s->user);
}

static void cmd_pass(struct session *s, char *arg)
{
	struct mm_login login = { 0 };
	int r;

	if (s->logged_in) {
		reply(s, FTP_BADSEQ, "Already logged in.");
		return;
	}
	if (!s->user_given) {
		reply(s, FTP_NEEDUSER, "Login with USER first.");
		return;
	}
	r = mm_auth(s->user, arg != NULL ? arg : "", s->ctl_tls != NULL, &login);
	if (arg != NULL)
		explicit_bzero(arg, strlen(arg));
	s->user_given = false;
	if (r == IPC_AUTH_FAILED) {
		reply(s, FTP_LOGINERR, "Login incorrect.");
		return;
	}
	if (r == IPC_AUTH_NEEDS_TLS) {
		reply(s, FTP_LOGINERR, "User %s must log in over TLS.", s->user);
		return;
	}
	if (r == IPC_AUTH_FORBIDS_TLS) {
		reply(s, FTP_LOGINERR, "User %s must log in without TLS.", s->user);
		return;
	}
	if (r == IPC_AUTH_LOCKED) {
		reply(s, FTP_LOGINERR, "Login incorrect.");
		reply(s, FTP_CLOSING, "Too many login failures; closing the connection.");
		session_end(s, 0);
	}
	if (r < 0) {
		reply(s, FTP_CLOSING, "Login failed: the home directory is not available.");
		session_end(s, 0);
	}
	logged_in(s, &login);
	explicit_bzero(&login, sizeof(login));
	reply(s, FTP_LOGINOK, "Login successful.");
}

static void cmd_quit(struct session *s, char *arg)
{
	reply(s, FTP_GOODBYE, "Goodbye.");
	session_end(s, 0);
}

static void cmd_noop(struct session *s, char *arg)
{
	reply(s, FTP_NOOPOK, "NOOP ok.");
}

static void cmd_allo(struct session *s, char *arg)
{
	reply(s, FTP_ALLOOK, "ALLO is not needed here.");
}

static void cmd_acct(struct session *s, char *arg)
{
	reply(s, FTP_COMMANDNOTIMPL, "ACCT not implemented.");
}

static void cmd_smnt(struct session *s, char *arg)
{
	reply(s, FTP_COMMANDNOTIMPL, "SMNT not implemented.");
}

/* REIN: before login, forget USER; after it, the monitor has become the user
 * for good (privileges cannot come back), so a new login needs a new
 * connection. */
static void cmd_rein(struct session *s, char *arg)
{
	if (s->logged_in) {
		reply(s, FTP_COMMANDNOTIMPL, "REIN after login is not supported: reconnect to log in again.");
		return;
	}
	s->user_given = false;
	s->user[0] = '\0';
	data_close(s);
	reply(s, FTP_GREET, "Service ready for new user.");
}

/* HOST (RFC 7151): before USER. With no virtual hosts configured, every
 * well-formed name is this server. */
static void cmd_host(struct session *s, char *arg)
{
	if (s->logged_in || s->user_given) {
		reply(s, FTP_BADSEQ, "HOST must come before USER.");
		return;
	}
	size_t n = strlen(arg);
	if (n == 0 || n > 255 || strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:") != n) {
		reply(s, FTP_BADARGS, "Bad host name.");
		return;
	}
	if (s->root_cfg->nhosts > 0) {
		const struct config *h = config_host(s->root_cfg, arg);
		if (h == NULL) {
			reply(s, FTP_BADPARAM, "Unknown host %s.", arg);
			return;
		}
		unsigned id = config_identity_of(s->root_cfg, h);
		int sni = s->ctl_tls != NULL ? tls_sni_identity(s->ctl_tls) : -1;
		if (sni >= 0 && (unsigned)sni != id) {
			reply(s, FTP_BADPARAM, "HOST does not match the TLS server name.");
			return;
		}
		if (id != s->identity)
			select_host(s, id);
	}
	s->host_given = true;
	reply(s, FTP_HOSTOK, "Host accepted.");
}

static void cmd_syst(struct session *s, char *arg)
{
	reply(s, FTP_SYSTOK, "UNIX Type: L8");
}

static const struct {
	const char *name;
	unsigned bit;
} mlst_facts[] = {
	{ "type", IPC_FACT_TYPE }, { "size", IPC_FACT_SIZE }, { "modify", IPC_FACT_MODIFY },
	{ "perm", IPC_FACT_PERM }, { "unix.mode", IPC_FACT_UNIX_MODE }, { "unique", IPC_FACT_UNIQUE },
};

static void cmd_feat(struct session *s, char *arg)
{
	reply_start(s, FTP_FEAT, "Features:");
	if (s->cfg->control_tls != TLS_POLICY_OFF)
		reply_raw(s, " AUTH TLS\r\n AUTH SSL\r\n PBSZ\r\n PROT\r\n");
	if (s->cfg->control_tls != TLS_POLICY_OFF && s->cfg->ccc)
		reply_raw(s, " CCC\r\n");
	if (s->cfg->active_mode)
		reply_raw(s, " EPRT\r\n");
	reply_raw(s, " EPSV\r\n HASH SHA-256*;SHA-1;MD5\r\n HOST\r\n MDTM\r\n MFMT\r\n");
	char mlst[160] = " MLST ";
	for (size_t i = 0; i < sizeof(mlst_facts) / sizeof(mlst_facts[0]); i++)
		snprintf(mlst + strlen(mlst), sizeof(mlst) - strlen(mlst), "%s%s;", mlst_facts[i].name,
			 (s->mlst_facts & mlst_facts[i].bit) ? "*" : "");
	strcat(mlst, "\r\n");
	reply_raw(s, mlst);
	reply_raw(s, " PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n");
	reply(s, FTP_FEAT, "End");
}


/* OPTS MLST fact;fact; (RFC 3659 7.9): unknown names are ignored, the reply
 * lists the facts now selected. */
static void opts_mlst(struct session *s, const char *list)
{
	char out[128] = "";
	unsigned facts = 0;

	for (const char *p = list; *p != '\0';) {
		const char *semi = strchr(p, ';');
		size_t n = semi != NULL ? (size_t)(semi - p) : strlen(p);
		for (size_t i = 0; i < sizeof(mlst_facts) / sizeof(mlst_facts[0]); i++)
			if (strlen(mlst_facts[i].name) == n && strncasecmp(p, mlst_facts[i].name, n) == 0)
				facts |= mlst_facts[i].bit;
		p += n + (semi != NULL);
	}
	s->mlst_facts = facts;
	for (size_t i = 0; i < sizeof(mlst_facts) / sizeof(mlst_facts[0]); i++)
		if (facts & mlst_facts[i].bit)
			snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s;", mlst_facts[i].name);
	reply(s, FTP_OPTSOK, "MLST OPTS %s", out);
}

static void cmd_opts(struct session *s, char *arg)
{
	if (arg_is(arg, "UTF8 ON") || arg_is(arg, "UTF8")) {
		reply(s, FTP_OPTSOK, "Always in UTF8 mode.");
		return;
	}
	if (arg_is(arg, "HASH")) {
		reply(s, FTP_OPTSOK, "%s", tls_hash_name(s->hash_algo));
		return;
	}
	if (strncasecmp(arg, "HASH ", 5) == 0) {
		for (unsigned i = 0; i < TLS_HASH_COUNT; i++) {
			if (strcasecmp(arg + 5, tls_hash_name(i)) == 0) {
				s->hash_algo = i;
				reply(s, FTP_OPTSOK, "%s", tls_hash_name(i));
				return;
			}
		}
		reply(s, FTP_BADARGS, "Unknown hash algorithm.");
		return;
	}
	if (strncasecmp(arg, "MLST ", 5) == 0 || arg_is(arg, "MLST")) {
		opts_mlst(s, arg[4] == ' ' ? arg + 5 : "");
		return;
	}
	reply(s, FTP_BADARGS, "Option not understood.");
}

static void cmd_type(struct session *s, char *arg)
{
	if (arg_is(arg, "I") || arg_is(arg, "L 8")) {
		s->type_ascii = false;
		reply(s, FTP_TYPEOK, "Switching to Binary mode.");
	} else if (arg_is(arg, "A") || arg_is(arg, "A N")) {
		s->type_ascii = true;
		reply(s, FTP_TYPEOK, "Switching to ASCII mode.");
	} else {
		reply(s, FTP_BADPARAM, "Type not supported.");
	}
}

static void cmd_mode(struct session *s, char *arg)
{
	if (arg_is(arg, "S"))
		reply(s, FTP_MODEOK, "Mode set to S.");
	else
		reply(s, FTP_BADPARAM, "Only stream mode is supported.");
}

static void cmd_stru(struct session *s, char *arg)
{
	if (arg_is(arg, "F"))
		reply(s, FTP_STRUOK, "Structure set to F.");
	else
		reply(s, FTP_BADPARAM, "Only file structure is supported.");
}

static bool resolve(struct session *s, const char *arg, char *path)
{
	if (arg != NULL && strchr(arg, '\r') != NULL) {
		reply(s, FTP_BADFILENAME, "File name not allowed.");
		return false;
	}
	if (ftp_path_resolve(s->cwd, arg != NULL ? arg : "", path, IPC_MAX_PATH) < 0) {
		reply(s, FTP_BADFILENAME, "Path too long.");
		return false;
	}
	return true;
}

static void cmd_pwd(struct session *s, char *arg)
{
	char q[IPC_MAX_PATH * 2];

	if (ftp_quote_path(s->cwd, q, sizeof(q)) < 0) {
		reply(s, FTP_FILEFAIL, "Path too long.");
		return;
	}
	reply(s, FTP_PWDOK, "\"%s\" is the current directory.", q);
}

static void change_dir(struct session *s, const char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;

	if (!resolve(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0 || !S_ISDIR(st.mode)) {
		reply(s, FTP_FILEFAIL, "Failed to change directory.");
		return;
	}
	snprintf(s->cwd, sizeof(s->cwd), "%s", path);
	reply(s, FTP_CWDOK, "Directory successfully changed.");
}

static void cmd_cwd(struct session *s, char *arg)
{
	change_dir(s, arg);
}

static void cmd_cdup(struct session *s, char *arg)
{
	change_dir(s, "..");
}

static void cmd_size(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;

	if (!resolve(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0 || !S_ISREG(st.mode)) {
		reply(s, FTP_FILEFAIL, "Could not get file size.");
		return;
	}
	if (s->type_ascii) {
		/* RFC 3659 4: the size as TYPE A would send it, every LF a CRLF.
		 * That means reading the file, so only up to a limit. */
		uint64_t size, extra = 0;
		bool prev_cr = false;
		int fd;
		if (st.size > (64u << 20) || mm_open(path, IPC_OPEN_READ, 0, &fd, &size) < 0) {
			reply(s, FTP_FILEFAIL, "SIZE in ASCII mode is not available for this file; use TYPE I.");
			return;
		}
		for (off_t off = 0;;) {
			ssize_t n = pread(fd, s->buf, s->buf_size, off);
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++) {
				if (s->buf[i] == '\n' && !prev_cr)
					extra++;
				prev_cr = s->buf[i] == '\r';
			}
			off += n;
		}
		close(fd);
		reply(s, FTP_SIZEOK, "%llu", (unsigned long long)(size + extra));
		return;
	}
	reply(s, FTP_SIZEOK, "%llu", (unsigned long long)st.size);
}

static void cmd_mdtm(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;
	struct tm tm;

	if (!resolve(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0 || !S_ISREG(st.mode)) {
		reply(s, FTP_FILEFAIL, "Could not get file modification time.");
		return;
	}
	time_t t = (time_t)st.mtime;
	/* The answer is YYYYMMDDHHMMSS (RFC 3659 2.3): no year beyond 9999, and
	 * none that gmtime_r cannot hold (tmpfs keeps any 64-bit mtime). */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 - 1900 || tm.tm_year > 9999 - 1900) {
		reply(s, FTP_FILEFAIL, "Modification time out of range (years 0 to 9999).");
		return;
	}
	reply(s, FTP_MDTMOK, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	      tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void send_ticket(struct session *s)
{
	/* A fresh ticket for each data connection: a TLS 1.3 client never runs
	 * out of tickets nor holds an expired one. */
	for (;;) {
		int r = tls_send_ticket(s->ctl_tls);
		if (r != -EAGAIN)
			return;
		struct pollfd p = { .fd = s->ctl, .events = POLLOUT };
		if (poll(&p, 1, (int)s->cfg->idle_timeout_ms) <= 0)
			_exit(0);
	}
}

static void cmd_pasv(struct session *s, char *arg)
{
	struct in_addr a;
	uint16_t port;

	if (s->epsv_all) {
		reply(s, FTP_BADSEQ, "PASV not allowed after EPSV ALL.");
		return;
	}
	if (s->local_addr.ss_family == AF_INET) {
		a = ((struct sockaddr_in *)&s->local_addr)->sin_addr;
	} else {
		const struct in6_addr *v6 = &((struct sockaddr_in6 *)&s->local_addr)->sin6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(v6)) {
			reply(s, FTP_BADSENDCONN, "PASV is for IPv4; use EPSV.");
			return;
		}
		memcpy(&a, v6->s6_addr + 12, 4);
	}
	if (s->cfg->pasv_address != NULL && inet_pton(AF_INET, s->cfg->pasv_address, &a) != 1) {
		reply(s, FTP_BADSENDCONN, "Cannot open a passive connection.");
		return;
	}
	if (data_listen(s, &port) < 0) {
		reply(s, FTP_BADSENDCONN, "Cannot open a passive connection.");
		return;
	}
	if (s->ctl_tls != NULL)
		send_ticket(s);
	uint8_t *b = (uint8_t *)&a.s_addr;
	reply(s, FTP_PASVOK, "Entering Passive Mode (%u,%u,%u,%u,%u,%u).", b[0], b[1], b[2], b[3],
	      port >> 8, port & 0xff);
}

static void cmd_epsv(struct session *s, char *arg)
{
	uint16_t port;

	if (arg != NULL) {
		if (arg_is(arg, "ALL")) {
			s->epsv_all = true;
			reply(s, FTP_EPSVALLOK, "EPSV ALL ok.");
			return;
		}
		bool v6 = s->local_addr.ss_family == AF_INET6 &&
			  !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&s->local_addr)->sin6_addr);
		if (!(strcmp(arg, "1") == 0 && !v6) && !(strcmp(arg, "2") == 0 && v6)) {
			reply(s, FTP_EPSVBAD, "Network protocol not supported, use (%d)", v6 ? 2 : 1);
			return;
		}
	}
	if (data_listen(s, &port) < 0) {
		reply(s, FTP_BADSENDCONN, "Cannot open a passive connection.");
		return;
	}
	if (s->ctl_tls != NULL)
		send_ticket(s);
	reply(s, FTP_EPSVOK, "Entering Extended Passive Mode (|||%u|)", port);
}

/* PORT and EPRT: the client's own address only, never a privileged port,
 * so that the server cannot be bounced at anyone else (RFC 2577). */
static void set_active(struct session *s, const struct sockaddr_storage *a)
{
	uint16_t port = a->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)a)->sin_port)
						: ntohs(((const struct sockaddr_in6 *)a)->sin6_port);

	if (!data_same_host(a, &s->peer_addr)) {
		log_warn("refused active mode to another host than the client");
		reply(s, FTP_BADPARAM, "Active mode connects only to your own address.");
		return;
	}
	if (port < 1024) {
		log_warn("refused active mode to privileged port %u", port);
		reply(s, FTP_BADPARAM, "Active mode to a port below 1024 is refused.");
		return;
	}
	data_set_active(s, a);
	if (s->ctl_tls != NULL)
		send_ticket(s);
	reply(s, FTP_PORTOK, "PORT command successful. Consider using EPSV.");
}

static bool active_allowed(struct session *s)
{
	if (!s->cfg->active_mode) {
		reply(s, FTP_COMMANDNOTIMPL, "Active mode is disabled; use EPSV or PASV.");
		return false;
	}
	if (s->epsv_all) {
		reply(s, FTP_BADSEQ, "Only EPSV after EPSV ALL.");
		return false;
	}
	return true;
}

static void cmd_port(struct session *s, char *arg)
{
	unsigned h[6];
	int n = -1;
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;

	if (!active_allowed(s))
		return;
	if (sscanf(arg, "%3u,%3u,%3u,%3u,%3u,%3u%n", &h[0], &h[1], &h[2], &h[3], &h[4], &h[5], &n) != 6 ||
	    n < 0 || arg[n] != '\0' || h[0] > 255 || h[1] > 255 || h[2] > 255 || h[3] > 255 ||
	    h[4] > 255 || h[5] > 255) {
		reply(s, FTP_BADARGS, "Syntax: PORT h1,h2,h3,h4,p1,p2.");
		return;
	}
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3]);
	a->sin_port = htons((uint16_t)(h[4] << 8 | h[5]));
	set_active(s, &ss);
}

static void cmd_eprt(struct session *s, char *arg)
{
	char d, host[INET6_ADDRSTRLEN + 1];
	const char *f[4];
	struct sockaddr_storage ss = { 0 };
	unsigned long port;
	char *end;

	if (!active_allowed(s))
		return;
	/* |proto|address|port| with any printable delimiter (RFC 2428). */
	d = arg[0];
	if (d < 33 || d > 126) {
		reply(s, FTP_BADARGS, "Syntax: EPRT |proto|address|port|.");
		return;
	}
	f[0] = arg + 1;
	for (int i = 1; i < 4; i++) {
		const char *p = strchr(f[i - 1], d);
		if (p == NULL) {
			reply(s, FTP_BADARGS, "Syntax: EPRT |proto|address|port|.");
			return;
		}
		f[i] = p + 1;
	}
	if (f[3][0] != '\0' || (size_t)(f[2] - f[1] - 1) >= sizeof(host)) {
		reply(s, FTP_BADARGS, "Syntax: EPRT |proto|address|port|.");
		return;
	}
	memcpy(host, f[1], (size_t)(f[2] - f[1] - 1));
	host[f[2] - f[1] - 1] = '\0';
	port = strtoul(f[2], &end, 10);
	if (end != f[3] - 1 || end == f[2] || port > 65535) {
		reply(s, FTP_BADARGS, "Syntax: EPRT |proto|address|port|.");
		return;
	}
	if (f[1] - f[0] == 2 && f[0][0] == '1') {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
			reply(s, FTP_BADARGS, "Bad IPv4 address.");
			return;
		}
	} else if (f[1] - f[0] == 2 && f[0][0] == '2') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
			reply(s, FTP_BADARGS, "Bad IPv6 address.");
			return;
		}
	} else {
		reply(s, FTP_EPSVBAD, "Network protocol not supported, use (1,2)");
		return;
	}
	set_active(s, &ss);
}

/* Checks shared by every command that opens the data channel. */
static bool data_allowed_for(struct session *s, bool listing)
{
	if (s->data_failed) {
		/* Known before anything starts (a data handshake that came first
		 * and failed, perhaps someone else's): say so instead of 150. */
		if (s->data_unresumed)
			reply(s, FTP_DATATLSBAD, DATA_UNRESUMED_TEXT);
		else
			reply(s, FTP_BADSENDCONN, "The data connection failed.");
		data_close(s);
		return false;
	}
	if (s->pasv_fd < 0 && s->data_fd < 0 && !s->active) {
		reply(s, FTP_BADSENDCONN, "Use PORT, EPRT, PASV or EPSV first.");
		return false;
	}
	struct policy_state st = policy_state(s);
	enum policy_verdict v = policy_data(s->cfg, &st, listing);
	if (v != POLICY_ALLOW) {
		/* The refusal changes nothing: the next transfer at the same level
		 * is judged afresh. */
		refuse(s, v);
		data_close(s);
		return false;
	}
	return true;
}

static bool data_allowed(struct session *s)
{
	return data_allowed_for(s, false);
}

static void open_error(struct session *s, int r, const char *what)
{
	reply(s, FTP_FILEFAIL, "%s: %s.", what, strerror(-r));
	data_close(s);
}

static const char *error_text(int r)
{
	return strerror(-r);
}

/* The reply for a failed change to the tree. */
static void change_error(struct session *s, int r, const char *what)
{
	int code = (r == -EINVAL || r == -ENAMETOOLONG) ? FTP_BADFILENAME : FTP_FILEFAIL;

	reply(s, code, "%s: %s.", what, error_text(r));
}

static void take_rest(struct session *s, uint64_t *offset)
{
	*offset = s->rest_set ? s->rest : 0;
	s->rest_set = false;
	s->rest = 0;
}

static void cmd_retr(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	uint64_t size, offset;
	int fd, r;

	take_rest(s, &offset);
	if (!resolve(s, arg, path) || !data_allowed(s))
		return;
	r = mm_open(path, IPC_OPEN_SEND, offset, &fd, &size);
	if (r == -ERANGE) {
		data_close(s);
		reply(s, FTP_BADREST, "Restart offset %llu is beyond the end of the file.",
		      (unsigned long long)offset);
		return;
	}
	if (r < 0) {
		open_error(s, r, "Failed to open file");
		return;
	}
	reply(s, FTP_DATACONN, "Opening %s mode data connection for %s (%llu bytes).",
	      s->type_ascii ? "ASCII" : "BINARY", arg, (unsigned long long)size);
	struct xfer_request rq = { .dir = XFER_SEND, .file_fd = fd, .size = size, .offset = offset,
				   .ascii = s->type_ascii, .path = path };
	data_start(s, &rq);
}

/* STOR, APPE and STOU: how the file is opened is the only difference. The
 * file itself is opened only once the data connection is up (data_start):
 * here it is only looked at, so that the common refusals come before 150. */
static void store(struct session *s, const char *path, unsigned how, uint64_t offset,
		  const char *shown)
{
	int r;

	if (s->read_only) {
		reply(s, FTP_NOPERM, "Permission denied.");
		data_close(s);
		return;
	}
	r = mm_upload_check(path, how, offset);
	if (r == -ERANGE) {
		reply(s, FTP_BADREST, "Restart offset %llu is beyond the end of the file.",
		      (unsigned long long)offset);
		data_close(s);
		return;
	}
	if (r < 0) {
		change_error(s, r, "Could not create file");
		data_close(s);
		return;
	}
	if (how == IPC_OPEN_UNIQUE)
		reply(s, FTP_DATACONN, "FILE: %s", shown);
	else
		reply(s, FTP_DATACONN, "Ok to send data.");
	struct xfer_request rq = { .dir = XFER_RECV, .file_fd = -1, .how = how, .offset = offset,
				   .ascii = s->type_ascii, .path = path };
	data_start(s, &rq);
}

static void cmd_stor(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	uint64_t offset;

	take_rest(s, &offset);
	if (!resolve(s, arg, path) || !data_allowed(s))
		return;
	store(s, path, IPC_OPEN_WRITE, offset, arg);
}

static void cmd_appe(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	uint64_t offset;

	take_rest(s, &offset);
	if (!resolve(s, arg, path) || !data_allowed(s))
		return;
	store(s, path, IPC_OPEN_APPEND, 0, arg);
}

static void cmd_stou(struct session *s, char *arg)
{
	char base[IPC_MAX_PATH], name[IPC_MAX_PATH + 16], path[IPC_MAX_PATH];
	struct mm_stat st;
	uint64_t offset;

	take_rest(s, &offset);
	if (!data_allowed(s))
		return;
	if (!resolve(s, arg != NULL ? arg : "ftpsd.upload", base))
		return;
	/* The first free name of base, base.1, base.2, ...; the monitor's
	 * exclusive create settles any race. */
	for (unsigned i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "%s", base);
		else
			snprintf(name, sizeof(name), "%s.%u", base, i);
		if (strlen(name) >= sizeof(path))
			break;
		memcpy(path, name, strlen(name) + 1);
		if (mm_stat(path, &st) == -ENOENT) {
			const char *slash = strrchr(path, '/');
			store(s, path, IPC_OPEN_UNIQUE, 0, slash != NULL ? slash + 1 : path);
			return;
		}
	}
	reply(s, FTP_BADFILENAME, "Could not find a unique file name.");
	data_close(s);
}

static void cmd_rest(struct session *s, char *arg)
{
	uint64_t v;

	if (ftp_parse_offset(arg, &v) < 0) {
		reply(s, FTP_BADARGS, "REST takes a byte offset.");
		return;
	}
	s->rest = v;
	s->rest_set = true;
	reply(s, FTP_RESTOK, "Restart position accepted (%llu).", (unsigned long long)v);
}

static void cmd_dele(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int r;

	if (!resolve(s, arg, path))
		return;
	r = mm_path_op(IPC_DELETE, path);
	if (r < 0)
		change_error(s, r, "Delete operation failed");
	else
		reply(s, FTP_DELEOK, "Delete operation successful.");
}

static void cmd_mkd(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH], q[IPC_MAX_PATH * 2];
	int r;

	if (!resolve(s, arg, path))
		return;
	r = mm_path_op(IPC_MKDIR, path);
	if (r < 0) {
		change_error(s, r, "Create directory operation failed");
		return;
	}
	if (ftp_quote_path(path, q, sizeof(q)) < 0)
		snprintf(q, sizeof(q), "?");
	reply(s, FTP_MKDIROK, "\"%s\" created.", q);
}

static void cmd_rmd(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int r;

	if (!resolve(s, arg, path))
		return;
	r = mm_path_op(IPC_RMDIR, path);
	if (r < 0)
		change_error(s, r, "Remove directory operation failed");
	else
		reply(s, FTP_RMDIROK, "Remove directory operation successful.");
}

static void cmd_rnfr(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;

	s->rnfr_set = false;
	if (!resolve(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0) {
		reply(s, FTP_FILEFAIL, "RNFR command failed.");
		return;
	}
	snprintf(s->rnfr, sizeof(s->rnfr), "%s", path);
	s->rnfr_set = true;
	reply(s, FTP_RNFROK, "Ready for RNTO.");
}

static void cmd_rnto(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int r;

	if (!s->rnfr_set) {
		reply(s, FTP_NEEDRNFR, "RNFR required first.");
		return;
	}
	s->rnfr_set = false;
	if (!resolve(s, arg, path))
		return;
	r = mm_rename(s->rnfr, path);
	if (r < 0)
		reply(s, r == -EINVAL || r == -ENAMETOOLONG ? FTP_BADFILENAME : FTP_FILEFAIL, "Rename failed: %s.",
		      error_text(r));
	else
		reply(s, FTP_RENAMEOK, "Rename successful.");
}

/* YYYYMMDDHHMMSS (UTC), as MDTM answers and MFMT takes. */
static int parse_time(const char *t, int64_t *out)
{
	struct tm tm = { 0 };

	if (strlen(t) < 14 || strspn(t, "0123456789") < 14)
		return -EINVAL;
	if (t[14] != '\0' && !(t[14] == '.' && strspn(t + 15, "0123456789") == strlen(t + 15)))
		return -EINVAL;
	if (sscanf(t, "%4d%2d%2d%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return -EINVAL;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t v = timegm(&tm);
	if (v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static void cmd_mfmt(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	char *sp = strchr(arg, ' ');
	int64_t t;
	int r;

	if (sp == NULL) {
		reply(s, FTP_BADARGS, "Syntax: MFMT YYYYMMDDHHMMSS path.");
		return;
	}
	*sp = '\0';
	if (parse_time(arg, &t) < 0) {
		reply(s, FTP_BADARGS, "Bad time: use YYYYMMDDHHMMSS.");
		return;
	}
	if (!resolve(s, sp + 1, path))
		return;
	r = mm_settime(path, t);
	if (r < 0) {
		change_error(s, r, "Could not set the modification time");
		return;
	}
	reply(s, FTP_MFMTOK, "Modify=%s; %s", arg, sp + 1);
}

static void site_chmod(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH], *end;
	char *sp = strchr(arg, ' ');
	unsigned long mode;
	int r;

	if (sp == NULL) {
		reply(s, FTP_BADARGS, "Syntax: SITE CHMOD mode path.");
		return;
	}
	*sp = '\0';
	errno = 0;
	mode = strtoul(arg, &end, 8);
	if (*end != '\0' || errno != 0 || mode > 07777 || arg[0] == '\0') {
		reply(s, FTP_BADARGS, "Bad mode: use octal such as 644.");
		return;
	}
	/* A setuid file would run with the user's ids for anyone on the host;
	 * the monitor refuses these bits too. */
	if (mode & 07000) {
		reply(s, FTP_NOPERM, "SITE CHMOD cannot set setuid, setgid or sticky bits.");
		return;
	}
	if (!resolve(s, sp + 1, path))
		return;
	r = mm_chmod(path, (unsigned)mode);
	if (r < 0)
		change_error(s, r, "SITE CHMOD failed");
	else
		reply(s, FTP_CHMODOK, "SITE CHMOD command ok.");
}

static void cmd_hash(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH], hex[129];
	uint64_t size;
	int fd, r;

	if (!resolve(s, arg, path))
		return;
	r = mm_open(path, IPC_OPEN_READ, 0, &fd, &size);
	if (r < 0) {
		reply(s, FTP_FILEFAIL, "Cannot hash %s: %s.", arg, error_text(r));
		return;
	}
	r = tls_hash_file(fd, s->hash_algo, s->buf, s->buf_size, hex, sizeof(hex));
	close(fd);
	if (r < 0) {
		reply(s, FTP_FILETMPFAIL, "Hashing failed: %s.", error_text(r));
		return;
	}
	reply(s, FTP_HASHOK, "%s 0-%llu %s %s", tls_hash_name(s->hash_algo), (unsigned long long)size, hex,
	      arg);
}

static void list_common(struct session *s, char *arg, unsigned format)
{
	char path[IPC_MAX_PATH];
	unsigned flags = 0;
	uint64_t size;
	int fd, r;

	/* ls-style options ("-la") as clients send them, before the path. */
	if (format != IPC_LIST_MLSD) {
		bool all;
		arg = ftp_parse_list_args(arg, &all);
		if (all)
			flags |= IPC_LIST_ALL;
	}
	const char *orig_arg = arg;
	if (!resolve(s, arg, path) || !data_allowed_for(s, true))
		return;
	r = mm_list(path, format, flags | s->mlst_facts, orig_arg != NULL ? orig_arg : "", &fd);
	if (r < 0) {
		open_error(s, r, "Could not list directory");
		return;
	}
	struct stat st;
	size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	reply(s, FTP_DATACONN, "Here comes the directory listing.");
	struct xfer_request rq = { .dir = XFER_SEND, .file_fd = fd, .size = size, .listing = true,
				   .path = path };
	data_start(s, &rq);
}

static void cmd_list(struct session *s, char *arg)
{
	list_common(s, arg, IPC_LIST_LONG);
}

static void cmd_nlst(struct session *s, char *arg)
{
	list_common(s, arg, IPC_LIST_NAMES);
}

static void cmd_mlsd(struct session *s, char *arg)
{
	list_common(s, arg, IPC_LIST_MLSD);
}

/* Copy a listing memfd onto the control connection as reply lines, each
 * behind a space so that none can pass for the end of the reply. */
static bool listing_to_control(struct session *s, int fd)
{
	char buf[4096];
	size_t len = 0;
	bool start = true;

	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		char *p = buf, *nl;
		while ((nl = strchr(p, '\n')) != NULL) {
			*nl = '\0';
			char line[4200];
			snprintf(line, sizeof(line), "%s%s\n", start ? " " : "", p);
			reply_raw(s, line);
			p = nl + 1;
		}
		len = strlen(p);
		memmove(buf, p, len);
		if (len == sizeof(buf) - 1)
			len = 0; /* an absurd line: drop it */
	}
	close(fd);
	return true;
}

static void cmd_mlst(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int fd, r;

	if (!resolve(s, arg, path))
		return;
	r = mm_list(path, IPC_LIST_MLSD, IPC_LIST_SELF | s->mlst_facts, "", &fd);
	if (r < 0) {
		reply(s, FTP_FILEFAIL, "%s: %s.", arg != NULL ? arg : path, error_text(r));
		return;
	}
	reply_start(s, FTP_MLSTOK, "Listing");
	listing_to_control(s, fd);
	reply(s, FTP_MLSTOK, "End");
}

static void cmd_abor(struct session *s, char *arg)
{
	if (data_transfer_active(s)) {
		data_abort(s);
		reply(s, FTP_ABOROK, "ABOR successful.");
		return;
	}
	data_close(s);
	reply(s, FTP_ABOR_NOCONN, "No transfer to abort.");
}

static void cmd_stat(struct session *s, char *arg)
{
	if (data_transfer_active(s)) {
		if (s->xfer.dir == XFER_RECV)
			reply(s, FTP_STATFILE_OK, "Status: %llu bytes received for %s.",
			      (unsigned long long)s->xfer.bytes, s->xfer.path);
		else
			reply(s, FTP_STATFILE_OK, "Status: %llu of %llu bytes sent for %s.",
			      (unsigned long long)s->xfer.bytes, (unsigned long long)s->xfer.size,
			      s->xfer.path);
		return;
	}
	if (arg != NULL) {
		char path[IPC_MAX_PATH];
		int fd, r;
		if (!s->logged_in) {
			reply(s, FTP_LOGINERR, "Please log in with USER and PASS first.");
			return;
		}
		if (!resolve(s, arg, path))
			return;
		r = mm_list(path, IPC_LIST_LONG, 0, arg, &fd);
		if (r < 0) {
			reply(s, FTP_FILEFAIL, "%s: %s.", arg, error_text(r));
			return;
		}
		reply_start(s, FTP_STATFILE_OK, "Status follows:");
		listing_to_control(s, fd);
		reply(s, FTP_STATFILE_OK, "End of status.");
		return;
	}
	char desc[64] = "none";
	if (s->ctl_tls != NULL)
		tls_describe(s->ctl_tls, desc, sizeof(desc));
	reply_start(s, FTP_STATOK, "ftpsd status:");
	char line[512];
	snprintf(line, sizeof(line), " Connected from %s\r\n Logged in as %s\r\n TLS %s, data %s\r\n",
		 s->peer, s->logged_in ? s->user : "(nobody)", desc,
		 s->prot_private ? "Private" : "Clear");
	reply_raw(s, line);
	reply(s, FTP_STATOK, "End of status.");
}

static void cmd_help(struct session *s, char *arg);


#if FTPSD_TEST_HOOKS
#include <linux/openat2.h>
#include <sys/syscall.h>

/* Test builds only: a syscall that opens files, made raw. glibc's open() is
 * openat, so a test of it alone would not notice open, creat or openat2 in
 * the child's allow-list. Harmless if one is let through: they read
 * /etc/passwd or create nothing (the directory does not exist). */
static void site_testhook_raw(struct session *s, const char *what)
{
	static const char path[] = "/etc/passwd", missing[] = "/ftpsd-testhook-none/x";
	union {
		struct file_handle fh;
		unsigned char room[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h = { .fh = { .handle_bytes = MAX_HANDLE_SZ } };
	long r;

	if (strcasecmp(what, "OPEN") == 0) {
#ifdef SYS_open
		r = syscall(SYS_open, path, O_RDONLY);
#else
		reply(s, FTP_COMMANDNOTIMPL, "No open syscall on this architecture.");
		return;
#endif
	} else if (strcasecmp(what, "CREAT") == 0) {
#ifdef SYS_creat
		r = syscall(SYS_creat, missing, 0600);
#else
		reply(s, FTP_COMMANDNOTIMPL, "No creat syscall on this architecture.");
		return;
#endif
	} else if (strcasecmp(what, "OPENAT2") == 0) {
		struct open_how how = { .flags = O_RDONLY, .resolve = RESOLVE_IN_ROOT };
		r = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	} else if (strcasecmp(what, "NAME-TO-HANDLE-AT") == 0) {
		int mount_id;
		r = syscall(SYS_name_to_handle_at, AT_FDCWD, path, &h.fh, &mount_id, 0);
	} else if (strcasecmp(what, "OPEN-BY-HANDLE-AT") == 0) {
		h.fh.handle_bytes = 8;
		r = syscall(SYS_open_by_handle_at, AT_FDCWD, &h.fh, O_RDONLY);
	} else {
		reply(s, FTP_BADARGS, "Unknown test hook.");
		return;
	}
	reply(s, FTP_CMDOK, "%s returned %ld", what, r);
}

/* Test builds only: make a process of this session break its sandbox. */
static void site_testhook(struct session *s, const char *what)
{
	log_warn("test hook %s", what);
	if (strcasecmp(what, "CHILD-OPEN") == 0) {
		int fd = open("/etc/passwd", O_RDONLY);
		reply(s, FTP_CMDOK, "open returned %d", fd);
	} else if (strncasecmp(what, "CHILD-RAW-", 10) == 0) {
		site_testhook_raw(s, what + 10);
	} else if (strcasecmp(what, "CHILD-EXEC") == 0) {
		char *argv[] = { "/bin/true", NULL };
		execv(argv[0], argv);
		reply(s, FTP_CMDOK, "exec returned");
	} else if (strcasecmp(what, "CHILD-UNIX-SOCKET") == 0) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		reply(s, FTP_CMDOK, "socket returned %d", fd);
	} else if (strcasecmp(what, "SIGN") == 0) {
		/* The signing oracle used once more than a handshake needs. */
		uint8_t sig[2048];
		size_t n = 0;
		int r = mm_sign(s->identity, IPC_SIGN_DATA, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, "x", 1,
				sig, &n, sizeof(sig));
		reply(s, FTP_CMDOK, "monitor signed %d", r);
	} else if (strncasecmp(what, "CERT-CLAIM ", 11) == 0) {
		/* A certificate the child has seen, claimed as the client's. */
		static uint8_t der[2048], msgs[TLS_PROOF_MAX];
		size_t n = 0, len;
		const char *hex = what + 11;
		size_t digits = strlen(hex);
		unsigned byte;
		while (n < sizeof(der) && 2 * n + 1 < digits && sscanf(hex + 2 * n, "%2x", &byte) == 1)
			der[n++] = (uint8_t)byte;
		if (n == 0 || tls_test_forge_claim(der, n, msgs, &len) < 0)
			reply(s, FTP_BADARGS, "Bad certificate.");
		else
			reply(s, FTP_CMDOK, "monitor answered %d", mm_cert(msgs, len));
	} else if (strncasecmp(what, "CHMOD ", 6) == 0) {
		/* IPC_CHMOD as a child taken over would send it, past the checks
		 * of site_chmod: "CHMOD 4755 /path". */
		unsigned mode;
		char path[IPC_MAX_PATH];
		if (sscanf(what + 6, "%o %4095s", &mode, path) != 2)
			reply(s, FTP_BADARGS, "Syntax: SITE TESTHOOK CHMOD mode /path.");
		else
			reply(s, FTP_CMDOK, "monitor answered %d", mm_chmod(path, mode));
	} else if (strcasecmp(what, "MONITOR-EXEC") == 0) {
		reply(s, FTP_CMDOK, "monitor answered %d", mm_test_hook(1));
	} else if (strcasecmp(what, "MONITOR-SOCKET") == 0) {
		reply(s, FTP_CMDOK, "monitor answered %d", mm_test_hook(2));
	} else {
		reply(s, FTP_BADARGS, "Unknown test hook.");
	}
}
#endif

static void cmd_site(struct session *s, char *arg)
{
#if FTPSD_TEST_HOOKS
	if (strncasecmp(arg, "TESTHOOK ", 9) == 0) {
		site_testhook(s, arg + 9);
		return;
	}
#endif
	if (strncasecmp(arg, "CHMOD", 5) == 0 && !s->logged_in) {
		reply(s, FTP_LOGINERR, "Please log in with USER and PASS first.");
		return;
	}
	/* chmod = off, or the user's chmod=off: the monitor refuses it too. */
	if ((arg_is(arg, "CHMOD") || strncasecmp(arg, "CHMOD ", 6) == 0) && s->no_chmod) {
		reply(s, FTP_NOPERM, "SITE CHMOD is disabled.");
		return;
	}
	if (strncasecmp(arg, "CHMOD ", 6) == 0) {
		site_chmod(s, arg + 6);
		return;
	}
	if (arg_is(arg, "CHMOD")) {
		reply(s, FTP_BADARGS, "Syntax: SITE CHMOD mode path.");
		return;
	}
	if (arg_is(arg, "HELP")) {
		/* Before login only the configuration is known; after it, the user's. */
		bool chmod = s->logged_in ? !s->no_chmod : s->cfg->chmod;
		reply(s, FTP_SITEHELP, "SITE commands: %sHELP.", chmod ? "CHMOD " : "");
		return;
	}
	reply(s, FTP_BADPARAM, "Unknown SITE command.");
}

static const struct command commands[] = {
	{ "ABOR", CMD_NOARG | CMD_IN_XFER, cmd_abor },
	{ "ACCT", 0, cmd_acct },
	{ "ALLO", CMD_LOGIN | CMD_ARG, cmd_allo },
	{ "APPE", CMD_LOGIN | CMD_ARG, cmd_appe },
	{ "AUTH", CMD_BEFORE_TLS | CMD_ARG, cmd_auth },
	{ "CCC", CMD_NOARG, cmd_ccc },
	{ "CDUP", CMD_LOGIN | CMD_NOARG, cmd_cdup },
	{ "CWD", CMD_LOGIN | CMD_ARG, cmd_cwd },
	{ "DELE", CMD_LOGIN | CMD_ARG, cmd_dele },
	{ "EPRT", CMD_LOGIN | CMD_ARG, cmd_eprt },
	{ "EPSV", CMD_LOGIN, cmd_epsv },
	{ "FEAT", CMD_BEFORE_TLS | CMD_NOARG, cmd_feat },
	{ "HASH", CMD_LOGIN | CMD_ARG, cmd_hash },
	{ "HELP", 0, cmd_help },
	{ "HOST", CMD_BEFORE_TLS | CMD_ARG, cmd_host },
	{ "LIST", CMD_LOGIN, cmd_list },
	{ "MDTM", CMD_LOGIN | CMD_ARG, cmd_mdtm },
	{ "MFMT", CMD_LOGIN | CMD_ARG, cmd_mfmt },
	{ "MKD", CMD_LOGIN | CMD_ARG, cmd_mkd },
	{ "MLSD", CMD_LOGIN, cmd_mlsd },
	{ "MLST", CMD_LOGIN, cmd_mlst },
	{ "MODE", CMD_ARG, cmd_mode },
	{ "NLST", CMD_LOGIN, cmd_nlst },
	{ "NOOP", CMD_BEFORE_TLS | CMD_IN_XFER, cmd_noop },
	{ "OPTS", CMD_ARG, cmd_opts },
	{ "PASS", 0, cmd_pass },
	{ "PASV", CMD_LOGIN | CMD_NOARG, cmd_pasv },
	{ "PBSZ", CMD_ARG, cmd_pbsz },
	{ "PORT", CMD_LOGIN | CMD_ARG, cmd_port },
	{ "PROT", CMD_ARG, cmd_prot },
	{ "PWD", CMD_LOGIN | CMD_NOARG, cmd_pwd },
	{ "QUIT", CMD_BEFORE_TLS, cmd_quit },
	{ "REIN", CMD_NOARG, cmd_rein },
	{ "REST", CMD_LOGIN | CMD_ARG, cmd_rest },
	{ "RETR", CMD_LOGIN | CMD_ARG, cmd_retr },
	{ "RMD", CMD_LOGIN | CMD_ARG, cmd_rmd },
	{ "RNFR", CMD_LOGIN | CMD_ARG, cmd_rnfr },
	{ "RNTO", CMD_LOGIN | CMD_ARG, cmd_rnto },
	{ "SITE", CMD_ARG, cmd_site },
	{ "SMNT", CMD_LOGIN, cmd_smnt },
	{ "SIZE", CMD_LOGIN | CMD_ARG, cmd_size },
	{ "STAT", CMD_IN_XFER, cmd_stat },
	{ "STOR", CMD_LOGIN | CMD_ARG, cmd_stor },
	{ "STOU", CMD_LOGIN, cmd_stou },
	{ "STRU", CMD_ARG, cmd_stru },
	{ "SYST", 0, cmd_syst },
	{ "TYPE", CMD_ARG, cmd_type },
	{ "USER", CMD_ARG, cmd_user },
	{ "XCUP", CMD_LOGIN | CMD_NOARG, cmd_cdup },
	{ "XCWD", CMD_LOGIN | CMD_ARG, cmd_cwd },
	{ "XMKD", CMD_LOGIN | CMD_ARG, cmd_mkd },
	{ "XPWD", CMD_LOGIN | CMD_NOARG, cmd_pwd },
	{ "XRMD", CMD_LOGIN | CMD_ARG, cmd_rmd },
};

static void cmd_help(struct session *s, char *arg)
{
	char line[128] = "";
	reply_start(s, FTP_HELP, "The following commands are recognized:");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(line) > 70) {
			strcat(line, "\r\n");
			reply_raw(s, line);
			line[0] = '\0';
		}
		strcat(line, " ");
		strcat(line, commands[i].verb);
	}
	strcat(line, "\r\n");
	reply_raw(s, line);
	reply(s, FTP_HELP, "Help OK.");
}

static const struct command *find_command(const char *verb)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].verb, verb) == 0)
			return &commands[i];
	return NULL;
}

/* Parse and run one line. During a transfer, a command that is not answered
 * then is kept and run when the transfer ends. */
static void handle_line(struct session *s, char *line, size_t len)
{
	struct ftp_command cmd;
	const struct command *c;

	if (ftp_parse_command(line, len, &cmd) < 0) {
		reply(s, FTP_BADCMD, "Syntax error, command unrecognized.");
		return;
	}
	c = find_command(cmd.verb);
	if (data_transfer_active(s) && (c == NULL || !(c->flags & CMD_IN_XFER))) {
		s->pending = malloc(len + 1);
		if (s->pending == NULL)
			abort();
		memcpy(s->pending, line, len + 1);
		s->pending_len = len;
		return;
	}
	if (c == NULL) {
		reply(s, FTP_BADCMD, "Unknown command.");
		return;
	}
	struct policy_state st = policy_state(s);
	enum policy_verdict v = policy_before_tls(s->cfg, &st, c->verb,
						  (c->flags & CMD_BEFORE_TLS) != 0);
	if (v != POLICY_ALLOW) {
		refuse(s, v);
		return;
	}
	if ((c->flags & CMD_LOGIN) && !s->logged_in) {
		reply(s, FTP_LOGINERR, "Please log in with USER and PASS first.");
		return;
	}
	if ((c->flags & CMD_ARG) && cmd.arg == NULL) {
		reply(s, FTP_BADARGS, "%s needs an argument.", c->verb);
		return;
	}
	if ((c->flags & CMD_NOARG) && cmd.arg != NULL) {
		reply(s, FTP_BADARGS, "%s takes no argument.", c->verb);
		return;
	}
	bool was_rnfr = s->rnfr_set;
	c->run(s, cmd.arg);
	/* RNFR must be followed at once by RNTO (RFC 959): any other command in
	 * between forgets it. (REST, by contrast, waits for its transfer across
	 * the PASV or TYPE that clients send in between, as other servers do.) */
	if (was_rnfr && strcmp(c->verb, "RNFR") != 0)
		s->rnfr_set = false;
}

/* Read what the control connection has; false on EOF or error. */
static bool ctl_read(struct session *s)
{
	size_t space;
	uint8_t *tail = ftp_linebuf_tail(&s->in, &space);
	ssize_t n;

	if (space == 0)
		return true;
	if (s->ctl_tls != NULL) {
		n = tls_recv(s->ctl_tls, tail, space);
		if (n == -EAGAIN)
			return true;
	} else {
		n = recv(s->ctl, tail, space, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
	}
	if (n <= 0)
		return false;
	if (s->after_ccc) {
		/* A TLS record right after CCC is the client's close_notify, not a
		 * command: an alert (type 21) under TLS 1.2, an encrypted record
		 * (type 23) under TLS 1.3. No FTP command starts with these bytes. */
		if (n >= 5 && (tail[0] == 0x15 || tail[0] == 0x17) && tail[1] == 0x03) {
			size_t rec = 5 + ((size_t)tail[3] << 8 | tail[4]);
			if (rec <= (size_t)n) {
				memmove(tail, tail + rec, (size_t)n - rec);
				n -= (ssize_t)rec;
			}
		}
		s->after_ccc = false;
	}
	ftp_linebuf_added(&s->in, (size_t)n);
	s->last_activity_ms = now_ms();
	return true;
}

static void run_lines(struct session *s)
{
	char line[FTP_MAX_LINE + 1];

	if (s->pending != NULL && !data_transfer_active(s)) {
		char *p = s->pending;
		s->pending = NULL;
		handle_line(s, p, s->pending_len);
		free(p);
	}
	while (s->pending == NULL) {
		size_t len;
		int r = ftp_linebuf_take(&s->in, line, sizeof(line), &len);
		if (r == 0)
			return;
		if (r == -E2BIG) {
			reply(s, FTP_BADCMD, "Command line too long.");
			continue;
		}
		handle_line(s, line, len);
		explicit_bzero(line, sizeof(line));
		/* Idle from the answer on: a slow command (a login's password
		 * hash) does not eat into the client's time. */
		s->last_activity_ms = now_ms();
	}
}

static void check_timeouts(struct session *s)
{
	uint64_t now = now_ms();

	if (!s->logged_in && now - s->session_start_ms >= s->cfg->login_timeout_ms) {
		reply(s, FTP_IDLE_TIMEOUT, "Login timeout; closing the connection.");
		log_info("login timeout");
		session_end(s, 0);
	}
	if (now - s->last_activity_ms >= s->cfg->idle_timeout_ms) {
		reply(s, FTP_IDLE_TIMEOUT, "Idle timeout; closing the connection.");
		log_info("idle timeout");
		session_end(s, 0);
	}
}

static int poll_timeout(const struct session *s)
{
	uint64_t now = now_ms(), until = s->last_activity_ms + s->cfg->idle_timeout_ms;

	if (!s->logged_in && s->session_start_ms + s->cfg->login_timeout_ms < until)
		until = s->session_start_ms + s->cfg->login_timeout_ms;
	return until > now ? (int)(until - now) : 0;
}

static struct session *the_session;

/* The monitor did not answer within the idle timeout: it is stopped or
 * stuck, and nothing may go through it now, the log included. */
static void monitor_silent(void)
{
	if (the_session != NULL)
		reply(the_session, FTP_CLOSING, "Service not available; closing the connection.");
	_exit(1);
}

void session_run(const struct config *cfg, int ctl, bool implicit, const char *peer,
		 const struct sockaddr_storage *peer_addr)
{
	struct session *s = calloc(1, sizeof(*s));
	socklen_t len;

	if (s == NULL)
		abort();
	s->cfg = s->root_cfg = cfg;
	s->ctl = ctl;
	the_session = s;
	mm_set_timeout(cfg->idle_timeout_ms, monitor_silent);
	s->pasv_fd = s->data_fd = -1;
	s->xfer.file_fd = -1;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	snprintf(s->cwd, sizeof(s->cwd), "/");
	s->buf_size = XFER_BUF_SIZE;
	s->mlst_facts = IPC_FACTS_ALL;
	s->buf = malloc(s->buf_size);
	if (s->buf == NULL)
		abort();
	/* The client: the TCP peer, or the address a trusted balancer's PROXY
	 * header gave; data connections must come from it. */
	s->peer_addr = *peer_addr;
	len = sizeof(s->local_addr);
	if (getsockname(ctl, (struct sockaddr *)&s->local_addr, &len) < 0)
		fatal("getsockname");
	/* Replies are small and often come in twos (a ticket and 229, 150 and
	 * 226): without this, Nagle's algorithm meets the client's delayed ACK
	 * and each waits some 40 ms. */
	int one = 1;
	(void)setsockopt(ctl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int fl = fcntl(ctl, F_GETFL);
	if (fl < 0 || fcntl(ctl, F_SETFL, fl | O_NONBLOCK) < 0)
		fatal("O_NONBLOCK");
	s->session_start_ms = s->last_activity_ms = now_ms();

	if (implicit) {
		start_tls(s, true);
		s->secured = true;
		s->pbsz = true;
		s->prot_private = true;
	}
	reply(s, FTP_GREET, "%s", cfg->banner);

	for (;;) {
		struct pollfd p[4];
		int n = 0, ictl = -1, ipasv = -1, idata = -1;

		run_lines(s);

		/* The monitor never speaks first: anything here means it is gone. */
		p[n++] = (struct pollfd){ .fd = mm_socket(), .events = POLLIN };

		if (s->pending == NULL) {
			ictl = n;
			p[n++] = (struct pollfd){ .fd = s->ctl, .events = POLLIN };
		}
		if (s->pasv_fd >= 0) {
			ipasv = n;
			p[n++] = (struct pollfd){ .fd = s->pasv_fd, .events = POLLIN };
		}
		short ev = data_events(s);
		if (ev != 0) {
			idata = n;
			p[n++] = (struct pollfd){ .fd = s->data_fd, .events = ev };
		}
		int timeout = poll_timeout(s);
		bool ctl_buffered = s->ctl_tls != NULL && tls_pending(s->ctl_tls) > 0 && ictl >= 0;
		bool data_buffered = s->data_tls != NULL && (ev & POLLIN) && tls_pending(s->data_tls) > 0;
		if (ctl_buffered || data_buffered)
			timeout = 0;

		int r = poll(p, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			fatal("poll");
		if (r <= 0 && !ctl_buffered && !data_buffered) {
			check_timeouts(s);
			continue;
		}
		if (p[0].revents != 0) {
			log_warn("the monitor is gone; ending the session");
			_exit(1);
		}
		if (ictl >= 0 && (ctl_buffered || (p[ictl].revents & (POLLIN | POLLHUP | POLLERR)))) {
			if (!ctl_read(s)) {
				if (data_transfer_active(s) && s->xfer.dir == XFER_RECV)
					log_warn("control connection closed during the upload of %s",
						 s->xfer.path);
				log_info("client closed the control connection");
				session_end(s, 0);
			}
		}
		if (ipasv >= 0 && (p[ipasv].revents & POLLIN))
			data_accept(s);
		else if (idata >= 0 && (data_buffered || p[idata].revents != 0))
			data_step(s);
	}
}
