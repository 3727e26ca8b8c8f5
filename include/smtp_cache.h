/*
 * smtp_cache.h: the idle-session cache of the outbound SMTP/LMTP client
 * (src/smtp/cache.c). An owner (deliver/remote.c, smtpd/verify.c) parks a
 * session that finished its transaction under a destination key, takes it
 * back for the next transaction to the same destination, and counts the
 * connections still open there (idle or saying QUIT) against its limits.
 * A parked session is closed with QUIT when its time is up, when the
 * server closes it, or to make room. Loop thread only.
 */
#ifndef TEMPOMX_SMTP_CACHE_H
#define TEMPOMX_SMTP_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct smtp_session;
struct smtp_cache;

/* At most max_idle sessions are kept, the oldest goes first. freed(arg)
 * runs from the loop whenever a session of the cache is gone (closed by
 * the server, or its QUIT is over): a connection slot is free. */
struct smtp_cache *smtp_cache_new(struct event_base *base, size_t max_idle, void (*freed)(void *),
                                  void *arg);
/* Park s under key for secs seconds; a session that is not usable, or
 * secs <= 0, says QUIT at once instead. */
void smtp_cache_put(struct smtp_cache *c, const char *key, struct smtp_session *s, int64_t secs);
/* A usable parked session of key, now the caller's; NULL if none. */
struct smtp_session *smtp_cache_take(struct smtp_cache *c, const char *key);
/* Say QUIT on s, which stays counted under key until it is gone. */
void smtp_cache_quit(struct smtp_cache *c, const char *key, struct smtp_session *s);
/* Close the oldest parked session; 0 if there is none. */
int smtp_cache_evict(struct smtp_cache *c);
/* Close the parked sessions of key (NULL: all of them) with QUIT. */
void smtp_cache_close(struct smtp_cache *c, const char *key);
/* Connections of the cache to key, parked or saying QUIT. */
size_t smtp_cache_count(const struct smtp_cache *c, const char *key);
size_t smtp_cache_idle(const struct smtp_cache *c);
size_t smtp_cache_quitting(const struct smtp_cache *c);
/* Close everything at once, without QUIT, and free the cache. NULL is
 * harmless. */
void smtp_cache_free(struct smtp_cache *c);

#endif
