#include "policy.h"

#include <string.h>
#include <strings.h>

/* RFC 4217 section 9: a client must be able to learn how to secure the
 * session (FEAT, AUTH), say which host it wants (HOST), and leave. */
static const char *const always_before_tls[] = { "AUTH", "FEAT", "HOST", "QUIT", "NOOP", NULL };

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

int policy_before_tls(const struct config *cfg, const struct policy_state *st, const char *verb)
{
	if (st->tls || st->secured || cfg->control_tls != TLS_POLICY_REQUIRED)
		return 0;
	for (size_t i = 0; always_before_tls[i] != NULL; i++)
		if (strcasecmp(verb, always_before_tls[i]) == 0)
			return 0;
	return in_list(cfg->allow_before_tls, verb) ? 0 : 530;
}

int policy_auth(const struct config *cfg, const struct policy_state *st)
{
	if (cfg->control_tls == TLS_POLICY_OFF)
		return 534;
	/* Once only: after CCC the session stays cleared. And before login
	 * only (RFC 4217 leaves it to the server): the login settled what the
	 * session is, and after it the server's key signs no handshake. */
	return st->tls || st->secured || st->logged_in ? 503 : 0;
}

int policy_prot(const struct config *cfg, const struct policy_state *st, char level)
{
	if (!(st->tls || st->secured) || !st->pbsz)
		return 503;
	switch (level) {
	case 'C':
	case 'c':
		return 200;
	case 'P':
	case 'p':
		/* data-tls = off: only Clear data. (With listings allowed Private,
		 * the level is still needed for them.) */
		if (cfg->data_tls == TLS_POLICY_OFF && cfg->data_tls_listings == TLS_POLICY_OFF)
			return 534;
		return 200;
	case 'S':
	case 's':
	case 'E':
	case 'e':
		return 536;
	default:
		return 504;
	}
}

int policy_data(const struct config *cfg, const struct policy_state *st, bool listing)
{
	enum tls_policy p = listing ? cfg->data_tls_listings : cfg->data_tls;

	if (p == TLS_POLICY_REQUIRED && !st->prot_private)
		return 521;
	if (p == TLS_POLICY_OFF && st->prot_private)
		return 521;
	return 0;
}

int policy_login(const struct config *cfg, enum user_tls rule, bool tls)
{
	if (rule == USER_TLS_REQUIRED && !tls)
		return 530;
	if (rule == USER_TLS_FORBIDDEN && tls)
		return 530;
	if (cfg->control_tls == TLS_POLICY_REQUIRED && !tls)
		return 530;
	return 0;
}

int policy_ccc(const struct config *cfg, const struct policy_state *st)
{
	if (!st->tls)
		return 533;
	if (!cfg->ccc)
		return 534;
	return st->logged_in ? 0 : 503;
}
