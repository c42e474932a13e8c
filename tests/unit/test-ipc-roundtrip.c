/* The monitor's request table against the child's stubs.
 *
 * 1. Every request of IPC_REQUESTS (ipc.h) has exactly one row in the
 *    monitor's table (the test hook only in test builds), and the table has
 *    no other row: a request added to the enum without a row, or a row
 *    written twice, fails here.
 * 2. A round trip through each stub of child_mon.c: the stub sends its
 *    request over a SOCK_SEQPACKET pair, the monitor's decoder (the table's,
 *    in the phase where the child sends it) accepts it and finds exactly
 *    the fields the stub was given; the scripted answer comes back through
 *    the stub's own parsing (a login's flags and ticket key, a signature, a
 *    stat, a descriptor). Answers are queued before each call, so the stubs,
 *    which block for their answer, find it waiting: no second process.
 *    A stub that sends a field its decoder does not expect, in another
 *    order or size, fails a CHECK; one that cannot parse its answer ends
 *    this test with status 2 (mm_broken), after naming the stub on stderr.
 * 3. Every request type went through a round trip. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "build_config.h"
#include "check.h"
#include "child_mon.h"
#include "ipc.h"
#include "monitor_msg.h"

#define BOTH (PHASE_PRELOGIN | PHASE_LOGGEDIN)

static const struct {
	enum ipc_type type;
	const char *name;
} requests[] = {
#define REQUEST_ROW_(name, value) { name, #name },
	IPC_REQUESTS(REQUEST_ROW_)
#undef REQUEST_ROW_
};
#define NREQUESTS (sizeof(requests) / sizeof(requests[0]))

static int sv[2];
static struct ipc_msg peer, answer;
/* Round trips that decoded, by type. */
static unsigned seen[IPC_ANSWER];

static void test_table(void)
{
	size_t rows = 0;

	for (size_t i = 0; i < NREQUESTS; i++) {
		unsigned n = 0;
		bool want = requests[i].type != IPC_TEST_HOOK || FTPSD_TEST_HOOKS;

		for (size_t j = 0; j < monitor_table_len; j++)
			n += monitor_table[j].type == requests[i].type;
		if (n != (want ? 1u : 0u))
			fprintf(stderr, "%s: %u rows in the monitor's table\n", requests[i].name,
				n);
		CHECK(n == (want ? 1u : 0u));
		CHECK((monitor_request(requests[i].type) != NULL) == want);
		rows += n;
	}
	/* No row beyond the requests (IPC_ANSWER, a stray value). */
	CHECK(rows == monitor_table_len);
	CHECK(monitor_request(IPC_ANSWER) == NULL && monitor_request(0) == NULL);
	for (size_t j = 0; j < monitor_table_len; j++) {
		const struct mon_dispatch *d = &monitor_table[j];
		CHECK(d->decode != NULL && d->handler != NULL && d->what != NULL);
		CHECK(d->phases != 0 && (d->phases & ~(unsigned)BOTH) == 0);
		CHECK(d->flags == (d->flags & (MON_ONCE | MON_ONCE_PRELOGIN | MON_KEY)));
		/* A request closed by another is closed by one that exists. */
		CHECK(d->until == 0 || monitor_request(d->until) != NULL);
	}
}

/* Queue the answer being built in `answer` for the stub's next call. */
static void queue(void)
{
	CHECK(!answer.overflow);
	CHECK(ipc_send(sv[1], &answer) == 0);
	if (answer.fd >= 0)
		close(answer.fd);
}

static void queue_rc(int32_t rc)
{
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, rc);
	queue();
}

/* An answer of rc 0 with a descriptor: the read end of an empty pipe. */
static void queue_empty_fd(void)
{
	int p[2];

	CHECK(pipe(p) == 0);
	close(p[1]);
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, 0);
	answer.fd = p[0];
	queue();
}

/* The descriptor the stub returned is that pipe's (at its end), closed. */
static void check_empty_fd(int fd)
{
	char c;

	CHECK(fd >= 0 && read(fd, &c, 1) == 0);
	if (fd >= 0)
		close(fd);
}

