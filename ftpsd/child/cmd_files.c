/* Commands on files and directories by path: transfers (RETR STOR APPE STOU
 * and REST), changes to the tree (DELE MKD RMD RNFR RNTO MFMT SITE CHMOD),
 * facts (SIZE MDTM HASH) and the working directory (CWD CDUP PWD). Every
 * path goes to the monitor, which resolves it inside the user's root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "child_mon.h"
#include "cmd.h"
#include "ctls.h"
#include "digest.h"
#include "testhooks.h"

void cmd_pwd(struct session *s, char *arg)
{
	char q[IPC_MAX_PATH * 2];

	if (ftp_quote_path(s->cwd, q, sizeof(q)) < 0) {
		ctl_reply(s, FTP_FILEFAIL, "Path too long.");
		return;
	}
	ctl_reply(s, FTP_PWDOK, "\"%s\" is the current directory.", q);
}

static void change_dir(struct session *s, const char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;

	if (!resolve_path(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0 || !S_ISDIR(st.mode)) {
		ctl_reply(s, FTP_FILEFAIL, "Failed to change directory.");
		return;
	}
	snprintf(s->cwd, sizeof(s->cwd), "%s", path);
	ctl_reply(s, FTP_CWDOK, "Directory successfully changed.");
}

void cmd_cwd(struct session *s, char *arg)
{
	change_dir(s, arg);
}

void cmd_cdup(struct session *s, char *arg)
{
	change_dir(s, "..");
}

void cmd_size(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;

	if (!resolve_path(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0 || !S_ISREG(st.mode)) {
		ctl_reply(s, FTP_FILEFAIL, "Could not get file size.");
		return;
	}
	if (s->type_ascii) {
		/* RFC 3659 4: the size as TYPE A would send it, every LF a CRLF.
		 * That means reading the file, so only up to a limit. */
		uint64_t size, extra = 0;
		bool prev_cr = false;
		int fd;
		if (st.size > (64u << 20) || mm_open(path, IPC_OPEN_READ, 0, &fd, &size, NULL) < 0) {
			ctl_reply(s, FTP_FILEFAIL,
				  "SIZE in ASCII mode is not available for this file; use TYPE I.");
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
		ctl_reply(s, FTP_SIZEOK, "%llu", (unsigned long long)(size + extra));
		return;
	}
	ctl_reply(s, FTP_SIZEOK, "%llu", (unsigned long long)st.size);
}

