#include "monitor_msg.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <syslog.h>

static int get_path(struct ipc_msg *m, char *path)
{
	if (ipc_get_str(m, path, IPC_MAX_PATH) < 0 || path[0] != '/')
		return -EBADMSG;
	return 0;
}

/* Short names such as "TLS1.3" or "AES-128-GCM": printable, no spaces. */
static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

int mon_decode_log(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_u32(m, &r->u.log.priority) < 0 ||
	    ipc_get_str(m, r->u.log.line, sizeof(r->u.log.line)) < 0 ||
	    ipc_get_u32(m, &r->u.log.event) < 0 || r->u.log.priority > LOG_DEBUG ||
	    r->u.log.event > IPC_EVENT_MAX)
		return -EBADMSG;
	return 0;
}

int mon_decode_sign(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_u32(m, &r->u.sign.identity) < 0 || r->u.sign.identity >= IPC_MAX_IDENTITIES ||
	    ipc_get_u32(m, &r->u.sign.kind) < 0 || ipc_get_u32(m, &r->u.sign.algo) < 0 ||
	    ipc_get_u32(m, &r->u.sign.flags) < 0 ||
	    ipc_get_bytes(m, &r->u.sign.input, &r->u.sign.len, MON_MAX_SIGN_INPUT) < 0 ||
	    r->u.sign.kind > IPC_SIGN_HASH)
		return -EBADMSG;
	return 0;
}

int mon_decode_auth(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_str(m, r->u.auth.user, sizeof(r->u.auth.user)) < 0 ||
	    ipc_get_str(m, r->u.auth.password, sizeof(r->u.auth.password)) < 0 ||
	    ipc_get_u32(m, &r->u.auth.session) < 0 || r->u.auth.user[0] == '\0' ||
	    (r->u.auth.session & ~(uint32_t)IPC_SESSION_TLS) != 0)
		return -EBADMSG;
	return 0;
}

int mon_decode_user(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_str(m, r->u.auth.user, sizeof(r->u.auth.user)) < 0 ||
	    ipc_get_u32(m, &r->u.auth.session) < 0 || r->u.auth.user[0] == '\0' ||
	    (r->u.auth.session & ~(uint32_t)IPC_SESSION_TLS) != 0)
		return -EBADMSG;
	return 0;
}

int mon_decode_handshake(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_bytes(m, &r->u.part.data, &r->u.part.len, IPC_MAX_PAYLOAD) < 0 ||
	    r->u.part.len == 0)
		return -EBADMSG;
	return 0;
}

int mon_decode_cert(struct ipc_msg *m, struct mon_request *r)
{
	(void)m;
	(void)r;
	return 0;
}

int mon_decode_none(struct ipc_msg *m, struct mon_request *r)
{
	(void)m;
	(void)r;
	return 0;
}

int mon_decode_host(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_u32(m, &r->u.identity) < 0 || r->u.identity >= IPC_MAX_IDENTITIES)
		return -EBADMSG;
	return 0;
}

int mon_decode_path(struct ipc_msg *m, struct mon_request *r)
{
	return get_path(m, r->u.file.path);
}

int mon_decode_rename(struct ipc_msg *m, struct mon_request *r)
{
	if (get_path(m, r->u.file.path) < 0 || get_path(m, r->u.file.to) < 0)
		return -EBADMSG;
	return 0;
}

int mon_decode_chmod(struct ipc_msg *m, struct mon_request *r)
{
	/* Permission bits only: the child refuses setuid, setgid and sticky
	 * modes itself, so one that sends them is not ours. */
	if (get_path(m, r->u.file.path) < 0 || ipc_get_u32(m, &r->u.file.mode) < 0 ||
	    r->u.file.mode > 0777)
		return -EBADMSG;
	return 0;
}

int mon_decode_settime(struct ipc_msg *m, struct mon_request *r)
{
	if (get_path(m, r->u.file.path) < 0 || ipc_get_i64(m, &r->u.file.mtime) < 0 ||
	    r->u.file.mtime < 0 || r->u.file.mtime > 253402300799LL)
		return -EBADMSG;
	return 0;
}

/* A path, how and offset: an offset only where it means something (a
 * restarted STOR or RETR). */
