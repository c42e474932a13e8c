/* Commands about the session itself: who the user is (USER PASS REIN ACCT
 * QUIT), which host (HOST), and the control connection's TLS (AUTH PBSZ PROT
 * CCC). */
#include <stdio.h>
#include <string.h>

#include "child_mon.h"
#include "cmd.h"
#include "ctls.h"
#include "log.h"
#include "proctitle.h"

void cmd_auth(struct session *s, char *arg)
{
	bool private;

	if (arg_is(arg, "TLS") || arg_is(arg, "TLS-C"))
		private = false;
	else if (arg_is(arg, "SSL") || arg_is(arg, "TLS-P"))
		/* Private by default, unless the policy allows only Clear data. */
		private = !(s->cfg->data_tls == TLS_POLICY_OFF &&
			    s->cfg->data_tls_listings == TLS_POLICY_OFF);
	else {
		ctl_reply(s, FTP_BADAUTH, "AUTH type not supported; use AUTH TLS.");
		return;
	}
	if (s->in.len > 0) {
		/* Bytes sent in clear behind AUTH must not run as if they came
		 * through TLS (the STARTTLS command injection). */
		log_warn("discarding %zu bytes sent in clear after AUTH", s->in.len);
		s->in.len = 0;
	}
	ctl_reply(s, FTP_AUTHOK, "Proceed with negotiation.");
	ctl_start_tls(s, false);
	s->secured = true;
	s->prot_private = private;
	s->pbsz = private; /* AUTH SSL implies a protected data channel */
}

/* CCC (RFC 4217 section 5): the control connection goes back to clear after
 * this reply; data protection stays as it is. */
void cmd_ccc(struct session *s, char *arg)
{
	/* The last ticket this connection can send: data connections after CCC
	 * still resume the control session with it. */
	ctl_send_ticket(s);
	ctl_reply(s, FTP_CCCOK, "Clearing the control connection.");
	ctl_clear_tls(s);
}

void cmd_pbsz(struct session *s, char *arg)
{
	if (strspn(arg, "0123456789") != strlen(arg)) {
		ctl_reply(s, FTP_BADARGS, "PBSZ takes a number.");
		return;
	}
	s->pbsz = true;
	ctl_reply(s, FTP_PBSZOK, "PBSZ=0");
}

void cmd_prot(struct session *s, char *arg)
{
	char level = prot_level(arg);

	s->prot_private = level == 'P' || level == 'p';
	ctl_reply(s, FTP_PROTOK, "Protection level set to %s.",
		  s->prot_private ? "Private" : "Clear");
}

static void logged_in(struct session *s, const struct mm_login *login)
{
	s->logged_in = true;
	s->read_only = (login->flags & IPC_USER_READ_ONLY) != 0;
	s->no_chmod = (login->flags & IPC_USER_NO_CHMOD) != 0;
	s->data_tls_reuse = (login->flags & IPC_USER_DATA_TLS_ANY) == 0;
	if (s->data_tls_reuse)
		ctls_retire_key();
	/* Before the reply: a TLS 1.3 client reads this user's first ticket
	 * with it (ctl_send_ticket). */
	ctls_login_tickets(s->ctl_tls, login->ticket_key, login->ticket_key_len);
	if (s->ctl_tls != NULL)
		ctl_send_ticket(s);
	snprintf(s->cwd, sizeof(s->cwd), "/");
	proctitle_set("ftpsd: child %s@%s", s->user, s->peer);
}

void cmd_user(struct session *s, char *arg)
{
	if (strlen(arg) >= sizeof(s->user)) {
		ctl_reply(s, FTP_BADARGS, "User name too long.");
		return;
	}
	for (const char *p = arg; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == ':') {
			ctl_reply(s, FTP_BADARGS, "Invalid user name.");
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
		ctl_reply(s, FTP_LOGIN_CERTOK,
			  "User logged in, authorized by security data exchange.");
		return;
	}
	if (r == IPC_AUTH_NEEDS_TLS) {
		ctl_reply(s, FTP_LOGINERR, "User %s must log in over TLS: send AUTH TLS first.",
			  s->user);
		return;
	}
	if (r == IPC_AUTH_FORBIDS_TLS) {
		ctl_reply(s, FTP_LOGINERR, "User %s must log in without TLS.", s->user);
		return;
	}
	if (r == IPC_AUTH_LOCKED) {
		ctl_reply(s, FTP_LOGINERR, "Login incorrect.");
		ctl_reply(s, FTP_CLOSING, "Too many login attempts; closing the connection.");
		session_end(s, SESSION_DONE, "too many USER commands");
	}
	if (r == IPC_AUTH_TOO_MANY) {
		ctl_reply(s, FTP_CLOSING, "%s", login.refusal);
		session_end(s, SESSION_DONE, "login refused: %s", login.refusal);
	}
	s->user_given = true;
	ctl_reply(s, FTP_GIVEPWORD, "Password required for %s.", s->user);
}

