/* Quotas' usage files and the scan of a user's tree (quota.h). Monitor-side,
 * and free of the session's state so that ftpsd-user can use it too. */
#include "quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The hidden names of unfinished uploads (monitor_fs.h's UPLOAD_PREFIX). */
#define QUOTA_HIDDEN_PREFIX ".ftpsd-upload-"

static bool plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '@' || c == '-';
}

int quota_file_name(const char *user, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	if (user[0] == '\0')
		return -EINVAL;
	for (size_t i = 0; user[i] != '\0'; i++) {
		unsigned char c = (unsigned char)user[i];
		if (plain(c) && !(i == 0 && c == '.')) {
			if (j + 1 >= size)
				return -ENAMETOOLONG;
			out[j++] = (char)c;
			continue;
		}
		if (j + 3 >= size)
			return -ENAMETOOLONG;
		out[j++] = '%';
		out[j++] = hex[c >> 4];
		out[j++] = hex[c & 15];
	}
	if (j >= size || j > 255)
		return -ENAMETOOLONG;
	out[j] = '\0';
	return 0;
}

int quota_dir_open(const char *dir, bool check_owner)
{
	struct stat st;
	int fd;

	if (dir[0] != '/')
		return -EINVAL;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ELOOP ? -ENOTDIR : -errno;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Whoever could write here could replace a user's usage file. */
	if (check_owner && (st.st_uid != 0 || (st.st_mode & 022) != 0)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int quota_dir_check(const char *dir, bool check_owner, const char **why)
{
	char parent[PATH_MAX];
	struct stat st;

	*why = "";
	if (dir[0] != '/') {
		*why = "not an absolute path";
		return -EINVAL;
	}
	if (lstat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			*why = "not a directory";
			return -ENOTDIR;
		}
		if (check_owner && (st.st_uid != 0 || (st.st_mode & 022) != 0)) {
			*why = "not owned by root, or writable by others";
			return -EPERM;
		}
		return 0;
	}
	if (errno != ENOENT) {
		*why = strerror(errno);
		return -errno;
	}
	/* Missing: made at the first login, in a parent that must be there. */
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	const char *slash = memrchr(dir, '/', n);
	size_t plen = slash == NULL || slash == dir ? 1 : (size_t)(slash - dir);
	if (plen >= sizeof(parent)) {
		*why = strerror(ENAMETOOLONG);
		return -ENAMETOOLONG;
	}
	memcpy(parent, dir, plen);
	parent[plen] = '\0';
	if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*why = "missing, and so is the directory it would be made in";
		return -ENOENT;
	}
	return 0;
}

int quota_file_open(int dfd, const char *user, bool check_owner, bool *empty)
{
	char name[QUOTA_NAME_MAX];
	struct stat st;
	int fd, r;

	r = quota_file_name(user, name, sizeof(name));
	if (r < 0)
		return r;
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
		    0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto fail;
	}
	if (check_owner && (st.st_uid != 0 || st.st_nlink != 1 || (st.st_mode & 077) != 0)) {
		r = -EPERM;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		r = -errno;
		goto fail;
	}
	*empty = st.st_size == 0;
	return fd;
fail:
	close(fd);
	return r;
}

int quota_lock(int fd)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

void quota_unlock(int fd)
{
	(void)flock(fd, LOCK_UN);
}

/* "key=N\n" at *p, N a decimal without a sign or leading zeros. */
static int parse_field(const char **p, const char *end, const char *key, uint64_t *v)
{
	size_t k = strlen(key);
	const char *s = *p;
	uint64_t n = 0;

	if ((size_t)(end - s) < k || memcmp(s, key, k) != 0)
		return -EBADMSG;
	s += k;
	const char *digits = s;
	while (s < end && *s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		n = n * 10 + d;
		s++;
	}
	if (s == digits || (s - digits > 1 && digits[0] == '0') || s == end || *s != '\n')
		return -EBADMSG;
	*p = s + 1;
	*v = n;
	return 0;
}

int quota_parse(const char *text, size_t len, struct quota_usage *u)
{
	const char *p = text, *end = text + len;
	struct quota_usage v;

	v.unsettled = 0;
	if (parse_field(&p, end, "bytes=", &v.bytes) < 0 ||
	    parse_field(&p, end, "files=", &v.files) < 0)
		return -EBADMSG;
	if (p != end && (parse_field(&p, end, "unsettled=", &v.unsettled) < 0 || v.unsettled == 0))
		return -EBADMSG;
	if (p != end)
		return -EBADMSG;
	*u = v;
	return 0;
}

