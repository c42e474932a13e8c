/* Listings: over the data channel (LIST NLST MLSD) or on the control
 * connection (MLST, STAT with a path), and STAT's other answers. The monitor
 * formats every listing; the child only carries it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child_mon.h"
#include "cmd.h"
#include "ctls.h"

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
	if (!resolve_path(s, arg, path) || !data_may_start(s, true))
		return;
	r = mm_list(path, format, flags | s->mlst_facts, orig_arg != NULL ? orig_arg : "", &fd);
	if (r < 0) {
		open_failed(s, r, "Could not list directory");
		return;
	}
	struct stat st;
	size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	ctl_reply(s, FTP_DATACONN, "Here comes the directory listing.");
	struct xfer_request rq = { .dir = XFER_SEND, .file_fd = fd, .size = size, .listing = true,
				   .path = path };
	data_start(s, &rq);
}

void cmd_list(struct session *s, char *arg)
{
	list_common(s, arg, IPC_LIST_LONG);
}

void cmd_nlst(struct session *s, char *arg)
{
	list_common(s, arg, IPC_LIST_NAMES);
}

void cmd_mlsd(struct session *s, char *arg)
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
			ctl_reply_raw(s, line);
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

void cmd_mlst(struct session *s, char *arg)
{
	char path[IPC_MAX_PATH];
	int fd, r;

	if (!resolve_path(s, arg, path))
		return;
	r = mm_list(path, IPC_LIST_MLSD, IPC_LIST_SELF | s->mlst_facts, "", &fd);
	if (r < 0) {
		ctl_reply(s, FTP_FILEFAIL, "%s: %s.", arg != NULL ? arg : path, strerror(-r));
		return;
	}
	ctl_reply_start(s, FTP_MLSTOK, "Listing");
	listing_to_control(s, fd);
	ctl_reply(s, FTP_MLSTOK, "End");
}

void cmd_stat(struct session *s, char *arg)
{
	if (data_transfer_active(s)) {
		if (s->xfer.dir == XFER_RECV)
			ctl_reply(s, FTP_STATFILE_OK, "Status: %llu bytes received for %s.",
				  (unsigned long long)s->xfer.bytes, s->xfer.path);
		else
			ctl_reply(s, FTP_STATFILE_OK, "Status: %llu of %llu bytes sent for %s.",
				  (unsigned long long)s->xfer.bytes,
				  (unsigned long long)s->xfer.size, s->xfer.path);
		return;
	}
	if (arg != NULL) {
		char path[IPC_MAX_PATH];
		int fd, r;
		if (!resolve_path(s, arg, path))
			return;
		r = mm_list(path, IPC_LIST_LONG, 0, arg, &fd);
		if (r < 0) {
			ctl_reply(s, FTP_FILEFAIL, "%s: %s.", arg, strerror(-r));
			return;
		}
		ctl_reply_start(s, FTP_STATFILE_OK, "Status follows:");
		listing_to_control(s, fd);
		ctl_reply(s, FTP_STATFILE_OK, "End of status.");
		return;
	}
	char desc[64] = "none";
	if (s->ctl_tls != NULL)
		ctls_describe(s->ctl_tls, desc, sizeof(desc));
	ctl_reply_start(s, FTP_STATOK, "ftpsd status:");
	char line[512];
	snprintf(line, sizeof(line), " Connected from %s\r\n Logged in as %s\r\n TLS %s, data %s\r\n",
		 s->peer, s->logged_in ? s->user : "(nobody)", desc,
		 s->prot_private ? "Private" : "Clear");
	ctl_reply_raw(s, line);
	ctl_reply(s, FTP_STATOK, "End of status.");
}
