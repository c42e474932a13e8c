/* The data channel: passive listeners, the peer check, data TLS with the
 * resumption check, and transfers that move in steps from the event loop so
 * that the control connection stays live. */
#include "data.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <poll.h>
#include <syslog.h>
#include <unistd.h>

#include "child_mon.h"
#include "ctl.h"
#include "ctls.h"
#include "ftp_codes.h"
#include "log.h"
#include "proxy.h"
#include "testhooks.h"

#define STEP_BUDGET 8 /* buffers per step, so the control connection is read in between */

bool data_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	uint8_t x[16], y[16];
	const struct sockaddr_storage *in[2] = { a, b };
	uint8_t *out[2] = { x, y };

	for (int i = 0; i < 2; i++) {
		if (in[i]->ss_family == AF_INET) {
			const struct sockaddr_in *v4 = (const struct sockaddr_in *)in[i];
			/* Compare as IPv4-mapped IPv6, so both spellings agree. */
			memset(out[i], 0, 10);
			out[i][10] = out[i][11] = 0xff;
			memcpy(out[i] + 12, &v4->sin_addr, 4);
		} else if (in[i]->ss_family == AF_INET6) {
			memcpy(out[i], &((const struct sockaddr_in6 *)in[i])->sin6_addr, 16);
		} else {
			return false;
		}
	}
	return memcmp(x, y, 16) == 0;
}

static void addr_string(const struct sockaddr_storage *a, char *buf, size_t size)
{
	const void *p = a->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
						: (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
	if (inet_ntop(a->ss_family, p, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
}

static void pending_drop(struct data_pending *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->have = 0;
}

static void pending_drop_all(struct session *s)
{
	for (unsigned i = 0; i < DATA_PENDING_MAX; i++)
		pending_drop(&s->waiting[i]);
}

void data_close(struct session *s)
{
	pending_drop_all(s);
	if (s->data_tls != NULL) {
		ctls_free(s->data_tls);
		s->data_tls = NULL;
	}
	if (s->data_fd >= 0) {
		close(s->data_fd);
		s->data_fd = -1;
	}
	if (s->pasv_fd >= 0) {
		close(s->pasv_fd);
		s->pasv_fd = -1;
	}
	s->data_handshaken = false;
	s->data_failed = false;
	s->data_unresumed = false;
	s->active = false;
	s->data_connecting = false;
}

void data_set_active(struct session *s, const struct sockaddr_storage *addr)
{
	data_close(s);
	s->active = true;
	s->active_addr = *addr;
}

/* The session's passive ports: of each host's pasv-ports, at most
 * PASV_PORTS chosen at random when the session starts, the only ones its
 * Landlock layer lets it bind (a rule per port). */
#define PASV_PORTS 128
static uint16_t pasv_ports[IPC_MAX_IDENTITIES][PASV_PORTS];
static unsigned pasv_nports[IPC_MAX_IDENTITIES];

static uint32_t random_u32(void)
{
	uint32_t v;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint32_t)session_now_ms() * 2654435761u;
	return v;
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b != 0) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

size_t data_pasv_choose(const struct config *root, uint16_t *all, size_t max)
{
	static uint8_t taken[65536 / 8];
	size_t n = 0;

	memset(taken, 0, sizeof(taken));
	for (unsigned id = 0; id < IPC_MAX_IDENTITIES && config_identity(root, id) != NULL; id++) {
		const struct config *c = config_identity(root, id);
		unsigned lo = c->pasv_port_low, range = c->pasv_port_high - lo + 1, k = 0;
		/* A small range whole; else PASV_PORTS of it from a random start
		 * with a random stride prime to the range: distinct ports. */
		uint32_t start = random_u32(), stride = 1;
		if (range > PASV_PORTS) {
			stride = 1 + random_u32() % (range - 1);
			while (gcd(stride, range) != 1)
				stride++;
		}
		for (unsigned i = 0; i < range && k < PASV_PORTS; i++) {
			unsigned p = lo + (unsigned)((start + (uint64_t)i * stride) % range);
			pasv_ports[id][k++] = (uint16_t)p;
			if (n < max && !(taken[p / 8] & (1u << (p % 8)))) {
				taken[p / 8] |= (uint8_t)(1u << (p % 8));
				all[n++] = (uint16_t)p;
			}
		}
		pasv_nports[id] = k;
	}
	return n;
}

int data_listen(struct session *s, uint16_t *port)
{
	struct sockaddr_storage a = s->local_addr;
	unsigned id = s->identity < IPC_MAX_IDENTITIES ? s->identity : 0;
	unsigned n = pasv_nports[id], start = random_u32();
	int fd;

	data_close(s);
	fd = -1;
	for (unsigned i = 0; i < n; i++) {
		uint16_t p = pasv_ports[id][(start + i) % n];
		if (a.ss_family == AF_INET)
			((struct sockaddr_in *)&a)->sin_port = htons(p);
		else
			((struct sockaddr_in6 *)&a)->sin6_port = htons(p);
		if (fd < 0) {
			fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd < 0)
				return -errno;
			/* The server closes a data connection first, which leaves its
			 * port in TIME_WAIT for a minute: without this, N quick
			 * transfers use up a range of N ports and every session gets
			 * 425. A port another socket listens on still cannot be bound. */
			int one = 1;
			if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
				break;
		}
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			if (errno != EADDRINUSE)
				break;
			continue;
		}
		if (listen(fd, 1) == 0) {
			s->pasv_fd = fd;
			*port = p;
			return 0;
		}
		/* Two sockets with SO_REUSEADDR may both bind a port nobody
		 * listens on yet; the second to listen fails. A bound socket
		 * cannot be bound again: try the next port with a new one. */
		if (errno != EADDRINUSE)
			break;
		close(fd);
		fd = -1;
	}
	int e = -errno;
	if (fd >= 0)
		close(fd);
	return e ? e : -EADDRINUSE;
}

