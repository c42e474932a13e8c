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
 * bind only to ports[] (the session's passive ports, data.c), TCP connect only to
 * ports >= 1024 where a host allows active mode, none else (ABI 4); no
 * signals and no abstract unix sockets out of its domain (ABI 6). Returns
 * the ABI applied (0: none available) or -errno; what says what was
 * restricted, and what was not for want of a newer ABI. */
int landlock_child(const struct config *cfg, const uint16_t *ports, size_t nports, char *what,
		   size_t len);

/* The monitor before login (root, PAM): what no phase of it needs, and no
 * usual PAM module either: no execution, no device nodes, fifos, sockets or
 * symbolic links made, no device ioctls (ABI 5), no TCP bind (ABI 4).
 * Files are not restricted: the user's root, to be written after login, is
 * not known yet, and Landlock's layers only ever narrow. Needs ABI 2, as
 * after login. Same returns as landlock_child. */
int landlock_monitor_prelogin(char *what, size_t len);

/* The monitor after login: read, write, create, remove and rename beneath
 * each of the directories dirs (the user's root), write files beneath each
 * of records (its session record's directory), nothing else on the
 * filesystem; no TCP bind or connect (ABI 4); no abstract unix sockets out
 * of its domain (ABI 6). Needs ABI 2 (renames across directories). Same
 * returns as landlock_child. */
int landlock_monitor(const int *dirs, size_t ndirs, const int *records, size_t nrecords, char *what,
		     size_t len);
