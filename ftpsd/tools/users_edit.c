#include "users_edit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

/* As the server's reader (monitor_auth.c). */
#define USERS_MAX_SIZE (16 * 1024 * 1024)

static int take_lock(const char *path)
{
	char lock[4200];
	struct stat st;
	int fd;

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >= sizeof(lock))
		return -ENAMETOOLONG;
	/* The users file itself is replaced on every change, so its inode
	 * cannot carry the lock: a file beside it does. */
	fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = -errno;
			close(fd);
			return e;
		}
	}
	return fd;
}

int users_edit_open(struct users_file *u, const char *path, bool lock, bool may_create)
{
	struct stat st;
	int fd, r;

	memset(u, 0, sizeof(*u));
	u->path = path;
	u->lock_fd = -1;
	if (lock) {
		u->lock_fd = take_lock(path);
		if (u->lock_fd < 0)
			return u->lock_fd;
	}
	/* O_NONBLOCK: a FIFO put in its place must not hang the tool; it is
	 * then refused as not a regular file. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT && lock && may_create) {
		u->text = calloc(1, 1);
		if (u->text == NULL)
			return -ENOMEM;
		u->mode = 0600;
		u->uid = geteuid();
		u->gid = getegid();
		return 0;
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	r = file_read_fd(fd, USERS_MAX_SIZE - 1, 0, &u->text, &u->len);
	close(fd);
	if (r < 0)
		return r;
	u->size = u->len;
	u->exists = true;
	u->mode = st.st_mode & 07777;
	u->uid = st.st_uid;
	u->gid = st.st_gid;
	return 0;
}

int users_edit_find(const struct users_file *u, const char *name, size_t *start, size_t *end,
		    unsigned *lineno)
{
	size_t nlen = strlen(name);
	unsigned line = 0;

	for (size_t p = 0; p < u->len;) {
		const char *eol = memchr(u->text + p, '\n', u->len - p);
		size_t e = eol != NULL ? (size_t)(eol - u->text) : u->len;
		line++;
		/* As the server finds a user: the name, then ':' or the end. */
		if (u->text[p] != '#' && e - p >= nlen && memcmp(u->text + p, name, nlen) == 0 &&
		    (p + nlen == e || u->text[p + nlen] == ':')) {
			*start = p;
			*end = e;
			*lineno = line;
			return 1;
		}
		p = e + 1;
	}
	return 0;
}

int users_edit_splice(struct users_file *u, size_t start, size_t end, const char *s, size_t n)
{
	size_t len;
	char *t;

	if (start > end || end > u->len || n > USERS_MAX_SIZE)
		return -EINVAL;
	len = u->len - (end - start) + n;
	if (len >= USERS_MAX_SIZE)
		return -EFBIG;
	t = malloc(len + 1);
	if (t == NULL)
		return -ENOMEM;
	memcpy(t, u->text, start);
	memcpy(t + start, s, n);
	memcpy(t + start + n, u->text + end, u->len - end);
	t[len] = '\0';
	explicit_bzero(u->text, u->size);
	free(u->text);
	u->text = t;
	u->len = u->size = len;
	return 0;
}

int users_edit_append_line(struct users_file *u, const char *s, size_t n)
{
	bool newline = u->len > 0 && u->text[u->len - 1] != '\n';
	size_t total = n + 1 + (newline ? 1 : 0);
	char *line = malloc(total);
	int r;

	if (line == NULL)
		return -ENOMEM;
	if (newline)
		line[0] = '\n';
	memcpy(line + (newline ? 1 : 0), s, n);
	line[total - 1] = '\n';
	r = users_edit_splice(u, u->len, u->len, line, total);
	explicit_bzero(line, total);
	free(line);
	return r;
}

/* The directory of path, and its last component. */
static int split_path(const char *path, char *dir, size_t dsize, const char **base)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		snprintf(dir, dsize, ".");
		*base = path;
	} else {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= dsize)
			return -ENAMETOOLONG;
		memcpy(dir, path, n);
		dir[n] = '\0';
		*base = slash + 1;
	}
	return **base == '\0' ? -EISDIR : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int users_edit_commit(struct users_file *u)
{
	char dir[4096], tmp[4200];
	const char *base;
	int fd = -1, dfd, r;

	r = split_path(u->path, dir, sizeof(dir), &base);
	if (r < 0)
		return r;
	for (int tries = 0; fd < 0; tries++) {
		unsigned long long rnd;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%016llx", dir, base, rnd) >=
		    sizeof(tmp))
			return -ENAMETOOLONG;
		/* O_EXCL|O_NOFOLLOW: never a file or link someone put there;
		 * 0600 until it holds the whole text and its final owner. */
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd < 0 && (errno != EEXIST || tries == 10))
			return -errno;
	}
	r = write_all(fd, u->text, u->len);
	/* chown first: it would clear set-id bits fchmod had set. */
	if (r == 0 && fchown(fd, u->uid, u->gid) < 0)
		r = -errno;
	if (r == 0 && fchmod(fd, u->mode) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, u->path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	u->exists = true;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = fsync(dfd) < 0 ? -errno : 0;
	close(dfd);
	return r;
}

void users_edit_close(struct users_file *u)
{
	if (u->text != NULL) {
		explicit_bzero(u->text, u->size + 1);
		free(u->text);
		u->text = NULL;
	}
	if (u->lock_fd >= 0)
		close(u->lock_fd);
	u->lock_fd = -1;
}