bool data_transfer_active(const struct session *s)
{
	return s->xfer.dir != XFER_NONE;
}

/* Sizes for people: "512 bytes", "10 MiB", "9.8 MiB". */
static void human_size(char *out, size_t size, uint64_t v)
{
	static const char *units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	unsigned u = 0;

	if (v < 1024) {
		snprintf(out, size, "%llu bytes", (unsigned long long)v);
		return;
	}
	d /= 1024;
	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	if (v % (1ULL << (10 * (u + 1))) == 0)
		snprintf(out, size, "%.0f %s", d, units[u]);
	else
		snprintf(out, size, "%.1f %s", d, units[u]);
}

void data_quota_text(struct session *s, bool files, char *out, size_t size)
{
	struct mm_quota q;
	char max[32], used[32];

	if (mm_quota(&q) < 0)
		q.max_bytes = q.max_files = 0;
	if (files && q.max_files == 0)
		files = false;
	if (!files && q.max_bytes == 0)
		files = q.max_files != 0 && q.files >= q.max_files;
	if (files) {
		snprintf(out, size,
			 "Quota exceeded: %s may have %llu files and directories (quota-files), %llu used.",
			 s->user, (unsigned long long)q.max_files, (unsigned long long)q.files);
	} else if (q.max_bytes != 0) {
		human_size(max, sizeof(max), q.max_bytes);
		human_size(used, sizeof(used), q.bytes);
		snprintf(out, size, "Quota exceeded: %s may store %s (quota-bytes), %s used.", s->user,
			 max, used);
	} else {
		snprintf(out, size, "Quota exceeded: %s.", strerror(EDQUOT));
	}
}

/* The reply for an upload's file that failed with -e. A full disk is 552
 * as a quota is: the client may free room and go on. */
static int upload_error_code(int e)
{
	switch (e) {
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG:
		return FTP_EXCEEDED;
	case -ERANGE:
		return FTP_BADREST;
	case -EACCES:
	case -EPERM:
	case -EROFS:
	case -ENOENT:
	case -ENOTDIR:
		return FTP_FILEFAIL;
	case -EEXIST:
	case -EISDIR:
	case -EINVAL:
	case -ENAMETOOLONG:
		return FTP_BADFILENAME;
	default:
		return FTP_LOCALERR;
	}
}

/* Tell the monitor the transfer ended (it logs it, and puts a complete
 * upload in place); its answer. */
static int xfer_report(struct session *s, bool complete)
{
	struct transfer *x = &s->xfer;

	return mm_xfer(x->path, x->dir == XFER_SEND ? IPC_XFER_SENT : IPC_XFER_RECEIVED, x->bytes,
		       session_now_ms() - x->start_ms,
		       (complete ? IPC_XFER_COMPLETE : 0) | (x->ascii ? IPC_XFER_ASCII : 0) |
			       (x->unsure ? IPC_XFER_UNSURE : 0));
}

