/* The bounded file reader: the cap is the largest file read, one byte more
 * is refused, FILE_HEAD cuts instead, and FILE_NOFOLLOW and FILE_PRIVATE
 * refuse what they say. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "file.h"

static char dir[] = "/tmp/test-file-XXXXXX";

static const char *path_of(const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void write_file(const char *name, const char *text, size_t len, mode_t mode)
{
	int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	CHECK(fd >= 0);
	CHECK(write(fd, text, len) == (ssize_t)len);
	CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

static void test_cap(void)
{
	char *buf = NULL;
	size_t len = 99;

	write_file("ten", "0123456789", 10, 0644);
	/* Exactly cap bytes: read, and NUL-terminated. */
	CHECK(file_read_all(path_of("ten"), 10, 0, &buf, &len) == 0);
	CHECK(len == 10 && buf != NULL && buf[10] == '\0');
	CHECK_STR(buf, "0123456789");
	free(buf);
	/* One byte past it: refused, nothing handed back. */
	buf = NULL;
	CHECK(file_read_all(path_of("ten"), 9, 0, &buf, &len) == -EFBIG);
	CHECK(buf == NULL);
	/* FILE_HEAD: the first cap bytes. */
	CHECK(file_read_all(path_of("ten"), 4, FILE_HEAD, &buf, &len) == 0);
	CHECK(len == 4);
	CHECK_STR(buf, "0123");
	free(buf);
	/* Empty. */
	write_file("empty", "", 0, 0644);
	CHECK(file_read_all(path_of("empty"), 10, 0, &buf, &len) == 0);
	CHECK(len == 0 && buf[0] == '\0');
	free(buf);
	CHECK(file_read_all(path_of("missing"), 10, 0, &buf, &len) == -ENOENT);
	/* A directory opens but does not read. */
	CHECK(file_read_all(dir, 10, 0, &buf, &len) == -EISDIR);
}

static void test_nofollow_private(void)
{
	char *buf = NULL;
	size_t len = 0;
	char target[256];

	write_file("secret", "0123456789abcdef0123456789abcdef", 32, 0600);
	CHECK(file_read_all(path_of("secret"), 64, FILE_PRIVATE | FILE_NOFOLLOW, &buf, &len) == 0);
	CHECK(len == 32);
	free(buf);
	write_file("open", "0123456789abcdef0123456789abcdef", 32, 0640);
	CHECK(file_read_all(path_of("open"), 64, FILE_PRIVATE, &buf, &len) == -EPERM);
	snprintf(target, sizeof(target), "%s", path_of("secret"));
	CHECK(symlink(target, path_of("link")) == 0);
	CHECK(file_read_all(path_of("link"), 64, FILE_NOFOLLOW, &buf, &len) == -ELOOP);
	CHECK(file_read_all(path_of("link"), 64, 0, &buf, &len) == 0);
	free(buf);
	/* Not a regular file. */
	CHECK(file_read_all(dir, 64, FILE_PRIVATE, &buf, &len) == -EPERM);
	/* The descriptor interface reports open and read apart. */
	int fd = file_open(path_of("secret"), 0);
	CHECK(fd >= 0);
	CHECK(file_read_fd(fd, 31, 0, &buf, &len) == -EFBIG);
	close(fd);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	test_cap();
	test_nofollow_private();
	const char *names[] = { "ten", "empty", "secret", "open", "link" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)unlink(path_of(names[i]));
	(void)rmdir(dir);
	return CHECK_DONE();
}
