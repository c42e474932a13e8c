/* The child's FTP session: its state, shared by the session (session.c),
 * the control connection (ctl.c), the commands (commands.c, cmd_*.c) and the
 * data channel (data.c). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "ftp_parse.h"
#include "ipc.h"
#include "policy.h"
#include "proxy.h"
#include "rate.h"

struct ctls;

enum xfer_dir { XFER_NONE, XFER_SEND, XFER_RECV };
enum xfer_phase { XP_WAIT_CONN, XP_HANDSHAKE, XP_RUN, XP_BYE };

struct transfer {
	enum xfer_dir dir;
	enum xfer_phase phase;
	int file_fd;
	bool listing;
	uint64_t offset;   /* next file offset */
	uint64_t size;     /* file size at open, for the 150 and STAT */
	uint64_t bytes;    /* moved so far */
	size_t buf_len, buf_off; /* bytes waiting in out[] to be sent */
	uint8_t *out;      /* what is sent: the file buffer, or its ASCII form */
	bool ascii;        /* TYPE A: LF <-> CRLF on the fly */
	bool prev_cr;      /* ASCII state across buffers */
	bool eof_clean;    /* PROT P upload ended with close_notify */
	bool unsure;       /* PROT P upload ended without it: perhaps cut short */
	unsigned how;      /* uploads: IPC_OPEN_WRITE, APPEND or UNIQUE */
	uint64_t allowance; /* uploads: the bytes the quota lets it write (the monitor's) */
	uint64_t written;   /* uploads: bytes written to the file */
	uint64_t start_ms;
	uint64_t progress_ms; /* when the monitor was last told the bytes (IPC_PROGRESS) */
	uint64_t rate;        /* bytes/s to stay under, as the monitor answered; 0: no limit */
	struct rate pace;     /* ... kept by this token bucket */
	bool paced;           /* the monitor was asked for the rate before the first byte */
	bool throttled;       /* ahead of the rate: the data socket waits */
	char path[IPC_MAX_PATH];
};

/* Passive data connections from a balancer (proxy-protocol-from) that have
 * not yet said, in their PROXY header, whose they are. Bounded: when all
 * slots are taken, the oldest goes; each waits at most DATA_HEADER_MS. */
#define DATA_PENDING_MAX 4
#define DATA_HEADER_MS 5000

struct data_pending {
	int fd;                        /* -1: a free slot */
	uint64_t deadline_ms;
	size_t have;                   /* bytes of the header read so far */
	uint8_t buf[PROXY_MAX_HEADER];
	struct sockaddr_storage from;  /* the balancer */
};

struct session {
	const struct config *cfg;      /* the session's: global, or its virtual host's */
	const struct config *root_cfg; /* the whole file */
	unsigned identity;             /* TLS identity: 0 global, i+1 virtual host i */
	int ctl;
	struct ctls *ctl_tls;
	struct ftp_linebuf in;
	char *pending;            /* a command read during a transfer, run after it */
	size_t pending_len;
	struct sockaddr_storage peer_addr, local_addr;
	char peer[64];

	bool pbsz, prot_private;
	bool secured;              /* AUTH succeeded (the control connection may be cleared since) */
	bool user_given, logged_in, read_only;
	bool memory_released; /* memory_release() after login, once */
	bool no_chmod;             /* SITE CHMOD disabled for this user (IPC_USER_NO_CHMOD) */
	bool data_tls_reuse;       /* data connections must resume (data-tls-reuse, per user) */
	bool epsv_all;
	bool after_ccc;            /* the client's close_notify may follow CCC */
	unsigned failures;
	char user[IPC_MAX_NAME];
	char cwd[IPC_MAX_PATH];
	uint64_t session_start_ms, last_activity_ms;

	/* data channel */
	int pasv_fd;
	int data_fd;
	struct ctls *data_tls;
	bool data_handshaken;
	bool data_failed;
	bool data_unresumed; /* it failed as a full TLS handshake where one had to resume */
	bool active;               /* PORT/EPRT given: connect at the transfer */
	bool data_connecting;
	struct sockaddr_storage active_addr;
	struct data_pending waiting[DATA_PENDING_MAX]; /* from a balancer, before their header */
	struct transfer xfer;
	uint8_t *buf;
	size_t buf_size;
	uint8_t *abuf;            /* ASCII conversions, twice buf_size */

	bool type_ascii;
	uint64_t rest;            /* REST offset for the next transfer */
	bool rest_set;
	char rnfr[IPC_MAX_PATH];  /* RNFR path, waiting for RNTO */
	bool rnfr_set;
	unsigned hash_algo;       /* OPTS HASH */
	bool host_given;
	unsigned mlst_facts;      /* IPC_FACT_*, chosen with OPTS MLST */
};

/* session.c */
/* Run the session on the control connection; never returns. A refusal
 * ("" for none) is said as a 421 after the implicit TLS handshake. */
void session_run(const struct config *cfg, int ctl, bool implicit, const char *peer,
		 const struct sockaddr_storage *peer_addr, const char *refusal)
	__attribute__((__noreturn__));

/* How a session ends. */
enum session_exit {
	SESSION_DONE,       /* exit 0: the client quit or went away, a timeout, a 421 */
	SESSION_FAILED,     /* exit 1: something the session needs failed */
	SESSION_NO_MONITOR, /* exit 1: the monitor is silent or gone, and the log with it */
};
/* The one end of every session, whatever ends it: a transfer still running
 * is reported as cut off, why the session ends is logged (one line, fmt;
 * not when the monitor, the log's only way out, is the reason), the control
 * connection gets our close_notify if TLS is up there (one try, without
 * waiting), and the process exits. A last reply (221, 421) is sent before. */
void session_end(struct session *s, enum session_exit how, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), __noreturn__));

/* Milliseconds on the monotonic clock, for timeouts and durations. */
static inline uint64_t session_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The session as the policy functions see it. */
static inline struct policy_state session_policy(const struct session *s)
{
	return (struct policy_state){ .tls = s->ctl_tls != NULL,
				      .secured = s->secured,
				      .logged_in = s->logged_in,
				      .pbsz = s->pbsz,
				      .prot_private = s->prot_private };
}
