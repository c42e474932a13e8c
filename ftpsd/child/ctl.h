/* The control connection: replies, lines from the client, its TLS, the
 * tickets sent on it and the virtual host it chose. Nothing reaches the
 * client on the control channel but through here. */
#pragma once

#include <stdbool.h>

#include "policy.h"
#include "session.h"

/* One reply line, "code text"; CR and LF in the text become spaces, so
 * nothing a client put there (a path, a name) can end it early. Waits at
 * most the idle timeout for the client to take it. */
void ctl_reply(struct session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The first line of a reply of several lines, "code-text"; ctl_reply()
 * with the same code ends it. */
void ctl_reply_start(struct session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Lines inside a reply of several lines, as they are (CR LF included): each
 * must start with a space. */
void ctl_reply_raw(struct session *s, const char *text);
/* A refusal by policy, with the code and text policy_reply() gives it. */
void ctl_refuse(struct session *s, enum policy_verdict v);
/* Read what the control connection has into s->in; false on EOF or error. */
bool ctl_read(struct session *s);
/* Start TLS on the control connection (after AUTH's 234, or at once under
 * implicit TLS) and take what the handshake says: the virtual host of the
 * client's server name, its certificate. Ends the session when it fails. */
void ctl_start_tls(struct session *s, bool implicit);
/* CCC, after its reply: our close_notify, then the connection is in clear. */
void ctl_clear_tls(struct session *s);
/* A new TLS 1.3 session ticket on the control connection (none under TLS 1.2). */
void ctl_send_ticket(struct session *s);
/* A virtual host was chosen (HOST or SNI): its configuration applies. */
void ctl_select_host(struct session *s, unsigned identity);
