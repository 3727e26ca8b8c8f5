/*
 * dns.h: asynchronous MX and address lookups for outbound delivery
 * (dns.c), with c-ares driven by the delivery event loop. Called by
 * remote.c in the loop thread only.
 */
#ifndef TEMPOMX_DNS_H
#define TEMPOMX_DNS_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;

enum dns_status {
	DNS_OK = 0,
	DNS_NODATA,   /* the name exists, no record of that type */
	DNS_NXDOMAIN, /* the name does not exist: a permanent failure */
	DNS_TEMP,     /* timeout, SERVFAIL, network: try again later */
};

struct dns_mx {
	char *host;
	unsigned pref;
};

struct dns_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* A c-ares channel whose sockets and timeouts are events of base. */
struct dns_resolver;
/* A lookup under way. */
struct dns_query;

/* Initialise c-ares once per process. */
int dns_init(void);
/* servers: "" (resolv.conf) or a c-ares server list
 * ("127.0.0.1:5353,[::1]:53"). NULL with a reason in err. */
struct dns_resolver *dns_resolver_new(struct event_base *base, const char *servers, char *err,
                                      size_t errlen);
/* The servers setting the resolver was made with. */
const char *dns_resolver_servers(const struct dns_resolver *r);
/* Free the resolver once its lookups have called back (at once if none
 * is under way); it takes no new lookups. */
void dns_resolver_retire(struct dns_resolver *r);
/* Free now: lookups under way are cancelled without calling back. */
void dns_resolver_free(struct dns_resolver *r);
/* Free the retired resolvers still waiting for lookups (at exit). */
void dns_shutdown(void);

/* On DNS_OK, v is a malloc'd array of n entries owned by the callee
 * (dns_mx_free / free it); err says why otherwise. The callbacks always
 * run from the event loop, never inside the call that started the
 * lookup. */
typedef void (*dns_mx_cb)(void *arg, int status, struct dns_mx *v, size_t n, const char *err);
typedef void (*dns_addr_cb)(void *arg, int status, struct dns_addr *v, size_t n, const char *err);

/* MX records of domain, sorted by preference, shuffled among equal
 * preferences (RFC 5321 section 5.1); no record is DNS_NODATA. */
struct dns_query *dns_mx_query(struct dns_resolver *r, const char *domain, dns_mx_cb cb, void *arg);
/* The A and AAAA records of host (an address literal is used as is),
 * each with port. */
struct dns_query *dns_addr_query(struct dns_resolver *r, const char *host, unsigned port,
                                 dns_addr_cb cb, void *arg);
/* Never call back for q (its results are dropped). */
void dns_query_cancel(struct dns_query *q);

void dns_mx_free(struct dns_mx *v, size_t n);
/* Sort an MX list by preference, random order among equal ones. */
void dns_mx_sort(struct dns_mx *v, size_t n);
/* Who we are, for the loop rule: our host name, and our listening
 * sockets with the port a connection would go to. A host given as an
 * address (an address literal, or an MX record naming an address) is us
 * when a connection to it on port would reach one of the listeners: the
 * same address, or any local address (loopback or an interface's) under
 * a wildcard listener of that port. */
struct dns_self {
	const char *name;
	const struct sockaddr_storage *listen;
	size_t nlisten;
	unsigned port;
};

/* Whether host (a name or a numeric address) is us. */
int dns_is_self(const struct dns_self *self, const char *host);
/* Apply RFC 5321 section 5.1's loop rule: if one of the hosts is us
 * (dns_is_self), drop it and every host whose preference is the same or
 * higher. Returns the count left. The list must be sorted. */
size_t dns_mx_prune_self(struct dns_mx *v, size_t n, const struct dns_self *self);

#endif
