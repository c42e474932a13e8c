#include "monitor_msg.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <syslog.h>

static const struct {
	enum ipc_type type;
	unsigned phases;
} allowed[] = {
	{ IPC_LOG, PHASE_PRELOGIN | PHASE_LOGGEDIN },
	{ IPC_SIGN, PHASE_PRELOGIN | PHASE_LOGGEDIN },
	{ IPC_AUTH, PHASE_PRELOGIN },
	{ IPC_USER, PHASE_PRELOGIN },
	{ IPC_HOST, PHASE_PRELOGIN },
	{ IPC_HANDSHAKE, PHASE_PRELOGIN },
	{ IPC_CERT, PHASE_PRELOGIN },
	{ IPC_STAT, PHASE_LOGGEDIN },
	{ IPC_OPEN, PHASE_LOGGEDIN },
	{ IPC_UPLOAD_CHECK, PHASE_LOGGEDIN },
	{ IPC_LIST, PHASE_LOGGEDIN },
	{ IPC_TLS_INFO, PHASE_PRELOGIN | PHASE_LOGGEDIN },
	{ IPC_XFER, PHASE_LOGGEDIN },
	{ IPC_MKDIR, PHASE_LOGGEDIN },
	{ IPC_RMDIR, PHASE_LOGGEDIN },
	{ IPC_DELETE, PHASE_LOGGEDIN },
	{ IPC_RENAME, PHASE_LOGGEDIN },
	{ IPC_CHMOD, PHASE_LOGGEDIN },
	{ IPC_SETTIME, PHASE_LOGGEDIN },
#if FTPSD_TEST_HOOKS
	{ IPC_TEST_HOOK, PHASE_LOGGEDIN },
#endif
};

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

