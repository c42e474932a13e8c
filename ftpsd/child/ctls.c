/* The child's TLS sessions on GnuTLS (ctls_*; common/'s tls_proof_* is the
 * proof checking both processes share): credentials whose key signs through
 * the monitor, this process's ticket key and session cache, and the control
 * and data sessions themselves. */
#include "ctls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child_mon.h"
#include "ipc.h"
#include "log.h"
#include "tls_proof.h"

#define TLS_CACHE_SLOTS 16
#define TLS_MAX_CHAIN 16
/* A data channel reads its socket in this size: a few large reads instead of
 * two small ones (record header, then body) per 16 KiB record. */
#define TLS_DATA_RBUF (256 * 1024)
/* ... and keeps the records of one burst (ctls_set_more) for one send: 16
 * full records and their headers and tags. */
#define TLS_DATA_WBUF (16 * (16384 + 256))
/* The most handshake messages one handshake may carry, both ways: GnuTLS
 * 3.7 counts every message sent and received (the transcript: our chain and
 * the client's, a client certificate's proof included), not each message.
 * The monitor takes at most as much for a client certificate's proof. */
#define TLS_MAX_HANDSHAKE (64 * 1024)
/* GnuTLS checks that limit only once a message has arrived whole, and
 * gathers it as it comes: a header claiming 16 MiB is 16 MiB of memory.
 * So the child reads at most this much from a peer before application data
 * comes out (the handshake, or TLS 1.3 messages after it, e.g. a bogus
 * KeyUpdate): twice the limit leaves room for record headers and tags. */
#define TLS_MAX_UNYIELDED (2 * TLS_MAX_HANDSHAKE)
_Static_assert(TLS_MAX_UNYIELDED == 128 * 1024, "the log lines say 128 KiB");

struct ctls {
	gnutls_session_t s;
	int fd;
	int sni_identity; /* the virtual host the client's SNI named, -1 for none */
	bool data;
	bool more; /* the caller has more to send right away: keep records back (wbuf) */
	size_t sent; /* bytes written, so a failed handshake knows if it said anything */
	uint8_t *rbuf; /* data channels: bytes read from the socket, not yet given to GnuTLS */
	size_t roff, rlen;
	uint8_t *wbuf; /* data channels: records kept for one send, not yet written */
	size_t woff, wlen;
	/* Control connections asking for a client certificate: the handshake's
	 * messages, for the monitor's check of the client's signature. */
	uint8_t *hs;
	size_t hs_len;
	bool hs_overflow, hs_done;
	size_t unyielded; /* bytes read since application data last came out */
	bool flooded;     /* over TLS_MAX_UNYIELDED: the session failed for that */
	bool unresumed;   /* a data handshake refused: it did not resume (ctls_handshake) */
	bool bye_sent;    /* our close_notify is out */
	bool canceled;    /* TLS 1.3 user_canceled came: only a close_notify may follow */
	bool canceled12;  /* the same under TLS 1.2, where GnuTLS reads on */
	bool no_tickets;  /* a control connection that cannot send this user's tickets */
	unsigned tickets; /* TLS 1.3 tickets sent (control connections) */
};

/* One identity (certificate chain + key signing through the monitor) for
 * the global configuration and one per virtual host. */
static gnutls_certificate_credentials_t tls_creds[IPC_MAX_IDENTITIES];
static gnutls_pk_algorithm_t tls_pk[IPC_MAX_IDENTITIES];
static unsigned tls_pk_bits[IPC_MAX_IDENTITIES];
static const struct config *tls_cfg;
static gnutls_priority_t tls_prio;
/* The key of the tickets data connections resume: this process's own until
 * login, then (TLS 1.3) the one the monitor derived for this user, virtual
 * host and client address (ctls_login_tickets). */
static gnutls_datum_t tls_ticket_key;
static uint8_t tls_user_ticket_key[64];
static gnutls_certificate_request_t tls_client_cert = GNUTLS_CERT_IGNORE;
static uint8_t tls_proof_random[32]; /* the monitor's, for the control handshake */
/* After login, when data connections must resume: no handshake needs the
 * key any more, and one that asks is not a resumption (ctls_retire_key). */
static bool tls_key_retired, tls_sign_refused;
static bool tls_offers_tls13;

