#include "config.h"
#include "file.h"
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_SIZE (1024 * 1024)
#define CONFIG_MAX_LINE 4096

enum value_kind { V_STRING, V_PATH, V_PATHLIST, V_ADDRLIST, V_VERBS, V_ENUM, V_REUSE, V_BOOL, V_UINT, V_DURATION, V_PORTS, V_OCTAL,
		  V_ADDR4, V_SIZE };

struct key {
	const char *name;
	enum value_kind kind;
	size_t offset;
	unsigned min, max; /* V_UINT, V_DURATION (ms), V_OCTAL */
	const char *const *names; /* V_ENUM: the values, in enum order */
};

static const char *const tls_names[] = { "off", "optional", "required", NULL };
static const char *const user_tls_names[] = { "optional", "required", "forbidden", NULL };
static const char *const client_cert_names[] = { "off", "request", "require", NULL };
static const char *const cert_invalid_names[] = { "close", "refuse", NULL };
static const char *const upload_mode_names[] = { "atomic", "in-place", NULL };
static const char *const landlock_names[] = { "on", "off", "required", NULL };

#define F(field) offsetof(struct config, field)

static const struct key keys[] = {
	{ "tls-certificate", V_PATH, F(tls_certificate), 0, 0, NULL },
	{ "tls-key", V_PATH, F(tls_key), 0, 0, NULL },
	{ "tls-priority", V_STRING, F(tls_priority), 0, 0, NULL },
	{ "users-file", V_PATH, F(users_file), 0, 0, NULL },
	{ "pam-service", V_STRING, F(pam_service), 0, 0, NULL },
	{ "unprivileged-user", V_STRING, F(unprivileged_user), 0, 0, NULL },
	{ "empty-dir", V_PATH, F(empty_dir), 0, 0, NULL },
	{ "pasv-ports", V_PORTS, F(pasv_port_low), 1024, 65535, NULL },
	{ "pasv-address", V_ADDR4, F(pasv_address), 0, 0, NULL },
	{ "banner", V_STRING, F(banner), 0, 0, NULL },
	{ "xferlog", V_PATH, F(xferlog), 0, 0, NULL },
	{ "control-tls", V_ENUM, F(control_tls), 0, 0, tls_names },
	{ "allow-before-tls", V_VERBS, F(allow_before_tls), 0, 0, NULL },
	{ "data-tls", V_ENUM, F(data_tls), 0, 0, tls_names },
	{ "data-tls-listings", V_ENUM, F(data_tls_listings), 0, 0, tls_names },
	{ "data-tls-reuse", V_REUSE, F(data_tls_reuse), 0, 0, NULL },
	{ "data-tls-strict-eof", V_BOOL, F(data_tls_strict_eof), 0, 0, NULL },
	{ "upload-fsync", V_BOOL, F(upload_fsync), 0, 0, NULL },
	{ "upload-mode", V_ENUM, F(upload_mode), 0, 0, upload_mode_names },
	{ "active-mode", V_BOOL, F(active_mode), 0, 0, NULL },
	{ "ccc", V_BOOL, F(ccc), 0, 0, NULL },
	{ "tls-client-certificate", V_ENUM, F(tls_client_certificate), 0, 0, client_cert_names },
	{ "tls-client-ca", V_PATH, F(tls_client_ca), 0, 0, NULL },
	{ "tls-ticket-secret", V_PATH, F(tls_ticket_secret), 0, 0, NULL },
	{ "tls-client-certificate-invalid", V_ENUM, F(tls_client_certificate_invalid), 0, 0,
	  cert_invalid_names },
	{ "anonymous", V_BOOL, F(anonymous), 0, 0, NULL },
	{ "anonymous-root", V_PATH, F(anonymous_root), 0, 0, NULL },
	{ "anonymous-user", V_STRING, F(anonymous_user), 0, 0, NULL },
	{ "anonymous-write", V_BOOL, F(anonymous_write), 0, 0, NULL },
	{ "anonymous-tls", V_ENUM, F(anonymous_tls), 0, 0, user_tls_names },
	{ "proxy-protocol", V_BOOL, F(proxy_protocol), 0, 0, NULL },
	{ "proxy-protocol-from", V_ADDRLIST, F(proxy_protocol_from), 0, 0, NULL },
	{ "idle-timeout", V_DURATION, F(idle_timeout_ms), 1000, 86400000, NULL },
	{ "login-timeout", V_DURATION, F(login_timeout_ms), 1000, 3600000, NULL },
	{ "login-failure-delay", V_DURATION, F(login_failure_delay_ms), 0, 60000, NULL },
	{ "max-login-failures", V_UINT, F(max_login_failures), 1, 100, NULL },
	{ "umask", V_OCTAL, F(umask), 0, 0777, NULL },
	{ "chmod", V_BOOL, F(chmod), 0, 0, NULL },
	{ "runtime-dir", V_PATH, F(runtime_dir), 0, 0, NULL },
	{ "max-sessions", V_UINT, F(max_sessions), 0, 100000, NULL },
	{ "max-sessions-per-address", V_UINT, F(max_sessions_per_address), 0, 100000, NULL },
	{ "max-sessions-per-user", V_UINT, F(max_sessions_per_user), 0, 100000, NULL },
	{ "quota-dir", V_PATH, F(quota_dir), 0, 0, NULL },
	{ "quota-bytes", V_SIZE, F(quota_bytes), 0, 0, NULL },
	{ "quota-files", V_UINT, F(quota_files), 0, 4000000000u, NULL },
	{ "download-rate", V_SIZE, F(download_rate), 0, 0, NULL },
	{ "upload-rate", V_SIZE, F(upload_rate), 0, 0, NULL },
	{ "landlock", V_ENUM, F(landlock), 0, 0, landlock_names },
	{ "landlock-before-login", V_BOOL, F(landlock_before_login), 0, 0, NULL },
	{ "landlock-writable", V_PATHLIST, F(landlock_writable), 0, 0, NULL },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

_Static_assert(NKEYS <= sizeof(((struct config *)0)->lines) / sizeof(unsigned), "lines[] too small");

unsigned config_key_line(const struct config *cfg, const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, key) == 0)
			return cfg->lines[i];
	return 0;
}

