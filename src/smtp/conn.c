/*
 * conn.c: the bytes and timers of one outbound SMTP/LMTP session, for
 * client.c, which owns the dialogue: a bufferevent (TCP or a unix
 * socket) with its connect, libevent's OpenSSL filter once STARTTLS is
 * accepted (tls.c builds the SSL), whole replies read line by line
 * (EVBUFFER_EOL_CRLF: CR LF or a bare LF ends a line; proto.c assembles
 * and checks them; a line longer than SMTP_REPLY_LINE_MAX is no reply),
 * one timer, and one event that lets the session tell its owner
 * something from the loop, never from inside the owner's own call.
 * Every event goes up through struct smtp_conn_ops. Loop thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "log.h"
#include "smtp_proto.h"
#include "tls.h"
#include "util.h"

struct smtp_conn {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;
	struct event *post;
	const struct smtp_conn_ops *ops;
	void *arg;
	struct smtp_reply rp; /* the reply being read */
	int tls_started;
	char tls[128];
};

static void on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_conn *c = arg;
	(void)bev;
	c->ops->readable(c->arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_conn *c = arg;
	(void)bev;
	c->ops->drained(c->arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->tls_started)
			tls_client_describe(bufferevent_openssl_get_ssl(bev), c->tls,
			                    sizeof(c->tls));
		c->ops->connected(c->arg);
		return;
	}
	c->ops->broken(c->arg, (what & BEV_EVENT_ERROR) ? EVUTIL_SOCKET_ERROR() : 0);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_conn *c = arg;
	(void)fd;
	(void)what;
	c->ops->timeout(c->arg);
}

static void on_post(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_conn *c = arg;
	(void)fd;
	(void)what;
	c->ops->posted(c->arg);
}

struct smtp_conn *smtp_conn_new(struct event_base *base, const struct smtp_conn_ops *ops, void *arg)
{
	struct smtp_conn *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->ops = ops;
	c->arg = arg;
	smtp_reply_init(&c->rp);
	c->timer = evtimer_new(base, on_timer, c);
	c->post = event_new(base, -1, 0, on_post, c);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->timer == NULL || c->post == NULL || c->bev == NULL)
		fatalx("cannot set up an outbound connection");
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

int smtp_conn_connect(struct smtp_conn *c, const struct sockaddr *sa, socklen_t len)
{
	errno = 0;
	return bufferevent_socket_connect(c->bev, sa, (int)len) < 0 ? -1 : 0;
}

int smtp_conn_start_tls(struct smtp_conn *c, int verify, const char *ca_file, const char *peer,
                        char *why, size_t whylen)
{
	/* RFC 3207 4: anything the server sent before the handshake is not
	 * to be trusted. */
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	smtp_reply_init(&c->rp);
	SSL *ssl = tls_client_new(verify, ca_file, peer, why, whylen);
	if (ssl == NULL)
		return -1;
	struct bufferevent *f = bufferevent_openssl_filter_new(
	    c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		SSL_free(ssl);
		snprintf(why, whylen, "cannot start TLS");
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	c->bev = f;
	c->tls_started = 1;
	bufferevent_setcb(f, on_read, on_write, on_event, c);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	return 0;
}

const char *smtp_conn_tls(const struct smtp_conn *c)
{
	return c->tls;
}

void smtp_conn_tls_error(struct smtp_conn *c, char *why, size_t whylen)
{
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	tls_client_failure(bufferevent_openssl_get_ssl(c->bev), e, why, whylen);
	while (bufferevent_get_openssl_error(c->bev) != 0)
		;
}

void smtp_conn_printf(struct smtp_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

struct evbuffer *smtp_conn_output(struct smtp_conn *c)
{
	return bufferevent_get_output(c->bev);
}

void smtp_conn_low_mark(struct smtp_conn *c, size_t low)
{
	bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
}

int smtp_conn_read_reply(struct smtp_conn *c, struct smtp_reply *rp)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	for (;;) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			return evbuffer_get_length(in) > SMTP_REPLY_LINE_MAX ? SMTP_CONN_TOO_LONG
			                                                     : 0;
		}
		int r = n <= SMTP_REPLY_LINE_MAX ? smtp_reply_line(&c->rp, line, n) : -1;
		free(line);
		if (r < 0)
			return SMTP_CONN_MALFORMED;
		if (r == 1) {
			*rp = c->rp;
			smtp_reply_init(&c->rp);
			return 1;
		}
	}
}

void smtp_conn_arm(struct smtp_conn *c, int secs)
{
	struct timeval tv = {secs > 0 ? secs : 1, 0};
	evtimer_add(c->timer, &tv);
}

void smtp_conn_disarm(struct smtp_conn *c)
{
	evtimer_del(c->timer);
}

void smtp_conn_post(struct smtp_conn *c)
{
	evtimer_del(c->timer);
	event_active(c->post, EV_TIMEOUT, 1);
}

void smtp_conn_unpost(struct smtp_conn *c)
{
	event_del(c->post);
}

void smtp_conn_stop(struct smtp_conn *c)
{
	evtimer_del(c->timer);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
}

void smtp_conn_free(struct smtp_conn *c, int close_tls)
{
	if (c == NULL)
		return;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl && close_tls)
		SSL_shutdown(ssl); /* close_notify, best effort */
	bufferevent_free(c->bev);
	ERR_clear_error();
	event_free(c->timer);
	event_free(c->post);
	free(c);
}
