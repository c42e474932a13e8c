/* The child's side of the monitor protocol: one stub per monitor request.
 * Any anomaly on the channel ends the child. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc.h"

struct mm_stat {
	uint32_t mode;
	uint64_t size;
	int64_t mtime;
};

void mm_init(int fd);
/* Wait at most ms for each answer; past it, silent() runs (it should tell
 * the client and end the session) and the child ends. */
void mm_set_timeout(unsigned ms, void (*silent)(void));
/* The monitor's socket, polled so that the child notices the monitor's death
 * (PR_SET_PDEATHSIG cannot: the monitor may run as a user that may not
 * signal the child). */
int mm_socket(void);
/* Has the monitor told the session to end (IPC_SHUTDOWN: the administrator
 * ended it)? readable: its socket polled readable, so a message is read
 * now; false then means it is gone. */
bool mm_shutdown_asked(bool readable);
/* Forward a log line (the child's log sink). */
void mm_log(int priority, const char *line);
/* A log line that is an event the admin searches for (IPC_EVENT_*). */
void mm_event(unsigned event, int priority, const char *line);
int mm_sign(unsigned identity, unsigned kind, unsigned algo, unsigned flags, const void *in,
	    size_t n, uint8_t *out, size_t *outlen, size_t max);
/* HOST or SNI chose a virtual host (no answer). */
void mm_host(unsigned identity);
/* What the monitor says at login. */
struct mm_login {
	unsigned flags;                      /* IPC_USER_* */
	uint8_t ticket_key[IPC_TICKET_KEY]; /* this user's TLS ticket key (tls_login_tickets) */
	size_t ticket_key_len;               /* 0 (no TLS) or IPC_TICKET_KEY */
	char refusal[160];                   /* IPC_AUTH_TOO_MANY: the 421's text */
};
/* 0 with *login, IPC_AUTH_FAILED, IPC_AUTH_LOCKED or -errno. */
int mm_auth(const char *user, const char *password, bool tls, struct mm_login *login);
/* USER: IPC_USER_PASSWORD, IPC_USER_LOGGED_IN (with *login), a refusal, or
 * IPC_AUTH_LOCKED (too many USERs: the session must end). */
int mm_user(const char *user, bool tls, struct mm_login *login);
/* The control handshake's messages (tls_handshake_messages), from which the
 * monitor checks the client's certificate: 0 trusted, -EACCES. */
int mm_cert(const uint8_t *msgs, size_t len);
int mm_stat(const char *path, struct mm_stat *st);
/* allowance (may be NULL): what an upload may add (quota-bytes), UINT64_MAX
 * for no limit. */
int mm_open(const char *path, unsigned how, uint64_t offset, int *fd, uint64_t *size,
	    uint64_t *allowance);
/* May an upload (IPC_OPEN_WRITE, APPEND, UNIQUE) start? 0 or -errno. */
int mm_upload_check(const char *path, unsigned how, uint64_t offset);
/* The user's quota and usage, for the text of a 552 (limits 0: none). */
struct mm_quota {
	uint64_t bytes, max_bytes, files, max_files;
};
int mm_quota(struct mm_quota *q);
int mm_list(const char *path, unsigned format, unsigned flags, const char *arg, int *fd);
/* Active mode: a socket connected, or connecting, to the client at port
 * (1024-65535), made by the monitor: 0 and *fd, or -errno. */
int mm_connect(unsigned port, int *fd);
/* IPC_MKDIR, IPC_RMDIR, IPC_DELETE: one path, 0 or -errno. */
int mm_path_op(unsigned type, const char *path);
int mm_rename(const char *from, const char *to);
int mm_chmod(const char *path, unsigned mode);
int mm_settime(const char *path, int64_t mtime);
/* Test builds: ask the monitor to run a test hook; its answer, if it lives. */
int mm_test_hook(unsigned hook, const char *path);
/* Tell the monitor what TLS the control connection uses. */
void mm_tls_info(const char *version, const char *cipher);
/* A transfer ended (IPC_XFER_* flags): the monitor logs it and puts a
 * complete upload in place. 0, or -errno when that failed. */
int mm_xfer(const char *path, unsigned direction, uint64_t bytes, uint64_t ms, unsigned flags);
/* A transfer's progress, about once a second: the bytes so far, for the
 * monitor's record and title. The answer: the rate in bytes per second the
 * transfer must stay under, 0 for no limit. */
uint64_t mm_progress(uint64_t bytes);
