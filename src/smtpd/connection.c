/*
 * connection.c: the transport under a session: the socket's bufferevent,
 * the session timer, the switch to TLS after STARTTLS, closing and
 * lingering.
 *
 * One timer per session; what it means follows the state: command or
 * data timeout, TLS handshake timeout, greeting pause, flush deadline,
 * linger deadline, deferred free.
 *
 * Closing: the final reply is flushed, then the write side is shut down
 * and input is read and discarded for a short while before close(), so
 * that unread client data does not make the kernel reset the connection
 * and destroy the reply in flight. Freeing is always deferred to a timer
 * callback so no bufferevent (nor its SSL) is freed from inside its own
 * callback.
 *
 * Calls go one way: session.c (the session's life cycle and dialogue)
 * calls the functions of connection.h; what happens on the socket goes
 * back up only through the callbacks session.c gave (struct
 * connection_ops). This file knows nothing of struct session, the SMTP
 * phases or the message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "connection.h"
#include "log.h"
#include "smtpd.h"
#include "tls.h"
#include "util.h"

static void on_timer(evutil_socket_t fd, short what, void *arg);
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* Timers: one per session; its meaning follows the state. */

void connection_timer(struct connection *c, int64_t seconds)
{
	struct timeval tv = {.tv_sec = (time_t)seconds, .tv_usec = 0};
	evtimer_del(c->timer);
	evtimer_add(c->timer, &tv);
}

void connection_timer_usec(struct connection *c, int64_t usec)
{
	struct timeval tv = {.tv_sec = (time_t)(usec / 1000000),
	                     .tv_usec = (suseconds_t)(usec % 1000000)};
	evtimer_del(c->timer);
	evtimer_add(c->timer, &tv);
}

void connection_timer_stop(struct connection *c)
{
	evtimer_del(c->timer);
}

/* Queue the final reply, then flush, shut down and linger. */
void connection_close(struct connection *c)
{
	if (connection_ending(c))
		return;
	c->io = IO_CLOSING;
	if (c->bev == NULL) {
		connection_kill(c);
		return;
	}
	evbuffer_drain(bufferevent_get_input(c->bev),
	               evbuffer_get_length(bufferevent_get_input(c->bev)));
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		connection_timer(c, 0);
	else
		connection_timer(c, SESSION_FLUSH_TIMEOUT);
}

/* TLS: switch the socket once the 220 is out, then start over. */

static void connection_setup_bev(struct connection *c)
{
	const struct config *cf = c->srv->rt->cf;
	struct timeval wt = {.tv_sec = (time_t)cf->command_timeout, .tv_usec = 0};
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SESSION_INPUT_MAX);
	/* A client that stops reading our replies is cut off. */
	bufferevent_set_timeouts(c->bev, NULL, &wt);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void connection_tls_prepare(struct connection *c)
{
	c->io = IO_STARTTLS;
	/* RFC 3207 4.2 and CVE-2011-0411: nothing the client sent after
	 * STARTTLS in the clear may be taken as a command. Drop it, and read
	 * nothing more on the plain socket: what follows belongs to TLS. */
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t junk = evbuffer_get_length(in);
	if (junk > 0) {
		log_info("%s[%s]:%u: discarded %zu octets sent after STARTTLS", c->name, c->addr,
		         c->port, junk);
		evbuffer_drain(in, junk);
	}
	bufferevent_disable(c->bev, EV_READ);
	c->ops->arm(c->arg);
}

static void connection_tls_switch(struct connection *c)
{
	bufferevent_free(c->bev);
	c->bev = tls_start(c->srv->base, c->srv->tls_ctx, c->fd);
	if (c->bev == NULL) {
		char err[256];
		tls_error(NULL, err, sizeof(err));
		log_warnx("STARTTLS from %s[%s]:%u: cannot start TLS: %s", c->name, c->addr,
		          c->port, err);
		connection_kill(c);
		return;
	}
	c->bev_tls = 1;
	c->io = IO_TLS;
	connection_setup_bev(c);
	c->ops->arm(c->arg);
}

static void connection_tls_done(struct connection *c)
{
	c->tls_done = 1;
	c->io = IO_OPEN;
	c->ops->tls_started(c->arg);
}

/* Teardown. */

void connection_free(struct connection *c)
{
	if (c->linger)
		event_free(c->linger);
	if (c->bev) {
		if (c->bev_tls)
			tls_free(c->bev, 0);
		else
			bufferevent_free(c->bev);
	}
	if (c->fd >= 0)
		close(c->fd);
	event_free(c->timer);
}

