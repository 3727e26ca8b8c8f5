/*
 * client.c: the outbound SMTP (RFC 5321) and LMTP (RFC 2033) client, one
 * explicit state machine per session on a bufferevent of the owner's
 * event loop (delivery: deliver/remote.c; recipient verification:
 * smtpd/verify.c).
 *
 * Opening: connect, greeting, EHLO or LHLO (HELO when an SMTP server
 * refuses EHLO with 5xx: RFC 5321 3.2), STARTTLS per tls_policy under
 * libevent's OpenSSL filter (tls.c builds the SSL), and EHLO again after
 * TLS (RFC 3207 4.2). Then the session idles until smtp_send() runs a
 * transaction: RSET first if the last one did not end, MAIL FROM with
 * SIZE= and BODY=8BITMIME when offered, one RCPT per recipient, then DATA
 * and the body (body.c), or for a probe RSET instead of DATA. With
 * PIPELINING (RFC 2920) the envelope goes in one write and the replies
 * are taken in order, else one command per reply. LMTP gets one reply
 * per accepted recipient after the dot (RFC 2033 4.2). QUIT ends it.
 *
 * Each state names the reply the session waits for; on_reply() is the
 * one transition function: it hands a complete reply (proto.c parsed it)
 * to the handler of the current state, which picks the next state.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "body.h"
#include "log.h"
#include "smtp.h"
#include "smtp_proto.h"
#include "tls.h"
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
	ST_BODY,      /* nothing: the message is being sent */
	ST_DOT,       /* the reply (LMTP: replies) to the final dot */
	ST_EMPTY_DOT, /* the reply to the dot of an empty message (DATA took none) */
	ST_END_RSET,  /* the reply to the RSET that ends a probe */
	ST_QUIT,      /* the reply to QUIT, then the session is freed */
	ST_DEAD,      /* nothing: the connection is unusable */
};

struct smtp_session {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;
	struct event *notify;
	enum smtp_state st;
	smtp_cb cb;
	void *arg;
	int note; /* the enum smtp_event notify will deliver, 0 = none */
	void (*gone)(void *);
	void *gone_arg;

	/* Settings. */
	int lmtp, policy, command_timeout, data_timeout;
	char helo[256], peer[256], ca_file[1024];
	char relay[300];
	char tls[128];

	struct smtp_caps caps;
	int dirty; /* a transaction was begun and not finished: RSET */
	int dead;
	struct smtp_reply rp;
	int fail_code;
	char fail_text[700];

	/* The transaction. */
	const struct smtp_message *m;
	struct smtp_result *res;
	char *accepted_v; /* accepted_v[i]: the RCPT of m->rcpts[i] got a 2xx */
	size_t accepted;
	size_t rcpt;      /* ST_RCPT: whose reply is next */
	size_t lmtp_next; /* ST_DOT under LMTP: whose reply is next */
	int pipe;         /* PIPELINING: the envelope was sent in one write */
	int mail_failed;  /* MAIL was refused; pipelined replies still come */
	struct smtp_body body;
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* ---- notifications, timers, output ---- */

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)fd;
	(void)what;
	int ev = s->note;
	s->note = 0;
	if (ev && s->cb)
		s->cb(s, (enum smtp_event)ev, s->arg); /* may free s */
}

/* Tell the owner ev, from the loop (never from inside the caller). */
static void notify(struct smtp_session *s, enum smtp_event ev)
{
	s->note = (int)ev;
	evtimer_del(s->timer);
	event_active(s->notify, EV_TIMEOUT, 1);
}

static void arm(struct smtp_session *s, int secs)
{
	struct timeval tv = {secs > 0 ? secs : 1, 0};
	evtimer_add(s->timer, &tv);
}

static void say(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
}

/* The connection is unusable from now on; no more events. */
static void kill_session(struct smtp_session *s)
{
	s->dead = 1;
	s->st = ST_DEAD;
	evtimer_del(s->timer);
	if (s->bev)
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
}

/* ---- outcomes ---- */

