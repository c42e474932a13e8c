/* The command table and its dispatcher (OpenSMTPD's {verb, check,
 * proceed}): everything about when a command may run is in its row, and the
 * dispatcher checks it, answers a refusal and only then runs the handler,
 * which does the command's work and nothing else. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "build_config.h"
#include "child.h"
#include "cmd.h"
#include "ftp_parse.h"
#include "policy.h"

/* CMD_BEFORE_TLS: RFC 4217 section 9, a client must be able to learn how to
 * secure the session (FEAT, AUTH), say which host it wants (HOST) and
 * leave (QUIT, NOOP) before TLS; other commands only when allow-before-tls
 * names them. The table is the one list of these, and --check-config checks
 * allow-before-tls against it (commands_known). */
enum {
	CMD_BEFORE_TLS = 1 << 0, /* runs before TLS whatever allow-before-tls says */
	CMD_LOGIN = 1 << 1,      /* needs a logged-in user */
	CMD_PRELOGIN = 1 << 2,   /* refused once logged in */
	CMD_UPLOAD = 1 << 3,     /* writes a file: refused to read-only users */
	CMD_IN_XFER = 1 << 4,    /* answered while a transfer runs */
};

/* Whether the command takes an argument; 501 when it breaks the rule. */
enum cmd_arg {
	ARG_OPTIONAL,
	ARG_REQUIRED,
	ARG_NONE,
};

/* Why a command may not run now: its reply. code 0: it may. */
struct refusal {
	int code;
	const char *text;
};

struct command {
	const char *verb;
	unsigned flags;
	enum cmd_arg arg;
	/* What the flags cannot say: this command against the session's state
	 * (NULL: nothing more). */
	struct refusal (*check)(const struct session *s, const char *arg);
	cmd_fn *run;
};

static const struct refusal allowed = { 0, NULL };
static const struct refusal need_login = { FTP_LOGINERR,
					   "Please log in with USER and PASS first." };

static struct refusal by_policy(enum policy_verdict v)
{
	struct refusal no = allowed;

	if (v != POLICY_ALLOW)
		no.text = policy_reply(v, &no.code);
	return no;
}

/* ------------------------------------------------------------------ checks */

static struct refusal check_auth(const struct session *s, const char *arg)
{
	struct policy_state st = session_policy(s);

	return by_policy(policy_auth(s->cfg, &st));
}

static struct refusal check_ccc(const struct session *s, const char *arg)
{
	struct policy_state st = session_policy(s);

	return by_policy(policy_ccc(s->cfg, &st));
}

static struct refusal check_pbsz(const struct session *s, const char *arg)
{
	if (s->ctl_tls == NULL)
		return (struct refusal){ FTP_BADSEQ, "PBSZ needs AUTH first." };
	return allowed;
}

/* The level's own refusals (S, E, unknown, P where data protection is off)
 * are the policy's too: one verdict covers them all. */
static struct refusal check_prot(const struct session *s, const char *arg)
{
	struct policy_state st = session_policy(s);

	return by_policy(policy_prot(s->cfg, &st, prot_level(arg)));
}

static struct refusal check_pass(const struct session *s, const char *arg)
{
	if (!s->user_given)
		return (struct refusal){ FTP_NEEDUSER, "Login with USER first." };
	return allowed;
}

/* REIN after login: the monitor has become the user for good (privileges
 * cannot come back), so a new login needs a new connection. */
static struct refusal check_rein(const struct session *s, const char *arg)
{
	if (s->logged_in)
		return (struct refusal){
			FTP_COMMANDNOTIMPL,
			"REIN after login is not supported: reconnect to log in again."
		};
	return allowed;
}

/* HOST (RFC 7151): before USER. */
static struct refusal check_host(const struct session *s, const char *arg)
{
	if (s->logged_in || s->user_given)
		return (struct refusal){ FTP_BADSEQ, "HOST must come before USER." };
	return allowed;
}

static struct refusal check_rnto(const struct session *s, const char *arg)
{
	if (!s->rnfr_set)
		return (struct refusal){ FTP_NEEDRNFR, "RNFR required first." };
	return allowed;
}

static struct refusal check_pasv(const struct session *s, const char *arg)
{
	if (s->epsv_all)
		return (struct refusal){ FTP_BADSEQ, "PASV not allowed after EPSV ALL." };
	return allowed;
}

/* PORT and EPRT. */
static struct refusal check_active(const struct session *s, const char *arg)
{
	if (!s->cfg->active_mode)
		return (struct refusal){ FTP_COMMANDNOTIMPL,
					 "Active mode is disabled; use EPSV or PASV." };
	if (s->epsv_all)
		return (struct refusal){ FTP_BADSEQ, "Only EPSV after EPSV ALL." };
	return allowed;
}

