/*
 * fuzz_dsn.c: libFuzzer target for src/common/dsn.c, the DSN parameters
 * of RFC 3461 and their xtext.
 *
 * The input is split at its first NUL: the part before is a keyword, the
 * rest a value (no NUL: all of it is the value, and each keyword is
 * tried). Both go to the MAIL and RCPT parameter parsers and, as they
 * stand, to xtext_decode and dsn_notify_parse, each from an exact-size
 * copy so a read past the end is caught. Besides "no crash" it checks
 * what must hold for every input: a decoded value is printable US-ASCII
 * and no longer than its encoding, an accepted value respects the length
 * limits, NEVER is never combined, encoding what was decoded decodes back
 * to the same text, and the parameters made for a next hop parse back to
 * the same values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void check_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		CHECK(*p >= 0x20 && *p <= 0x7e);
}

/* Encode s and decode it again: the same text. */
static void round_trip(const char *s)
{
	size_t need = xtext_encode(s, NULL, 0);
	char *enc = malloc(need + 1);
	CHECK(enc != NULL);
	CHECK(xtext_encode(s, enc, need + 1) == need);
	CHECK(strlen(enc) == need);
	char *dec = malloc(strlen(s) + 1);
	CHECK(dec != NULL);
	CHECK(xtext_decode(enc, need, dec, strlen(s) + 1) == (int)strlen(s));
	CHECK(strcmp(dec, s) == 0);
	free(dec);
	free(enc);
}

/* " KEY=value KEY=value" made for a next hop: parse it back. */
static void reparse(const char *params, int rcpt, struct dsn_mail *m, struct dsn_rcpt *r)
{
	memset(m, 0, sizeof(*m));
	memset(r, 0, sizeof(*r));
	if (params == NULL)
		return;
	const char *p = params;
	while (*p) {
		CHECK(*p == ' ');
		p++;
		const char *eq = strchr(p, '=');
		CHECK(eq != NULL);
		const char *end = strchr(eq, ' ');
		if (end == NULL)
			end = eq + strlen(eq);
		enum dsn_param_result res =
		    rcpt ? dsn_rcpt_param(r, p, (size_t)(eq - p), eq + 1, (size_t)(end - eq - 1))
		         : dsn_mail_param(m, p, (size_t)(eq - p), eq + 1, (size_t)(end - eq - 1));
		CHECK(res == DSN_PARAM_OK);
		p = end;
	}
}

static void one(const char *key, size_t keylen, const char *val, size_t vallen)
{
	char *k = malloc(keylen ? keylen : 1);
	char *v = malloc(vallen ? vallen : 1);
	CHECK(k && v);
	memcpy(k, key, keylen);
	memcpy(v, val, vallen);

	struct dsn_mail m;
	memset(&m, 0, sizeof(m));
	enum dsn_param_result mr = dsn_mail_param(&m, k, keylen, v, vallen);
	if (mr == DSN_PARAM_OK) {
		CHECK(dsn_mail_given(&m) != NULL);
		if (m.has_envid) {
			CHECK(vallen <= DSN_ENVID_MAX);
			CHECK(strlen(m.envid) <= vallen);
			check_printable(m.envid);
			round_trip(m.envid);
		}
		const char *ret = m.ret == DSN_RET_FULL   ? "FULL"
		                  : m.ret == DSN_RET_HDRS ? "HDRS"
		                                          : NULL;
		char *params = dsn_mail_params(ret, m.has_envid ? m.envid : NULL);
		struct dsn_mail m2;
		struct dsn_rcpt unused;
		reparse(params, 0, &m2, &unused);
		CHECK(m2.ret == m.ret && m2.has_envid == m.has_envid);
		CHECK(!m.has_envid || strcmp(m2.envid, m.envid) == 0);
		/* The same parameter again is a duplicate. */
		CHECK(dsn_mail_param(&m, k, keylen, v, vallen) == DSN_PARAM_DUP);
		free(params);
	} else {
		CHECK(dsn_mail_given(&m) == NULL);
	}

	struct dsn_rcpt r;
	memset(&r, 0, sizeof(r));
	enum dsn_param_result rr = dsn_rcpt_param(&r, k, keylen, v, vallen);
	if (rr == DSN_PARAM_OK) {
		CHECK(dsn_rcpt_given(&r) != NULL);
		if (r.notify)
			CHECK(r.notify == DSN_NOTIFY_NEVER || !(r.notify & DSN_NOTIFY_NEVER));
		if (r.has_orcpt) {
			CHECK(vallen <= DSN_ORCPT_MAX);
			CHECK(strlen(r.orcpt) <= vallen);
			CHECK(strchr(r.orcpt, ';') != NULL);
			check_printable(r.orcpt);
			round_trip(strchr(r.orcpt, ';') + 1);
		}
		char nb[40];
		dsn_notify_format(r.notify, nb, sizeof(nb));
		char *params = dsn_rcpt_params(r.notify ? nb : NULL, r.has_orcpt ? r.orcpt : NULL);
		struct dsn_mail unused;
		struct dsn_rcpt r2;
		reparse(params, 1, &unused, &r2);
		CHECK(r2.notify == r.notify && r2.has_orcpt == r.has_orcpt);
		CHECK(!r.has_orcpt || strcmp(r2.orcpt, r.orcpt) == 0);
		CHECK(dsn_rcpt_param(&r, k, keylen, v, vallen) == DSN_PARAM_DUP);
		free(params);
	} else {
		CHECK(dsn_rcpt_given(&r) == NULL);
	}
	/* A keyword is one side's or the other's, never both. */
	CHECK(mr == DSN_PARAM_NOT_OURS || rr == DSN_PARAM_NOT_OURS);
	free(k);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	if (nul) {
		one(in, (size_t)(nul - in), nul + 1, size - (size_t)(nul - in) - 1);
	} else {
		static const char *const keys[] = {"RET", "ENVID", "NOTIFY", "ORCPT"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			one(keys[i], strlen(keys[i]), in, size);
	}

	/* The value alone, as xtext and as a NOTIFY list. */
	char *v = malloc(size ? size : 1);
	char out[1024];
	CHECK(v != NULL);
	memcpy(v, in, size);
	int n = xtext_decode(v, size, out, sizeof(out));
	if (n >= 0) {
		CHECK((size_t)n <= size && strlen(out) == (size_t)n);
		check_printable(out);
		round_trip(out);
	}
	unsigned notify;
	if (dsn_notify_parse(v, size, &notify) == 0) {
		CHECK(notify != 0);
		CHECK(notify == DSN_NOTIFY_NEVER || !(notify & DSN_NOTIFY_NEVER));
		char nb[40];
		unsigned again;
		dsn_notify_format(notify, nb, sizeof(nb));
		CHECK(dsn_notify_parse(nb, strlen(nb), &again) == 0 && again == notify);
	}
	free(v);
	return 0;
}
