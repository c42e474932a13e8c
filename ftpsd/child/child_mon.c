#include "child_mon.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"

static int mm_fd = -1;
static int mm_timeout_ms = -1;
static void (*mm_silent)(void);
static struct ipc_msg mm_msg;
/* The monitor sent IPC_SHUTDOWN: the session must end. */
static bool mm_shutdown;

static _Noreturn void mm_broken(void);

void mm_init(int fd)
{
	mm_fd = fd;
}

void mm_set_timeout(unsigned ms, void (*silent)(void))
{
	mm_timeout_ms = ms > 0x7fffffffu ? 0x7fffffff : (int)ms;
	mm_silent = silent;
}

int mm_socket(void)
{
	return mm_fd;
}

bool mm_shutdown_asked(bool readable)
{
	if (!mm_shutdown && readable) {
		if (ipc_recv(mm_fd, &mm_msg) < 0)
			return false;
		if (mm_msg.type != IPC_SHUTDOWN || mm_msg.len != 0 || mm_msg.fd >= 0)
			mm_broken();
		mm_shutdown = true;
	}
	return mm_shutdown;
}

/* The monitor is gone or spoke nonsense: nothing sensible is left to do,
 * and logging would need the very channel that failed. */
static _Noreturn void mm_broken(void)
{
	_exit(2);
}

static struct ipc_msg *mm_call(struct ipc_msg *m)
{
	struct pollfd p = { .fd = mm_fd, .events = POLLIN };
	int r;

	if (ipc_send(mm_fd, m) < 0)
		mm_broken();
	for (;;) {
		/* A monitor that does not answer (stopped, stuck) must not keep the
		 * session open past its idle timeout. */
		do
			r = poll(&p, 1, mm_timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0 && mm_silent != NULL)
			mm_silent();
		if (r <= 0)
			mm_broken();
		if (ipc_recv(mm_fd, m) < 0)
			mm_broken();
		/* Told to end while asking: noted, and the answer still comes. */
		if (m->type == IPC_SHUTDOWN && m->len == 0 && m->fd < 0 && !mm_shutdown) {
			mm_shutdown = true;
			continue;
		}
		if (m->type != IPC_ANSWER)
			mm_broken();
		return m;
	}
}

static int rc_call(void);

void mm_event(unsigned event, int priority, const char *line)
{
	ipc_init(&mm_msg, IPC_LOG);
	ipc_put_u32(&mm_msg, (uint32_t)priority);
	ipc_put_str(&mm_msg, line);
	ipc_put_u32(&mm_msg, event);
	(void)rc_call();
}

void mm_log(int priority, const char *line)
{
	mm_event(IPC_EVENT_NONE, priority, line);
}

static int32_t get_rc(struct ipc_msg *m)
{
	int32_t rc;

	if (ipc_get_i32(m, &rc) < 0)
		mm_broken();
	return rc;
}

static void no_fd(struct ipc_msg *m)
{
	if (m->fd >= 0)
		mm_broken();
}

int mm_sign(unsigned identity, unsigned kind, unsigned algo, unsigned flags, const void *in,
	    size_t n, uint8_t *out, size_t *outlen, size_t max)
{
	const uint8_t *sig;
	size_t len;

	ipc_init(&mm_msg, IPC_SIGN);
	ipc_put_u32(&mm_msg, identity);
	ipc_put_u32(&mm_msg, kind);
	ipc_put_u32(&mm_msg, algo);
	ipc_put_u32(&mm_msg, flags);
	ipc_put_bytes(&mm_msg, in, n);
	struct ipc_msg *a = mm_call(&mm_msg);
	no_fd(a);
	int32_t rc = get_rc(a);
	if (ipc_get_bytes(a, &sig, &len, max) < 0 || ipc_get_end(a) < 0)
		mm_broken();
	if (rc < 0)
		return rc;
	memcpy(out, sig, len);
	*outlen = len;
	return 0;
}

/* The rest of a login answer: flags and the ticket key. */
static void get_login(struct ipc_msg *a, struct mm_login *login)
{
	uint32_t f;
	const uint8_t *key;
	size_t len;

	if (ipc_get_u32(a, &f) < 0 || ipc_get_bytes(a, &key, &len, IPC_TICKET_KEY) < 0 ||
	    (len != 0 && len != IPC_TICKET_KEY))
		mm_broken();
	login->flags = f;
	memcpy(login->ticket_key, key, len);
	login->ticket_key_len = len;
}

