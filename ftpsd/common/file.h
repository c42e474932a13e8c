/* Reading a small file whole, bounded: the configuration, the users file,
 * certificates, private keys, the ticket secret. One reader, so that every
 * such file is opened the same way (O_CLOEXEC, O_NOCTTY), read through
 * EINTR and refused past its cap. Helpers return 0 or -errno and log
 * nothing: the caller says what the file was for. */
#pragma once

#include <stddef.h>

enum {
	FILE_NOFOLLOW = 1, /* a symbolic link as the last component is refused (-ELOOP) */
	FILE_PRIVATE = 2,  /* only a regular file of the effective user with no group or
			    * other permission bits (else -EPERM) */
	FILE_HEAD = 4,	   /* a file longer than cap is cut at cap, not refused */
};

/* Open path for file_read_fd(). With FILE_PRIVATE the open file is checked
 * (fstat), not the path. A descriptor, or -errno. */
int file_open(const char *path, unsigned flags);

/* Read fd to its end into a new buffer: at most cap bytes, then a NUL (not
 * counted in *len). 0; -EFBIG past cap (unless FILE_HEAD); -errno of read.
 * On failure nothing is left allocated and what was read is wiped; on
 * success the caller frees *buf, wiping it first when it is secret. */
int file_read_fd(int fd, size_t cap, unsigned flags, char **buf, size_t *len);

/* file_open(), file_read_fd() and close(): for callers that need not tell
 * a failed open from a failed read. */
int file_read_all(const char *path, size_t cap, unsigned flags, char **buf, size_t *len);