/* TLS 1.2 session-ID cache: in this process only, fed by the control
 * connection only, so a data connection can resume nothing else. */
static struct {
	uint8_t key[GNUTLS_MAX_SESSION_ID_SIZE];
	size_t key_len;
	uint8_t *data;
	size_t data_len;
} tls_cache[TLS_CACHE_SLOTS];
static unsigned tls_cache_next;

static int cache_store(void *ptr, gnutls_datum_t key, gnutls_datum_t data)
{
	unsigned i = tls_cache_next++ % TLS_CACHE_SLOTS;

	if (key.size > GNUTLS_MAX_SESSION_ID_SIZE || data.size > 64 * 1024)
		return -1;
	free(tls_cache[i].data);
	tls_cache[i].data = malloc(data.size);
	if (tls_cache[i].data == NULL)
		return -1;
	memcpy(tls_cache[i].key, key.data, key.size);
	tls_cache[i].key_len = key.size;
	memcpy(tls_cache[i].data, data.data, data.size);
	tls_cache[i].data_len = data.size;
	return 0;
}

/* GnuTLS resumes by session ID only with both functions set; data sessions
 * get this one, so that they can resume but never add to the cache. */
static int cache_store_nothing(void *ptr, gnutls_datum_t key, gnutls_datum_t data)
{
	return 0;
}

static gnutls_datum_t cache_retrieve(void *ptr, gnutls_datum_t key)
{
	gnutls_datum_t r = { NULL, 0 };

	for (unsigned i = 0; i < TLS_CACHE_SLOTS; i++) {
		if (tls_cache[i].data == NULL || tls_cache[i].key_len != key.size ||
		    memcmp(tls_cache[i].key, key.data, key.size) != 0)
			continue;
		r.data = gnutls_malloc(tls_cache[i].data_len);
		if (r.data == NULL)
			return r;
		memcpy(r.data, tls_cache[i].data, tls_cache[i].data_len);
		r.size = (unsigned)tls_cache[i].data_len;
		break;
	}
	return r;
}

static int cache_remove(void *ptr, gnutls_datum_t key)
{
	for (unsigned i = 0; i < TLS_CACHE_SLOTS; i++) {
		if (tls_cache[i].data != NULL && tls_cache[i].key_len == key.size &&
		    memcmp(tls_cache[i].key, key.data, key.size) == 0) {
			free(tls_cache[i].data);
			tls_cache[i].data = NULL;
			return 0;
		}
	}
	return -1;
}

static unsigned identity_of(void *ud)
{
	return (unsigned)(uintptr_t)ud;
}

static int sign_via_monitor(unsigned identity, unsigned kind, gnutls_sign_algorithm_t algo,
			    unsigned flags, const gnutls_datum_t *in, gnutls_datum_t *sig)
{
	uint8_t out[2048];
	size_t n = 0;

	if (tls_key_retired) {
		tls_sign_refused = true;
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	if (mm_sign(identity, kind, (unsigned)algo, flags, in->data, in->size, out, &n,
		    sizeof(out)) < 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	sig->data = gnutls_malloc(n);
	if (sig->data == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	memcpy(sig->data, out, n);
	sig->size = (unsigned)n;
	return 0;
}

static int sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *ud, unsigned flags,
		     const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	return sign_via_monitor(identity_of(ud), IPC_SIGN_DATA, algo, flags, data, sig);
}

static int sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *ud, unsigned flags,
		     const gnutls_datum_t *hash, gnutls_datum_t *sig)
{
	return sign_via_monitor(identity_of(ud), IPC_SIGN_HASH, algo, flags, hash, sig);
}

static int no_decrypt(gnutls_privkey_t key, void *ud, const gnutls_datum_t *c, gnutls_datum_t *p)
{
	p->data = NULL; /* GnuTLS may free it even on failure */
	p->size = 0;
	return GNUTLS_E_UNIMPLEMENTED_FEATURE;
}

static int key_info(gnutls_privkey_t key, unsigned flags, void *ud)
{
	unsigned id = identity_of(ud);

	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
		gnutls_sign_algorithm_t sign = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
		return gnutls_sign_supports_pk_algorithm(sign, tls_pk[id]) ? 1 : 0;
	}
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)tls_pk[id];
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)tls_pk_bits[id];
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return 0;
	return GNUTLS_E_UNKNOWN_PK_ALGORITHM;
}

