/*
 * history_int.h: what the files of src/history/ share and nobody else
 * sees: the handle, the binary key format, the record codec and the
 * transaction helpers. Callers outside src/history/ use history.h only.
 *
 *   record.c  keys (family, prefix length, address bytes) and records
 *   store.c   environment, transactions, map growth, lookup, record
 *   admin.c   admin feedback, the listing and the expiry sweep
 */
#ifndef TEMPOMX_HISTORY_INT_H
#define TEMPOMX_HISTORY_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

#define HISTORY_KEY_LEN4 6     /* family, prefix length, 4 address bytes */
#define HISTORY_KEY_LEN6 18    /* family, prefix length, 16 address bytes */
#define HISTORY_RAWKEY_MAX 512 /* above LMDB's largest key (511): any stored key fits */

/* Returned by a transaction body that has already logged its failure. */
#define HISTORY_TXN_LOGGED (-1)

struct history_rawkey {
	uint8_t b[HISTORY_RAWKEY_MAX];
	size_t len;
};

struct history {
	MDB_env *env;
	MDB_dbi dbi;
	unsigned fork_gen; /* the fork generation when opened (store.c) */
	char *path;
	/* Shared for the life of every transaction, exclusive to change the
	 * map size (LMDB wants no transaction of this process active then). */
	pthread_rwlock_t maplock;
	pthread_mutex_t sweeplock;
	struct history_rawkey sweep_next; /* where the next sweep starts; len 0 = beginning */
	int v4_prefix;
	int v6_prefix;
	int64_t max_age;
};

/* record.c: keys */
int history_family_bits(int family);
int history_agg_bits(const struct history *h, int family);
void history_mask_addr(uint8_t *a, int family, int bits);
int history_sockaddr_net(const struct sockaddr *sa, struct cidr *out);
int history_net_normalize(const struct cidr *in, struct cidr *out);
void history_key_make(struct history_rawkey *k, int family, const uint8_t *addr, int bits);
int history_key_parse(const MDB_val *k, struct cidr *net);
int history_prefix_match(const uint8_t *a, const uint8_t *net, int bits);
int history_net_within(const struct cidr *n, const struct cidr *within);
void history_addr_next(uint8_t *a, int bits);

/* record.c: records */
int history_rec_decode(const MDB_val *v, struct history_record *r);
int history_rec_expired(const struct history_record *r, int64_t now, int64_t max_age);
void history_rec_init(struct history_record *r, int64_t now);
void history_rec_apply_event(struct history_record *r, const struct history_event *ev);
/* One key inside the caller's transaction: get (0, *readable = 1 when a
 * record we can read is there; 0 and *readable = 0 when none or an
 * unreadable one; an LMDB error otherwise) and put (0 or an LMDB error). */
int history_txn_get(struct history *h, MDB_txn *txn, const struct cidr *net,
                    struct history_record *r, int *readable);
int history_txn_put(struct history *h, MDB_txn *txn, const struct cidr *net,
                    const struct history_record *r);
/* A host's vote in its network changed from was to now: move the count. */
void history_rec_count_vote(struct history_record *agg, enum history_vote was,
                            enum history_vote now);
void history_rec_apply_feedback(struct history_record *r, enum history_feedback fb, int verdict,
                                int64_t now);

/* store.c: transactions */
int history_handle_ok(struct history *h);
int history_txn_begin(struct history *h, unsigned flags, MDB_txn **txn);
void history_txn_abort(struct history *h, MDB_txn *txn);
int history_txn_commit(struct history *h, MDB_txn *txn);
/* Run body in a write transaction; on MDB_MAP_FULL grow the map and run
 * it again from the start. body returns 0, an LMDB error, or
 * HISTORY_TXN_LOGGED. Returns 0 or -1 (logged). */
int history_write_txn(struct history *h, const char *what,
                      int (*body)(struct history *, MDB_txn *, void *), void *arg);

#endif
