/* Commands that set up the data channel (PASV EPSV PORT EPRT) or end it
 * (ABOR). A data connection is only ever with the client's own address. */
#include <arpa/inet.h>
#include <string.h>

#include "cmd.h"
#include "log.h"

void cmd_pasv(struct session *s, char *arg)
{
	struct in_addr a;
	uint16_t port;

	if (s->local_addr.ss_family == AF_INET) {
		a = ((struct sockaddr_in *)&s->local_addr)->sin_addr;
	} else {
		const struct in6_addr *v6 = &((struct sockaddr_in6 *)&s->local_addr)->sin6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(v6)) {
			ctl_reply(s, FTP_BADSENDCONN, "PASV is for IPv4; use EPSV.");
			return;
		}
		memcpy(&a, v6->s6_addr + 12, 4);
	}
	if (s->cfg->pasv_address != NULL && inet_pton(AF_INET, s->cfg->pasv_address, &a) != 1) {
		ctl_reply(s, FTP_BADSENDCONN, "Cannot open a passive connection.");
		return;
	}
	if (data_listen(s, &port) < 0) {
		ctl_reply(s, FTP_BADSENDCONN, "Cannot open a passive connection.");
		return;
	}
	if (s->ctl_tls != NULL)
		ctl_send_ticket(s);
	uint8_t *b = (uint8_t *)&a.s_addr;
	ctl_reply(s, FTP_PASVOK, "Entering Passive Mode (%u,%u,%u,%u,%u,%u).", b[0], b[1], b[2],
		  b[3], port >> 8, port & 0xff);
}

void cmd_epsv(struct session *s, char *arg)
{
	uint16_t port;

	if (arg != NULL) {
		if (arg_is(arg, "ALL")) {
			s->epsv_all = true;
			ctl_reply(s, FTP_EPSVALLOK, "EPSV ALL ok.");
			return;
		}
		bool v6 = s->local_addr.ss_family == AF_INET6 &&
			  !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&s->local_addr)->sin6_addr);
		if (!(strcmp(arg, "1") == 0 && !v6) && !(strcmp(arg, "2") == 0 && v6)) {
			ctl_reply(s, FTP_EPSVBAD, "Network protocol not supported, use (%d)",
				  v6 ? 2 : 1);
			return;
		}
	}
	if (data_listen(s, &port) < 0) {
		ctl_reply(s, FTP_BADSENDCONN, "Cannot open a passive connection.");
		return;
	}
	if (s->ctl_tls != NULL)
		ctl_send_ticket(s);
	ctl_reply(s, FTP_EPSVOK, "Entering Extended Passive Mode (|||%u|)", port);
}

/* PORT and EPRT: the client's own address only, never a privileged port,
 * so that the server cannot be bounced at anyone else (RFC 2577). */
static void set_active(struct session *s, const struct sockaddr_storage *a)
{
	uint16_t port = a->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)a)->sin_port)
						: ntohs(((const struct sockaddr_in6 *)a)->sin6_port);

	if (!data_same_host(a, &s->peer_addr)) {
		log_warn("refused active mode to another host than the client");
		ctl_reply(s, FTP_BADPARAM, "Active mode connects only to your own address.");
		return;
	}
	if (port < 1024) {
		log_warn("refused active mode to privileged port %u", port);
		ctl_reply(s, FTP_BADPARAM, "Active mode to a port below 1024 is refused.");
		return;
	}
	data_set_active(s, a);
	if (s->ctl_tls != NULL)
		ctl_send_ticket(s);
	ctl_reply(s, FTP_PORTOK, "PORT command successful. Consider using EPSV.");
}

void cmd_port(struct session *s, char *arg)
{
	struct sockaddr_storage ss = { 0 };

	if (ftp_parse_port(arg, (struct sockaddr_in *)&ss) < 0) {
		ctl_reply(s, FTP_BADARGS, "Syntax: PORT h1,h2,h3,h4,p1,p2.");
		return;
	}
	set_active(s, &ss);
}

void cmd_eprt(struct session *s, char *arg)
{
	struct sockaddr_storage ss = { 0 };

	switch (ftp_parse_eprt(arg, &ss)) {
	case 0:
		set_active(s, &ss);
		break;
	case -EAFNOSUPPORT:
		ctl_reply(s, FTP_EPSVBAD, "Network protocol not supported, use (1,2)");
		break;
	case -EADDRNOTAVAIL:
		ctl_reply(s, FTP_BADARGS, "Bad %s address.", ss.ss_family == AF_INET6 ? "IPv6" : "IPv4");
		break;
	default:
		ctl_reply(s, FTP_BADARGS, "Syntax: EPRT |proto|address|port|.");
		break;
	}
}

void cmd_abor(struct session *s, char *arg)
{
	if (data_transfer_active(s)) {
		data_abort(s);
		ctl_reply(s, FTP_ABOROK, "ABOR successful.");
		return;
	}
	data_close(s);
	ctl_reply(s, FTP_ABOR_NOCONN, "No transfer to abort.");
}
