/*
 * backend.c: the history store of one process (history_store.h): the
 * local LMDB backend, always open, the remote Redis backend when
 * history_store names one, and which of them answers. smtpd, the scanner
 * and tempomxctl open their history here, never a backend directly.
 *
 * Writes (record, feedback, forget) go to the local store first, then to
 * the remote one; a remote failure is logged once by the backend (it goes
 * "down" and retries after a backoff) and the operation reports failure
 * only for feedback and forget, which an admin asked for and must know
 * did not reach the shared store. Reads (lookup, iterate) ask the remote
 * store and fall back to the local copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "history_store.h"
#include "log.h"
#include "util.h"

struct history_store {
	struct history *lmdb;
	struct history_backend local;
	struct history_backend remote; /* ops NULL: none */
	char name[300];
};

void history_store_settings(const struct config *cf, struct history_store_settings *st,
                            char *pathbuf, size_t pathlen)
{
	memset(st, 0, sizeof(*st));
	snprintf(pathbuf, pathlen, "%s/db", cf->spool_directory);
	st->path = pathbuf;
	st->map_size = (size_t)cf->history_map_size;
	st->v4_prefix = (int)cf->history_v4_prefix;
	st->v6_prefix = (int)cf->history_v6_prefix;
	st->max_age = cf->history_max_age;
	st->remote = cf->history_store;
	st->password_file = cf->history_redis_password_file;
	st->timeout_ms = (int)cf->history_redis_timeout;
}

struct history_store *history_store_open(const struct history_store_settings *st, char *err,
                                         size_t errlen)
{
	struct history *h = history_open(st->path, st->map_size, err, errlen);
	if (h == NULL)
		return NULL;
	if (history_configure(h, st->v4_prefix, st->v6_prefix, st->max_age) != 0) {
		snprintf(err, errlen,
		         "history: bad history_v4_prefix, history_v6_prefix or "
		         "history_max_age");
		history_close(h);
		return NULL;
	}
	struct history_store *s = xcalloc(1, sizeof(*s));
	s->lmdb = h;
	s->local = history_lmdb_backend(h);
	snprintf(s->name, sizeof(s->name), "lmdb");
	if (st->local_only)
		return s;

	struct history_remote r;
	int is_remote;
	char why[600];
	if (history_remote_parse(st->remote, &r, &is_remote, why, sizeof(why)) != 0) {
		log_warnx("history: %s; using the local history only", why);
		return s;
	}
	if (!is_remote)
		return s;
	if (history_remote_password(st->password_file, &r, why, sizeof(why)) != 0) {
		log_warnx("history: Redis at %s not used: %s; using the local history only", r.text,
		          why);
		return s;
	}
	r.timeout_ms = st->timeout_ms > 0 ? st->timeout_ms : 200;
	snprintf(s->name, sizeof(s->name), "%s", r.text);
	s->remote = history_redis_backend(&r, st->v4_prefix, st->v6_prefix, st->max_age);
	explicit_bzero(r.password, sizeof(r.password));
	return s;
}

void history_store_close(struct history_store *s)
{
	if (s == NULL)
		return;
	if (s->remote.ops != NULL)
		s->remote.ops->close(s->remote.impl);
	s->local.ops->close(s->local.impl);
	free(s);
}

struct history *history_store_local(struct history_store *s)
{
	return s != NULL ? s->lmdb : NULL;
}

const char *history_store_name(const struct history_store *s)
{
	return s->name;
}

int history_store_remote_up(const struct history_store *s)
{
	if (s->remote.ops == NULL)
		return -1;
	return history_redis_backend_up(&s->remote);
}

int history_store_lookup(struct history_store *s, const struct sockaddr *addr, int64_t now,
                         struct history_entry *host, struct history_entry *agg)
{
	if (s->remote.ops != NULL &&
	    s->remote.ops->lookup(s->remote.impl, addr, now, host, agg) == 0)
		return 0;
	return s->local.ops->lookup(s->local.impl, addr, now, host, agg);
}

int history_store_record(struct history_store *s, const struct history_event *ev, size_t n)
{
	int rc = s->local.ops->record(s->local.impl, ev, n);
	if (s->remote.ops != NULL)
		(void)s->remote.ops->record(s->remote.impl, ev, n); /* logged as it goes down */
	return rc;
}

int history_store_feedback(struct history_store *s, const struct cidr *net,
                           enum history_feedback fb, int64_t now, size_t *updated)
{
	int rc = s->local.ops->feedback(s->local.impl, net, fb, now, updated);
	if (rc != 0 || s->remote.ops == NULL)
		return rc;
	if (s->remote.ops->feedback(s->remote.impl, net, fb, now, updated) != 0) {
		log_warnx("history: feedback recorded locally but not in %s", s->name);
		return -1;
	}
	return 0;
}

int history_store_forget(struct history_store *s, const struct cidr *net, size_t *removed)
{
	size_t local = 0;
	int rc = s->local.ops->forget(s->local.impl, net, &local);
	if (removed != NULL)
		*removed = local;
	if (rc != 0 || s->remote.ops == NULL)
		return rc;
	if (s->remote.ops->forget(s->remote.impl, net, removed) != 0) {
		log_warnx("history: records removed locally but not from %s", s->name);
		return -1;
	}
	return 0;
}

long history_store_iterate(struct history_store *s, const struct cidr *within, int64_t now,
                           history_iter_fn fn, void *arg)
{
	if (s->remote.ops != NULL) {
		long n = s->remote.ops->iterate(s->remote.impl, within, now, fn, arg);
		if (n >= 0)
			return n;
		log_warnx("history: listing the local history instead of %s", s->name);
	}
	return s->local.ops->iterate(s->local.impl, within, now, fn, arg);
}

int history_store_expire(struct history_store *s, int64_t now, int64_t max_age, size_t max_records,
                         size_t *removed)
{
	return s->local.ops->expire(s->local.impl, now, max_age, max_records, removed);
}