/* The request the stub sent, decoded as the monitor decodes it in phase. */
static void take(enum ipc_type type, unsigned phase, struct mon_request *r)
{
	int got;

	CHECK(ipc_recv(sv[1], &peer) == 0);
	if (peer.type != type)
		fprintf(stderr, "sent type %u, expected %u\n", peer.type, type);
	CHECK(peer.type == type);
	got = monitor_decode(&peer, phase, r);
	if (got != 0)
		fprintf(stderr, "type %u: the monitor's decoder says %d\n", peer.type, got);
	CHECK(got == 0);
	if (got == 0 && peer.type < IPC_ANSWER)
		seen[peer.type]++;
}

static void stub(const char *name)
{
	fprintf(stderr, "round trip: %s\n", name);
}

static void test_log(void)
{
	static struct mon_request r;

	stub("mm_log");
	queue_rc(0);
	mm_log(LOG_NOTICE, "a line from the child");
	take(IPC_LOG, PHASE_PRELOGIN, &r);
	CHECK(r.u.log.priority == LOG_NOTICE && r.u.log.event == IPC_EVENT_NONE);
	CHECK_STR(r.u.log.line, "a line from the child");

	stub("mm_event");
	queue_rc(0);
	mm_event(IPC_EVENT_DATA_TLS_NOT_RESUMED, LOG_WARNING, "not resumed");
	take(IPC_LOG, PHASE_LOGGEDIN, &r);
	CHECK(r.u.log.priority == LOG_WARNING && r.u.log.event == IPC_EVENT_DATA_TLS_NOT_RESUMED);
	CHECK_STR(r.u.log.line, "not resumed");
}

static void test_sign(void)
{
	static struct mon_request r;
	static const uint8_t in[] = "the handshake's hash, or its data";
	static const uint8_t sig[] = { 0x30, 0x44, 0x02, 0x20, 0xaa, 0xbb, 0x00, 0x01 };
	uint8_t out[64];
	size_t outlen = 0;

	for (unsigned phase = PHASE_PRELOGIN; phase <= PHASE_LOGGEDIN; phase++) {
		stub("mm_sign");
		ipc_init(&answer, IPC_ANSWER);
		ipc_put_i32(&answer, 0);
		ipc_put_bytes(&answer, sig, sizeof(sig));
		queue();
		CHECK(mm_sign(3, IPC_SIGN_HASH, 9, 16, in, sizeof(in), out, &outlen, sizeof(out)) ==
		      0);
		take(IPC_SIGN, phase, &r);
		CHECK(r.u.sign.identity == 3 && r.u.sign.kind == IPC_SIGN_HASH &&
		      r.u.sign.algo == 9 && r.u.sign.flags == 16);
		CHECK(r.u.sign.len == sizeof(in) && memcmp(r.u.sign.input, in, sizeof(in)) == 0);
		CHECK(outlen == sizeof(sig) && memcmp(out, sig, sizeof(sig)) == 0);
	}
	/* A refusal carries no signature. */
	stub("mm_sign (refused)");
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, -EPERM);
	ipc_put_bytes(&answer, "", 0);
	queue();
	outlen = 0;
	CHECK(mm_sign(0, IPC_SIGN_DATA, 1, 0, in, 1, out, &outlen, sizeof(out)) == -EPERM);
	CHECK(outlen == 0);
	take(IPC_SIGN, PHASE_PRELOGIN, &r);
	CHECK(r.u.sign.identity == 0 && r.u.sign.kind == IPC_SIGN_DATA && r.u.sign.algo == 1 &&
	      r.u.sign.len == 1 && r.u.sign.input[0] == in[0]);
}

static void test_host_tls_info(void)
{
	static struct mon_request r;

	stub("mm_host");
	queue_rc(0);
	mm_host(IPC_MAX_IDENTITIES - 1);
	take(IPC_HOST, PHASE_PRELOGIN, &r);
	CHECK(r.u.identity == IPC_MAX_IDENTITIES - 1);

	stub("mm_tls_info");
	queue_rc(0);
	mm_tls_info("TLS1.3", "AES-256-GCM");
	take(IPC_TLS_INFO, PHASE_PRELOGIN, &r);
	CHECK_STR(r.u.tls.version, "TLS1.3");
	CHECK_STR(r.u.tls.cipher, "AES-256-GCM");
}

/* A login answer: the code, the user's flags, the ticket key. */
static void queue_login(int32_t code, uint32_t flags, const uint8_t *key, size_t len)
{
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, code);
	ipc_put_u32(&answer, flags);
	ipc_put_bytes(&answer, key, len);
	queue();
}

