/* Session limits as lock slots: a limit of N is N one-byte OFD write locks
 * in a file below runtime-dir/limits. A monitor holds the first free one for
 * its life; the kernel lets go of it when the process ends, so a crash never
 * leaves a stale count, and no daemon keeps one. Per address and per user
 * the slots of one key are at keyed_hash(key) * N + i: the hash is keyed
 * with a random secret (runtime-dir/limits/key), so that no client can
 * choose addresses or names whose slots collide with another's. */
#include "monitor_limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Hash values spread over 40 bits: with N up to 100000 slots (17 bits) an
 * offset stays below 2^57, inside off_t. */
#define HASH_BITS 40
#define KEY_FILE_SIZE 32

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t limits_siphash(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, end = len - len % 8;

	for (i = 0; i < end; i += 8) {
		m = le64(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < len % 8; j++)
		b |= (uint64_t)in[end + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* A directory of ours: this user's (root's when root), writable by no one
 * else, not a symlink. */
static int check_dir_fd(int fd, const char **why)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		*why = "cannot stat";
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = "not a directory";
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		*why = geteuid() == 0 ? "not owned by root" : "not owned by this user";
		return -EPERM;
	}
	if (st.st_mode & 022) {
		*why = "writable by group or others";
		return -EPERM;
	}
	return 0;
}

int limits_check_dir(const char *path, const char **why)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		if (e != ENOENT) {
			*why = e == ENOTDIR || e == ELOOP ? "not a directory" : strerror(e);
			return -e;
		}
		/* Made by the first session: its parent must be there. */
		char parent[4096];
		snprintf(parent, sizeof(parent), "%s", path);
		char *slash = strrchr(parent, '/');
		if (slash == NULL || path[0] != '/') {
			*why = "not an absolute path";
			return -EINVAL;
		}
		if (slash == parent)
			slash[1] = '\0';
		else
			*slash = '\0';
		struct stat st;
		if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode)) {
			*why = "missing, and so is its parent directory";
			return -ENOENT;
		}
		return 0;
	}
	int r = check_dir_fd(fd, why);
	if (r == 0) {
		/* Its subdirectories, where they exist already. */
		static const char *const sub[] = { "limits", "sessions" };
		for (size_t i = 0; i < 2 && r == 0; i++) {
			int s = openat(fd, sub[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s < 0 && errno != ENOENT) {
				*why = sub[i][0] == 'l' ? "limits: not a directory" : "sessions: not a directory";
				r = -errno;
			} else if (s >= 0) {
				r = check_dir_fd(s, why);
				if (r < 0)
					*why = sub[i][0] == 'l' ? "limits: not ours, or writable by others"
								: "sessions: not ours, or writable by others";
				close(s);
			}
		}
	}
	close(fd);
	return r;
}

/* A subdirectory, made if missing (0755 whatever the umask: the unit's is
 * 0077, and the tools read below it), then checked. */
