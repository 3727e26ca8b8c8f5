/*
 * test_smtp.c: SMTP protocol conformance of the real tempomxd, seen from
 * a raw socket (RFC 5321 command replies, RFC 2920 pipelining, RFC 3463
 * enhanced codes, limits and timeouts).
 *
 * Each test starts its own daemon on its own port and temporary spool
 * (harness.c), talks to it, and checks the reply codes and what the
 * session does next (continues, or ends with 421/221 and a close).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

TestSuite(smtp, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;
static struct h_conn C1, C2, C3, C4, C5, C6;

static void start(void)
{
	h_daemon_init(&D);
}

/* 1 if the EHLO reply in c->last advertises keyword kw (optionally with
 * parameters after a space). */
static int ehlo_has(struct h_conn *c, const char *kw)
{
	size_t kl = strlen(kw);

	for (const char *p = c->last; p && *p;) {
		if (strlen(p) > 4 + kl && strncasecmp(p + 4, kw, kl) == 0 &&
		    (p[4 + kl] == ' ' || p[4 + kl] == '\r' || p[4 + kl] == '\n'))
			return 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

static int ehlo_lines(struct h_conn *c)
{
	int n = 0;

	for (const char *p = c->last; *p; p++)
		n += *p == '\n';
	return n;
}

Test(smtp, greeting_ehlo_helo_quit)
{
	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	cr_expect(strncmp(C1.last, "220 mx.example.test", 19) == 0 ||
	              strncmp(C1.last, "220-mx.example.test", 19) == 0,
	          "greeting must start with the configured host name: %s", C1.last);

	h_expect(&C1, 250, "EHLO client.example.test");
	cr_expect(strncmp(C1.last, "250-mx.example.test", 19) == 0, "EHLO first line: %s", C1.last);
	cr_expect(ehlo_has(&C1, "PIPELINING"), "no PIPELINING in %s", C1.last);
	cr_expect(ehlo_has(&C1, "8BITMIME"), "no 8BITMIME in %s", C1.last);
	cr_expect(ehlo_has(&C1, "ENHANCEDSTATUSCODES"), "no ENHANCEDSTATUSCODES in %s", C1.last);
	cr_expect(ehlo_has(&C1, "STARTTLS"), "no STARTTLS (smtp_tls defaults to yes) in %s",
	          C1.last);
	cr_expect(ehlo_has(&C1, "SIZE 10240000"), "no SIZE with the default limit in %s", C1.last);

	/* HELO: one line, no extensions (RFC 5321 4.1.1.1). */
	h_expect(&C1, 250, "HELO client.example.test");
	cr_expect_eq(ehlo_lines(&C1), 1, "HELO reply must be one line: %s", C1.last);
	cr_expect(strncmp(C1.last, "250 mx.example.test", 19) == 0, "HELO reply: %s", C1.last);

	h_expect(&C1, 214, "HELP");
	h_expect(&C1, 221, "QUIT");
	cr_expect(h_last_has(&C1, "2.0.0"), "221 without enhanced code: %s", C1.last);
	cr_expect(h_wait_closed(&C1, 3000), "server did not close after 221");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, starttls_not_offered_when_disabled)
{
	start();
	h_set(&D, "smtp_tls", "no");
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	cr_expect(!ehlo_has(&C1, "STARTTLS"), "STARTTLS offered with smtp_tls = no: %s", C1.last);
	int code = h_cmd(&C1, "STARTTLS");
	cr_expect(code >= 400 && code < 600, "STARTTLS with TLS off must be refused, got %d: %s",
	          code, C1.last);
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, unknown_command)
{
	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 500, "XYZZY");
	cr_expect(h_last_has(&C1, "5.5.1"), "unknown command: %s", C1.last);
	h_expect(&C1, 500, "MAILX FROM:<a@localhost>");
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, bad_sequence)
{
	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	/* RFC 5321 4.1.4: a transaction needs HELO/EHLO first. */
	h_expect(&C1, 503, "MAIL FROM:<a@localhost>");
	cr_expect(h_last_has(&C1, "5.5.1"), "%s", C1.last);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 503, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 503, "DATA");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 503, "MAIL FROM:<a@localhost>");
	cr_expect(h_last_has(&C1, "5.5.1"), "nested MAIL: %s", C1.last);
	h_expect(&C1, 503, "DATA");
	h_expect(&C1, 250, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 354, "DATA");
	h_sendf(&C1, "Subject: seq\r\n\r\nbody\r\n.\r\n");
	h_expect_reply(&C1, 250, "end of data");
	/* The transaction is over: RCPT needs a new MAIL. */
	h_expect(&C1, 503, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, bad_syntax)
{
	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 501, "EHLO");
	h_expect(&C1, 501, "HELO");
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 501, "MAIL FROM:<a@localhost");
	h_expect(&C1, 501, "MAIL TO:<a@localhost>");
	h_expect(&C1, 501, "MAIL FROM:<a@@localhost>");
	h_expect(&C1, 501, "MAIL FROM:<a@localhost> SIZE=abc");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 501, "RCPT TO:<>");
	h_expect(&C1, 501, "RCPT TO:<bob@local..host>");
	h_expect(&C1, 501, "RCPT TO:");
	int code = h_cmd(&C1, "RCPT TO:<bob@localhost> XFOO=BAR");
	cr_expect(code == 555 || code == 501, "unknown RCPT parameter: %d %s", code, C1.last);
	/* Still in the transaction, and it still works. */
	h_expect(&C1, 250, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 250, "RSET");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, vrfy_noop_rset)
{
	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 252, "VRFY bob@localhost");
	cr_expect(h_last_has(&C1, "2."), "VRFY without enhanced code: %s", C1.last);
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 250, "NOOP anything");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 250, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 250, "RSET");
	/* RSET cleared sender and recipients (RFC 5321 4.1.1.5). */
	h_expect(&C1, 503, "DATA");
	h_expect(&C1, 503, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 250, "RSET");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	cr_expect_eq(h_spool_total(&D) + h_spool_count(&D, "incoming"), 0,
	             "an aborted transaction left a spool file");
	h_daemon_free(&D);
}

