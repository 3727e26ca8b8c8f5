/*
 * verdict.c: the timing evidence of a connection (timing.c) turned into a
 * verdict (good / suspect / junk), a score and reasons in plain words.
 *
 * Called by smtpd at DATA (before the 354, so a junk client never sends
 * its body) and when a session ends without a message, and by the unit
 * tests. Each test has its own action: enforce counts in the score, log
 * only writes the reason (marked "[log]"), off ignores the finding.
 * One strong finding (pregreet, unauthorised pipelining, impatience,
 * non-SMTP input, bare LF) is enough for junk: legitimate MTAs and mail
 * libraries never do any of them. HELO form and reverse DNS are weak;
 * answering sooner than the round trip allows makes a client suspect.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "classify.h"

struct reasons {
	struct verdict *v;
	size_t off;
};

static void add(struct reasons *r, enum test_action a, int weight, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#include <stdarg.h>

static void add(struct reasons *r, enum test_action a, int weight, const char *fmt, ...)
{
	if (a == TEST_OFF)
		return;
	if (a == TEST_ENFORCE)
		r->v->score += weight;
	else
		r->v->logged_score += weight;
	char text[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	size_t size = sizeof(r->v->reasons);
	if (r->off >= size - 1)
		return;
	int n = snprintf(r->v->reasons + r->off, size - r->off, "%s%s%s", r->off ? "; " : "", text,
	                 a == TEST_LOG ? " [log]" : "");
	if (n > 0)
		r->off += (size_t)n < size - r->off ? (size_t)n : size - r->off - 1;
}

static double secs(int64_t usec)
{
	return (double)usec / 1e6;
}

void verdict_compute(const struct timing *t, const enum test_action act[TT_NTESTS],
                     struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	struct reasons r = {.v = v, .off = 0};

	if (t->pregreet_octets > 0)
		add(&r, act[TT_PREGREET], WEIGHT_PREGREET,
		    "pregreet %" PRIu32 " bytes after %.1f s%s", t->pregreet_octets,
		    secs(t->pregreet_first_usec - t->connect_usec),
		    t->greet_split ? " (during the banner pause)" : "");
	if (t->unauth_pipelining)
		add(&r, act[TT_PIPELINING], WEIGHT_PIPELINING, "unauth pipelining: %s after %s",
		    t->pipe_verbs, t->pipe_after);
	if (t->body_before_354)
		add(&r, act[TT_PIPELINING], WEIGHT_PIPELINING,
		    "unauth pipelining: body before 354");
	if (t->after_quit)
		add(&r, act[TT_PIPELINING], WEIGHT_PIPELINING,
		    "unauth pipelining: input after QUIT");
	if (t->impatient)
		add(&r, act[TT_PATIENCE], WEIGHT_IMPATIENT,
		    "impatient: %s %.1f s into a %.0f s delay",
		    t->impatient == 1 ? "closed" : "spoke", secs(t->impatient_usec),
		    secs(t->patience_len));
	if (t->non_smtp)
		add(&r, act[TT_NON_SMTP], WEIGHT_NON_SMTP, "non-SMTP input: %s", t->non_smtp_what);
	if (t->bare_lf)
		add(&r, act[TT_NON_SMTP], WEIGHT_BARE_LF, "bare LF in %" PRIu32 " command line%s",
		    t->bare_lf, t->bare_lf == 1 ? "" : "s");
	if (t->helo_flags & HELO_BARE_IP)
		add(&r, act[TT_HELO], WEIGHT_HELO, "HELO is a bare IP address");
	if (t->helo_flags & HELO_LITERAL_OTHER)
		add(&r, act[TT_HELO], WEIGHT_HELO, "HELO literal is not the client");
	if (t->helo_flags & HELO_OURS)
		add(&r, act[TT_HELO], WEIGHT_HELO, "HELO claims our own name");
	if (t->helo_flags & HELO_INVALID)
		add(&r, act[TT_HELO], WEIGHT_HELO, "HELO is not a valid name");
	/* Think time: an answer sooner than the network allows did not wait
	 * for our reply (timing.c counts those samples). Slow links are never
	 * held against a client: the yardstick is its own round trip. */
	if (t->think_fast >= THINK_FAST_MIN && t->think_fast * 2 >= t->think_n)
		add(&r, act[TT_THINK], WEIGHT_THINK,
		    "think time below the round trip: %" PRIu32 " of %" PRIu32
		    " answers within %.1f ms, round trip %.1f ms",
		    t->think_fast, t->think_n, t->think_fast_max / 1e3, t->think_rtt / 1e3);
	else if (t->think_n > 0 && act[TT_THINK] == TEST_LOG && t->rtt_min_usec > 0)
		add(&r, TEST_LOG, 0, "think time mean %.1f ms (%.1f round trips)",
		    (double)t->think_sum / t->think_n / 1e3,
		    (double)t->think_sum / t->think_n / (double)t->rtt_min_usec);
	/* Reverse DNS is weak evidence: together with nothing else it never
	 * reaches the suspect score. */
	if (t->rdns_fail)
		add(&r, act[TT_HELO], WEIGHT_RDNS_FAIL, "no forward-confirmed reverse DNS (%s)",
		    t->rdns_what);
	if (t->rdns_generic)
		add(&r, act[TT_HELO], WEIGHT_RDNS_GENERIC, "reverse DNS name looks dynamic (%s)",
		    t->rdns_what);

	v->cls = v->score >= VERDICT_JUNK_SCORE      ? VERDICT_JUNK
	         : v->score >= VERDICT_SUSPECT_SCORE ? VERDICT_SUSPECT
	                                             : VERDICT_GOOD;
}

const char *verdict_class_name(enum verdict_class c)
{
	switch (c) {
	case VERDICT_GOOD:
		return "good";
	case VERDICT_SUSPECT:
		return "suspect";
	case VERDICT_JUNK:
		return "junk";
	}
	return "?";
}

double verdict_score_sample(const struct verdict *v)
{
	double s = (double)v->score / VERDICT_JUNK_SCORE;
	return s > 1.0 ? 1.0 : s < 0.0 ? 0.0 : s;
}
