/* Logging shared by both processes: the monitor writes to stderr or syslog,
 * the child hands every line to the monitor (it has no /dev/log in its chroot). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdnoreturn.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_JOURNAL };

/* A structured field for the journal (FTPSD_FILE, FTPSD_BYTES, ...). */
struct log_field {
	const char *name;
	const char *value;
};

/* Where lines go; the child replaces this with a sink that forwards them. */
typedef void (*log_sink_fn)(int priority, const char *line);

/* Copy in to out (size bytes with the NUL) with \xNN for each byte of a C0
 * control, DEL, a C1 control (U+0080..U+009F, e.g. U+009B CSI) and each byte
 * that is not part of well-formed UTF-8: the result is valid UTF-8 with no
 * control characters, and escaping it again changes nothing ('\' itself is
 * kept). Too long an input is cut before a whole character or escape.
 * Returns the length written (strlen(out)); every line and journal field
 * goes through it. */
size_t log_escape(char *out, size_t size, const char *in);
/* Choose the target and the role shown in each line ("monitor", "child"). */
void log_open(enum log_target target, const char *role);
/* Set a session prefix such as "127.0.0.1:40000" (copied). */
void log_set_session(const char *session);
void log_set_sink(log_sink_fn sink);
/* True when stderr is a stream to the journal (JOURNAL_STREAM names it). */
bool log_stderr_is_journal(void);
/* A field added to every journal entry from now on (REMOTE_ADDR, FTPSD_USER,
 * TLS_VERSION, ...); setting a name again replaces its value. */
void log_set_field(const char *name, const char *value);
/* One line with extra journal fields (elsewhere only the line is written). */
void log_event(int priority, const struct log_field *fields, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* An event line on behalf of another role (the monitor logging for the child). */
void log_event_as(const char *role, int priority, const struct log_field *fields, size_t n,
		  const char *line);
/* Write one line with a syslog priority, control characters escaped. */
void log_write(int priority, const char *line);
/* Write a line on behalf of another role (the monitor logging for the child). */
void log_write_as(const char *role, int priority, const char *line);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log and exit(1): a peer misbehaved or the session cannot go on. */
noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like fatalx, appending strerror(errno). */
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
