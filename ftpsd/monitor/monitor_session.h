/* The monitor's session, shared by its files: monitor.c serves the child,
 * monitor_xfer.c keeps its transfers, monitor_table.c names each request's
 * handler. Monitor-only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "ipc.h"
#include "monitor.h"
#include "monitor_fs.h"
#include "monitor_limits.h"
#include "monitor_msg.h"
#include "monitor_record.h"
#include "quota.h"

struct account;

/* Request types are below this (enum ipc_type). */
#define MON_TYPES IPC_ANSWER

struct monitor {
	const struct config *cfg;      /* the session's: global, or its virtual host's */
	const struct config *root_cfg; /* the whole file */
	int xferlog;            /* opened as root before the fork, or -1 */
	char root[4096];        /* the user's root, for xferlog's real paths */
	bool cert_valid;
	uint8_t cert_sha256[32];
	/* The server random of the control handshake, chosen here before the
	 * fork, and the handshake's messages as the child sends them: what a
	 * client certificate is checked against (tls_proof.h). */
	uint8_t proof_random[32];
	uint8_t *hs;
	size_t hs_len;
	/* Our certificates (SHA-256 of each identity's leaf): the server's in
	 * that handshake must be one of them. */
	uint8_t ours[IPC_MAX_IDENTITIES][32];
	unsigned n_ours;
	const struct launch *launch;
	int sock;
	pid_t child;
	unsigned phase;
	unsigned failures;
	unsigned user_commands; /* USERs before login */
	char user[256];
	bool atomic_uploads; /* upload-mode for the logged-in user */
	/* The transfer under way, from the IPC_OPEN that starts it to the
	 * IPC_XFER that ends it: its record is written even if the child dies
	 * in between, and an upload is put in place only at its end. */
	struct {
		bool open;
		uint32_t direction; /* IPC_XFER_SENT, IPC_XFER_RECEIVED */
		char path[IPC_MAX_PATH];
		uint64_t start_ms;
		struct fs_upload up;
		struct rate_share share; /* among the user's transfers at its rate */
		uint64_t share_ms, share_rate; /* the last share, counted at most once a second */
	} xfer;
	/* download-rate and upload-rate of the logged-in user (0: none), the
	 * total of the user's transfers in each direction. */
	uint64_t rate_down, rate_up;
	/* The user's quota: the usage file, opened as root at login and never
	 * the child's (-1: no quota), and the limits (0: none). */
	struct {
		int fd, root;
		bool empty; /* new or never written: scanned after the login */
		bool unsettled; /* an upload in place of ours is under way (quota.h) */
		uint64_t max_bytes, max_files;
	} quota;
	unsigned user_flags; /* IPC_USER_*, as told to the child at login */
	bool keys_dropped;   /* no signature can be needed any more (MON_KEY) */
	/* Requests served, by type, in the session and before login: what the
	 * table's MON_ONCE, MON_ONCE_PRELOGIN, max and until are checked on. */
	unsigned served[MON_TYPES], served_prelogin[MON_TYPES];
	/* The session limits' lock slots (held for the process's life) and the
	 * session's record. refused: a limit refused the session (implicit TLS:
	 * the child says so after the handshake), so no login may happen. */
	struct limits lim;
	struct session_record rec;
	bool refused;
	/* landlock-before-login: the directories the monitor may write beneath
	 * until login (their identities), to refuse a login whose root is not
	 * among them, rather than fail its every upload. */
	struct dir_id {
		dev_t dev;
		ino_t ino;
	} *writable;
	size_t nwritable;
	bool writable_limited;
	/* The one answer message (16 KiB), allocated once before the first
	 * request: see mon_answer_begin(). */
	struct ipc_msg *answer;
};

/* Answer flags */
enum { MON_ANSWER_SECRET = 1 }; /* wiped once sent */

/* Start the answer to the request being served: the session's one answer
 * message, holding the result code rc; the handler adds its fields (and
 * a descriptor in ->fd), then calls mon_answer_send(). */