/* End the transfer with this reply; text NULL: the quota's (552). */
static void xfer_finish(struct session *s, int code, const char *text)
{
	struct transfer *x = &s->xfer;
	char failed[IPC_MAX_NAME + 160];

	if (x->file_fd >= 0)
		close(x->file_fd);
	x->file_fd = -1;
	/* close_notify on every data connection we end, uploads too: TLS says
	 * each side closes its writing with one (RFC 8446 6.1), and OpenSSL's
	 * clients (PHP's ftp_put) report its absence. Best effort: this socket
	 * is not waited for. */
	if (s->data_tls != NULL && s->data_handshaken)
		(void)ctls_bye(s->data_tls);
	if (s->data_fd >= 0)
		shutdown(s->data_fd, SHUT_WR);
	data_close(s);
	if (!x->listing) {
		int r = xfer_report(s, code == FTP_TRANSFEROK);
		if (r < 0 && code == FTP_TRANSFEROK) {
			code = upload_error_code(r);
			/* The monitor found the file past the quota: it is not stored. */
			if (r == -EDQUOT)
				data_quota_text(s, false, failed, sizeof(failed));
			else
				snprintf(failed, sizeof(failed),
					 "Upload received, but it could not be stored: %s.",
					 strerror(-r));
			text = failed;
		}
	}
	/* Stopped at the quota: its text says what is used once the monitor has
	 * counted what this upload kept. */
	if (text == NULL) {
		data_quota_text(s, false, failed, sizeof(failed));
		text = failed;
	}
	if (code != FTP_TRANSFEROK)
		log_info("transfer of %s ended with %d after %llu bytes", x->path, code,
			 (unsigned long long)x->bytes);
	x->dir = XFER_NONE;
	ctl_reply(s, code, "%s", text);
}

void data_end(struct session *s)
{
	if (!data_transfer_active(s))
		return;
	if (!s->xfer.listing)
		(void)xfer_report(s, false);
	s->xfer.dir = XFER_NONE;
}

/* The data connection is up and checked: only now is an upload's file
 * opened (created, truncated), so that a refused or vanished connection
 * changes nothing. false after answering an error. */
static bool open_upload(struct session *s)
{
	struct transfer *x = &s->xfer;
	char text[IPC_MAX_NAME + 160];
	uint64_t start;
	int fd, r;

	r = mm_open(x->path, x->how, x->offset, &fd, &start, &x->allowance);
	if (r < 0) {
		if (r == -EDQUOT)
			data_quota_text(s, true, text, sizeof(text));
		else if (r == -ERANGE)
			snprintf(text, sizeof(text), "Restart offset %llu is beyond the end of the file.",
				 (unsigned long long)x->offset);
		else
			snprintf(text, sizeof(text), "Could not create file: %s.", strerror(-r));
		xfer_finish(s, upload_error_code(r), text);
		return false;
	}
	x->file_fd = fd;
	x->offset = start;
	x->written = 0;
#if FTPSD_TEST_HOOKS
	if (testhooks_ignore_quota())
		x->allowance = UINT64_MAX;
#endif
	return true;
}

static void log_unresumed(struct session *s)
{
	mm_event(IPC_EVENT_DATA_TLS_NOT_RESUMED, LOG_WARNING,
		 "data connection refused: the client did not resume the control connection's TLS "
		 "session; it needs TLS session resumption, or data-tls-reuse = off for this user");
}

static void data_failed_reply(struct session *s)
{
	if (s->data_unresumed)
		xfer_finish(s, FTP_DATATLSBAD, DATA_UNRESUMED_TEXT);
	else
		xfer_finish(s, FTP_BADSENDCONN, "The data connection failed.");
}

/* The data connection is up (and its TLS done): check it may be used. */
static void xfer_ready(struct session *s)
{
	if (s->data_tls != NULL && s->data_tls_reuse && !ctls_resumed(s->data_tls)) {
		/* Refused from the ClientHello already (ctls_handshake); this is the
		 * second lock. Only tickets issued after login to this user at this
		 * address, and this process's cache, resume: a fresh session could
		 * be anyone. */
		log_unresumed(s);
		xfer_finish(s, FTP_DATATLSBAD, DATA_UNRESUMED_TEXT);
		return;
	}
	if (s->xfer.dir == XFER_RECV && s->xfer.file_fd < 0 && !open_upload(s))
		return;
	s->xfer.phase = XP_RUN;
}

