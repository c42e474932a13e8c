/* Decoding and checking of the child's requests, before anything is done
 * with them: pure, so that it can be fuzzed. */
#pragma once

#include <stdint.h>

#include "build_config.h"
#include "ipc.h"

#define MON_MAX_PASSWORD 1024
#define MON_MAX_SIGN_INPUT 2048

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
		struct {
			uint32_t n;
			char path[IPC_MAX_PATH]; /* TEST_HOOK_MONITOR_OPEN, _CREATE */
		} hook;
		uint64_t progress; /* IPC_PROGRESS: bytes so far, as the child says */
		uint32_t port;     /* IPC_CONNECT: 1024-65535 */
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

/* When a request may come, beyond its phases: checked by the dispatcher
 * (monitor.c) against the session, so that no handler checks its own. */
enum {
	MON_ONCE = 1,          /* at most once per session */
	MON_ONCE_PRELOGIN = 2, /* at most once before login */
	MON_KEY = 4,           /* uses a private key: refused once the keys are dropped */
};

struct monitor;
/* Decode a request's fields into r: pure (it only reads m); 0 or -EBADMSG. */
typedef int (*mon_decoder)(struct ipc_msg *m, struct mon_request *r);
/* Do a request and answer it; whatever it may not do has been checked. */
typedef void (*mon_handler)(struct monitor *m, struct mon_request *r);

/* One row of the monitor's request table (monitor_table.c). */
struct mon_dispatch {
	enum ipc_type type;
	unsigned phases;    /* PHASE_* in which it is allowed */
	unsigned flags;     /* MON_* */
	unsigned max;       /* at most this many per session; 0: no limit */
	unsigned until;     /* refused once a request of this type was served; 0: never */
	const char *what;   /* a name for the refusals: "a second client certificate" */
	mon_decoder decode;
	mon_handler handler;
};

/* The one request table and its length. */
extern const struct mon_dispatch monitor_table[];
extern const size_t monitor_table_len;
/* The row of a request type, or NULL (an answer, an unknown type, the test
 * hook in a build without test hooks). */
const struct mon_dispatch *monitor_request(unsigned type);

/* Decode m into r if it is a well-formed request allowed in phase (the
 * table's phases and decoder; no handler is called).
 * 0; -EBADMSG malformed; -EPERM not allowed now; -ENOTSUP unknown type;
 * -EBADF a descriptor came along (the child never sends one). */
int monitor_decode(struct ipc_msg *m, unsigned phase, struct mon_request *r);

/* The decoders, one per request type (IPC_MKDIR, IPC_RMDIR, IPC_DELETE and
 * IPC_STAT share the one of a bare path). */
int mon_decode_log(struct ipc_msg *m, struct mon_request *r);
int mon_decode_sign(struct ipc_msg *m, struct mon_request *r);
int mon_decode_auth(struct ipc_msg *m, struct mon_request *r);
int mon_decode_user(struct ipc_msg *m, struct mon_request *r);
int mon_decode_handshake(struct ipc_msg *m, struct mon_request *r);
int mon_decode_cert(struct ipc_msg *m, struct mon_request *r);
/* A request without fields (IPC_QUOTA). */
int mon_decode_none(struct ipc_msg *m, struct mon_request *r);
int mon_decode_host(struct ipc_msg *m, struct mon_request *r);
int mon_decode_path(struct ipc_msg *m, struct mon_request *r);
int mon_decode_rename(struct ipc_msg *m, struct mon_request *r);
int mon_decode_chmod(struct ipc_msg *m, struct mon_request *r);
int mon_decode_settime(struct ipc_msg *m, struct mon_request *r);
int mon_decode_open(struct ipc_msg *m, struct mon_request *r);
int mon_decode_upload_check(struct ipc_msg *m, struct mon_request *r);
int mon_decode_list(struct ipc_msg *m, struct mon_request *r);
int mon_decode_tls_info(struct ipc_msg *m, struct mon_request *r);
int mon_decode_xfer(struct ipc_msg *m, struct mon_request *r);
int mon_decode_progress(struct ipc_msg *m, struct mon_request *r);
int mon_decode_connect(struct ipc_msg *m, struct mon_request *r);
#if FTPSD_TEST_HOOKS
int mon_decode_test_hook(struct ipc_msg *m, struct mon_request *r);
#endif