struct ipc_msg *mon_answer_begin(struct monitor *m, int32_t rc);
/* Send the answer, and its descriptor, which the monitor then closes: the
 * child holds the only copy. Wiped once sent with MON_ANSWER_SECRET. A
 * child that cannot be answered is gone: fatal. */
void mon_answer_send(struct monitor *m, struct ipc_msg *a, unsigned flags);
/* An answer that is the result code alone. */
void mon_answer_rc(struct monitor *m, int32_t rc);

/* The child ended during a transfer: its record is written all the same,
 * and an atomic upload is dropped. */
void mon_xfer_cut(struct monitor *m);

/* The handlers of monitor_table.c, each the pair of a child stub in
 * child_mon.c (monitor_sign and mm_sign, ...); monitor_change serves
 * mm_path_op, mm_rename, mm_chmod and mm_settime. */
void monitor_log(struct monitor *m, struct mon_request *req);
void monitor_sign(struct monitor *m, struct mon_request *req);
void monitor_auth(struct monitor *m, struct mon_request *req);
void monitor_user(struct monitor *m, struct mon_request *req);
void monitor_host(struct monitor *m, struct mon_request *req);
void monitor_handshake(struct monitor *m, struct mon_request *req);
void monitor_cert(struct monitor *m, struct mon_request *req);
void monitor_tls_info(struct monitor *m, struct mon_request *req);
void monitor_stat(struct monitor *m, struct mon_request *req);
void monitor_list(struct monitor *m, struct mon_request *req);
void monitor_change(struct monitor *m, struct mon_request *req);
void monitor_open(struct monitor *m, struct mon_request *req);          /* monitor_xfer.c */
void monitor_upload_check(struct monitor *m, struct mon_request *req);  /* monitor_xfer.c */
void monitor_xfer(struct monitor *m, struct mon_request *req);          /* monitor_xfer.c */
void monitor_connect(struct monitor *m, struct mon_request *req);       /* monitor_xfer.c */
void monitor_quota(struct monitor *m, struct mon_request *req);         /* monitor_quota.c */

/* Landlock (monitor_landlock.c). Before login, as root, with the keys
 * read: writes only beneath what a session may write (runtime-dir, each
 * host's quota-dir, anonymous root and users-file roots, landlock-writable).
 * At login, as the user: is the root beneath one of those (else its every
 * upload would fail)? After login, before seccomp: the user's root and the
 * session record only. */
void mon_landlock_prelogin(struct monitor *m);
bool mon_landlock_root_allowed(struct monitor *m, int root);
void mon_landlock(struct monitor *m, int root);

/* Quotas (monitor_quota.c). At login, as root: open the user's usage file
 * when a quota applies (0, or -errno: the login must fail). */
int mon_quota_login(struct monitor *m, const struct account *acct);
/* After the change of ids, before the sandbox: fill a new usage file by a
 * scan of the tree below root, or count it again when an upload in place
 * was cut off by a crash (quota.h: unsettled). */
int mon_quota_scan(struct monitor *m, int root);
/* Lock the usage file and read it (a broken one is scanned again): true
 * when a quota applies, and then mon_quota_end() must follow. */
bool mon_quota_begin(struct monitor *m, struct quota_usage *u);
/* Write u back when changed, and unlock. */
void mon_quota_end(struct monitor *m, const struct quota_usage *u, bool changed);
/* An upload in place starts (under the lock): unsettled until it ends, so
 * that one cut off by a crash is noticed and the tree counted again. */
void mon_quota_unsettle(struct monitor *m, struct quota_usage *u);
/* It ended and its growth was counted (under the lock). */
void mon_quota_settle(struct monitor *m, struct quota_usage *u);
/* Would bytes and files more go past the quota? */
bool mon_quota_over(const struct monitor *m, const struct quota_usage *u, int64_t bytes,
		    int64_t files);
void monitor_progress(struct monitor *m, struct mon_request *req);      /* monitor_record.c */
#if FTPSD_TEST_HOOKS
void monitor_test_hook(struct monitor *m, struct mon_request *req);
#endif
