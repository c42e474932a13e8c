/* log_escape: what reaches a log line or a journal field. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "log.h"

static const char *esc(const char *in, size_t size)
{
	static char out[4096];

	CHECK(size <= sizeof(out));
	size_t n = log_escape(out, size, in);
	CHECK(n == strlen(out));
	CHECK(n < size);
	return out;
}

/* An independent reading of "valid UTF-8 with no control character":
 * decode each sequence to its code point and check that it is the shortest
 * form, no surrogate, at most U+10FFFF, and not in C0, DEL or C1. */
static bool clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		uint32_t cp, min;
		size_t n;
		if (p[0] < 0x80) {
			cp = p[0], n = 1, min = 0;
		} else if ((p[0] & 0xe0) == 0xc0) {
			cp = p[0] & 0x1f, n = 2, min = 0x80;
		} else if ((p[0] & 0xf0) == 0xe0) {
			cp = p[0] & 0x0f, n = 3, min = 0x800;
		} else if ((p[0] & 0xf8) == 0xf0) {
			cp = p[0] & 0x07, n = 4, min = 0x10000;
		} else {
			return false;
		}
		for (size_t k = 1; k < n; k++) {
			if ((p[k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return false;
		p += n;
	}
	return true;
}

static void test_controls(void)
{
	CHECK_STR(esc("plain name.txt", 100), "plain name.txt");
	CHECK_STR(esc("", 100), "");
	CHECK_STR(esc("a\r\nb\tc", 100), "a\\x0d\\x0ab\\x09c");
	CHECK_STR(esc("\x1b[31mred", 100), "\\x1b[31mred");
	CHECK_STR(esc("del\x7f", 100), "del\\x7f");
	/* C1: U+0080, U+009B (CSI), U+009F; U+00A0 is the first that stays. */
	CHECK_STR(esc("\xc2\x80", 100), "\\xc2\\x80");
	CHECK_STR(esc("x\xc2\x9b" "31m", 100), "x\\xc2\\x9b31m");
	CHECK_STR(esc("\xc2\x9f", 100), "\\xc2\\x9f");
	CHECK_STR(esc("\xc2\xa0", 100), "\xc2\xa0");
	/* A backslash stays: escaping twice changes nothing. */
	CHECK_STR(esc("a\\x41", 100), "a\\x41");
}

static void test_utf8(void)
{
	CHECK_STR(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 100),
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	CHECK_STR(esc("\xef\xbf\xbd", 100), "\xef\xbf\xbd");      /* U+FFFD */
	CHECK_STR(esc("\xf4\x8f\xbf\xbf", 100), "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	CHECK_STR(esc("\xed\x9f\xbf", 100), "\xed\x9f\xbf");      /* U+D7FF */
	/* Latin-1 bytes, a lone continuation byte, 0xff. */
	CHECK_STR(esc("caf\xe9", 100), "caf\\xe9");
	CHECK_STR(esc("\x80z", 100), "\\x80z");
	CHECK_STR(esc("\xff\xfe", 100), "\\xff\\xfe");
	/* Overlong forms of '/' and NUL, a surrogate, above U+10FFFF. */
	CHECK_STR(esc("\xc0\xaf", 100), "\\xc0\\xaf");
	CHECK_STR(esc("\xc1\xbf", 100), "\\xc1\\xbf");
	CHECK_STR(esc("\xe0\x80\xaf", 100), "\\xe0\\x80\\xaf");
	CHECK_STR(esc("\xf0\x80\x80\xaf", 100), "\\xf0\\x80\\x80\\xaf");
	CHECK_STR(esc("\xed\xa0\x80", 100), "\\xed\\xa0\\x80");
	CHECK_STR(esc("\xf4\x90\x80\x80", 100), "\\xf4\\x90\\x80\\x80");
	CHECK_STR(esc("\xf5\x80\x80\x80", 100), "\\xf5\\x80\\x80\\x80");
	/* Sequences cut short, at the end or before another character. */
	CHECK_STR(esc("\xe2\x82", 100), "\\xe2\\x82");
	CHECK_STR(esc("\xe2\x82z", 100), "\\xe2\\x82z");
	CHECK_STR(esc("\xf0\x9f\x98", 100), "\\xf0\\x9f\\x98");
	CHECK_STR(esc("\xc3\xc3\xa9", 100), "\\xc3\xc3\xa9");
}

static void test_cut(void)
{
	char out[8];

	/* Never a partial escape or character: what does not fit is left out. */
	CHECK_STR(esc("abc\x1b", 7), "abc");
	CHECK_STR(esc("abc\x1b", 8), "abc\\x1b");
	CHECK_STR(esc("a\xc3\xa9", 3), "a");
	CHECK_STR(esc("a\xc3\xa9", 4), "a\xc3\xa9");
	CHECK_STR(esc("a\xc2\x9b", 8), "a");
	CHECK_STR(esc("a\xc2\x9b", 10), "a\\xc2\\x9b");
	CHECK_STR(esc("abcdef", 4), "abc");
	CHECK_STR(esc("x", 1), "");
	CHECK(log_escape(out, 0, "x") == 0);
}

/* Random bytes: the output is always clean, and escaping it again is a no-op. */
static void test_random(void)
{
	static const unsigned char pick[] = { 0x00, 0x09, 0x0a, 0x1b, 0x20, 0x41, 0x5c, 0x7f,
					      0x80, 0x9b, 0xa0, 0xbf, 0xc0, 0xc2, 0xc3, 0xdf,
					      0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
	char in[64], once[512], twice[512];

	srand(13);
	for (int i = 0; i < 200000; i++) {
		size_t len = (size_t)(rand() % 12);
		for (size_t k = 0; k < len; k++)
			in[k] = (char)(rand() % 4 == 0 ? rand() % 256
						       : pick[(size_t)rand() % sizeof(pick)]);
		in[len] = '\0';
		size_t size = (size_t)(rand() % 3 == 0 ? 1 + rand() % 40 : (int)sizeof(once));
		log_escape(once, size, in);
		CHECK(clean_utf8(once));
		log_escape(twice, sizeof(twice), once);
		CHECK(strcmp(once, twice) == 0);
		if (check_failures > 0) {
			fprintf(stderr, "input:");
			for (size_t k = 0; k < len; k++)
				fprintf(stderr, " %02x", (unsigned char)in[k]);
			fprintf(stderr, " (size %zu)\n", size);
			break;
		}
	}
}

int main(void)
{
	test_controls();
	test_utf8();
	test_cut();
	test_random();
	return CHECK_DONE();
}
