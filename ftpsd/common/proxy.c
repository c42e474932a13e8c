#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v2_signature[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0'))
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct sockaddr_storage *src, bool *local)
{
	char line[108], *f[6], *save = NULL;
	const uint8_t *crlf = NULL;
	int n = 0;

	/* At most 107 bytes with the CRLF: CR at 105 at the latest. */
	for (size_t i = 0; i + 1 < len && i < 106; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n') {
			crlf = buf + i;
			break;
		}
	if (crlf == NULL)
		return len >= 107 ? -EINVAL : 0;
	size_t hlen = (size_t)(crlf - buf) + 2;
	memcpy(line, buf, hlen - 2);
	line[hlen - 2] = '\0';
	if (memchr(line, '\0', hlen - 2) != NULL)
		return -EINVAL;
	for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (n == 6)
			return -EINVAL;
		f[n++] = t;
	}
	if (n < 2 || strcmp(f[0], "PROXY") != 0)
		return -EINVAL;
	if (strcmp(f[1], "UNKNOWN") == 0) {
		*local = true;
		return (int)hlen;
	}
	if (n != 6)
		return -EINVAL;
	uint16_t sport, dport;
	if (parse_port(f[4], &sport) < 0 || parse_port(f[5], &dport) < 0)
		return -EINVAL;
	memset(src, 0, sizeof(*src));
	if (strcmp(f[1], "TCP4") == 0) {
		struct sockaddr_in *a = (struct sockaddr_in *)src;
		struct in_addr d;
		if (inet_pton(AF_INET, f[2], &a->sin_addr) != 1 || inet_pton(AF_INET, f[3], &d) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons(sport);
	} else if (strcmp(f[1], "TCP6") == 0) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)src;
		struct in6_addr d;
		if (inet_pton(AF_INET6, f[2], &a->sin6_addr) != 1 || inet_pton(AF_INET6, f[3], &d) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(sport);
	} else {
		return -EINVAL;
	}
	*local = false;
	return (int)hlen;
}

static int parse_v2(const uint8_t *buf, size_t len, struct sockaddr_storage *src, bool *local)
{
	if (len < 16)
		return 0;
	uint8_t ver_cmd = buf[12], fam = buf[13];
	size_t alen = (size_t)buf[14] << 8 | buf[15];

	if ((ver_cmd & 0xf0) != 0x20 || 16 + alen > PROXY_MAX_HEADER)
		return -EINVAL;
	if (len < 16 + alen)
		return 0;
	const uint8_t *a = buf + 16;
	if ((ver_cmd & 0x0f) == 0x0) { /* LOCAL: the balancer's own health check */
		*local = true;
		return (int)(16 + alen);
	}
	if ((ver_cmd & 0x0f) != 0x1)
		return -EINVAL;
	memset(src, 0, sizeof(*src));
	if (fam == 0x11) { /* TCP over IPv4 */
		if (alen < 12)
			return -EINVAL;
		struct sockaddr_in *s4 = (struct sockaddr_in *)src;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&s4->sin_port, a + 8, 2);
	} else if (fam == 0x21) { /* TCP over IPv6 */
		if (alen < 36)
			return -EINVAL;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		memcpy(&s6->sin6_port, a + 32, 2);
	} else if (fam == 0x00) { /* UNSPEC */
		*local = true;
		return (int)(16 + alen);
	} else {
		return -EINVAL;
	}
	*local = false;
	return (int)(16 + alen);
}

int proxy_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *src, bool *local)
{
	size_t n = len < sizeof(v2_signature) ? len : sizeof(v2_signature);

	if (memcmp(buf, v2_signature, n) == 0)
		return n < sizeof(v2_signature) ? 0 : parse_v2(buf, len, src, local);
	n = len < 6 ? len : 6;
	if (memcmp(buf, "PROXY ", n) == 0)
		return n < 6 ? 0 : parse_v1(buf, len, src, local);
	return -EINVAL;
}

int proxy_address_listed(const char *list, const struct sockaddr_storage *addr)
{
	char copy[1024], *save = NULL;
	uint8_t want[16];
	int found = 0;

	if (strlen(list) >= sizeof(copy))
		return -EINVAL;
	if (addr->ss_family == AF_INET) {
		memset(want, 0, 10);
		want[10] = want[11] = 0xff;
		memcpy(want + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
	} else if (addr->ss_family == AF_INET6) {
		memcpy(want, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
	} else {
		return 0;
	}
	strcpy(copy, list);
	for (char *t = strtok_r(copy, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
		uint8_t have[16];
		struct in_addr v4;
		if (inet_pton(AF_INET, t, &v4) == 1) {
			memset(have, 0, 10);
			have[10] = have[11] = 0xff;
			memcpy(have + 12, &v4, 4);
		} else if (inet_pton(AF_INET6, t, have) != 1) {
			return -EINVAL;
		}
		if (memcmp(have, want, 16) == 0)
			found = 1;
	}
	return found;
}
