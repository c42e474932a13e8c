/* Session limits with no daemon: lock slots in files below runtime-dir,
 * taken by each monitor with OFD locks that the kernel releases when the
 * process ends, however it ends. Monitor-only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct limits {
	int runtime;   /* runtime-dir, O_PATH */
	int sessions;  /* runtime-dir/sessions, O_PATH: the session records */
	int total, address, user; /* lock files in runtime-dir/limits, O_CLOEXEC */
	int rate;                 /* ... and the transfers sharing a user's rate */
	uint8_t key[16];          /* runtime-dir/limits/key: the slots' hash key */
};

/* What refused a session (FTPSD_LIMIT=name). */
enum limit_kind { LIMIT_NONE, LIMIT_TOTAL, LIMIT_ADDRESS, LIMIT_USER };

/* Whether runtime-dir can serve as one: an existing directory owned by
 * this user (root when root) and writable by no one else, or one that can
 * be created (its parent exists). 0, or -errno with *why. For
 * --check-config. */
int limits_check_dir(const char *path, const char **why);
/* Create (if missing) and check runtime-dir, its limits and sessions
 * directories, the key and the lock files. 0, or -errno with *why (the
 * session is then refused: fail closed). */
int limits_open(struct limits *l, const char *runtime_dir, const char **why);
/* The session's slots in total and per address: LIMIT_NONE (both held for
 * the process's life), or the limit that refused it. */
enum limit_kind limits_session(struct limits *l, const struct config *cfg,
			       const struct sockaddr_storage *peer);
/* A slot among n of this user (host, NUL, name): true when held (or n is
 * 0), false when all n are taken. */
bool limits_user(struct limits *l, const char *host, const char *user, unsigned n);
/* A transfer's place among the transfers of one user in one direction
 * that share its download-rate or upload-rate: a slot in limits/rate held
 * while the transfer runs, so that the kernel counts them. */
struct rate_share {
	bool held;
	uint64_t base; /* the user's and direction's first slot */
	uint64_t at;   /* the one held */
};
/* The most transfers of one user and direction that are counted. */
#define RATE_SHARE_SLOTS 64
/* Take a slot (once per transfer); false when all are taken (the count is
 * then RATE_SHARE_SLOTS). */
bool limits_share_join(struct limits *l, struct rate_share *s, const char *host,
		       const char *user, bool upload);
/* How many transfers share the rate now, this one included. */
unsigned limits_share_count(const struct limits *l, const struct rate_share *s);
/* The transfer ended: its slot goes. */
void limits_share_leave(struct limits *l, struct rate_share *s);
/* Close every descriptor of l (the forked child's copies). */
void limits_close(struct limits *l);
/* The reply's text for a refusal, "Too many sessions (max-sessions 50), try
 * again later.", and the limit's name. */
void limits_text(enum limit_kind k, unsigned n, char *out, size_t size);
const char *limits_name(enum limit_kind k);
/* SipHash-2-4 of data under a 16-byte key (exposed for the unit test). */
uint64_t limits_siphash(const uint8_t key[16], const void *data, size_t len);
