/* Monitor helpers with no privileges needed: listing lines, users-file lines,
 * the users file's look-up and password check. */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ipc.h"
#include "monitor_auth.h"
#include "monitor_fs.h"
#include "monitor_tls.h"
#include "monitor_msg.h"

static void test_format(void)
{
	struct stat st = { 0 };
	char out[512];
	time_t now = 1800000000; /* 2027-01-15 */

	st.st_mode = S_IFREG | 0644;
	st.st_nlink = 1;
	st.st_uid = 1000;
	st.st_gid = 100;
	st.st_size = 12345;
	st.st_mtime = now - 3600;
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_LONG, IPC_FACTS_ALL, "a b.txt", &st, NULL, "", now) > 0);
	CHECK_STR(out, "-rw-r--r--    1 1000     100             12345 Jan 15 07:00 a b.txt\r\n");
	st.st_mtime = now - 400 * 86400;
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_LONG, IPC_FACTS_ALL, "old", &st, NULL, "", now) > 0);
	CHECK(strstr(out, "Dec 11  2025 old\r\n") != NULL);
	st.st_mode = S_IFLNK | 0777;
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_LONG, IPC_FACTS_ALL, "l", &st, "/etc", "", now) > 0);
	CHECK(strncmp(out, "lrwxrwxrwx", 10) == 0 && strstr(out, " l -> /etc\r\n") != NULL);
	st.st_mode = S_IFDIR | 01777;
	st.st_mtime = 1700000000;
	st.st_dev = 1;
	st.st_ino = 2;
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_MLSD, IPC_FACTS_ALL, "d", &st, NULL, "elcmpdf", now) > 0);
	CHECK_STR(out, "type=dir;size=12345;modify=20231114221320;perm=elcmpdf;unix.mode=01777;"
		       "unique=1U2; d\r\n");
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_MLSD, IPC_FACT_TYPE | IPC_FACT_SIZE, "d", &st,
				NULL, "el", now) > 0);
	CHECK_STR(out, "type=dir;size=12345; d\r\n");
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_NAMES, IPC_FACTS_ALL, "n", &st, NULL, "", now) == 3);
	CHECK(monitor_fs_format(out, 4, IPC_LIST_LONG, IPC_FACTS_ALL, "n", &st, NULL, "", now) == -ENAMETOOLONG);
}

/* Dates a listing cannot write (issue 13): gmtime_r fails past a year that
 * fits an int, and time-val has four digits. Never what the stack held. */
static void test_format_dates_out_of_range(void)
{
	struct stat st = { 0 };
	char out[512];
	time_t now = 1800000000;

	st.st_mode = S_IFREG | 0644;
	st.st_nlink = 1;
	st.st_size = 1;
	st.st_mtime = (time_t)67768036191676800LL; /* gmtime_r: EOVERFLOW */
	memset(out, 'X', sizeof(out));
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_LONG, 0, "f", &st, NULL, "", now) > 0);
	CHECK_STR(out, "-rw-r--r--    1 0        0                   1 Jan  1  1970 f\r\n");
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_MLSD, IPC_FACT_TYPE | IPC_FACT_MODIFY |
				IPC_FACT_SIZE, "f", &st, NULL, "r", now) > 0);
	CHECK_STR(out, "type=file;size=1; f\r\n");
	st.st_mtime = (time_t)253402300800LL; /* 10000-01-01: gmtime_r copes, time-val cannot */
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_LONG, 0, "f", &st, NULL, "", now) > 0);
	CHECK(strstr(out, " Jan  1  1970 f\r\n") != NULL);
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_MLSD, IPC_FACT_MODIFY, "f", &st, NULL, "",
				now) > 0);
	CHECK_STR(out, " f\r\n");
	st.st_mtime = (time_t)-62167219201LL; /* 1 second before year 0 */
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_MLSD, IPC_FACT_MODIFY, "f", &st, NULL, "",
				now) > 0);
	CHECK_STR(out, " f\r\n");
	/* The edges that can be written: four digits, zero-padded. */
	st.st_mtime = (time_t)253402300799LL;
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_MLSD, IPC_FACT_MODIFY, "f", &st, NULL, "",
				now) > 0);
	CHECK_STR(out, "modify=99991231235959; f\r\n");
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_LONG, 0, "f", &st, NULL, "", now) > 0);
	CHECK(strstr(out, " Dec 31  9999 f\r\n") != NULL);
	st.st_mtime = (time_t)-62167219200LL;
	CHECK(monitor_fs_format(out, sizeof(out), IPC_LIST_MLSD, IPC_FACT_MODIFY, "f", &st, NULL, "",
				now) > 0);
	CHECK_STR(out, "modify=00000101000000; f\r\n");
}