const char *const *config_key_names(void)
{
	static const char *names[NKEYS + 1];

	for (size_t i = 0; i < NKEYS; i++)
		names[i] = keys[i].name;
	names[NKEYS] = NULL;
	return names;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* AEAD only, AES-128-GCM first: the fastest where the CPU has AES-NI.
	 * X25519 first: OpenSSL clients (curl, Python) send a key share for it
	 * alone, and with the server's precedence any other group first costs
	 * each of their handshakes, control and data, a HelloRetryRequest. */
	cfg->tls_priority = strdup("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:"
				   "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
				   "-GROUP-ALL:+GROUP-X25519:+GROUP-EC-ALL:+GROUP-DH-ALL:"
				   "%SERVER_PRECEDENCE");
	cfg->unprivileged_user = strdup("ftpsd");
	cfg->empty_dir = strdup("/run/ftpsd/empty");
	cfg->tls_ticket_secret = strdup("/run/ftpsd/ticket-secret");
	cfg->banner = strdup("ftpsd ready");
	cfg->runtime_dir = strdup("/run/ftpsd");
	cfg->quota_dir = strdup("/var/lib/ftpsd/quota");
	/* Below the socket unit's MaxConnections=64 and MaxConnectionsPerSource=24,
	 * so that clients meet these, which answer 421 and say why. */
	cfg->max_sessions = 50;
	/* rclone's defaults alone open 12 connections. */
	cfg->max_sessions_per_address = 16;
	cfg->anonymous_user = strdup("ftp");
	cfg->data_tls_listings = TLS_POLICY_REQUIRED;
	cfg->pasv_port_low = 49152;
	cfg->pasv_port_high = 65534;
	cfg->control_tls = TLS_POLICY_REQUIRED;
	cfg->data_tls = TLS_POLICY_REQUIRED;
	cfg->data_tls_reuse = true;
	cfg->upload_fsync = true;
	cfg->active_mode = true;
	cfg->idle_timeout_ms = 300000;
	cfg->login_timeout_ms = 60000;
	cfg->login_failure_delay_ms = 1000;
	cfg->max_login_failures = 3;
	cfg->umask = 022;
	cfg->chmod = true;
	cfg->landlock_before_login = true;
	if (cfg->tls_priority == NULL || cfg->unprivileged_user == NULL || cfg->empty_dir == NULL ||
	    cfg->tls_ticket_secret == NULL || cfg->runtime_dir == NULL || cfg->quota_dir == NULL ||
	    cfg->banner == NULL || cfg->anonymous_user == NULL)
		abort();
}

