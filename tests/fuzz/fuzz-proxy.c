/* libFuzzer target: what a balancer (or anyone claiming to be one) sends first. */
#include <stddef.h>
#include <stdint.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src;
	bool local;
	int r = proxy_parse(data, size, &src, &local);

	if (r > 0 && (size_t)r > size)
		__builtin_trap();
	/* Read as it comes (child/data.c takes a data connection's header in
	 * pieces, consuming each piece that is "not yet complete"): every
	 * prefix that needs more is all header, so the whole parses longer or
	 * is refused; a prefix that is complete is the whole's header; one
	 * that is refused, the whole is too. */
	for (size_t k = 0; k <= size && k <= PROXY_MAX_HEADER; k++) {
		int p = proxy_parse(data, k, &src, &local);
		if (p == 0 && r > 0 && (size_t)r <= k)
			__builtin_trap();
		if ((p > 0 && p != r) || (p < 0 && r >= 0))
			__builtin_trap();
		if (p != 0)
			break;
	}
	return 0;
}
