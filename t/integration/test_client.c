/*
 * test_client.c: the outbound SMTP client's protocol behaviour against the
 * capture sink (outbound_sink.py): PIPELINING used only when offered, HELO
 * when EHLO is refused, the connection limits with a queue of waiting
 * jobs, a large message streamed byte for byte with SIZE=, connection
 * reuse (RSET after a failed transaction, a new connection when the idle
 * one was closed), timeouts mid-DATA, shutdown in the middle of a
 * transaction, LMTP over a unix socket, the RFC 3463 codes of failures
 * that are ours (DNS, routing loops) in the RFC 3464 reports, and
 * recipients at address literals (sent to that address, never looked
 * up; refused, malformed, or naming us).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "outbound.h"

TestSuite(client, .init = h_setup, .fini = h_teardown, .timeout = 120);

static struct h_daemon D;

static void base_conf(void)
{
	ob_base_conf(&D);
}

static void send_one(const char *rcpt, const char *token)
{
	size_t len;
	char *msg = h_make_message("client test", token, &len);
	const char *rcpts[] = {rcpt, NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	free(msg);
}

Test(client, pipelining_is_used_only_when_offered)
{
	struct sink p, np;
	static const char *const nopipe[] = {"--no-pipelining", NULL};
	base_conf();
	ob_sink_start(&p, D.dir, "pipe", "127.0.0.1", h_free_port(), NULL);
	ob_sink_start(&np, D.dir, "nopipe", "127.0.0.1", h_free_port(), nopipe);
	h_set(&D, "transport", "pipe.test=smtp:[127.0.0.1]:%d nopipe.test=smtp:[127.0.0.1]:%d",
	      p.port, np.port);
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("pipelining", "pipe-1", &len);
	const char *r1[] = {"a@pipe.test", "b@pipe.test", "c@pipe.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r1, msg, len), 250);
	const char *r2[] = {"a@nopipe.test", "b@nopipe.test", "c@nopipe.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r2, msg, len), 250);

	/* RFC 2920: MAIL, the three RCPTs and DATA in one write, so the
	 * sink found four more lines buffered when it read MAIL. */
	int batch = ob_sink_field(&p, 1, "batch");
	if (batch < 0)
		h_dump_log(&D, 30);
	cr_expect_eq(batch, 4, "MAIL was not followed by RCPT x3 and DATA in one write (%d)",
	             batch);
	/* Without PIPELINING each command waits for the reply before. */
	cr_expect_eq(ob_sink_field(&np, 1, "pipelined"), 0, "pipelined without PIPELINING");
	cr_expect_eq(ob_sink_field(&np, 1, "batch"), 0);
	char *env;
	cr_assert(ob_sink_wait(&np, 1, WAIT_MS, &env, NULL, NULL));
	cr_expect(strstr(env, "rcpt a@nopipe.test\nrcpt b@nopipe.test\nrcpt c@nopipe.test\n"), "%s",
	          env);
	free(env);
	cr_expect(h_spool_wait_idle(&D, 5000));
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(p.pid);
	ob_stop_py(np.pid);
	h_check_sanitizers(&D);
}

/* 30 messages to one destination limited to 2 connections: returns the
 * most connections the sink saw at once; *nconn: connections used. */
static int limit_round(const char *reuse, int *nconn)
{
	struct sink s;
	static const char *const slow[] = {"--delay", "0.2", NULL};
	enum { N = 30 };
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), slow);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "max_connections_per_destination", "2");
	h_set(&D, "smtp_connection_reuse_time", "%s", reuse);
	h_daemon_start(&D);
	for (int i = 0; i < N; i++) {
		char token[32];
		snprintf(token, sizeof(token), "limit-%d", i);
		send_one("a@remote.test", token);
	}
	int got = ob_sink_wait(&s, N, 60000, NULL, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "not all %d messages arrived", N);
	int maxc = ob_sink_maxconc(&s, N), top = 0;
	for (int n = 1; n <= N; n++) {
		int c = ob_sink_conn_of(&s, n);
		top = c > top ? c : top;
	}
	*nconn = top;
	cr_expect(h_spool_wait_idle(&D, 10000));
	h_sleep_ms(300);
	cr_expect_eq(ob_sink_count(&s), N, "a message was delivered twice");
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
	return maxc;
}

Test(client, thirty_messages_two_connections_reused)
{
	int nconn;
	int maxc = limit_round("60s", &nconn);
	cr_expect_leq(maxc, 2, "%d connections at once with a limit of 2", maxc);
	cr_expect_eq(maxc, 2, "the two connections allowed were not used in parallel");
	cr_expect_leq(nconn, 2, "30 messages over %d connections: not reused", nconn);
}

