/*
 * dns.c: asynchronous MX and address lookups for the delivery child, with
 * c-ares driven by the delivery event loop.
 *
 * A resolver is one c-ares channel on the loop (dnsloop.c), so lookups
 * never block it. Results are handed to the caller from an event of their
 * own, never from inside c-ares or the call that started the lookup, so a
 * callback may start or cancel lookups and free its job freely. The
 * "dns_servers" setting (tests use a server on a loopback port) is fixed
 * per resolver; remote.c retires a resolver when the setting changes, and
 * it is freed when its last lookup has called back. Called by remote.c,
 * in the loop thread only.
 *
 * Failures are classified as RFC 5321 section 5.1 needs: a name that does
 * not exist is permanent, a name with no MX falls back to its address
 * records, anything else (timeout, SERVFAIL, refused) is temporary. The
 * loop rule (dns_is_self, dns_mx_prune_self) serves MX lists and address
 * literals alike: both are lists of hosts that must not include us.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <event2/event.h>

#include "addr.h"
#include "dns.h"
#include "dnsloop.h"
#include "log.h"
#include "util.h"

/* Per query: 3 s, tried twice per server (c-ares otherwise waits ~20 s). */
#define DNS_TIMEOUT_MS 3000
#define DNS_TRIES 2

int dns_init(void)
{
	return dnsloop_init();
}

struct dns_resolver {
	struct event_base *base;
	struct dnsloop *loop;
	struct dns_query *queries; /* not yet handed back */
	int retired, destroying;
	int delivering; /* inside a caller's callback: not to be freed */
	struct dns_resolver *next_retired;
};

/* Resolvers retired with lookups under way (dns_shutdown frees them). */
static struct dns_resolver *dns_retired;

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *next, *prev;
	struct event *ev; /* hands the result back */
	int mx;
	int cancelled;
	int outstanding; /* c-ares callbacks still to come */
	int status;      /* an ARES_ status */
	dns_mx_cb mx_cb;
	dns_addr_cb addr_cb;
	void *arg;
	unsigned port;
	struct dns_mx *mv;
	struct dns_addr *av;
	size_t n;
	char name[256];
	char err[300];
};

struct dns_resolver *dns_resolver_new(struct event_base *base, const char *servers, char *err,
                                      size_t errlen)
{
	struct dnsloop *l = dnsloop_new(base, servers, DNS_TIMEOUT_MS, DNS_TRIES, err, errlen);
	if (l == NULL)
		return NULL;
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->loop = l;
	return r;
}

const char *dns_resolver_servers(const struct dns_resolver *r)
{
	return dnsloop_servers(r->loop);
}

static void dns_query_free(struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		q->r->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	event_free(q->ev);
	dns_mx_free(q->mv, q->n * (q->mv != NULL));
	free(q->av);
	free(q);
}

void dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	for (struct dns_resolver **pp = &dns_retired; *pp; pp = &(*pp)->next_retired) {
		if (*pp == r) {
			*pp = r->next_retired;
			break;
		}
	}
	r->destroying = 1;
	/* c-ares calls back every pending query with ARES_EDESTRUCTION;
	 * those callbacks see destroying and do nothing. */
	dnsloop_free(r->loop);
	while (r->queries)
		dns_query_free(r->queries);
	free(r);
}

void dns_resolver_retire(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	r->retired = 1;
	if (r->queries == NULL && r->delivering == 0) {
		dns_resolver_free(r);
		return;
	}
	r->next_retired = dns_retired;
	dns_retired = r;
}

void dns_shutdown(void)
{
	while (dns_retired)
		dns_resolver_free(dns_retired);
}

void dns_query_cancel(struct dns_query *q)
{
	if (q)
		q->cancelled = 1;
}

static int dns_status_of(int ares_status)
{
	switch (ares_status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENODATA:
		return DNS_NODATA;
	case ARES_ENOTFOUND:
		return DNS_NXDOMAIN;
	default:
		return DNS_TEMP;
	}
}

