/* The control connection: every reply goes out here (Telnet-safe, one
 * line at a time), lines come in here, and here its TLS starts (AUTH or
 * implicit), sends its tickets and ends (CCC). Choosing a virtual host
 * (HOST or the TLS server name) is here too: it changes the certificate. */
#include "ctl.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child_mon.h"
#include "ctls.h"
#include "ftp_codes.h"
#include "log.h"

/* Write all of buf to the control connection, waiting at most the idle timeout. */
static void ctl_write(struct session *s, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n;
		if (s->ctl_tls != NULL) {
			n = ctls_send(s->ctl_tls, buf + off, len - off);
		} else {
			n = send(s->ctl, buf + off, len - off, MSG_NOSIGNAL);
			if (n < 0)
				n = errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		}
		if (n == -EAGAIN) {
			struct pollfd p = { .fd = s->ctl, .events = POLLOUT };
			if (poll(&p, 1, (int)s->cfg->idle_timeout_ms) <= 0)
				session_end(s, SESSION_DONE, "the client reads no replies");
			continue;
		}
		if (n < 0)
			session_end(s, SESSION_DONE, "control connection lost: %s",
				    strerror(-(int)n));
		off += (size_t)n;
	}
}

/* The control connection is a Telnet stream (RFC 854): a 0xff byte in a
 * name goes out doubled. */
static void ctl_write_telnet(struct session *s, const char *text)
{
	char out[2048];
	size_t j = 0;

	for (const char *p = text; *p != '\0'; p++) {
		if (j + 2 >= sizeof(out)) {
			ctl_write(s, out, j);
			j = 0;
		}
		out[j++] = *p;
		if ((unsigned char)*p == 0xff)
			out[j++] = *p;
	}
	ctl_write(s, out, j);
}

/* One reply line: "code text" ends a reply, "code-text" starts a longer one. */
__attribute__((format(printf, 4, 0))) static void reply_line(struct session *s, int code,
							     char sep, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%d%c", code, sep);

	vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	/* Nothing a client put in a reply (a path, a name) may end it early. */
	for (char *p = line + n; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	strcat(line, "\r\n");
	ctl_write_telnet(s, line);
}

void ctl_reply(struct session *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(s, code, ' ', fmt, ap);
	va_end(ap);
}

void ctl_reply_start(struct session *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(s, code, '-', fmt, ap);
	va_end(ap);
}

void ctl_reply_raw(struct session *s, const char *text)
{
	ctl_write_telnet(s, text);
}

/* A refusal by policy: its code and text come from one table (policy.c). */
void ctl_refuse(struct session *s, enum policy_verdict v)
{
	int code;
	const char *text = policy_reply(v, &code);

	ctl_reply(s, code, "%s", text);
}

/* Drive a control handshake to its end, bounded by the login timeout. */
static int ctl_handshake(struct session *s)
{
	uint64_t deadline = session_now_ms() + s->cfg->login_timeout_ms;

	for (;;) {
		int r = ctls_handshake(s->ctl_tls);
		if (r != -EAGAIN)
			return r;
		uint64_t now = session_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = s->ctl,
				    .events = ctls_want_write(s->ctl_tls) ? POLLOUT : POLLIN };
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return -errno;
	}
}

void ctl_select_host(struct session *s, unsigned identity)
{
	s->identity = identity;
	s->cfg = config_identity(s->root_cfg, identity);
	mm_host(identity);
	log_info("virtual host %s", s->cfg->host_name != NULL ? s->cfg->host_name : "(default)");
}

/* TLS 1.3 tickets come after login, under this user's key
 * (ctls_login_tickets), so that a user's sessions from one address can
 * resume each other's. But GnuTLS clients such as wget take the session they
 * will resume once, right after the handshake, waiting their estimate of a
 * round trip and 60 ms for a ticket (measured on loopback: sometimes under
 * 20 ms): a client that says nothing for 5 ms (and the round trip a command
 * held back by Nagle's algorithm takes, up to 20 ms) gets one now, under
 * this process's key, and its data connections then resume this
 * connection's tickets only. Clients that go on at once (curl, rclone,
 * lftp, ...) get theirs after login. Under implicit TLS every client waits
 * for the 220 first: each gets one now. */
#define TICKET_WAIT_MS	   5
#define TICKET_WAIT_RTT_MS 20

