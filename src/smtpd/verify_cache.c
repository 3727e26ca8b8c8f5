/*
 * verify_cache.c: the cache of recipient verification answers.
 *
 * A hash table (chained, grown by doubling) for look-ups and a doubly
 * linked list in order of use for eviction: the head is the most
 * recently used, the tail goes first when the cache is full. Each entry
 * carries its own expiry, so positive and negative answers keep their own
 * lifetimes. Keys are the address exactly as the session formatted it:
 * the store decides whether case matters, so we do not.
 *
 * Memory is bounded by recipient_verify_cache_size entries of one
 * address (at most ADDR_PATH_MAX octets) each. Called by verify.c only.
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "verify_cache.h"

struct entry {
	struct entry *hnext;       /* hash chain */
	struct entry *prev, *next; /* use order */
	int64_t expires_usec;
	enum verify_cache_answer answer;
	uint32_t hash;
	char addr[];
};

struct verify_cache {
	struct entry **buckets;
	size_t nbuckets;
	size_t count;
	struct entry *head, *tail;
};

/* FNV-1a: short keys, no adversary that gains from collisions beyond a
 * longer chain (entries are bounded). */
static uint32_t hash_of(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

struct verify_cache *verify_cache_new(void)
{
	struct verify_cache *c = xcalloc(1, sizeof(*c));
	c->nbuckets = 64;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

static void unlink_use(struct verify_cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_head(struct verify_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static void remove_entry(struct verify_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash % c->nbuckets];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	unlink_use(c, e);
	c->count--;
	free(e);
}

static struct entry *find(const struct verify_cache *c, const char *addr, uint32_t h)
{
	for (struct entry *e = c->buckets[h % c->nbuckets]; e; e = e->hnext)
		if (e->hash == h && strcmp(e->addr, addr) == 0)
			return e;
	return NULL;
}

static void grow(struct verify_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct entry **b = xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct entry *e = c->buckets[i];
		while (e) {
			struct entry *next = e->hnext;
			e->hnext = b[e->hash % n];
			b[e->hash % n] = e;
			e = next;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

enum verify_cache_answer verify_cache_get(struct verify_cache *c, const char *addr,
                                          int64_t now_usec)
{
	struct entry *e = find(c, addr, hash_of(addr));
	if (e == NULL)
		return VERIFY_CACHE_MISS;
	if (e->expires_usec <= now_usec) {
		remove_entry(c, e);
		return VERIFY_CACHE_MISS;
	}
	unlink_use(c, e);
	push_head(c, e);
	return e->answer;
}

void verify_cache_put(struct verify_cache *c, const char *addr, enum verify_cache_answer a,
                      int64_t now_usec, int64_t ttl_sec, size_t max)
{
	uint32_t h = hash_of(addr);
	struct entry *e = find(c, addr, h);
	if (e)
		remove_entry(c, e);
	if (ttl_sec <= 0 || max == 0 || a == VERIFY_CACHE_MISS)
		return;
	while (c->count >= max && c->tail)
		remove_entry(c, c->tail);
	if (c->count >= c->nbuckets)
		grow(c);
	size_t len = strlen(addr);
	e = xcalloc(1, sizeof(*e) + len + 1);
	memcpy(e->addr, addr, len + 1);
	e->hash = h;
	e->answer = a;
	e->expires_usec = now_usec + ttl_sec * 1000000;
	e->hnext = c->buckets[h % c->nbuckets];
	c->buckets[h % c->nbuckets] = e;
	push_head(c, e);
	c->count++;
}

void verify_cache_flush(struct verify_cache *c)
{
	while (c->head)
		remove_entry(c, c->head);
}

size_t verify_cache_count(const struct verify_cache *c)
{
	return c->count;
}

void verify_cache_free(struct verify_cache *c)
{
	if (c == NULL)
		return;
	verify_cache_flush(c);
	free(c->buckets);
	free(c);
}