/* The loop side: hand the result to the caller, then forget the query. */
static void dns_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_resolver *r = q->r;
	(void)fd;
	(void)what;
	int st = dns_status_of(q->status);
	if (st == DNS_OK && q->n == 0)
		st = DNS_NODATA;
	if (st == DNS_OK && q->mx)
		dns_mx_sort(q->mv, q->n);
	if (st != DNS_OK && q->err[0] == '\0')
		snprintf(q->err, sizeof(q->err), "%s lookup for %s: %s", q->mx ? "MX" : "address",
		         q->name, ares_strerror(q->status));
	dns_mx_cb mcb = q->cancelled ? NULL : q->mx_cb;
	dns_addr_cb acb = q->cancelled ? NULL : q->addr_cb;
	void *carg = q->arg;
	struct dns_mx *mv = NULL;
	struct dns_addr *av = NULL;
	size_t n = 0;
	char err[300];
	if (st == DNS_OK && (mcb || acb)) {
		/* The results now belong to the caller. */
		mv = q->mv;
		av = q->av;
		n = q->n;
		q->mv = NULL;
		q->av = NULL;
		q->n = 0;
	}
	strlcpy_tmx(err, q->err, sizeof(err));
	dns_query_free(q);
	r->delivering++;
	if (mcb)
		mcb(carg, st, mv, n, err);
	else if (acb)
		acb(carg, st, av, n, err);
	r->delivering--;
	if (r->retired && r->queries == NULL && r->delivering == 0)
		dns_resolver_free(r);
}

static void dns_one_done(struct dns_query *q)
{
	if (--q->outstanding == 0)
		event_active(q->ev, EV_TIMEOUT, 1);
}

static struct dns_query *dns_query_new(struct dns_resolver *r, const char *name, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->arg = arg;
	q->status = ARES_ETIMEOUT;
	strlcpy_tmx(q->name, name, sizeof(q->name));
	q->ev = event_new(r->base, -1, 0, dns_deliver, q);
	if (q->ev == NULL)
		fatalx("cannot add a resolver event");
	q->next = r->queries;
	if (r->queries)
		r->queries->prev = q;
	r->queries = q;
	return q;
}

static void mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	(void)timeouts;
	if (q->r->destroying)
		return;
	q->status = status;
	if (status == ARES_SUCCESS) {
		struct ares_mx_reply *mx = NULL;
		q->status = ares_parse_mx_reply(abuf, alen, &mx);
		if (q->status == ARES_SUCCESS) {
			for (struct ares_mx_reply *p = mx; p; p = p->next)
				q->n++;
			q->mv = xcalloc(q->n ? q->n : 1, sizeof(*q->mv));
			size_t i = 0;
			for (struct ares_mx_reply *p = mx; p; p = p->next, i++) {
				q->mv[i].host = xstrdup(p->host);
				q->mv[i].pref = p->priority;
			}
			ares_free_data(mx);
		}
	}
	dns_one_done(q);
}

struct dns_query *dns_mx_query(struct dns_resolver *r, const char *domain, dns_mx_cb cb, void *arg)
{
	struct dns_query *q = dns_query_new(r, domain, arg);
	q->mx = 1;
	q->mx_cb = cb;
	q->outstanding = 1;
	ares_query(dnsloop_channel(r->loop), domain, ns_c_in, ns_t_mx, mx_cb, q);
	dnsloop_rearm(r->loop);
	return q;
}

static void addr_cb(void *arg, int status, int timeouts, struct hostent *h)
{
	struct dns_query *q = arg;
	(void)timeouts;
	if (q->r->destroying)
		return;
	if (status != ARES_SUCCESS || h == NULL) {
		/* Keep the most useful status: one family may be missing. */
		if (q->status != ARES_SUCCESS)
			q->status = status;
		dns_one_done(q);
		return;
	}
	q->status = ARES_SUCCESS;
	for (char **a = h->h_addr_list; *a; a++) {
		q->av = xreallocarray(q->av, q->n + 1, sizeof(*q->av));
		struct dns_addr *d = &q->av[q->n++];
		memset(d, 0, sizeof(*d));
		if (h->h_addrtype == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&d->ss;
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)q->port);
			memcpy(&sin->sin_addr, *a, sizeof(sin->sin_addr));
			d->len = sizeof(*sin);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->ss;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)q->port);
			memcpy(&sin6->sin6_addr, *a, sizeof(sin6->sin6_addr));
			d->len = sizeof(*sin6);
		}
	}
	dns_one_done(q);
}

