/*
 * verify.c: recipient verification against the LMTP mail store, at RCPT.
 *
 * For a recipient of a local domain, smtpd asks the server named by
 * recipient_verify (lmtp:[addr]:port or lmtp:unix:/path, the syntax of
 * the transport table, parsed by route_parse()) the question delivery
 * would ask later: LHLO, MAIL FROM:<>, RCPT TO:<addr>, and RSET to end
 * the transaction. 2xx: the address exists. 5xx: it does not, and the
 * client gets 550 5.1.1 now instead of a bounce later. 4xx, a broken
 * connection or no answer within recipient_verify_timeout: "cannot ask",
 * answered per recipient_verify_failure (451 4.4.3 or accept). Nothing
 * is ever sent past RCPT: a question never delivers mail.
 *
 * Everything runs in the smtpd event loop and never blocks. A question
 * (struct verify_probe) belongs to one session, which takes no commands
 * while it waits (session_process), so replies to pipelined commands
 * keep their order. Questions wait in arrival order and go to a small
 * pool of connections (VERIFY_MAX_CONNS), one question at a time each,
 * and connections stay open VERIFY_IDLE_TIMEOUT for the next one. The
 * answer is handed to the session from the question's own timer event,
 * never from inside verify_rcpt() or a connection callback, so the
 * session's command loop is never re-entered. A question whose session
 * died goes on unanswered to fill the cache.
 *
 * Answers are cached (verify_cache.c): positive for
 * recipient_verify_positive_ttl, negative for
 * recipient_verify_negative_ttl; "cannot ask" is never cached. SIGHUP
 * flushes the cache and applies a changed target.
 *
 * Host names are not resolved (that would block): the LMTP host must be
 * an IP address, which is what a mail store next door has.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "../deliver/route.h"
#include "conf.h"
#include "lmtp_reply.h"
#include "log.h"
#include "session.h"
#include "smtpd.h"
#include "util.h"
#include "verify.h"
#include "verify_cache.h"

/* Connections to the store at once; questions beyond wait their turn. */
#define VERIFY_MAX_CONNS 4
/* Seconds an unused connection stays open, then QUIT. */
#define VERIFY_IDLE_TIMEOUT 30
/* Seconds we wait for the reply to QUIT before closing anyway. */
#define VERIFY_QUIT_TIMEOUT 2

enum probe_state { P_QUEUED, P_RUNNING, P_DONE };

struct verify_probe {
	struct verify *v;
	struct verify_probe *prev, *next; /* v->probes, oldest first */
	enum probe_state state;
	struct session *s; /* NULL once the session is gone */
	char *addr;
	struct event *timer; /* the deadline; then hands the answer over */
	struct verify_conn *conn;
	int retried; /* re-queued once after a stale connection */
	enum verify_result result;
};

enum conn_state {
	VC_CONNECT,  /* TCP/unix connect in progress */
	VC_GREETING, /* waiting for the 220 */
	VC_LHLO,     /* LHLO sent */
	VC_IDLE,     /* ready for a question */
	VC_MAIL,     /* MAIL FROM:<> sent */
	VC_RCPT,     /* RCPT TO: sent */
	VC_RSET,     /* RSET sent; the question is already answered */
	VC_QUIT,     /* QUIT sent; closing */
};

struct verify_conn {
	struct verify *v;
	struct verify_conn *prev, *next;
	struct bufferevent *bev;
	struct event *timer; /* idle timeout, then the QUIT deadline */
	enum conn_state state;
	struct verify_probe *probe;
	int reused; /* carried a question before: the store may have closed it meanwhile */
	int stale;  /* the target changed: close instead of going idle */
};

struct verify {
	struct smtpd *srv;
	char *target; /* recipient_verify as last applied */
	int enabled;  /* target is not "none" */
	int usable;   /* ...and it parsed into an address we can connect to */
	char why[256];
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct verify_conn *conns;
	size_t nconns;
	struct verify_probe *probes, *probes_tail;
	struct verify_cache *cache;
};

