/*
 * remote.c: outbound SMTP/LMTP delivery in the delivery event loop: which
 * hosts serve a destination, in which order, how many connections may be
 * open, and which idle session the next message can use.
 *
 * A job (recipients of one message for one destination, from delivery.c)
 * waits in a FIFO queue until the connection limits allow it:
 * max_connections_per_destination and max_outbound_connections count the
 * open connections, busy or idle; an idle one of another destination is
 * closed to make room under the total. A job whose destination has an idle
 * session takes it (no connect, greeting, EHLO or TLS again).
 *
 * Otherwise the route is resolved (dns.c) and tried, RFC 5321 section
 * 5.1: for "mx" (or "smtp:host") the MX records from the lowest
 * preference, random among equal ones; a domain without MX records is its
 * own mail host; a list that names us stops before our own preference, so
 * two MXes never bounce mail between each other. An address-literal
 * domain ("[192.0.2.1]") is never looked up: that address is the one
 * host, under the same loop rule (one of our listeners is a 5.4.6 loop),
 * and a malformed literal bounces with 5.1.2. A host that cannot be
 * reached, or fails as a whole (greeting, EHLO, TLS that the policy
 * requires), hands over to the next address or host, at most
 * REMOTE_MAX_ADDRS in all; only when all have failed are the recipients
 * deferred (or bounced, if the last failure was permanent).
 *
 * After a transaction a healthy session is parked under its destination
 * in the client's idle-session cache (src/smtp/cache.c) for
 * smtp_connection_reuse_time, then closed with QUIT. Loop thread only.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "remote.h"
#include "smtp_cache.h"
#include "smtp_proto.h"
#include "util.h"

/* Addresses tried per job: bounded, as Postfix does, so a domain with
 * dozens of dead MX hosts does not hold a connection slot for an hour. */
#define REMOTE_MAX_ADDRS 10
/* Idle sessions kept at most; the oldest goes first. */
#define REMOTE_IDLE_MAX 64

struct remote {
	struct event_base *base;
	struct event *pump_ev;
	struct dns_resolver *dns;
	struct remote_job *queue, **qtail;
	struct remote_job *running;
	size_t nrunning;
	struct smtp_cache *cache; /* idle sessions, and those saying QUIT */
	int stopping, pumping, pump_again;
	void (*drained)(void *);
	void *drained_arg;
};

static void pump(struct remote *r);
static void next_addr(struct remote_job *j);
static void next_host(struct remote_job *j);
static void job_cb(struct smtp_session *s, enum smtp_event ev, void *arg);

static void check_drained(struct remote *r)
{
	if (r->stopping && r->drained && !remote_busy(r))
		r->drained(r->drained_arg);
}

/* ---- idle sessions ---- */

/* A session of the cache is gone: a job may be waiting for its slot. */
static void slot_freed(void *arg)
{
	pump(arg);
}

static void park(struct remote *r, const struct remote_job *j, struct smtp_session *s)
{
	smtp_cache_put(r->cache, j->key, s, r->stopping ? 0 : j->reuse_time);
}

/* ---- finishing a job ---- */

static void job_unlink(struct remote_job *j)
{
	struct remote *r = j->r;
	for (struct remote_job **pp = &r->running; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			r->nrunning--;
			break;
		}
	}
	dns_mx_free(j->mx, j->nmx);
	j->mx = NULL;
	j->nmx = 0;
	free(j->addrs);
	j->addrs = NULL;
}

static void finish(struct remote_job *j)
{
	struct remote *r = j->r;
	job_unlink(j);
	j->done(j); /* may free j */
	pump(r);
	check_drained(r);
}

/* Every host failed: the recipients get the last failure. */
static void finish_failed(struct remote_job *j)
{
	int code = j->fail_code >= 500 ? j->fail_code : 451;
	if (j->fail[0] == '\0')
		smtp_local_reply(j->fail, sizeof(j->fail), 451, "4.4.1", "no host to deliver to");
	for (size_t i = 0; i < j->msg.nrcpt; i++) {
		if (j->res[i].code != 0)
			continue;
		j->res[i].code = code;
		strlcpy_tmx(j->res[i].reply, j->fail, sizeof(j->res[i].reply));
	}
	finish(j);
}

static void finish_all(struct remote_job *j, int code, const char *text)
{
	j->fail_code = code;
	strlcpy_tmx(j->fail, text, sizeof(j->fail));
	finish_failed(j);
}

/* ---- resolving and connecting ---- */

