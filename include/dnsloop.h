/*
 * dnsloop.h: a c-ares channel driven by a libevent loop (dnsloop.c).
 *
 * The one place where c-ares meets libevent: the channel's sockets become
 * events of the loop and one timer follows ares_timeout(), so lookups
 * never block. The callers (src/deliver/dns.c for MX and address lookups,
 * src/smtpd/rdns.c for reverse DNS) start their queries on
 * dnsloop_channel() and then call dnsloop_rearm(); what the queries
 * mean, and when their results are handed on, is theirs. Loop thread only.
 */
#ifndef TEMPOMX_DNSLOOP_H
#define TEMPOMX_DNSLOOP_H

#include <stddef.h>

#include <ares.h>

struct event_base;
struct dnsloop;

/* Initialise c-ares once per process; 0 or -1. */
int dnsloop_init(void);
/* servers: "" (resolv.conf) or a c-ares server list
 * ("127.0.0.1:5353,[::1]:53"); timeout_ms per try, tries per server.
 * NULL with a reason in err. */
struct dnsloop *dnsloop_new(struct event_base *base, const char *servers, int timeout_ms, int tries,
                            char *err, size_t errlen);
ares_channel dnsloop_channel(struct dnsloop *l);
/* The servers setting the channel was made with. */
const char *dnsloop_servers(const struct dnsloop *l);
/* After queries were started: follow c-ares' next timeout. */
void dnsloop_rearm(struct dnsloop *l);
/* Destroy the channel: c-ares calls back every query still under way
 * with ARES_EDESTRUCTION, from inside this call. */
void dnsloop_free(struct dnsloop *l);

#endif
