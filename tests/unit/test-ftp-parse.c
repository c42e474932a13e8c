/* Control-line framing, Telnet stripping, command splitting, path arithmetic,
 * and the arguments of REST, LIST, PORT, EPRT and MFMT. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "ftp_parse.h"

static void feed(struct ftp_linebuf *lb, const char *s, size_t n)
{
	size_t space;
	uint8_t *tail = ftp_linebuf_tail(lb, &space);

	if (n > space)
		n = space;
	memcpy(tail, s, n);
	ftp_linebuf_added(lb, n);
}

static void test_lines(void)
{
	struct ftp_linebuf lb = { 0 };
	char line[FTP_MAX_LINE + 1];
	size_t len;

	feed(&lb, "USER a\r\nPASS b\nNOO", 18);
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == 1);
	CHECK_STR(line, "USER a");
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == 1);
	CHECK_STR(line, "PASS b");
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == 0);
	CHECK(!ftp_linebuf_has_line(&lb));
	feed(&lb, "P\r\n", 3);
	feed(&lb, "A\0B\r\n", 5);
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == 1);
	CHECK_STR(line, "NOOP");
	CHECK(len == 4);
	/* A NUL inside a line is counted, so the parser can refuse it. */
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == 1 && len == 3);
}

static void test_long_line(void)
{
	struct ftp_linebuf lb = { 0 };
	char line[FTP_MAX_LINE + 1];
	size_t len;
	char *junk = malloc(3 * FTP_MAX_LINE);

	memset(junk, 'x', 3 * FTP_MAX_LINE);
	feed(&lb, junk, 3 * FTP_MAX_LINE);
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == -E2BIG);
	/* The rest of the same line is dropped silently. */
	feed(&lb, junk, 100);
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == 0);
	feed(&lb, "xx\r\nNOOP\r\n", 10);
	CHECK(ftp_linebuf_take(&lb, line, sizeof(line), &len) == 1);
	CHECK_STR(line, "NOOP");
	free(junk);
}

static void test_commands(void)
{
	struct ftp_command c;
	char l1[] = "retr my file.txt";
	char l2[] = "\xff\xf4\xff\xf2" "ABOR";
	char l3[] = "NOOP";
	char l4[] = "RE1R x";
	char l5[] = "LIST ";
	char l6[] = "TOOLONG x";
	char l7[] = "AB";
	char l8[] = "a\xff\xffz";

	CHECK(ftp_parse_command(l1, strlen(l1), &c) == 0);
	CHECK_STR(c.verb, "RETR");
	CHECK_STR(c.arg, "my file.txt");
	CHECK(ftp_parse_command(l2, strlen(l2), &c) == 0);
	CHECK_STR(c.verb, "ABOR");
	CHECK(c.arg == NULL);
	CHECK(ftp_parse_command(l3, strlen(l3), &c) == 0 && c.arg == NULL);
	CHECK(ftp_parse_command(l4, strlen(l4), &c) == -EINVAL);
	CHECK(ftp_parse_command(l5, strlen(l5), &c) == 0 && c.arg == NULL);
	CHECK(ftp_parse_command(l6, strlen(l6), &c) == -EINVAL);
	CHECK(ftp_parse_command(l7, strlen(l7), &c) == -EINVAL);
	CHECK(ftp_parse_command(l8, strlen(l8), &c) == -EINVAL);
	char nul[] = "NOOP\0x";
	CHECK(ftp_parse_command(nul, 6, &c) == -EINVAL);
}

