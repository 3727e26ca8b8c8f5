/*
 * redis.c: the Redis history backend for the processes that may block:
 * the scanner (virus records, from its worker threads) and tempomxctl
 * (show, feedback, forget, list). One hiredis context, serialised by a
 * mutex, with a timeout on connect and on every command
 * (history_redis_timeout). smtpd does not use it: its lookups must not
 * block the event loop (redis_async.c).
 *
 * The connection is made on first use and again after a failure, no
 * sooner than the backoff allows (250 ms doubling to 5 s), so a Redis
 * that is down costs each caller one failed attempt per backoff, not one
 * timeout per operation. One log line when Redis goes away (or is not
 * usable at the first attempt: unreachable, wrong password), one when it
 * is back. The keys, scripts and replies are redis_proto.c's.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "history_int.h"
#include "log.h"
#include "redis_int.h"
#include "util.h"

#define BACKOFF_MIN_USEC 250000
#define BACKOFF_MAX_USEC 5000000
#define SCAN_COUNT "1000"

struct redis_be {
	struct history_remote r;
	int v4_prefix, v6_prefix;
	int64_t max_age;
	pthread_mutex_t mu;
	redisContext *c;
	int state; /* -1 never tried, 0 down, 1 up */
	int64_t retry_at;
	int64_t backoff;
};

static void went_down(struct redis_be *b, const char *why)
{
	if (b->c != NULL) {
		redisFree(b->c);
		b->c = NULL;
	}
	if (b->state != 0)
		log_warnx("history: Redis at %s not usable (%s); using the local history until it "
		          "is back",
		          b->r.text, why);
	b->state = 0;
	b->backoff = b->backoff == 0                     ? BACKOFF_MIN_USEC
	             : b->backoff * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC
	                                                 : b->backoff * 2;
	b->retry_at = mono_usec() + b->backoff;
}

static void came_up(struct redis_be *b)
{
	if (b->state == 0)
		log_notice("history: Redis at %s answers again", b->r.text);
	else if (b->state < 0)
		log_info("history: using Redis at %s", b->r.text);
	b->state = 1;
	b->backoff = 0;
}

/* A command on the connected context; NULL after an I/O error (the
 * connection is then dropped). */
static redisReply *raw_cmd(struct redis_be *b, int argc, const char **argv, const size_t *lens)
{
	redisReply *rep = redisCommandArgv(b->c, argc, argv, lens);
	if (rep == NULL) {
		char why[160];
		snprintf(why, sizeof(why), "%s", b->c->errstr[0] ? b->c->errstr : "no reply");
		went_down(b, why);
	}
	return rep;
}

static int setup(struct redis_be *b)
{
	char why[300];
	redisReply *rep;
	if (b->r.password[0] != '\0') {
		const char *argv[] = {"AUTH", b->r.password};
		size_t lens[] = {4, strlen(b->r.password)};
		if ((rep = raw_cmd(b, 2, argv, lens)) == NULL)
			return -1;
		if (rep->type == REDIS_REPLY_ERROR) {
			snprintf(why, sizeof(why), "AUTH refused: %s", rep->str);
			freeReplyObject(rep);
			went_down(b, why);
			return -1;
		}
		freeReplyObject(rep);
	}
	if (b->r.db != 0) {
		char db[16];
		snprintf(db, sizeof(db), "%d", b->r.db);
		const char *argv[] = {"SELECT", db};
		size_t lens[] = {6, strlen(db)};
		if ((rep = raw_cmd(b, 2, argv, lens)) == NULL)
			return -1;
		if (rep->type == REDIS_REPLY_ERROR) {
			snprintf(why, sizeof(why), "SELECT %d: %s", b->r.db, rep->str);
			freeReplyObject(rep);
			went_down(b, why);
			return -1;
		}
		freeReplyObject(rep);
	}
	for (int i = 0; i < HR_NSCRIPTS; i++) {
		const char *text = hr_script_text((enum hr_script)i);
		const char *argv[] = {"SCRIPT", "LOAD", text};
		size_t lens[] = {6, 4, strlen(text)};
		if ((rep = raw_cmd(b, 3, argv, lens)) == NULL)
			return -1;
		if (rep->type == REDIS_REPLY_ERROR) {
			snprintf(why, sizeof(why), "SCRIPT LOAD: %s", rep->str);
			freeReplyObject(rep);
			went_down(b, why);
			return -1;
		}
		freeReplyObject(rep);
	}
	return 0;
}

