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
	return 0;
}