Test(smtp, quit_inside_transaction_queues_nothing)
{
	start();
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@example.test>");
	h_expect(&C1, 250, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 354, "DATA");
	h_sendf(&C1, "Subject: gone\r\n\r\nhalf a mess");
	h_close(&C1); /* the client vanishes in the middle of the data */
	h_open(&C2, "127.0.0.2", D.port);
	h_expect(&C2, 250, "EHLO client.example.test");
	h_expect(&C2, 250, "MAIL FROM:<a@example.test>");
	h_expect(&C2, 250, "RCPT TO:<bob@localhost>");
	h_expect(&C2, 221, "QUIT");
	cr_expect(h_wait_closed(&C2, 3000), "no close after 221");
	h_close(&C2);
	/* Had it been queued, it would be in a queue or, soon, delivered. */
	char bob[H_PATH];
	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_expect_eq(h_maildir_wait(bob, 1, 1500), 0,
	             "a message without end of data was delivered");
	cr_expect_eq(h_spool_total(&D), 0, "a message without end of data was queued");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, command_line_length)
{
	char line[20100];

	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	/* 512 octets with CR LF is the limit (RFC 5321 4.5.3.1.4). */
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	line[510] = '\0';
	int code = h_cmd(&C1, "%s", line);
	cr_expect(code != 500, "a 512-octet command line was refused as too long: %s", C1.last);
	line[510] = 'x';
	line[511] = '\0';
	h_expect(&C1, 500, "%s", line);
	cr_expect(h_last_has(&C1, "5.5.2"), "513 octets: %s", C1.last);
	h_expect(&C1, 250, "NOOP");

	/* A very long line gets one reply, and the session stays in step. */
	memset(line, 'y', 20000);
	memcpy(line, "MAIL FROM:<", 11);
	memcpy(line + 20000, "\r\n", 2);
	cr_assert_eq(h_send(&C1, line, 20002), 0);
	h_expect_reply(&C1, 500, "20000-octet line");
	cr_expect(h_last_has(&C1, "5.5.2"), "%s", C1.last);
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, nul_bytes_in_commands)
{
	static const char nul1[] = "NOOP\0hidden\r\n";
	static const char nul2[] = "EHLO client\0.example.test\r\n";
	static const char nul3[] = "MAIL FROM:<a\0b@localhost>\r\n";
	static const char nul4[] = "RCPT TO:<bob@localhost>\0\r\n";
	int code;

	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	cr_assert_eq(h_send(&C1, nul1, sizeof(nul1) - 1), 0);
	code = h_reply(&C1, 5000);
	cr_expect(code >= 500 && code < 600, "NUL in NOOP: %d %s", code, C1.last);
	cr_assert_eq(h_send(&C1, nul2, sizeof(nul2) - 1), 0);
	code = h_reply(&C1, 5000);
	cr_expect(code >= 500 && code < 600, "NUL in EHLO: %d %s", code, C1.last);
	h_expect(&C1, 250, "EHLO client.example.test");
	cr_assert_eq(h_send(&C1, nul3, sizeof(nul3) - 1), 0);
	code = h_reply(&C1, 5000);
	cr_expect(code >= 500 && code < 600, "NUL in MAIL: %d %s", code, C1.last);
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	cr_assert_eq(h_send(&C1, nul4, sizeof(nul4) - 1), 0);
	code = h_reply(&C1, 5000);
	cr_expect(code >= 500 && code < 600, "NUL after RCPT: %d %s", code, C1.last);
	h_expect(&C1, 503, "DATA");
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, max_errors_ends_session)
{
	int at = 0, code = 0;

	start();
	h_set(&D, "max_errors", "3");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	for (int i = 1; i <= 8 && !at; i++) {
		code = h_cmd(&C1, "BOGUS%d", i);
		if (code == 421) {
			at = i;
			break;
		}
		cr_assert_eq(code, 500, "error %d: expected 500 or 421, got %d: %s", i, code,
		             C1.last);
		/* The 421 may follow the 500 at once, unasked. */
		code = h_reply(&C1, 300);
		cr_assert(code == -1 || code == 421, "after error %d: unexpected %d: %s", i, code,
		          C1.last);
		if (code == 421)
			at = i;
	}
	cr_expect(at >= 3 && at <= 4, "421 came after %d errors with max_errors = 3", at);
	cr_expect(h_last_has(&C1, "4.7.0"), "421: %s", C1.last);
	cr_expect(h_wait_closed(&C1, 3000), "no close after 421");
	h_close(&C1);
	/* Other sessions are not affected. */
	h_open(&C2, "127.0.0.2", D.port);
	h_expect(&C2, 250, "NOOP");
	h_expect(&C2, 221, "QUIT");
	h_close(&C2);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, command_timeout)
{
	long long t0;
	int code;

	start();
	h_set(&D, "command_timeout", "2s");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	t0 = h_now_ms();
	code = h_reply(&C1, 10000);
	cr_expect_eq(code, 421, "idle client: expected 421, got %d: %s", code, C1.last);
	cr_expect(h_last_has(&C1, "4.4.2"), "timeout reply: %s", C1.last);
	cr_expect(h_now_ms() - t0 >= 1500 && h_now_ms() - t0 <= 6000,
	          "timeout after %lld ms with command_timeout = 2s", h_now_ms() - t0);
	cr_expect(h_wait_closed(&C1, 3000), "no close after the timeout");
	h_close(&C1);

	/* A slow but active client is not cut off: each command restarts
	 * the clock. */
	h_open(&C2, "127.0.0.2", D.port);
	for (int i = 0; i < 3; i++) {
		h_sleep_ms(1200);
		h_expect(&C2, 250, "NOOP");
	}
	h_expect(&C2, 221, "QUIT");
	h_close(&C2);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, connection_limits)
{
	int code, ok = 0;

	start();
	h_set(&D, "max_connections_per_client", "2");
	h_set(&D, "max_connections", "4");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_open(&C2, "127.0.0.2", D.port);
	cr_assert_eq(h_connect(&C3, "127.0.0.2", D.port), 0);
	code = h_reply(&C3, 5000);
	cr_expect_eq(code, 421, "third connection from one client: %d %s", code, C3.last);
	cr_expect(h_last_has(&C3, "4.7.0"), "%s", C3.last);
	cr_expect(h_wait_closed(&C3, 3000), "refused connection not closed");
	h_close(&C3);

	/* Other clients still get in, up to max_connections in all. */
	h_open(&C4, "127.0.0.3", D.port);
	h_open(&C5, "127.0.0.4", D.port);
	cr_assert_eq(h_connect(&C6, "127.0.0.5", D.port), 0);
	code = h_reply(&C6, 5000);
	cr_expect_eq(code, 421, "connection over max_connections: %d %s", code, C6.last);
	cr_expect(h_last_has(&C6, "4.7.0"), "%s", C6.last);
	h_close(&C6);

	/* A slot frees up when a session ends. */
	h_expect(&C1, 221, "QUIT");
	h_wait_closed(&C1, 3000);
	h_close(&C1);
	for (int i = 0; i < 30 && !ok; i++) {
		cr_assert_eq(h_connect(&C3, "127.0.0.2", D.port), 0);
		code = h_reply(&C3, 5000);
		if (code == 220)
			ok = 1;
		else
			h_sleep_ms(100);
		if (!ok)
			h_close(&C3);
	}
	cr_expect(ok, "no new connection accepted after one ended");
	if (ok) {
		h_expect(&C3, 221, "QUIT");
		h_close(&C3);
	}
	h_close(&C2);
	h_close(&C4);
	h_close(&C5);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* The whole transaction in one write: every reply comes, in order. */
Test(smtp, pipelining_one_write)
{
	static const int want[] = {250, 250, 501, 250, 354, 250, 221};
	char bob[H_PATH], carol[H_PATH];
	size_t mlen, slen;
	char *msg = h_make_message("pipelined", "pipe-1", &mlen);
	char *stuffed = h_dotstuff(msg, mlen, &slen);
	char *batch = NULL;
	size_t blen;
	FILE *fp = open_memstream(&batch, &blen);

	fputs("MAIL FROM:<a@localhost>\r\nRCPT TO:<bob@localhost>\r\n"
	      "RCPT TO:<bad@@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n",
	      fp);
	fwrite(stuffed, 1, slen, fp);
	fputs("QUIT\r\n", fp);
	fclose(fp);

	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	cr_assert(ehlo_has(&C1, "PIPELINING"));
	cr_assert_eq(h_send(&C1, batch, blen), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int code = h_reply(&C1, 10000);

		cr_assert_eq(code, want[i], "pipelined reply %zu: expected %d, got %d: %s", i + 1,
		             want[i], code, C1.last);
	}
	cr_expect(h_wait_closed(&C1, 3000), "no close after QUIT");
	h_close(&C1);

	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	h_maildir(&D, "example.test", "carol", carol, sizeof(carol));
	cr_expect_eq(h_maildir_wait(bob, 1, 10000), 1);
	cr_expect_eq(h_maildir_wait(carol, 1, 10000), 1);
	char **files;
	int n = h_maildir_list(bob, &files);
	if (n == 1) {
		const char *why = h_check_delivered(files[0], msg, mlen);
		cr_expect(why == NULL, "%s", why);
	}
	h_free_list(files, n);
	free(msg);
	free(stuffed);
	free(batch);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* RFC 2920 as clients really do it: the envelope in one group, the
 * content after 354 followed at once by the next transaction's commands. */
Test(smtp, pipelining_two_transactions)
{
	char bob[H_PATH];
	size_t mlen, slen, m2len, s2len;
	char *msg = h_make_message("first", "pipe-2a", &mlen);
	char *msg2 = h_make_message("second", "pipe-2b", &m2len);
	char *stuffed = h_dotstuff(msg, mlen, &slen);
	char *stuffed2 = h_dotstuff(msg2, m2len, &s2len);
	static const char env[] = "MAIL FROM:<a@localhost>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n";

	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	cr_assert_eq(h_send(&C1, env, sizeof(env) - 1), 0);
	h_expect_reply(&C1, 250, "MAIL");
	h_expect_reply(&C1, 250, "RCPT");
	h_expect_reply(&C1, 354, "DATA");
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	cr_assert_eq(h_send(&C1, env, sizeof(env) - 1), 0);
	h_expect_reply(&C1, 250, "end of first data");
	h_expect_reply(&C1, 250, "second MAIL");
	h_expect_reply(&C1, 250, "second RCPT");
	h_expect_reply(&C1, 354, "second DATA");
	cr_assert_eq(h_send(&C1, stuffed2, s2len), 0);
	cr_assert_eq(h_send(&C1, "QUIT\r\n", 6), 0);
	h_expect_reply(&C1, 250, "end of second data");
	h_expect_reply(&C1, 221, "QUIT");
	h_close(&C1);

	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_expect_eq(h_maildir_wait(bob, 2, 10000), 2);
	char **files;
	int n = h_maildir_list(bob, &files), first = 0, second = 0;
	for (int i = 0; i < n; i++) {
		if (h_check_delivered(files[i], msg, mlen) == NULL)
			first++;
		else if (h_check_delivered(files[i], msg2, m2len) == NULL)
			second++;
	}
	cr_expect(first == 1 && second == 1, "Maildir holds %d x first, %d x second", first,
	          second);
	h_free_list(files, n);
	free(msg);
	free(msg2);
	free(stuffed);
	free(stuffed2);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, non_smtp_client)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: mx.example.test\r\n"
	                           "User-Agent: test\r\n\r\n";
	int code;

	start();
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	cr_assert_eq(h_send(&C1, http, sizeof(http) - 1), 0);
	code = h_reply(&C1, 5000);
	cr_expect(code >= 500 && code < 600, "HTTP request: expected 5xx, got %d: %s", code,
	          C1.last);
	/* Whatever else comes before the close, nothing is a success. */
	for (int i = 0; i < 5 && code > 0; i++) {
		code = h_reply(&C1, 3000);
		cr_expect(code <= 0 || code >= 400, "success reply to HTTP input: %s", C1.last);
		if (code == -1)
			break;
	}
	cr_expect(h_wait_closed(&C1, 5000), "the session did not end after a non-SMTP command");
	h_close(&C1);
	h_open(&C2, "127.0.0.2", D.port);
	h_expect(&C2, 221, "QUIT");
	h_close(&C2);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, size_parameter)
{
	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 552, "MAIL FROM:<a@localhost> SIZE=20000000");
	cr_expect(h_last_has(&C1, "5.3.4"), "%s", C1.last);
	/* Exactly the limit is fine (RFC 1870 section 6). */
	h_expect(&C1, 250, "MAIL FROM:<a@localhost> SIZE=10240000");
	h_expect(&C1, 250, "RSET");
	h_expect(&C1, 552, "MAIL FROM:<a@localhost> SIZE=10240001");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost> SIZE=1000 BODY=8BITMIME");
	h_expect(&C1, 250, "RSET");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, max_recipients)
{
	char m[H_PATH];

	start();
	h_set(&D, "max_recipients", "3");
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 250, "RCPT TO:<r1@localhost>");
	h_expect(&C1, 250, "RCPT TO:<r2@localhost>");
	h_expect(&C1, 250, "RCPT TO:<r3@localhost>");
	h_expect(&C1, 452, "RCPT TO:<r4@localhost>");
	cr_expect(h_last_has(&C1, "4.5.3"), "%s", C1.last);
	h_expect(&C1, 354, "DATA");
	h_sendf(&C1, "Subject: three\r\n\r\nbody\r\n.\r\n");
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_maildir(&D, "localhost", "r3", m, sizeof(m));
	cr_expect_eq(h_maildir_wait(m, 1, 10000), 1, "r3 got no mail");
	h_maildir(&D, "localhost", "r4", m, sizeof(m));
	h_spool_wait_idle(&D, 5000);
	cr_expect_eq(h_maildir_count(m), 0, "the refused recipient got mail");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* RFC 5321 2.4: verbs and the FROM:/TO: keywords are case-insensitive. */
