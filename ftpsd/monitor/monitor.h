/* The privileged monitor: authentication, the private key, every file.
 * main.c's interface to it; the monitor's modules have their own headers
 * (monitor_auth.h, monitor_fs.h, monitor_tls.h, monitor_msg.h). */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>

#include "config.h"
#include "handoff.h"

struct launch {
	int conn_fd;        /* the accepted control connection */
	bool implicit_tls;
	bool as_root;
	char peer[64];      /* "192.0.2.1" */
	struct sockaddr_storage peer_addr; /* the client (from the PROXY header when one came) */
	char session[96];   /* "192.0.2.1:40000", the log prefix */
	/* A balancer's health check (PROXY v2 LOCAL, v1 UNKNOWN): not a
	 * client's session. No session limit counts it, it has no session
	 * record, and it may not log in. */
	bool health_check;
};

/* Fork the child, which runs child, and serve it until the session ends;
 * never returns. */
void monitor_run(const struct config *cfg, struct launch *l, child_entry child)
	__attribute__((__noreturn__));
