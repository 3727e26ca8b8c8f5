/*
 * test_policy.c: every pre-acceptance policy action of the real tempomxd,
 * from non-exempt IPv4 and IPv6 clients.
 *
 * One table row per setting of new_action, predicted_junk_action and
 * timing_junk_action (accept, tempfail, reject, log): a client of the
 * kind the row is about (new; predicted junk after three junk sessions of
 * its own; a pipelining ratware session) and the reply it must get at
 * DATA, plus the log line a log-only mode must leave. 127.0.0.1 and ::1
 * are exempt, so IPv4 clients bind 127.0.x.y and IPv6 clients an address
 * of 2001:db8::/64 that the test puts on the loopback interface of a
 * network namespace of its own (the test process unshares its network
 * namespace; without the privilege the IPv6 half is skipped, saying so).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "realclient.h"

TestSuite(policy, .init = h_setup, .fini = h_teardown, .timeout = 240);

static struct h_daemon D;

enum kind { K_NEW, K_PREDICTED, K_TIMING };

struct row {
	const char *key, *value;
	enum kind kind;
	int want;          /* reply to DATA (354 when the body is taken) */
	const char *queue; /* "lo", "hi" or NULL when refused */
	const char *log;   /* a log line a log-only mode must leave, or NULL */
};

static const struct row rows[] = {
    {"new_action", "accept", K_NEW, 354, "lo", NULL},
    {"new_action", "tempfail", K_NEW, 451, NULL, NULL},
    {"new_action", "log", K_NEW, 354, "lo", "would tempfail"},
    {"predicted_junk_action", "tempfail", K_PREDICTED, 451, NULL, NULL},
    {"predicted_junk_action", "reject", K_PREDICTED, 554, NULL, NULL},
    {"predicted_junk_action", "accept", K_PREDICTED, 354, "lo", NULL},
    {"predicted_junk_action", "log", K_PREDICTED, 354, "lo", "would tempfail"},
    {"timing_junk_action", "reject", K_TIMING, 554, NULL, NULL},
    {"timing_junk_action", "tempfail", K_TIMING, 451, NULL, NULL},
    {"timing_junk_action", "log", K_TIMING, 354, "lo", "would reject"},
};

/* Connect from src (IPv4, or IPv6 to the [::1] listener) and read the
 * greeting. */
static void open_from(struct h_conn *c, const char *src)
{
	h_open(c, src, D.port);
}

/* A polite transaction; returns the reply to DATA, or to the dot when
 * the body was taken (then *body is 1). */
static int polite(const char *src, int *body)
{
	struct h_conn c;
	*body = 0;
	open_from(&c, src);
	h_expect(&c, 250, "EHLO good.example.test");
	h_expect(&c, 250, "MAIL FROM:<a@localhost>");
	h_expect(&c, 250, "RCPT TO:<u@localhost>");
	int code = h_cmd(&c, "DATA");
	if (code == 354) {
		*body = 1;
		cr_expect_eq(h_cmd(&c, "Subject: p\r\n\r\np\r\n."), 250, "dot: %s", c.last);
	}
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

/* Pipelining without PIPELINING (HELO): the timing verdict is junk.
 * Returns the reply to DATA. */
static int ratware(const char *src, int *body)
{
	struct h_conn c;
	const char burst[] = "HELO rat.example.test\r\nMAIL FROM:<rat@example.test>\r\n"
	                     "RCPT TO:<u@localhost>\r\nDATA\r\n";
	*body = 0;
	open_from(&c, src);
	h_send(&c, burst, sizeof(burst) - 1);
	int code = 0;
	for (int i = 0; i < 4 && code >= 0 && code < 354; i++)
		code = h_reply(&c, 5000);
	if (code == 354) {
		*body = 1;
		cr_expect_eq(h_cmd(&c, "Subject: r\r\n\r\nr\r\n."), 250, "dot: %s", c.last);
	}
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

static void run_row(const struct row *r, const char *src)
{
	int body = 0, code;
	h_daemon_init(&D);
	h_set(&D, "greet_pause", "0");
	h_set(&D, "patience_delay", "0");
	h_set(&D, r->key, "%s", r->value);
	h_conf_append(&D, "");
	{
		char line[64];
		snprintf(line, sizeof(line), "listen = [::1]:%d\n", D.port);
		h_conf_append(&D, line);
	}
	h_daemon_start(&D);
	if (r->kind == K_PREDICTED) {
		/* Three junk sessions of its own: predicted junk. */
		for (int i = 0; i < 3; i++) {
			int b;
			cr_assert_eq(ratware(src, &b), 554, "%s: building the history", src);
		}
		h_sleep_ms(800); /* the history writer batches its records */
	}
	code = r->kind == K_TIMING ? ratware(src, &body) : polite(src, &body);
	cr_expect_eq(code, r->want, "%s = %s from %s: got %d", r->key, r->value, src, code);
	if (r->queue)
		cr_expect_eq(rc_outcomes(&D, 0, src, r->queue), 1,
		             "%s = %s from %s: not accepted into %s", r->key, r->value, src,
		             r->queue);
	if (r->log)
		cr_expect(h_log_has(&D, r->log), "%s = %s: no '%s' in the log", r->key, r->value,
		          r->log);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

Test(policy, every_action_ipv4)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.%zu.2", 20 + i);
		run_row(&rows[i], src);
	}
}

Test(policy, every_action_ipv6)
{
	const char *const cidr[] = {"2001:db8::2/64"};
	if (h_netns_ipv6(cidr, 1) != 0)
		cr_skip_test("cannot make a network namespace with an IPv6 address (%s): the "
		             "IPv6 half of the policy table needs root and iproute2",
		             strerror(errno));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i], "2001:db8::2");
}
