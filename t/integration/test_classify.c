/*
 * test_classify.c: the timing classifier, the sender history and the
 * pre-acceptance policy of the real tempomxd, seen from clients.
 *
 * Every client connects from its own 127.0.0.x address, so the daemon
 * sees different senders (127.0.0.1 is in mynetworks and exempt). Delays
 * are short: greet_pause 1 s, patience_delay 2 s. Legitimate clients
 * (swaks plain, --pipeline, --tls, Python smtplib, msmtp, curl, a slow
 * client, a client that waits for the end of the split banner) must never
 * be refused and reach hi/ once known; ratware emulators must be refused
 * before the body. The outcome of each transaction is read from the
 * daemon's "classify: unknown[addr]:port: OUTCOME," log lines.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "realclient.h"

TestSuite(classify, .init = h_setup, .fini = h_teardown, .timeout = 120);

static struct h_daemon D;

static void start(void)
{
	h_daemon_init(&D);
	h_set(&D, "greet_pause", "1");
	h_set(&D, "patience_delay", "2");
	h_set(&D, "smtp_tls", "yes");
}

/* Transactions of client addr that ended with outcome (hi, lo, reject,
 * tempfail, "tempfail (load)"), from the log. */
static int outcomes(const char *addr, const char *outcome)
{
	return rc_outcomes(&D, 0, addr, outcome);
}

/* ---- legitimate clients ---- */

static const char py_client[] =
    "import email.message, smtplib, sys\n"
    "port, src, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])\n"
    "m = email.message.EmailMessage()\n"
    "m['From'] = 'sender@localhost'\n"
    "m['To'] = 'py@localhost'\n"
    "m['Subject'] = 'classify'\n"
    "m.set_content('hello\\n')\n"
    "rcpts = ['py%d@localhost' % i for i in range(n)]\n"
    "with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.test',\n"
    "                  source_address=(src, 0), timeout=30) as s:\n"
    "    sys.exit(1 if s.send_message(m, to_addrs=rcpts) else 0)\n";

/* Runs every external client at once (each waits for its own delays),
 * from the addresses 127.0.0.2 to .8. Returns the number that failed. */
static int run_external(char **outp)
{
	char script[8192], msg[H_PATH];
	snprintf(msg, sizeof(msg), "%s/legit.eml", D.dir);
	const char body[] = "From: sender@localhost\r\nTo: u@localhost\r\nSubject: t\r\n\r\nhi\r\n";
	cr_assert_eq(h_write_file(msg, body, sizeof(body) - 1, 0644), 0);
	int p = D.port;
	snprintf(script, sizeof(script),
	         "fail=0\n"
	         "S='swaks --server 127.0.0.1 --port %d --helo client.example.test "
	         "--from sender@localhost --to u@localhost --timeout 30'\n"
	         "$S -li 127.0.0.2 >/dev/null 2>&1 & a=$!\n"
	         "$S -li 127.0.0.3 --pipeline >/dev/null 2>&1 & b=$!\n"
	         "$S -li 127.0.0.4 --tls >/dev/null 2>&1 & c=$!\n"
	         "python3 -c \"$PY\" %d 127.0.0.5 1 & d=$!\n"
	         "python3 -c \"$PY\" %d 127.0.0.6 40 & e=$!\n"
	         "msmtp -C /dev/null --host=127.0.0.1 --port=%d --source-ip=127.0.0.7 "
	         "--from=sender@localhost --auth=off --tls=off --domain=client.example.test "
	         "-- u@localhost < %s & f=$!\n"
	         "curl -sS --max-time 30 --interface 127.0.0.8 --url "
	         "smtp://127.0.0.1:%d/client.example.test --mail-from sender@localhost "
	         "--mail-rcpt u@localhost --upload-file %s & g=$!\n"
	         "for j in $a $b $c $d $e $f $g; do wait $j || { echo \"client $j failed\"; "
	         "fail=$((fail+1)); }; done\n"
	         "exit $fail\n",
	         p, p, p, p, msg, p, msg);
	setenv("PY", py_client, 1);
	char *argv[] = {"/bin/sh", "-c", script, NULL};
	return h_run(argv, NULL, 0, 60000, outp, NULL);
}

