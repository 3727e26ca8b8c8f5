/*
 * server.c: the smtpd child process: listeners, accept, connection
 * limits, signals, and smtpd_main().
 *
 * Owns struct smtpd: the event loop, the spool handle and its commit pool
 * (spool_writers threads that fsync off the loop), the TLS context, and a
 * table of connections per client address for max_connections_per_client.
 * A connection over a limit gets "421 4.7.0 Too many connections" written
 * straight to its fresh socket and is closed; no session is made for it.
 *
 * Signals (handled in the loop): SIGHUP re-reads the configuration with
 * runtime_reload(), which swaps rt->cf's contents in place; sessions never
 * keep pointers into it across callbacks, so new values apply to every
 * check made afterwards and nothing points at freed settings. SIGTERM
 * stops accepting, says 421 to idle sessions, lets those in DATA or
 * waiting for a commit finish within shutdown_grace, then drains the
 * commit pool and returns 0.
 *
 * Called by the master (src/tempomxd/) in the forked child, after it has
 * bound rt->listen_fds and dropped privileges.
 *
 * The top of smtpd: this file calls the others (session_new() for each
 * accepted connection, the init, reload and free of each part) and none
 * calls it; it gives session.c the callback that reports a destroyed
 * session (srv->session_gone) and the message ops of receive.c
 * (srv->msg_ops).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf.h"
#include "log.h"
#include "nofile.h"
#include "slots.h"
#include "gauges.h"
#include "pickup.h"
#include "rdns.h"
#include "receive.h"
#include "recipients.h"
#include "reply.h"
#include "admission.h"
#include "screen.h"
#include "smtpd.h"
#include "spool.h"
#include "stats.h"
#include "tempomx.h"
#include "tls.h"
#include "util.h"
#include "verify.h"

/* Buckets of the per-client table; chains stay short at thousands of
 * connections. */
#define SMTPD_CLIENT_BUCKETS 1024

struct smtpd_listener {
	struct smtpd *srv;
	size_t index; /* into rt->listen_fds and cf->listen.v */
	struct evconnlistener *lev;
	struct event *retry; /* re-enable after running out of descriptors */
};

struct smtpd_client {
	struct smtpd_client *next;
	unsigned n;
	char addr[64];
};

void smtpd_set_observer(struct smtpd *srv, const struct session_observer *obs, void *arg)
{
	srv->obs = obs;
	srv->obs_arg = arg;
}

/* Connections per client address. */

static size_t client_bucket(const struct smtpd *srv, const char *addr)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % srv->nbuckets;
}

static struct smtpd_client *client_get(struct smtpd *srv, const char *addr, int create)
{
	size_t b = client_bucket(srv, addr);
	for (struct smtpd_client *c = srv->clients[b]; c; c = c->next)
		if (strcmp(c->addr, addr) == 0)
			return c;
	if (!create)
		return NULL;
	struct smtpd_client *c = xcalloc(1, sizeof(*c));
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->next = srv->clients[b];
	srv->clients[b] = c;
	return c;
}

static void client_put(struct smtpd *srv, const char *addr)
{
	size_t b = client_bucket(srv, addr);
	for (struct smtpd_client **pp = &srv->clients[b]; *pp; pp = &(*pp)->next) {
		struct smtpd_client *c = *pp;
		if (strcmp(c->addr, addr) != 0)
			continue;
		if (c->n > 0)
			c->n--;
		if (c->n == 0) {
			*pp = c->next;
			free(c);
		}
		return;
	}
	fatalx("smtpd: no connection slot for %s", addr);
}

/* A session was destroyed: release its connection slot (session.c calls
 * it as srv->session_gone). */
static void smtpd_session_gone(struct smtpd *srv, const char *client_addr)
{
	char key[64];
	slots_client_key(srv->rt->cf, client_addr, key, sizeof(key));
	client_put(srv, key);
	if (srv->nsessions == 0)
		fatalx("smtpd: session count underflow");
	srv->nsessions--;
	if (srv->stopping && srv->nsessions == 0)
		event_base_loopbreak(srv->base);
}

/* Accepting. */

/* Over a limit: one reply on the fresh socket (its send buffer is empty,
 * so a non-blocking send of one line cannot fall short), then close. */
