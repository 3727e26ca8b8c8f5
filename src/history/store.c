/*
 * store.c: the sender-history store, an LMDB environment in
 * <spool_directory>/db/ (data.mdb, lock.mdb).
 *
 * Owns the environment of one process: open/close, the map size, every
 * transaction, lookups and recording events. Called by smtpd, the scanner
 * and tempomxctl through include/history.h. The key and record format is
 * in record.c, feedback/listing/sweep in admin.c, the prediction from a
 * record in predict.c.
 *
 * Durability. History is not mail: losing the last few updates on a power
 * failure is acceptable, a corrupt store is not. The environment is
 * therefore opened with MDB_NOMETASYNC: a commit fsyncs the data pages but
 * leaves the meta page to the next commit or to the kernel, so a system
 * crash may undo the last committed transaction while LMDB stays
 * consistent (it keeps two meta pages and always falls back to the last
 * one whose pages are on disk). MDB_NOSYNC is not used: with it, a
 * filesystem that reorders writes (ext4 does) can leave a meta page that
 * points at pages never written, i.e. a corrupt store. A killed process
 * (as opposed to a crashed system) loses nothing: its committed pages are
 * already in the page cache, and LMDB's robust mutexes let the next
 * writer take over a write lock it held.
 *
 * Threads. MDB_NOTLS: a read transaction owns its reader slot instead of
 * the thread, so any thread may run lookups. Every public function runs
 * its own short transaction. maplock is held shared for the life of each
 * transaction and exclusively to change the map size, because LMDB
 * requires that no transaction of this process be active then. When a
 * write fails with MDB_MAP_FULL the transaction is aborted, the map is
 * doubled and the whole transaction is run again; when another process has
 * grown the map, mdb_txn_begin() says MDB_MAP_RESIZED and we adopt the
 * new size.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "history_int.h"
#include "log.h"
#include "util.h"

#define GROW_TRIES 24
#define BEGIN_TRIES 4
/* Hard ceiling for the map: beyond this the disk is the problem. */
#define MAP_MAX ((size_t)1 << (sizeof(size_t) >= 8 ? 38 : 30))
#define MAP_MIN ((size_t)1 << 20)

/* Bumped in every child right after fork(), so a handle can tell that it
 * was inherited without a getpid() system call per operation. */
static unsigned fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	fork_generation++;
}

static void fork_watch(void)
{
	if (pthread_atfork(NULL, NULL, fork_child) != 0)
		fatalx("history: pthread_atfork failed");
}

/* ---- environment and transactions ---------------------------------------- */

int history_handle_ok(struct history *h)
{
	if (h == NULL)
		return 0;
	if (h->fork_gen != fork_generation) {
		log_warnx("history: store %s used through a handle inherited across fork; "
		          "open it again in this process",
		          h->path);
		return 0;
	}
	return 1;
}

static size_t map_size_now(struct history *h)
{
	MDB_envinfo info;
	if (mdb_env_info(h->env, &info) != 0)
		return 0;
	return info.me_mapsize;
}

/* Another process grew the map beyond ours: adopt its size. */
static int map_adopt(struct history *h)
{
	pthread_rwlock_wrlock(&h->maplock);
	int rc = mdb_env_set_mapsize(h->env, 0);
	pthread_rwlock_unlock(&h->maplock);
	return rc;
}

/* Double the map, unless another thread already grew it past seen. */
static int map_grow(struct history *h, size_t seen)
{
	int rc = 0;
	pthread_rwlock_wrlock(&h->maplock);
	size_t cur = map_size_now(h);
	if (cur == seen) {
		if (cur >= MAP_MAX) {
			rc = MDB_MAP_FULL;
		} else {
			size_t want = cur > MAP_MAX / 2 ? MAP_MAX : cur * 2;
			rc = mdb_env_set_mapsize(h->env, want);
			if (rc == 0)
				log_notice("history: store %s map grown to %zu MiB", h->path,
				           map_size_now(h) >> 20);
		}
	}
	pthread_rwlock_unlock(&h->maplock);
	return rc;
}

/* Begin a transaction holding maplock shared until history_txn_abort()
 * or history_txn_commit(). */
