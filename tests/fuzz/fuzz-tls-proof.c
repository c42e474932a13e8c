/* libFuzzer target: handshake messages from a hostile child, checked by the
 * monitor for a client's proof of its key (tls_proof.c). The seeds are real
 * handshakes whose ServerHello carries this random, with servers whose
 * certificates are trusted here (tls-proof-ours.h), so that the server's own
 * signature is checked too: TLS 1.3 CertificateVerify, TLS 1.2
 * ServerKeyExchange (ECDHE and DHE). Regenerate both together:
 *   rm tests/fuzz/seeds-tls-proof/handshake-*
 *   build/tests/unit/test-tls-proof tests/fuzz/seeds-tls-proof tests/fuzz/tls-proof-ours.h */
#include <stddef.h>
#include <stdint.h>

#include "tls_proof.h"
#include "tls-proof-ours.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t random[32] = "0123456789abcdef0123456789abcde";
	struct tls_proof p;

	if (tls_proof_verify(data, size, random, seed_servers, 2, &p) == 0) {
		/* A proof names a chain inside the transcript, before its end. */
		if (p.count == 0 || p.count > IPC_MAX_CERTS || p.end > size ||
		    (p.version != 0x0303 && p.version != 0x0304))
			__builtin_trap();
		for (unsigned i = 0; i < p.count; i++)
			if (p.der[i] < data || p.len[i] == 0 || p.len[i] > size ||
			    p.der[i] + p.len[i] > data + p.end)
				__builtin_trap();
	}
	return 0;
}
