#include "ftp_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TELNET_IAC 255
#define TELNET_WILL 251
#define TELNET_DONT 254

uint8_t *ftp_linebuf_tail(struct ftp_linebuf *lb, size_t *space)
{
	*space = sizeof(lb->buf) - lb->len;
	return lb->buf + lb->len;
}

void ftp_linebuf_added(struct ftp_linebuf *lb, size_t n)
{
	lb->len += n;
}

bool ftp_linebuf_has_line(const struct ftp_linebuf *lb)
{
	return memchr(lb->buf, '\n', lb->len) != NULL || lb->len == sizeof(lb->buf);
}

int ftp_linebuf_take(struct ftp_linebuf *lb, char *line, size_t size, size_t *len)
{
	uint8_t *nl = memchr(lb->buf, '\n', lb->len);

	if (nl == NULL) {
		if (lb->len < sizeof(lb->buf))
			return 0;
		/* Full buffer and no newline: drop it and whatever follows up to the
		 * next newline, and say so once. */
		bool first = !lb->discarding;
		lb->len = 0;
		lb->discarding = true;
		return first ? -E2BIG : 0;
	}

	size_t n = (size_t)(nl - lb->buf);
	size_t consumed = n + 1;
	if (lb->discarding) {
		lb->discarding = false;
		memmove(lb->buf, lb->buf + consumed, lb->len - consumed);
		lb->len -= consumed;
		return ftp_linebuf_take(lb, line, size, len);
	}
	if (n > 0 && lb->buf[n - 1] == '\r')
		n--;
	if (n + 1 > size || n > FTP_MAX_LINE) {
		memmove(lb->buf, lb->buf + consumed, lb->len - consumed);
		lb->len -= consumed;
		return -E2BIG;
	}
	memcpy(line, lb->buf, n);
	line[n] = '\0';
	*len = n;
	memmove(lb->buf, lb->buf + consumed, lb->len - consumed);
	lb->len -= consumed;
	return 1;
}

/* Remove Telnet commands: IAC IAC is a literal 255, IAC WILL/WONT/DO/DONT x
 * is three bytes, any other IAC x two. Returns the new length. */
static size_t strip_telnet(char *line, size_t len)
{
	size_t i = 0, j = 0;

	while (i < len) {
		unsigned char c = (unsigned char)line[i];
		if (c != TELNET_IAC) {
			line[j++] = line[i++];
			continue;
		}
		if (i + 1 >= len) {
			i++;
			continue;
		}
		unsigned char op = (unsigned char)line[i + 1];
		if (op == TELNET_IAC) {
			line[j++] = (char)TELNET_IAC;
			i += 2;
		} else if (op >= TELNET_WILL && op <= TELNET_DONT) {
			i += 3;
		} else {
			i += 2;
		}
	}
	line[j < len ? j : len] = '\0';
	return j;
}

int ftp_parse_command(char *line, size_t len, struct ftp_command *cmd)
{
	size_t i;

	if (memchr(line, '\0', len) != NULL)
		return -EINVAL;
	len = strip_telnet(line, len);

	for (i = 0; i < len && line[i] != ' '; i++) {
		char c = line[i];
		if (i >= 4)
			return -EINVAL;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (c < 'A' || c > 'Z')
			return -EINVAL;
		cmd->verb[i] = c;
	}
	if (i < 3)
		return -EINVAL;
	cmd->verb[i] = '\0';
	cmd->arg = NULL;
	if (i < len && line[i] == ' ' && i + 1 < len)
		cmd->arg = line + i + 1;
	return 0;
}

int ftp_path_resolve(const char *cwd, const char *arg, char *out, size_t size)
{
	size_t len = 0;
	const char *parts[2] = { arg[0] == '/' ? "" : cwd, arg };

	if (size < 2)
		return -ENAMETOOLONG;
	out[0] = '\0';
	for (int p = 0; p < 2; p++) {
		const char *s = parts[p];
		while (*s != '\0') {
			while (*s == '/')
				s++;
			if (*s == '\0')
				break;
			const char *e = strchr(s, '/');
			size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
			if (n == 1 && s[0] == '.') {
				/* nothing */
			} else if (n == 2 && s[0] == '.' && s[1] == '.') {
				while (len > 0 && out[len - 1] != '/')
					len--;
				if (len > 0)
					len--;
				out[len] = '\0';
			} else {
				if (len + 1 + n + 1 > size)
					return -ENAMETOOLONG;
				out[len++] = '/';
				memcpy(out + len, s, n);
				len += n;
				out[len] = '\0';
			}
			s += n;
		}
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = '\0';
	}
	return 0;
}

