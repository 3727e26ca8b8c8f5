/*
 * history_store.h: where the sender history lives, behind one interface
 * (struct history_backend_ops): lookup, record, feedback, forget,
 * iterate and expire, with the meaning history.h gives them. The
 * prediction (predict.c) reads what a lookup returned and does not know
 * where it came from.
 *
 *   src/history/backend.c   the store of a process: its backends and
 *                           which one answers
 *   src/history/lmdb.c      the LMDB backend (store.c, admin.c behind it)
 *
 * Threads: a store may be shared by threads (the scanner's workers) as
 * history.h allows. Open it after fork(), as history_open() wants.
 */
#ifndef TEMPOMX_HISTORY_STORE_H
#define TEMPOMX_HISTORY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

typedef int (*history_iter_fn)(const char *text, const struct history_entry *e, void *arg);

struct history_backend_ops {
	const char *kind; /* "lmdb", "redis" */
	int (*lookup)(void *impl, const struct sockaddr *addr, int64_t now,
	              struct history_entry *host, struct history_entry *agg);
	int (*record)(void *impl, const struct history_event *ev, size_t n);
	int (*feedback)(void *impl, const struct cidr *net, enum history_feedback fb, int64_t now,
	                size_t *updated);
	int (*forget)(void *impl, const struct cidr *net, size_t *removed);
	long (*iterate)(void *impl, const struct cidr *within, int64_t now, history_iter_fn fn,
	                void *arg);
	/* history_sweep()'s contract; a backend whose records expire by
	 * themselves returns 1 with nothing removed. */
	int (*expire)(void *impl, int64_t now, int64_t max_age, size_t max_records,
	              size_t *removed);
	void (*close)(void *impl);
};

struct history_backend {
	const struct history_backend_ops *ops;
	void *impl;
};

struct history_store_settings {
	const char *path; /* the local store, <spool>/db */
	size_t map_size;
	int v4_prefix, v6_prefix;
	int64_t max_age;
};

struct history_store;
struct config;

/* The settings of the configuration (spool_directory/db, history_*);
 * path points into pathbuf. */
void history_store_settings(const struct config *cf, struct history_store_settings *st,
                            char *pathbuf, size_t pathlen);

/* Open the store; NULL when it cannot be opened (err set). */
struct history_store *history_store_open(const struct history_store_settings *st, char *err,
                                         size_t errlen);
void history_store_close(struct history_store *s);

int history_store_lookup(struct history_store *s, const struct sockaddr *addr, int64_t now,
                         struct history_entry *host, struct history_entry *agg);
int history_store_record(struct history_store *s, const struct history_event *ev, size_t n);
int history_store_feedback(struct history_store *s, const struct cidr *net,
                           enum history_feedback fb, int64_t now, size_t *updated);
int history_store_forget(struct history_store *s, const struct cidr *net, size_t *removed);
long history_store_iterate(struct history_store *s, const struct cidr *within, int64_t now,
                           history_iter_fn fn, void *arg);
int history_store_expire(struct history_store *s, int64_t now, int64_t max_age, size_t max_records,
                         size_t *removed);

/* The local LMDB handle (statistics, tests). */
struct history *history_store_local(struct history_store *s);
/* "lmdb"; whether the last remote operation succeeded (1), failed (0)
 * or there is no remote store (-1). */
const char *history_store_name(const struct history_store *s);
int history_store_remote_up(const struct history_store *s);

/* The backends. */
struct history_backend history_lmdb_backend(struct history *h);

#endif
