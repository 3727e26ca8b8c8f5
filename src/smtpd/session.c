/*
 * session.c: the SMTP state machine of one client's session (RFC 5321
 * with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, DSN, STARTTLS,
 * CHUNKING (BDAT's chunks are read by receive.c) and SMTPUTF8).
 *
 * The dialogue is an explicit state machine (states in session.h): a
 * command table gives, for each verb, the states where it is allowed and
 * its handler, and the state is checked in one place, session_command().
 * Every complete command line enters through session_command() and every
 * reply leaves through session_emit(); both report to the observer
 * (smtpd.h), which is how the timing classifier will watch the dialogue.
 *
 * Input is taken one line at a time from the input buffer, in order;
 * replies accumulate in the output buffer, which libevent writes once the
 * read callback returns, i.e. when no complete line is left (RFC 2920).
 * While a message is being committed the input stays buffered and
 * unprocessed, so replies never overtake each other.
 *
 * Relay control lives here too (rcpt_allowed): it is the RCPT handler's
 * decision. The message itself is receive.c's, the socket connection.c's.
 *
 * The session's life cycle is here too: session_new() (called by
 * server.c for each accepted connection) sets up the transport and asks
 * rdns.c for the client's name, and the final greeting line waits for the
 * answer (the greet pause, when there is one, runs meanwhile), so that
 * "connect from name[addr]" and every later line has the name, as
 * Postfix's smtpd does it; the answer is reported to the observer
 * (SEV_RDNS). The transport frees the session from its deferred free
 * (conn_dead), and server.c learns of it through srv->session_gone.
 *
 * Calls go one way: server.c calls this file; this file calls
 * connection.c, slots.c, verify.c, rdns.c, command.c and reply.c, which
 * answer through return values or the callbacks given to them (struct
 * connection_ops, struct verify_asker, the rdns callback); the message
 * (receive.c, which calls this file) is reached only through
 * srv->msg_ops.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "recipients.h"
#include "addr.h"
#include "command.h"
#include "localuser.h"
#include "conf.h"
#include "connection.h"
#include "log.h"
#include "rdns.h"
#include "reply.h"
#include "session.h"
#include "slots.h"
#include "tls.h"
#include "util.h"
#include "verify.h"

/* Observer hooks. */

void session_notify(struct session *s, struct session_event *ev)
{
	if (ev->usec == 0)
		ev->usec = mono_usec();
	if (s->obs == NULL || s->obs->event == NULL)
		return;
	s->obs->event(s->obs_ctx, s, ev);
}

void session_notify_type(struct session *s, enum session_event_type type)
{
	struct session_event ev = {.type = type};
	session_notify(s, &ev);
}

/* Transaction state. */

void session_reset_transaction(struct session *s)
{
	free(s->sender);
	s->sender = NULL;
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	s->nrcpt = 0;
	s->body = CMD_BODY_NONE;
	free(s->rcpt_dsn);
	s->rcpt_dsn = NULL;
	memset(&s->dsn, 0, sizeof(s->dsn));
	s->srv->msg_ops->bdat_reset(s);
	s->smtputf8 = 0;
	if (session_in(s, PH_CMD))
		session_set_phase(s, s->helo ? PH_HELO : PH_INIT);
}

/* Output: the one place every reply leaves from. */

void session_emit(struct session *s, int code, const char *text, size_t len)
{
	if (s->conn.bev == NULL || session_ending(s))
		return;
	evbuffer_add(bufferevent_get_output(s->conn.bev), text, len);
	s->last_reply_usec = mono_usec();
	struct session_event ev = {.type = SEV_REPLY, .usec = s->last_reply_usec, .code = code};
	session_notify(s, &ev);
	if (!log_verbose())
		return;
	for (const char *p = text, *e = text + len; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *end = nl ? nl : e;
		size_t n = (size_t)(end - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		log_debug("%s[%s]:%u: > %.*s", s->name, s->addr, s->port, (int)n, p);
		p = nl ? nl + 1 : e;
	}
}

/* The patience test (screen.c): one reply of a client without a good
 * history is held back for patience_delay; commands are not taken
 * meanwhile (session_process), and the timer releases it. */
void session_emit_patient(struct session *s, int which, int code, const char *text, size_t len)
{
	int64_t delay = s->obs && s->obs->patience
	                    ? s->obs->patience(s->obs_ctx, s, (enum screen_reply)which)
	                    : 0;
	if (delay <= 0 || s->conn.bev == NULL || session_ending(s)) {
		session_emit(s, code, text, len);
		return;
	}
	s->held = xmalloc(len);
	memcpy(s->held, text, len);
	s->held_len = len;
	s->held_code = code;
	session_timer(s, delay);
}

void session_release_held(struct session *s)
{
	char *text = s->held;
	s->held = NULL;
	session_notify_type(s, SEV_HOLD_OVER);
	session_emit(s, s->held_code, text, s->held_len);
	free(text);
	session_idle(s);
}

static void session_reply_patient(struct session *s, int which, enum reply_id id)
{
	char buf[REPLY_LINE_MAX];
	size_t n = reply_format(id, NULL, buf, sizeof(buf));
	const struct reply *r = reply_get(id);
	if (r == NULL || n == 0)
		fatalx("session: no reply for id %d", (int)id);
	session_emit_patient(s, which, r->code, buf, n);
}

void session_reply(struct session *s, enum reply_id id, const char *arg)
{
	char buf[REPLY_LINE_MAX];
	const struct reply *r = reply_get(id);
	size_t n = reply_format(id, arg, buf, sizeof(buf));
	if (r == NULL || n == 0)
		fatalx("session: no reply for id %d", (int)id);
	session_emit(s, r->code, buf, n);

	/* Timeouts, too many errors and non-SMTP input have lines of their
	 * own; every other refusal, the 421 of a shutdown included, is
	 * logged here. */
	if (r->code >= 400 && id != RPL_TIMEOUT && id != RPL_TOO_MANY_ERRORS &&
	    id != RPL_TOO_MANY_JUNK && id != RPL_NON_SMTP) {
		log_info("reject: %s from %s[%s]:%u: %.*s;%s%s%s%s%s%s helo=<%s>",
		         s->cur_what ? s->cur_what : "CONNECT", s->name, s->addr, s->port,
		         (int)(n - 2), buf, s->sender ? " from=<" : "", s->sender ? s->sender : "",
		         s->sender ? ">" : "", s->cur_rcpt ? " to=<" : "",
		         s->cur_rcpt ? s->cur_rcpt : "", s->cur_rcpt ? ">" : "",
		         s->helo ? s->helo : "");
	}
	if (r->code >= 400 && !(r->flags & REPLY_F_NOT_ERROR))
		s->errors++;
	if (r->flags & REPLY_F_CLOSE) {
		session_close(s);
		return;
	}
	if (s->errors > (unsigned)session_cf(s)->max_errors && !session_ending(s)) {
		log_info("too many errors (%u) from %s[%s]:%u", s->errors, s->name, s->addr,
		         s->port);
		session_reply(s, RPL_TOO_MANY_ERRORS, NULL);
	}
}

/* The transport's reports (connection.c), while it is open. */

void session_input(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->conn.bev);
	switch (s->phase) {
	case PH_GREETING: {
		/* Talking before the greeting: kept for after it, and noted. */
		size_t have = evbuffer_get_length(in);
		if (have > s->pregreet_seen) {
			struct session_event ev = {.type = SEV_PREGREET,
			                           .usec = s->conn.last_read_usec,
			                           .octets = have - s->pregreet_seen};
			s->pregreet_seen = have;
			session_notify(s, &ev);
		}
		break;
	}
	case PH_DATA:
		session_arm(s);
		session_process(s);
		break;
	case PH_INIT:
	case PH_HELO:
	case PH_MAIL:
	case PH_RCPT:
		if (s->chunk_active)
			session_arm(s); /* a BDAT chunk: the data timeout */
		/* Talking while a reply is held back: the classifier decides
		 * whether RFC 2920 allowed it at this point. */
		if (s->held)
			session_notify_type(s, SEV_HOLD_INPUT);
		if (!s->stalled)
			session_process(s);
		break;
	case PH_COMMIT:
		/* Kept for later (bounded by the read watermark). */
		break;
	}
}

