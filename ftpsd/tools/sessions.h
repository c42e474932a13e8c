/* The live sessions, from the records the monitors keep in
 * <runtime-dir>/sessions/<uid>/<pid>. Those files may be written by a
 * compromised monitor running as that uid: every read is bounded, every
 * field checked, and a record counts only while its process is the one it
 * names. Helpers return 0 or -errno and print nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SESSION_RECORD_MAX (16 * 1024)

/* Which numeric fields a record had, valid. */
enum {
	SESSION_HAS_SINCE = 1,
	SESSION_HAS_LOGIN = 2,
	SESSION_HAS_BYTES = 4,
	SESSION_HAS_SIZE = 8,
	SESSION_HAS_RATE = 16,
	SESSION_HAS_UPDATED = 32,
};

struct sessions_record {
	unsigned uid; /* of its directory */
	pid_t pid;
	unsigned long long start; /* /proc/PID/stat field 22 */
	char user[256], host[256], address[256], command[64], path[4096];
	unsigned long long since, login, bytes, size, rate, updated;
	unsigned has; /* SESSION_HAS_* */
};

/* Parse a record's text (len bytes, not NUL-terminated): key=value lines,
 * unknown keys skipped, longer values cut. 0, or -EINVAL when pid or start
 * is missing or not a number, a key appears twice, a line is longer than
 * 4096 bytes, or the text holds a NUL. */
int session_record_parse(const char *text, size_t len, struct sessions_record *rec);

/* Whether process pid runs now with start time start and real, effective
 * and saved uid uid. */
bool session_process_is(pid_t pid, unsigned long long start, unsigned uid);

/* Call fn for each live record under runtime_dir/sessions, in pid order;
 * only_uid >= 0: only that uid's directory. The number of live records (a
 * missing sessions directory has none), or -errno. */
int sessions_scan(const char *runtime_dir, long long only_uid,
		  void (*fn)(const struct sessions_record *rec, void *ctx), void *ctx);

/* How long a monitor has to end its session after SIGTERM (its own
 * deadline for the child is 5 s) before it gets SIGKILL. */
#define SESSION_TERM_WAIT_MS 8000

/* SIGTERM to the process of a live record, through a pidfd opened before
 * the record's process is checked again, so that a pid reused in between
 * is never signalled; SIGKILL if it has not ended after
 * SESSION_TERM_WAIT_MS. 0, -ESRCH when it is gone or another, -errno. */
int session_terminate(const struct sessions_record *rec);