/* Credentials for one identity: its chain, and a key whose signatures are
 * the monitor's. */
static int prepare_identity(unsigned id, const char *cert_pem, size_t cert_len)
{
	gnutls_pcert_st *pcerts;
	unsigned n = TLS_MAX_CHAIN;
	gnutls_privkey_t key;
	int r;

	gnutls_datum_t pem = { .data = (unsigned char *)cert_pem, .size = (unsigned)cert_len };
	pcerts = gnutls_calloc(TLS_MAX_CHAIN, sizeof(*pcerts));
	if (pcerts == NULL)
		return -ENOMEM;
	r = gnutls_pcert_list_import_x509_raw(pcerts, &n, &pem, GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || n == 0) {
		log_warn("tls-certificate: %s", r < 0 ? gnutls_strerror(r) : "no certificate");
		return -EINVAL;
	}
	r = gnutls_pubkey_get_pk_algorithm(pcerts[0].pubkey, &tls_pk_bits[id]);
	if (r < 0)
		return -EINVAL;
	tls_pk[id] = (gnutls_pk_algorithm_t)r;
	if (gnutls_privkey_init(&key) < 0 ||
	    gnutls_privkey_import_ext4(key, (void *)(uintptr_t)id, sign_data, sign_hash, no_decrypt,
				       NULL, key_info, 0) < 0)
		return -EINVAL;
	if (gnutls_certificate_allocate_credentials(&tls_creds[id]) < 0)
		return -ENOMEM;
	/* GnuTLS would test the key with a signature; the monitor compares it
	 * with the certificate itself, and signs only for the handshake. */
	gnutls_certificate_set_flags(tls_creds[id], GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
	r = gnutls_certificate_set_key(tls_creds[id], NULL, 0, pcerts, (int)n, key);
	if (r < 0) {
		log_warn("certificate: %s", gnutls_strerror(r));
		return -EINVAL;
	}
	return 0;
}

int ctls_prepare(const struct config *cfg, char *const *cert_pem, const size_t *cert_len,
		unsigned identities, const uint8_t *proof_random)
{
	const char *errpos = NULL;
	int r;

	tls_cfg = cfg;
	for (unsigned i = 0; i < identities && i < IPC_MAX_IDENTITIES; i++) {
		if (cert_pem[i] == NULL)
			continue;
		r = prepare_identity(i, cert_pem[i], cert_len[i]);
		if (r < 0)
			return r;
	}
	r = gnutls_priority_init2(&tls_prio, cfg->tls_priority, &errpos, 0);
	if (r < 0) {
		log_warn("tls-priority: %s at '%s'", gnutls_strerror(r), errpos ? errpos : "");
		return -EINVAL;
	}
	/* Client certificates are asked for on the control connection; the
	 * monitor, not this process, decides whether to trust them. */
	if (cfg->tls_client_certificate == CLIENT_CERT_REQUEST)
		tls_client_cert = GNUTLS_CERT_REQUEST;
	else if (cfg->tls_client_certificate == CLIENT_CERT_REQUIRE)
		tls_client_cert = GNUTLS_CERT_REQUIRE;
	memcpy(tls_proof_random, proof_random, sizeof(tls_proof_random));
	const unsigned *versions;
	int nv = gnutls_priority_protocol_list(tls_prio, &versions);
	for (int i = 0; i < nv; i++)
		if (versions[i] == GNUTLS_TLS1_3)
			tls_offers_tls13 = true;
	/* This process's own ticket key: no other session can mint a ticket
	 * that resumes here. */
	if (gnutls_session_ticket_key_generate(&tls_ticket_key) < 0)
		return -EIO;
	return 0;
}

/* Write the records kept back; MSG_MORE, since the record that made us flush
 * follows. 0 when all are out, -1 with errno (EAGAIN: call again later). */
static int flush_kept(struct ctls *t)
{
	while (t->woff < t->wlen) {
		ssize_t r = send(t->fd, t->wbuf + t->woff, t->wlen - t->woff, MSG_NOSIGNAL | MSG_MORE);
		if (r < 0)
			return -1;
		t->woff += (size_t)r;
		t->sent += (size_t)r;
	}
	t->woff = t->wlen = 0;
	return 0;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int n)
{
	struct ctls *t = ptr;

	if (t->wbuf != NULL && t->more) {
		/* More records follow at once: keep this one, and send the burst
		 * in one system call instead of one per 16 KiB record. */
		size_t len = 0;
		for (int i = 0; i < n; i++)
			len += iov[i].iov_len;
		if (t->wlen + len > TLS_DATA_WBUF && flush_kept(t) < 0)
			return -1;
		if (len <= TLS_DATA_WBUF - t->wlen) {
			for (int i = 0; i < n; i++) {
				memcpy(t->wbuf + t->wlen, iov[i].iov_base, iov[i].iov_len);
				t->wlen += iov[i].iov_len;
			}
			return (ssize_t)len;
		}
	}
	/* Kept records go first: the peer reads the stream in order. */
	if (t->wbuf != NULL && flush_kept(t) < 0)
		return -1;

	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	ssize_t r = sendmsg(t->fd, &m, MSG_NOSIGNAL);

	if (r > 0)
		t->sent += (size_t)r;
	return r;
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct ctls *t = ptr;

	if (t->unyielded >= TLS_MAX_UNYIELDED) {
		t->flooded = true;
		errno = EMSGSIZE;
		return -1;
	}
	if (t->rbuf == NULL) {
		ssize_t n = recv(t->fd, buf, len, 0);
		if (n > 0)
			t->unyielded += (size_t)n;
		return n;
	}
	if (t->roff == t->rlen) {
		ssize_t n = recv(t->fd, t->rbuf, TLS_DATA_RBUF, 0);
		if (n <= 0)
			return n;
		t->roff = 0;
		t->rlen = (size_t)n;
	}
	size_t n = t->rlen - t->roff < len ? t->rlen - t->roff : len;
	memcpy(buf, t->rbuf + t->roff, n);
	t->roff += n;
	t->unyielded += n;
	return (ssize_t)n;
}

static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
	struct ctls *t = ptr;
	struct pollfd p = { .fd = t->fd, .events = POLLIN };

	if (t->roff < t->rlen)
		return 1;

	return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

/* TLS SNI names a virtual host: answer with its certificate. */
static int choose_by_sni(gnutls_session_t session)
{
	struct ctls *t = gnutls_session_get_ptr(session);
	char name[256];
	size_t len = sizeof(name);
	unsigned type;

	if (gnutls_server_name_get(session, name, &len, &type, 0) != 0 || type != GNUTLS_NAME_DNS)
		return 0;
	const struct config *h = config_host(tls_cfg, name);
	if (h == NULL)
		return 0;
	unsigned id = config_identity_of(tls_cfg, h);
	if (tls_creds[id] != NULL &&
	    gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, tls_creds[id]) == 0)
		t->sni_identity = (int)id;
	return 0;
}

