/* The monitor's check that a TLS client holds its certificate's key: real
 * GnuTLS handshakes (client and server in this process, over a socketpair)
 * recorded as the child records them, for each protocol version and key
 * type; then the same transcripts altered as a hostile child would. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tls_proof.h"

struct ident {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t der;
};

static void make_ident(struct ident *id, gnutls_pk_algorithm_t pk, unsigned bits, const char *cn)
{
	static uint8_t serial = 1;
	uint8_t sn[2] = { 0x01, serial++ };
	time_t now = time(NULL);

	if (gnutls_x509_privkey_init(&id->key) < 0 || gnutls_x509_privkey_generate(id->key, pk, bits, 0) < 0 ||
	    gnutls_x509_crt_init(&id->crt) < 0 || gnutls_x509_crt_set_version(id->crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(id->crt, sn, sizeof(sn)) < 0 ||
	    gnutls_x509_crt_set_activation_time(id->crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(id->crt, now + 86400) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(id->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)) < 0 ||
	    gnutls_x509_crt_set_key(id->crt, id->key) < 0 ||
	    gnutls_x509_crt_set_key_usage(id->crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
						     (pk == GNUTLS_PK_RSA ? GNUTLS_KEY_KEY_ENCIPHERMENT : 0)) < 0 ||
	    gnutls_x509_crt_sign2(id->crt, id->crt, id->key,
				  pk == GNUTLS_PK_EDDSA_ED25519 ? GNUTLS_DIG_SHA512 : GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crt_export2(id->crt, GNUTLS_X509_FMT_DER, &id->der) < 0 ||
	    gnutls_certificate_allocate_credentials(&id->cred) < 0 ||
	    gnutls_certificate_set_x509_key(id->cred, &id->crt, 1, id->key) < 0) {
		fprintf(stderr, "cannot make a %s certificate\n", gnutls_pk_get_name(pk));
		exit(1);
	}
}

static void free_ident(struct ident *id)
{
	gnutls_certificate_free_credentials(id->cred);
	gnutls_free(id->der.data);
	gnutls_x509_crt_deinit(id->crt);
	gnutls_x509_privkey_deinit(id->key);
}

struct record {
	uint8_t *buf;
	size_t len;
	const uint8_t *random;
	int overflow;
};

/* As the child does: our random into the ServerHello, every message kept. */
static int hook(gnutls_session_t session, unsigned htype, unsigned when, unsigned incoming,
		const gnutls_datum_t *msg)
{
	struct record *r = gnutls_session_get_ptr(session);

	(void)when;
	if (incoming && htype == GNUTLS_HANDSHAKE_CLIENT_HELLO) {
		gnutls_datum_t d = { (unsigned char *)r->random, 32 };
		if (gnutls_handshake_set_random(session, &d) < 0)
			return GNUTLS_E_INTERNAL_ERROR;
	}
	if (tls_proof_append(r->buf, &r->len, htype, msg->data, msg->size) < 0)
		r->overflow = 1;
	return 0;
}

/* A full handshake in which the server asks for a certificate; the
 * transcript as the server recorded it into r. 0 or -1. */
static int handshake(const struct ident *srv, const struct ident *cli, const char *server_prio,
		     const char *client_prio, struct record *r)
{
	gnutls_session_t s = NULL, c = NULL;
	int sv[2], rs = GNUTLS_E_AGAIN, rc = GNUTLS_E_AGAIN, ok = -1;

	r->len = 0;
	r->overflow = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0 ||
	    gnutls_init(&c, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0 ||
	    gnutls_priority_set_direct(s, server_prio, NULL) < 0 ||
	    gnutls_priority_set_direct(c, client_prio, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, srv->cred) < 0 ||
	    gnutls_credentials_set(c, GNUTLS_CRD_CERTIFICATE, cli->cred) < 0)
		goto out;
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	gnutls_transport_set_int(s, sv[0]);
	gnutls_transport_set_int(c, sv[1]);
	gnutls_session_set_ptr(s, r);
	gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_PRE, hook);
	for (int i = 0; i < 1000 && (rs != 0 || rc != 0); i++) {
		if (rc != 0)
			rc = gnutls_handshake(c);
		if (rs != 0)
			rs = gnutls_handshake(s);
		if ((rc < 0 && gnutls_error_is_fatal(rc)) || (rs < 0 && gnutls_error_is_fatal(rs))) {
			fprintf(stderr, "handshake %s / %s: %s / %s\n", server_prio, client_prio,
				gnutls_strerror(rs), gnutls_strerror(rc));
			goto out;
		}
	}
	if (rs == 0 && rc == 0 && !r->overflow)
		ok = 0;