static void ticket_before_login(struct session *s, bool implicit)
{
	if (!implicit) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		int ms = TICKET_WAIT_MS;
		if (getsockopt(s->ctl, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
			ms += (int)(ti.tcpi_rtt / 1000 > TICKET_WAIT_RTT_MS ? TICKET_WAIT_RTT_MS :
									  ti.tcpi_rtt / 1000);
		struct pollfd p = { .fd = s->ctl, .events = POLLIN };
		if (ctls_pending(s->ctl_tls) > 0 || poll(&p, 1, ms) != 0)
			return;
	}
	ctl_send_ticket(s);
}

void ctl_start_tls(struct session *s, bool implicit)
{
	char desc[64];

	s->ctl_tls = ctls_new(s->ctl, false, s->identity);
	int r = ctl_handshake(s);
	if (r < 0) {
		/* RFC 4217 9.1/9.3: a handshake that failed before the server said
		 * anything leaves the connection in clear: say 421 there. One that
		 * failed midway cannot be answered in any protocol: drop it. */
		bool clear = ctls_bytes_sent(s->ctl_tls) == 0;
		ctls_free(s->ctl_tls);
		s->ctl_tls = NULL;
		if (clear)
			ctl_reply(s, FTP_TLS_FAIL,
				  "TLS negotiation failed; closing the connection.");
		session_end(s, SESSION_DONE, "control TLS handshake failed%s",
			    clear ? " before any reply" : "");
	}
	log_info("control connection: %s", ctls_describe(s->ctl_tls, desc, sizeof(desc)));
	/* Under TLS 1.3 the client speaks last in the handshake: acknowledge
	 * its Finished now, so that its next command is not held back by
	 * Nagle's algorithm meeting our delayed ACK (some 40 ms per login). */
	int one = 1;
	(void)setsockopt(s->ctl, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	ticket_before_login(s, implicit);
	int sni = ctls_sni_identity(s->ctl_tls);
	if (sni >= 0 && (unsigned)sni != s->identity) {
		if (s->host_given) {
			/* RFC 7151: HOST and the TLS server name must agree. */
			ctl_reply(
				s, FTP_TLS_FAIL,
				"The TLS server name does not match HOST; closing the connection.");
			session_end(s, SESSION_DONE, "the TLS server name does not match HOST");
		}
		ctl_select_host(s, (unsigned)sni);
	}
	const char *version, *cipher;
	ctls_names(s->ctl_tls, &version, &cipher);
	mm_tls_info(version, cipher);

	const uint8_t *msgs;
	size_t msgs_len;
	if (ctls_has_peer_certificate(s->ctl_tls) &&
	    (ctls_handshake_messages(s->ctl_tls, &msgs, &msgs_len) < 0 ||
	     mm_cert(msgs, msgs_len) < 0) &&
	    s->cfg->tls_client_certificate_invalid == CERT_INVALID_CLOSE) {
		/* RFC 4217 9.1: a certificate the server does not accept may end
		 * the session at once. */
		ctl_reply(s, FTP_TLS_FAIL,
			  "Client certificate not accepted; closing the connection.");
		session_end(s, SESSION_DONE, "the client's certificate was not accepted");
	}
}

void ctl_send_ticket(struct session *s)
{
	/* A fresh ticket for each data connection: a TLS 1.3 client never runs
	 * out of tickets nor holds an expired one. */
	for (;;) {
		int r = ctls_send_ticket(s->ctl_tls);
		if (r != -EAGAIN)
			return;
		struct pollfd p = { .fd = s->ctl, .events = POLLOUT };
		if (poll(&p, 1, (int)s->cfg->idle_timeout_ms) <= 0)
			session_end(s, SESSION_DONE, "the client reads no replies");
	}
}

void ctl_clear_tls(struct session *s)
{
	uint64_t deadline = session_now_ms() + s->cfg->idle_timeout_ms;

	for (;;) {
		int r = ctls_bye(s->ctl_tls);
		if (r != -EAGAIN)
			break;
		struct pollfd p = { .fd = s->ctl, .events = POLLOUT };
		uint64_t now = session_now_ms();
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			session_end(s, SESSION_DONE, "the client reads no replies");
	}
	ctls_free(s->ctl_tls);
	s->ctl_tls = NULL;
	/* A client that answers with its own close_notify sends it in what is
	 * now the clear stream: it is skipped there (ctl_read). */
	s->after_ccc = true;
	log_info("control connection cleared (CCC)");
}

bool ctl_read(struct session *s)
{
	size_t space;
	uint8_t *tail = ftp_linebuf_tail(&s->in, &space);
	ssize_t n;

	if (space == 0)
		return true;
	if (s->ctl_tls != NULL) {
		n = ctls_recv(s->ctl_tls, tail, space);
		if (n == -EAGAIN)
			return true;
	} else {
		n = recv(s->ctl, tail, space, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
	}
	if (n <= 0)
		return false;
	if (s->after_ccc) {
		/* A TLS record right after CCC is the client's close_notify, not a
		 * command: an alert (type 21) under TLS 1.2, an encrypted record
		 * (type 23) under TLS 1.3. No FTP command starts with these bytes. */
		if (n >= 5 && (tail[0] == 0x15 || tail[0] == 0x17) && tail[1] == 0x03) {
			size_t rec = 5 + ((size_t)tail[3] << 8 | tail[4]);
			if (rec <= (size_t)n) {
				memmove(tail, tail + rec, (size_t)n - rec);
				n -= (ssize_t)rec;
			}
		}
		s->after_ccc = false;
	}
	ftp_linebuf_added(&s->in, (size_t)n);
	s->last_activity_ms = session_now_ms();
	return true;
}
