/*
 * test_verify.c: the pure part of recipient verification, the answer
 * cache (verify_cache.c): lifetimes, refresh, eviction of the least
 * recently used. The reply parser it shares with delivery is
 * t/unit/test_smtp.c's; the dialogue with a real store or primary MX is
 * t/integration/test_verify.c's.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "verify_cache.h"

#define SEC 1000000LL

Test(verify_cache, lifetimes)
{
	struct verify_cache *c = verify_cache_new();
	verify_cache_put(c, "alice@x.test", VERIFY_CACHE_KNOWN, 0, 60, 10);
	verify_cache_put(c, "nobody@x.test", VERIFY_CACHE_UNKNOWN, 0, 5, 10);
	verify_cache_put(c, "zero@x.test", VERIFY_CACHE_KNOWN, 0, 0, 10);
	cr_expect_eq(verify_cache_count(c), 2);
	cr_expect_eq(verify_cache_get(c, "alice@x.test", 4 * SEC), VERIFY_CACHE_KNOWN);
	cr_expect_eq(verify_cache_get(c, "nobody@x.test", 4 * SEC), VERIFY_CACHE_UNKNOWN);
	cr_expect_eq(verify_cache_get(c, "Alice@x.test", 4 * SEC), VERIFY_CACHE_MISS);
	cr_expect_eq(verify_cache_get(c, "zero@x.test", 4 * SEC), VERIFY_CACHE_MISS);
	cr_expect_eq(verify_cache_get(c, "nobody@x.test", 5 * SEC), VERIFY_CACHE_MISS);
	cr_expect_eq(verify_cache_count(c), 1, "the expired entry was kept");
	cr_expect_eq(verify_cache_get(c, "alice@x.test", 59 * SEC), VERIFY_CACHE_KNOWN);
	cr_expect_eq(verify_cache_get(c, "alice@x.test", 60 * SEC), VERIFY_CACHE_MISS);
	/* A new answer replaces the old one. */
	verify_cache_put(c, "bob@x.test", VERIFY_CACHE_KNOWN, 0, 60, 10);
	verify_cache_put(c, "bob@x.test", VERIFY_CACHE_UNKNOWN, 0, 60, 10);
	cr_expect_eq(verify_cache_get(c, "bob@x.test", 1), VERIFY_CACHE_UNKNOWN);
	cr_expect_eq(verify_cache_count(c), 1);
	verify_cache_flush(c);
	cr_expect_eq(verify_cache_count(c), 0);
	cr_expect_eq(verify_cache_get(c, "bob@x.test", 1), VERIFY_CACHE_MISS);
	verify_cache_free(c);
}

Test(verify_cache, evicts_least_recently_used)
{
	struct verify_cache *c = verify_cache_new();
	char a[64];
	/* Past the first table size, so the table grows on the way. */
	for (int i = 0; i < 500; i++) {
		snprintf(a, sizeof(a), "u%d@x.test", i);
		verify_cache_put(c, a, VERIFY_CACHE_KNOWN, 0, 60, 300);
		/* u0 is used all along: it stays. */
		cr_assert_eq(verify_cache_get(c, "u0@x.test", 1), VERIFY_CACHE_KNOWN, "at %d", i);
	}
	cr_expect_eq(verify_cache_count(c), 300);
	cr_expect_eq(verify_cache_get(c, "u1@x.test", 1), VERIFY_CACHE_MISS);
	cr_expect_eq(verify_cache_get(c, "u200@x.test", 1), VERIFY_CACHE_MISS);
	cr_expect_eq(verify_cache_get(c, "u201@x.test", 1), VERIFY_CACHE_KNOWN);
	cr_expect_eq(verify_cache_get(c, "u499@x.test", 1), VERIFY_CACHE_KNOWN);
	verify_cache_put(c, "none@x.test", VERIFY_CACHE_KNOWN, 0, 60, 0);
	cr_expect_eq(verify_cache_get(c, "none@x.test", 1), VERIFY_CACHE_MISS);
	verify_cache_free(c);
}
