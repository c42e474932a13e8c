/* Messages between the child and the monitor over a SOCK_SEQPACKET pair:
 * one datagram per message, a fixed header, typed fields, at most one
 * descriptor. Every getter checks bounds and ipc_get_end() checks that the
 * whole message was consumed: a message with one byte too many is as bad as
 * one with a byte too few. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_MAX_PAYLOAD 16384
#define IPC_MAX_PATH 4096
#define IPC_MAX_NAME 256

/* Requests from the child, written once: the enum below and the tests
 * that check the monitor's table (one row per request) both expand it.
 * X(name, value) and, beside each, its fields -> the answer's fields. */
#define IPC_REQUESTS(X)                                                                            \
	X(IPC_LOG, 1)   /* u32 priority, str line, u32 event (IPC_EVENT_*) -> i32 0 */             \
	X(IPC_SIGN, 2)  /* u32 identity, u32 kind, u32 algo, u32 flags, bytes input                 \
			 * -> i32 rc, bytes signature */                                           \
	X(IPC_AUTH, 3)  /* str user, str password, u32 session flags -> i32 rc; at login also       \
			 * u32 user flags, bytes ticket key (0 or IPC_TICKET_KEY bytes) */         \
	X(IPC_STAT, 4)  /* str path -> i32 rc, u32 mode, u64 size, i64 mtime */                    \
	X(IPC_OPEN, 5)  /* str path, u32 how, u64 offset -> i32 rc, u64 size, u64 allowance        \
			 * (the bytes an upload may add: quota-bytes; UINT64_MAX, none); + fd.  \
			 * IPC_OPEN_SEND and the writing hows start a transfer, which           \
			 * IPC_XFER ends (the monitor logs it even if the child dies). */         \
	X(IPC_LIST, 6)  /* str path, u32 format, u32 flags, str arg -> i32 rc; + memfd */          \
	X(IPC_MKDIR, 7)    /* str path -> i32 rc */                                                \
	X(IPC_RMDIR, 8)    /* str path -> i32 rc */                                                \
	X(IPC_DELETE, 9)   /* str path -> i32 rc */                                                \
	X(IPC_RENAME, 10)  /* str from, str to -> i32 rc */                                        \
	X(IPC_CHMOD, 11)   /* str path, u32 mode -> i32 rc */                                      \
	X(IPC_SETTIME, 12) /* str path, i64 mtime -> i32 rc */                                     \
	X(IPC_TLS_INFO, 13) /* str version, str cipher -> i32 0 */                                 \
	X(IPC_XFER, 14) /* str path, u32 direction, u64 bytes, u64 ms, u32 flags -> i32 rc:         \
			 * a transfer ended; an upload's file is put in place here */              \
	X(IPC_USER, 15) /* str user, u32 session flags -> i32 rc (IPC_USER_*); at login            \
			 * (a client certificate) also what IPC_AUTH answers */                    \
	X(IPC_CERT, 16) /* (nothing) -> i32 rc: check the client certificate in the handshake sent */ \
	X(IPC_HOST, 17) /* u32 identity (0 global, i+1 virtual host i) -> i32 0 */                 \
	X(IPC_HANDSHAKE, 18) /* bytes part of the control handshake's messages -> i32 0 */        \
	X(IPC_UPLOAD_CHECK, 19) /* str path, u32 how, u64 offset -> i32 rc: may this upload        \
				 * start? (nothing is created before the data connection) */      \
	X(IPC_PROGRESS, 20) /* u64 bytes so far -> i32 0, u64 rate (bytes/s the transfer must    \
			     * stay under, 0: unlimited): at most about once a second during a    \
			     * transfer; the bytes are the child's claim, for display only */    \
	X(IPC_QUOTA, 21) /* (nothing) -> i32 rc, u64 bytes used, u64 quota-bytes, u64 files used, \
			  * u64 quota-files (0: none): for the text of a 552 */               \
	X(IPC_CONNECT, 22) /* u32 port (1024-65535) -> i32 rc; + fd: active mode's data     \
			    * connection, a TCP socket to the control connection's client at    \
			    * port, not blocking, connected or connecting (the child has no    \
			    * connect of its own) */                                           \
	X(IPC_TEST_HOOK, 99) /* u32 hook -> i32 rc; only in builds with -Dtest-hooks=true */

/* Even log lines are answered (always IPC_ANSWER): what the child logs is
 * written before the client can see the reply that follows it. */
enum ipc_type {
#define IPC_REQUEST_ENUM_(name, value) name = value,
	IPC_REQUESTS(IPC_REQUEST_ENUM_)
#undef IPC_REQUEST_ENUM_
	IPC_ANSWER = 100,
	/* The one message the monitor sends unasked (no fields, no answer): the
	 * administrator ended the session (SIGTERM to the monitor); the child
	 * says 421 and ends it. */
	IPC_SHUTDOWN = 101,
};

/* IPC_SIGN kinds */
enum { IPC_SIGN_DATA = 0, IPC_SIGN_HASH = 1 };
/* IPC_OPEN hows. READ is a look at a file (HASH, SIZE); SEND is RETR's file,
 * from offset; WRITE (STOR, from offset), APPEND and UNIQUE (STOU, a new name
 * only) are uploads. */
