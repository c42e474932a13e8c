/* The privileged monitor: authentication, the private key, every file.
 * Only monitor*.c and main.c include this header. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config.h"

struct launch {
	int conn_fd;        /* the accepted control connection */
	bool implicit_tls;
	bool as_root;
	char peer[64];      /* "192.0.2.1" */
	struct sockaddr_storage peer_addr; /* the client (from the PROXY header when one came) */
	char session[96];   /* "192.0.2.1:40000", the log prefix */
};

/* Fork the child and serve it until the session ends; never returns. */
void monitor_run(const struct config *cfg, struct launch *l) __attribute__((__noreturn__));

/* monitor_tls.c: the private key and signing for the child's handshakes. */
/* The key of TLS identity (0: the global one, i+1: virtual host i). */
int monitor_tls_load_key(unsigned identity, const char *path);
int monitor_tls_sign(unsigned identity, unsigned kind, unsigned algo, unsigned flags,
		     const uint8_t *in, size_t n, uint8_t *out, size_t *outlen, size_t max);

/* --check-config: the certificate and key load and belong together, the CA
 * loads. Reports "FILE:LINE: message" through err; returns the error count. */
int monitor_tls_check(const struct config *cfg, config_error_fn err, void *ctx);
/* The SHA-256 of the DER of the first certificate (the leaf) of an
 * identity's PEM chain; when its key is loaded, also that the two match.
 * 0, -EINVAL (no certificate) or -EKEYREJECTED (not the key's). */
int monitor_tls_leaf(unsigned identity, const char *pem, size_t len, uint8_t sha256[32]);
/* tls-ticket-secret: read it (as root, before login), or make it when it is
 * missing; logged when it cannot be had (each session then keys its
 * tickets on its own). */
void monitor_tls_load_ticket_secret(const char *path);
/* --check-config: an existing secret file is usable. 0, or -errno and why. */
int monitor_tls_check_ticket_secret(const char *path, const char **why);
/* At login: the key of this session's TLS tickets, HMAC-SHA-512 of the
 * secret over the virtual host, the user and the client's address, so that
 * sessions of one user from one address resume each other's tickets and
 * nobody else's. Wipes the secret. 0 or -errno. */
int monitor_tls_ticket_key(unsigned identity, const char *user, const struct sockaddr_storage *peer,
			   uint8_t key[64]);
/* tls-client-ca, for verifying client certificates. */
int monitor_tls_load_ca(const char *path);
/* Verify a DER chain (leaf first) against tls-client-ca; the leaf's SHA-256
 * in sha256. 0 or -EACCES. */
int monitor_tls_verify_chain(const uint8_t *const *der, const size_t *len, unsigned n,
			     uint8_t sha256[32]);

/* monitor_auth.c: who may log in, and as whom. */
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
	bool has_upload_mode; /* users-file upload-mode=, else the configuration's */
	enum upload_mode upload_mode;
	bool has_data_tls_reuse; /* users-file data-tls-reuse=, else the configuration's */
	bool data_tls_reuse;
};
/* The users-file entry of user, without checking any password: 1 found,
 * 0 not there, -errno. For decisions at USER time. The file is read once
 * per session (and path), at the first look-up or check. */
int monitor_auth_lookup(const struct config *cfg, const char *user, struct account *acct);
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

/* monitor_fs.c: every path, resolved by the kernel inside the user's root. */
void monitor_fs_set_root(int root_fd, bool read_only);
int monitor_fs_stat(const char *path, struct stat *st);
/* A file to read: IPC_OPEN_READ or IPC_OPEN_SEND (-ERANGE when offset is
 * past its end). */
int monitor_fs_open(const char *path, unsigned how, uint64_t offset, int *fd, uint64_t *size);

/* An upload in progress: the file the child writes, and where it goes. */
struct fs_upload {
	int fd;            /* the unnamed (or hidden) file, or in place the target */
	int dirfd;         /* the target's directory */
	char base[256];    /* the target's name in it */
	char tmpname[64];  /* the hidden name, without O_TMPFILE; else "" */
	bool atomic, unique;
	uint64_t start;    /* bytes before the first uploaded one (REST, APPE) */
};
/* Start an upload (IPC_OPEN_WRITE from offset, APPEND, UNIQUE). Atomic: into
 * a file nobody sees, with the old content's first bytes that REST or APPE
 * keep; in place: the target itself. *fd is the child's copy; *start is the
 * file offset its data begins at. Nothing visible changes here, except in
 * place. Hidden upload files older than stale_before (left by a killed
 * session where O_TMPFILE is missing) are removed. -ERANGE: offset beyond
 * the file. */
int monitor_fs_upload_open(const char *path, unsigned how, uint64_t offset, bool atomic,
			   time_t stale_before, struct fs_upload *u, int *fd, uint64_t *start);
/* Would monitor_fs_upload_open succeed now? What it checks first, with
 * nothing created: before the 150 reply, the usual refusals. */
int monitor_fs_upload_check(const char *path, unsigned how, uint64_t offset, bool atomic);
/* The upload is complete: put it in place (atomic), fsync the directory
 * when sync. Ends the upload either way. */
int monitor_fs_upload_commit(struct fs_upload *u, bool sync);
/* The upload failed: nothing of it stays (atomic). */
void monitor_fs_upload_discard(struct fs_upload *u);
/* Bytes written beyond start so far, as the file says. */
uint64_t monitor_fs_upload_size(const struct fs_upload *u);
/* Tests: act as on a filesystem without O_TMPFILE. */
void monitor_fs_test_no_tmpfile(void);
/* arg: the path as the client wrote it, which NLST names start with. */
int monitor_fs_list(const char *path, unsigned format, unsigned flags, const char *arg, int *fd);
int monitor_fs_mkdir(const char *path);
/* DELE (dir false) and RMD (dir true). */
int monitor_fs_remove(const char *path, bool dir);
int monitor_fs_rename(const char *from, const char *to);
int monitor_fs_chmod(const char *path, unsigned mode);
int monitor_fs_settime(const char *path, time_t mtime);
/* Format one listing line for a name and its stat; for tests. */
int monitor_fs_format(char *out, size_t size, unsigned format, unsigned facts, const char *name,
		      const struct stat *st, const char *link_target, const char *perm,
		      time_t now);
