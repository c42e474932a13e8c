#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static enum log_target log_target = LOG_TO_STDERR;
static const char *log_role = "ftpsd";
static char log_session[128];
static log_sink_fn log_sink;

void log_open(enum log_target target, const char *role)
{
	log_target = target;
	log_role = role;
	if (target == LOG_TO_SYSLOG)
		openlog("ftpsd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_session(const char *session)
{
	snprintf(log_session, sizeof(log_session), "%s", session);
}

void log_set_sink(log_sink_fn sink)
{
	log_sink = sink;
}

void log_write(int priority, const char *line)
{
	log_write_as(log_role, priority, line);
}

void log_write_as(const char *role, int priority, const char *line)
{
	char clean[1024];
	size_t j = 0;

	/* Lines may carry user names and paths: never let them forge log lines. */
	for (size_t i = 0; line[i] != '\0' && j + 5 < sizeof(clean); i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f) {
			j += (size_t)snprintf(clean + j, sizeof(clean) - j, "\\x%02x", c);
		} else {
			clean[j++] = (char)c;
		}
	}
	clean[j] = '\0';

	if (log_sink != NULL) {
		log_sink(priority, clean);
		return;
	}
	if (log_target == LOG_TO_SYSLOG) {
		syslog(priority, "%s%s%s: %s", role, log_session[0] ? " " : "", log_session,
		       clean);
		return;
	}
	fprintf(stderr, "ftpsd[%ld]: %s%s%s: %s\n", (long)getpid(), role,
		log_session[0] ? " " : "", log_session, clean);
}

__attribute__((format(printf, 2, 0))) static void log_vwrite(int priority, const char *fmt, va_list ap,
							      int errnum)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n >= 0 && errnum != 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(errnum));
	log_write(priority, line);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap, 0);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap, 0);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap, 0);
	va_end(ap);
}

noreturn void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, fmt, ap, 0);
	va_end(ap);
	exit(1);
}

noreturn void fatal(const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, fmt, ap, errnum);
	va_end(ap);
	exit(1);
}
