/* The TLS private key lives here and nowhere else: the child's handshakes
 * ask for signatures over IPC. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "ipc.h"
#include "log.h"
#include "monitor_tls.h"

#define KEY_MAX_SIZE (64 * 1024)

static gnutls_privkey_t monitor_keys[IPC_MAX_IDENTITIES];

int monitor_tls_load_key(unsigned identity, const char *path)
{
	gnutls_privkey_t monitor_key = NULL;
	char *buf;
	size_t len = 0;
	int r;

	r = file_read_all(path, KEY_MAX_SIZE - 1, 0, &buf, &len);
	if (r < 0)
		return r;
	gnutls_datum_t d = { .data = (unsigned char *)buf, .size = (unsigned)len };
	if (gnutls_privkey_init(&monitor_key) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (gnutls_privkey_import_x509_raw(monitor_key, &d, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		gnutls_privkey_deinit(monitor_key);
		r = -EINVAL;
		goto out;
	}
	if (identity >= IPC_MAX_IDENTITIES) {
		gnutls_privkey_deinit(monitor_key);
		r = -E2BIG;
		goto out;
	}
	if (monitor_keys[identity] != NULL)
		gnutls_privkey_deinit(monitor_keys[identity]);
	monitor_keys[identity] = monitor_key;
	r = 0;
out:
	/* The PEM text is key material too. */
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

void monitor_tls_drop_keys(void)
{
	/* Deinitialising a key clears its private parameters (GnuTLS zeroes
	 * them as it frees them); the PEM text was wiped when it was read. */
	for (unsigned i = 0; i < IPC_MAX_IDENTITIES; i++) {
		if (monitor_keys[i] != NULL) {
			gnutls_privkey_deinit(monitor_keys[i]);
			monitor_keys[i] = NULL;
		}
	}
}

int monitor_tls_sign(unsigned identity, unsigned kind, unsigned algo, unsigned flags,
		     const uint8_t *in, size_t n, uint8_t *out, size_t *outlen, size_t max)
{
	gnutls_privkey_t monitor_key = identity < IPC_MAX_IDENTITIES ? monitor_keys[identity] : NULL;
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

static bool same_datum(const gnutls_datum_t *a, const gnutls_datum_t *b)
{
	return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

static bool is_rsa(gnutls_pubkey_t pub)
{
	int pk = gnutls_pubkey_get_pk_algorithm(pub, NULL);
	return pk == GNUTLS_PK_RSA || pk == GNUTLS_PK_RSA_PSS;
}

/* The same public key in the key and in the certificate. An RSA key may
 * serve a certificate that names it RSA-PSS: the modulus and exponent
 * decide, not the encoding. */
static bool same_public_key(gnutls_privkey_t key, gnutls_pubkey_t cert_key)
{
	gnutls_datum_t a = { NULL, 0 }, b = { NULL, 0 }, e1 = { NULL, 0 }, e2 = { NULL, 0 };
	gnutls_pubkey_t pub = NULL;
	bool same = false;

	if (gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, key, 0, 0) < 0)
		goto out;
	if (is_rsa(pub) && is_rsa(cert_key))
		same = gnutls_pubkey_export_rsa_raw2(pub, &a, &e1, 0) == 0 &&
		       gnutls_pubkey_export_rsa_raw2(cert_key, &b, &e2, 0) == 0 && same_datum(&a, &b) &&
		       same_datum(&e1, &e2);
	else
		same = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) == 0 &&
		       gnutls_pubkey_export2(cert_key, GNUTLS_X509_FMT_DER, &b) == 0 && same_datum(&a, &b);
out:
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_free(e1.data);
	gnutls_free(e2.data);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	return same;
}