out:
	if (s != NULL)
		gnutls_deinit(s);
	if (c != NULL)
		gnutls_deinit(c);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

/* The SHA-256 of the server's certificate: ours, as the monitor knows it. */
static uint8_t ours[2][32];

static const uint8_t random_a[32] = "0123456789abcdef0123456789abcde";
static const uint8_t random_b[32] = "fedcba9876543210fedcba987654321";

/* The recorded handshake proves the key; nothing altered does. */
static void check_transcript(const struct record *r, const struct ident *cli, unsigned version,
			     const char *what)
{
	struct tls_proof p;
	uint8_t *t = malloc(r->len);
	int rc;

	if (t == NULL)
		abort();
	rc = tls_proof_verify(r->buf, r->len, random_a, ours, 2, &p);
	if (rc != 0)
		fprintf(stderr, "%s: %d\n", what, rc);
	CHECK(rc == 0);
	CHECK(p.version == version);
	CHECK(p.count == 1 && p.len[0] == cli->der.size && memcmp(p.der[0], cli->der.data, p.len[0]) == 0);
	size_t end = p.end;

	/* A handshake with another server (the client shows its certificate to
	 * others too): its certificate is not ours. */
	uint8_t theirs[1][32];
	memcpy(theirs, ours, sizeof(theirs));
	theirs[0][0] ^= 1;
	CHECK(tls_proof_verify(r->buf, r->len, random_a, theirs, 1, &p) == -EACCES);
	CHECK(tls_proof_verify(r->buf, r->len, random_a, ours, 0, &p) == -EACCES);

	/* Another session's handshake: its random is not ours. */
	CHECK(tls_proof_verify(r->buf, r->len, random_b, ours, 2, &p) == -EACCES);

	/* Any byte up to the client's CertificateVerify changed: a signature
	 * that no longer verifies, or messages that no longer parse, never a
	 * proof. (The client's Finished after it is not signed.) */
	CHECK(end > 0 && end < r->len);
	size_t step = end / 97 + 1;
	for (size_t i = 0; i < end; i++) {
		if (i % step != 0 && i < end - 300)
			continue; /* a sample, and every byte near the signature */
		memcpy(t, r->buf, r->len);
		t[i] ^= 0x01;
		rc = tls_proof_verify(t, r->len, random_a, ours, 2, &p);
		if (rc == 0)
			fprintf(stderr, "%s: byte %zu changed, still a proof\n", what, i);
		CHECK(rc == -EACCES || rc == -EBADMSG);
	}
	/* Cut anywhere before its end: never a proof. */
	for (size_t n = 0; n < end; n += step) {
		rc = tls_proof_verify(r->buf, n, random_a, ours, 2, &p);
		CHECK(rc == -EACCES || rc == -EBADMSG);
	}
	free(t);
}

/* The fuzzer's seeds: one transcript in dir. */
static void write_seed(const char *dir, const char *name, const struct record *r)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL && fwrite(r->buf, 1, r->len, f) == r->len && fclose(f) == 0);
}

/* The fuzzer trusts the seeds' server certificates (else it never reaches
 * the server's signature): their SHA-256, as a C header. */
static void write_ours(const char *path)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	fprintf(f, "/* Written by tests/unit/test-tls-proof with the seeds in seeds-tls-proof:\n"
		   " * the SHA-256 of their server certificates (ECDSA P-256, RSA 2048). */\n"
		   "static const uint8_t seed_servers[2][32] = {\n");
	for (int i = 0; i < 2; i++) {
		fprintf(f, "\t{");
		for (int j = 0; j < 32; j++)
			fprintf(f, "%s0x%02x", j == 0 ? " " : j % 8 == 0 ? ",\n\t  " : ", ", ours[i][j]);
		fprintf(f, " },\n");
	}
	fprintf(f, "};\n");
	CHECK(fclose(f) == 0);
}

/* test-tls-proof [SEEDS_DIR OURS_H]: with arguments, the transcripts are
 * also written to SEEDS_DIR and their server certificates' hashes to OURS_H
 * (the fuzzer's seeds: tests/fuzz/seeds-tls-proof, tests/fuzz/tls-proof-ours.h). */