/* Stop all I/O now and free from the next loop iteration. */
void connection_kill(struct connection *c)
{
	if (c->io == IO_DEAD)
		return;
	c->io = IO_DEAD;
	c->ops->killed(c->arg);
	if (c->bev) {
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	}
	if (c->linger)
		event_del(c->linger);
	connection_timer(c, 0);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct connection *c = arg;
	char buf[2048];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* FIN or error: done */
	}
	connection_kill(c);
}

/* The last reply is out: stop sending, then read until the client
 * closes (see the header comment), at most SESSION_LINGER_TIMEOUT. */
static void connection_linger(struct connection *c)
{
	if (c->bev) {
		if (c->bev_tls)
			tls_free(c->bev, c->tls_done);
		else
			bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->io = IO_LINGER;
	if (shutdown(c->fd, SHUT_WR) != 0) {
		connection_kill(c);
		return;
	}
	c->linger = event_new(c->srv->base, c->fd, EV_READ | EV_PERSIST, on_linger, c);
	if (c->linger == NULL || event_add(c->linger, NULL) != 0)
		fatalx("session: cannot add the linger event");
	connection_timer(c, SESSION_LINGER_TIMEOUT);
}

/* Callbacks. */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct connection *c = arg;
	size_t unsent = c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
	switch (c->io) {
	case IO_OPEN:
		/* What a timer means in the dialogue is the dialogue's. */
		c->ops->timeout(c->arg);
		break;
	case IO_STARTTLS:
		if (unsent == 0) {
			connection_tls_switch(c);
		} else {
			log_info("timeout sending the STARTTLS reply to %s[%s]:%u", c->name,
			         c->addr, c->port);
			connection_kill(c);
		}
		break;
	case IO_TLS:
		log_info("TLS handshake timeout from %s[%s]:%u", c->name, c->addr, c->port);
		connection_kill(c);
		break;
	case IO_CLOSING:
		if (unsent == 0)
			connection_linger(c);
		else
			connection_kill(c);
		break;
	case IO_LINGER:
		connection_kill(c);
		break;
	case IO_DEAD:
		c->ops->dead(c->arg);
		break;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct connection *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	c->last_read_usec = mono_usec();
	if (c->io == IO_OPEN)
		c->ops->input(c->arg);
	else if (c->io == IO_CLOSING)
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct connection *c = arg;
	c->last_flush_usec = mono_usec();
	c->ops->flushed(c->arg);
	if (c->io == IO_CLOSING || c->io == IO_STARTTLS)
		/* Continue from the timer, outside this bufferevent. */
		connection_timer(c, 0);
	else if (c->io == IO_OPEN)
		c->ops->drained(c->arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct connection *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->io == IO_TLS)
			connection_tls_done(c);
		return;
	}
	int eof = (what & BEV_EVENT_EOF) != 0;
	c->ops->ending(c->arg);
	if (c->io == IO_TLS) {
		char err[256];
		tls_error(bev, err, sizeof(err));
		log_info("TLS handshake failed from %s[%s]:%u: %s", c->name, c->addr, c->port,
		         eof ? "connection closed" : err);
		connection_kill(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("timeout sending to %s[%s]:%u", c->name, c->addr, c->port);
		connection_kill(c);
		return;
	}
	if (eof && c->io == IO_CLOSING) {
		/* The client half-closed after its last command (QUIT, often):
		 * it still reads, so the final reply goes out as planned. */
		return;
	}
	/* What a half close means depends on the dialogue. */
	if (eof && c->io == IO_OPEN && c->ops->peer_closed(c->arg))
		return;
	if (!connection_ending(c))
		c->ops->lost(c->arg);
	connection_kill(c);
}

/* Life cycle: session.c makes and frees the session around it. */

void connection_init(struct connection *c, struct smtpd *srv, int fd,
                     const struct connection_ops *ops, void *arg, const char *name,
                     const char *addr, unsigned port)
{
	c->ops = ops;
	c->arg = arg;
	c->srv = srv;
	c->io = IO_OPEN;
	c->fd = fd;
	c->name = name;
	c->addr = addr;
	c->port = port;
	c->timer = evtimer_new(srv->base, on_timer, c);
	c->bev = bufferevent_socket_new(srv->base, fd, 0);
	if (c->timer == NULL || c->bev == NULL)
		fatalx("session: cannot allocate events");
	connection_setup_bev(c);
}
