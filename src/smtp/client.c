/*
 * client.c: the outbound SMTP (RFC 5321) and LMTP (RFC 2033) client, one
 * explicit state machine per session on a bufferevent of the owner's
 * event loop (delivery: deliver/remote.c; recipient verification:
 * smtpd/verify.c).
 *
 * Opening: connect, greeting, EHLO or LHLO (HELO when an SMTP server
 * refuses EHLO with 5xx: RFC 5321 3.2), STARTTLS per tls_policy under
 * libevent's OpenSSL filter (conn.c, tls.c), and EHLO again after
 * TLS (RFC 3207 4.2). Then the session idles until smtp_send() runs a
 * transaction: RSET first if the last one did not end, MAIL FROM with
 * SIZE=, BODY=8BITMIME, SMTPUTF8 and the DSN parameters (RFC 3461) when
 * offered (a message that needs SMTPUTF8 is not sent where it is not:
 * RFC 6531 3.2), one RCPT per recipient, then DATA
 * and the body (body.c), or for a probe RSET instead of DATA. With
 * PIPELINING (RFC 2920) the envelope goes in one write and the replies
 * are taken in order, else one command per reply. LMTP gets one reply
 * per accepted recipient after the dot (RFC 2033 4.2). QUIT ends it.
 *
 * Each state names what the session waits for; the table states[] gives
 * each its reply handler and its timeout. on_reply() is the one place a
 * complete reply goes: to the handler of the current state, which picks
 * the next state; enter() is the one place the state changes. The bytes,
 * the TLS filter and the timer are conn.c's, who got which answer is
 * rcpts.c's, the body is body.c's: calls go from here to them, never
 * back.
 *
 * Timeouts (RFC 5321 4.5.3.2): command_timeout for every reply but the
 * last and for each data block to drain, data_timeout for the reply to
 * the final dot. Failures that are not the server's replies get RFC 3463
 * codes: 4.4.1 no connection, 4.4.2 the connection broke or timed out,
 * 4.7.4 TLS required but not offered, 4.7.5 TLS failed, 4.5.0 a reply
 * that is not one.
 *
 * The owner hears of every outcome through its callback, run from an
 * event of the session's own, so it may free the session or start the
 * next transaction from the callback. Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "body.h"
#include "conn.h"
#include "log.h"
#include "rcpts.h"
#include "smtp.h"
#include "smtp_proto.h"
#include "util.h"

/* Seconds to wait for the reply to QUIT. */
#define SMTP_QUIT_TIMEOUT 5
/* The body is refilled when the output drops below LOW, up to HIGH. */
#define SMTP_OUT_LOW (64 * 1024)
#define SMTP_OUT_HIGH (256 * 1024)

/* What the session waits for. */
enum smtp_state {
	ST_CONNECT,   /* the TCP or unix connect */
	ST_GREETING,  /* the 220 */
	ST_EHLO,      /* the reply to EHLO or LHLO */
	ST_HELO,      /* the reply to HELO, after EHLO was refused */
	ST_STARTTLS,  /* the reply to STARTTLS */
	ST_TLS,       /* the TLS handshake */
	ST_EHLO_TLS,  /* the reply to EHLO or LHLO again, under TLS */
	ST_IDLE,      /* nothing: between transactions */
	ST_RSET,      /* the reply to the RSET that clears an unfinished transaction */
	ST_MAIL,      /* the reply to MAIL FROM */
	ST_RCPT,      /* the reply to the RCPT of m->rcpts[rcpt] */
	ST_DATA,      /* the reply to DATA */
	ST_BODY,      /* the output to drain: the message is being sent */
	ST_DOT,       /* the reply (LMTP: replies) to the final dot */
	ST_EMPTY_DOT, /* the reply to the dot of an empty message (DATA took none) */
	ST_END_RSET,  /* the reply to the RSET that ends a probe */
	ST_QUIT,      /* the reply to QUIT, then the session is freed */
	ST_DEAD,      /* nothing: the connection is unusable */
};

struct smtp_session {
	struct smtp_conn *conn;
	enum smtp_state st; /* written by enter() only */
	smtp_cb cb;
	void *arg;
	int note; /* the enum smtp_event the posted event delivers, 0 = none */
	void (*gone)(void *);
	void *gone_arg;

