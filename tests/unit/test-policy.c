/* The TLS policies as tables: configuration x session state -> verdict, and
 * each refusal's reply code. */
#include "check.h"
#include "config.h"
#include "ftp_codes.h"
#include "policy.h"

/* Back to the defaults (the strings of the last ones freed). */
static void reset(struct config *c)
{
	config_free(c);
	config_defaults(c);
}

static int code_of(enum policy_verdict v)
{
	int code = 0;

	(void)policy_reply(v, &code);
	return code;
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

	/* Before TLS, with control-tls = required. exempt: what the command
	 * table says of AUTH, FEAT, HOST, QUIT and NOOP. */
	static const struct {
		const char *verb;
		bool exempt;
		enum policy_verdict want;
	} before[] = {
		{ "AUTH", true, POLICY_ALLOW },
		{ "FEAT", true, POLICY_ALLOW },
		{ "HOST", true, POLICY_ALLOW },
		{ "QUIT", true, POLICY_ALLOW },
		{ "NOOP", true, POLICY_ALLOW },
		{ "USER", false, POLICY_TLS_FIRST },
		{ "PASS", false, POLICY_TLS_FIRST },
		{ "SITE", false, POLICY_TLS_FIRST },
		{ "LIST", false, POLICY_TLS_FIRST },
		{ "HELP", false, POLICY_TLS_FIRST },
	};
	for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++)
		CHECK(policy_before_tls(&c, &clear, before[i].verb, before[i].exempt) ==
		      before[i].want);
	CHECK(policy_before_tls(&c, &tls, "USER", false) == POLICY_ALLOW);
	/* After CCC the session was secured: commands go on in clear. */
	CHECK(policy_before_tls(&c, &cleared, "LIST", false) == POLICY_ALLOW);
	c.allow_before_tls = (char *)"SITE,Help";
	CHECK(policy_before_tls(&c, &clear, "SITE", false) == POLICY_ALLOW);
	CHECK(policy_before_tls(&c, &clear, "help", false) == POLICY_ALLOW);
	CHECK(policy_before_tls(&c, &clear, "SIT", false) == POLICY_TLS_FIRST);
	c.allow_before_tls = NULL;
	c.control_tls = TLS_POLICY_OPTIONAL;
	CHECK(policy_before_tls(&c, &clear, "USER", false) == POLICY_ALLOW);
	CHECK(code_of(POLICY_TLS_FIRST) == FTP_LOGINERR);

	/* AUTH */
	reset(&c);
	CHECK(policy_auth(&c, &clear) == POLICY_ALLOW);
	CHECK(policy_auth(&c, &tls) == POLICY_AUTH_AGAIN);
	CHECK(policy_auth(&c, &cleared) == POLICY_AUTH_AGAIN);
	const struct policy_state clear_login = { .logged_in = true };
	CHECK(policy_auth(&c, &clear_login) == POLICY_AUTH_AGAIN);
	c.control_tls = TLS_POLICY_OFF;
	CHECK(policy_auth(&c, &clear) == POLICY_AUTH_OFF);
	CHECK(code_of(POLICY_AUTH_AGAIN) == FTP_BADSEQ);
	CHECK(code_of(POLICY_AUTH_OFF) == FTP_POLICY_DENIED);

	/* PROT: state x level x data-tls -> verdict and the reply it gets
	 * (0: 200, the level is set). */
	reset(&c);
	static const struct {
		enum tls_policy data, listings;
		const struct policy_state *st;
		char level;
		enum policy_verdict want;
		int code;
	} prot[] = {
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &clear, 'P', POLICY_PROT_EARLY, FTP_BADSEQ },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls, 'P', POLICY_PROT_EARLY, FTP_BADSEQ },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'P', POLICY_ALLOW, 0 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'C', POLICY_ALLOW, 0 },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'S', POLICY_PROT_UNSUPPORTED,
		  FTP_NOHANDLEPROT },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'E', POLICY_PROT_UNSUPPORTED,
		  FTP_NOHANDLEPROT },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, 'X', POLICY_PROT_UNKNOWN,
		  FTP_NOSUCHPROT },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &tls_pbsz, 'P', POLICY_PROT_OFF, FTP_POLICY_DENIED },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &tls_pbsz, 'C', POLICY_ALLOW, 0 },
		{ TLS_POLICY_OFF, TLS_POLICY_REQUIRED, &tls_pbsz, 'P', POLICY_ALLOW, 0 },
		{ TLS_POLICY_OPTIONAL, TLS_POLICY_OPTIONAL, &tls_pbsz, 'p', POLICY_ALLOW, 0 },
	};
	for (size_t i = 0; i < sizeof(prot) / sizeof(prot[0]); i++) {
		c.data_tls = prot[i].data;
		c.data_tls_listings = prot[i].listings;
		enum policy_verdict v = policy_prot(&c, prot[i].st, prot[i].level);
		if (v != prot[i].want || (v != POLICY_ALLOW && code_of(v) != prot[i].code)) {
			fprintf(stderr, "prot case %zu\n", i);
			check_failures++;
		}
	}

	/* Transfers and listings (RFC 4217 9.2, the four data views). */
	static const struct {
		enum tls_policy data, listings;
		const struct policy_state *st;
		bool listing;
		enum policy_verdict want;
	} data[] = {
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &tls_pbsz, false, POLICY_DATA_NEEDS_PRIVATE },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_REQUIRED, &priv, false, POLICY_ALLOW },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_OPTIONAL, &tls_pbsz, true, POLICY_ALLOW },
		{ TLS_POLICY_REQUIRED, TLS_POLICY_OFF, &priv, true, POLICY_LIST_NEEDS_CLEAR },
		{ TLS_POLICY_OPTIONAL, TLS_POLICY_REQUIRED, &tls_pbsz, true, POLICY_LIST_NEEDS_PRIVATE },
		{ TLS_POLICY_OPTIONAL, TLS_POLICY_REQUIRED, &tls_pbsz, false, POLICY_ALLOW },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &clear, false, POLICY_ALLOW },
		{ TLS_POLICY_OFF, TLS_POLICY_OFF, &priv, false, POLICY_DATA_NEEDS_CLEAR },
	};
	for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
		c.data_tls = data[i].data;
		c.data_tls_listings = data[i].listings;
		enum policy_verdict v = policy_data(&c, data[i].st, data[i].listing);
		if (v != data[i].want ||
		    (v != POLICY_ALLOW && code_of(v) != FTP_DATAPROT_REFUSED)) {
			fprintf(stderr, "data case %zu\n", i);
			check_failures++;
		}
	}

	/* Per-user TLS rules (RFC 4217 9.1: deny insecure USER for some users,
	 * secure USER for others such as anonymous). */
	reset(&c);
	c.control_tls = TLS_POLICY_OPTIONAL;
	CHECK(policy_login(&c, USER_TLS_OPTIONAL, false) == POLICY_ALLOW);
	CHECK(policy_login(&c, USER_TLS_OPTIONAL, true) == POLICY_ALLOW);
	CHECK(policy_login(&c, USER_TLS_REQUIRED, false) == POLICY_LOGIN_NEEDS_TLS);
	CHECK(policy_login(&c, USER_TLS_REQUIRED, true) == POLICY_ALLOW);
	CHECK(policy_login(&c, USER_TLS_FORBIDDEN, true) == POLICY_LOGIN_FORBIDS_TLS);
	CHECK(policy_login(&c, USER_TLS_FORBIDDEN, false) == POLICY_ALLOW);
	c.control_tls = TLS_POLICY_REQUIRED;
	CHECK(policy_login(&c, USER_TLS_OPTIONAL, false) == POLICY_LOGIN_NEEDS_TLS);
	CHECK(code_of(POLICY_LOGIN_NEEDS_TLS) == FTP_LOGINERR);
	CHECK(code_of(POLICY_LOGIN_FORBIDS_TLS) == FTP_LOGINERR);

	/* CCC */
	reset(&c);
	CHECK(policy_ccc(&c, &clear) == POLICY_CCC_NO_TLS);
	CHECK(policy_ccc(&c, &tls) == POLICY_CCC_OFF);
	c.ccc = true;
	CHECK(policy_ccc(&c, &tls) == POLICY_CCC_EARLY);
	static const struct policy_state tls_user = { true, true, true, false, true };
	CHECK(policy_ccc(&c, &tls_user) == POLICY_ALLOW);
	CHECK(policy_ccc(&c, &cleared) == POLICY_CCC_NO_TLS);
	CHECK(policy_prot(&c, &cleared, 'P') == POLICY_ALLOW);
	CHECK(code_of(POLICY_CCC_NO_TLS) == FTP_PROT_DENIED);
	CHECK(code_of(POLICY_CCC_OFF) == FTP_POLICY_DENIED);
	CHECK(code_of(POLICY_CCC_EARLY) == FTP_BADSEQ);

	/* Every refusal has its reply. */
	for (int v = POLICY_ALLOW + 1; v < POLICY_VERDICTS; v++) {
		int code = 0;
		const char *text = policy_reply((enum policy_verdict)v, &code);
		CHECK(text != NULL && text[0] != '\0' && code >= 500 && code < 600);
	}
	config_free(&c);
	return CHECK_DONE();
}
