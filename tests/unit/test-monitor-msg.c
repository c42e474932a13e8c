/* The monitor's decoder: when each request is allowed. A well-formed request
 * of every type is decoded in each phase; it must be accepted exactly in the
 * phases it belongs to and refused with -EPERM in the others (file requests
 * before login, AUTH/USER/HOST/HANDSHAKE/CERT after it). */
#include <errno.h>
#include <stdint.h>
#include <syslog.h>

#include "build_config.h"
#include "check.h"
#include "ipc.h"
#include "monitor_msg.h"

#define BOTH (PHASE_PRELOGIN | PHASE_LOGGEDIN)

/* Fill m with a well-formed request of type t and return the phases it is
 * allowed in (0: never, e.g. an answer); -1 when t is no enum ipc_type.
 * There is no default: a type added to enum ipc_type and not here does not
 * compile (-Wswitch, -Werror), so it cannot go without a phase decision. */
static int build(struct ipc_msg *m, unsigned t)
{
	static const uint8_t part[] = { 1, 0, 0, 1, 0 };

	ipc_init(m, (enum ipc_type)t);
	switch ((enum ipc_type)t) {
	case IPC_LOG:
		ipc_put_u32(m, LOG_INFO);
		ipc_put_str(m, "a line");
		ipc_put_u32(m, IPC_EVENT_DATA_TLS_NOT_RESUMED);
		return BOTH;
	case IPC_SIGN:
		ipc_put_u32(m, 0);
		ipc_put_u32(m, IPC_SIGN_DATA);
		ipc_put_u32(m, 0);
		ipc_put_u32(m, 0);
		ipc_put_bytes(m, "to be signed", 12);
		return BOTH;
	case IPC_AUTH:
		ipc_put_str(m, "alice");
		ipc_put_str(m, "secret");
		ipc_put_u32(m, IPC_SESSION_TLS);
		return PHASE_PRELOGIN;
	case IPC_USER:
		ipc_put_str(m, "alice");
		ipc_put_u32(m, IPC_SESSION_TLS);
		return PHASE_PRELOGIN;
	case IPC_HOST:
		ipc_put_u32(m, 1);
		return PHASE_PRELOGIN;
	case IPC_HANDSHAKE:
		ipc_put_bytes(m, part, sizeof(part));
		return PHASE_PRELOGIN;
	case IPC_CERT:
		return PHASE_PRELOGIN;
	case IPC_QUOTA:
		return PHASE_LOGGEDIN;
	case IPC_STAT:
	case IPC_MKDIR:
	case IPC_RMDIR:
	case IPC_DELETE:
		ipc_put_str(m, "/dir/file");
		return PHASE_LOGGEDIN;
	case IPC_RENAME:
		ipc_put_str(m, "/a");
		ipc_put_str(m, "/b");
		return PHASE_LOGGEDIN;
	case IPC_CHMOD:
		ipc_put_str(m, "/a");
		ipc_put_u32(m, 0644);
		return PHASE_LOGGEDIN;
	case IPC_SETTIME:
		ipc_put_str(m, "/a");
		ipc_put_i64(m, 1700000000);
		return PHASE_LOGGEDIN;
	case IPC_OPEN:
		ipc_put_str(m, "/a");
		ipc_put_u32(m, IPC_OPEN_WRITE);
		ipc_put_u64(m, 0);
		return PHASE_LOGGEDIN;
	case IPC_UPLOAD_CHECK:
		ipc_put_str(m, "/a");
		ipc_put_u32(m, IPC_OPEN_APPEND);
		ipc_put_u64(m, 0);
		return PHASE_LOGGEDIN;
	case IPC_LIST:
		ipc_put_str(m, "/");
		ipc_put_u32(m, IPC_LIST_MLSD);
		ipc_put_u32(m, IPC_LIST_ALL | IPC_FACTS_ALL);
		ipc_put_str(m, "-a");
		return PHASE_LOGGEDIN;
	case IPC_TLS_INFO:
		ipc_put_str(m, "TLS1.3");
		ipc_put_str(m, "AES-128-GCM");
		return BOTH;
	case IPC_XFER:
		ipc_put_str(m, "/a");
		ipc_put_u32(m, IPC_XFER_RECEIVED);
		ipc_put_u64(m, 100);
		ipc_put_u64(m, 5);
		ipc_put_u32(m, IPC_XFER_COMPLETE);
		return PHASE_LOGGEDIN;
	case IPC_PROGRESS:
		ipc_put_u64(m, 1 << 20);
		return PHASE_LOGGEDIN;
	case IPC_CONNECT:
		ipc_put_u32(m, 40000);
		return PHASE_LOGGEDIN;
	case IPC_SHUTDOWN:
		/* The monitor's own word to the child; never a request. */
		return 0;
	case IPC_TEST_HOOK:
		ipc_put_u32(m, TEST_HOOK_MONITOR_OPEN);
		ipc_put_str(m, "/etc/passwd");
		/* Only test builds know it, and only after login (the hooks
		 * test the logged-in monitor's sandbox). */
		return FTPSD_TEST_HOOKS ? PHASE_LOGGEDIN : 0;
	case IPC_ANSWER:
		/* The monitor answers; the child never sends one. */
		ipc_put_i32(m, 0);
		return 0;
	}
	return -1;
}

