/*
 * cache.c: the idle-session cache of the outbound SMTP/LMTP client, for
 * every owner of sessions (delivery's remote.c, verification's verify.c).
 *
 * A session that finished a transaction and is still usable is parked
 * under its destination's key, so the next message (or question) for the
 * same destination needs no connect, greeting, EHLO or TLS again (RFC
 * 5321 does not limit the transactions of one session). A parked session
 * is closed with QUIT when its time is up, or when the owner needs room
 * (smtp_cache_evict: the oldest first); one the server closes is freed.
 * A session saying QUIT still counts as a connection to its destination
 * until it is gone, so the owner's connection limits hold; the owner
 * hears of every freed slot through its callback, run from an event of
 * the cache's own. Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "smtp.h"
#include "smtp_cache.h"
#include "util.h"

#define SMTP_CACHE_KEY 300

struct idle {
	struct smtp_cache *c;
	struct idle *next;
	struct smtp_session *s;
	char key[SMTP_CACHE_KEY];
	int64_t since; /* monotonic usec */
	struct event *ev;
};

/* A session saying QUIT: still a connection to its destination. */
struct quitting {
	struct smtp_cache *c;
	struct quitting *next;
	struct smtp_session *s;
	char key[SMTP_CACHE_KEY];
};

struct smtp_cache {
	struct event_base *base;
	size_t max_idle;
	struct idle *idle;
	size_t nidle;
	struct quitting *quitting;
	size_t nquitting;
	struct event *freed_ev;
	void (*freed)(void *);
	void *freed_arg;
	int closing; /* smtp_cache_free: no more callbacks */
};

static void slot_freed(struct smtp_cache *c)
{
	if (!c->closing)
		event_active(c->freed_ev, EV_TIMEOUT, 1);
}

static void on_freed(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_cache *c = arg;
	(void)fd;
	(void)what;
	if (c->freed)
		c->freed(c->freed_arg);
}

/* ---- sessions saying QUIT ---- */

static void quit_gone(void *arg)
{
	struct quitting *q = arg;
	struct smtp_cache *c = q->c;
	for (struct quitting **pp = &c->quitting; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	free(q);
	c->nquitting--;
	slot_freed(c);
}

void smtp_cache_quit(struct smtp_cache *c, const char *key, struct smtp_session *s)
{
	struct quitting *q = xcalloc(1, sizeof(*q));
	q->c = c;
	q->s = s;
	strlcpy_tmx(q->key, key, sizeof(q->key));
	q->next = c->quitting;
	c->quitting = q;
	c->nquitting++;
	smtp_quit(s, quit_gone, q); /* may call quit_gone at once */
}

/* ---- parked sessions ---- */

static struct smtp_session *idle_remove(struct idle *id)
{
	struct smtp_cache *c = id->c;
	for (struct idle **pp = &c->idle; *pp; pp = &(*pp)->next) {
		if (*pp == id) {
			*pp = id->next;
			break;
		}
	}
	c->nidle--;
	struct smtp_session *s = id->s;
	event_free(id->ev);
	free(id);
	return s;
}

static void idle_quit(struct idle *id)
{
	struct smtp_cache *c = id->c;
	char key[SMTP_CACHE_KEY];
	strlcpy_tmx(key, id->key, sizeof(key));
	smtp_cache_quit(c, key, idle_remove(id));
}

static void idle_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	idle_quit(arg);
}

/* A parked session was closed by the server. */
static void idle_cb(struct smtp_session *s, enum smtp_event ev, void *arg)
{
	struct idle *id = arg;
	struct smtp_cache *c = id->c;
	(void)ev;
	idle_remove(id);
	smtp_free(s);
	slot_freed(c);
}

void smtp_cache_put(struct smtp_cache *c, const char *key, struct smtp_session *s, int64_t secs)
{
	if (secs <= 0 || !smtp_usable(s)) {
		smtp_cache_quit(c, key, s);
		return;
	}
	if (c->nidle >= c->max_idle)
		smtp_cache_evict(c);
	struct idle *id = xcalloc(1, sizeof(*id));
	id->c = c;
	id->s = s;
	strlcpy_tmx(id->key, key, sizeof(id->key));
	id->since = mono_usec();
	id->ev = evtimer_new(c->base, idle_expired, id);
	struct timeval tv = {(time_t)secs, 0};
	if (id->ev == NULL || evtimer_add(id->ev, &tv) < 0)
		fatalx("cannot add a timer");
	smtp_set_cb(s, idle_cb, id);
	id->next = c->idle;
	c->idle = id;
	c->nidle++;
}

struct smtp_session *smtp_cache_take(struct smtp_cache *c, const char *key)
{
	for (struct idle *id = c->idle; id; id = id->next)
		if (strcmp(id->key, key) == 0 && smtp_usable(id->s))
			return idle_remove(id);
	return NULL;
}

int smtp_cache_evict(struct smtp_cache *c)
{
	struct idle *old = NULL;
	for (struct idle *id = c->idle; id; id = id->next)
		if (old == NULL || id->since < old->since)
			old = id;
	if (old == NULL)
		return 0;
	idle_quit(old);
	return 1;
}

void smtp_cache_close(struct smtp_cache *c, const char *key)
{
	for (struct idle *id = c->idle, *next; id; id = next) {
		next = id->next;
		if (key == NULL || strcmp(id->key, key) == 0)
			idle_quit(id);
	}
}

size_t smtp_cache_count(const struct smtp_cache *c, const char *key)
{
	size_t n = 0;
	for (const struct idle *id = c->idle; id; id = id->next)
		n += strcmp(id->key, key) == 0;
	for (const struct quitting *q = c->quitting; q; q = q->next)
		n += strcmp(q->key, key) == 0;
	return n;
}

size_t smtp_cache_idle(const struct smtp_cache *c)
{
	return c->nidle;
}

size_t smtp_cache_quitting(const struct smtp_cache *c)
{
	return c->nquitting;
}

/* ---- life cycle ---- */

struct smtp_cache *smtp_cache_new(struct event_base *base, size_t max_idle, void (*freed)(void *),
                                  void *arg)
{
	struct smtp_cache *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->max_idle = max_idle > 0 ? max_idle : 1;
	c->freed = freed;
	c->freed_arg = arg;
	c->freed_ev = event_new(base, -1, 0, on_freed, c);
	if (c->freed_ev == NULL)
		fatalx("event_new failed");
	return c;
}

void smtp_cache_free(struct smtp_cache *c)
{
	if (c == NULL)
		return;
	c->closing = 1;
	while (c->idle)
		smtp_free(idle_remove(c->idle));
	while (c->quitting)
		smtp_free(c->quitting->s); /* quit_gone unlinks it */
	event_free(c->freed_ev);
	free(c);
}
