/*
 * retry.h: the retry schedule of deferred mail (retry.c).
 */
#ifndef TEMPOMX_RETRY_H
#define TEMPOMX_RETRY_H

#include <stdint.h>

/* Seconds to wait after the attempts-th failed attempt (1 = first):
 * retry_min doubled on each attempt, at most retry_max. */
int64_t retry_delay(int64_t retry_min, int64_t retry_max, int attempts);
/* 1 if a message that arrived at arrival_usec has outlived lifetime
 * seconds at time now (seconds). */
int retry_expired(int64_t arrival_usec, int64_t lifetime, int64_t now);
/* The next attempt time: never later than the expiry itself, so a
 * message is bounced on time even with a long back-off. */
int64_t retry_next(int64_t retry_min, int64_t retry_max, int attempts, int64_t arrival_usec,
                   int64_t lifetime, int64_t now);

#endif
