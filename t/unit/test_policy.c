/*
 * test_policy.c: the pre-acceptance decision (src/classify/policy.c) and
 * the whitelists (src/classify/whitelist.c), table-driven.
 */
#include <criterion/criterion.h>

/* The tables leave trailing fields zero on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "classify.h"

#define NOW 1000000
#define H 3600

static const struct policy_params paper = {
    .new_action = NEW_TEMPFAIL,
    .new_delay = 4 * H,
    .junk_action = JUNK_TEMPFAIL,
    .junk_delay = 12 * H,
    .timing_junk_action = TJ_REJECT,
};
static const struct policy_params defaults = {
    .new_action = NEW_ACCEPT,
    .new_delay = 4 * H,
    .junk_action = JUNK_TEMPFAIL,
    .junk_delay = 12 * H,
    .timing_junk_action = TJ_REJECT,
};

static const struct {
	const char *name;
	const struct policy_params *p;
	int log_new, log_junk, log_timing;
	struct policy_input in;
	enum policy_decision want, would;
} rows[] = {
    {"good history, good timing -> hi",
     &defaults,
     0,
     0,
     0,
     {POLICY_GOOD, NOW - 10 * H, NOW, VERDICT_GOOD, 0, 0},
     POLICY_HI,
     POLICY_HI},
    {"good history, suspect timing -> lo",
     &defaults,
     0,
     0,
     0,
     {POLICY_GOOD, NOW - 10 * H, NOW, VERDICT_SUSPECT, 0, 0},
     POLICY_LO,
     POLICY_LO},
    {"new, accept -> lo",
     &defaults,
     0,
     0,
     0,
     {POLICY_NEW, 0, NOW, VERDICT_GOOD, 0, 0},
     POLICY_LO,
     POLICY_LO},
    {"new, paper: first contact -> tempfail",
     &paper,
     0,
     0,
     0,
     {POLICY_NEW, 0, NOW, VERDICT_GOOD, 0, 0},
     POLICY_TEMPFAIL,
     POLICY_TEMPFAIL},
    {"new, paper: 3 h after first seen -> tempfail",
     &paper,
     0,
     0,
     0,
     {POLICY_NEW, NOW - 3 * H, NOW, VERDICT_GOOD, 0, 0},
     POLICY_TEMPFAIL,
     POLICY_TEMPFAIL},
    {"new, paper: 5 h after first seen -> lo",
     &paper,
     0,
     0,
     0,
     {POLICY_NEW, NOW - 5 * H, NOW, VERDICT_GOOD, 0, 0},
     POLICY_LO,
     POLICY_LO},
    {"new, log only -> lo, would tempfail",
     &paper,
     1,
     0,
     0,
     {POLICY_NEW, 0, NOW, VERDICT_GOOD, 0, 0},
     POLICY_LO,
     POLICY_TEMPFAIL},
    {"predicted junk within junk_delay -> tempfail",
     &defaults,
     0,
     0,
     0,
     {POLICY_JUNK, NOW - H, NOW, VERDICT_GOOD, 0, 0},
     POLICY_TEMPFAIL,
     POLICY_TEMPFAIL},
    {"predicted junk after junk_delay -> lo",
     &defaults,
     0,
     0,
     0,
     {POLICY_JUNK, NOW - 13 * H, NOW, VERDICT_GOOD, 0, 0},
     POLICY_LO,
     POLICY_LO},
    /* junk_delay counts from the latest junk, not from the first contact. */
    {"predicted junk, first seen long ago, junk an hour ago -> tempfail",
     &defaults,
     0,
     0,
     0,
     {POLICY_JUNK, NOW - 30 * H, NOW, VERDICT_GOOD, 0, 0, NOW - H},
     POLICY_TEMPFAIL,
     POLICY_TEMPFAIL},
    {"predicted junk, quiet for 13 h -> lo",
     &defaults,
     0,
     0,
     0,
     {POLICY_JUNK, NOW - 30 * H, NOW, VERDICT_GOOD, 0, 0, NOW - 13 * H},
     POLICY_LO,
     POLICY_LO},
    {"predicted junk, log only -> lo",
     &defaults,
     0,
     1,
     0,
     {POLICY_JUNK, NOW - H, NOW, VERDICT_GOOD, 0, 0},
     POLICY_LO,
     POLICY_TEMPFAIL},
    {"timing junk -> reject",
     &defaults,
     0,
     0,
     0,
     {POLICY_GOOD, NOW - H, NOW, VERDICT_JUNK, 0, 0},
     POLICY_REJECT,
     POLICY_REJECT},
    {"timing junk, log only -> lo",
     &defaults,
     0,
     0,
     1,
     {POLICY_GOOD, NOW - H, NOW, VERDICT_JUNK, 0, 0},
     POLICY_LO,
     POLICY_REJECT},
    {"whitelisted timing junk -> hi",
     &defaults,
     0,
     0,
     0,
     {POLICY_JUNK, NOW - H, NOW, VERDICT_JUNK, 1, 0},
     POLICY_HI,
     POLICY_HI},
    {"exempt new client -> hi",
     &paper,
     0,
     0,
     0,
     {POLICY_NEW, 0, NOW, VERDICT_GOOD, 0, 1},
     POLICY_HI,
     POLICY_HI},
};