Test(client, thirty_messages_limit_without_reuse)
{
	int nconn;
	int maxc = limit_round("0", &nconn);
	cr_expect_leq(maxc, 2, "%d connections at once with a limit of 2", maxc);
	cr_expect_eq(nconn, 30, "reuse is off, yet 30 messages used %d connections", nconn);
}

/* max_outbound_connections counts every destination: two routes to the
 * same sink, at most one connection in all. */
Test(client, total_connection_limit_spans_destinations)
{
	struct sink s;
	static const char *const slow[] = {"--delay", "0.2", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), slow);
	h_set(&D, "transport", "one.test=smtp:[127.0.0.1]:%d two.test=smtp:[localhost]:%d", s.port,
	      s.port);
	h_set(&D, "max_outbound_connections", "1");
	h_set(&D, "smtp_connection_reuse_time", "5s");
	h_daemon_start(&D);
	for (int i = 0; i < 8; i++) {
		char token[32];
		snprintf(token, sizeof(token), "total-%d", i);
		send_one(i % 2 ? "x@one.test" : "y@two.test", token);
	}
	int got = ob_sink_wait(&s, 8, 40000, NULL, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "not all messages arrived");
	cr_expect_eq(ob_sink_maxconc(&s, 8), 1, "more than one outbound connection at once");
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* A transaction refused at MAIL leaves the reused session dirty: the next
 * one starts with RSET on the same connection. */
Test(client, rset_after_a_failed_transaction_on_a_reused_session)
{
	struct sink s;
	static const char *const tf[] = {"--tempfail", "1", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), tf);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "smtp_connection_reuse_time", "60s");
	h_daemon_start(&D);
	send_one("a@remote.test", "rset-1");
	int got = ob_sink_wait(&s, 1, WAIT_MS, NULL, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got);
	cr_expect(h_log_has(&D, "status=deferred (451 4.3.0 try again later)"));
	cr_expect_eq(ob_sink_conn_of(&s, 1), 1, "the retry did not reuse the connection");
	cr_expect_eq(ob_sink_field(&s, 1, "rset"), 1, "no RSET after the refused MAIL");
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* The sink stops reading after 354: the client gives up after its
 * timeouts with 4.4.2, and the retry delivers. */
Test(client, stall_mid_data_defers_with_4_4_2)
{
	struct sink s;
	static const char *const stall[] = {"--stall-data", "30", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), stall);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "smtp_command_timeout", "2s");
	h_set(&D, "smtp_data_timeout", "2s");
	h_set(&D, "smtp_connection_reuse_time", "0");
	h_daemon_start(&D);
	long long t0 = h_now_ms();
	send_one("a@remote.test", "stall-1");
	int seen = h_log_wait(&D, "status=deferred (451 4.4.2 127.0.0.1[127.0.0.1]", WAIT_MS);
	if (!seen)
		h_dump_log(&D, 30);
	cr_expect(seen, "the stalled transaction was not deferred with 4.4.2");
	cr_expect(h_now_ms() - t0 < 15000, "the timeout took %lld ms", h_now_ms() - t0);
	cr_expect(ob_sink_wait(&s, 1, WAIT_MS, NULL, NULL, NULL), "the retry did not deliver");
	cr_expect(h_log_wait(&D, "status=sent", 5000));
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* SIGTERM while the sink holds the reply to the final dot: the daemon
 * stops at once, the recipient stays pending (no 2xx, not sent), and the
 * next start delivers it. */
