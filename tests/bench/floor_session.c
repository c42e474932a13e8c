/* The memory floor of ftpsd's design, for tests/bench/bench.py --tests scale:
 * a measuring device, not a server (it checks no password and serves no
 * file). Built by bench.py against the libraries ftpsd links (GnuTLS,
 * libseccomp, libcrypt, PAM), it does for one connection what an idle
 * logged-in ftpsd session has done, and nothing more: one process started
 * per connection reads the certificate and the key, forks a child, keeps
 * the key in the parent; the child answers the FTP greeting, AUTH TLS with
 * one GnuTLS handshake (TLS 1.3 ticket keys as ftpsd makes them), USER,
 * PASS, PBSZ, PROT and NOOP with fixed replies, and then waits. Both
 * processes give their free heap back (malloc_trim) before they wait.
 *
 *   floor_session CERT KEY              one session on fd 3 (systemd-socket-activate --accept)
 *   floor_session CERT KEY ADDR PORT    a long-lived listener that forks (without exec) a
 *                                       session per connection, as vsftpd does: what a
 *                                       different design would cost
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static gnutls_datum_t cert_pem, key_pem;

static void die(const char *what)
{
	fprintf(stderr, "floor_session: %s\n", what);
	exit(1);
}

static void put(int fd, gnutls_session_t s, const char *line)
{
	size_t n = strlen(line);

	if (s != NULL ? gnutls_record_send(s, line, n) != (ssize_t)n : write(fd, line, n) != (ssize_t)n)
		exit(0);
}

/* One command line, without TLS (before AUTH) or with. */
static int get(int fd, gnutls_session_t s, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		ssize_t r = s != NULL ? gnutls_record_recv(s, buf + n, 1) : read(fd, buf + n, 1);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 0;
}

static void child(int conn)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t ticket_key;
	gnutls_session_t s = NULL;
	char line[512];

	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_certificate_set_x509_key_mem2(cred, &cert_pem, &key_pem, GNUTLS_X509_FMT_PEM,
						 NULL, 0) < 0 ||
	    gnutls_session_ticket_key_generate(&ticket_key) < 0)
		die("TLS set-up");
	gnutls_free(key_pem.data);
	put(conn, NULL, "220 floor\r\n");
	while (get(conn, s, line, sizeof(line)) == 0) {
		if (s == NULL && strncasecmp(line, "AUTH", 4) == 0) {
			put(conn, NULL, "234 go\r\n");
			if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET) < 0 ||
			    gnutls_set_default_priority(s) < 0 ||
			    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
			    gnutls_session_ticket_enable_server(s, &ticket_key) < 0)
				die("TLS session");
			gnutls_transport_set_int(s, conn);
			int r;
			do
				r = gnutls_handshake(s);
			while (r < 0 && !gnutls_error_is_fatal(r));
			if (r < 0)
				exit(0);
		} else if (strncasecmp(line, "USER", 4) == 0) {
			put(conn, s, "331 password\r\n");
		} else if (strncasecmp(line, "PASS", 4) == 0) {
			put(conn, s, "230 in\r\n");
			/* Logged in: idle from here, as an ftpsd session is. */
			(void)malloc_trim(0);
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			put(conn, s, "221 bye\r\n");
			break;
		} else {
			put(conn, s, "200 ok\r\n"); /* PBSZ, PROT, NOOP, ... */
		}
	}
	if (s != NULL)
		gnutls_bye(s, GNUTLS_SHUT_WR);
	exit(0);
}

/* One connection: fork the protocol child, keep the key, wait. */
static void session(int conn)
{
	int sv[2];
	gnutls_privkey_t key;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(sv[0]);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		child(conn);
	}
	close(sv[1]);
	close(conn);
	/* The key is the parent's, as ftpsd's monitor keeps it. */
	if (gnutls_privkey_init(&key) < 0 ||
	    gnutls_privkey_import_x509_raw(key, &key_pem, GNUTLS_X509_FMT_PEM, NULL, 0) < 0)
		die("key");
	explicit_bzero(key_pem.data, key_pem.size);
	(void)malloc_trim(0);
	struct pollfd p = { .fd = sv[0], .events = POLLIN };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	(void)waitpid(pid, NULL, 0);
	exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 5)
		die("usage: floor_session CERT KEY [ADDR PORT]");
	if (gnutls_load_file(argv[1], &cert_pem) < 0 || gnutls_load_file(argv[2], &key_pem) < 0)
		die("cannot read the certificate or the key");
	if (argc == 3)
		session(3);

	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[4])) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || inet_pton(AF_INET, argv[3], &a.sin_addr) != 1 ||
	    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 512) < 0)
		die("listen");
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int c = accept4(l, NULL, NULL, 0);
		if (c < 0)
			continue;
		pid_t pid = fork();
		if (pid == 0) {
			close(l);
			session(c);
		}
		close(c);
	}
}
