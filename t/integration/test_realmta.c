/*
 * test_realmta.c: Postfix's own smtp client as a sender to tempomxd.
 *
 * A private Postfix instance (realclient.c: its own config, queue and
 * data directories under the test's directory, an smtpd on a free
 * loopback port to inject mail) relays everything to the daemon under
 * test from 127.0.7.7, which is not in mynetworks, so the timing
 * classifier and the sender history judge it like any Internet client.
 * TLS is "may", connection caching is on for the relayhost (TLS reuse
 * too) and PIPELINING is left at Postfix's default. The daemon probes
 * new clients with greet_pause 1 s and patience_delay 2 s.
 *
 * Three batches of 20 messages, each to 1 to 4 recipients: every message
 * must be delivered on the first attempt (no deferral in Postfix's log,
 * no tempfail or reject of 127.0.7.7 in tempomxd's, Postfix's queue
 * empty), sessions must carry more than one message (connection reuse),
 * and once the first batch is in, the history of 127.0.7.7 must be good
 * and Postfix's delays= show neither the split banner nor a held reply.
 * The third batch runs against a daemon restarted under libfaketime with
 * its wall clock an hour ahead, so the history it reads is an hour old.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "realclient.h"

TestSuite(realmta, .init = h_setup, .fini = rc_teardown, .timeout = 300);

#define PF_SRC "127.0.7.7"
#define NMSG 20
#define NRCPT 4

static struct h_daemon D;
static struct rc_postfix P;
static const char *const rcpts[NRCPT] = {"pf0@localhost", "pf1@localhost", "pf2@localhost",
                                         "pf3@localhost"};

/* Messages per recipient in one batch: message i goes to rcpts[0 .. i%4]. */
static int per_batch(int k)
{
	int n = 0;
	for (int i = 0; i < NMSG; i++)
		n += i % NRCPT >= k;
	return n;
}

static int delivered(int rounds, int *missing)
{
	int all = 1;
	*missing = 0;
	for (int k = 0; k < NRCPT; k++) {
		char md[H_PATH];
		char user[16];
		snprintf(user, sizeof(user), "pf%d", k);
		h_maildir(&D, "localhost", user, md, sizeof(md));
		int want = per_batch(k) * rounds, have = h_maildir_count(md);
		if (have < want) {
			all = 0;
			*missing += want - have;
		}
	}
	return all;
}

static size_t file_size(const char *path)
{
	size_t len = 0;
	char *s = h_read_file(path, &len);
	free(s);
	return s ? len : 0;
}

/* The largest connection set-up and transmission times (the c and d of
 * Postfix's delays=a/b/c/d) of the deliveries logged after pf_since: a
 * split banner shows in c, a held reply in d. */
static void max_delays(size_t pf_since, double *conn, double *xmit)
{
	char *log = h_read_file(P.log, NULL);
	*conn = *xmit = 0;
	if (log == NULL)
		return;
	for (char *p = log + pf_since; (p = strstr(p, " delays=")) != NULL; p++) {
		double a, b, c, d;
		if (sscanf(p + 8, "%lf/%lf/%lf/%lf", &a, &b, &c, &d) == 4) {
			*conn = c > *conn ? c : *conn;
			*xmit = d > *xmit ? d : *xmit;
		}
	}
	free(log);
}

/* One batch: inject, wait until delivered (or until a deferral had time
 * for one retry), then check that it all went through at first try.
 * Returns the offset of the daemon log where the batch started. */
static size_t batch(const char *tag, int round, int known)
{
	size_t since = rc_log_size(&D), pf_since = file_size(P.log);
	long long t0 = h_now_ms(), deferred_at = 0;
	int missing = 0;

	cr_assert_eq(rc_postfix_inject(&P, NMSG, rcpts, NRCPT, tag), NMSG,
	             "the private Postfix did not take the %s batch", tag);
	while (!delivered(round, &missing) && h_now_ms() - t0 < 75000) {
		if (deferred_at == 0 && rc_lines_with(P.log, pf_since, "status=deferred", NULL))
			deferred_at = h_now_ms();
		/* A deferral is already a failure; wait for one retry only
		 * (minimal_backoff_time 10 s) to show whether it recovers. */
		if (deferred_at && h_now_ms() - deferred_at > 25000)
			break;
		h_sleep_ms(250);
	}
	long long took = h_now_ms() - t0;
	int nclassify = 0;
	char *lines = rc_classify_lines(&D, since, PF_SRC, &nclassify);
	int deferrals = rc_lines_with(P.log, pf_since, "status=deferred", NULL);
	int sent = rc_lines_with(P.log, pf_since, "status=sent", NULL);
	int refused = rc_refusals(&D, since, PF_SRC);
	if (missing || deferrals || refused) {
		rc_postfix_dump_log(&P, 12);
		cr_log_info("%s batch: tempomxd classify lines for %s:\n%s", tag, PF_SRC,
		            rc_head(lines, 12));
	}
	cr_expect_eq(missing, 0, "%s batch: %d deliveries missing after %lld ms", tag, missing,
	             took);
	cr_expect_eq(deferrals, 0, "%s batch: Postfix deferred %d deliveries", tag, deferrals);
	cr_expect_eq(refused, 0, "%s batch: tempomxd refused %s %d times", tag, PF_SRC, refused);
	int want = 0;
	for (int k = 0; k < NRCPT; k++)
		want += per_batch(k);
	cr_expect_eq(sent, want, "%s batch: Postfix logged %d of %d deliveries sent", tag, sent,
	             want);
	cr_expect_eq(rc_postfix_queued(&P), 0, "%s batch: mail left in Postfix's queue", tag);
	/* A known sender gets no probing delays: no greet_pause (1 s) in
	 * the set-up of a connection, no patience_delay (2 s) in sending. */
	double conn, xmit;
	max_delays(pf_since, &conn, &xmit);
	if (known) {
		cr_expect_lt(conn, 0.9, "%s batch: a connection set-up took %.1f s", tag, conn);
		cr_expect_lt(xmit, 1.9, "%s batch: a transmission took %.1f s", tag, xmit);
	}
	cr_log_info("%s batch: %d deliveries in %lld ms, %d classify lines, set-up up to %.1f s, "
	            "transmission up to %.1f s",
	            tag, want - missing, took, nclassify, conn, xmit);
	free(lines);
	return since;
}