static void test_auth_user(void)
{
	static struct mon_request r;
	struct mm_login login;
	uint8_t key[IPC_TICKET_KEY];

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);

	stub("mm_auth");
	memset(&login, 0, sizeof(login));
	queue_login(0, IPC_USER_READ_ONLY | IPC_USER_DATA_TLS_ANY, key, sizeof(key));
	CHECK(mm_auth("alice", "pass word", true, &login) == 0);
	take(IPC_AUTH, PHASE_PRELOGIN, &r);
	CHECK_STR(r.u.auth.user, "alice");
	CHECK_STR(r.u.auth.password, "pass word");
	CHECK(r.u.auth.session == IPC_SESSION_TLS);
	CHECK(login.flags == (IPC_USER_READ_ONLY | IPC_USER_DATA_TLS_ANY));
	CHECK(login.ticket_key_len == sizeof(key) &&
	      memcmp(login.ticket_key, key, sizeof(key)) == 0);

	stub("mm_auth (no TLS, failed)");
	queue_rc(IPC_AUTH_FAILED);
	CHECK(mm_auth("bob", "", false, &login) == IPC_AUTH_FAILED);
	take(IPC_AUTH, PHASE_PRELOGIN, &r);
	CHECK_STR(r.u.auth.user, "bob");
	CHECK_STR(r.u.auth.password, "");
	CHECK(r.u.auth.session == 0);

	stub("mm_auth (no TLS, logged in)");
	memset(&login, 0, sizeof(login));
	queue_login(0, IPC_USER_NO_CHMOD, NULL, 0);
	CHECK(mm_auth("bob", "x", false, &login) == 0);
	take(IPC_AUTH, PHASE_PRELOGIN, &r);
	CHECK(login.flags == IPC_USER_NO_CHMOD && login.ticket_key_len == 0);

	stub("mm_user");
	queue_rc(IPC_USER_PASSWORD);
	CHECK(mm_user("carol", true, &login) == IPC_USER_PASSWORD);
	take(IPC_USER, PHASE_PRELOGIN, &r);
	CHECK_STR(r.u.auth.user, "carol");
	CHECK(r.u.auth.session == IPC_SESSION_TLS);

	stub("mm_user (by certificate)");
	memset(&login, 0, sizeof(login));
	queue_login(IPC_USER_LOGGED_IN, IPC_USER_READ_ONLY, key, sizeof(key));
	CHECK(mm_user("dave", false, &login) == IPC_USER_LOGGED_IN);
	take(IPC_USER, PHASE_PRELOGIN, &r);
	CHECK_STR(r.u.auth.user, "dave");
	CHECK(r.u.auth.session == 0);
	CHECK(login.flags == IPC_USER_READ_ONLY && login.ticket_key_len == sizeof(key) &&
	      memcmp(login.ticket_key, key, sizeof(key)) == 0);
}

/* Handshake messages longer than one message go in parts; then the check. */
static void test_cert(void)
{
	static struct mon_request r;
	static uint8_t hs[2 * IPC_MAX_PAYLOAD + 100], got[sizeof(hs)];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(hs); i++)
		hs[i] = (uint8_t)(i ^ (i >> 8));
	stub("mm_cert");
	for (int i = 0; i < 3; i++)
		queue_rc(0);
	queue_rc(-EACCES);
	CHECK(mm_cert(hs, sizeof(hs)) == -EACCES);
	for (int i = 0; i < 3; i++) {
		take(IPC_HANDSHAKE, PHASE_PRELOGIN, &r);
		CHECK(r.u.part.len > 0 && r.u.part.len <= sizeof(got) - n);
		if (r.u.part.len <= sizeof(got) - n) {
			memcpy(got + n, r.u.part.data, r.u.part.len);
			n += r.u.part.len;
		}
	}
	CHECK(n == sizeof(hs) && memcmp(got, hs, n) == 0);
	take(IPC_CERT, PHASE_PRELOGIN, &r);
}

