/*
 * history_share.c: the shared sender history in smtpd: the process's
 * Redis client (src/history/redis_async.c, in smtpd's event loop) and
 * the lookups screen.c starts at connect and at MAIL (when the answer it
 * has is more than a second old), whose answers
 * replace the local store's records in the prediction while they come
 * in time. Records of sessions go to Redis from here and to the local
 * store through screen.c's writer thread, as before.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "history_share.h"
#include "history_store.h"
#include "log.h"
#include "smtpd.h"
#include "tempomx.h"
#include "util.h"

struct history_share {
	struct history_async *a;
};

struct history_share *history_share_new(struct smtpd *srv)
{
	const struct config *cf = srv->rt->cf;
	struct history_remote r;
	int is_remote;
	char why[600];
	if (history_remote_parse(cf->history_store, &r, &is_remote, why, sizeof(why)) != 0) {
		log_warnx("history: %s; using the local history only", why);
		return NULL;
	}
	if (!is_remote)
		return NULL;
	if (history_remote_password(cf->history_redis_password_file, &r, why, sizeof(why)) != 0) {
		log_warnx("history: Redis at %s not used: %s; using the local history only", r.text,
		          why);
		return NULL;
	}
	r.timeout_ms = (int)cf->history_redis_timeout;
	struct history_share *hs = xcalloc(1, sizeof(*hs));
	hs->a = history_async_new(srv->base, &r, (int)cf->history_v4_prefix,
	                          (int)cf->history_v6_prefix, cf->history_max_age);
	explicit_bzero(r.password, sizeof(r.password));
	return hs;
}

void history_share_free(struct history_share *hs)
{
	if (hs == NULL)
		return;
	history_async_free(hs->a);
	free(hs);
}

static void answered(void *arg, int ok, const struct history_entry *host,
                     const struct history_entry *agg)
{
	struct share_lookup *l = arg;
	l->req = NULL;
	l->ok = ok;
	if (ok) {
		l->host = *host;
		l->agg = *agg;
		l->at = mono_usec();
	}
	if (l->done != NULL)
		l->done(l->arg);
}

int history_share_lookup(struct history_share *hs, struct share_lookup *l,
                         const struct sockaddr *addr, void (*done)(void *arg), void *arg)
{
	if (hs == NULL) {
		l->ok = 0;
		return 0;
	}
	if (l->req != NULL)
		return 1; /* the one under way will do */
	l->done = done;
	l->arg = arg;
	l->req = history_async_lookup(hs->a, addr, time(NULL), answered, l);
	if (l->req == NULL)
		l->ok = 0;
	return l->req != NULL;
}

void history_share_refresh(struct history_share *hs, struct share_lookup *l,
                           const struct sockaddr *addr)
{
	if (l->ok && mono_usec() - l->at < HISTORY_SHARE_FRESH_USEC)
		return;
	history_share_lookup(hs, l, addr, NULL, NULL);
}

void history_share_cancel(struct share_lookup *l)
{
	if (l->req != NULL)
		history_async_cancel(l->req);
	l->req = NULL;
}

void history_share_record(struct history_share *hs, const struct history_event *ev)
{
	if (hs != NULL)
		history_async_record(hs->a, ev);
}
