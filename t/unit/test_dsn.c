/*
 * test_dsn.c: unit tests for src/common/dsn.c, the DSN parameters of
 * RFC 3461: xtext decoding and encoding (round trips, upper-case hex
 * only, printable results only, buffer limits), NOTIFY lists, the
 * strict checks of RET, ENVID, NOTIFY and ORCPT (lengths, duplicates,
 * NEVER alone), which reports a recipient wants, and the parameters sent
 * on to a next hop.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int dec(const char *in, char *out, size_t size)
{
	return xtext_decode(in, strlen(in), out, size);
}

Test(dsn, xtext_decodes)
{
	char out[64];
	cr_expect_eq(dec("abc", out, sizeof(out)), 3);
	cr_expect_str_eq(out, "abc");
	cr_expect_eq(dec("a+2Bb+3Dc", out, sizeof(out)), 5);
	cr_expect_str_eq(out, "a+b=c");
	cr_expect_eq(dec("+20x+7E", out, sizeof(out)), 3);
	cr_expect_str_eq(out, " x~");
	cr_expect_eq(dec("", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "");
}

Test(dsn, xtext_refuses_what_is_not_xtext)
{
	static const char *const bad[] = {
	    "a+2b",   /* lower-case hex */
	    "a+2",    /* cut short */
	    "a+",     /* cut short */
	    "+G0",    /* not hex */
	    "a=b",    /* '=' is never an xchar */
	    "a b",    /* SP is not an xchar */
	    "+0D+0A", /* decodes to CR LF: not printable */
	    "+00",    /* NUL */
	    "+7F",    /* DEL */
	    "+C3+A9", /* not US-ASCII */
	    "\x7f",   /* raw DEL */
	};
	char out[64];
	for (size_t i = 0; i < N(bad); i++)
		cr_expect_eq(dec(bad[i], out, sizeof(out)), -1, "'%s' decoded", bad[i]);
}

Test(dsn, xtext_decode_respects_the_buffer)
{
	char out[4];
	cr_expect_eq(dec("abc", out, sizeof(out)), 3);
	cr_expect_eq(dec("abcd", out, sizeof(out)), -1);
	cr_expect_eq(dec("a", out, 0), -1);
}

Test(dsn, xtext_encodes_and_round_trips)
{
	char enc[256], back[256];
	cr_expect_eq(xtext_encode("a+b=c d", enc, sizeof(enc)), 13);
	cr_expect_str_eq(enc, "a+2Bb+3Dc+20d");
	/* Every printable octet survives encode then decode. */
	char all[96];
	for (int c = 0x20; c <= 0x7e; c++)
		all[c - 0x20] = (char)c;
	all[95] = '\0';
	size_t need = xtext_encode(all, enc, sizeof(enc));
	cr_assert_lt(need, sizeof(enc));
	cr_expect_eq(strlen(enc), need);
	cr_expect_eq(dec(enc, back, sizeof(back)), 95);
	cr_expect_str_eq(back, all);
	/* The length is known without a buffer, and a short one is cut at
	 * a whole character. */
	cr_expect_eq(xtext_encode("++", NULL, 0), 6);
	char small[5];
	cr_expect_eq(xtext_encode("+++", small, sizeof(small)), 9);
	cr_expect_str_eq(small, "+2B");
}

Test(dsn, notify_lists)
{
	unsigned v;
	cr_expect_eq(dsn_notify_parse("NEVER", 5, &v), 0);
	cr_expect_eq(v, DSN_NOTIFY_NEVER);
	cr_expect_eq(dsn_notify_parse("delay,Success", 13, &v), 0);
	cr_expect_eq(v, DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS);
	static const char *const bad[] = {"",
	                                  "NEVER,SUCCESS",
	                                  "SUCCESS,NEVER",
	                                  "SUCCESS,",
	                                  ",FAILURE",
	                                  "SUCCESS,,DELAY",
	                                  "FAILURE,FAILURE",
	                                  "ALWAYS",
	                                  "SUCCESS FAILURE"};
	for (size_t i = 0; i < N(bad); i++)
		cr_expect_eq(dsn_notify_parse(bad[i], strlen(bad[i]), &v), -1, "'%s'", bad[i]);
	char buf[40];
	dsn_notify_format(DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE | DSN_NOTIFY_SUCCESS, buf,
	                  sizeof(buf));
	cr_expect_str_eq(buf, "SUCCESS,FAILURE,DELAY");
	dsn_notify_format(DSN_NOTIFY_NEVER, buf, sizeof(buf));
	cr_expect_str_eq(buf, "NEVER");
	dsn_notify_format(0, buf, sizeof(buf));
	cr_expect_str_eq(buf, "");
}

static enum dsn_param_result mp(struct dsn_mail *m, const char *k, const char *v)
{
	return dsn_mail_param(m, k, strlen(k), v, v ? strlen(v) : 0);
}

static enum dsn_param_result rp(struct dsn_rcpt *r, const char *k, const char *v)
{
	return dsn_rcpt_param(r, k, strlen(k), v, v ? strlen(v) : 0);
}