static int offers_tls13(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
	bool *offered = ctx;

	if (tls_id != 43 /* supported_versions */ || size < 1 || data[0] != size - 1)
		return 0;
	for (unsigned i = 1; i + 1 < size; i += 2)
		if (data[i] == 3 && data[i + 1] == 4)
			*offered = true;
	return 0;
}

/* The monitor's random for our ServerHello; its last 8 bytes are the
 * downgrade sentinel (RFC 8446 4.1.3) when this server speaks TLS 1.3 and
 * the client did not offer it, as GnuTLS would have set them. */
static void set_server_random(gnutls_session_t session, const gnutls_datum_t *client_hello)
{
	uint8_t random[32];
	bool offered = false;

	memcpy(random, tls_proof_random, sizeof(random));
	if (tls_offers_tls13 && client_hello->size >= 2 &&
	    gnutls_ext_raw_parse(&offered, offers_tls13, client_hello,
				 GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO) >= 0 &&
	    !offered) {
		bool tls12 = client_hello->data[0] == 3 && client_hello->data[1] >= 3;
		memcpy(random + 24, tls12 ? "DOWNGRD\x01" : "DOWNGRD\x00", 8);
	}
	gnutls_datum_t d = { random, sizeof(random) };
	if (gnutls_handshake_set_random(session, &d) < 0)
		abort();
}

/* Data connections after login, where they must resume: decided when the
 * ServerHello is due, from what the ClientHello offered, before anything
 * is asked of the monitor. A session GnuTLS did not resume (from a ticket
 * or the session cache) is a full handshake: anyone's. */