static void test_users(void)
{
	struct account a;
	char *hash;
	char l1[] = "alice:$6$x$y:1000:100:/srv/alice";
	char l2[] = "bob:$6$x$y:1001:100:/srv/bob:read-only";
	char l3[] = "alice:$6$x$y:1000:100:relative";
	char l4[] = "alice:$6$x$y:-1:100:/srv";
	char l5[] = "alice:$6$x$y:1000:100:/srv:bogus";
	char l6[] = "# alice:$6$x$y:1000:100:/srv";
	char l7[] = "alice:$6$x$y:1000";
	char l8[] = "carol:*:1000:100:/srv:tls=required,cert=sha256:"
		    "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
	char l9[] = "carol:*:1000:100:/srv:cert=sha256:0011";

	CHECK(monitor_auth_parse_line(l1, "alice", &a, &hash) == 1);
	CHECK(a.uid == 1000 && a.gid == 100 && a.flags == 0);
	CHECK_STR(a.root, "/srv/alice");
	CHECK_STR(hash, "$6$x$y");
	CHECK(monitor_auth_parse_line(l2, "alice", &a, &hash) == 0);
	char l2b[] = "bob:$6$x$y:1001:100:/srv/bob:read-only";
	CHECK(monitor_auth_parse_line(l2b, "bob", &a, &hash) == 1 && a.flags == IPC_USER_READ_ONLY);
	CHECK(monitor_auth_parse_line(l3, "alice", &a, &hash) == -EINVAL);
	CHECK(monitor_auth_parse_line(l4, "alice", &a, &hash) == -EINVAL);
	CHECK(monitor_auth_parse_line(l5, "alice", &a, &hash) == -EINVAL);
	CHECK(monitor_auth_parse_line(l6, "alice", &a, &hash) == 0);
	CHECK(monitor_auth_parse_line(l7, "alice", &a, &hash) == -EINVAL);
	CHECK(monitor_auth_parse_line(l8, "carol", &a, &hash) == 1);
	CHECK(a.has_pin && a.pin[0] == 0x00 && a.pin[31] == 0xff && a.tls == USER_TLS_REQUIRED);
	CHECK(monitor_auth_parse_line(l9, "carol", &a, &hash) == -EINVAL);
	char l10[] = "dave:*:1000:100:/srv:read-only,chmod=off";
	CHECK(monitor_auth_parse_line(l10, "dave", &a, &hash) == 1 &&
	      a.flags == (IPC_USER_READ_ONLY | IPC_USER_NO_CHMOD));
	char l11[] = "dave:*:1000:100:/srv:chmod=on";
	CHECK(monitor_auth_parse_line(l11, "dave", &a, &hash) == -EINVAL);
	(void)l2;
}

/* The monitor never sets setuid, setgid or sticky bits, whatever the child
 * asks (issue 13); the decoder already ends a session that asks. */
static void test_chmod_permission_bits_only(void)
{
	char dir[] = "/tmp/ftpsd-test-monitor-XXXXXX", file[64];
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(file, sizeof(file), "%s/f", dir);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	monitor_fs_set_root(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), false);
	CHECK(monitor_fs_chmod("/f", 0755) == 0);
	CHECK(stat(file, &st) == 0 && (st.st_mode & 07777) == 0755);
	static const unsigned bad[] = { 04755, 02755, 01777, 06755, 07777, 04000, 010755 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(monitor_fs_chmod("/f", bad[i]) == -EPERM);
		CHECK(stat(file, &st) == 0 && (st.st_mode & 07777) == 0755);
	}
	unlink(file);
	rmdir(dir);

	static struct ipc_msg m;
	static struct mon_request r;
	ipc_init(&m, IPC_CHMOD);
	ipc_put_str(&m, "/f");
	ipc_put_u32(&m, 0777);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == 0 && r.u.file.mode == 0777);
	ipc_init(&m, IPC_CHMOD);
	ipc_put_str(&m, "/f");
	ipc_put_u32(&m, 04755);
	CHECK(monitor_decode(&m, PHASE_LOGGEDIN, &r) == -EBADMSG);
}

