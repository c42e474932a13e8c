/* Session records as ftpsd-user reads them: written by monitors that may be
 * compromised, so every malformed record is refused or cut, never trusted;
 * and a record is live only for the process it names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sessions.h"

static int parse(const char *text, struct sessions_record *r)
{
	return session_record_parse(text, strlen(text), r);
}

static void test_full_record(void)
{
	struct sessions_record r;
	const char *text = "pid=1234\nstart=987654\nuser=alice\nhost=files.example\n"
			   "address=2001:db8::7\nsince=1700000000\nlogin=1700000005\n"
			   "command=RETR\npath=/a b/c=d.iso\nbytes=1024\nsize=\nrate=512\n"
			   "updated=1700000100\nfuture-key=ignored\n";

	CHECK(parse(text, &r) == 0);
	CHECK(r.pid == 1234 && r.start == 987654);
	CHECK_STR(r.user, "alice");
	CHECK_STR(r.host, "files.example");
	CHECK_STR(r.address, "2001:db8::7");
	CHECK_STR(r.command, "RETR");
	CHECK_STR(r.path, "/a b/c=d.iso"); /* split at the first '=' only */
	CHECK(r.since == 1700000000 && r.login == 1700000005 && r.bytes == 1024 && r.rate == 512);
	CHECK((r.has & SESSION_HAS_SIZE) == 0); /* empty: unknown */
	CHECK((r.has & SESSION_HAS_BYTES) && (r.has & SESSION_HAS_UPDATED));
	/* No final newline: the last line counts. */
	CHECK(parse("start=5\npid=7", &r) == 0 && r.pid == 7 && r.start == 5);
}

static void test_refused(void)
{
	struct sessions_record r;
	char *long_line = malloc(6000);

	CHECK(parse("", &r) == -EINVAL);
	CHECK(parse("start=5\n", &r) == -EINVAL);	     /* no pid */
	CHECK(parse("pid=5\n", &r) == -EINVAL);		     /* no start */
	CHECK(parse("pid=0\nstart=5\n", &r) == -EINVAL);     /* pid 0 */
	CHECK(parse("pid=-3\nstart=5\n", &r) == -EINVAL);
	CHECK(parse("pid=12x\nstart=5\n", &r) == -EINVAL);
	CHECK(parse("pid=99999999999\nstart=5\n", &r) == -EINVAL);
	CHECK(parse("pid=5\nstart=5\npid=6\n", &r) == -EINVAL); /* twice */
	CHECK(parse("pid=5\nstart=5\nuser=a\nuser=b\n", &r) == -EINVAL);
	CHECK(session_record_parse("pid=5\nst\0art=5\n", 15, &r) == -EINVAL); /* a NUL */
	/* A line longer than 4096 bytes. */
	memcpy(long_line, "pid=5\nstart=5\npath=", 19);
	memset(long_line + 19, 'x', 4990);
	long_line[19 + 4990] = '\0';
	CHECK(parse(long_line, &r) == -EINVAL);
	/* A value longer than its field is cut, never overflows. */
	memset(long_line + 19, 'x', 4000);
	long_line[19 + 4000] = '\0';
	memcpy(long_line + 14, "host=", 5);
	CHECK(parse(long_line, &r) == 0 && strlen(r.host) == sizeof(r.host) - 1);
	/* A bad number is left out, the record kept. */
	CHECK(parse("pid=5\nstart=5\nbytes=lots\n", &r) == 0 && !(r.has & SESSION_HAS_BYTES));
	free(long_line);
}

static void test_liveness(void)
{
	struct sessions_record r;
	char text[128];
	unsigned long long start = 0;
	FILE *f = fopen("/proc/self/stat", "r");
	char buf[1024];

	CHECK(f != NULL && fgets(buf, sizeof(buf), f) != NULL);
	fclose(f);
	char *p = strrchr(buf, ')');
	for (int i = 2; p != NULL && i < 22; i++)
		p = strchr(p + 1, ' ');
	CHECK(p != NULL && sscanf(p + 1, "%llu", &start) == 1);
	snprintf(text, sizeof(text), "pid=%d\nstart=%llu\n", (int)getpid(), start);
	CHECK(parse(text, &r) == 0);
	CHECK(session_process_is(r.pid, r.start, (unsigned)getuid()));
	CHECK(!session_process_is(r.pid, r.start + 1, (unsigned)getuid())); /* another start */
	CHECK(!session_process_is(r.pid, r.start, (unsigned)getuid() + 1)); /* another uid */
	CHECK(!session_process_is(0, r.start, (unsigned)getuid()));
}

int main(void)
{
	test_full_record();
	test_refused();
	test_liveness();
	return CHECK_DONE();
}