static int open_dir_at(int at, const char *name, const char **why)
{
	if (mkdirat(at, name, 0755) == 0) {
		if (fchmodat(at, name, 0755, 0) < 0) {
			*why = "cannot be given mode 0755";
			return -errno;
		}
	} else if (errno != EEXIST) {
		*why = "cannot be created";
		return -errno;
	}
	int fd = openat(at, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = "cannot be opened (not a directory?)";
		return -errno;
	}
	int r = check_dir_fd(fd, why);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* The key, made once: written whole under a name of our own, then linked
 * to "key" (which fails if another session was first), so that no one ever
 * reads half a key. */
static int read_key(struct limits *l, int dir, const char **why)
{
	uint8_t buf[KEY_FILE_SIZE];
	struct stat st;
	int fd = openat(dir, "key", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		char tmp[64];
		snprintf(tmp, sizeof(tmp), "key.%ld", (long)getpid());
		(void)unlinkat(dir, tmp, 0);
		int w = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w < 0) {
			*why = "key: cannot be created";
			return -errno;
		}
		bool ok = getrandom(buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
			  write(w, buf, sizeof(buf)) == (ssize_t)sizeof(buf);
		close(w);
		explicit_bzero(buf, sizeof(buf));
		if (ok && linkat(dir, tmp, dir, "key", 0) < 0 && errno != EEXIST)
			ok = false;
		(void)unlinkat(dir, tmp, 0);
		if (!ok) {
			*why = "key: cannot be written";
			return -EIO;
		}
		fd = openat(dir, "key", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		*why = "key: cannot be opened";
		return -errno;
	}
	int r = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		*why = "key: not a file of ours with mode 0600";
		r = -EPERM;
	} else if (read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		*why = "key: shorter than 32 bytes";
		r = -EIO;
	} else {
		memcpy(l->key, buf, sizeof(l->key));
	}
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return r;
}

static int open_lock_file(int dir, const char *name, const char **why)
{
	struct stat st;
	/* Written by no one: the locks need a descriptor open for writing,
	 * which only the owner gets (0644), so a user cannot hold slots. */
	int fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0) {
		*why = "a lock file cannot be opened";
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) != 0) {
		close(fd);
		*why = "a lock file is not ours, or writable by others";
		return -EPERM;
	}
	return fd;
}

int limits_open(struct limits *l, const char *runtime_dir, const char **why)
{
	int r, lim = -1;

	l->runtime = l->sessions = l->total = l->address = l->user = l->rate = -1;
	if (mkdir(runtime_dir, 0755) == 0) {
		if (chmod(runtime_dir, 0755) < 0) {
			*why = "cannot be given mode 0755";
			return -errno;
		}
	} else if (errno != EEXIST) {
		*why = "cannot be created";
		return -errno;
	}
	l->runtime = open(runtime_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (l->runtime < 0) {
		*why = "cannot be opened (not a directory?)";
		return -errno;
	}
	r = check_dir_fd(l->runtime, why);
	if (r < 0)
		return r;
	lim = open_dir_at(l->runtime, "limits", why);
	if (lim < 0)
		return lim;
	l->sessions = open_dir_at(l->runtime, "sessions", why);
	if (l->sessions < 0) {
		close(lim);
		return l->sessions;
	}
	/* The lock files want a real directory descriptor, not O_PATH. */
	int d = openat(lim, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(lim);
	if (d < 0) {
		*why = "limits cannot be opened";
		return -errno;
	}
	r = read_key(l, d, why);
	if (r == 0 && (l->total = open_lock_file(d, "total", why)) < 0)
		r = l->total;
	if (r == 0 && (l->address = open_lock_file(d, "address", why)) < 0)
		r = l->address;
	if (r == 0 && (l->user = open_lock_file(d, "user", why)) < 0)
		r = l->user;
	if (r == 0 && (l->rate = open_lock_file(d, "rate", why)) < 0)
		r = l->rate;
	close(d);
	return r;
}

/* The first free slot of base .. base + n - 1, held from now on: true, or
 * false when all are taken. */
static bool take_slot(int fd, uint64_t base, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = (off_t)(base + i), .l_len = 1 };
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return true;
		if (errno != EAGAIN && errno != EACCES) {
			/* Locks that do not work limit nothing: said, not fatal. */
			log_warn("session limits: lock: %s", strerror(errno));
			return true;
		}
	}
	return false;
}

static uint64_t key_base(const struct limits *l, const void *key, size_t len, unsigned n)
{
	uint64_t h = limits_siphash(l->key, key, len) & ((UINT64_C(1) << HASH_BITS) - 1);

	return h * n;
}

