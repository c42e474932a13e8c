/* Uploads of a logged-in session (STOR, APPE, STOU), resolved inside the
 * user's root as every path is (monitor_fs.c): atomic ones are written
 * where nobody sees them and put in place only when complete. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "monitor_fs.h"

/* Atomic uploads are written into an unnamed O_TMPFILE in the target's
 * directory: nobody sees them, and they vanish with the last descriptor,
 * whichever process dies. Only a complete upload gets a name, in one step
 * (linkat, or renameat over the old file). Where the filesystem has no
 * O_TMPFILE they are written under a hidden name of this prefix instead,
 * which listings never show and which is removed on every path. */
static bool fs_no_tmpfile; /* tests: behave as on a filesystem without O_TMPFILE */

void monitor_fs_test_no_tmpfile(void)
{
	fs_no_tmpfile = true;
}

static void random_name(char *out, size_t size)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	snprintf(out, size, UPLOAD_PREFIX "%016llx", (unsigned long long)v);
}

/* Hidden upload files that a session killed outright left behind, older
 * than any upload still running can be (each write moves the mtime). */
static void remove_stale(int dfd, time_t older_than)
{
	int fd = monitor_fs_openat2_beneath(dfd, ".", O_RDONLY | O_DIRECTORY, 0);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	struct stat st;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, UPLOAD_PREFIX, strlen(UPLOAD_PREFIX)) != 0)
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    st.st_mtime < older_than && unlinkat(dfd, e->d_name, 0) == 0)
			log_info("removed %s, left by an upload that was cut off", e->d_name);
	}
	closedir(d);
}

/* The file an atomic upload writes: unnamed, or hidden where it must be. */
static int upload_tmpfile(struct fs_upload *u, time_t stale_before)
{
	int fd = -EOPNOTSUPP;

	if (!fs_no_tmpfile)
		fd = monitor_fs_openat2_beneath(u->dirfd, ".", O_TMPFILE | O_WRONLY, 0666);
	/* EISDIR and EOPNOTSUPP are how kernels and filesystems without
	 * O_TMPFILE answer. */
	if (fd != -EOPNOTSUPP && fd != -EISDIR)
		return fd;
	remove_stale(u->dirfd, stale_before);
	for (int i = 0; i < 8; i++) {
		random_name(u->tmpname, sizeof(u->tmpname));
		fd = monitor_fs_openat2_beneath(u->dirfd, u->tmpname, O_WRONLY | O_CREAT | O_EXCL, 0666);
		if (fd != -EEXIST)
			break;
	}
	if (fd < 0)
		u->tmpname[0] = '\0';
	return fd;
}

/* The old content an APPE or a REST+STOR builds on: its first len bytes. */
static int copy_prefix(int from, int to, uint64_t len)
{
	loff_t in = 0, out = 0;

	while ((uint64_t)in < len) {
		/* A reflink where the filesystem can, a copy in the kernel elsewhere. */
		ssize_t n = copy_file_range(from, &in, to, &out, (size_t)(len - (uint64_t)in), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank meanwhile */
	}
	return 0;
}

/* Where an upload goes and whether it may: u->dirfd and u->base filled,
 * *exists and *st say what is there now. Nothing is created or changed. */
static int upload_target(const char *path, unsigned how, uint64_t offset, bool atomic,
			 struct fs_upload *u, bool *exists, struct stat *st)
{
	memset(u, 0, sizeof(*u));
	u->fd = u->dirfd = -1;
	if (how != IPC_OPEN_WRITE && how != IPC_OPEN_APPEND && how != IPC_OPEN_UNIQUE)
		return -EINVAL;
	if (monitor_fs_read_only())
		return -EACCES;
	if (how != IPC_OPEN_WRITE && offset != 0)
		return -EINVAL;
	u->dirfd = monitor_fs_open_parent(path, u->base, sizeof(u->base), O_RDONLY);
	if (u->dirfd < 0)
		return u->dirfd;
	u->atomic = atomic;
	u->unique = how == IPC_OPEN_UNIQUE;

	/* What is there now. The name is not followed: an atomic upload
	 * replaces a symlink, it never writes through one. */
	*exists = fstatat(u->dirfd, u->base, st, AT_SYMLINK_NOFOLLOW) == 0;
	if (!*exists && errno != ENOENT)
		return -errno;
	if (*exists && u->unique)
		return -EEXIST;
	if (*exists && !S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode))
		return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	if (offset > 0 && (!*exists || (S_ISREG(st->st_mode) && offset > (uint64_t)st->st_size)))
		return -ERANGE;
	/* Atomic: a regular file comes where none was (a symlink is replaced);
	 * in place, the name is followed, and only a missing one is new. */
	u->creates = atomic ? !*exists || !S_ISREG(st->st_mode) : !*exists;
	u->old_size = *exists && S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	/* Atomic: a new name in the directory. In place: the file itself, or
	 * a new one in the directory. */
	if (atomic || !*exists)
		return faccessat(u->dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0 ? -errno : 0;
	if (S_ISREG(st->st_mode))
		return faccessat(u->dirfd, u->base, W_OK, AT_EACCESS) < 0 ? -errno : 0;
	return 0;
}

int monitor_fs_upload_check(const char *path, unsigned how, uint64_t offset, bool atomic,
			    bool *creates)
{
	struct fs_upload u;
	struct stat st;
	bool exists;
	int r = upload_target(path, how, offset, atomic, &u, &exists, &st);

	*creates = u.creates;
	monitor_fs_upload_discard(&u);
	/* In place, a file another upload is writing: 451 now, before the
	 * client opens a data connection the open would refuse it on. (One
	 * that starts in between is still refused by the lock at the open.) */
	if (r == 0 && !atomic && exists) {
		int fd = monitor_fs_openat2(path, O_RDONLY | O_NONBLOCK, 0);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fd >= 0 && monitor_fs_regular(fd, &st) == 0 && fcntl(fd, F_OFD_GETLK, &fl) == 0 &&
		    fl.l_type != F_UNLCK)
			r = -EBUSY;
		if (fd >= 0)
			close(fd);
	}
	return r;
}