int ftp_quote_path(const char *path, char *out, size_t size)
{
	size_t j = 0;

	for (size_t i = 0; path[i] != '\0'; i++) {
		size_t need = path[i] == '"' ? 2 : 1;
		if (j + need + 1 > size)
			return -ENAMETOOLONG;
		out[j++] = path[i];
		if (path[i] == '"')
			out[j++] = '"';
	}
	if (j + 1 > size)
		return -ENAMETOOLONG;
	out[j] = '\0';
	return 0;
}

int ftp_parse_offset(const char *arg, uint64_t *out)
{
	uint64_t v = 0;

	if (*arg == '\0')
		return -EINVAL;
	for (; *arg != '\0'; arg++) {
		if (*arg < '0' || *arg > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*arg - '0');
		if (v > ((uint64_t)INT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

char *ftp_parse_list_args(char *arg, bool *all)
{
	*all = false;
	while (arg != NULL && arg[0] == '-') {
		char *end = strchr(arg, ' ');
		for (const char *p = arg + 1; *p != '\0' && *p != ' '; p++)
			if (*p == 'a')
				*all = true;
		arg = end != NULL ? end + 1 : NULL;
		while (arg != NULL && *arg == ' ')
			arg++;
		if (arg != NULL && *arg == '\0')
			arg = NULL;
	}
	return arg;
}

int ftp_parse_port(const char *arg, struct sockaddr_in *a)
{
	unsigned h[6];
	int n = -1;

	if (sscanf(arg, "%3u,%3u,%3u,%3u,%3u,%3u%n", &h[0], &h[1], &h[2], &h[3], &h[4], &h[5],
		   &n) != 6 ||
	    n < 0 || arg[n] != '\0' || h[0] > 255 || h[1] > 255 || h[2] > 255 || h[3] > 255 ||
	    h[4] > 255 || h[5] > 255)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3]);
	a->sin_port = htons((uint16_t)(h[4] << 8 | h[5]));
	return 0;
}

int ftp_parse_eprt(const char *arg, struct sockaddr_storage *ss)
{
	char d, host[INET6_ADDRSTRLEN + 1];
	const char *f[4];
	unsigned long port;
	char *end;

	/* |proto|address|port| with any printable delimiter (RFC 2428). */
	d = arg[0];
	if (d < 33 || d > 126)
		return -EINVAL;
	f[0] = arg + 1;
	for (int i = 1; i < 4; i++) {
		const char *p = strchr(f[i - 1], d);
		if (p == NULL)
			return -EINVAL;
		f[i] = p + 1;
	}
	if (f[3][0] != '\0' || (size_t)(f[2] - f[1] - 1) >= sizeof(host))
		return -EINVAL;
	memcpy(host, f[1], (size_t)(f[2] - f[1] - 1));
	host[f[2] - f[1] - 1] = '\0';
	port = strtoul(f[2], &end, 10);
	if (end != f[3] - 1 || end == f[2] || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (f[1] - f[0] == 2 && f[0][0] == '1') {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EADDRNOTAVAIL;
	} else if (f[1] - f[0] == 2 && f[0][0] == '2') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EADDRNOTAVAIL;
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

int ftp_parse_time(const char *t, int64_t *out)
{
	struct tm tm = { 0 };

	if (strlen(t) < 14 || strspn(t, "0123456789") < 14)
		return -EINVAL;
	if (t[14] != '\0' && !(t[14] == '.' && strspn(t + 15, "0123456789") == strlen(t + 15)))
		return -EINVAL;
	if (sscanf(t, "%4d%2d%2d%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return -EINVAL;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t v = timegm(&tm);
	if (v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}