	/* Settings. */
	int lmtp, policy, connect_timeout, command_timeout, data_timeout;
	char helo[256], peer[256], ca_file[1024];
	char relay[300];

	struct smtp_caps caps;
	int dirty; /* a transaction was begun and not finished: RSET */
	struct smtp_reply rp;
	int fail_code;
	char fail_text[700];

	/* The transaction. */
	const struct smtp_message *m;
	struct smtp_rcpts rc; /* the recipients' answers; rc.next: whose RCPT is next */
	int pipe;             /* PIPELINING: the envelope was sent in one write */
	int mail_failed;      /* MAIL was refused; pipelined replies still come */
	struct smtp_body body;
};

enum smtp_timeout { T_NONE, T_CONNECT, T_COMMAND, T_DATA, T_QUIT };

static void reply_greeting(struct smtp_session *s);
static void reply_ehlo(struct smtp_session *s);
static void reply_helo(struct smtp_session *s);
static void reply_starttls(struct smtp_session *s);
static void reply_rset(struct smtp_session *s);
static void reply_mail(struct smtp_session *s);
static void reply_rcpt(struct smtp_session *s);
static void reply_data(struct smtp_session *s);
static void reply_dot(struct smtp_session *s);
static void reply_empty_dot(struct smtp_session *s);
static void reply_end_rset(struct smtp_session *s);
static void reply_quit(struct smtp_session *s);

/* Per state: its reply's handler (NULL: no reply is due), its timeout,
 * whether it is part of a transaction's envelope, and where a failure
 * happened ("after MAIL FROM"; NULL: EHLO's or LHLO's). */
static const struct state {
	void (*reply)(struct smtp_session *s);
	enum smtp_timeout timeout;
	int envelope;
	const char *what;
} states[] = {
    [ST_CONNECT] = {NULL, T_CONNECT, 0, "connecting"},
    [ST_GREETING] = {reply_greeting, T_COMMAND, 0, "waiting for the greeting"},
    [ST_EHLO] = {reply_ehlo, T_COMMAND, 0, NULL},
    [ST_HELO] = {reply_helo, T_COMMAND, 0, "after HELO"},
    [ST_STARTTLS] = {reply_starttls, T_COMMAND, 0, "after STARTTLS"},
    [ST_TLS] = {NULL, T_COMMAND, 0, "in the TLS handshake"},
    [ST_EHLO_TLS] = {reply_ehlo, T_COMMAND, 0, NULL},
    [ST_IDLE] = {NULL, T_NONE, 0, "while idle"},
    [ST_RSET] = {reply_rset, T_COMMAND, 1, "after RSET"},
    [ST_MAIL] = {reply_mail, T_COMMAND, 1, "after MAIL FROM"},
    [ST_RCPT] = {reply_rcpt, T_COMMAND, 1, "after RCPT TO"},
    [ST_DATA] = {reply_data, T_COMMAND, 1, "after DATA"},
    [ST_BODY] = {NULL, T_COMMAND, 0, "sending the message"},
    [ST_DOT] = {reply_dot, T_DATA, 0, "after the final dot"},
    [ST_EMPTY_DOT] = {reply_empty_dot, T_DATA, 0, "after the final dot"},
    [ST_END_RSET] = {reply_end_rset, T_COMMAND, 1, "after RSET"},
    [ST_QUIT] = {reply_quit, T_QUIT, 0, "while idle"},
    [ST_DEAD] = {NULL, T_NONE, 0, "while idle"},
};

/* ---- states, timers, notifications ---- */

/* (Re)start the timeout of the current state. */
static void rearm(struct smtp_session *s)
{
	switch (states[s->st].timeout) {
	case T_NONE:
		smtp_conn_disarm(s->conn);
		return;
	case T_CONNECT:
		smtp_conn_arm(s->conn, s->connect_timeout);
		return;
	case T_COMMAND:
		smtp_conn_arm(s->conn, s->command_timeout);
		return;
	case T_DATA:
		smtp_conn_arm(s->conn, s->data_timeout);
		return;
	case T_QUIT:
		smtp_conn_arm(s->conn, SMTP_QUIT_TIMEOUT);
		return;
	}
}

