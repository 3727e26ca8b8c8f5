/*
 * dnsloop.c: a c-ares channel whose sockets and timeouts are events of a
 * libevent base (see dnsloop.h).
 *
 * c-ares tells us through the socket state callback which sockets it
 * wants watched and for what; each becomes a persistent event, replaced
 * when the interest changes. One timer follows ares_timeout() and is
 * re-armed after every piece of work, so retries and timeouts happen
 * without anyone polling. Used by the delivery child (MX, addresses) and
 * the smtpd child (reverse DNS), each in its loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <event2/event.h>

#include "dnsloop.h"
#include "log.h"
#include "util.h"

static int dnsloop_init_status = -1;

int dnsloop_init(void)
{
	if (dnsloop_init_status != ARES_SUCCESS)
		dnsloop_init_status = ares_library_init(ARES_LIB_INIT_ALL);
	return dnsloop_init_status == ARES_SUCCESS ? 0 : -1;
}

struct dnsloop_sock {
	ares_socket_t fd;
	short what;
	struct event *ev;
	struct dnsloop_sock *next;
};

struct dnsloop {
	struct event_base *base;
	ares_channel ch;
	char *servers;
	struct dnsloop_sock *socks;
	struct event *timer;
	int destroying;
};

void dnsloop_rearm(struct dnsloop *l)
{
	struct timeval tv;
	if (l->destroying)
		return;
	if (ares_timeout(l->ch, NULL, &tv) != NULL)
		evtimer_add(l->timer, &tv);
	else
		evtimer_del(l->timer);
}

static void dnsloop_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct dnsloop *l = arg;
	ares_process_fd(l->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	                (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dnsloop_rearm(l);
}

static void dnsloop_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dnsloop *l = arg;
	(void)fd;
	(void)what;
	ares_process_fd(l->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dnsloop_rearm(l);
}

/* c-ares opens, closes or changes interest in a socket. */
static void dnsloop_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dnsloop *l = data;
	struct dnsloop_sock **pp = &l->socks, *s;
	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	s = *pp;
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	if (s && (what == 0 || what != s->what)) {
		event_free(s->ev);
		*pp = s->next;
		free(s);
		s = NULL;
	}
	if (what == 0 || s != NULL || l->destroying)
		return;
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->what = what;
	s->ev = event_new(l->base, fd, what | EV_PERSIST, dnsloop_on_sock, l);
	if (s->ev == NULL || event_add(s->ev, NULL) < 0)
		fatalx("cannot add a resolver event");
	s->next = l->socks;
	l->socks = s;
}

struct dnsloop *dnsloop_new(struct event_base *base, const char *servers, int timeout_ms, int tries,
                            char *err, size_t errlen)
{
	struct ares_options o;
	if (dnsloop_init() < 0) {
		snprintf(err, errlen, "cannot initialise the resolver");
		return NULL;
	}
	struct dnsloop *l = xcalloc(1, sizeof(*l));
	l->base = base;
	memset(&o, 0, sizeof(o));
	o.timeout = timeout_ms;
	o.tries = tries;
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.sock_state_cb = dnsloop_sock_state;
	o.sock_state_cb_data = l;
	int rc = ares_init_options(&l->ch, &o,
	                           ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
	                               ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(rc));
		free(l);
		return NULL;
	}
	if (servers && *servers) {
		rc = ares_set_servers_ports_csv(l->ch, servers);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "dns_servers '%s': %s", servers, ares_strerror(rc));
			ares_destroy(l->ch);
			free(l);
			return NULL;
		}
	}
	l->servers = xstrdup(servers ? servers : "");
	l->timer = evtimer_new(base, dnsloop_on_timer, l);
	if (l->timer == NULL)
		fatalx("cannot add the resolver timer");
	return l;
}

ares_channel dnsloop_channel(struct dnsloop *l)
{
	return l->ch;
}

const char *dnsloop_servers(const struct dnsloop *l)
{
	return l->servers;
}

void dnsloop_free(struct dnsloop *l)
{
	if (l == NULL)
		return;
	l->destroying = 1;
	ares_destroy(l->ch);
	while (l->socks) {
		struct dnsloop_sock *s = l->socks;
		l->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	event_free(l->timer);
	free(l->servers);
	free(l);
}