/* The method and cost of a hash, its salt left out: what makes two hashes
 * cost the same time. */
static void test_hash_setting(void)
{
	static const struct {
		const char *hash;
		ssize_t len;
	} cases[] = {
		{ "$y$j9T$saltsaltsalt$hashhashhash", 7 },
		{ "$gy$j9T$salt$hash", 8 },
		{ "$6$saltsalt$hash", 3 },
		{ "$6$rounds=10000$saltsalt$hash", 16 },
		{ "$5$rounds=1000$salt$hash", 15 },
		{ "$5$salt$hash", 3 },
		{ "$6$", 3 },
		{ "$2b$12$0123456789012345678901hashhashhashhashhashhashhashhas", 7 },
		{ "$2y$05$0123456789012345678901hash", 7 },
		{ "$1$salt$hash", 3 },
		{ "$sha1$40000$salt$hash", 12 },
		{ "$md5,rounds=5000$salt$hash", 17 },
		{ "$7$CU..../....saltsalt$hash", 14 },
		{ "$7$CU..", -EINVAL },
		{ "$y$j9T", -EINVAL },
		{ "_J9..saltHASHHASHHASH", 5 },
		{ "abJnggxhB/yWI", 0 },
		{ "abJnggxhB/yW", -EINVAL },
		{ "abJnggx:B/yWI", -EINVAL },
		{ "*", -EINVAL },
		{ "!", -EINVAL },
		{ "!$6$salt$hash", -EINVAL },
		{ "", -EINVAL },
		{ "$", -EINVAL },
		{ "$$", -EINVAL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssize_t r = monitor_auth_hash_setting(cases[i].hash, strlen(cases[i].hash));
		if (r != cases[i].len)
			fprintf(stderr, "%s: %zd, want %zd\n", cases[i].hash, r, cases[i].len);
		CHECK(r == cases[i].len);
	}
	/* Only n bytes are read: the hash field of a line, up to its ':'. */
	CHECK(monitor_auth_hash_setting("$6$salt$hash:1000:100:/srv", 12) == 3);
	CHECK(monitor_auth_hash_setting("$y$j9T:salt", 6) == -EINVAL);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK(fwrite(text, 1, len, f) == len);
	fclose(f);
}

/* The users file as the monitor reads it: once per session, users found by
 * name, the first entry of a name wins, comments and malformed entries as
 * monitor_auth_parse_line says. */
static void test_users_file(void)
{
	char path[] = "/tmp/ftpsd-test-users-XXXXXX", text[4096], h6[CRYPT_OUTPUT_SIZE],
	     h5[CRYPT_OUTPUT_SIZE];
	struct config cfg = { 0 };
	struct account a;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	snprintf(h6, sizeof(h6), "%s", crypt("secret-6", "$6$saltsalt$"));
	snprintf(h5, sizeof(h5), "%s", crypt("secret-5", "$5$rounds=2000$salt$"));
	CHECK(strncmp(h6, "$6$saltsalt$", 12) == 0 && strncmp(h5, "$5$rounds=2000$", 15) == 0);
	int n = snprintf(text, sizeof(text),
			 "# users\n"
			 "#carol:%s:1000:100:/srv/c\n"
			 "\n"
			 "alice:%s:1000:100:/srv/a\n"
			 "bob:%s:1001:100:/srv/b:read-only\n"
			 "alice:%s:1002:100:/srv/second\n"
			 "dave:*:1003:100:/srv/d\n"
			 "broken:%s\n"
			 "alice2:%s:1004:100:/srv/a2",
			 h6, h6, h5, h5, h6, h6);
	CHECK(n > 0 && (size_t)n < sizeof(text));
	write_file(path, text, (size_t)n);
	cfg.users_file = path;

	CHECK(monitor_auth_lookup(&cfg, "alice", &a) == 1);
	CHECK(a.uid == 1000 && a.gid == 100 && a.flags == 0);
	CHECK_STR(a.root, "/srv/a");
	CHECK(monitor_auth_lookup(&cfg, "bob", &a) == 1 && a.flags == IPC_USER_READ_ONLY);
	/* The last line, without a newline. */
	CHECK(monitor_auth_lookup(&cfg, "alice2", &a) == 1 && a.uid == 1004);
	CHECK(monitor_auth_lookup(&cfg, "#carol", &a) == 0); /* a comment */
	CHECK(monitor_auth_lookup(&cfg, "carol", &a) == 0);
	CHECK(monitor_auth_lookup(&cfg, "ali", &a) == 0);
	CHECK(monitor_auth_lookup(&cfg, "nobody", &a) == 0);
	CHECK(monitor_auth_lookup(&cfg, "broken", &a) == -EINVAL);

	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "alice", "secret-6", &a) == 0);
	CHECK(a.uid == 1000);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "alice", "secret-5", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "bob", "secret-5", &a) == 0);
	CHECK(a.uid == 1001 && a.flags == IPC_USER_READ_ONLY);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "bob", "secret-6", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "nobody", "secret-6", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "dave", "", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "dave", "*", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "broken", "secret-6", &a) == -EACCES);

	/* Kept between USER and PASS, but read again when it changed: a user
	 * removed (ftpsd-user del, lock) after its USER no longer logs in. */
	write_file(path, "bob:*:1001:100:/srv/b\n", 22);
	CHECK(monitor_auth_lookup(&cfg, "alice", &a) == 0);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "alice", "secret-6", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "bob", "secret-5", &a) == -EACCES);
	monitor_auth_forget();

	/* The file ends at its first NUL, as it did when each line was parsed as a
	 * C string. */
	static const char with_nul[] = "bob:*:1001:100:/srv/b\n\0alice:*:1000:100:/srv/a\n";
	write_file(path, with_nul, sizeof(with_nul) - 1);
	CHECK(monitor_auth_lookup(&cfg, "bob", &a) == 1);
	CHECK(monitor_auth_lookup(&cfg, "alice", &a) == 0);
	monitor_auth_forget();

	cfg.users_file = "/nonexistent/ftpsd-users";
	CHECK(monitor_auth_lookup(&cfg, "alice", &a) == -ENOENT);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "alice", "secret-6", &a) == -EACCES);
	unlink(path);
}

