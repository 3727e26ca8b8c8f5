/*
 * lmdb.c: the LMDB store (store.c, admin.c) as a history backend
 * (history_store.h): each operation is the history.h function of the
 * same meaning. The handle stays owned by backend.c, which closes it.
 */
#include "history_store.h"

static int lm_lookup(void *impl, const struct sockaddr *addr, int64_t now,
                     struct history_entry *host, struct history_entry *agg)
{
	return history_lookup(impl, addr, now, host, agg);
}

static int lm_record(void *impl, const struct history_event *ev, size_t n)
{
	return history_record_many(impl, ev, n);
}

static int lm_feedback(void *impl, const struct cidr *net, enum history_feedback fb, int64_t now,
                       size_t *updated)
{
	return history_feedback(impl, net, fb, now, updated);
}

static int lm_forget(void *impl, const struct cidr *net, size_t *removed)
{
	return history_forget(impl, net, removed);
}

static long lm_iterate(void *impl, const struct cidr *within, int64_t now, history_iter_fn fn,
                       void *arg)
{
	return history_iterate(impl, within, now, fn, arg);
}

static int lm_expire(void *impl, int64_t now, int64_t max_age, size_t max_records, size_t *removed)
{
	return history_sweep(impl, now, max_age, max_records, removed);
}

static void lm_close(void *impl)
{
	history_close(impl);
}

static const struct history_backend_ops lmdb_ops = {
    .kind = "lmdb",
    .lookup = lm_lookup,
    .record = lm_record,
    .feedback = lm_feedback,
    .forget = lm_forget,
    .iterate = lm_iterate,
    .expire = lm_expire,
    .close = lm_close,
};

struct history_backend history_lmdb_backend(struct history *h)
{
	struct history_backend b = {&lmdb_ops, h};
	return b;
}