static void test_files(void)
{
	static struct mon_request r;
	struct mm_stat st;
	uint64_t size = 0;
	int p[2], fd = -1;
	char c = 0;

	stub("mm_stat");
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, 0);
	ipc_put_u32(&answer, S_IFREG | 0640);
	ipc_put_u64(&answer, 1ULL << 33);
	ipc_put_i64(&answer, 1700000123);
	queue();
	CHECK(mm_stat("/dir/file", &st) == 0);
	take(IPC_STAT, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.file.path, "/dir/file");
	CHECK(st.mode == (S_IFREG | 0640) && st.size == 1ULL << 33 && st.mtime == 1700000123);

	stub("mm_open");
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "x", 1) == 1);
	close(p[1]);
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, 0);
	ipc_put_u64(&answer, 4242);
	ipc_put_u64(&answer, 1000000);
	answer.fd = p[0];
	queue();
	uint64_t allowance = 0;
	CHECK(mm_open("/up/file", IPC_OPEN_WRITE, 77, &fd, &size, &allowance) == 0);
	take(IPC_OPEN, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.file.path, "/up/file");
	CHECK(r.u.file.how == IPC_OPEN_WRITE && r.u.file.offset == 77 && size == 4242);
	CHECK(allowance == 1000000);
	/* The descriptor is the one sent. */
	CHECK(fd >= 0 && read(fd, &c, 1) == 1 && c == 'x');
	if (fd >= 0)
		close(fd);

	stub("mm_open (refused)");
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, -ENOENT);
	ipc_put_u64(&answer, 0);
	ipc_put_u64(&answer, UINT64_MAX);
	queue();
	CHECK(mm_open("/gone", IPC_OPEN_SEND, 5, &fd, &size, NULL) == -ENOENT && fd < 0);
	take(IPC_OPEN, PHASE_LOGGEDIN, &r);
	CHECK(r.u.file.how == IPC_OPEN_SEND && r.u.file.offset == 5);

	stub("mm_upload_check");
	queue_rc(-EDQUOT);
	CHECK(mm_upload_check("/up/new", IPC_OPEN_UNIQUE, 0) == -EDQUOT);
	take(IPC_UPLOAD_CHECK, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.file.path, "/up/new");
	CHECK(r.u.file.how == IPC_OPEN_UNIQUE && r.u.file.offset == 0);

	stub("mm_quota");
	struct mm_quota q;
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, 0);
	ipc_put_u64(&answer, 10276044);
	ipc_put_u64(&answer, 10485760);
	ipc_put_u64(&answer, 12);
	ipc_put_u64(&answer, 0);
	queue();
	CHECK(mm_quota(&q) == 0);
	take(IPC_QUOTA, PHASE_LOGGEDIN, &r);
	CHECK(q.bytes == 10276044 && q.max_bytes == 10485760 && q.files == 12 && q.max_files == 0);

	stub("mm_connect");
	queue_empty_fd();
	CHECK(mm_connect(40001, &fd) == 0);
	take(IPC_CONNECT, PHASE_LOGGEDIN, &r);
	CHECK(r.u.port == 40001);
	check_empty_fd(fd);
	stub("mm_connect (refused)");
	queue_rc(-ECONNREFUSED);
	CHECK(mm_connect(40002, &fd) == -ECONNREFUSED && fd < 0);
	take(IPC_CONNECT, PHASE_LOGGEDIN, &r);

	stub("mm_list");
	queue_empty_fd();
	CHECK(mm_list("/pub", IPC_LIST_MLSD, IPC_LIST_ALL | IPC_FACT_SIZE, "-a pub", &fd) == 0);
	take(IPC_LIST, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.file.path, "/pub");
	CHECK_STR(r.u.file.to, "-a pub");
	CHECK(r.u.file.format == IPC_LIST_MLSD && r.u.file.flags == (IPC_LIST_ALL | IPC_FACT_SIZE));
	check_empty_fd(fd);
}

