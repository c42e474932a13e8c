/* Test builds only (-Dtest-hooks=true): SITE TESTHOOK, which makes a
 * process of this session try what its sandbox must stop. Empty otherwise. */
#include "testhooks.h"

#if FTPSD_TEST_HOOKS
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child_mon.h"
#include "ctl.h"
#include "ctls.h"
#include "ftp_codes.h"
#include "ipc.h"
#include "log.h"
#include "session.h"
#include "tls_proof.h"

/* Test builds only: a syscall that opens files (or connects), made raw. glibc's open() is
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
		ctl_reply(s, FTP_COMMANDNOTIMPL, "No open syscall on this architecture.");
		return;
#endif
	} else if (strcasecmp(what, "CREAT") == 0) {
#ifdef SYS_creat
		r = syscall(SYS_creat, missing, 0600);
#else
		ctl_reply(s, FTP_COMMANDNOTIMPL, "No creat syscall on this architecture.");
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
	} else if (strcasecmp(what, "TCP-FASTOPEN") == 0) {
		/* A connect by another name: sendto(MSG_FASTOPEN) to the
		 * client's port 2121. */
		struct sockaddr_storage a = s->peer_addr;
		socklen_t len = a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
							 sizeof(struct sockaddr_in);
		if (a.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&a)->sin6_port = htons(2121);
		else
			((struct sockaddr_in *)&a)->sin_port = htons(2121);
		int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		r = fd < 0 ? -1 : sendto(fd, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&a, len);
		if (fd >= 0)
			close(fd);
	} else if (strcasecmp(what, "MPTCP") == 0) {
		/* Multipath TCP, which Landlock's TCP rules do not cover. */
		r = socket(AF_INET, SOCK_STREAM, 262 /* IPPROTO_MPTCP */);
	} else {
		ctl_reply(s, FTP_BADARGS, "Unknown test hook.");
		return;
	}
	ctl_reply(s, FTP_CMDOK, "%s returned %ld", what, r);
}

/* Test builds only: "CHILD-BIND port" binds a TCP socket to that port of
 * the control connection's local address (what Landlock's port rules
 * decide: seccomp allows the call), "CHILD-CONNECT port" connects to that
 * port of the client's (seccomp kills: active mode's connections are the
 * monitor's). The answer says the errno. */
static void site_testhook_tcp(struct session *s, const char *what)
{
	bool bind_it = strncasecmp(what, "CHILD-BIND ", 11) == 0;
	unsigned port;
	struct sockaddr_storage a;
	socklen_t len;
	int fd, r;

	if (sscanf(what + (bind_it ? 11 : 14), "%u", &port) != 1 || port > 65535) {
		ctl_reply(s, FTP_BADARGS, "Syntax: SITE TESTHOOK CHILD-BIND|CHILD-CONNECT port.");
		return;
	}
	a = bind_it ? s->local_addr : s->peer_addr;
	if (a.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	}
	fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ctl_reply(s, FTP_CMDOK, "socket failed: errno %d", errno);
		return;
	}
	r = bind_it ? bind(fd, (struct sockaddr *)&a, len) : connect(fd, (struct sockaddr *)&a, len);
	ctl_reply(s, FTP_CMDOK, "%s returned %d errno %d", bind_it ? "bind" : "connect", r,
		  r < 0 ? errno : 0);
	close(fd);
}

static bool ignore_quota;

bool testhooks_ignore_quota(void)
{
	return ignore_quota;
}

