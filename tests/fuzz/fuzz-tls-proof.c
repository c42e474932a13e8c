/* libFuzzer target: handshake messages from a hostile child, checked by the
 * monitor for a client's proof of its key (tls_proof.c). The seeds are real
 * handshakes whose ServerHello carries this random. */
#include <stddef.h>
#include <stdint.h>

#include "tls_proof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t random[32] = "0123456789abcdef0123456789abcde";
	static const uint8_t ours[1][32] = { { 0x5a } };
	struct tls_proof p;

	(void)tls_proof_verify(data, size, random, ours, 1, &p);
	return 0;
}
