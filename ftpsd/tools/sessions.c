#include "sessions.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "file.h"

#define LINE_MAX_BYTES 4096

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* A decimal value that fills the field: 0 or -EINVAL. */
static int number(const char *v, size_t n, unsigned long long max, unsigned long long *out)
{
	char buf[32];

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return config_parse_uint(buf, max, out) < 0 ? -EINVAL : 0;
}

int session_record_parse(const char *text, size_t len, struct sessions_record *rec)
{
	static const struct {
		const char *key;
		size_t str_off, str_size; /* a string field */
		size_t num_off;		  /* else a number */
		unsigned has;
	} keys[] = {
#define S(k, f) { k, offsetof(struct sessions_record, f), sizeof(((struct sessions_record *)0)->f), 0, 0 }
#define N(k, f, h) { k, 0, 0, offsetof(struct sessions_record, f), h }
		S("user", user),
		S("host", host),
		S("address", address),
		S("command", command),
		S("path", path),
		N("since", since, SESSION_HAS_SINCE),
		N("login", login, SESSION_HAS_LOGIN),
		N("bytes", bytes, SESSION_HAS_BYTES),
		N("size", size, SESSION_HAS_SIZE),
		N("rate", rate, SESSION_HAS_RATE),
		N("updated", updated, SESSION_HAS_UPDATED),
#undef S
#undef N
	};
	unsigned seen = 0; /* bit i: keys[i]; bits 30, 31: pid, start */
	unsigned long long v;

	memset(rec, 0, sizeof(*rec));
	if (memchr(text, '\0', len) != NULL)
		return -EINVAL;
	for (size_t p = 0; p < len;) {
		const char *line = text + p, *eol = memchr(line, '\n', len - p);
		size_t n = eol != NULL ? (size_t)(eol - line) : len - p;
		p += n + 1;
		if (n > LINE_MAX_BYTES)
			return -EINVAL;
		const char *eq = memchr(line, '=', n);
		if (eq == NULL)
			continue;
		size_t klen = (size_t)(eq - line), vlen = n - klen - 1;
		const char *val = eq + 1;
		unsigned bit;
		if (klen == 3 && memcmp(line, "pid", 3) == 0) {
			bit = 1u << 30;
			/* pid_max is at most 2^22. */
			if ((seen & bit) || number(val, vlen, 0x7fffffff, &v) < 0 || v == 0)
				return -EINVAL;
			rec->pid = (pid_t)v;
		} else if (klen == 5 && memcmp(line, "start", 5) == 0) {
			bit = 1u << 31;
			if ((seen & bit) || number(val, vlen, ~0ULL, &rec->start) < 0)
				return -EINVAL;
		} else {
			size_t i = 0;
			while (i < sizeof(keys) / sizeof(keys[0]) &&
			       !(strlen(keys[i].key) == klen && memcmp(keys[i].key, line, klen) == 0))
				i++;
			if (i == sizeof(keys) / sizeof(keys[0]))
				continue; /* unknown keys are for newer readers */
			bit = 1u << i;
			if (seen & bit)
				return -EINVAL;
			if (keys[i].str_size > 0) {
				copy_value((char *)rec + keys[i].str_off, keys[i].str_size, val, vlen);
			} else if (vlen > 0 && number(val, vlen, ~0ULL, &v) == 0) {
				*(unsigned long long *)((char *)rec + keys[i].num_off) = v;
				rec->has |= keys[i].has;
			}
		}
		seen |= bit;
	}
	return (seen & (3u << 30)) == (3u << 30) ? 0 : -EINVAL;
}

/* Field 22 of /proc/PID/stat, and the uids of /proc/PID/status. */
static int proc_start(pid_t pid, unsigned long long *start)
{
	char path[64], *text = NULL, *p;
	size_t len = 0;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = file_read_all(path, 4096, FILE_HEAD, &text, &len);
	if (r < 0)
		return r;
	/* The command name, field 2, may hold spaces and ')': fields 3 on
	 * start after the last ')'. */
	p = strrchr(text, ')');
	r = -EINVAL;
	for (int field = 2; p != NULL && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p != NULL) {
		char *end;
		errno = 0;
		*start = strtoull(p + 1, &end, 10);
		if (errno == 0 && end != p + 1 && (*end == ' ' || *end == '\0' || *end == '\n'))
			r = 0;
	}
	free(text);
	return r;
}

static int proc_uids(pid_t pid, unsigned uids[4])
{
	char path[64], *text = NULL, *p;
	size_t len = 0;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	r = file_read_all(path, 16384, FILE_HEAD, &text, &len);
	if (r < 0)
		return r;
	p = strstr(text, "\nUid:");
	r = p != NULL && sscanf(p + 5, "%u %u %u %u", &uids[0], &uids[1], &uids[2], &uids[3]) == 4
		    ? 0
		    : -EINVAL;
	free(text);
	return r;
}

