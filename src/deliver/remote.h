/*
 * remote.h: outbound delivery of groups of recipients over SMTP or LMTP
 * in the delivery event loop (remote.c): the destination's hosts, the
 * connection limits, the queue of waiting jobs and the cache of idle
 * sessions. Called by delivery.c.
 */
#ifndef TEMPOMX_REMOTE_H
#define TEMPOMX_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "route.h"
#include "smtp.h"

struct event_base;
struct remote;
struct remote_job;

/* Called from the loop when the job has finished; every res[i].code is
 * set (2xx, 4xx, 5xx) or, only when the job was cut off by remote_stop,
 * left 0: that recipient was not attempted, or got no final reply. */
typedef void (*remote_done_fn)(struct remote_job *j);

/* A group of recipients of one message for one destination: one
 * transaction. */
struct remote_job {
	/* in */
	struct route route;
	char domain[256];                      /* the recipients' domain (for "mx") */
	const char *self;                      /* our host name: never deliver to ourselves */
	const struct sockaddr_storage *listen; /* our listeners, likewise */
	size_t nlisten;
	const char *dns_servers;
	int connect_timeout;
	int64_t reuse_time; /* seconds a session is kept for the next message; 0 = off */
	int64_t max_per_destination, max_total; /* connections at once; 0 = no limit */
	struct smtp_opts opts;
	struct smtp_message msg;
	remote_done_fn done;
	/* out: res[i] for msg.rcpts[i]; relay names the host that answered */
	struct smtp_result *res;
	char relay[300];
	char tls[128];
	int dsn;         /* the host that answered offered DSN (it got msg's DSN parameters) */
	int64_t started; /* wall clock, usec: left the queue */

	/* remote.c's own */
	struct remote *r;
	struct remote_job *next;
	char key[300]; /* the destination */
	struct smtp_session *s;
	int reused;
	struct dns_query *q;
	struct dns_mx *mx;
	size_t nmx, mxi;
	unsigned port;
	struct dns_addr *addrs;
	size_t naddr, ai;
	const char *host;
	int tries;
	int fail_code;
	char fail[700];
};

struct remote *remote_new(struct event_base *base);
/* Queue j (FIFO); it runs when the connection limits allow. */
void remote_submit(struct remote *r, struct remote_job *j);
/* Shutdown: queued and running jobs finish at once (their undecided
 * recipients stay 0), idle sessions say QUIT. drained(arg) is called
 * when the last session is gone. */
void remote_stop(struct remote *r, void (*drained)(void *), void *arg);
/* Jobs queued or running, or sessions still open. */
int remote_busy(const struct remote *r);
void remote_free(struct remote *r);

#endif