void session_output_drained(struct session *s)
{
	if (s->stalled && session_in(s, PH_CMD)) {
		s->stalled = 0;
		session_process(s);
	}
}

void session_timeout(struct session *s)
{
	if (s->held && session_in(s, PH_CMD)) {
		/* The patience delay is over: the client waited. */
		session_release_held(s);
		return;
	}
	if (s->phase != PH_GREETING && slots_session_expired(s->srv, s->connect_usec))
		log_info("session_time_limit (%llds) reached by %s[%s]:%u",
		         (long long)session_cf(s)->session_time_limit, s->name, s->addr, s->port);
	switch (s->phase) {
	case PH_GREETING:
		session_greet_final(s);
		break;
	case PH_INIT:
	case PH_HELO:
	case PH_MAIL:
	case PH_RCPT:
		if (s->chunking)
			/* A message being sent with BDAT: as for DATA. */
			log_info("%s: timeout after BDAT (%" PRIu64 " octets) from %s[%s]:%u",
			         s->id, s->dp.size, s->name, s->addr, s->port);
		else
			log_info("timeout after %s from %s[%s]:%u",
			         s->cur_what ? s->cur_what : "CONNECT", s->name, s->addr, s->port);
		session_reply(s, RPL_TIMEOUT, NULL);
		break;
	case PH_DATA:
		log_info("%s: timeout after DATA (%" PRIu64 " octets) from %s[%s]:%u", s->id,
		         s->dp.size, s->name, s->addr, s->port);
		s->srv->msg_ops->release(s);
		session_set_phase(s, PH_HELO);
		session_reset_transaction(s);
		session_reply(s, RPL_TIMEOUT, NULL);
		break;
	case PH_COMMIT:
		break;
	}
}

int session_peer_closed(struct session *s)
{
	if (s->phase == PH_COMMIT) {
		/* Half-closed after the end of data: the reply is still
		 * written when the commit completes. */
		s->peer_eof = 1;
		return 1;
	}
	if (session_in(s, PH_CMD) && s->conn.bev &&
	    evbuffer_get_length(bufferevent_get_output(s->conn.bev)) > 0) {
		/* Pipelined commands and then a half close: answer them. */
		s->peer_eof = 1;
		session_close(s);
		return 1;
	}
	return 0;
}

/* The TLS handshake completed (connection.c): the dialogue starts over. */
void session_tls_started(struct session *s)
{
	session_notify_type(s, SEV_TLS);
	/* RFC 3207 4.2: forget everything learnt in the clear. */
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	session_set_phase(s, PH_INIT);
	session_reset_transaction(s);
	session_idle(s);
}

/* The greeting. RFC 5321 4.2: "220 SP domain SP text". session_greet()
 * can send a "220-" line first and the final line after a pause (the
 * pregreet test); the final line also waits for the client's name
 * (session_name_known), whichever takes longer. */

static size_t greeting_line(struct session *s, int final, char *buf, size_t size)
{
	const struct config *cf = session_cf(s);
	int n = snprintf(buf, size, "220%c%s%s%s\r\n", final ? ' ' : '-', cf->hostname,
	                 cf->banner[0] ? " " : "", cf->banner);
	if (n < 0 || (size_t)n >= size)
		n = snprintf(buf, size, "220%c%s\r\n", final ? ' ' : '-', cf->hostname);
	return n < 0 ? 0 : (size_t)n;
}

void session_greet_final(struct session *s)
{
	s->greet_pause_over = 1;
	if (s->rdns_query != NULL || !session_in(s, PH(PH_GREETING)))
		return; /* the name first: session_name_known() comes back here */
	char buf[REPLY_LINE_MAX];
	size_t n = greeting_line(s, 1, buf, sizeof(buf));
	session_set_phase(s, PH_INIT);
	session_emit(s, 220, buf, n);
	session_notify_type(s, SEV_GREETING);
	session_idle(s);
}

void session_greet(struct session *s, int64_t pause_seconds)
{
	if (pause_seconds > 0) {
		char buf[REPLY_LINE_MAX];
		size_t n = greeting_line(s, 0, buf, sizeof(buf));
		session_emit(s, 220, buf, n);
		session_timer(s, pause_seconds);
		return;
	}
	session_greet_final(s);
}

/* Back in a command state: say 421 when shutting down, else arm the
 * command timeout. Returns 1 when commands may be taken. */
