#include "password.h"

#include <crypt.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static const struct {
	const char *name, *prefix;
} methods[] = {
	{ "yescrypt", "$y$" },	   { "gost-yescrypt", "$gy$" }, { "scrypt", "$7$" },
	{ "bcrypt", "$2b$" },	   { "sha512crypt", "$6$" },	{ "sha256crypt", "$5$" },
};

const char *password_method_prefix(const char *name)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0)
			return methods[i].prefix;
	return NULL;
}

const char *password_method_names(void)
{
	return "yescrypt, gost-yescrypt, scrypt, bcrypt, sha512crypt, sha256crypt";
}

/* The terminal's settings while echo is off, for the signal handler: a
 * password prompt interrupted by ^C must not leave the terminal mute. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_muted;

static void restore_tty(int sig)
{
	if (tty_muted)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line of fd, byte by byte so that nothing past the newline is taken
 * from a pipe: its length, -ENODATA at end of input with nothing read,
 * -EMSGSIZE when it does not fit. */
static ssize_t read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	bool too_long = false;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			if (n == 0 && !too_long)
				return -ENODATA;
			break;
		}
		if (c == '\n')
			break;
		if (n + 1 >= size)
			too_long = true;
		else
			buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (too_long) {
		explicit_bzero(buf, size);
		return -EMSGSIZE;
	}
	return (ssize_t)n;
}

/* Prompt on stderr, read one line of the terminal with echo off. */
static ssize_t ask(const char *prompt, char *buf, size_t size)
{
	struct termios t;
	struct sigaction sa = { .sa_handler = restore_tty }, old[4];
	const int sigs[4] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	ssize_t n;

	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return -errno;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	for (int i = 0; i < 4; i++)
		(void)sigaction(sigs[i], &sa, &old[i]);
	/* Echo off before the prompt shows: what is typed after it is never
	 * echoed, nor thrown away by the flush. */
	tty_muted = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0) {
		n = -errno;
		tty_muted = 0;
	} else {
		fputs(prompt, stderr);
		fflush(stderr);
		n = read_line(STDIN_FILENO, buf, size);
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		tty_muted = 0;
	}
	for (int i = 0; i < 4; i++)
		(void)sigaction(sigs[i], &old[i], NULL);
	/* The newline the user typed was not echoed either. */
	fputc('\n', stderr);
	return n;
}

int password_read(bool from_stdin, char *buf, size_t size)
{
	ssize_t n;

	if (size > PASSWORD_MAX)
		size = PASSWORD_MAX;
	if (!from_stdin && isatty(STDIN_FILENO)) {
		char again[PASSWORD_MAX];
		n = ask("Password: ", buf, size);
		if (n > 0) {
			ssize_t m = ask("Password again: ", again, size);
			if (m < 0)
				n = m;
			else if (m != n || memcmp(buf, again, (size_t)n) != 0)
				n = -EKEYREJECTED;
		}
		explicit_bzero(again, sizeof(again));
	} else {
		n = read_line(STDIN_FILENO, buf, size);
	}
	if (n == 0 || (n > 0 && strlen(buf) != (size_t)n))
		n = -EINVAL;
	if (n < 0) {
		explicit_bzero(buf, size);
		return (int)n;
	}
	return 0;
}

int password_hash(const char *password, const char *prefix, char *out, size_t size)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *hash;
	int r = 0;

	if (cd == NULL)
		return -ENOMEM;
	errno = 0;
	if (crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		r = errno != 0 ? -errno : -EINVAL;
		goto out;
	}
	errno = 0;
	hash = crypt_rn(password, salt, cd, (int)sizeof(*cd));
	if (hash == NULL || hash[0] == '*') {
		r = errno != 0 ? -errno : -EINVAL;
		goto out;
	}
	if (strlen(hash) >= size) {
		r = -ENOBUFS;
		goto out;
	}
	strcpy(out, hash);
out:
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return r;
}

const char *password_error(int r)
{
	switch (r) {
	case -ENODATA:
		return "no password on standard input";
	case -EINVAL:
		return "empty password (or one holding a NUL byte)";
	case -EMSGSIZE:
		return "password too long (at most 1023 bytes)";
	case -EKEYREJECTED:
		return "the passwords do not match";
	default:
		return strerror(-r);
	}
}