static int ensure(struct redis_be *b)
{
	if (b->c != NULL)
		return 0;
	if (b->state == 0 && mono_usec() < b->retry_at)
		return -1;
	struct timeval tv = {b->r.timeout_ms / 1000, (b->r.timeout_ms % 1000) * 1000};
	b->c = b->r.unix_socket ? redisConnectUnixWithTimeout(b->r.path, tv)
	                        : redisConnectWithTimeout(b->r.host, b->r.port, tv);
	if (b->c == NULL || b->c->err) {
		char why[160];
		snprintf(why, sizeof(why), "%s", b->c ? b->c->errstr : "out of memory");
		went_down(b, why);
		return -1;
	}
	redisSetTimeout(b->c, tv);
	if (setup(b) != 0)
		return -1;
	came_up(b);
	return 0;
}

/* One script call; NOSCRIPT (a SCRIPT FLUSH meanwhile) loads the scripts
 * again and retries once. NULL on failure, logged as state changes. */
static redisReply *run(struct redis_be *b, const struct hr_cmd *cmd)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (ensure(b) != 0)
			return NULL;
		redisReply *rep = raw_cmd(b, cmd->argc, (const char **)cmd->argv, cmd->argvlen);
		if (rep == NULL)
			return NULL;
		if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 &&
		    attempt == 0) {
			freeReplyObject(rep);
			if (setup(b) != 0)
				return NULL;
			continue;
		}
		if (rep->type == REDIS_REPLY_ERROR) {
			log_warnx("history: Redis at %s: %s", b->r.text, rep->str);
			freeReplyObject(rep);
			return NULL;
		}
		came_up(b);
		return rep;
	}
	return NULL;
}

static int rd_lookup(void *impl, const struct sockaddr *addr, int64_t now,
                     struct history_entry *host, struct history_entry *agg)
{
	struct redis_be *b = impl;
	struct hr_keys k;
	struct hr_cmd cmd;
	const char *why = NULL;
	memset(host, 0, sizeof(*host));
	memset(agg, 0, sizeof(*agg));
	if (hr_keys_of(addr, b->v4_prefix, b->v6_prefix, &k) != 0)
		return -1;
	hr_cmd_lookup(&cmd, &k);
	pthread_mutex_lock(&b->mu);
	redisReply *rep = run(b, &cmd);
	pthread_mutex_unlock(&b->mu);
	if (rep == NULL)
		return -1;
	int rc = hr_lookup_reply(rep, &k, now, b->max_age, host, agg, &why);
	if (rc != 0)
		log_warnx("history: Redis at %s: lookup: %s", b->r.text, why);
	freeReplyObject(rep);
	return rc;
}

static int rd_record(void *impl, const struct history_event *ev, size_t n)
{
	struct redis_be *b = impl;
	int rc = 0;
	pthread_mutex_lock(&b->mu);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct hr_keys k;
		struct hr_cmd cmd;
		if (hr_keys_of(ev[i].addr, b->v4_prefix, b->v6_prefix, &k) != 0)
			continue;
		hr_cmd_record(&cmd, &k, &ev[i], b->max_age);
		redisReply *rep = run(b, &cmd);
		if (rep == NULL)
			rc = -1;
		else
			freeReplyObject(rep);
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/* Run cmd and add its integer reply to *count. */
static int run_count(struct redis_be *b, const struct hr_cmd *cmd, size_t *count)
{
	redisReply *rep = run(b, cmd);
	if (rep == NULL)
		return -1;
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
		*count += (size_t)rep->integer;
	freeReplyObject(rep);
	return 0;
}

static int family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static int rd_feedback(void *impl, const struct cidr *net, enum history_feedback fb, int64_t now,
                       size_t *updated)
{
	struct redis_be *b = impl;
	struct cidr n;
	struct hr_cmd cmd;
	size_t count = 0;
	int rc = 0;
	if (updated != NULL)
		*updated = 0;
	if (history_net_normalize(net, &n) != 0 ||
	    (fb != HISTORY_FEEDBACK_GOOD && fb != HISTORY_FEEDBACK_JUNK))
		return -1;
	int maxb = family_bits(n.family);
	int agg = n.family == AF_INET ? b->v4_prefix : b->v6_prefix;
	int level = n.bits <= agg ? agg : maxb;
	if (level - n.bits > 16)
		return -1;
	pthread_mutex_lock(&b->mu);
	if (n.bits == maxb) {
		struct sockaddr_storage ss;
		struct hr_keys k;
		memset(&ss, 0, sizeof(ss));
		if (n.family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, n.addr, 4);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, n.addr, 16);
		}
		hr_keys_of((struct sockaddr *)&ss, b->v4_prefix, b->v6_prefix, &k);
		hr_cmd_feedback(&cmd, NULL, &k, fb, now, b->max_age, 1);
		rc = run_count(b, &cmd, &count);
	} else {
		struct cidr c = n;
		c.bits = level;
		size_t total = (size_t)1 << (level - n.bits);
		for (size_t i = 0; i < total && rc == 0; i++) {
			char key[HR_KEY_MAX], members[HR_KEY_MAX];
			hr_record_key(key, sizeof(key), &c);
			if (level == agg && agg < maxb) {
				hr_members_key(members, sizeof(members), &c);
				hr_cmd_netfeedback(&cmd, key, members, fb, now, b->max_age);
			} else {
				hr_cmd_feedback(&cmd, key, NULL, fb, now, b->max_age, 1);
			}
			rc = run_count(b, &cmd, &count);
			history_addr_next(c.addr, c.bits);
		}
	}
	pthread_mutex_unlock(&b->mu);
	if (updated != NULL)
		*updated = count;
	return rc;
}

