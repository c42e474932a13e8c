/* The command handlers, one file per concern, and what they share. Each
 * handler is registered in the command table (commands.c), whose dispatcher
 * has checked the command against the session's state before it runs: a
 * handler does the command's work, nothing else. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "data.h"
#include "ftp_codes.h"
#include "ftp_parse.h"
#include "ipc.h"
#include "session.h"

/* arg: the command's argument, NULL when there is none (the table says
 * whether one is required or refused). */
typedef void cmd_fn(struct session *s, char *arg);

/* cmd_session.c */
cmd_fn cmd_user, cmd_pass, cmd_rein, cmd_acct, cmd_quit, cmd_host, cmd_auth, cmd_pbsz, cmd_prot,
	cmd_ccc;
/* cmd_info.c */
cmd_fn cmd_feat, cmd_opts, cmd_syst, cmd_type, cmd_mode, cmd_stru, cmd_noop, cmd_allo, cmd_smnt;
/* cmd_files.c */
cmd_fn cmd_retr, cmd_stor, cmd_appe, cmd_stou, cmd_rest, cmd_dele, cmd_mkd, cmd_rmd, cmd_rnfr,
	cmd_rnto, cmd_mfmt, cmd_site, cmd_size, cmd_mdtm, cmd_hash, cmd_cwd, cmd_cdup, cmd_pwd;
/* cmd_list.c */
cmd_fn cmd_list, cmd_nlst, cmd_mlsd, cmd_mlst, cmd_stat;
/* cmd_data.c */
cmd_fn cmd_pasv, cmd_epsv, cmd_port, cmd_eprt, cmd_abor;

static inline bool arg_is(const char *arg, const char *want)
{
	return arg != NULL && strcasecmp(arg, want) == 0;
}

/* PROT's level: one letter, or '?' for anything else. */
static inline char prot_level(const char *arg)
{
	return strlen(arg) == 1 ? arg[0] : '?';
}

/* The client's path (arg, NULL for none) made absolute against the working
 * directory into path (IPC_MAX_PATH bytes); false after answering 553. */
static inline bool resolve_path(struct session *s, const char *arg, char *path)
{
	if (arg != NULL && strchr(arg, '\r') != NULL) {
		ctl_reply(s, FTP_BADFILENAME, "File name not allowed.");
		return false;
	}
	if (ftp_path_resolve(s->cwd, arg != NULL ? arg : "", path, IPC_MAX_PATH) < 0) {
		ctl_reply(s, FTP_BADFILENAME, "Path too long.");
		return false;
	}
	return true;
}

/* What a transfer was to send could not be opened (-errno r): 550, and the
 * data channel goes. */
static inline void open_failed(struct session *s, int r, const char *what)
{
	ctl_reply(s, FTP_FILEFAIL, "%s: %s.", what, strerror(-r));
	data_close(s);
}
