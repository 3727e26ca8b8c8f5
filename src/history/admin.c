/*
 * admin.c: the operations on many records at once: admin feedback on a
 * host or a network, forgetting a host or a network and the listing
 * (tempomxctl), and the bounded expiry
 * sweep (run periodically by one process). Each runs in short
 * transactions through store.c's helpers.
 */
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "history_int.h"
#include "log.h"
#include "util.h"

#define ITER_CHUNK 256
#define ITER_EXAMINE_MAX (ITER_CHUNK * 16)

/* ---- feedback ------------------------------------------------------------ */

struct feedback_job {
	struct cidr net;
	enum history_feedback fb;
	int64_t now;
	int level; /* prefix length of the records to create */
	size_t updated;
};

/* Give the verdict to every unexpired record inside net, at every prefix
 * length (records of an earlier aggregate setting included). Keys sort by
 * family, prefix length, address, so each length is one range. */
static int feedback_existing(struct history *h, MDB_cursor *cur, struct feedback_job *j)
{
	int maxb = history_family_bits(j->net.family);
	for (int p = j->net.bits; p <= maxb; p++) {
		struct history_rawkey start;
		MDB_val k, v;
		history_key_make(&start, j->net.family, j->net.addr, p);
		k.mv_size = start.len;
		k.mv_data = start.b;
		int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (rc == 0) {
			struct cidr kn;
			struct history_record r;
			const uint8_t *kb = k.mv_data;
			if (k.mv_size != start.len || kb[0] != start.b[0] || kb[1] != p ||
			    !history_prefix_match(kb + 2, j->net.addr, j->net.bits))
				break; /* past the range */
			if (history_key_parse(&k, &kn) == 0 && history_rec_decode(&v, &r) == 0 &&
			    !history_rec_expired(&r, j->now, h->max_age)) {
				history_rec_apply_feedback(&r, j->fb, 1, j->now);
				MDB_val nv = {sizeof(r), &r};
				if ((rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)) != 0)
					return rc;
				j->updated++;
			}
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

/* The vote of the live host record at net (NONE when there is none). */
static enum history_vote host_vote(struct history *h, MDB_txn *txn, const struct cidr *net,
                                   int64_t now)
{
	struct history_record r;
	int readable;
	if (history_txn_get(h, txn, net, &r, &readable) != 0 || !readable ||
	    history_rec_expired(&r, now, h->max_age))
		return HISTORY_VOTE_NONE;
	return history_rec_vote(&r);
}

/* Write the feedback into one key unless feedback_existing() did; moved
 * (network keys only, may be NULL) is a host's vote before and after. */
static int feedback_key(struct history *h, MDB_txn *txn, struct feedback_job *j,
                        const struct cidr *net, int verdict, const enum history_vote moved[2])
{
	struct history_record r;
	int readable;
	int rc = history_txn_get(h, txn, net, &r, &readable);
	if (rc != 0)
		return rc;
	int live = readable && !history_rec_expired(&r, j->now, h->max_age);
	if (live && verdict)
		return 0; /* inside net: already updated */
	if (!live)
		history_rec_init(&r, j->now);
	history_rec_apply_feedback(&r, j->fb, verdict, j->now);
	if (moved != NULL)
		history_rec_count_vote(&r, moved[0], moved[1]);
	if ((rc = history_txn_put(h, txn, net, &r)) == 0)
		j->updated++;
	return rc;
}

static int feedback_body(struct history *h, MDB_txn *txn, void *arg)
{
	struct feedback_job *j = arg;
	MDB_cursor *cur;
	int maxb = history_family_bits(j->net.family);
	int agg = history_agg_bits(h, j->net.family);
	j->updated = 0;

	enum history_vote moved[2] = {HISTORY_VOTE_NONE, HISTORY_VOTE_NONE};
	if (j->net.bits == maxb)
		moved[0] = host_vote(h, txn, &j->net, j->now);
	int rc = mdb_cursor_open(txn, h->dbi, &cur);
	if (rc != 0)
		return rc;
	rc = feedback_existing(h, cur, j);
	mdb_cursor_close(cur);
	if (rc != 0)
		return rc;

	/* The records a later lookup consults, so the verdict also covers
	 * hosts not seen yet. */
	struct cidr n = j->net;
	n.bits = j->level;
	size_t count = (size_t)1 << (j->level - j->net.bits);
	for (size_t i = 0; i < count; i++) {
		if ((rc = feedback_key(h, txn, j, &n, 1, NULL)) != 0)
			return rc;
		history_addr_next(n.addr, n.bits);
	}
	/* A host's network learns from the host's feedback, but only as one
	 * more observation and one host's changed vote: one host does not
	 * condemn or vouch for all. */
	if (j->net.bits == maxb && agg < maxb) {
		moved[1] = host_vote(h, txn, &j->net, j->now);
		n = j->net;
		n.bits = agg;
		history_mask_addr(n.addr, n.family, n.bits);
		if ((rc = feedback_key(h, txn, j, &n, 0, moved)) != 0)
			return rc;
	}
	return 0;
}

int history_feedback(struct history *h, const struct cidr *net, enum history_feedback fb,
                     int64_t now, size_t *updated)
{
	struct feedback_job j;
	char text[HISTORY_NET_TEXT];
	if (updated != NULL)
		*updated = 0;
	if (!history_handle_ok(h))
		return -1;
	memset(&j, 0, sizeof(j));
	if (history_net_normalize(net, &j.net) != 0) {
		log_warnx("history: feedback: invalid network");
		return -1;
	}
	if (fb != HISTORY_FEEDBACK_GOOD && fb != HISTORY_FEEDBACK_JUNK) {
		log_warnx("history: feedback: invalid verdict %d", (int)fb);
		return -1;
	}
	j.fb = fb;
	j.now = now;
	int agg = history_agg_bits(h, j.net.family);
	j.level = j.net.bits <= agg ? agg : history_family_bits(j.net.family);
	history_net_format(&j.net, text, sizeof(text));
	if (j.level - j.net.bits > 16) {
		log_warnx("history: feedback: network %s too large (it would create more than %d "
		          "records)",
		          text, HISTORY_FEEDBACK_MAX_CREATE);
		return -1;
	}
	if (history_write_txn(h, "feedback", feedback_body, &j) != 0)
		return -1;
	if (updated != NULL)
		*updated = j.updated;
	return 0;
}

/* ---- forgetting ---------------------------------------------------------- */

struct forget_job {
	struct cidr net;
	size_t removed;
};

/* Delete every record inside net, at every prefix length from net's own:
 * as for feedback, each length is one key range. */
static int forget_body(struct history *h, MDB_txn *txn, void *arg)
{
	struct forget_job *j = arg;
	MDB_cursor *cur;
	int maxb = history_family_bits(j->net.family);
	j->removed = 0;
	int rc = mdb_cursor_open(txn, h->dbi, &cur);
	if (rc != 0)
		return rc;
	for (int p = j->net.bits; p <= maxb && rc == 0; p++) {
		struct history_rawkey start;
		MDB_val k, v;
		history_key_make(&start, j->net.family, j->net.addr, p);
		k.mv_size = start.len;
		k.mv_data = start.b;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (rc == 0) {
			const uint8_t *kb = k.mv_data;
			if (k.mv_size != start.len || kb[0] != start.b[0] || kb[1] != p ||
			    !history_prefix_match(kb + 2, j->net.addr, j->net.bits))
				break;
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			j->removed++;
			/* After a delete MDB_NEXT yields the key that followed. */
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (rc == MDB_NOTFOUND || rc == 0)
			rc = 0;
	}
	mdb_cursor_close(cur);
	return rc;
}

int history_forget(struct history *h, const struct cidr *net, size_t *removed)
{
	struct forget_job j;
	if (removed != NULL)
		*removed = 0;
	if (!history_handle_ok(h))
		return -1;
	memset(&j, 0, sizeof(j));
	if (history_net_normalize(net, &j.net) != 0) {
		log_warnx("history: forget: invalid network");
		return -1;
	}
	history_mask_addr(j.net.addr, j.net.family, j.net.bits);
	if (history_write_txn(h, "forget", forget_body, &j) != 0)
		return -1;
	if (removed != NULL)
		*removed = j.removed;
	return 0;
}

/* ---- sweep --------------------------------------------------------------- */

struct sweep_job {
	int64_t now;
	int64_t max_age;
	size_t max_records;
	struct history_rawkey start; /* len 0: from the first key */
	struct history_rawkey next;  /* out: where to resume; len 0 after the last key */
	size_t removed;
	size_t unreadable;
};

static int sweep_body(struct history *h, MDB_txn *txn, void *arg)
{
	struct sweep_job *j = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	j->removed = j->unreadable = 0;
	j->next.len = 0;
	int rc = mdb_cursor_open(txn, h->dbi, &cur);
	if (rc != 0)
		return rc;
	if (j->start.len > 0) {
		k.mv_size = j->start.len;
		k.mv_data = j->start.b;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (size_t examined = 0; rc == 0 && examined < j->max_records; examined++) {
		struct cidr kn;
		struct history_record r;
		int bad = history_key_parse(&k, &kn) != 0 || history_rec_decode(&v, &r) != 0;
		if (bad || history_rec_expired(&r, j->now, j->max_age)) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			if (bad)
				j->unreadable++;
			else
				j->removed++;
		}
		/* After a delete the cursor already stands on the next key;
		 * LMDB's MDB_NEXT knows that. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == 0) {
		/* k is the first key not examined. */
		if (k.mv_size <= sizeof(j->next.b)) {
			memcpy(j->next.b, k.mv_data, k.mv_size);
			j->next.len = k.mv_size;
		}
	} else if (rc != MDB_NOTFOUND) {
		mdb_cursor_close(cur);
		return rc;
	}
	mdb_cursor_close(cur);
	return 0;
}

int history_sweep(struct history *h, int64_t now, int64_t max_age, size_t max_records,
                  size_t *removed)
{
	struct sweep_job *j;
	int dead = 0, ret;
	if (removed != NULL)
		*removed = 0;
	if (!history_handle_ok(h))
		return -1;
	if (max_records == 0)
		return 0;
	mdb_reader_check(h->env, &dead);
	j = xcalloc(1, sizeof(*j));
	j->now = now;
	j->max_age = max_age;
	j->max_records = max_records;
	pthread_mutex_lock(&h->sweeplock);
	j->start = h->sweep_next;
	if (history_write_txn(h, "sweep", sweep_body, j) != 0) {
		ret = -1;
	} else {
		h->sweep_next = j->next;
		ret = j->next.len == 0 ? 1 : 0;
		if (removed != NULL)
			*removed = j->removed + j->unreadable;
		if (j->unreadable > 0)
			log_warnx("history: sweep removed %zu unreadable records from %s",
			          j->unreadable, h->path);
	}
	pthread_mutex_unlock(&h->sweeplock);
	free(j);
	return ret;
}

/* ---- listing ------------------------------------------------------------- */

struct iter_item {
	char text[HISTORY_NET_TEXT];
	struct history_entry e;
};

long history_iterate(struct history *h, const struct cidr *within, int64_t now,
                     int (*fn)(const char *text, const struct history_entry *e, void *arg),
                     void *arg)
{
	struct cidr w;
	struct history_rawkey *last;
	struct iter_item *items;
	long total = 0;
	int stop = 0, end = 0;

	if (!history_handle_ok(h))
		return -1;
	if (within != NULL && history_net_normalize(within, &w) != 0) {
		log_warnx("history: listing: invalid network");
		return -1;
	}
	items = xcalloc(ITER_CHUNK, sizeof(*items));
	last = xcalloc(1, sizeof(*last));
	/* Chunks, each in its own short read transaction: a long-lived
	 * reader would pin old pages and let the file grow, and fn must be
	 * free to write. */
	while (!stop && !end) {
		MDB_txn *txn;
		MDB_cursor *cur;
		MDB_val k, v;
		size_t n = 0;
		int rc = history_txn_begin(h, MDB_RDONLY, &txn);
		if (rc == 0 && (rc = mdb_cursor_open(txn, h->dbi, &cur)) != 0)
			history_txn_abort(h, txn);
		if (rc != 0) {
			log_warnx("history: listing %s: %s", h->path, mdb_strerror(rc));
			total = -1;
			break;
		}
		if (last->len > 0) {
			k.mv_size = last->len;
			k.mv_data = last->b;
			rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
			if (rc == 0 && k.mv_size == last->len &&
			    memcmp(k.mv_data, last->b, last->len) == 0)
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		} else {
			rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		}
		for (size_t examined = 0; rc == 0 && n < ITER_CHUNK && examined < ITER_EXAMINE_MAX;
		     examined++) {
			struct iter_item *it = &items[n];
			if (k.mv_size <= sizeof(last->b)) {
				memcpy(last->b, k.mv_data, k.mv_size);
				last->len = k.mv_size;
			}
			memset(&it->e, 0, sizeof(it->e));
			if (history_key_parse(&k, &it->e.net) == 0 &&
			    history_rec_decode(&v, &it->e.rec) == 0 &&
			    !history_rec_expired(&it->e.rec, now, h->max_age) &&
			    (within == NULL || history_net_within(&it->e.net, &w))) {
				it->e.present = 1;
				history_net_format(&it->e.net, it->text, sizeof(it->text));
				n++;
			}
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		history_txn_abort(h, txn);
		if (rc == MDB_NOTFOUND) {
			end = 1;
		} else if (rc != 0) {
			log_warnx("history: listing %s: %s", h->path, mdb_strerror(rc));
			total = -1;
			break;
		}
		for (size_t i = 0; i < n && !stop; i++) {
			total++;
			stop = fn(items[i].text, &items[i].e, arg) != 0;
		}
	}
	free(last);
	free(items);
	return total;
}