static struct dns_resolver *resolver(struct remote_job *j)
{
	struct remote *r = j->r;
	const char *servers = j->dns_servers ? j->dns_servers : "";
	if (r->dns && strcmp(dns_resolver_servers(r->dns), servers) != 0) {
		dns_resolver_retire(r->dns); /* dns_servers changed on reload */
		r->dns = NULL;
	}
	if (r->dns == NULL) {
		char err[300], t[400];
		r->dns = dns_resolver_new(r->base, servers, err, sizeof(err));
		if (r->dns == NULL) {
			smtp_local_reply(t, sizeof(t), 451, "4.4.3", "%s", err);
			finish_all(j, 451, t);
			return NULL;
		}
	}
	return r->dns;
}

static int route_mx(const struct remote_job *j)
{
	return j->route.kind == ROUTE_MX || j->route.kind == ROUTE_SMTP_MX;
}

static void addr_cb(void *arg, int st, struct dns_addr *v, size_t n, const char *err)
{
	struct remote_job *j = arg;
	j->q = NULL;
	if (st != DNS_OK) {
		/* A host without an address is that host's problem, not the
		 * mail's: temporary, and the next MX host may do. */
		j->fail_code = 451;
		smtp_local_reply(j->fail, sizeof(j->fail), 451, st == DNS_TEMP ? "4.4.3" : "4.4.4",
		                 "%s", err);
		if (route_mx(j))
			next_host(j);
		else
			finish_failed(j);
		return;
	}
	j->addrs = v;
	j->naddr = n;
	j->ai = 0;
	next_addr(j);
}

static void next_host(struct remote_job *j)
{
	if (j->mxi >= j->nmx || j->tries >= REMOTE_MAX_ADDRS) {
		finish_failed(j);
		return;
	}
	struct dns_resolver *d = resolver(j);
	if (d == NULL)
		return;
	j->host = j->mx[j->mxi++].host;
	j->q = dns_addr_query(d, j->host, j->port, addr_cb, j);
}

static void next_addr(struct remote_job *j)
{
	if (j->ai >= j->naddr || j->tries >= REMOTE_MAX_ADDRS) {
		free(j->addrs);
		j->addrs = NULL;
		j->naddr = 0;
		if (route_mx(j))
			next_host(j);
		else
			finish_failed(j);
		return;
	}
	struct dns_addr *a = &j->addrs[j->ai++];
	j->tries++;
	if (a->ss.ss_family == AF_UNIX) {
		snprintf(j->relay, sizeof(j->relay), "%s", j->route.host);
		j->opts.peer_name = "localhost";
	} else {
		char num[NI_MAXHOST] = "?";
		getnameinfo((struct sockaddr *)&a->ss, a->len, num, sizeof(num), NULL, 0,
		            NI_NUMERICHOST);
		snprintf(j->relay, sizeof(j->relay), "%.200s[%s]:%u", j->host, num, j->port);
		j->opts.peer_name = j->host;
	}
	j->tls[0] = '\0';
	j->s = smtp_open(j->r->base, (struct sockaddr *)&a->ss, a->len, j->connect_timeout,
	                 &j->opts, j->relay, job_cb, j);
}

/* The hosts of the destination, best first: try them, less those that
 * are us (RFC 5321 5.1); none left is a loop. name is the destination. */
static void mx_start(struct remote_job *j, struct dns_mx *v, size_t n, const char *name)
{
	char t[600];
	struct dns_self self = {j->self, j->listen, j->nlisten, j->port};
	char addr[300];
	strlcpy_tmx(addr, n > 0 ? v[0].host : "", sizeof(addr));
	size_t left = dns_mx_prune_self(v, n, &self);
	if (left == 0) {
		/* RFC 3463 X.4.6, permanent: only a change of DNS or of our
		 * configuration can end the loop, and the sender should hear
		 * of it now, not after the queue lifetime. */
		free(v); /* the hosts were freed by the prune */
		if (name[0] == '[')
			smtp_local_reply(
			    t, sizeof(t), 554, "5.4.6",
			    "mail for %s loops back to myself (I listen on %s port %u)", name, addr,
			    j->port);
		else
			smtp_local_reply(t, sizeof(t), 554, "5.4.6",
			                 "mail for %s loops back to myself (lowest MX is %s)", name,
			                 j->self);
		finish_all(j, 554, t);
		return;
	}
	j->mx = v;
	j->nmx = left;
	j->mxi = 0;
	next_host(j);
}

static void mx_cb(void *arg, int st, struct dns_mx *v, size_t n, const char *err)
{
	struct remote_job *j = arg;
	char t[600];
	const char *name = j->route.kind == ROUTE_SMTP_MX ? j->route.host : j->domain;
	j->q = NULL;
	if (st == DNS_NXDOMAIN) {
		/* RFC 3463 X.1.2: the destination system does not exist. */
		smtp_local_reply(t, sizeof(t), 550, "5.1.2", "Host or domain name not found (%s)",
		                 err);
		finish_all(j, 550, t);
		return;
	}
	if (st == DNS_TEMP) {
		smtp_local_reply(t, sizeof(t), 451, "4.4.3", "%s", err);
		finish_all(j, 451, t);
		return;
	}
	if (st == DNS_NODATA) {
		/* RFC 5321 5.1: no MX, the domain itself is the host. */
		v = xcalloc(1, sizeof(*v));
		v[0].host = xstrdup(name);
		n = 1;
	}
	mx_start(j, v, n, name);
}

