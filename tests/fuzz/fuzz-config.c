/* libFuzzer target: configuration text, parsed and then printed back as
 * --check-config prints it (global part and every host). Seeds set every
 * key and [host] sections; config.dict holds the words. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore(void *ctx, const char *message)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *out;
	struct config c;

	if (out == NULL && (out = fopen("/dev/null", "w")) == NULL)
		abort();
	config_defaults(&c);
	(void)config_parse(&c, "fuzz.conf", (const char *)data, size, ignore, NULL);
	config_print(&c, out);
	for (size_t i = 0; i < c.nhosts; i++) {
		/* Host names are unique (case aside): each finds itself. */
		if (config_host(&c, c.hosts[i].host_name) != &c.hosts[i])
			__builtin_trap();
		config_print(&c.hosts[i], out);
	}
	config_free(&c);
	return 0;
}
