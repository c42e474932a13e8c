/* Entry: options, configuration, the connection from the launcher, then the
 * monitor. ftpsd never listens: systemd (Accept=yes) or inetd hands it one
 * accepted connection. */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "child.h"
#include "config.h"
#include "landlock.h"
#include "log.h"
#include "memory.h"
#include "monitor.h"
#include "monitor_auth.h"
#include "monitor_limits.h"
#include "monitor_tls.h"
#include "password.h"
#include "quota.h"
#include "proctitle.h"
#include "proxy.h"
#include "sanitizer.h"

#if FTPSD_SANITIZED
/* Sanitizer builds (tests only): a report ends the process; LeakSanitizer
 * cannot run under the seccomp filters, and the launcher passes no
 * environment to set these with. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0:abort_on_error=1";
}

const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "print_stacktrace=1:halt_on_error=1";
}
#endif

static void print_error(void *ctx, const char *message)
{
	int *count = ctx;

	(*count)++;
	fprintf(stderr, "%s\n", message);
}

static void log_error(void *ctx, const char *message)
{
	int *count = ctx;

	(*count)++;
	log_write(3, message);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: ftpsd [--config FILE] [--implicit-tls]\n"
		   "       ftpsd [--config FILE] --check-config | --print-config\n"
		   "       ftpsd --hash-password [< password]\n"
		   "       ftpsd --version\n"
		   "Serves one FTPS connection handed over by systemd (fd 3) or inetd (fd 0).\n");
}

/* --hash-password: a yescrypt hash for the users file, of a password asked
 * twice without echo on a terminal, else of the first line of standard
 * input. */
static int hash_password(void)
{
	char password[PASSWORD_MAX], hash[CRYPT_OUTPUT_SIZE];
	int r = password_read(false, password, sizeof(password));

	if (r < 0) {
		fprintf(stderr, "ftpsd: %s\n", password_error(r));
		return 1;
	}
	r = password_hash(password, "$y$", hash, sizeof(hash));
	explicit_bzero(password, sizeof(password));
	if (r < 0) {
		fprintf(stderr, "ftpsd: cannot hash the password: %s\n", strerror(-r));
		return 1;
	}
	printf("%s\n", hash);
	explicit_bzero(hash, sizeof(hash));
	return 0;
}

/* --check-config beyond syntax: what a session would open, opened now. */
static int check_files(const struct config *cfg)
{
	int errors = 0;
	struct stat st;
	char msg[1024];
	const struct {
		const char *key, *path;
		bool dir;
	} files[] = {
		{ "users-file", cfg->users_file, false },
		{ "empty-dir", cfg->empty_dir, true },
		{ "anonymous-root", cfg->anonymous ? cfg->anonymous_root : NULL, true },
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].path == NULL)
			continue;
		const char *why = NULL;
		if (stat(files[i].path, &st) < 0)
			why = strerror(errno);
		else if (files[i].dir && !S_ISDIR(st.st_mode))
			why = "not a directory";
		else if (!files[i].dir && access(files[i].path, R_OK) < 0)
			why = strerror(errno);
		if (why != NULL) {
			snprintf(msg, sizeof(msg), "%s:%u: %s %s: %s", cfg->path,
				 config_key_line(cfg, files[i].key), files[i].key, files[i].path, why);
			print_error(&errors, msg);
		}
	}
	/* Every users file's lines, as a login would read them: the global
	 * one and each host's own. (print_error counts.) */
	for (size_t i = 0; i <= cfg->nhosts; i++) {
		const struct config *c = config_identity(cfg, (unsigned)i);
		if (c->users_file == NULL || access(c->users_file, R_OK) < 0 ||
		    (i > 0 && cfg->users_file != NULL && strcmp(c->users_file, cfg->users_file) == 0))
			continue;
		(void)monitor_auth_check_file(c->users_file, print_error, &errors);
	}
	/* Each quota-dir (the global one, and hosts' own): where a quota applies,
	 * or the directory exists, a login must be able to use it. */
	for (size_t i = 0; i <= cfg->nhosts; i++) {
		const struct config *c = config_identity(cfg, (unsigned)i);
		const char *qwhy = "";
		struct stat qst;
		if (i > 0 && strcmp(c->quota_dir, cfg->quota_dir) == 0)
			continue;
		if (c->quota_bytes == 0 && c->quota_files == 0 && stat(c->quota_dir, &qst) < 0)
			continue;
		if (quota_dir_check(c->quota_dir, geteuid() == 0, &qwhy) < 0) {
			snprintf(msg, sizeof(msg), "%s:%u: quota-dir %s: %s", cfg->path,
				 config_key_line(cfg, "quota-dir"), c->quota_dir, qwhy);
			print_error(&errors, msg);
		}
	}
	const char *why = "";
	/* Every session refuses itself (421) where runtime-dir cannot serve. */
	int r = limits_check_dir(cfg->runtime_dir, &why);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s:%u: runtime-dir %s: %s", cfg->path,
			 config_key_line(cfg, "runtime-dir"), cfg->runtime_dir, why);
		print_error(&errors, msg);
	}
	why = "";
	r = monitor_tls_check_ticket_secret(cfg->tls_ticket_secret, &why);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s:%u: tls-ticket-secret %s: %s (%s)", cfg->path,
			 config_key_line(cfg, "tls-ticket-secret"), cfg->tls_ticket_secret, why,
			 strerror(-r));
		print_error(&errors, msg);
	}
	/* Each error is counted by print_error itself. */
	(void)monitor_tls_check(cfg, print_error, &errors);
	return errors;
}