static void dispatch(struct verify *v, int may_open);

static const struct config *verify_cf(const struct verify *v)
{
	return v->srv->rt->cf;
}

/* The target. */

static void target_apply(struct verify *v)
{
	const struct config *cf = verify_cf(v);
	struct route r;
	char err[200];

	free(v->target);
	v->target = xstrdup(cf->recipient_verify);
	v->enabled = strcmp(v->target, "none") != 0;
	v->usable = 0;
	v->why[0] = '\0';
	if (!v->enabled)
		return;
	memset(&v->ss, 0, sizeof(v->ss));
	if (route_parse(v->target, &r, err, sizeof(err)) < 0) {
		snprintf(v->why, sizeof(v->why), "recipient_verify: %s", err);
	} else if (r.kind == ROUTE_LMTP_UNIX) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&v->ss;
		if (strlen(r.host) >= sizeof(sun->sun_path)) {
			snprintf(v->why, sizeof(v->why), "recipient_verify: socket path too long");
		} else {
			sun->sun_family = AF_UNIX;
			memcpy(sun->sun_path, r.host, strlen(r.host) + 1);
			v->sslen = sizeof(*sun);
			v->usable = 1;
		}
	} else if (r.kind == ROUTE_LMTP) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&v->ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&v->ss;
		if (inet_pton(AF_INET, r.host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)r.port);
			v->sslen = sizeof(*sin);
			v->usable = 1;
		} else if (inet_pton(AF_INET6, r.host, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)r.port);
			v->sslen = sizeof(*sin6);
			v->usable = 1;
		} else {
			snprintf(v->why, sizeof(v->why),
			         "recipient_verify: the LMTP host must be an IP address");
		}
	} else {
		snprintf(v->why, sizeof(v->why),
		         "recipient_verify: only lmtp: targets are supported");
	}
	if (v->usable)
		log_info("verify: recipients of the local domains are verified with %s", v->target);
	else
		log_warnx("%s (%s); recipients of the local domains get %s", v->why, v->target,
		          cf->recipient_verify_failure == VERIFY_FAILURE_ACCEPT
		              ? "accepted unverified"
		              : "451 4.4.3");
}

/* Questions. */

static void probe_unlink(struct verify_probe *p)
{
	struct verify *v = p->v;
	if (p->prev)
		p->prev->next = p->next;
	else
		v->probes = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		v->probes_tail = p->prev;
	p->prev = p->next = NULL;
}

static void probe_free(struct verify_probe *p)
{
	probe_unlink(p);
	event_free(p->timer);
	free(p->addr);
	free(p);
}

/* The answer is known: hand it over from the question's timer, outside
 * whatever callback we are in. */
static void probe_finish(struct verify_probe *p, enum verify_result r)
{
	if (p->conn) {
		p->conn->probe = NULL;
		p->conn = NULL;
	}
	p->state = P_DONE;
	p->result = r;
	evtimer_del(p->timer);
	event_active(p->timer, EV_TIMEOUT, 1);
}

static enum verify_result failure_result(const struct verify *v)
{
	return verify_cf(v)->recipient_verify_failure == VERIFY_FAILURE_ACCEPT ? VERIFY_ACCEPT
	                                                                       : VERIFY_TEMPFAIL;
}

/* The store could not be asked about this one: log it, return the
 * answer per recipient_verify_failure. */
static enum verify_result probe_failure(struct verify_probe *p, const char *why)
{
	enum verify_result r = failure_result(p->v);
	if (p->s)
		log_info("verify: cannot verify <%s> for %s[%s]:%u with %s: %s; %s", p->addr,
		         session_client_name(p->s), p->s->addr, p->s->port, p->v->target, why,
		         r == VERIFY_ACCEPT ? "accepted unverified" : "tempfailed");
	else
		log_info("verify: cannot verify <%s> with %s: %s", p->addr, p->v->target, why);
	return r;
}

static void probe_fail(struct verify_probe *p, const char *why)
{
	probe_finish(p, probe_failure(p, why));
}