int session_ready(struct session *s)
{
	if (!(session_in(s, PH_CMD)))
		return 0;
	if (s->srv->stopping) {
		session_reply(s, RPL_SHUTDOWN, NULL);
		return 0;
	}
	session_arm(s);
	return 1;
}

/* As session_ready(), then run what the client already sent. Only for
 * callers outside session_process() (greeting, commit, TLS), so the
 * processing loop never recurses. */
void session_idle(struct session *s)
{
	if (!session_ready(s))
		return;
	session_process(s);
	/* The client half-closed: its last commands are answered above. */
	if (s->peer_eof && (session_in(s, PH_CMD)))
		session_close(s);
}

/* Command handlers: the state has been checked, the argument count too. */

const char *session_protocol(const struct session *s)
{
	/* RFC 6531 4.3: the WITH types of a transaction under SMTPUTF8. */
	if (s->smtputf8)
		return s->tls_active ? "UTF8SMTPS" : "UTF8SMTP";
	return s->tls_active ? "ESMTPS" : s->esmtp ? "ESMTP" : "SMTP";
}

static void proceed_helo(struct session *s, const struct cmd_line *cmd)
{
	const struct config *cf = session_cf(s);
	if (cmd_check_helo(cmd->arg, cmd->arglen) != RPL_NONE) {
		session_reply(s, RPL_BAD_HELO, NULL);
		return;
	}
	free(s->helo);
	s->helo = xstrndup(cmd->arg, cmd->arglen);
	s->esmtp = cmd->verb == CMD_EHLO;
	session_notify_type(s, SEV_HELO);
	/* RFC 5321 4.1.4: HELO/EHLO resets the transaction like RSET. */
	session_reset_transaction(s);
	session_set_phase(s, PH_HELO);

	char buf[1024];
	if (!s->esmtp) {
		int n = snprintf(buf, sizeof(buf), "250 %s\r\n", cf->hostname);
		session_emit_patient(s, SCREEN_REPLY_HELO, 250, buf, (size_t)n);
		return;
	}
	char size[40];
	snprintf(size, sizeof(size), "SIZE %" PRIu64, cf->message_size_limit);
	const char *lines[12];
	size_t k = 0;
	lines[k++] = cf->hostname;
	lines[k++] = "PIPELINING";
	lines[k++] = size;
	lines[k++] = "8BITMIME";
	lines[k++] = "ENHANCEDSTATUSCODES";
	lines[k++] = "DSN";
	lines[k++] = "CHUNKING"; /* RFC 3030, BDAT: receive.c */
	lines[k++] = "SMTPUTF8"; /* RFC 6531; 8BITMIME above, as 3.1 requires */
	if (s->srv->tls_ctx && !s->tls_active)
		lines[k++] = "STARTTLS";
	size_t off = 0;
	for (size_t i = 0; i < k; i++) {
		int n = snprintf(buf + off, sizeof(buf) - off, "250%c%s\r\n", i + 1 < k ? '-' : ' ',
		                 lines[i]);
		if (n < 0 || (size_t)n >= sizeof(buf) - off)
			fatalx("session: EHLO reply does not fit");
		off += (size_t)n;
	}
	session_emit_patient(s, SCREEN_REPLY_HELO, 250, buf, off);
}

static void proceed_mail(struct session *s, const struct cmd_line *cmd)
{
	const struct config *cf = session_cf(s);
	struct cmd_mail m;
	/* An address literal is a valid reverse-path (RFC 5321 4.1.3);
	 * allow_address_literals is about recipients only. */
	enum reply_id r = cmd_parse_mail(cmd->arg, cmd->arglen, ADDR_ALLOW_LITERAL, &m);
	if (r == RPL_NONE && !s->esmtp && (m.has_size || m.body != CMD_BODY_NONE || m.smtputf8)) {
		/* Service extensions exist only after EHLO (RFC 5321 4.1.1.1). */
		r = RPL_PARAM_UNKNOWN;
		snprintf(m.param, sizeof(m.param), "%s",
		         m.has_size                ? "SIZE"
		         : m.body != CMD_BODY_NONE ? "BODY"
		                                   : "SMTPUTF8");
	}
	if (r == RPL_MAIL_NOT_ASCII) {
		session_reply(s, r, NULL);
		return;
	}
	if (r == RPL_NONE && !s->esmtp && dsn_mail_given(&m.dsn)) {
		r = RPL_PARAM_UNKNOWN;
		snprintf(m.param, sizeof(m.param), "%s", dsn_mail_given(&m.dsn));
	}
	if (r == RPL_BAD_SENDER) {
		session_reply(s, r, addr_strerror(m.addr_err));
		return;
	}
	if (r != RPL_NONE) {
		session_reply(s, r, m.param);
		return;
	}
	if (m.has_size && cf->message_size_limit > 0 && m.size > cf->message_size_limit) {
		session_reply(s, RPL_SIZE_EXCEEDED, NULL);
		return;
	}
	char buf[ADDR_PATH_MAX * 2 + 8];
	addr_format(&m.addr, buf, sizeof(buf));
	s->sender = xstrdup(buf);
	s->body = m.body;
	s->dsn = m.dsn;
	s->smtputf8 = m.smtputf8;
	session_set_phase(s, PH_MAIL);
	session_reply_patient(s, SCREEN_REPLY_MAIL, RPL_MAIL_OK);
}

/* An address literal names us when it is the address the client
 * connected to, or one of the configured listen addresses. */
static int literal_is_ours(const struct session *s, const char *lit)
{
	char text[ADDR_DOMAIN_MAX + 1], want[64], have[64];
	size_t len = strlen(lit);
	if (len < 3 || lit[0] != '[' || lit[len - 1] != ']')
		return 0;
	snprintf(text, sizeof(text), "%.*s", (int)(len - 2), lit + 1);
	const char *p = text;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (ascii_strncasecmp(p, "IPv6:", 5) == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, p + 5, &sin6->sin6_addr) != 1)
			return 0;
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		if (inet_pton(AF_INET, p, &sin->sin_addr) != 1)
			return 0;
	}
	sockaddr_host((struct sockaddr *)&ss, want, sizeof(want));

	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	if (getsockname(s->conn.fd, (struct sockaddr *)&local, &llen) == 0) {
		sockaddr_host((struct sockaddr *)&local, have, sizeof(have));
		if (strcmp(have, want) == 0)
			return 1;
	}
	const struct config *cf = session_cf(s);
	for (size_t i = 0; i < cf->listen.n; i++) {
		sockaddr_host((const struct sockaddr *)&cf->listen.v[i].ss, have, sizeof(have));
		if (strcmp(have, want) == 0)
			return 1;
	}
	return 0;
}