static void refuse(int fd)
{
	char buf[REPLY_LINE_MAX];
	size_t n = reply_format(RPL_TOO_MANY_CONN, NULL, buf, sizeof(buf));
	if (send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refusing a connection: send: %s", strerror(errno));
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct smtpd_listener *l = arg;
	struct smtpd *srv = l->srv;
	const struct config *cf = srv->rt->cf;
	char host[64];

	if (srv->stopping) {
		close(fd);
		return;
	}
	stats_add(STAT_CONNECTIONS, 1);
	sockaddr_host(sa, host, sizeof(host));
	/* Clients are counted per network where so configured (slots.c). */
	char key[64];
	slots_client_key(cf, host, key, sizeof(key));
	struct smtpd_client *c = client_get(srv, key, 1);
	const char *why = NULL;
	if (srv->nsessions >= (size_t)nofile_max_connections(cf))
		why = "max_connections";
	else if (c->n >= (unsigned)slots_per_client(srv))
		why = slots_stressed(srv) ? "stress_max_connections_per_client"
		                          : "max_connections_per_client";
	if (why) {
		log_info("connect from unknown[%s]:%u: too many connections (%s), refused", host,
		         sockaddr_port(sa), why);
		c->n++;
		client_put(srv, key);
		refuse(fd);
		return;
	}
	c->n++;
	srv->nsessions++;
	/* Replies go out when written: the timing classifier measures them
	 * and a pipelined batch is written in one go anyway. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	session_new(srv, fd, sa, (socklen_t)salen, l->index);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_listener *l = arg;
	if (l->lev && !l->srv->stopping)
		evconnlistener_enable(l->lev);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct smtpd_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	const struct config *cf = l->srv->rt->cf;
	const char *name = l->index < cf->listen.n ? cf->listen.v[l->index].text : "?";
	log_warnx("accept on %s: %s", name, strerror(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors or memory: pause this listener for a
		 * second instead of spinning on the ready socket. */
		struct timeval tv = {1, 0};
		evconnlistener_disable(lev);
		evtimer_add(l->retry, &tv);
	}
}

static int listeners_start(struct smtpd *srv)
{
	struct runtime *rt = srv->rt;
	srv->listeners = xcalloc(rt->nlisten ? rt->nlisten : 1, sizeof(*srv->listeners));
	for (size_t i = 0; i < rt->nlisten; i++) {
		struct smtpd_listener *l = &srv->listeners[i];
		l->srv = srv;
		l->index = i;
		int fd = rt->listen_fds[i];
		if (set_nonblock(fd) != 0 || set_cloexec(fd) != 0) {
			log_warn("listener %zu", i);
			return -1;
		}
		/* backlog 0: the master has already called listen(). */
		l->lev = evconnlistener_new(srv->base, on_accept, l,
		                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		l->retry = evtimer_new(srv->base, on_accept_retry, l);
		if (l->lev == NULL || l->retry == NULL) {
			log_warnx("cannot listen on descriptor %d", fd);
			return -1;
		}
		evconnlistener_set_error_cb(l->lev, on_accept_error);
		srv->nlisteners++;
		if (i < rt->cf->listen.n)
			log_info("listening on %s", rt->cf->listen.v[i].text);
	}
	return 0;
}

static void listeners_stop(struct smtpd *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct smtpd_listener *l = &srv->listeners[i];
		if (l->lev) {
			evconnlistener_free(l->lev);
			l->lev = NULL;
		}
		if (l->retry) {
			event_free(l->retry);
			l->retry = NULL;
		}
	}
}

/* TLS context: built at start and on SIGHUP (certificates get renewed).
 * Sessions already in TLS keep the old context through their SSL's own
 * reference to it. */
static void smtpd_tls_load(struct smtpd *srv, int reload)
{
	const struct config *cf = srv->rt->cf;
	if (!cf->smtp_tls) {
		if (srv->tls_ctx)
			SSL_CTX_free(srv->tls_ctx);
		srv->tls_ctx = NULL;
		log_info("STARTTLS not offered: smtp_tls = no");
		return;
	}
	char err[512];
	SSL_CTX *ctx = tls_context_new(cf, err, sizeof(err));
	if (ctx == NULL) {
		if (reload && srv->tls_ctx) {
			log_warnx("TLS reload failed, keeping the previous certificate: %s", err);
			return;
		}
		log_warnx("STARTTLS not offered: %s", err);
		return;
	}
	if (srv->tls_ctx)
		SSL_CTX_free(srv->tls_ctx);
	srv->tls_ctx = ctx;
	if (!reload)
		log_info("STARTTLS offered");
}

