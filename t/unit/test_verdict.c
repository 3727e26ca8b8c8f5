/*
 * test_verdict.c: the timing evidence (src/classify/timing.c) and its
 * verdict (src/classify/verdict.c), table-driven: each row is a scripted
 * dialogue as smtpd would note it, with the verdict, score and a reason
 * the admin must find in the log.
 */
#include <criterion/criterion.h>

/* The tables leave trailing fields zero on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <string.h>

#include "classify.h"

/* One step of a scripted dialogue; times in ms from the connect. */
enum step_kind {
	S_PREGREET,
	S_GREET,
	S_REPLY,
	S_CMD,
	S_EARLY_BODY,
	S_NON_SMTP,
	S_HELO,
	S_PAT_START,
	S_PAT_BREAK_CLOSE,
	S_PAT_BREAK_SPOKE,
	S_PAT_END,
	S_DATA_END,   /* end of data; pipelining = PIPELINING offered */
	S_TLS,        /* the TLS handshake completed */
	S_QUIT_MORE,  /* input was waiting after QUIT */
	S_HOLD_INPUT, /* input during the held reply; pipelining as offered */
	S_FLUSH,      /* the queued replies left */
	S_RTT,        /* octets = the kernel's minimum round trip, usec */
	S_END
};

struct step {
	enum step_kind k;
	int ms;
	const char *verb; /* S_CMD; S_NON_SMTP: what */
	int early, bare_lf, pipelining;
	unsigned helo;
	size_t octets;
};

struct row {
	const char *name;
	struct step steps[16];
	enum verdict_class cls;
	int score;
	const char *reason; /* substring of the reasons, or "" for none */
};

#define MS(x) ((int64_t)(x)*1000)

