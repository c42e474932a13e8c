#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#define LOG_MAX_FIELDS 8
/* Room for one escaped field value: as much as a whole line. */
#define LOG_MAX_VALUE 1024

static enum log_target log_target = LOG_TO_STDERR;
static const char *log_role = "ftpsd";
static char log_session[128];
static log_sink_fn log_sink;
static struct {
	char name[32];
	char value[LOG_MAX_VALUE]; /* escaped */
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

/* The length of the well-formed UTF-8 sequence that starts at p, 0 when
 * there is none (Unicode 15, table 3-7: no overlong forms, no surrogates,
 * nothing above U+10FFFF). A NUL fails every continuation test, so nothing
 * past the string's end is read. */
static size_t utf8_length(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xbf;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
		if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80)
			return 0;
		return (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

size_t log_escape(char *out, size_t size, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t j = 0;

	if (size == 0)
		return 0;
	while (*p != '\0') {
		size_t n = utf8_length(p), esc = 0;

		/* C0 and DEL would end or rewrite a line (CR, LF, ESC sequences);
		 * C1 controls do the same on terminals that take U+009B as CSI;
		 * a byte that is not UTF-8 makes the whole line unreadable to a
		 * journal or JSON consumer. Each byte is written as its value, so
		 * the name still says which file it was. */
		if (n == 0)
			esc = 1;
		else if (n == 1 && (p[0] < 0x20 || p[0] == 0x7f))
			esc = 1;
		else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			esc = 2;
		if (esc > 0) {
			if (4 * esc >= size - j)
				break;
			for (size_t k = 0; k < esc; k++) {
				out[j++] = '\\';
				out[j++] = 'x';
				out[j++] = hex[p[k] >> 4];
				out[j++] = hex[p[k] & 0xf];
			}
			p += esc;
			continue;
		}
		/* Cut before a whole character, never inside one. */
		if (n >= size - j)
			break;
		memcpy(out + j, p, n);
		j += n;
		p += n;
	}
	out[j] = '\0';
	return j;
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
	/* User names, TLS names from the client: escaped like the message. */
	log_escape(log_fields[i].value, sizeof(log_fields[i].value), value);
	if (i == log_nfields)
		log_nfields++;
}

/* journald's native protocol, as sd_journal_sendv() speaks it: one datagram
 * to its socket, each field "NAME=value\n", or "NAME\n", the value's length
 * as 64-bit little-endian, the value and "\n" where the value holds a
 * newline. Written here rather than taken from libsystemd, whose loading
 * (and that of libgcrypt, liblzma, libzstd, liblz4, libcap it pulls in)
 * dirties about 130 KiB of relocations and data per session. The socket is
 * made on the first entry, before any seccomp filter. */
static int journal_fd = -1;

static void journal_send(const struct iovec *fields, size_t n)
{
	static const struct sockaddr_un addr = { .sun_family = AF_UNIX,
						 .sun_path = "/run/systemd/journal/socket" };
	struct iovec iov[5 * (LOG_MAX_FIELDS + 16)];
	uint64_t lens[LOG_MAX_FIELDS + 16];
	size_t k = 0;

	if (journal_fd < 0) {
		int sndbuf = 8 * 1024 * 1024; /* as libsystemd's: fewer blocked sends */
		if ((journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
			return;
		(void)setsockopt(journal_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	}
	for (size_t i = 0; i < n && i < sizeof(lens) / sizeof(lens[0]); i++) {
		const char *f = fields[i].iov_base, *eq = memchr(f, '=', fields[i].iov_len);
		if (eq == NULL)
			continue;
		if (memchr(eq + 1, '\n', fields[i].iov_len - (size_t)(eq + 1 - f)) == NULL) {
			iov[k++] = fields[i];
			iov[k++] = (struct iovec){ (char *)"\n", 1 };
			continue;
		}
		size_t value = fields[i].iov_len - (size_t)(eq + 1 - f);
		/* Little-endian on every architecture journald reads. */
		uint64_t le = 0;
		for (size_t b = 0; b < 8; b++)
			((uint8_t *)&le)[b] = (uint8_t)(value >> (8 * b));
		lens[i] = le;
		iov[k++] = (struct iovec){ (char *)f, (size_t)(eq - f) };
		iov[k++] = (struct iovec){ (char *)"\n", 1 };
		iov[k++] = (struct iovec){ &lens[i], 8 };
		iov[k++] = (struct iovec){ (char *)eq + 1, value };
		iov[k++] = (struct iovec){ (char *)"\n", 1 };
	}
	struct msghdr mh = { .msg_name = (void *)&addr,
			     .msg_namelen = (socklen_t)sizeof(addr),
			     .msg_iov = iov,
			     .msg_iovlen = k };
	(void)sendmsg(journal_fd, &mh, MSG_NOSIGNAL);
}

/* Native journal entry: the line as MESSAGE, and every field. */
static void journal_write(const char *role, int priority, const char *line,
			  const struct log_field *extra, size_t n)
{
	char msg[1200], prio[16], rolef[48], sess[160];
	char fields[LOG_MAX_FIELDS + 8][32 + 1 + LOG_MAX_VALUE];
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
		/* Values such as FTPSD_FILE are the client's words. */
		int len = snprintf(fields[f], sizeof(fields[f]), "%s=", extra[i].name);
		if (len < 0 || (size_t)len >= sizeof(fields[f]))
			continue;
		len += (int)log_escape(fields[f] + len, sizeof(fields[f]) - (size_t)len,
				       extra[i].value);
		iov[k++] = (struct iovec){ fields[f], (size_t)len };
	}
	journal_send(iov, k);
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
	log_escape(log_session, sizeof(log_session), session);
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

	/* Lines may carry user names and paths: never let them forge log lines.
	 * The child's lines are escaped here and again in the monitor, which
	 * changes nothing the first pass wrote. */
	log_escape(clean, sizeof(clean), line);

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

void log_event_as(const char *role, int priority, const struct log_field *fields, size_t n,
		  const char *line)
{
	write_line(role, priority, line, fields, n);
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
