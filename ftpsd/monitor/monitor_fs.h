/* Every path, resolved by the kernel inside the user's root. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

void monitor_fs_set_root(int root_fd, bool read_only);
/* Hidden name prefix of uploads where the filesystem lacks O_TMPFILE:
 * listings leave such names out. */
#define UPLOAD_PREFIX ".ftpsd-upload-"

/* The logged-in user may change nothing. */
bool monitor_fs_read_only(void);

/* The kernel's containment, for monitor_fs.c and monitor_fs_upload.c: fds or
 * -errno. An absolute path inside the root (RESOLVE_IN_ROOT); -EPERM
 * before login. */
int monitor_fs_openat2(const char *path, int flags, mode_t mode);
/* One name below a directory already resolved inside the root
 * (RESOLVE_BENEATH, no symlinks). */
int monitor_fs_openat2_beneath(int dfd, const char *name, int flags, mode_t mode);
/* A path's parent directory opened with flags (| O_DIRECTORY) inside the
 * root, and its last component, which must be a real name, in base. */
int monitor_fs_open_parent(const char *path, char *base, size_t size, int flags);
/* 0 when fd is a regular file (st filled), -EISDIR or -EINVAL otherwise. */
int monitor_fs_regular(int fd, struct stat *st);
int monitor_fs_stat(const char *path, struct stat *st);
/* The last component itself, never followed (what DELE, RMD, RNTO change). */
int monitor_fs_lstat(const char *path, struct stat *st);
/* A file to read: IPC_OPEN_READ or IPC_OPEN_SEND (-ERANGE when offset is
 * past its end). */
int monitor_fs_open(const char *path, unsigned how, uint64_t offset, int *fd, uint64_t *size);

/* An upload in progress: the file the child writes, and where it goes. */
struct fs_upload {
	int fd;            /* the unnamed (or hidden) file, or in place the target */
	int dirfd;         /* the target's directory */
	char base[256];    /* the target's name in it */
	char tmpname[64];  /* the hidden name, without O_TMPFILE; else "" */
	bool atomic, unique;
	uint64_t start;    /* bytes before the first uploaded one (REST, APPE) */
	/* For quotas: whether the upload makes a new file of the tree's (no
	 * regular file had the name; in place, none was there), and the size
	 * of the one it replaces (in place: before it was opened). */
	bool creates;
	uint64_t old_size;
};
/* Start an upload (IPC_OPEN_WRITE from offset, APPEND, UNIQUE). Atomic: into
 * a file nobody sees, with the old content's first bytes that REST or APPE
 * keep; in place: the target itself. *fd is the child's copy; *start is the
 * file offset its data begins at. Nothing visible changes here, except in
 * place. Hidden upload files older than stale_before (left by a killed
 * session where O_TMPFILE is missing) are removed. -ERANGE: offset beyond
 * the file. */
int monitor_fs_upload_open(const char *path, unsigned how, uint64_t offset, bool atomic,
			   time_t stale_before, struct fs_upload *u, int *fd, uint64_t *start);
/* Would monitor_fs_upload_open succeed now? What it checks first, with
 * nothing created: before the 150 reply, the usual refusals. */
int monitor_fs_upload_check(const char *path, unsigned how, uint64_t offset, bool atomic,
			    bool *creates);
/* The upload is complete: put it in place (atomic), fsync the directory
 * when sync. Ends the upload either way. */
int monitor_fs_upload_commit(struct fs_upload *u, bool sync);
/* The upload failed: nothing of it stays (atomic). */
void monitor_fs_upload_discard(struct fs_upload *u);
/* The upload's file as it is now. */
int monitor_fs_upload_stat(const struct fs_upload *u, struct stat *st);
/* The size of what is at the target's name now, never followed: 0 and
 * *regular false when it is not a regular file (or nothing). */
uint64_t monitor_fs_upload_target_size(const struct fs_upload *u, bool *regular);
/* In place: cut the file back to size (what a quota lets it keep). */
int monitor_fs_upload_truncate(const struct fs_upload *u, uint64_t size);
/* Bytes written beyond start so far, as the file says. */
uint64_t monitor_fs_upload_size(const struct fs_upload *u);
/* Tests: act as on a filesystem without O_TMPFILE. */
void monitor_fs_test_no_tmpfile(void);
/* arg: the path as the client wrote it, which NLST names start with. */
int monitor_fs_list(const char *path, unsigned format, unsigned flags, const char *arg, int *fd);
int monitor_fs_mkdir(const char *path);
/* DELE (dir false) and RMD (dir true). */
int monitor_fs_remove(const char *path, bool dir);
int monitor_fs_rename(const char *from, const char *to);
int monitor_fs_chmod(const char *path, unsigned mode);
int monitor_fs_settime(const char *path, time_t mtime);
/* Format one listing line for a name and its stat; for tests. */
int monitor_fs_format(char *out, size_t size, unsigned format, unsigned facts, const char *name,
		      const struct stat *st, const char *link_target, const char *perm,
		      time_t now);