static int refuse_unresumed(gnutls_session_t session, unsigned htype, unsigned when,
			    unsigned incoming, const gnutls_datum_t *msg)
{
	struct ctls *t = gnutls_session_get_ptr(session);

	(void)when;
	(void)msg;
	if (htype != GNUTLS_HANDSHAKE_SERVER_HELLO || incoming || !tls_key_retired ||
	    gnutls_session_is_resumed(session))
		return 0;
	t->unresumed = true;
	return GNUTLS_E_INSUFFICIENT_CREDENTIALS;
}

/* Every handshake message of the control connection, in order: the
 * transcript the client signs. */
static int record_handshake(gnutls_session_t session, unsigned htype, unsigned when,
			    unsigned incoming, const gnutls_datum_t *msg)
{
	struct ctls *t = gnutls_session_get_ptr(session);

	(void)when;
	if (t == NULL || t->hs == NULL || t->hs_done)
		return 0;
	if (incoming && htype == GNUTLS_HANDSHAKE_CLIENT_HELLO)
		set_server_random(session, msg);
	if (tls_proof_append(t->hs, &t->hs_len, htype, msg->data, msg->size) < 0)
		t->hs_overflow = true;
	return 0;
}

struct ctls *ctls_new(int fd, bool data, unsigned identity)
{
	struct ctls *t = calloc(1, sizeof(*t));

	if (t == NULL)
		abort();
	t->data = data;
	t->sni_identity = -1;
	if (data && ((t->rbuf = malloc(TLS_DATA_RBUF)) == NULL || (t->wbuf = malloc(TLS_DATA_WBUF)) == NULL))
		abort();
	if (identity >= IPC_MAX_IDENTITIES || tls_creds[identity] == NULL)
		identity = 0;
	/* Tickets are sent on the control connection only, when asked for. */
	if (gnutls_init(&t->s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_AUTO_SEND_TICKET) < 0)
		abort();
	if (gnutls_priority_set(t->s, tls_prio) < 0 ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, tls_creds[identity]) < 0 ||
	    gnutls_session_ticket_enable_server(t->s, &tls_ticket_key) < 0)
		abort();
	gnutls_certificate_server_set_request(t->s, data ? GNUTLS_CERT_IGNORE : tls_client_cert);
	gnutls_handshake_set_max_packet_length(t->s, TLS_MAX_HANDSHAKE);
	gnutls_db_set_retrieve_function(t->s, cache_retrieve);
	gnutls_db_set_store_function(t->s, data ? cache_store_nothing : cache_store);
	if (!data)
		gnutls_db_set_remove_function(t->s, cache_remove);
	gnutls_db_set_ptr(t->s, NULL);
	gnutls_transport_set_int(t->s, fd);
	t->fd = fd;
	gnutls_transport_set_ptr(t->s, t);
	gnutls_session_set_ptr(t->s, t);
	if (!data && tls_cfg->nhosts > 0)
		gnutls_handshake_set_post_client_hello_function(t->s, choose_by_sni);
	if (!data && tls_client_cert != GNUTLS_CERT_IGNORE) {
		if ((t->hs = malloc(TLS_PROOF_MAX)) == NULL)
			abort();
		gnutls_handshake_set_hook_function(t->s, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_PRE,
						   record_handshake);
	}
	if (data)
		gnutls_handshake_set_hook_function(t->s, GNUTLS_HANDSHAKE_SERVER_HELLO, GNUTLS_HOOK_PRE,
						   refuse_unresumed);
	gnutls_transport_set_vec_push_function(t->s, tls_push);
	gnutls_transport_set_pull_function(t->s, tls_pull);
	gnutls_transport_set_pull_timeout_function(t->s, tls_pull_timeout);
	return t;
}

void ctls_free(struct ctls *t)
{
	if (t == NULL)
		return;
	gnutls_deinit(t->s);
	free(t->rbuf);
	free(t->wbuf);
	free(t->hs);
	free(t);
}

