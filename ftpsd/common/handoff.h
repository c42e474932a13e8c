/* What the monitor hands the child at the fork: the one structure that
 * crosses the privilege boundary other than IPC messages. main.c joins the
 * two sides (monitor_run calls the child's entry point through a pointer),
 * so neither monitor/ nor child/ includes the other's headers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "ipc.h"

struct child_params {
	const struct config *cfg;
	int conn_fd;
	int ipc_fd;
	bool implicit_tls;
	pid_t monitor_pid;
	uid_t uid;              /* unprivileged user; used when empty_dir is set */
	gid_t gid;
	const char *empty_dir;  /* NULL: not root, no chroot or id change */
	/* The certificate chains (never the keys) of each TLS identity: the
	 * global one, then one per virtual host. */
	char *cert_pem[IPC_MAX_IDENTITIES];
	size_t cert_len[IPC_MAX_IDENTITIES];
	unsigned identities;
	char peer[64];
	/* The server random for the control handshake (tls_proof.h). */
	uint8_t proof_random[32];
	struct sockaddr_storage peer_addr;
	/* A session limit refused the session (implicit TLS only): after the
	 * handshake the child answers 421 with this text and ends. "" else. */
	char refusal[160];
};

/* The child's entry point: lock the process down and run the FTP session;
 * never returns. */
typedef void (*child_entry)(struct child_params *p) __attribute__((__noreturn__));
