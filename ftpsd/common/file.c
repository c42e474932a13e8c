#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_open(const char *path, unsigned flags)
{
	int fd = open(path,
		      O_RDONLY | O_CLOEXEC | O_NOCTTY | ((flags & FILE_NOFOLLOW) ? O_NOFOLLOW : 0));
	struct stat st;

	if (fd < 0)
		return -errno;
	/* A secret others can read, or one another user put there, is no
	 * secret: checked on what was opened, so a swap of the path after
	 * the check changes nothing. */
	if ((flags & FILE_PRIVATE) && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
				       st.st_uid != geteuid() || (st.st_mode & 077) != 0)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int file_read_fd(int fd, size_t cap, unsigned flags, char **out, size_t *len)
{
	/* One byte more than cap tells a file of cap bytes from a longer one;
	 * the same byte then holds the NUL. */
	size_t want = (flags & FILE_HEAD) ? cap : cap + 1, n = 0;
	char *buf;

	if (cap >= SIZE_MAX / 2)
		return -EINVAL;
	buf = malloc(cap + 1);
	if (buf == NULL)
		return -ENOMEM;
	while (n < want) {
		ssize_t r = read(fd, buf + n, want - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;
			explicit_bzero(buf, n);
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > cap) {
		explicit_bzero(buf, n);
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int file_read_all(const char *path, size_t cap, unsigned flags, char **buf, size_t *len)
{
	int fd = file_open(path, flags), r;

	if (fd < 0)
		return fd;
	r = file_read_fd(fd, cap, flags, buf, len);
	close(fd);
	return r;
}
