/* Decoding and checking of the child's requests, before anything is done
 * with them: pure, so that it can be fuzzed. */
#pragma once

#include <stdint.h>

#include "build_config.h"
#include "ipc.h"

#define MON_MAX_PASSWORD 1024
#define MON_MAX_SIGN_INPUT 2048

/* Test hooks (test builds only): what the monitor is made to do. */
enum { TEST_HOOK_MONITOR_EXEC = 1, TEST_HOOK_MONITOR_SOCKET = 2 };

/* Session phases: what the child may ask for. */
enum { PHASE_PRELOGIN = 1, PHASE_LOGGEDIN = 2 };

struct mon_request {
	enum ipc_type type;
	union {
		struct {
			uint32_t priority;
			char line[1024];
			uint32_t event; /* IPC_EVENT_* */
		} log;
		struct {
			uint32_t identity, kind, algo, flags;
			const uint8_t *input; /* points into the message */
			size_t len;
		} sign;
		struct {
			char user[IPC_MAX_NAME];
			char password[MON_MAX_PASSWORD];
			uint32_t session; /* IPC_SESSION_* */
		} auth;
		struct {
			const uint8_t *data; /* points into the message */
			size_t len;
		} part; /* IPC_HANDSHAKE */
		uint32_t hook;
		uint32_t identity; /* IPC_HOST */
		struct {
			char version[32];
			char cipher[64];
		} tls;
		struct {
			char path[IPC_MAX_PATH];
			uint32_t direction, flags;
			uint64_t bytes, ms;
		} xfer;
		struct {
			char path[IPC_MAX_PATH];
			uint32_t how;     /* IPC_OPEN */
			uint64_t offset;  /* IPC_OPEN */
			uint32_t format;  /* IPC_LIST */
			uint32_t flags;   /* IPC_LIST */
			uint32_t mode;    /* IPC_CHMOD */
			int64_t mtime;    /* IPC_SETTIME */
			char to[IPC_MAX_PATH]; /* IPC_RENAME; IPC_LIST: the argument as the client gave it */
		} file;
	} u;
};

/* Decode m into r if it is a well-formed request allowed in phase.
 * 0; -EBADMSG malformed; -EPERM not allowed now; -ENOTSUP unknown type;
 * -EBADF a descriptor came along (the child never sends one). */
int monitor_decode(struct ipc_msg *m, unsigned phase, struct mon_request *r);
