/* Quota usage files: the name escaping, the exact format, the locked read
 * and write, and the scan of a tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "quota.h"

static char dir[] = "/tmp/test-quota-XXXXXX";

static void test_name(void)
{
	char out[QUOTA_NAME_MAX], small[8], longname[300];

	CHECK(quota_file_name("alice", out, sizeof(out)) == 0);
	CHECK_STR(out, "alice");
	CHECK(quota_file_name("a.b-c_d@example.org", out, sizeof(out)) == 0);
	CHECK_STR(out, "a.b-c_d@example.org");
	CHECK(quota_file_name(".hidden", out, sizeof(out)) == 0);
	CHECK_STR(out, "%2Ehidden");
	CHECK(quota_file_name("..", out, sizeof(out)) == 0);
	CHECK_STR(out, "%2E.");
	CHECK(quota_file_name("a/b c%", out, sizeof(out)) == 0);
	CHECK_STR(out, "a%2Fb%20c%25");
	CHECK(quota_file_name("\xc3\xa9t\xc3\xa9", out, sizeof(out)) == 0);
	CHECK_STR(out, "%C3%A9t%C3%A9");
	CHECK(quota_file_name("", out, sizeof(out)) == -EINVAL);
	CHECK(quota_file_name("abcdefgh", small, sizeof(small)) == -ENAMETOOLONG);
	CHECK(quota_file_name("abcdefg", small, sizeof(small)) == 0);
	CHECK(quota_file_name("abcde/", small, sizeof(small)) == -ENAMETOOLONG);
	/* A name the filesystem could not hold. */
	memset(longname, '/', 100);
	longname[100] = '\0';
	CHECK(quota_file_name(longname, out, sizeof(out)) == -ENAMETOOLONG);
}

static void test_format(void)
{
	struct quota_usage u = { 0, 0, 0 }, big = { UINT64_MAX, 7, 0 };
	char text[QUOTA_TEXT_MAX];
	size_t n;

	n = quota_format(text, sizeof(text), &(struct quota_usage){ 1048576, 12, 0 });
	CHECK(n == strlen("bytes=1048576\nfiles=12\n"));
	CHECK_STR(text, "bytes=1048576\nfiles=12\n");
	CHECK(quota_parse(text, n, &u) == 0);
	CHECK(u.bytes == 1048576 && u.files == 12);
	n = quota_format(text, sizeof(text), &big);
	CHECK(quota_parse(text, n, &u) == 0 && u.bytes == UINT64_MAX && u.files == 7);

	static const char *bad[] = {
		"", "bytes=1\n", "bytes=1\nfiles=2", "bytes=1\nfiles=2\n\n", "files=2\nbytes=1\n",
		"bytes=01\nfiles=2\n", "bytes=-1\nfiles=2\n", "bytes=\nfiles=2\n",
		"bytes=18446744073709551616\nfiles=0\n", "bytes=1 \nfiles=2\n", "Bytes=1\nfiles=2\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u = (struct quota_usage){ 5, 5, 0 };
		CHECK(quota_parse(bad[i], strlen(bad[i]), &u) == -EBADMSG);
		CHECK(u.bytes == 5 && u.files == 5);
	}
	CHECK(quota_parse("bytes=0\nfiles=0\n", 16, &u) == 0 && u.bytes == 0 && u.files == 0);

	/* Unsettled uploads in place: a third line, only when not 0. */
	n = quota_format(text, sizeof(text), &(struct quota_usage){ UINT64_MAX, UINT64_MAX, UINT64_MAX });
	CHECK(n > 0 && n <= QUOTA_TEXT_MAX);
	CHECK(quota_parse(text, n, &u) == 0 && u.unsettled == UINT64_MAX);
	n = quota_format(text, sizeof(text), &(struct quota_usage){ 1, 2, 3 });
	CHECK_STR(text, "bytes=1\nfiles=2\nunsettled=3\n");
	CHECK(quota_parse(text, n, &u) == 0 && u.bytes == 1 && u.files == 2 && u.unsettled == 3);
	static const char *bad_unsettled[] = { "bytes=1\nfiles=2\nunsettled=0\n",
					       "bytes=1\nfiles=2\nunsettled=1\nx",
					       "bytes=1\nfiles=2\nunsettled=\n" };
	for (size_t i = 0; i < sizeof(bad_unsettled) / sizeof(bad_unsettled[0]); i++)
		CHECK(quota_parse(bad_unsettled[i], strlen(bad_unsettled[i]), &u) == -EBADMSG);

	u = (struct quota_usage){ 10, 2, 0 };
	quota_add(&u, -4, -1);
	CHECK(u.bytes == 6 && u.files == 1);
	quota_add(&u, -100, -5);
	CHECK(u.bytes == 0 && u.files == 0);
	quota_add(&u, 9, 3);
	CHECK(u.bytes == 9 && u.files == 3);
}

