/*
 * rdns.c: the client's name, from reverse DNS, forward-confirmed (see
 * rdns.h), with c-ares on the smtpd event loop (src/common/dnsloop.c).
 *
 * A lookup asks the PTR record of the client's address; a PTR name that
 * is a valid host name (rdnsname_valid) is then looked up forward, A for
 * an IPv4 client and AAAA for an IPv6 one, and it is the client's name
 * only if one of those addresses is the client's own. Anyone can put any
 * name in the PTR records of his own addresses; only the owner of the
 * name can make it point back, which is why an unconfirmed name is never
 * shown as the client's (Postfix's smtpd does the same). What went wrong
 * is kept: no PTR, a PTR that does not lead back, or no answer at all.
 *
 * Bounds: one timer per lookup (reverse_dns_timeout) ends it as a
 * temporary failure whatever c-ares is still doing; c-ares itself gives
 * up on each try after RDNS_TRY_MS. Answers are cached per address for a
 * time that depends on the answer, at most RDNS_CACHE_MAX of them, the
 * least recently used forgotten first, so a busy client does not cost a
 * lookup per connection and a dead DNS server does not hold every
 * greeting.
 *
 * Answers are handed back from an event of their own, never from inside
 * c-ares or rdns_lookup(), so the session may greet, close or start
 * over from its callback. The channel is made at the first lookup (so
 * reverse_dns = no opens no socket) and again after a SIGHUP that
 * changes dns_servers. Loop thread only.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <event2/event.h>

#include "conf.h"
#include "dnsloop.h"
#include "log.h"
#include "rdns.h"
#include "rdnsname.h"
#include "util.h"

#define RDNS_CACHE_MAX 1000
#define RDNS_CACHE_BUCKETS 256
/* Seconds an answer is remembered: a confirmed name, a missing or
 * unconfirmed one, no answer. */
#define RDNS_TTL_CONFIRMED 3600
#define RDNS_TTL_NEGATIVE 600
#define RDNS_TTL_TEMPFAIL 60
/* c-ares, per try and server; reverse_dns_timeout bounds the whole. */
#define RDNS_TRY_MS 1000
#define RDNS_TRIES 2
/* Forward answers looked at (more addresses than this are unusual). */
#define RDNS_MAX_ADDRS 32

struct rdns_entry {
	struct rdns_entry *hnext;         /* bucket chain */
	struct rdns_entry *older, *newer; /* use order */
	char key[INET6_ADDRSTRLEN];
	int64_t expires; /* mono_usec */
	struct rdns_answer a;
};

struct rdns {
	struct smtpd *srv;
	struct dnsloop *loop;       /* NULL until the first lookup */
	struct rdns_query *queries; /* every lookup not yet freed */
	struct rdns_entry *buckets[RDNS_CACHE_BUCKETS];
	struct rdns_entry *newest, *oldest;
	size_t nentries;
	int loop_failed; /* the channel could not be made (logged once) */
};

struct rdns_query {
	struct rdns *r;
	struct rdns_query *next, *prev;
	struct event *timer; /* reverse_dns_timeout */
	struct event *done;  /* hands the answer back */
	rdns_cb cb;          /* NULL once cancelled or called */
	void *arg;
	int af;
	unsigned char addr[16];
	char key[INET6_ADDRSTRLEN]; /* the address as text: cache key, logs */
	int outstanding;            /* c-ares callbacks still to come */
	int finished;               /* the answer is decided */
	int delivered;              /* the done event has run */
	struct rdns_answer a;
};

/* The cache. */

static unsigned rdns_hash(const char *key)
{
	unsigned h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % RDNS_CACHE_BUCKETS;
}

static void cache_unlink(struct rdns *r, struct rdns_entry *e)
{
	struct rdns_entry **pp = &r->buckets[rdns_hash(e->key)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->newer)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	r->nentries--;
	free(e);
}

static void cache_flush(struct rdns *r)
{
	while (r->newest)
		cache_unlink(r, r->newest);
}

