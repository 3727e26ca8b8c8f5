/*
 * test_records.c: unit tests for src/spool/records.c (the update records
 * after the message of a version 2 spool file) and src/spool/headers.c
 * (the X-Tempomx-* fields made from the envelope at delivery).
 *
 * A record written and read back must give the same envelope, the last
 * one must win, and every way an append can be cut short by a crash (any
 * length, zeros, a flipped octet) must read as the envelope before that
 * append, never as an error and never as a mix. A record whose CRC
 * matches but whose content is wrong is not what a crash leaves: it is
 * refused as corrupt.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

#define TEST_ID "06B07CF6A1E2400012F000"

static void base(struct envelope *env)
{
	envelope_init(env);
	memcpy(env->id, TEST_ID, QUEUEID_SIZE);
	env->arrival_usec = 1795673962123456LL;
	env->sender = strdup("bob@example.test");
	env->size = 2048;
	envelope_add_rcpt(env, "alice@example.test", NULL);
}

static void set(char **field, const char *v)
{
	free(*field);
	*field = v ? strdup(v) : NULL;
}

/* Two records: the scan result, then a deferral of the recipient. */
static char *two_records(size_t *lenp, size_t *first)
{
	struct envelope env;
	size_t l1, l2;
	base(&env);
	set(&env.scan_result, "clean");
	set(&env.scan_info, "engine=libclamav 1.4.6; db=custom; signatures=2; host=mx");
	set(&env.scan_class, "hi");
	char *r1 = envelope_record(&env, &l1);
	env.rcpts[0].status = RCPT_DEFERRED;
	env.rcpts[0].attempts = 1;
	set(&env.rcpts[0].last_reply, "451 4.3.0 later");
	env.attempts = 1;
	env.next_retry = 1795674262;
	char *r2 = envelope_record(&env, &l2);
	char *buf = malloc(l1 + l2);
	memcpy(buf, r1, l1);
	memcpy(buf + l1, r2, l2);
	free(r1);
	free(r2);
	envelope_free(&env);
	*lenp = l1 + l2;
	*first = l1;
	return buf;
}

Test(records, crc32_check_value)
{
	/* The standard check value of CRC-32/ISO-HDLC. */
	cr_expect_eq(envelope_crc32("123456789", 9), 0xCBF43926u);
	cr_expect_eq(envelope_crc32("", 0), 0);
}

Test(records, last_record_wins)
{
	size_t len, first, valid;
	char err[256];
	char *buf = two_records(&len, &first);
	struct envelope env;
	base(&env);
	cr_assert_eq(envelope_apply_records(buf, len, &env, &valid, err, sizeof(err)), 0, "%s",
	             err);
	cr_expect_eq(valid, len);
	cr_expect_eq(env.nrecords, 2);
	cr_expect_str_eq(env.scan_result, "clean");
	cr_expect_str_eq(env.scan_class, "hi");
	cr_expect_eq(env.rcpts[0].status, RCPT_DEFERRED);
	cr_expect_str_eq(env.rcpts[0].last_reply, "451 4.3.0 later");
	cr_expect_eq(env.next_retry, 1795674262);
	cr_expect_eq(env.version, ENVELOPE_VERSION);
	envelope_free(&env);
	free(buf);
}

/* Cut the second record at every length: the first one holds. */
Test(records, torn_tail_at_every_length)
{
	size_t len, first, valid;
	char err[256];
	char *buf = two_records(&len, &first);
	for (size_t cut = first; cut < len; cut++) {
		struct envelope env;
		base(&env);
		int r = envelope_apply_records(buf, cut, &env, &valid, err, sizeof(err));
		cr_expect_eq(r, 0, "cut %zu: %s", cut, err);
		cr_expect_eq(valid, first, "cut %zu", cut);
		cr_expect_eq(env.nrecords, 1, "cut %zu", cut);
		cr_expect_eq(env.rcpts[0].status, RCPT_PENDING, "cut %zu", cut);
		cr_expect_str_eq(env.scan_result, "clean");
		envelope_free(&env);
	}
	/* Cut inside the first: the head block's envelope stays. */
	for (size_t cut = 0; cut < first; cut += 7) {
		struct envelope env;
		base(&env);
		cr_expect_eq(envelope_apply_records(buf, cut, &env, &valid, err, sizeof(err)), 0);
		cr_expect_eq(valid, 0);
		cr_expect_null(env.scan_result);
		cr_expect_eq(env.nrecords, 0);
		envelope_free(&env);
	}
	free(buf);
}

/* What an interrupted append can leave: zeros, another file's octets, an
 * octet changed (the CRC no longer matches). */