void cmd_mdtm(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;
	struct tm tm;

	if (!resolve_path(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0 || !S_ISREG(st.mode)) {
		ctl_reply(s, FTP_FILEFAIL, "Could not get file modification time.");
		return;
	}
	time_t t = (time_t)st.mtime;
	/* The answer is YYYYMMDDHHMMSS (RFC 3659 2.3): no year beyond 9999, and
	 * none that gmtime_r cannot hold (tmpfs keeps any 64-bit mtime). */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 - 1900 || tm.tm_year > 9999 - 1900) {
		ctl_reply(s, FTP_FILEFAIL, "Modification time out of range (years 0 to 9999).");
		return;
	}
	ctl_reply(s, FTP_MDTMOK, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The reply for a failed change to the tree. */
static void change_failed(struct session *s, int r, const char *what)
{
	int code = (r == -EINVAL || r == -ENAMETOOLONG) ? FTP_BADFILENAME : FTP_FILEFAIL;
	char text[IPC_MAX_NAME + 160];

	/* The monitor refuses a new file or directory past quota-files; the
	 * kernel's quotas and a full disk are 552 too. */
	if (r == -EDQUOT) {
		data_quota_text(s, true, text, sizeof(text));
		ctl_reply(s, FTP_EXCEEDED, "%s", text);
		return;
	}
	if (r == -ENOSPC)
		code = FTP_EXCEEDED;
	/* Another upload in place is writing the file: try again later. */
	if (r == -EBUSY)
		code = FTP_LOCALERR;
	ctl_reply(s, code, "%s: %s.", what, strerror(-r));
}

static void take_rest(struct session *s, uint64_t *offset)
{
	*offset = s->rest_set ? s->rest : 0;
	s->rest_set = false;
	s->rest = 0;
}

void cmd_retr(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	uint64_t size, offset;
	int fd, r;

	take_rest(s, &offset);
	if (!resolve_path(s, arg, path) || !data_may_start(s, false))
		return;
	r = mm_open(path, IPC_OPEN_SEND, offset, &fd, &size, NULL);
	if (r == -ERANGE) {
		data_close(s);
		ctl_reply(s, FTP_BADREST, "Restart offset %llu is beyond the end of the file.",
			  (unsigned long long)offset);
		return;
	}
	if (r < 0) {
		open_failed(s, r, "Failed to open file");
		return;
	}
	ctl_reply(s, FTP_DATACONN, "Opening %s mode data connection for %s (%llu bytes).",
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

	r = mm_upload_check(path, how, offset);
	if (r == -ERANGE) {
		ctl_reply(s, FTP_BADREST, "Restart offset %llu is beyond the end of the file.",
			  (unsigned long long)offset);
		data_close(s);
		return;
	}
	if (r < 0) {
		change_failed(s, r, "Could not create file");
		data_close(s);
		return;
	}
	if (how == IPC_OPEN_UNIQUE)
		ctl_reply(s, FTP_DATACONN, "FILE: %s", shown);
	else
		ctl_reply(s, FTP_DATACONN, "Ok to send data.");
	struct xfer_request rq = { .dir = XFER_RECV, .file_fd = -1, .how = how, .offset = offset,
				   .ascii = s->type_ascii, .path = path };
	data_start(s, &rq);
}

void cmd_stor(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	uint64_t offset;

	take_rest(s, &offset);
	if (!resolve_path(s, arg, path) || !data_may_start(s, false))
		return;
	store(s, path, IPC_OPEN_WRITE, offset, arg);
}

void cmd_appe(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	uint64_t offset;

	take_rest(s, &offset);
	if (!resolve_path(s, arg, path) || !data_may_start(s, false))
		return;
	store(s, path, IPC_OPEN_APPEND, 0, arg);
}

void cmd_stou(struct session *s, char *arg)
{
	char base[IPC_MAX_PATH], name[IPC_MAX_PATH + 16], path[IPC_MAX_PATH];
	struct mm_stat st;
	uint64_t offset;

	take_rest(s, &offset);
	if (!data_may_start(s, false))
		return;
	if (!resolve_path(s, arg != NULL ? arg : "ftpsd.upload", base))
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
	ctl_reply(s, FTP_BADFILENAME, "Could not find a unique file name.");
	data_close(s);
}

void cmd_rest(struct session *s, char *arg)
{
	uint64_t v;

	if (ftp_parse_offset(arg, &v) < 0) {
		ctl_reply(s, FTP_BADARGS, "REST takes a byte offset.");
		return;
	}
	s->rest = v;
	s->rest_set = true;
	ctl_reply(s, FTP_RESTOK, "Restart position accepted (%llu).", (unsigned long long)v);
}

void cmd_dele(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int r;

	if (!resolve_path(s, arg, path))
		return;
	r = mm_path_op(IPC_DELETE, path);
	if (r < 0)
		change_failed(s, r, "Delete operation failed");
	else
		ctl_reply(s, FTP_DELEOK, "Delete operation successful.");
}

void cmd_mkd(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH], q[IPC_MAX_PATH * 2];
	int r;

	if (!resolve_path(s, arg, path))
		return;
	r = mm_path_op(IPC_MKDIR, path);
	if (r < 0) {
		change_failed(s, r, "Create directory operation failed");
		return;
	}
	if (ftp_quote_path(path, q, sizeof(q)) < 0)
		snprintf(q, sizeof(q), "?");
	ctl_reply(s, FTP_MKDIROK, "\"%s\" created.", q);
}

void cmd_rmd(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int r;

	if (!resolve_path(s, arg, path))
		return;
	r = mm_path_op(IPC_RMDIR, path);
	if (r < 0)
		change_failed(s, r, "Remove directory operation failed");
	else
		ctl_reply(s, FTP_RMDIROK, "Remove directory operation successful.");
}

void cmd_rnfr(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	struct mm_stat st;

	s->rnfr_set = false;
	if (!resolve_path(s, arg, path))
		return;
	if (mm_stat(path, &st) < 0) {
		ctl_reply(s, FTP_FILEFAIL, "RNFR command failed.");
		return;
	}
	snprintf(s->rnfr, sizeof(s->rnfr), "%s", path);
	s->rnfr_set = true;
	ctl_reply(s, FTP_RNFROK, "Ready for RNTO.");
}

void cmd_rnto(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int r;

	s->rnfr_set = false;
	if (!resolve_path(s, arg, path))
		return;
	r = mm_rename(s->rnfr, path);
	if (r == -EDQUOT || r == -ENOSPC)
		change_failed(s, r, "Rename failed");
	else if (r < 0)
		ctl_reply(s, r == -EINVAL || r == -ENAMETOOLONG ? FTP_BADFILENAME : FTP_FILEFAIL,
			  "Rename failed: %s.", strerror(-r));
	else
		ctl_reply(s, FTP_RENAMEOK, "Rename successful.");
}

void cmd_mfmt(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	char *sp = strchr(arg, ' ');
	int64_t t;
	int r;

	if (sp == NULL) {
		ctl_reply(s, FTP_BADARGS, "Syntax: MFMT YYYYMMDDHHMMSS path.");
		return;
	}
	*sp = '\0';
	if (ftp_parse_time(arg, &t) < 0) {
		ctl_reply(s, FTP_BADARGS, "Bad time: use YYYYMMDDHHMMSS.");
		return;
	}
	if (!resolve_path(s, sp + 1, path))
		return;
	r = mm_settime(path, t);
	if (r < 0) {
		change_failed(s, r, "Could not set the modification time");
		return;
	}
	ctl_reply(s, FTP_MFMTOK, "Modify=%s; %s", arg, sp + 1);
}

static void site_chmod(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH], *end;
	char *sp = strchr(arg, ' ');
	unsigned long mode;
	int r;

	if (sp == NULL) {
		ctl_reply(s, FTP_BADARGS, "Syntax: SITE CHMOD mode path.");
		return;
	}
	*sp = '\0';
	errno = 0;
	mode = strtoul(arg, &end, 8);
	if (*end != '\0' || errno != 0 || mode > 07777 || arg[0] == '\0') {
		ctl_reply(s, FTP_BADARGS, "Bad mode: use octal such as 644.");
		return;
	}
	/* A setuid file would run with the user's ids for anyone on the host;
	 * the monitor refuses these bits too. */
	if (mode & 07000) {
		ctl_reply(s, FTP_NOPERM, "SITE CHMOD cannot set setuid, setgid or sticky bits.");
		return;
	}
	if (!resolve_path(s, sp + 1, path))
		return;
	r = mm_chmod(path, (unsigned)mode);
	if (r < 0)
		change_failed(s, r, "SITE CHMOD failed");
	else
		ctl_reply(s, FTP_CHMODOK, "SITE CHMOD command ok.");
}

void cmd_site(struct session *s, char *arg)
{
#if FTPSD_TEST_HOOKS
	if (strncasecmp(arg, "TESTHOOK ", 9) == 0) {
		testhooks_site(s, arg + 9);
		return;
	}
#endif
	if (strncasecmp(arg, "CHMOD ", 6) == 0) {
		site_chmod(s, arg + 6);
		return;
	}
	if (arg_is(arg, "CHMOD")) {
		ctl_reply(s, FTP_BADARGS, "Syntax: SITE CHMOD mode path.");
		return;
	}
	if (arg_is(arg, "HELP")) {
		/* Before login only the configuration is known; after it, the user's. */
		bool chmod = s->logged_in ? !s->no_chmod : s->cfg->chmod;
		ctl_reply(s, FTP_SITEHELP, "SITE commands: %sHELP.", chmod ? "CHMOD " : "");
		return;
	}
	ctl_reply(s, FTP_BADPARAM, "Unknown SITE command.");
}

void cmd_hash(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH], hex[129];
	uint64_t size;
	int fd, r;

	if (!resolve_path(s, arg, path))
		return;
	r = mm_open(path, IPC_OPEN_READ, 0, &fd, &size, NULL);
	if (r < 0) {
		ctl_reply(s, FTP_FILEFAIL, "Cannot hash %s: %s.", arg, strerror(-r));
		return;
	}
	r = digest_file(fd, s->hash_algo, s->buf, s->buf_size, hex, sizeof(hex));
	close(fd);
	if (r < 0) {
		ctl_reply(s, FTP_FILETMPFAIL, "Hashing failed: %s.", strerror(-r));
		return;
	}
	ctl_reply(s, FTP_HASHOK, "%s 0-%llu %s %s", digest_name(s->hash_algo),
		  (unsigned long long)size, hex, arg);
}
