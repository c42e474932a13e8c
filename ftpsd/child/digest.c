/* File digests for HASH (draft-bryan-ftpext-hash), by GnuTLS: like the TLS
 * files, the only other child file that includes it. */
#include "digest.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <unistd.h>

static const struct {
	const char *name;
	gnutls_digest_algorithm_t algo;
} digests[DIGEST_COUNT] = {
	{ "SHA-256", GNUTLS_DIG_SHA256 },
	{ "SHA-1", GNUTLS_DIG_SHA1 },
	{ "MD5", GNUTLS_DIG_MD5 },
};

const char *digest_name(unsigned algo)
{
	return algo < DIGEST_COUNT ? digests[algo].name : NULL;
}

int digest_file(int fd, unsigned algo, uint8_t *buf, size_t bufsize, char *hex, size_t hexsize)
{
	gnutls_hash_hd_t h;
	uint8_t digest[64];
	off_t off = 0;

	if (algo >= DIGEST_COUNT)
		return -EINVAL;
	unsigned len = gnutls_hash_get_len(digests[algo].algo);
	if (len == 0 || len > sizeof(digest) || hexsize < 2 * len + 1)
		return -EINVAL;
	if (gnutls_hash_init(&h, digests[algo].algo) < 0)
		return -ENOTSUP;
	for (;;) {
		ssize_t n = pread(fd, buf, bufsize, off);
		if (n < 0) {
			int e = -errno;
			gnutls_hash_deinit(h, NULL);
			return e;
		}
		if (n == 0)
			break;
		gnutls_hash(h, buf, (size_t)n);
		off += n;
	}
	gnutls_hash_deinit(h, digest);
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	return 0;
}