/* Each check runs one hash per method and cost (the first user's of each):
 * a user whose setting another user had first is checked against its own
 * hash, and so is a user past the cap of settings. */
static void test_users_file_settings(void)
{
	char path[] = "/tmp/ftpsd-test-users-XXXXXX", text[8192], salt[64];
	struct config cfg = { .users_file = path };
	struct account a;
	size_t n = 0;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	/* Ten settings: sha256crypt at 1000 to 1009 rounds; two users of the
	 * first, with their own salts and passwords. */
	for (int i = 0; i < 10; i++) {
		char password[32];
		snprintf(salt, sizeof(salt), "$5$rounds=%d$salt%d$", 1000 + i, i);
		snprintf(password, sizeof(password), "pw-%d", i);
		n += (size_t)snprintf(text + n, sizeof(text) - n, "u%d:%s:%d:100:/srv/u%d\n", i,
				      crypt(password, salt), 1000 + i, i);
	}
	n += (size_t)snprintf(text + n, sizeof(text) - n, "second:%s:1100:100:/srv/s\n",
			      crypt("pw-second", "$5$rounds=1000$other$"));
	CHECK(n < sizeof(text));
	write_file(path, text, n);

	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "u0", "pw-0", &a) == 0);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "second", "pw-second", &a) == 0 &&
	      a.uid == 1100);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "second", "pw-0", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "u7", "pw-7", &a) == 0 && a.uid == 1007);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "u9", "pw-9", &a) == 0 && a.uid == 1009);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "u9", "pw-8", &a) == -EACCES);
	CHECK(monitor_auth_check(&cfg, "192.0.2.1", "u10", "pw-9", &a) == -EACCES);
	monitor_auth_forget();
	unlink(path);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	test_format();
	test_format_dates_out_of_range();
	test_users();
	test_chmod_permission_bits_only();
	test_hash_setting();
	test_users_file();
	test_users_file_settings();
	return CHECK_DONE();
}
