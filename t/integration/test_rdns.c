/*
 * test_rdns.c: the client's name from reverse DNS (src/smtpd/rdns.c), seen
 * in the daemon's log and in the mail it writes.
 *
 * A loopback DNS server (dns_responder.py) serves PTR and A records for
 * 127.0.0.x addresses; the clients bind those addresses, and the tests
 * check the names the daemon logs: name[addr] only when the PTR name
 * leads back to the address, unknown[addr] otherwise, and a session that
 * goes on when the DNS server does not answer at all.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "outbound.h"

TestSuite(rdns, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;
static struct h_conn C1, C2, C3, C4;

static const char zone_text[] =
    /* a confirmed name */
    "2.0.0.127.in-addr.arpa PTR mail.good.test\n"
    "mail.good.test A 127.0.0.2\n"
    /* a PTR whose name points elsewhere */
    "3.0.0.127.in-addr.arpa PTR liar.test\n"
    "liar.test A 127.0.0.9\n"
    /* a PTR whose name has no address at all */
    "4.0.0.127.in-addr.arpa PTR gone.test\n"
    "gone.test MX 10 mail.good.test\n"
    /* a confirmed name of a dynamic pool */
    "8.0.0.127.in-addr.arpa PTR dsl-127-0-0-8.pool.test\n"
    "dsl-127-0-0-8.pool.test A 127.0.0.8\n"
    /* ::1, forward-confirmed with an AAAA record */
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa PTR v6.good.test\n"
    "v6.good.test A 127.0.0.1\n"
    "v6.good.test AAAA ::1\n";
/* 127.0.0.5 has no PTR record. */

/* Start the responder on a free port with the zone; its questions go to
 * D.dir/dns.log. Returns its pid. */
static pid_t dns_start(void)
{
	char zone[H_PATH + 16], ready[H_PATH + 16], qlog[H_PATH + 16], port[16];
	snprintf(zone, sizeof(zone), "%s/zone", D.dir);
	snprintf(ready, sizeof(ready), "%s/dns.ready", D.dir);
	snprintf(qlog, sizeof(qlog), "%s/dns.log", D.dir);
	cr_assert_eq(h_write_file(zone, zone_text, strlen(zone_text), 0644), 0);
	int dport = h_free_port();
	snprintf(port, sizeof(port), "%d", dport);
	char *args[] = {port, zone, ready, qlog, NULL};
	pid_t pid = ob_start_py("t/integration/dns_responder.py", ready, args);
	h_set(&D, "dns_servers", "127.0.0.1:%d", dport);
	return pid;
}

/* The questions the responder was asked, "" when none. malloc'd. */
static char *dns_questions(void)
{
	char qlog[H_PATH + 16];
	size_t len;
	snprintf(qlog, sizeof(qlog), "%s/dns.log", D.dir);
	char *text = h_read_file(qlog, &len);
	return text ? text : strdup("");
}

static void start(void)
{
	h_daemon_init(&D);
	h_set(&D, "reverse_dns", "yes");
}

/* Connect from src, check the greeting, EHLO, QUIT. */
static void hello(struct h_conn *c, const char *src)
{
	h_open(c, src, D.port);
	h_expect(c, 250, "EHLO client.test");
	h_expect(c, 221, "QUIT");
	h_close(c);
}

Test(rdns, confirmed_name_in_logs_and_received)
{
	start();
	pid_t dns = dns_start();
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("rdns", "rdns-1", &len);
	const char *rcpts[] = {"bob@example.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.2", "alice@good.test", rcpts, msg, len), 250);
	cr_expect(h_log_wait(&D, "connect from mail.good.test[127.0.0.2]:", WAIT_MS),
	          "the confirmed name is not in the connect line");
	cr_expect(h_log_wait(&D, ": client=mail.good.test[127.0.0.2]:", WAIT_MS));
	cr_expect(h_log_wait(&D, "disconnect from mail.good.test[127.0.0.2]:", WAIT_MS));
	cr_expect(!h_log_has(&D, "from unknown[127.0.0.2]") &&
	              !h_log_has(&D, "client=unknown[127.0.0.2]"),
	          "unknown[127.0.0.2] in the log");

	char md[H_PATH];
	h_maildir(&D, "example.test", "bob", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, WAIT_MS), 1, "not delivered");
	char **paths;
	int n = h_maildir_list(md, &paths);
	cr_assert_eq(n, 1);
	size_t flen;
	char *file = h_read_file(paths[0], &flen);
	cr_assert_not_null(file);
	cr_expect(h_contains(file, flen, " (mail.good.test [127.0.0.2])\r\n"),
	          "the Received: header lacks the name: %.300s", file);
	free(file);
	h_free_list(paths, n);
	free(msg);

	/* A second connection is answered from the cache. */
	hello(&C1, "127.0.0.2");
	cr_expect(h_log_wait(&D, "disconnect from mail.good.test[127.0.0.2]:", WAIT_MS));
	char *q = dns_questions();
	cr_expect_eq(h_count(q, strlen(q), "2.0.0.127.in-addr.arpa PTR"), 1,
	             "the PTR was asked more than once: %s", q);
	cr_expect_eq(h_count(q, strlen(q), "mail.good.test A"), 1, "forward lookups: %s", q);
	free(q);

	h_daemon_stop(&D);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
}

