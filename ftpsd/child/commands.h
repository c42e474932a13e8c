/* The command table and its dispatcher. */
#pragma once

#include <stddef.h>

#include "session.h"

/* Parse one line from the control connection, check the command against the
 * session's state and run it. During a transfer, a command that is not
 * answered then is kept (s->pending) and run when the transfer ends. */
void commands_run_line(struct session *s, char *line, size_t len);
