/*
 * route.h: the transport of a recipient domain (route.c), from the
 * "transport" table and "default_transport" of the config.
 */
#ifndef TEMPOMX_ROUTE_H
#define TEMPOMX_ROUTE_H

#include <stddef.h>

struct config;

/* Room for the address of an address literal, as text. */
#define ROUTE_LITERAL_MAX 64

enum route_kind {
	ROUTE_MAILDIR = 0,
	ROUTE_MX,       /* "mx", "smtp:" or "smtp::port": MX lookup of the
	                   recipient domain (an address literal: that address) */
	ROUTE_SMTP_MX,  /* "smtp:host[:port]": MX lookup of host */
	ROUTE_SMTP,     /* "smtp:[host]:port": that host, no MX lookup */
	ROUTE_LMTP,     /* "lmtp:[host]:port" */
	ROUTE_LMTP_UNIX /* "lmtp:unix:/path" */
};

struct route {
	enum route_kind kind;
	char host[256]; /* host name or address; the socket path for unix */
	unsigned port;
};

/* Parse one transport ("mx", "smtp:[10.0.0.5]:25" ...). Returns 0, or -1
 * with a reason in err. */
int route_parse(const char *text, struct route *r, char *err, size_t errlen);
/* An address-literal domain (RFC 5321 4.1.3): "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]" (tag in any case). Returns 0 when domain is no
 * literal (it does not start with '['), -1 when it is a malformed one,
 * 1 with the address in canonical numeric form in host (hostlen >=
 * ROUTE_LITERAL_MAX) and *v6 (may be NULL) set for an IPv6 literal. */
int route_literal(const char *domain, char *host, size_t hostlen, int *v6);
/* The route of domain: the transport table first (exact domain, then
 * ".parent" entries, longest first), then maildir for local domains,
 * then default_transport. Returns 0, or -1 with err if the table or the
 * default is malformed. */
int route_lookup(const struct config *cf, const char *domain, struct route *r, char *err,
                 size_t errlen);
/* Check the whole table and the default (at start and after SIGHUP). */
int route_check(const struct config *cf, char *err, size_t errlen);
/* Same destination (so the recipients can share one transaction). */
int route_equal(const struct route *a, const struct route *b);
/* The outbound TLS policy (enum tls_policy of smtp.h: 0 none,
 * 1 may, 2 encrypt, 3 verify) for a recipient domain and next-hop host,
 * from the tls_policy setting "DEFAULT [name=policy ...]". Returns -1
 * with err when the setting is malformed. */
int route_tls_policy(const char *setting, const char *domain, const char *host, char *err,
                     size_t errlen);
/* "smtp:[127.0.0.1]:2525" style text, for logs. */
void route_format(const struct route *r, char *buf, size_t len);

#endif