/* The session failed as a whole. */
static void fail(struct smtp_session *s, int code, const char *text)
{
	s->fail_code = code;
	strlcpy_tmx(s->fail_text, text, sizeof(s->fail_text));
	kill_session(s);
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

/* Give every recipient without a code this one. */
static void fill_undecided(struct smtp_session *s, int code, const char *text)
{
	for (size_t i = 0; i < s->m->nrcpt; i++) {
		if (s->res[i].code != 0)
			continue;
		s->res[i].code = code;
		strlcpy_tmx(s->res[i].reply, text, sizeof(s->res[i].reply));
	}
}

static int any_decided(const struct smtp_session *s)
{
	for (size_t i = 0; i < s->m->nrcpt; i++)
		if (s->res[i].code != 0)
			return 1;
	return 0;
}

/* The transaction is over (SMTP_DONE); the session idles if alive. */
static void done(struct smtp_session *s)
{
	if (!s->dead)
		s->st = ST_IDLE;
	notify(s, SMTP_DONE);
}

/* A reply outside 2xx, 4xx, 5xx is no answer a recipient can keep. */
static int result_code(int code)
{
	return code / 100 == 2 || code >= 400 ? code : 451;
}

static void set_result(struct smtp_result *r, int code, const char *text)
{
	r->code = result_code(code);
	strlcpy_tmx(r->reply, text, sizeof(r->reply));
}

static int in_envelope(enum smtp_state st)
{
	return st == ST_RSET || st == ST_MAIL || st == ST_RCPT || st == ST_DATA ||
	       st == ST_END_RSET;
}

static const char *state_what(const struct smtp_session *s)
{
	switch (s->st) {
	case ST_CONNECT:
		return "connecting";
	case ST_GREETING:
		return "waiting for the greeting";
	case ST_EHLO:
	case ST_EHLO_TLS:
		return s->lmtp ? "after LHLO" : "after EHLO";
	case ST_HELO:
		return "after HELO";
	case ST_STARTTLS:
		return "after STARTTLS";
	case ST_TLS:
		return "in the TLS handshake";
	case ST_RSET:
	case ST_END_RSET:
		return "after RSET";
	case ST_MAIL:
		return "after MAIL FROM";
	case ST_RCPT:
		return "after RCPT TO";
	case ST_DATA:
		return "after DATA";
	case ST_BODY:
		return "sending the message";
	case ST_DOT:
	case ST_EMPTY_DOT:
		return "after the final dot";
	case ST_IDLE:
	case ST_QUIT:
	case ST_DEAD:
		break;
	}
	return "while idle";
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
		kill_session(s);
		if (s->note == 0)
			notify(s, SMTP_CLOSED);
		return;
	}
	if (in_envelope(st) || st == ST_BODY || st == ST_DOT || st == ST_EMPTY_DOT) {
		/* Recipients not yet answered are deferred, never assumed
		 * delivered. After the final dot went out unanswered, the
		 * message may have arrived: a retry may duplicate it (RFC
		 * 1047), the safe side. */
		if (in_envelope(st) && !any_decided(s)) {
			fail_local(s, 451, "4.4.2", what);
			return;
		}
		smtp_local_reply(t, sizeof(t), 451, "4.4.2", "%s: %s", s->relay, what);
		fill_undecided(s, 451, t);
		kill_session(s);
		done(s);
		return;
	}
	fail_local(s, 451, "4.4.2", what);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)fd;
	(void)what;
	if (s->st == ST_QUIT) {
		smtp_free(s);
		return;
	}
	net_fail(s, 1, 0);
}

/* ---- opening ---- */

static void ready(struct smtp_session *s)
{
	s->st = ST_IDLE;
	notify(s, SMTP_READY);
}

static void send_hello(struct smtp_session *s, enum smtp_state st)
{
	say(s, "%s %s\r\n", st == ST_HELO ? "HELO" : s->lmtp ? "LHLO" : "EHLO", s->helo);
	s->st = st;
	arm(s, s->command_timeout);
}