/* Relay control (the open-relay rule): local and relay domains from
 * anyone, anything from mynetworks, <postmaster> always. */
static int rcpt_allowed(const struct session *s, const struct mailaddr *a)
{
	const struct config *cf = session_cf(s);
	if (a->is_postmaster)
		return 1;
	if (conf_in_mynetworks(cf, session_peer(s)))
		return 1;
	if (a->is_literal)
		return cf->allow_address_literals && literal_is_ours(s, a->domain);
	return conf_is_local_domain(cf, a->domain) || conf_is_relay_domain(cf, a->domain);
}

/* Recipient validation (src/deliver/recipients.c): a user the table of
 * its domain does not list is refused now, so that no mail is accepted
 * that would have to bounce. A local user exists when the recipients
 * table lists it, or its Maildir exists, or recipient_verify says so
 * (verify.c, later); maildir_create = yes accepts any local part where
 * neither a table nor verification is set. postmaster is always accepted
 * (RFC 5321 4.5.1). Routing characters in the local part of our domains
 * are refused unless allowed (localuser.c). */
static enum reply_id rcpt_validate(const struct session *s, const struct mailaddr *a,
                                   const char *addr)
{
	const struct config *cf = session_cf(s);
	const char *table = NULL;
	if (a->is_postmaster || a->is_literal || ascii_strncasecmp(addr, "postmaster@", 11) == 0)
		return RPL_NONE;
	int local = conf_is_local_domain(cf, a->domain);
	if (local)
		table = cf->recipients;
	else if (conf_is_relay_domain(cf, a->domain))
		table = cf->relay_recipients;
	else
		return RPL_NONE; /* relayed for mynetworks: not ours to judge */
	if (!cf->allow_routing_characters && localuser_has_routing(a))
		return RPL_ROUTING_DENIED;
	/* An lmtp: target answers for the local domains (verify.c). */
	int verify = cf->recipient_verify && strncmp(cf->recipient_verify, "lmtp:", 5) == 0;
	switch (recipients_check(table, addr)) {
	case RECIPIENTS_UNKNOWN:
		if (local && localuser_has_maildir(cf, addr))
			return RPL_NONE;
		return RPL_USER_UNKNOWN;
	case RECIPIENTS_NO_TABLE:
		if (local && !verify && !cf->maildir_create && !localuser_has_maildir(cf, addr))
			return RPL_USER_UNKNOWN;
		return RPL_NONE;
	case RECIPIENTS_ERROR:
		return RPL_LOCAL_ERROR;
	default:
		return RPL_NONE;
	}
}

/* The domain that stands for this host: the first local domain. */
static const char *primary_domain(const struct session *s)
{
	const struct config *cf = session_cf(s);
	for (size_t i = 0; i < cf->local_domains.n; i++)
		if (cf->local_domains.v[i][0] != '.')
			return cf->local_domains.v[i];
	return cf->hostname;
}

/* <postmaster> is delivered as postmaster@ our first local domain. */
static void postmaster_address(const struct session *s, char *buf, size_t size)
{
	snprintf(buf, size, "postmaster@%s", primary_domain(s));
}

static void rcpt_verified(struct session *s, const char *buf, enum verify_result v);
static void session_rcpt_verified(void *arg, const char *addr, enum verify_result r);

static void proceed_rcpt(struct session *s, const struct cmd_line *cmd)
{
	const struct config *cf = session_cf(s);
	struct cmd_rcpt rc;
	/* Literals are parsed always: refusing one is policy (5.7.1), not a
	 * syntax error. */
	int flags = ADDR_ALLOW_LITERAL | (s->smtputf8 ? ADDR_ALLOW_UTF8 : 0);
	enum reply_id r = cmd_parse_rcpt(cmd->arg, cmd->arglen, flags, &rc);
	if (r == RPL_RCPT_NOT_ASCII) {
		session_reply(s, r, NULL);
		return;
	}
	if (r == RPL_NONE && !s->esmtp && dsn_rcpt_given(&rc.dsn)) {
		/* NOTIFY and ORCPT exist only after EHLO (RFC 5321 4.1.1.1). */
		r = RPL_PARAM_UNKNOWN;
		snprintf(rc.param, sizeof(rc.param), "%s", dsn_rcpt_given(&rc.dsn));
	}
	if (r == RPL_BAD_RCPT) {
		session_reply(s, r, addr_strerror(rc.addr_err));
		return;
	}
	if (r != RPL_NONE) {
		session_reply(s, r, rc.param);
		return;
	}
	char buf[ADDR_PATH_MAX * 2 + 8], quoted[ADDR_PATH_MAX * 2 + 12];
	if (rc.addr.is_postmaster)
		postmaster_address(s, buf, sizeof(buf));
	else
		addr_format(&rc.addr, buf, sizeof(buf));
	s->cur_rcpt = buf;
	if (rc.addr.is_literal && !cf->allow_address_literals) {
		snprintf(quoted, sizeof(quoted), "<%s>", buf);
		session_reply(s, RPL_LITERAL_DENIED, quoted);
		s->cur_rcpt = NULL;
		return;
	}
	if (rc.addr.is_literal && literal_is_ours(s, rc.addr.domain)) {
		/* user@[our address] is user@ our first local domain, so that
		 * delivery and the recipients table see a local address. */
		snprintf(rc.addr.domain, sizeof(rc.addr.domain), "%s", primary_domain(s));
		rc.addr.is_literal = 0;
		addr_format(&rc.addr, buf, sizeof(buf));
	}
	if (!rcpt_allowed(s, &rc.addr)) {
		snprintf(quoted, sizeof(quoted), "<%s>", buf);
		session_reply(s, RPL_RELAY_DENIED, quoted);
		s->cur_rcpt = NULL;
		return;
	}
	enum reply_id vr = rcpt_validate(s, &rc.addr, buf);
	if (vr != RPL_NONE) {
		snprintf(quoted, sizeof(quoted), "<%s>", buf);
		session_reply(s, vr,
		              vr == RPL_LOCAL_ERROR ? "recipient table unavailable" : quoted);
		s->cur_rcpt = NULL;
		return;
	}
	for (size_t i = 0; i < s->nrcpt; i++) {
		if (strcmp(s->rcpts[i], buf) == 0) {
			/* Accepted again, stored once. */
			s->cur_rcpt = NULL;
			session_reply(s, RPL_RCPT_OK, NULL);
			return;
		}
	}
	if (s->nrcpt >= (size_t)cf->max_recipients) {
		session_reply(s, RPL_TOO_MANY_RCPT, NULL);
		s->cur_rcpt = NULL;
		return;
	}
	/* Last, as it may have to wait for the mail store (verify.c). */
	s->cur_dsn = rc.dsn;
	struct verify_asker who = {.name = s->name,
	                           .addr = s->addr,
	                           .port = s->port,
	                           .answer = session_rcpt_verified,
	                           .arg = s,
	                           .probe = &s->verify};
	enum verify_result v = verify_rcpt(s->srv->verify, &who, &rc.addr, buf);
	if (v == VERIFY_PENDING) {
		s->cur_rcpt = NULL;
		return;
	}
	rcpt_verified(s, buf, v);
}

