/*
 * verify.c: recipient verification at RCPT, against the LMTP mail store
 * of a primary MX or the primary MX of a backup MX.
 *
 * For a recipient smtpd would accept, it asks the server named by
 * recipient_verify (lmtp:[addr]:port or lmtp:unix:/path for the local
 * domains, smtp:[addr]:port for the relay domains: the syntax of the
 * transport table, parsed by route_parse()) the question delivery would
 * ask later: LHLO or EHLO, MAIL FROM:<>, RCPT TO:<addr>, and RSET to end
 * the transaction (a probe of the client in src/smtp/). LMTP: 2xx, the
 * address exists; 5xx, it does not. SMTP: 250 or 251 exists; 550, 551 or
 * 553 does not (the codes RFC 5321 gives a mailbox that is unknown, not
 * local, or not allowed), any other reply is no answer. An address that
 * does not exist gets 550 5.1.1 now instead of a bounce later. 4xx, a
 * broken connection or no answer within recipient_verify_timeout: "cannot
 * ask", answered per recipient_verify_failure (451 4.4.3 or accept).
 * Nothing is ever sent past RCPT: a question never delivers mail.
 *
 * Everything runs in the smtpd event loop and never blocks. A question
 * (struct verify_probe) belongs to one session, which takes no commands
 * while it waits (session_process), so replies to pipelined commands
 * keep their order. Questions wait in arrival order and go to at most
 * VERIFY_MAX_CONNS client sessions, one question at a time each; a
 * session between questions is parked in the client's idle-session cache
 * for VERIFY_IDLE_TIMEOUT. The answer is handed to the session from the
 * question's own timer event, never from inside verify_rcpt() or a
 * client callback, so the session's command loop is never re-entered. A
 * question whose session died goes on unanswered to fill the cache.
 *
 * Calls go one way: session.c calls verify_rcpt() and, when a session
 * dies, verify_cancel(); the answer goes back only through the callback the
 * session gave with its question (struct verify_asker), and this file
 * never sees struct session.
 *
 * Answers are cached (verify_cache.c): positive for
 * recipient_verify_positive_ttl, negative for
 * recipient_verify_negative_ttl; "cannot ask" is never cached. SIGHUP
 * flushes the cache and applies a changed target.
 *
 * Host names are not resolved (that would block): the host must be an IP
 * address, which is what a mail store next door or a primary MX has.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/event.h>

#include "route.h"
#include "conf.h"
#include "log.h"
#include "smtp.h"
#include "smtp_cache.h"
#include "smtpd.h"
#include "utf8.h"
#include "util.h"
#include "verify.h"
#include "verify_cache.h"

/* Connections to the target at once; questions beyond wait their turn. */
#define VERIFY_MAX_CONNS 4
/* Seconds an unused connection stays open, then QUIT. */
#define VERIFY_IDLE_TIMEOUT 30

enum probe_state { P_QUEUED, P_RUNNING, P_DONE };

struct verify_probe {
	struct verify *v;
	struct verify_probe *prev, *next; /* v->probes, oldest first */
	enum probe_state state;
	struct verify_asker who; /* who.probe is NULL once the asker is gone */
	char *addr;
	struct event *timer; /* the deadline; then hands the answer over */
	struct verify_conn *conn;
	int retried; /* re-queued once after a stale connection */
	enum verify_result result;
};

/* A client session that is being set up or carries a question; between
 * questions it waits in the idle-session cache instead. */
struct verify_conn {
	struct verify *v;
	struct verify_conn *prev, *next;
	struct smtp_session *ss;
	int ready; /* greeted: fit for questions */
	struct verify_probe *probe;
	const char *rcpt[1];
	struct smtp_message msg;
	struct smtp_result res;
	int reused; /* carried a question before: the target may have closed it meanwhile */
	int stale;  /* the target changed: close instead of going idle */
};

struct verify {
	struct smtpd *srv;
	char *target; /* recipient_verify as last applied */
	int enabled;  /* target is not "none" */
	int usable;   /* ...and it parsed into an address we can connect to */
	int smtp;     /* an smtp: target: SMTP, for the relay domains */
	char why[256];
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct smtp_opts opts;
	struct verify_conn *conns; /* busy ones */
	size_t nconns;
	struct smtp_cache *idle;
	struct verify_probe *probes, *probes_tail;
	struct verify_cache *cache;
};