void cmd_pass(struct session *s, char *arg)
{
	struct mm_login login = { 0 };
	int r;

	r = mm_auth(s->user, arg != NULL ? arg : "", s->ctl_tls != NULL, &login);
	if (arg != NULL)
		explicit_bzero(arg, strlen(arg));
	s->user_given = false;
	if (r == IPC_AUTH_FAILED) {
		ctl_reply(s, FTP_LOGINERR, "Login incorrect.");
		return;
	}
	if (r == IPC_AUTH_NEEDS_TLS) {
		ctl_reply(s, FTP_LOGINERR, "User %s must log in over TLS.", s->user);
		return;
	}
	if (r == IPC_AUTH_FORBIDS_TLS) {
		ctl_reply(s, FTP_LOGINERR, "User %s must log in without TLS.", s->user);
		return;
	}
	if (r == IPC_AUTH_LOCKED) {
		ctl_reply(s, FTP_LOGINERR, "Login incorrect.");
		ctl_reply(s, FTP_CLOSING, "Too many login failures; closing the connection.");
		session_end(s, SESSION_DONE, "too many failed passwords");
	}
	if (r == IPC_AUTH_TOO_MANY) {
		ctl_reply(s, FTP_CLOSING, "%s", login.refusal);
		session_end(s, SESSION_DONE, "login refused: %s", login.refusal);
	}
	if (r < 0) {
		ctl_reply(s, FTP_CLOSING, "Login failed: the home directory is not available.");
		session_end(s, SESSION_DONE, "the home directory is not available: %s",
			    strerror(-r));
	}
	logged_in(s, &login);
	explicit_bzero(&login, sizeof(login));
	ctl_reply(s, FTP_LOGINOK, "Login successful.");
}

void cmd_quit(struct session *s, char *arg)
{
	ctl_reply(s, FTP_GOODBYE, "Goodbye.");
	session_end(s, SESSION_DONE, "client sent QUIT");
}

void cmd_acct(struct session *s, char *arg)
{
	ctl_reply(s, FTP_COMMANDNOTIMPL, "ACCT not implemented.");
}

/* REIN: before login, forget USER; after it, the monitor has become the user
 * for good (privileges cannot come back), so a new login needs a new
 * connection. */
void cmd_rein(struct session *s, char *arg)
{
	s->user_given = false;
	s->user[0] = '\0';
	data_close(s);
	ctl_reply(s, FTP_GREET, "Service ready for new user.");
}

/* HOST (RFC 7151): before USER. With no virtual hosts configured, every
 * well-formed name is this server. */
void cmd_host(struct session *s, char *arg)
{
	size_t n = strlen(arg);
	if (n == 0 || n > 255 || strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:") != n) {
		ctl_reply(s, FTP_BADARGS, "Bad host name.");
		return;
	}
	if (s->root_cfg->nhosts > 0) {
		const struct config *h = config_host(s->root_cfg, arg);
		if (h == NULL) {
			ctl_reply(s, FTP_BADPARAM, "Unknown host %s.", arg);
			return;
		}
		unsigned id = config_identity_of(s->root_cfg, h);
		int sni = s->ctl_tls != NULL ? ctls_sni_identity(s->ctl_tls) : -1;
		if (sni >= 0 && (unsigned)sni != id) {
			ctl_reply(s, FTP_BADPARAM, "HOST does not match the TLS server name.");
			return;
		}
		if (id != s->identity)
			ctl_select_host(s, id);
	}
	s->host_given = true;
	ctl_reply(s, FTP_HOSTOK, "Host accepted.");
}