int monitor_tls_leaf(unsigned identity, const char *pem, size_t len, uint8_t sha256[32])
{
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)len };
	gnutls_pcert_st pcert;
	int r = -EINVAL;

	if (len > UINT32_MAX || identity >= IPC_MAX_IDENTITIES ||
	    gnutls_pcert_import_x509_raw(&pcert, &d, GNUTLS_X509_FMT_PEM, 0) < 0)
		return -EINVAL;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, pcert.cert.data, pcert.cert.size, sha256) == 0)
		r = 0;
	if (r == 0 && monitor_keys[identity] != NULL && !same_public_key(monitor_keys[identity], pcert.pubkey))
		r = -EKEYREJECTED;
	gnutls_pcert_deinit(&pcert);
	return r;
}

static gnutls_x509_trust_list_t monitor_ca;

int monitor_tls_load_ca(const char *path)
{
	int r;

	if (gnutls_x509_trust_list_init(&monitor_ca, 0) < 0)
		return -ENOMEM;
	r = gnutls_x509_trust_list_add_trust_file(monitor_ca, path, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (r <= 0) {
		log_warn("tls-client-ca %s: %s", path, r < 0 ? gnutls_strerror(r) : "no certificate");
		return -EINVAL;
	}
	return 0;
}

int monitor_tls_verify_chain(const uint8_t *const *der, const size_t *len, unsigned n,
			     uint8_t sha256[32])
{
	gnutls_x509_crt_t crts[IPC_MAX_CERTS];
	unsigned status = 1, i, imported = 0;
	size_t size = 32;
	int r = -EACCES;

	if (monitor_ca == NULL || n == 0 || n > IPC_MAX_CERTS)
		return -EACCES;
	gnutls_datum_t leaf = { .data = (unsigned char *)der[0], .size = (unsigned)len[0] };
	if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &leaf, sha256, &size) < 0 || size != 32)
		return -EACCES;
	for (i = 0; i < n; i++) {
		gnutls_datum_t d = { .data = (unsigned char *)der[i], .size = (unsigned)len[i] };
		if (gnutls_x509_crt_init(&crts[i]) < 0)
			goto out;
		imported++;
		if (gnutls_x509_crt_import(crts[i], &d, GNUTLS_X509_FMT_DER) < 0)
			goto out;
	}
	/* A client certificate, for a TLS client. */
	gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
					  .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT };
	if (gnutls_x509_trust_list_verify_crt2(monitor_ca, crts, n, &purpose, 1, 0, &status, NULL) ==
		    0 &&
	    status == 0)
		r = 0;
	else
		log_info("client certificate not trusted (status 0x%x)", status);
out:
	for (i = 0; i < imported; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return r;
}

static void check_error(const struct config *cfg, const char *key, config_error_fn err, void *ctx,
			const char *what, const char *detail)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s:%u: %s: %s", cfg->path != NULL ? cfg->path : "config",
		 config_key_line(cfg, key), what, detail);
	err(ctx, msg);
}