static struct rdns_entry *cache_find(struct rdns *r, const char *key)
{
	for (struct rdns_entry *e = r->buckets[rdns_hash(key)]; e; e = e->hnext)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void cache_touch(struct rdns *r, struct rdns_entry *e)
{
	if (r->newest == e)
		return;
	/* out of the list ... */
	e->newer->older = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	/* ... and in again at the new end */
	e->older = r->newest;
	e->newer = NULL;
	r->newest->newer = e;
	r->newest = e;
}

static int cache_get(struct rdns *r, const char *key, int64_t now, struct rdns_answer *a)
{
	struct rdns_entry *e = cache_find(r, key);
	if (e == NULL)
		return 0;
	if (e->expires <= now) {
		cache_unlink(r, e);
		return 0;
	}
	cache_touch(r, e);
	*a = e->a;
	return 1;
}

static void cache_put(struct rdns *r, const char *key, const struct rdns_answer *a, int64_t now)
{
	int64_t ttl = a->result == RDNS_CONFIRMED  ? RDNS_TTL_CONFIRMED
	              : a->result == RDNS_TEMPFAIL ? RDNS_TTL_TEMPFAIL
	                                           : RDNS_TTL_NEGATIVE;
	struct rdns_entry *e = cache_find(r, key);
	if (e)
		cache_unlink(r, e);
	while (r->nentries >= RDNS_CACHE_MAX)
		cache_unlink(r, r->oldest);
	e = xcalloc(1, sizeof(*e));
	strlcpy_tmx(e->key, key, sizeof(e->key));
	e->expires = now + ttl * 1000000;
	e->a = *a;
	unsigned b = rdns_hash(key);
	e->hnext = r->buckets[b];
	r->buckets[b] = e;
	e->older = r->newest;
	if (r->newest)
		r->newest->newer = e;
	else
		r->oldest = e;
	r->newest = e;
	r->nentries++;
}

/* Lookups. */

/* A finished lookup is freed once it has called back and c-ares has no
 * callback left to make with it. */
static void query_release(struct rdns_query *q)
{
	if (!q->delivered || q->outstanding > 0)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else
		q->r->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	event_free(q->timer);
	event_free(q->done);
	free(q);
}

/* The answer is decided; cache it unless cache is 0 (the channel was
 * destroyed under the lookup: that says nothing about the client). */
static void query_finish(struct rdns_query *q, enum session_rdns result, int cache)
{
	if (q->finished)
		return;
	q->finished = 1;
	q->a.result = result;
	if (result != RDNS_CONFIRMED)
		q->a.name[0] = '\0';
	evtimer_del(q->timer);
	if (cache && q->key[0])
		cache_put(q->r, q->key, &q->a, mono_usec());
	event_active(q->done, EV_TIMEOUT, 1);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct rdns_query *q = arg;
	rdns_cb cb = q->cb;
	q->cb = NULL;
	q->delivered = 1;
	if (cb)
		cb(q->arg, &q->a);
	query_release(q);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rdns_query *q = arg;
	log_info("reverse DNS of %s: no answer within %lds%s%s", q->key,
	         (long)q->r->srv->rt->cf->reverse_dns_timeout, q->a.ptr[0] ? " for the name " : "",
	         q->a.ptr);
	query_finish(q, RDNS_TEMPFAIL, 1);
}

/* The forward answer: is the client's address among the name's? */
static void forward_answer(struct rdns_query *q, int status, unsigned char *abuf, int alen)
{
	int n = RDNS_MAX_ADDRS, rc, found = 0;
	if (status == ARES_EDESTRUCTION) {
		query_finish(q, RDNS_TEMPFAIL, 0);
		return;
	}
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		log_warnx("hostname %s does not resolve to address %s", q->a.ptr, q->key);
		query_finish(q, RDNS_UNCONFIRMED, 1);
		return;
	}
	if (status != ARES_SUCCESS) {
		log_info("reverse DNS of %s: %s lookup of %s: %s", q->key,
		         q->af == AF_INET ? "A" : "AAAA", q->a.ptr, ares_strerror(status));
		query_finish(q, RDNS_TEMPFAIL, 1);
		return;
	}
	if (q->af == AF_INET) {
		struct ares_addrttl v[RDNS_MAX_ADDRS];
		rc = ares_parse_a_reply(abuf, alen, NULL, v, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n && !found; i++)
			found = memcmp(&v[i].ipaddr, q->addr, 4) == 0;
	} else {
		struct ares_addr6ttl v[RDNS_MAX_ADDRS];
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, v, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n && !found; i++)
			found = memcmp(&v[i].ip6addr, q->addr, 16) == 0;
	}
	if (rc != ARES_SUCCESS && rc != ARES_ENODATA) {
		log_info("reverse DNS of %s: bad answer for %s: %s", q->key, q->a.ptr,
		         ares_strerror(rc));
		query_finish(q, RDNS_TEMPFAIL, 1);
		return;
	}
	if (!found) {
		log_warnx("%s: address not listed for hostname %s", q->key, q->a.ptr);
		query_finish(q, RDNS_UNCONFIRMED, 1);
		return;
	}
	strlcpy_tmx(q->a.name, q->a.ptr, sizeof(q->a.name));
	query_finish(q, RDNS_CONFIRMED, 1);
}