static void test_file(void)
{
	char path[256];
	struct quota_usage u;
	struct stat st;
	bool empty = false;
	int dfd, fd, fd2;

	snprintf(path, sizeof(path), "%s/quota", dir);
	CHECK(quota_dir_open("relative/dir", false) == -EINVAL);
	dfd = quota_dir_open(path, false);
	CHECK(dfd >= 0);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	/* Opened again: still the same directory. */
	fd = quota_dir_open(path, false);
	CHECK(fd >= 0);
	close(fd);
	if (getuid() == 0) {
		CHECK(chmod(path, 0777) == 0);
		CHECK(quota_dir_open(path, true) == -EPERM);
		CHECK(chmod(path, 0700) == 0);
		fd = quota_dir_open(path, true);
		CHECK(fd >= 0);
		close(fd);
	}

	fd = quota_file_open(dfd, ".bob x", false, &empty);
	CHECK(fd >= 0);
	CHECK(empty);
	CHECK(fstatat(dfd, "%2Ebob%20x", &st, 0) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(quota_read(fd, &u) == -ENODATA);
	CHECK(quota_lock(fd) == 0);
	/* Another descriptor of the same file cannot take the lock meanwhile. */
	fd2 = quota_file_open(dfd, ".bob x", false, &empty);
	CHECK(fd2 >= 0);
	CHECK(flock(fd2, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK);
	CHECK(quota_write(fd, &(struct quota_usage){ 123456789012, 40, 0 }) == 0);
	quota_unlock(fd);
	CHECK(flock(fd2, LOCK_EX | LOCK_NB) == 0);
	CHECK(quota_read(fd2, &u) == 0 && u.bytes == 123456789012 && u.files == 40);
	/* A shorter text leaves nothing of the longer one. */
	CHECK(quota_write(fd2, &(struct quota_usage){ 1, 0, 0 }) == 0);
	CHECK(fstat(fd2, &st) == 0 && st.st_size == (off_t)strlen("bytes=1\nfiles=0\n"));
	quota_unlock(fd2);
	close(fd2);
	CHECK(quota_read(fd, &u) == 0 && u.bytes == 1 && u.files == 0);
	close(fd);
	fd = quota_file_open(dfd, ".bob x", false, &empty);
	CHECK(fd >= 0 && !empty);

	/* An upload in place is live while its descriptor holds the read lock:
	 * others see it, its own descriptor does not; closed, it is gone. */
	fd2 = quota_file_open(dfd, ".bob x", false, &empty);
	CHECK(fd2 >= 0);
	u = (struct quota_usage){ 1, 0, 0 };
	CHECK(quota_unsettle(fd2, &u) == 0 && u.unsettled == 1);
	CHECK(quota_unsettled_live(fd));
	CHECK(!quota_unsettled_live(fd2));
	quota_settle(fd2, &u);
	CHECK(u.unsettled == 0 && !quota_unsettled_live(fd));
	CHECK(quota_unsettle(fd2, &u) == 0 && quota_unsettled_live(fd));
	close(fd2); /* a crash: the kernel lets the lock go */
	CHECK(!quota_unsettled_live(fd));
	close(fd);

	/* Never through a symlink, never anything but a regular file. */
	CHECK(symlinkat("/etc/passwd", dfd, "mallory") == 0);
	CHECK(quota_file_open(dfd, "mallory", false, &empty) == -ELOOP);
	CHECK(mkdirat(dfd, "dir", 0700) == 0);
	CHECK(quota_file_open(dfd, "dir", false, &empty) < 0);
	if (getuid() == 0) {
		CHECK(linkat(dfd, "%2Ebob%20x", dfd, "carol", 0) == 0);
		CHECK(quota_file_open(dfd, "carol", true, &empty) == -EPERM);
	}
	close(dfd);
}

static void write_file(int dfd, const char *name, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)len) == 0);
	close(fd);
}

static void test_scan(void)
{
	char path[256];
	struct quota_usage u = { 99, 99, 0 };
	int root, d;

	snprintf(path, sizeof(path), "%s/tree", dir);
	CHECK(mkdir(path, 0755) == 0);
	root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(root >= 0);
	CHECK(quota_scan(root, &u) == 0);
	CHECK(u.bytes == 0 && u.files == 0);

	write_file(root, "a", 1000);
	write_file(root, ".ftpsd-upload-0123456789abcdef", 5000); /* left out */
	CHECK(symlinkat("a", root, "link") == 0);                  /* left out */
	CHECK(symlinkat("/", root, "rootlink") == 0);              /* never followed */
	CHECK(mkfifoat(root, "fifo", 0600) == 0);                  /* left out */
	CHECK(mkdirat(root, "sub", 0755) == 0);
	CHECK(mkdirat(root, "sub/deeper", 0755) == 0);
	CHECK(mkdirat(root, "empty", 0755) == 0);
	d = openat(root, "sub/deeper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(d >= 0);
	write_file(d, "b", 234);
	write_file(d, "c", 0);
	close(d);
	CHECK(quota_scan(root, &u) == 0);
	/* a, b, c; sub, sub/deeper, empty */
	CHECK(u.files == 6);
	CHECK(u.bytes == 1234);

	/* A deep tree: one descriptor at a time, whatever the depth. */
	char rel[4096] = "empty";
	for (int i = 0; i < 200; i++) {
		strcat(rel, "/d");
		CHECK(mkdirat(root, rel, 0755) == 0);
	}
	CHECK(quota_scan(root, &u) == 0);
	CHECK(u.files == 206 && u.bytes == 1234);

	/* A rescan writes what the tree holds, over whatever the file said. */
	bool empty;
	int dfd = quota_dir_open(dir, false);
	CHECK(dfd >= 0);
	int fd = quota_file_open(dfd, "rescanned", false, &empty);
	CHECK(fd >= 0 && empty);
	CHECK(quota_write(fd, &(struct quota_usage){ 5, 5, 0 }) == 0);
	u = (struct quota_usage){ 0, 0, 0 };
	CHECK(quota_rescan(fd, root, &u) == 0);
	CHECK(u.files == 206 && u.bytes == 1234);
	u = (struct quota_usage){ 0, 0, 0 };
	CHECK(quota_read(fd, &u) == 0 && u.files == 206 && u.bytes == 1234);
	/* The lock was given back. */
	CHECK(flock(fd, LOCK_EX | LOCK_NB) == 0);
	close(fd);
	close(dfd);
	close(root);
}

int main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_name();
	test_format();
	test_file();
	test_scan();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return CHECK_DONE();
}
