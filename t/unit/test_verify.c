/*
 * test_verify.c: the pure parts of recipient verification: the LMTP
 * reply parser (lmtp_reply.c), table-driven, and the answer cache
 * (verify_cache.c): lifetimes, refresh, eviction of the least recently
 * used. The dialogue with a real store is t/integration/test_verify.c's.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lmtp_reply.h"
#include "verify_cache.h"

Test(lmtp_reply, table)
{
	static const struct {
		const char *in;
		enum lmtp_reply_status st;
		int code;
		size_t used;
		const char *text;
	} cases[] = {
	    {"250 2.1.5 OK\r\n", LMTP_REPLY_DONE, 250, 14, "250 2.1.5 OK"},
	    {"250\r\n", LMTP_REPLY_DONE, 250, 5, "250"},
	    {"250 ok\n", LMTP_REPLY_DONE, 250, 7, "250 ok"},
	    {"250-a\r\n250-b\r\n250 c\r\nrest", LMTP_REPLY_DONE, 250, 21, "250-a"},
	    {"550 5.1.1 <x@y> User doesn't exist\r\n250 more", LMTP_REPLY_DONE, 550, 36,
	     "550 5.1.1 <x@y> User doesn't exist"},
	    {"250-a\r\n250", LMTP_REPLY_MORE, 0, 0, NULL},
	    {"", LMTP_REPLY_MORE, 0, 0, NULL},
	    {"25", LMTP_REPLY_MORE, 0, 0, NULL},
	    {"250-a\r\n251 b\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	    {"150 x\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	    {"650 x\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	    {"25x x\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	    {"250x\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	    {"\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	    {"250 a\rb\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	    {"hello\r\n", LMTP_REPLY_BAD, 0, 0, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lmtp_reply r;
		size_t used = 99;
		enum lmtp_reply_status st =
		    lmtp_reply_parse(cases[i].in, strlen(cases[i].in), &r, &used);
		cr_expect_eq(st, cases[i].st, "case %zu: status %d", i, (int)st);
		if (st != LMTP_REPLY_DONE || cases[i].st != LMTP_REPLY_DONE)
			continue;
		cr_expect_eq(r.code, cases[i].code, "case %zu", i);
		cr_expect_eq(used, cases[i].used, "case %zu: used %zu", i, used);
		cr_expect_str_eq(r.text, cases[i].text, "case %zu", i);
	}
}

Test(lmtp_reply, control_octets_and_length)
{
	struct lmtp_reply r;
	size_t used;
	static const char esc[] = "550 bad \033[31m\r\n";
	cr_assert_eq(lmtp_reply_parse(esc, sizeof(esc) - 1, &r, &used), LMTP_REPLY_DONE);
	cr_expect_str_eq(r.text, "550 bad ?[31m");

	/* An endless reply is refused once LMTP_REPLY_MAX octets are in. */
	static char big[LMTP_REPLY_MAX + 64];
	size_t n = 0;
	while (n + 16 < sizeof(big)) {
		memcpy(big + n, "250-xxxxxxxxxx\r\n", 16);
		n += 16;
	}
	cr_expect_eq(lmtp_reply_parse(big, n, &r, &used), LMTP_REPLY_BAD);
	cr_expect_eq(lmtp_reply_parse(big, 64, &r, &used), LMTP_REPLY_MORE);
	/* A long first line is kept cut, not overflowed. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "250 ", 4);
	memcpy(big + 1000, "\r\n", 2);
	cr_assert_eq(lmtp_reply_parse(big, 1002, &r, &used), LMTP_REPLY_DONE);
	cr_expect_eq(strlen(r.text), LMTP_REPLY_TEXT - 1);
}

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