int monitor_fs_upload_open(const char *path, unsigned how, uint64_t offset, bool atomic,
			   time_t stale_before, struct fs_upload *u, int *out, uint64_t *start)
{
	struct stat st;
	bool exists = false;
	int fd = -1, old = -1, r;

	r = upload_target(path, how, offset, atomic, u, &exists, &st);
	if (r < 0)
		goto fail;
	/* What an atomic upload builds on: REST's first bytes, or all for APPE. */
	if (atomic && exists && (how == IPC_OPEN_APPEND || offset > 0)) {
		old = monitor_fs_openat2(path, O_RDONLY | O_NONBLOCK, 0);
		r = old < 0 ? old : monitor_fs_regular(old, &st);
		if (r < 0)
			goto fail;
		u->start = how == IPC_OPEN_APPEND ? (uint64_t)st.st_size : offset;
		if (offset > (uint64_t)st.st_size) {
			r = -ERANGE;
			goto fail;
		}
	}

	if (atomic) {
		fd = upload_tmpfile(u, stale_before);
		if (fd < 0) {
			r = fd;
			goto fail;
		}
		u->fd = fd;
		if (u->start > 0 && (r = copy_prefix(old, fd, u->start)) < 0)
			goto fail;
	} else {
		int flags = O_WRONLY | O_CREAT | O_NONBLOCK;
		/* STOR's truncation comes after the old size is known (quotas). */
		if (how == IPC_OPEN_UNIQUE)
			flags |= O_EXCL;
		/* In place, the name is followed as the tree allows (RESOLVE_IN_ROOT). */
		fd = monitor_fs_openat2(path, flags, 0666);
		if (fd < 0) {
			r = fd;
			goto fail;
		}
		u->fd = fd;
		if ((r = monitor_fs_regular(fd, &st)) < 0)
			goto fail;
		/* One upload in place of a file at a time (an OFD lock the kernel
		 * drops with the last descriptor): a second STOR would truncate
		 * bytes the first has not yet counted against the quota, and two
		 * writers interleave anyway. -EBUSY: 451, try again later. */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
			r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
			goto fail;
		}
		u->old_size = (uint64_t)st.st_size;
		if (how == IPC_OPEN_WRITE && offset == 0 && st.st_size > 0 && ftruncate(fd, 0) < 0) {
			r = -errno;
			goto fail;
		}
		if (how == IPC_OPEN_APPEND)
			u->start = (uint64_t)st.st_size;
		if (offset > (uint64_t)st.st_size) {
			r = -ERANGE;
			goto fail;
		}
		u->start = how == IPC_OPEN_APPEND ? (uint64_t)st.st_size : offset;
		/* REST: what follows the offset is what the client sends again. */
		if (offset > 0 && ftruncate(fd, (off_t)offset) < 0) {
			r = -errno;
			goto fail;
		}
	}
	/* O_NONBLOCK off; O_APPEND kept for APPE in place, where another
	 * process (not an FTP upload) may append at the same time. */
	if (fcntl(u->fd, F_SETFL, !atomic && how == IPC_OPEN_APPEND ? O_APPEND : 0) < 0) {
		r = -errno;
		goto fail;
	}
	*out = fcntl(u->fd, F_DUPFD_CLOEXEC, 0);
	if (*out < 0) {
		r = -errno;
		goto fail;
	}
	if (old >= 0)
		close(old);
	*start = u->start;
	return 0;