/* RFC 5321 5.1: an address literal is not looked up; it is the one host
 * of the destination, so the loop rule applies to it as to an MX list. */
static void literal_start(struct remote_job *j)
{
	char host[ROUTE_LITERAL_MAX], t[600];
	if (route_literal(j->domain, host, sizeof(host), NULL) < 0) {
		/* RFC 3463 X.1.2: bad destination system address. */
		smtp_local_reply(t, sizeof(t), 550, "5.1.2", "bad address literal %.280s",
		                 j->domain);
		finish_all(j, 550, t);
		return;
	}
	struct dns_mx *v = xcalloc(1, sizeof(*v));
	v[0].host = xstrdup(host);
	mx_start(j, v, 1, j->domain);
}

static void resolve(struct remote_job *j)
{
	j->reused = 0;
	if (j->route.kind == ROUTE_LMTP_UNIX) {
		struct sockaddr_un *sun;
		char t[400];
		if (strlen(j->route.host) >= sizeof(sun->sun_path)) {
			smtp_local_reply(t, sizeof(t), 451, "4.3.5", "LMTP socket path too long");
			finish_all(j, 451, t);
			return;
		}
		j->addrs = xcalloc(1, sizeof(*j->addrs));
		sun = (struct sockaddr_un *)&j->addrs[0].ss;
		sun->sun_family = AF_UNIX;
		strlcpy_tmx(sun->sun_path, j->route.host, sizeof(sun->sun_path));
		j->addrs[0].len = sizeof(*sun);
		j->naddr = 1;
		j->ai = 0;
		j->host = j->route.host;
		next_addr(j);
		return;
	}
	struct dns_resolver *d = resolver(j);
	if (d == NULL)
		return;
	if (j->route.kind == ROUTE_SMTP || j->route.kind == ROUTE_LMTP) {
		j->host = j->route.host;
		j->port = j->route.port;
		j->q = dns_addr_query(d, j->host, j->port, addr_cb, j);
		return;
	}
	j->port = j->route.port;
	if (j->route.kind == ROUTE_MX && j->domain[0] == '[') {
		literal_start(j);
		return;
	}
	j->q =
	    dns_mx_query(d, j->route.kind == ROUTE_SMTP_MX ? j->route.host : j->domain, mx_cb, j);
}

static void job_cb(struct smtp_session *s, enum smtp_event ev, void *arg)
{
	struct remote_job *j = arg;
	struct remote *r = j->r;
	switch (ev) {
	case SMTP_READY:
		strlcpy_tmx(j->tls, smtp_tls(s), sizeof(j->tls));
		smtp_send(s, &j->opts, &j->msg, j->res);
		return;
	case SMTP_DONE:
		j->s = NULL;
		j->dsn = smtp_dsn(s);
		park(r, j, s);
		finish(j);
		return;
	case SMTP_FAILED:
	case SMTP_CLOSED:
		j->fail_code = smtp_fail_code(s) ? smtp_fail_code(s) : 451;
		strlcpy_tmx(j->fail, smtp_fail_text(s), sizeof(j->fail));
		j->s = NULL;
		if (smtp_usable(s))
			smtp_cache_quit(r->cache, j->key, s);
		else
			smtp_free(s);
		if (j->reused) {
			/* The parked session went stale: open a new one. */
			for (size_t i = 0; i < j->msg.nrcpt; i++)
				j->res[i].code = 0;
			j->fail_code = 0;
			j->fail[0] = '\0';
			resolve(j);
			return;
		}
		next_addr(j);
		return;
	}
}

/* ---- the queue ---- */

/* The destination: the route, plus the domain for MX routes, plus the
 * TLS policy (a session opened under "may" must not serve a domain that
 * wants "verify"). */
static void job_key(struct remote_job *j)
{
	route_format(&j->route, j->key, sizeof(j->key));
	if (j->route.kind == ROUTE_MX) {
		size_t kl = strlen(j->key);
		snprintf(j->key + kl, sizeof(j->key) - kl, " %.200s", j->domain);
	}
	size_t kl = strlen(j->key);
	snprintf(j->key + kl, sizeof(j->key) - kl, " tls=%d", j->opts.tls_policy);
}

static size_t open_to(const struct remote *r, const char *key)
{
	size_t n = 0;
	for (const struct remote_job *j = r->running; j; j = j->next)
		n += strcmp(j->key, key) == 0;
	return n + smtp_cache_count(r->cache, key);
}

