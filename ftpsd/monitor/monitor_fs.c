/* Every file operation of a logged-in session. Paths come from the child and
 * are resolved by the kernel inside the user's root: RESOLVE_IN_ROOT makes
 * "..", absolute paths and absolute symlinks stay below it, whatever races
 * the user plays with renames. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "monitor_fs.h"

/* What one listing may cost: entries, their names (held to be sorted) and
 * the formatted text (in the memfd, not in the monitor's memory). */
#define LIST_MAX_ENTRIES 200000
#define LIST_MAX_NAME_BYTES (8u << 20)
#define LIST_MAX_BYTES (64u << 20)


static int fs_root = -1;
static bool fs_read_only;

void monitor_fs_set_root(int root_fd, bool read_only)
{
	fs_root = root_fd;
	fs_read_only = read_only;
}

bool monitor_fs_read_only(void)
{
	return fs_read_only;
}

/* Names of the hidden files of unfinished uploads are the monitor's own:
 * a client naming one (STOR, RNTO, MKD, RETR, ...) could hide a file from
 * the quota, which leaves them out, or reach another upload's debris. */
static bool names_hidden_upload(const char *path)
{
	for (const char *p = path; (p = strstr(p, UPLOAD_PREFIX)) != NULL; p++)
		if (p == path || p[-1] == '/')
			return true;
	return false;
}

