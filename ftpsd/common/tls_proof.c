#include "tls_proof.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
	HS_CLIENT_HELLO = 1,
	HS_SERVER_HELLO = 2,
	HS_CERTIFICATE = 11,
	HS_SERVER_KEY_EXCHANGE = 12,
	HS_SERVER_HELLO_DONE = 14,
	HS_CERTIFICATE_VERIFY = 15,
	HS_CLIENT_KEY_EXCHANGE = 16,
	HS_FINISHED = 20,
	HS_MESSAGE_HASH = 254,
	EXT_SUPPORTED_VERSIONS = 43,
};

/* RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest. */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

struct msg {
	uint8_t type;
	size_t off; /* of its header in the transcript */
	const uint8_t *body;
	size_t len;
};

static size_t end_of(const struct msg *m)
{
	return m->off + 4 + m->len;
}

/* A bounds-checked reader: every getter fails once anything is short. */
struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *rd_bytes(struct rd *r, size_t n)
{
	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static size_t rd_uint(struct rd *r, unsigned width)
{
	const uint8_t *p = rd_bytes(r, width);
	size_t v = 0;

	for (unsigned i = 0; p != NULL && i < width; i++)
		v = v << 8 | p[i];
	return v;
}

static int split(const uint8_t *t, size_t n, struct msg *m, unsigned *count)
{
	struct rd r = { t, n, false };
	unsigned c = 0;

	while (r.left > 0) {
		if (c == TLS_PROOF_MAX_MSGS)
			return -EBADMSG;
		m[c].off = n - r.left;
		m[c].type = (uint8_t)rd_uint(&r, 1);
		m[c].len = rd_uint(&r, 3);
		m[c].body = rd_bytes(&r, m[c].len);
		if (r.bad)
			return -EBADMSG;
		c++;
	}
	*count = c;
	return 0;
}

/* legacy_version, random, session id, cipher suite, compression, then the
 * extensions: the version is supported_versions' when present. */
static int server_hello(const struct msg *m, const uint8_t **random, unsigned *version,
			unsigned *suite)
{
	struct rd r = { m->body, m->len, false };

	*version = (unsigned)rd_uint(&r, 2);
	*random = rd_bytes(&r, 32);
	rd_bytes(&r, rd_uint(&r, 1));
	*suite = (unsigned)rd_uint(&r, 2);
	if (rd_uint(&r, 1) != 0 || r.bad)
		return -EBADMSG;
	if (r.left == 0)
		return 0;
	size_t ext_len = rd_uint(&r, 2);
	if (ext_len != r.left)
		return -EBADMSG;
	while (r.left > 0 && !r.bad) {
		unsigned type = (unsigned)rd_uint(&r, 2);
		size_t len = rd_uint(&r, 2);
		const uint8_t *d = rd_bytes(&r, len);
		if (type == EXT_SUPPORTED_VERSIONS && d != NULL) {
			if (len != 2)
				return -EBADMSG;
			*version = (unsigned)d[0] << 8 | d[1];
		}
	}
	return r.bad ? -EBADMSG : 0;
}

/* TLS 1.3: request context, then entries of certificate and extensions;
 * TLS 1.2: a list of certificates. */
static int certificate(const struct msg *m, bool tls13, struct tls_proof *out)
{
	struct rd r = { m->body, m->len, false };

	if (tls13)
		rd_bytes(&r, rd_uint(&r, 1));
	size_t list_len = rd_uint(&r, 3);
	if (list_len != r.left || r.bad)
		return -EBADMSG;
	out->count = 0;
	while (r.left > 0 && !r.bad) {
		size_t len = rd_uint(&r, 3);
		const uint8_t *der = rd_bytes(&r, len);
		if (tls13)
			rd_bytes(&r, rd_uint(&r, 2));
		if (len == 0)
			return -EBADMSG;
		if (der != NULL && out->count < IPC_MAX_CERTS) {
			out->der[out->count] = der;
			out->len[out->count] = len;
			out->count++;
		}
	}
	if (r.bad)
		return -EBADMSG;
	return out->count > 0 ? 0 : -EACCES;
}

/* SignatureSchemes (RFC 8446 4.2.3) as GnuTLS names them, under TLS 1.2
 * and under TLS 1.3, which binds the ECDSA schemes to a curve and has no
 * PKCS#1 v1.5. SHA-1 is never taken. */
static const struct {
	uint16_t id;
	gnutls_sign_algorithm_t tls12, tls13;
} schemes[] = {
	{ 0x0403, GNUTLS_SIGN_ECDSA_SHA256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256 },
	{ 0x0503, GNUTLS_SIGN_ECDSA_SHA384, GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 },
	{ 0x0603, GNUTLS_SIGN_ECDSA_SHA512, GNUTLS_SIGN_ECDSA_SECP521R1_SHA512 },
	{ 0x0804, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 },
	{ 0x0805, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384 },
	{ 0x0806, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512 },
	{ 0x0807, GNUTLS_SIGN_EDDSA_ED25519, GNUTLS_SIGN_EDDSA_ED25519 },
	{ 0x0808, GNUTLS_SIGN_EDDSA_ED448, GNUTLS_SIGN_EDDSA_ED448 },
	{ 0x0809, GNUTLS_SIGN_RSA_PSS_SHA256, GNUTLS_SIGN_RSA_PSS_SHA256 },
	{ 0x080a, GNUTLS_SIGN_RSA_PSS_SHA384, GNUTLS_SIGN_RSA_PSS_SHA384 },
	{ 0x080b, GNUTLS_SIGN_RSA_PSS_SHA512, GNUTLS_SIGN_RSA_PSS_SHA512 },
	{ 0x0401, GNUTLS_SIGN_RSA_SHA256, GNUTLS_SIGN_UNKNOWN },
	{ 0x0501, GNUTLS_SIGN_RSA_SHA384, GNUTLS_SIGN_UNKNOWN },
	{ 0x0601, GNUTLS_SIGN_RSA_SHA512, GNUTLS_SIGN_UNKNOWN },
};

static gnutls_sign_algorithm_t scheme(unsigned id, bool tls13)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (schemes[i].id == id)
			return tls13 ? schemes[i].tls13 : schemes[i].tls12;
	return GNUTLS_SIGN_UNKNOWN;
}