int ctls_handshake(struct ctls *t)
{
	int r = gnutls_handshake(t->s);

	if (r == GNUTLS_E_SUCCESS) {
		t->hs_done = true; /* later messages (tickets, key updates) are not signed */
		return 0;
	}
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	if (!gnutls_error_is_fatal(r))
		return -EAGAIN;
	if (t->data && (t->unresumed || ctls_take_refused_signature())) {
		/* Said at once, in an alert: a client that handshakes before it
		 * sends its command learns it now, not at a time-out. */
		t->unresumed = true;
		(void)gnutls_alert_send(t->s, GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED);
		return -EACCES;
	}
	log_info("%s TLS handshake failed: %s", t->data ? "data" : "control",
		 t->flooded ? "over 128 KiB of handshake records" : gnutls_strerror(r));
	return -EPROTO;
}

bool ctls_want_write(const struct ctls *t)
{
	return gnutls_record_get_direction(t->s) == 1;
}

/* The TLS 1.3 record in rec (header and all, n bytes), opened with the
 * session's read key at its next sequence number: the inner content type
 * and the plaintext's length, or -1 when it does not open. */
static int open_record(struct ctls *t, const uint8_t *rec, size_t n, uint8_t *out, size_t *len)
{
	gnutls_cipher_algorithm_t c = gnutls_cipher_get(t->s);
	gnutls_datum_t iv, key;
	gnutls_aead_cipher_hd_t h;
	uint8_t seq[8], nonce[12];
	size_t tag = gnutls_cipher_get_tag_size(c);
	int r;

	if (n <= 5 + tag || gnutls_record_get_state(t->s, 1, NULL, &iv, &key, seq) < 0 ||
	    iv.size != sizeof(nonce))
		return -1;
	/* RFC 8446 5.3: the IV with the sequence number XORed into its end. */
	memcpy(nonce, iv.data, sizeof(nonce));
	for (size_t i = 0; i < 8; i++)
		nonce[4 + i] ^= seq[i];
	if (gnutls_aead_cipher_init(&h, c, &key) < 0)
		return -1;
	r = gnutls_aead_cipher_decrypt(h, nonce, sizeof(nonce), rec, 5, tag, rec + 5, n - 5, out, len);
	gnutls_aead_cipher_deinit(h);
	if (r < 0)
		return -1;
	/* The inner type is the last byte that is not padding. */
	while (*len > 0 && out[*len - 1] == 0)
		(*len)--;
	if (*len == 0)
		return -1;
	(*len)--;
	return out[*len];
}

/* After a TLS 1.3 user_canceled alert on a data channel. GnuTLS takes any
 * TLS 1.3 alert but close_notify as the end of the session, and reads no
 * further; but the JDK closes every stream it wrote with user_canceled and
 * then close_notify. So the next record is opened here: a close_notify
 * (and nothing else) right after the alert is a complete stream; anything
 * else, or the connection's end, is a stream cut short. 0 (complete),
 * -EAGAIN or -EPROTO. */
static ssize_t after_cancel(struct ctls *t)
{
	uint8_t plain[64];
	size_t need, len = sizeof(plain);

	for (;;) {
		size_t have = t->rlen - t->roff;
		if (have >= 5) {
			const uint8_t *h = t->rbuf + t->roff;
			need = 5 + ((size_t)h[3] << 8 | h[4]);
			/* An encrypted alert: type application_data, a few bytes. */
			if (h[0] != 23 || need > 5 + sizeof(plain) + 256)
				break;
			if (have >= need)
				break;
		}
		if (t->roff > 0) {
			memmove(t->rbuf, t->rbuf + t->roff, have);
			t->rlen = have;
			t->roff = 0;
		}
		ssize_t n = recv(t->fd, t->rbuf + t->rlen, TLS_DATA_RBUF - t->rlen, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return -EAGAIN;
		if (n <= 0) {
			log_info("TLS user_canceled, then the connection ended without close_notify");
			return -EPROTO;
		}
		t->rlen += (size_t)n;
	}
	need = 5 + ((size_t)t->rbuf[t->roff + 3] << 8 | t->rbuf[t->roff + 4]);
	if (t->rlen - t->roff >= need && open_record(t, t->rbuf + t->roff, need, plain, &len) == 21 &&
	    len == 2 && plain[1] == GNUTLS_A_CLOSE_NOTIFY) {
		t->roff += need;
		return 0;
	}
	log_info("TLS user_canceled, then no close_notify: the stream was cut short");
	return -EPROTO;
}

ssize_t ctls_recv(struct ctls *t, void *buf, size_t len)
{
	if (t->canceled)
		return after_cancel(t);

	ssize_t r = gnutls_record_recv(t->s, buf, len);

	if (t->canceled12 && (r > 0 || r == GNUTLS_E_PREMATURE_TERMINATION)) {
		/* As under TLS 1.3: after user_canceled, close_notify or nothing. */
		log_info("TLS user_canceled, then no close_notify: the stream was cut short");
		return -EPROTO;
	}
	if (r > 0)
		t->unyielded = 0;
	if (r >= 0)
		return r;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	if (r == GNUTLS_E_PREMATURE_TERMINATION)
		return -ECONNRESET;
	if (r == GNUTLS_E_WARNING_ALERT_RECEIVED && t->rbuf != NULL &&
	    gnutls_alert_get(t->s) == GNUTLS_A_USER_CANCELED) {
		t->canceled12 = true;
		return -EAGAIN;
	}
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED && t->rbuf != NULL &&
	    gnutls_alert_get(t->s) == GNUTLS_A_USER_CANCELED &&
	    gnutls_protocol_get_version(t->s) == GNUTLS_TLS1_3) {
		t->canceled = true;
		return after_cancel(t);
	}
	if (!gnutls_error_is_fatal((int)r) && r != GNUTLS_E_REHANDSHAKE)
		return -EAGAIN;
	log_info("TLS receive: %s", t->flooded ? "over 128 KiB of records without application data"
						: gnutls_strerror((int)r));
	return -EPROTO;
}

