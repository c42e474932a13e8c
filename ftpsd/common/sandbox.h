/* seccomp allow-lists (libseccomp is included here only). */
#pragma once

#include <stdbool.h>

/* The protocol child's list: its event loop, TLS and data sockets, no
 * filesystem, no exec, no new processes. Anything else kills the process.
 * 0 or -errno. */
int sandbox_child(void);
/* The monitor's list once the user is logged in: file requests through
 * openat2 and signatures; no exec, no other opens; no sockets but, with
 * active_connect, TCP sockets and connect for active mode (IPC_CONNECT). */
int sandbox_monitor(bool active_connect);

/* Test builds only: FTPSD_TEST_VALGRIND=1 in the environment turns the
 * seccomp filters and descriptor limits off, which valgrind cannot run under.
 * Always false in other builds. */
bool sandbox_under_valgrind(void);
