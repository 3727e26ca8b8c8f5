/*
 * test_envelope.c: unit tests for src/spool/envelope.c.
 *
 * A spool file that cannot be read back exactly means a lost or mangled
 * message, so: every field must survive format + parse, including
 * hostile text (CR, LF, NUL, '%', 8-bit); the escaping must be reversible
 * for any byte string; and every kind of damaged block must be refused
 * with a message an admin can act on, never a crash.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "envelope.h"

#define TEST_ID "06B07CF6A1E2400012F000"

static int str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

#define EXPECT_STR(field)                                                                          \
	cr_expect(str_same(a->field, b->field), "%s: '%s' != '%s'", #field,                        \
	          a->field ? a->field : "(null)", b->field ? b->field : "(null)")

static void expect_same(const struct envelope *a, const struct envelope *b)
{
	cr_expect_eq(a->version, b->version);
	cr_expect_str_eq(a->id, b->id);
	cr_expect_eq(a->arrival_usec, b->arrival_usec);
	EXPECT_STR(client_addr);
	cr_expect_eq(a->client_port, b->client_port);
	EXPECT_STR(client_name);
	EXPECT_STR(helo);
	EXPECT_STR(protocol);
	EXPECT_STR(tls);
	EXPECT_STR(sender);
	EXPECT_STR(body_type);
	cr_expect_eq(a->smtputf8, b->smtputf8);
	EXPECT_STR(envid);
	EXPECT_STR(ret);
	cr_expect_eq(a->size, b->size);
	cr_expect_eq(a->class, b->class);
	EXPECT_STR(verdict);
	cr_expect_eq(a->score, b->score);
	EXPECT_STR(reasons);
	EXPECT_STR(history);
	cr_expect_eq(a->attempts, b->attempts);
	cr_expect_eq(a->next_retry, b->next_retry);
	EXPECT_STR(scan_result);
	EXPECT_STR(bounce_of);
	EXPECT_STR(scan_info);
	EXPECT_STR(scan_class);
	cr_assert_eq(a->nrcpt, b->nrcpt);
	for (size_t i = 0; i < a->nrcpt; i++) {
		const struct rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		cr_expect(str_same(x->addr, y->addr), "rcpt %zu addr", i);
		cr_expect(str_same(x->orcpt, y->orcpt), "rcpt %zu orcpt", i);
		cr_expect(str_same(x->notify, y->notify), "rcpt %zu notify", i);
		cr_expect(str_same(x->last_reply, y->last_reply), "rcpt %zu reply", i);
		cr_expect_eq(x->status, y->status, "rcpt %zu status", i);
		cr_expect_eq(x->attempts, y->attempts, "rcpt %zu attempts", i);
		cr_expect_eq(x->last_attempt, y->last_attempt, "rcpt %zu last", i);
		cr_expect_eq(x->next_retry, y->next_retry, "rcpt %zu next", i);
	}
}

static void set(char **field, const char *v)
{
	free(*field);
	*field = v ? strdup(v) : NULL;
}

/* Format, parse back, compare; then check the format is canonical. */
static void round_trip(const struct envelope *env)
{
	size_t len, size_off, body_off;
	char err[256];
	char *block = envelope_format(env, &len, &size_off);
	cr_assert_not_null(block);
	cr_assert_eq(memchr(block, '\0', len), NULL, "NUL octet in the block");
	cr_assert(len >= 4 && memcmp(block + len - 4, "end\n", 4) == 0);

	struct envelope back;
	int r = envelope_parse(block, len, &back, &body_off, err, sizeof(err));
	cr_assert_eq(r, 0, "parse failed: %s\n%s", err, block);
	cr_assert_eq(body_off, len);
	expect_same(env, &back);

	size_t len2;
	char *again = envelope_format(&back, &len2, NULL);
	cr_expect(len2 == len && memcmp(again, block, len) == 0, "format not canonical");
	free(again);
	envelope_free(&back);
	free(block);
}

static void base_env(struct envelope *env)
{
	envelope_init(env);
	memcpy(env->id, TEST_ID, QUEUEID_SIZE);
	env->arrival_usec = 1795673962123456LL;
	set(&env->sender, "");
}