/* allow-before-tls of one configuration (the global part or a host that
 * sets its own) against the child's command table: a verb it does not know
 * would never run, before TLS or after. */
static int check_verbs(const struct config *cfg)
{
	int errors = 0;
	char msg[1024];

	for (const char *p = cfg->allow_before_tls; p != NULL && *p != '\0';) {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		char verb[8];
		/* The parser keeps only verbs of 3 or 4 letters, "A,B". */
		if (n > 0 && n < sizeof(verb)) {
			memcpy(verb, p, n);
			verb[n] = '\0';
			if (!commands_known(verb)) {
				snprintf(msg, sizeof(msg),
					 "%s:%u: allow-before-tls: unknown command %s", cfg->path,
					 config_key_line(cfg, "allow-before-tls"), verb);
				print_error(&errors, msg);
			}
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	return errors;
}

/* --check-config: the configuration's commands, for the global part and each
 * virtual host. A host that did not set allow-before-tls has the global
 * value, from the same line: said once. */
static int check_commands(const struct config *cfg)
{
	unsigned global = config_key_line(cfg, "allow-before-tls");
	int errors = check_verbs(cfg);

	for (size_t i = 0; i < cfg->nhosts; i++)
		if (config_key_line(&cfg->hosts[i], "allow-before-tls") != global)
			errors += check_verbs(&cfg->hosts[i]);
	return errors;
}

/* --check-config: what this kernel's Landlock offers, and whether
 * landlock = required can be met here. */
static int check_landlock(const struct config *cfg)
{
	int abi = landlock_abi();
	char have[200], msg[400];
	int errors = 0;

	landlock_describe(abi, have, sizeof(have));
	if (cfg->landlock == LANDLOCK_MODE_REQUIRED && abi < 2) {
		snprintf(msg, sizeof(msg), "%s:%u: landlock = required, and %s", cfg->path,
			 config_key_line(cfg, "landlock"), have);
		print_error(&errors, msg);
	} else {
		printf("landlock: %s%s\n", have,
		       cfg->landlock == LANDLOCK_MODE_OFF ? " (not used: landlock = off)" : "");
	}
	return errors;
}

/* A connected (not listening) stream socket, as sd_is_socket(fd, AF_UNSPEC,
 * SOCK_STREAM, 0) says. */
static bool is_connected_stream(int fd)
{
	struct stat st;
	int type = 0, listening = 0;
	socklen_t len = sizeof(type), llen = sizeof(listening);

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
	       getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) == 0 && !listening;
}

/* systemd's socket passing (sd_listen_fds(3)), read here rather than through
 * libsystemd, which ftpsd loads for nothing else (see log.c): LISTEN_PID must
 * be this process, LISTEN_FDS counts the descriptors from fd 3 and
 * LISTEN_FDNAMES names them. The variables are unset, as
 * sd_listen_fds_with_names(1, ...) does. Returns the count, or 0. */
static int listen_fds(char *name, size_t size)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char *end;
	long n = 0;

	name[0] = '\0';
	if (pid != NULL && fds != NULL) {
		errno = 0;
		unsigned long p = strtoul(pid, &end, 10);
		if (errno == 0 && *end == '\0' && end != pid && p == (unsigned long)getpid()) {
			n = strtol(fds, &end, 10);
			if (errno != 0 || *end != '\0' || end == fds || n < 0 || n > 1024)
				n = 0;
		}
	}
	if (n > 0 && names != NULL) {
		size_t len = strcspn(names, ":");
		if (len < size) {
			memcpy(name, names, len);
			name[len] = '\0';
		}
	}
	for (int fd = 3; fd < 3 + n; fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (int)n;
}

/* The connection: fd 3 from systemd, else fd 0 from inetd. */
static int find_connection(bool *from_inetd, bool *implicit)
{
	char name[64];
	int n = listen_fds(name, sizeof(name));

	if (n > 1)
		fatalx("expected one socket from systemd, got %d (is Accept=yes set?)", n);
	if (n == 1) {
		int fd = 3;
		if (strcmp(name, "ftps") == 0 || strcmp(name, "implicit") == 0)
			*implicit = true;
		if (!is_connected_stream(fd))
			fatalx("fd 3 is not a connected stream socket (is Accept=yes set?)");
		*from_inetd = false;
		return fd;
	}
	if (is_connected_stream(STDIN_FILENO)) {
		*from_inetd = true;
		return STDIN_FILENO;
	}
	fatalx("no connection: start ftpsd from a systemd socket unit with Accept=yes or from inetd");
}

/* Name the client in l (peer and session strings) from its address. */
static void describe_peer(const struct sockaddr_storage *sa, struct launch *l)
{
	struct sockaddr_storage a = *sa;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	l->peer_addr = a;
	if (a.ss_family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&a;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		port = ntohs(v4->sin_port);
	} else if (a.ss_family == AF_INET6) {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a;
		if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
			inet_ntop(AF_INET, v6->sin6_addr.s6_addr + 12, host, sizeof(host));
		else
			inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
		port = ntohs(v6->sin6_port);
	} else {
		fatalx("the connection is not TCP over IPv4 or IPv6");
	}
	snprintf(l->peer, sizeof(l->peer), "%s", host);
	snprintf(l->session, sizeof(l->session), "%s%s%s:%u", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", port);
}

/* Read exactly the PROXY header, never a byte of what follows it. */
static int read_proxy_header(int fd, unsigned timeout_ms, struct sockaddr_storage *src, bool *local)
{
	uint8_t buf[PROXY_MAX_HEADER];
	unsigned waited = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(timeout_ms - waited));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ETIMEDOUT;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
		/* Closed before a byte came (a peek sees every byte there is): a
		 * TCP health check. */
		if (n == 0)
			return -ENODATA;
		if (n < 0)
			return -errno;
		r = proxy_parse(buf, (size_t)n, src, local);
		if (r < 0)
			return r;
		if (r > 0)
			return recv(fd, buf, (size_t)r, MSG_WAITALL) == r ? 0 : -EIO;
		if ((size_t)n == sizeof(buf))
			return -EINVAL;
		/* Part of a header: peeking again at once would spin. */
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
		waited += 10;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
	}
}