/* The one place the state changes. */
static void enter(struct smtp_session *s, enum smtp_state st)
{
	s->st = st;
	if (st == ST_DEAD)
		smtp_conn_stop(s->conn); /* no more events */
	else
		rearm(s);
}

static const char *state_what(const struct smtp_session *s)
{
	const char *w = states[s->st].what;
	return w ? w : s->lmtp ? "after LHLO" : "after EHLO";
}

/* Tell the owner ev, from the loop (never from inside the caller). */
static void notify(struct smtp_session *s, enum smtp_event ev)
{
	s->note = (int)ev;
	smtp_conn_post(s->conn);
}

static void on_posted(void *arg)
{
	struct smtp_session *s = arg;
	int ev = s->note;
	s->note = 0;
	if (ev && s->cb)
		s->cb(s, (enum smtp_event)ev, s->arg); /* may free s */
}

/* ---- outcomes ---- */

/* The session failed as a whole. */
static void fail(struct smtp_session *s, int code, const char *text)
{
	s->fail_code = code;
	strlcpy_tmx(s->fail_text, text, sizeof(s->fail_text));
	enter(s, ST_DEAD);
	notify(s, SMTP_FAILED);
}

/* A failure of ours: "451 4.4.2 relay: what". */
static void fail_local(struct smtp_session *s, int code, const char *enh, const char *what)
{
	char t[700];
	smtp_local_reply(t, sizeof(t), code, enh, "%s: %s", s->relay, what);
	fail(s, code, t);
}

/* A server reply that ends the session's use for this message: its own
 * text first (so its RFC 3463 code is the one reported), then where. */
static void fail_reply(struct smtp_session *s, const char *when)
{
	char t[700];
	int code = s->rp.code >= 400 ? s->rp.code : 451;
	snprintf(t, sizeof(t), "%.380s (%.250s %s)", s->rp.text, s->relay, when);
	fail(s, code, t);
}

/* The transaction is over (SMTP_DONE); the session idles if alive. */
static void done(struct smtp_session *s)
{
	if (s->st != ST_DEAD)
		enter(s, ST_IDLE);
	notify(s, SMTP_DONE);
}

/* The connection broke, or a timeout (timed_out) passed. */
static void net_fail(struct smtp_session *s, int timed_out, int err)
{
	char what[300], t[700];
	enum smtp_state st = s->st;
	if (st == ST_QUIT || st == ST_DEAD)
		return;
	if (st == ST_CONNECT) {
		snprintf(what, sizeof(what), "connect: %s",
		         timed_out ? "timed out"
		         : err     ? strerror(err)
		                   : "connection failed");
		fail_local(s, 451, "4.4.1", what);
		return;
	}
	if (timed_out)
		snprintf(what, sizeof(what), "timed out %s", state_what(s));
	else if (err)
		snprintf(what, sizeof(what), "%s %s", strerror(err), state_what(s));
	else
		snprintf(what, sizeof(what), "connection closed %s", state_what(s));
	if (st == ST_IDLE) {
		enter(s, ST_DEAD);
		if (s->note == 0)
			notify(s, SMTP_CLOSED);
		return;
	}
	if (states[st].envelope || st == ST_BODY || st == ST_DOT || st == ST_EMPTY_DOT) {
		/* Recipients not yet answered are deferred, never assumed
		 * delivered. After the final dot went out unanswered, the
		 * message may have arrived: a retry may duplicate it (RFC
		 * 1047), the safe side. */
		if (states[st].envelope && !rcpts_any_decided(&s->rc)) {
			fail_local(s, 451, "4.4.2", what);
			return;
		}
		smtp_local_reply(t, sizeof(t), 451, "4.4.2", "%s: %s", s->relay, what);
		rcpts_fill(&s->rc, 451, t);
		enter(s, ST_DEAD);
		done(s);
		return;
	}
	fail_local(s, 451, "4.4.2", what);
}

/* ---- opening ---- */

static void ready(struct smtp_session *s)
{
	enter(s, ST_IDLE);
	notify(s, SMTP_READY);
}

static void send_hello(struct smtp_session *s, enum smtp_state st)
{
	smtp_conn_printf(s->conn, "%s %s\r\n",
	                 st == ST_HELO ? "HELO"
	                 : s->lmtp     ? "LHLO"
	                               : "EHLO",
	                 s->helo);
	enter(s, st);
}