static void conn_free(struct verify_conn *c);

static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
	struct verify_probe *p = arg;
	struct verify *v = p->v;
	if (p->state != P_DONE) {
		char why[64];
		snprintf(why, sizeof(why), "no answer within %llds",
		         (long long)verify_cf(v)->recipient_verify_timeout);
		struct verify_conn *c = p->conn;
		p->result = probe_failure(p, why);
		p->state = P_DONE;
		if (c) {
			/* A late reply would be taken for the next question. */
			c->probe = NULL;
			p->conn = NULL;
			conn_free(c);
		}
	}
	struct session *s = p->s;
	if (s) {
		p->s = NULL;
		s->verify = NULL;
		session_rcpt_verified(s, p->addr, p->result);
	}
	probe_free(p);
	/* A connection may have been closed above: the queue moves on. */
	dispatch(v, 1);
}

/* Connections. */

/* Queue one command: verb, then arg (may be NULL), then end, CR LF. */
static void conn_send(struct verify_conn *c, const char *verb, const char *arg, const char *end)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (evbuffer_add_printf(out, "%s%s%s\r\n", verb, arg ? arg : "", end) < 0)
		fatalx("verify: cannot queue a command");
	if (log_verbose())
		log_debug("verify: %s > %s%s%s", c->v->target, verb, arg ? arg : "", end);
}

/* Arm the connection's deadline: idle time, setup, RSET, QUIT. */
static void conn_deadline(struct verify_conn *c, int64_t seconds)
{
	struct timeval tv = {(time_t)seconds, 0};
	evtimer_del(c->timer);
	evtimer_add(c->timer, &tv);
}

/* Connections to the current target. */
static size_t conns_live(const struct verify *v)
{
	size_t n = 0;
	for (const struct verify_conn *c = v->conns; c; c = c->next)
		n += !c->stale;
	return n;
}

