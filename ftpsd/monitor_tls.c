/* The TLS private key lives here and nowhere else: the child's handshakes
 * ask for signatures over IPC. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "monitor.h"

#define KEY_MAX_SIZE (64 * 1024)

static gnutls_privkey_t monitor_key;

int monitor_tls_load_key(const char *path)
{
	uint8_t *buf;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	buf = malloc(KEY_MAX_SIZE);
	if (buf == NULL)
		abort();
	for (;;) {
		ssize_t n = read(fd, buf + len, KEY_MAX_SIZE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == KEY_MAX_SIZE) {
			r = -EFBIG;
			goto out;
		}
	}
	gnutls_datum_t d = { .data = buf, .size = (unsigned)len };
	if (gnutls_privkey_init(&monitor_key) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (gnutls_privkey_import_x509_raw(monitor_key, &d, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		gnutls_privkey_deinit(monitor_key);
		monitor_key = NULL;
		r = -EINVAL;
		goto out;
	}
	r = 0;
out:
	/* The PEM text is key material too. */
	explicit_bzero(buf, KEY_MAX_SIZE);
	free(buf);
	close(fd);
	return r;
}

int monitor_tls_sign(unsigned kind, unsigned algo, unsigned flags, const uint8_t *in, size_t n,
		     uint8_t *out, size_t *outlen, size_t max)
{
	gnutls_datum_t data = { .data = (unsigned char *)in, .size = (unsigned)n };
	gnutls_datum_t sig = { NULL, 0 };
	int r;

	if (monitor_key == NULL)
		return -ENOKEY;
	/* Raw PKCS#1 signing (TLS 1.0/1.1 only) would make the monitor an oracle
	 * for arbitrary RSA signatures: never. Only the PSS flag may pass. */
	if (algo == GNUTLS_SIGN_RSA_RAW || (flags & ~(unsigned)GNUTLS_PRIVKEY_SIGN_FLAG_RSA_PSS) != 0)
		return -EPERM;
	if (kind == IPC_SIGN_DATA)
		r = gnutls_privkey_sign_data2(monitor_key, (gnutls_sign_algorithm_t)algo, flags, &data,
					      &sig);
	else if (kind == IPC_SIGN_HASH)
		r = gnutls_privkey_sign_hash2(monitor_key, (gnutls_sign_algorithm_t)algo, flags, &data,
					      &sig);
	else
		return -EINVAL;
	if (r < 0) {
		log_warn("signature (algorithm %u) failed: %s", algo, gnutls_strerror(r));
		return -EIO;
	}
	if (sig.size > max) {
		gnutls_free(sig.data);
		return -EMSGSIZE;
	}
	memcpy(out, sig.data, sig.size);
	*outlen = sig.size;
	gnutls_free(sig.data);
	return 0;
}
