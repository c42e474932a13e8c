/* Commands that answer from the session's settings alone, or change them:
 * FEAT OPTS SYST TYPE MODE STRU NOOP ALLO SMNT. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "ctls.h"
#include "digest.h"

void cmd_noop(struct session *s, char *arg)
{
	ctl_reply(s, FTP_NOOPOK, "NOOP ok.");
}

void cmd_allo(struct session *s, char *arg)
{
	ctl_reply(s, FTP_ALLOOK, "ALLO is not needed here.");
}

void cmd_smnt(struct session *s, char *arg)
{
	ctl_reply(s, FTP_COMMANDNOTIMPL, "SMNT not implemented.");
}

void cmd_syst(struct session *s, char *arg)
{
	ctl_reply(s, FTP_SYSTOK, "UNIX Type: L8");
}

static const struct {
	const char *name;
	unsigned bit;
} mlst_facts[] = {
	{ "type", IPC_FACT_TYPE }, { "size", IPC_FACT_SIZE }, { "modify", IPC_FACT_MODIFY },
	{ "perm", IPC_FACT_PERM }, { "unix.mode", IPC_FACT_UNIX_MODE }, { "unique", IPC_FACT_UNIQUE },
};

void cmd_feat(struct session *s, char *arg)
{
	ctl_reply_start(s, FTP_FEAT, "Features:");
	if (s->cfg->control_tls != TLS_POLICY_OFF)
		ctl_reply_raw(s, " AUTH TLS\r\n AUTH SSL\r\n PBSZ\r\n PROT\r\n");
	if (s->cfg->control_tls != TLS_POLICY_OFF && s->cfg->ccc)
		ctl_reply_raw(s, " CCC\r\n");
	if (s->cfg->active_mode)
		ctl_reply_raw(s, " EPRT\r\n");
	ctl_reply_raw(s, " EPSV\r\n HASH SHA-256*;SHA-1;MD5\r\n HOST\r\n MDTM\r\n MFMT\r\n");
	char mlst[160] = " MLST ";
	for (size_t i = 0; i < sizeof(mlst_facts) / sizeof(mlst_facts[0]); i++)
		snprintf(mlst + strlen(mlst), sizeof(mlst) - strlen(mlst), "%s%s;", mlst_facts[i].name,
			 (s->mlst_facts & mlst_facts[i].bit) ? "*" : "");
	strcat(mlst, "\r\n");
	ctl_reply_raw(s, mlst);
	ctl_reply_raw(s, " PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n");
	ctl_reply(s, FTP_FEAT, "End");
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
	ctl_reply(s, FTP_OPTSOK, "MLST OPTS %s", out);
}

void cmd_opts(struct session *s, char *arg)
{
	if (arg_is(arg, "UTF8 ON") || arg_is(arg, "UTF8")) {
		ctl_reply(s, FTP_OPTSOK, "Always in UTF8 mode.");
		return;
	}
	if (arg_is(arg, "HASH")) {
		ctl_reply(s, FTP_OPTSOK, "%s", digest_name(s->hash_algo));
		return;
	}
	if (strncasecmp(arg, "HASH ", 5) == 0) {
		for (unsigned i = 0; i < DIGEST_COUNT; i++) {
			if (strcasecmp(arg + 5, digest_name(i)) == 0) {
				s->hash_algo = i;
				ctl_reply(s, FTP_OPTSOK, "%s", digest_name(i));
				return;
			}
		}
		ctl_reply(s, FTP_BADARGS, "Unknown hash algorithm.");
		return;
	}
	if (strncasecmp(arg, "MLST ", 5) == 0 || arg_is(arg, "MLST")) {
		opts_mlst(s, arg[4] == ' ' ? arg + 5 : "");
		return;
	}
	ctl_reply(s, FTP_BADARGS, "Option not understood.");
}

void cmd_type(struct session *s, char *arg)
{
	if (arg_is(arg, "I") || arg_is(arg, "L 8")) {
		s->type_ascii = false;
		ctl_reply(s, FTP_TYPEOK, "Switching to Binary mode.");
	} else if (arg_is(arg, "A") || arg_is(arg, "A N")) {
		s->type_ascii = true;
		ctl_reply(s, FTP_TYPEOK, "Switching to ASCII mode.");
	} else {
		ctl_reply(s, FTP_BADPARAM, "Type not supported.");
	}
}

void cmd_mode(struct session *s, char *arg)
{
	if (arg_is(arg, "S"))
		ctl_reply(s, FTP_MODEOK, "Mode set to S.");
	else
		ctl_reply(s, FTP_BADPARAM, "Only stream mode is supported.");
}

void cmd_stru(struct session *s, char *arg)
{
	if (arg_is(arg, "F"))
		ctl_reply(s, FTP_STRUOK, "Structure set to F.");
	else
		ctl_reply(s, FTP_BADPARAM, "Only file structure is supported.");
}
