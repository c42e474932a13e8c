/* ftps_probe: an explicit-FTPS client (GnuTLS) that ends a data connection
 * in a chosen way and reports what the server did. A test tool, not
 * installed.
 *
 *   ftps_probe -p PORT [options] MODE
 *
 * Upload modes (STOR NAME, the data connection resumes the control
 * connection's TLS session; the bytes come from --input, default stdin):
 *   close-notify                     the data, then close_notify
 *   user-canceled-then-close-notify  the data, alert user_canceled, close_notify
 *   user-canceled-then-data          the data, user_canceled, --after more
 *                                    bytes ('Z'), close_notify
 *   user-canceled-then-fin           the data, user_canceled, TCP FIN only
 *   fin                              the data, TCP FIN only (no close_notify)
 * Download modes (resumed): retr (RETR NAME), list (LIST).
 *   no-resume    right after EPSV, a full (non-resuming) data handshake before
 *                any command; reports how it ended (time, alert) and whether
 *                the server closed the data socket, then sends RETR NAME.
 *
 * Output: one "key=value" line per fact, for the tests to parse:
 *   control=TLS1.3 ticket=yes resumed=yes sent=N received=N
 *   server-close-notify=yes|no (then server-end=...: what came instead)
 *   handshake=ok|failed handshake-ms=N handshake-error=... alert=N alert-name=...
 *   handshake-last-in=N  the last handshake message type from the server before
 *                        the failure (-1: none; 2: ServerHello, ...)
 *   data-closed=fin|reset|no data-closed-ms=N
 *   client-error=...  the probe's own sending failed (the server had given up)
 *   prelim=150 ... (each 1xx)   reply=226 ... (the final reply)
 * Exit status 0 when the conversation ran to its end (whatever the server
 * answered), 1 when the probe could not do its part, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum mode {
	M_CLOSE_NOTIFY,
	M_UC_CLOSE_NOTIFY,
	M_UC_DATA,
	M_UC_FIN,
	M_FIN,
	M_RETR,
	M_LIST,
	M_NO_RESUME,
};

static const char *const mode_names[] = {
	[M_CLOSE_NOTIFY] = "close-notify",
	[M_UC_CLOSE_NOTIFY] = "user-canceled-then-close-notify",
	[M_UC_DATA] = "user-canceled-then-data",
	[M_UC_FIN] = "user-canceled-then-fin",
	[M_FIN] = "fin",
	[M_RETR] = "retr",
	[M_LIST] = "list",
	[M_NO_RESUME] = "no-resume",
};

struct opts {
	const char *host, *bind, *user, *pass, *cafile, *priority, *name, *input;
	int port;
	bool insecure, pasv;
	long long bytes; /* -1: all of the input */
	size_t after;
	int timeout_ms;
	enum mode mode;
};

/* A control connection: socket, TLS once AUTH TLS is done, read buffer. */
struct conn {
	int fd;
	gnutls_session_t tls;
	char buf[8192];
	size_t len;
};

static struct opts o;

/* What has to be freed or closed, on every way out (die() exits too). */
static struct {
	gnutls_certificate_credentials_t cred;
	gnutls_session_t ctl, data;
	int ctl_fd, data_fd;
	FILE *input;
} st = { .ctl_fd = -1, .data_fd = -1 };

static void data_done(void)
{
	if (st.data != NULL)
		gnutls_deinit(st.data);
	st.data = NULL;
	if (st.data_fd >= 0)
		close(st.data_fd);
	st.data_fd = -1;
}

