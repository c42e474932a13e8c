/* The unprivileged protocol child: its entry point, for main.c. */
#pragma once

#include "handoff.h"

/* Lock the process down and run the FTP session; never returns. */
void child_main(struct child_params *p) __attribute__((__noreturn__));
