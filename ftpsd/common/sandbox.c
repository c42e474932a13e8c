#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "build_config.h"
#include "log.h"
#include "sanitizer.h"

struct rule {
	int nr;
	const char *why;
};

/* Each syscall the child may make, and why it needs it. */
static const struct rule child_rules[] = {
	{ SCMP_SYS(read), "control and data sockets, memfd listings" },
	{ SCMP_SYS(write), "control and data sockets, uploaded files" },
	{ SCMP_SYS(readv), "GnuTLS transport" },
	{ SCMP_SYS(writev), "GnuTLS transport" },
	{ SCMP_SYS(recvfrom), "recv() on sockets" },
	{ SCMP_SYS(recvmsg), "monitor answers with descriptors; GnuTLS" },
	{ SCMP_SYS(pread64), "file data for TLS records" },
	{ SCMP_SYS(pwrite64), "uploads at an offset" },
	{ SCMP_SYS(sendfile), "clear RETR and listings without a copy" },
	{ SCMP_SYS(fsync), "uploads are on disk before 226" },
	{ SCMP_SYS(lseek), "descriptors from the monitor" },
	{ SCMP_SYS(fstat), "size of a listing" },
	{ SCMP_SYS(newfstatat), "fstat() in glibc (AT_EMPTY_PATH only, on descriptors)" },
	{ SCMP_SYS(close), "every descriptor" },
	{ SCMP_SYS(poll), "the event loop" },
	{ SCMP_SYS(ppoll), "the event loop" },
	{ SCMP_SYS(accept4), "passive data connections" },
	{ SCMP_SYS(bind), "passive listeners" },
	{ SCMP_SYS(listen), "passive listeners" },
	{ SCMP_SYS(getsockname), "addresses for PASV and logs" },
	{ SCMP_SYS(getpeername), "the peer check on data connections" },
	{ SCMP_SYS(setsockopt), "TCP_NODELAY on data sockets, SO_REUSEADDR on passive listeners" },
	{ SCMP_SYS(getsockopt), "the result of active mode's connect (the monitor's)" },
	{ SCMP_SYS(shutdown), "ending data connections" },
	{ SCMP_SYS(fcntl), "O_NONBLOCK" },
	{ SCMP_SYS(getrandom), "TLS randomness, passive port choice" },
};

/* The logged-in monitor: answers file requests and signs. It opens files
 * only through openat2 (RESOLVE_IN_ROOT), never executes anything and makes
 * no new sockets. */
static const struct rule monitor_rules[] = {
	{ SCMP_SYS(recvmsg), "requests from the child" },
	{ SCMP_SYS(ppoll), "waiting for the child, or SIGTERM from the administrator" },
	{ SCMP_SYS(sendmsg), "answers, with descriptors" },
	{ SCMP_SYS(sendto), "syslog on its already connected socket" },
	{ SCMP_SYS(read), "libc" },
	{ SCMP_SYS(write), "listings into a memfd, stderr logging" },
	{ SCMP_SYS(openat2), "every path, resolved inside the user's root" },
	{ SCMP_SYS(close), "every descriptor" },
	{ SCMP_SYS(fcntl), "O_NONBLOCK off, memfd seals, the lock slots of shared rates" },
	{ SCMP_SYS(getdents64), "listings" },
	{ SCMP_SYS(sysinfo), "qsort() of a large listing asks for the memory size" },
	{ SCMP_SYS(newfstatat), "listings, file sizes" },
	{ SCMP_SYS(fstat), "file sizes" },
	{ SCMP_SYS(faccessat), "MLSD perm facts" },
	{ SCMP_SYS(faccessat2), "MLSD perm facts" },
	{ SCMP_SYS(lseek), "rewinding listings" },
	{ SCMP_SYS(ftruncate), "resumed uploads in place, quota usage files" },
	{ SCMP_SYS(flock), "the quota usage file's lock" },
	{ SCMP_SYS(pwrite64), "the quota usage file" },
	{ SCMP_SYS(pread64), "the quota usage file" },
	{ SCMP_SYS(copy_file_range), "atomic APPE and REST: the old content, reflinked or copied" },
	{ SCMP_SYS(linkat), "a complete atomic upload gets its name" },
	{ SCMP_SYS(fchmod), "a replaced file's mode on its atomic successor; the session record" },
	{ SCMP_SYS(fsync), "the directory of an atomic upload (upload-fsync)" },
	{ SCMP_SYS(memfd_create), "listings handed to the child" },
	{ SCMP_SYS(mkdirat), "MKD" },
	{ SCMP_SYS(unlinkat), "DELE, RMD; the session record at the end" },
	{ SCMP_SYS(renameat), "RNFR/RNTO; the session record, written whole then renamed" },
	{ SCMP_SYS(renameat2), "RNFR/RNTO" },
	{ SCMP_SYS(fchmodat), "SITE CHMOD before Linux 6.6" },
	{ SCMP_SYS(utimensat), "MFMT" },
	{ SCMP_SYS(getrandom), "signature nonces" },
	{ SCMP_SYS(wait4), "reaping the child" },
	{ SCMP_SYS(kill), "ending the child" },
};

