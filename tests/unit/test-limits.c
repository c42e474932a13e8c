/* Session limits as lock slots (monitor_limits.c): the keyed hash against
 * SipHash-2-4's reference vector, runtime-dir's checks, and the slots
 * themselves. Each limits_open() opens its own file descriptions, so that
 * several "sessions" in this one process hold OFD locks against each other
 * as separate monitors would. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "monitor_limits.h"

static char dir[] = "/tmp/ftpsd-test-limits-XXXXXX";
static char run[4200];

static void test_siphash(void)
{
	uint8_t key[16], in[15];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		in[i] = (uint8_t)i;
	/* The reference paper's example. */
	CHECK(limits_siphash(key, in, 15) == 0xa129ca6149be45e5ULL);
	CHECK(limits_siphash(key, "", 0) == 0x726fdb47dd0e0e31ULL);
}

static void test_dirs(void)
{
	const char *why = "";
	char bad[4300];

	snprintf(bad, sizeof(bad), "%s/bad", dir);
	CHECK(mkdir(bad, 0755) == 0 && chmod(bad, 0777) == 0);
	CHECK(limits_check_dir(bad, &why) == -EPERM);
	CHECK_STR(why, "writable by group or others");
	struct limits l;
	CHECK(limits_open(&l, bad, &why) == -EPERM);
	/* Missing, with its parent there: the first session makes it. */
	CHECK(limits_check_dir(run, &why) == 0);
	snprintf(bad, sizeof(bad), "%s/no/such", dir);
	CHECK(limits_check_dir(bad, &why) == -ENOENT);
}

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	s->sin_family = AF_INET;
	inet_pton(AF_INET, a, &s->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &s->sin6_addr);
	return ss;
}

static void test_slots(void)
{
	struct config cfg;
	struct limits l[6];
	const char *why = "";
	struct sockaddr_storage a = v4("192.0.2.1"), mapped = v6("::ffff:192.0.2.1"),
				b = v4("192.0.2.2"), c = v6("2001:db8::1");

	config_defaults(&cfg);
	for (int i = 0; i < 6; i++)
		CHECK(limits_open(&l[i], run, &why) == 0);
	/* Made by the first, 0755 / 0600 whatever the umask. */
	struct stat st;
	char path[4300];
	snprintf(path, sizeof(path), "%s/limits/key", run);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
	snprintf(path, sizeof(path), "%s/sessions", run);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0755);
	/* One key for all. */
	CHECK(memcmp(l[0].key, l[5].key, sizeof(l[0].key)) == 0);

	/* max-sessions 3: the fourth is refused until one goes. */
	cfg.max_sessions = 3;
	cfg.max_sessions_per_address = 0;
	CHECK(limits_session(&l[0], &cfg, &a) == LIMIT_NONE);
	CHECK(limits_session(&l[1], &cfg, &b) == LIMIT_NONE);
	CHECK(limits_session(&l[2], &cfg, &c) == LIMIT_NONE);
	CHECK(limits_session(&l[3], &cfg, &a) == LIMIT_TOTAL);
	close(l[1].total);
	CHECK(limits_session(&l[3], &cfg, &a) == LIMIT_NONE);

	/* Per address, 2: an IPv4-mapped address is the IPv4 one. */
	cfg.max_sessions = 0;
	cfg.max_sessions_per_address = 2;
	CHECK(limits_session(&l[0], &cfg, &a) == LIMIT_NONE);
	CHECK(limits_session(&l[1], &cfg, &mapped) == LIMIT_NONE);
	CHECK(limits_session(&l[2], &cfg, &a) == LIMIT_ADDRESS);
	CHECK(limits_session(&l[2], &cfg, &b) == LIMIT_NONE);
	CHECK(limits_session(&l[3], &cfg, &c) == LIMIT_NONE);
	CHECK(limits_session(&l[4], &cfg, &c) == LIMIT_NONE);
	CHECK(limits_session(&l[5], &cfg, &c) == LIMIT_ADDRESS);

	/* Per user, keyed by host and name: another host's alice is another. */
	CHECK(limits_user(&l[0], "", "alice", 1));
	CHECK(!limits_user(&l[1], "", "alice", 1));
	CHECK(limits_user(&l[1], "ftp.example.org", "alice", 1));
	CHECK(limits_user(&l[2], "", "bob", 1));
	CHECK(limits_user(&l[3], "", "alice", 0)); /* 0: no limit */
	close(l[0].user);
	CHECK(limits_user(&l[4], "", "alice", 1));

	char text[160];
	limits_text(LIMIT_ADDRESS, 8, text, sizeof(text));
	CHECK_STR(text, "Too many sessions from your address (max-sessions-per-address 8), "
			"try again later.");
	limits_text(LIMIT_TOTAL, 50, text, sizeof(text));
	CHECK_STR(text, "Too many sessions (max-sessions 50), try again later.");
	limits_text(LIMIT_USER, 2, text, sizeof(text));
	CHECK_STR(text, "Too many sessions of this user (max-sessions-per-user 2), try again later.");
	config_free(&cfg);
}

int main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(run, sizeof(run), "%s/run", dir);
	umask(077);
	test_siphash();
	test_dirs();
	test_slots();
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return CHECK_DONE();
}
