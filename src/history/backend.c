/*
 * backend.c: the history store of one process (history_store.h): the
 * local LMDB backend and the answers every caller gets through it.
 * smtpd, the scanner and tempomxctl open their history here, never a
 * backend directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "history_store.h"
#include "util.h"

struct history_store {
	struct history *lmdb;
	struct history_backend local;
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
	return s;
}

void history_store_close(struct history_store *s)
{
	if (s == NULL)
		return;
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
	(void)s;
	return -1;
}

int history_store_lookup(struct history_store *s, const struct sockaddr *addr, int64_t now,
                         struct history_entry *host, struct history_entry *agg)
{
	return s->local.ops->lookup(s->local.impl, addr, now, host, agg);
}

int history_store_record(struct history_store *s, const struct history_event *ev, size_t n)
{
	int rc = s->local.ops->record(s->local.impl, ev, n);
	return rc;
}

int history_store_feedback(struct history_store *s, const struct cidr *net,
                           enum history_feedback fb, int64_t now, size_t *updated)
{
	int rc = s->local.ops->feedback(s->local.impl, net, fb, now, updated);
	return rc;
}

int history_store_forget(struct history_store *s, const struct cidr *net, size_t *removed)
{
	size_t local = 0;
	int rc = s->local.ops->forget(s->local.impl, net, &local);
	if (removed != NULL)
		*removed = local;
	return rc;
}

long history_store_iterate(struct history_store *s, const struct cidr *within, int64_t now,
                           history_iter_fn fn, void *arg)
{
	return s->local.ops->iterate(s->local.impl, within, now, fn, arg);
}

int history_store_expire(struct history_store *s, int64_t now, int64_t max_age, size_t max_records,
                         size_t *removed)
{
	return s->local.ops->expire(s->local.impl, now, max_age, max_records, removed);
}