/* What both processes need to exist: memory, locks, time, signals, exit. */
static const struct rule process_rules[] = {
	{ SCMP_SYS(clock_gettime), "timeouts, listing dates (when the vDSO is not used)" },
	{ SCMP_SYS(gettimeofday), "GnuTLS time" },
	{ SCMP_SYS(time), "GnuTLS time" },
	{ SCMP_SYS(brk), "malloc" },
	{ SCMP_SYS(mmap), "malloc" },
	{ SCMP_SYS(munmap), "malloc" },
	{ SCMP_SYS(mremap), "realloc" },
	{ SCMP_SYS(madvise), "malloc trimming" },
	{ SCMP_SYS(futex), "GnuTLS locks" },
	{ SCMP_SYS(getpid), "logging, GnuTLS" },
	{ SCMP_SYS(rt_sigreturn), "signal return" },
	{ SCMP_SYS(restart_syscall), "poll() resumed after SIGSTOP/SIGCONT" },
	{ SCMP_SYS(rt_sigprocmask), "libc internals" },
	{ SCMP_SYS(exit), "exit" },
	{ SCMP_SYS(exit_group), "exit" },
};

/* Sanitizer builds (tests only): what the ASan/UBSan runtime itself calls. */
static const struct rule sanitizer_rules[] = {
	{ SCMP_SYS(sigaltstack), "sanitizer runtime" },
	{ SCMP_SYS(rt_sigaction), "sanitizer runtime" },
	{ SCMP_SYS(mprotect), "sanitizer runtime" },
	{ SCMP_SYS(sched_yield), "sanitizer runtime" },
	{ SCMP_SYS(prlimit64), "sanitizer runtime" },
	{ SCMP_SYS(getrlimit), "sanitizer runtime" },
	{ SCMP_SYS(gettid), "sanitizer runtime" },
	{ SCMP_SYS(ioctl), "sanitizer runtime: isatty() before a report" },
	{ SCMP_SYS(readlink), "sanitizer runtime: symbolizing a report" },
	{ SCMP_SYS(getppid), "sanitizer runtime" },
};

#define N_RULES(t) (sizeof(t) / sizeof((t)[0]))

static int allow(scmp_filter_ctx ctx, const struct rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, rules[i].nr, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A process's own rules, what every process needs, and in sanitizer builds
 * what their runtime calls. */
static int add_rules(scmp_filter_ctx ctx, const struct rule *rules, size_t n)
{
	int r = allow(ctx, rules, n);

	if (r == 0)
		r = allow(ctx, process_rules, N_RULES(process_rules));
	if (r == 0 && FTPSD_SANITIZED)
		r = allow(ctx, sanitizer_rules, N_RULES(sanitizer_rules));
	return r;
}

bool sandbox_under_valgrind(void)
{
#if FTPSD_TEST_HOOKS
	return getenv("FTPSD_TEST_VALGRIND") != NULL;
#else
	return false;
#endif
}

/* TCP sockets over IPv4 and IPv6, protocol 0: no MPTCP (IPPROTO_MPTCP),
 * which Landlock's TCP rules do not cover. */
static int allow_tcp_sockets(scmp_filter_ctx ctx)
{
	static const int families[] = { AF_INET, AF_INET6 };
	int r = 0;

	for (size_t i = 0; r == 0 && i < sizeof(families) / sizeof(families[0]); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3,
				     SCMP_CMP(0, SCMP_CMP_EQ, (scmp_datum_t)families[i], 0),
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM),
				     SCMP_CMP(2, SCMP_CMP_EQ, 0, 0));
	return r;
}

int sandbox_monitor(bool active_connect)
{
	scmp_filter_ctx ctx;
	int r;

	if (sandbox_under_valgrind())
		return 0;
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL)
		return -ENOMEM;
	r = add_rules(ctx, monitor_rules, N_RULES(monitor_rules));
	if (r < 0)
		goto out;
	/* fchmodat2 (Linux 6.6, number 452 on every architecture) is newer than
	 * this libseccomp's table: allowed by number where it is known, else
	 * made to fail with ENOSYS so the fallback runs. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, 452, 0);
	if (r < 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), 452, 0);
	if (r < 0)
		goto out;
	/* Only the process title (the transfer's progress in ps). */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			     SCMP_CMP(0, SCMP_CMP_EQ, PR_SET_NAME, 0));
	if (r < 0)
		goto out;
	if (active_connect) {
		/* Active mode's data connections (IPC_CONNECT), which the child
		 * may not make: TCP over IPv4 or IPv6. syslog() reconnects after
		 * a journald restart: its socket fails, and nothing is killed. */
		r = allow_tcp_sockets(ctx);
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
					     SCMP_CMP(0, SCMP_CMP_EQ, AF_UNIX, 0));
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
	} else {
		/* No socket: syslog()'s reconnection fails, and nothing is killed. */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 0);
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(connect), 0);
	}
	if (r == 0)
		r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r;
}

int sandbox_child(void)
{
	scmp_filter_ctx ctx;
	int r;

	if (sandbox_under_valgrind())
		return 0;
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL)
		return -ENOMEM;
	r = add_rules(ctx, child_rules, N_RULES(child_rules));
	if (r < 0)
		goto out;
	/* Data sockets are TCP over IPv4 or IPv6, nothing else. */
	r = allow_tcp_sockets(ctx);
	if (r < 0)
		goto out;
	/* send() and sendmsg() on every socket, but never MSG_FASTOPEN: on a
	 * TCP socket not yet connected it connects (TCP Fast Open), and the
	 * child has no connect. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendto), 1,
			     SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendmsg), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, 0));
	if (r < 0)
		goto out;
	/* Only the process title. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			     SCMP_CMP(0, SCMP_CMP_EQ, PR_SET_NAME, 0));
	if (r < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r;
}
