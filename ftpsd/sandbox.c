#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "log.h"

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
	{ SCMP_SYS(sendto), "send() on sockets" },
	{ SCMP_SYS(recvmsg), "monitor answers with descriptors; GnuTLS" },
	{ SCMP_SYS(sendmsg), "monitor requests; GnuTLS" },
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
	{ SCMP_SYS(connect), "active data connections" },
	{ SCMP_SYS(getsockname), "addresses for PASV and logs" },
	{ SCMP_SYS(getpeername), "the peer check on data connections" },
	{ SCMP_SYS(setsockopt), "TCP_NODELAY on data sockets" },
	{ SCMP_SYS(getsockopt), "connect() results" },
	{ SCMP_SYS(shutdown), "ending data connections" },
	{ SCMP_SYS(fcntl), "O_NONBLOCK" },
	{ SCMP_SYS(getrandom), "TLS randomness, passive port choice" },
	{ SCMP_SYS(clock_gettime), "timeouts (when the vDSO is not used)" },
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
	{ SCMP_SYS(rt_sigprocmask), "libc internals" },
	{ SCMP_SYS(exit), "exit" },
	{ SCMP_SYS(exit_group), "exit" },
};

int sandbox_child(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r;

	if (ctx == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(child_rules) / sizeof(child_rules[0]); i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, child_rules[i].nr, 0);
		if (r < 0)
			goto out;
	}
	/* Data sockets are TCP over IPv4 or IPv6, nothing else. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
			     SCMP_A0(SCMP_CMP_EQ, AF_INET),
			     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
	if (r < 0)
		goto out;
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
			     SCMP_A0(SCMP_CMP_EQ, AF_INET6),
			     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
	if (r < 0)
		goto out;
	/* Only the process title. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			     SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	if (r < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r;
}