size_t quota_format(char *out, size_t size, const struct quota_usage *u)
{
	int n = u->unsettled == 0
			? snprintf(out, size, "bytes=%" PRIu64 "\nfiles=%" PRIu64 "\n", u->bytes,
				   u->files)
			: snprintf(out, size, "bytes=%" PRIu64 "\nfiles=%" PRIu64 "\nunsettled=%" PRIu64
					      "\n",
				   u->bytes, u->files, u->unsettled);

	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

int quota_read(int fd, struct quota_usage *u)
{
	char text[QUOTA_TEXT_MAX + 1];
	ssize_t n;

	do
		n = pread(fd, text, sizeof(text), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ENODATA;
	if ((size_t)n > QUOTA_TEXT_MAX)
		return -EBADMSG;
	return quota_parse(text, (size_t)n, u);
}

int quota_write(int fd, const struct quota_usage *u)
{
	char text[QUOTA_TEXT_MAX];
	size_t len = quota_format(text, sizeof(text), u);
	ssize_t n;

	if (len == 0)
		return -EINVAL;
	/* One write of a few bytes at 0, then the length: a reader (who holds
	 * the lock) never sees a mix, and the text is never longer than a page. */
	do
		n = pwrite(fd, text, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EIO;
	return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

static int unsettled_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = QUOTA_UNSETTLED_LOCK,
			    .l_len = 1 };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

int quota_unsettle(int fd, struct quota_usage *u)
{
	int r = unsettled_lock(fd, F_RDLCK);

	if (r == 0)
		u->unsettled++;
	return r;
}

void quota_settle(int fd, struct quota_usage *u)
{
	if (u->unsettled > 0)
		u->unsettled--;
	(void)unsettled_lock(fd, F_UNLCK);
}

bool quota_unsettled_live(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = QUOTA_UNSETTLED_LOCK,
			    .l_len = 1 };

	/* Fails safe: a lock that cannot be tested counts as held. */
	return fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_UNLCK;
}

void quota_add(struct quota_usage *u, int64_t bytes, int64_t files)
{
	if (bytes < 0)
		u->bytes = (uint64_t)-bytes > u->bytes ? 0 : u->bytes - (uint64_t)-bytes;
	else
		u->bytes = u->bytes > UINT64_MAX - (uint64_t)bytes ? UINT64_MAX : u->bytes + (uint64_t)bytes;
	if (files < 0)
		u->files = (uint64_t)-files > u->files ? 0 : u->files - (uint64_t)-files;
	else
		u->files += (uint64_t)files;
}

/* A directory below the root, by its path relative to it: never through a
 * symlink, never out of it. */
static int open_below(int root_fd, const char *rel)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* Count the directory at rel (which is counted by its parent), then its
 * subdirectories, one at a time: only one descriptor is open at once. */
static int scan_dir(int root_fd, char *rel, size_t len, struct quota_usage *u)
{
	char *subs = NULL;
	size_t subs_len = 0, subs_cap = 0;
	struct dirent *e;
	struct stat st;
	int fd, r = 0;

	fd = open_below(root_fd, rel);
	if (fd == -EACCES)
		return 0; /* counted, its content unknown to this user */
	if (fd < 0)
		return fd;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (S_ISREG(st.st_mode)) {
			if (strncmp(e->d_name, QUOTA_HIDDEN_PREFIX, strlen(QUOTA_HIDDEN_PREFIX)) == 0)
				continue;
			u->files++;
			u->bytes += (uint64_t)st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			u->files++;
			size_t n = strlen(e->d_name) + 1;
			if (subs_len + n > subs_cap) {
				size_t cap = subs_cap == 0 ? 4096 : 2 * subs_cap;
				while (cap < subs_len + n)
					cap *= 2;
				char *p = realloc(subs, cap);
				if (p == NULL) {
					r = -ENOMEM;
					break;
				}
				subs = p;
				subs_cap = cap;
			}
			memcpy(subs + subs_len, e->d_name, n);
			subs_len += n;
		}
	}
	if (r == 0 && errno != 0)
		r = -errno;
	closedir(d);
	for (size_t off = 0; r == 0 && off < subs_len;) {
		const char *name = subs + off;
		size_t n = strlen(name);
		off += n + 1;
		if (len + 1 + n >= PATH_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		rel[len] = '/';
		memcpy(rel + len + 1, name, n + 1);
		r = scan_dir(root_fd, rel, len + 1 + n, u);
		rel[len] = '\0';
	}
	free(subs);
	return r;
}

int quota_scan(int root_fd, struct quota_usage *u)
{
	char rel[PATH_MAX] = ".";
	struct quota_usage v = { 0, 0, 0 };
	int r = scan_dir(root_fd, rel, 1, &v);

	if (r == 0)
		*u = v;
	return r;
}

int quota_rescan(int fd, int root_fd, struct quota_usage *u)
{
	int r = quota_lock(fd);

	if (r < 0)
		return r;
	/* A live upload in place would be counted twice: by the scan, and by
	 * its own end. */
	if (quota_unsettled_live(fd)) {
		quota_unlock(fd);
		return -EBUSY;
	}
	r = quota_scan(root_fd, u);
	if (r == 0)
		r = quota_write(fd, u);
	quota_unlock(fd);
	return r;
}
