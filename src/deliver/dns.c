/*
 * dns.c: MX and address lookups for the delivery child, with c-ares.
 *
 * Each lookup runs a private c-ares channel to completion inside the
 * calling worker thread (poll on the channel's sockets), so the event loop
 * never waits and the "dns_servers" setting (tests use a server on a
 * loopback port) applies to every query. Called by the SMTP and LMTP jobs
 * of delivery.c through remote.c.
 *
 * Failures are classified as RFC 5321 section 5.1 needs: a name that does
 * not exist is permanent, a name with no MX falls back to its address
 * records, anything else (timeout, SERVFAIL, refused) is temporary.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns.h"
#include "util.h"

/* Per query: 3 s, tried twice per server (c-ares otherwise waits ~20 s). */
#define DNS_TIMEOUT_MS 3000
#define DNS_TRIES 2

static pthread_once_t dns_once = PTHREAD_ONCE_INIT;
static int dns_init_status;

static void dns_init_once(void)
{
	dns_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

int dns_init(void)
{
	pthread_once(&dns_once, dns_init_once);
	return dns_init_status == ARES_SUCCESS ? 0 : -1;
}

static int dns_channel(ares_channel *ch, const char *servers, char *err, size_t errlen)
{
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.timeout = DNS_TIMEOUT_MS;
	o.tries = DNS_TRIES;
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	if (dns_init() < 0) {
		snprintf(err, errlen, "cannot initialise the resolver");
		return -1;
	}
	int r = ares_init_options(ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(r));
		return -1;
	}
	if (servers && *servers) {
		r = ares_set_servers_ports_csv(*ch, servers);
		if (r != ARES_SUCCESS) {
			snprintf(err, errlen, "dns_servers '%s': %s", servers, ares_strerror(r));
			ares_destroy(*ch);
			return -1;
		}
	}
	return 0;
}

/* Run the channel until every query has called back. */
static void dns_run(ares_channel ch)
{
	for (;;) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		/* The ARES_GETSOCK_ macros shift a signed 1 into the sign bit;
		 * test the bits as unsigned. */
		unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		nfds_t n = 0;
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;
			if (bits & (1u << i))
				ev |= POLLIN;
			if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (ev == 0)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = ev;
			pfd[n].revents = 0;
			n++;
		}
		if (n == 0)
			return;
		struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
		int ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
		int pr = poll(pfd, n, ms);
		if (pr <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (nfds_t i = 0; i < n; i++) {
			ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
			if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				rfd = pfd[i].fd;
			if (pfd[i].revents & POLLOUT)
				wfd = pfd[i].fd;
			if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD)
				ares_process_fd(ch, rfd, wfd);
		}
	}
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

struct mx_query {
	int status;
	struct dns_mx *v;
	size_t n;
};

static void mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mx_query *q = arg;
	(void)timeouts;
	q->status = status;
	if (status != ARES_SUCCESS)
		return;
	struct ares_mx_reply *mx = NULL;
	q->status = ares_parse_mx_reply(abuf, alen, &mx);
	if (q->status != ARES_SUCCESS)
		return;
	for (struct ares_mx_reply *p = mx; p; p = p->next)
		q->n++;
	q->v = xcalloc(q->n ? q->n : 1, sizeof(*q->v));
	size_t i = 0;
	for (struct ares_mx_reply *p = mx; p; p = p->next, i++) {
		q->v[i].host = xstrdup(p->host);
		q->v[i].pref = p->priority;
	}
	ares_free_data(mx);
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

size_t dns_mx_prune_self(struct dns_mx *v, size_t n, const char *self)
{
	for (size_t i = 0; i < n; i++) {
		size_t hl = strlen(v[i].host);
		/* A trailing dot is the same name. */
		if (hl > 0 && v[i].host[hl - 1] == '.')
			hl--;
		if (strlen(self) == hl && ascii_strncasecmp(v[i].host, self, hl) == 0) {
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

int dns_mx_lookup(const char *servers, const char *domain, struct dns_mx **out, size_t *n,
                  char *err, size_t errlen)
{
	ares_channel ch;
	struct mx_query q = {.status = ARES_ETIMEOUT};
	*out = NULL;
	*n = 0;
	if (dns_channel(&ch, servers, err, errlen) < 0)
		return DNS_TEMP;
	ares_query(ch, domain, ns_c_in, ns_t_mx, mx_cb, &q);
	dns_run(ch);
	ares_destroy(ch);
	int st = dns_status_of(q.status);
	if (st == DNS_OK && q.n == 0)
		st = DNS_NODATA;
	if (st != DNS_OK) {
		dns_mx_free(q.v, q.n);
		snprintf(err, errlen, "MX lookup for %s: %s", domain, ares_strerror(q.status));
		return st;
	}
	dns_mx_sort(q.v, q.n);
	*out = q.v;
	*n = q.n;
	return DNS_OK;
}

struct addr_query {
	int status;
	unsigned port;
	struct dns_addr *v;
	size_t n;
};

static void addr_cb(void *arg, int status, int timeouts, struct hostent *h)
{
	struct addr_query *q = arg;
	(void)timeouts;
	if (status != ARES_SUCCESS || h == NULL) {
		/* Keep the most useful status: one family may be missing. */
		if (q->status != ARES_SUCCESS)
			q->status = status;
		return;
	}
	q->status = ARES_SUCCESS;
	for (char **a = h->h_addr_list; *a; a++) {
		q->v = xreallocarray(q->v, q->n + 1, sizeof(*q->v));
		struct dns_addr *d = &q->v[q->n++];
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
}

int dns_addr_lookup(const char *servers, const char *host, unsigned port, struct dns_addr **out,
                    size_t *n, char *err, size_t errlen)
{
	struct addr_query q = {.status = ARES_ENOTFOUND, .port = port};
	struct in_addr a4;
	struct in6_addr a6;
	*out = NULL;
	*n = 0;
	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
		struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *res;
		char ps[8];
		snprintf(ps, sizeof(ps), "%u", port);
		if (getaddrinfo(host, ps, &hints, &res) != 0 || res == NULL) {
			snprintf(err, errlen, "bad address %s", host);
			return DNS_NXDOMAIN;
		}
		*out = xcalloc(1, sizeof(**out));
		memcpy(&(*out)->ss, res->ai_addr, res->ai_addrlen);
		(*out)->len = res->ai_addrlen;
		*n = 1;
		freeaddrinfo(res);
		return DNS_OK;
	}
	ares_channel ch;
	if (dns_channel(&ch, servers, err, errlen) < 0)
		return DNS_TEMP;
	ares_gethostbyname(ch, host, AF_INET, addr_cb, &q);
	ares_gethostbyname(ch, host, AF_INET6, addr_cb, &q);
	dns_run(ch);
	ares_destroy(ch);
	int st = dns_status_of(q.status);
	if (st == DNS_OK && q.n == 0)
		st = DNS_NODATA;
	if (st != DNS_OK) {
		free(q.v);
		snprintf(err, errlen, "address lookup for %s: %s", host, ares_strerror(q.status));
		return st;
	}
	*out = q.v;
	*n = q.n;
	return DNS_OK;
}