static bool is_string_kind(enum value_kind k)
{
	return k == V_STRING || k == V_PATH || k == V_PATHLIST || k == V_ADDR4 || k == V_ADDRLIST ||
	       k == V_VERBS;
}

/* A deep copy of src's values (not its hosts). */
static void config_copy(struct config *dst, const struct config *src)
{
	memcpy(dst, src, sizeof(*dst));
	dst->hosts = NULL;
	dst->nhosts = 0;
	dst->host_name = NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		if (!is_string_kind(keys[i].kind))
			continue;
		char **p = (char **)((char *)dst + keys[i].offset);
		if (*p != NULL && (*p = strdup(*p)) == NULL)
			abort();
	}
}

const struct config *config_host(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nhosts; i++)
		if (strcasecmp(cfg->hosts[i].host_name, name) == 0)
			return &cfg->hosts[i];
	return NULL;
}

unsigned config_identities(const struct config *root)
{
	return (unsigned)root->nhosts + 1;
}

const struct config *config_identity(const struct config *root, unsigned identity)
{
	if (identity == 0)
		return root;
	return identity <= root->nhosts ? &root->hosts[identity - 1] : NULL;
}

unsigned config_identity_of(const struct config *root, const struct config *c)
{
	return c == root ? 0 : (unsigned)(c - root->hosts) + 1;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nhosts; i++)
		config_free(&cfg->hosts[i]);
	free(cfg->hosts);
	cfg->hosts = NULL;
	cfg->nhosts = 0;
	free(cfg->host_name);
	cfg->host_name = NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		if (is_string_kind(keys[i].kind)) {
			char **p = (char **)((char *)cfg + keys[i].offset);
			free(*p);
			*p = NULL;
		}
	}
}

int config_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return -ERANGE;
	}
	*out = v;
	return 0;
}

int config_parse_size(const char *s, unsigned long long *out)
{
	static const char units[] = "KMGT";
	char num[32];
	size_t n = strspn(s, "0123456789");
	const char *unit = s + n, *u;
	unsigned long long v;
	unsigned shift = 0;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	if (unit[0] != '\0') {
		if ((u = strchr(units, unit[0] & ~0x20)) == NULL ||
		    (unit[1] != '\0' && strcmp(unit + 1, "iB") != 0 && strcmp(unit + 1, "B") != 0))
			return -EINVAL;
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (config_parse_uint(num, UINT64_MAX >> 20 >> shift, &v) < 0)
		return -ERANGE;
	*out = v << shift;
	return 0;
}

static int parse_duration_ms(const char *s, unsigned long long *ms)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	const char *unit = s + n;
	unsigned long long v, mult;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	if (config_parse_uint(num, UINT32_MAX, &v) < 0)
		return -EINVAL;
	if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0)
		mult = 1000;
	else if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "m") == 0)
		mult = 60000;
	else
		return -EINVAL;
	*ms = v * mult;
	return 0;
}