static void handshake_step(struct session *s)
{
	/* Acknowledge at once what the client sends during the handshake: lftp
	 * writes ChangeCipherSpec and Finished separately, and its Nagle
	 * algorithm would hold the Finished until our (delayed) ACK, some 40 ms
	 * on every data connection. */
	int one = 1;
	(void)setsockopt(s->data_fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	int r = ctls_handshake(s->data_tls);

	if (r == -EAGAIN)
		return;
	if (r < 0) {
		/* A full handshake where a resumption was due: a client that may
		 * not use this connection. It has had its alert; the socket goes
		 * now, and the transfer command, whenever it comes, gets 522. */
		bool unresumed = r == -EACCES;
		if (unresumed)
			log_unresumed(s);
		if (unresumed || !data_transfer_active(s)) {
			data_close(s);
			s->data_unresumed = unresumed;
		}
		s->data_failed = true;
		if (data_transfer_active(s))
			data_failed_reply(s);
		return;
	}
	s->data_handshaken = true;
	if (data_transfer_active(s))
		xfer_ready(s);
}

/* The data connection is established (accepted or connected). */
static void data_connected(struct session *s)
{
	int one = 1;

	(void)setsockopt(s->data_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* curl starts the data handshake before it sends the command: answer now. */
	if (s->prot_private) {
		s->data_tls = ctls_new(s->data_fd, true, s->identity);
		handshake_step(s);
	} else if (data_transfer_active(s)) {
		xfer_ready(s);
	}
	if (data_transfer_active(s) && s->xfer.phase == XP_WAIT_CONN)
		s->xfer.phase = s->data_tls != NULL ? XP_HANDSHAKE : XP_RUN;
}

/* PORT/EPRT: the checks in the command made sure the address is the
 * control connection's peer and the port >= 1024. The monitor connects
 * (to the peer it knows, at that port): this process has no connect. */
static void data_connect(struct session *s)
{
	const struct sockaddr_storage *a = &s->active_addr;
	uint16_t port = ntohs(a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port :
							((const struct sockaddr_in6 *)a)->sin6_port);
	int fd = -1;

	s->active = false;
	if (mm_connect(port, &fd) < 0) {
		xfer_finish(s, FTP_BADSENDCONN, "Cannot open the data connection.");
		return;
	}
	/* Connected or connecting: connect_step() sees which once writable. */
	s->data_fd = fd;
	s->data_connecting = true;
}

static void connect_step(struct session *s)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(s->data_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		xfer_finish(s, FTP_BADSENDCONN, "Cannot open the data connection.");
		return;
	}
	s->data_connecting = false;
	data_connected(s);
}

/* The client's data connection, checked: the listener and every
 * connection still waiting for its header go. */
static void data_take(struct session *s, int fd)
{
	pending_drop_all(s);
	close(s->pasv_fd);
	s->pasv_fd = -1;
	s->data_fd = fd;
	data_connected(s);
}

/* Someone else raced the client to the port (directly, or through the
 * balancer via): refused; the listener keeps waiting for the client. */
static void refuse_peer(struct session *s, const struct sockaddr_storage *a,
			const struct sockaddr_storage *via)
{
	char who[64], want[64], bal[64] = "";

	addr_string(a, who, sizeof(who));
	addr_string(&s->peer_addr, want, sizeof(want));
	if (via != NULL)
		addr_string(via, bal, sizeof(bal));
	log_warn("refused data connection from %s%s%s (the control connection is from %s)", who,
		 via != NULL ? " via balancer " : "", bal, want);
}

/* A connection from a balancer that cannot be the client's: refused, why
 * logged. */
static void pending_refuse(struct data_pending *p, const char *why)
{
	char bal[64];

	addr_string(&p->from, bal, sizeof(bal));
	log_warn("refused data connection via balancer %s: %s", bal, why);
	pending_drop(p);
}

void data_accept(struct session *s)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	int fd;

	fd = accept4(s->pasv_fd, (struct sockaddr *)&a, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* From a listed balancer (and only then: no one else's header is
	 * read): whose connection it is, its PROXY header will say. It waits
	 * in a slot; the listener goes on accepting meanwhile. */
	if (s->root_cfg->proxy_protocol &&
	    proxy_address_listed(s->root_cfg->proxy_protocol_from, &a) > 0) {
		struct data_pending *slot = NULL, *oldest = NULL;
		for (unsigned i = 0; i < DATA_PENDING_MAX; i++) {
			struct data_pending *p = &s->waiting[i];
			if (p->fd < 0)
				slot = p;
			else if (oldest == NULL || p->deadline_ms < oldest->deadline_ms)
				oldest = p;
		}
		if (slot == NULL) {
			pending_refuse(oldest,
				       "too many data connections wait for their PROXY header");
			slot = oldest;
		}
		slot->fd = fd;
		slot->have = 0;
		slot->from = a;
		slot->deadline_ms = session_now_ms() + DATA_HEADER_MS;
		return;
	}
	if (!data_same_host(&a, &s->peer_addr)) {
		refuse_peer(s, &a, NULL);
		close(fd);
		return;
	}
	data_take(s, fd);
}

void data_pending_step(struct session *s, unsigned i)
{
	struct sockaddr_storage src;
	bool local = false;

	if (i >= DATA_PENDING_MAX)
		return;
	struct data_pending *p = &s->waiting[i];
	if (p->fd < 0 || p->have >= sizeof(p->buf))
		return;
	/* Peeked: what follows the header (the client's TLS ClientHello) must
	 * stay in the socket for the handshake. */
	ssize_t n = recv(p->fd, p->buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		pending_refuse(p, "closed before its PROXY header");
		return;
	}
	size_t seen = p->have + (size_t)n;
	int r = proxy_parse(p->buf, seen, &src, &local);
	if (r < 0) {
		pending_refuse(p, "no valid PROXY header");
		return;
	}
	if (r == 0) {
		/* Part of a header, every byte of it the header's: taken out of
		 * the socket, so that poll waits for the rest. */
		if (seen >= sizeof(p->buf) || recv(p->fd, p->buf + p->have, (size_t)n, 0) != n) {
			pending_refuse(p, "no valid PROXY header");
			return;
		}
		p->have = seen;
		return;
	}
	/* Whole: exactly its remaining bytes are taken, none after them. */
	if ((size_t)r <= p->have || (size_t)r > seen) {
		pending_refuse(p, "no valid PROXY header");
		return;
	}
	size_t rest = (size_t)r - p->have;
	if (recv(p->fd, p->buf + p->have, rest, 0) != (ssize_t)rest) {
		pending_refuse(p, "no valid PROXY header");
		return;
	}
	if (local) {
		/* The balancer's own connection (LOCAL, UNKNOWN) is no one's data. */
		pending_refuse(p, "its PROXY header names no client (LOCAL or UNKNOWN)");
		return;
	}
	if (!data_same_host(&src, &s->peer_addr)) {
		refuse_peer(s, &src, &p->from);
		pending_drop(p);
		return;
	}
	int fd = p->fd;
	p->fd = -1;
	p->have = 0;
	data_take(s, fd);
}

int data_pending_expire(struct session *s)
{
	uint64_t now = session_now_ms();
	int next = -1;

	for (unsigned i = 0; i < DATA_PENDING_MAX; i++) {
		struct data_pending *p = &s->waiting[i];
		if (p->fd < 0)
			continue;
		if (now >= p->deadline_ms) {
			pending_refuse(p, "no PROXY header in time");
			continue;
		}
		int left = (int)(p->deadline_ms - now);
		if (next < 0 || left < next)
			next = left;
	}
	return next;
}

void data_start(struct session *s, const struct xfer_request *rq)
{
	struct transfer *x = &s->xfer;

	memset(x, 0, sizeof(*x));
	x->dir = rq->dir;
	x->file_fd = rq->file_fd;
	x->how = rq->how;
	x->size = rq->size;
	x->offset = rq->offset;
	x->listing = rq->listing;
	x->ascii = rq->ascii && !rq->listing;
	x->out = s->buf;
	if (x->ascii && s->abuf == NULL) {
		s->abuf = malloc(2 * s->buf_size);
		if (s->abuf == NULL)
			abort();
	}
	snprintf(x->path, sizeof(x->path), "%s", rq->path);
	x->start_ms = x->progress_ms = session_now_ms();
	s->last_activity_ms = session_now_ms();

	if (s->data_failed) {
		data_failed_reply(s);
		return;
	}
	if (s->data_fd < 0) {
		x->phase = XP_WAIT_CONN;
		if (s->active)
			data_connect(s);
		return;
	}
	if (s->prot_private && s->data_tls == NULL) {
		s->data_tls = ctls_new(s->data_fd, true, s->identity);
		x->phase = XP_HANDSHAKE;
		handshake_step(s);
		return;
	}
	if (!s->prot_private && s->data_tls != NULL) {
		xfer_finish(s, FTP_BADSENDCONN,
			    "The data connection was opened with another protection level.");
		return;
	}
	if (s->data_tls != NULL && !s->data_handshaken) {
		x->phase = XP_HANDSHAKE;
		return;
	}
	xfer_ready(s);
}

bool data_may_start(struct session *s, bool listing)
{
	if (s->data_failed) {
		/* Known before anything starts (a data handshake that came first
		 * and failed, perhaps someone else's): say so instead of 150. */
		if (s->data_unresumed)
			ctl_reply(s, FTP_DATATLSBAD, DATA_UNRESUMED_TEXT);
		else
			ctl_reply(s, FTP_BADSENDCONN, "The data connection failed.");
		data_close(s);
		return false;
	}
	if (s->pasv_fd < 0 && s->data_fd < 0 && !s->active) {
		ctl_reply(s, FTP_BADSENDCONN, "Use PORT, EPRT, PASV or EPSV first.");
		return false;
	}
	struct policy_state st = session_policy(s);
	enum policy_verdict v = policy_data(s->cfg, &st, listing);
	if (v != POLICY_ALLOW) {
		/* The refusal changes nothing: the next transfer at the same level
		 * is judged afresh. */
		ctl_refuse(s, v);
		data_close(s);
		return false;
	}
	return true;
}

void data_abort(struct session *s)
{
	if (s->xfer.dir == XFER_RECV)
		log_warn("upload of %s aborted after %llu bytes: the file is incomplete", s->xfer.path,
			 (unsigned long long)s->xfer.bytes);
	xfer_finish(s, FTP_BADSENDNET, "Connection closed; transfer aborted.");
}

/* TYPE A out: LF becomes CRLF (an existing CRLF stays as it is). */
static size_t to_crlf(struct transfer *x, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n' && !x->prev_cr)
			out[j++] = '\r';
		out[j++] = in[i];
		x->prev_cr = in[i] == '\r';
	}
	return j;
}