static void forward_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct rdns_query *q = arg;
	q->outstanding--;
	if (!q->finished)
		forward_answer(q, status, abuf, alen);
	query_release(q);
}

/* The PTR answer: a usable name to look up forward, or the end. */
static void ptr_answer(struct rdns_query *q, int status, unsigned char *abuf, int alen)
{
	struct hostent *h = NULL;
	if (status == ARES_EDESTRUCTION) {
		query_finish(q, RDNS_TEMPFAIL, 0);
		return;
	}
	if (status == ARES_SUCCESS)
		status =
		    ares_parse_ptr_reply(abuf, alen, q->addr, q->af == AF_INET ? 4 : 16, q->af, &h);
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		query_finish(q, RDNS_NO_PTR, 1);
		return;
	}
	if (status != ARES_SUCCESS || h == NULL || h->h_name == NULL) {
		log_info("reverse DNS of %s: PTR lookup: %s", q->key,
		         ares_strerror(status != ARES_SUCCESS ? status : ARES_EBADRESP));
		if (h)
			ares_free_hostent(h);
		query_finish(q, RDNS_TEMPFAIL, 1);
		return;
	}
	int valid = rdnsname_valid(h->h_name);
	if (valid) {
		strlcpy_tmx(q->a.ptr, h->h_name, sizeof(q->a.ptr));
		size_t len = strlen(q->a.ptr);
		if (len > 0 && q->a.ptr[len - 1] == '.')
			q->a.ptr[len - 1] = '\0';
	}
	ares_free_hostent(h);
	if (!valid) {
		/* log.c keeps control octets out of the log. */
		log_warnx("%s: the PTR record is not a valid host name", q->key);
		query_finish(q, RDNS_UNCONFIRMED, 1);
		return;
	}
	q->outstanding++;
	ares_query(dnsloop_channel(q->r->loop), q->a.ptr, ns_c_in,
	           q->af == AF_INET ? ns_t_a : ns_t_aaaa, forward_cb, q);
	dnsloop_rearm(q->r->loop);
}

static void ptr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct rdns_query *q = arg;
	q->outstanding--;
	if (!q->finished)
		ptr_answer(q, status, abuf, alen);
	query_release(q);
}

/* The client's address as family and octets; a v4-mapped IPv6 address
 * is the IPv4 address it carries. -1 for other families. */
static int peer_octets(const struct sockaddr *sa, int *af, unsigned char *out)
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (sa->sa_family == AF_INET) {
		*af = AF_INET;
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
		*af = AF_INET;
		memcpy(out, a + 12, 4);
	} else {
		*af = AF_INET6;
		memcpy(out, a, 16);
	}
	return 0;
}

