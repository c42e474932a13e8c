/* The data channel (data.c): passive listeners and active connections,
 * only ever with the client's own address; data TLS, which must resume the
 * control connection's session; transfers that move in steps from the event
 * loop. It answers the client only through ctl_reply(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "session.h"

/* How a transfer starts: everything the command decided. */
struct xfer_request {
	enum xfer_dir dir;
	int file_fd;       /* downloads; uploads open theirs once the data connection is up */
	unsigned how;      /* uploads: IPC_OPEN_WRITE, APPEND or UNIQUE */
	uint64_t size;
	uint64_t offset;   /* REST */
	bool listing;
	bool ascii;
	const char *path;
};

/* The 522 answer to a data connection that did not resume the control
 * connection's TLS session. */
#define DATA_UNRESUMED_TEXT                                                                       \
	"Data connection refused: it did not resume the TLS session of the control connection "  \
	"(TLS session resumption is required)."

/* Open a passive listener; fills the port. 0 or -errno. */
int data_listen(struct session *s, uint16_t *port);
/* At the session's start: choose its passive ports (at most 128 of each
 * host's pasv-ports), and put every one once in all[] (at most max), for
 * its Landlock layer. The count put there. */
size_t data_pasv_choose(const struct config *root, uint16_t *all, size_t max);
/* Close the data connection, its listener and its TLS. */
void data_close(struct session *s);
/* PORT/EPRT: connect to addr when the transfer starts. */
void data_set_active(struct session *s, const struct sockaddr_storage *addr);
/* True when a and b are the same host (IPv4-mapped IPv6 equals IPv4). */
bool data_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* The listener became readable: accept (checking the peer). */
void data_accept(struct session *s);
/* A passive data connection from a balancer, waiting for its PROXY header:
 * read what came (never a byte past the header); once the header is whole,
 * the connection is the client's (its address is the control connection's)
 * or it is refused. i: its slot in s->waiting. */
void data_pending_step(struct session *s, unsigned i);
/* Refuse those whose header is late; the milliseconds until the next one
 * will be (-1: none waits). */
int data_pending_expire(struct session *s);
/* Start a transfer whose 150 was sent. */
void data_start(struct session *s, const struct xfer_request *rq);
/* Advance the data channel after poll; revents of the data socket. */
void data_step(struct session *s);
/* Poll events wanted on the data socket (0: none). */
short data_events(const struct session *s);
/* Milliseconds until the transfer's rate lets more go (0: now; -1: not
 * paced); until then data_events() leaves the data socket out. */
int data_pace_ms(struct session *s);
/* A command that opens the data channel may go on: a data connection is
 * set up and usable, and its protection is what the policy wants for this
 * kind of transfer (listing or not). false after answering why not (the
 * data channel is closed then). */
bool data_may_start(struct session *s, bool listing);
/* ABOR: end a running transfer with 426. */
void data_abort(struct session *s);
/* The session ends: a transfer still running is reported as cut off. */
void data_end(struct session *s);
/* The text of a 552 for the user's quota: files (quota-files) or bytes,
 * with the quota and what is used, as the monitor says now. */
void data_quota_text(struct session *s, bool files, char *out, size_t size);
/* A transfer runs: its 150 was sent, its last reply not yet. */
bool data_transfer_active(const struct session *s);
