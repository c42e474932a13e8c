/* The child's pure FTP parsing: control-line framing, Telnet stripping,
 * command splitting and virtual path arithmetic. No I/O, no state beyond
 * what is passed in: unit-tested and fuzzed as is. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#define FTP_MAX_LINE 4096

/* Bytes read from the control connection, waiting to become lines. */
struct ftp_linebuf {
	uint8_t buf[FTP_MAX_LINE + 2];
	size_t len;
	bool discarding; /* inside an over-long line, dropping until its newline */
};

/* Where to append and how much fits. */
uint8_t *ftp_linebuf_tail(struct ftp_linebuf *lb, size_t *space);
void ftp_linebuf_added(struct ftp_linebuf *lb, size_t n);
/* Take the next complete line (without CR LF) into line, NUL-terminated,
 * its length (which counts any NUL bytes inside it) in *len.
 * Returns 1 for a line, 0 when more input is needed, -E2BIG once for each
 * line longer than FTP_MAX_LINE (whose bytes are dropped). */
int ftp_linebuf_take(struct ftp_linebuf *lb, char *line, size_t size, size_t *len);
/* True when a complete line is buffered. */
bool ftp_linebuf_has_line(const struct ftp_linebuf *lb);

struct ftp_command {
	char verb[5]; /* upper case, 3 or 4 letters */
	char *arg;    /* NULL when absent; points into the line */
};

/* Split a line in place. Telnet IAC sequences are removed first.
 * 0, or -EINVAL for a line that is not a command (bad verb, NUL byte). */
int ftp_parse_command(char *line, size_t len, struct ftp_command *cmd);

/* Resolve arg against cwd to an absolute path with no ".", ".." or empty
 * components ("/" at most). -ENAMETOOLONG when out is too small. */
int ftp_path_resolve(const char *cwd, const char *arg, char *out, size_t size);

/* Write path for a 257 reply: quotes doubled per RFC 959. -ENAMETOOLONG. */
int ftp_quote_path(const char *path, char *out, size_t size);

/* REST's argument: a byte offset in decimal digits, at most INT64_MAX (a
 * file offset). 0, or -EINVAL. */
int ftp_parse_offset(const char *arg, uint64_t *out);

/* LIST/NLST/STAT arguments: ls-style options first ("-la", "-a -l"), as
 * clients send them, then the path. Returns the path (NULL when there is
 * none); *all when an option asks for dot files ('a'). */
char *ftp_parse_list_args(char *arg, bool *all);

/* PORT h1,h2,h3,h4,p1,p2 (RFC 959): the IPv4 address and port. 0 or -EINVAL. */
int ftp_parse_port(const char *arg, struct sockaddr_in *a);
/* EPRT |proto|address|port| with any printable delimiter (RFC 2428): 0;
 * -EINVAL for a syntax error; -EAFNOSUPPORT for a protocol other than 1
 * (IPv4) and 2 (IPv6); -EADDRNOTAVAIL for an address its protocol does not
 * take (ss->ss_family says which protocol). */
int ftp_parse_eprt(const char *arg, struct sockaddr_storage *ss);
/* YYYYMMDDHHMMSS, UTC, as MDTM answers and MFMT takes (RFC 3659; a
 * fraction of a second is allowed and ignored): seconds since 1970, which
 * must not be before it. 0 or -EINVAL. */
int ftp_parse_time(const char *t, int64_t *out);