/* STAT during a transfer says how it goes, to anyone; STAT with a path is a
 * listing, after login only. */
static struct refusal check_stat(const struct session *s, const char *arg)
{
	if (!data_transfer_active(s) && arg != NULL && !s->logged_in)
		return need_login;
	return allowed;
}

/* SITE HELP at any time; SITE CHMOD after login, and only for users it is
 * not disabled for (chmod = off, or the user's chmod=off: the monitor
 * refuses it too). */
static struct refusal check_site(const struct session *s, const char *arg)
{
#if FTPSD_TEST_HOOKS
	if (strncasecmp(arg, "TESTHOOK ", 9) == 0)
		return allowed;
#endif
	if (strncasecmp(arg, "CHMOD", 5) == 0 && !s->logged_in)
		return need_login;
	if ((arg_is(arg, "CHMOD") || strncasecmp(arg, "CHMOD ", 6) == 0) && s->no_chmod)
		return (struct refusal){ FTP_NOPERM, "SITE CHMOD is disabled." };
	return allowed;
}

/* ------------------------------------------------------------------- table */

static void cmd_help(struct session *s, char *arg);

static const struct command commands[] = {
	{ "ABOR", CMD_IN_XFER, ARG_NONE, NULL, cmd_abor },
	{ "ACCT", 0, ARG_OPTIONAL, NULL, cmd_acct },
	{ "ALLO", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_allo },
	{ "APPE", CMD_LOGIN | CMD_UPLOAD, ARG_REQUIRED, NULL, cmd_appe },
	{ "AUTH", CMD_BEFORE_TLS, ARG_REQUIRED, check_auth, cmd_auth },
	{ "CCC", 0, ARG_NONE, check_ccc, cmd_ccc },
	{ "CDUP", CMD_LOGIN, ARG_NONE, NULL, cmd_cdup },
	{ "CWD", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_cwd },
	{ "DELE", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_dele },
	{ "EPRT", CMD_LOGIN, ARG_REQUIRED, check_active, cmd_eprt },
	{ "EPSV", CMD_LOGIN, ARG_OPTIONAL, NULL, cmd_epsv },
	{ "FEAT", CMD_BEFORE_TLS, ARG_NONE, NULL, cmd_feat },
	{ "HASH", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_hash },
	{ "HELP", 0, ARG_OPTIONAL, NULL, cmd_help },
	{ "HOST", CMD_BEFORE_TLS, ARG_REQUIRED, check_host, cmd_host },
	{ "LIST", CMD_LOGIN, ARG_OPTIONAL, NULL, cmd_list },
	{ "MDTM", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_mdtm },
	{ "MFMT", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_mfmt },
	{ "MKD", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_mkd },
	{ "MLSD", CMD_LOGIN, ARG_OPTIONAL, NULL, cmd_mlsd },
	{ "MLST", CMD_LOGIN, ARG_OPTIONAL, NULL, cmd_mlst },
	{ "MODE", 0, ARG_REQUIRED, NULL, cmd_mode },
	{ "NLST", CMD_LOGIN, ARG_OPTIONAL, NULL, cmd_nlst },
	{ "NOOP", CMD_BEFORE_TLS | CMD_IN_XFER, ARG_OPTIONAL, NULL, cmd_noop },
	{ "OPTS", 0, ARG_REQUIRED, NULL, cmd_opts },
	{ "PASS", CMD_PRELOGIN, ARG_OPTIONAL, check_pass, cmd_pass },
	{ "PASV", CMD_LOGIN, ARG_NONE, check_pasv, cmd_pasv },
	{ "PBSZ", 0, ARG_REQUIRED, check_pbsz, cmd_pbsz },
	{ "PORT", CMD_LOGIN, ARG_REQUIRED, check_active, cmd_port },
	{ "PROT", 0, ARG_REQUIRED, check_prot, cmd_prot },
	{ "PWD", CMD_LOGIN, ARG_NONE, NULL, cmd_pwd },
	{ "QUIT", CMD_BEFORE_TLS, ARG_OPTIONAL, NULL, cmd_quit },
	{ "REIN", 0, ARG_NONE, check_rein, cmd_rein },
	{ "REST", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_rest },
	{ "RETR", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_retr },
	{ "RMD", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_rmd },
	{ "RNFR", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_rnfr },
	{ "RNTO", CMD_LOGIN, ARG_REQUIRED, check_rnto, cmd_rnto },
	{ "SITE", 0, ARG_REQUIRED, check_site, cmd_site },
	{ "SMNT", CMD_LOGIN, ARG_OPTIONAL, NULL, cmd_smnt },
	{ "SIZE", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_size },
	{ "STAT", CMD_IN_XFER, ARG_OPTIONAL, check_stat, cmd_stat },
	{ "STOR", CMD_LOGIN | CMD_UPLOAD, ARG_REQUIRED, NULL, cmd_stor },
	{ "STOU", CMD_LOGIN | CMD_UPLOAD, ARG_OPTIONAL, NULL, cmd_stou },
	{ "STRU", 0, ARG_REQUIRED, NULL, cmd_stru },
	{ "SYST", 0, ARG_OPTIONAL, NULL, cmd_syst },
	{ "TYPE", 0, ARG_REQUIRED, NULL, cmd_type },
	{ "USER", CMD_PRELOGIN, ARG_REQUIRED, NULL, cmd_user },
	{ "XCUP", CMD_LOGIN, ARG_NONE, NULL, cmd_cdup },
	{ "XCWD", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_cwd },
	{ "XMKD", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_mkd },
	{ "XPWD", CMD_LOGIN, ARG_NONE, NULL, cmd_pwd },
	{ "XRMD", CMD_LOGIN, ARG_REQUIRED, NULL, cmd_rmd },
};