Test(client, shutdown_mid_transaction_leaves_the_recipient_pending)
{
	struct sink s;
	static const char *const stall[] = {"--stall", "60", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), stall);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "retry_min", "1s");
	h_daemon_start(&D);
	send_one("a@remote.test", "term-1");
	cr_assert(ob_sink_wait(&s, 1, WAIT_MS, NULL, NULL, NULL), "the transaction never started");
	long long t0 = h_now_ms();
	cr_expect_eq(h_daemon_stop(&D), 0, "the daemon did not stop cleanly");
	cr_expect(h_now_ms() - t0 < 15000, "the stop waited %lld ms for the stalled server",
	          h_now_ms() - t0);
	cr_expect(h_log_has(&D, "status=pending (shut down before the final reply)"),
	          "the cut-off recipient was not left pending");
	cr_expect(!h_log_has(&D, "status=sent"), "marked sent without a final reply");
	cr_expect_eq(h_spool_count(&D, "deferred") + h_spool_count(&D, "out"), 1,
	             "the message is not in the queue any more");
	h_check_sanitizers(&D);

	h_daemon_start(&D);
	int got = ob_sink_wait(&s, 2, WAIT_MS, NULL, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_expect(got, "not delivered after the restart");
	cr_expect(h_spool_wait_idle(&D, WAIT_MS));
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* The DSN of a routing failure carries our RFC 3463 code. */
static void check_bounce_status(const char *md, const char *rcpt, const char *status)
{
	char **files;
	int n = h_maildir_list(md, &files), found = 0;
	for (int i = 0; i < n; i++) {
		size_t flen;
		char *f = h_read_file(files[i], &flen);
		if (f && h_contains(f, flen, rcpt)) {
			found = 1;
			ob_check_dsn(files[i], rcpt, status, "client test");
		}
		free(f);
	}
	h_free_list(files, n);
	cr_expect(found, "no report about %s", rcpt);
}

Test(client, dsn_codes_for_nxdomain_and_mx_loop)
{
	base_conf();
	int dport = h_free_port();
	char zone[H_PATH + 16], ready[H_PATH + 16], dp[16];
	snprintf(zone, sizeof(zone), "%s/zone", D.dir);
	snprintf(ready, sizeof(ready), "%s/dns.ready", D.dir);
	const char *z = "loop.test MX 10 mx.example.test\n";
	cr_assert_eq(h_write_file(zone, z, strlen(z), 0644), 0);
	snprintf(dp, sizeof(dp), "%d", dport);
	char *dargs[] = {dp, zone, ready, NULL};
	pid_t dns = ob_start_py("t/integration/dns_responder.py", ready, dargs);
	h_set(&D, "dns_servers", "127.0.0.1:%d", dport);
	h_daemon_start(&D);
	send_one("w@nx.test", "nx-1");
	send_one("z@loop.test", "loop-1");
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 2, WAIT_MS);
	if (n != 2)
		h_dump_log(&D, 30);
	cr_assert_eq(n, 2, "NXDOMAIN and the MX loop did not both bounce");
	/* RFC 3463 X.1.2: bad destination system address. */
	check_bounce_status(md, "w@nx.test", "5.1.2");
	/* X.4.6: routing loop detected. */
	check_bounce_status(md, "z@loop.test", "5.4.6");
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_daemon_stop(&D);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
}

/* LMTP over a unix socket; a socket that is not there defers with 4.4.1. */
Test(client, lmtp_over_a_unix_socket)
{
	struct sink s;
	char path[H_PATH + 16], argpath[H_PATH + 16];
	base_conf();
	snprintf(path, sizeof(path), "%s/lmtp.sock", D.dir);
	snprintf(argpath, sizeof(argpath), "%s", path);
	const char *const lm[] = {"--lmtp", "--unix", argpath, NULL};
	ob_sink_start(&s, D.dir, "lmtp", "127.0.0.1", 0, lm);
	h_set(&D, "transport", "local.test=lmtp:unix:%s gone.test=lmtp:unix:%s/none.sock", path,
	      D.dir);
	h_daemon_start(&D);
	send_one("alice@local.test", "unix-1");
	char *env;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "nothing reached the LMTP socket");
	cr_expect(strstr(env, "rcpt alice@local.test\n") != NULL, "%s", env);
	free(env);
	cr_expect(h_log_wait(&D, "to=<alice@local.test>, relay=", 5000));
	cr_expect(h_log_wait(&D, "status=sent (250 2.0.0 <alice@local.test> delivered)", 5000));

	send_one("bob@gone.test", "unix-2");
	cr_expect(h_log_wait(&D, "status=deferred (451 4.4.1 ", WAIT_MS),
	          "a missing socket did not defer with 4.4.1");
	cr_expect(h_log_has(&D, "No such file or directory"));
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* A message of several MiB goes out in chunks as the connection drains:
 * byte for byte, dot-stuffing right across chunk boundaries, and MAIL
 * FROM announces its size (RFC 1870). */