/* A signature (scheme, length, bytes: all of sig_struct) by the key of the
 * certificate der over signed_data. */
static int verify_signature(const uint8_t *der, size_t der_len, bool tls13, const uint8_t *sig_struct,
			    size_t sig_struct_len, const gnutls_datum_t *signed_data)
{
	struct rd r = { sig_struct, sig_struct_len, false };
	gnutls_sign_algorithm_t algo = scheme((unsigned)rd_uint(&r, 2), tls13);
	size_t len = rd_uint(&r, 2);
	const uint8_t *sig = rd_bytes(&r, len);
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	int rc = -EACCES;

	if (r.bad || r.left != 0)
		return -EBADMSG;
	if (algo == GNUTLS_SIGN_UNKNOWN || len == 0)
		return -EACCES;
	gnutls_datum_t leaf = { (unsigned char *)der, (unsigned)der_len };
	gnutls_datum_t s = { (unsigned char *)sig, (unsigned)len };
	if (gnutls_x509_crt_init(&crt) < 0 || gnutls_pubkey_init(&pub) < 0)
		goto out;
	if (gnutls_x509_crt_import(crt, &leaf, GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_pubkey_import_x509(pub, crt, 0) < 0)
		goto out;
	if (gnutls_pubkey_verify_data2(pub, algo, 0, signed_data, &s) >= 0)
		rc = 0;
out:
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return rc;
}

/* RFC 8446 4.4.1 and 4.4.3: the hash of the messages up to a Certificate
 * (a HelloRetryRequest replaces the first ClientHello by its hash), signed
 * after a context string (with its NUL, the separator). */
static const char client_context[] = "TLS 1.3, client CertificateVerify";
static const char server_context[] = "TLS 1.3, server CertificateVerify";

static int tls13_signed_content(const uint8_t *t, const struct msg *m, bool hrr, unsigned suite,
				const char *context, size_t cert_end, uint8_t *out, size_t *out_len)
{
	gnutls_digest_algorithm_t dig;
	uint8_t ch_hash[64];
	gnutls_hash_hd_t h;
	size_t start = 0;

	switch (suite) {
	case 0x1301: /* AES-128-GCM */
	case 0x1303: /* CHACHA20-POLY1305 */
	case 0x1304: /* AES-128-CCM */
	case 0x1305: /* AES-128-CCM-8 */
		dig = GNUTLS_DIG_SHA256;
		break;
	case 0x1302: /* AES-256-GCM */
		dig = GNUTLS_DIG_SHA384;
		break;
	default:
		return -EBADMSG;
	}
	unsigned hlen = gnutls_hash_get_len(dig);
	if (gnutls_hash_init(&h, dig) < 0)
		return -EACCES;
	if (hrr) {
		uint8_t header[4] = { HS_MESSAGE_HASH, 0, 0, (uint8_t)hlen };
		if (gnutls_hash_fast(dig, t, m[1].off, ch_hash) < 0) {
			gnutls_hash_deinit(h, NULL);
			return -EACCES;
		}
		(void)gnutls_hash(h, header, sizeof(header));
		(void)gnutls_hash(h, ch_hash, hlen);
		start = m[1].off;
	}
	(void)gnutls_hash(h, t + start, cert_end - start);
	size_t clen = strlen(context) + 1;
	memset(out, 0x20, 64);
	memcpy(out + 64, context, clen);
	gnutls_hash_deinit(h, out + 64 + clen);
	*out_len = 64 + clen + hlen;
	return 0;
}

/* TLS 1.2 ServerKeyExchange: the length of its parameters, before the
 * signature; ECDHE (named curve, point) or else DHE (p, g, Ys). 0 when
 * neither leaves exactly a signature after them. */
static size_t ske_params_len(const struct msg *m)
{
	for (int ecdhe = 1; ecdhe >= 0; ecdhe--) {
		struct rd r = { m->body, m->len, false };
		if (ecdhe) {
			if (rd_uint(&r, 1) != 3) /* named_curve */
				continue;
			rd_uint(&r, 2);
			rd_bytes(&r, rd_uint(&r, 1));
		} else {
			for (int k = 0; k < 3; k++)
				rd_bytes(&r, rd_uint(&r, 2));
		}
		size_t params = m->len - r.left;
		rd_uint(&r, 2);
		rd_bytes(&r, rd_uint(&r, 2));
		if (!r.bad && r.left == 0)
			return params;
	}
	return 0;
}

/* The server's own signature in the handshake, by the key of its
 * certificate der (one of ours): TLS 1.3 CertificateVerify over the
 * transcript up to its Certificate, TLS 1.2 ServerKeyExchange over both
 * randoms and its parameters (so no static RSA key exchange: it signs
 * nothing, and would let anyone pose as us). Only the monitor makes these,
 * once before login. */
static int verify_server_signature(const uint8_t *t, const struct msg *m, unsigned count, bool tls13,
				   bool hrr, unsigned suite, unsigned sh, unsigned cert,
				   const uint8_t *der, size_t der_len)
{
	if (cert + 1 >= count)
		return -EBADMSG;
	if (tls13) {
		uint8_t content[64 + 64 + 64];
		size_t len;
		if (m[cert + 1].type != HS_CERTIFICATE_VERIFY)
			return -EBADMSG;
		int r = tls13_signed_content(t, m, hrr, suite, server_context, end_of(&m[cert]), content,
					     &len);
		if (r < 0)
			return r;
		gnutls_datum_t d = { content, (unsigned)len };
		return verify_signature(der, der_len, true, m[cert + 1].body, m[cert + 1].len, &d);
	}
	const struct msg *ske = &m[cert + 1];
	size_t params = ske->type == HS_SERVER_KEY_EXCHANGE ? ske_params_len(ske) : 0;
	if (params == 0 || m[0].len < 34 || m[sh].len < 34)
		return -EACCES;
	uint8_t *signed_data = malloc(64 + params); /* params < TLS_PROOF_MAX */
	if (signed_data == NULL)
		return -EACCES;
	memcpy(signed_data, m[0].body + 2, 32);
	memcpy(signed_data + 32, m[sh].body + 2, 32);
	memcpy(signed_data + 64, ske->body, params);
	gnutls_datum_t d = { signed_data, (unsigned)(64 + params) };
	int r = verify_signature(der, der_len, false, ske->body + params, ske->len - params, &d);
	free(signed_data);
	return r;
}

int tls_proof_append(uint8_t *buf, size_t *len, unsigned htype, const uint8_t *body, size_t size)
{
	if (htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST)
		htype = HS_SERVER_HELLO; /* what it is on the wire */
	if (htype > 255 || htype == GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC)
		return 0;
	if (size > TLS_PROOF_MAX - 4 || *len > TLS_PROOF_MAX - 4 - size)
		return -EMSGSIZE;
	uint8_t *p = buf + *len;
	p[0] = (uint8_t)htype;
	p[1] = (uint8_t)(size >> 16);
	p[2] = (uint8_t)(size >> 8);
	p[3] = (uint8_t)size;
	if (size > 0)
		memcpy(p + 4, body, size);
	*len += 4 + size;
	return 0;
}

int tls_proof_verify(const uint8_t *t, size_t n, const uint8_t *random,
		     const uint8_t (*ours)[32], unsigned n_ours, struct tls_proof *out)
{
	struct msg m[TLS_PROOF_MAX_MSGS];
	const uint8_t *sh_random, *hrr_rnd;
	unsigned count, version, suite, sh = 1, i;
	bool hrr = false;
	int r;

	memset(out, 0, sizeof(*out));
	if (n > TLS_PROOF_MAX || split(t, n, m, &count) < 0 || count < 2 ||
	    m[0].type != HS_CLIENT_HELLO)
		return -EBADMSG;
	if (m[1].type != HS_SERVER_HELLO)
		return -EBADMSG;
	if (server_hello(&m[1], &hrr_rnd, &version, &suite) < 0)
		return -EBADMSG;
	if (memcmp(hrr_rnd, hrr_random, sizeof(hrr_random)) == 0) {
		/* A HelloRetryRequest, then the second ClientHello and the ServerHello. */
		hrr = true;
		sh = 3;
		if (count < 4 || m[2].type != HS_CLIENT_HELLO || m[3].type != HS_SERVER_HELLO)
			return -EBADMSG;
	}
	unsigned hrr_suite = suite;
	if (server_hello(&m[sh], &sh_random, &version, &suite) < 0)
		return -EBADMSG;
	if (memcmp(sh_random, random, TLS_PROOF_RANDOM) != 0)
		return -EACCES; /* not this session's handshake */
	bool tls13 = version == 0x0304;
	if (!tls13 && (version != 0x0303 || hrr))
		return -EACCES;
	if (hrr && hrr_suite != suite)
		return -EBADMSG;
	out->version = version;

	/* The client's flight: after the server's Finished (TLS 1.3), after
	 * ServerHelloDone (TLS 1.2). */
	uint8_t after = tls13 ? HS_FINISHED : HS_SERVER_HELLO_DONE;
	for (i = sh + 1; i < count && m[i].type != after; i++)
		;
	unsigned cert = i + 1, cv = tls13 ? i + 2 : i + 3;
	if (cv >= count || m[cert].type != HS_CERTIFICATE || m[cv].type != HS_CERTIFICATE_VERIFY ||
	    (!tls13 && m[i + 2].type != HS_CLIENT_KEY_EXCHANGE))
		return -EBADMSG;
	r = certificate(&m[cert], tls13, out);
	if (r < 0)
		return r;
	out->end = end_of(&m[cv]);

	if (tls13) {
		uint8_t content[64 + 64 + 64];
		size_t len;
		r = tls13_signed_content(t, m, hrr, suite, client_context, end_of(&m[cert]), content,
					 &len);
		if (r < 0)
			return r;
		gnutls_datum_t d = { content, (unsigned)len };
		r = verify_signature(out->der[0], out->len[0], true, m[cv].body, m[cv].len, &d);
	} else {
		/* TLS 1.2 (RFC 5246 7.4.8): every message before CertificateVerify. */
		gnutls_datum_t d = { (unsigned char *)t, (unsigned)m[cv].off };
		r = verify_signature(out->der[0], out->len[0], false, m[cv].body, m[cv].len, &d);
	}
	if (r < 0)
		return r;
	/* The client signed a handshake with this server: the server's
	 * Certificate (before the client's flight) is one of ours, not that of
	 * another server the client also shows its certificate to. */
	for (unsigned k = sh + 1; k < i; k++) {
		struct tls_proof server;
		uint8_t sha256[32];
		if (m[k].type != HS_CERTIFICATE)
			continue;
		if (certificate(&m[k], tls13, &server) < 0 ||
		    gnutls_hash_fast(GNUTLS_DIG_SHA256, server.der[0], server.len[0], sha256) < 0)
			return -EACCES;
		for (unsigned j = 0; j < n_ours; j++)
			if (memcmp(ours[j], sha256, sizeof(sha256)) == 0)
				return verify_server_signature(t, m, count, tls13, hrr, suite, sh, k,
							       server.der[0], server.len[0]) < 0
					       ? -EACCES
					       : 0;
		return -EACCES;
	}
	return -EACCES;
}
