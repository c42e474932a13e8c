/* PROXY protocol headers, v1 and v2, whole, partial and hostile. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "check.h"
#include "proxy.h"

static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

int main(void)
{
	struct sockaddr_storage src;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&src;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&src;
	bool local;
	char buf[64];

	const char *h1 = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\nUSER x\r\n";
	CHECK(proxy_parse((const uint8_t *)h1, strlen(h1), &src, &local) == 44);
	CHECK(!local && v4->sin_family == AF_INET && ntohs(v4->sin_port) == 40000);
	CHECK_STR(inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf)), "192.0.2.7");
	/* Incomplete: ask for more. */
	CHECK(proxy_parse((const uint8_t *)h1, 20, &src, &local) == 0);
	CHECK(proxy_parse((const uint8_t *)"PRO", 3, &src, &local) == 0);
	const char *h6 = "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
	CHECK(proxy_parse((const uint8_t *)h6, strlen(h6), &src, &local) == (int)strlen(h6));
	CHECK(v6->sin6_family == AF_INET6);
	const char *unk = "PROXY UNKNOWN\r\n";
	CHECK(proxy_parse((const uint8_t *)unk, strlen(unk), &src, &local) == 15 && local);
	/* v1 is at most 107 bytes with its CRLF: 107 parses, 108 does not, and
	 * neither does its 107-byte prefix (found by fuzz-proxy). */
	char u[109];
	memset(u, 'x', sizeof(u));
	memcpy(u, "PROXY UNKNOWN ", 14);
	memcpy(u + 105, "\r\n", 2);
	CHECK(proxy_parse((const uint8_t *)u, 107, &src, &local) == 107 && local);
	memset(u, 'x', sizeof(u));
	memcpy(u, "PROXY UNKNOWN ", 14);
	memcpy(u + 106, "\r\n", 2);
	CHECK(proxy_parse((const uint8_t *)u, 107, &src, &local) == -EINVAL);
	CHECK(proxy_parse((const uint8_t *)u, 108, &src, &local) == -EINVAL);

	static const char *bad[] = {
		"USER alice\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",
		"PROXY TCP4 300.0.2.7 198.51.100.1 40000 21\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 70000 21\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 040000 21\r\n",
		"PROXY UDP4 192.0.2.7 198.51.100.1 4 21\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 4 21 extra\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(proxy_parse((const uint8_t *)bad[i], strlen(bad[i]), &src, &local) == -EINVAL);
	uint8_t longline[120];
	memcpy(longline, "PROXY ", 6);
	memset(longline + 6, 'A', sizeof(longline) - 6);
	CHECK(proxy_parse(longline, sizeof(longline), &src, &local) == -EINVAL);

	/* v2, TCP over IPv4, with a TLV after the addresses. */
	uint8_t v2[16 + 12 + 4];
	memcpy(v2, sig, 12);
	v2[12] = 0x21;
	v2[13] = 0x11;
	v2[14] = 0;
	v2[15] = 16;
	uint8_t addrs[12] = { 127, 0, 0, 3, 127, 0, 0, 1, 0x9c, 0x40, 0, 21 };
	memcpy(v2 + 16, addrs, 12);
	memset(v2 + 28, 0, 4);
	CHECK(proxy_parse(v2, sizeof(v2), &src, &local) == 32);
	CHECK(!local && ntohs(v4->sin_port) == 40000);
	CHECK_STR(inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf)), "127.0.0.3");
	CHECK(proxy_parse(v2, 20, &src, &local) == 0);
	v2[12] = 0x20; /* LOCAL */
	CHECK(proxy_parse(v2, sizeof(v2), &src, &local) == 32 && local);
	v2[12] = 0x31; /* version 3 */
	CHECK(proxy_parse(v2, sizeof(v2), &src, &local) == -EINVAL);
	v2[12] = 0x21;
	v2[15] = 8; /* too short for two IPv4 addresses and ports */
	CHECK(proxy_parse(v2, sizeof(v2), &src, &local) == -EINVAL);
	v2[14] = 0xff; /* longer than any balancer sends */
	CHECK(proxy_parse(v2, sizeof(v2), &src, &local) == -EINVAL);

	/* The list of trusted balancers. */
	struct sockaddr_storage a = { 0 };
	struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
	a4->sin_family = AF_INET;
	inet_pton(AF_INET, "10.0.0.2", &a4->sin_addr);
	CHECK(proxy_address_listed("10.0.0.1, 10.0.0.2", &a) == 1);
	CHECK(proxy_address_listed("10.0.0.1,::ffff:10.0.0.2", &a) == 1);
	CHECK(proxy_address_listed("10.0.0.1", &a) == 0);
	CHECK(proxy_address_listed("10.0.0.1,not-an-address", &a) == -EINVAL);
	return CHECK_DONE();
}
