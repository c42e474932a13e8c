#include "policy.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ftp_codes.h"

/* Every refusal's reply, in one place: the codes RFC 4217 gives each case. */
static const struct {
	int code;
	const char *text;
} replies[POLICY_VERDICTS] = {
	[POLICY_TLS_FIRST] = { FTP_LOGINERR, "This server requires TLS: send AUTH TLS first." },
	[POLICY_AUTH_OFF] = { FTP_POLICY_DENIED, "TLS is not available on this server." },
	[POLICY_AUTH_AGAIN] = { FTP_BADSEQ, "TLS is already active." },
	[POLICY_PROT_EARLY] = { FTP_BADSEQ, "PROT needs AUTH and PBSZ first." },
	[POLICY_PROT_OFF] = { FTP_POLICY_DENIED,
			      "Data protection is not available here: only PROT C." },
	[POLICY_PROT_UNSUPPORTED] = { FTP_NOHANDLEPROT, "Protection level not supported." },
	[POLICY_PROT_UNKNOWN] = { FTP_NOSUCHPROT, "Unknown protection level." },
	[POLICY_DATA_NEEDS_PRIVATE] = { FTP_DATAPROT_REFUSED,
					"Data connections must be protected: send PROT P." },
	[POLICY_DATA_NEEDS_CLEAR] = { FTP_DATAPROT_REFUSED,
				      "Data connections must not be protected here: send PROT C." },
	[POLICY_LIST_NEEDS_PRIVATE] = { FTP_DATAPROT_REFUSED,
					"Listings must be protected: send PROT P." },
	[POLICY_LIST_NEEDS_CLEAR] = { FTP_DATAPROT_REFUSED,
				      "Listings must not be protected here: send PROT C." },
	/* The child words a refused login with the user's name; these are
	 * the verdicts' own texts. */
	[POLICY_LOGIN_NEEDS_TLS] = { FTP_LOGINERR, "This user must log in over TLS." },
	[POLICY_LOGIN_FORBIDS_TLS] = { FTP_LOGINERR, "This user must log in without TLS." },
	[POLICY_CCC_EARLY] = { FTP_BADSEQ, "CCC after login only: USER and PASS stay protected." },
	[POLICY_CCC_NO_TLS] = { FTP_PROT_DENIED, "CCC needs a protected control connection." },
	[POLICY_CCC_OFF] = { FTP_POLICY_DENIED, "CCC is not allowed on this server." },
};

const char *policy_reply(enum policy_verdict v, int *code)
{
	/* A verdict without a reply is a bug in the caller, not a client's doing. */
	if ((unsigned)v >= POLICY_VERDICTS || replies[v].text == NULL)
		abort();
	*code = replies[v].code;
	return replies[v].text;
}

static bool in_list(const char *list, const char *verb)
{
	size_t n = strlen(verb);

	for (const char *p = list; p != NULL && *p != '\0';) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncasecmp(p, verb, n) == 0)
			return true;
		p = comma != NULL ? comma + 1 : NULL;
	}
	return false;
}

enum policy_verdict policy_before_tls(const struct config *cfg, const struct policy_state *st,
				      const char *verb, bool exempt)
{
	if (st->tls || st->secured || cfg->control_tls != TLS_POLICY_REQUIRED || exempt)
		return POLICY_ALLOW;
	return in_list(cfg->allow_before_tls, verb) ? POLICY_ALLOW : POLICY_TLS_FIRST;
}

enum policy_verdict policy_auth(const struct config *cfg, const struct policy_state *st)
{
	if (cfg->control_tls == TLS_POLICY_OFF)
		return POLICY_AUTH_OFF;
	/* Once only: after CCC the session stays cleared. And before login
	 * only (RFC 4217 leaves it to the server): the login settled what the
	 * session is, and after it the server's key signs no handshake. */
	return st->tls || st->secured || st->logged_in ? POLICY_AUTH_AGAIN : POLICY_ALLOW;
}

enum policy_verdict policy_prot(const struct config *cfg, const struct policy_state *st, char level)
{
	if (!(st->tls || st->secured) || !st->pbsz)
		return POLICY_PROT_EARLY;
	switch (level) {
	case 'C':
	case 'c':
		return POLICY_ALLOW;
	case 'P':
	case 'p':
		/* data-tls = off: only Clear data. (With listings allowed Private,
		 * the level is still needed for them.) */
		if (cfg->data_tls == TLS_POLICY_OFF && cfg->data_tls_listings == TLS_POLICY_OFF)
			return POLICY_PROT_OFF;
		return POLICY_ALLOW;
	case 'S':
	case 's':
	case 'E':
	case 'e':
		return POLICY_PROT_UNSUPPORTED;
	default:
		return POLICY_PROT_UNKNOWN;
	}
}

enum policy_verdict policy_data(const struct config *cfg, const struct policy_state *st,
				bool listing)
{
	enum tls_policy p = listing ? cfg->data_tls_listings : cfg->data_tls;

	if (p == TLS_POLICY_REQUIRED && !st->prot_private)
		return listing ? POLICY_LIST_NEEDS_PRIVATE : POLICY_DATA_NEEDS_PRIVATE;
	if (p == TLS_POLICY_OFF && st->prot_private)
		return listing ? POLICY_LIST_NEEDS_CLEAR : POLICY_DATA_NEEDS_CLEAR;
	return POLICY_ALLOW;
}

enum policy_verdict policy_login(const struct config *cfg, enum user_tls rule, bool tls)
{
	if (rule == USER_TLS_REQUIRED && !tls)
		return POLICY_LOGIN_NEEDS_TLS;
	if (rule == USER_TLS_FORBIDDEN && tls)
		return POLICY_LOGIN_FORBIDS_TLS;
	if (cfg->control_tls == TLS_POLICY_REQUIRED && !tls)
		return POLICY_LOGIN_NEEDS_TLS;
	return POLICY_ALLOW;
}

enum policy_verdict policy_ccc(const struct config *cfg, const struct policy_state *st)
{
	if (!st->tls)
		return POLICY_CCC_NO_TLS;
	if (!cfg->ccc)
		return POLICY_CCC_OFF;
	return st->logged_in ? POLICY_ALLOW : POLICY_CCC_EARLY;
}