bool session_process_is(pid_t pid, unsigned long long start, unsigned uid)
{
	unsigned long long s;
	unsigned u[4];

	if (pid <= 0 || proc_start(pid, &s) < 0 || s != start)
		return false;
	/* A record in directory uid names a process of uid: one monitor cannot
	 * make ftpsd-user signal a process of another user, or of root, by
	 * naming it in a record of its own. */
	if (proc_uids(pid, u) < 0)
		return false;
	return u[0] == uid && u[1] == uid && u[2] == uid;
}

static bool all_digits(const char *s)
{
	if (*s == '\0' || strlen(s) > 10)
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* One record file in directory dfd (of uid): 1 and rec filled when live. */
static int read_record(int dfd, const char *name, unsigned uid, struct sessions_record *rec)
{
	unsigned long long pid;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd, r;

	if (!all_digits(name) || config_parse_uint(name, 0x7fffffff, &pid) < 0)
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid) {
		close(fd);
		return 0;
	}
	r = file_read_fd(fd, SESSION_RECORD_MAX, 0, &text, &len);
	close(fd);
	if (r < 0)
		return 0;
	r = session_record_parse(text, len, rec);
	free(text);
	if (r < 0 || (unsigned long long)rec->pid != pid)
		return 0;
	rec->uid = uid;
	return session_process_is(rec->pid, rec->start, uid) ? 1 : 0;
}

struct record_list {
	struct sessions_record *v;
	size_t n, cap;
};

static int scan_uid_dir(int sfd, const char *name, struct record_list *list)
{
	unsigned long long uid;
	struct stat st;
	DIR *d;
	int dfd;

	if (!all_digits(name) || config_parse_uint(name, 0xffffffffULL, &uid) < 0)
		return 0;
	dfd = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	/* Directory <uid> belongs to uid: another owner is not its monitor. */
	if (fstat(dfd, &st) < 0 || st.st_uid != uid) {
		close(dfd);
		return 0;
	}
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return -errno;
	}
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (list->n == list->cap) {
			size_t cap = list->cap ? list->cap * 2 : 16;
			struct sessions_record *v = realloc(list->v, cap * sizeof(*v));
			if (v == NULL) {
				closedir(d);
				return -ENOMEM;
			}
			list->v = v;
			list->cap = cap;
		}
		if (read_record(dirfd(d), e->d_name, (unsigned)uid, &list->v[list->n]) == 1)
			list->n++;
	}
	closedir(d);
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	const struct sessions_record *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

int sessions_scan(const char *runtime_dir, long long only_uid,
		  void (*fn)(const struct sessions_record *rec, void *ctx), void *ctx)
{
	struct record_list list = { 0 };
	char path[4200];
	int sfd, r = 0;
	DIR *d;

	if ((size_t)snprintf(path, sizeof(path), "%s/sessions", runtime_dir) >= sizeof(path))
		return -ENAMETOOLONG;
	sfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (only_uid >= 0) {
		char name[24];
		snprintf(name, sizeof(name), "%lld", only_uid);
		r = scan_uid_dir(sfd, name, &list);
		close(sfd);
	} else {
		d = fdopendir(sfd);
		if (d == NULL) {
			close(sfd);
			return -errno;
		}
		for (struct dirent *e; r == 0 && (e = readdir(d)) != NULL;)
			r = scan_uid_dir(dirfd(d), e->d_name, &list);
		closedir(d);
	}
	if (r == 0) {
		if (list.n > 0)
			qsort(list.v, list.n, sizeof(*list.v), by_pid);
		for (size_t i = 0; i < list.n; i++)
			fn(&list.v[i], ctx);
	}
	free(list.v);
	return r < 0 ? r : (int)list.n;
}

int session_terminate(const struct sessions_record *rec)
{
	int fd = (int)syscall(SYS_pidfd_open, rec->pid, 0), r = 0;

	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	/* The pidfd names the process that had pid when it was opened; if that
	 * one still is the record's, it is the one signalled. */
	if (!session_process_is(rec->pid, rec->start, rec->uid))
		r = -ESRCH;
	else if (syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0) < 0)
		r = -errno;
	/* A monitor ends its session within seconds (its child says 421 first);
	 * one that does not (stopped, stuck, or taken over) is killed, and its
	 * child with it (PR_SET_PDEATHSIG). The pidfd is readable once the
	 * process has exited. */
	if (r == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n;
		do
			n = poll(&p, 1, SESSION_TERM_WAIT_MS);
		while (n < 0 && errno == EINTR);
		if (n == 0 && syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0 &&
		    errno != ESRCH)
			r = -errno;
	}
	close(fd);
	return r;
}