/* Test builds only: make a process of this session break its sandbox. */
void testhooks_site(struct session *s, const char *what)
{
	log_warn("test hook %s", what);
	if (strcasecmp(what, "IGNORE-QUOTA") == 0) {
		ignore_quota = true;
		ctl_reply(s, FTP_CMDOK, "Uploads ignore their allowance from now on.");
	} else if (strcasecmp(what, "CHILD-OPEN") == 0) {
		int fd = open("/etc/passwd", O_RDONLY);
		ctl_reply(s, FTP_CMDOK, "open returned %d", fd);
	} else if (strncasecmp(what, "CHILD-RAW-", 10) == 0) {
		site_testhook_raw(s, what + 10);
	} else if (strcasecmp(what, "CHILD-EXEC") == 0) {
		char *argv[] = { "/bin/true", NULL };
		execv(argv[0], argv);
		ctl_reply(s, FTP_CMDOK, "exec returned");
	} else if (strcasecmp(what, "CHILD-UNIX-SOCKET") == 0) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		ctl_reply(s, FTP_CMDOK, "socket returned %d", fd);
	} else if (strcasecmp(what, "SIGN") == 0) {
		/* The signing oracle used once more than a handshake needs. */
		uint8_t sig[2048];
		size_t n = 0;
		int r = mm_sign(s->identity, IPC_SIGN_DATA, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, "x", 1,
				sig, &n, sizeof(sig));
		ctl_reply(s, FTP_CMDOK, "monitor signed %d", r);
	} else if (strncasecmp(what, "CERT-CLAIM ", 11) == 0) {
		/* A certificate the child has seen, claimed as the client's. */
		static uint8_t der[2048], msgs[TLS_PROOF_MAX];
		size_t n = 0, len;
		const char *hex = what + 11;
		size_t digits = strlen(hex);
		unsigned byte;
		while (n < sizeof(der) && 2 * n + 1 < digits && sscanf(hex + 2 * n, "%2x", &byte) == 1)
			der[n++] = (uint8_t)byte;
		if (n == 0 || ctls_test_forge_claim(der, n, msgs, &len) < 0)
			ctl_reply(s, FTP_BADARGS, "Bad certificate.");
		else
			ctl_reply(s, FTP_CMDOK, "monitor answered %d", mm_cert(msgs, len));
	} else if (strncasecmp(what, "CHMOD ", 6) == 0) {
		/* IPC_CHMOD as a child taken over would send it, past the checks
		 * of site_chmod: "CHMOD 4755 /path". */
		unsigned mode;
		char path[IPC_MAX_PATH];
		if (sscanf(what + 6, "%o %4095s", &mode, path) != 2)
			ctl_reply(s, FTP_BADARGS, "Syntax: SITE TESTHOOK CHMOD mode /path.");
		else
			ctl_reply(s, FTP_CMDOK, "monitor answered %d", mm_chmod(path, mode));
	} else if (strncasecmp(what, "CHILD-BIND ", 11) == 0 ||
		   strncasecmp(what, "CHILD-CONNECT ", 14) == 0) {
		site_testhook_tcp(s, what);
	} else if (strncasecmp(what, "ASK-CONNECT ", 12) == 0) {
		/* IPC_CONNECT as a child taken over would send it: any port. */
		unsigned port = 0;
		int fd = -1;
		if (sscanf(what + 12, "%u", &port) != 1) {
			ctl_reply(s, FTP_BADARGS, "Syntax: SITE TESTHOOK ASK-CONNECT port.");
			return;
		}
		int r = mm_connect(port, &fd);
		ctl_reply(s, FTP_CMDOK, "monitor answered %d", r);
		if (fd >= 0)
			close(fd);
	} else if (strncasecmp(what, "MONITOR-OPEN ", 13) == 0) {
		ctl_reply(s, FTP_CMDOK, "monitor answered %d",
			  mm_test_hook(TEST_HOOK_MONITOR_OPEN, what + 13));
	} else if (strncasecmp(what, "MONITOR-CREATE ", 15) == 0) {
		ctl_reply(s, FTP_CMDOK, "monitor answered %d",
			  mm_test_hook(TEST_HOOK_MONITOR_CREATE, what + 15));
	} else if (strcasecmp(what, "MONITOR-EXEC") == 0) {
		ctl_reply(s, FTP_CMDOK, "monitor answered %d", mm_test_hook(TEST_HOOK_MONITOR_EXEC, ""));
	} else if (strcasecmp(what, "MONITOR-SOCKET") == 0 ||
		   strcasecmp(what, "MONITOR-UNIX-SOCKET") == 0) {
		ctl_reply(s, FTP_CMDOK, "monitor answered %d",
			  mm_test_hook(TEST_HOOK_MONITOR_SOCKET,
				       strcasecmp(what, "MONITOR-SOCKET") == 0 ? "" : "unix"));
	} else {
		ctl_reply(s, FTP_BADARGS, "Unknown test hook.");
	}
}
#endif
