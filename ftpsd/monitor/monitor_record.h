/* The session's record below runtime-dir/sessions, read by ftpsd-user,
 * and the monitor's process title. Monitor-only. Best effort: a record that
 * cannot be written is said once and never ends the session.
 *
 * <runtime-dir>/sessions/<uid>/<pid>: uid 0 before login, then the user's
 * (the directory owned by that uid, mode 0755), pid the monitor's. Written
 * whole to a temporary name and renamed. Lines key=value, values escaped
 * (log_escape): pid, start (field 22 of /proc/<pid>/stat), user, host,
 * address, since, login, command (login, idle, RETR, STOR, APPE, STOU),
 * path, bytes, size (empty when unknown), rate (bytes/s), updated. A reader
 * believes a record only if pid is its name, its owner is its directory's
 * name, and /proc/<pid>/stat still says that start. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct session_record {
	int dir;                  /* sessions/<uid>, or -1: no record */
	char name[16];            /* the monitor's pid */
	unsigned long long start; /* its start time in clock ticks */
	time_t since, login;
	const char *command;      /* "login", "idle", or a transfer's verb */
	uint64_t bytes, size, rate;
	bool size_known;
	uint64_t rate_ms, rate_bytes; /* the last rate measurement */
	bool failed;              /* a write failed, and was said */
};

struct monitor;
struct limits;

/* As root, at the session's start: the record in sessions/0. */
void record_begin(struct monitor *m, int sessions);
/* At login, as root still: the pre-login record goes, the user's
 * directory sessions/<uid> is made (owned by uid) and opened. */
void record_login_prepare(struct monitor *m, int sessions, uid_t uid, gid_t gid);
/* Write the record as it stands now (the first time at login as the
 * user, so that the file is the user's), and the process title. */
void record_update(struct monitor *m);
/* A transfer started (IPC_OPEN how) of a file of size (known for RETR). */
void record_xfer_start(struct monitor *m, unsigned how, uint64_t size);
/* The transfer ended: idle. */
void record_xfer_end(struct monitor *m);
/* The session ends: the record goes. */
void record_remove(void);