/* The end of RCPT, once the recipient's verification is known. */
static void rcpt_verified(struct session *s, const char *buf, enum verify_result v)
{
	char quoted[ADDR_PATH_MAX * 2 + 12];
	if (v == VERIFY_UNKNOWN || v == VERIFY_TEMPFAIL) {
		snprintf(quoted, sizeof(quoted), "<%s>", buf);
		session_reply(s, v == VERIFY_UNKNOWN ? RPL_USER_UNKNOWN : RPL_VERIFY_TEMPFAIL,
		              quoted);
		s->cur_rcpt = NULL;
		return;
	}
	if (s->nrcpt == s->rcptcap) {
		s->rcptcap = s->rcptcap ? s->rcptcap * 2 : 4;
		s->rcpts = xreallocarray(s->rcpts, s->rcptcap, sizeof(*s->rcpts));
	}
	s->rcpt_dsn = xreallocarray(s->rcpt_dsn, s->nrcpt + 1, sizeof(*s->rcpt_dsn));
	s->rcpt_dsn[s->nrcpt] = s->cur_dsn;
	s->rcpts[s->nrcpt++] = xstrdup(buf);
	s->cur_rcpt = NULL;
	session_set_phase(s, PH_RCPT);
	session_reply_patient(s, SCREEN_REPLY_RCPT, RPL_RCPT_OK);
}

/* The answer of the recipient verification of the RCPT that s is
 * waiting on (verify.c's answer callback, never from inside
 * session_process). */
static void session_rcpt_verified(void *arg, const char *addr, enum verify_result r)
{
	struct session *s = arg;
	if (!(session_in(s, PH_CMD)))
		return; /* closing: the answer has no one to go to */
	s->cur_what = "RCPT";
	s->cur_rcpt = addr;
	rcpt_verified(s, addr, r);
	s->cur_rcpt = NULL;
	/* A held reply (patience test) releases the input itself. */
	if (s->held == NULL)
		session_idle(s);
}

static void proceed_data(struct session *s, const struct cmd_line *cmd)
{
	/* The pre-acceptance decision, before the 354: a refused client
	 * never sends its body. */
	enum reply_id r = s->obs && s->obs->decide ? s->obs->decide(s->obs_ctx, s) : RPL_NONE;
	if (r != RPL_NONE) {
		session_reply(s, r, NULL);
		return;
	}
	s->srv->msg_ops->start(s);
}

static void proceed_bdat(struct session *s, const struct cmd_line *cmd)
{
	s->srv->msg_ops->bdat(s, cmd);
}

static void proceed_rset(struct session *s, const struct cmd_line *cmd)
{
	session_reset_transaction(s);
	session_reply(s, RPL_OK, NULL);
}

static void proceed_noop(struct session *s, const struct cmd_line *cmd)
{
	session_reply(s, RPL_OK, NULL);
}

static void proceed_vrfy(struct session *s, const struct cmd_line *cmd)
{
	/* RFC 5321 3.5.3: 252 neither confirms nor denies the address. */
	session_reply(s, RPL_VRFY, NULL);
}

static void proceed_help(struct session *s, const struct cmd_line *cmd)
{
	session_reply(s, RPL_HELP, NULL);
}

static void proceed_quit(struct session *s, const struct cmd_line *cmd)
{
	/* QUIT ends every group (RFC 2920 3.1): nothing may follow it. */
	struct session_event ev = {
	    .type = SEV_QUIT, .octets = evbuffer_get_length(bufferevent_get_input(s->conn.bev))};
	session_notify(s, &ev);
	s->quit = 1;
	session_reply(s, RPL_BYE, NULL);
}

static void proceed_not_implemented(struct session *s, const struct cmd_line *cmd)
{
	session_reply(s, RPL_NOT_IMPL, NULL);
}

static void proceed_starttls(struct session *s, const struct cmd_line *cmd)
{
	if (s->tls_active) {
		session_reply(s, RPL_TLS_ACTIVE, NULL);
		return;
	}
	if (s->srv->tls_ctx == NULL) {
		session_reply(s, session_cf(s)->smtp_tls ? RPL_TLS_UNAVAIL : RPL_NOT_IMPL, NULL);
		return;
	}
	if (!s->esmtp) {
		session_reply(s, RPL_NEED_EHLO, NULL);
		return;
	}
	session_reply(s, RPL_TLS_READY, NULL);
	if (session_ending(s))
		return;
	session_tls_prepare(s);
}

struct cmd_def {
	enum cmd_verb verb;
	unsigned phases; /* PH() bits */
	void (*handler)(struct session *s, const struct cmd_line *cmd);
};

static const struct cmd_def cmd_table[] = {
    {CMD_HELO, PH_CMD, proceed_helo},
    {CMD_EHLO, PH_CMD, proceed_helo},
    {CMD_MAIL, PH(PH_HELO), proceed_mail},
    {CMD_RCPT, PH(PH_MAIL) | PH(PH_RCPT), proceed_rcpt},
    {CMD_DATA, PH(PH_RCPT), proceed_data},
    {CMD_RSET, PH_CMD, proceed_rset},
    {CMD_NOOP, PH_CMD, proceed_noop},
    {CMD_QUIT, PH_CMD, proceed_quit},
    {CMD_VRFY, PH_CMD, proceed_vrfy},
    {CMD_HELP, PH_CMD, proceed_help},
    {CMD_STARTTLS, PH(PH_HELO), proceed_starttls},
    {CMD_EXPN, PH_CMD, proceed_not_implemented},
    {CMD_BDAT, PH_CMD, proceed_bdat}, /* checks the phase itself: see receive.c */
    {CMD_AUTH, PH_CMD, proceed_not_implemented},
    {CMD_ETRN, PH_CMD, proceed_not_implemented},
    {CMD_TURN, PH_CMD, proceed_not_implemented},
};

