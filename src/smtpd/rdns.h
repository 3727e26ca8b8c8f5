/*
 * rdns.h: the client's name from reverse DNS (rdns.c), forward-confirmed
 * as Postfix's smtpd does it: the PTR record of the address, then the A
 * (IPv4) or AAAA (IPv6) records of that name, one of which must be the
 * client's address. Private to src/smtpd/.
 *
 * session.c starts a lookup for each new session (unless reverse_dns
 * = no) and holds the final greeting line until the answer; the answer
 * always comes through the callback, from an event of its own, never from
 * inside rdns_lookup(). A lookup is bounded by reverse_dns_timeout, and
 * answers are cached per address. server.c calls rdns_init(),
 * rdns_reload() on SIGHUP and rdns_free().
 */
#ifndef TEMPOMX_SMTPD_RDNS_H
#define TEMPOMX_SMTPD_RDNS_H

#include <sys/socket.h>

#include "rdnsname.h"
#include "smtpd.h"

struct rdns_answer {
	enum session_rdns result;
	char name[RDNSNAME_MAX + 1]; /* the confirmed name; "" unless RDNS_CONFIRMED */
	char ptr[RDNSNAME_MAX + 1];  /* what the PTR record said; "" when nothing usable */
};

typedef void (*rdns_cb)(void *arg, const struct rdns_answer *a);

struct rdns_query;

/* The name of peer; cb(arg, answer) runs later from the loop, unless the
 * lookup is cancelled first. */
struct rdns_query *rdns_lookup(struct smtpd *srv, const struct sockaddr *peer, rdns_cb cb,
                               void *arg);
/* Never call back (the session is going away). The lookup itself goes
 * on, and its answer still fills the cache. */
void rdns_cancel(struct rdns_query *q);

void rdns_init(struct smtpd *srv);
/* SIGHUP: the cache is emptied; a new dns_servers applies to the next
 * lookups (the ones under way end as temporary failures). */
void rdns_reload(struct smtpd *srv);
void rdns_free(struct smtpd *srv);

#endif