static void cleanup(void)
{
	data_done();
	if (st.ctl != NULL)
		gnutls_deinit(st.ctl);
	st.ctl = NULL;
	if (st.ctl_fd >= 0)
		close(st.ctl_fd);
	st.ctl_fd = -1;
	if (st.cred != NULL)
		gnutls_certificate_free_credentials(st.cred);
	st.cred = NULL;
	if (st.input != NULL && st.input != stdin)
		fclose(st.input);
	st.input = NULL;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("ftps_probe: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stdout);
	exit(1);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int tcp_connect(const char *host, int port, int *slot)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = o.timeout_ms / 1000, .tv_usec = (o.timeout_ms % 1000) * 1000 };
	int one = 1;
	int fd;

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		die("not an IPv4 address: %s", host);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	*slot = fd;
	/* Blocking sockets, every call bounded: connect and send by SO_SNDTIMEO,
	 * plain reads by poll, TLS reads by gnutls_record_set_timeout. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("setsockopt: %s", strerror(errno));
	if (o.bind != NULL) {
		struct sockaddr_in b = { .sin_family = AF_INET };
		if (inet_pton(AF_INET, o.bind, &b.sin_addr) != 1)
			die("not an IPv4 address: %s", o.bind);
		if (bind(fd, (struct sockaddr *)&b, sizeof(b)) < 0)
			die("bind %s: %s", o.bind, strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect %s:%d: %s", host, port, strerror(errno));
	return fd;
}

static gnutls_session_t tls_new(int fd, bool verify, gnutls_session_t *slot)
{
	gnutls_session_t s;
	const char *err = NULL;
	int r;

	r = gnutls_init(&s, GNUTLS_CLIENT);
	if (r < 0)
		die("gnutls_init: %s", gnutls_strerror(r));
	*slot = s; /* freed by cleanup() if anything below dies */
	r = gnutls_priority_set_direct(s, o.priority, &err);
	if (r < 0)
		die("priority %s (at %s): %s", o.priority, err ? err : "?", gnutls_strerror(r));
	r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, st.cred);
	if (r < 0)
		die("gnutls_credentials_set: %s", gnutls_strerror(r));
	if (verify && !o.insecure)
		gnutls_session_set_verify_cert(s, o.host, 0);
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, (unsigned)o.timeout_ms);
	gnutls_record_set_timeout(s, (unsigned)o.timeout_ms);
	return s;
}

/* Wait until fd is readable; false on timeout. */
static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		die("poll: %s", strerror(errno));
	return r > 0;
}

/* Some bytes from the control connection; 0 at its end. */
static ssize_t ctl_read(struct conn *c, char *buf, size_t len)
{
	ssize_t n;

	if (c->tls == NULL) {
		if (!readable(c->fd, o.timeout_ms))
			die("no reply within %d ms", o.timeout_ms);
		n = recv(c->fd, buf, len, 0);
		if (n < 0)
			die("control recv: %s", strerror(errno));
		return n;
	}
	do
		n = gnutls_record_recv(c->tls, buf, len);
	while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	if (n == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	if (n < 0)
		die("control: %s", gnutls_strerror((int)n));
	return n;
}

/* One reply, its lines joined by " | " into out; returns its code. */
static int ctl_reply(struct conn *c, char *out, size_t outlen)
{
	size_t used = 0;
	char first[4] = "";

	out[0] = '\0';
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl == NULL) {
			if (c->len == sizeof(c->buf))
				die("reply line too long");
			ssize_t n = ctl_read(c, c->buf + c->len, sizeof(c->buf) - c->len);
			if (n == 0)
				die("control connection closed (before a complete reply)");
			c->len += (size_t)n;
			continue;
		}
		size_t ll = (size_t)(nl - c->buf), consumed = ll + 1;
		char line[sizeof(c->buf)];
		memcpy(line, c->buf, ll);
		line[ll] = '\0';
		memmove(c->buf, c->buf + consumed, c->len - consumed);
		c->len -= consumed;
		if (ll > 0 && line[ll - 1] == '\r')
			line[--ll] = '\0';
		used += (size_t)snprintf(out + used, used < outlen ? outlen - used : 0, "%s%s",
					 used ? " | " : "", line);
		if (used >= outlen)
			used = outlen - 1;
		if (first[0] == '\0') {
			if (ll < 4 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
			    line[2] < '0' || line[2] > '9' || (line[3] != ' ' && line[3] != '-'))
				die("malformed reply line: %s", line);
			memcpy(first, line, 3);
			if (line[3] == ' ')
				return atoi(first);
		} else if (strncmp(line, first, 3) == 0 && line[3] == ' ') {
			return atoi(first);
		}
	}
}

