/*
 * slots.c: limits on how long and how many connection slots a client may
 * hold, so that slow or idle clients cannot starve the others.
 *
 * Per-state timeouts alone restart on every command and every read, so a
 * client that sends NOOP every few minutes, or one octet of DATA at a
 * time, would keep its slot for ever. Hence, besides them:
 * - session_time_limit: a deadline for the whole session from the connect;
 * - data_min_rate: in DATA the time allowed in all is data_timeout plus a
 *   second per data_min_rate octets received (Postfix's
 *   smtpd_min_data_rate), whatever the pace of the reads;
 * - junk_command_limit: commands that move no mail (NOOP, RSET, VRFY,
 *   HELP, EXPN, ETRN) end the session past the limit (Postfix's
 *   smtpd_junk_command_limit); an accepted message starts a new count;
 * - per-client limits count an IPv6 /64 (connection_limit_v6_prefix) and
 *   optionally an IPv4 network as one client, as a host gets a whole /64;
 * - stress: with stress_threshold percent of max_connections in use, every
 *   timeout is capped at stress_timeout and the per-client limit at
 *   stress_max_connections_per_client (Postfix's stress mode).
 * The TLS handshake has its own short timeout (tls_handshake_timeout,
 * session_arm() in session.c).
 *
 * Calls come in only: callers pass what they know of a session (its
 * clock, its junk count) and get an answer back; nothing here calls the
 * session files or sees struct session.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "slots.h"
#include "smtpd.h"
#include "util.h"

int slots_stressed(const struct smtpd *srv)
{
	const struct config *cf = srv->rt->cf;
	if (cf->stress_threshold <= 0)
		return 0;
	return (int64_t)srv->nsessions * 100 >= cf->max_connections * cf->stress_threshold;
}

int slots_session_expired(const struct smtpd *srv, int64_t connect_usec)
{
	const struct config *cf = srv->rt->cf;
	/* libevent's timers run on a coarse clock and may fire a few
	 * milliseconds before mono_usec() reaches the deadline. */
	return cf->session_time_limit > 0 &&
	       mono_usec() - connect_usec >= cf->session_time_limit * 1000000 - 100000;
}

int64_t slots_wait_usec(const struct smtpd *srv, const struct slots_clock *c, int64_t timeout)
{
	const struct config *cf = srv->rt->cf;
	int64_t now = mono_usec();
	if (slots_stressed(srv) && cf->stress_timeout < timeout)
		timeout = cf->stress_timeout;
	int64_t wait = timeout * 1000000;
	if (cf->session_time_limit > 0) {
		int64_t left = c->connect_usec + cf->session_time_limit * 1000000 - now;
		if (left < wait)
			wait = left;
	}
	if (c->in_data && cf->data_min_rate > 0) {
		int64_t allowed = cf->data_timeout * 1000000 +
		                  (int64_t)(c->data_octets / (uint64_t)cf->data_min_rate) * 1000000;
		int64_t left = c->data_start_usec + allowed - now;
		if (left < wait)
			wait = left;
	}
	return wait < 0 ? 0 : wait;
}

int slots_junk_command(const struct smtpd *srv, unsigned *count, enum cmd_verb verb)
{
	switch (verb) {
	case CMD_NOOP:
	case CMD_RSET:
	case CMD_VRFY:
	case CMD_HELP:
	case CMD_EXPN:
	case CMD_ETRN:
		break;
	default:
		return 0;
	}
	int64_t limit = srv->rt->cf->junk_command_limit;
	if (slots_stressed(srv) && limit > 1)
		limit = 1;
	return limit > 0 && ++*count > (unsigned)limit;
}

int64_t slots_per_client(const struct smtpd *srv)
{
	const struct config *cf = srv->rt->cf;
	if (slots_stressed(srv) &&
	    cf->stress_max_connections_per_client < cf->max_connections_per_client)
		return cf->stress_max_connections_per_client;
	return cf->max_connections_per_client;
}

/* addr with all but the first bits bits cleared, then "/bits". */
static int mask_key(int af, const char *addr, int bits, char *out, size_t size)
{
	unsigned char a[16];
	if (inet_pton(af, addr, a) != 1)
		return -1;
	int len = af == AF_INET ? 4 : 16;
	for (int i = 0; i < len; i++) {
		int keep = bits - i * 8;
		if (keep <= 0)
			a[i] = 0;
		else if (keep < 8)
			a[i] &= (unsigned char)(0xff << (8 - keep));
	}
	char txt[64];
	if (inet_ntop(af, a, txt, sizeof(txt)) == NULL)
		return -1;
	snprintf(out, size, "%s/%d", txt, bits);
	return 0;
}

void slots_client_key(const struct config *cf, const char *addr, char *out, size_t size)
{
	int v6 = strchr(addr, ':') != NULL;
	int bits = (int)(v6 ? cf->connection_limit_v6_prefix : cf->connection_limit_v4_prefix);
	if (bits >= (v6 ? 128 : 32) || mask_key(v6 ? AF_INET6 : AF_INET, addr, bits, out, size) < 0)
		snprintf(out, size, "%s", addr);
}