Test(smtp, commands_case_insensitive)
{
	char m[H_PATH];

	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "ehlo client.example.test");
	h_expect(&C1, 250, "mail from:<a@localhost>");
	h_expect(&C1, 250, "RcPt To:<lower@localhost>");
	h_expect(&C1, 354, "data");
	h_sendf(&C1, "Subject: lower\r\n\r\nbody\r\n.\r\n");
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 250, "noop");
	h_expect(&C1, 250, "rset");
	h_expect(&C1, 221, "quit");
	h_close(&C1);
	h_maildir(&D, "localhost", "lower", m, sizeof(m));
	cr_expect_eq(h_maildir_wait(m, 1, 10000), 1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A client that stops sending in the middle of the data is cut off after
 * data_timeout, and the half message is not queued. */
Test(smtp, data_timeout)
{
	char m[H_PATH];
	long long t0;
	int code;

	start();
	h_set(&D, "data_timeout", "2s");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@example.net>");
	h_expect(&C1, 250, "RCPT TO:<slow@localhost>");
	h_expect(&C1, 354, "DATA");
	h_sendf(&C1, "Subject: slow\r\n\r\nthe first half");
	t0 = h_now_ms();
	code = h_reply(&C1, 10000);
	cr_expect_eq(code, 421, "stalled data: expected 421, got %d: %s", code, C1.last);
	cr_expect(h_now_ms() - t0 >= 1500 && h_now_ms() - t0 <= 6000,
	          "data timeout after %lld ms with data_timeout = 2s", h_now_ms() - t0);
	cr_expect(h_wait_closed(&C1, 3000), "no close after the data timeout");
	h_close(&C1);
	h_maildir(&D, "localhost", "slow", m, sizeof(m));
	cr_expect_eq(h_maildir_wait(m, 1, 1000), 0, "the half message was delivered");
	cr_expect_eq(h_spool_total(&D) + h_spool_count(&D, "incoming"), 0,
	             "the half message is in the spool");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with CR LF
 * (line_length_limit); a longer one gets the message refused, and the
 * session stays in step. */
Test(smtp, data_line_too_long)
{
	char line[1100], m[H_PATH];

	start();
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 250, "RCPT TO:<long@localhost>");
	h_expect(&C1, 354, "DATA");
	memset(line, 'z', 999);
	line[999] = '\0';
	h_sendf(&C1, "Subject: long\r\n\r\n%s\r\n.\r\n", line);
	int code = h_reply(&C1, 10000);
	cr_expect(code >= 500 && code < 600, "a 1001-octet line: expected 5xx, got %d: %s", code,
	          C1.last);
	/* 998 octets plus CR LF is the longest legal line. */
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 250, "RCPT TO:<long@localhost>");
	h_expect(&C1, 354, "DATA");
	line[998] = '\0';
	h_sendf(&C1, "Subject: long\r\n\r\n%s\r\n.\r\n", line);
	h_expect_reply(&C1, 250, "a 1000-octet line");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_maildir(&D, "localhost", "long", m, sizeof(m));
	cr_expect_eq(h_maildir_wait(m, 1, 10000), 1);
	h_spool_wait_idle(&D, 5000);
	cr_expect_eq(h_maildir_count(m), 1, "the refused message was delivered too");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A TLS ClientHello on the plain port is not SMTP either. */
Test(smtp, tls_on_plain_port)
{
	static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00,
	                                      0x2b, 0x03, 0x03, 0x00, 0x01, 0x02, 0x03, 0x04};
	int code;

	start();
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	cr_assert_eq(h_send(&C1, hello, sizeof(hello)), 0);
	code = h_reply(&C1, 5000);
	cr_expect(code == 0 || (code >= 400 && code < 600),
	          "TLS record on the plain port: got %d: %s", code, C1.last);
	cr_expect(h_wait_closed(&C1, 5000), "the session did not end after a TLS record");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Hundreds of sessions at once from several clients, all served. */
#define MANY 300
static struct h_conn many[MANY];

Test(smtp, many_concurrent_sessions)
{
	char src[32];
	int greeted = 0, quit = 0;

	start();
	h_daemon_start(&D);
	for (int i = 0; i < MANY; i++) {
		/* 30 per source address, under max_connections_per_client. */
		snprintf(src, sizeof(src), "127.0.1.%d", 10 + i / 30);
		cr_assert_eq(h_connect(&many[i], src, D.port), 0, "connect %d: %s", i,
		             strerror(errno));
	}
	for (int i = 0; i < MANY; i++)
		greeted += h_reply(&many[i], 10000) == 220;
	cr_expect_eq(greeted, MANY, "only %d of %d sessions were greeted", greeted, MANY);
	for (int i = 0; i < MANY; i++)
		h_send(&many[i], "NOOP\r\nQUIT\r\n", 12);
	for (int i = 0; i < MANY; i++) {
		if (h_reply(&many[i], 10000) == 250 && h_reply(&many[i], 10000) == 221)
			quit++;
		h_close(&many[i]);
	}
	cr_expect_eq(quit, MANY, "only %d of %d sessions ended normally", quit, MANY);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* The default: a local user exists when the recipients table lists it or
 * its Maildir exists; a dictionary attack gets 550 5.1.1 and makes no
 * directory. */
Test(smtp, unknown_local_users_refused)
{
	char md[H_PATH], path[H_PATH + 16], table[H_PATH + 16];

	start();
	h_set(&D, "maildir_create", "no");
	h_maildir(&D, "localhost", "alice", md, sizeof(md));
	snprintf(path, sizeof(path), "%s/localhost", D.mail);
	mkdir(D.mail, 0755);
	mkdir(path, 0755);
	cr_assert_eq(mkdir(md, 0700), 0, "mkdir %s: %s", md, strerror(errno));
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@example.test>");
	h_expect(&C1, 550, "RCPT TO:<nobody1@localhost>");
	cr_expect(h_last_has(&C1, "5.1.1"), "%s", C1.last);
	h_expect(&C1, 550, "RCPT TO:<nobody2@example.test>");
	h_expect(&C1, 250, "RCPT TO:<alice@localhost>");
	h_expect(&C1, 250, "RCPT TO:<postmaster>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_maildir(&D, "localhost", "nobody1", md, sizeof(md));
	struct stat st;
	cr_expect(stat(md, &st) != 0, "a Maildir was made for an unknown user");
	h_daemon_stop(&D);
	h_daemon_free(&D);

	/* A user the recipients table lists exists without a Maildir. */
	start();
	h_set(&D, "maildir_create", "no");
	snprintf(table, sizeof(table), "%s/recipients", D.dir);
	cr_assert_eq(h_write_file(table, "carol@localhost\n", 16, 0644), 0);
	h_set(&D, "recipients", "%s", table);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@example.test>");
	h_expect(&C1, 250, "RCPT TO:<carol@localhost>");
	h_expect(&C1, 550, "RCPT TO:<dave@localhost>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* %, ! and a quoted @ in a local part of our domains are routes to other
 * hosts for some next hops: refused unless allowed. */
Test(smtp, routing_characters_refused)
{
	static const char *const routed[] = {"a%b.example@localhost", "host!user@example.test",
	                                     "\"u@elsewhere.example\"@localhost"};

	start();
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@example.test>");
	for (size_t i = 0; i < sizeof(routed) / sizeof(routed[0]); i++) {
		h_expect(&C1, 550, "RCPT TO:<%s>", routed[i]);
		cr_expect(h_last_has(&C1, "5.7.1"), "%s", C1.last);
	}
	h_expect(&C1, 250, "RCPT TO:<plain@localhost>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);

	start();
	h_set(&D, "allow_routing_characters", "yes");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@example.test>");
	for (size_t i = 0; i < sizeof(routed) / sizeof(routed[0]); i++)
		h_expect(&C1, 250, "RCPT TO:<%s>", routed[i]);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Slot holders (slots.c). Each client below keeps a session busy in a way
 * that restarts the per-command timeout, and must still lose its slot. */

/* How long until the server closes c (or gives up after limit_ms). */
static long long ms_until_closed(struct h_conn *c, int limit_ms)
{
	long long t0 = h_now_ms();
	h_wait_closed(c, limit_ms);
	return h_now_ms() - t0;
}

Test(smtp, junk_command_limit)
{
	start();
	h_set(&D, "junk_command_limit", "4");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 250, "RSET");
	h_expect(&C1, 252, "VRFY bob@localhost");
	h_expect(&C1, 214, "HELP");
	int code = h_cmd(&C1, "NOOP");
	cr_expect_eq(code, 421, "fifth junk command: %d %s", code, C1.last);
	cr_expect(h_last_has(&C1, "4.7.0"), "%s", C1.last);
	cr_expect(h_wait_closed(&C1, 3000), "no close after the junk limit");
	h_close(&C1);
	/* An accepted message starts a new count. */
	h_open(&C2, "127.0.0.2", D.port);
	h_expect(&C2, 250, "EHLO client.example.test");
	for (int i = 0; i < 3; i++)
		h_expect(&C2, 250, "NOOP");
	const char *rcpts[] = {"u@localhost", NULL};
	cr_expect_eq(h_transaction(&C2, NULL, "a@localhost", rcpts, "Subject: x\r\n\r\nx\r\n", 17),
	             250);
	for (int i = 0; i < 4; i++)
		h_expect(&C2, 250, "NOOP");
	h_expect(&C2, 221, "QUIT");
	h_close(&C2);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, session_time_limit)
{
	start();
	h_set(&D, "session_time_limit", "3s");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	long long t0 = h_now_ms();
	int code = 0;
	for (int i = 0; i < 20 && code != 421; i++) {
		h_sleep_ms(500);
		code = h_cmd(&C1, "MAIL FROM:<a@localhost>");
		if (code == 250)
			code = h_cmd(&C1, "RSET");
		if (code == -1)
			code = h_reply(&C1, 3000);
	}
	cr_expect_eq(code, 421, "a busy session outlived session_time_limit: %s", C1.last);
	cr_expect(h_now_ms() - t0 < 6000, "ended after %lld ms", h_now_ms() - t0);
	cr_expect(h_log_wait(&D, "session_time_limit (3s) reached", 3000));
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, data_min_rate)
{
	start();
	h_set(&D, "data_timeout", "2s");
	h_set(&D, "data_min_rate", "1000");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<a@localhost>");
	h_expect(&C1, 250, "RCPT TO:<u@localhost>");
	h_expect(&C1, 354, "DATA");
	/* One octet every 300 ms: each read comes well within data_timeout. */
	long long t0 = h_now_ms();
	int code = -1;
	for (int i = 0; i < 40 && code == -1; i++) {
		if (h_send(&C1, "x", 1) < 0)
			break;
		code = h_reply(&C1, 300);
	}
	if (code == -1)
		code = h_reply(&C1, 2000);
	cr_expect_eq(code, 421, "a trickle of DATA kept its slot: %d %s", code, C1.last);
	cr_expect(h_now_ms() - t0 < 5000, "ended after %lld ms", h_now_ms() - t0);
	h_close(&C1);
	h_daemon_stop(&D);
	cr_expect_eq(h_spool_total(&D), 0, "the partial message was queued");
	h_daemon_free(&D);
}

/* With max_connections_per_client = 2 (started daemon): two addresses of
 * one network are held, a third of the same network gets 421, an address
 * of another network is another client. */
static void expect_network_limit(const char *a, const char *b, const char *c, const char *other,
                                 const char *net)
{
	h_open(&C1, a, D.port);
	h_open(&C2, b, D.port);
	cr_assert_eq(h_connect(&C3, c, D.port), 0, "connect from %s: %s", c, strerror(errno));
	int code = h_reply(&C3, 5000);
	cr_expect_eq(code, 421, "a third address of the %s: %d %s", net, code, C3.last);
	h_close(&C3);
	h_open(&C4, other, D.port);
	h_expect(&C4, 221, "QUIT");
	h_close(&C4);
	h_close(&C1);
	h_close(&C2);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, per_network_connection_limit)
{
	start();
	h_set(&D, "max_connections_per_client", "2");
	h_set(&D, "connection_limit_v4_prefix", "24");
	h_daemon_start(&D);
	expect_network_limit("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.2", "/24");
}

/* IPv6: a host gets a whole /64, so the /64 is one client
 * (connection_limit_v6_prefix = 64 by default). The addresses live in a
 * network namespace of the test's own. */
Test(smtp, per_network_connection_limit_ipv6)
{
	const char *const cidrs[] = {"2001:db8::2/64", "2001:db8::3/64", "2001:db8::4/64",
	                             "2001:db8:0:1::2/64"};
	if (h_netns_ipv6(cidrs, 4) != 0)
		cr_skip_test("no network namespace with IPv6 addresses (%s): needs root and "
		             "iproute2",
		             strerror(errno));
	start();
	h_set(&D, "max_connections_per_client", "2");
	h_set(&D, "listen", "127.0.0.1:%d [::1]:%d", D.port, D.port);
	h_daemon_start(&D);
	expect_network_limit("2001:db8::2", "2001:db8::3", "2001:db8::4", "2001:db8:0:1::2", "/64");
}

Test(smtp, tls_handshake_timeout)
{
	start();
	h_set(&D, "tls_handshake_timeout", "2s");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 220, "STARTTLS");
	/* No ClientHello follows. */
	long long ms = ms_until_closed(&C1, 10000);
	cr_expect(ms >= 1000 && ms < 5000, "closed after %lld ms with tls_handshake_timeout = 2s",
	          ms);
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smtp, stress_limits)
{
	start();
	h_set(&D, "max_connections", "4");
	h_set(&D, "stress_threshold", "50");
	h_set(&D, "stress_timeout", "2s");
	h_set(&D, "stress_max_connections_per_client", "1");
	h_daemon_start(&D);
	/* Not yet under stress: the per-client limit is the usual one. */
	h_open(&C1, "127.0.0.2", D.port);
	h_open(&C2, "127.0.0.2", D.port);
	/* Two of four slots in use: stress. A client's second connection
	 * is refused, and an idle session is cut off after stress_timeout. */
	cr_assert_eq(h_connect(&C3, "127.0.0.3", D.port), 0);
	cr_expect_eq(h_reply(&C3, 5000), 220);
	cr_assert_eq(h_connect(&C4, "127.0.0.3", D.port), 0);
	int code = h_reply(&C4, 5000);
	cr_expect_eq(code, 421, "second connection under stress: %d %s", code, C4.last);
	h_close(&C4);
	h_expect(&C3, 250, "NOOP");
	code = h_reply(&C3, 6000);
	cr_expect_eq(code, 421, "idle under stress: %d %s", code, C3.last);
	cr_expect(h_last_has(&C3, "4.4.2"), "%s", C3.last);
	h_close(&C3);
	h_close(&C1);
	h_close(&C2);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}