static void start_tls(struct smtp_session *s)
{
	char err[300];
	/* RFC 3207 4: anything the server sent before the handshake is not
	 * to be trusted. */
	evbuffer_drain(bufferevent_get_input(s->bev),
	               evbuffer_get_length(bufferevent_get_input(s->bev)));
	SSL *ssl =
	    tls_client_new(s->policy == TLS_POLICY_VERIFY, s->ca_file, s->peer, err, sizeof(err));
	if (ssl == NULL) {
		fail_local(s, 451, "4.7.5", err);
		return;
	}
	struct bufferevent *f = bufferevent_openssl_filter_new(
	    s->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		SSL_free(ssl);
		fail_local(s, 451, "4.7.5", "cannot start TLS");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	s->bev = f;
	bufferevent_setcb(f, on_read, on_write, on_event, s);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	s->st = ST_TLS;
	arm(s, s->command_timeout);
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
			say(s, "STARTTLS\r\n");
			s->st = ST_STARTTLS;
			arm(s, s->command_timeout);
		} else if (s->policy >= TLS_POLICY_ENCRYPT) {
			no_tls_offered(s);
		} else {
			ready(s);
		}
		return;
	}
	if (s->lmtp || rp->code < 500 || s->st == ST_EHLO_TLS) {
		fail_reply(s, s->lmtp ? "after LHLO" : "after EHLO");
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
	if (s->rp.code == 220) {
		start_tls(s);
	} else if (s->policy >= TLS_POLICY_ENCRYPT) {
		char what[600];
		snprintf(what, sizeof(what), "STARTTLS refused: %s", s->rp.text);
		fail_local(s, 451, "4.7.4", what);
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
		say(s, "RSET\r\n");
		return;
	case ST_MAIL:
		if (s->caps.size && !m->probe)
			snprintf(params, sizeof(params), " SIZE=%llu", (unsigned long long)m->size);
		if (s->caps.eightbit && m->eightbit)
			strncat(params, " BODY=8BITMIME", sizeof(params) - strlen(params) - 1);
		say(s, "MAIL FROM:<%s>%s\r\n", m->sender, params);
		return;
	case ST_RCPT:
		say(s, "RCPT TO:<%s>\r\n", m->rcpts[rcpt]);
		return;
	case ST_DATA:
		say(s, "DATA\r\n");
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
	s->st = st;
	if (!s->pipe)
		send_command(s, st, s->rcpt);
	arm(s, s->command_timeout);
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
	if (!s->pipe && s->accepted == 0) {
		/* Nobody to send to: the transaction ends here. */
		s->dirty = 1;
		done(s);
		return;
	}
	expect(s, ST_DATA);
}

static void reply_mail(struct smtp_session *s)
{
	s->dirty = 1;
	s->rcpt = 0;
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
		fill_undecided(s, result_code(s->rp.code), s->rp.text);
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
	size_t k = s->rcpt++;
	int code = s->rp.code;
	if (!s->mail_failed) {
		if (code / 100 == 2) {
			s->accepted_v[k] = 1;
			s->accepted++;
		}
		/* A probe's answer is the RCPT reply itself; a message's
		 * accepted recipients get theirs after the dot. */
		if (code / 100 != 2 || s->m->probe)
			set_result(&s->res[k], code, s->rp.text);
	}
	if (s->rcpt < s->m->nrcpt)
		expect(s, ST_RCPT);
	else
		rcpts_answered(s);
}

static void pump(struct smtp_session *s);

static void reply_data(struct smtp_session *s)
{
	int code = s->rp.code;
	if (code == 354 && (s->accepted == 0 || s->mail_failed)) {
		/* Pipelined DATA accepted though no recipient was: end an
		 * empty message and let the server refuse it. */
		evbuffer_add(bufferevent_get_output(s->bev), ".\r\n", 3);
		s->st = ST_EMPTY_DOT;
		arm(s, s->data_timeout);
		return;
	}
	if (code != 354) {
		if (s->accepted > 0 && !s->mail_failed)
			fill_undecided(s, result_code(code), s->rp.text);
		done(s);
		return;
	}
	s->st = ST_BODY;
	smtp_body_begin(&s->body, s->m->fd, s->m->body_off, s->m->size);
	bufferevent_setwatermark(s->bev, EV_WRITE, SMTP_OUT_LOW, 0);
	pump(s);
}

/* Refill the output from the spool file; the final dot after the last
 * chunk. */
static void pump(struct smtp_session *s)
{
	char why[300];
	switch (smtp_body_fill(&s->body, bufferevent_get_output(s->bev), SMTP_OUT_HIGH, why,
	                       sizeof(why))) {
	case SMTP_BODY_MORE:
		/* RFC 5321 4.5.3.2.5: each data block must drain in time. */
		arm(s, s->command_timeout);
		return;
	case SMTP_BODY_ERROR:
		fill_undecided(s, 451, why);
		kill_session(s);
		done(s);
		return;
	case SMTP_BODY_END:
		break;
	}
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	s->st = ST_DOT;
	s->lmtp_next = 0;
	arm(s, s->data_timeout);
}

static void skip_refused(struct smtp_session *s)
{
	while (s->lmtp_next < s->m->nrcpt && !s->accepted_v[s->lmtp_next])
		s->lmtp_next++;
}

static void reply_dot(struct smtp_session *s)
{
	const struct smtp_message *m = s->m;
	if (!s->lmtp) {
		for (size_t i = 0; i < m->nrcpt; i++)
			if (s->accepted_v[i])
				set_result(&s->res[i], s->rp.code, s->rp.text);
		s->dirty = 0;
		if (s->rp.code == 421)
			kill_session(s);
		done(s);
		return;
	}
	/* RFC 2033 4.2: one reply per accepted recipient, in order. */
	skip_refused(s);
	if (s->lmtp_next < m->nrcpt)
		set_result(&s->res[s->lmtp_next++], s->rp.code, s->rp.text);
	skip_refused(s);
	if (s->lmtp_next >= m->nrcpt) {
		s->dirty = 0;
		done(s);
		return;
	}
	arm(s, s->data_timeout);
}

static void reply_end_rset(struct smtp_session *s)
{
	/* The answers are in: a refused RSET only makes the session
	 * unfit for the next question. */
	if (s->rp.code == 250)
		s->dirty = 0;
	else
		kill_session(s);
	done(s);
}

/* ---- the transition function ---- */

static void on_reply(struct smtp_session *s)
{
	if (in_envelope(s->st) && s->rp.code == 421) {
		/* RFC 5321 3.8: the server is closing; whoever has no answer
		 * yet shares this one. */
		fill_undecided(s, 421, s->rp.text);
		kill_session(s);
		done(s);
		return;
	}
	switch (s->st) {
	case ST_GREETING:
		reply_greeting(s);
		return;
	case ST_EHLO:
	case ST_EHLO_TLS:
		reply_ehlo(s);
		return;
	case ST_HELO:
		reply_helo(s);
		return;
	case ST_STARTTLS:
		reply_starttls(s);
		return;
	case ST_RSET:
		reply_rset(s);
		return;
	case ST_MAIL:
		reply_mail(s);
		return;
	case ST_RCPT:
		reply_rcpt(s);
		return;
	case ST_DATA:
		reply_data(s);
		return;
	case ST_DOT:
		reply_dot(s);
		return;
	case ST_EMPTY_DOT:
		s->dirty = 1;
		done(s);
		return;
	case ST_END_RSET:
		reply_end_rset(s);
		return;
	case ST_QUIT:
		smtp_free(s);
		return;
	case ST_CONNECT:
	case ST_TLS:
	case ST_IDLE:
	case ST_BODY:
	case ST_DEAD:
		return;
	}
}

static int wants_reply(enum smtp_state st)
{
	return st != ST_CONNECT && st != ST_TLS && st != ST_IDLE && st != ST_BODY && st != ST_DEAD;
}

/* ---- the bufferevent callbacks ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	(void)bev;
	if (s->st == ST_BODY)
		return; /* read after the dot */
	if (s->st == ST_IDLE) {
		/* Nothing is due from an idle server but a 421 before it
		 * closes: either way the session is over. */
		net_fail(s, 0, 0);
		return;
	}
	while (wants_reply(s->st)) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTP_REPLY_LINE_MAX)
				fail_local(s, 451, "4.5.0", "reply line too long");
			return;
		}
		int r = n <= SMTP_REPLY_LINE_MAX ? smtp_reply_line(&s->rp, line, n) : -1;
		free(line);
		if (r < 0) {
			if (s->st == ST_QUIT) {
				smtp_free(s);
				return;
			}
			char what[300];
			snprintf(what, sizeof(what), "malformed reply %s", state_what(s));
			fail_local(s, 451, "4.5.0", what);
			return;
		}
		if (r == 1) {
			enum smtp_state st = s->st;
			on_reply(s);
			if (st == ST_QUIT)
				return; /* freed */
			smtp_reply_init(&s->rp);
		}
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	(void)bev;
	if (s->st == ST_BODY)
		pump(s);
	else if (s->st == ST_DOT && s->lmtp_next == 0)
		arm(s, s->data_timeout); /* the last block drained: the reply is due */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->st == ST_CONNECT) {
			s->st = ST_GREETING;
			arm(s, s->command_timeout);
		} else if (s->st == ST_TLS) {
			SSL *ssl = bufferevent_openssl_get_ssl(bev);
			tls_client_describe(ssl, s->tls, sizeof(s->tls));
			send_hello(s, ST_EHLO_TLS);
		}
		return;
	}
	if (s->st == ST_QUIT) {
		smtp_free(s);
		return;
	}
	if (s->st == ST_TLS) {
		char err[300];
		unsigned long e = bufferevent_get_openssl_error(bev);
		tls_client_failure(bufferevent_openssl_get_ssl(bev), e, err, sizeof(err));
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		fail_local(s, 451, "4.7.5", err);
		return;
	}
	net_fail(s, 0, (what & BEV_EVENT_ERROR) ? EVUTIL_SOCKET_ERROR() : 0);
}