/* Signals. */

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *srv = arg;
	if (srv->nsessions > 0)
		log_info("shutdown grace over: closing %zu session%s", srv->nsessions,
		         srv->nsessions == 1 ? "" : "s");
	session_abort_all(srv);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd *srv = arg;
	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("shutting down on signal %d, %zu session%s open", (int)sig, srv->nsessions,
	         srv->nsessions == 1 ? "" : "s");
	listeners_stop(srv);
	session_shutdown_all(srv);
	if (srv->nsessions == 0) {
		event_base_loopbreak(srv->base);
		return;
	}
	struct timeval tv = {(time_t)srv->rt->cf->shutdown_grace, 0};
	srv->ev_grace = evtimer_new(srv->base, on_grace, srv);
	if (srv->ev_grace == NULL || evtimer_add(srv->ev_grace, &tv) != 0)
		fatalx("smtpd: cannot add the grace timer");
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd *srv = arg;
	if (runtime_reload(srv->rt) == 0)
		smtpd_tls_load(srv, 1);
	/* The whitelist file is re-read even when the configuration did
	 * not change: it is the point of editing it. */
	screen_server_reload(srv);
	verify_reload(srv);
	rdns_reload(srv);
	/* The recipient tables too (they are also re-read when they change
	 * on disk, but an edit that keeps size and time would be missed). */
	recipients_flush();
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	if (sig == SIGHUP)
		on_hup(sig, what, arg);
	else
		on_term(sig, what, arg);
}

static void smtpd_cleanup(struct smtpd *srv)
{
	listeners_stop(srv);
	/* Every session is gone; what is still queued gets committed. */
	commit_pool_free(srv->commits);
	pickup_free(srv->pickup);
	gauges_free(srv->gauges);
	screen_server_free(srv);
	admission_free(srv);
	verify_free(srv);
	rdns_free(srv);
	struct event *evs[] = {srv->ev_term, srv->ev_int, srv->ev_hup, srv->ev_grace};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	for (size_t b = 0; b < srv->nbuckets; b++) {
		while (srv->clients[b]) {
			struct smtpd_client *c = srv->clients[b];
			srv->clients[b] = c->next;
			free(c);
		}
	}
	free(srv->clients);
	free(srv->listeners);
	if (srv->tls_ctx)
		SSL_CTX_free(srv->tls_ctx);
	spool_close(&srv->spool);
	event_base_free(srv->base);
}

int smtpd_main(struct runtime *rt)
{
	struct smtpd srv;
	memset(&srv, 0, sizeof(srv));
	srv.rt = rt;
	srv.session_gone = smtpd_session_gone;
	srv.msg_ops = &receive_message_ops;
	const struct config *cf = rt->cf;

	/* A client that resets the connection must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	if (rt->nlisten == 0) {
		log_warnx("smtpd: no listening sockets");
		return 1;
	}
	if (spool_open(&srv.spool, cf->spool_directory) != 0) {
		log_warn("smtpd: cannot open the spool %s", cf->spool_directory);
		return 1;
	}
	stats_start(cf->spool_directory, "smtpd");
	srv.base = event_base_new();
	if (srv.base == NULL)
		fatalx("smtpd: cannot create the event loop");
	srv.nbuckets = SMTPD_CLIENT_BUCKETS;
	srv.clients = xcalloc(srv.nbuckets, sizeof(*srv.clients));
	srv.commits = commit_pool_new(srv.base, &srv.spool, (int)cf->spool_writers);
	smtpd_tls_load(&srv, 0);
	/* After the fork: an LMDB environment never crosses one. */
	screen_server_init(&srv);
	admission_init(&srv);
	verify_init(&srv);
	rdns_init(&srv);

	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	struct event *sig_evs[sizeof(sigs) / sizeof(sigs[0])];
	runtime_child_signals(srv.base, sigs, sizeof(sigs) / sizeof(sigs[0]), on_signal, &srv,
	                      sig_evs);
	srv.ev_term = sig_evs[0];
	srv.ev_int = sig_evs[1];
	srv.ev_hup = sig_evs[2];

	if (listeners_start(&srv) != 0) {
		smtpd_cleanup(&srv);
		return 1;
	}
	srv.pickup = pickup_new(&srv);
	srv.gauges = gauges_new(&srv);
	int rc = event_base_dispatch(srv.base) < 0 ? 1 : 0;
	if (rc != 0)
		log_warnx("smtpd: event loop failed");
	smtpd_cleanup(&srv);
	stats_stop();
	log_info("smtpd stopped");
	return rc;
}