Test(envelope, init_defaults)
{
	struct envelope env;
	envelope_init(&env);
	cr_expect_eq(env.version, ENVELOPE_VERSION);
	cr_expect_eq(env.class, CLASS_HI);
	cr_expect_str_eq(env.verdict, "unclassified");
	cr_expect_eq(env.nrcpt, 0);
	cr_expect_eq(env.hops, -1);
	envelope_free(&env);
	envelope_free(&env); /* safe twice */
}

Test(envelope, round_trip_minimal)
{
	struct envelope env;
	base_env(&env);
	round_trip(&env);
	envelope_free(&env);
}

Test(envelope, round_trip_full)
{
	struct envelope env;
	base_env(&env);
	set(&env.client_addr, "2001:db8::25");
	env.client_port = 65535;
	set(&env.client_name, "mx.example.test");
	set(&env.helo, "[192.0.2.1]");
	set(&env.protocol, "ESMTPS");
	set(&env.tls, "TLSv1.3 TLS_AES_256_GCM_SHA384 256/256");
	set(&env.sender, "bob@example.test");
	set(&env.body_type, "8BITMIME");
	env.smtputf8 = 1;
	set(&env.envid, "QQ314159");
	set(&env.ret, "HDRS");
	env.size = UINT64_MAX;
	env.class = CLASS_LO;
	set(&env.verdict, "suspect");
	env.score = INT_MIN;
	set(&env.reasons, "pregreet; pipelining");
	set(&env.history, "new");
	env.attempts = INT_MAX;
	env.next_retry = INT64_MAX;
	set(&env.scan_result, "infected Eicar-Test-Signature");
	set(&env.bounce_of, "06B07CF6A1E2400012E000");
	set(&env.scan_info, "engine=libclamav 1.4.6; db=custom; signatures=2; host=mx");
	set(&env.scan_class, "lo (promoted)");
	envelope_add_rcpt(&env, "alice@example.test", NULL);
	size_t i = envelope_add_rcpt(&env, "carol@example.test", "rfc822;carol@example.test");
	set(&env.rcpts[i].notify, "SUCCESS,FAILURE");
	env.rcpts[i].status = RCPT_DEFERRED;
	env.rcpts[i].attempts = 3;
	env.rcpts[i].last_attempt = 1795673999;
	env.rcpts[i].next_retry = 1795677599;
	set(&env.rcpts[i].last_reply, "451 4.7.1 try later");
	i = envelope_add_rcpt(&env, "dave@example.test", NULL);
	env.rcpts[i].status = RCPT_SENT;
	set(&env.rcpts[i].last_reply, "250 2.0.0 ok");
	i = envelope_add_rcpt(&env, "eve@example.test", NULL);
	env.rcpts[i].status = RCPT_BOUNCED;
	cr_expect_eq(envelope_pending(&env), 2);
	round_trip(&env);

	struct envelope copy;
	envelope_copy(&copy, &env);
	expect_same(&env, &copy);
	envelope_free(&env);
	round_trip(&copy); /* the copy owns its own strings */
	envelope_free(&copy);
}

/* A version 1 envelope is written as version 1 did it, without the keys
 * version 2 added, and reads back as version 1. */