/* Replace the string in field with a copy of value. */
static void set_string(void *field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		abort();
	free(*(char **)field);
	*(char **)field = copy;
}

static int set_value(struct config *cfg, const struct key *k, const char *value, char *why,
		     size_t whylen)
{
	void *field = (char *)cfg + k->offset;
	unsigned long long v;

	switch (k->kind) {
	case V_PATH:
		if (value[0] != '/') {
			snprintf(why, whylen, "%s must be an absolute path", k->name);
			return -1;
		}
		/* fall through */
	case V_STRING: {
		set_string(field, value);
		return 0;
	}
	case V_PATHLIST:
		/* "none", or absolute paths separated by commas. */
		for (const char *p = strcmp(value, "none") == 0 ? "" : value; *p != '\0';) {
			size_t n = strcspn(p, ",");
			if (p[0] != '/') {
				snprintf(why, whylen,
					 "%s must be absolute paths separated by commas", k->name);
				return -1;
			}
			p += n + (p[n] == ',');
		}
		set_string(field, value);
		return 0;
	case V_ADDRLIST: {
		struct sockaddr_storage any = { .ss_family = AF_INET };
		if (proxy_address_listed(value, &any) < 0) {
			snprintf(why, whylen, "%s must be IPv4 or IPv6 addresses separated by commas",
				 k->name);
			return -1;
		}
		set_string(field, value);
		return 0;
	}
	case V_ADDR4: {
		struct in_addr a;
		if (inet_pton(AF_INET, value, &a) != 1) {
			snprintf(why, whylen, "%s must be an IPv4 address", k->name);
			return -1;
		}
		set_string(field, value);
		return 0;
	}
	case V_ENUM: {
		char list[128] = "";
		for (unsigned i = 0; k->names[i] != NULL; i++) {
			if (strcmp(value, k->names[i]) == 0) {
				*(unsigned *)field = i;
				return 0;
			}
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i == 0 ? "" : k->names[i + 1] == NULL ? " or " : ", ", k->names[i]);
		}
		snprintf(why, whylen, "%s must be %s", k->name, list);
		return -1;
	}
	case V_VERBS: {
		/* FTP verbs: 3 or 4 letters each, separated by commas (and spaces),
		 * kept as "A,B". */
		char *copy = calloc(1, strlen(value) + 1);
		const char *p = value;
		if (copy == NULL)
			abort();
		while (*p != '\0') {
			p += strspn(p, " \t");
			size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
			const char *q = p + n + strspn(p + n, " \t");
			if (n < 3 || n > 4 || (*q != '\0' && *q != ',')) {
				snprintf(why, whylen, "%s must be FTP commands separated by commas",
					 k->name);
				free(copy);
				return -1;
			}
			if (copy[0] != '\0')
				strcat(copy, ",");
			strncat(copy, p, n);
			p = q + (*q == ',');
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case V_REUSE:
		if (strcmp(value, "required") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "off") == 0)
			*(bool *)field = false;
		else {
			snprintf(why, whylen, "%s must be required or off", k->name);
			return -1;
		}
		return 0;
	case V_BOOL:
		if (strcmp(value, "on") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "off") == 0)
			*(bool *)field = false;
		else {
			snprintf(why, whylen, "%s must be on or off", k->name);
			return -1;
		}
		return 0;
	case V_UINT:
		if (config_parse_uint(value, k->max, &v) < 0 || v < k->min) {
			snprintf(why, whylen, "%s must be a number from %u to %u", k->name, k->min, k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case V_SIZE:
		if (config_parse_size(value, &v) < 0) {
			snprintf(why, whylen, "%s must be a number of bytes, with K, M, G or T (1024s) "
				 "if you like", k->name);
			return -1;
		}
		*(unsigned long long *)field = v;
		return 0;
	case V_DURATION:
		if (parse_duration_ms(value, &v) < 0 || v < k->min || v > k->max) {
			snprintf(why, whylen,
				 "%s must be a duration from %ums to %us (units: ms, s, m)", k->name,
				 k->min, k->max / 1000);
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case V_OCTAL: {
		char *end;
		errno = 0;
		unsigned long o = strtoul(value, &end, 8);
		if (errno != 0 || *end != '\0' || value[0] < '0' || value[0] > '7' || o > k->max) {
			snprintf(why, whylen, "%s must be an octal mode such as 022", k->name);
			return -1;
		}
		*(unsigned *)field = (unsigned)o;
		return 0;
	}
	case V_PORTS: {
		char lo[16], hi[16];
		const char *dash = strchr(value, '-');
		unsigned long long l, h;
		if (dash == NULL || (size_t)(dash - value) >= sizeof(lo) || strlen(dash + 1) >= sizeof(hi))
			goto bad_ports;
		memcpy(lo, value, (size_t)(dash - value));
		lo[dash - value] = '\0';
		strcpy(hi, dash + 1);
		if (config_parse_uint(lo, 65535, &l) < 0 || config_parse_uint(hi, 65535, &h) < 0 || l < k->min ||
		    h < l)
			goto bad_ports;
		cfg->pasv_port_low = (unsigned)l;
		cfg->pasv_port_high = (unsigned)h;
		return 0;
bad_ports:
		snprintf(why, whylen, "%s must be LOW-HIGH with 1024 <= LOW <= HIGH <= 65535", k->name);
		return -1;
	}
	}
	snprintf(why, whylen, "internal error");
	return -1;
}

static void report(config_error_fn err, void *ctx, const char *name, unsigned line, const char *msg)
{
	char buf[CONFIG_MAX_LINE + 256];

	snprintf(buf, sizeof(buf), "%s:%u: %s", name, line, msg);
	err(ctx, buf);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Keys that belong to the process, not to a virtual host: they are used
 * before anyone could say which host they want. */
static const char *const global_only[] = { "unprivileged-user", "empty-dir", "proxy-protocol",
					   "proxy-protocol-from", "xferlog", "login-timeout",
					   "runtime-dir", "max-sessions", "max-sessions-per-address",
					   "landlock", "landlock-before-login",
					   "landlock-writable", NULL };

/* The rules that join keys, for the global part and for each host. */
static int validate(struct config *cfg, const bool *seen, const char *name, unsigned lineno,
		    config_error_fn err, void *ctx)
{
	char where[300];
	int errors = 0;

	snprintf(where, sizeof(where), "%s%s%s", cfg->host_name ? "[host " : "",
		 cfg->host_name ? cfg->host_name : "", cfg->host_name ? "]: " : "");
#define RULE(cond, text)                                                       \
	do {                                                                   \
		if (cond) {                                                    \
			char m[512];                                           \
			snprintf(m, sizeof(m), "%s%s", where, text);           \
			report(err, ctx, name, lineno, m);                     \
			errors++;                                              \
		}                                                              \
	} while (0)
	RULE(cfg->control_tls != TLS_POLICY_OFF && (cfg->tls_certificate == NULL || cfg->tls_key == NULL),
	     "tls-certificate and tls-key are required unless control-tls = off");
	/* Listings follow data-tls unless set on their own. */
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, "data-tls-listings") == 0 && !seen[i])
			cfg->data_tls_listings = cfg->data_tls;
	RULE(cfg->tls_client_certificate != CLIENT_CERT_OFF && cfg->tls_client_ca == NULL,
	     "tls-client-certificate needs tls-client-ca");
	RULE(cfg->anonymous && cfg->anonymous_root == NULL, "anonymous = on needs anonymous-root");
	RULE(cfg->control_tls == TLS_POLICY_OFF &&
		     (cfg->data_tls == TLS_POLICY_REQUIRED || cfg->data_tls_listings == TLS_POLICY_REQUIRED),
	     "control-tls = off leaves no way to protect data: set data-tls = off");
	RULE(cfg->proxy_protocol && cfg->proxy_protocol_from == NULL,
	     "proxy-protocol = on needs proxy-protocol-from (the balancers' addresses)");
	RULE(cfg->users_file == NULL && cfg->pam_service == NULL && !cfg->anonymous,
	     "set users-file, pam-service or anonymous");
#undef RULE
	return errors;
}

static bool valid_host_name(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 253)
		return false;
	for (; *h != '\0'; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      *h == '-' || *h == '.'))
			return false;
	return true;
}