int mm_auth(const char *user, const char *password, bool tls, struct mm_login *login)
{
	ipc_init(&mm_msg, IPC_AUTH);
	ipc_put_str(&mm_msg, user);
	ipc_put_str(&mm_msg, password);
	ipc_put_u32(&mm_msg, tls ? IPC_SESSION_TLS : 0);
	struct ipc_msg *a = mm_call(&mm_msg);
	no_fd(a);
	int32_t rc = get_rc(a);
	if (rc == 0)
		get_login(a, login);
	if (rc == IPC_AUTH_TOO_MANY && ipc_get_str(a, login->refusal, sizeof(login->refusal)) < 0)
		mm_broken();
	if (ipc_get_end(a) < 0)
		mm_broken();
	return rc;
}

int mm_stat(const char *path, struct mm_stat *st)
{
	ipc_init(&mm_msg, IPC_STAT);
	ipc_put_str(&mm_msg, path);
	struct ipc_msg *a = mm_call(&mm_msg);
	no_fd(a);
	int32_t rc = get_rc(a);
	if (ipc_get_u32(a, &st->mode) < 0 || ipc_get_u64(a, &st->size) < 0 ||
	    ipc_get_i64(a, &st->mtime) < 0 || ipc_get_end(a) < 0)
		mm_broken();
	return rc;
}

int mm_open(const char *path, unsigned how, uint64_t offset, int *fd, uint64_t *size,
	    uint64_t *allowance)
{
	uint64_t allow;

	ipc_init(&mm_msg, IPC_OPEN);
	ipc_put_str(&mm_msg, path);
	ipc_put_u32(&mm_msg, how);
	ipc_put_u64(&mm_msg, offset);
	struct ipc_msg *a = mm_call(&mm_msg);
	int32_t rc = get_rc(a);
	if (ipc_get_u64(a, size) < 0 || ipc_get_u64(a, &allow) < 0 || ipc_get_end(a) < 0 ||
	    (rc == 0) != (a->fd >= 0))
		mm_broken();
	*fd = a->fd;
	if (allowance != NULL)
		*allowance = allow;
	return rc;
}

int mm_upload_check(const char *path, unsigned how, uint64_t offset)
{
	ipc_init(&mm_msg, IPC_UPLOAD_CHECK);
	ipc_put_str(&mm_msg, path);
	ipc_put_u32(&mm_msg, how);
	ipc_put_u64(&mm_msg, offset);
	return rc_call();
}

int mm_quota(struct mm_quota *q)
{
	ipc_init(&mm_msg, IPC_QUOTA);
	struct ipc_msg *a = mm_call(&mm_msg);
	no_fd(a);
	int32_t rc = get_rc(a);
	if (ipc_get_u64(a, &q->bytes) < 0 || ipc_get_u64(a, &q->max_bytes) < 0 ||
	    ipc_get_u64(a, &q->files) < 0 || ipc_get_u64(a, &q->max_files) < 0 ||
	    ipc_get_end(a) < 0)
		mm_broken();
	return rc;
}

int mm_connect(unsigned port, int *fd)
{
	ipc_init(&mm_msg, IPC_CONNECT);
	ipc_put_u32(&mm_msg, port);
	struct ipc_msg *a = mm_call(&mm_msg);
	int32_t rc = get_rc(a);
	if (ipc_get_end(a) < 0 || (rc == 0) != (a->fd >= 0))
		mm_broken();
	*fd = a->fd;
	return rc;
}

int mm_list(const char *path, unsigned format, unsigned flags, const char *arg, int *fd)
{
	ipc_init(&mm_msg, IPC_LIST);
	ipc_put_str(&mm_msg, path);
	ipc_put_u32(&mm_msg, format);
	ipc_put_u32(&mm_msg, flags);
	ipc_put_str(&mm_msg, arg);
	struct ipc_msg *a = mm_call(&mm_msg);
	int32_t rc = get_rc(a);
	if (ipc_get_end(a) < 0 || (rc == 0) != (a->fd >= 0))
		mm_broken();
	*fd = a->fd;
	return rc;
}


