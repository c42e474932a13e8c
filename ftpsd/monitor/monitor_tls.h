/* The monitor's TLS: the private keys (loaded after the fork, never in the
 * child), signing for the child's handshakes, the ticket secret, client
 * certificate checks. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

/* The key of TLS identity (0: the global one, i+1: virtual host i). */
int monitor_tls_load_key(unsigned identity, const char *path);
/* Drop every private key, once no signature can be needed any more. */
void monitor_tls_drop_keys(void);
int monitor_tls_sign(unsigned identity, unsigned kind, unsigned algo, unsigned flags,
		     const uint8_t *in, size_t n, uint8_t *out, size_t *outlen, size_t max);

/* --check-config: the certificate and key load and belong together, the CA
 * loads. Reports "FILE:LINE: message" through err; returns the error count. */
int monitor_tls_check(const struct config *cfg, config_error_fn err, void *ctx);
/* The SHA-256 of the DER of the first certificate (the leaf) of an
 * identity's PEM chain; when its key is loaded, also that the two match.
 * 0, -EINVAL (no certificate) or -EKEYREJECTED (not the key's). */
int monitor_tls_leaf(unsigned identity, const char *pem, size_t len, uint8_t sha256[32]);
/* tls-ticket-secret: read it (as root, before login), or make it when it is
 * missing; logged when it cannot be had (each session then keys its
 * tickets on its own). */
void monitor_tls_load_ticket_secret(const char *path);
/* --check-config: an existing secret file is usable. 0, or -errno and why. */
int monitor_tls_check_ticket_secret(const char *path, const char **why);
/* At login: the key of this session's TLS tickets, HMAC-SHA-512 of the
 * secret over the virtual host, the user and the client's address, so that
 * sessions of one user from one address resume each other's tickets and
 * nobody else's. Wipes the secret. 0 or -errno. */
int monitor_tls_ticket_key(unsigned identity, const char *user, const struct sockaddr_storage *peer,
			   uint8_t key[64]);
/* Wipe the secret, at every login (monitor_tls_ticket_key needs it at a
 * login over TLS only). */
void monitor_tls_forget_ticket_secret(void);
/* tls-client-ca, for verifying client certificates. */
int monitor_tls_load_ca(const char *path);
/* Verify a DER chain (leaf first) against tls-client-ca; the leaf's SHA-256
 * in sha256. 0 or -EACCES. */
int monitor_tls_verify_chain(const uint8_t *const *der, const size_t *len, unsigned n,
			     uint8_t sha256[32]);

