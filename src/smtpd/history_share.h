/*
 * history_share.h: smtpd's side of the shared sender history
 * (history_store = redis://... or unix:...): the Redis client of the
 * smtpd process and one lookup per session, for screen.c.
 */
#ifndef TEMPOMX_SMTPD_HISTORY_SHARE_H
#define TEMPOMX_SMTPD_HISTORY_SHARE_H

#include "history.h"

struct smtpd;
struct history_share;
struct history_async_req;

/* One session's view of the shared history. ok: the answer to the latest
 * lookup came and host/agg hold it; otherwise the local store decides. */
struct share_lookup {
	struct history_async_req *req; /* under way */
	int ok;
	int64_t at; /* mono_usec() of that answer */
	struct history_entry host, agg;
	void (*done)(void *arg); /* called when the answer (or the timeout) comes */
	void *arg;
};

/* NULL when history_store is lmdb, or unusable (logged). */
struct history_share *history_share_new(struct smtpd *srv);
void history_share_free(struct history_share *hs);

/* Start a lookup of addr; 1 when under way (done follows, from the
 * loop, within history_redis_timeout), 0 when the local store must
 * decide now (sharing off, Redis down). */
int history_share_lookup(struct history_share *hs, struct share_lookup *l,
                         const struct sockaddr *addr, void (*done)(void *arg), void *arg);
/* Before a decision later in the session (MAIL): look up again when the
 * latest answer is older than HISTORY_SHARE_FRESH_USEC, so a connection
 * kept open learns what the other MXes saw, without a second round trip
 * for the usual one-message session. The decision at DATA does not wait:
 * it uses the new answer when it has come by then, else the previous. */
#define HISTORY_SHARE_FRESH_USEC 1000000
void history_share_refresh(struct history_share *hs, struct share_lookup *l,
                           const struct sockaddr *addr);
void history_share_cancel(struct share_lookup *l);
void history_share_record(struct history_share *hs, const struct history_event *ev);

#endif