Test(envelope, version_1_written_and_read)
{
	struct envelope env, back;
	base_env(&env);
	env.version = 1;
	set(&env.scan_result, "clean");
	set(&env.scan_info, "engine=x");
	size_t len, off;
	char *block = envelope_format(&env, &len, NULL);
	cr_expect(strncmp(block, "tempomx-envelope 1\n", 19) == 0, "%s", block);
	cr_expect_null(strstr(block, "scan-info"), "%s", block);
	char err[256];
	cr_assert_eq(envelope_parse(block, len, &back, &off, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(back.version, 1);
	cr_expect_str_eq(back.scan_result, "clean");
	cr_expect_null(back.scan_info);
	envelope_free(&back);
	free(block);
	/* A version nobody wrote is written as the current one. */
	env.version = 99;
	block = envelope_format(&env, &len, NULL);
	cr_expect(strncmp(block, "tempomx-envelope 2\n", 19) == 0, "%s", block);
	free(block);
	envelope_free(&env);
}

/* Hostile values, each put in every string field of one envelope. */
static const char *const hostile[] = {
    "",
    " ",
    "  leading and trailing  ",
    "line\r\nend\r\n.\r\n",
    "\nend\n",
    "end",
    "%",
    "%25",
    "%%%00%zz%",
    "100%",
    "tab\there",
    "\x01\x02\x1f\x7f",
    "8-bit \xc3\xa9t\xc3\xa9 \xff\xfe\x80",
    "rcpt pending 0 0 0 x@y",
    "size 00000000000000000001",
};

Test(envelope, round_trip_hostile)
{
	for (size_t h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++) {
		const char *v = hostile[h];
		struct envelope env;
		base_env(&env);
		char **fields[] = {&env.client_addr, &env.client_name, &env.helo,
		                   &env.protocol,    &env.tls,         &env.sender,
		                   &env.body_type,   &env.envid,       &env.ret,
		                   &env.verdict,     &env.reasons,     &env.history,
		                   &env.scan_result, &env.bounce_of};
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			set(fields[f], v);
		size_t i = envelope_add_rcpt(&env, v, v);
		set(&env.rcpts[i].last_reply, v);
		set(&env.rcpts[i].notify, v);
		envelope_add_rcpt(&env, "second@example.test", NULL);
		round_trip(&env);
		envelope_free(&env);
	}
}

/* The DSN values (RFC 3461) survive an update record (what the scanner
 * and delivery append), and a block written before rcpt-notify existed
 * reads with no NOTIFY. */
Test(envelope, dsn_fields_survive_records_and_old_blocks_read)
{
	struct envelope env;
	base_env(&env);
	set(&env.envid, "QQ+1 x");
	set(&env.ret, "FULL");
	size_t i = envelope_add_rcpt(&env, "carol@example.test", "rfc822;Carol@example.test");
	set(&env.rcpts[i].notify, "NEVER");
	i = envelope_add_rcpt(&env, "dave@example.test", NULL);
	set(&env.rcpts[i].notify, "SUCCESS,DELAY");
	env.rcpts[i].status = RCPT_SENT;
	size_t rlen, valid;
	char *rec = envelope_record(&env, &rlen);
	struct envelope back;
	base_env(&back);
	char err[256];
	cr_assert_eq(envelope_apply_records(rec, rlen, &back, &valid, err, sizeof(err)), 0, "%s",
	             err);
	cr_expect_str_eq(back.envid, "QQ+1 x");
	cr_expect_str_eq(back.ret, "FULL");
	cr_assert_eq(back.nrcpt, 2);
	cr_expect_str_eq(back.rcpts[0].orcpt, "rfc822;Carol@example.test");
	cr_expect_str_eq(back.rcpts[0].notify, "NEVER");
	cr_expect_null(back.rcpts[1].orcpt);
	cr_expect_str_eq(back.rcpts[1].notify, "SUCCESS,DELAY");
	cr_expect_eq(back.rcpts[1].status, RCPT_SENT);
	free(rec);
	envelope_free(&back);
	envelope_free(&env);

	static const char old[] = "tempomx-envelope 2\n"
	                          "id 06B07CF6A1E2400012F000\n"
	                          "arrival 1795673962.123456\n"
	                          "client-port 52311\n"
	                          "sender bob@example.test\n"
	                          "smtputf8 0\n"
	                          "envid QQ1\n"
	                          "class hi\n"
	                          "score 0\n"
	                          "attempts 0\n"
	                          "next-retry 0\n"
	                          "rcpt pending 0 0 0 alice@example.test\n"
	                          "rcpt-orcpt rfc822;alice@example.test\n"
	                          "size 00000000000000000000\n"
	                          "end\n";
	size_t off;
	cr_assert_eq(envelope_parse(old, sizeof(old) - 1, &env, &off, err, sizeof(err)), 0, "%s",
	             err);
	cr_expect_str_eq(env.envid, "QQ1");
	cr_expect_null(env.ret);
	cr_assert_eq(env.nrcpt, 1);
	cr_expect_null(env.rcpts[0].notify);
	cr_expect_str_eq(env.rcpts[0].orcpt, "rfc822;alice@example.test");
	envelope_free(&env);
}

Test(envelope, null_sender_written_empty)
{
	struct envelope env, back;
	base_env(&env);
	set(&env.sender, NULL);
	size_t len;
	char err[200];
	char *b = envelope_format(&env, &len, NULL);
	cr_assert_eq(envelope_parse(b, len, &back, NULL, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(back.sender, "");
	free(b);
	envelope_free(&back);
	envelope_free(&env);
}

Test(envelope, out_of_range_numbers_are_clamped)
{
	/* A caller's bad number must not produce a file we then refuse. */
	struct envelope env, back;
	base_env(&env);
	env.attempts = -4;
	env.next_retry = -1;
	env.smtputf8 = 7;
	env.client_port = 70000;
	env.arrival_usec = -5;
	size_t i = envelope_add_rcpt(&env, "a@b", NULL);
	env.rcpts[i].attempts = -1;
	env.rcpts[i].status = (enum rcpt_status)99;
	size_t len;
	char err[200];
	char *b = envelope_format(&env, &len, NULL);
	cr_assert_eq(envelope_parse(b, len, &back, NULL, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(back.attempts, 0);
	cr_expect_eq(back.next_retry, 0);
	cr_expect_eq(back.smtputf8, 1);
	cr_expect_eq(back.client_port, 65535);
	cr_expect_eq(back.arrival_usec, 0);
	cr_expect_eq(back.rcpts[0].attempts, 0);
	cr_expect_eq(back.rcpts[0].status, RCPT_PENDING);
	free(b);
	envelope_free(&back);
	envelope_free(&env);
}

Test(envelope, size_patch_in_place)
{
	struct envelope env, back;
	base_env(&env);
	size_t len, off, body_off;
	char err[200];
	char *b = envelope_format(&env, &len, &off);
	cr_assert(off + ENVELOPE_SIZE_WIDTH < len);
	cr_expect(memcmp(b + off - 5, "size ", 5) == 0);
	envelope_format_size(b + off, 18446744073709551615ULL);
	cr_expect(memcmp(b + off, "18446744073709551615", ENVELOPE_SIZE_WIDTH) == 0);
	envelope_format_size(b + off, 2048);
	cr_expect(memcmp(b + off, "00000000000000002048", ENVELOPE_SIZE_WIDTH) == 0);
	cr_assert_eq(envelope_parse(b, len, &back, &body_off, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(back.size, 2048);
	free(b);
	envelope_free(&back);
	envelope_free(&env);
}

/* The Received: count: fixed width right before size, clamped; absent
 * when not counted and from version 1 blocks. */
Test(envelope, hops_before_size)
{
	struct envelope env, back;
	base_env(&env);
	size_t len, off;
	char err[200];
	char *b = envelope_format(&env, &len, &off);
	cr_expect_null(strstr(b, "\nhops "), "%s", b);
	cr_assert_eq(envelope_parse(b, len, &back, NULL, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(back.hops, -1);
	envelope_free(&back);
	free(b);

	static const struct {
		int hops;
		const char *digits;
		int back;
	} cases[] = {
	    {0, "00000", 0}, {4, "00004", 4}, {99999, "99999", 99999}, {123456, "99999", 99999}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		env.hops = cases[i].hops;
		b = envelope_format(&env, &len, &off);
		cr_assert_gt(off, ENVELOPE_HOPS_BEFORE_SIZE + 5);
		const char *h = b + off - ENVELOPE_HOPS_BEFORE_SIZE;
		cr_expect(memcmp(h - 5, "hops ", 5) == 0, "%s", b);
		cr_expect(memcmp(h, cases[i].digits, ENVELOPE_HOPS_WIDTH) == 0, "%s", b);
		/* Patched in place, as spool_commit() does. */
		envelope_format_hops((char *)h, 12);
		cr_assert_eq(envelope_parse(b, len, &back, NULL, err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(back.hops, 12);
		envelope_free(&back);
		free(b);
	}
	env.hops = 3;
	env.version = 1;
	b = envelope_format(&env, &len, NULL);
	cr_expect_null(strstr(b, "hops"), "%s", b);
	cr_assert_eq(envelope_parse(b, len, &back, NULL, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(back.hops, -1);
	envelope_free(&back);
	free(b);
	envelope_free(&env);
}

Test(envelope, escape_reversible_for_any_bytes)
{
	/* Every octet value, then pseudo-random strings with NULs. */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *e = envelope_escape(all, sizeof(all));
	for (const char *p = e; *p; p++)
		cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "control octet in escape");
	char *d;
	size_t dlen;
	cr_assert_eq(envelope_unescape(e, strlen(e), &d, &dlen), 0);
	cr_assert_eq(dlen, sizeof(all));
	cr_assert(memcmp(d, all, dlen) == 0);
	free(e);
	free(d);

	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		unsigned char buf[64];
		size_t n = (size_t)(round % 64);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			buf[i] = (unsigned char)(seed >> 16);
		}
		e = envelope_escape(buf, n);
		cr_assert_eq(envelope_unescape(e, strlen(e), &d, &dlen), 0);
		cr_assert(dlen == n && memcmp(d, buf, n) == 0, "round %d", round);
		free(e);
		free(d);
	}
}

Test(envelope, unescape_rejects)
{
	static const char *const bad[] = {"%", "%4", "%G0", "a%0g", "raw\nLF", "raw\x7f"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *d = NULL;
		cr_expect_eq(envelope_unescape(bad[i], strlen(bad[i]), &d, NULL), -1, "'%s'",
		             bad[i]);
		cr_expect_null(d);
	}
	char *d;
	cr_assert_eq(envelope_unescape("%4a%4A", 6, &d, NULL), 0);
	cr_expect_str_eq(d, "JJ");
	free(d);
}

/* Lines 1-3 and 4-10 of a valid block; a case's own line is line 11. */
#define HEAD "tempomx-envelope 1\nid " TEST_ID "\narrival 1795673962.123456\n"
#define MIDDLE                                                                                     \
	"client-port 25\nsender a@b\nsmtputf8 0\nclass hi\nscore 0\nattempts 0\nnext-retry 0\n"
#define SIZE "size 00000000000000000000\n"
#define END "end\n"

static const struct {
	const char *block;
	const char *error;
} corrupt_cases[] = {
    {"", "truncated envelope block: no 'end' line"},
    {HEAD MIDDLE SIZE, "truncated envelope block: no 'end' line"},
    {HEAD MIDDLE SIZE "en", "truncated envelope block: no 'end' line"},
    {HEAD MIDDLE SIZE "end", "truncated envelope block: no 'end' line"},
    {"hello\n", "line 1: not a tempomx envelope"},
    {"tempomx-envelope\n", "line 1: not a tempomx envelope"},
    {"tempomx-envelope 3\n" MIDDLE SIZE END, "line 1: unsupported envelope version 3"},
    {"tempomx-envelope 0\n" MIDDLE SIZE END, "line 1: unsupported envelope version 0"},
    /* Keys of version 2 are unknown in a version 1 block. */
    {HEAD MIDDLE "scan-info x\n" SIZE END, "line 11: unknown key 'scan-info'"},
    {HEAD MIDDLE "hops 00003\n" SIZE END, "line 11: unknown key 'hops'"},
    /* hops has a fixed width (it is patched in place), like size. */
    {"tempomx-envelope 2\nhops 3\n", "line 2: bad value for 'hops': '3'"},
    {"tempomx-envelope 2\nhops 000003\n", "line 2: bad value for 'hops': '000003'"},
    {"tempomx-envelope 2\nhops -0003\n", "line 2: bad value for 'hops': '-0003'"},
    {"tempomx-envelope 2\nhops 0000x\n", "line 2: bad value for 'hops': '0000x'"},
    {"tempomx-envelope x\n", "line 1: bad value for 'version': 'x'"},
    {HEAD MIDDLE "foo bar\n" SIZE END, "line 11: unknown key 'foo'"},
    {HEAD MIDDLE "\n" SIZE END, "line 11: empty line"},
    {HEAD MIDDLE "helo a\r\n" SIZE END, "line 11: control octet 0x0D in line"},
    {HEAD MIDDLE "helo a\0b\n" SIZE END, "line 11: control octet 0x00 in line"},
    {HEAD MIDDLE "helo 50%\n" SIZE END, "line 11: bad %-escape in 'helo'"},
    {HEAD MIDDLE "helo a%00b\n" SIZE END, "line 11: NUL octet (%00) in 'helo'"},
    {HEAD MIDDLE "helo a\nhelo b\n" SIZE END, "line 12: duplicate key 'helo'"},
    {HEAD MIDDLE "score 1\n" SIZE END, "line 11: duplicate key 'score'"},
    {"tempomx-envelope 1\narrival 1.000000\n" MIDDLE SIZE END, "missing required key 'id'"},
    {HEAD "client-port 25\nsmtputf8 0\nclass hi\nscore 0\nattempts 0\nnext-retry 0\n" SIZE END,
     "missing required key 'sender'"},
    {HEAD MIDDLE END, "missing required key 'size'"},
    {"tempomx-envelope 1\nid 06b07cf6a1e2400012f000\n", "line 2: bad value for 'id'"},
    {"tempomx-envelope 1\nid ../../etc/passwd\n", "line 2: bad value for 'id'"},
    {"tempomx-envelope 1\narrival 1795673962.5\n",
     "line 2: bad value for 'arrival': '1795673962.5'"},
    {"tempomx-envelope 1\narrival -1.000000\n", "line 2: bad value for 'arrival'"},
    {"tempomx-envelope 1\nclient-port 65536\n", "line 2: bad value for 'client-port': '65536'"},
    {"tempomx-envelope 1\nclient-port\n", "line 2: bad value for 'client-port': ''"},
    {"tempomx-envelope 1\nscore 12x\n", "line 2: bad value for 'score': '12x'"},
    {"tempomx-envelope 1\nscore 99999999999\n", "line 2: bad value for 'score'"},
    {"tempomx-envelope 1\nattempts -1\n", "line 2: bad value for 'attempts': '-1'"},
    {"tempomx-envelope 1\nsmtputf8 2\n", "line 2: bad value for 'smtputf8': '2'"},
    {"tempomx-envelope 1\nnext-retry 99999999999999999999\n", "line 2: bad value for 'next-retry'"},
    {"tempomx-envelope 1\nclass mid\n", "line 2: bad value for 'class': 'mid'"},
    {"tempomx-envelope 1\nsize 2048\n", "line 2: bad value for 'size': '2048'"},
    {"tempomx-envelope 1\nsize 99999999999999999999\n", "line 2: bad value for 'size'"},
    {"tempomx-envelope 1\nsize 0000000000000000000x\n", "line 2: bad value for 'size'"},
    {"tempomx-envelope 1\nrcpt-reply 250 ok\n", "line 2: 'rcpt-reply' without a preceding 'rcpt'"},
    {"tempomx-envelope 1\nrcpt-orcpt x\n", "line 2: 'rcpt-orcpt' without a preceding 'rcpt'"},
    {"tempomx-envelope 2\nrcpt-notify NEVER\n", "line 2: 'rcpt-notify' without a preceding 'rcpt'"},
    {"tempomx-envelope 2\nrcpt sent 0 0 0 a@b\nrcpt-notify NEVER\nrcpt-notify DELAY\n",
     "line 4: duplicate key 'rcpt-notify' for one recipient"},
    {"tempomx-envelope 1\nrcpt pending 0 0 a@b\n", "line 2: malformed rcpt line"},
    {"tempomx-envelope 1\nrcpt lost 0 0 0 a@b\n", "line 2: bad value for 'rcpt status': 'lost'"},
    {"tempomx-envelope 1\nrcpt sent x 0 0 a@b\n", "line 2: bad value for 'rcpt attempts'"},
    {"tempomx-envelope 1\nrcpt sent 0 0 0 a@b\nrcpt-reply a\nrcpt-reply b\n",
     "line 4: duplicate key 'rcpt-reply' for one recipient"},
    {"tempomx-envelope 1\nend now\n", "line 2: bad value for 'end': 'now'"},
    {"tempomx-envelope 1\nk\x1b[31m x\n", "line 2: control octet 0x1B in line"},
    {"tempomx-envelope 1\n\xff\xfe x\n", "line 2: unknown key '?"
                                         "?'"},
};

static void expect_error(const char *block, size_t len, const char *want)
{
	struct envelope env;
	char err[256] = "";
	size_t off = 12345;
	errno = 0;
	int r = envelope_parse(block, len, &env, &off, err, sizeof(err));
	cr_expect_eq(r, -1, "accepted: %.*s", (int)len, block);
	cr_expect_eq(errno, EBADMSG);
	cr_expect_eq(off, 12345, "body offset set on failure");
	cr_expect(strncmp(err, want, strlen(want)) == 0, "error '%s', want '%s'", err, want);
	/* A failed parse leaves an envelope that owns nothing. */
	cr_expect_eq(env.nrcpt, 0);
	cr_expect_null(env.verdict);
	envelope_free(&env);
}

Test(envelope, corrupt_blocks)
{
	for (size_t i = 0; i < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]); i++) {
		const char *b = corrupt_cases[i].block;
		/* The embedded-NUL case needs its real length. */
		size_t len = strlen(b);
		if (strstr(corrupt_cases[i].error, "0x00"))
			len += 1 + strlen(b + len + 1);
		expect_error(b, len, corrupt_cases[i].error);
	}
}

Test(envelope, minimal_valid_block_with_body)
{
	static const char file[] = HEAD MIDDLE SIZE END "Subject: hi\r\n\r\nbody\r\n";
	struct envelope env;
	size_t off;
	char err[200];
	cr_assert_eq(envelope_parse(file, sizeof(file) - 1, &env, &off, err, sizeof(err)), 0, "%s",
	             err);
	cr_expect_eq(off, strlen(HEAD MIDDLE SIZE END));
	cr_expect_str_eq(env.sender, "a@b");
	cr_expect_null(env.helo);
	cr_expect_str_eq(env.verdict, "unclassified"); /* absent line: default stays */
	envelope_free(&env);
}

Test(envelope, oversize_block)
{
	size_t n = ENVELOPE_MAX_BLOCK + 100;
	char *b = malloc(n);
	cr_assert_not_null(b);
	size_t h = strlen(HEAD);
	memcpy(b, HEAD "reasons ", h + 8);
	memset(b + h + 8, 'x', n - h - 8);
	expect_error(b, n, "envelope block larger than 1048576 octets");
	/* Exactly at the cap, with the end line inside it, is fine. */
	static const char tail[] = "\n" MIDDLE SIZE END;
	size_t at = ENVELOPE_MAX_BLOCK - (sizeof(tail) - 1);
	memcpy(b + at, tail, sizeof(tail) - 1);
	struct envelope env;
	size_t off;
	char err[200];
	cr_expect_eq(envelope_parse(b, n, &env, &off, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(off, ENVELOPE_MAX_BLOCK);
	envelope_free(&env);
	/* One octet more and the end line no longer fits. */
	memset(b + h + 8, 'x', n - h - 8);
	memcpy(b + at + 1, tail, sizeof(tail) - 1);
	expect_error(b, n, "envelope block larger than");
	free(b);
}

static int temp_file(void)
{
	int fd = memfd_create("envelope-test", MFD_CLOEXEC);
	cr_assert(fd >= 0);
	return fd;
}

Test(envelope, read_fd_with_large_body)
{
	struct envelope env, back;
	base_env(&env);
	set(&env.helo, "big.example.test");
	envelope_add_rcpt(&env, "a@example.test", NULL);
	env.size = 3u << 30;
	size_t len;
	char *block = envelope_format(&env, &len, NULL);
	int fd = temp_file();
	cr_assert_eq(write(fd, block, len), (ssize_t)len);
	/* A 3 GiB sparse body: reading it all would show in time and memory. */
	cr_assert_eq(ftruncate(fd, (off_t)len + (3LL << 30)), 0);
	lseek(fd, 12345, SEEK_SET);
	size_t off;
	char err[200];
	cr_assert_eq(envelope_read_fd(fd, &back, &off, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(off, len);
	expect_same(&env, &back);
	envelope_free(&back);
	envelope_free(&env);
	free(block);
	close(fd);
}

Test(envelope, read_fd_errors)
{
	struct envelope env;
	char err[200];
	size_t off;
	/* Truncated: the file ends inside the block. */
	int fd = temp_file();
	static const char part[] = HEAD MIDDLE SIZE "en";
	cr_assert_eq(write(fd, part, sizeof(part) - 1), (ssize_t)(sizeof(part) - 1));
	cr_expect_eq(envelope_read_fd(fd, &env, &off, err, sizeof(err)), -1);
	cr_expect_eq(errno, EBADMSG);
	cr_expect_str_eq(err, "truncated envelope block: no 'end' line");
	envelope_free(&env);
	close(fd);

	/* Oversize: 2 MiB without an end line. */
	fd = temp_file();
	cr_assert_eq(write(fd, HEAD "reasons ", strlen(HEAD) + 8), (ssize_t)strlen(HEAD) + 8);
	char *x = malloc(2 << 20);
	memset(x, 'x', 2 << 20);
	cr_assert_eq(write(fd, x, 2 << 20), 2 << 20);
	free(x);
	cr_expect_eq(envelope_read_fd(fd, &env, &off, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "envelope block larger than 1048576 octets");
	envelope_free(&env);
	close(fd);

	/* A read error is not a bad file. */
	fd = open("/", O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0);
	cr_expect_eq(envelope_read_fd(fd, &env, &off, err, sizeof(err)), -1);
	cr_expect_neq(errno, EBADMSG);
	cr_expect(strncmp(err, "read: ", 6) == 0, "%s", err);
	envelope_free(&env);
	close(fd);
}

Test(envelope, read_fd_end_split_across_reads)
{
	/* Pad the block so "\nend\n" straddles the 16 KiB read boundary at
	 * every position. */
	for (size_t shift = 0; shift < 6; shift++) {
		struct envelope env, back;
		base_env(&env);
		char *pad = malloc(20000);
		memset(pad, 'p', 20000);
		pad[19999] = '\0';
		set(&env.reasons, pad);
		size_t len;
		char *block = envelope_format(&env, &len, NULL);
		size_t cut = 16384 + shift - 5;
		/* Trim reasons so the end line lands at 'cut'. */
		size_t trim = len - cut - 5;
		pad[strlen(pad) - trim] = '\0';
		set(&env.reasons, pad);
		free(block);
		block = envelope_format(&env, &len, NULL);
		int fd = temp_file();
		cr_assert_eq(write(fd, block, len), (ssize_t)len);
		cr_assert_eq(write(fd, "BODY", 4), 4);
		size_t off;
		char err[200];
		cr_assert_eq(envelope_read_fd(fd, &back, &off, err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(off, len);
		expect_same(&env, &back);
		envelope_free(&back);
		envelope_free(&env);
		free(block);
		free(pad);
		close(fd);
	}
}

Test(envelope, names)
{
	cr_expect_str_eq(rcpt_status_name(RCPT_PENDING), "pending");
	cr_expect_str_eq(rcpt_status_name(RCPT_SENT), "sent");
	cr_expect_str_eq(rcpt_status_name(RCPT_DEFERRED), "deferred");
	cr_expect_str_eq(rcpt_status_name(RCPT_BOUNCED), "bounced");
	cr_expect_str_eq(msg_class_name(CLASS_HI), "hi");
	cr_expect_str_eq(msg_class_name(CLASS_LO), "lo");
}
