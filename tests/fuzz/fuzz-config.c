/* libFuzzer target: configuration text. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore(void *ctx, const char *message)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;

	config_defaults(&c);
	(void)config_parse(&c, "fuzz.conf", (const char *)data, size, ignore, NULL);
	config_free(&c);
	return 0;
}