struct dns_query *dns_addr_query(struct dns_resolver *r, const char *host, unsigned port,
                                 dns_addr_cb cb, void *arg)
{
	struct dns_query *q = dns_query_new(r, host, arg);
	struct in_addr a4;
	struct in6_addr a6;
	q->addr_cb = cb;
	q->port = port;
	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
		/* An address literal: no lookup, the answer comes from the
		 * loop all the same. */
		struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *res;
		char ps[8];
		snprintf(ps, sizeof(ps), "%u", port);
		if (getaddrinfo(host, ps, &hints, &res) != 0 || res == NULL) {
			q->status = ARES_ENOTFOUND;
			snprintf(q->err, sizeof(q->err), "bad address %s", host);
		} else {
			q->av = xcalloc(1, sizeof(*q->av));
			memcpy(&q->av->ss, res->ai_addr, res->ai_addrlen);
			q->av->len = res->ai_addrlen;
			q->n = 1;
			q->status = ARES_SUCCESS;
			freeaddrinfo(res);
		}
		event_active(q->ev, EV_TIMEOUT, 1);
		return q;
	}
	q->status = ARES_ENOTFOUND;
	q->outstanding = 2;
	ares_gethostbyname(dnsloop_channel(r->loop), host, AF_INET, addr_cb, q);
	ares_gethostbyname(dnsloop_channel(r->loop), host, AF_INET6, addr_cb, q);
	dnsloop_rearm(r->loop);
	return q;
}

void dns_mx_free(struct dns_mx *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].host);
	free(v);
}

static int mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

void dns_mx_sort(struct dns_mx *v, size_t n)
{
	qsort(v, n, sizeof(*v), mx_cmp);
	/* RFC 5321 5.1: equal preferences are tried in random order so
	 * that the load spreads. */
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && v[j].pref == v[i].pref)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			size_t r = i + (size_t)random() % (k - i + 1);
			struct dns_mx t = v[k];
			v[k] = v[r];
			v[r] = t;
		}
		i = j;
	}
}

/* addr (16 octets for AF_INET6, 4 for AF_INET) is loopback or the
 * address of one of our interfaces. */
static int addr_is_local(int af, const unsigned char *addr)
{
	static const unsigned char lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if ((af == AF_INET && addr[0] == 127) || (af == AF_INET6 && memcmp(addr, lo6, 16) == 0))
		return 1;
	struct ifaddrs *ifs, *i;
	int found = 0;
	if (getifaddrs(&ifs) < 0)
		return 0;
	for (i = ifs; i && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != af)
			continue;
		if (af == AF_INET)
			found =
			    memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr, addr, 4) == 0;
		else
			found =
			    memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, addr, 16) == 0;
	}
	freeifaddrs(ifs);
	return found;
}

/* The address of sa as af and octets; a v4-mapped IPv6 one is IPv4. */
static int sockaddr_octets(const struct sockaddr_storage *ss, int *af, unsigned char *out)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (ss->ss_family == AF_INET) {
		*af = AF_INET;
		memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		*af = memcmp(a, mapped, 12) == 0 ? AF_INET : AF_INET6;
		memcpy(out, *af == AF_INET ? a + 12 : a, *af == AF_INET ? 4 : 16);
		return 0;
	}
	return -1;
}

int dns_is_self(const struct dns_self *self, const char *host)
{
	static const unsigned char any[16];
	size_t hl = strlen(host);
	/* A trailing dot is the same name. */
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (self->name && strlen(self->name) == hl && ascii_strncasecmp(host, self->name, hl) == 0)
		return 1;
	unsigned char a[16], l[16];
	int af = AF_INET, laf;
	if (inet_pton(AF_INET, host, a) != 1) {
		af = AF_INET6;
		if (inet_pton(AF_INET6, host, a) != 1)
			return 0; /* a name, and not ours */
	}
	for (size_t i = 0; i < self->nlisten; i++) {
		const struct sockaddr_storage *ss = &self->listen[i];
		if (sockaddr_port((const struct sockaddr *)ss) != self->port ||
		    sockaddr_octets(ss, &laf, l) < 0)
			continue;
		int wild = memcmp(l, any, laf == AF_INET ? 4 : 16) == 0;
		/* "[::]:25" takes IPv4 connections too (unless V6ONLY):
		 * counting it as ours errs on the side of no loop. */
		if (wild && (laf == af || (laf == AF_INET6 && af == AF_INET)) &&
		    addr_is_local(af, a))
			return 1;
		if (!wild && laf == af && memcmp(l, a, af == AF_INET ? 4 : 16) == 0)
			return 1;
	}
	return 0;
}

size_t dns_mx_prune_self(struct dns_mx *v, size_t n, const struct dns_self *self)
{
	for (size_t i = 0; i < n; i++) {
		if (dns_is_self(self, v[i].host)) {
			unsigned pref = v[i].pref;
			size_t keep = 0;
			while (keep < n && v[keep].pref < pref)
				keep++;
			for (size_t k = keep; k < n; k++)
				free(v[k].host);
			return keep;
		}
	}
	return n;
}
