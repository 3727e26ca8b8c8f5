/*
 * history_store.h: where the sender history lives, behind one interface:
 * the local LMDB store (history.h, always there) and, when the config
 * says history_store = redis://... or unix:..., a Redis server shared by
 * several MXes (src/history/redis.c).
 *
 *   src/history/backend.c   the store: settings, the local and the remote
 *                           backend, which one answers, fallback
 *   src/history/lmdb.c      the LMDB backend (store.c, admin.c behind it)
 *   src/history/redis.c     the Redis backend (blocking hiredis context)
 *   src/history/redis_async.c  the lookups and records of smtpd, inside
 *                           its event loop (hiredis' libevent adapter)
 *   src/history/redis_proto.c  keys, Lua scripts and hash <-> record,
 *                           shared by both Redis clients
 *
 * Every backend offers the same operations (struct history_backend_ops):
 * lookup, record, feedback, forget, iterate and expire, with the meaning
 * history.h gives them; the prediction (predict.c) reads what a lookup
 * returned and does not know where it came from.
 *
 * With a remote store, every host keeps writing its local LMDB copy too:
 * records, feedback and forgetting go to both; lookups and listings ask
 * the remote store and fall back to the local copy when it does not
 * answer (down, timeout, wrong password), with one log line when the
 * remote store goes away and one when it is back (never a line per
 * operation). Expiry of remote records is Redis' own (EXPIRE, refreshed
 * on each update); the local copy is swept as before.
 *
 * Threads: a store may be shared by threads (the scanner's workers); the
 * remote backend serialises its one connection with a mutex. Open it
 * after fork(), as history_open() wants.
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

/* Where a remote store is (history_store, parsed by history_remote_parse()). */
struct history_remote {
	int unix_socket; /* 1: path, 0: host and port */
	char host[256];
	int port;
	char path[256];
	int db;             /* SELECT; 0 by default */
	char password[512]; /* AUTH; "" = none */
	int timeout_ms;     /* every operation and connect */
	char text[300];     /* for log lines, without the password */
};

/* "lmdb" (or "") -> 0 with *is_remote = 0; "redis://HOST:PORT[/DB]",
 * "redis://[v6addr]:PORT[/DB]" or "unix:/path[?db=N]" -> 0 with the
 * fields filled; anything else -1 with the reason in err. */
int history_remote_parse(const char *spec, struct history_remote *r, int *is_remote, char *err,
                         size_t errlen);
/* Read the AUTH password from file (the first line; the file must be a
 * regular file not readable or writable by others). 0, or -1 with err. */
int history_remote_password(const char *file, struct history_remote *r, char *err, size_t errlen);

struct history_store_settings {
	const char *path; /* the local store, <spool>/db */
	size_t map_size;
	int v4_prefix, v6_prefix;
	int64_t max_age;
	const char *remote;        /* history_store */
	const char *password_file; /* history_redis_password_file, "" = none */
	int timeout_ms;            /* history_redis_timeout */
	int local_only;            /* 1: open only LMDB (smtpd talks to Redis itself) */
};

struct history_store;
struct config;

/* The settings of the configuration (spool_directory/db, history_*);
 * path points into pathbuf. */
void history_store_settings(const struct config *cf, struct history_store_settings *st,
                            char *pathbuf, size_t pathlen);

/* Open the local store and, when configured (and not local_only), the
 * remote one. NULL only when the local store cannot be opened (err set).
 * A remote store that is misconfigured, unreachable or refuses the
 * password is logged and the store works from LMDB alone. */
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
/* "lmdb", or the remote store's address; whether the last remote
 * operation succeeded (1), failed (0) or there is none (-1). */
const char *history_store_name(const struct history_store *s);
int history_store_remote_up(const struct history_store *s);

/* The backends. */
struct history_backend history_lmdb_backend(struct history *h);
/* A blocking Redis client; never fails to build (it connects on first
 * use, and again after a failure once its backoff has passed). */
struct history_backend history_redis_backend(const struct history_remote *r, int v4_prefix,
                                             int v6_prefix, int64_t max_age);
/* -1: never tried, 0: the last attempt failed, 1: the last one worked. */
int history_redis_backend_up(const struct history_backend *be);

/* smtpd's client (redis_async.c), in its event loop. */
struct event_base;
struct history_async;
struct history_async_req;
/* ok = 0: no answer in time, or the connection broke (host, agg NULL). */
typedef void (*history_async_cb)(void *arg, int ok, const struct history_entry *host,
                                 const struct history_entry *agg);
/* Connects at once, in the background. r->timeout_ms bounds each lookup. */
struct history_async *history_async_new(struct event_base *base, const struct history_remote *r,
                                        int v4_prefix, int v6_prefix, int64_t max_age);
void history_async_free(struct history_async *a);
int history_async_up(const struct history_async *a);
/* NULL when Redis is not connected now (decide locally); else cb is
 * called once, from the loop, never from inside this call, unless the
 * request is cancelled first. */
struct history_async_req *history_async_lookup(struct history_async *a, const struct sockaddr *addr,
                                               int64_t now, history_async_cb cb, void *arg);
void history_async_cancel(struct history_async_req *q);
/* Sent and forgotten; nothing while Redis is down. */
void history_async_record(struct history_async *a, const struct history_event *ev);

#endif
