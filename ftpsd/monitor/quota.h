/* Quotas: one small usage file per user in quota-dir, read and changed only
 * under flock(LOCK_EX) on its own descriptor, so that the sessions of a user
 * share it without a daemon, and a process that dies holds no lock. The
 * format is fixed (ftpsd-user reads and rescans it through these functions):
 *
 *     <quota-dir>/<escaped user name>    mode 0600, owned by root
 *     bytes=N\nfiles=N\n
 *
 * Helpers return 0 or -errno and do not log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a user's tree holds: regular files and directories below the root
 * (not the root itself), and the regular files' bytes (st_size). */
struct quota_usage {
	uint64_t bytes, files;
	/* Uploads in place that started and have not ended: their growth is
	 * counted only at their end, so one whose session died leaves the
	 * count short. Each live one holds a read lock on QUOTA_UNSETTLED_LOCK
	 * of the usage file; unsettled ones that no one holds were cut off by a
	 * crash, and the tree is counted again (quota_unsettled_live). */
	uint64_t unsettled;
};
#define QUOTA_UNSETTLED_LOCK ((off_t)1 << 40)

/* Longest escaped name: every byte of a 255-byte name as %XX, and a NUL. */
#define QUOTA_NAME_MAX (3 * 255 + 1)
/* Longest usage file: "bytes=" 20 digits "\nfiles=" 20 digits "\n", and
 * "unsettled=" 20 digits "\n" when not 0. */
#define QUOTA_TEXT_MAX 96

/* The usage file's name for a user: bytes outside [A-Za-z0-9_.@-], and a
 * leading '.', as %XX (uppercase hex). -EINVAL for an empty name,
 * -ENAMETOOLONG when it does not fit. */
int quota_file_name(const char *user, char *out, size_t size);

/* quota-dir, created (0700) when missing. As root (check_owner), one not
 * owned by root or writable by group or others is refused (-EPERM); one
 * that is not a directory is -ENOTDIR. Returns an O_DIRECTORY descriptor. */
int quota_dir_open(const char *dir, bool check_owner);

/* Would quota_dir_open() work, without creating anything? 0, or -errno
 * with *why saying what is wrong (a missing directory whose parent exists
 * is fine: it is made at the first login). */
int quota_dir_check(const char *dir, bool check_owner, const char **why);

/* The user's usage file in the directory dfd, created (0600) if missing,
 * O_RDWR | O_CLOEXEC | O_NOFOLLOW; *empty when it holds nothing yet (new,
 * or never written: a scan must fill it). As root, a file not owned by
 * root or with more than one link is refused (-EPERM). */
int quota_file_open(int dfd, const char *user, bool check_owner, bool *empty);

/* Take and give back the file's lock (LOCK_EX on this descriptor). */
int quota_lock(int fd);
void quota_unlock(int fd);

/* "bytes=N\nfiles=N\n" and, when not 0, "unsettled=N\n", exactly: -EBADMSG
 * for anything else. */
int quota_parse(const char *text, size_t len, struct quota_usage *u);
/* The file's text for u; its length. */
size_t quota_format(char *out, size_t size, const struct quota_usage *u);

/* Read the usage (under the lock). -ENODATA when the file is empty. */
int quota_read(int fd, struct quota_usage *u);
/* Write it (under the lock): the new text, then the length cut to it. */
int quota_write(int fd, const struct quota_usage *u);

/* Count the tree below root_fd (a directory, O_PATH is enough): regular
 * files and directories, and the regular files' st_size, without following
 * symlinks and leaving out the hidden files of unfinished uploads
 * (".ftpsd-upload-*"). A directory that cannot be read counts itself only.
 * Holds one descriptor at a time besides root_fd. */
int quota_scan(int root_fd, struct quota_usage *u);

/* ftpsd-user quota NAME --rescan: under the lock of the usage file fd,
 * count the tree below root_fd and write what it holds; *u filled. (The
 * monitor scans as the user, so a tool scanning as root should change ids
 * first where some directories are closed to the user.) */
int quota_rescan(int fd, int root_fd, struct quota_usage *u);

/* An upload in place starts (under the lock): counted as unsettled, and
 * the read lock that says it is alive taken (0 or -errno). */
int quota_unsettle(int fd, struct quota_usage *u);
/* It ended, its growth counted (under the lock): no longer unsettled. */
void quota_settle(int fd, struct quota_usage *u);
/* Does some other descriptor than fd's own hold the lock of a live upload
 * in place? */
bool quota_unsettled_live(int fd);
/* usage + (delta), each floored at 0: what DELE, RMD and a commit do. */
void quota_add(struct quota_usage *u, int64_t bytes, int64_t files);