Test(client, large_message_is_streamed_byte_exact)
{
	struct sink s;
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);

	size_t cap = 6u << 20, len = 0;
	char *msg = malloc(cap + 4096);
	cr_assert_not_null(msg);
	len += (size_t)snprintf(msg, 4096,
	                        "From: <bob@local.test>\r\nTo: <a@remote.test>\r\n"
	                        "Subject: large\r\nMessage-ID: <large-1@local.test>\r\n\r\n");
	for (unsigned i = 0; len < cap; i++) {
		/* Lines of many lengths; every seventh starts with a dot. */
		size_t n = (i * 37u) % 900u;
		if (i % 7 == 0)
			msg[len++] = '.';
		for (size_t k = 0; k < n; k++)
			msg[len++] = (char)('a' + (i + k) % 26);
		msg[len++] = '\r';
		msg[len++] = '\n';
	}
	const char *rcpts[] = {"a@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	char *env, *data;
	size_t dlen;
	int got = ob_sink_wait(&s, 1, 60000, &env, &data, &dlen);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "the large message did not arrive");
	cr_expect(dlen >= len && memcmp(data + dlen - len, msg, len) == 0,
	          "the relayed message differs (%zu octets, sent %zu)", dlen, len);
	const char *p = strstr(env, "\nsize ");
	long long size = p ? atoll(p + 6) : -1;
	cr_expect_eq(size, (long long)dlen, "SIZE=%lld for a message of %zu octets", size, dlen);
	free(env);
	free(data);
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* A server that refuses EHLO gets HELO, and then neither PIPELINING nor
 * SIZE is used. */
Test(client, helo_when_ehlo_is_refused)
{
	struct sink s;
	static const char *const noehlo[] = {"--no-ehlo", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), noehlo);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("helo", "helo-1", &len);
	const char *rcpts[] = {"a@remote.test", "b@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	char *env;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "nothing delivered after HELO");
	cr_expect(strstr(env, "helo mx.example.test\n") != NULL, "%s", env);
	cr_expect(strstr(env, "\npipelined 0\n") != NULL, "pipelined after HELO:\n%s", env);
	cr_expect(strstr(env, "\nsize -1\n") != NULL, "SIZE= after HELO:\n%s", env);
	free(env);
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* A server that hangs up after each message: the idle session is found
 * closed (or fails at once when used), and the next message goes over a
 * new connection, exactly once. */
Test(client, a_closed_idle_session_is_replaced)
{
	struct sink s;
	static const char *const hang[] = {"--hang-up", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), hang);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "smtp_connection_reuse_time", "60s");
	h_daemon_start(&D);
	for (int i = 1; i <= 3; i++) {
		char token[32];
		snprintf(token, sizeof(token), "hang-%d", i);
		send_one("a@remote.test", token);
		int got = ob_sink_wait(&s, i, WAIT_MS, NULL, NULL, NULL);
		if (!got)
			h_dump_log(&D, 30);
		cr_assert(got, "message %d not delivered", i);
		cr_expect_eq(ob_sink_conn_of(&s, i), i, "message %d not on a new connection", i);
	}
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(300);
	cr_expect_eq(ob_sink_count(&s), 3, "a message went twice");
	cr_expect(!h_log_has(&D, "status=deferred"), "a closed idle session deferred mail");
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* RFC 5321 5.1: a recipient at an address literal goes to that address,
 * here on the port of "smtp::port", with no DNS lookup (the resolver
 * named is dead: a lookup would defer). [IPv6:::1] and [ipv6:0::1] are
 * one destination, so they share one transaction. */