fail:
	if (old >= 0)
		close(old);
	monitor_fs_upload_discard(u);
	return r;
}

/* Link the unnamed file fd at name in dfd: with AT_EMPTY_PATH where the
 * kernel lets the file's opener do that (Linux 6.10), else through its
 * /proc/self/fd entry. Never replaces: -EEXIST when the name is taken. */
static int link_unnamed(int fd, int dfd, const char *name)
{
	char proc[64];

	if (linkat(fd, "", dfd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

/* Give the file the name it was uploaded to, replacing what was there. */
static int upload_link(struct fs_upload *u)
{
	char hidden[64];
	int r;

	if (u->tmpname[0] != '\0') {
		/* The hidden file becomes the target (STOU: only a free name). */
		if (u->unique) {
			if (linkat(u->dirfd, u->tmpname, u->dirfd, u->base, 0) < 0)
				return -errno;
			(void)unlinkat(u->dirfd, u->tmpname, 0);
		} else if (renameat(u->dirfd, u->tmpname, u->dirfd, u->base) < 0) {
			return -errno;
		}
		u->tmpname[0] = '\0';
		return 0;
	}
	r = link_unnamed(u->fd, u->dirfd, u->base);
	if (r != -EEXIST || u->unique)
		return r;
	/* A file is there: link under a hidden name first, then rename over
	 * it, so that readers see the old file or the new one, never neither. */
	for (int i = 0; i < 8; i++) {
		random_name(hidden, sizeof(hidden));
		r = link_unnamed(u->fd, u->dirfd, hidden);
		if (r != -EEXIST)
			break;
	}
	if (r < 0)
		return r;
	if (renameat(u->dirfd, hidden, u->dirfd, u->base) < 0) {
		r = -errno;
		(void)unlinkat(u->dirfd, hidden, 0);
		return r;
	}
	return 0;
}

int monitor_fs_upload_commit(struct fs_upload *u, bool sync)
{
	struct stat st;
	int r = 0;

	if (u->fd < 0)
		return -EBADF;
	if (u->atomic) {
		/* A replaced file keeps its permissions, less setuid, setgid and
		 * sticky: new content must not inherit the right to run as anyone. */
		if (fstatat(u->dirfd, u->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode))
				r = -EISDIR;
			else if (S_ISREG(st.st_mode) && fchmod(u->fd, st.st_mode & 0777) < 0)
				r = -errno;
		}
		if (r == 0)
			r = upload_link(u);
		/* The new name must survive a crash as the data does. */
		if (r == 0 && sync && fsync(u->dirfd) < 0)
			r = -errno;
	}
	monitor_fs_upload_discard(u);
	return r;
}

void monitor_fs_upload_discard(struct fs_upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	if (u->tmpname[0] != '\0' && u->dirfd >= 0)
		(void)unlinkat(u->dirfd, u->tmpname, 0);
	if (u->dirfd >= 0)
		close(u->dirfd);
	u->fd = u->dirfd = -1;
	u->tmpname[0] = '\0';
}

int monitor_fs_upload_stat(const struct fs_upload *u, struct stat *st)
{
	if (u->fd < 0)
		return -EBADF;
	return fstat(u->fd, st) < 0 ? -errno : 0;
}

uint64_t monitor_fs_upload_target_size(const struct fs_upload *u, bool *regular)
{
	struct stat st;

	*regular = u->dirfd >= 0 && fstatat(u->dirfd, u->base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		   S_ISREG(st.st_mode);
	return *regular ? (uint64_t)st.st_size : 0;
}

int monitor_fs_upload_truncate(const struct fs_upload *u, uint64_t size)
{
	if (u->fd < 0 || u->atomic)
		return -EBADF;
	return ftruncate(u->fd, (off_t)size) < 0 ? -errno : 0;
}

uint64_t monitor_fs_upload_size(const struct fs_upload *u)
{
	struct stat st;

	if (u->fd < 0 || fstat(u->fd, &st) < 0 || (uint64_t)st.st_size < u->start)
		return 0;
	return (uint64_t)st.st_size - u->start;
}