static void reply_greeting(struct smtp_session *s)
{
	if (s->rp.code != 220) {
		fail_reply(s, "greeting");
		return;
	}
	send_hello(s, ST_EHLO);
}

static void no_tls_offered(struct smtp_session *s)
{
	fail_local(s, 451, "4.7.4", "TLS is required but the server does not offer STARTTLS");
}

static void reply_ehlo(struct smtp_session *s)
{
	struct smtp_reply *rp = &s->rp;
	if (rp->code == 250) {
		smtp_caps_parse(rp->ext, &s->caps);
		if (s->st == ST_EHLO_TLS) {
			ready(s);
		} else if (s->policy != TLS_POLICY_NONE && s->caps.starttls) {
			smtp_conn_printf(s->conn, "STARTTLS\r\n");
			enter(s, ST_STARTTLS);
		} else if (s->policy >= TLS_POLICY_ENCRYPT) {
			no_tls_offered(s);
		} else {
			ready(s);
		}
		return;
	}
	if (s->lmtp || rp->code < 500 || s->st == ST_EHLO_TLS) {
		fail_reply(s, state_what(s));
		return;
	}
	/* RFC 5321 3.2: a server that refuses EHLO (5xx: does not know it)
	 * gets HELO; a 4xx is a trouble of the host. */
	send_hello(s, ST_HELO);
}

static void reply_helo(struct smtp_session *s)
{
	if (s->rp.code != 250) {
		fail_reply(s, "after HELO");
		return;
	}
	memset(&s->caps, 0, sizeof(s->caps));
	if (s->policy >= TLS_POLICY_ENCRYPT) {
		no_tls_offered(s);
		return;
	}
	ready(s);
}

static void reply_starttls(struct smtp_session *s)
{
	char why[600];
	if (s->rp.code == 220) {
		if (smtp_conn_start_tls(s->conn, s->policy == TLS_POLICY_VERIFY, s->ca_file,
		                        s->peer, why, sizeof(why)) < 0) {
			fail_local(s, 451, "4.7.5", why);
			return;
		}
		enter(s, ST_TLS);
	} else if (s->policy >= TLS_POLICY_ENCRYPT) {
		snprintf(why, sizeof(why), "STARTTLS refused: %s", s->rp.text);
		fail_local(s, 451, "4.7.4", why);
	} else {
		ready(s); /* "may": on without TLS */
	}
}

/* ---- the transaction ---- */

/* Write the command whose reply state st waits for. */
static void send_command(struct smtp_session *s, enum smtp_state st, size_t rcpt)
{
	const struct smtp_message *m = s->m;
	char params[64] = "";
	switch (st) {
	case ST_RSET:
	case ST_END_RSET:
		smtp_conn_printf(s->conn, "RSET\r\n");
		return;
	case ST_MAIL:
		if (s->caps.size && !m->probe)
			snprintf(params, sizeof(params), " SIZE=%llu",
			         (unsigned long long)(m->size + m->headlen));
		/* UTF-8 headers are 8-bit data, and RFC 6531 3.1 has every
		 * SMTPUTF8 server offer 8BITMIME. */
		if (s->caps.eightbit && (m->eightbit || (m->smtputf8 && s->caps.smtputf8)))
			strncat(params, " BODY=8BITMIME", sizeof(params) - strlen(params) - 1);
		if (s->caps.smtputf8 && (m->smtputf8 || m->needs_smtputf8))
			strncat(params, " SMTPUTF8", sizeof(params) - strlen(params) - 1);
		smtp_conn_printf(s->conn, "MAIL FROM:<%s>%s%s\r\n", m->sender, params,
		                 s->caps.dsn && m->dsn_mail ? m->dsn_mail : "");
		return;
	case ST_RCPT: {
		const char *dp = s->caps.dsn && m->dsn_rcpt ? m->dsn_rcpt[rcpt] : NULL;
		smtp_conn_printf(s->conn, "RCPT TO:<%s>%s\r\n", m->rcpts[rcpt], dp ? dp : "");
		return;
	}
	case ST_DATA:
		smtp_conn_printf(s->conn, "DATA\r\n");
		return;
	default:
		fatalx("smtp: no command for state %d", (int)st);
	}
}