int config_parse(struct config *cfg, const char *name, const char *text, size_t len,
		 config_error_fn err, void *ctx)
{
	bool seen_global[NKEYS] = { false }, seen_host[NKEYS] = { false };
	bool *seen = seen_global;
	struct config *cur = cfg;
	unsigned lineno = 0, section_line = 0;
	int errors = 0;
	size_t pos = 0;

	while (pos < len) {
		char line[CONFIG_MAX_LINE + 1], why[512];
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;

		lineno++;
		if (n > CONFIG_MAX_LINE) {
			report(err, ctx, name, lineno, "line too long");
			errors++;
			pos += n + 1;
			continue;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (memchr(line, '\0', n) != NULL) {
			report(err, ctx, name, lineno, "NUL byte in line");
			errors++;
			continue;
		}

		char *s = line, *e;
		while (is_space(*s))
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		e = s + strlen(s);
		while (e > s && is_space(e[-1]))
			*--e = '\0';

		if (*s == '[') {
			/* [host NAME]: the rest of the file, up to the next section. */
			char host[300];
			int used = -1;
			if (e[-1] != ']' || sscanf(s, "[host %299[^] ]]%n", host, &used) != 1 ||
			    used < 0 || (size_t)used != strlen(s) || !valid_host_name(host)) {
				report(err, ctx, name, lineno, "expected [host NAME]");
				errors++;
				continue;
			}
			if (config_host(cfg, host) != NULL) {
				snprintf(why, sizeof(why), "[host %s] appears twice", host);
				report(err, ctx, name, lineno, why);
				errors++;
				continue;
			}
			if (cur != cfg)
				errors += validate(cur, seen_host, name, section_line, err, ctx);
			struct config *h = realloc(cfg->hosts, (cfg->nhosts + 1) * sizeof(*h));
			if (h == NULL)
				abort();
			cfg->hosts = h;
			cur = &cfg->hosts[cfg->nhosts++];
			config_copy(cur, cfg);
			if ((cur->host_name = strdup(host)) == NULL)
				abort();
			/* A key set globally may be set once more in each host. */
			memset(seen_host, 0, sizeof(seen_host));
			for (size_t i = 0; i < NKEYS; i++)
				if (strcmp(keys[i].name, "data-tls-listings") == 0)
					seen_host[i] = seen_global[i];
			seen = seen_host;
			section_line = lineno;
			continue;
		}

		char *eq = strchr(s, '=');
		if (eq == NULL) {
			report(err, ctx, name, lineno, "expected key = value");
			errors++;
			continue;
		}
		char *kend = eq, *value = eq + 1;
		while (kend > s && is_space(kend[-1]))
			kend--;
		*kend = '\0';
		while (is_space(*value))
			value++;

		size_t i;
		for (i = 0; i < NKEYS; i++)
			if (strcmp(keys[i].name, s) == 0)
				break;
		if (i == NKEYS) {
			snprintf(why, sizeof(why), "unknown key '%.200s'", s);
			report(err, ctx, name, lineno, why);
			errors++;
			continue;
		}
		/* "key = value # note": the '#' would be part of the value (a
		 * banner would show it), so it is refused; comments go on lines
		 * of their own. */
		const char *hash = value;
		while ((hash = strchr(hash, '#')) != NULL && !(hash > value && is_space(hash[-1])))
			hash++;
		if (hash != NULL) {
			snprintf(why, sizeof(why),
				 "%s: a '#' after the value is not a comment; put comments on a line of their own",
				 keys[i].name);
			report(err, ctx, name, lineno, why);
			errors++;
			continue;
		}
		if (cur != cfg) {
			bool global = false;
			for (size_t g = 0; global_only[g] != NULL; g++)
				global = global || strcmp(global_only[g], keys[i].name) == 0;
			if (global) {
				snprintf(why, sizeof(why), "%s cannot be set for a host", keys[i].name);
				report(err, ctx, name, lineno, why);
				errors++;
				continue;
			}
		}
		if (seen[i]) {
			snprintf(why, sizeof(why), "%s is set twice", keys[i].name);
			report(err, ctx, name, lineno, why);
			errors++;
			continue;
		}
		seen[i] = true;
		cur->lines[i] = lineno;
		if (*value == '\0') {
			snprintf(why, sizeof(why), "%s has no value", keys[i].name);
			report(err, ctx, name, lineno, why);
			errors++;
			continue;
		}
		if (set_value(cur, &keys[i], value, why, sizeof(why)) < 0) {
			report(err, ctx, name, lineno, why);
			errors++;
		}
	}

	if (cur != cfg)
		errors += validate(cur, seen_host, name, section_line, err, ctx);
	/* The global part is checked as it stands before the first section. */
	errors += validate(cfg, seen_global, name, lineno, err, ctx);
	return errors;
}

int config_load(struct config *cfg, const char *path, config_error_fn err, void *ctx)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, errors, r;
	char msg[512];

	fd = file_open(path, 0);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "%s:0: cannot open: %s", path, strerror(-fd));
		err(ctx, msg);
		return 1;
	}
	r = file_read_fd(fd, CONFIG_MAX_SIZE - 1, 0, &buf, &len);
	close(fd);
	if (r == -EFBIG) {
		snprintf(msg, sizeof(msg), "%s:0: file larger than %d bytes", path, CONFIG_MAX_SIZE - 1);
		err(ctx, msg);
		return 1;
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s:0: cannot read: %s", path, strerror(-r));
		err(ctx, msg);
		return 1;
	}
	cfg->path = path;
	errors = config_parse(cfg, path, buf, len, err, ctx);
	free(buf);
	return errors;
}