static int decode_fields(struct ipc_msg *m, struct mon_request *r)
{
	switch (m->type) {
	case IPC_LOG:
		if (ipc_get_u32(m, &r->u.log.priority) < 0 ||
		    ipc_get_str(m, r->u.log.line, sizeof(r->u.log.line)) < 0 ||
		    ipc_get_u32(m, &r->u.log.event) < 0 || r->u.log.priority > LOG_DEBUG ||
		    r->u.log.event > IPC_EVENT_MAX)
			return -EBADMSG;
		return 0;
	case IPC_SIGN:
		if (ipc_get_u32(m, &r->u.sign.identity) < 0 || r->u.sign.identity >= IPC_MAX_IDENTITIES ||
		    ipc_get_u32(m, &r->u.sign.kind) < 0 || ipc_get_u32(m, &r->u.sign.algo) < 0 ||
		    ipc_get_u32(m, &r->u.sign.flags) < 0 ||
		    ipc_get_bytes(m, &r->u.sign.input, &r->u.sign.len, MON_MAX_SIGN_INPUT) < 0 ||
		    r->u.sign.kind > IPC_SIGN_HASH)
			return -EBADMSG;
		return 0;
	case IPC_AUTH:
		if (ipc_get_str(m, r->u.auth.user, sizeof(r->u.auth.user)) < 0 ||
		    ipc_get_str(m, r->u.auth.password, sizeof(r->u.auth.password)) < 0 ||
		    ipc_get_u32(m, &r->u.auth.session) < 0 || r->u.auth.user[0] == '\0' ||
		    (r->u.auth.session & ~(uint32_t)IPC_SESSION_TLS) != 0)
			return -EBADMSG;
		return 0;
	case IPC_USER:
		if (ipc_get_str(m, r->u.auth.user, sizeof(r->u.auth.user)) < 0 ||
		    ipc_get_u32(m, &r->u.auth.session) < 0 || r->u.auth.user[0] == '\0' ||
		    (r->u.auth.session & ~(uint32_t)IPC_SESSION_TLS) != 0)
			return -EBADMSG;
		return 0;
	case IPC_HANDSHAKE:
		if (ipc_get_bytes(m, &r->u.part.data, &r->u.part.len, IPC_MAX_PAYLOAD) < 0 ||
		    r->u.part.len == 0)
			return -EBADMSG;
		return 0;
	case IPC_CERT:
		return 0;
	case IPC_STAT:
	case IPC_MKDIR:
	case IPC_RMDIR:
	case IPC_DELETE:
		return get_path(m, r->u.file.path);
	case IPC_RENAME:
		if (get_path(m, r->u.file.path) < 0 || get_path(m, r->u.file.to) < 0)
			return -EBADMSG;
		return 0;
	case IPC_CHMOD:
		/* Permission bits only: the child refuses setuid, setgid and
		 * sticky modes itself, so one that sends them is not ours. */
		if (get_path(m, r->u.file.path) < 0 || ipc_get_u32(m, &r->u.file.mode) < 0 ||
		    r->u.file.mode > 0777)
			return -EBADMSG;
		return 0;
	case IPC_SETTIME:
		if (get_path(m, r->u.file.path) < 0 || ipc_get_i64(m, &r->u.file.mtime) < 0 ||
		    r->u.file.mtime < 0 || r->u.file.mtime > 253402300799LL)
			return -EBADMSG;
		return 0;
	case IPC_OPEN:
	case IPC_UPLOAD_CHECK:
		if (get_path(m, r->u.file.path) < 0 || ipc_get_u32(m, &r->u.file.how) < 0 ||
		    ipc_get_u64(m, &r->u.file.offset) < 0 || r->u.file.how > IPC_OPEN_SEND ||
		    r->u.file.offset > INT64_MAX ||
		    (r->u.file.offset != 0 && r->u.file.how != IPC_OPEN_WRITE &&
		     r->u.file.how != IPC_OPEN_SEND) ||
		    (m->type == IPC_UPLOAD_CHECK && r->u.file.how != IPC_OPEN_WRITE &&
		     r->u.file.how != IPC_OPEN_APPEND && r->u.file.how != IPC_OPEN_UNIQUE))
			return -EBADMSG;
		return 0;
	case IPC_LIST:
		if (get_path(m, r->u.file.path) < 0 || ipc_get_u32(m, &r->u.file.format) < 0 ||
		    ipc_get_u32(m, &r->u.file.flags) < 0 || r->u.file.format > IPC_LIST_MLSD ||
		    (r->u.file.flags & ~(uint32_t)(IPC_LIST_ALL | IPC_LIST_SELF | IPC_FACTS_ALL)) != 0 ||
		    ipc_get_str(m, r->u.file.to, sizeof(r->u.file.to)) < 0 ||
		    strpbrk(r->u.file.to, "\r\n") != NULL)
			return -EBADMSG;
		return 0;
	case IPC_TLS_INFO:
		if (ipc_get_str(m, r->u.tls.version, sizeof(r->u.tls.version)) < 0 ||
		    ipc_get_str(m, r->u.tls.cipher, sizeof(r->u.tls.cipher)) < 0 ||
		    !is_token(r->u.tls.version) || !is_token(r->u.tls.cipher))
			return -EBADMSG;
		return 0;
	case IPC_XFER:
		if (get_path(m, r->u.xfer.path) < 0 || ipc_get_u32(m, &r->u.xfer.direction) < 0 ||
		    ipc_get_u64(m, &r->u.xfer.bytes) < 0 || ipc_get_u64(m, &r->u.xfer.ms) < 0 ||
		    ipc_get_u32(m, &r->u.xfer.flags) < 0 || r->u.xfer.direction > IPC_XFER_RECEIVED ||
		    (r->u.xfer.flags & ~(uint32_t)(IPC_XFER_COMPLETE | IPC_XFER_ASCII | IPC_XFER_UNSURE)) != 0 ||
		    r->u.xfer.bytes > INT64_MAX)
			return -EBADMSG;
		return 0;
	case IPC_HOST:
		if (ipc_get_u32(m, &r->u.identity) < 0 || r->u.identity >= IPC_MAX_IDENTITIES)
			return -EBADMSG;
		return 0;
	case IPC_TEST_HOOK:
		return ipc_get_u32(m, &r->u.hook) < 0 ? -EBADMSG : 0;
	default:
		return -ENOTSUP;
	}
}

int monitor_decode(struct ipc_msg *m, unsigned phase, struct mon_request *r)
{
	size_t i;
	int ret;

	if (m->fd >= 0)
		return -EBADF;
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (allowed[i].type == m->type)
			break;
	if (i == sizeof(allowed) / sizeof(allowed[0]))
		return -ENOTSUP;
	if (!(allowed[i].phases & phase))
		return -EPERM;
	memset(r, 0, sizeof(*r));
	r->type = (enum ipc_type)m->type;
	ret = decode_fields(m, r);
	if (ret < 0)
		return ret;
	/* Exactly consumed: trailing bytes are as bad as missing ones. */
	return ipc_get_end(m) < 0 ? -EBADMSG : 0;
}
