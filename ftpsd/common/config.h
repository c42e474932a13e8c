/* Configuration values, shared by both processes: parsed once by the monitor
 * before the fork, read-only afterwards. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum tls_policy { TLS_POLICY_OFF, TLS_POLICY_OPTIONAL, TLS_POLICY_REQUIRED };
/* Per user (users-file tls=, anonymous-tls): may or must the login be protected? */
enum user_tls { USER_TLS_OPTIONAL, USER_TLS_REQUIRED, USER_TLS_FORBIDDEN };
enum client_cert { CLIENT_CERT_OFF, CLIENT_CERT_REQUEST, CLIENT_CERT_REQUIRE };
enum cert_invalid { CERT_INVALID_CLOSE, CERT_INVALID_REFUSE };
/* How uploads reach their name: complete or not at all, or written in place. */
enum upload_mode { UPLOAD_ATOMIC, UPLOAD_IN_PLACE };
/* Landlock around both processes: when the kernel has it, or required
 * (a session without it is refused). */
enum landlock_mode { LANDLOCK_MODE_ON, LANDLOCK_MODE_OFF, LANDLOCK_MODE_REQUIRED };

struct config {
	char *tls_certificate;
	char *tls_key;
	char *tls_priority;
	char *users_file;
	char *pam_service;
	char *unprivileged_user;
	char *empty_dir;
	char *pasv_address;
	char *banner;
	char *xferlog;
	char *proxy_protocol_from;
	char *allow_before_tls;      /* verbs, comma-separated */
	char *anonymous_root;
	char *anonymous_user;
	char *tls_client_ca;
	char *tls_ticket_secret;     /* the host's secret for this user's TLS tickets */
	unsigned pasv_port_low, pasv_port_high;
	enum tls_policy control_tls;
	enum tls_policy data_tls;
	enum tls_policy data_tls_listings;
	enum user_tls anonymous_tls;
	enum client_cert tls_client_certificate;
	enum cert_invalid tls_client_certificate_invalid;
	enum upload_mode upload_mode;
	enum landlock_mode landlock;
	bool landlock_before_login;
	/* Beneath these (comma-separated) the monitor may also write before
	 * login; NULL: /home where a host has pam-service. */
	char *landlock_writable;
	bool anonymous;
	bool anonymous_write;
	bool ccc;
	bool data_tls_reuse;
	bool data_tls_strict_eof;
	bool upload_fsync;
	bool active_mode;
	bool proxy_protocol;
	bool chmod;                  /* SITE CHMOD allowed (never setuid, setgid, sticky) */
	/* Coordination between sessions, through the kernel: lock slots and
	 * session records below runtime-dir (created by the root monitor). */
	char *runtime_dir;
	unsigned max_sessions, max_sessions_per_address, max_sessions_per_user; /* 0: none */
	/* Quotas (0: none): usage per user in quota-dir. */
	char *quota_dir;
	unsigned long long quota_bytes;
	unsigned quota_files;
	/* Bytes per second (0: unlimited), the total of one user's sessions. */
	unsigned long long download_rate, upload_rate;
	unsigned idle_timeout_ms;
	unsigned login_timeout_ms;
	unsigned login_failure_delay_ms;
	unsigned max_login_failures;
	unsigned umask;
	/* Where each key was set (0: default), for messages after parsing. */
	const char *path;
	unsigned lines[64];

	/* Virtual hosts: [host NAME] sections, each a whole configuration that
	 * starts as a copy of the global part and overrides keys of its own. */
	char *host_name;        /* NULL for the global configuration */
	struct config *hosts;
	size_t nhosts;
};

/* The virtual host called name (case-insensitive), or NULL. */
const struct config *config_host(const struct config *cfg, const char *name);

/* A decimal number that fills the whole string, at most max: 0, -EINVAL or
 * -ERANGE. (Also the users file's uid and gid.) */
int config_parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* A size in bytes: decimal with an optional K, M, G or T (powers of 1024,
 * "K", "KB" or "KiB"): 0, -EINVAL or -ERANGE. */
int config_parse_size(const char *s, unsigned long long *out);

/* TLS identities, which are also IPC_HOST's numbers: 0 is the global
 * configuration, i + 1 the virtual host hosts[i]. The one mapping between
 * identities and configurations, both ways. */
unsigned config_identities(const struct config *root);
/* The configuration of an identity, or NULL past the last. */
const struct config *config_identity(const struct config *root, unsigned identity);
/* The identity of root itself or of one of its hosts. */
unsigned config_identity_of(const struct config *root, const struct config *c);

/* Receives each error as "FILE:LINE: message". */
typedef void (*config_error_fn)(void *ctx, const char *message);

/* Fill cfg with every default. */
void config_defaults(struct config *cfg);
/* Parse text (not NUL-terminated) named name into cfg, which holds defaults.
 * Returns the number of errors, each reported through err. */
int config_parse(struct config *cfg, const char *name, const char *text, size_t len,
		 config_error_fn err, void *ctx);
/* Read and parse a file; errors (also unreadable file) go through err. */
int config_load(struct config *cfg, const char *path, config_error_fn err, void *ctx);
/* Free every string in cfg. */
void config_free(struct config *cfg);
/* The line that set key, 0 when it has its default. */
unsigned config_key_line(const struct config *cfg, const char *key);
/* Print every key with its effective value as "key = value" lines. */
void config_print(const struct config *cfg, FILE *f);
/* The name of each key, NULL-terminated; for documentation checks. */
const char *const *config_key_names(void);