/* TYPE A in: CRLF becomes LF; a CR at the end of a buffer waits for the next. */
static size_t from_crlf(struct transfer *x, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		if (x->prev_cr && in[i] != '\n')
			out[j++] = '\r';
		x->prev_cr = in[i] == '\r';
		if (!x->prev_cr)
			out[j++] = in[i];
	}
	return j;
}

static ssize_t data_send(struct session *s, const uint8_t *buf, size_t len)
{
	if (s->data_tls != NULL)
		return ctls_send(s->data_tls, buf, len);
	ssize_t n = send(s->data_fd, buf, len, MSG_NOSIGNAL);
	return n < 0 ? (errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno) : n;
}

/* Before a transfer's first byte, the rate it must keep under (the
 * monitor shares the user's among the user's transfers); unlimited, this
 * costs one message per transfer. Files only: listings are not paced. */
static void pace_start(struct session *s)
{
	struct transfer *x = &s->xfer;

	if (x->paced || x->listing)
		return;
	x->paced = true;
	x->progress_ms = session_now_ms();
	x->rate = mm_progress(x->bytes);
	rate_set(&x->pace, x->rate, x->progress_ms, x->bytes);
}

/* What the rate lets go now, at most cap; 0 leaves the data socket out of
 * the poll until data_pace_ms() says it is time. */
