/*
 * test_netem.c: think time judged against the real round trip, with
 * clients behind a delayed link.
 *
 * The test makes a network namespace joined to the root namespace by
 * veth (t/integration/netns.py; RFC 2544 addresses 198.18.S.0/24, S from
 * the PID), delays both directions ("tc netem", or where the kernel has
 * no sch_netem the script's userspace delay bridge, which keeps TCP end
 * to end) and runs clients inside the namespace with "ip netns exec", at
 * round trips of 0 (no delay), 100 and 600 ms. tempomxd listens on loopback (for the
 * harness) and on the root side of the pair. Where namespaces cannot be
 * made (no root, no iproute2, a container without CAP_NET_ADMIN) the
 * test is skipped with the reason.
 *
 * At each round trip a polite client (waits for every reply, then sends
 * at once) and a scripted one (writes EHLO, MAIL, RCPT 20 ms apart
 * without reading: each command arrives after the previous reply left,
 * so it is not pipelining, but sooner than the reply could have reached
 * the client) each make two sessions from their own address. Polite
 * clients must be accepted both times with no "below the round trip"
 * reason at any round trip; scripted ones at 100 and 600 ms must get
 * that reason, and with think_time_action = enforce a verdict of at
 * least suspect. The namespace is removed by the suite's fini.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "realclient.h"

static char ns[32];
static int subnet;

static void netns_down(void)
{
	if (ns[0]) {
		char script[H_PATH];
		h_srcpath("t/integration/netns.py", script, sizeof(script));
		char *argv[] = {"python3", script, "down", ns, NULL};
		h_run(argv, NULL, 0, 30000, NULL, NULL);
		ns[0] = '\0';
	}
	rc_teardown();
}

TestSuite(netem, .init = h_setup, .fini = netns_down, .timeout = 120);

static struct h_daemon D;

static int netns(char **out, const char *verb, const char *arg)
{
	char script[H_PATH];
	h_srcpath("t/integration/netns.py", script, sizeof(script));
	char *argv[] = {"python3", script, (char *)verb, ns, (char *)arg, NULL};
	return h_run(argv, NULL, 0, 30000, out, NULL);
}

static const int rtts[] = {0, 100, 600};
#define NRTT (sizeof(rtts) / sizeof(rtts[0]))

static void client_addr(char *buf, size_t size, size_t rtt, int scripted)
{
	snprintf(buf, size, "198.18.%d.%zu", subnet, 10 + 10 * rtt + (size_t)scripted);
}

/* Both kinds at once, two sessions each; returns the output. */
static void run_clients(size_t rtt, int *polite_st, int *scripted_st, char **out)
{
	char script[H_PATH], host[32], port[16], a[32], b[32], cmd[2048];
	h_srcpath("t/integration/netns.py", script, sizeof(script));
	snprintf(host, sizeof(host), "198.18.%d.1", subnet);
	snprintf(port, sizeof(port), "%d", D.port);
	client_addr(a, sizeof(a), rtt, 0);
	client_addr(b, sizeof(b), rtt, 1);
	snprintf(cmd, sizeof(cmd),
	         "ip netns exec \"$1\" python3 \"$2\" client polite \"$3\" \"$5\" \"$6\" 2 "
	         "> \"$7/polite.out\" 2>&1 & p=$!\n"
	         "ip netns exec \"$1\" python3 \"$2\" client scripted \"$4\" \"$5\" \"$6\" 2 20 "
	         "> \"$7/scripted.out\" 2>&1 & s=$!\n"
	         "wait $p; ps=$?; wait $s; ss=$?\n"
	         "echo \"polite $ps\"; cat \"$7/polite.out\"; echo \"scripted $ss\"; "
	         "cat \"$7/scripted.out\"\n");
	char *argv[] = {"/bin/sh", "-c", cmd, "sh", ns, script, a, b, host, port, D.dir, NULL};
	int st = h_run(argv, NULL, 0, 60000, out, NULL);
	cr_assert_eq(st, 0, "running the clients failed: %d\n%s", st, *out ? *out : "");
	char *p = strstr(*out, "polite "), *s = strstr(*out, "scripted ");
	*polite_st = p ? atoi(p + 7) : -1;
	*scripted_st = s ? atoi(s + 9) : -1;
}

Test(netem, think_time_normalised_by_round_trip)
{
	char *out = NULL;
	subnet = 1 + (int)(getpid() % 250);
	snprintf(ns, sizeof(ns), "tmx%d", (int)getpid());
	char sub[16];
	snprintf(sub, sizeof(sub), "%d", subnet);
	int st = netns(&out, "up", sub);
	if (st != 0) {
		ns[0] = '\0';
		cr_skip_test("cannot make a network namespace with a veth pair here (%d): %s", st,
		             out ? out : "");
	}
	free(out);
	out = NULL;

	h_daemon_init(&D);
	h_set(&D, "listen", "127.0.0.1:%d 198.18.%d.1:%d", D.port, subnet, D.port);
	h_set(&D, "greet_pause", "1");
	h_set(&D, "patience_delay", "2");
	/* Each client address on its own, not the namespace's /24. */
	h_set(&D, "history_v4_prefix", "32");
	h_set(&D, "think_time_action", "enforce");
	h_daemon_start(&D);

	for (size_t i = 0; i < NRTT; i++) {
		char d[16];
		snprintf(d, sizeof(d), "%d", rtts[i] / 2);
		st = netns(&out, "delay", d);
		cr_assert_eq(st, 0, "tc netem delay %s ms: %s", d, out ? out : "");
		free(out);
		out = NULL;
		int ps, ss;
		long long t0 = h_now_ms();
		run_clients(i, &ps, &ss, &out);
		cr_log_info("%d ms RTT, %lld ms:\n%s", rtts[i], h_now_ms() - t0, out);

		char pa[32], sa[32];
		client_addr(pa, sizeof(pa), i, 0);
		client_addr(sa, sizeof(sa), i, 1);
		int n;
		char *pl = rc_classify_lines(&D, 0, pa, &n);
		char *sl = rc_classify_lines(&D, 0, sa, &n);
		/* Polite: accepted twice, never "faster than the network". */
		cr_expect_eq(ps, 0, "polite client at %d ms RTT failed:\n%s\n%s", rtts[i], out, pl);
		cr_expect_eq(rc_outcomes(&D, 0, pa, "hi") + rc_outcomes(&D, 0, pa, "lo"), 2,
		             "polite client at %d ms RTT: not both sessions accepted:\n%s", rtts[i],
		             pl);
		cr_expect_eq(rc_refusals(&D, 0, pa), 0, "polite client at %d ms RTT refused:\n%s",
		             rtts[i], pl);
		cr_expect(strstr(pl, "below the round trip") == NULL,
		          "polite client at %d ms RTT judged faster than the link:\n%s", rtts[i],
		          pl);
		if (rtts[i] > 0) {
			/* Scripted: flagged, and with enforce at least suspect. */
			cr_expect(strstr(sl, "below the round trip") != NULL,
			          "scripted client at %d ms RTT not flagged:\n%s", rtts[i], sl);
			cr_expect(strstr(sl, "verdict=good") == NULL,
			          "scripted client at %d ms RTT judged good with "
			          "think_time_action = enforce:\n%s",
			          rtts[i], sl);
		}
		free(pl);
		free(sl);
		free(out);
		out = NULL;
	}
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}