ssize_t ctls_send(struct ctls *t, const void *buf, size_t len)
{
	ssize_t r = gnutls_record_send(t->s, buf, len);

	if (r >= 0)
		return r;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	log_info("TLS send: %s", gnutls_strerror((int)r));
	return -EPROTO;
}

size_t ctls_pending(struct ctls *t)
{
	return gnutls_record_check_pending(t->s) + (t->rlen - t->roff);
}

void ctls_set_more(struct ctls *t, bool more)
{
	t->more = more;
}

size_t ctls_record_size(struct ctls *t)
{
	return gnutls_record_get_max_size(t->s);
}

int ctls_send_ticket(struct ctls *t)
{
	int r;

	if (gnutls_protocol_get_version(t->s) != GNUTLS_TLS1_3 || t->no_tickets)
		return 0;
	r = gnutls_session_ticket_send(t->s, 1, 0);
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	if (r == 0)
		t->tickets++;
	if (r < 0) {
		log_info("sending a session ticket: %s", gnutls_strerror(r));
		return -EPROTO;
	}
	return 0;
}

bool ctls_has_peer_certificate(const struct ctls *t)
{
	unsigned n = 0;

	return gnutls_certificate_get_peers(t->s, &n) != NULL && n > 0;
}

void ctls_retire_key(void)
{
	tls_key_retired = true;
}

void ctls_login_tickets(struct ctls *ctl, const uint8_t *key, size_t len)
{
	/* TLS 1.2 sends its ticket in the handshake, before login, under this
	 * process's key: data connections go on resuming only that (and the
	 * session cache). */
	if (ctl == NULL || len != sizeof(tls_user_ticket_key) ||
	    gnutls_protocol_get_version(ctl->s) != GNUTLS_TLS1_3)
		return;
	/* A client that took a ticket before login (ticket_before_login in
	 * ctl.c) resumes this connection's tickets: they stay under this
	 * process's key. */
	if (ctl->tickets > 0)
		return;
	memcpy(tls_user_ticket_key, key, len);
	if (tls_ticket_key.data != tls_user_ticket_key) {
		gnutls_memset(tls_ticket_key.data, 0, tls_ticket_key.size);
		gnutls_free(tls_ticket_key.data);
	}
	tls_ticket_key.data = tls_user_ticket_key;
	tls_ticket_key.size = (unsigned)len;
	/* The control connection sends no ticket before login, so its ticket
	 * key is still unused and can become this user's. Unless the client
	 * offered a ticket in its ClientHello: GnuTLS then used the key to
	 * try it, and keeps it. Such a client resumes from a cache of its own;
	 * its data connections can resume what this user's other sessions
	 * gave it, and this connection gives none. */
	if (gnutls_session_ticket_enable_server(ctl->s, &tls_ticket_key) < 0) {
		ctl->no_tickets = true;
		log_info("the client offered a TLS session ticket before login: this connection "
			 "sends no tickets; data connections resume those of this user's other "
			 "sessions from this address");
	}
}

