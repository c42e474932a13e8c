/* Editing the users file: the user's line is found as the server finds it,
 * everything else is kept byte for byte, the file is replaced with its mode,
 * and symbolic links or other file types are refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "users_edit.h"

static char dir[] = "/tmp/test-users-edit-XXXXXX";
static char path[256];

static void write_text(const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

static char *read_text(void)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_find(void)
{
	struct users_file u;
	size_t s = 0, e = 0;
	unsigned line = 0;

	write_text("# alice:x:1:1:/\n\nalice2:x:1:1:/a\nalice:h:2:2:/b\nbob\n", 0640);
	CHECK(users_edit_open(&u, path, false, false) == 0);
	CHECK(users_edit_find(&u, "alice", &s, &e, &line) == 1); /* not the comment, not alice2 */
	CHECK(line == 4 && e - s == 14 && memcmp(u.text + s, "alice:h:2:2:/b", 14) == 0);
	CHECK(users_edit_find(&u, "bob", &s, &e, &line) == 1 && line == 5);
	CHECK(users_edit_find(&u, "carol", &s, &e, &line) == 0);
	CHECK(users_edit_find(&u, "ali", &s, &e, &line) == 0);
	users_edit_close(&u);
}

static void test_edit_keeps_the_rest(void)
{
	struct users_file u;
	struct stat st;
	size_t s = 0, e = 0;
	unsigned line = 0;
	const char *before = "# c\n\nalice:h:2:2:/b\n  odd line\nbob:h:3:3:/c"; /* no final \n */

	write_text(before, 0640);
	CHECK(users_edit_open(&u, path, true, false) == 0);
	CHECK(users_edit_find(&u, "alice", &s, &e, &line) == 1);
	CHECK(users_edit_splice(&u, s, e + 1, "", 0) == 0);
	CHECK(users_edit_append_line(&u, "carol:h:4:4:/d", 14) == 0);
	CHECK(users_edit_commit(&u) == 0);
	users_edit_close(&u);
	CHECK_STR(read_text(), "# c\n\n  odd line\nbob:h:3:3:/c\ncarol:h:4:4:/d\n");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);
	/* Nothing left beside it but the lock. */
	char lock[300];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	CHECK(access(lock, F_OK) == 0);
}

static void test_refusals(void)
{
	struct users_file u;
	char link[300], fifo[300];

	snprintf(link, sizeof(link), "%s/link", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK(symlink(path, link) == 0);
	CHECK(users_edit_open(&u, link, false, false) == -ELOOP);
	users_edit_close(&u);
	CHECK(mkfifo(fifo, 0600) == 0);
	CHECK(users_edit_open(&u, fifo, false, false) == -EINVAL);
	users_edit_close(&u);
	CHECK(users_edit_open(&u, dir, false, false) < 0);
	users_edit_close(&u);
	/* A missing file: an error, or a new empty one for add. */
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/new-users", dir);
	CHECK(users_edit_open(&u, missing, false, false) == -ENOENT);
	users_edit_close(&u);
	CHECK(users_edit_open(&u, missing, true, true) == 0 && u.len == 0 && !u.exists);
	CHECK(users_edit_append_line(&u, "a:h:1:1:/", 9) == 0 && users_edit_commit(&u) == 0);
	users_edit_close(&u);
	struct stat st;
	CHECK(stat(missing, &st) == 0 && (st.st_mode & 07777) == 0600);
	unlink(missing);
	snprintf(missing, sizeof(missing), "%s/new-users.lock", dir);
	unlink(missing);
	unlink(link);
	unlink(fifo);
}

int main(void)
{
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/users", dir);
	test_find();
	test_edit_keeps_the_rest();
	test_refusals();
	char lock[300];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock);
	unlink(path);
	rmdir(dir);
	return CHECK_DONE();
}
