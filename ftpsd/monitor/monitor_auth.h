/* Who may log in, and as whom: the users file, PAM, anonymous. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct account {
	char name[256];
	uid_t uid;
	gid_t gid;
	char root[4096];
	bool system_user; /* from PAM: supplementary groups from the group database */
	unsigned flags;   /* IPC_USER_* */
	enum user_tls tls; /* users-file tls=, anonymous-tls */
	bool has_pin;      /* users-file cert=sha256:HEX */
	uint8_t pin[32];
	bool anonymous;
	bool locked;      /* users-file hash "!...": no login of any kind */
	bool has_upload_mode; /* users-file upload-mode=, else the configuration's */
	enum upload_mode upload_mode;
	bool has_data_tls_reuse; /* users-file data-tls-reuse=, else the configuration's */
	bool data_tls_reuse;
	/* users-file max-sessions=, quota-bytes=, quota-files=, download-rate=,
	 * upload-rate= (0: none), else the configuration's. */
	bool has_max_sessions, has_quota_bytes, has_quota_files, has_download_rate, has_upload_rate;
	unsigned max_sessions, quota_files;
	unsigned long long quota_bytes, download_rate, upload_rate;
};
/* The users-file entry of user, without checking any password: 1 found,
 * 0 not there, -errno. For decisions at USER time. The file is read once
 * per session (and path), at the first look-up or check. */
int monitor_auth_lookup(const struct config *cfg, const char *user, struct account *acct);
/* The root of every well-formed entry of the users file at path, to fn:
 * their count, or -errno. (Read as monitor_auth_lookup reads it.) */
int monitor_auth_roots(const char *path, void (*fn)(const char *root, void *ctx), void *ctx);
/* anonymous = on and user is "anonymous" or "ftp": fill acct. */
bool monitor_auth_anonymous(const struct config *cfg, const char *user, struct account *acct);
/* 0 and *acct filled, -EACCES for a wrong user or password, other -errno. */
int monitor_auth_check(const struct config *cfg, const char *peer, const char *user,
		       const char *password, struct account *acct);
/* Wipe and free the users file read for this session's look-ups: at login,
 * before the monitor becomes the user. */
void monitor_auth_forget(void);
/* The part of a crypt(5) hash of n bytes that sets its method and cost,
 * the salt left out: "$y$j9T$", "$6$", "$6$rounds=10000$", "$2b$12$",
 * "_J9.." (bsdicrypt), "" (descrypt). Its length, or -EINVAL for what is no
 * hash ("*", "!...": crypt refuses it without work). */
ssize_t monitor_auth_hash_setting(const char *hash, size_t n);
/* Parse one users-file line for user; 1 when it matched and filled acct,
 * 0 when it is another user's, -EINVAL when malformed. *hash points into line. */
int monitor_auth_parse_line(char *line, const char *user, struct account *acct, char **hash);
/* --check-config: every line of a users file, as a login would read it;
 * each problem reported through err as "FILE:LINE: user 'NAME': why".
 * The error count. */
int monitor_auth_check_file(const char *path, config_error_fn err, void *ctx);
