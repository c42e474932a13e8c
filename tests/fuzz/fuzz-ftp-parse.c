/* libFuzzer target: bytes from the network through line framing, Telnet
 * stripping, command splitting, REST offsets, LIST options, PORT and EPRT
 * addresses, MFMT times and path resolution. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ftp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ftp_linebuf lb;
	static char line[FTP_MAX_LINE + 1], path[4096], quoted[8192];
	struct ftp_command cmd;
	size_t len;

	memset(&lb, 0, sizeof(lb));
	while (size > 0) {
		size_t space;
		uint8_t *tail = ftp_linebuf_tail(&lb, &space);
		size_t n = size < space ? size : space;
		memcpy(tail, data, n);
		ftp_linebuf_added(&lb, n);
		data += n;
		size -= n;
		int r;
		while ((r = ftp_linebuf_take(&lb, line, sizeof(line), &len)) != 0) {
			if (r < 0)
				continue;
			if (ftp_parse_command(line, len, &cmd) < 0 || cmd.arg == NULL)
				continue;
			/* REST's offset: never past a file offset. */
			uint64_t offset;
			if (ftp_parse_offset(cmd.arg, &offset) == 0 && offset > INT64_MAX)
				__builtin_trap();
			/* PORT and EPRT: an address of the family they say, or nothing. */
			struct sockaddr_storage ss;
			if (ftp_parse_port(cmd.arg, (struct sockaddr_in *)&ss) == 0 &&
			    ss.ss_family != AF_INET)
				__builtin_trap();
			if (ftp_parse_eprt(cmd.arg, &ss) == 0 && ss.ss_family != AF_INET &&
			    ss.ss_family != AF_INET6)
				__builtin_trap();
			/* MFMT's time: never before 1970. */
			int64_t t;
			if (ftp_parse_time(cmd.arg, &t) == 0 && t < 0)
				__builtin_trap();
			/* LIST's options, then the path they leave, as the child does. */
			bool all;
			char *rest = ftp_parse_list_args(cmd.arg, &all);
			if (rest != NULL && (rest < cmd.arg || rest > cmd.arg + strlen(cmd.arg) ||
					     (rest != cmd.arg && (rest[0] == ' ' || rest[0] == '\0'))))
				__builtin_trap();
			if (rest != NULL)
				(void)ftp_path_resolve("/some/dir", rest, path, sizeof(path));
			if (ftp_path_resolve("/some/dir", cmd.arg, path, sizeof(path)) == 0) {
				if (path[0] != '/' || strstr(path, "/../") != NULL || strstr(path, "//"))
					__builtin_trap();
				(void)ftp_quote_path(path, quoted, sizeof(quoted));
			}
		}
	}
	return 0;
}