int main(int argc, char **argv)
{
	static uint8_t buf_a[TLS_PROOF_MAX], buf_b[TLS_PROOF_MAX];
	struct record a = { buf_a, 0, random_a, 0 }, b = { buf_b, 0, random_a, 0 };
	struct ident server, rsa_server, ecdsa, rsa, ed25519, p384;
	const char *tls13 = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
	const char *tls12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2";

	make_ident(&server, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), "server");
	make_ident(&rsa_server, GNUTLS_PK_RSA, 2048, "rsa-server");
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, server.der.data, server.der.size, ours[0]) < 0 ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, rsa_server.der.data, rsa_server.der.size, ours[1]) < 0)
		return 1;
	make_ident(&ecdsa, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), "ecdsa");
	make_ident(&p384, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), "p384");
	make_ident(&rsa, GNUTLS_PK_RSA, 2048, "rsa");
	make_ident(&ed25519, GNUTLS_PK_EDDSA_ED25519, 256, "ed25519");

	const struct {
		const struct ident *cli;
		const char *server, *client;
		unsigned version;
		const char *what;
		const struct ident *srv; /* NULL: the ECDSA server */
	} cases[] = {
		{ &ecdsa, tls13, tls13, 0x0304, "TLS 1.3 ECDSA P-256", NULL },
		{ &p384, tls13, tls13, 0x0304, "TLS 1.3 ECDSA P-384", NULL },
		{ &rsa, tls13, tls13, 0x0304, "TLS 1.3 RSA-PSS", NULL },
		{ &ed25519, tls13, tls13, 0x0304, "TLS 1.3 Ed25519", NULL },
		{ &ecdsa, "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM", tls13, 0x0304,
		  "TLS 1.3 AES-256-GCM (SHA-384 transcript)", NULL },
		/* The client's key share is for P-256; the server only takes
		 * P-384: a HelloRetryRequest, then the second ClientHello. */
		{ &ecdsa, "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP384R1",
		  "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP256R1:+GROUP-SECP384R1", 0x0304,
		  "TLS 1.3 after a HelloRetryRequest", NULL },
		{ &ecdsa, tls12, tls12, 0x0303, "TLS 1.2 ECDSA", NULL },
		{ &rsa, tls12, tls12, 0x0303, "TLS 1.2 RSA", NULL },
		{ &rsa, tls12, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA256:+SIGN-ECDSA-SHA256", 0x0303,
		  "TLS 1.2 RSA PKCS#1 v1.5", NULL },
		{ &ed25519, tls12, tls12, 0x0303, "TLS 1.2 Ed25519", NULL },
		/* An RSA server certificate: its signature in ServerKeyExchange
		 * (ECDHE, DHE) or CertificateVerify. */
		{ &ecdsa, tls12, tls12, 0x0303, "TLS 1.2 ECDHE-RSA", &rsa_server },
		{ &ecdsa, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+DHE-RSA", tls12, 0x0303, "TLS 1.2 DHE-RSA",
		  &rsa_server },
		{ &ecdsa, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+DHE-RSA:-GROUP-ALL:+GROUP-FFDHE8192",
		  "NORMAL:-VERS-ALL:+VERS-TLS1.2:-GROUP-ALL:+GROUP-FFDHE8192", 0x0303,
		  "TLS 1.2 DHE-RSA ffdhe8192 (parameters over 2 KiB)", &rsa_server },
		{ &rsa, tls13, tls13, 0x0304, "TLS 1.3 RSA server", &rsa_server },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = handshake(cases[i].srv ? cases[i].srv : &server, cases[i].cli, cases[i].server,
				  cases[i].client, &a);
		CHECK(r == 0);
		if (r == 0)
			check_transcript(&a, cases[i].cli, cases[i].version, cases[i].what);
		if (r == 0 && argc > 2) {
			char name[64];
			snprintf(name, sizeof(name), "handshake-%zu", i);
			write_seed(argv[1], name, &a);
		}
		/* The HelloRetryRequest case has its two ServerHellos. */
		unsigned hellos = 0;
		for (size_t o = 0; o + 4 <= a.len; o += 4 + ((size_t)a.buf[o + 1] << 16 | (size_t)a.buf[o + 2] << 8 | a.buf[o + 3]))
			hellos += a.buf[o] == 2;
		if (hellos != (strstr(cases[i].what, "HelloRetry") != NULL ? 2u : 1u))
			fprintf(stderr, "%s: %u ServerHellos\n", cases[i].what, hellos);
		CHECK(hellos == (strstr(cases[i].what, "HelloRetry") != NULL ? 2u : 1u));
	}

	/* A hostile child holding a real transcript of another client (b),
	 * signed for another session's random: it proves nothing here. */
	b.random = random_b;
	CHECK(handshake(&server, &ecdsa, tls13, tls13, &b) == 0);
	struct tls_proof p;
	CHECK(tls_proof_verify(b.buf, b.len, random_a, ours, 2, &p) == -EACCES);
	CHECK(tls_proof_verify(b.buf, b.len, random_b, ours, 2, &p) == 0);
	b.random = random_a;

	/* The client's CertificateVerify taken from another handshake with the
	 * same random and key: it signed a different transcript. */
	CHECK(handshake(&server, &ecdsa, tls13, tls13, &a) == 0);
	CHECK(handshake(&server, &ecdsa, tls13, tls13, &b) == 0);
	{
		/* Both end Certificate, CertificateVerify, Finished; the client's
		 * Finished is the last message. Swap in b's CertificateVerify. */
		struct { size_t off[TLS_PROOF_MAX_MSGS]; unsigned n; } ma = { { 0 }, 0 }, mb = { { 0 }, 0 };
		for (size_t o = 0; o + 4 <= a.len && ma.n < TLS_PROOF_MAX_MSGS; ma.n++) {
			ma.off[ma.n] = o;
			o += 4 + ((size_t)a.buf[o + 1] << 16 | (size_t)a.buf[o + 2] << 8 | a.buf[o + 3]);
		}
		for (size_t o = 0; o + 4 <= b.len && mb.n < TLS_PROOF_MAX_MSGS; mb.n++) {
			mb.off[mb.n] = o;
			o += 4 + ((size_t)b.buf[o + 1] << 16 | (size_t)b.buf[o + 2] << 8 | b.buf[o + 3]);
		}
		CHECK(ma.n >= 3 && mb.n >= 3);
		if (ma.n >= 3 && mb.n >= 3) {
			static uint8_t t[2 * TLS_PROOF_MAX];
			size_t cv_a = ma.off[ma.n - 2], cv_b = mb.off[mb.n - 2], cv_b_end = mb.off[mb.n - 1];
			CHECK(a.buf[cv_a] == 15 && b.buf[cv_b] == 15);
			memcpy(t, a.buf, cv_a);
			memcpy(t + cv_a, b.buf + cv_b, cv_b_end - cv_b);
			size_t n = cv_a + (cv_b_end - cv_b);
			memcpy(t + n, a.buf + ma.off[ma.n - 1], a.len - ma.off[ma.n - 1]);
			n += a.len - ma.off[ma.n - 1];
			CHECK(tls_proof_verify(t, n, random_a, ours, 2, &p) == -EACCES);
		}
	}

	/* Static RSA key exchange: the server signs nothing, so anyone holding
	 * only our certificate could have made the client sign this. */
	CHECK(handshake(&rsa_server, &ecdsa, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA",
			"NORMAL:-VERS-ALL:+VERS-TLS1.2:+RSA", &a) == 0);
	CHECK(tls_proof_verify(a.buf, a.len, random_a, ours, 2, &p) == -EACCES);
	if (argc > 2) {
		write_seed(argv[1], "handshake-static-rsa", &a);
		write_ours(argv[2]);
	}

	/* Not handshakes at all. */
	CHECK(tls_proof_verify((const uint8_t *)"", 0, random_a, ours, 2, &p) == -EBADMSG);
	CHECK(tls_proof_verify((const uint8_t *)"\x01\x00\x00\x00", 4, random_a, ours, 2, &p) == -EBADMSG);
	CHECK(tls_proof_verify((const uint8_t *)"\x01\xff\xff\xff", 4, random_a, ours, 2, &p) == -EBADMSG);
	CHECK(tls_proof_verify(buf_a, TLS_PROOF_MAX + 1, random_a, ours, 2, &p) == -EBADMSG);

	/* The recorder's bound. */
	size_t len = 0;
	CHECK(tls_proof_append(buf_b, &len, GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC, NULL, 0) == 0 && len == 0);
	CHECK(tls_proof_append(buf_b, &len, GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST, buf_a, 3) == 0 && len == 7 &&
	      buf_b[0] == 2 && buf_b[3] == 3);
	CHECK(tls_proof_append(buf_b, &len, 11, buf_a, TLS_PROOF_MAX - 7 - 4) == 0 && len == TLS_PROOF_MAX);
	CHECK(tls_proof_append(buf_b, &len, 20, buf_a, 0) == -EMSGSIZE && len == TLS_PROOF_MAX);

	free_ident(&server);
	free_ident(&rsa_server);
	free_ident(&ecdsa);
	free_ident(&p384);
	free_ident(&rsa);
	free_ident(&ed25519);
	return CHECK_DONE();
}