static int del_host(struct redis_be *b, const struct cidr *host, int agg, size_t *count)
{
	char key[HR_KEY_MAX], members[HR_KEY_MAX];
	struct cidr a = *host;
	hr_record_key(key, sizeof(key), host);
	a.bits = agg;
	history_mask_addr(a.addr, a.family, a.bits);
	hr_members_key(members, sizeof(members), &a);
	const char *argv[] = {"DEL", key};
	size_t lens[] = {3, strlen(key)};
	if (ensure(b) != 0)
		return -1;
	redisReply *rep = raw_cmd(b, 2, argv, lens);
	if (rep == NULL)
		return -1;
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
		*count += (size_t)rep->integer;
	freeReplyObject(rep);
	const char *argv2[] = {"SREM", members, key};
	size_t lens2[] = {4, strlen(members), strlen(key)};
	if ((rep = raw_cmd(b, 3, argv2, lens2)) == NULL)
		return -1;
	freeReplyObject(rep);
	return 0;
}

static int rd_forget(void *impl, const struct cidr *net, size_t *removed)
{
	struct redis_be *b = impl;
	struct cidr n;
	size_t count = 0;
	int rc = 0;
	if (removed != NULL)
		*removed = 0;
	if (history_net_normalize(net, &n) != 0)
		return -1;
	int maxb = family_bits(n.family);
	int agg = n.family == AF_INET ? b->v4_prefix : b->v6_prefix;
	int level = n.bits <= agg ? agg : maxb;
	if (level - n.bits > 16) {
		log_warnx("history: Redis at %s: forget: network too large (more than %d networks)",
		          b->r.text, HISTORY_FEEDBACK_MAX_CREATE);
		return -1;
	}
	pthread_mutex_lock(&b->mu);
	struct cidr c = n;
	c.bits = level;
	size_t total = (size_t)1 << (level - n.bits);
	for (size_t i = 0; i < total && rc == 0; i++) {
		if (level == maxb) {
			rc = del_host(b, &c, agg, &count);
		} else {
			struct hr_cmd cmd;
			char key[HR_KEY_MAX], members[HR_KEY_MAX];
			hr_record_key(key, sizeof(key), &c);
			hr_members_key(members, sizeof(members), &c);
			memset(&cmd, 0, sizeof(cmd));
			cmd.argc = 5;
			cmd.argv[0] = "EVALSHA";
			cmd.argv[1] = hr_script_sha(HR_FORGET);
			cmd.argv[2] = "2";
			cmd.argv[3] = key;
			cmd.argv[4] = members;
			for (int j = 0; j < 5; j++)
				cmd.argvlen[j] = strlen(cmd.argv[j]);
			rc = run_count(b, &cmd, &count);
		}
		history_addr_next(c.addr, c.bits);
	}
	pthread_mutex_unlock(&b->mu);
	if (removed != NULL)
		*removed = count;
	return rc;
}

struct iter_item {
	char text[HISTORY_NET_TEXT];
	struct history_entry e;
};

/* The LMDB order: family, prefix length, address. */
static int item_cmp(const void *a, const void *b)
{
	const struct history_entry *x = &((const struct iter_item *)a)->e;
	const struct history_entry *y = &((const struct iter_item *)b)->e;
	if (x->net.family != y->net.family)
		return x->net.family == AF_INET ? -1 : 1;
	if (x->net.bits != y->net.bits)
		return x->net.bits < y->net.bits ? -1 : 1;
	return memcmp(x->net.addr, y->net.addr, 16);
}