/* With PIPELINING the whole envelope goes in one write (RFC 2920 3.1:
 * DATA, or a probe's RSET, last). */
static void send_envelope(struct smtp_session *s)
{
	if (s->dirty)
		send_command(s, ST_RSET, 0);
	send_command(s, ST_MAIL, 0);
	for (size_t i = 0; i < s->m->nrcpt; i++)
		send_command(s, ST_RCPT, i);
	send_command(s, s->m->probe ? ST_END_RSET : ST_DATA, 0);
}

/* The next reply is st's; without PIPELINING its command goes now. */
static void expect(struct smtp_session *s, enum smtp_state st)
{
	if (!s->pipe)
		send_command(s, st, s->rc.next);
	enter(s, st);
}

static void reply_rset(struct smtp_session *s)
{
	if (s->rp.code != 250) {
		fail_reply(s, "after RSET");
		return;
	}
	s->dirty = 0;
	expect(s, ST_MAIL);
}

/* Every RCPT has its reply: DATA next, or the probe's RSET. */
static void rcpts_answered(struct smtp_session *s)
{
	if (s->m->probe) {
		expect(s, ST_END_RSET);
		return;
	}
	if (!s->pipe && s->rc.accepted == 0) {
		/* Nobody to send to: the transaction ends here. */
		done(s);
		return;
	}
	expect(s, ST_DATA);
}

static void reply_mail(struct smtp_session *s)
{
	s->dirty = 1;
	if (s->rp.code != 250) {
		if (s->m->probe) {
			/* The question could not be asked: no recipient's
			 * answer. */
			fail_reply(s, "after MAIL FROM");
			return;
		}
		/* Every recipient shares the sender's fate. With PIPELINING,
		 * the RCPT and DATA replies still come. */
		s->mail_failed = 1;
		rcpts_fill(&s->rc, s->rp.code, s->rp.text);
		if (!s->pipe) {
			done(s);
			return;
		}
	}
	if (s->m->nrcpt == 0)
		rcpts_answered(s);
	else
		expect(s, ST_RCPT);
}

static void reply_rcpt(struct smtp_session *s)
{
	/* A probe's answer is the RCPT reply itself; a message's accepted
	 * recipients get theirs after the dot. */
	if (rcpts_rcpt_reply(&s->rc, s->rp.code, s->rp.text, s->m->probe, !s->mail_failed))
		rcpts_answered(s);
	else
		expect(s, ST_RCPT);
}

/* Refill the output from the spool file; the final dot after the last
 * chunk. */
static void pump(struct smtp_session *s)
{
	char why[300];
	switch (
	    smtp_body_fill(&s->body, smtp_conn_output(s->conn), SMTP_OUT_HIGH, why, sizeof(why))) {
	case SMTP_BODY_MORE:
		/* RFC 5321 4.5.3.2.5: each data block must drain in time. */
		rearm(s);
		return;
	case SMTP_BODY_ERROR:
		rcpts_fill(&s->rc, 451, why);
		enter(s, ST_DEAD);
		done(s);
		return;
	case SMTP_BODY_END:
		break;
	}
	smtp_conn_low_mark(s->conn, 0);
	rcpts_dot_begin(&s->rc);
	enter(s, ST_DOT);
}

static void reply_data(struct smtp_session *s)
{
	int code = s->rp.code;
	if (code == 354 && (s->rc.accepted == 0 || s->mail_failed)) {
		/* Pipelined DATA accepted though no recipient was: end an
		 * empty message and let the server refuse it. */
		evbuffer_add(smtp_conn_output(s->conn), ".\r\n", 3);
		enter(s, ST_EMPTY_DOT);
		return;
	}
	if (code != 354) {
		if (s->rc.accepted > 0 && !s->mail_failed)
			rcpts_fill(&s->rc, code, s->rp.text);
		done(s);
		return;
	}
	enter(s, ST_BODY);
	smtp_body_begin(&s->body, s->m->fd, s->m->body_off, s->m->size);
	smtp_body_head(&s->body, smtp_conn_output(s->conn), s->m->head, s->m->headlen);
	smtp_conn_low_mark(s->conn, SMTP_OUT_LOW);
	pump(s);
}

