/*
 * remote.h: deliver a group of recipients of one message over SMTP or
 * LMTP (remote.c): resolve the route to hosts, connect, run the
 * transaction, try the next host when one fails.
 */
#ifndef TEMPOMX_REMOTE_H
#define TEMPOMX_REMOTE_H

#include <stdint.h>

#include "route.h"
#include "smtp_client.h"

struct remote_job {
	/* in */
	struct route route;
	char domain[256]; /* the recipients' domain (for "mx") */
	const char *self; /* our host name: never deliver to ourselves */
	const char *dns_servers;
	int connect_timeout;
	int64_t reuse_time; /* seconds a session is kept for the next message; 0 = off */
	int64_t max_per_destination, max_total; /* transactions at once; 0 = no limit */
	char key[300];                          /* the destination (filled in by remote_deliver) */
	struct smtp_opts opts;
	struct smtp_message msg;
	/* out: res[i] for msg.rcpts[i]; relay names the host that answered */
	struct smtp_result *res;
	char relay[300];
	char tls[128];
};

/* Fills every res[i].code (2xx, 4xx or 5xx). Blocking: worker thread. */
void remote_deliver(struct remote_job *j);
/* Close the parked sessions idle for max_age seconds or more (all of
 * them with max_age < 0). Blocking (QUIT): worker thread or shutdown. */
void remote_idle_expire(int64_t max_age);

#endif
