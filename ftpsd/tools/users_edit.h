/* Editing the users file in place of the administrator's editor: under a
 * lock, whole, replaced atomically, every line but the one changed kept byte
 * for byte. Helpers return 0 or -errno and print nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct users_file {
	const char *path;
	char *text; /* NUL-terminated, len bytes; wiped when freed (it holds hashes) */
	size_t len, size;
	int lock_fd;	/* -1 when read without the lock */
	bool exists;	/* false: a new file, created by users_edit_commit */
	mode_t mode;	/* of the original (0600 for a new file) */
	uid_t uid;
	gid_t gid;
};

/* Read path into u. With lock, first take an exclusive flock on
 * "<path>.lock" (created 0600 if missing), held until users_edit_close(),
 * and, with may_create, a missing file reads as an empty new one. A
 * symbolic link is refused (-ELOOP), so is anything but a regular file
 * (-EINVAL). */
int users_edit_open(struct users_file *u, const char *path, bool lock, bool may_create);

/* The line of user name (its first field is name; comments never are):
 * 1 and its bytes [*start, *end) without the newline, its number in
 * *lineno; 0 when there is none. */
int users_edit_find(const struct users_file *u, const char *name, size_t *start, size_t *end,
		    unsigned *lineno);

/* Replace bytes [start, end) of the text by n bytes of s. */
int users_edit_splice(struct users_file *u, size_t start, size_t end, const char *s, size_t n);

/* Append a line (s, n bytes, no newline): after a newline of its own when
 * the file does not end with one. */
int users_edit_append_line(struct users_file *u, const char *s, size_t n);

/* Replace the file with the text: a new file in its directory (O_EXCL,
 * 0600, then the original's owner and mode), fsync, rename over it, fsync
 * of the directory. A reader sees the old file or the new one, whole. */
int users_edit_commit(struct users_file *u);

/* Wipe and free the text; release the lock. */
void users_edit_close(struct users_file *u);
