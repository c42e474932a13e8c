/* The TLS-for-FTP server policies (RFC 4217 sections 9 and 10) in one place:
 * pure decisions over the configuration and the session's state, each
 * answering with the FTP reply code it implies (0: allowed). Both processes
 * use them; the unit tests run them as tables. */
#pragma once

#include <stdbool.h>

#include "config.h"

/* What the session is doing, as far as policy cares. */
struct policy_state {
	bool tls;          /* the control connection is protected now */
	bool secured;      /* it was, at least until CCC */
	bool pbsz;         /* PBSZ was given after AUTH */
	bool prot_private; /* PROT P */
	bool logged_in;
};

/* May verb run on a control connection without TLS? 0, or 530 when
 * control-tls = required and verb is not one of AUTH, FEAT, HOST, QUIT,
 * NOOP or the allow-before-tls list. */
int policy_before_tls(const struct config *cfg, const struct policy_state *st, const char *verb);
/* AUTH: 0 (go ahead, 234), 503 (already TLS), 534 (control-tls = off). */
int policy_auth(const struct config *cfg, const struct policy_state *st);
/* PROT with level 'C', 'P', 'S', 'E' or anything else: 200, 503, 504, 534, 536. */
int policy_prot(const struct config *cfg, const struct policy_state *st, char level);
/* A command that opens the data channel: 0, or 521 when the protection the
 * policy demands for this kind of transfer is missing. */
int policy_data(const struct config *cfg, const struct policy_state *st, bool listing);
/* A login under a user's own TLS rule: 0, or 530 (needs TLS, or refuses it). */
int policy_login(const struct config *cfg, enum user_tls rule, bool tls);
/* CCC: 0 (go ahead, 200), 503 (not logged in: USER/PASS stay protected),
 * 533 (no TLS to clear), 534 (ccc = off). */
int policy_ccc(const struct config *cfg, const struct policy_state *st);