static void job_start(struct remote_job *j, struct smtp_session *idle)
{
	struct remote *r = j->r;
	j->next = r->running;
	r->running = j;
	r->nrunning++;
	j->started = wall_usec();
	for (size_t i = 0; i < j->msg.nrcpt; i++)
		j->res[i].code = 0;
	j->opts.lmtp = j->route.kind == ROUTE_LMTP || j->route.kind == ROUTE_LMTP_UNIX;
	if (idle) {
		j->s = idle;
		j->reused = 1;
		strlcpy_tmx(j->relay, smtp_relay(j->s), sizeof(j->relay));
		strlcpy_tmx(j->tls, smtp_tls(j->s), sizeof(j->tls));
		smtp_set_cb(j->s, job_cb, j);
		smtp_send(j->s, &j->opts, &j->msg, j->res);
		return;
	}
	resolve(j);
}

/* Start what the limits allow, oldest first. A job held back by its
 * destination's limit does not hold back the others. */
static void pump_run(struct remote *r)
{
	size_t blocked = 0; /* jobs waiting for a slot under the total */
	for (struct remote_job **pp = &r->queue; *pp;) {
		struct remote_job *j = *pp;
		if (r->stopping) {
			*pp = j->next;
			if (r->qtail == &j->next)
				r->qtail = pp;
			j->done(j);
			continue;
		}
		struct smtp_session *idle = smtp_cache_take(r->cache, j->key);
		if (idle == NULL) {
			if (j->max_per_destination > 0 &&
			    open_to(r, j->key) >= (size_t)j->max_per_destination) {
				pp = &j->next;
				continue;
			}
			if (j->max_total > 0 && r->nrunning + smtp_cache_idle(r->cache) +
			                                smtp_cache_quitting(r->cache) >=
			                            (size_t)j->max_total) {
				/* Make room: the oldest idle session of any
				 * destination goes, one per waiting job; the job
				 * waits until it has. */
				if (smtp_cache_quitting(r->cache) < ++blocked)
					smtp_cache_evict(r->cache);
				pp = &j->next;
				continue;
			}
		}
		*pp = j->next;
		if (r->qtail == &j->next)
			r->qtail = pp;
		job_start(j, idle);
	}
}

static void pump(struct remote *r)
{
	if (r->pumping) {
		r->pump_again = 1;
		return;
	}
	r->pumping = 1;
	do {
		r->pump_again = 0;
		pump_run(r);
	} while (r->pump_again);
	r->pumping = 0;
	check_drained(r);
}

static void pump_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

/* ---- the public side ---- */

struct remote *remote_new(struct event_base *base)
{
	struct remote *r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->qtail = &r->queue;
	r->pump_ev = event_new(base, -1, 0, pump_event, r);
	if (r->pump_ev == NULL)
		fatalx("event_new failed");
	r->cache = smtp_cache_new(base, REMOTE_IDLE_MAX, slot_freed, r);
	return r;
}

void remote_submit(struct remote *r, struct remote_job *j)
{
	j->r = r;
	j->next = NULL;
	j->s = NULL;
	j->q = NULL;
	j->mx = NULL;
	j->addrs = NULL;
	j->nmx = j->mxi = j->naddr = j->ai = 0;
	j->tries = 0;
	j->dsn = 0;
	j->fail_code = 0;
	j->fail[0] = j->relay[0] = j->tls[0] = '\0';
	job_key(j);
	*r->qtail = j;
	r->qtail = &j->next;
	/* From the loop: the caller's bookkeeping comes first. */
	event_active(r->pump_ev, EV_TIMEOUT, 1);
}

void remote_stop(struct remote *r, void (*drained)(void *), void *arg)
{
	r->stopping = 1;
	r->drained = drained;
	r->drained_arg = arg;
	/* In-flight transactions are cut off: what has no final reply stays
	 * undecided (at least once: never sent without a 2xx). */
	while (r->running) {
		struct remote_job *j = r->running;
		dns_query_cancel(j->q);
		j->q = NULL;
		smtp_free(j->s);
		j->s = NULL;
		job_unlink(j);
		j->done(j);
	}
	smtp_cache_close(r->cache, NULL);
	event_active(r->pump_ev, EV_TIMEOUT, 1); /* the queued jobs */
}

int remote_busy(const struct remote *r)
{
	return r->queue || r->running || smtp_cache_idle(r->cache) || smtp_cache_quitting(r->cache);
}

void remote_free(struct remote *r)
{
	if (r == NULL)
		return;
	smtp_cache_free(r->cache);
	dns_resolver_free(r->dns);
	dns_shutdown();
	event_free(r->pump_ev);
	free(r);
}
