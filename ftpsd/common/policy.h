/* The TLS-for-FTP server policies (RFC 4217 sections 9 and 10) in one place:
 * pure decisions over the configuration and the session's state. Each
 * answers with a verdict, and policy_reply() gives the one reply (code and
 * text) that goes with a refusal. Both processes use them; the unit tests
 * run them as tables. */
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

enum policy_verdict {
	POLICY_ALLOW = 0,
	POLICY_TLS_FIRST,          /* control-tls = required: AUTH first */
	POLICY_AUTH_OFF,           /* AUTH under control-tls = off */
	POLICY_AUTH_AGAIN,         /* AUTH once TLS is (or was) up, or after login */
	POLICY_PROT_EARLY,         /* PROT before AUTH and PBSZ */
	POLICY_PROT_OFF,           /* PROT P where data protection is off */
	POLICY_PROT_UNSUPPORTED,   /* PROT S or E */
	POLICY_PROT_UNKNOWN,       /* a level RFC 4217 does not define */
	POLICY_DATA_NEEDS_PRIVATE, /* a transfer under PROT C where data-tls = required */
	POLICY_DATA_NEEDS_CLEAR,   /* a transfer under PROT P where data-tls = off */
	POLICY_LIST_NEEDS_PRIVATE, /* the same for listings (data-tls-listings) */
	POLICY_LIST_NEEDS_CLEAR,
	POLICY_LOGIN_NEEDS_TLS,    /* this login must come over TLS */
	POLICY_LOGIN_FORBIDS_TLS,  /* ... or must not */
	POLICY_CCC_EARLY,          /* CCC before login: USER and PASS stay protected */
	POLICY_CCC_NO_TLS,         /* CCC with no TLS to clear */
	POLICY_CCC_OFF,            /* CCC under ccc = off */
	POLICY_VERDICTS
};

/* The reply to a refusal: its text, and its code in *code. */
const char *policy_reply(enum policy_verdict v, int *code);

/* May verb run on a control connection without TLS? Refused
 * (POLICY_TLS_FIRST) when control-tls = required, unless the command table
 * lets the verb run before TLS whatever the configuration (exempt: AUTH,
 * FEAT, HOST, QUIT, NOOP) or it is in the allow-before-tls list. */
enum policy_verdict policy_before_tls(const struct config *cfg, const struct policy_state *st,
				      const char *verb, bool exempt);
/* AUTH: go ahead (234), or refused. */
enum policy_verdict policy_auth(const struct config *cfg, const struct policy_state *st);
/* PROT with level 'C', 'P', 'S', 'E' or anything else: set (200), or refused. */
enum policy_verdict policy_prot(const struct config *cfg, const struct policy_state *st,
				char level);
/* A command that opens the data channel: refused (521) when the protection
 * the policy demands for this kind of transfer is missing. */
enum policy_verdict policy_data(const struct config *cfg, const struct policy_state *st,
				bool listing);
/* A login under a user's own TLS rule: allowed, or refused (530). */
enum policy_verdict policy_login(const struct config *cfg, enum user_tls rule, bool tls);
/* CCC: go ahead (200), or refused. */
enum policy_verdict policy_ccc(const struct config *cfg, const struct policy_state *st);