enum limit_kind limits_session(struct limits *l, const struct config *cfg,
			       const struct sockaddr_storage *peer)
{
	uint8_t key[17];
	size_t len;

	if (cfg->max_sessions > 0 && !take_slot(l->total, 0, cfg->max_sessions))
		return LIMIT_TOTAL;
	if (cfg->max_sessions_per_address == 0)
		return LIMIT_NONE;
	/* IPv4 as itself whatever the socket's family: 4 bytes after a '4';
	 * IPv6 as 16 after a '6'. */
	if (peer->ss_family == AF_INET) {
		key[0] = '4';
		memcpy(key + 1, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		len = 5;
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = '4';
			memcpy(key + 1, a->s6_addr + 12, 4);
			len = 5;
		} else {
			key[0] = '6';
			memcpy(key + 1, a->s6_addr, 16);
			len = 17;
		}
	}
	unsigned n = cfg->max_sessions_per_address;
	return take_slot(l->address, key_base(l, key, len, n), n) ? LIMIT_NONE : LIMIT_ADDRESS;
}

bool limits_user(struct limits *l, const char *host, const char *user, unsigned n)
{
	char key[2 * 1024];
	size_t hl = strlen(host), ul = strlen(user);

	if (n == 0)
		return true;
	if (hl + 1 + ul > sizeof(key))
		return false;
	memcpy(key, host, hl);
	key[hl] = '\0';
	memcpy(key + hl + 1, user, ul);
	return take_slot(l->user, key_base(l, key, hl + 1 + ul, n), n);
}

bool limits_share_join(struct limits *l, struct rate_share *s, const char *host,
		       const char *user, bool upload)
{
	char key[2 * 1024 + 2];
	size_t hl = strlen(host), ul = strlen(user);

	if (s->held || l->rate < 0 || hl + 2 + ul > sizeof(key))
		return false;
	/* host, NUL, user, NUL, 'd' or 'u' */
	memcpy(key, host, hl);
	key[hl] = '\0';
	memcpy(key + hl + 1, user, ul);
	key[hl + 1 + ul] = '\0';
	key[hl + 2 + ul] = upload ? 'u' : 'd';
	s->base = key_base(l, key, hl + 3 + ul, RATE_SHARE_SLOTS);
	for (unsigned i = 0; i < RATE_SHARE_SLOTS; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = (off_t)(s->base + i), .l_len = 1 };
		if (fcntl(l->rate, F_OFD_SETLK, &fl) == 0) {
			s->held = true;
			s->at = s->base + i;
			return true;
		}
		if (errno != EAGAIN && errno != EACCES)
			return false;
	}
	return false;
}

unsigned limits_share_count(const struct limits *l, const struct rate_share *s)
{
	unsigned n = s->held ? 1 : 0;

	if (l->rate < 0)
		return 1;
	/* Our own lock conflicts with nothing of ours: F_OFD_GETLK passes over it. */
	for (unsigned i = 0; i < RATE_SHARE_SLOTS; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = (off_t)(s->base + i), .l_len = 1 };
		if (fcntl(l->rate, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
			n++;
	}
	if (!s->held)
		n = RATE_SHARE_SLOTS;
	return n == 0 ? 1 : n;
}

void limits_share_leave(struct limits *l, struct rate_share *s)
{
	if (!s->held || l->rate < 0) {
		s->held = false;
		return;
	}
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = (off_t)s->at,
			    .l_len = 1 };
	(void)fcntl(l->rate, F_OFD_SETLK, &fl);
	s->held = false;
}

void limits_close(struct limits *l)
{
	int *fds[] = { &l->runtime, &l->sessions, &l->total, &l->address, &l->user, &l->rate };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

const char *limits_name(enum limit_kind k)
{
	switch (k) {
	case LIMIT_TOTAL:
		return "max-sessions";
	case LIMIT_ADDRESS:
		return "max-sessions-per-address";
	case LIMIT_USER:
		return "max-sessions-per-user";
	default:
		return "none";
	}
}

void limits_text(enum limit_kind k, unsigned n, char *out, size_t size)
{
	const char *whose = k == LIMIT_ADDRESS ? " from your address" :
			    k == LIMIT_USER ? " of this user" : "";

	snprintf(out, size, "Too many sessions%s (%s %u), try again later.", whose, limits_name(k), n);
}
