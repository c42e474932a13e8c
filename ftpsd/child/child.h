/* The unprivileged protocol child: its entry point, for main.c. */
#pragma once

#include <stdbool.h>

#include "handoff.h"

/* Lock the process down and run the FTP session; never returns. */
void child_main(struct child_params *p) __attribute__((__noreturn__));

/* Whether verb (any case) is a command of the child's command table: what
 * --check-config holds allow-before-tls to. */
bool commands_known(const char *verb);
