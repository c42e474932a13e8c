#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "build_config.h"
#include "config.h"
#include "sandbox.h"
#include "sanitizer.h"

/* The kernel's ABI, declared here: the distribution's <linux/landlock.h>
 * may be older than the kernel (Debian 12's stops at ABI 2). */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;	     /* ABI 6 */
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH	  1
#define LL_RULE_NET_PORT	  2

#define LL_FS_EXECUTE	  (1ULL << 0)
#define LL_FS_WRITE_FILE  (1ULL << 1)
#define LL_FS_READ_FILE	  (1ULL << 2)
#define LL_FS_READ_DIR	  (1ULL << 3)
#define LL_FS_REMOVE_DIR  (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR	  (1ULL << 6)
#define LL_FS_MAKE_DIR	  (1ULL << 7)
#define LL_FS_MAKE_REG	  (1ULL << 8)
#define LL_FS_MAKE_SOCK	  (1ULL << 9)
#define LL_FS_MAKE_FIFO	  (1ULL << 10)
#define LL_FS_MAKE_BLOCK  (1ULL << 11)
#define LL_FS_MAKE_SYM	  (1ULL << 12)
#define LL_FS_REFER	  (1ULL << 13) /* ABI 2 */
#define LL_FS_TRUNCATE	  (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV	  (1ULL << 15) /* ABI 5 */

#define LL_NET_BIND_TCP	   (1ULL << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */

#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL		      (1ULL << 1) /* ABI 6 */

/* Every filesystem right the kernel of this ABI knows: all of them are
 * handled (denied unless a rule allows). */
static uint64_t fs_rights(int abi)
{
	uint64_t r = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1 */

	if (abi >= 2)
		r |= LL_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

static int kernel_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

int landlock_abi(void)
{
	int abi;

	/* Test builds: valgrind reads its own files all along (and does not
	 * know Landlock's calls). */
	if (sandbox_under_valgrind())
		return 0;
	abi = kernel_abi();
#if FTPSD_TEST_HOOKS
	/* Tests: an older kernel, or none, on this one. */
	const char *cap = getenv("FTPSD_TEST_LANDLOCK_ABI");
	if (cap != NULL && atoi(cap) < abi)
		abi = atoi(cap) < 0 ? 0 : atoi(cap);
#endif
	return abi;
}

void landlock_describe(int abi, char *buf, size_t len)
{
	if (abi <= 0)
		snprintf(buf, len, "no Landlock in this kernel");
	else
		snprintf(buf, len, "Landlock ABI %d: filesystem%s%s%s%s%s", abi,
			 abi >= 2 ?
				 ", renames across directories" :
				 " (no renames across directories: the monitor is not restricted)",
			 abi >= 3 ? ", truncation" : "", abi >= 4 ? ", TCP bind and connect" : "",
			 abi >= 5 ? ", device ioctls" : "",
			 abi >= 6 ? ", signal and abstract socket scopes" : "");
}

static int ruleset(const struct ll_ruleset_attr *attr, int abi)
{
	/* The structure grew with the ABI: only the part this kernel knows. */
	size_t size = abi >= 6 ? sizeof(*attr) :
		      abi >= 4 ? offsetof(struct ll_ruleset_attr, scoped) :
				 offsetof(struct ll_ruleset_attr, handled_access_net);
	long fd = syscall(SYS_landlock_create_ruleset, attr, size, 0);

	return fd < 0 ? -errno : (int)fd;
}

static int add_path(int rs, int dir, uint64_t allowed)
{
	struct ll_path_beneath_attr pb = { .allowed_access = allowed, .parent_fd = dir };

	return syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0) < 0 ? -errno : 0;
}

static int add_port(int rs, unsigned port, uint64_t allowed)
{
	struct ll_net_port_attr np = { .allowed_access = allowed, .port = port };

	return syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &np, 0) < 0 ? -errno : 0;
}

/* no_new_privs is what lets a process without CAP_SYS_ADMIN restrict
 * itself (seccomp sets it too, a moment later). */
static int restrict_self(int rs)
{
	int r = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		r = -errno;
	close(rs);
	return r;
}

static void missing(char *what, size_t len, int abi, const char *done, const char *scopes)
{
	snprintf(what, len, "Landlock ABI %d: %s%s%s", abi, done,
		 abi < 4 ? "; no TCP rules (ABI 4)" : "", abi < 6 ? "; no scopes (ABI 6)" : scopes);
}

int landlock_child(const struct config *cfg, const uint16_t *ports, size_t nports, char *what,
		   size_t len)
{
	int abi = landlock_abi();
	struct ll_ruleset_attr attr = { .handled_access_fs = fs_rights(abi) };
	int rs, r = 0;

	(void)cfg;
	if (abi <= 0) {
		snprintf(what, len, "no Landlock in this kernel");
		return 0;
	}
	/* No connect at all: active mode's connections are the monitor's
	 * (IPC_CONNECT). */
	if (abi >= 4)
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
	if (abi >= 6)
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
	rs = ruleset(&attr, abi);
	if (rs < 0)
		return rs;
	/* Not one filesystem rule: the child reaches files only through the
	 * descriptors the monitor hands it. Bind: one rule per port of the
	 * session's own few (a rule costs some 2 us: a whole range of 16383
	 * would add 30 ms to every session). */
	for (size_t i = 0; abi >= 4 && r == 0 && i < nports; i++)
		r = add_port(rs, ports[i], LL_NET_BIND_TCP);
	if (r < 0) {
		close(rs);
		return r;
	}
	r = restrict_self(rs);
	if (r < 0)
		return r;
	missing(what, len, abi,
		abi < 4 ? "no filesystem" : "no filesystem, TCP bind to passive ports, no connect",
		"; abstract unix sockets and kill() scoped to the child");
	return abi;
}