/* A raw client that waits 300 ms before each command. */
static int slow_client(const char *src)
{
	struct h_conn c;
	const char *cmds[] = {"EHLO slow.example.test", "MAIL FROM:<s@localhost>",
	                      "RCPT TO:<u@localhost>", "DATA"};
	h_open(&c, src, D.port);
	for (size_t i = 0; i < 4; i++) {
		h_sleep_ms(300);
		int code = h_cmd(&c, "%s", cmds[i]);
		if (code != (i == 3 ? 354 : 250)) {
			h_close(&c);
			return code;
		}
	}
	h_sleep_ms(300);
	int code = h_cmd(&c, "Subject: slow\r\n\r\nslow body\r\n.");
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

/* Waits for the final line of the split banner (h_open reads a whole
 * multi-line reply), then one transaction. */
static int split_banner; /* the teaser client saw "220-" */

static int teaser_client(const char *src)
{
	struct h_conn c;
	const char *rcpts[] = {"u@localhost", NULL};
	const char msg[] = "Subject: teaser\r\n\r\nhello\r\n";
	h_open(&c, src, D.port);
	split_banner = h_last_has(&c, "220-");
	int code =
	    h_transaction(&c, "teaser.example.test", "t@localhost", rcpts, msg, sizeof(msg) - 1);
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

static const char *const legit[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6",
                                    "127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10"};
#define NLEGIT (sizeof(legit) / sizeof(legit[0]))

static void legit_round(void)
{
	char *out = NULL;
	int st = run_external(&out);
	cr_expect_eq(st, 0, "external clients failed (%d):\n%s", st, out ? out : "");
	free(out);
	cr_expect_eq(slow_client("127.0.0.9"), 250, "slow client not accepted");
	cr_expect_eq(teaser_client("127.0.0.10"), 250, "teaser-aware client not accepted");
}

Test(classify, legitimate_clients_never_refused_and_reach_hi)
{
	start();
	/* Each address on its own: with the /24 aggregate the first clients
	 * to finish would vouch for the later ones. */
	h_set(&D, "history_v4_prefix", "32");
	h_daemon_start(&D);
	/* First contact: new, accepted into lo (new_action = accept). */
	legit_round();
	for (size_t i = 0; i < NLEGIT; i++) {
		cr_expect_eq(outcomes(legit[i], "lo"), 1,
		             "%s: first contact not in lo (lo %d hi %d)", legit[i],
		             outcomes(legit[i], "lo"), outcomes(legit[i], "hi"));
		cr_expect_eq(outcomes(legit[i], "reject") + outcomes(legit[i], "tempfail"), 0,
		             "%s was refused", legit[i]);
	}
	/* The history is written after each session, by a thread. */
	cr_expect(split_banner, "a new client got the whole banner at once");
	h_sleep_ms(1000);
	legit_round();
	for (size_t i = 0; i < NLEGIT; i++) {
		cr_expect_eq(outcomes(legit[i], "hi"), 1, "%s: known client not in hi", legit[i]);
		cr_expect_eq(outcomes(legit[i], "reject") + outcomes(legit[i], "tempfail"), 0,
		             "%s was refused", legit[i]);
	}
	/* Known good clients get no banner pause and no delayed reply. */
	cr_expect(!split_banner, "a known good client got the split banner");
	cr_expect(!h_log_has(&D, "impatient"), "a legitimate client was called impatient");
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* ---- ratware ---- */

Test(classify, ratware_refused_before_the_body)
{
	struct h_conn c;
	start();
	h_daemon_start(&D);

	/* 1. talks before the banner */
	cr_assert_eq(h_connect(&c, "127.0.0.20", D.port), 0);
	h_send(&c, "EHLO rat.example.test\r\n", 23);
	cr_expect_eq(h_reply(&c, 5000), 220);
	cr_expect_eq(h_reply(&c, 5000), 250);
	cr_expect_eq(h_cmd(&c, "MAIL FROM:<rat@example.test>"), 250);
	cr_expect_eq(h_cmd(&c, "RCPT TO:<u@localhost>"), 250);
	cr_expect_eq(h_cmd(&c, "DATA"), 554, "pregreet: %s", c.last);
	h_close(&c);

	/* 2. talks during the teaser pause */
	cr_assert_eq(h_connect(&c, "127.0.0.21", D.port), 0);
	h_sleep_ms(300);
	h_send(&c, "EHLO rat.example.test\r\n", 23);
	cr_expect_eq(h_reply(&c, 5000), 220);
	cr_expect_eq(h_reply(&c, 5000), 250);
	cr_expect_eq(h_cmd(&c, "MAIL FROM:<rat@example.test>"), 250);
	cr_expect_eq(h_cmd(&c, "RCPT TO:<u@localhost>"), 250);
	cr_expect_eq(h_cmd(&c, "DATA"), 554, "teaser: %s", c.last);
	h_close(&c);

	/* 3. HELO, then EHLO MAIL RCPT DATA in one write */
	h_open(&c, "127.0.0.22", D.port);
	cr_expect_eq(h_cmd(&c, "HELO rat.example.test"), 250);
	const char burst[] = "EHLO rat.example.test\r\nMAIL FROM:<rat@example.test>\r\n"
	                     "RCPT TO:<u@localhost>\r\nDATA\r\n";
	h_send(&c, burst, sizeof(burst) - 1);
	cr_expect_eq(h_reply(&c, 5000), 250);
	cr_expect_eq(h_reply(&c, 5000), 250);
	cr_expect_eq(h_reply(&c, 5000), 250);
	cr_expect_eq(h_reply(&c, 5000), 554, "burst after HELO: %s", c.last);
	h_close(&c);

	/* 4. ignores every reply: the whole dialogue and body at once */
	cr_assert_eq(h_connect(&c, "127.0.0.23", D.port), 0);
	const char all[] = "EHLO rat.example.test\r\nMAIL FROM:<rat@example.test>\r\n"
	                   "RCPT TO:<u@localhost>\r\nDATA\r\nSubject: buy\r\n\r\nspam\r\n.\r\n"
	                   "QUIT\r\n";
	h_send(&c, all, sizeof(all) - 1);
	h_wait_closed(&c, 10000);
	h_close(&c);

	/* 5. disconnects during the patience delay */
	h_open(&c, "127.0.0.24", D.port);
	cr_expect_eq(h_cmd(&c, "EHLO rat.example.test"), 250);
	cr_expect_eq(h_cmd(&c, "MAIL FROM:<rat@example.test>"), 250);
	h_sendf(&c, "RCPT TO:<u@localhost>\r\n");
	h_sleep_ms(500);
	h_close(&c);

	/* 6. HTTP */
	h_open(&c, "127.0.0.25", D.port);
	cr_expect_eq(h_cmd(&c, "GET / HTTP/1.1"), 500);
	h_close(&c);

	/* 7. bare LF command lines */
	h_open(&c, "127.0.0.26", D.port);
	const char *lf[] = {"EHLO rat.example.test\n", "MAIL FROM:<rat@example.test>\n",
	                    "RCPT TO:<u@localhost>\n", "DATA\n"};
	int code = 0;
	for (size_t i = 0; i < 4; i++) {
		h_send(&c, lf[i], strlen(lf[i]));
		code = h_reply(&c, 5000);
	}
	cr_expect_eq(code, 554, "bare LF: %s", c.last);
	h_close(&c);

	cr_expect(h_log_wait(&D, "classify: unknown[127.0.0.24]", 5000));
	cr_expect(h_log_wait(&D, "classify: unknown[127.0.0.23]", 5000));
	/* The body of ratware was never taken: no file in any queue and
	 * nothing delivered, whatever the log says. Every session above has
	 * ended, and a message is in hi/ or lo/ before its 250 is sent. */
	char md[H_PATH];
	h_maildir(&D, "localhost", "u", md, sizeof(md));
	cr_expect_eq(h_spool_total(&D) + h_spool_count(&D, "incoming"), 0,
	             "ratware got a message in: hi %d lo %d out %d deferred %d",
	             h_spool_count(&D, "hi"), h_spool_count(&D, "lo"), h_spool_count(&D, "out"),
	             h_spool_count(&D, "deferred"));
	cr_expect_eq(h_maildir_count(md), 0, "ratware mail was delivered");
	cr_expect(h_log_has(&D, "pregreet"));
	cr_expect(h_log_has(&D, "unauth pipelining: MAIL"));
	cr_expect(h_log_has(&D, "impatient: closed"));
	cr_expect(h_log_has(&D, "non-SMTP input"));
	cr_expect(h_log_has(&D, "bare LF in"));
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* ---- history and policy ---- */

/* A pipelining ratware session (junk verdict), refused at DATA. */
static int junk_session(const char *src)
{
	struct h_conn c;
	h_open(&c, src, D.port);
	const char burst[] = "HELO rat.example.test\r\nMAIL FROM:<rat@example.test>\r\n"
	                     "RCPT TO:<u@localhost>\r\nDATA\r\n";
	h_send(&c, burst, sizeof(burst) - 1);
	int code = 0;
	for (int i = 0; i < 4 && code >= 0 && code != 554 && code != 451; i++)
		code = h_reply(&c, 5000);
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

/* A well-behaved session; returns the reply to DATA or to the dot. */
static int good_session(const char *src, const char *from, const char *rcpt)
{
	struct h_conn c;
	const char *rcpts[] = {rcpt, NULL};
	const char msg[] = "Subject: ok\r\n\r\nhello\r\n";
	h_open(&c, src, D.port);
	int code = h_transaction(&c, "good.example.test", from, rcpts, msg, sizeof(msg) - 1);
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

Test(classify, predicted_junk_tempfailed_then_accepted_and_aggregated)
{
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_set(&D, "junk_delay", "4");
	h_daemon_start(&D);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(junk_session("127.0.1.2"), 554);
	h_sleep_ms(800);
	/* Behaves now, but the history predicts junk: tempfail at DATA. */
	cr_expect_eq(good_session("127.0.1.2", "a@localhost", "u@localhost"), 451);
	/* One host's sessions do not speak for its /24. */
	cr_expect_eq(good_session("127.0.1.6", "a@localhost", "u@localhost"), 250);
	/* Three distinct junk hosts do: a new host there shares the fate. */
	cr_expect_eq(junk_session("127.0.1.4"), 554);
	cr_expect_eq(junk_session("127.0.1.5"), 554);
	h_sleep_ms(800);
	cr_expect_eq(good_session("127.0.1.3", "a@localhost", "u@localhost"), 451);
	/* The neighbour with a good message of its own is judged by it. */
	cr_expect_eq(good_session("127.0.1.6", "a@localhost", "u@localhost"), 250);
	/* Another /24 is new and accepted. */
	cr_expect_eq(good_session("127.0.2.3", "a@localhost", "u@localhost"), 250);
	/* After junk_delay from its latest junk: accepted into lo. */
	h_sleep_ms(4000);
	cr_expect_eq(good_session("127.0.1.2", "a@localhost", "u@localhost"), 250);
	cr_expect_eq(outcomes("127.0.1.2", "lo"), 1);
	cr_expect_eq(outcomes("127.0.1.2", "hi"), 0);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

Test(classify, new_tempfail_and_expiry)
{
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_set(&D, "new_action", "tempfail");
	h_set(&D, "new_delay", "2");
	h_set(&D, "history_max_age", "4");
	h_daemon_start(&D);
	cr_expect_eq(good_session("127.0.3.2", "a@localhost", "u@localhost"), 451);
	h_sleep_ms(2500);
	cr_expect_eq(good_session("127.0.3.2", "a@localhost", "u@localhost"), 250);
	h_sleep_ms(500);
	cr_expect_eq(good_session("127.0.3.2", "a@localhost", "u@localhost"), 250);
	cr_expect_eq(outcomes("127.0.3.2", "hi"), 1, "known good client not in hi");
	/* Unseen for longer than history_max_age: new again. */
	h_sleep_ms(5000);
	cr_expect_eq(good_session("127.0.3.2", "a@localhost", "u@localhost"), 451);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

Test(classify, whitelists_and_log_only)
{
	char path[H_PATH];
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_set(&D, "whitelist_clients", "127.0.4.2");
	h_set(&D, "whitelist_senders", "friend@example.org");
	h_set(&D, "whitelist_recipients", "postmaster@localhost");
	snprintf(path, sizeof(path), "%s/whitelist", D.dir);
	const char wl[] = "# test\nclient 127.0.4.9\n";
	cr_assert_eq(h_write_file(path, wl, sizeof(wl) - 1, 0644), 0);
	h_set(&D, "whitelist_file", "%s", path);
	h_daemon_start(&D);
	struct h_conn c;
	const char burst[] = "HELO rat.example.test\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n";
	struct {
		const char *src, *from, *rcpt;
	} cases[] = {{"127.0.4.2", "rat@example.test", "u@localhost"},
	             {"127.0.4.3", "friend@example.org", "u@localhost"},
	             {"127.0.4.4", "rat@example.test", "postmaster@localhost"},
	             {"127.0.4.9", "rat@example.test", "u@localhost"}};
	for (size_t i = 0; i < 4; i++) {
		h_open(&c, cases[i].src, D.port);
		h_sendf(&c, burst, cases[i].from, cases[i].rcpt);
		int code = 0;
		for (int k = 0; k < 4; k++)
			code = h_reply(&c, 5000);
		cr_expect_eq(code, 354, "%s whitelisted but got %s", cases[i].src, c.last);
		cr_expect_eq(h_cmd(&c, "Subject: w\r\n\r\nw\r\n."), 250);
		h_close(&c);
		cr_expect_eq(outcomes(cases[i].src, "hi"), 1, "%s not in hi", cases[i].src);
	}
	/* Not whitelisted: refused. */
	cr_expect_eq(junk_session("127.0.4.5"), 554);

	/* log-only mode: the refusal is logged, the mail accepted into lo. */
	h_daemon_stop(&D);
	h_set(&D, "timing_junk_action", "log");
	h_daemon_start(&D);
	h_open(&c, "127.0.5.2", D.port);
	h_sendf(&c, burst, "rat@example.test", "u@localhost");
	int code = 0;
	for (int k = 0; k < 4; k++)
		code = h_reply(&c, 5000);
	cr_expect_eq(code, 354, "log-only: %s", c.last);
	cr_expect_eq(h_cmd(&c, "Subject: l\r\n\r\nl\r\n."), 250);
	h_close(&c);
	cr_expect_eq(outcomes("127.0.5.2", "lo"), 1);
	cr_expect(h_log_has(&D, "would reject"));
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* A connection opened while its client was new is judged at DATA by what
 * the history learnt since (another connection's good message). */
Test(classify, history_read_again_at_data)
{
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_daemon_start(&D);
	struct h_conn kept;
	h_open(&kept, "127.0.9.20", D.port);
	h_expect(&kept, 250, "EHLO kept.example.test");
	cr_expect_eq(good_session("127.0.9.20", "a@localhost", "u@localhost"), 250);
	cr_expect_eq(outcomes("127.0.9.20", "lo"), 1, "a new client goes to lo");
	h_sleep_ms(1000); /* the history writer records the closed session */
	const char *rcpts[] = {"u@localhost", NULL};
	const char msg[] = "Subject: kept\r\n\r\nkept\r\n";
	cr_expect_eq(h_transaction(&kept, NULL, "a@localhost", rcpts, msg, sizeof(msg) - 1), 250);
	h_cmd(&kept, "QUIT");
	h_close(&kept);
	cr_expect_eq(outcomes("127.0.9.20", "hi"), 1, "the kept connection was judged as new");
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* A polite ESMTP transaction that times the RCPT reply (ms); returns the
 * reply to the dot. */
static int timed_session(const char *src, const char *from, const char *rcpt, long long *rcpt_ms,
                         long long *greet_ms)
{
	struct h_conn c;
	long long t0 = h_now_ms();
	h_open(&c, src, D.port);
	*greet_ms = h_now_ms() - t0;
	h_expect(&c, 250, "EHLO good.example.test");
	h_expect(&c, 250, "MAIL FROM:<%s>", from);
	t0 = h_now_ms();
	h_expect(&c, 250, "RCPT TO:<%s>", rcpt);
	*rcpt_ms = h_now_ms() - t0;
	h_expect(&c, 354, "DATA");
	int code = h_cmd(&c, "Subject: t\r\n\r\nt\r\n.");
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

/* The newest message of a Maildir, or NULL. */
static char *newest_message(const char *user, size_t *len)
{
	char md[H_PATH], **list;
	h_maildir(&D, "localhost", user, md, sizeof(md));
	int n = h_maildir_list(md, &list);
	char *f = n > 0 ? h_read_file(list[n - 1], len) : NULL;
	h_free_list(list, n);
	return f;
}

/* tempomx.conf(5) WHITELISTS: what each kind skips and overrides. */
Test(classify, whitelist_semantics_delays_reload_and_header)
{
	char path[H_PATH];
	start();
	h_set(&D, "greet_pause", "1");
	h_set(&D, "patience_delay", "2");
	h_set(&D, "patience_reply", "rcpt");
	snprintf(path, sizeof(path), "%s/whitelist", D.dir);
	const char wl[] = "sender friend@example.org\nrecipient abuse@localhost\n";
	cr_assert_eq(h_write_file(path, wl, sizeof(wl) - 1, 0644), 0);
	h_set(&D, "whitelist_file", "%s", path);
	h_daemon_start(&D);
	long long rcpt_ms, greet_ms;

	/* Not whitelisted: split banner and held RCPT reply. */
	cr_expect_eq(timed_session("127.0.9.1", "a@localhost", "u@localhost", &rcpt_ms, &greet_ms),
	             250);
	cr_expect_geq(greet_ms, 900, "greet pause missing: %lld ms", greet_ms);
	cr_expect_geq(rcpt_ms, 1800, "patience delay missing: %lld ms", rcpt_ms);
	/* A whitelisted sender skips the held reply that follows MAIL, not
	 * the banner pause that came before it was known. */
	cr_expect_eq(
	    timed_session("127.0.9.2", "friend@example.org", "u@localhost", &rcpt_ms, &greet_ms),
	    250);
	cr_expect_geq(greet_ms, 900, "a sender is not known at the banner: %lld ms", greet_ms);
	cr_expect_lt(rcpt_ms, 1000, "whitelisted sender delayed: %lld ms", rcpt_ms);
	/* A whitelisted recipient skips the hold of its own RCPT reply. */
	cr_expect_eq(
	    timed_session("127.0.9.3", "a@localhost", "abuse@localhost", &rcpt_ms, &greet_ms), 250);
	cr_expect_lt(rcpt_ms, 1000, "whitelisted recipient delayed: %lld ms", rcpt_ms);

	/* Ratware to a whitelisted recipient: accepted into hi, and the
	 * message says both the real verdict and the override. */
	struct h_conn c;
	const char burst[] = "HELO rat.example.test\r\nMAIL FROM:<rat@example.test>\r\n"
	                     "RCPT TO:<abuse@localhost>\r\nDATA\r\n";
	h_open(&c, "127.0.9.4", D.port);
	h_send(&c, burst, sizeof(burst) - 1);
	int code = 0;
	for (int k = 0; k < 4; k++)
		code = h_reply(&c, 5000);
	cr_expect_eq(code, 354, "whitelisted recipient refused: %s", c.last);
	cr_expect_eq(h_cmd(&c, "Subject: w\r\n\r\nw\r\n."), 250);
	h_close(&c);
	cr_expect_eq(outcomes("127.0.9.4", "hi"), 1);
	cr_expect(h_log_has(&D, "whitelisted recipient (without it: reject"),
	          "the log says what was overridden");
	char md[H_PATH];
	h_maildir(&D, "localhost", "abuse", md, sizeof(md));
	cr_expect(h_maildir_wait(md, 2, 10000));
	size_t len;
	char *f = newest_message("abuse", &len);
	cr_expect(f && h_contains(f, len, "verdict=junk") &&
	              h_contains(f, len, "reasons=whitelisted recipient"),
	          "header: %.300s", f ? f : "(none)");
	free(f);

	/* SIGHUP reads the whitelist file again: a client entry then skips
	 * the banner pause and overrides the refusal. */
	const char wl2[] = "sender friend@example.org\nrecipient abuse@localhost\n"
	                   "client 127.0.9.7\n";
	cr_assert_eq(h_write_file(path, wl2, sizeof(wl2) - 1, 0644), 0);
	cr_expect_eq(junk_session("127.0.9.7"), 554, "not whitelisted yet");
	cr_assert_eq(kill(D.pid, SIGHUP), 0);
	cr_expect(h_log_wait(&D, "whitelists: 1 clients", 10000), "no reload");
	long long t0 = h_now_ms();
	h_open(&c, "127.0.9.7", D.port);
	cr_expect_lt(h_now_ms() - t0, 700, "whitelisted client got the banner pause");
	h_send(&c, burst, sizeof(burst) - 1);
	code = 0;
	for (int k = 0; k < 4; k++)
		code = h_reply(&c, 5000);
	cr_expect_eq(code, 354, "whitelisted client refused after reload: %s", c.last);
	cr_expect_eq(h_cmd(&c, "Subject: w\r\n\r\nw\r\n."), 250);
	h_close(&c);
	cr_expect(h_log_has(&D, "whitelisted client (without it: reject"));
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

Test(classify, low_disk_tempfails_and_class_header)
{
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_daemon_start(&D);
	cr_expect_eq(good_session("127.0.6.2", "a@localhost", "u@localhost"), 250);
	char md[H_PATH];
	h_maildir(&D, "localhost", "u", md, sizeof(md));
	cr_expect(h_maildir_wait(md, 1, 10000));
	char **files;
	int n = h_maildir_list(md, &files);
	if (n == 1) {
		size_t len;
		char *f = h_read_file(files[0], &len);
		cr_expect(f && h_contains(f, len, "X-Tempomx-Class: lo; verdict=good"),
		          "no class header:\n%.500s", f ? f : "");
		free(f);
	}
	h_free_list(files, n);
	h_daemon_stop(&D);

#ifdef TEMPOMX_TEST_HOOKS
	/* The test hook (--enable-test-hooks) pretends the spool disk is
	 * nearly full. */
	setenv("TEMPOMX_TEST_SPOOL_FREE", "1000", 1);
	h_daemon_start(&D);
	unsetenv("TEMPOMX_TEST_SPOOL_FREE");
	cr_expect_eq(good_session("127.0.6.3", "a@localhost", "u@localhost"), 452);
	cr_expect(h_log_has(&D, "admission: shedding load"));
	h_daemon_stop(&D);
#endif
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* The pid in the last "child NAME started, pid N" log line, 0 if none. */
static pid_t child_pid(const char *name)
{
	size_t len;
	char *log = h_read_file(D.log, &len);
	char needle[64];
	snprintf(needle, sizeof(needle), "child %s started, pid ", name);
	pid_t pid = 0;
	for (char *p = log; p && (p = strstr(p, needle)) != NULL; p++)
		pid = (pid_t)atoi(p + strlen(needle));
	free(log);
	return pid;
}

Test(classify, queue_max_sheds_lo_first_and_loses_nothing)
{
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_set(&D, "queue_max", "3");
	h_daemon_start(&D);
	/* With the scanner stopped, accepted mail piles up in hi/. The
	 * smtpd child may greet before the master logged the scanner. */
	cr_expect(h_log_wait(&D, "child scanner started, pid ", 10000));
	pid_t sc = child_pid("scanner");
	cr_assert_gt(sc, 0);
	cr_assert_eq(kill(sc, SIGSTOP), 0);
	int accepted = 0;
	for (int i = 0; i < 4; i++)
		if (good_session("127.0.0.1", "a@localhost", "q@localhost") == 250)
			accepted++;
	cr_expect_eq(accepted, 4);
	h_sleep_ms(1500); /* admission counts the queue once a second */
	/* Over queue_max: a new (lo-bound) client is shed, a trusted
	 * (hi-bound) one still gets in until twice queue_max. */
	cr_expect_eq(good_session("127.0.8.2", "a@localhost", "q@localhost"), 452);
	int code = good_session("127.0.0.1", "a@localhost", "q@localhost");
	cr_expect_eq(code, 250);
	accepted += code == 250;
	for (int i = 0; i < 2; i++)
		if (good_session("127.0.0.1", "a@localhost", "q@localhost") == 250)
			accepted++;
	h_sleep_ms(1500);
	cr_expect_eq(good_session("127.0.0.1", "a@localhost", "q@localhost"), 452,
	             "hi-bound mail is shed above twice queue_max");
	cr_expect(h_log_has(&D, "admission: shedding load"));
	/* The backlog drains and the door opens again; nothing was lost. */
	cr_assert_eq(kill(sc, SIGCONT), 0);
	char md[H_PATH];
	h_maildir(&D, "localhost", "q", md, sizeof(md));
	cr_expect(h_maildir_wait(md, accepted, 20000), "accepted %d, not all delivered", accepted);
	h_sleep_ms(1500);
	cr_expect_eq(good_session("127.0.8.2", "a@localhost", "q@localhost"), 250);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* A full disk while a message is being written: the client gets a 4xx,
 * never a 250, and nothing half-written is queued. The spool lives on a
 * small tmpfs (skipped where mounting is not allowed). */
static char small[H_PATH];

/* Runs even when the test fails half-way: never leave a mount behind.
 * A lazy unmount first (a daemon still running keeps its files until it
 * is stopped), then the suite's own fini, which this one replaces. */
static void unmount_small(void)
{
	if (small[0] != '\0')
		umount2(small, MNT_DETACH);
	h_teardown();
}

Test(classify, full_disk_never_gives_250, .fini = unmount_small)
{
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	snprintf(small, sizeof(small), "%s/small", D.dir);
	cr_assert_eq(mkdir(small, 0700), 0);
	/* Root (as in CI) can always mount a tmpfs: there a failure is a
	 * failure, only an unprivileged run may skip. */
	if (mount("tmpfs", small, "tmpfs", 0, "size=4m,mode=0755") != 0) {
		int e = errno;
		small[0] = '\0';
		cr_assert(geteuid() != 0, "root cannot mount a tmpfs on %s/small: %s", D.dir,
		          strerror(e));
		cr_skip_test("cannot mount a tmpfs here: %s", strerror(e));
	}
	h_set(&D, "spool_directory", "%s/spool", small);
	h_set(&D, "spool_min_free", "0");
	h_set(&D, "message_size_limit", "20M");
	h_set(&D, "history_map_size", "1M");
	h_daemon_start(&D);

	size_t big = 6u << 20;
	char *msg = malloc(big);
	cr_assert_not_null(msg);
	memcpy(msg, "Subject: big\r\n\r\n", 17);
	for (size_t i = 17; i < big; i += 80) {
		size_t n = big - i < 80 ? big - i : 80;
		memset(msg + i, 'x', n);
		if (n >= 2)
			memcpy(msg + i + n - 2, "\r\n", 2);
	}
	const char *rcpts[] = {"f@localhost", NULL};
	struct h_conn c;
	h_open(&c, "127.0.0.1", D.port);
	int code = h_transaction(&c, "big.example.test", "a@localhost", rcpts, msg, big);
	h_cmd(&c, "QUIT");
	h_close(&c);
	free(msg);
	cr_expect(code >= 400 && code < 500, "a message that does not fit got %d", code);
	cr_expect_eq(h_spool_count(&D, "hi") + h_spool_count(&D, "lo") + h_spool_count(&D, "out"),
	             0, "something was queued");
	/* The space is given back: a small message fits and is delivered. */
	cr_expect_eq(good_session("127.0.0.1", "a@localhost", "f@localhost"), 250);
	char md[H_PATH];
	h_maildir(&D, "localhost", "f", md, sizeof(md));
	cr_expect(h_maildir_wait(md, 1, 10000));
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	cr_expect_eq(umount(small), 0, "umount %s: %s", small, strerror(errno));
	small[0] = '\0';
	h_daemon_free(&D);
}

/* The pid in the last "child smtpd started, pid N" log line, 0 if none;
 * *count gets the number of such lines. */
static pid_t smtpd_pid(int *count)
{
	size_t len;
	char *log = h_read_file(D.log, &len);
	const char *needle = "child smtpd started, pid ";
	pid_t pid = 0;
	*count = 0;
	for (char *p = log; p && (p = strstr(p, needle)) != NULL; p++) {
		pid = (pid_t)atoi(p + strlen(needle));
		(*count)++;
	}
	free(log);
	return pid;
}

Test(classify, history_survives_sigkill_of_smtpd)
{
	start();
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_daemon_start(&D);
	cr_expect_eq(good_session("127.0.7.2", "a@localhost", "u@localhost"), 250);
	h_sleep_ms(500);
	int starts;
	pid_t victim = smtpd_pid(&starts);
	cr_assert_gt(victim, 0, "no smtpd pid in the log");

	/* Sessions that each end with a history write, and a SIGKILL in
	 * the middle of them. */
	pid_t kid = fork();
	cr_assert_neq(kid, -1);
	if (kid == 0) {
		char src[32];
		for (int i = 0; i < 40; i++) {
			struct h_conn c;
			snprintf(src, sizeof(src), "127.0.%d.%d", 8 + i / 200, 2 + i % 200);
			if (h_connect(&c, src, D.port) != 0)
				continue;
			h_sendf(&c,
			        "HELO x.example.test\r\nMAIL FROM:<r@example.test>\r\nQUIT\r\n");
			h_wait_closed(&c, 2000);
			h_close(&c);
		}
		_exit(0);
	}
	h_track(kid);
	h_sleep_ms(150);
	cr_expect_eq(kill(victim, SIGKILL), 0);
	int status;
	waitpid(kid, &status, 0);
	h_untrack(kid);
	/* The master starts a new smtpd; it reopens the store. */
	int now = starts;
	for (int i = 0; i < 100 && now == starts; i++) {
		h_sleep_ms(100);
		smtpd_pid(&now);
	}
	cr_assert_gt(now, starts, "smtpd was not restarted");
	h_sleep_ms(300);
	cr_expect(!h_log_has(&D, "every client is treated as new"), "the store did not reopen");
	/* What was committed before the kill is still there. */
	cr_expect_eq(good_session("127.0.7.2", "a@localhost", "u@localhost"), 250);
	cr_expect_eq(outcomes("127.0.7.2", "hi"), 1, "history lost across the SIGKILL");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}