static void dispatch(struct verify *v, int may_open);

static const struct config *verify_cf(const struct verify *v)
{
	return v->srv->rt->cf;
}

/* The target. */

static int target_address(struct verify *v, const struct route *r)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&v->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&v->ss;
	if (inet_pton(AF_INET, r->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)r->port);
		v->sslen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, r->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)r->port);
		v->sslen = sizeof(*sin6);
		return 0;
	}
	snprintf(v->why, sizeof(v->why), "recipient_verify: the %s host must be an IP address",
	         v->smtp ? "SMTP" : "LMTP");
	return -1;
}

static void target_apply(struct verify *v)
{
	const struct config *cf = verify_cf(v);
	struct route r;
	char err[200];

	free(v->target);
	v->target = xstrdup(cf->recipient_verify);
	v->enabled = strcmp(v->target, "none") != 0;
	v->usable = 0;
	v->smtp = 0;
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
	} else if (r.kind == ROUTE_LMTP || r.kind == ROUTE_SMTP) {
		v->smtp = r.kind == ROUTE_SMTP;
		v->usable = target_address(v, &r) == 0;
	} else {
		snprintf(
		    v->why, sizeof(v->why),
		    "recipient_verify: only lmtp: and smtp:[address]:port targets are supported");
	}
	memset(&v->opts, 0, sizeof(v->opts));
	v->opts.lmtp = !v->smtp;
	v->opts.helo = cf->hostname;
	v->opts.command_timeout = (int)cf->recipient_verify_timeout;
	v->opts.data_timeout = (int)cf->recipient_verify_timeout;
	v->opts.tls_policy = TLS_POLICY_NONE;
	if (v->usable)
		log_info("verify: recipients of the %s domains are verified with %s",
		         v->smtp ? "relay" : "local", v->target);
	else
		log_warnx("%s (%s); recipients of the %s domains get %s", v->why, v->target,
		          v->smtp ? "relay" : "local",
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

/* The target could not be asked about this one: log it, return the
 * answer per recipient_verify_failure. */
static enum verify_result probe_failure(struct verify_probe *p, const char *why)
{
	enum verify_result r = failure_result(p->v);
	if (p->who.probe)
		log_info("verify: cannot verify <%s> for %s[%s]:%u with %s: %s; %s", p->addr,
		         p->who.name, p->who.addr, p->who.port, p->v->target, why,
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
	(void)fd;
	(void)what;
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
	if (p->who.probe) {
		*p->who.probe = NULL;
		p->who.probe = NULL;
		p->who.answer(p->who.arg, p->addr, p->result);
	}
	probe_free(p);
	/* A connection may have been closed above: the queue moves on. */
	dispatch(v, 1);
}

/* Connections. */

/* Connections of any target, busy, idle or saying QUIT. */
static size_t conns_all(const struct verify *v)
{
	return v->nconns + smtp_cache_idle(v->idle) + smtp_cache_quitting(v->idle);
}

/* Connections to the current target. */
static size_t conns_live(const struct verify *v)
{
	size_t n = 0;
	for (const struct verify_conn *c = v->conns; c; c = c->next)
		n += !c->stale;
	return n + smtp_cache_count(v->idle, v->target);
}

static void conn_unlink(struct verify_conn *c)
{
	struct verify *v = c->v;
	if (c->prev)
		c->prev->next = c->next;
	else
		v->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	v->nconns--;
}

static void conn_free(struct verify_conn *c)
{
	if (c->probe) {
		/* Not expected here: callers answer or re-queue it first. */
		c->probe->conn = NULL;
		probe_fail(c->probe, "connection closed");
		c->probe = NULL;
	}
	conn_unlink(c);
	smtp_free(c->ss);
	free(c);
}

static void conn_cb(struct smtp_session *ss, enum smtp_event ev, void *arg);

static struct verify_conn *conn_new(struct verify *v, struct smtp_session *ss)
{
	struct verify_conn *c = xcalloc(1, sizeof(*c));
	c->v = v;
	c->ss = ss;
	c->next = v->conns;
	if (c->next)
		c->next->prev = c;
	v->conns = c;
	v->nconns++;
	return c;
}

static void conn_ask(struct verify_conn *c, struct verify_probe *p)
{
	p->state = P_RUNNING;
	p->conn = c;
	c->probe = p;
	c->rcpt[0] = p->addr;
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.sender = "";
	c->msg.rcpts = c->rcpt;
	c->msg.nrcpt = 1;
	c->msg.probe = 1;
	c->msg.fd = -1;
	/* A UTF-8 address is asked under SMTPUTF8 where it is offered; a
	 * server without it refuses it (5.6.7), which is its answer. */
	c->msg.smtputf8 = utf8_has_8bit(p->addr);
	smtp_set_cb(c->ss, conn_cb, c);
	smtp_send(c->ss, &c->v->opts, &c->msg, &c->res);
}

static struct verify_probe *next_queued(struct verify *v)
{
	for (struct verify_probe *p = v->probes; p; p = p->next)
		if (p->state == P_QUEUED)
			return p;
	return NULL;
}

/* Between questions: the next one, else into the idle-session cache (or
 * QUIT, for a target that is no longer the current one). */
static void conn_next(struct verify_conn *c)
{
	struct verify *v = c->v;
	struct verify_probe *p = c->stale ? NULL : next_queued(v);
	if (p) {
		conn_ask(c, p);
		return;
	}
	struct smtp_session *ss = c->ss;
	int stale = c->stale;
	conn_unlink(c);
	free(c);
	if (stale)
		smtp_cache_quit(v->idle, "stale", ss);
	else
		smtp_cache_put(v->idle, v->target, ss, VERIFY_IDLE_TIMEOUT);
}

/* Fail every question still waiting (the target cannot be reached). */
static void fail_queued(struct verify *v, const char *why)
{
	for (struct verify_probe *p = v->probes; p; p = p->next)
		if (p->state == P_QUEUED)
			probe_fail(p, why);
}

/* The session broke (closed, reset, garbage, a refusal, a timeout): the
 * question it carried is answered as "cannot ask", or, on an old
 * connection, re-queued once: the target may have dropped the connection
 * while it was idle. */
static void conn_broken(struct verify_conn *c, const char *why)
{
	struct verify *v = c->v;
	struct verify_probe *p = c->probe;
	int setup = !c->ready;
	char reason[700];
	snprintf(reason, sizeof(reason), "%s", why);
	if (p) {
		c->probe = NULL;
		p->conn = NULL;
		if (c->reused && !p->retried) {
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

/* The target's answer to RCPT TO. */
static void conn_answer(struct verify_conn *c)
{
	struct verify *v = c->v;
	const struct config *cf = verify_cf(v);
	struct verify_probe *p = c->probe;
	const struct smtp_result *r = &c->res;
	int64_t now = mono_usec();
	int known, unknown;
	if (v->smtp) {
		/* RFC 5321 4.2.2 and 3.4: 251 forwards, 551 would have, 553
		 * refuses the mailbox name; other 5xx say nothing of it. */
		known = r->code == 250 || r->code == 251;
		unknown = r->code == 550 || r->code == 551 || r->code == 553;
	} else {
		known = r->code / 100 == 2;
		unknown = r->code / 100 == 5;
	}
	c->probe = NULL;
	p->conn = NULL;
	if (known) {
		verify_cache_put(v->cache, p->addr, VERIFY_CACHE_KNOWN, now,
		                 cf->recipient_verify_positive_ttl,
		                 (size_t)cf->recipient_verify_cache_size);
		probe_finish(p, VERIFY_ACCEPT);
	} else if (unknown) {
		verify_cache_put(v->cache, p->addr, VERIFY_CACHE_UNKNOWN, now,
		                 cf->recipient_verify_negative_ttl,
		                 (size_t)cf->recipient_verify_cache_size);
		if (p->who.probe)
			log_info("verify: reject: RCPT from %s[%s]:%u: to=<%s>: %s said: %s",
			         p->who.name, p->who.addr, p->who.port, p->addr, v->target,
			         r->reply);
		else
			log_info("verify: <%s> unknown to %s: %s", p->addr, v->target, r->reply);
		probe_finish(p, VERIFY_UNKNOWN);
	} else {
		char why[sizeof(r->reply) + 16];
		snprintf(why, sizeof(why), "RCPT TO: %s", r->reply);
		probe_fail(p, why);
	}
}

static void conn_cb(struct smtp_session *ss, enum smtp_event ev, void *arg)
{
	struct verify_conn *c = arg;
	(void)ss;
	switch (ev) {
	case SMTP_READY:
		c->ready = 1;
		conn_next(c);
		return;
	case SMTP_DONE:
		if (c->probe)
			conn_answer(c);
		c->reused = 1;
		if (smtp_usable(c->ss)) {
			conn_next(c);
		} else {
			struct verify *v = c->v;
			conn_free(c);
			dispatch(v, 1);
		}
		return;
	case SMTP_FAILED:
	case SMTP_CLOSED:
		conn_broken(c,
		            smtp_fail_text(c->ss)[0] ? smtp_fail_text(c->ss) : "connection closed");
		return;
	}
}

/* Open one more connection. */
static void conn_open(struct verify *v)
{
	char relay[300];
	snprintf(relay, sizeof(relay), "%s", v->target);
	struct verify_conn *c = conn_new(v, NULL);
	c->ss = smtp_open(v->srv->base, (struct sockaddr *)&v->ss, v->sslen,
	                  (int)verify_cf(v)->recipient_verify_timeout, &v->opts, relay, conn_cb, c);
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
		struct smtp_session *ss = smtp_cache_take(v->idle, v->target);
		if (ss) {
			struct verify_conn *c = conn_new(v, ss);
			c->ready = 1;
			c->reused = 1;
			conn_ask(c, p);
		} else {
			queued++;
		}
	}
	if (!may_open)
		return;
	for (struct verify_conn *c = v->conns; c; c = c->next)
		if (!c->ready && !c->stale)
			settingup++;
	while (settingup < queued && conns_all(v) < VERIFY_MAX_CONNS) {
		conn_open(v);
		settingup++;
	}
}

/* A connection of the idle-session cache is gone: room for another. */
static void idle_freed(void *arg)
{
	dispatch(arg, 1);
}

/* The session's side. */

enum verify_result verify_rcpt(struct verify *v, const struct verify_asker *who,
                               const struct mailaddr *a, const char *addr)
{
	if (v == NULL || !v->enabled)
		return VERIFY_ACCEPT;
	const struct config *cf = verify_cf(v);
	/* RFC 5321 4.5.1: postmaster is always accepted. */
	if (a->is_postmaster || a->is_literal || ascii_strncasecmp(addr, "postmaster@", 11) == 0)
		return VERIFY_ACCEPT;
	/* The mail store knows the local domains; the primary MX, the
	 * domains this backup MX relays for. */
	if (v->smtp ? !conf_is_relay_domain(cf, a->domain) : !conf_is_local_domain(cf, a->domain))
		return VERIFY_ACCEPT;
	switch (verify_cache_get(v->cache, addr, mono_usec())) {
	case VERIFY_CACHE_KNOWN:
		return VERIFY_ACCEPT;
	case VERIFY_CACHE_UNKNOWN:
		log_info("verify: reject: RCPT from %s[%s]:%u: to=<%s>: unknown to %s (cached)",
		         who->name, who->addr, who->port, addr, v->target);
		return VERIFY_UNKNOWN;
	case VERIFY_CACHE_MISS:
		break;
	}
	struct verify_probe *p = xcalloc(1, sizeof(*p));
	p->v = v;
	p->who = *who;
	p->addr = xstrdup(addr);
	p->state = P_QUEUED;
	p->timer = evtimer_new(v->srv->base, on_probe_timer, p);
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
	*who->probe = p;
	dispatch(v, 1);
	return VERIFY_PENDING;
}

void verify_cancel(struct verify_probe **probe)
{
	struct verify_probe *p = *probe;
	if (p == NULL)
		return;
	*probe = NULL;
	p->who.probe = NULL;
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
	v->idle = smtp_cache_new(srv->base, VERIFY_MAX_CONNS, idle_freed, v);
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
		for (struct verify_conn *c = v->conns; c; c = c->next)
			c->stale = 1;
		smtp_cache_close(v->idle, v->target);
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
		if (p->who.probe)
			*p->who.probe = NULL;
		if (p->conn)
			p->conn->probe = NULL;
		probe_free(p);
	}
	while (v->conns)
		conn_free(v->conns);
	smtp_cache_free(v->idle);
	verify_cache_free(v->cache);
	free(v->target);
	free(v);
	srv->verify = NULL;
}
