/* seccomp allow-lists (libseccomp is included here only). */
#pragma once

/* The protocol child's list: its event loop, TLS and data sockets, no
 * filesystem, no exec, no new processes. Anything else kills the process.
 * 0 or -errno. */
int sandbox_child(void);
/* The monitor's list once the user is logged in: file requests through
 * openat2 and signatures; no exec, no new sockets, no other opens. */
int sandbox_monitor(void);