Test(rdns, unconfirmed_names_are_unknown)
{
	start();
	pid_t dns = dns_start();
	h_daemon_start(&D);

	hello(&C1, "127.0.0.3"); /* PTR to a name with another address */
	hello(&C2, "127.0.0.4"); /* PTR to a name without an address */
	hello(&C3, "127.0.0.5"); /* no PTR */
	cr_expect(h_log_wait(&D, "connect from unknown[127.0.0.3]:", WAIT_MS));
	cr_expect(h_log_wait(&D, "127.0.0.3: address not listed for hostname liar.test", WAIT_MS));
	cr_expect(h_log_wait(&D, "connect from unknown[127.0.0.4]:", WAIT_MS));
	cr_expect(
	    h_log_wait(&D, "hostname gone.test does not resolve to address 127.0.0.4", WAIT_MS));
	cr_expect(h_log_wait(&D, "connect from unknown[127.0.0.5]:", WAIT_MS));
	cr_expect(h_log_wait(&D, "disconnect from unknown[127.0.0.5]:", WAIT_MS));
	cr_expect(!h_log_has(&D, "liar.test[") && !h_log_has(&D, "gone.test["),
	          "an unconfirmed name was used");
	/* Weak evidence for the classifier, never a refusal alone. */
	cr_expect(h_log_wait(&D, "no forward-confirmed reverse DNS (liar.test does not confirm)",
	                     WAIT_MS));
	cr_expect(h_log_wait(&D, "no forward-confirmed reverse DNS (no PTR)", WAIT_MS));
	size_t len;
	char *msg = h_make_message("rdns", "rdns-dyn", &len);
	const char *rcpts[] = {"bob@example.test", NULL};
	cr_expect_eq(h_send_mail(D.port, "127.0.0.8", "a@pool.test", rcpts, msg, len), 250,
	             "a dynamic-looking name alone refused");
	free(msg);
	cr_expect(
	    h_log_wait(&D, "reverse DNS name looks dynamic (dsl-127-0-0-8.pool.test)", WAIT_MS));
	char *q = dns_questions();
	cr_expect(h_contains(q, strlen(q), "liar.test A"), "no forward lookup: %s", q);
	cr_expect(h_contains(q, strlen(q), "5.0.0.127.in-addr.arpa PTR"), "no PTR lookup: %s", q);
	free(q);

	h_daemon_stop(&D);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
}

/* A UDP socket on a free loopback port that never answers. */
static int silent_server(int *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert(fd >= 0);
	for (int i = 0; i < 20; i++) {
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*port = h_free_port();
		sin.sin_port = htons((uint16_t)*port);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			return fd;
	}
	cr_assert_fail("cannot bind a UDP port");
	return -1;
}

Test(rdns, silent_dns_server_gives_unknown_within_the_timeout)
{
	start();
	int port;
	int fd = silent_server(&port);
	h_set(&D, "dns_servers", "127.0.0.1:%d", port);
	h_set(&D, "reverse_dns_timeout", "2s");
	h_daemon_start(&D);

	long long t0 = h_now_ms();
	h_open(&C1, "127.0.0.2", D.port);
	long long waited = h_now_ms() - t0;
	cr_expect(waited >= 1500, "the greeting did not wait for the lookup (%lld ms)", waited);
	cr_expect(waited < 5000, "the greeting waited %lld ms for a 2 s timeout", waited);
	h_expect(&C1, 250, "EHLO client.test");
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect(h_log_wait(&D, "connect from unknown[127.0.0.2]:", WAIT_MS));
	cr_expect(h_log_wait(&D, "reverse DNS of 127.0.0.2: no answer within 2s", WAIT_MS));

	/* The failure is remembered for a while: no second wait. */
	t0 = h_now_ms();
	h_open(&C2, "127.0.0.2", D.port);
	waited = h_now_ms() - t0;
	cr_expect(waited < 1000, "the failed lookup was not cached (%lld ms)", waited);
	h_expect(&C2, 221, "QUIT");
	h_close(&C2);

	h_daemon_stop(&D);
	close(fd);
	h_check_sanitizers(&D);
}

/* The greet pause and the lookup run at the same time: the final line
 * comes after the longer of the two, not after both added up. */