bool ctls_take_refused_signature(void)
{
	bool refused = tls_sign_refused;

	tls_sign_refused = false;
	return refused;
}

int ctls_handshake_messages(const struct ctls *t, const uint8_t **msgs, size_t *len)
{
	if (t->hs == NULL || !t->hs_done)
		return -ENOENT;
	if (t->hs_overflow)
		return -EMSGSIZE;
	*msgs = t->hs;
	*len = t->hs_len;
	return 0;
}

#if FTPSD_TEST_HOOKS
int ctls_test_forge_claim(const uint8_t *der, size_t der_len, uint8_t *buf, size_t *len)
{
	/* What a child taken over could send: this session's random in a
	 * ServerHello, a certificate it has seen, and a signature it cannot make. */
	static const uint8_t client_hello[] = { 3, 3 };
	uint8_t server_hello[2 + 32 + 1 + 2 + 1 + 2 + 6] = { 3, 3 };
	uint8_t finished[32] = { 0 }, verify[4 + 64];
	uint8_t *cert = malloc(der_len + 9);
	int r;

	if (cert == NULL || der_len > 0xffff)
		abort();
	memcpy(server_hello + 2, tls_proof_random, 32);
	memcpy(server_hello + 35, "\x13\x01\x00\x00\x06\x00\x2b\x00\x02\x03\x04", 11);
	cert[0] = 0;
	cert[1] = 0;
	cert[2] = (uint8_t)((der_len + 5) >> 8);
	cert[3] = (uint8_t)(der_len + 5);
	cert[4] = 0;
	cert[5] = (uint8_t)(der_len >> 8);
	cert[6] = (uint8_t)der_len;
	memcpy(cert + 7, der, der_len);
	cert[7 + der_len] = 0;
	cert[8 + der_len] = 0;
	memcpy(verify, "\x04\x03\x00\x40", 4);
	memset(verify + 4, 0x30, 64);
	*len = 0;
	r = tls_proof_append(buf, len, GNUTLS_HANDSHAKE_CLIENT_HELLO, client_hello, sizeof(client_hello));
	if (r == 0)
		r = tls_proof_append(buf, len, GNUTLS_HANDSHAKE_SERVER_HELLO, server_hello, sizeof(server_hello));
	if (r == 0)
		r = tls_proof_append(buf, len, GNUTLS_HANDSHAKE_FINISHED, finished, sizeof(finished));
	if (r == 0)
		r = tls_proof_append(buf, len, GNUTLS_HANDSHAKE_CERTIFICATE_PKT, cert, der_len + 9);
	if (r == 0)
		r = tls_proof_append(buf, len, GNUTLS_HANDSHAKE_CERTIFICATE_VERIFY, verify, sizeof(verify));
	free(cert);
	return r;
}
#endif

int ctls_sni_identity(const struct ctls *t)
{
	return t->sni_identity;
}

size_t ctls_bytes_sent(const struct ctls *t)
{
	return t->sent;
}

bool ctls_resumed(const struct ctls *t)
{
	return gnutls_session_is_resumed(t->s) != 0;
}

int ctls_bye(struct ctls *t)
{
	if (t->bye_sent)
		return 0;
	t->more = false; /* the alert goes out with whatever was kept */
	int r = gnutls_bye(t->s, GNUTLS_SHUT_WR);

	if (r == GNUTLS_E_SUCCESS) {
		t->bye_sent = true;
		return 0;
	}
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	return -EPROTO;
}

void ctls_names(const struct ctls *t, const char **version, const char **cipher)
{
	*version = gnutls_protocol_get_name(gnutls_protocol_get_version(t->s));
	*cipher = gnutls_cipher_get_name(gnutls_cipher_get(t->s));
	if (*version == NULL)
		*version = "?";
	if (*cipher == NULL)
		*cipher = "?";
}

const char *ctls_describe(const struct ctls *t, char *buf, size_t size)
{
	const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(t->s));
	const char *c = gnutls_cipher_get_name(gnutls_cipher_get(t->s));

	snprintf(buf, size, "%s/%s", v ? v : "?", c ? c : "?");
	return buf;
}