static void test_phases(void)
{
	static const unsigned phases[] = { PHASE_PRELOGIN, PHASE_LOGGEDIN };
	static struct ipc_msg m;
	static struct mon_request r;
	unsigned known = 0, accepted[2] = { 0, 0 }, refused[2] = { 0, 0 };

	for (unsigned t = 0; t <= UINT16_MAX; t++) {
		for (size_t p = 0; p < sizeof(phases) / sizeof(phases[0]); p++) {
			int want = build(&m, t);
			int got;

			CHECK(!m.overflow);
			got = monitor_decode(&m, phases[p], &r);
			if (want <= 0) {
				if (got != -ENOTSUP)
					fprintf(stderr, "type %u, phase %u: %d, not -ENOTSUP\n", t, phases[p], got);
				CHECK(got == -ENOTSUP);
			} else if (want & (int)phases[p]) {
				if (got != 0)
					fprintf(stderr, "type %u refused in phase %u: %d\n", t, phases[p], got);
				CHECK(got == 0 && r.type == t);
				accepted[p]++;
			} else {
				if (got != -EPERM)
					fprintf(stderr, "type %u in phase %u: %d, not -EPERM\n", t, phases[p], got);
				CHECK(got == -EPERM);
				refused[p]++;
			}
			if (want >= 0 && p == 0)
				known++;
		}
	}
	/* Every type of enum ipc_type was built (IPC_LOG .. IPC_HANDSHAKE,
	 * IPC_UPLOAD_CHECK, IPC_PROGRESS, IPC_QUOTA, IPC_CONNECT, IPC_TEST_HOOK,
	 * IPC_ANSWER, IPC_SHUTDOWN) and the loop did run both ways. */
	CHECK(known == 25);
	CHECK(accepted[0] == 8 && refused[0] == 14 + FTPSD_TEST_HOOKS);
	CHECK(accepted[1] == 17 + FTPSD_TEST_HOOKS && refused[1] == 5);
}

/* The phase is checked before anything of the request is read: a file
 * request before login is refused as such even when it is malformed. */
static void test_phase_before_fields(void)
{
	static struct ipc_msg m;
	static struct mon_request r;

	ipc_init(&m, IPC_OPEN);
	CHECK(monitor_decode(&m, PHASE_PRELOGIN, &r) == -EPERM);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EBADMSG);
	ipc_init(&m, IPC_AUTH);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EPERM);
	CHECK(monitor_decode(&m, PHASE_PRELOGIN, &r) == -EBADMSG);
}

/* The phase does not excuse anything else: a descriptor that came along,
 * a byte too many. */
static void test_other_refusals(void)
{
	static struct ipc_msg m;
	static struct mon_request r;

	build(&m, IPC_STAT);
	m.fd = 0;
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EBADF);
	build(&m, IPC_STAT);
	ipc_put_u32(&m, 0);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EBADMSG);
	build(&m, IPC_CERT);
	ipc_put_u32(&m, 0);
	CHECK(monitor_decode(&m, PHASE_PRELOGIN, &r) == -EBADMSG);
}

/* A log line's event is one the monitor knows: the child cannot pick the
 * journal fields the monitor writes. */
static void test_log_events(void)
{
	static struct ipc_msg m;
	static struct mon_request r;

	build(&m, IPC_LOG);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == 0 &&
	      r.u.log.event == IPC_EVENT_DATA_TLS_NOT_RESUMED);
	ipc_init(&m, IPC_LOG);
	ipc_put_u32(&m, LOG_INFO);
	ipc_put_str(&m, "a line");
	ipc_put_u32(&m, IPC_EVENT_MAX + 1);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EBADMSG);
	ipc_init(&m, IPC_LOG);
	ipc_put_u32(&m, LOG_INFO);
	ipc_put_str(&m, "a line without its event");
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EBADMSG);
}

/* Active mode's port: never below 1024 (no FTP bounce to a privileged
 * service), never above 65535, whatever a child taken over asks. */
static void test_connect_ports(void)
{
	static struct ipc_msg m;
	static struct mon_request r;
	static const uint32_t bad[] = { 0, 25, 1023, 65536, UINT32_MAX };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ipc_init(&m, IPC_CONNECT);
		ipc_put_u32(&m, bad[i]);
		CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EBADMSG);
	}
	ipc_init(&m, IPC_CONNECT);
	ipc_put_u32(&m, 1024);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == 0 && r.u.port == 1024);
	ipc_init(&m, IPC_CONNECT);
	ipc_put_u32(&m, 65535);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == 0 && r.u.port == 65535);
}

int main(void)
{
	test_phases();
	test_connect_ports();
	test_phase_before_fields();
	test_other_refusals();
	test_log_events();
	return CHECK_DONE();
}