Test(records, garbage_tail_is_ignored)
{
	size_t len, first, valid;
	char err[256];
	char *buf = two_records(&len, &first);
	char *z = calloc(1, len + 512);
	memcpy(z, buf, first);
	struct envelope env;
	base(&env);
	cr_expect_eq(envelope_apply_records(z, first + 512, &env, &valid, err, sizeof(err)), 0);
	cr_expect_eq(valid, first);
	envelope_free(&env);

	for (size_t i = first; i < len; i += 11) {
		memcpy(z, buf, len);
		z[i] ^= 0x20;
		base(&env);
		cr_expect_eq(envelope_apply_records(z, len, &env, &valid, err, sizeof(err)), 0,
		             "flip at %zu: %s", i, err);
		cr_expect_eq(valid, first, "flip at %zu", i);
		cr_expect_eq(env.rcpts[0].status, RCPT_PENDING, "flip at %zu", i);
		envelope_free(&env);
	}
	free(z);
	free(buf);
}

static char *framed(const char *block)
{
	char *out;
	size_t n = strlen(block);
	cr_assert(asprintf(&out, "tempomx-update %zu %08x\n%s", n,
	                   (unsigned)envelope_crc32(block, n), block) > 0);
	return out;
}

/* A matching CRC over a wrong record is not a crash: corrupt. */
Test(records, valid_crc_bad_content_is_corrupt)
{
	static const char *const bad[] = {
	    /* Not a block. */
	    "hello\n",
	    /* Another message's ID. */
	    "tempomx-envelope 2\nid 06B07CF6A1E2400012E000\narrival 1.000000\nclient-port 0\n"
	    "sender \nsmtputf8 0\nclass hi\nscore 0\nattempts 0\nnext-retry 0\n"
	    "size 00000000000000002048\nend\n",
	    /* Another size. */
	    "tempomx-envelope 2\nid " TEST_ID "\narrival 1.000000\nclient-port 0\n"
	    "sender \nsmtputf8 0\nclass hi\nscore 0\nattempts 0\nnext-retry 0\n"
	    "size 00000000000000002049\nend\n",
	    /* Version 1 inside a record. */
	    "tempomx-envelope 1\nid " TEST_ID "\narrival 1.000000\nclient-port 0\n"
	    "sender \nsmtputf8 0\nclass hi\nscore 0\nattempts 0\nnext-retry 0\n"
	    "size 00000000000000002048\nend\n",
	    /* Octets after "end". */
	    "tempomx-envelope 2\nid " TEST_ID "\narrival 1.000000\nclient-port 0\n"
	    "sender \nsmtputf8 0\nclass hi\nscore 0\nattempts 0\nnext-retry 0\n"
	    "size 00000000000000002048\nend\nx",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *rec = framed(bad[i]);
		struct envelope env;
		size_t valid = 99;
		char err[256] = "";
		base(&env);
		errno = 0;
		cr_expect_eq(
		    envelope_apply_records(rec, strlen(rec), &env, &valid, err, sizeof(err)), -1,
		    "case %zu accepted", i);
		cr_expect_eq(errno, EBADMSG);
		cr_expect(strncmp(err, "update record 1: ", 17) == 0, "case %zu: %s", i, err);
		/* Unchanged. */
		cr_expect_str_eq(env.sender, "bob@example.test");
		cr_expect_eq(env.nrecords, 0);
		envelope_free(&env);
		free(rec);
	}
}

Test(records, headers_from_the_envelope)
{
	struct envelope env;
	size_t len;
	base(&env);
	set(&env.verdict, "good");
	env.score = -3;
	set(&env.history, "good");
	set(&env.reasons, "whitelisted sender");
	char *h = envelope_headers(&env, "\r\n", &len);
	/* Not scanned: the class field only. */
	cr_expect_str_eq(h, "X-Tempomx-Class: hi; verdict=good; score=-3; history=good; "
	                    "reasons=whitelisted sender\r\n");
	cr_expect_eq(len, strlen(h));
	free(h);

	set(&env.scan_result, "unscanned Heuristics.Limits.Exceeded");
	set(&env.scan_info, "engine=libclamav 1.4.6; db=custom; signatures=2; host=mx\r\nX: y");
	set(&env.scan_class, "lo (promoted)");
	h = envelope_headers(&env, "\n", &len);
	cr_expect_str_eq(h, "X-Tempomx-Scan: not fully scanned (Heuristics.Limits.Exceeded); "
	                    "engine=libclamav 1.4.6; db=custom; signatures=2; host=mx??X: y\n"
	                    "X-Tempomx-Class: lo (promoted); verdict=good; score=-3; history=good; "
	                    "reasons=whitelisted sender\n");
	free(h);

	/* Version 1 carries its fields in the message; reports get none. */
	env.version = 1;
	h = envelope_headers(&env, "\r\n", &len);
	cr_expect_str_eq(h, "");
	cr_expect_eq(len, 0);
	free(h);
	env.version = 2;
	set(&env.bounce_of, "06B07CF6A1E2400012E000");
	h = envelope_headers(&env, "\r\n", &len);
	cr_expect_str_eq(h, "");
	free(h);
	envelope_free(&env);
}
