/*
 * smtp_client.c: outbound SMTP (RFC 5321) and LMTP (RFC 2033) sessions,
 * each an explicit state machine on a bufferevent of the delivery loop.
 *
 * Opening: connect (smtp_connect_timeout), greeting, EHLO or LHLO (HELO
 * when an SMTP server refuses EHLO with 5xx: RFC 5321 3.2), STARTTLS per
 * tls_policy under libevent's OpenSSL filter (tls_client.c builds the
 * SSL), and EHLO again after TLS (RFC 3207 4.2). Then the session idles
 * until smtp_send() runs a transaction (smtp_xact.c), and ends with QUIT.
 * This file owns the connection: the bufferevent callbacks read the
 * replies and hand each one to the state it belongs to.
 *
 * Timeouts (RFC 5321 4.5.3.2): smtp_command_timeout for every reply but
 * the last and for each data block to drain, smtp_data_timeout for the
 * reply to the final dot. Failures that are not the server's replies get
 * RFC 3463 codes: 4.4.1 no connection, 4.4.2 the connection broke or
 * timed out, 4.7.4 TLS required but not offered, 4.7.5 TLS failed.
 *
 * The owner (remote.c) hears of every outcome through its callback, run
 * from an event of the session's own, so the owner may free the session
 * or start the next transaction from the callback. Loop thread only.
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

#include "smtp_client.h"
#include "smtp_proto.h"
#include "smtp_session.h"
#include "tls_client.h"
#include "log.h"
#include "util.h"

/* Seconds to wait for the reply to QUIT. */
#define SMTP_QUIT_TIMEOUT 5

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

/* Tell the owner, from the loop. */
void sess_notify(struct smtp_session *s, enum smtp_event ev)
{
	s->note = (int)ev;
	evtimer_del(s->timer);
	event_active(s->notify, EV_TIMEOUT, 1);
}

void sess_arm(struct smtp_session *s, int secs)
{
	struct timeval tv = {secs > 0 ? secs : 1, 0};
	evtimer_add(s->timer, &tv);
}

void sess_printf(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
}

void sess_kill(struct smtp_session *s)
{
	s->dead = 1;
	s->st = ST_DEAD;
	evtimer_del(s->timer);
	if (s->bev)
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
}

/* The session failed as a whole. */
static void fail(struct smtp_session *s, int code, const char *text)
{
	s->fail_code = code;
	strlcpy_tmx(s->fail_text, text, sizeof(s->fail_text));
	sess_kill(s);
	sess_notify(s, SMTP_FAILED);
}

void sess_fail_local(struct smtp_session *s, int code, const char *enh, const char *what)
{
	char t[700];
	smtp_local_reply(t, sizeof(t), code, enh, "%s: %s", s->relay, what);
	fail(s, code, t);
}

/* A server reply that ends the session's use for this message: its own
 * text first (so its RFC 3463 code is the one reported), then where. */
void sess_fail_reply(struct smtp_session *s, const char *when)
{
	char t[700];
	int code = s->rp.code >= 400 ? s->rp.code : 451;
	snprintf(t, sizeof(t), "%.380s (%.250s %s)", s->rp.text, s->relay, when);
	fail(s, code, t);
}

void sess_fill_undecided(struct smtp_session *s, int code, const char *text)
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

void sess_done(struct smtp_session *s)
{
	if (!s->dead)
		s->st = ST_IDLE;
	sess_notify(s, SMTP_DONE);
}

static const char *state_what(const struct smtp_session *s)
{
	switch (s->st) {
	case ST_CONNECT:
		return "connecting";
	case ST_GREETING:
		return "waiting for the greeting";
	case ST_EHLO:
	case ST_EHLO2:
		return s->lmtp ? "after LHLO" : "after EHLO";
	case ST_HELO:
		return "after HELO";
	case ST_STARTTLS:
		return "after STARTTLS";
	case ST_TLS:
		return "in the TLS handshake";
	case ST_XACT:
		if (s->answered < s->rset)
			return "after RSET";
		if (s->answered == s->rset)
			return "after MAIL FROM";
		return s->answered <= s->rset + s->m->nrcpt ? "after RCPT TO" : "after DATA";
	case ST_BODY:
		return "sending the message";
	case ST_DOT:
	case ST_EMPTY:
		return "after the final dot";
	default:
		return "while idle";
	}
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
		sess_fail_local(s, 451, "4.4.1", what);
		return;
	}
	if (timed_out)
		snprintf(what, sizeof(what), "timed out %s", state_what(s));
	else if (err)
		snprintf(what, sizeof(what), "%s %s", strerror(err), state_what(s));
	else
		snprintf(what, sizeof(what), "connection closed %s", state_what(s));
	if (st == ST_IDLE) {
		sess_kill(s);
		if (s->note == 0)
			sess_notify(s, SMTP_CLOSED);
		return;
	}
	if (st == ST_XACT || st == ST_BODY || st == ST_DOT || st == ST_EMPTY) {
		/* Recipients not yet answered are deferred, never assumed
		 * delivered. After the final dot went out unanswered, the
		 * message may have arrived: a retry may duplicate it (RFC
		 * 1047), the safe side. */
		if (st == ST_XACT && !any_decided(s)) {
			sess_fail_local(s, 451, "4.4.2", what);
			return;
		}
		smtp_local_reply(t, sizeof(t), 451, "4.4.2", "%s: %s", s->relay, what);
		sess_fill_undecided(s, 451, t);
		sess_kill(s);
		sess_done(s);
		return;
	}
	sess_fail_local(s, 451, "4.4.2", what);
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