__attribute__((format(printf, 2, 0))) static void vctl_send(struct conn *c, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		die("command too long");
	memcpy(line + n, "\r\n", 3);
	n += 2;
	for (int done = 0; done < n;) {
		ssize_t w;
		if (c->tls != NULL) {
			w = gnutls_record_send(c->tls, line + done, (size_t)(n - done));
			if (w == GNUTLS_E_INTERRUPTED)
				continue;
			if (w < 0)
				die("control send: %s", gnutls_strerror((int)w));
		} else {
			w = send(c->fd, line + done, (size_t)(n - done), MSG_NOSIGNAL);
			if (w < 0)
				die("control send: %s", strerror(errno));
		}
		done += (int)w;
	}
}

__attribute__((format(printf, 2, 3))) static void ctl_send(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vctl_send(c, fmt, ap);
	va_end(ap);
}

/* A command and its reply (into out); the reply's code. */
__attribute__((format(printf, 4, 5))) static int cmd(struct conn *c, char *out, size_t outlen,
						     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vctl_send(c, fmt, ap);
	va_end(ap);
	return ctl_reply(c, out, outlen);
}

static void expect(int got, int want, const char *what, const char *text)
{
	if (got != want)
		die("%s: expected %d, got: %s", what, want, text);
}

/* EPSV or PASV: the passive port. */
static int passive(struct conn *c)
{
	char r[1024];
	const char *p;
	int port = 0;

	if (o.pasv) {
		unsigned h[6];
		expect(cmd(c, r, sizeof(r), "PASV"), 227, "PASV", r);
		p = strchr(r, '(');
		if (p == NULL || sscanf(p, "(%u,%u,%u,%u,%u,%u)", &h[0], &h[1], &h[2], &h[3], &h[4], &h[5]) != 6)
			die("bad 227 reply: %s", r);
		port = (int)(h[4] * 256 + h[5]);
	} else {
		expect(cmd(c, r, sizeof(r), "EPSV"), 229, "EPSV", r);
		p = strstr(r, "(|||");
		if (p == NULL || sscanf(p, "(|||%d|)", &port) != 1)
			die("bad 229 reply: %s", r);
	}
	if (port <= 0 || port > 65535)
		die("bad passive port in: %s", r);
	return port;
}

static const char *version_name(gnutls_session_t s)
{
	const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(s));

	return v ? v : "?";
}

/* Repeat a TLS call that a signal or a short wait interrupted. */
static int handshake(gnutls_session_t s)
{
	int r;

	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	return r;
}

/* After a TLS error: the alert the server sent, if that is what ended it. */
static void print_alert(const char *prefix, gnutls_session_t s, int r)
{
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED || r == GNUTLS_E_WARNING_ALERT_RECEIVED) {
		gnutls_alert_description_t a = gnutls_alert_get(s);
		const char *name = gnutls_alert_get_name(a);
		printf("%salert=%d\n%salert-name=%s\n%salert-level=%s\n", prefix, (int)a, prefix,
		       name ? name : "?", prefix, r == GNUTLS_E_FATAL_ALERT_RECEIVED ? "fatal" : "warning");
	}
}

/* Read the server's side of a data connection to its end: how it ended
 * (close_notify, or what came instead) and how many bytes came. */
static void drain_data(gnutls_session_t s)
{
	char buf[16384];
	long long got = 0;
	ssize_t n;

	for (;;) {
		n = gnutls_record_recv(s, buf, sizeof(buf));
		if (n > 0) {
			got += n;
			continue;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) /* SO_RCVTIMEO or a signal */
			n = GNUTLS_E_TIMEDOUT;
		if (n == GNUTLS_E_WARNING_ALERT_RECEIVED && gnutls_alert_get(s) != GNUTLS_A_CLOSE_NOTIFY) {
			print_alert("server-", s, (int)n);
			continue;
		}
		break;
	}
	printf("received=%lld\n", got);
	if (n == 0) {
		printf("server-close-notify=yes\n");
		return;
	}
	printf("server-close-notify=no\n");
	if (n == GNUTLS_E_PREMATURE_TERMINATION)
		printf("server-end=fin\n"); /* TCP closed without close_notify */
	else if (n == GNUTLS_E_TIMEDOUT)
		printf("server-end=timeout\n");
	else
		printf("server-end=error: %s\n", gnutls_strerror((int)n));
	print_alert("server-", s, (int)n);
}