static size_t pace_allow(struct session *s, size_t cap)
{
	struct transfer *x = &s->xfer;

	if (x->rate == 0)
		return cap;
	size_t n = rate_allowance(&x->pace, session_now_ms(), x->bytes, cap);
	x->throttled = n == 0;
	return n;
}

int data_pace_ms(struct session *s)
{
	struct transfer *x = &s->xfer;

	if (!data_transfer_active(s) || x->phase != XP_RUN || x->rate == 0) {
		x->throttled = false;
		return -1;
	}
	int ms = rate_wait_ms(&x->pace, session_now_ms(), x->bytes, s->buf_size);
	x->throttled = ms > 0;
	return ms;
}

static void send_step(struct session *s)
{
	struct transfer *x = &s->xfer;
	bool eof = false;

	pace_start(s);
	for (int i = 0; i < STEP_BUDGET && !eof; i++) {
		if (s->data_tls == NULL && !x->ascii) {
			/* Clear binary data: the kernel copies file to socket, nothing passes here. */
			off_t off = (off_t)x->offset;
			size_t count = pace_allow(s, 4u << 20);
			if (count == 0)
				return;
			ssize_t n = sendfile(s->data_fd, x->file_fd, &off, count);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0) {
				xfer_finish(s, FTP_BADSENDNET,
					    "Connection closed; transfer aborted.");
				return;
			}
			if (n == 0) {
				eof = true;
				break;
			}
			x->offset += (uint64_t)n;
			x->bytes += (uint64_t)n;
			s->last_activity_ms = session_now_ms();
			continue;
		}
		if (x->buf_off == x->buf_len) {
			size_t want = pace_allow(s, s->buf_size);
			if (want == 0)
				return;
			ssize_t n = pread(x->file_fd, s->buf, want, (off_t)x->offset);
			if (n < 0) {
				char text[128];
				snprintf(text, sizeof(text), "Error reading file: %s.", strerror(errno));
				xfer_finish(s, FTP_LOCALERR, text);
				return;
			}
			if (n == 0) {
				eof = true;
				break;
			}
			x->offset += (uint64_t)n;
			x->buf_off = 0;
			if (x->ascii) {
				x->buf_len = to_crlf(x, s->buf, (size_t)n, s->abuf);
				x->out = s->abuf;
			} else {
				x->buf_len = (size_t)n;
				x->out = s->buf;
			}
		}
		while (x->buf_off < x->buf_len) {
			size_t left = x->buf_len - x->buf_off;
			/* The buffer's records are kept back and go out with its last
			 * one: two system calls per buffer, not one per 16 KiB record. */
			if (s->data_tls != NULL)
				ctls_set_more(s->data_tls, left > ctls_record_size(s->data_tls));
			ssize_t n = data_send(s, x->out + x->buf_off, left);
			if (n == -EAGAIN)
				return;
			if (n < 0) {
				xfer_finish(s, FTP_BADSENDNET,
					    "Connection closed; transfer aborted.");
				return;
			}
			x->buf_off += (size_t)n;
			x->bytes += (uint64_t)n;
			s->last_activity_ms = session_now_ms();
		}
	}
	if (!eof)
		return; /* out of budget; the socket is still writable, poll brings us back */
	if (s->data_tls != NULL) {
		x->phase = XP_BYE;
		data_step(s);
		return;
	}
	xfer_finish(s, FTP_TRANSFEROK, x->listing ? "Directory send OK." : "Transfer complete.");
}

