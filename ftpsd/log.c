#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#define LOG_MAX_FIELDS 8

static enum log_target log_target = LOG_TO_STDERR;
static const char *log_role = "ftpsd";
static char log_session[128];
static log_sink_fn log_sink;
static struct {
	char name[32];
	char value[256];
} log_fields[LOG_MAX_FIELDS];
static size_t log_nfields;

bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (e == NULL || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_field(const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < log_nfields; i++)
		if (strcmp(log_fields[i].name, name) == 0)
			break;
	if (i == LOG_MAX_FIELDS)
		return;
	snprintf(log_fields[i].name, sizeof(log_fields[i].name), "%s", name);
	snprintf(log_fields[i].value, sizeof(log_fields[i].value), "%s", value);
	if (i == log_nfields)
		log_nfields++;
}

/* Native journal entry: the line as MESSAGE, and every field. */
static void journal_write(const char *role, int priority, const char *line,
			  const struct log_field *extra, size_t n)
{
	char msg[1200], prio[16], rolef[48], sess[160];
	char fields[LOG_MAX_FIELDS + 8][300];
	struct iovec iov[LOG_MAX_FIELDS + 16];
	size_t k = 0, f = 0;

	snprintf(msg, sizeof(msg), "MESSAGE=%s%s%s: %s", role, log_session[0] ? " " : "", log_session,
		 line);
	snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
	snprintf(rolef, sizeof(rolef), "FTPSD_ROLE=%s", role);
	snprintf(sess, sizeof(sess), "FTPSD_SESSION=%s", log_session);
	iov[k++] = (struct iovec){ msg, strlen(msg) };
	iov[k++] = (struct iovec){ prio, strlen(prio) };
	iov[k++] = (struct iovec){ (char *)"SYSLOG_IDENTIFIER=ftpsd", 23 };
	iov[k++] = (struct iovec){ rolef, strlen(rolef) };
	iov[k++] = (struct iovec){ sess, strlen(sess) };
	/* Values longer than a field's room are cut, never overflow. */
	for (size_t i = 0; i < log_nfields; i++, f++) {
		if (snprintf(fields[f], sizeof(fields[f]), "%s=%s", log_fields[i].name,
			     log_fields[i].value) < 0)
			continue;
		iov[k++] = (struct iovec){ fields[f], strlen(fields[f]) };
	}
	for (size_t i = 0; i < n && f < sizeof(fields) / sizeof(fields[0]); i++, f++) {
		if (snprintf(fields[f], sizeof(fields[f]), "%s=%s", extra[i].name, extra[i].value) < 0)
			continue;
		iov[k++] = (struct iovec){ fields[f], strlen(fields[f]) };
	}
	(void)sd_journal_sendv(iov, (int)k);
}

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

static void write_line(const char *role, int priority, const char *line,
		       const struct log_field *extra, size_t n)
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
	switch (log_target) {
	case LOG_TO_JOURNAL:
		journal_write(role, priority, clean, extra, n);
		break;
	case LOG_TO_SYSLOG:
		syslog(priority, "%s%s%s: %s", role, log_session[0] ? " " : "", log_session, clean);
		break;
	case LOG_TO_STDERR:
		fprintf(stderr, "ftpsd[%ld]: %s%s%s: %s\n", (long)getpid(), role,
			log_session[0] ? " " : "", log_session, clean);
		break;
	}
}

void log_write_as(const char *role, int priority, const char *line)
{
	write_line(role, priority, line, NULL, 0);
}

void log_event(int priority, const struct log_field *fields, size_t n, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	write_line(log_role, priority, line, fields, n);
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