enum {
	IPC_OPEN_READ = 0,
	IPC_OPEN_WRITE = 1,
	IPC_OPEN_APPEND = 2,
	IPC_OPEN_UNIQUE = 3,
	IPC_OPEN_SEND = 4,
};
/* IPC_LIST formats and flags */
enum { IPC_LIST_LONG = 0, IPC_LIST_NAMES = 1, IPC_LIST_MLSD = 2 };
enum { IPC_LIST_ALL = 1, IPC_LIST_SELF = 2 };
/* IPC_LIST flags: the MLST/MLSD facts wanted (OPTS MLST) */
enum {
	IPC_FACT_TYPE = 1 << 8,
	IPC_FACT_SIZE = 1 << 9,
	IPC_FACT_MODIFY = 1 << 10,
	IPC_FACT_PERM = 1 << 11,
	IPC_FACT_UNIX_MODE = 1 << 12,
	IPC_FACT_UNIQUE = 1 << 13,
	IPC_FACTS_ALL = 0x3f << 8,
};
/* IPC_XFER directions and flags */
enum { IPC_XFER_SENT = 0, IPC_XFER_RECEIVED = 1 };
/* COMPLETE: every byte arrived or left (an upload is put in place);
 * UNSURE: an upload ended by the TCP close alone, without TLS close_notify,
 * so it may be cut short (put in place unless data-tls-strict-eof, and
 * logged incomplete). */
enum { IPC_XFER_COMPLETE = 1, IPC_XFER_ASCII = 2, IPC_XFER_UNSURE = 4 };
/* IPC_AUTH answer flags */
enum {
	IPC_USER_READ_ONLY = 1,
	IPC_USER_NO_CHMOD = 2, /* chmod = off, or the users-file's chmod=off */
	IPC_USER_DATA_TLS_ANY = 4, /* data connections need not resume (data-tls-reuse = off) */
};
/* The TLS session ticket key the monitor derives at login (GnuTLS's size). */
#define IPC_TICKET_KEY 64
/* IPC_LOG events: a journal field FTPSD_EVENT the monitor adds. */
enum { IPC_EVENT_NONE = 0, IPC_EVENT_DATA_TLS_NOT_RESUMED = 1, IPC_EVENT_MAX = 1 };
/* IPC_AUTH answer codes besides 0 and -errno */
#define IPC_AUTH_FAILED (-EACCES)
#define IPC_AUTH_LOCKED (-EUSERS)
#define IPC_AUTH_NEEDS_TLS (-EPERM)     /* this user must log in over TLS */
#define IPC_AUTH_FORBIDS_TLS (-EPROTO)  /* this user must not */
/* Too many sessions of this user: the answer (to IPC_AUTH or IPC_USER)
 * also holds str the 421's text; the session ends. */
#define IPC_AUTH_TOO_MANY (-ETOOMANYREFS)
/* Session flags sent with IPC_USER and IPC_AUTH */
enum { IPC_SESSION_TLS = 1 };
/* IPC_USER answers */
enum { IPC_USER_PASSWORD = 0, IPC_USER_LOGGED_IN = 1 };
#define IPC_MAX_CERTS 4
/* TLS identities: the global certificate and one per virtual host. */
#define IPC_MAX_IDENTITIES 17

struct ipc_msg {
	uint16_t type;
	size_t len; /* bytes of payload */
	size_t pos; /* read position */
	bool overflow;
	int fd;     /* received or to be sent, -1 when none */
	uint8_t payload[IPC_MAX_PAYLOAD];
};

/* Start an empty message of a type. */
void ipc_init(struct ipc_msg *m, enum ipc_type type);
void ipc_put_u32(struct ipc_msg *m, uint32_t v);
void ipc_put_i32(struct ipc_msg *m, int32_t v);
void ipc_put_u64(struct ipc_msg *m, uint64_t v);
void ipc_put_i64(struct ipc_msg *m, int64_t v);
void ipc_put_bytes(struct ipc_msg *m, const void *p, size_t n);
void ipc_put_str(struct ipc_msg *m, const char *s);

/* Getters return 0 or -EBADMSG. */
int ipc_get_u32(struct ipc_msg *m, uint32_t *v);
int ipc_get_i32(struct ipc_msg *m, int32_t *v);
int ipc_get_u64(struct ipc_msg *m, uint64_t *v);
int ipc_get_i64(struct ipc_msg *m, int64_t *v);
/* Points into the message; n is at most max. */
int ipc_get_bytes(struct ipc_msg *m, const uint8_t **p, size_t *n, size_t max);
/* Copies a string of at most size-1 bytes with no NUL inside. */
int ipc_get_str(struct ipc_msg *m, char *out, size_t size);
/* 0 when every byte was consumed. */
int ipc_get_end(const struct ipc_msg *m);

/* Decode a datagram (header + payload) into m; for ipc_recv and the fuzzer. */
int ipc_decode(struct ipc_msg *m, const uint8_t *buf, size_t n);

/* Send m (and m->fd when >= 0). 0 or -errno. */
int ipc_send(int sock, const struct ipc_msg *m);
/* Receive one message; -ECONNRESET on EOF, -EBADMSG on a malformed one. */
int ipc_recv(int sock, struct ipc_msg *m);

/* Test hooks (test builds only): what the monitor is made to do (IPC_TEST_HOOK's number). */
enum {
	TEST_HOOK_MONITOR_EXEC = 1,
	TEST_HOOK_MONITOR_SOCKET = 2,
	TEST_HOOK_MONITOR_OPEN = 3,   /* read path, by openat2 outside the user's root */
	TEST_HOOK_MONITOR_CREATE = 4, /* create path, the same way */
};