/* The phases each phase may move to (session_set_phase). HELO/EHLO,
 * RSET, a timeout and the end of STARTTLS reset a transaction; the end of
 * data waits for the commit, which ends the transaction. */
static const unsigned phase_next[PH_NPHASES] = {
    [PH_GREETING] = PH(PH_INIT),
    [PH_INIT] = PH(PH_INIT) | PH(PH_HELO),
    [PH_HELO] = PH(PH_INIT) | PH(PH_HELO) | PH(PH_MAIL),
    [PH_MAIL] = PH(PH_INIT) | PH(PH_HELO) | PH(PH_RCPT),
    [PH_RCPT] =
        PH(PH_INIT) | PH(PH_HELO) | PH(PH_RCPT) | PH(PH_DATA) | PH(PH_COMMIT), /* BDAT LAST */
    [PH_DATA] = PH(PH_HELO) | PH(PH_COMMIT),
    [PH_COMMIT] = PH(PH_HELO),
};

static const char *const phase_names[PH_NPHASES] = {
    "GREETING", "INIT", "HELO", "MAIL", "RCPT", "DATA", "COMMIT",
};

void session_set_phase(struct session *s, enum smtp_phase to)
{
	if ((unsigned)s->phase >= PH_NPHASES || (unsigned)to >= PH_NPHASES ||
	    !(phase_next[s->phase] & PH(to)))
		fatalx("session: no transition from %s to %s", phase_names[s->phase % PH_NPHASES],
		       phase_names[to % PH_NPHASES]);
	s->phase = to;
}

static const char *const io_names[] = {"OPEN", "STARTTLS", "TLS", "CLOSING", "LINGER", "DEAD"};

int session_state_index(const struct session *s)
{
	return s->conn.io == IO_OPEN ? (int)s->phase : PH_NPHASES + (int)s->conn.io - 1;
}

const char *session_state_name(int index)
{
	if (index >= 0 && index < PH_NPHASES)
		return phase_names[index];
	if (index >= PH_NPHASES && index < SESSION_NSTATES)
		return io_names[index - PH_NPHASES + 1];
	return "?";
}

/* The reply for a verb given in a state where it is not allowed. */
static enum reply_id bad_sequence(const struct session *s, enum cmd_verb verb)
{
	switch (verb) {
	case CMD_MAIL:
		return session_in(s, PH(PH_INIT)) ? RPL_NEED_HELO : RPL_NESTED_MAIL;
	case CMD_RCPT:
		return session_in(s, PH(PH_INIT)) ? RPL_NEED_HELO : RPL_NEED_MAIL;
	case CMD_DATA:
		return session_in(s, PH(PH_INIT)) ? RPL_NEED_HELO : RPL_NEED_RCPT;
	case CMD_STARTTLS:
		if (s->tls_active)
			return RPL_TLS_ACTIVE;
		if (s->srv->tls_ctx == NULL)
			return session_cf(s)->smtp_tls ? RPL_TLS_UNAVAIL : RPL_NOT_IMPL;
		return session_in(s, PH(PH_INIT)) ? RPL_NEED_EHLO : RPL_TLS_IN_MAIL;
	default:
		return RPL_BAD_SEQUENCE;
	}
}

static void session_non_smtp(struct session *s, const char *what)
{
	char rpl[REPLY_LINE_MAX];
	size_t n = reply_format(RPL_NON_SMTP, NULL, rpl, sizeof(rpl));
	log_notice("non-SMTP input from %s[%s]:%u: %s; reply %.*s", s->name, s->addr, s->port, what,
	           (int)(n > 2 ? n - 2 : 0), rpl);
	struct session_event ev = {.type = SEV_NON_SMTP, .text = what};
	session_notify(s, &ev);
	session_reply(s, RPL_NON_SMTP, NULL);
}

/* The one entry point of complete command lines. */
static void session_command(struct session *s, const char *line, size_t len, int bare_lf)
{
	struct evbuffer *out = bufferevent_get_output(s->conn.bev);
	s->ncommands++;
	s->last_cmd_usec = mono_usec();
	/* Pipelined: the previous reply was still unsent when this line
	 * was read (queued behind it, or read before the last flush). */
	int early =
	    evbuffer_get_length(out) > 0 || s->conn.last_read_usec < s->conn.last_flush_usec;

	struct cmd_line cmd;
	enum reply_id r = cmd_parse(line, len, &cmd);
	struct session_event ev = {.type = SEV_COMMAND,
	                           .usec = s->last_cmd_usec,
	                           .verb = cmd.verb,
	                           .early = early,
	                           .arrival = s->conn.last_read_usec,
	                           .bare_lf = bare_lf,
	                           .pipelining = s->esmtp};
	session_notify(s, &ev);
	s->cur_what = cmd_verb_name(cmd.verb);
	s->cur_rcpt = NULL;
	if (log_verbose())
		log_debug("%s[%s]:%u: < %.*s%s%s", s->name, s->addr, s->port, (int)len, line,
		          bare_lf ? " (bare LF)" : "", early ? " (pipelined)" : "");

	if (r == RPL_NON_SMTP) {
		char what[80];
		snprintf(what, sizeof(what), "%.*s", (int)(len < 60 ? len : 60), line);
		session_non_smtp(s, what);
		return;
	}
	if (r == RPL_BAD_CHAR && memchr(line, '\0', len) != NULL) {
		struct session_event nul = {.type = SEV_NON_SMTP, .text = "NUL byte in a command"};
		session_notify(s, &nul);
	}
	if (r != RPL_NONE) {
		session_reply(s, r, NULL);
		return;
	}
	if (s->srv->msg_ops->bdat_refused(s, cmd.verb))
		return;
	const struct cmd_def *d = NULL;
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		if (cmd_table[i].verb == cmd.verb)
			d = &cmd_table[i];
	if (d == NULL)
		fatalx("session: verb %s has no handler", cmd_verb_name(cmd.verb));
	if (!(d->phases & PH(s->phase))) {
		session_reply(s, bad_sequence(s, cmd.verb), NULL);
		return;
	}
	r = cmd_check_args(&cmd);
	if (r != RPL_NONE) {
		session_reply(s, r, cmd_verb_name(cmd.verb));
		return;
	}
	if (slots_junk_command(s->srv, &s->junk_commands, cmd.verb)) {
		log_info("too many commands without mail (%u) from %s[%s]:%u", s->junk_commands,
		         s->name, s->addr, s->port);
		session_reply(s, RPL_TOO_MANY_JUNK, NULL);
		return;
	}
	session_arm(s);
	d->handler(s, &cmd);
}