void config_print(const struct config *cfg, FILE *f)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const void *field = (const char *)cfg + k->offset;
		const char *str;

		if (is_string_kind(k->kind) && *(char *const *)field == NULL) {
			fprintf(f, "# %s is not set\n", k->name);
			continue;
		}
		fprintf(f, "%s = ", k->name);
		switch (k->kind) {
		case V_STRING:
		case V_PATH:
		case V_PATHLIST:
		case V_ADDR4:
		case V_ADDRLIST:
		case V_VERBS:
			str = *(char *const *)field;
			fprintf(f, "%s\n", str);
			break;
		case V_ENUM:
			fprintf(f, "%s\n", k->names[*(const unsigned *)field]);
			break;
		case V_REUSE:
			fprintf(f, "%s\n", *(const bool *)field ? "required" : "off");
			break;
		case V_BOOL:
			fprintf(f, "%s\n", *(const bool *)field ? "on" : "off");
			break;
		case V_UINT:
			fprintf(f, "%u\n", *(const unsigned *)field);
			break;
		case V_SIZE:
			fprintf(f, "%llu\n", *(const unsigned long long *)field);
			break;
		case V_DURATION: {
			unsigned ms = *(const unsigned *)field;
			if (ms % 1000 == 0)
				fprintf(f, "%us\n", ms / 1000);
			else
				fprintf(f, "%ums\n", ms);
			break;
		}
		case V_OCTAL:
			fprintf(f, "%03o\n", *(const unsigned *)field);
			break;
		case V_PORTS:
			fprintf(f, "%u-%u\n", cfg->pasv_port_low, cfg->pasv_port_high);
			break;
		}
	}
}
