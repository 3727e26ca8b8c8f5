/*
 * verify_cache.h: the answers of recipient verification, remembered
 * (verify_cache.c) so that a known or unknown address is not asked again
 * for every message: positive and negative entries with their own
 * lifetimes, at most a fixed number of entries, least recently used
 * evicted first. Used by verify.c in the smtpd event loop only.
 */
#ifndef TEMPOMX_SMTPD_VERIFY_CACHE_H
#define TEMPOMX_SMTPD_VERIFY_CACHE_H

#include <stddef.h>
#include <stdint.h>

enum verify_cache_answer {
	VERIFY_CACHE_MISS = 0,
	VERIFY_CACHE_KNOWN,
	VERIFY_CACHE_UNKNOWN,
};

struct verify_cache;

struct verify_cache *verify_cache_new(void);
void verify_cache_free(struct verify_cache *c);
/* The answer for addr at now_usec (monotonic); an expired entry is a
 * miss (and is dropped). A hit becomes the most recently used. */
enum verify_cache_answer verify_cache_get(struct verify_cache *c, const char *addr,
                                          int64_t now_usec);
/* Remember an answer until now_usec + ttl_sec. ttl_sec <= 0 or max == 0
 * remembers nothing. Beyond max entries the least recently used goes. */
void verify_cache_put(struct verify_cache *c, const char *addr, enum verify_cache_answer a,
                      int64_t now_usec, int64_t ttl_sec, size_t max);
/* Forget everything (SIGHUP, a new verification target). */
void verify_cache_flush(struct verify_cache *c);
size_t verify_cache_count(const struct verify_cache *c);

#endif
