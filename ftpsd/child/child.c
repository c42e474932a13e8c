/* The child's lockdown: everything here happens before the first byte is
 * read from the network. */
#include "child.h"
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "child_mon.h"
#include "config.h"
#include "ctls.h"
#include "landlock.h"
#include "log.h"
#include "proctitle.h"
#include "sandbox.h"
#include "sanitizer.h"
#include "session.h"

/* Keep only the connection and the monitor's socket. */
static void close_others(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	/* Sanitizer builds (tests only): reports must reach the log. */
	const bool keep_stderr = FTPSD_SANITIZED;

	for (int fd = 0; fd < lo; fd++)
		if (!(fd == 2 && keep_stderr))
			close(fd);
	for (int fd = lo + 1; fd < hi; fd++)
		close(fd);
	if (close_range((unsigned)hi + 1, ~0U, 0) < 0)
		for (int fd = hi + 1; fd < 1024; fd++)
			close(fd);
	/* Descriptors 0-2 must not be left free for a socket to land on. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		if (fd != a && fd != b && fd != null && !(fd == 2 && keep_stderr))
			dup2(null, fd);
	if (null > 2 && null != a && null != b)
		close(null);
}

static void drop_privileges(const struct child_params *p)
{
	if (chroot(p->empty_dir) < 0 || chdir("/") < 0)
		fatal("chroot %s", p->empty_dir);
	if (setgroups(0, NULL) < 0 || setresgid(p->gid, p->gid, p->gid) < 0 ||
	    setresuid(p->uid, p->uid, p->uid) < 0)
		fatal("dropping privileges");

	uid_t ru, eu, su;
	if (getresuid(&ru, &eu, &su) < 0 || ru != p->uid || eu != p->uid || su != p->uid ||
	    setuid(0) == 0)
		fatalx("privileges were not dropped");
}

void child_main(struct child_params *p)
{
	struct rlimit core = { 0, 0 };

	close_others(p->conn_fd, p->ipc_fd);
	/* A client closing a data connection mid-sendfile() must end a transfer,
	 * not the process; write errors are handled where they happen. */
	signal(SIGPIPE, SIG_IGN);
	mm_init(p->ipc_fd);
	log_set_sink(mm_log);
	proctitle_set("ftpsd: child %s", p->peer);

	if (ctls_prepare(p->cfg, p->cert_pem, p->cert_len, p->identities, p->proof_random) < 0)
		fatalx("TLS set-up failed");
	for (unsigned i = 0; i < p->identities; i++)
		if (p->cert_pem[i] != NULL)
			explicit_bzero(p->cert_pem[i], p->cert_len[i]);
	/* strftime() calls tzset(), which would open /etc/localtime inside the
	 * empty root; loading it now makes the later calls no-ops. */
	tzset();

	if (p->empty_dir != NULL)
		drop_privileges(p);
	else
		log_debug("not started as root: no chroot, no user change (development mode)");

	/* Set after the id change, which resets both. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fatal("prctl");
	/* The monitor died before PR_SET_PDEATHSIG was set. No session exists
	 * yet (nothing to close, no one to tell), and the log went with the
	 * monitor: session_end() has nothing to do here. */
	if (getppid() != p->monitor_pid)
		_exit(1);
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		fatal("RLIMIT_CORE");
	struct rlimit nofile = { 64, 64 };
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 && !sandbox_under_valgrind())
		fatal("RLIMIT_NOFILE");
	/* The session's passive ports, the only ones its Landlock layer lets
	 * it bind. */
	static uint16_t ports[IPC_MAX_IDENTITIES * 128];
	size_t nports = data_pasv_choose(p->cfg, ports, sizeof(ports) / sizeof(ports[0]));
	/* Landlock under seccomp, which does not allow its calls. */
	if (p->cfg->landlock != LANDLOCK_MODE_OFF) {
		char what[256];
		int abi = landlock_child(p->cfg, ports, nports, what, sizeof(what));
		if (abi < 0) {
			errno = -abi;
			fatal("landlock");
		}
		/* A refused session (the monitor's landlock = required check
		 * among them) still says why before it ends. */
		if (abi == 0 && p->cfg->landlock == LANDLOCK_MODE_REQUIRED && p->refusal[0] == '\0')
			fatalx("landlock = required: %s", what);
		log_debug("child sandbox: %s", what);
	}
	int r = sandbox_child();
	if (r < 0) {
		errno = -r;
		fatal("seccomp");
	}
	/* Pages the filter's compilation dirtied go back before the session starts. */
	(void)malloc_trim(0);

	session_run(p->cfg, p->conn_fd, p->implicit_tls, p->peer, &p->peer_addr, p->refusal);
}