/* ---- the public side ---- */

struct smtp_session *smtp_open(struct event_base *base, const struct sockaddr *sa, socklen_t len,
                               int connect_timeout, const struct smtp_opts *o, const char *relay,
                               smtp_cb cb, void *arg)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->cb = cb;
	s->arg = arg;
	s->lmtp = o->lmtp;
	s->policy = o->tls_policy;
	s->command_timeout = o->command_timeout;
	s->data_timeout = o->data_timeout;
	strlcpy_tmx(s->helo, o->helo ? o->helo : "localhost", sizeof(s->helo));
	strlcpy_tmx(s->peer, o->peer_name ? o->peer_name : "", sizeof(s->peer));
	strlcpy_tmx(s->ca_file, o->tls_ca_file ? o->tls_ca_file : "", sizeof(s->ca_file));
	strlcpy_tmx(s->relay, relay, sizeof(s->relay));
	smtp_reply_init(&s->rp);
	s->timer = evtimer_new(base, on_timer, s);
	s->notify = event_new(base, -1, 0, on_notify, s);
	s->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->timer == NULL || s->notify == NULL || s->bev == NULL)
		fatalx("cannot set up an outbound connection");
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->st = ST_CONNECT;
	errno = 0;
	if (bufferevent_socket_connect(s->bev, sa, (int)len) < 0) {
		/* Refused at once (a unix socket that is not there): the
		 * owner still hears of it from the loop. */
		char what[300];
		snprintf(what, sizeof(what), "connect: %s",
		         errno ? strerror(errno) : "connection failed");
		fail_local(s, 451, "4.4.1", what);
		return s;
	}
	arm(s, connect_timeout);
	return s;
}

