/* Proof that a TLS client holds the key of the certificate it presented,
 * checked by the monitor from the handshake messages the child recorded.
 *
 * The child could otherwise claim any certificate it has seen (certificates
 * are public). The monitor chooses the server random of the control
 * handshake before the child exists; the client's CertificateVerify signs a
 * transcript that contains it, so only a live handshake with the key holder
 * produces a signature that verifies. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

/* The bytes of the ServerHello random the monitor chose and checks; the
 * last 8 stay free for the TLS 1.3 downgrade sentinel (RFC 8446 4.1.3). */
#define TLS_PROOF_RANDOM 24
/* The longest transcript the monitor takes. */
#define TLS_PROOF_MAX (64 * 1024)
/* The most handshake messages it reads (a full TLS 1.2 handshake with a
 * client certificate has 10 before the client's CertificateVerify). */
#define TLS_PROOF_MAX_MSGS 24

struct tls_proof {
	/* The client's chain from its Certificate message, leaf first (at most
	 * IPC_MAX_CERTS), pointing into the transcript. */
	const uint8_t *der[IPC_MAX_CERTS];
	size_t len[IPC_MAX_CERTS];
	unsigned count;
	unsigned version; /* 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3) */
	size_t end; /* the end of the CertificateVerify: what follows is not signed */
};

/* Append one message as a GnuTLS handshake hook sees it (its type, its
 * body) to buf (TLS_PROOF_MAX bytes, *len used): with its header, as it is on
 * the wire and in the transcript. Pseudo-messages (ChangeCipherSpec) are
 * skipped. 0, or -EMSGSIZE when it does not fit. */
int tls_proof_append(uint8_t *buf, size_t *len, unsigned htype, const uint8_t *body, size_t size);

/* t holds handshake messages (type, 24-bit length, body) in the order they
 * were sent and received, from the first ClientHello on. 0 when the
 * ServerHello starts with `random` (TLS_PROOF_RANDOM bytes), the server's
 * certificate is one of ours (SHA-256 of the leaf's DER, n_ours of them) and
 * the client's CertificateVerify is a valid signature by its leaf
 * certificate's key over that transcript; -EBADMSG when the messages are not
 * such a handshake, -EACCES when the proof fails or uses an algorithm not
 * accepted. */
int tls_proof_verify(const uint8_t *t, size_t n, const uint8_t *random,
		     const uint8_t (*ours)[32], unsigned n_ours, struct tls_proof *out);