int landlock_prelogin_begin(struct landlock_prelogin *l, char *what, size_t len)
{
	int abi = landlock_abi();
	/* What writes: denied but beneath the directories allowed. */
	uint64_t write = LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR |
			 LL_FS_MAKE_REG | (abi >= 3 ? LL_FS_TRUNCATE : 0);
	struct ll_ruleset_attr attr = {
		.handled_access_fs = write | LL_FS_EXECUTE | LL_FS_MAKE_CHAR | LL_FS_MAKE_BLOCK |
				     LL_FS_MAKE_FIFO | LL_FS_MAKE_SOCK | LL_FS_MAKE_SYM,
	};
	int r;

	*l = (struct landlock_prelogin){ .ruleset = -1 };
	if (abi <= 0) {
		snprintf(what, len, "no Landlock in this kernel");
		return 0;
	}
	/* ABI 1 layers refuse renames across directories, for good. */
	if (abi < 2) {
		snprintf(what, len,
			 "Landlock ABI 1 cannot allow renames across directories: "
			 "the monitor is not restricted before login");
		return 0;
	}
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	/* Connect stays: PAM modules reach LDAP, RADIUS, Kerberos. */
	if (abi >= 4)
		attr.handled_access_net = LL_NET_BIND_TCP;
	/* A layer that does not handle REFER refuses every rename across
	 * directories, the later layer's rules whatever: handled, and
	 * allowed everywhere (a rename also needs the rights to remove and
	 * make, which only the directories allowed have). */
	attr.handled_access_fs |= LL_FS_REFER;
	l->ruleset = ruleset(&attr, abi);
	if (l->ruleset < 0)
		return l->ruleset;
	int all = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	r = all < 0 ? -errno : add_path(l->ruleset, all, LL_FS_REFER);
	if (all >= 0)
		close(all);
	if (r < 0) {
		close(l->ruleset);
		l->ruleset = -1;
		return r;
	}
	l->abi = abi;
	l->write = write;
	return abi;
}

int landlock_prelogin_allow(struct landlock_prelogin *l, int dir)
{
	int r = add_path(l->ruleset, dir, l->write | LL_FS_REFER);

	if (r == 0)
		l->ndirs++;
	return r;
}

int landlock_prelogin_end(struct landlock_prelogin *l, char *what, size_t len)
{
	int r = restrict_self(l->ruleset);

	l->ruleset = -1;
	if (r < 0)
		return r;
	snprintf(what, len,
		 "Landlock ABI %d before login: writes only beneath %zu directories, no exec, "
		 "no special files made%s%s",
		 l->abi, l->ndirs, l->abi >= 5 ? ", no device ioctls" : "",
		 l->abi >= 4 ? ", no TCP bind" : "");
	return l->abi;
}

int landlock_monitor(const int *dirs, size_t ndirs, const int *records, size_t nrecords,
		     bool active_connect, char *what, size_t len)
{
	int abi = landlock_abi();
	struct ll_ruleset_attr attr = { .handled_access_fs = fs_rights(abi) };
	/* Beneath the user's root, what FTP does: no execution, no devices,
	 * fifos, sockets or symbolic links made, no device ioctls. */
	uint64_t tree = LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR |
			LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_REFER |
			LL_FS_TRUNCATE;
	/* The session record: written to a temporary name, renamed, removed. */
	uint64_t record = LL_FS_WRITE_FILE | LL_FS_MAKE_REG | LL_FS_REMOVE_FILE | LL_FS_TRUNCATE;
	int rs, r = 0;

	if (abi <= 0) {
		snprintf(what, len, "no Landlock in this kernel");
		return 0;
	}
	/* ABI 1 refuses every rename and link across directories, which
	 * RNFR/RNTO needs. */
	if (abi < 2) {
		snprintf(what, len,
			 "Landlock ABI 1 cannot allow renames across directories: "
			 "the monitor is not restricted");
		return 0;
	}
	tree &= attr.handled_access_fs;
	record &= attr.handled_access_fs;
	/* No TCP at all, but active mode's connect (IPC_CONNECT: to the
	 * client only, by its own code; Landlock has no port ranges, and the
	 * 64512 rules of the ports from 1024 would cost each session 0.1 s).
	 * Not the signal scope: the monitor ends its child, which is outside
	 * its domain. */
	if (abi >= 4)
		attr.handled_access_net = LL_NET_BIND_TCP | (active_connect ? 0 : LL_NET_CONNECT_TCP);
	if (abi >= 6)
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET;
	rs = ruleset(&attr, abi);
	if (rs < 0)
		return rs;
	for (size_t i = 0; r == 0 && i < ndirs; i++)
		r = add_path(rs, dirs[i], tree);
	for (size_t i = 0; r == 0 && i < nrecords; i++)
		r = add_path(rs, records[i], record);
	/* Sanitizer builds (tests only): the runtime reads /proc/self/maps. */
	if (r == 0 && FTPSD_SANITIZED) {
		int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		r = proc < 0 ? -errno : add_path(rs, proc, LL_FS_READ_FILE | LL_FS_READ_DIR);
		if (proc >= 0)
			close(proc);
	}
	if (r < 0) {
		close(rs);
		return r;
	}
	r = restrict_self(rs);
	if (r < 0)
		return r;
	missing(what, len, abi,
		abi < 4 ? "filesystem only beneath the user's root and the session record" :
		active_connect ? "filesystem only beneath the user's root and the session record, "
				 "no TCP bind, connect for active mode only" :
				 "filesystem only beneath the user's root and the session record, "
				 "no TCP bind or connect",
		"; abstract unix sockets scoped to the monitor");
	return abi;
}
