/* The FTP session: its set-up, the event loop, its timeouts and its end. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "child_mon.h"
#include "commands.h"
#include "ctl.h"
#include "ctls.h"
#include "data.h"
#include "ftp_codes.h"
#include "ftp_parse.h"
#include "ipc.h"
#include "log.h"
#include "memory.h"
#include "session.h"

#define XFER_BUF_SIZE (256 * 1024)

/* session_end() has begun: anything that fails inside it ends the process
 * at once instead of starting another end. */
static bool ending;
/* The monitor did not answer or is gone: nothing may go through it now. */
static bool monitor_down;

void session_end(struct session *s, enum session_exit how, const char *fmt, ...)
{
	if (how == SESSION_NO_MONITOR)
		monitor_down = true;
	int status = how == SESSION_DONE && !monitor_down ? 0 : 1;

	if (ending)
		_exit(status);
	ending = true;
	if (!monitor_down) {
		char why[512];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		data_end(s);
		/* Logged before our close_notify goes out: a client that sees
		 * the connection end finds the reason in the log already. */
		log_write(how == SESSION_DONE ? LOG_INFO : LOG_ERR, why);
	}
	/* Best effort and bounded: the socket is non-blocking, and a client
	 * that does not read gets no more of our time. */
	if (s->ctl_tls != NULL)
		(void)ctls_bye(s->ctl_tls);
	_exit(status);
}

static void run_lines(struct session *s)
{
	char line[FTP_MAX_LINE + 1];

	if (s->pending != NULL && !data_transfer_active(s)) {
		char *p = s->pending;
		s->pending = NULL;
		commands_run_line(s, p, s->pending_len);
		free(p);
	}
	while (s->pending == NULL) {
		size_t len;
		int r = ftp_linebuf_take(&s->in, line, sizeof(line), &len);
		if (r == 0)
			return;
		if (r == -E2BIG) {
			ctl_reply(s, FTP_BADCMD, "Command line too long.");
			continue;
		}
		commands_run_line(s, line, len);
		explicit_bzero(line, sizeof(line));
		/* Idle from the answer on: a slow command (a login's password
		 * hash) does not eat into the client's time. */
		s->last_activity_ms = session_now_ms();
	}
}

static void check_timeouts(struct session *s)
{
	uint64_t now = session_now_ms();

	if (!s->logged_in && now - s->session_start_ms >= s->cfg->login_timeout_ms) {
		ctl_reply(s, FTP_IDLE_TIMEOUT, "Login timeout; closing the connection.");
		session_end(s, SESSION_DONE, "login timeout");
	}
	if (now - s->last_activity_ms >= s->cfg->idle_timeout_ms) {
		ctl_reply(s, FTP_IDLE_TIMEOUT, "Idle timeout; closing the connection.");
		session_end(s, SESSION_DONE, "idle timeout");
	}
}

static int poll_timeout(const struct session *s)
{
	uint64_t now = session_now_ms(), until = s->last_activity_ms + s->cfg->idle_timeout_ms;

	if (!s->logged_in && s->session_start_ms + s->cfg->login_timeout_ms < until)
		until = s->session_start_ms + s->cfg->login_timeout_ms;
	return until > now ? (int)(until - now) : 0;
}

static struct session *the_session;

/* The monitor did not answer within the idle timeout: it is stopped or
 * stuck, and nothing may go through it now, the log included. (A broken
 * channel ends the child in child_mon.c, where nothing can be said.) */
static void monitor_silent(void)
{
	monitor_down = true;
	/* Called from inside an IPC call: perhaps session_end()'s own, after
	 * its last reply. */
	if (ending || the_session == NULL)
		_exit(1);
	ctl_reply(the_session, FTP_CLOSING, "Service not available; closing the connection.");
	session_end(the_session, SESSION_NO_MONITOR, "the monitor does not answer");
}

/* The administrator ended the session (SIGTERM to the monitor). */
static void ended_by_administrator(struct session *s)
{
	ctl_reply(s, FTP_CLOSING, "Session ended by the administrator.");
	session_end(s, SESSION_DONE, "session ended by the administrator");
}