/* Sending may fail when the server has given up already (it answers, closes,
 * resets): that is an outcome to report, so these return the error. */
static int data_send(gnutls_session_t s, const char *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t w = gnutls_record_send(s, buf + done, len - done);
		if (w == GNUTLS_E_INTERRUPTED)
			continue;
		if (w == GNUTLS_E_AGAIN) /* SO_SNDTIMEO */
			return GNUTLS_E_TIMEDOUT;
		if (w < 0)
			return (int)w;
		done += (size_t)w;
	}
	return 0;
}

static int tls_bye(gnutls_session_t s)
{
	int r;

	do
		r = gnutls_bye(s, GNUTLS_SHUT_WR);
	while (r == GNUTLS_E_INTERRUPTED);
	return r == GNUTLS_E_AGAIN ? GNUTLS_E_TIMEDOUT : r;
}

/* The input's first o.bytes bytes (all of it when -1) as TLS records;
 * *err is the send error that stopped it, if one did. */
static long long send_input(gnutls_session_t s, int *err)
{
	char buf[65536];
	long long sent = 0;

	*err = 0;
	st.input = stdin;
	if (o.input != NULL && strcmp(o.input, "-") != 0) {
		st.input = fopen(o.input, "rb");
		if (st.input == NULL)
			die("%s: %s", o.input, strerror(errno));
	}
	while (o.bytes < 0 || sent < o.bytes) {
		size_t want = sizeof(buf);
		if (o.bytes >= 0 && (long long)want > o.bytes - sent)
			want = (size_t)(o.bytes - sent);
		size_t n = fread(buf, 1, want, st.input);
		if (n == 0)
			break;
		*err = data_send(s, buf, n);
		if (*err < 0)
			break;
		sent += (long long)n;
	}
	if (ferror(st.input))
		die("reading the input: %s", strerror(errno));
	if (*err == 0 && o.bytes >= 0 && sent < o.bytes)
		die("the input has only %lld bytes", sent);
	if (st.input != stdin)
		fclose(st.input);
	st.input = NULL;
	return sent;
}

/* The client's side of an upload's end: 0, or the first error. */
static int end_upload(gnutls_session_t d, int fd)
{
	int r;

	switch (o.mode) {
	case M_CLOSE_NOTIFY:
		return tls_bye(d);
	case M_FIN:
		return shutdown(fd, SHUT_WR) < 0 ? GNUTLS_E_PUSH_ERROR : 0;
	default:
		break;
	}
	r = gnutls_alert_send(d, GNUTLS_AL_WARNING, GNUTLS_A_USER_CANCELED);
	if (r < 0)
		return r;
	if (o.mode == M_UC_DATA) {
		char *z = malloc(o.after ? o.after : 1);
		if (z == NULL)
			die("out of memory");
		memset(z, 'Z', o.after);
		r = data_send(d, z, o.after);
		free(z);
		if (r < 0)
			return r;
		printf("sent-after-alert=%zu\n", o.after);
	}
	if (o.mode == M_UC_FIN)
		return shutdown(fd, SHUT_WR) < 0 ? GNUTLS_E_PUSH_ERROR : 0;
	return tls_bye(d);
}

/* How the server treats the data socket after a failed handshake: closed
 * (FIN or reset) and when, or still open at the timeout. */
static void watch_close(int fd, long long t0)
{
	char buf[4096];
	long long deadline = now_ms() + o.timeout_ms;

	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0 || !readable(fd, (int)left)) {
			printf("data-closed=no\n");
			return;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
			continue;
		printf("data-closed=%s\ndata-closed-ms=%lld\n", n == 0 ? "fin" : "reset", now_ms() - t0);
		return;
	}
}

static void final_replies(struct conn *c)
{
	char r[1024];
	int code;

	while ((code = ctl_reply(c, r, sizeof(r))) < 200)
		printf("prelim=%s\n", r);
	printf("reply=%s\n", r);
}