static void cmd_help(struct session *s, char *arg)
{
	char line[128] = "";
	ctl_reply_start(s, FTP_HELP, "The following commands are recognized:");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(line) > 70) {
			strcat(line, "\r\n");
			ctl_reply_raw(s, line);
			line[0] = '\0';
		}
		strcat(line, " ");
		strcat(line, commands[i].verb);
	}
	strcat(line, "\r\n");
	ctl_reply_raw(s, line);
	ctl_reply(s, FTP_HELP, "Help OK.");
}

static const struct command *find_command(const char *verb)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].verb, verb) == 0)
			return &commands[i];
	return NULL;
}

bool commands_known(const char *verb)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcasecmp(commands[i].verb, verb) == 0)
			return true;
	return false;
}

void commands_run_line(struct session *s, char *line, size_t len)
{
	struct ftp_command cmd;
	const struct command *c;

	if (ftp_parse_command(line, len, &cmd) < 0) {
		ctl_reply(s, FTP_BADCMD, "Syntax error, command unrecognized.");
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
		ctl_reply(s, FTP_BADCMD, "Unknown command.");
		return;
	}
	/* In this order: nothing but what the policy allows before TLS (RFC
	 * 4217 9), then login, then the argument's presence. */
	struct policy_state st = session_policy(s);
	enum policy_verdict v = policy_before_tls(s->cfg, &st, c->verb,
						  (c->flags & CMD_BEFORE_TLS) != 0);
	if (v != POLICY_ALLOW) {
		ctl_refuse(s, v);
		return;
	}
	if ((c->flags & CMD_LOGIN) && !s->logged_in) {
		ctl_reply(s, need_login.code, "%s", need_login.text);
		return;
	}
	if (c->arg == ARG_REQUIRED && cmd.arg == NULL) {
		ctl_reply(s, FTP_BADARGS, "%s needs an argument.", c->verb);
		return;
	}
	if (c->arg == ARG_NONE && cmd.arg != NULL) {
		ctl_reply(s, FTP_BADARGS, "%s takes no argument.", c->verb);
		return;
	}

	/* RNFR must be followed at once by RNTO (RFC 959): any other command
	 * that gets this far forgets it, refused or not. (REST, by contrast,
	 * waits for its transfer across the PASV or TYPE that clients send in
	 * between, as other servers do.) */
	bool was_rnfr = s->rnfr_set;
	struct refusal no = allowed;
	if ((c->flags & CMD_PRELOGIN) && s->logged_in)
		no = (struct refusal){ FTP_BADSEQ, "Already logged in." };
	else if ((c->flags & CMD_UPLOAD) && s->read_only)
		no = (struct refusal){ FTP_NOPERM, "Permission denied." };
	else if (c->check != NULL)
		no = c->check(s, cmd.arg);
	if (no.code == 0) {
		c->run(s, cmd.arg);
	} else {
		ctl_reply(s, no.code, "%s", no.text);
		/* A refused upload is a refused transfer: like any other, it used
		 * up REST and the data channel. */
		if (c->flags & CMD_UPLOAD) {
			s->rest_set = false;
			s->rest = 0;
			data_close(s);
		}
	}
	if (was_rnfr && c->run != cmd_rnfr)
		s->rnfr_set = false;
}