int monitor_tls_check(const struct config *cfg, config_error_fn err, void *ctx)
{
	gnutls_privkey_t monitor_key;
	gnutls_pcert_st pcerts[16];
	unsigned n = 16;
	gnutls_datum_t pem = { NULL, 0 };
	int errors = 0, r;

	if (cfg->control_tls == TLS_POLICY_OFF)
		return 0;
	/* The priority string as the child will use it: GnuTLS says where it
	 * stops making sense, and it must leave some protocol version. */
	if (cfg->tls_priority != NULL) {
		gnutls_priority_t prio;
		const char *pos = NULL;
		char where[300];

		r = gnutls_priority_init2(&prio, cfg->tls_priority, &pos, 0);
		if (r < 0) {
			snprintf(where, sizeof(where), "GnuTLS cannot use it from '%.200s' on (%s)",
				 pos != NULL ? pos : "", gnutls_strerror(r));
			check_error(cfg, "tls-priority", err, ctx, "tls-priority", where);
			errors++;
		} else {
			const unsigned *versions;
			if (gnutls_priority_protocol_list(prio, &versions) <= 0) {
				check_error(cfg, "tls-priority", err, ctx, "tls-priority",
					    "enables no TLS version");
				errors++;
			}
			gnutls_priority_deinit(prio);
		}
	}
	r = gnutls_load_file(cfg->tls_certificate, &pem);
	if (r < 0) {
		/* GnuTLS says "Error while reading file."; the system says why. */
		char what[4200];
		int fd = open(cfg->tls_certificate, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		const char *why = fd < 0 ? strerror(errno) : gnutls_strerror(r);

		if (fd >= 0)
			close(fd);
		snprintf(what, sizeof(what), "cannot read %s", cfg->tls_certificate);
		check_error(cfg, "tls-certificate", err, ctx, what, why);
		return errors + 1;
	}
	r = gnutls_pcert_list_import_x509_raw(pcerts, &n, &pem, GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(pem.data);
	if (r < 0 || n == 0) {
		check_error(cfg, "tls-certificate", err, ctx, cfg->tls_certificate,
			    r < 0 ? gnutls_strerror(r) : "no certificate");
		return errors + 1;
	}
	r = monitor_tls_load_key(0, cfg->tls_key);
	monitor_key = monitor_keys[0];
	if (r < 0) {
		char what[4200];

		snprintf(what, sizeof(what), r == -EINVAL ? "%s" : "cannot read %s", cfg->tls_key);
		check_error(cfg, "tls-key", err, ctx, what,
			    r == -EINVAL ? "not a PEM private key" : strerror(-r));
		errors++;
	} else {
		/* The same public key on both sides, or no handshake can succeed. */
		if (!same_public_key(monitor_key, pcerts[0].pubkey)) {
			check_error(cfg, "tls-key", err, ctx, cfg->tls_key,
				    "does not match the key of tls-certificate");
			errors++;
		}
	}
	for (unsigned i = 0; i < n; i++)
		gnutls_pcert_deinit(&pcerts[i]);
	if (cfg->tls_client_certificate != CLIENT_CERT_OFF && monitor_tls_load_ca(cfg->tls_client_ca) < 0) {
		check_error(cfg, "tls-client-ca", err, ctx, cfg->tls_client_ca, "no usable CA certificate");
		errors++;
	}
	for (size_t i = 0; i < cfg->nhosts; i++)
		errors += monitor_tls_check(&cfg->hosts[i], err, ctx);
	return errors;
}

/* The host's ticket secret (tls-ticket-secret), read as root before login,
 * and wiped once this session's key is derived from it. */
static uint8_t ticket_secret[64];
static size_t ticket_secret_len;

#define TICKET_SECRET_MIN 32
#define TICKET_SECRET_NEW 32

/* A new secret at path, unless another session made one first. */
static int create_ticket_secret(const char *path)
{
	char tmp[4200];
	uint8_t secret[TICKET_SECRET_NEW];
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (gnutls_rnd(GNUTLS_RND_KEY, secret, sizeof(secret)) < 0)
		return -EIO;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* No fsync: on /run it would not survive a crash anyway, and a secret
	 * lost is only a new one (tickets already issued stop resuming). */
	if (write(fd, secret, sizeof(secret)) != (ssize_t)sizeof(secret))
		r = errno != 0 ? -errno : -EIO;
	explicit_bzero(secret, sizeof(secret));
	close(fd);
	/* link(), not rename(): the first session's secret stays, every other
	 * one reads it. */
	if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
		r = -errno;
	(void)unlink(tmp);
	return r;
}

/* Read the secret; 0, or -errno with *why saying what is wrong. */
static int read_ticket_secret(const char *path, bool create, const char **why)
{
	/* A secret others can read lets them make tickets for anyone. */
	const unsigned flags = FILE_NOFOLLOW | FILE_PRIVATE | FILE_HEAD;
	char *buf = NULL;
	size_t len = 0;
	int fd = file_open(path, flags), r;

	if (fd == -ENOENT && create) {
		r = create_ticket_secret(path);
		if (r < 0) {
			*why = "cannot create it";
			return r;
		}
		fd = file_open(path, flags);
	}
	if (fd == -EPERM) {
		*why = "it must be a regular file of the server's user, mode 0600 or stricter";
		return -EPERM;
	}
	if (fd < 0) {
		*why = "cannot open it";
		return fd;
	}
	/* Its first 64 bytes, as ever: a longer file is not refused. */
	r = file_read_fd(fd, sizeof(ticket_secret), flags, &buf, &len);
	close(fd);
	if (r < 0 || len < TICKET_SECRET_MIN) {
		if (r == 0) {
			explicit_bzero(buf, len);
			free(buf);
		}
		*why = "it must hold 32 to 64 random bytes";
		return -EINVAL;
	}
	memcpy(ticket_secret, buf, len);
	ticket_secret_len = len;
	explicit_bzero(buf, len);
	free(buf);
	return 0;
}

void monitor_tls_load_ticket_secret(const char *path)
{
	const char *why = "";
	int r;

	if (path == NULL)
		return;
	r = read_ticket_secret(path, true, &why);
	if (r < 0)
		log_warn("tls-ticket-secret %s: %s (%s): data connections resume only this session's "
			 "TLS tickets", path, why, strerror(-r));
}

int monitor_tls_check_ticket_secret(const char *path, const char **why)
{
	int r;

	if (path == NULL || access(path, F_OK) < 0)
		return 0; /* made by the first session */
	r = read_ticket_secret(path, false, why);
	explicit_bzero(ticket_secret, sizeof(ticket_secret));
	ticket_secret_len = 0;
	return r;
}

void monitor_tls_forget_ticket_secret(void)
{
	explicit_bzero(ticket_secret, sizeof(ticket_secret));
	ticket_secret_len = 0;
}

int monitor_tls_ticket_key(unsigned identity, const char *user, const struct sockaddr_storage *peer,
			   uint8_t key[IPC_TICKET_KEY])
{
	uint8_t msg[32 + 4 + IPC_MAX_NAME + 16];
	size_t n = 0, ulen = strlen(user);
	int r;

	_Static_assert(IPC_TICKET_KEY == 64, "HMAC-SHA-512 makes the whole key");
	if (ticket_secret_len == 0) {
		/* No secret: a key of this session's own, as tickets were before. */
		return gnutls_rnd(GNUTLS_RND_KEY, key, IPC_TICKET_KEY) < 0 ? -EIO : 0;
	}
	if (ulen >= IPC_MAX_NAME)
		return -EINVAL;
	memcpy(msg, "ftpsd TLS ticket key, v1", 25); /* with its NUL */
	n = 25;
	msg[n++] = (uint8_t)(identity >> 24);
	msg[n++] = (uint8_t)(identity >> 16);
	msg[n++] = (uint8_t)(identity >> 8);
	msg[n++] = (uint8_t)identity;
	memcpy(msg + n, user, ulen + 1); /* the NUL ends it */
	n += ulen + 1;
	/* The address as IPv4-mapped IPv6: both spellings of one client agree. */
	if (peer->ss_family == AF_INET) {
		memset(msg + n, 0, 10);
		msg[n + 10] = msg[n + 11] = 0xff;
		memcpy(msg + n + 12, &((const struct sockaddr_in *)peer)->sin_addr, 4);
	} else if (peer->ss_family == AF_INET6) {
		memcpy(msg + n, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
	} else {
		return -EAFNOSUPPORT;
	}
	n += 16;
	r = gnutls_hmac_fast(GNUTLS_MAC_SHA512, ticket_secret, ticket_secret_len, msg, n, key);
	explicit_bzero(ticket_secret, sizeof(ticket_secret));
	ticket_secret_len = 0;
	return r < 0 ? -EIO : 0;
}