Test(policy, table)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct policy_params p = *rows[i].p;
		p.new_log_only = rows[i].log_new;
		p.junk_log_only = rows[i].log_junk;
		p.timing_log_only = rows[i].log_timing;
		struct policy_result r;
		policy_decide(&p, &rows[i].in, &r);
		cr_expect_eq(r.decision, rows[i].want, "%s: got %s (%s)", rows[i].name,
		             policy_decision_name(r.decision), r.why);
		cr_expect_eq(r.would, rows[i].would, "%s: would %s", rows[i].name,
		             policy_decision_name(r.would));
		cr_expect(r.why[0] != '\0', "%s: no reason", rows[i].name);
	}
}

Test(policy, predicted_junk_reject_and_accept)
{
	struct policy_params p = defaults;
	struct policy_input in = {POLICY_JUNK, NOW - H, NOW, VERDICT_GOOD, 0, 0};
	struct policy_result r;
	p.junk_action = JUNK_REJECT;
	policy_decide(&p, &in, &r);
	cr_expect_eq(r.decision, POLICY_REJECT);
	p.junk_action = JUNK_ACCEPT;
	policy_decide(&p, &in, &r);
	cr_expect_eq(r.decision, POLICY_LO);
	p.timing_junk_action = TJ_TEMPFAIL;
	in.verdict = VERDICT_JUNK;
	policy_decide(&p, &in, &r);
	cr_expect_eq(r.decision, POLICY_TEMPFAIL);
}

static struct sockaddr_in v4(const char *a)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	inet_pton(AF_INET, a, &s.sin_addr);
	return s;
}

Test(whitelist, parse_and_match)
{
	struct whitelist wl;
	char err[200];
	memset(&wl, 0, sizeof(wl));
	const char text[] = "# comment\n\nclient 192.0.2.0/24\n  sender friend@example.org  \n"
	                    "sender .partner.example\nrecipient postmaster@example.test # x\n"
	                    "recipient abuse.example.test\r\n";
	cr_assert_eq(whitelist_parse(&wl, text, sizeof(text) - 1, err, sizeof(err)), 0, "%s", err);
	struct sockaddr_in in = v4("192.0.2.77"), out = v4("192.0.3.1");
	cr_expect(whitelist_client(&wl, (struct sockaddr *)&in));
	cr_expect(!whitelist_client(&wl, (struct sockaddr *)&out));
	static const struct {
		int kind;
		const char *addr;
		int want;
	} t[] = {
	    {1, "friend@example.org", 1},
	    {1, "FRIEND@Example.ORG", 1},
	    {1, "foe@example.org", 0},
	    {1, "x@partner.example", 1},
	    {1, "x@mail.partner.example", 1},
	    {1, "x@notpartner.example", 0},
	    {1, "", 0},
	    {2, "postmaster@example.test", 1},
	    {2, "bob@example.test", 0},
	    {2, "anyone@abuse.example.test", 1},
	    {2, "x@sub.abuse.example.test", 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = t[i].kind == 1 ? whitelist_sender(&wl, t[i].addr)
		                         : whitelist_recipient(&wl, t[i].addr);
		cr_expect_eq(got, t[i].want, "%s: %d", t[i].addr, got);
	}
	whitelist_free(&wl);
}

Test(whitelist, bad_lines)
{
	static const struct {
		const char *text, *err;
	} t[] = {
	    {"client 300.1.1.1\n", "line 1: bad entry"},
	    {"ok line\n", "line 1: expected client, sender or recipient"},
	    {"sender a@b c@d\n", "line 1: expected one entry"},
	    {"# c\nrecipient\n", "line 2: expected one entry"},
	    {"sender a@@b\n", "line 1: bad entry"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct whitelist wl;
		char err[200] = "";
		memset(&wl, 0, sizeof(wl));
		cr_expect_eq(whitelist_parse(&wl, t[i].text, strlen(t[i].text), err, sizeof(err)),
		             -1, "'%s' accepted", t[i].text);
		cr_expect_str_eq(err, t[i].err, "'%s': %s", t[i].text, err);
		whitelist_free(&wl);
	}
}
