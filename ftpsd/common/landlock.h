/* Landlock (Linux 5.13 and later), by its system calls: what this kernel
 * offers, and each process's own restriction on top of its seccomp filter.
 * Both processes; no library. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

/* The Landlock ABI this kernel offers: 0 when it has none (not built in,
 * or disabled at boot), else 1 (Linux 5.13) to 7 (6.15) or later. */
int landlock_abi(void);

/* What this kernel offers, for --check-config: one line of text. */
void landlock_describe(int abi, char *buf, size_t len);

/* The protocol child, in its empty root: no filesystem access at all; TCP
 * bind only to ports[] (the session's passive ports, data.c), no TCP
 * connect (ABI 4: active mode's connections are the monitor's); no
 * signals and no abstract unix sockets out of its domain (ABI 6). Returns
 * the ABI applied (0: none available) or -errno; what says what was
 * restricted, and what was not for want of a newer ABI. */
int landlock_child(const struct config *cfg, const uint16_t *ports, size_t nports, char *what,
		   size_t len);

/* The monitor before login (root, PAM): what no phase of it needs, and no
 * usual PAM module either: no execution, no device nodes, fifos, sockets or
 * symbolic links made, no device ioctls (ABI 5), no TCP bind (ABI 4); and
 * no file written, made, removed or truncated but beneath the directories
 * given to landlock_prelogin_allow (runtime-dir, quota-dir, every root a
 * login may get: the layer after login can only narrow this one). Reading
 * is not restricted (PAM and NSS read where they are configured to).
 * Needs ABI 2, as after login.
 *
 * begin: the ABI to be applied (0: none; what says why), or -errno.
 * allow: one directory (a descriptor, which the caller closes); 0 or -errno.
 * end: restrict this process; the ABI applied, or -errno. Once begin
 * returned more than 0, end must follow. */
struct landlock_prelogin {
	int ruleset;
	int abi;
	uint64_t write;
	size_t ndirs;
};
int landlock_prelogin_begin(struct landlock_prelogin *l, char *what, size_t len);
int landlock_prelogin_allow(struct landlock_prelogin *l, int dir);
int landlock_prelogin_end(struct landlock_prelogin *l, char *what, size_t len);

/* The monitor after login: read, write, create, remove and rename beneath
 * each of the directories dirs (the user's root), write files beneath each
 * of records (its session record's directory), nothing else on the
 * filesystem; no TCP bind, and no TCP connect unless active_connect
 * (active mode: IPC_CONNECT) (ABI 4); no abstract unix sockets out of its
 * domain (ABI 6). Needs ABI 2 (renames across directories). Same returns
 * as landlock_child. */
int landlock_monitor(const int *dirs, size_t ndirs, const int *records, size_t nrecords,
		     bool active_connect, char *what, size_t len);