/* A download (or a refused handshake's RETR): the replies and the data. */
static void download(struct conn *c, gnutls_session_t d)
{
	char r[1024];
	int code, e;

	if (o.mode == M_LIST)
		ctl_send(c, "%s", "LIST");
	else
		ctl_send(c, "RETR %s", o.name);
	code = ctl_reply(c, r, sizeof(r));
	if (code >= 200) {
		printf("reply=%s\n", r);
		return;
	}
	printf("prelim=%s\n", r);
	drain_data(d);
	e = tls_bye(d);
	if (e < 0)
		printf("client-error=%s\n", gnutls_strerror(e));
	data_done();
	final_replies(c);
}

static void upload(struct conn *c, gnutls_session_t d)
{
	char r[1024];
	int code, e;

	ctl_send(c, "STOR %s", o.name);
	code = ctl_reply(c, r, sizeof(r));
	if (code >= 200) {
		printf("reply=%s\n", r);
		return;
	}
	printf("prelim=%s\n", r);
	printf("sent=%lld\n", send_input(d, &e));
	if (e == 0)
		e = end_upload(d, st.data_fd);
	/* The server may have ended the connection first (a reset, a closed
	 * socket): say so, and still read how it ended and what it answered. */
	if (e < 0)
		printf("client-error=%s\n", gnutls_strerror(e));
	drain_data(d);
	data_done();
	final_replies(c);
}

static void run(void)
{
	struct conn c = { .fd = -1 };
	char r[1024];
	gnutls_session_t d;
	gnutls_datum_t sd = { NULL, 0 };
	int code, port, hr;
	long long t0;

	c.fd = tcp_connect(o.host, o.port, &st.ctl_fd);
	expect(ctl_reply(&c, r, sizeof(r)), 220, "greeting", r);
	expect(cmd(&c, r, sizeof(r), "AUTH TLS"), 234, "AUTH TLS", r);
	if (c.len != 0)
		die("bytes after 234, before the TLS handshake");
	c.tls = tls_new(c.fd, true, &st.ctl);
	hr = handshake(c.tls);
	if (hr < 0)
		die("control handshake: %s", gnutls_strerror(hr));
	printf("control=%s\n", version_name(c.tls));
	expect(cmd(&c, r, sizeof(r), "USER %s", o.user), 331, "USER", r);
	expect(cmd(&c, r, sizeof(r), "PASS %s", o.pass), 230, "PASS", r);
	expect(cmd(&c, r, sizeof(r), "PBSZ 0"), 200, "PBSZ 0", r);
	expect(cmd(&c, r, sizeof(r), "PROT P"), 200, "PROT P", r);
	expect(cmd(&c, r, sizeof(r), "TYPE I"), 200, "TYPE I", r);
	port = passive(&c);
	/* Under TLS 1.3 the tickets come after the handshake (here: before each
	 * 229); reading the replies has taken them in. */
	if (gnutls_protocol_get_version(c.tls) == GNUTLS_TLS1_3)
		printf("ticket=%s\n",
		       gnutls_session_get_flags(c.tls) & GNUTLS_SFLAGS_SESSION_TICKET ? "yes" : "no");

	tcp_connect(o.host, port, &st.data_fd);
	d = tls_new(st.data_fd, o.mode == M_NO_RESUME, &st.data);
	if (o.mode != M_NO_RESUME) {
		/* The latest ticket (TLS 1.3) or the session (TLS 1.2). */
		hr = gnutls_session_get_data2(c.tls, &sd);
		if (hr < 0)
			die("gnutls_session_get_data2: %s", gnutls_strerror(hr));
		hr = gnutls_session_set_data(d, sd.data, sd.size);
		gnutls_free(sd.data);
		if (hr < 0)
			die("gnutls_session_set_data: %s", gnutls_strerror(hr));
	}
	/* As curl does: the data handshake first, then the command. */
	t0 = now_ms();
	hr = handshake(d);
	if (hr < 0) {
		printf("handshake=failed\nhandshake-ms=%lld\nhandshake-error=%s\n", now_ms() - t0,
		       gnutls_strerror(hr));
		print_alert("", d, hr);
		/* Refused at the ClientHello (-1: no handshake message came), or
		 * later: 2 is a ServerHello, which a TLS 1.3 server sends before
		 * it needs a signature (a TLS 1.2 server sends its whole flight
		 * only after signing its ServerKeyExchange). */
		int last = (int)gnutls_handshake_get_last_in(d);
		printf("handshake-last-in=%d\n", last);
		watch_close(st.data_fd, t0);
		data_done();
		ctl_send(&c, "%s %s", o.mode == M_LIST ? "LIST" : o.mode == M_RETR || o.mode == M_NO_RESUME ? "RETR" : "STOR", o.name);
		final_replies(&c);
	} else {
		printf("handshake=ok\nhandshake-ms=%lld\nresumed=%s\ndata=%s\n", now_ms() - t0,
		       gnutls_session_is_resumed(d) ? "yes" : "no", version_name(d));
		if (o.mode == M_RETR || o.mode == M_NO_RESUME || o.mode == M_LIST)
			download(&c, d);
		else
			upload(&c, d);
	}
	data_done();

	ctl_send(&c, "%s", "QUIT");
	code = ctl_reply(&c, r, sizeof(r));
	if (code != 221)
		fprintf(stderr, "ftps_probe: QUIT: %s\n", r);
	(void)gnutls_bye(c.tls, GNUTLS_SHUT_WR);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ftps_probe -p PORT [--host ADDR] [--bind ADDR] [--user U] [--password P]\n"
		"                  [--cafile FILE | --insecure] [--priority PRIO] [--pasv]\n"
		"                  [--name NAME] [--input FILE] [--bytes N] [--after N]\n"
		"                  [--timeout SECONDS] MODE\n"
		"MODE: close-notify user-canceled-then-close-notify user-canceled-then-data\n"
		"      user-canceled-then-fin fin retr list no-resume\n"
		"TLS 1.3 only: --priority NORMAL:-VERS-ALL:+VERS-TLS1.3\n");
	exit(2);
}

