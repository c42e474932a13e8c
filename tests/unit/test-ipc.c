/* IPC marshalling: round trips, exact consumption, and hostile datagrams. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "ipc.h"

int main(void)
{
	static struct ipc_msg m, r;
	int sv[2];
	char s[64];
	uint32_t u;
	uint64_t u64;
	int64_t i64;
	const uint8_t *p;
	size_t n;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	ipc_init(&m, IPC_OPEN);
	ipc_put_str(&m, "/a/b");
	ipc_put_u32(&m, 7);
	ipc_put_u64(&m, 1ULL << 40);
	ipc_put_i64(&m, -5);
	ipc_put_bytes(&m, "\0\1\2", 3);
	m.fd = STDIN_FILENO;
	CHECK(ipc_send(sv[0], &m) == 0);
	CHECK(ipc_recv(sv[1], &r) == 0);
	CHECK(r.type == IPC_OPEN);
	CHECK(r.fd >= 0);
	CHECK(ipc_get_str(&r, s, sizeof(s)) == 0);
	CHECK_STR(s, "/a/b");
	CHECK(ipc_get_u32(&r, &u) == 0 && u == 7);
	CHECK(ipc_get_u64(&r, &u64) == 0 && u64 == 1ULL << 40);
	CHECK(ipc_get_i64(&r, &i64) == 0 && i64 == -5);
	CHECK(ipc_get_end(&r) == -EBADMSG);
	CHECK(ipc_get_bytes(&r, &p, &n, 16) == 0 && n == 3 && p[2] == 2);
	CHECK(ipc_get_end(&r) == 0);
	CHECK(ipc_get_u32(&r, &u) == -EBADMSG);
	close(r.fd);

	/* A string with a NUL inside, or longer than the room for it. */
	ipc_init(&m, IPC_STAT);
	ipc_put_bytes(&m, "a\0b", 3);
	CHECK(ipc_send(sv[0], &m) == 0);
	CHECK(ipc_recv(sv[1], &r) == 0);
	CHECK(ipc_get_str(&r, s, sizeof(s)) == -EBADMSG);
	ipc_init(&m, IPC_STAT);
	ipc_put_str(&m, "0123456789");
	CHECK(ipc_send(sv[0], &m) == 0);
	CHECK(ipc_recv(sv[1], &r) == 0);
	CHECK(ipc_get_str(&r, s, 5) == -EBADMSG);

	/* A length field that points past the end. */
	uint8_t raw[16] = { IPC_STAT, 0, 0, 0, 8, 0, 0, 0, 0xff, 0xff, 0, 0, 'a', 'b', 'c', 'd' };
	CHECK(ipc_decode(&r, raw, sizeof(raw)) == 0);
	CHECK(ipc_get_str(&r, s, sizeof(s)) == -EBADMSG);
	/* Header length that disagrees with the datagram, nonzero reserved bytes. */
	raw[4] = 9;
	CHECK(ipc_decode(&r, raw, sizeof(raw)) == -EBADMSG);
	raw[4] = 8;
	raw[2] = 1;
	CHECK(ipc_decode(&r, raw, sizeof(raw)) == -EBADMSG);
	CHECK(ipc_decode(&r, raw, 3) == -EBADMSG);

	/* Overflowing a message is caught at send time, never truncated. */
	static char big[IPC_MAX_PAYLOAD];
	ipc_init(&m, IPC_LOG);
	ipc_put_bytes(&m, big, sizeof(big));
	CHECK(m.overflow);
	CHECK(ipc_send(sv[0], &m) == -EMSGSIZE);

	/* EOF */
	close(sv[0]);
	CHECK(ipc_recv(sv[1], &r) == -ECONNRESET);
	return CHECK_DONE();
}