/* Take one command line from the input. Returns 0 when more input is
 * needed. */
static int session_next_line(struct session *s, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	if (avail == 0)
		return 0;
	size_t window = avail < CMD_WINDOW_MAX ? avail : CMD_WINDOW_MAX;
	const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)window);
	if (p == NULL)
		fatalx("session: evbuffer_pullup failed");
	if (!s->discarding && cmd_is_tls_record((const unsigned char *)p, window)) {
		evbuffer_drain(in, avail);
		session_non_smtp(s, "TLS handshake record");
		return 0;
	}
	struct cmd_frame f;
	char line[CMD_WINDOW_MAX + 1];
	switch (cmd_frame(p, window, s->discarding, &f)) {
	case CMD_FRAME_MORE:
		return 0;
	case CMD_FRAME_DISCARD:
		/* Dropped now, answered at its end: never silently. */
		evbuffer_drain(in, f.consumed);
		s->discarding = 1;
		return 1;
	case CMD_FRAME_TOO_LONG: {
		evbuffer_drain(in, f.consumed);
		s->discarding = 0;
		s->ncommands++;
		struct session_event ev = {.type = SEV_COMMAND, .verb = CMD_NONE};
		session_notify(s, &ev);
		s->cur_what = "UNKNOWN";
		s->cur_rcpt = NULL;
		session_reply(s, RPL_LINE_TOO_LONG, NULL);
		return 1;
	}
	case CMD_FRAME_LINE:
		memcpy(line, p, f.len);
		line[f.len] = '\0';
		evbuffer_drain(in, f.consumed);
		session_command(s, line, f.len, f.bare_lf);
		return 1;
	}
	return 0;
}

void session_process(struct session *s)
{
	if (s->conn.bev == NULL)
		return;
	struct evbuffer *in = bufferevent_get_input(s->conn.bev);
	struct evbuffer *out = bufferevent_get_output(s->conn.bev);
	for (;;) {
		if (s->chunk_active && session_in(s, PH_CMD)) {
			/* The octets of a BDAT chunk, not commands. */
			if (!s->srv->msg_ops->chunk_input(s, in))
				return;
			continue;
		}
		if (session_in(s, PH(PH_DATA))) {
			if (!s->srv->msg_ops->input(s, in))
				return;
			continue;
		}
		if (!(session_in(s, PH_CMD)))
			return;
		if (s->held)
			return; /* a delayed reply first (patience test) */
		if (s->verify)
			return; /* the answer to a RCPT first (verify.c) */
		if (evbuffer_get_length(out) > SESSION_OUTPUT_MAX) {
			/* The client does not read its replies: wait. */
			s->stalled = 1;
			return;
		}
		if (!session_next_line(s, in))
			return;
	}
}

/* The transport under the session (connection.c). */

void session_timer(struct session *s, int64_t seconds)
{
	connection_timer(&s->conn, seconds);
}

/* The timeout that applies while waiting for the client in this state,
 * within the session's other deadlines (slots.c). */
void session_arm(struct session *s)
{
	const struct config *cf = session_cf(s);
	int64_t t;
	if (s->conn.io == IO_TLS)
		t = cf->tls_handshake_timeout;
	else if (s->conn.io == IO_STARTTLS || session_in(s, PH_CMD))
		t = s->chunk_active ? cf->data_timeout : cf->command_timeout; /* BDAT */
	else if (session_in(s, PH(PH_DATA)))
		t = cf->data_timeout;
	else {
		connection_timer_stop(&s->conn);
		return;
	}
	struct slots_clock clock = {.connect_usec = s->connect_usec,
	                            .in_data = session_in(s, PH(PH_DATA)),
	                            .data_start_usec = s->data_start_usec,
	                            .data_octets = s->dp.total};
	if (s->chunk_active && session_in(s, PH_CMD)) {
		/* A BDAT chunk: DATA's allowance, from its command line. */
		clock.in_data = 1;
		clock.data_start_usec = s->chunk_start_usec;
		clock.data_octets = s->chunk_size - s->chunk_left;
	}
	connection_timer_usec(&s->conn, slots_wait_usec(s->srv, &clock, t));
}

/* Queue the final reply, then flush, shut down and linger. */
void session_close(struct session *s)
{
	if (session_ending(s))
		return;
	s->stalled = 0;
	connection_close(&s->conn);
}

void session_tls_prepare(struct session *s)
{
	connection_tls_prepare(&s->conn);
}

/* Stop all I/O now and free from the next loop iteration. */
void session_kill(struct session *s)
{
	connection_kill(&s->conn);
}

/* The client's name. */

/* "connect from name[addr]:port", once per session. */
static void session_log_connect(struct session *s)
{
	if (s->connect_logged)
		return;
	s->connect_logged = 1;
	log_info("connect from %s[%s]:%u", s->name, s->addr, s->port);
}

/* The session ends before its name is known: the connect line says
 * unknown, and comes before the line that says why it ended. */
static void session_name_abandon(struct session *s)
{
	if (s->rdns_query) {
		rdns_cancel(s->rdns_query);
		s->rdns_query = NULL;
	}
	session_log_connect(s);
}

static void session_name_known(void *arg, const struct rdns_answer *a)
{
	struct session *s = arg;
	s->rdns_query = NULL;
	s->rdns = a->result;
	if (a->result == RDNS_CONFIRMED)
		strlcpy_tmx(s->name, a->name, sizeof(s->name));
	strlcpy_tmx(s->ptr, a->ptr, sizeof(s->ptr));
	session_log_connect(s);
	struct session_event ev = {.type = SEV_RDNS, .rdns = a->result};
	session_notify(s, &ev);
	if (s->greet_pause_over && session_in(s, PH(PH_GREETING)))
		session_greet_final(s);
}