static void finish_upload(struct session *s)
{
	struct transfer *x = &s->xfer;

	x->unsure = s->data_tls != NULL && !x->eof_clean;
	if (x->unsure) {
		/* The peer (or someone in between) closed TCP without TLS saying the
		 * data was complete: the file may be cut short. */
		log_warn("upload of %s ended without TLS close_notify after %llu bytes: it may be truncated",
			 x->path, (unsigned long long)x->bytes);
		if (s->cfg->data_tls_strict_eof) {
			xfer_finish(
				s, FTP_BADSENDNET,
				"Upload ended without TLS close_notify: possibly truncated, not stored.");
			return;
		}
	}
	/* No 226 before every byte is on disk. */
	if (s->cfg->upload_fsync && fsync(x->file_fd) < 0) {
		char text[128];
		int e = errno;
		snprintf(text, sizeof(text), "Error writing file: %s.", strerror(e));
		xfer_finish(s, upload_error_code(-e), text);
		return;
	}
	xfer_finish(s, FTP_TRANSFEROK,
		    x->unsure ? "Transfer complete (no TLS close_notify: possibly truncated)." :
				"Transfer complete.");
}

/* Write all of buf at the transfer's offset; false after answering an error.
 * Past the quota's allowance only what fits is written, and the upload
 * ends there with 552: reported incomplete, so the monitor drops an atomic
 * upload and keeps in place what was written. */
static bool write_out(struct session *s, const uint8_t *buf, size_t n)
{
	struct transfer *x = &s->xfer;
	bool over = n > x->allowance - x->written;

	if (over)
		n = (size_t)(x->allowance - x->written);
	for (size_t done = 0; done < n;) {
		ssize_t w = pwrite(x->file_fd, buf + done, n - done, (off_t)x->offset);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			char text[128];
			int e = errno;
			snprintf(text, sizeof(text), "Error writing file: %s.", strerror(e));
			xfer_finish(s, upload_error_code(-e), text);
			return false;
		}
		done += (size_t)w;
		x->offset += (uint64_t)w;
		x->written += (uint64_t)w;
	}
	if (over) {
		log_info("upload of %s stopped after %llu bytes: its quota allows no more", x->path,
			 (unsigned long long)x->written);
		xfer_finish(s, FTP_EXCEEDED, NULL);
		return false;
	}
	return true;
}