void session_run(const struct config *cfg, int ctl, bool implicit, const char *peer,
		 const struct sockaddr_storage *peer_addr, const char *refusal)
{
	struct session *s = calloc(1, sizeof(*s));
	socklen_t len;

	if (s == NULL)
		abort();
	s->cfg = s->root_cfg = cfg;
	s->ctl = ctl;
	the_session = s;
	mm_set_timeout(cfg->idle_timeout_ms, monitor_silent);
	s->pasv_fd = s->data_fd = -1;
	for (unsigned i = 0; i < DATA_PENDING_MAX; i++)
		s->waiting[i].fd = -1;
	s->xfer.file_fd = -1;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	snprintf(s->cwd, sizeof(s->cwd), "/");
	s->buf_size = XFER_BUF_SIZE;
	s->mlst_facts = IPC_FACTS_ALL;
	s->buf = malloc(s->buf_size);
	if (s->buf == NULL)
		abort();
	/* The client: the TCP peer, or the address a trusted balancer's PROXY
	 * header gave; data connections must come from it. */
	s->peer_addr = *peer_addr;
	len = sizeof(s->local_addr);
	if (getsockname(ctl, (struct sockaddr *)&s->local_addr, &len) < 0)
		session_end(s, SESSION_FAILED, "getsockname: %s", strerror(errno));
	/* Replies are small and often come in twos (a ticket and 229, 150 and
	 * 226): without this, Nagle's algorithm meets the client's delayed ACK
	 * and each waits some 40 ms. */
	int one = 1;
	(void)setsockopt(ctl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int fl = fcntl(ctl, F_GETFL);
	if (fl < 0 || fcntl(ctl, F_SETFL, fl | O_NONBLOCK) < 0)
		session_end(s, SESSION_FAILED, "O_NONBLOCK: %s", strerror(errno));
	s->session_start_ms = s->last_activity_ms = session_now_ms();

	if (implicit) {
		ctl_start_tls(s, true);
		s->secured = true;
		s->pbsz = true;
		s->prot_private = true;
	}
	if (refusal[0] != '\0') {
		ctl_reply(s, FTP_CLOSING, "%s", refusal);
		session_end(s, SESSION_DONE, "refused: %s", refusal);
	}
	ctl_reply(s, FTP_GREET, "%s", cfg->banner);

	for (;;) {
		struct pollfd p[4 + DATA_PENDING_MAX];
		int n = 0, ictl = -1, ipasv = -1, idata = -1, ipend[DATA_PENDING_MAX];

		run_lines(s);
		/* Logged in, an idle session waits here: the heap the TLS
		 * handshake and login freed, and the stack below this frame,
		 * go back once. */
		if (s->logged_in && !s->memory_released) {
			memory_release();
			s->memory_released = true;
		}
		if (mm_shutdown_asked(false))
			ended_by_administrator(s);

		/* The monitor speaks first only to end the session (IPC_SHUTDOWN);
		 * anything else here means it is gone. */
		p[n++] = (struct pollfd){ .fd = mm_socket(), .events = POLLIN };

		if (s->pending == NULL) {
			ictl = n;
			p[n++] = (struct pollfd){ .fd = s->ctl, .events = POLLIN };
		}
		if (s->pasv_fd >= 0) {
			ipasv = n;
			p[n++] = (struct pollfd){ .fd = s->pasv_fd, .events = POLLIN };
		}
		int pend = data_pending_expire(s);
		for (unsigned i = 0; i < DATA_PENDING_MAX; i++) {
			ipend[i] = -1;
			int fd = s->waiting[i].fd;
			if (fd >= 0) {
				ipend[i] = n;
				p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
			}
		}
		int pace = data_pace_ms(s);
		short ev = data_events(s);
		if (ev != 0) {
			idata = n;
			p[n++] = (struct pollfd){ .fd = s->data_fd, .events = ev };
		}
		int timeout = poll_timeout(s);
		if (pace >= 0 && pace < timeout)
			timeout = pace;
		if (pend >= 0 && pend < timeout)
			timeout = pend;
		bool ctl_buffered = s->ctl_tls != NULL && ctls_pending(s->ctl_tls) > 0 && ictl >= 0;
		bool data_buffered =
			s->data_tls != NULL && (ev & POLLIN) && ctls_pending(s->data_tls) > 0;
		if (ctl_buffered || data_buffered)
			timeout = 0;

		int r = poll(p, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			session_end(s, SESSION_FAILED, "poll: %s", strerror(errno));
		if (r <= 0 && !ctl_buffered && !data_buffered) {
			check_timeouts(s);
			continue;
		}
		if (p[0].revents != 0) {
			if (mm_shutdown_asked((p[0].revents & POLLIN) != 0))
				ended_by_administrator(s);
			session_end(s, SESSION_NO_MONITOR, "the monitor is gone");
		}
		if (ictl >= 0 && (ctl_buffered || (p[ictl].revents & (POLLIN | POLLHUP | POLLERR)))) {
			if (!ctl_read(s)) {
				if (data_transfer_active(s) && s->xfer.dir == XFER_RECV)
					log_warn("control connection closed during the upload of %s",
						 s->xfer.path);
				session_end(s, SESSION_DONE,
					    "client closed the control connection");
			}
		}
		/* Before the listener, so that a slot freed here is there for the
		 * next. A slot that another's success emptied is skipped (its fd
		 * is -1 now, or a new one that poll did not see). */
		for (unsigned i = 0; i < DATA_PENDING_MAX; i++)
			if (ipend[i] >= 0 && p[ipend[i]].revents != 0 &&
			    s->waiting[i].fd == p[ipend[i]].fd)
				data_pending_step(s, i);
		if (ipasv >= 0 && (p[ipasv].revents & POLLIN))
			data_accept(s);
		else if (idata >= 0 && (data_buffered || p[idata].revents != 0))
			data_step(s);
	}
}