/* Send a built request whose answer is a bare result code. */
static int rc_call(void)
{
	struct ipc_msg *a = mm_call(&mm_msg);
	no_fd(a);
	int32_t rc = get_rc(a);
	if (ipc_get_end(a) < 0)
		mm_broken();
	return rc;
}

int mm_path_op(unsigned type, const char *path)
{
	ipc_init(&mm_msg, (enum ipc_type)type);
	ipc_put_str(&mm_msg, path);
	return rc_call();
}

int mm_rename(const char *from, const char *to)
{
	ipc_init(&mm_msg, IPC_RENAME);
	ipc_put_str(&mm_msg, from);
	ipc_put_str(&mm_msg, to);
	return rc_call();
}

int mm_chmod(const char *path, unsigned mode)
{
	ipc_init(&mm_msg, IPC_CHMOD);
	ipc_put_str(&mm_msg, path);
	ipc_put_u32(&mm_msg, mode);
	return rc_call();
}

int mm_settime(const char *path, int64_t mtime)
{
	ipc_init(&mm_msg, IPC_SETTIME);
	ipc_put_str(&mm_msg, path);
	ipc_put_i64(&mm_msg, mtime);
	return rc_call();
}

int mm_test_hook(unsigned hook, const char *path)
{
	ipc_init(&mm_msg, IPC_TEST_HOOK);
	ipc_put_u32(&mm_msg, hook);
	ipc_put_str(&mm_msg, path);
	return rc_call();
}

void mm_tls_info(const char *version, const char *cipher)
{
	ipc_init(&mm_msg, IPC_TLS_INFO);
	ipc_put_str(&mm_msg, version);
	ipc_put_str(&mm_msg, cipher);
	(void)rc_call();
}

int mm_xfer(const char *path, unsigned direction, uint64_t bytes, uint64_t ms, unsigned flags)
{
	ipc_init(&mm_msg, IPC_XFER);
	ipc_put_str(&mm_msg, path);
	ipc_put_u32(&mm_msg, direction);
	ipc_put_u64(&mm_msg, bytes);
	ipc_put_u64(&mm_msg, ms);
	ipc_put_u32(&mm_msg, flags);
	return rc_call();
}

int mm_user(const char *user, bool tls, struct mm_login *login)
{
	ipc_init(&mm_msg, IPC_USER);
	ipc_put_str(&mm_msg, user);
	ipc_put_u32(&mm_msg, tls ? IPC_SESSION_TLS : 0);
	struct ipc_msg *a = mm_call(&mm_msg);
	no_fd(a);
	int32_t rc = get_rc(a);
	if (rc == IPC_USER_LOGGED_IN)
		get_login(a, login);
	if (rc == IPC_AUTH_TOO_MANY && ipc_get_str(a, login->refusal, sizeof(login->refusal)) < 0)
		mm_broken();
	if (ipc_get_end(a) < 0)
		mm_broken();
	return rc;
}

int mm_cert(const uint8_t *msgs, size_t len)
{
	/* In parts that each fit a message with its length field. */
	const size_t part = IPC_MAX_PAYLOAD - 16;

	for (size_t off = 0; off < len; off += part) {
		ipc_init(&mm_msg, IPC_HANDSHAKE);
		ipc_put_bytes(&mm_msg, msgs + off, len - off < part ? len - off : part);
		if (mm_msg.overflow || rc_call() < 0)
			mm_broken();
	}
	ipc_init(&mm_msg, IPC_CERT);
	return rc_call();
}

void mm_host(unsigned identity)
{
	ipc_init(&mm_msg, IPC_HOST);
	ipc_put_u32(&mm_msg, identity);
	(void)rc_call();
}

uint64_t mm_progress(uint64_t bytes)
{
	uint64_t rate;

	ipc_init(&mm_msg, IPC_PROGRESS);
	ipc_put_u64(&mm_msg, bytes);
	struct ipc_msg *a = mm_call(&mm_msg);
	no_fd(a);
	int32_t rc = get_rc(a);
	if (rc != 0 || ipc_get_u64(a, &rate) < 0 || ipc_get_end(a) < 0)
		mm_broken();
	return rate;
}
