/* File digests for HASH (draft-bryan-ftpext-hash). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The algorithms by index: OPTS HASH chooses one, SHA-256 by default. */
enum { DIGEST_SHA256 = 0, DIGEST_SHA1 = 1, DIGEST_MD5 = 2, DIGEST_COUNT };

/* The name HASH and OPTS HASH use ("SHA-256"), NULL past the last. */
const char *digest_name(unsigned algo);
/* The digest of the whole file fd, read with pread() through buf, in hex
 * (hex: 2 * digest size + 1 bytes at least). 0 or -errno. */
int digest_file(int fd, unsigned algo, uint8_t *buf, size_t bufsize, char *hex, size_t hexsize);
