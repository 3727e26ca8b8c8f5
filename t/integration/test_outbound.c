/*
 * test_outbound.c: outbound delivery by SMTP and LMTP to a capture sink
 * (t/integration/outbound_sink.py), retries, bounces (checked as RFC 3464
 * reports with Python's email package), the queue lifetime, and MX routing
 * against a DNS responder on a loopback port (dns_responder.py).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "outbound.h"

TestSuite(outbound, .init = h_setup, .fini = h_teardown, .timeout = 90);

static struct h_daemon D;

static void base_conf(void)
{
	ob_base_conf(&D);
}

Test(outbound, relay_is_byte_exact_pipelined_and_shares_a_transaction)
{
	struct sink s;
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("relay test", "relay-1", &len);
	const char *rcpts[] = {"a@remote.test", "b@remote.test", "c@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);

	char *env, *data;
	size_t dlen;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, &data, &dlen);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "nothing arrived at the sink");
	cr_expect(strstr(env, "from bob@local.test\n") != NULL, "%s", env);
	cr_expect(strstr(env, "rcpt a@remote.test\nrcpt b@remote.test\nrcpt c@remote.test\n"),
	          "the three recipients are not in one transaction:\n%s", env);
	cr_expect(strstr(env, "pipelined 1\n") != NULL, "the envelope was not pipelined:\n%s", env);
	cr_expect(strstr(env, "helo mx.example.test\n") != NULL, "%s", env);
	/* Our class field (made at delivery, once), our Received: line,
	 * then the message exactly as sent. */
	cr_expect(strncmp(data, "X-Tempomx-Class: hi; ", 21) == 0, "%.200s", data);
	cr_expect_eq(h_count(data, dlen, "X-Tempomx-Class:"), 1, "%.300s", data);
	cr_expect(strstr(data, "\r\nReceived: from ") != NULL, "%.200s", data);
	cr_assert(dlen >= len);
	cr_expect(memcmp(data + dlen - len, msg, len) == 0, "the relayed message differs");
	cr_expect(h_log_wait(&D, "status=sent (250 2.0.0 queued as 1)", 5000));
	cr_expect(h_spool_wait_idle(&D, 5000), "the queue did not drain");
	h_sleep_ms(300);
	cr_expect_eq(ob_sink_count(&s), 1, "delivered more than once");
	free(env);
	free(data);
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