static const struct row rows[] = {
    {"polite EHLO client",
     {{S_GREET, 1000},
      {S_CMD, 1010, "EHLO", 0, 0, 0},
      {S_REPLY, 1011},
      {S_CMD, 1020, "MAIL", 0, 0, 1},
      {S_REPLY, 1021},
      {S_CMD, 1030, "RCPT", 0, 0, 1},
      {S_REPLY, 1031},
      {S_CMD, 1040, "DATA", 0, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"RFC 2920 group MAIL RCPT DATA after the EHLO reply",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "DATA", 1, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"RFC 3030 BDAT chunks pipelined, then the next transaction after BDAT LAST",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "BDAT", 1, 0, 1},
      {S_CMD, 20, "BDAT", 1, 0, 1},
      {S_CMD, 20, "BDAT", 1, 0, 1},
      {S_DATA_END, 20, NULL, 0, 0, 1},
      {S_CMD, 20, "MAIL", 1, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "BDAT", 1, 0, 1},
      {S_DATA_END, 20, NULL, 0, 0, 1},
      {S_CMD, 20, "QUIT", 1, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"BDAT before the EHLO reply",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "BDAT", 1, 0, 1},
      {S_DATA_END, 20, NULL, 0, 0, 1},
      {S_CMD, 20, "EHLO", 1, 0, 1},
      {S_CMD, 20, "BDAT", 1, 0, 1},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "unauth pipelining: BDAT after EHLO"},
    {"pregreet",
     {{S_PREGREET, 400, NULL, 0, 0, 0, 0, 14}, {S_GREET, 3000}, {S_END}},
     VERDICT_JUNK,
     WEIGHT_PREGREET,
     "pregreet 14 bytes after 0.4 s"},
    {"pipelining after HELO",
     {{S_GREET, 0},
      {S_CMD, 10, "HELO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 0},
      {S_CMD, 20, "RCPT", 1, 0, 0},
      {S_CMD, 20, "DATA", 1, 0, 0},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "unauth pipelining: RCPT DATA after MAIL"},
    {"MAIL before the EHLO reply",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_CMD, 10, "MAIL", 1, 0, 1},
      {S_CMD, 10, "RCPT", 1, 0, 1},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "unauth pipelining: MAIL RCPT after EHLO"},
    {"body before the 354",
     {{S_GREET, 0}, {S_CMD, 10, "EHLO", 0, 0, 0}, {S_EARLY_BODY, 20}, {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "body before 354"},
    {"impatient: closed in the delay",
     {{S_GREET, 0}, {S_PAT_START, 0}, {S_PAT_BREAK_CLOSE, 1200}, {S_END}},
     VERDICT_JUNK,
     WEIGHT_IMPATIENT,
     "impatient: closed 1.2 s into a 5 s delay"},
    {"patient client",
     {{S_GREET, 0}, {S_PAT_START, 0}, {S_PAT_END, 5000}, {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"HTTP",
     {{S_GREET, 0}, {S_NON_SMTP, 5, "GET / HTTP/1.1"}, {S_END}},
     VERDICT_JUNK,
     WEIGHT_NON_SMTP,
     "non-SMTP input: GET / HTTP/1.1"},
    {"bare LF",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 1, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 1, 1},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_BARE_LF,
     "bare LF in 2 command lines"},
    {"HELO bare IP: weak alone",
     {{S_GREET, 0}, {S_HELO, 5, NULL, 0, 0, 0, HELO_BARE_IP}, {S_END}},
     VERDICT_GOOD,
     WEIGHT_HELO,
     "HELO is a bare IP address"},
    /* RFC 2920 3.1: message content starts a group. */
    {"dot and QUIT together after ESMTP",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "DATA", 1, 0, 1},
      {S_REPLY, 21},
      {S_DATA_END, 30, NULL, 0, 0, 1},
      {S_CMD, 30, "QUIT", 1, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"next transaction pipelined after the dot",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "DATA", 1, 0, 1},
      {S_REPLY, 21},
      {S_DATA_END, 30, NULL, 0, 0, 1},
      {S_CMD, 30, "MAIL", 1, 0, 1},
      {S_CMD, 30, "RCPT", 1, 0, 1},
      {S_CMD, 30, "DATA", 1, 0, 1},
      {S_REPLY, 31},
      {S_DATA_END, 40, NULL, 0, 0, 1},
      {S_CMD, 40, "QUIT", 1, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"RSET starts a group",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "RSET", 0, 0, 1},
      {S_CMD, 20, "MAIL", 1, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "DATA", 1, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"dot and QUIT together after HELO: let through",
     {{S_GREET, 0},
      {S_CMD, 10, "HELO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 0},
      {S_REPLY, 21},
      {S_CMD, 30, "RCPT", 0, 0, 0},
      {S_REPLY, 31},
      {S_CMD, 40, "DATA", 0, 0, 0},
      {S_REPLY, 41},
      {S_DATA_END, 50, NULL, 0, 0, 0},
      {S_CMD, 50, "QUIT", 1, 0, 0},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"next MAIL after the dot without PIPELINING",
     {{S_GREET, 0},
      {S_CMD, 10, "HELO", 0, 0, 0},
      {S_REPLY, 11},
      {S_DATA_END, 50, NULL, 0, 0, 0},
      {S_CMD, 50, "MAIL", 1, 0, 0},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "unauth pipelining: MAIL after end of data"},
    {"a command after DATA before the 354",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_CMD, 20, "DATA", 1, 0, 1},
      {S_CMD, 20, "QUIT", 1, 0, 1},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "unauth pipelining: QUIT after DATA"},
    {"NOOP ends a group",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "NOOP", 0, 0, 1},
      {S_CMD, 20, "MAIL", 1, 0, 1},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "unauth pipelining: MAIL after NOOP"},
    {"input after QUIT",
     {{S_GREET, 0}, {S_CMD, 10, "EHLO", 0, 0, 0}, {S_QUIT_MORE, 20}, {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING,
     "input after QUIT"},
    {"EHLO on a fresh TLS session",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "STARTTLS", 0, 0, 1},
      {S_REPLY, 21},
      {S_TLS, 30},
      {S_CMD, 30, "EHLO", 1, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    /* Patience with PIPELINING: what RFC 2920 allows may come meanwhile. */
    {"DATA pipelined during the held RCPT reply",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_PAT_START, 20},
      {S_HOLD_INPUT, 30, NULL, 0, 0, 1},
      {S_PAT_END, 5020},
      {S_CMD, 5020, "DATA", 1, 0, 1},
      {S_END}},
     VERDICT_GOOD,
     0,
     ""},
    {"talking during the held EHLO reply",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 1},
      {S_PAT_START, 10},
      {S_HOLD_INPUT, 1510, NULL, 0, 0, 1},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_IMPATIENT,
     "impatient: spoke 1.5 s into a 5 s delay"},
    {"a command after DATA sent during the held RCPT reply",
     {{S_GREET, 0},
      {S_CMD, 10, "EHLO", 0, 0, 0},
      {S_REPLY, 11},
      {S_CMD, 20, "MAIL", 0, 0, 1},
      {S_CMD, 20, "RCPT", 1, 0, 1},
      {S_PAT_START, 20},
      {S_HOLD_INPUT, 2020, NULL, 0, 0, 1},
      {S_PAT_END, 5020},
      {S_CMD, 5020, "DATA", 1, 0, 1},
      {S_CMD, 5020, "RSET", 1, 0, 1},
      {S_END}},
     VERDICT_JUNK,
     WEIGHT_PIPELINING + WEIGHT_IMPATIENT,
     "impatient: spoke 2.0 s into a 5 s delay"},
    {"HELO bare IP and our name: suspect",
     {{S_GREET, 0}, {S_HELO, 5, NULL, 0, 0, 0, HELO_BARE_IP | HELO_OURS}, {S_END}},
     VERDICT_SUSPECT,
     2 * WEIGHT_HELO,
     "HELO claims our own name"},
};

static void play(const struct row *r, const enum test_action act[TT_NTESTS], struct verdict *v)
{
	struct timing t;
	timing_init(&t, MS(0));
	for (const struct step *s = r->steps; s->k != S_END; s++) {
		int64_t u = MS(s->ms);
		switch (s->k) {
		case S_PREGREET:
			timing_note_pregreet(&t, s->octets, u);
			break;
		case S_GREET:
			timing_note_greeting(&t, 0, u);
			break;
		case S_REPLY:
			timing_note_reply(&t, u);
			break;
		case S_CMD:
			timing_note_command(&t, s->verb, s->early, s->bare_lf, s->pipelining, u);
			break;
		case S_EARLY_BODY:
			timing_note_early_body(&t);
			break;
		case S_NON_SMTP:
			timing_note_non_smtp(&t, s->verb);
			break;
		case S_HELO:
			timing_note_helo(&t, s->helo);
			break;
		case S_PAT_START:
			timing_patience_start(&t, u, MS(5000));
			break;
		case S_PAT_BREAK_CLOSE:
			timing_patience_break(&t, 1, u);
			break;
		case S_PAT_BREAK_SPOKE:
			timing_patience_break(&t, 0, u);
			break;
		case S_PAT_END:
			timing_patience_end(&t);
			break;
		case S_DATA_END:
			timing_note_end_of_data(&t, s->pipelining);
			break;
		case S_TLS:
			timing_note_tls(&t);
			break;
		case S_QUIT_MORE:
			timing_note_after_quit(&t);
			break;
		case S_HOLD_INPUT:
			timing_patience_input(&t, s->pipelining, u);
			break;
		case S_FLUSH:
			timing_note_flushed(&t, u);
			break;
		case S_RTT:
			timing_note_rtt(&t, (uint32_t)s->octets, (uint32_t)s->octets);
			break;
		case S_END:
			break;
		}
	}
	verdict_compute(&t, act, v);
}

Test(verdict, table)
{
	const enum test_action enforce[TT_NTESTS] = {TEST_ENFORCE, TEST_ENFORCE, TEST_ENFORCE,
	                                             TEST_LOG,     TEST_ENFORCE, TEST_ENFORCE};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct verdict v;
		play(&rows[i], enforce, &v);
		cr_expect_eq(v.cls, rows[i].cls, "%s: verdict %s", rows[i].name,
		             verdict_class_name(v.cls));
		cr_expect_eq(v.score, rows[i].score, "%s: score %d", rows[i].name, v.score);
		if (rows[i].reason[0])
			cr_expect(strstr(v.reasons, rows[i].reason) != NULL, "%s: reasons '%s'",
			          rows[i].name, v.reasons);
		else
			cr_expect(strstr(v.reasons, "pipelining") == NULL &&
			              strstr(v.reasons, "pregreet") == NULL,
			          "%s: reasons '%s'", rows[i].name, v.reasons);
	}
}

/* log: the reason is kept (marked), the verdict ignores it; off: gone. */
Test(verdict, log_and_off_modes)
{
	enum test_action act[TT_NTESTS];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].cls != VERDICT_JUNK)
			continue;
		for (int m = TEST_LOG; m <= TEST_OFF; m++) {
			for (int k = 0; k < TT_NTESTS; k++)
				act[k] = (enum test_action)m;
			struct verdict v;
			play(&rows[i], act, &v);
			cr_expect_eq(v.cls, VERDICT_GOOD, "%s mode %d: %s", rows[i].name, m,
			             verdict_class_name(v.cls));
			cr_expect_eq(v.score, 0);
			if (m == TEST_LOG)
				cr_expect(strstr(v.reasons, rows[i].reason) &&
				              strstr(v.reasons, "[log]"),
				          "%s: '%s'", rows[i].name, v.reasons);
			else
				cr_expect_str_eq(v.reasons, "", "%s: '%s'", rows[i].name,
				                 v.reasons);
		}
	}
}

Test(verdict, helo_form)
{
	static const struct {
		const char *helo, *client, *ours, *host;
		unsigned want;
	} t[] = {
	    {"mail.example.org", "192.0.2.1", "192.0.2.9", "mx.example.test", 0},
	    {"192.0.2.1", "192.0.2.1", "192.0.2.9", "mx.example.test", HELO_BARE_IP},
	    {"[192.0.2.1]", "192.0.2.1", "192.0.2.9", "mx.example.test", 0},
	    {"[192.0.2.7]", "192.0.2.1", "192.0.2.9", "mx.example.test", HELO_LITERAL_OTHER},
	    {"[192.0.2.9]", "192.0.2.1", "192.0.2.9", "mx.example.test", HELO_OURS},
	    {"MX.example.TEST", "192.0.2.1", "192.0.2.9", "mx.example.test", HELO_OURS},
	    {"bad..name", "192.0.2.1", NULL, "mx.example.test", HELO_INVALID},
	    {"-bad.example", "192.0.2.1", NULL, "mx.example.test", HELO_INVALID},
	    {"[IPv6:2001:db8::1]", "2001:db8::1", NULL, "mx.example.test", 0},
	    {"[300.1.1.1]", "192.0.2.1", NULL, "mx.example.test", HELO_INVALID},
	    {"", "192.0.2.1", NULL, "mx.example.test", HELO_INVALID},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_expect_eq(timing_helo_form(t[i].helo, t[i].client, t[i].ours, t[i].host),
		             t[i].want, "HELO '%s': got %#x", t[i].helo,
		             timing_helo_form(t[i].helo, t[i].client, t[i].ours, t[i].host));
}

Test(verdict, timing_state_is_small)
{
	/* Memory per connection: smtpd holds thousands of connections in one
	 * process, each with one struct timing inside its session and no
	 * allocation of its own. The bound keeps a new field from growing
	 * every connection unnoticed; raise it on purpose, with the reason,
	 * if the classifier needs more evidence. */
	cr_expect_leq(sizeof(struct timing), 384);
}

/* A client that answers each of our replies gap_us after it left, on a
 * link with the given round trip (usec), with think time enforced. */
static void think_dialogue(uint32_t rtt, int64_t gap, struct verdict *v)
{
	static const char *const verbs[] = {"EHLO", "MAIL", "RCPT", "RCPT", "DATA"};
	const enum test_action act[TT_NTESTS] = {TEST_ENFORCE, TEST_ENFORCE, TEST_ENFORCE,
	                                         TEST_ENFORCE, TEST_ENFORCE, TEST_ENFORCE};
	struct timing t;
	int64_t now = 1000000;
	timing_init(&t, 0);
	timing_note_rtt(&t, rtt, rtt);
	timing_note_greeting(&t, 0, now);
	timing_note_flushed(&t, now);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		now += gap;
		timing_note_command(&t, verbs[i], 0, 0, i > 0, now);
		now += 100;
		timing_note_reply(&t, now);
		timing_note_flushed(&t, now + 10);
		now += 10;
	}
	verdict_compute(&t, act, v);
}

Test(verdict, think_time_against_the_round_trip)
{
	/* rtt usec, answer gap usec, expected class, reason substring */
	static const struct {
		uint32_t rtt;
		int64_t gap;
		enum verdict_class cls;
		const char *reason;
	} t[] = {
	    {40, 5, VERDICT_GOOD, NULL},          /* loopback: too short to judge */
	    {40, 2000, VERDICT_GOOD, NULL},       /* loopback, slow client */
	    {100000, 101000, VERDICT_GOOD, NULL}, /* 100 ms link, polite */
	    {600000, 601000, VERDICT_GOOD, NULL}, /* 600 ms link, polite */
	    {600000, 650000, VERDICT_GOOD, NULL}, /* 600 ms, a little jitter */
	    {100000, 5000, VERDICT_SUSPECT, "below the round trip"}, /* scripted */
	    {600000, 20000, VERDICT_SUSPECT, "below the round trip"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct verdict v;
		think_dialogue(t[i].rtt, t[i].gap, &v);
		cr_expect_eq(v.cls, t[i].cls, "rtt %u gap %lld: %s (%s)", t[i].rtt,
		             (long long)t[i].gap, verdict_class_name(v.cls), v.reasons);
		if (t[i].reason)
			cr_expect(strstr(v.reasons, t[i].reason) != NULL, "rtt %u: reasons '%s'",
			          t[i].rtt, v.reasons);
		else
			cr_expect(strstr(v.reasons, "below the round trip") == NULL,
			          "rtt %u gap %lld: reasons '%s'", t[i].rtt, (long long)t[i].gap,
			          v.reasons);
	}
}

Test(verdict, reverse_dns_is_weak_evidence)
{
	const enum test_action act[TT_NTESTS] = {TEST_ENFORCE, TEST_ENFORCE, TEST_ENFORCE,
	                                         TEST_ENFORCE, TEST_ENFORCE, TEST_ENFORCE};
	struct timing t;
	struct verdict v;
	timing_init(&t, 0);
	timing_note_rdns(&t, 1, 1, "host-192-0-2-1.dyn.example");
	verdict_compute(&t, act, &v);
	cr_expect_eq(v.cls, VERDICT_GOOD, "rDNS alone: %s", verdict_class_name(v.cls));
	cr_expect_eq(v.score, WEIGHT_RDNS_FAIL + WEIGHT_RDNS_GENERIC);
	cr_expect(strstr(v.reasons, "looks dynamic") != NULL, "%s", v.reasons);
	cr_expect_lt(WEIGHT_RDNS_FAIL + WEIGHT_RDNS_GENERIC, VERDICT_SUSPECT_SCORE);
}