/* Every transaction of PF_SRC since the offset was judged with a good
 * history and went to hi/. */
static void expect_known_good(size_t since, const char *tag)
{
	int n = 0, accepted = 0, good = 0;
	char *lines = rc_classify_lines(&D, since, PF_SRC, &n);
	for (char *line = lines; *line;) {
		char *end = strchr(line, '\n');
		*end = '\0';
		if (strstr(line, ": hi, verdict=") || strstr(line, ": lo, verdict=")) {
			accepted++;
			good += strstr(line, "history=good") != NULL;
		}
		*end = '\n';
		line = end + 1;
	}
	int lo = rc_outcomes(&D, since, PF_SRC, "lo");
	int junk = rc_history_has_junk(lines);
	cr_expect_gt(accepted, 0, "%s batch: no accepted transaction of %s in the log", tag,
	             PF_SRC);
	cr_expect_eq(good, accepted, "%s batch: %d of %d transactions without history=good:\n%s",
	             tag, accepted - good, accepted, rc_head(lines, 12));
	cr_expect_eq(lo, 0, "%s batch: %d transactions of a known good sender went to lo:\n%s", tag,
	             lo, lines);
	cr_expect(!junk, "%s batch: the history holds junk for %s:\n%s", tag, PF_SRC, lines);
	free(lines);
}

/* The daemon's log has a line stamped with the wall clock shifted by
 * one hour (the startup lines after a restart under faketime). */
static int log_clock_ahead(size_t since)
{
	char *log = h_read_file(D.log, NULL);
	int found = 0;
	time_t now = time(NULL);
	for (int skew = -1; skew <= 1 && log && !found; skew++) {
		char stamp[32];
		time_t t = now + 3600 + skew * 60;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), " %H:%M:", &tm);
		found = strstr(log + since, stamp) != NULL;
	}
	free(log);
	return found;
}

Test(realmta, postfix_relays_every_batch_on_first_attempt)
{
	h_daemon_init(&D);
	h_set(&D, "greet_pause", "1");
	h_set(&D, "patience_delay", "2");
	h_set(&D, "smtp_tls", "yes");
	h_daemon_start(&D);
	rc_postfix_init(&P, &D, PF_SRC, 4);
	rc_postfix_start(&P);

	/* 1. A sender the history has never seen. */
	size_t first = batch("first", 1, 0);
	cr_expect(rc_lines_with(D.log, first, "STARTTLS: ", "[" PF_SRC "]:"),
	          "Postfix did not use STARTTLS");

	/* 2. Right after: known, good, no probing delays. The history is
	 * looked up when a client connects: wait until Postfix has closed
	 * the connections of the first batch it still caches
	 * (smtp_connection_cache_time_limit, 2 s), which were judged as new. */
	h_sleep_ms(3000);
	size_t second = batch("second", 2, 1);
	expect_known_good(second, "second");

	/* 3. An hour of history later, simulated: the same spool and
	 * history store, the daemon's wall clock one hour ahead. */
	char why[128];
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	cr_assert_eq(rc_faketime_env("+1h", why, sizeof(why)), 0, "%s", why);
	size_t restart = rc_log_size(&D);
	h_daemon_start(&D);
	rc_faketime_clear();
	cr_expect(log_clock_ahead(restart), "the restarted daemon's clock is not an hour ahead");
	rc_postfix_retarget(&P, D.port);
	size_t third = batch("hour-later", 3, 1);
	expect_known_good(third, "hour-later");

	/* Connections were reused (in whichever batch Postfix chose to). */
	int reuse = rc_max_messages_per_session(&D, first, PF_SRC);
	cr_expect_gt(reuse, 1, "no session carried more than one message (max %d)", reuse);
	cr_expect_gt(rc_lines_with(P.log, 0, "conn_use=", NULL), 0,
	             "Postfix never reused a connection");

	rc_postfix_stop(&P);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}