/* proxy-protocol = on: only the listed balancers may connect, and each must
 * say who the client is before anything else. */
static void take_proxy_header(const struct config *cfg, struct launch *l)
{
	struct sockaddr_storage src;
	bool local = false;
	int r = proxy_address_listed(cfg->proxy_protocol_from, &l->peer_addr);

	if (r <= 0)
		fatalx("refused: %s is not in proxy-protocol-from", l->peer);
	r = read_proxy_header(l->conn_fd, cfg->login_timeout_ms, &src, &local);
	if (r == -ENODATA || r == -ECONNRESET) {
		/* Connected and gone without a word: a balancer's or a probe's
		 * TCP check. Nothing to serve, and nothing wrong. */
		log_info("connection from %s closed before its PROXY header (a TCP health check?)",
			 l->peer);
		exit(0);
	}
	if (r < 0) {
		errno = -r;
		fatal("no valid PROXY protocol header from %s", l->peer);
	}
	if (local) {
		/* The balancer speaks for itself: its health check (HAProxy's
		 * check-send-proxy sends a v2 LOCAL header). */
		l->health_check = true;
		return;
	}
	char via[64];
	snprintf(via, sizeof(via), "%s", l->peer);
	describe_peer(&src, l);
	log_set_session(l->session);
	log_set_field("REMOTE_ADDR", l->peer);
	log_info("client %s via balancer %s", l->peer, via);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "implicit-tls", no_argument, NULL, 'i' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "hash-password", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = FTPSD_DEFAULT_CONFIG;
	bool check = false, print = false, implicit = false, from_inetd = false;
	struct config cfg;
	struct launch l = { 0 };
	int opt, errors = 0;

	proctitle_init(argc, argv);
	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'i':
			implicit = true;
			break;
		case 'C':
			check = true;
			break;
		case 'P':
			print = true;
			break;
		case 'H':
			return hash_password();
		case 'V':
			printf("ftpsd %s\n", FTPSD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	config_defaults(&cfg);
	if (check || print) {
		config_load(&cfg, config_path, print_error, &errors);
		if (check)
			errors += check_commands(&cfg);
		if (check && errors == 0)
			errors += check_files(&cfg);
		if (check && errors == 0)
			errors += check_landlock(&cfg);
		if (print && errors == 0)
			config_print(&cfg, stdout);
		else if (errors == 0)
			printf("%s: OK\n", config_path);
		return errors == 0 ? 0 : 1;
	}

	memory_init();
	l.conn_fd = find_connection(&from_inetd, &implicit);
	/* Under inetd, stderr is the client's socket: never log there. */
	log_open(from_inetd ? LOG_TO_SYSLOG : log_stderr_is_journal() ? LOG_TO_JOURNAL : LOG_TO_STDERR,
		 "monitor");
	if (from_inetd) {
		int fd = fcntl(l.conn_fd, F_DUPFD_CLOEXEC, 3);
		int null = open("/dev/null", O_RDWR);
		if (fd < 0 || null < 0)
			fatal("cannot set up descriptors");
		for (int i = 0; i < 3; i++)
			dup2(null, i);
		if (null > 2)
			close(null);
		l.conn_fd = fd;
	}
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	if (getpeername(l.conn_fd, (struct sockaddr *)&peer, &plen) < 0) {
		/* Gone before we could look: a TCP connect-then-close check (a
		 * balancer's, a monitoring probe) or a client that gave up. Not
		 * an error, and nothing to serve. */
		if (errno == ENOTCONN) {
			log_info("connection closed by its peer before the session began "
				 "(a TCP health check?)");
			return 0;
		}
		fatal("getpeername");
	}
	describe_peer(&peer, &l);
	log_set_session(l.session);
	log_set_field("REMOTE_ADDR", l.peer);
	l.implicit_tls = implicit;
	l.as_root = geteuid() == 0;

	config_load(&cfg, config_path, log_error, &errors);
	if (errors > 0)
		fatalx("configuration has %d error(s); session refused", errors);
	if (implicit && cfg.control_tls == TLS_POLICY_OFF)
		fatalx("implicit TLS with control-tls = off");
	if (cfg.proxy_protocol)
		take_proxy_header(&cfg, &l);
	struct log_field f[] = {
		{ "FTPSD_EVENT", l.health_check ? "health-check" : "session-start" }
	};
	log_event(LOG_INFO, f, 1, "%s%s%s",
		  l.health_check ? "health check from the balancer (PROXY LOCAL): not counted"
				 : "session start",
		  implicit ? " (implicit TLS)" : "",
		  l.as_root ? "" : " (not root: development mode, no chroot or user change)");
	monitor_run(&cfg, &l, child_main);
}
