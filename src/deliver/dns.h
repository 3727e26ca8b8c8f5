/*
 * dns.h: MX and address lookups for outbound delivery (dns.c), with
 * c-ares. The lookups block the calling worker thread (never the event
 * loop) for at most the resolver's timeout.
 */
#ifndef TEMPOMX_DNS_H
#define TEMPOMX_DNS_H

#include <stddef.h>
#include <sys/socket.h>

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

/* Initialise c-ares once per process (thread-safe). */
int dns_init(void);
/* MX records of domain, sorted by preference, shuffled among equal
 * preferences (RFC 5321 section 5.1). servers: "" or a c-ares server list
 * ("127.0.0.1:5353,[::1]:53"). Returns a dns_status; on DNS_OK *out is a
 * malloc'd array of *n entries (dns_mx_free it). */
int dns_mx_lookup(const char *servers, const char *domain, struct dns_mx **out, size_t *n,
                  char *err, size_t errlen);
void dns_mx_free(struct dns_mx *v, size_t n);
/* The A and AAAA records of host (an address literal is used as is), each
 * with port. Returns a dns_status; on DNS_OK *out is malloc'd. */
int dns_addr_lookup(const char *servers, const char *host, unsigned port, struct dns_addr **out,
                    size_t *n, char *err, size_t errlen);
/* Sort an MX list by preference, random order among equal ones. */
void dns_mx_sort(struct dns_mx *v, size_t n);
/* Apply RFC 5321 section 5.1's loop rule: if one of the hosts is us
 * (self, case-insensitive), drop it and every host whose preference is
 * the same or higher. Returns the count left. The list must be sorted. */
size_t dns_mx_prune_self(struct dns_mx *v, size_t n, const char *self);

#endif