static long long number(const char *s, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'w' },
		{ "cafile", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "priority", required_argument, NULL, 'P' },
		{ "pasv", no_argument, NULL, 'v' },
		{ "name", required_argument, NULL, 'n' },
		{ "input", required_argument, NULL, 'i' },
		{ "bytes", required_argument, NULL, 'N' },
		{ "after", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, r;
	bool found = false;

	o = (struct opts){ .host = "127.0.0.1", .user = "alice", .pass = "", .priority = "NORMAL",
			   .name = "probe.bin", .bytes = -1, .after = 4096, .timeout_ms = 10000 };
	while ((ch = getopt_long(argc, argv, "h:p:b:u:w:c:kP:vn:i:N:a:t:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h': o.host = optarg; break;
		case 'p': o.port = (int)number(optarg, 65535); break;
		case 'b': o.bind = optarg; break;
		case 'u': o.user = optarg; break;
		case 'w': o.pass = optarg; break;
		case 'c': o.cafile = optarg; break;
		case 'k': o.insecure = true; break;
		case 'P': o.priority = optarg; break;
		case 'v': o.pasv = true; break;
		case 'n': o.name = optarg; break;
		case 'i': o.input = optarg; break;
		case 'N': o.bytes = number(optarg, 1LL << 40); break;
		case 'a': o.after = (size_t)number(optarg, 1 << 24); break;
		case 't': o.timeout_ms = (int)number(optarg, 600) * 1000; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || o.port == 0 || (o.cafile == NULL) == !o.insecure || o.timeout_ms == 0)
		usage();
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (strcmp(argv[optind], mode_names[i]) == 0) {
			o.mode = (enum mode)i;
			found = true;
		}
	}
	if (!found)
		usage();
	/* Output goes to a pipe: line-buffer it so a probe that dies leaves
	 * everything it learnt. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	/* Whatever hangs, the probe ends (SIGALRM kills it). */
	alarm((unsigned)(o.timeout_ms / 1000) * 4 + 5);

	atexit(cleanup);
	r = gnutls_certificate_allocate_credentials(&st.cred);
	if (r < 0)
		die("gnutls_certificate_allocate_credentials: %s", gnutls_strerror(r));
	if (o.cafile != NULL) {
		r = gnutls_certificate_set_x509_trust_file(st.cred, o.cafile, GNUTLS_X509_FMT_PEM);
		if (r <= 0)
			die("%s: no CA certificate loaded (%s)", o.cafile, r < 0 ? gnutls_strerror(r) : "empty");
	}
	run();
	return 0; /* cleanup() frees the rest */
}