static void conn_free(struct verify_conn *c)
{
	struct verify *v = c->v;
	if (c->probe) {
		/* Not expected here: callers answer or re-queue it first. */
		c->probe->conn = NULL;
		probe_fail(c->probe, "connection closed");
		c->probe = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		v->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	v->nconns--;
	bufferevent_free(c->bev);
	event_free(c->timer);
	free(c);
}

static void conn_quit(struct verify_conn *c)
{
	c->state = VC_QUIT;
	conn_send(c, "QUIT", NULL, "");
	conn_deadline(c, VERIFY_QUIT_TIMEOUT);
}

/* Ready for the next question. */
static void conn_idle(struct verify_conn *c)
{
	if (c->stale) {
		conn_quit(c);
		return;
	}
	c->state = VC_IDLE;
	conn_deadline(c, VERIFY_IDLE_TIMEOUT);
	dispatch(c->v, 1);
}

static void conn_ask(struct verify_conn *c, struct verify_probe *p)
{
	evtimer_del(c->timer);
	p->state = P_RUNNING;
	p->conn = c;
	c->probe = p;
	c->state = VC_MAIL;
	conn_send(c, "MAIL FROM:<>", NULL, "");
}

static int conn_settingup(const struct verify_conn *c)
{
	return c->state == VC_CONNECT || c->state == VC_GREETING || c->state == VC_LHLO;
}

/* Fail every question still waiting (the store cannot be reached). */
static void fail_queued(struct verify *v, const char *why)
{
	for (struct verify_probe *p = v->probes; p; p = p->next)
		if (p->state == P_QUEUED)
			probe_fail(p, why);
}

/* The connection broke (closed, reset, garbage, a refusal, a timeout):
 * the question it carried is answered as "cannot ask", or, when lost is
 * set (closed or reset) on an old connection before any reply to the
 * question, re-queued once: the store may have dropped the connection
 * while it was idle. */
static void conn_broken(struct verify_conn *c, const char *why, int lost)
{
	struct verify *v = c->v;
	struct verify_probe *p = c->probe;
	int setup = conn_settingup(c);
	char reason[300];
	snprintf(reason, sizeof(reason), "%s", why);
	if (p) {
		c->probe = NULL;
		p->conn = NULL;
		if (lost && c->reused && c->state == VC_MAIL && !p->retried) {
			p->retried = 1;
			p->state = P_QUEUED;
			log_debug("verify: %s: reused connection lost (%s); asking again",
			          v->target, reason);
			p = NULL;
		}
	}
	if (setup)
		log_warnx("verify: %s: %s", v->target, reason);
	conn_free(c);
	if (p)
		probe_fail(p, reason);
	if (setup && conns_live(v) == 0)
		fail_queued(v, reason);
	dispatch(v, !setup);
}

static void conn_reply_fail(struct verify_conn *c, const char *what, const struct lmtp_reply *r)
{
	char why[LMTP_REPLY_TEXT + 64];
	snprintf(why, sizeof(why), "%s: %s", what, r->text);
	conn_broken(c, why, 0);
}

/* The store's answer to RCPT TO. */
static void conn_rcpt_answer(struct verify_conn *c, const struct lmtp_reply *r)
{
	struct verify *v = c->v;
	const struct config *cf = verify_cf(v);
	struct verify_probe *p = c->probe;
	c->probe = NULL;
	p->conn = NULL;
	/* End the transaction before anything else can use the connection. */
	c->state = VC_RSET;
	conn_send(c, "RSET", NULL, "");
	conn_deadline(c, cf->recipient_verify_timeout);
	int64_t now = mono_usec();
	if (r->code / 100 == 2) {
		verify_cache_put(v->cache, p->addr, VERIFY_CACHE_KNOWN, now,
		                 cf->recipient_verify_positive_ttl,
		                 (size_t)cf->recipient_verify_cache_size);
		probe_finish(p, VERIFY_ACCEPT);
	} else if (r->code / 100 == 5) {
		verify_cache_put(v->cache, p->addr, VERIFY_CACHE_UNKNOWN, now,
		                 cf->recipient_verify_negative_ttl,
		                 (size_t)cf->recipient_verify_cache_size);
		if (p->s)
			log_info("verify: reject: RCPT from %s[%s]:%u: to=<%s>: %s said: %s",
			         session_client_name(p->s), p->s->addr, p->s->port, p->addr,
			         v->target, r->text);
		else
			log_info("verify: <%s> unknown to %s: %s", p->addr, v->target, r->text);
		probe_finish(p, VERIFY_UNKNOWN);
	} else {
		char why[LMTP_REPLY_TEXT + 16];
		snprintf(why, sizeof(why), "RCPT TO: %s", r->text);
		probe_fail(p, why);
	}
}

/* One complete reply from the store. Returns -1 when c was freed. */
static int conn_reply(struct verify_conn *c, const struct lmtp_reply *r)
{
	int ok = r->code / 100 == 2;
	if (log_verbose())
		log_debug("verify: %s < %s", c->v->target, r->text);
	switch (c->state) {
	case VC_GREETING:
		if (!ok) {
			conn_reply_fail(c, "greeting", r);
			return -1;
		}
		c->state = VC_LHLO;
		conn_send(c, "LHLO ", verify_cf(c->v)->hostname, "");
		return 0;
	case VC_LHLO:
		if (!ok) {
			conn_reply_fail(c, "LHLO", r);
			return -1;
		}
		conn_idle(c);
		return 0;
	case VC_MAIL:
		if (!ok) {
			conn_reply_fail(c, "MAIL FROM:<>", r);
			return -1;
		}
		c->state = VC_RCPT;
		conn_send(c, "RCPT TO:<", c->probe->addr, ">");
		return 0;
	case VC_RCPT:
		conn_rcpt_answer(c, r);
		return 0;
	case VC_RSET:
		if (!ok) {
			conn_reply_fail(c, "RSET", r);
			return -1;
		}
		c->reused = 1;
		conn_idle(c);
		return 0;
	case VC_QUIT:
		conn_free(c);
		return -1;
	case VC_CONNECT:
	case VC_IDLE:
		break;
	}
	conn_reply_fail(c, "unexpected reply", r);
	return -1;
}

static void on_conn_read(struct bufferevent *bev, void *arg)
{
	struct verify_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	/* The greeting can be read before the connect event is reported. */
	if (c->state == VC_CONNECT)
		c->state = VC_GREETING;
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		size_t window = avail < LMTP_REPLY_MAX ? avail : LMTP_REPLY_MAX;
		const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)window);
		if (buf == NULL)
			fatalx("verify: evbuffer_pullup failed");
		struct lmtp_reply r;
		size_t used;
		switch (lmtp_reply_parse(buf, avail, &r, &used)) {
		case LMTP_REPLY_MORE:
			return;
		case LMTP_REPLY_BAD:
			conn_broken(c, "malformed reply", 0);
			return;
		case LMTP_REPLY_DONE:
			evbuffer_drain(in, used);
			if (conn_reply(c, &r) < 0)
				return;
			break;
		}
	}
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct verify_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == VC_CONNECT)
			c->state = VC_GREETING;
		return;
	}
	if (c->state == VC_IDLE || c->state == VC_QUIT) {
		/* The store closed an unused connection: nothing lost. */
		conn_free(c);
		return;
	}
	char why[160];
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the store");
	else
		snprintf(why, sizeof(why), "%s",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_broken(c, why, 1);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct verify_conn *c = arg;
	if (c->state == VC_IDLE)
		conn_quit(c);
	else if (c->state == VC_QUIT)
		conn_free(c);
	else {
		char why[64];
		snprintf(why, sizeof(why), "no answer within %llds",
		         (long long)verify_cf(c->v)->recipient_verify_timeout);
		conn_broken(c, why, 0);
	}
}