int monitor_fs_openat2(const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		/* openat2 refuses O_NOCTTY next to O_PATH. */
		.flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY)),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	if (fs_root < 0)
		return -EPERM;
	if (path[0] != '/')
		return -EINVAL;
	if (names_hidden_upload(path))
		return -EACCES;
	do
		fd = syscall(SYS_openat2, fs_root, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

/* openat2 below a directory already resolved inside the root: names of one
 * component, which RESOLVE_BENEATH keeps from climbing out. */
int monitor_fs_openat2_beneath(int dfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOCTTY),
		.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
	};
	long fd;

	do
		fd = syscall(SYS_openat2, dfd, name, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

/* 0 when fd is a regular file (st filled), -EISDIR or -EINVAL otherwise. */
int monitor_fs_regular(int fd, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	return S_ISREG(st->st_mode) ? 0 : -EINVAL;
}

int monitor_fs_stat(const char *path, struct stat *st)
{
	int fd = monitor_fs_openat2(path, O_PATH, 0);

	if (fd < 0)
		return fd;
	int r = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int monitor_fs_lstat(const char *path, struct stat *st)
{
	char base[IPC_MAX_PATH];
	int dfd = monitor_fs_open_parent(path, base, sizeof(base), O_PATH);

	if (dfd < 0)
		return dfd;
	int r = fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	close(dfd);
	return r;
}

/* A regular file of the tree, for reading: RETR (SEND, from offset) and a
 * look at a file's bytes (READ: HASH, SIZE in ASCII). */
int monitor_fs_open(const char *path, unsigned how, uint64_t offset, int *out, uint64_t *size)
{
	struct stat st;
	int fd, r;

	if (how != IPC_OPEN_READ && how != IPC_OPEN_SEND)
		return -EINVAL;
	/* O_NONBLOCK keeps a FIFO from hanging the open; only regular files pass. */
	fd = monitor_fs_openat2(path, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return fd;
	r = monitor_fs_regular(fd, &st);
	if (r == 0 && fcntl(fd, F_SETFL, 0) < 0)
		r = -errno;
	if (r == 0 && offset > (uint64_t)st.st_size)
		r = -ERANGE;
	if (r < 0) {
		close(fd);
		return r;
	}
	*out = fd;
	*size = (uint64_t)st.st_size;
	return 0;
}

static void mode_string(mode_t m, char out[11])
{
	char t = '-';

	if (S_ISDIR(m))
		t = 'd';
	else if (S_ISLNK(m))
		t = 'l';
	else if (S_ISCHR(m))
		t = 'c';
	else if (S_ISBLK(m))
		t = 'b';
	else if (S_ISFIFO(m))
		t = 'p';
	else if (S_ISSOCK(m))
		t = 's';
	out[0] = t;
	out[1] = (m & S_IRUSR) ? 'r' : '-';
	out[2] = (m & S_IWUSR) ? 'w' : '-';
	out[3] = (m & S_ISUID) ? ((m & S_IXUSR) ? 's' : 'S') : ((m & S_IXUSR) ? 'x' : '-');
	out[4] = (m & S_IRGRP) ? 'r' : '-';
	out[5] = (m & S_IWGRP) ? 'w' : '-';
	out[6] = (m & S_ISGID) ? ((m & S_IXGRP) ? 's' : 'S') : ((m & S_IXGRP) ? 'x' : '-');
	out[7] = (m & S_IROTH) ? 'r' : '-';
	out[8] = (m & S_IWOTH) ? 'w' : '-';
	out[9] = (m & S_ISVTX) ? ((m & S_IXOTH) ? 't' : 'T') : ((m & S_IXOTH) ? 'x' : '-');
	out[10] = '\0';
}

/* A file's date in UTC, when a listing can say it: gmtime_r fails where
 * the year overflows an int (tmpfs keeps any 64-bit mtime), and RFC 3659's
 * time-val has four digits for the year, so 0..9999. 0 or -EOVERFLOW. */
static int fs_gmtime(time_t t, struct tm *tm)
{
	if (gmtime_r(&t, tm) == NULL)
		return -EOVERFLOW;
	if (tm->tm_year < 0 - 1900 || tm->tm_year > 9999 - 1900)
		return -EOVERFLOW;
	return 0;
}

/* The MLSD/MLST facts that facts selects, each "name=value;". */
static void mlsd_facts(char *out, size_t size, unsigned facts, const struct stat *st,
		       const char *perm)
{
	struct tm tm;
	size_t n = 0;

	out[0] = '\0';
#define ADD(...) (n += (size_t)snprintf(out + n, n < size ? size - n : 0, __VA_ARGS__))
	if (facts & IPC_FACT_TYPE)
		ADD("type=%s;", S_ISDIR(st->st_mode) ? "dir" : S_ISREG(st->st_mode) ? "file"
										  : "OS.unix=special");
	if (facts & IPC_FACT_SIZE)
		ADD("size=%llu;", (unsigned long long)st->st_size);
	/* A date that cannot be written is left out: the fact is optional. */
	if ((facts & IPC_FACT_MODIFY) && fs_gmtime(st->st_mtime, &tm) == 0)
		ADD("modify=%04d%02d%02d%02d%02d%02d;", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (facts & IPC_FACT_PERM)
		ADD("perm=%s;", perm);
	if (facts & IPC_FACT_UNIX_MODE)
		ADD("unix.mode=0%o;", (unsigned)(st->st_mode & 07777));
	if (facts & IPC_FACT_UNIQUE)
		ADD("unique=%llxU%llx;", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
#undef ADD
}

int monitor_fs_format(char *out, size_t size, unsigned format, unsigned facts, const char *name,
		      const struct stat *st, const char *link_target, const char *perm,
		      time_t now)
{
	struct tm tm;
	char date[32], mode[11];
	int n;

	switch (format) {
	case IPC_LIST_NAMES:
		n = snprintf(out, size, "%s\r\n", name);
		break;
	case IPC_LIST_MLSD: {
		char f[256];
		mlsd_facts(f, sizeof(f), facts, st, perm);
		n = snprintf(out, size, "%s %s\r\n", f, name);
		break;
	}
	case IPC_LIST_LONG: {
		/* ls(1): the year instead of the time beyond six months either way. */
		bool recent = st->st_mtime > now - 15552000 && st->st_mtime < now + 15552000;
		/* A date that cannot be written shows as the epoch, Jan  1  1970: a
		 * LIST line has no way to say "unknown" that clients parse. */
		if (fs_gmtime(st->st_mtime, &tm) < 0 ||
		    strftime(date, sizeof(date), recent ? "%b %e %H:%M" : "%b %e  %Y", &tm) == 0)
			snprintf(date, sizeof(date), "Jan  1  1970");
		mode_string(st->st_mode, mode);
		n = snprintf(out, size, "%s %4lu %-8u %-8u %12llu %s %s%s%s\r\n", mode,
			     (unsigned long)st->st_nlink, (unsigned)st->st_uid, (unsigned)st->st_gid,
			     (unsigned long long)st->st_size, date, name,
			     link_target != NULL ? " -> " : "", link_target != NULL ? link_target : "");
		break;
	}
	default:
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return n;
}

static void perm_facts(int dirfd, const char *name, const struct stat *st, char out[16])
{
	bool w = !fs_read_only && faccessat(dirfd, name, W_OK, AT_EACCESS) == 0;
	bool r = faccessat(dirfd, name, R_OK, AT_EACCESS) == 0;
	size_t n = 0;

	if (S_ISDIR(st->st_mode)) {
		if (faccessat(dirfd, name, X_OK, AT_EACCESS) == 0)
			out[n++] = 'e';
		if (r)
			out[n++] = 'l';
		if (w) {
			memcpy(out + n, "cmpdf", 5);
			n += 5;
		}
	} else {
		if (r)
			out[n++] = 'r';
		if (w) {
			memcpy(out + n, "awdf", 4);
			n += 4;
		}
	}
	out[n] = '\0';
}

/* A listing on its way into a memfd: written as it is formatted, through a
 * small buffer, and cut at LIST_MAX_BYTES, so that no argument and no
 * directory makes the monitor hold more than the sorted names. */
struct listing {
	FILE *f;
	int fd;
	uint64_t bytes;
	bool cut;
	const char *what;
};

static int listing_open(struct listing *l, const char *what)
{
	memset(l, 0, sizeof(*l));
	l->what = what;
	l->fd = memfd_create("ftpsd-listing", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (l->fd < 0)
		return -errno;
	/* The FILE gets its own descriptor (fclose closes it); the memfd stays. */
	int w = fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
	if (w < 0 || (l->f = fdopen(w, "w")) == NULL) {
		int e = -errno;
		if (w >= 0)
			close(w);
		close(l->fd);
		return e;
	}
	return 0;
}

/* One line; -E2BIG once the listing is full (the rest is left out). */
static int listing_add(struct listing *l, const char *line, size_t n)
{
	if (l->bytes + n > LIST_MAX_BYTES) {
		if (!l->cut)
			log_warn("listing of %s cut at %llu bytes", l->what,
				 (unsigned long long)l->bytes);
		l->cut = true;
		return -E2BIG;
	}
	l->bytes += n;
	return fwrite(line, 1, n, l->f) == n ? 0 : -EIO;
}

/* Hand the listing over sealed, or drop it on error r. */
static int listing_close(struct listing *l, int r, int *out)
{
	if (fclose(l->f) != 0 && r == 0)
		r = -EIO;
	if (r == 0 && (lseek(l->fd, 0, SEEK_SET) < 0 ||
		       fcntl(l->fd, F_ADD_SEALS,
			     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0))
		r = -errno;
	if (r < 0) {
		close(l->fd);
		return r;
	}
	*out = l->fd;
	return 0;
}

static int emit(struct listing *l, unsigned format, unsigned facts, int dirfd, const char *vdir,
		const char *name, const char *shown, time_t now)
{
	struct stat st;
	char line[8192], perm[16] = "", vpath[IPC_MAX_PATH * 2];
	bool link = false;

	/* A name with CR or LF would forge listing lines: leave it out. */
	if (strpbrk(shown, "\r\n") != NULL)
		return 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISLNK(st.st_mode)) {
		/* Show what the link reaches inside the root, as RETR and CWD would
		 * find it; its text may name places outside, which stay unsaid. A link
		 * that reaches nothing inside is left out. */
		struct stat t;
		snprintf(vpath, sizeof(vpath), "%s/%s", vdir, name);
		if (monitor_fs_stat(vpath, &t) < 0)
			return 0;
		st = t;
		link = true;
	}
	/* faccessat() would follow the link, perhaps out of the root. */
	if (format == IPC_LIST_MLSD && link)
		snprintf(perm, sizeof(perm), "%s", S_ISDIR(st.st_mode) ? "el" : "r");
	else if (format == IPC_LIST_MLSD)
		perm_facts(dirfd, name, &st, perm);
	int n = monitor_fs_format(line, sizeof(line), format, facts, shown, &st, NULL, perm, now);
	if (n < 0)
		return 0;
	return listing_add(l, line, (size_t)n);
}

/* A directory's names, kept in one arena so that they cost their length. */
struct names {
	char *arena;
	size_t used, cap;
	size_t *off;
	size_t count, ocap;
};

static int cmp_names(const void *a, const void *b, void *arena)
{
	return strcmp((const char *)arena + *(const size_t *)a, (const char *)arena + *(const size_t *)b);
}

/* false when the listing is full. */
static bool names_add(struct names *n, const char *name, const char *vdir)
{
	size_t len = strlen(name) + 1;

	if (n->count == LIST_MAX_ENTRIES || n->used + len > LIST_MAX_NAME_BYTES) {
		log_warn("listing of %s cut at %zu entries", vdir, n->count);
		return false;
	}
	if (n->used + len > n->cap) {
		n->cap = n->cap ? n->cap * 2 : 16384;
		if ((n->arena = realloc(n->arena, n->cap)) == NULL)
			abort();
	}
	if (n->count == n->ocap) {
		n->ocap = n->ocap ? n->ocap * 2 : 256;
		if ((n->off = realloc(n->off, n->ocap * sizeof(*n->off))) == NULL)
			abort();
	}
	memcpy(n->arena + n->used, name, len);
	n->off[n->count++] = n->used;
	n->used += len;
	return true;
}

static int list_dir(struct listing *l, int fd, const char *vdir, unsigned format, unsigned flags,
		    time_t now, const char *pattern, const char *prefix)
{
	DIR *d = fdopendir(fd);
	struct names n = { 0 };
	struct dirent *e;
	int r = 0;

	if (d == NULL) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_name[0] == '.' && !(flags & IPC_LIST_ALL) && format != IPC_LIST_MLSD)
			continue;
		/* An upload in progress is nobody's business until it is complete. */
		if (strncmp(e->d_name, UPLOAD_PREFIX, strlen(UPLOAD_PREFIX)) == 0)
			continue;
		if (pattern != NULL && fnmatch(pattern, e->d_name, FNM_PERIOD) != 0)
			continue;
		if (!names_add(&n, e->d_name, vdir))
			break;
	}
	if (n.count > 0)
		qsort_r(n.off, n.count, sizeof(*n.off), cmp_names, n.arena);
	for (size_t i = 0; i < n.count && r == 0; i++) {
		/* NLST names are for programs to fetch: "d/a.txt" for "NLST d". */
		const char *name = n.arena + n.off[i];
		char shown[2 * IPC_MAX_PATH];
		if (format == IPC_LIST_NAMES && prefix[0] != '\0')
			snprintf(shown, sizeof(shown), "%s%s", prefix, name);
		else
			snprintf(shown, sizeof(shown), "%s", name);
		r = emit(l, format, flags & IPC_FACTS_ALL, dirfd(d), vdir, name, shown, now);
	}
	free(n.arena);
	free(n.off);
	closedir(d);
	return r == -E2BIG ? 0 : r;
}

/* Split an absolute path into its parent directory (opened inside the root)
 * and its last component, which must be a real name. */
int monitor_fs_open_parent(const char *path, char *base, size_t size, int flags)
{
	char parent[IPC_MAX_PATH];
	const char *slash = strrchr(path, '/');

	if (slash == NULL || strlen(path) >= sizeof(parent))
		return -EINVAL;
	snprintf(base, size, "%s", slash + 1);
	if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EINVAL;
	if (names_hidden_upload(base))
		return -EACCES;
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	return monitor_fs_openat2(parent[0] != '\0' ? parent : "/", flags | O_DIRECTORY, 0);
}

static int open_parent(const char *path, char *base, size_t size)
{
	return monitor_fs_open_parent(path, base, size, O_PATH);
}

/* "LIST *.txt": a pattern in the last component, matched as fnmatch(3)
 * would, after the name itself was not found. */
static int list_glob(const char *path, unsigned format, unsigned flags, const char *arg, int *out,
		     time_t now)
{
	char base[IPC_MAX_PATH], vdir[IPC_MAX_PATH];
	const char *slash = strrchr(path, '/');
	int dfd = open_parent(path, base, sizeof(base));
	struct listing l;

	if (dfd < 0)
		return dfd;
	if (strchr(base, '/') != NULL || slash == NULL) {
		close(dfd);
		return -ENOENT;
	}
	snprintf(vdir, sizeof(vdir), "%.*s", (int)(slash - path), path);
	/* The directory itself: reopen readable for fdopendir. */
	close(dfd);
	dfd = monitor_fs_openat2(vdir[0] ? vdir : "/", O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0)
		return dfd;
	int r = listing_open(&l, path);
	if (r < 0) {
		close(dfd);
		return r;
	}
	char prefix[IPC_MAX_PATH];
	const char *aslash = strrchr(arg, '/');
	snprintf(prefix, sizeof(prefix), "%.*s", aslash != NULL ? (int)(aslash - arg + 1) : 0, arg);
	r = list_dir(&l, dfd, vdir[0] ? vdir : "/", format, flags, now, base, prefix);
	if (r == 0 && l.bytes == 0)
		r = -ENOENT;
	return listing_close(&l, r, out);
}

int monitor_fs_list(const char *path, unsigned format, unsigned flags, const char *arg, int *out)
{
	struct stat st;
	time_t now = time(NULL);
	struct listing l;
	int r, fd;

	if (format > IPC_LIST_MLSD ||
	    (flags & ~(unsigned)(IPC_LIST_ALL | IPC_LIST_SELF | IPC_FACTS_ALL)) != 0)
		return -EINVAL;
	fd = monitor_fs_openat2(path, O_RDONLY | O_NONBLOCK, 0);
	if (fd == -ENOENT && strpbrk(path, "*?[") != NULL)
		return list_glob(path, format, flags, arg, out, now);
	if (fd < 0)
		return fd;
	r = fstat(fd, &st) < 0 ? -errno : listing_open(&l, path);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (S_ISDIR(st.st_mode) && (flags & IPC_LIST_SELF) && strcmp(path, "/") == 0) {
		/* The root itself has no parent to be listed from. */
		char perm[16];
		perm_facts(fd, ".", &st, perm);
		char line[512];
		int n = monitor_fs_format(line, sizeof(line), format, flags & IPC_FACTS_ALL, "/", &st,
					  NULL, perm, now);
		r = n < 0 ? -EIO : listing_add(&l, line, (size_t)n);
		close(fd);
	} else if (S_ISDIR(st.st_mode) && !(flags & IPC_LIST_SELF)) {
		char prefix[IPC_MAX_PATH + 1] = "";
		size_t alen = strlen(arg);
		if (alen > 0 && alen < IPC_MAX_PATH)
			snprintf(prefix, sizeof(prefix), "%s%s", arg, arg[alen - 1] == '/' ? "" : "/");
		r = list_dir(&l, fd, path, format, flags, now, NULL, prefix);
	} else {
		/* A single file: list it by its last component. */
		char parent[IPC_MAX_PATH], base[IPC_MAX_PATH], *slash;
		snprintf(parent, sizeof(parent), "%s", path);
		slash = strrchr(parent, '/');
		snprintf(base, sizeof(base), "%s", slash != NULL ? slash + 1 : parent);
		if (slash != NULL)
			slash[slash == parent ? 1 : 0] = '\0';
		close(fd);
		fd = monitor_fs_openat2(parent, O_PATH | O_DIRECTORY, 0);
		if (fd < 0)
			return listing_close(&l, fd, out);
		/* A single file: NLST names it as the client did, MLST by its path. */
		const char *shown = format == IPC_LIST_NAMES && arg[0] != '\0' ? arg
				    : (flags & IPC_LIST_SELF) ? path
				    : base;
		r = emit(&l, format, flags & IPC_FACTS_ALL, fd, parent, base, shown, now);
		close(fd);
	}
	return listing_close(&l, r, out);
}

/* A change to the tree: what to do with the last component of a path, in
 * its parent directory (opened inside the root). */
struct change {
	enum { CH_MKDIR, CH_UNLINK, CH_RMDIR, CH_CHMOD, CH_SETTIME } what;
	unsigned mode;
	time_t mtime;
};

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static int apply(int dfd, const char *base, const struct change *c)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = c->mtime } };
	struct stat st;

	switch (c->what) {
	case CH_MKDIR:
		return mkdirat(dfd, base, 0777) < 0 ? -errno : 0;
	case CH_UNLINK:
	case CH_RMDIR:
		/* unlinkat() never follows the last component: a link goes, its target stays. */
		return unlinkat(dfd, base, c->what == CH_RMDIR ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
	case CH_CHMOD:
		/* Never setuid, setgid or sticky: a setuid file made here would run
		 * with the user's ids for anyone on the host, and FTP users need
		 * none of these bits. */
		if (c->mode & ~0777u)
			return -EPERM;
		/* Never through a symlink, which could point out of the root:
		 * fchmodat2 refuses links itself (Linux 6.6); before it, check then
		 * change. */
		if (syscall(SYS_fchmodat2, dfd, base, c->mode, AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
		if (errno != ENOSYS)
			return errno == EOPNOTSUPP ? -EPERM : -errno;
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (S_ISLNK(st.st_mode))
			return -EPERM;
		return fchmodat(dfd, base, c->mode, 0) < 0 ? -errno : 0;
	case CH_SETTIME:
		return utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	}
	return -EINVAL;
}

static int change(const char *path, const struct change *c)
{
	char base[IPC_MAX_PATH];
	int dfd, r;

	if (fs_read_only)
		return -EACCES;
	dfd = open_parent(path, base, sizeof(base));
	if (dfd < 0)
		return dfd;
	r = apply(dfd, base, c);
	close(dfd);
	return r;
}

int monitor_fs_mkdir(const char *path)
{
	return change(path, &(struct change){ .what = CH_MKDIR });
}

int monitor_fs_remove(const char *path, bool dir)
{
	return change(path, &(struct change){ .what = dir ? CH_RMDIR : CH_UNLINK });
}

int monitor_fs_chmod(const char *path, unsigned mode)
{
	return change(path, &(struct change){ .what = CH_CHMOD, .mode = mode });
}

int monitor_fs_settime(const char *path, time_t mtime)
{
	return change(path, &(struct change){ .what = CH_SETTIME, .mtime = mtime });
}

int monitor_fs_rename(const char *from, const char *to)
{
	char b1[IPC_MAX_PATH], b2[IPC_MAX_PATH];
	int d1, d2, r;

	if (fs_read_only)
		return -EACCES;
	d1 = open_parent(from, b1, sizeof(b1));
	if (d1 < 0)
		return d1;
	d2 = open_parent(to, b2, sizeof(b2));
	if (d2 < 0) {
		close(d1);
		return d2;
	}
	r = renameat(d1, b1, d2, b2) < 0 ? -errno : 0;
	close(d1);
	close(d2);
	return r;
}
