/* The TLS policies as tables: configuration x session state -> reply. */
#include "check.h"
#include "config.h"
#include "policy.h"

/* Back to the defaults (the strings of the last ones freed). */
static void reset(struct config *c)
{
	config_free(c);
	config_defaults(c);
}

int main(void)
{
	struct config c;

	config_defaults(&c);
	static const struct policy_state clear = { false, false, false, false, false };
	static const struct policy_state cleared = { false, true, true, false, true };
	static const struct policy_state tls = { true, true, false, false, false };
	static const struct policy_state tls_pbsz = { true, true, true, false, false };
	static const struct policy_state priv = { true, true, true, true, false };

	/* Before TLS, with control-tls = required. */
	static const struct {
		const char *verb;
		int want;
	} before[] = {
		{ "AUTH", 0 }, { "feat", 0 }, { "HOST", 0 }, { "QUIT", 0 }, { "NOOP", 0 },
		{ "USER", 530 }, { "PASS", 530 }, { "SITE", 530 }, { "LIST", 530 }, { "HELP", 530 },
	};
	for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++)
		CHECK(policy_before_tls(&c, &clear, before[i].verb) == before[i].want);
	CHECK(policy_before_tls(&c, &tls, "USER") == 0);
	/* After CCC the session was secured: commands go on in clear. */
	CHECK(policy_before_tls(&c, &cleared, "LIST") == 0);
	c.allow_before_tls = (char *)"SITE,Help";
	CHECK(policy_before_tls(&c, &clear, "SITE") == 0);
	CHECK(policy_before_tls(&c, &clear, "help") == 0);
	CHECK(policy_before_tls(&c, &clear, "SIT") == 530);
	c.allow_before_tls = NULL;
	c.control_tls = TLS_POLICY_OPTIONAL;
	CHECK(policy_before_tls(&c, &clear, "USER") == 0);

	/* AUTH */
	reset(&c);
	CHECK(policy_auth(&c, &clear) == 0);
	CHECK(policy_auth(&c, &tls) == 503);
	CHECK(policy_auth(&c, &cleared) == 503);
	const struct policy_state clear_login = { .logged_in = true };
	CHECK(policy_auth(&c, &clear_login) == 503);
	c.control_tls = TLS_POLICY_OFF;
	CHECK(policy_auth(&c, &clear) == 534);

	/* PROT: state x level x data-tls */
	reset(&c);
	static const struct {
		enum tls_policy data, listings;
		const struct policy_state *st;
		char level;
		int want;
	} prot[] = {
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &clear, 'P', 503 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls, 'P', 503 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'P', 200 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'C', 200 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'S', 536 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'E', 536 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'X', 504 },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &tls_pbsz, 'P', 534 },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &tls_pbsz, 'C', 200 },
		{ TLS_POLICY_OFF, TLS_POLICY_REQUIRED, &tls_pbsz, 'P', 200 },
		{ TLS_POLICY_OPTIONAL, TLS_POLICY_OPTIONAL, &tls_pbsz, 'p', 200 },
	};
	for (size_t i = 0; i < sizeof(prot) / sizeof(prot[0]); i++) {
		c.data_tls = prot[i].data;
		c.data_tls_listings = prot[i].listings;
		if (policy_prot(&c, prot[i].st, prot[i].level) != prot[i].want) {
			fprintf(stderr, "prot case %zu\n", i);
			check_failures++;
		}
	}

	/* Transfers and listings (RFC 4217 9.2, the four data views). */
	static const struct {
		enum tls_policy data, listings;
		const struct policy_state *st;
		bool listing;
		int want;
	} data[] = {
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, false, 521 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &priv, false, 0 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_OPTIONAL, &tls_pbsz, true, 0 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_OFF, &priv, true, 521 },
		{ TLS_POLICY_OPTIONAL, TLS_POLICY_REQUIRED, &tls_pbsz, true, 521 },
		{ TLS_POLICY_OPTIONAL, TLS_POLICY_REQUIRED, &tls_pbsz, false, 0 },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &clear, false, 0 },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &priv, false, 521 },
	};
	for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
		c.data_tls = data[i].data;
		c.data_tls_listings = data[i].listings;
		if (policy_data(&c, data[i].st, data[i].listing) != data[i].want) {
			fprintf(stderr, "data case %zu\n", i);
			check_failures++;
		}
	}

	/* Per-user TLS rules (RFC 4217 9.1: deny insecure USER for some users,
	 * secure USER for others such as anonymous). */
	reset(&c);
	c.control_tls = TLS_POLICY_OPTIONAL;
	CHECK(policy_login(&c, USER_TLS_OPTIONAL, false) == 0);
	CHECK(policy_login(&c, USER_TLS_OPTIONAL, true) == 0);
	CHECK(policy_login(&c, USER_TLS_REQUIRED, false) == 530);
	CHECK(policy_login(&c, USER_TLS_REQUIRED, true) == 0);
	CHECK(policy_login(&c, USER_TLS_FORBIDDEN, true) == 530);
	CHECK(policy_login(&c, USER_TLS_FORBIDDEN, false) == 0);
	c.control_tls = TLS_POLICY_REQUIRED;
	CHECK(policy_login(&c, USER_TLS_OPTIONAL, false) == 530);

	/* CCC */
	reset(&c);
	CHECK(policy_ccc(&c, &clear) == 533);
	CHECK(policy_ccc(&c, &tls) == 534);
	c.ccc = true;
	CHECK(policy_ccc(&c, &tls) == 503);
	static const struct policy_state tls_user = { true, true, true, false, true };
	CHECK(policy_ccc(&c, &tls_user) == 0);
	CHECK(policy_ccc(&c, &cleared) == 533);
	CHECK(policy_prot(&c, &cleared, 'P') == 200);
	config_free(&c);
	return CHECK_DONE();
}