/* Open one more connection; -1 with why when it fails at once. */
static int conn_open(struct verify *v, char *why, size_t whylen)
{
	struct event_base *base = v->srv->base;
	struct verify_conn *c = xcalloc(1, sizeof(*c));
	c->v = v;
	c->state = VC_CONNECT;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(base, on_conn_timer, c);
	if (c->bev == NULL || c->timer == NULL)
		fatalx("verify: cannot allocate events");
	bufferevent_setcb(c->bev, on_conn_read, NULL, on_conn_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, LMTP_REPLY_MAX * 2);
	c->next = v->conns;
	if (c->next)
		c->next->prev = c;
	v->conns = c;
	v->nconns++;
	/* libevent 2.1: -1 only for errors found before connect() is under
	 * way, with no callback to follow; later ones come as events. */
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&v->ss, (int)v->sslen) < 0) {
		snprintf(why, whylen, "cannot connect: %s", strerror(errno));
		conn_free(c);
		return -1;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_deadline(c, verify_cf(v)->recipient_verify_timeout);
	return 0;
}

/* Give waiting questions to idle connections, and open connections for
 * those left (up to VERIFY_MAX_CONNS) unless may_open is 0 (right after
 * a connection failed to come up: no reconnection storm). */
static void dispatch(struct verify *v, int may_open)
{
	size_t queued = 0, settingup = 0;
	if (!v->enabled || !v->usable) {
		for (struct verify_probe *p = v->probes; p; p = p->next)
			if (p->state == P_QUEUED) {
				if (v->enabled)
					probe_fail(p, v->why);
				else
					probe_finish(p, VERIFY_ACCEPT); /* turned off by SIGHUP */
			}
		return;
	}
	for (struct verify_probe *p = v->probes; p; p = p->next) {
		if (p->state != P_QUEUED)
			continue;
		struct verify_conn *idle = NULL;
		for (struct verify_conn *c = v->conns; c && idle == NULL; c = c->next)
			if (c->state == VC_IDLE && !c->stale)
				idle = c;
		if (idle)
			conn_ask(idle, p);
		else
			queued++;
	}
	if (!may_open)
		return;
	for (struct verify_conn *c = v->conns; c; c = c->next)
		if (conn_settingup(c) && !c->stale)
			settingup++;
	while (settingup < queued && v->nconns < VERIFY_MAX_CONNS) {
		char why[200];
		if (conn_open(v, why, sizeof(why)) < 0) {
			log_warnx("verify: %s: %s", v->target, why);
			if (conns_live(v) == 0)
				fail_queued(v, why);
			return;
		}
		settingup++;
	}
}

