/* The child's TLS sessions (GnuTLS), control and data: ctls_*, the child's
 * TLS, apart from common/'s tls_proof_*. The private key is not here:
 * signatures are asked of the monitor. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "build_config.h"
#include "config.h"

struct ctls;

/* Credentials (certificate chain + a key that signs through the monitor),
 * priorities and this process's own ticket key; proof_random (32 bytes):
 * the monitor's server random for the control handshake. Call before the
 * chroot. */
int ctls_prepare(const struct config *cfg, char *const *cert_pem, const size_t *cert_len,
		unsigned identities, const uint8_t *proof_random);
/* A server session on a non-blocking socket. data: a data channel (never
 * sends tickets, never feeds the session cache). identity: whose
 * certificate (0 the global one, i+1 virtual host i). */
struct ctls *ctls_new(int fd, bool data, unsigned identity);
/* The virtual host the client's TLS SNI chose (its identity), -1 for none. */
int ctls_sni_identity(const struct ctls *t);
void ctls_free(struct ctls *t);
/* 0 when done, -EAGAIN to be called again when ctls_want_write() says which
 * way, -EPROTO when the handshake failed (logged), -EACCES when a data
 * handshake did not resume where it had to (ctls_retire_key): refused from
 * its ClientHello with an access_denied alert, not logged here. */
int ctls_handshake(struct ctls *t);
bool ctls_want_write(const struct ctls *t);
/* > 0 bytes, 0 on close_notify, -EAGAIN, -ECONNRESET on a close without
 * close_notify, -EPROTO on any other failure. On a TLS 1.3 data channel,
 * user_canceled followed at once by close_notify (how the JDK ends what it
 * wrote) is a close_notify; user_canceled followed by anything else fails. */
ssize_t ctls_recv(struct ctls *t, void *buf, size_t len);
/* > 0 bytes, -EAGAIN (call again with the same buffer), -EPROTO. */
ssize_t ctls_send(struct ctls *t, const void *buf, size_t len);
/* Bytes readable without waiting for the socket: decrypted and not yet
 * returned, or (data channels) read from the socket and not yet decrypted. */
size_t ctls_pending(struct ctls *t);
/* More data follows at once: data channels keep such records back and send
 * a burst in one system call (MSG_MORE: the kernel may hold a partial segment
 * until the next send). Clear it for the last record of a burst, which sends
 * what was kept. */
void ctls_set_more(struct ctls *t, bool more);
/* The largest plaintext one record carries. */
size_t ctls_record_size(struct ctls *t);
/* Send one new session ticket (TLS 1.3 only; a no-op otherwise). */
int ctls_send_ticket(struct ctls *t);
bool ctls_resumed(const struct ctls *t);
/* Whether the client sent a certificate (the monitor takes it from the
 * handshake's messages, ctls_handshake_messages). */
bool ctls_has_peer_certificate(const struct ctls *t);
/* After login with data-tls-reuse: data handshakes resume, so none may sign;
 * one that would (a full handshake) fails, and ctls_take_refused_signature()
 * says so once. The monitor refuses such signatures too. */
void ctls_retire_key(void);
bool ctls_take_refused_signature(void);
/* At login, the monitor's ticket key (64 bytes) for this user, virtual host
 * and client address. Under TLS 1.3 the control connection's tickets from
 * now on are under it (none were sent before login), and so data
 * connections resume the tickets of any session of the same user from the
 * same address, and nobody else's. Under TLS 1.2 (tickets are sent in the
 * handshake, before login) nothing changes: this process's key. */
void ctls_login_tickets(struct ctls *ctl, const uint8_t *key, size_t len);
/* The control handshake's messages, when client certificates are asked for
 * (tls_proof.h): 0, -ENOENT (not recorded), -EMSGSIZE (too long). */
int ctls_handshake_messages(const struct ctls *t, const uint8_t **msgs, size_t *len);
#if FTPSD_TEST_HOOKS
/* Test builds: handshake messages claiming the certificate der without
 * holding its key (buf: TLS_PROOF_MAX bytes). 0 or -EMSGSIZE. */
int ctls_test_forge_claim(const uint8_t *der, size_t der_len, uint8_t *buf, size_t *len);
#endif
/* Bytes the session has written to its socket so far. */
size_t ctls_bytes_sent(const struct ctls *t);
/* Send close_notify (once; again is a no-op): 0, -EAGAIN, -EPROTO. */
int ctls_bye(struct ctls *t);
/* The protocol ("TLS1.3") and cipher ("AES-128-GCM") names. */
void ctls_names(const struct ctls *t, const char **version, const char **cipher);
/* "TLS1.3/AES-128-GCM" */
const char *ctls_describe(const struct ctls *t, char *buf, size_t size);