Test(dsn, mail_parameters)
{
	struct dsn_mail m;
	memset(&m, 0, sizeof(m));
	cr_expect_eq(mp(&m, "ret", "full"), DSN_PARAM_OK);
	cr_expect_eq(m.ret, DSN_RET_FULL);
	cr_expect_eq(mp(&m, "RET", "HDRS"), DSN_PARAM_DUP);
	cr_expect_str_eq(dsn_mail_given(&m), "RET");
	cr_expect_eq(mp(&m, "ENVID", "id+2B1"), DSN_PARAM_OK);
	cr_expect_str_eq(m.envid, "id+1");
	cr_expect_eq(mp(&m, "envid", "x"), DSN_PARAM_DUP);
	cr_expect_eq(mp(&m, "SIZE", "1"), DSN_PARAM_NOT_OURS);

	memset(&m, 0, sizeof(m));
	cr_expect_null(dsn_mail_given(&m));
	cr_expect_eq(mp(&m, "RET", NULL), DSN_PARAM_BAD);
	cr_expect_eq(mp(&m, "RET", "FULLY"), DSN_PARAM_BAD);
	cr_expect_eq(mp(&m, "ENVID", NULL), DSN_PARAM_BAD);
	cr_expect_eq(mp(&m, "ENVID", "a+0A"), DSN_PARAM_BAD);
	/* RFC 3461 4.4: at most 100 characters. */
	char id[102];
	memset(id, 'x', sizeof(id));
	id[100] = '\0';
	cr_expect_eq(mp(&m, "ENVID", id), DSN_PARAM_OK);
	memset(&m, 0, sizeof(m));
	id[100] = 'x';
	id[101] = '\0';
	cr_expect_eq(mp(&m, "ENVID", id), DSN_PARAM_BAD);
	cr_expect(!m.has_envid);
}

Test(dsn, rcpt_parameters)
{
	struct dsn_rcpt r;
	memset(&r, 0, sizeof(r));
	cr_expect_null(dsn_rcpt_given(&r));
	cr_expect_eq(rp(&r, "NOTIFY", "SUCCESS,FAILURE"), DSN_PARAM_OK);
	cr_expect_eq(r.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
	cr_expect_eq(rp(&r, "notify", "DELAY"), DSN_PARAM_DUP);
	cr_expect_eq(rp(&r, "ORCPT", "rfc822;Joe+2BX@example.test"), DSN_PARAM_OK);
	cr_expect_str_eq(r.orcpt, "rfc822;Joe+X@example.test");
	cr_expect_eq(rp(&r, "ORCPT", "rfc822;a@b"), DSN_PARAM_DUP);
	cr_expect_str_eq(dsn_rcpt_given(&r), "NOTIFY");
	cr_expect_eq(rp(&r, "FOO", "1"), DSN_PARAM_NOT_OURS);

	static const char *const bad_orcpt[] = {
	    "joe@example.test",          /* no addr-type */
	    ";joe@example.test",         /* empty addr-type */
	    "rfc 822;joe@example.test",  /* not an atom */
	    "rfc822;joe@exa+6dple.test", /* lower-case hex */
	    "rfc822;joe+0D+0A@x.test",   /* decodes to CR LF */
	};
	for (size_t i = 0; i < N(bad_orcpt); i++) {
		memset(&r, 0, sizeof(r));
		cr_expect_eq(rp(&r, "ORCPT", bad_orcpt[i]), DSN_PARAM_BAD, "%s", bad_orcpt[i]);
		cr_expect(!r.has_orcpt);
	}
	/* RFC 3461 4.2: at most 500 characters. */
	char v[520];
	memcpy(v, "rfc822;", 7);
	memset(v + 7, 'a', sizeof(v) - 7);
	v[500] = '\0';
	memset(&r, 0, sizeof(r));
	cr_expect_eq(rp(&r, "ORCPT", v), DSN_PARAM_OK);
	v[500] = 'a';
	v[501] = '\0';
	memset(&r, 0, sizeof(r));
	cr_expect_eq(rp(&r, "ORCPT", v), DSN_PARAM_BAD);

	memset(&r, 0, sizeof(r));
	cr_expect_eq(rp(&r, "NOTIFY", "NEVER,FAILURE"), DSN_PARAM_BAD);
	cr_expect_eq(rp(&r, "NOTIFY", NULL), DSN_PARAM_BAD);
	cr_expect_eq(r.notify, 0);
}

Test(dsn, what_a_recipient_wants)
{
	/* No NOTIFY: failures and delays, as without DSN. */
	cr_expect(dsn_wants(NULL, DSN_NOTIFY_FAILURE));
	cr_expect(dsn_wants(NULL, DSN_NOTIFY_DELAY));
	cr_expect(!dsn_wants(NULL, DSN_NOTIFY_SUCCESS));
	cr_expect(!dsn_wants("NEVER", DSN_NOTIFY_FAILURE));
	cr_expect(!dsn_wants("NEVER", DSN_NOTIFY_DELAY));
	cr_expect(!dsn_wants("NEVER", DSN_NOTIFY_SUCCESS));
	cr_expect(dsn_wants("SUCCESS", DSN_NOTIFY_SUCCESS));
	cr_expect(!dsn_wants("SUCCESS", DSN_NOTIFY_FAILURE));
	cr_expect(!dsn_wants("SUCCESS,FAILURE", DSN_NOTIFY_DELAY));
	cr_expect(dsn_wants("FAILURE,DELAY", DSN_NOTIFY_DELAY));
}

Test(dsn, parameters_for_the_next_hop)
{
	char *p = dsn_mail_params("HDRS", "a b+c");
	cr_assert_not_null(p);
	cr_expect_str_eq(p, " RET=HDRS ENVID=a+20b+2Bc");
	free(p);
	p = dsn_mail_params(NULL, NULL);
	cr_expect_null(p);
	p = dsn_rcpt_params("SUCCESS,FAILURE", "rfc822;x=y@example.test");
	cr_assert_not_null(p);
	cr_expect_str_eq(p, " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+3Dy@example.test");
	free(p);
	p = dsn_rcpt_params(NULL, "rfc822;u@example.test");
	cr_assert_not_null(p);
	cr_expect_str_eq(p, " ORCPT=rfc822;u@example.test");
	free(p);
	cr_expect_null(dsn_rcpt_params(NULL, NULL));
}