Test(client, address_literal_is_the_destination)
{
	struct sink v4, v6;
	base_conf();
	int port = h_free_port();
	ob_sink_start(&v4, D.dir, "v4", "127.0.0.9", port, NULL);
	ob_sink_start(&v6, D.dir, "v6", "::1", port, NULL);
	h_set(&D, "allow_address_literals", "yes");
	h_set(&D, "dns_servers", "127.0.0.1:%d", h_free_port());
	h_set(&D, "default_transport", "smtp::%d", port);
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("client test", "literal-1", &len);
	const char *rcpts[] = {"a@[127.0.0.9]", "b@[IPv6:::1]", "c@[ipv6:0::1]", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	char *env = NULL;
	int got = ob_sink_wait(&v4, 1, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "nothing reached 127.0.0.9");
	cr_expect(strstr(env, "rcpt a@[127.0.0.9]\n") != NULL, "%s", env);
	free(env);
	cr_assert(ob_sink_wait(&v6, 1, WAIT_MS, &env, NULL, NULL), "nothing reached ::1");
	cr_expect(strstr(env, "rcpt b@[IPv6:::1]\nrcpt c@[ipv6:0::1]\n") != NULL, "%s", env);
	free(env);
	char relay[128];
	snprintf(relay, sizeof(relay), "to=<a@[127.0.0.9]>, relay=127.0.0.9[127.0.0.9]:%d", port);
	cr_expect(h_log_wait(&D, relay, 5000), "no log line %s", relay);
	cr_expect(h_spool_wait_idle(&D, WAIT_MS));
	cr_expect_eq(ob_sink_count(&v4), 1);
	cr_expect_eq(ob_sink_count(&v6), 1, "the IPv6 literals did not share a transaction");
	cr_expect(!h_log_has(&D, "lookup for"), "a literal was looked up in the DNS");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(v4.pid);
	ob_stop_py(v6.pid);
	h_check_sanitizers(&D);
}

/* Rewrite the deferred spool file that holds from into one with to
 * (same length, so that no offset in the file moves). */
static void spool_rewrite(const char *from, const char *to)
{
	char path[H_PATH + 32], file[H_PATH + 300];
	snprintf(path, sizeof(path), "%s/deferred", D.spool);
	DIR *dir = opendir(path);
	cr_assert_not_null(dir, "%s", path);
	struct dirent *de;
	int done = 0;
	while (!done && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		size_t flen;
		char *f = h_read_file(file, &flen);
		/* Every occurrence: in the head block and in the update records
		 * after the message. An edited record no longer matches its
		 * CRC and is ignored, so the file reads as its edited head. */
		char *hit = f ? memmem(f, flen, from, strlen(from)) : NULL;
		FILE *fp = hit ? fopen(file, "r+") : NULL;
		if (hit)
			cr_assert_not_null(fp, "%s", file);
		while (hit) {
			cr_assert_eq(fseek(fp, hit - f, SEEK_SET), 0);
			cr_assert_eq(fwrite(to, 1, strlen(to), fp), strlen(to));
			done = 1;
			hit += strlen(from);
			hit = memmem(hit, flen - (size_t)(hit - f), from, strlen(from));
		}
		if (fp)
			cr_assert_eq(fclose(fp), 0);
		free(f);
	}
	closedir(dir);
	cr_assert(done, "no deferred message holds %s", from);
}

/* Under "mx" a literal goes to port 25 of the address, never to the DNS:
 * nothing listens on 127.0.0.9:25, so the recipient is deferred with
 * 4.4.1, not with an MX lookup failure. smtpd refuses a malformed
 * literal, so only a spool file written elsewhere can hold one: the
 * deferred message is edited to [999.0.0.9], which bounces with 5.1.2
 * (bad destination system address). */
Test(client, address_literal_refused_and_malformed)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(25)};
	cr_assert(fd >= 0);
	inet_pton(AF_INET, "127.0.0.9", &sin.sin_addr);
	int listening = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	if (listening)
		cr_skip_test("something listens on 127.0.0.9:25");

	base_conf();
	h_set(&D, "allow_address_literals", "yes");
	h_set(&D, "dns_servers", "127.0.0.1:%d", h_free_port());
	h_set(&D, "retry_min", "2s");
	h_daemon_start(&D);
	send_one("u@[127.0.0.9]", "literal-2");
	int got = h_log_wait(&D, "status=deferred (451 4.4.1 127.0.0.9[127.0.0.9]:25", WAIT_MS);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "the refused connection was not deferred with 4.4.1");
	cr_expect(!h_log_has(&D, "lookup for"), "a literal was looked up in the DNS");
	h_daemon_stop(&D);

	spool_rewrite("u@[127.0.0.9]", "u@[999.0.0.9]");
	h_daemon_start(&D);
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_assert_eq(n, 1, "the malformed literal did not bounce");
	check_bounce_status(md, "u@[999.0.0.9]", "5.1.2");
	cr_expect(h_spool_wait_idle(&D, WAIT_MS));
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
}

/* A literal naming one of our listeners loops: here a wildcard listener
 * and [127.0.0.2] on its port. smtpd takes it as relaying (the client
 * connected to 127.0.0.1), so only delivery can see the loop: 5.4.6. */
Test(client, address_literal_naming_us_is_a_loop)
{
	base_conf();
	int port = D.port;
	h_set(&D, "listen", "*:%d", port);
	h_set(&D, "allow_address_literals", "yes");
	h_set(&D, "default_transport", "smtp::%d", port);
	h_daemon_start(&D);
	if (D.port != port) {
		h_daemon_stop(&D);
		cr_skip_test("port %d was taken; the harness moved to 127.0.0.1", port);
	}
	send_one("u@[127.0.0.2]", "literal-3");
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_assert_eq(n, 1, "the loop did not bounce");
	check_bounce_status(md, "u@[127.0.0.2]", "5.4.6");
	cr_expect(h_log_has(&D, "loops back to myself (I listen on 127.0.0.2 port"));
	cr_expect(h_spool_wait_idle(&D, WAIT_MS));
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
}