static void reply_dot(struct smtp_session *s)
{
	if (!rcpts_dot_reply(&s->rc, s->lmtp, s->rp.code, s->rp.text)) {
		rearm(s); /* LMTP: the next recipient's reply is due */
		return;
	}
	s->dirty = 0;
	if (!s->lmtp && s->rp.code == 421)
		enter(s, ST_DEAD);
	done(s);
}

static void reply_empty_dot(struct smtp_session *s)
{
	done(s); /* dirty: the server may not have taken the dot as an end */
}

static void reply_end_rset(struct smtp_session *s)
{
	/* The answers are in: a refused RSET only makes the session unfit
	 * for the next question. */
	if (s->rp.code == 250)
		s->dirty = 0;
	else
		enter(s, ST_DEAD);
	done(s);
}

static void reply_quit(struct smtp_session *s)
{
	smtp_free(s);
}

/* ---- the transition function, and the connection's events ---- */

static void on_reply(struct smtp_session *s)
{
	if (states[s->st].envelope && s->rp.code == 421) {
		/* RFC 5321 3.8: the server is closing; whoever has no answer
		 * yet shares this one. */
		rcpts_fill(&s->rc, 421, s->rp.text);
		enter(s, ST_DEAD);
		done(s);
		return;
	}
	states[s->st].reply(s);
}

static void on_readable(void *arg)
{
	struct smtp_session *s = arg;
	if (s->st == ST_BODY)
		return; /* read after the dot */
	if (s->st == ST_IDLE) {
		/* Nothing is due from an idle server but a 421 before it
		 * closes: either way the session is over. */
		net_fail(s, 0, 0);
		return;
	}
	if (s->st == ST_CONNECT)
		enter(s, ST_GREETING); /* the greeting came before the connect event */
	while (states[s->st].reply) {
		int r = smtp_conn_read_reply(s->conn, &s->rp);
		if (r == 0)
			return;
		if (r < 0) {
			if (s->st == ST_QUIT) {
				smtp_free(s);
				return;
			}
			char what[300];
			if (r == SMTP_CONN_TOO_LONG)
				snprintf(what, sizeof(what), "reply line too long");
			else
				snprintf(what, sizeof(what), "malformed reply %s", state_what(s));
			fail_local(s, 451, "4.5.0", what);
			return;
		}
		enum smtp_state st = s->st;
		on_reply(s);
		if (st == ST_QUIT)
			return; /* freed */
	}
}

static void on_connected(void *arg)
{
	struct smtp_session *s = arg;
	if (s->st == ST_CONNECT) {
		enter(s, ST_GREETING);
		on_readable(s);
	} else if (s->st == ST_TLS) {
		send_hello(s, ST_EHLO_TLS);
	}
}

static void on_drained(void *arg)
{
	struct smtp_session *s = arg;
	if (s->st == ST_BODY)
		pump(s);
	else if (s->st == ST_DOT && s->rc.next == 0)
		rearm(s); /* the last block drained: the reply is due */
}

static void on_broken(void *arg, int err)
{
	struct smtp_session *s = arg;
	if (s->st == ST_QUIT) {
		smtp_free(s);
		return;
	}
	if (s->st == ST_TLS) {
		char why[300];
		smtp_conn_tls_error(s->conn, why, sizeof(why));
		fail_local(s, 451, "4.7.5", why);
		return;
	}
	net_fail(s, 0, err);
}

static void on_timeout(void *arg)
{
	struct smtp_session *s = arg;
	if (s->st == ST_QUIT) {
		smtp_free(s);
		return;
	}
	net_fail(s, 1, 0);
}

static const struct smtp_conn_ops conn_ops = {
    on_connected, on_readable, on_drained, on_broken, on_timeout, on_posted,
};

/* ---- the public side ---- */