static int decode_open_fields(struct ipc_msg *m, struct mon_request *r)
{
	if (get_path(m, r->u.file.path) < 0 || ipc_get_u32(m, &r->u.file.how) < 0 ||
	    ipc_get_u64(m, &r->u.file.offset) < 0 || r->u.file.how > IPC_OPEN_SEND ||
	    r->u.file.offset > INT64_MAX ||
	    (r->u.file.offset != 0 && r->u.file.how != IPC_OPEN_WRITE &&
	     r->u.file.how != IPC_OPEN_SEND))
		return -EBADMSG;
	return 0;
}

int mon_decode_open(struct ipc_msg *m, struct mon_request *r)
{
	return decode_open_fields(m, r);
}

int mon_decode_upload_check(struct ipc_msg *m, struct mon_request *r)
{
	if (decode_open_fields(m, r) < 0 ||
	    (r->u.file.how != IPC_OPEN_WRITE && r->u.file.how != IPC_OPEN_APPEND &&
	     r->u.file.how != IPC_OPEN_UNIQUE))
		return -EBADMSG;
	return 0;
}

int mon_decode_list(struct ipc_msg *m, struct mon_request *r)
{
	if (get_path(m, r->u.file.path) < 0 || ipc_get_u32(m, &r->u.file.format) < 0 ||
	    ipc_get_u32(m, &r->u.file.flags) < 0 || r->u.file.format > IPC_LIST_MLSD ||
	    (r->u.file.flags & ~(uint32_t)(IPC_LIST_ALL | IPC_LIST_SELF | IPC_FACTS_ALL)) != 0 ||
	    ipc_get_str(m, r->u.file.to, sizeof(r->u.file.to)) < 0 ||
	    strpbrk(r->u.file.to, "\r\n") != NULL)
		return -EBADMSG;
	return 0;
}

int mon_decode_tls_info(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_str(m, r->u.tls.version, sizeof(r->u.tls.version)) < 0 ||
	    ipc_get_str(m, r->u.tls.cipher, sizeof(r->u.tls.cipher)) < 0 ||
	    !is_token(r->u.tls.version) || !is_token(r->u.tls.cipher))
		return -EBADMSG;
	return 0;
}

int mon_decode_xfer(struct ipc_msg *m, struct mon_request *r)
{
	if (get_path(m, r->u.xfer.path) < 0 || ipc_get_u32(m, &r->u.xfer.direction) < 0 ||
	    ipc_get_u64(m, &r->u.xfer.bytes) < 0 || ipc_get_u64(m, &r->u.xfer.ms) < 0 ||
	    ipc_get_u32(m, &r->u.xfer.flags) < 0 || r->u.xfer.direction > IPC_XFER_RECEIVED ||
	    (r->u.xfer.flags & ~(uint32_t)(IPC_XFER_COMPLETE | IPC_XFER_ASCII | IPC_XFER_UNSURE)) != 0 ||
	    r->u.xfer.bytes > INT64_MAX)
		return -EBADMSG;
	return 0;
}

int mon_decode_progress(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_u64(m, &r->u.progress) < 0 || r->u.progress > INT64_MAX)
		return -EBADMSG;
	return 0;
}

/* Never below 1024 (the child checks PORT and EPRT alike): no FTP bounce to
 * a privileged service of the client's host. */
int mon_decode_connect(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_u32(m, &r->u.port) < 0 || r->u.port < 1024 || r->u.port > 65535)
		return -EBADMSG;
	return 0;
}

#if FTPSD_TEST_HOOKS
int mon_decode_test_hook(struct ipc_msg *m, struct mon_request *r)
{
	if (ipc_get_u32(m, &r->u.hook.n) < 0 ||
	    ipc_get_str(m, r->u.hook.path, sizeof(r->u.hook.path)) < 0)
		return -EBADMSG;
	return 0;
}
#endif

int monitor_decode(struct ipc_msg *m, unsigned phase, struct mon_request *r)
{
	const struct mon_dispatch *d;
	int ret;

	if (m->fd >= 0)
		return -EBADF;
	d = monitor_request(m->type);
	if (d == NULL)
		return -ENOTSUP;
	if (!(d->phases & phase))
		return -EPERM;
	memset(r, 0, sizeof(*r));
	r->type = (enum ipc_type)m->type;
	ret = d->decode(m, r);
	if (ret < 0)
		return ret;
	/* Exactly consumed: trailing bytes are as bad as missing ones. */
	return ipc_get_end(m) < 0 ? -EBADMSG : 0;
}