static void ready(struct smtp_session *s)
{
	s->st = ST_IDLE;
	sess_notify(s, SMTP_READY);
}

static void send_hello(struct smtp_session *s, enum smtp_state st)
{
	sess_printf(s, "%s %s\r\n", st == ST_HELO ? "HELO" : s->lmtp ? "LHLO" : "EHLO", s->helo);
	s->st = st;
	sess_arm(s, s->command_timeout);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

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
		sess_fail_local(s, 451, "4.7.5", err);
		return;
	}
	struct bufferevent *f = bufferevent_openssl_filter_new(
	    s->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		SSL_free(ssl);
		sess_fail_local(s, 451, "4.7.5", "cannot start TLS");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	s->bev = f;
	bufferevent_setcb(f, on_read, on_write, on_event, s);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	s->st = ST_TLS;
	sess_arm(s, s->command_timeout);
}

/* ---- replies by state ---- */

static void on_reply(struct smtp_session *s)
{
	struct smtp_reply *rp = &s->rp;
	switch (s->st) {
	case ST_GREETING:
		if (rp->code != 220) {
			sess_fail_reply(s, "greeting");
			return;
		}
		send_hello(s, ST_EHLO);
		return;
	case ST_EHLO:
	case ST_EHLO2:
		if (rp->code == 250) {
			smtp_caps_parse(rp->ext, &s->caps);
			s->esmtp = 1;
			if (s->st == ST_EHLO2) {
				ready(s);
			} else if (s->policy != TLS_POLICY_NONE && s->caps.starttls) {
				sess_printf(s, "STARTTLS\r\n");
				s->st = ST_STARTTLS;
				sess_arm(s, s->command_timeout);
			} else if (s->policy >= TLS_POLICY_ENCRYPT) {
				sess_fail_local(
				    s, 451, "4.7.4",
				    "TLS is required but the server does not offer STARTTLS");
			} else {
				ready(s);
			}
			return;
		}
		if (s->lmtp || rp->code < 500 || s->st == ST_EHLO2) {
			sess_fail_reply(s, s->lmtp ? "after LHLO" : "after EHLO");
			return;
		}
		/* RFC 5321 3.2: a server that refuses EHLO (5xx: does not know
		 * it) gets HELO; a 4xx is a trouble of the host. */
		send_hello(s, ST_HELO);
		return;
	case ST_HELO:
		if (rp->code != 250) {
			sess_fail_reply(s, "after HELO");
			return;
		}
		memset(&s->caps, 0, sizeof(s->caps));
		if (s->policy >= TLS_POLICY_ENCRYPT) {
			sess_fail_local(s, 451, "4.7.4",
			                "TLS is required but the server does not offer STARTTLS");
			return;
		}
		ready(s);
		return;
	case ST_STARTTLS:
		if (rp->code == 220) {
			start_tls(s);
		} else if (s->policy >= TLS_POLICY_ENCRYPT) {
			char what[600];
			snprintf(what, sizeof(what), "STARTTLS refused: %s", rp->text);
			sess_fail_local(s, 451, "4.7.4", what);
		} else {
			ready(s); /* "may": on without TLS */
		}
		return;
	case ST_XACT:
		xact_reply(s);
		return;
	case ST_DOT:
		xact_dot_reply(s);
		return;
	case ST_EMPTY:
		s->dirty = 1;
		sess_done(s);
		return;
	case ST_QUIT:
		smtp_free(s);
		return;
	default:
		return;
	}
}

static int wants_reply(enum smtp_state st)
{
	return st == ST_GREETING || st == ST_EHLO || st == ST_EHLO2 || st == ST_HELO ||
	       st == ST_STARTTLS || st == ST_XACT || st == ST_DOT || st == ST_EMPTY ||
	       st == ST_QUIT;
}

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
				sess_fail_local(s, 451, "4.5.0", "reply line too long");
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
			sess_fail_local(s, 451, "4.5.0", what);
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
		xact_pump(s);
	else if (s->st == ST_DOT && s->lmtp_next == 0)
		sess_arm(s, s->data_timeout); /* the last block drained: the reply is due */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->st == ST_CONNECT) {
			s->st = ST_GREETING;
			sess_arm(s, s->command_timeout);
		} else if (s->st == ST_TLS) {
			SSL *ssl = bufferevent_openssl_get_ssl(bev);
			tls_client_describe(ssl, s->tls, sizeof(s->tls));
			send_hello(s, ST_EHLO2);
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
		sess_fail_local(s, 451, "4.7.5", err);
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
		sess_fail_local(s, 451, "4.4.1", what);
		return s;
	}
	sess_arm(s, connect_timeout);
	return s;
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
	sess_printf(s, "QUIT\r\n");
	smtp_reply_init(&s->rp);
	s->st = ST_QUIT;
	sess_arm(s, SMTP_QUIT_TIMEOUT);
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
	free(s->chunk);
	free(s->stuffed);
	free(s);
	if (gone)
		gone(gone_arg);
}