struct smtp_session *smtp_open(struct event_base *base, const struct sockaddr *sa, socklen_t len,
                               int connect_timeout, const struct smtp_opts *o, const char *relay,
                               smtp_cb cb, void *arg)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->cb = cb;
	s->arg = arg;
	s->lmtp = o->lmtp;
	s->policy = o->tls_policy;
	s->connect_timeout = connect_timeout;
	s->command_timeout = o->command_timeout;
	s->data_timeout = o->data_timeout;
	strlcpy_tmx(s->helo, o->helo ? o->helo : "localhost", sizeof(s->helo));
	strlcpy_tmx(s->peer, o->peer_name ? o->peer_name : "", sizeof(s->peer));
	strlcpy_tmx(s->ca_file, o->tls_ca_file ? o->tls_ca_file : "", sizeof(s->ca_file));
	strlcpy_tmx(s->relay, relay, sizeof(s->relay));
	smtp_reply_init(&s->rp);
	s->conn = smtp_conn_new(base, &conn_ops, s);
	enter(s, ST_CONNECT);
	if (smtp_conn_connect(s->conn, sa, len) < 0) {
		/* Refused at once (a unix socket that is not there): the
		 * owner still hears of it from the loop. */
		char what[300];
		snprintf(what, sizeof(what), "connect: %s",
		         errno ? strerror(errno) : "connection failed");
		fail_local(s, 451, "4.4.1", what);
	}
	return s;
}

void smtp_send(struct smtp_session *s, const struct smtp_opts *o, const struct smtp_message *m,
               struct smtp_result *res)
{
	s->m = m;
	s->command_timeout = o->command_timeout;
	s->data_timeout = o->data_timeout;
	rcpts_begin(&s->rc, res, m->nrcpt);
	s->mail_failed = 0;
	s->pipe = s->caps.pipelining;
	if (s->st != ST_IDLE) {
		fail_local(s, 451, "4.4.2", "connection closed while idle");
		return;
	}
	if (!m->probe && s->caps.size && s->caps.size_max > 0 && m->size > s->caps.size_max) {
		/* Another host of the destination may take it. */
		char t[700];
		smtp_local_reply(t, sizeof(t), 552, "5.3.4",
		                 "%s: message size %llu exceeds the server's limit %llu", s->relay,
		                 (unsigned long long)m->size, (unsigned long long)s->caps.size_max);
		s->fail_code = 552;
		strlcpy_tmx(s->fail_text, t, sizeof(s->fail_text));
		notify(s, SMTP_FAILED); /* still usable: the caller may QUIT */
		return;
	}
	if (!m->probe && m->needs_smtputf8 && !s->caps.smtputf8) {
		/* RFC 6531 3.2 and 3.5: an internationalised message is never
		 * sent to a server without SMTPUTF8; another host of the
		 * destination may offer it, else it bounces with 5.6.7. */
		char t[700];
		smtp_local_reply(t, sizeof(t), 550, "5.6.7",
		                 "%s: the message needs SMTPUTF8 (UTF-8 addresses or header) and "
		                 "the server does not offer it",
		                 s->relay);
		s->fail_code = 550;
		strlcpy_tmx(s->fail_text, t, sizeof(s->fail_text));
		notify(s, SMTP_FAILED); /* still usable: the caller may QUIT */
		return;
	}
	if (s->pipe)
		send_envelope(s);
	expect(s, s->dirty ? ST_RSET : ST_MAIL);
}

void smtp_set_cb(struct smtp_session *s, smtp_cb cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
}

int smtp_usable(const struct smtp_session *s)
{
	return s->st == ST_IDLE;
}

const char *smtp_relay(const struct smtp_session *s)
{
	return s->relay;
}

int smtp_dsn(const struct smtp_session *s)
{
	return s->caps.dsn;
}

const char *smtp_tls(const struct smtp_session *s)
{
	return smtp_conn_tls(s->conn);
}

int smtp_fail_code(const struct smtp_session *s)
{
	return s->fail_code;
}

const char *smtp_fail_text(const struct smtp_session *s)
{
	return s->fail_text;
}

void smtp_quit(struct smtp_session *s, void (*gone)(void *), void *arg)
{
	s->gone = gone;
	s->gone_arg = arg;
	s->cb = NULL;
	s->note = 0;
	smtp_conn_unpost(s->conn);
	if (!smtp_usable(s)) {
		smtp_free(s);
		return;
	}
	smtp_conn_printf(s->conn, "QUIT\r\n");
	enter(s, ST_QUIT);
}

void smtp_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	void (*gone)(void *) = s->gone;
	void *gone_arg = s->gone_arg;
	smtp_conn_free(s->conn, s->st != ST_DEAD);
	rcpts_free(&s->rc);
	smtp_body_free(&s->body);
	free(s);
	if (gone)
		gone(gone_arg);
}