static void test_changes(void)
{
	static const enum ipc_type ops[] = { IPC_MKDIR, IPC_RMDIR, IPC_DELETE };
	static struct mon_request r;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		stub("mm_path_op");
		queue_rc(-(int32_t)(i + 1));
		CHECK(mm_path_op(ops[i], "/a/b") == -(int)(i + 1));
		take(ops[i], PHASE_LOGGEDIN, &r);
		CHECK_STR(r.u.file.path, "/a/b");
	}

	stub("mm_rename");
	queue_rc(0);
	CHECK(mm_rename("/from", "/to/there") == 0);
	take(IPC_RENAME, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.file.path, "/from");
	CHECK_STR(r.u.file.to, "/to/there");

	stub("mm_chmod");
	queue_rc(0);
	CHECK(mm_chmod("/f", 0751) == 0);
	take(IPC_CHMOD, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.file.path, "/f");
	CHECK(r.u.file.mode == 0751);

	stub("mm_settime");
	queue_rc(0);
	CHECK(mm_settime("/f", 1234567890) == 0);
	take(IPC_SETTIME, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.file.path, "/f");
	CHECK(r.u.file.mtime == 1234567890);

	stub("mm_xfer");
	queue_rc(-EIO);
	CHECK(mm_xfer("/up/file", IPC_XFER_RECEIVED, 123456789, 4321,
		      IPC_XFER_COMPLETE | IPC_XFER_UNSURE) == -EIO);
	take(IPC_XFER, PHASE_LOGGEDIN, &r);
	CHECK_STR(r.u.xfer.path, "/up/file");
	CHECK(r.u.xfer.direction == IPC_XFER_RECEIVED && r.u.xfer.bytes == 123456789 &&
	      r.u.xfer.ms == 4321 && r.u.xfer.flags == (IPC_XFER_COMPLETE | IPC_XFER_UNSURE));
}

static void test_progress_shutdown(void)
{
	static struct mon_request r;
	struct mm_login login;

	stub("mm_progress");
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, 0);
	ipc_put_u64(&answer, 1000000);
	queue();
	CHECK(mm_progress(12345678) == 1000000);
	take(IPC_PROGRESS, PHASE_LOGGEDIN, &r);
	CHECK(r.u.progress == 12345678);

	stub("mm_auth (too many sessions of the user)");
	memset(&login, 0, sizeof(login));
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, IPC_AUTH_TOO_MANY);
	ipc_put_str(&answer, "Too many sessions of this user (max-sessions-per-user 2), try again later.");
	queue();
	CHECK(mm_auth("alice", "x", true, &login) == IPC_AUTH_TOO_MANY);
	take(IPC_AUTH, PHASE_PRELOGIN, &r);
	CHECK_STR(login.refusal,
		  "Too many sessions of this user (max-sessions-per-user 2), try again later.");

	/* The administrator's end comes while the child waits for an answer:
	 * noted, and the answer still read. */
	stub("IPC_SHUTDOWN during mm_progress");
	CHECK(!mm_shutdown_asked(false));
	ipc_init(&answer, IPC_SHUTDOWN);
	queue();
	ipc_init(&answer, IPC_ANSWER);
	ipc_put_i32(&answer, 0);
	ipc_put_u64(&answer, 0);
	queue();
	CHECK(mm_progress(1) == 0);
	take(IPC_PROGRESS, PHASE_LOGGEDIN, &r);
	CHECK(mm_shutdown_asked(false));
}

static void test_test_hook(void)
{
	static struct mon_request r;

	stub("mm_test_hook");
	queue_rc(-EPERM);
	CHECK(mm_test_hook(TEST_HOOK_MONITOR_OPEN, "/etc/passwd") == -EPERM);
#if FTPSD_TEST_HOOKS
	take(IPC_TEST_HOOK, PHASE_LOGGEDIN, &r);
	CHECK(r.u.hook.n == TEST_HOOK_MONITOR_OPEN && strcmp(r.u.hook.path, "/etc/passwd") == 0);
#else
	/* Builds without test hooks have no row: the monitor ends the session. */
	CHECK(ipc_recv(sv[1], &peer) == 0 && peer.type == IPC_TEST_HOOK);
	CHECK(monitor_decode(&peer, PHASE_LOGGEDIN, &r) == -ENOTSUP);
	seen[IPC_TEST_HOOK]++;
#endif
}

int main(void)
{
	test_table();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		return 1;
	}
	mm_init(sv[0]);
	test_log();
	test_sign();
	test_host_tls_info();
	test_auth_user();
	test_cert();
	test_files();
	test_changes();
	test_test_hook();
	test_progress_shutdown();
	/* Every request went through a stub and the decoder; nothing is left
	 * unread. */
	for (size_t i = 0; i < NREQUESTS; i++) {
		if (seen[requests[i].type] == 0)
			fprintf(stderr, "%s: no round trip\n", requests[i].name);
		CHECK(seen[requests[i].type] > 0);
	}
	char c;
	CHECK(recv(sv[1], &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
	CHECK(recv(sv[0], &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
	return CHECK_DONE();
}
