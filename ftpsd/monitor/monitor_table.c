/* The monitor's one request table: for each request the child may send,
 * when it may come, how it is decoded (monitor_msg.c, pure and fuzzed) and
 * who does it (monitor.c, monitor_xfer.c). The dispatcher (monitor.c)
 * enforces phases and flags, so no handler checks its own; a request type
 * with no row here ends the session. tests/unit/test-ipc-roundtrip.c
 * checks that every request of IPC_REQUESTS has exactly one row. */
#include <stddef.h>

#include "build_config.h"
#include "ipc.h"
#include "monitor_msg.h"
#include "monitor_session.h"

#define PRE	 PHASE_PRELOGIN
#define LOGGEDIN PHASE_LOGGEDIN
#define BOTH	 (PHASE_PRELOGIN | PHASE_LOGGEDIN)

/* At most so many signatures in a session (data-tls-reuse = off signs one per
 * data connection): a bound on what a child taken over gets from the key. */
#define MON_MAX_SIGNATURES 4096

const struct mon_dispatch monitor_table[] = {
	{ IPC_LOG, BOTH, 0, 0, 0, "log line", mon_decode_log, monitor_log },
	/* Before login the one handshake that needs the key is the control
	 * connection's (data connections wait for the login): a second
	 * signature could only serve a child taken over to pose as this server
	 * elsewhere, for a password or a client's signature. After login, with
	 * data-tls-reuse, every data handshake resumes: the keys are dropped
	 * at login (MON_KEY). */
	{ IPC_SIGN, BOTH, MON_ONCE_PRELOGIN | MON_KEY, MON_MAX_SIGNATURES, 0, "signature",
	  mon_decode_sign, monitor_sign },
	{ IPC_TLS_INFO, BOTH, 0, 0, 0, "TLS description", mon_decode_tls_info, monitor_tls_info },
	{ IPC_HOST, PRE, 0, 0, 0, "virtual host", mon_decode_host, monitor_host },
	/* The control handshake's messages, in parts, then one check of the
	 * client certificate against them: none after it. */
	{ IPC_HANDSHAKE, PRE, 0, 0, IPC_CERT, "handshake messages", mon_decode_handshake,
	  monitor_handshake },
	{ IPC_CERT, PRE, MON_ONCE, 0, 0, "client certificate", mon_decode_cert, monitor_cert },
	{ IPC_USER, PRE, 0, 0, 0, "user", mon_decode_user, monitor_user },
	{ IPC_AUTH, PRE, 0, 0, 0, "password", mon_decode_auth, monitor_auth },
	{ IPC_STAT, LOGGEDIN, 0, 0, 0, "stat", mon_decode_path, monitor_stat },
	{ IPC_OPEN, LOGGEDIN, 0, 0, 0, "open", mon_decode_open, monitor_open },
	{ IPC_UPLOAD_CHECK, LOGGEDIN, 0, 0, 0, "upload check", mon_decode_upload_check,
	  monitor_upload_check },
	{ IPC_QUOTA, LOGGEDIN, 0, 0, 0, "quota", mon_decode_none, monitor_quota },
	{ IPC_XFER, LOGGEDIN, 0, 0, 0, "transfer end", mon_decode_xfer, monitor_xfer },
	{ IPC_PROGRESS, LOGGEDIN, 0, 0, 0, "transfer progress", mon_decode_progress,
	  monitor_progress },
	{ IPC_CONNECT, LOGGEDIN, 0, 0, 0, "active connection", mon_decode_connect,
	  monitor_connect },
	{ IPC_LIST, LOGGEDIN, 0, 0, 0, "listing", mon_decode_list, monitor_list },
	{ IPC_MKDIR, LOGGEDIN, 0, 0, 0, "mkdir", mon_decode_path, monitor_change },
	{ IPC_RMDIR, LOGGEDIN, 0, 0, 0, "rmdir", mon_decode_path, monitor_change },
	{ IPC_DELETE, LOGGEDIN, 0, 0, 0, "delete", mon_decode_path, monitor_change },
	{ IPC_RENAME, LOGGEDIN, 0, 0, 0, "rename", mon_decode_rename, monitor_change },
	{ IPC_CHMOD, LOGGEDIN, 0, 0, 0, "chmod", mon_decode_chmod, monitor_change },
	{ IPC_SETTIME, LOGGEDIN, 0, 0, 0, "set time", mon_decode_settime, monitor_change },
#if FTPSD_TEST_HOOKS
	{ IPC_TEST_HOOK, LOGGEDIN, 0, 0, 0, "test hook", mon_decode_test_hook, monitor_test_hook },
#endif
};

const size_t monitor_table_len = sizeof(monitor_table) / sizeof(monitor_table[0]);

const struct mon_dispatch *monitor_request(unsigned type)
{
	for (size_t i = 0; i < monitor_table_len; i++)
		if (monitor_table[i].type == type)
			return &monitor_table[i];
	return NULL;
}