/* What the transport reports (struct connection_ops). */

static void conn_input(void *arg)
{
	session_input(arg);
}

static void conn_drained(void *arg)
{
	session_output_drained(arg);
}

static void conn_timeout(void *arg)
{
	session_timeout(arg);
}

static int conn_peer_closed(void *arg)
{
	return session_peer_closed(arg);
}

static void conn_tls_started(void *arg)
{
	struct session *s = arg;
	char desc[256];
	tls_describe(s->conn.bev, desc, sizeof(desc));
	free(s->tls_desc);
	s->tls_desc = xstrdup(desc);
	s->tls_active = 1;
	log_info("STARTTLS: %s with cipher %s from %s[%s]:%u", tls_protocol(s->conn.bev),
	         tls_cipher(s->conn.bev), s->name, s->addr, s->port);
	session_tls_started(s);
}

static void conn_flushed(void *arg)
{
	struct session *s = arg;
	struct session_event ev = {.type = SEV_FLUSHED, .usec = s->conn.last_flush_usec};
	session_notify(s, &ev);
}

static void conn_arm(void *arg)
{
	session_arm(arg);
}

static void conn_ending(void *arg)
{
	session_name_abandon(arg);
}

static void conn_lost(void *arg)
{
	struct session *s = arg;
	if (!s->quit)
		log_info("lost connection after %s from %s[%s]:%u",
		         session_in(s, PH(PH_DATA)) ? "DATA"
		         : s->cur_what              ? s->cur_what
		                                    : "CONNECT",
		         s->name, s->addr, s->port);
}

static void conn_killed(void *arg)
{
	struct session *s = arg;
	session_name_abandon(s);
	s->srv->msg_ops->release(s);
	verify_cancel(&s->verify);
}

/* Teardown, from the transport's deferred free. */
static void conn_dead(void *arg)
{
	struct session *s = arg;
	struct smtpd *srv = s->srv;
	srv->msg_ops->release(s);
	/* The observer sees a held reply as never sent (s->held). */
	if (s->obs && s->obs->close)
		s->obs->close(s->obs_ctx, s, s->quit);
	free(s->held);
	s->held = NULL;
	connection_free(&s->conn);
	log_info("disconnect from %s[%s]:%u commands=%u errors=%u messages=%u%s", s->name, s->addr,
	         s->port, s->ncommands, s->errors, s->nmessages, s->quit ? " quit" : "");

	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->session_gone(srv, s->addr);

	session_reset_transaction(s);
	free(s->rcpts);
	free(s->helo);
	free(s->tls_desc);
	free(s);
}

static const struct connection_ops session_conn_ops = {
    .input = conn_input,
    .drained = conn_drained,
    .timeout = conn_timeout,
    .peer_closed = conn_peer_closed,
    .tls_started = conn_tls_started,
    .flushed = conn_flushed,
    .arm = conn_arm,
    .ending = conn_ending,
    .lost = conn_lost,
    .killed = conn_killed,
    .dead = conn_dead,
};

/* Life cycle, called by server.c. */

struct session *session_new(struct smtpd *srv, int fd, const struct sockaddr *peer,
                            socklen_t peerlen, size_t listen_index)
{
	struct session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->phase = PH_GREETING;
	s->listen_index = listen_index;
	if (peerlen > sizeof(s->peer))
		peerlen = sizeof(s->peer);
	memcpy(&s->peer, peer, peerlen);
	s->peerlen = peerlen;
	sockaddr_host(peer, s->addr, sizeof(s->addr));
	s->port = sockaddr_port(peer);
	s->connect_usec = mono_usec();
	s->sf.fd = -1;
	strlcpy_tmx(s->name, "unknown", sizeof(s->name));

	connection_init(&s->conn, srv, fd, &session_conn_ops, s, s->name, s->addr, s->port);
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;

	s->obs = srv->obs;
	if (s->obs && s->obs->open)
		s->obs_ctx = s->obs->open(srv->obs_arg, s);
	/* The name is asked for first, so that it may come during the
	 * pause; it always comes from a callback of its own. */
	if (session_cf(s)->reverse_dns)
		s->rdns_query = rdns_lookup(srv, session_peer(s), session_name_known, s);
	else
		session_log_connect(s);
	/* The observer may need a moment (a remote lookup) before it knows
	 * how to greet. */
	if (s->obs && s->obs->greet_wait && s->obs->greet_wait(s->obs_ctx, s)) {
		s->greet_waiting = 1;
		return s;
	}
	/* Clients without a good history get the banner in two parts. */
	session_greet(s, s->obs && s->obs->greet_pause ? s->obs->greet_pause(s->obs_ctx, s) : 0);
	return s;
}

void session_observer_ready(struct session *s)
{
	if (!s->greet_waiting)
		return;
	s->greet_waiting = 0;
	if (session_in(s, PH(PH_GREETING)))
		session_greet(s, s->obs && s->obs->greet_pause ? s->obs->greet_pause(s->obs_ctx, s)
		                                               : 0);
}

void session_shutdown_all(struct smtpd *srv)
{
	struct session *s, *next;
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		if (session_in(s, PH(PH_GREETING)))
			session_name_abandon(s);
		/* The last chunk of a BDAT message is its DATA: it finishes. */
		int last_chunk = s->chunk_active && s->chunk_store && s->chunk_last;
		if (session_in(s, PH(PH_GREETING) | PH_CMD) && !last_chunk) {
			s->cur_what = "SHUTDOWN";
			session_reply(s, RPL_SHUTDOWN, NULL);
		} else if (s->conn.io == IO_STARTTLS || s->conn.io == IO_TLS) {
			session_kill(s);
		}
		/* DATA, BDAT LAST and COMMIT finish first (session_idle). */
	}
}

void session_abort_all(struct smtpd *srv)
{
	for (struct session *s = srv->sessions; s; s = s->next) {
		if (session_in(s, PH(PH_DATA) | PH(PH_COMMIT)) ||
		    (s->chunking && !session_ending(s)))
			log_info("%s: shutdown: dropping the session of %s[%s]:%u in %s", s->id,
			         s->name, s->addr, s->port,
			         session_state_name(session_state_index(s)));
		session_kill(s);
	}
}