Test(outbound, temporary_failure_is_retried)
{
	struct sink s;
	static const char *const tf[] = {"--tempfail", "2", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), tf);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("retry test", "retry-1", &len);
	const char *rcpts[] = {"a@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	int got = ob_sink_wait(&s, 1, WAIT_MS, NULL, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "the message was not delivered after the temporary failures");
	cr_expect(h_log_has(&D, "status=deferred (451 4.3.0 try again later)"));
	cr_expect(h_log_has(&D, "deferred, 1 recipient pending"));
	cr_expect(h_log_wait(&D, "status=sent", 5000));
	cr_expect(h_spool_wait_idle(&D, 5000));
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

Test(outbound, permanent_failure_bounces_as_rfc3464)
{
	struct sink s;
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("bounce test", "bounce-1", &len);
	const char *rcpts[] = {"ok@remote.test", "unknown1@remote.test", "unknown2@remote.test",
	                       NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);

	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_assert_eq(n, 1, "no bounce reached the sender");
	cr_expect(ob_sink_wait(&s, 1, 1000, NULL, NULL, NULL), "the good recipient got nothing");
	char **files;
	cr_assert_eq(h_maildir_list(md, &files), 1);
	ob_check_dsn(files[0], "unknown1@remote.test", "5.1.1", "bounce test");
	ob_check_dsn(files[0], "unknown2@remote.test", "5.1.1", "bounce test");
	size_t flen;
	char *f = h_read_file(files[0], &flen);
	cr_expect(!h_contains(f, flen, "ok@remote.test"), "the delivered recipient is reported");
	free(f);
	h_free_list(files, 1);
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(300);
	cr_expect_eq(h_maildir_count(md), 1, "one report per message");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

Test(outbound, queue_lifetime_expiry_bounces)
{
	base_conf();
	/* Nothing listens there: every attempt fails to connect. */
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", h_free_port());
	h_set(&D, "queue_lifetime", "3s");
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("expiry test", "expiry-1", &len);
	const char *rcpts[] = {"far@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	cr_expect(h_log_wait(&D, "status=deferred (451 4.4.1 127.0.0.1[127.0.0.1]", WAIT_MS),
	          "the connection failure was not deferred with 4.4.1");
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_assert_eq(n, 1, "no bounce after the queue lifetime");
	char **files;
	cr_assert_eq(h_maildir_list(md, &files), 1);
	ob_check_dsn(files[0], "far@remote.test", "5.4.7", "expiry test");
	h_free_list(files, 1);
	cr_expect(h_log_has(&D, "status=expired"));
	cr_expect(h_spool_wait_idle(&D, 5000));
	free(msg);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
}

Test(outbound, undeliverable_bounce_is_dropped_after_its_own_lifetime)
{
	struct sink s;
	base_conf();
	/* The sink refuses the original (550 5.1.1 for "unknown..."), so it
	 * bounces at once; nothing listens for the sender's domain, so the
	 * report cannot be delivered. queue_lifetime stays at its 5 days:
	 * only bounce_queue_lifetime can end the report. (A mail loop no
	 * longer serves here: smtpd refuses it at DATA.) */
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "transport", "remote.test=smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", h_free_port());
	h_set(&D, "bounce_queue_lifetime", "3s");
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("refused", "refused-1", &len);
	const char *rcpts[] = {"unknown-far@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@sender.test", rcpts, msg, len), 250);
	cr_expect(h_log_wait(&D, "status=bounced (550 5.1.1", WAIT_MS),
	          "the original was not bounced");
	cr_expect(h_log_wait(&D, "to=<bob@sender.test>", WAIT_MS), "the report was not tried");
	cr_expect(h_log_wait(&D, "a bounce: dropped", WAIT_MS),
	          "the undeliverable report was not dropped after bounce_queue_lifetime");
	cr_expect(h_log_has(&D, "status=expired"));
	cr_expect(h_spool_wait_idle(&D, 5000), "the report is still queued");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

Test(outbound, bounce_to_the_null_sender_is_dropped)
{
	struct sink s;
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("null sender", "null-1", &len);
	const char *rcpts[] = {"unknown@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "", rcpts, msg, len), 250);
	cr_expect(h_log_wait(&D, "no notification to the null sender", WAIT_MS));
	cr_expect(h_spool_wait_idle(&D, 5000), "the failed message was not dropped");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* Backscatter: mail the classifier judged junk (accepted only because
 * timing_junk_action = log) is never bounced to its probably forged
 * sender when the next hop refuses it; it is dropped with a log line. */
Test(outbound, junk_is_never_bounced)
{
	struct sink s;
	struct h_conn c;
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "relay_domains", "remote.test");
	h_set(&D, "greet_pause", "1s");
	h_set(&D, "timing_junk_action", "log");
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("junk", "junk-1", &len);
	const char *rcpts[] = {"unknown@remote.test", NULL};
	/* Talks before the banner: a junk verdict. */
	cr_assert_eq(h_connect(&c, "127.0.0.20", D.port), 0);
	h_send(&c, "EHLO rat.example.test\r\n", 23);
	cr_expect_eq(h_reply(&c, 5000), 220);
	cr_expect_eq(h_reply(&c, 5000), 250);
	cr_expect_eq(h_transaction(&c, NULL, "bob@local.test", rcpts, msg, len), 250);
	h_close(&c);
	cr_expect(h_log_wait(&D, "junk: dropped without notification", WAIT_MS),
	          "a junk message was not dropped");
	cr_expect(h_spool_wait_idle(&D, 5000), "the failed message is still queued");
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	cr_expect_eq(h_maildir_count(md), 0, "junk was bounced to its sender");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* MX routing: dns_responder.py on a loopback port serves the zone. */
Test(outbound, mx_preference_fallback_a_records_and_self)
{
	struct sink s;
	base_conf();
	int port = h_free_port(), dport = h_free_port();
	/* The sink listens on 127.0.0.4 only; 127.0.0.3 refuses. */
	ob_sink_start(&s, D.dir, "sink", "127.0.0.4", port, NULL);
	char zone[H_PATH + 16], ready[H_PATH + 16], dp[16];
	snprintf(zone, sizeof(zone), "%s/zone", D.dir);
	snprintf(ready, sizeof(ready), "%s/dns.ready", D.dir);
	const char *z = "pref.test MX 20 good.pref.test\n"
	                "pref.test MX 10 dead.pref.test\n"
	                "good.pref.test A 127.0.0.4\n"
	                "dead.pref.test A 127.0.0.3\n"
	                "plain.test A 127.0.0.4\n"
	                "loop.test MX 10 mx.example.test\n"
	                "loop.test MX 20 good.pref.test\n";
	cr_assert_eq(h_write_file(zone, z, strlen(z), 0644), 0);
	snprintf(dp, sizeof(dp), "%d", dport);
	char *dargs[] = {dp, zone, ready, NULL};
	pid_t dns = ob_start_py("t/integration/dns_responder.py", ready, dargs);
	h_set(&D, "dns_servers", "127.0.0.1:%d", dport);
	/* "smtp:host:port" looks up the MX of host, and uses the sink's port. */
	h_set(&D, "transport",
	      "pref.test=smtp:pref.test:%d plain.test=smtp:plain.test:%d "
	      "loop.test=smtp:loop.test:%d nx.test=smtp:nx.test:%d",
	      port, port, port, port);
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("mx test", "mx-1", &len);
	const char *r1[] = {"x@pref.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r1, msg, len), 250);
	int got = ob_sink_wait(&s, 1, WAIT_MS, NULL, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "not delivered through the second MX");
	cr_expect(h_log_wait(&D, "to=<x@pref.test>, relay=good.pref.test[127.0.0.4]", 5000),
	          "the relay is not the working MX");

	const char *r2[] = {"y@plain.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r2, msg, len), 250);
	cr_assert(ob_sink_wait(&s, 2, WAIT_MS, NULL, NULL, NULL), "no fallback to the A record");
	cr_expect(h_log_wait(&D, "to=<y@plain.test>, relay=plain.test[127.0.0.4]", 5000));

	/* We are the best MX of loop.test: never deliver to ourselves, nor to
	 * hosts with a higher preference. */
	const char *r3[] = {"z@loop.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r3, msg, len), 250);
	cr_expect(h_log_wait(&D, "loops back to myself", WAIT_MS), "no loop detection");
	/* A domain that does not exist bounces at once. */
	const char *r4[] = {"w@nx.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r4, msg, len), 250);
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 2, WAIT_MS), 2, "loop and NXDOMAIN did not bounce");
	h_sleep_ms(300);
	cr_expect_eq(ob_sink_count(&s), 2);
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
}

Test(outbound, lmtp_reports_per_recipient)
{
	struct sink s;
	static const char *const lm[] = {"--lmtp", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "lmtp", "127.0.0.1", h_free_port(), lm);
	h_set(&D, "transport", "local.test=lmtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("lmtp test", "lmtp-1", &len);
	const char *rcpts[] = {"alice@local.test", "full@local.test", "unknown@local.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "carol@remote.test", rcpts, msg, len), 250);
	char *env, *data;
	size_t dlen;
	cr_assert(ob_sink_wait(&s, 1, WAIT_MS, &env, &data, &dlen),
	          "nothing reached the LMTP sink");
	cr_expect(memcmp(data + dlen - len, msg, len) == 0);
	cr_expect(h_log_wait(&D, "to=<alice@local.test>, relay=127.0.0.1[127.0.0.1]", WAIT_MS));
	cr_expect(h_log_wait(&D, "to=<full@local.test>", WAIT_MS));
	cr_expect(h_log_has(&D, "status=deferred (452 4.2.2 <full@local.test>: mailbox full)"),
	          "the per-recipient LMTP reply was not used");
	cr_expect(h_log_has(&D, "to=<unknown@local.test>") &&
	              h_log_has(&D, "status=bounced (550 5.1.1 <unknown@local.test>"),
	          "the unknown user did not bounce");
	free(env);
	free(data);
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

Test(outbound, mx_without_dns_defers)
{
	base_conf();
	/* Nothing answers DNS there: the lookup fails temporarily. */
	h_set(&D, "dns_servers", "127.0.0.1:%d", h_free_port());
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("no dns", "nodns-1", &len);
	const char *rcpts[] = {"a@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	cr_expect(h_log_wait(&D, "status=deferred (451 4.4.3 MX lookup for remote.test", WAIT_MS),
	          "a DNS failure did not defer");
	cr_expect(h_log_wait(&D, "deferred, 1 recipient pending", 5000));
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	cr_expect_eq(h_maildir_count(md), 0, "a DNS failure bounced");
	free(msg);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
}

/* A self-signed certificate for 127.0.0.1 in D's directory. */
static void make_cert(char *cert, char *key, size_t size)
{
	snprintf(cert, size, "%s/sink.crt", D.dir);
	snprintf(key, size, "%s/sink.key", D.dir);
	char *argv[] = {"/usr/bin/openssl",
	                "req",
	                "-x509",
	                "-newkey",
	                "ec",
	                "-pkeyopt",
	                "ec_paramgen_curve:prime256v1",
	                "-nodes",
	                "-keyout",
	                key,
	                "-out",
	                cert,
	                "-days",
	                "2",
	                "-subj",
	                "/CN=sink.test",
	                "-addext",
	                "subjectAltName=IP:127.0.0.1",
	                NULL};
	char *out = NULL;
	size_t olen;
	int rc = h_run(argv, NULL, 0, 20000, &out, &olen);
	cr_assert_eq(rc, 0, "openssl req: %s", out ? out : "");
	free(out);
	chmod(key, 0644);
}

Test(outbound, starttls_may_encrypt_and_verify)
{
	struct sink s, plain;
	char cert[H_PATH + 16], key[H_PATH + 16];
	base_conf();
	make_cert(cert, key, sizeof(cert));
	const char *tls[] = {"--tls", cert, key, NULL};
	ob_sink_start(&s, D.dir, "tls", "127.0.0.1", h_free_port(), tls);
	ob_sink_start(&plain, D.dir, "plain", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "transport",
	      "may.test=smtp:[127.0.0.1]:%d verify.test=smtp:[127.0.0.1]:%d "
	      "strict.test=smtp:[127.0.0.1]:%d",
	      s.port, s.port, plain.port);
	h_set(&D, "tls_policy", "may strict.test=encrypt verify.test=verify");
	h_set(&D, "tls_ca_file", "%s", cert);
	h_daemon_start(&D);

	size_t len;
	char *msg = h_make_message("tls test", "tls-1", &len);
	const char *r1[] = {"a@may.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r1, msg, len), 250);
	char *env;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "nothing arrived over TLS");
	cr_expect(strstr(env, "tls 1\n") != NULL, "STARTTLS was not used:\n%s", env);
	free(env);
	cr_expect(h_log_wait(&D, "to=<a@may.test>, relay=127.0.0.1[127.0.0.1]:", 5000));
	cr_expect(h_log_has(&D, "tls=TLSv1."), "the TLS session is not logged");

	/* verify: the certificate chains to tls_ca_file and names 127.0.0.1. */
	const char *r2[] = {"b@verify.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r2, msg, len), 250);
	cr_expect(ob_sink_wait(&s, 2, WAIT_MS, &env, NULL, NULL), "verify did not deliver");
	free(env);

	/* encrypt: a server without STARTTLS gets nothing. */
	const char *r3[] = {"c@strict.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r3, msg, len), 250);
	/* RFC 3463 X.7.4: security features not supported. */
	cr_expect(h_log_wait(&D, "status=deferred (451 4.7.4 ", WAIT_MS));
	cr_expect(h_log_has(&D, "TLS is required but the server does not offer STARTTLS"));
	cr_expect(h_log_wait(&D, "deferred, 1 recipient pending", 5000));
	cr_expect_eq(ob_sink_count(&plain), 0, "mail went out in clear text under encrypt");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	ob_stop_py(plain.pid);
	h_check_sanitizers(&D);
}

Test(outbound, verify_refuses_an_unknown_certificate)
{
	struct sink s;
	char cert[H_PATH + 16], key[H_PATH + 16];
	base_conf();
	make_cert(cert, key, sizeof(cert));
	const char *tls[] = {"--tls", cert, key, NULL};
	ob_sink_start(&s, D.dir, "tls", "127.0.0.1", h_free_port(), tls);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	/* The system store does not know the self-signed certificate. */
	h_set(&D, "tls_policy", "verify");
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("verify test", "verify-1", &len);
	const char *r[] = {"a@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", r, msg, len), 250);
	cr_expect(h_log_wait(&D, "certificate not verified", WAIT_MS),
	          "an unknown CA was accepted");
	/* X.7.5: cryptographic failure. */
	cr_expect(h_log_has(&D, "status=deferred (451 4.7.5 "), "no 4.7.5 for the failed check");
	cr_expect(h_log_wait(&D, "deferred, 1 recipient pending", 5000));
	cr_expect_eq(ob_sink_count(&s), 0);
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* The primary MX is down; the backup accepts and defers; the primary
 * comes up and a flush (SIGUSR1 to the backup's master) delivers every
 * message exactly once. */
Test(outbound, backup_mx_holds_mail_until_the_primary_is_back)
{
	static struct h_daemon P;
	h_daemon_init(&P);
	h_set(&P, "local_domains", "example.com");
	base_conf();
	h_set(&D, "relay_domains", "example.com");
	h_set(&D, "transport", "example.com=smtp:[127.0.0.1]:%d", P.port);
	h_set(&D, "retry_min", "1h");
	h_daemon_start(&D);

	size_t len;
	char *msg[3];
	static const char *const rcpts[][3] = {{"ann@example.com", NULL, NULL},
	                                       {"ben@example.com", "ann@example.com", NULL},
	                                       {"cat@example.com", NULL, NULL}};
	char token[32];
	size_t lens[3];
	for (int i = 0; i < 3; i++) {
		snprintf(token, sizeof(token), "backup-%d", i);
		msg[i] = h_make_message("backup mx", token, &len);
		lens[i] = len;
		/* From outside: relay_domains, not mynetworks. */
		cr_assert_eq(
		    h_send_mail(D.port, "127.0.0.2", "x@sender.test", rcpts[i], msg[i], len), 250);
	}
	for (int i = 0; i < 200 && h_spool_count(&D, "deferred") < 3; i++)
		h_sleep_ms(50);
	cr_assert_eq(h_spool_count(&D, "deferred"), 3, "the backup did not defer the mail");
	cr_expect(h_log_has(&D, "Connection refused"));

	h_daemon_start(&P);
	cr_assert_eq(kill(D.pid, SIGUSR1), 0);
	char ann[H_PATH], ben[H_PATH], cat[H_PATH];
	h_maildir(&P, "example.com", "ann", ann, sizeof(ann));
	h_maildir(&P, "example.com", "ben", ben, sizeof(ben));
	h_maildir(&P, "example.com", "cat", cat, sizeof(cat));
	cr_expect_eq(h_maildir_wait(ann, 2, WAIT_MS), 2);
	cr_expect_eq(h_maildir_wait(ben, 1, WAIT_MS), 1);
	cr_expect_eq(h_maildir_wait(cat, 1, WAIT_MS), 1);
	cr_expect(h_spool_wait_idle(&D, WAIT_MS), "the backup's queue did not drain");
	cr_expect(h_spool_wait_idle(&P, WAIT_MS));
	/* A second flush finds nothing: exactly once. */
	kill(D.pid, SIGUSR1);
	cr_expect(h_log_wait(&D, "flush: 0 deferred messages moved to out", 5000));
	h_sleep_ms(300);
	cr_expect_eq(h_maildir_count(ann), 2);
	cr_expect_eq(h_maildir_count(ben), 1);
	cr_expect_eq(h_maildir_count(cat), 1);
	char **files;
	int n = h_maildir_list(cat, &files);
	if (n == 1) {
		size_t flen;
		char *f = h_read_file(files[0], &flen);
		cr_expect(flen >= lens[2] && memcmp(f + flen - lens[2], msg[2], lens[2]) == 0,
		          "the message changed on its way through the backup");
		cr_expect_eq(h_count(f, flen, "Received: from "), 2, "one Received: per hop");
		free(f);
	}
	h_free_list(files, n);
	for (int i = 0; i < 3; i++)
		free(msg[i]);
	h_daemon_stop(&D);
	h_daemon_stop(&P);
	h_check_sanitizers(&D);
	h_check_sanitizers(&P);
	h_daemon_free(&P);
}

/* SIGKILL the delivery child while the sink holds its reply to the final
 * dot: after the master restarts it, every recipient is delivered at
 * least once and the queue drains. */
Test(outbound, delivery_killed_mid_transaction_loses_nothing)
{
	struct sink s;
	static const char *const stall[] = {"--stall", "30", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), stall);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("crash test", "crash-1", &len);
	const char *rcpts[] = {"a@remote.test", "b@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	cr_assert(ob_sink_wait(&s, 1, WAIT_MS, NULL, NULL, NULL),
	          "the first attempt never arrived");

	pid_t kids[8], victim = 0;
	int nk = h_children(D.pid, kids, 8);
	for (int i = 0; i < nk; i++) {
		char needle[64];
		snprintf(needle, sizeof(needle), "child delivery started, pid %d\n", (int)kids[i]);
		if (h_log_has(&D, needle))
			victim = kids[i];
	}
	cr_assert(victim > 0, "no delivery child found");
	cr_assert_eq(kill(victim, SIGKILL), 0);

	char *env;
	int got = ob_sink_wait(&s, 2, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "the message was not delivered again after the crash");
	cr_expect(strstr(env, "rcpt a@remote.test\nrcpt b@remote.test\n") != NULL, "%s", env);
	free(env);
	cr_expect(h_spool_wait_idle(&D, WAIT_MS), "the queue did not drain");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

/* LMTP into a real Dovecot (dovecot-lmtpd), started with a temporary
 * configuration: known users get the message, an unknown one bounces. */
Test(outbound, lmtp_into_dovecot)
{
	/* A test dependency (scripts/install-deps): never a silent pass. */
	cr_assert(access("/usr/sbin/dovecot", X_OK) == 0 &&
	              access("/usr/lib/dovecot/lmtp", X_OK) == 0,
	          "Dovecot is not installed (scripts/install-deps installs dovecot-lmtpd)");
	base_conf();
	int lport = h_free_port();
	char dv[H_PATH + 16], conf[H_PATH + 32], users[H_PATH + 32], store[H_PATH + 32];
	snprintf(dv, sizeof(dv), "%s/dovecot", D.dir);
	snprintf(conf, sizeof(conf), "%s/dovecot.conf", dv);
	snprintf(users, sizeof(users), "%s/users", dv);
	snprintf(store, sizeof(store), "%s/store", dv);
	cr_assert_eq(mkdir(dv, 0755), 0);
	cr_assert_eq(mkdir(store, 0755), 0);
	/* The mailboxes belong to the unprivileged run user. */
	h_chown_run_user(store);
	struct stat st;
	cr_assert_eq(stat(store, &st), 0);
	char text[4096];
	snprintf(text, sizeof(text),
	         "alice@local.test:{PLAIN}x:%u:%u::%s/alice\n"
	         "bob@local.test:{PLAIN}x:%u:%u::%s/bob\n",
	         (unsigned)st.st_uid, (unsigned)st.st_gid, store, (unsigned)st.st_uid,
	         (unsigned)st.st_gid, store);
	cr_assert_eq(h_write_file(users, text, strlen(text), 0644), 0);
	snprintf(
	    text, sizeof(text),
	    "protocols = lmtp\nbase_dir = %s/run\nstate_dir = %s/run\n"
	    "log_path = %s/dovecot.log\nlisten = 127.0.0.1\nssl = no\n"
	    "mail_location = maildir:~/Maildir\nfirst_valid_uid = 1\n"
	    "passdb {\n driver = passwd-file\n args = %s\n}\n"
	    "userdb {\n driver = passwd-file\n args = %s\n}\n"
	    "service lmtp {\n inet_listener lmtp {\n  address = 127.0.0.1\n  port = %d\n }\n}\n",
	    dv, dv, dv, users, users, lport);
	cr_assert_eq(h_write_file(conf, text, strlen(text), 0644), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		execl("/usr/sbin/dovecot", "dovecot", "-F", "-c", conf, (char *)NULL);
		_exit(127);
	}
	h_track(pid);
	int up = 0;
	for (int i = 0; i < 100 && !up; i++) {
		struct h_conn c;
		if (h_connect(&c, "127.0.0.1", lport) == 0) {
			up = 1;
			h_close(&c);
		} else {
			h_sleep_ms(50);
		}
	}
	if (!up)
		ob_stop_py(pid);
	cr_assert(up, "Dovecot's LMTP did not come up");
	h_set(&D, "transport", "local.test=lmtp:[127.0.0.1]:%d", lport);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("dovecot test", "dovecot-1", &len);
	const char *rcpts[] = {"alice@local.test", "bob@local.test", "nobody@local.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "carol@local.test", rcpts, msg, len), 250);

	char md[H_PATH + 64];
	snprintf(md, sizeof(md), "%s/alice/Maildir", store);
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_expect_eq(n, 1, "alice got nothing from Dovecot");
	snprintf(md, sizeof(md), "%s/bob/Maildir", store);
	cr_expect_eq(h_maildir_wait(md, 1, WAIT_MS), 1, "bob got nothing from Dovecot");
	char **files;
	n = h_maildir_list(md, &files);
	if (n == 1) {
		size_t flen;
		char *f = h_read_file(files[0], &flen);
		cr_expect(h_contains(f, flen, "dovecot-1"), "the message is not in bob's mailbox");
		free(f);
	}
	h_free_list(files, n);
	/* nobody@ does not exist: it bounces. The bounce goes to carol, also
	 * in local.test (so by LMTP) and unknown to Dovecot: it fails too and,
	 * being from the null sender, is dropped instead of bounced again. */
	cr_expect(h_log_wait(&D, "to=<nobody@local.test>", WAIT_MS));
	cr_expect(h_log_has(&D, "status=bounced (550 5.1.1 <nobody@local.test>"),
	          "the unknown user did not bounce");
	cr_expect(h_log_wait(&D, "no notification to the null sender (a bounce: dropped)", WAIT_MS),
	          "the undeliverable bounce was not dropped");
	cr_expect(h_spool_wait_idle(&D, WAIT_MS));
	free(msg);
	h_daemon_stop(&D);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	h_untrack(pid);
	h_check_sanitizers(&D);
}

static void reuse_round(const char *reuse, int same)
{
	struct sink s;
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "smtp_connection_reuse_time", "%s", reuse);
	h_daemon_start(&D);
	for (int i = 1; i <= 3; i++) {
		char token[32];
		size_t len;
		snprintf(token, sizeof(token), "reuse-%d", i);
		char *msg = h_make_message("reuse test", token, &len);
		const char *rcpts[] = {"a@remote.test", NULL};
		cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len),
		             250);
		cr_assert(ob_sink_wait(&s, i, WAIT_MS, NULL, NULL, NULL),
		          "message %d not delivered", i);
		free(msg);
	}
	int c1 = ob_sink_conn_of(&s, 1), c3 = ob_sink_conn_of(&s, 3);
	if (same)
		cr_expect_eq(c1, c3, "three messages used connections %d..%d, not one", c1, c3);
	else
		cr_expect_eq(c3, c1 + 2, "reuse off, yet connections %d..%d", c1, c3);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
}

Test(outbound, connection_is_reused_for_the_next_message)
{
	reuse_round("60s", 1);
}

Test(outbound, connection_reuse_off)
{
	reuse_round("0", 0);
}

/* Recipient validation at RCPT: unknown users of a local domain (the
 * recipients table) and of a relay domain (relay_recipients) get
 * 550 5.1.1, so nothing is accepted that would bounce; a changed table is
 * read again. */
Test(outbound, unknown_recipients_are_refused_at_rcpt)
{
	static struct h_conn c;
	char local[H_PATH + 16], relay[H_PATH + 16];
	base_conf();
	snprintf(local, sizeof(local), "%s/recipients", D.dir);
	snprintf(relay, sizeof(relay), "%s/relay_recipients", D.dir);
	const char *lt = "alice@local.test\n# a comment\nBob@Local.Test\n";
	const char *rt = "@whole.test\nann@example.com\n";
	cr_assert_eq(h_write_file(local, lt, strlen(lt), 0644), 0);
	cr_assert_eq(h_write_file(relay, rt, strlen(rt), 0644), 0);
	h_set(&D, "local_domains", "local.test");
	h_set(&D, "relay_domains", "example.com whole.test");
	h_set(&D, "recipients", "%s", local);
	h_set(&D, "relay_recipients", "%s", relay);
	h_daemon_start(&D);

	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO client.example.test");
	h_expect(&c, 250, "MAIL FROM:<x@sender.test>");
	h_expect(&c, 250, "RCPT TO:<alice@local.test>");
	h_expect(&c, 250, "RCPT TO:<bob@local.test>");
	h_expect(&c, 550, "RCPT TO:<carol@local.test>");
	cr_expect(h_last_has(&c, "5.1.1"), "%s", c.last);
	h_expect(&c, 250, "RCPT TO:<postmaster@local.test>");
	h_expect(&c, 250, "RCPT TO:<ann@example.com>");
	h_expect(&c, 550, "RCPT TO:<ben@example.com>");
	h_expect(&c, 250, "RCPT TO:<anyone@whole.test>");
	h_expect(&c, 250, "RSET");

	/* The table changes: carol now exists. */
	const char *lt2 = "alice@local.test\ncarol@local.test\n";
	char tmp[H_PATH + 32];
	snprintf(tmp, sizeof(tmp), "%s.new", local);
	cr_assert_eq(h_write_file(tmp, lt2, strlen(lt2), 0644), 0);
	cr_assert_eq(rename(tmp, local), 0);
	h_expect(&c, 250, "MAIL FROM:<x@sender.test>");
	h_expect(&c, 250, "RCPT TO:<carol@local.test>");
	h_expect(&c, 550, "RCPT TO:<bob@local.test>");
	/* An edit in place that keeps the size and the times is seen only
	 * on SIGHUP: david replaces carol. */
	struct stat st;
	cr_assert_eq(stat(local, &st), 0);
	const char *lt3 = "alice@local.test\ndavid@local.test\n";
	cr_assert_eq(strlen(lt3), strlen(lt2));
	int fd = open(local, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, lt3, strlen(lt3)), (ssize_t)strlen(lt3));
	close(fd);
	struct timespec times[2] = {st.st_atim, st.st_mtim};
	cr_assert_eq(utimensat(AT_FDCWD, local, times, 0), 0);
	h_expect(&c, 250, "RCPT TO:<carol@local.test>"); /* not seen yet */
	cr_assert_eq(kill(D.pid, SIGHUP), 0);
	int code = 250;
	for (int i = 0; i < 50 && code == 250; i++) {
		h_sleep_ms(100);
		code = h_cmd(&c, "RCPT TO:<carol@local.test>");
	}
	cr_expect_eq(code, 550, "the table was not read again on SIGHUP");
	h_expect(&c, 250, "RCPT TO:<david@local.test>");
	/* A table that cannot be read tempfails instead of accepting. */
	cr_assert_eq(unlink(local), 0);
	h_expect(&c, 451, "RCPT TO:<alice@local.test>");
	h_close(&c);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
}

Test(outbound, delay_warning_is_sent_once)
{
	base_conf();
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", h_free_port());
	h_set(&D, "delay_warning_time", "2s");
	h_set(&D, "retry_max", "1s");
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("slow mail", "delay-1", &len);
	const char *rcpts[] = {"far@remote.test", NULL};
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len), 250);
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_assert_eq(n, 1, "no delay warning");
	char **files;
	cr_assert_eq(h_maildir_list(md, &files), 1);
	/* RFC 3463 X.4.1: no answer from the host (connection refused). */
	ob_check_dsn_action(files[0], "far@remote.test", "4.4.1", "slow mail", "delayed");
	h_free_list(files, 1);
	/* Later attempts do not warn again, and the message stays queued. */
	cr_expect(h_log_wait(&D, "sender delay notification for 1 recipient", 1000));
	h_sleep_ms(3000);
	cr_expect_eq(h_maildir_count(md), 1, "the warning was sent more than once");
	cr_expect_eq(h_spool_count(&D, "deferred") + h_spool_count(&D, "out"), 1);
	free(msg);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
}

static int concurrency_round(const char *limit)
{
	struct sink s;
	static const char *const slow[] = {"--delay", "0.4", NULL};
	base_conf();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), slow);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "delivery_threads", "4");
	h_set(&D, "smtp_connection_reuse_time", "0");
	h_set(&D, "max_connections_per_destination", "%s", limit);
	h_daemon_start(&D);
	for (int i = 0; i < 4; i++) {
		char token[32];
		size_t len;
		snprintf(token, sizeof(token), "conc-%d", i);
		char *msg = h_make_message("limit test", token, &len);
		const char *rcpts[] = {"a@remote.test", NULL};
		cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@local.test", rcpts, msg, len),
		             250);
		free(msg);
	}
	int c = 0;
	for (int n = 1; n <= 4; n++) {
		int m = ob_sink_maxconc(&s, n);
		cr_assert(m > 0, "message %d not delivered", n);
		c = m > c ? m : c;
	}
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
	return c;
}

Test(outbound, connections_per_destination_are_limited)
{
	cr_expect_eq(concurrency_round("1"), 1, "more than one connection to the destination");
}

Test(outbound, connections_run_in_parallel_without_a_limit)
{
	cr_expect_gt(concurrency_round("0"), 1,
	             "no parallel connections: the limit test proves nothing");
}