void smtp_send(struct smtp_session *s, const struct smtp_opts *o, const struct smtp_message *m,
               struct smtp_result *res)
{
	s->m = m;
	s->res = res;
	s->command_timeout = o->command_timeout;
	s->data_timeout = o->data_timeout;
	for (size_t i = 0; i < m->nrcpt; i++)
		res[i].code = 0;
	free(s->accepted_v);
	s->accepted_v = xcalloc(m->nrcpt ? m->nrcpt : 1, 1);
	s->accepted = 0;
	s->mail_failed = 0;
	s->rcpt = 0;
	s->pipe = s->caps.pipelining;
	smtp_reply_init(&s->rp);
	if (s->dead || s->st != ST_IDLE) {
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
	return !s->dead && s->st == ST_IDLE;
}

const char *smtp_relay(const struct smtp_session *s)
{
	return s->relay;
}

const char *smtp_tls(const struct smtp_session *s)
{
	return s->tls;
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
	event_del(s->notify);
	if (!smtp_usable(s)) {
		smtp_free(s);
		return;
	}
	say(s, "QUIT\r\n");
	smtp_reply_init(&s->rp);
	s->st = ST_QUIT;
	arm(s, SMTP_QUIT_TIMEOUT);
}

void smtp_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	void (*gone)(void *) = s->gone;
	void *gone_arg = s->gone_arg;
	if (s->bev) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
		if (ssl && !s->dead)
			SSL_shutdown(ssl); /* close_notify, best effort */
		bufferevent_free(s->bev);
		ERR_clear_error();
	}
	event_free(s->timer);
	event_free(s->notify);
	free(s->accepted_v);
	smtp_body_free(&s->body);
	free(s);
	if (gone)
		gone(gone_arg);
}
