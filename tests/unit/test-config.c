/* The configuration parser as a table of inputs and the errors they give. */
#include <stdlib.h>

#include "check.h"
#include "config.h"

static char errors[4096];

static void collect(void *ctx, const char *msg)
{
	strncat(errors, msg, sizeof(errors) - strlen(errors) - 2);
	strcat(errors, "\n");
}

static int parse(struct config *cfg, const char *text)
{
	errors[0] = '\0';
	config_defaults(cfg);
	return config_parse(cfg, "t.conf", text, strlen(text), collect, NULL);
}

#define BASE "tls-certificate = /c\ntls-key = /k\nusers-file = /u\n"

int main(void)
{
	struct config c;

	CHECK(parse(&c, BASE) == 0);
	CHECK(c.control_tls == TLS_POLICY_REQUIRED && c.data_tls == TLS_POLICY_REQUIRED);
	CHECK(c.data_tls_reuse);
	CHECK(c.upload_fsync && !c.data_tls_strict_eof);
	CHECK(c.pasv_port_low == 49152 && c.pasv_port_high == 65534);
	CHECK(c.idle_timeout_ms == 300000 && c.max_login_failures == 3);
	config_free(&c);

	CHECK(parse(&c, BASE "# comment\n\n  pasv-ports = 40000-40010  \nidle-timeout = 2m\n"
			     "login-failure-delay = 250ms\ndata-tls-reuse = off\ncontrol-tls=optional\n"
			     "umask = 077\npasv-address = 192.0.2.7\nupload-fsync = off\n"
			     "data-tls-strict-eof = on\n") == 0);
	CHECK(!c.upload_fsync && c.data_tls_strict_eof);
	CHECK(c.pasv_port_low == 40000 && c.pasv_port_high == 40010);
	CHECK(c.idle_timeout_ms == 120000);
	CHECK(c.login_failure_delay_ms == 250);
	CHECK(!c.data_tls_reuse);
	CHECK(c.control_tls == TLS_POLICY_OPTIONAL);
	CHECK(c.umask == 077);
	CHECK_STR(c.pasv_address, "192.0.2.7");
	config_free(&c);

	CHECK(parse(&c, BASE) == 0 && c.landlock_writable == NULL);
	config_free(&c);
	CHECK(parse(&c, BASE "landlock-writable = /home,/var/run/faillock\n") == 0);
	CHECK_STR(c.landlock_writable, "/home,/var/run/faillock");
	config_free(&c);
	CHECK(parse(&c, BASE "landlock-writable = none\n") == 0);
	config_free(&c);

	static const struct {
		const char *text, *error;
	} bad[] = {
		{ BASE "bogus = 1\n", "t.conf:4: unknown key 'bogus'" },
		{ BASE "pasv-ports = 9-8\n", "t.conf:4: pasv-ports must be LOW-HIGH" },
		{ BASE "pasv-ports = 100-200\n", "t.conf:4: pasv-ports must be LOW-HIGH" },
		{ BASE "data-tls = maybe\n", "t.conf:4: data-tls must be off, optional or required" },
		{ BASE "control-tls = no\n", "t.conf:4: control-tls must be off, optional or required" },
		{ BASE "idle-timeout = 5h\n", "t.conf:4: idle-timeout must be a duration" },
		{ BASE "max-login-failures = 0\n", "t.conf:4: max-login-failures must be a number" },
		{ BASE "users-file = relative\n", "t.conf:4: users-file is set twice" },
		{ "tls-key = /k\nusers-file = /u\n", "t.conf:2: tls-certificate and tls-key are required" },
		{ BASE "novalue\n", "t.conf:4: expected key = value" },
		{ BASE "banner =\n", "t.conf:4: banner has no value" },
		{ BASE "pasv-address = ::1\n", "t.conf:4: pasv-address must be an IPv4 address" },
		{ BASE "umask = 999\n", "t.conf:4: umask must be an octal mode" },
		{ BASE "upload-fsync = yes\n", "t.conf:4: upload-fsync must be on or off" },
		{ BASE "allow-before-tls = SITE,X\n", "t.conf:4: allow-before-tls must be FTP commands" },
		{ BASE "tls-client-certificate = require\n", "tls-client-certificate needs tls-client-ca" },
		{ BASE "anonymous = on\n", "anonymous = on needs anonymous-root" },
		{ BASE "anonymous-tls = maybe\n",
		  "t.conf:4: anonymous-tls must be optional, required or forbidden" },
		{ BASE "control-tls = off\n", "control-tls = off leaves no way to protect data" },
		{ BASE "landlock-writable = /home,srv\n",
		  "t.conf:4: landlock-writable must be absolute paths separated by commas" },
		{ BASE "landlock-writable = /home,,/srv\n",
		  "t.conf:4: landlock-writable must be absolute paths separated by commas" },
		{ BASE "[host a]\nlandlock-writable = /srv\n", "landlock-writable" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(parse(&c, bad[i].text) > 0);
		if (strstr(errors, bad[i].error) == NULL) {
			fprintf(stderr, "case %zu: want '%s', got '%s'\n", i, bad[i].error, errors);
			check_failures++;
		}
		config_free(&c);
	}

	/* data-tls-listings follows data-tls unless it is set itself. */
	CHECK(parse(&c, BASE "data-tls = optional\n") == 0);
	CHECK(c.data_tls_listings == TLS_POLICY_OPTIONAL);
	config_free(&c);
	CHECK(parse(&c, BASE "data-tls = required\ndata-tls-listings = off\n") == 0);
	CHECK(c.data_tls == TLS_POLICY_REQUIRED && c.data_tls_listings == TLS_POLICY_OFF);
	config_free(&c);
	CHECK(parse(&c, BASE "allow-before-tls = SITE, help\nanonymous = on\nanonymous-root = /srv/ftp\n"
			     "anonymous-tls = forbidden\nccc = on\n") == 0);
	CHECK_STR(c.allow_before_tls, "SITE,help");
	CHECK(c.anonymous && c.anonymous_tls == USER_TLS_FORBIDDEN && c.ccc);
	CHECK_STR(c.anonymous_user, "ftp");
	config_free(&c);

	/* Virtual hosts: sections inherit the global part, override their own keys. */
	CHECK(parse(&c, BASE "data-tls = optional\n[host a.test]\ntls-key = /ka\ncontrol-tls = optional\n"
			     "\n[host B.test]\nusers-file = /ub\n") == 0);
	CHECK(c.nhosts == 2);
	const struct config *ha = config_host(&c, "A.TEST"), *hb = config_host(&c, "b.test");
	CHECK(ha != NULL && hb != NULL && config_host(&c, "c.test") == NULL);
	CHECK_STR(ha->tls_key, "/ka");
	CHECK_STR(ha->tls_certificate, "/c");
	CHECK(ha->control_tls == TLS_POLICY_OPTIONAL && c.control_tls == TLS_POLICY_REQUIRED);
	CHECK(ha->data_tls == TLS_POLICY_OPTIONAL && ha->data_tls_listings == TLS_POLICY_OPTIONAL);
	CHECK_STR(hb->users_file, "/ub");
	CHECK_STR(c.users_file, "/u");
	config_free(&c);
	static const struct {
		const char *text, *error;
	} hostbad[] = {
		{ BASE "[host a.test]\nempty-dir = /e\n", "t.conf:5: empty-dir cannot be set for a host" },
		{ BASE "[host a b]\n", "t.conf:4: expected [host NAME]" },
		{ BASE "[hosts a]\n", "t.conf:4: expected [host NAME]" },
		{ BASE "[host a]\n[host A]\n", "t.conf:5: [host A] appears twice" },
		{ BASE "[host a]\ntls-key = /1\ntls-key = /2\n", "t.conf:6: tls-key is set twice" },
		{ BASE "[host a]\ncontrol-tls = off\n", "[host a]: control-tls = off leaves no way" },
	};
	for (size_t i = 0; i < sizeof(hostbad) / sizeof(hostbad[0]); i++) {
		CHECK(parse(&c, hostbad[i].text) > 0);
		if (strstr(errors, hostbad[i].error) == NULL) {
			fprintf(stderr, "host case %zu: want '%s', got '%s'\n", i, hostbad[i].error, errors);
			check_failures++;
		}
		config_free(&c);
	}

	/* Every key name is documented in the reference configuration by its name. */
	const char *const *names = config_key_names();
	size_t n = 0;
	while (names[n] != NULL)
		n++;
	CHECK(n >= 15);
	return CHECK_DONE();
}