Test(rdns, greet_pause_and_lookup_overlap)
{
	start();
	int port;
	int fd = silent_server(&port);
	h_set(&D, "dns_servers", "127.0.0.1:%d", port);
	h_set(&D, "reverse_dns_timeout", "2s");
	h_set(&D, "greet_pause", "2s");
	h_daemon_start(&D);

	long long t0 = h_now_ms();
	h_open(&C1, "127.0.0.7", D.port);
	long long waited = h_now_ms() - t0;
	cr_expect(strncmp(C1.last, "220-", 4) == 0, "no split banner: %s", C1.last);
	cr_expect(waited >= 1500 && waited < 3500, "the greeting took %lld ms", waited);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect(h_log_wait(&D, "connect from unknown[127.0.0.7]:", WAIT_MS));

	h_daemon_stop(&D);
	close(fd);
	h_check_sanitizers(&D);
}

Test(rdns, off_asks_nothing)
{
	start();
	pid_t dns = dns_start();
	h_set(&D, "reverse_dns", "no");
	h_daemon_start(&D);

	hello(&C1, "127.0.0.2");
	hello(&C4, "127.0.0.1");
	cr_expect(h_log_wait(&D, "connect from unknown[127.0.0.2]:", WAIT_MS));
	cr_expect(h_log_wait(&D, "disconnect from unknown[127.0.0.1]:", WAIT_MS));
	char *q = dns_questions();
	cr_expect_str_eq(q, "", "reverse_dns = no asked: %s", q);
	free(q);

	h_daemon_stop(&D);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
}

/* SIGHUP with new dns_servers: a lookup under way on the old servers
 * ends at once (the client is unknown and greeted), the next client is
 * asked of the new ones. */
Test(rdns, reload_switches_servers)
{
	start();
	int port;
	int fd = silent_server(&port);
	pid_t dns = dns_start(); /* sets dns_servers: put the silent one back */
	char good[64];
	for (size_t i = 0; i < D.nkeys; i++)
		if (strcmp(D.keys[i], "dns_servers") == 0)
			snprintf(good, sizeof(good), "%s", D.values[i]);
	h_set(&D, "dns_servers", "127.0.0.1:%d", port);
	h_set(&D, "reverse_dns_timeout", "20s");
	h_daemon_start(&D);

	long long t0 = h_now_ms();
	cr_assert_eq(h_connect(&C1, "127.0.0.2", D.port), 0);
	h_sleep_ms(300);
	h_set(&D, "dns_servers", "%s", good);
	h_write_conf(&D);
	cr_assert_eq(kill(D.pid, SIGHUP), 0);
	h_expect_reply(&C1, 220, "greeting after the reload");
	long long waited = h_now_ms() - t0;
	cr_expect(waited < 10000, "the lookup outlived the reload (%lld ms)", waited);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect(h_log_wait(&D, "connect from unknown[127.0.0.2]:", WAIT_MS));

	hello(&C2, "127.0.0.2");
	cr_expect(h_log_wait(&D, "connect from mail.good.test[127.0.0.2]:", WAIT_MS),
	          "the new servers were not asked (or the cache was not emptied)");

	h_daemon_stop(&D);
	ob_stop_py(dns);
	close(fd);
	h_check_sanitizers(&D);
}

/* An IPv6 client: the PTR under ip6.arpa, then AAAA (not A). */
Test(rdns, ipv6_client_confirmed_by_aaaa)
{
	start();
	pid_t dns = dns_start();
	int port6 = h_free_port();
	char line[64];
	snprintf(line, sizeof(line), "listen = [::1]:%d\n", port6);
	h_conf_append(&D, line);
	h_daemon_start(&D);

	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in6 sin6;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	sin6.sin6_port = htons((uint16_t)port6);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0, "connect [::1]:%d",
	             port6);
	memset(&C1, 0, sizeof(C1));
	C1.fd = fd;
	h_expect_reply(&C1, 220, "greeting");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect(h_log_wait(&D, "connect from v6.good.test[::1]:", WAIT_MS));
	char *q = dns_questions();
	cr_expect(h_contains(q, strlen(q), "v6.good.test AAAA"), "no AAAA lookup: %s", q);
	cr_expect(!h_contains(q, strlen(q), "v6.good.test A\n"), "an A lookup for IPv6: %s", q);
	free(q);

	h_daemon_stop(&D);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
}

/* mynetworks clients get their name looked up too (127.0.0.1 here, with
 * no PTR: unknown, but asked). */
Test(rdns, mynetworks_clients_are_looked_up)
{
	start();
	pid_t dns = dns_start();
	h_daemon_start(&D);

	hello(&C1, "127.0.0.1");
	cr_expect(h_log_wait(&D, "disconnect from unknown[127.0.0.1]:", WAIT_MS));
	char *q = dns_questions();
	cr_expect(h_contains(q, strlen(q), "1.0.0.127.in-addr.arpa PTR"), "not asked: %s", q);
	free(q);

	h_daemon_stop(&D);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
}