/* The PTR name of an address: RFC 1035 section 3.5, RFC 3596 section 2.5. */
static void reverse_name(int af, const unsigned char *a, char *buf, size_t size)
{
	if (af == AF_INET) {
		snprintf(buf, size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t off = 0;
	for (int i = 15; i >= 0 && off + 4 < size; i--) {
		buf[off++] = hex[a[i] & 0xf];
		buf[off++] = '.';
		buf[off++] = hex[a[i] >> 4];
		buf[off++] = '.';
	}
	snprintf(buf + off, size - off, "ip6.arpa");
}

static struct dnsloop *rdns_channel(struct rdns *r)
{
	const struct config *cf = r->srv->rt->cf;
	if (r->loop == NULL) {
		char err[300];
		r->loop = dnsloop_new(r->srv->base, cf->dns_servers, RDNS_TRY_MS, RDNS_TRIES, err,
		                      sizeof(err));
		if (r->loop == NULL && !r->loop_failed)
			log_warnx("reverse DNS: %s", err);
		r->loop_failed = r->loop == NULL;
	}
	return r->loop;
}

struct rdns_query *rdns_lookup(struct smtpd *srv, const struct sockaddr *peer, rdns_cb cb,
                               void *arg)
{
	struct rdns *r = srv->rdns;
	struct rdns_query *q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->timer = evtimer_new(srv->base, on_timeout, q);
	q->done = event_new(srv->base, -1, 0, on_done, q);
	if (q->timer == NULL || q->done == NULL)
		fatalx("rdns: cannot allocate events");
	q->next = r->queries;
	if (q->next)
		q->next->prev = q;
	r->queries = q;

	if (peer_octets(peer, &q->af, q->addr) < 0) {
		query_finish(q, RDNS_NONE, 0); /* not an IP client: nothing to look up */
		return q;
	}
	inet_ntop(q->af, q->addr, q->key, sizeof(q->key));
	if (cache_get(r, q->key, mono_usec(), &q->a)) {
		q->finished = 1;
		event_active(q->done, EV_TIMEOUT, 1);
		return q;
	}
	struct dnsloop *l = rdns_channel(r);
	if (l == NULL) {
		query_finish(q, RDNS_TEMPFAIL, 1);
		return q;
	}
	struct timeval tv = {.tv_sec = (time_t)srv->rt->cf->reverse_dns_timeout, .tv_usec = 0};
	evtimer_add(q->timer, &tv);
	char name[80];
	reverse_name(q->af, q->addr, name, sizeof(name));
	q->outstanding = 1;
	ares_query(dnsloop_channel(l), name, ns_c_in, ns_t_ptr, ptr_cb, q);
	dnsloop_rearm(l);
	return q;
}

void rdns_cancel(struct rdns_query *q)
{
	if (q)
		q->cb = NULL;
}

void rdns_init(struct smtpd *srv)
{
	struct rdns *r = xcalloc(1, sizeof(*r));
	r->srv = srv;
	srv->rdns = r;
}

void rdns_reload(struct smtpd *srv)
{
	struct rdns *r = srv->rdns;
	const char *servers = srv->rt->cf->dns_servers ? srv->rt->cf->dns_servers : "";
	cache_flush(r);
	r->loop_failed = 0;
	if (r->loop && strcmp(dnsloop_servers(r->loop), servers) != 0) {
		/* Lookups under way end now as temporary failures. */
		struct dnsloop *l = r->loop;
		r->loop = NULL;
		dnsloop_free(l);
	}
}

void rdns_free(struct smtpd *srv)
{
	struct rdns *r = srv->rdns;
	if (r == NULL)
		return;
	struct dnsloop *l = r->loop;
	r->loop = NULL;
	dnsloop_free(l);
	/* No c-ares callback is left; what has not called back never will. */
	while (r->queries) {
		struct rdns_query *q = r->queries;
		q->delivered = 1;
		q->outstanding = 0;
		query_release(q);
	}
	cache_flush(r);
	free(r);
	srv->rdns = NULL;
}
