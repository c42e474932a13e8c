#include "ipc.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IPC_HEADER 8

void ipc_init(struct ipc_msg *m, enum ipc_type type)
{
	m->type = (uint16_t)type;
	m->len = 0;
	m->pos = 0;
	m->overflow = false;
	m->fd = -1;
}

static void put(struct ipc_msg *m, const void *p, size_t n)
{
	if (m->overflow || n > IPC_MAX_PAYLOAD - m->len) {
		m->overflow = true;
		return;
	}
	memcpy(m->payload + m->len, p, n);
	m->len += n;
}

void ipc_put_u32(struct ipc_msg *m, uint32_t v)
{
	put(m, &v, sizeof(v));
}

void ipc_put_i32(struct ipc_msg *m, int32_t v)
{
	put(m, &v, sizeof(v));
}

void ipc_put_u64(struct ipc_msg *m, uint64_t v)
{
	put(m, &v, sizeof(v));
}

void ipc_put_i64(struct ipc_msg *m, int64_t v)
{
	put(m, &v, sizeof(v));
}

void ipc_put_bytes(struct ipc_msg *m, const void *p, size_t n)
{
	if (n > IPC_MAX_PAYLOAD) {
		m->overflow = true;
		return;
	}
	ipc_put_u32(m, (uint32_t)n);
	put(m, p, n);
}

void ipc_put_str(struct ipc_msg *m, const char *s)
{
	ipc_put_bytes(m, s, strlen(s));
}

static int get(struct ipc_msg *m, void *p, size_t n)
{
	if (n > m->len - m->pos)
		return -EBADMSG;
	memcpy(p, m->payload + m->pos, n);
	m->pos += n;
	return 0;
}

int ipc_get_u32(struct ipc_msg *m, uint32_t *v)
{
	return get(m, v, sizeof(*v));
}

int ipc_get_i32(struct ipc_msg *m, int32_t *v)
{
	return get(m, v, sizeof(*v));
}

int ipc_get_u64(struct ipc_msg *m, uint64_t *v)
{
	return get(m, v, sizeof(*v));
}

int ipc_get_i64(struct ipc_msg *m, int64_t *v)
{
	return get(m, v, sizeof(*v));
}

int ipc_get_bytes(struct ipc_msg *m, const uint8_t **p, size_t *n, size_t max)
{
	uint32_t len;

	if (ipc_get_u32(m, &len) < 0)
		return -EBADMSG;
	if (len > max || len > m->len - m->pos)
		return -EBADMSG;
	*p = m->payload + m->pos;
	*n = len;
	m->pos += len;
	return 0;
}

int ipc_get_str(struct ipc_msg *m, char *out, size_t size)
{
	const uint8_t *p;
	size_t n;

	if (size == 0 || ipc_get_bytes(m, &p, &n, size - 1) < 0)
		return -EBADMSG;
	if (memchr(p, '\0', n) != NULL)
		return -EBADMSG;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int ipc_get_end(const struct ipc_msg *m)
{
	return m->pos == m->len ? 0 : -EBADMSG;
}

int ipc_decode(struct ipc_msg *m, const uint8_t *buf, size_t n)
{
	uint16_t type, zero;
	uint32_t len;

	if (n < IPC_HEADER)
		return -EBADMSG;
	memcpy(&type, buf, 2);
	memcpy(&zero, buf + 2, 2);
	memcpy(&len, buf + 4, 4);
	if (zero != 0 || len != n - IPC_HEADER || len > IPC_MAX_PAYLOAD)
		return -EBADMSG;
	ipc_init(m, (enum ipc_type)type);
	memcpy(m->payload, buf + IPC_HEADER, len);
	m->len = len;
	return 0;
}

int ipc_send(int sock, const struct ipc_msg *m)
{
	uint8_t header[IPC_HEADER];
	uint16_t zero = 0;
	uint32_t len = (uint32_t)m->len;
	struct iovec iov[2] = {
		{ .iov_base = header, .iov_len = sizeof(header) },
		{ .iov_base = (void *)m->payload, .iov_len = m->len },
	};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t r;

	if (m->overflow)
		return -EMSGSIZE;
	memcpy(header, &m->type, 2);
	memcpy(header + 2, &zero, 2);
	memcpy(header + 4, &len, 4);
	if (m->fd >= 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &m->fd, sizeof(int));
	}
	do
		r = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if ((size_t)r != sizeof(header) + m->len)
		return -EIO;
	return 0;
}

int ipc_recv(int sock, struct ipc_msg *m)
{
	static uint8_t buf[IPC_HEADER + IPC_MAX_PAYLOAD + 1];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	int fd = -1, r;
	ssize_t n;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0) {
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			/* More descriptors than the protocol allows: close them all. */
			size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < count; i++) {
				int extra;
				memcpy(&extra, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(extra);
			}
			if (fd >= 0)
				close(fd);
			return -EBADMSG;
		}
	}
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
		if (fd >= 0)
			close(fd);
		return -EBADMSG;
	}
	r = ipc_decode(m, buf, (size_t)n);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	m->fd = fd;
	return 0;
}
