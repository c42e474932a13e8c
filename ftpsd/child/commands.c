/* The command table and its dispatcher. Each command is checked against the
 * session state (TLS policy, login, arguments) here, in one place, before
 * its handler runs. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ftp_parse.h"
#include "policy.h"

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

static void cmd_help(struct session *s, char *arg);

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

/* Parse and run one line. During a transfer, a command that is not answered
 * then is kept and run when the transfer ends. */
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
	struct policy_state st = session_policy(s);
	enum policy_verdict v = policy_before_tls(s->cfg, &st, c->verb,
						  (c->flags & CMD_BEFORE_TLS) != 0);
	if (v != POLICY_ALLOW) {
		ctl_refuse(s, v);
		return;
	}
	if ((c->flags & CMD_LOGIN) && !s->logged_in) {
		ctl_reply(s, FTP_LOGINERR, "Please log in with USER and PASS first.");
		return;
	}
	if ((c->flags & CMD_ARG) && cmd.arg == NULL) {
		ctl_reply(s, FTP_BADARGS, "%s needs an argument.", c->verb);
		return;
	}
	if ((c->flags & CMD_NOARG) && cmd.arg != NULL) {
		ctl_reply(s, FTP_BADARGS, "%s takes no argument.", c->verb);
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