int history_txn_begin(struct history *h, unsigned flags, MDB_txn **txn)
{
	int rc = 0;
	for (int tries = 0; tries < BEGIN_TRIES; tries++) {
		pthread_rwlock_rdlock(&h->maplock);
		rc = mdb_txn_begin(h->env, NULL, flags, txn);
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&h->maplock);
		if (rc == MDB_MAP_RESIZED) {
			if (map_adopt(h) != 0)
				break;
		} else if (rc == MDB_READERS_FULL) {
			/* Slots of killed processes are only freed by a check. */
			int dead = 0;
			if (mdb_reader_check(h->env, &dead) != 0 || dead == 0)
				break;
		} else {
			break;
		}
	}
	return rc;
}

void history_txn_abort(struct history *h, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&h->maplock);
}

int history_txn_commit(struct history *h, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn); /* frees txn even when it fails */
	pthread_rwlock_unlock(&h->maplock);
	return rc;
}

/* Run body in a write transaction; on MDB_MAP_FULL grow the map and run
 * it again from the start (the aborted attempt left nothing behind). */
int history_write_txn(struct history *h, const char *what,
                      int (*body)(struct history *, MDB_txn *, void *), void *arg)
{
	for (int attempt = 0; attempt < GROW_TRIES; attempt++) {
		MDB_txn *txn;
		int rc = history_txn_begin(h, 0, &txn);
		if (rc != 0) {
			log_warnx("history: %s: cannot begin a write in %s: %s", what, h->path,
			          mdb_strerror(rc));
			return -1;
		}
		size_t seen = map_size_now(h);
		rc = body(h, txn, arg);
		if (rc == 0) {
			rc = history_txn_commit(h, txn);
		} else {
			history_txn_abort(h, txn);
			if (rc == HISTORY_TXN_LOGGED)
				return -1;
		}
		if (rc == 0)
			return 0;
		if (rc != MDB_MAP_FULL) {
			log_warnx("history: %s: write to %s failed: %s", what, h->path,
			          mdb_strerror(rc));
			return -1;
		}
		if (map_grow(h, seen) != 0) {
			log_warnx("history: %s: store %s is full at %zu MiB", what, h->path,
			          seen >> 20);
			return -1;
		}
	}
	log_warnx("history: %s: store %s still full after growing the map", what, h->path);
	return -1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A data file shorter than the pages LMDB believes in would fault on
 * access (SIGBUS) instead of failing: refuse it at open. */
static int check_file_size(struct history *h, char *err, size_t errlen)
{
	MDB_envinfo info;
	MDB_stat st;
	int fd;
	struct stat sb;
	if (mdb_env_info(h->env, &info) != 0 || mdb_env_stat(h->env, &st) != 0 ||
	    mdb_env_get_fd(h->env, &fd) != 0 || fstat(fd, &sb) != 0) {
		set_err(err, errlen, "history store %s: cannot inspect the data file", h->path);
		return -1;
	}
	uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if ((uint64_t)sb.st_size < need) {
		set_err(err, errlen,
		        "history store %s is truncated (%lld of %llu bytes); move %s/data.mdb "
		        "away to start a new history",
		        h->path, (long long)sb.st_size, (unsigned long long)need, h->path);
		return -1;
	}
	return 0;
}

/* The caller reports the error when it gave a buffer; otherwise we do. */
static void open_failed(const char *msg, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
	else
		log_warnx("%s", msg);
}

struct history *history_open(const char *path, size_t map_size, char *err, size_t errlen)
{
	struct history *h;
	MDB_txn *txn;
	int rc, dead = 0;
	char msg[1024] = "";

	if (map_size == 0)
		map_size = HISTORY_DEFAULT_MAP_SIZE;
	if (map_size < MAP_MIN)
		map_size = MAP_MIN;
	if (map_size > MAP_MAX)
		map_size = MAP_MAX;
	if (mkdir_p(path, 0700) != 0) {
		set_err(msg, sizeof(msg), "history store %s: %s", path, strerror(errno));
		open_failed(msg, err, errlen);
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->path = xstrdup(path);
	pthread_once(&fork_once, fork_watch);
	h->fork_gen = fork_generation;
	h->v4_prefix = HISTORY_DEFAULT_V4_PREFIX;
	h->v6_prefix = HISTORY_DEFAULT_V6_PREFIX;
	h->max_age = HISTORY_DEFAULT_MAX_AGE;

	/* Prefer the writer that wants to grow the map over a stream of
	 * readers, so a resize never starves. */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (pthread_rwlock_init(&h->maplock, &ra) != 0 ||
	    pthread_mutex_init(&h->sweeplock, NULL) != 0)
		fatalx("history: cannot initialise locks");
	pthread_rwlockattr_destroy(&ra);

	if ((rc = mdb_env_create(&h->env)) != 0) {
		set_err(msg, sizeof(msg), "history store %s: %s", path, mdb_strerror(rc));
		goto fail_noenv;
	}
	mdb_env_set_maxreaders(h->env, 256);
	mdb_env_set_mapsize(h->env, map_size);
	rc = mdb_env_open(h->env, path, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	if (rc != 0) {
		if (rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_VERSION_MISMATCH ||
		    rc == MDB_PAGE_NOTFOUND)
			set_err(msg, sizeof(msg),
			        "history store %s is unreadable (%s); move %s/data.mdb away to "
			        "start a new history",
			        path, mdb_strerror(rc), path);
		else
			set_err(msg, sizeof(msg), "history store %s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	if (check_file_size(h, msg, sizeof(msg)) != 0)
		goto fail;
	/* Reader slots of processes that died (killed children) stay taken
	 * until someone checks. */
	if (mdb_reader_check(h->env, &dead) == 0 && dead > 0)
		log_info("history: store %s: cleared %d stale reader slots", path, dead);
	rc = history_txn_begin(h, 0, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, NULL, 0, &h->dbi);
		if (rc == 0)
			rc = history_txn_commit(h, txn);
		else
			history_txn_abort(h, txn);
	}
	if (rc != 0) {
		set_err(msg, sizeof(msg), "history store %s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	return h;

fail:
	mdb_env_close(h->env);
fail_noenv:
	pthread_rwlock_destroy(&h->maplock);
	pthread_mutex_destroy(&h->sweeplock);
	free(h->path);
	free(h);
	open_failed(msg, err, errlen);
	return NULL;
}

void history_close(struct history *h)
{
	if (h == NULL)
		return;
	/* In a forked child the environment belongs to the parent: closing
	 * it here would release the parent's reader slots and locks. */
	if (h->fork_gen == fork_generation) {
		mdb_env_close(h->env);
		pthread_rwlock_destroy(&h->maplock);
		pthread_mutex_destroy(&h->sweeplock);
	}
	free(h->path);
	free(h);
}

int history_configure(struct history *h, int v4_prefix, int v6_prefix, int64_t max_age)
{
	if (h == NULL || v4_prefix < 8 || v4_prefix > 32 || v6_prefix < 16 || v6_prefix > 128 ||
	    max_age < 0)
		return -1;
	h->v4_prefix = v4_prefix;
	h->v6_prefix = v6_prefix;
	h->max_age = max_age;
	return 0;
}

int history_stat(struct history *h, size_t *records, size_t *map_size)
{
	MDB_txn *txn;
	MDB_stat st;
	if (!history_handle_ok(h))
		return -1;
	int rc = history_txn_begin(h, MDB_RDONLY, &txn);
	if (rc != 0) {
		log_warnx("history: stat %s: %s", h->path, mdb_strerror(rc));
		return -1;
	}
	rc = mdb_stat(txn, h->dbi, &st);
	if (map_size != NULL)
		*map_size = map_size_now(h);
	history_txn_abort(h, txn);
	if (rc != 0) {
		log_warnx("history: stat %s: %s", h->path, mdb_strerror(rc));
		return -1;
	}
	if (records != NULL)
		*records = st.ms_entries;
	return 0;
}

/* ---- lookup and record --------------------------------------------------- */

static int get_entry(struct history *h, MDB_txn *txn, struct history_entry *e, int64_t now)
{
	int readable;
	int rc = history_txn_get(h, txn, &e->net, &e->rec, &readable);
	if (rc != 0)
		return rc;
	if (!readable) {
		char text[HISTORY_NET_TEXT];
		history_net_format(&e->net, text, sizeof(text));
		log_debug("history: unreadable record for %s ignored", text);
		memset(&e->rec, 0, sizeof(e->rec));
		return 0;
	}
	e->present = !history_rec_expired(&e->rec, now, h->max_age);
	return 0;
}

int history_lookup(struct history *h, const struct sockaddr *addr, int64_t now,
                   struct history_entry *host, struct history_entry *agg)
{
	MDB_txn *txn;
	memset(host, 0, sizeof(*host));
	memset(agg, 0, sizeof(*agg));
	if (!history_handle_ok(h))
		return -1;
	if (history_sockaddr_net(addr, &host->net) != 0) {
		log_warnx("history: lookup: unsupported address family");
		return -1;
	}
	agg->net = host->net;
	agg->net.bits = history_agg_bits(h, host->net.family);
	history_mask_addr(agg->net.addr, agg->net.family, agg->net.bits);

	int rc = history_txn_begin(h, MDB_RDONLY, &txn);
	if (rc != 0) {
		log_warnx("history: lookup in %s: %s", h->path, mdb_strerror(rc));
		return -1;
	}
	rc = get_entry(h, txn, host, now);
	if (rc == 0 && agg->net.bits < host->net.bits)
		rc = get_entry(h, txn, agg, now);
	history_txn_abort(h, txn);
	if (rc != 0) {
		log_warnx("history: lookup in %s: %s", h->path, mdb_strerror(rc));
		host->present = agg->present = 0;
		return -1;
	}
	return 0;
}

int history_txn_get(struct history *h, MDB_txn *txn, const struct cidr *net,
                    struct history_record *r, int *readable)
{
	struct history_rawkey k;
	MDB_val kv, v;
	history_key_make(&k, net->family, net->addr, net->bits);
	kv.mv_size = k.len;
	kv.mv_data = k.b;
	*readable = 0;
	int rc = mdb_get(txn, h->dbi, &kv, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	*readable = history_rec_decode(&v, r) == 0;
	return 0;
}

int history_txn_put(struct history *h, MDB_txn *txn, const struct cidr *net,
                    const struct history_record *r)
{
	struct history_rawkey k;
	MDB_val kv, v;
	history_key_make(&k, net->family, net->addr, net->bits);
	kv.mv_size = k.len;
	kv.mv_data = k.b;
	v.mv_size = sizeof(*r);
	v.mv_data = (void *)r;
	return mdb_put(txn, h->dbi, &kv, &v, 0);
}

/* Read-modify-write one key inside the caller's transaction. For a host
 * (votes != NULL) the host's vote before and after is returned; for a
 * network (moved != NULL) a changed vote of one of its hosts is counted. */
static int put_event(struct history *h, MDB_txn *txn, const struct cidr *net,
                     const struct history_event *ev, enum history_vote votes[2],
                     const enum history_vote moved[2])
{
	struct history_record r;
	int have;
	int rc = history_txn_get(h, txn, net, &r, &have);
	if (rc != 0)
		return rc;
	if (votes != NULL)
		votes[0] = have ? history_rec_vote(&r) : HISTORY_VOTE_NONE;
	if (!have || history_rec_expired(&r, ev->now, h->max_age))
		history_rec_init(&r, ev->now);
	history_rec_apply_event(&r, ev);
	if (votes != NULL)
		votes[1] = history_rec_vote(&r);
	if (moved != NULL)
		history_rec_count_vote(&r, moved[0], moved[1]);
	return history_txn_put(h, txn, net, &r);
}

struct record_job {
	const struct history_event *ev;
	size_t n;
};

static int record_body(struct history *h, MDB_txn *txn, void *arg)
{
	const struct record_job *j = arg;
	for (size_t i = 0; i < j->n; i++) {
		struct cidr host, agg;
		if (history_sockaddr_net(j->ev[i].addr, &host) != 0)
			continue; /* refused by the caller already */
		agg = host;
		agg.bits = history_agg_bits(h, host.family);
		enum history_vote votes[2];
		int rc = put_event(h, txn, &host, &j->ev[i], votes, NULL);
		if (rc == 0 && agg.bits < host.bits)
			rc = put_event(h, txn, &agg, &j->ev[i], NULL, votes);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int history_record_many(struct history *h, const struct history_event *ev, size_t n)
{
	struct record_job j = {ev, n};
	if (!history_handle_ok(h))
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct cidr net;
		if (history_sockaddr_net(ev[i].addr, &net) != 0) {
			log_warnx("history: record: unsupported address family");
			return -1;
		}
	}
	return history_write_txn(h, "record", record_body, &j);
}

int history_record(struct history *h, const struct history_event *ev)
{
	return history_record_many(h, ev, 1);
}