/* The session's side. */

enum verify_result verify_rcpt(struct session *s, const struct mailaddr *a, const char *addr)
{
	struct verify *v = s->srv->verify;
	const struct config *cf = session_cf(s);
	if (v == NULL || !v->enabled)
		return VERIFY_ACCEPT;
	/* RFC 5321 4.5.1: postmaster is always accepted. */
	if (a->is_postmaster || a->is_literal || ascii_strncasecmp(addr, "postmaster@", 11) == 0)
		return VERIFY_ACCEPT;
	if (!conf_is_local_domain(cf, a->domain))
		return VERIFY_ACCEPT;
	switch (verify_cache_get(v->cache, addr, mono_usec())) {
	case VERIFY_CACHE_KNOWN:
		return VERIFY_ACCEPT;
	case VERIFY_CACHE_UNKNOWN:
		log_info("verify: reject: RCPT from %s[%s]:%u: to=<%s>: unknown to %s (cached)",
		         session_client_name(s), s->addr, s->port, addr, v->target);
		return VERIFY_UNKNOWN;
	case VERIFY_CACHE_MISS:
		break;
	}
	struct verify_probe *p = xcalloc(1, sizeof(*p));
	p->v = v;
	p->s = s;
	p->addr = xstrdup(addr);
	p->state = P_QUEUED;
	p->timer = evtimer_new(s->srv->base, on_probe_timer, p);
	if (p->timer == NULL)
		fatalx("verify: cannot allocate a timer");
	struct timeval tv = {(time_t)cf->recipient_verify_timeout, 0};
	evtimer_add(p->timer, &tv);
	p->prev = v->probes_tail;
	if (p->prev)
		p->prev->next = p;
	else
		v->probes = p;
	v->probes_tail = p;
	s->verify = p;
	dispatch(v, 1);
	return VERIFY_PENDING;
}

void verify_cancel(struct session *s)
{
	struct verify_probe *p = s->verify;
	if (p == NULL)
		return;
	s->verify = NULL;
	p->s = NULL;
	if (p->state == P_QUEUED)
		probe_free(p);
	/* Running: its answer still fills the cache. Done: its timer frees it. */
}

/* Life cycle. */

void verify_init(struct smtpd *srv)
{
	struct verify *v = xcalloc(1, sizeof(*v));
	v->srv = srv;
	v->cache = verify_cache_new();
	srv->verify = v;
	target_apply(v);
}

void verify_reload(struct smtpd *srv)
{
	struct verify *v = srv->verify;
	size_t n = verify_cache_count(v->cache);
	verify_cache_flush(v->cache);
	if (strcmp(v->target, verify_cf(v)->recipient_verify) != 0) {
		/* Busy connections finish their question, then close. */
		for (struct verify_conn *c = v->conns, *next; c; c = next) {
			next = c->next;
			c->stale = 1;
			if (c->state == VC_IDLE)
				conn_quit(c);
		}
		target_apply(v);
	}
	if (n > 0)
		log_info("verify: cache flushed (%zu address%s)", n, n == 1 ? "" : "es");
	dispatch(v, 1);
}

void verify_free(struct smtpd *srv)
{
	struct verify *v = srv->verify;
	if (v == NULL)
		return;
	while (v->probes) {
		struct verify_probe *p = v->probes;
		if (p->s)
			p->s->verify = NULL;
		if (p->conn)
			p->conn->probe = NULL;
		probe_free(p);
	}
	while (v->conns)
		conn_free(v->conns);
	verify_cache_free(v->cache);
	free(v->target);
	free(v);
	srv->verify = NULL;
}