/* Every record key into items (SCAN, then HGETALL for each batch). */
static int collect(struct redis_be *b, const struct cidr *within, int64_t now,
                   struct iter_item **items, size_t *n)
{
	size_t cap = 0;
	char cursor[32] = "0";
	*items = NULL;
	*n = 0;
	for (;;) {
		const char *argv[] = {"SCAN",  cursor,    "MATCH", HR_PREFIX_RECORD "*",
		                      "COUNT", SCAN_COUNT};
		size_t lens[6];
		for (int i = 0; i < 6; i++)
			lens[i] = strlen(argv[i]);
		if (ensure(b) != 0)
			return -1;
		redisReply *rep = raw_cmd(b, 6, argv, lens);
		if (rep == NULL)
			return -1;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			log_warnx("history: Redis at %s: SCAN: %s", b->r.text,
			          rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
			freeReplyObject(rep);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		const redisReply *keys = rep->element[1];
		for (size_t i = 0; i < keys->elements; i++) {
			const redisReply *k = keys->element[i];
			struct cidr net;
			if (k->type != REDIS_REPLY_STRING ||
			    hr_parse_key(k->str, k->len, &net) != 0)
				continue;
			if (within != NULL && !history_net_within(&net, within))
				continue;
			const char *a2[] = {"HGETALL", k->str};
			size_t l2[] = {7, k->len};
			redisReply *h = raw_cmd(b, 2, a2, l2);
			if (h == NULL) {
				freeReplyObject(rep);
				return -1;
			}
			if (*n == cap) {
				cap = cap ? cap * 2 : 256;
				*items = xreallocarray(*items, cap, sizeof(**items));
			}
			struct iter_item *it = &(*items)[*n];
			memset(it, 0, sizeof(*it));
			hr_entry_from_reply(h, now, b->max_age, &it->e);
			freeReplyObject(h);
			it->e.net = net;
			if (!it->e.present)
				continue;
			history_net_format(&net, it->text, sizeof(it->text));
			(*n)++;
		}
		freeReplyObject(rep);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	return 0;
}

static long rd_iterate(void *impl, const struct cidr *within, int64_t now, history_iter_fn fn,
                       void *arg)
{
	struct redis_be *b = impl;
	struct cidr w;
	struct iter_item *items = NULL;
	size_t n = 0;
	if (within != NULL && history_net_normalize(within, &w) != 0)
		return -1;
	pthread_mutex_lock(&b->mu);
	int rc = collect(b, within ? &w : NULL, now, &items, &n);
	if (rc == 0)
		came_up(b);
	pthread_mutex_unlock(&b->mu);
	if (rc != 0) {
		free(items);
		return -1;
	}
	qsort(items, n, sizeof(*items), item_cmp);
	long total = 0;
	for (size_t i = 0; i < n; i++) {
		total++;
		if (fn(items[i].text, &items[i].e, arg) != 0)
			break;
	}
	free(items);
	return total;
}

static int rd_expire(void *impl, int64_t now, int64_t max_age, size_t max_records, size_t *removed)
{
	(void)impl;
	(void)now;
	(void)max_age;
	(void)max_records;
	if (removed != NULL)
		*removed = 0;
	return 1; /* EXPIRE on every write: Redis removes them itself */
}

static void rd_close(void *impl)
{
	struct redis_be *b = impl;
	if (b == NULL)
		return;
	if (b->c != NULL)
		redisFree(b->c);
	pthread_mutex_destroy(&b->mu);
	explicit_bzero(b->r.password, sizeof(b->r.password));
	free(b);
}

static const struct history_backend_ops redis_ops = {
    .kind = "redis",
    .lookup = rd_lookup,
    .record = rd_record,
    .feedback = rd_feedback,
    .forget = rd_forget,
    .iterate = rd_iterate,
    .expire = rd_expire,
    .close = rd_close,
};

struct history_backend history_redis_backend(const struct history_remote *r, int v4_prefix,
                                             int v6_prefix, int64_t max_age)
{
	struct redis_be *b = xcalloc(1, sizeof(*b));
	b->r = *r;
	b->v4_prefix = v4_prefix;
	b->v6_prefix = v6_prefix;
	b->max_age = max_age;
	b->state = -1;
	if (pthread_mutex_init(&b->mu, NULL) != 0)
		fatalx("history: cannot initialise a lock");
	struct history_backend be = {&redis_ops, b};
	return be;
}

int history_redis_backend_up(const struct history_backend *be)
{
	const struct redis_be *b = be->impl;
	return b->state;
}