static ssize_t data_recv(struct session *s, uint8_t *buf, size_t len)
{
	if (s->data_tls != NULL) {
		ssize_t n = ctls_recv(s->data_tls, buf, len);
		if (n == 0)
			s->xfer.eof_clean = true;
		return n == -ECONNRESET ? 0 : n;
	}
	ssize_t n = recv(s->data_fd, buf, len, 0);
	return n < 0 ? (errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno) : n;
}

static void recv_step(struct session *s)
{
	struct transfer *x = &s->xfer;

	pace_start(s);
	for (int i = 0; i < STEP_BUDGET; i++) {
		/* Gather what is there, up to a buffer: one write per buffer, not one
		 * per 16 KiB TLS record. */
		size_t fill = 0, cap = pace_allow(s, s->buf_size);
		ssize_t n = 0;
		if (cap == 0)
			return;
		while (fill < cap && (n = data_recv(s, s->buf + fill, cap - fill)) > 0)
			fill += (size_t)n;
		if (fill > 0) {
			x->bytes += fill;
			s->last_activity_ms = session_now_ms();
			if (x->ascii) {
				size_t m = from_crlf(x, s->buf, fill, s->abuf);
				if (!write_out(s, s->abuf, m))
					return;
			} else if (!write_out(s, s->buf, fill)) {
				return;
			}
		}
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			log_warn("upload of %s cut off after %llu bytes: the file is incomplete",
				 x->path, (unsigned long long)x->bytes);
			xfer_finish(s, FTP_BADSENDNET, "Connection closed; transfer aborted.");
			return;
		}
		if (n == 0) {
			/* A CR that ended the upload was data, not half a line end. */
			if (x->ascii && x->prev_cr && !write_out(s, (const uint8_t *)"\r", 1))
				return;
			finish_upload(s);
			return;
		}
	}
}

short data_events(const struct session *s)
{
	if (s->data_fd < 0)
		return 0;
	if (s->data_connecting)
		return POLLOUT;
	if (s->data_tls != NULL && !s->data_handshaken && !s->data_failed)
		return ctls_want_write(s->data_tls) ? POLLOUT : POLLIN;
	if (!data_transfer_active(s))
		return 0;
	switch (s->xfer.phase) {
	case XP_RUN:
		if (s->xfer.throttled)
			return 0;
		return s->xfer.dir == XFER_SEND ? POLLOUT : POLLIN;
	case XP_BYE:
		return POLLOUT;
	default:
		return 0;
	}
}

/* About once a second, the bytes so far to the monitor (its session record
 * and process title); its answer is the rate to keep under, kept for now
 * (0: no limit). Listings are not reported. clock_gettime is the vDSO's. */
static void report_progress(struct session *s)
{
	struct transfer *x = &s->xfer;

	if (!data_transfer_active(s) || x->listing || x->phase != XP_RUN)
		return;
	uint64_t now = session_now_ms();
	if (now - x->progress_ms < 1000)
		return;
	x->progress_ms = now;
	uint64_t rate = mm_progress(x->bytes);
	if (rate != x->rate)
		rate_set(&x->pace, rate, now, x->bytes);
	x->rate = rate;
}

void data_step(struct session *s)
{
	if (s->data_fd < 0)
		return;
	if (s->data_connecting) {
		connect_step(s);
		return;
	}
	if (s->data_tls != NULL && !s->data_handshaken && !s->data_failed) {
		handshake_step(s);
		return;
	}
	if (!data_transfer_active(s))
		return;
	switch (s->xfer.phase) {
	case XP_RUN:
		if (s->xfer.dir == XFER_SEND)
			send_step(s);
		else
			recv_step(s);
		report_progress(s);
		break;
	case XP_BYE: {
		int r = ctls_bye(s->data_tls);
		if (r == -EAGAIN)
			return;
		xfer_finish(s, FTP_TRANSFEROK,
			    s->xfer.listing ? "Directory send OK." : "Transfer complete.");
		break;
	}
	default:
		break;
	}
}