static void test_paths(void)
{
	static const struct {
		const char *cwd, *arg, *want;
	} cases[] = {
		{ "/", "", "/" },
		{ "/", "a", "/a" },
		{ "/a", "b/c", "/a/b/c" },
		{ "/a/b", "..", "/a" },
		{ "/a", "../../..", "/" },
		{ "/a", "/x/./y//z/", "/x/y/z" },
		{ "/a/b", "../../../etc/passwd", "/etc/passwd" },
		{ "/", "...", "/..." },
		{ "/d", "./..", "/" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(ftp_path_resolve(cases[i].cwd, cases[i].arg, out, sizeof(out)) == 0);
		CHECK_STR(out, cases[i].want);
	}
	char big[200];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(ftp_path_resolve("/", big, out, sizeof(out)) == -ENAMETOOLONG);
}

static void test_quote(void)
{
	char out[32];

	CHECK(ftp_quote_path("/a\"b", out, sizeof(out)) == 0);
	CHECK_STR(out, "/a\"\"b");
	CHECK(ftp_quote_path("\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"", out, sizeof(out)) == -ENAMETOOLONG);
}

static void test_offsets(void)
{
	uint64_t v = 7;

	CHECK(ftp_parse_offset("0", &v) == 0 && v == 0);
	CHECK(ftp_parse_offset("1048576", &v) == 0 && v == 1048576);
	CHECK(ftp_parse_offset("9223372036854775807", &v) == 0 && v == INT64_MAX);
	/* Past a file offset, or wrapping 64 bits: refused, never truncated. */
	CHECK(ftp_parse_offset("9223372036854775808", &v) == -EINVAL);
	CHECK(ftp_parse_offset("18446744073709551616", &v) == -EINVAL);
	CHECK(ftp_parse_offset("99999999999999999999999999", &v) == -EINVAL);
	CHECK(ftp_parse_offset("", &v) == -EINVAL);
	CHECK(ftp_parse_offset("-1", &v) == -EINVAL);
	CHECK(ftp_parse_offset("+1", &v) == -EINVAL);
	CHECK(ftp_parse_offset(" 1", &v) == -EINVAL);
	CHECK(ftp_parse_offset("1 ", &v) == -EINVAL);
	CHECK(ftp_parse_offset("0x10", &v) == -EINVAL);
}

static void test_list_args(void)
{
	char a[] = "-la sub dir", b[] = "-l -a", c[] = "-l", d[] = "name", e[] = "-al   x";
	bool all;

	CHECK_STR(ftp_parse_list_args(a, &all), "sub dir");
	CHECK(all);
	CHECK(ftp_parse_list_args(b, &all) == NULL && all);
	CHECK(ftp_parse_list_args(c, &all) == NULL && !all);
	CHECK_STR(ftp_parse_list_args(d, &all), "name");
	CHECK(!all);
	CHECK_STR(ftp_parse_list_args(e, &all), "x");
	CHECK(ftp_parse_list_args(NULL, &all) == NULL && !all);
}

static void test_port(void)
{
	struct sockaddr_in a;

	CHECK(ftp_parse_port("127,0,0,1,200,10", &a) == 0);
	CHECK(a.sin_family == AF_INET && ntohl(a.sin_addr.s_addr) == 0x7f000001 &&
	      ntohs(a.sin_port) == 200 * 256 + 10);
	CHECK(ftp_parse_port("255,255,255,255,255,255", &a) == 0 && ntohs(a.sin_port) == 65535);
	static const char *const bad[] = {
		"", "1,2,3,4,5", "1,2,3,4,5,6,7", "256,0,0,1,1,1", "1,2,3,4,5,256", "1,2,3,4,5,6 ",
		"1,2,3,4,5,x", "1.2.3.4,5,6", "1000,2,3,4,5,6",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(ftp_parse_port(bad[i], &a) == -EINVAL);
}

static void test_eprt(void)
{
	static const struct {
		const char *arg;
		int want, family;
		const char *host;
		unsigned port;
	} cases[] = {
		{ "|1|127.0.0.1|51210|", 0, AF_INET, "127.0.0.1", 51210 },
		{ "|2|::1|2121|", 0, AF_INET6, "::1", 2121 },
		{ "!1!10.0.0.2!65535!", 0, AF_INET, "10.0.0.2", 65535 }, /* any printable delimiter */
		{ "|2|1.2.3.4|21|", -EADDRNOTAVAIL, AF_INET6, NULL, 0 },
		{ "|1|::1|21|", -EADDRNOTAVAIL, AF_INET, NULL, 0 },
		{ "|1|host.example|21|", -EADDRNOTAVAIL, AF_INET, NULL, 0 },
		{ "|3|127.0.0.1|21|", -EAFNOSUPPORT, 0, NULL, 0 },
		{ "|11|127.0.0.1|21|", -EAFNOSUPPORT, 0, NULL, 0 },
		{ "|1|127.0.0.1|65536|", -EINVAL, 0, NULL, 0 },
		{ "|1|127.0.0.1||", -EINVAL, 0, NULL, 0 },
		{ "|1|127.0.0.1|21x|", -EINVAL, 0, NULL, 0 },
		{ "|1|127.0.0.1|21", -EINVAL, 0, NULL, 0 },
		{ "|1|127.0.0.1|21|x", -EINVAL, 0, NULL, 0 },
		{ " 1 127.0.0.1 21 ", -EINVAL, 0, NULL, 0 }, /* a space is no delimiter */
		/* An address longer than any IPv6 address is refused before it is copied. */
		{ "|2|0000:0000:0000:0000:0000:ffff:127.000.000.001xx|21|", -EINVAL, 0, NULL, 0 },
		{ "|2|0000:0000:0000:0000:0000:ffff:127.000.000.001x|21|", -EADDRNOTAVAIL, AF_INET6,
		  NULL, 0 },
		{ "", -EINVAL, 0, NULL, 0 },
	};
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = ftp_parse_eprt(cases[i].arg, &ss);
		if (r != cases[i].want || (cases[i].family != 0 && ss.ss_family != cases[i].family)) {
			fprintf(stderr, "eprt case %zu: %d\n", i, r);
			check_failures++;
			continue;
		}
		if (r != 0)
			continue;
		const void *addr = ss.ss_family == AF_INET
					   ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
					   : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		unsigned port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
						       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		CHECK(inet_ntop(ss.ss_family, addr, host, sizeof(host)) != NULL);
		CHECK_STR(host, cases[i].host);
		CHECK(port == cases[i].port);
	}
}

static void test_time(void)
{
	int64_t t = 7;

	CHECK(ftp_parse_time("19700101000000", &t) == 0 && t == 0);
	CHECK(ftp_parse_time("20200101000000", &t) == 0 && t == 1577836800);
	CHECK(ftp_parse_time("20200101000000.123", &t) == 0 && t == 1577836800);
	CHECK(ftp_parse_time("20200101000000.", &t) == 0 && t == 1577836800);
	CHECK(ftp_parse_time("20201231235960", &t) == 0); /* a leap second is a time */
	static const char *const bad[] = {
		"", "2020010100000", "20200101000000.1x", "20200101000000 ",
		"19691231235959", "20201301000000", "20200001000000", "20200100000000",
		"20200132000000", "20200101240000", "20200101006000", "20200101000061",
		"2020-1-1000000", "+2020010100000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ftp_parse_time(bad[i], &t) != -EINVAL) {
			fprintf(stderr, "time case %zu: %s\n", i, bad[i]);
			check_failures++;
		}
	}
}

int main(void)
{
	test_port();
	test_eprt();
	test_time();
	test_offsets();
	test_list_args();
	test_lines();
	test_long_line();
	test_commands();
	test_paths();
	test_quote();
	return CHECK_DONE();
}
