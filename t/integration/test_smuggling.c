/*
 * test_smuggling.c: SMTP smuggling and STARTTLS command injection.
 *
 * Smuggling (the 2023 end-of-data attacks): a message whose data holds
 * "LF . LF" (or CR . CR, LF . CR LF, CR LF . LF) followed by a second
 * SMTP transaction. A server that took such a sequence for the end of the
 * data would queue a second, forged message. Only CR LF . CR LF ends the
 * data (RFC 5321 4.1.1.4), so the outcome must be:
 *   bare_lf = normalize: exactly ONE message, holding the
 *     would-be commands as text, with bare CR/LF turned into CR LF;
 *   bare_lf = reject (the default): the message refused with a 5xx and
 *     nothing queued;
 * and in both cases the session stays in step (QUIT gets 221).
 *
 * STARTTLS injection: starttls_inject.py sends "STARTTLS\r\nRSET\r\n..."
 * in one write and checks that nothing pipelined before the handshake is
 * answered after it (RFC 3207 4.2).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(smuggling, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;
static struct h_conn C1;

struct variant {
	const char *name;
	const char *sep; /* the fake end of data */
};

static const struct variant variants[] = {
    {"lf-dot-lf", "\n.\n"},
    {"cr-dot-cr", "\r.\r"},
    {"lf-dot-crlf", "\n.\r\n"},
    {"crlf-dot-lf", "\r\n.\n"},
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

/* The data after 354: a message, the fake end, a smuggled transaction,
 * the real end; then QUIT, all in one write as an attacker would. */
static char *smuggle_payload(const struct variant *v, int idx, size_t *len)
{
	char *p = NULL;
	int n = asprintf(&p,
	                 "From: attacker@example.net\r\n"
	                 "To: target%d@localhost\r\n"
	                 "Subject: harmless %s\r\n"
	                 "\r\n"
	                 "hello%s"
	                 "MAIL FROM:<admin@localhost>\r\n"
	                 "RCPT TO:<victim%d@localhost>\r\n"
	                 "DATA\r\n"
	                 "From: admin@localhost\r\n"
	                 "Subject: smuggled %s\r\n"
	                 "\r\n"
	                 "SMUGGLED-BODY-%d\r\n"
	                 ".\r\n"
	                 "QUIT\r\n",
	                 idx, v->name, v->sep, idx, v->name, idx);

	cr_assert(n > 0);
	*len = (size_t)n;
	return p;
}

/* Send one variant; returns the reply code to the end of data. */
static int send_variant(int idx, const struct variant *v)
{
	size_t len;
	char *payload = smuggle_payload(v, idx, &len);
	int code;

	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<attacker@example.net>");
	h_expect(&C1, 250, "RCPT TO:<target%d@localhost>", idx);
	h_expect(&C1, 354, "DATA");
	cr_assert_eq(h_send(&C1, payload, len), 0);
	code = h_reply(&C1, 10000);
	/* The next reply answers our QUIT: anything else (a 250 to a
	 * smuggled MAIL) means the fake end was taken for the real one. */
	h_expect_reply(&C1, 221, v->name);
	h_close(&C1);
	free(payload);
	return code;
}

static int has_bare_cr_or_lf(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return 1;
		if (s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n'))
			return 1;
	}
	return 0;
}

Test(smuggling, normalize_gives_one_message)
{
	int codes[NVARIANTS];

	h_daemon_init(&D);
	h_set(&D, "bare_lf", "normalize");
	h_daemon_start(&D);
	for (size_t i = 0; i < NVARIANTS; i++) {
		codes[i] = send_variant((int)i, &variants[i]);
		cr_expect_eq(codes[i], 250, "%s: end of data %d", variants[i].name, codes[i]);
	}
	h_spool_wait_idle(&D, 10000);
	for (size_t i = 0; i < NVARIANTS; i++) {
		char target[H_PATH], victim[H_PATH], user[32], needle[64];
		char **files;
		int n;

		snprintf(user, sizeof(user), "target%zu", i);
		h_maildir(&D, "localhost", user, target, sizeof(target));
		snprintf(user, sizeof(user), "victim%zu", i);
		h_maildir(&D, "localhost", user, victim, sizeof(victim));
		h_maildir_wait(target, 1, 10000);
		cr_expect_eq(h_maildir_count(victim), 0, "%s: the smuggled message was delivered",
		             variants[i].name);
		n = h_maildir_list(target, &files);
		cr_expect_eq(n, 1, "%s: %d messages for the target, expected 1", variants[i].name,
		             n);
		if (n >= 1) {
			size_t flen;
			char *f = h_read_file(files[0], &flen);

			cr_assert_not_null(f);
			snprintf(needle, sizeof(needle), "SMUGGLED-BODY-%zu", i);
			cr_expect(h_contains(f, flen, "hello"), "%s: lost the first line",
			          variants[i].name);
			cr_expect(h_contains(f, flen, "MAIL FROM:<admin@localhost>"),
			          "%s: the would-be commands are not in the message",
			          variants[i].name);
			cr_expect(h_contains(f, flen, needle),
			          "%s: lost the text after the fake end", variants[i].name);
			cr_expect(!has_bare_cr_or_lf(f, flen),
			          "%s: bare CR or LF left in the Maildir file", variants[i].name);
			free(f);
		}
		h_free_list(files, n);
	}
	cr_expect_eq(h_spool_total(&D), 0, "mail left in the spool");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smuggling, reject_refuses_and_queues_nothing)
{
	h_daemon_init(&D);
	/* The default; set anyway so the test does not depend on it. */
	h_set(&D, "bare_lf", "reject");
	h_daemon_start(&D);
	for (size_t i = 0; i < NVARIANTS; i++) {
		int code = send_variant((int)i, &variants[i]);

		cr_expect(code >= 500 && code < 600, "%s: end of data %d, expected a 5xx",
		          variants[i].name, code);
	}
	h_sleep_ms(500);
	cr_expect_eq(h_spool_total(&D), 0, "a refused message was queued");
	cr_expect_eq(h_spool_count(&D, "incoming"), 0, "a file was left in incoming/");
	for (size_t i = 0; i < NVARIANTS; i++) {
		char md[H_PATH], user[32];

		snprintf(user, sizeof(user), "target%zu", i);
		h_maildir(&D, "localhost", user, md, sizeof(md));
		cr_expect_eq(h_maildir_count(md), 0, "%s: refused mail delivered",
		             variants[i].name);
		snprintf(user, sizeof(user), "victim%zu", i);
		h_maildir(&D, "localhost", user, md, sizeof(md));
		cr_expect_eq(h_maildir_count(md), 0, "%s: smuggled mail delivered",
		             variants[i].name);
	}
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* In normalize mode a bare LF inside the data becomes CR LF in the
 * Maildir, the real end is still found, and the session goes on. */
Test(smuggling, normalize_keeps_session_in_step)
{
	static const char data[] = "Subject: bare\r\n\r\nline one\nline two\r\n.\r\n";
	char md[H_PATH];

	h_daemon_init(&D);
	h_set(&D, "bare_lf", "normalize");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<a@example.net>");
	h_expect(&C1, 250, "RCPT TO:<bare@localhost>");
	h_expect(&C1, 354, "DATA");
	cr_assert_eq(h_send(&C1, data, sizeof(data) - 1), 0);
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_maildir(&D, "localhost", "bare", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 1, 10000), 1);
	char **files;
	int n = h_maildir_list(md, &files);
	if (n == 1) {
		static const char want[] = "\r\n\r\nline one\r\nline two\r\n";
		size_t flen;
		char *f = h_read_file(files[0], &flen);

		cr_expect(flen >= sizeof(want) - 1 &&
		              memcmp(f + flen - (sizeof(want) - 1), want, sizeof(want) - 1) == 0,
		          "the bare LF was not turned into CR LF:\n%s", f);
		free(f);
	}
	h_free_list(files, n);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(smuggling, starttls_injection)
{
	char script[H_PATH], port[16];
	char *out = NULL;
	int st;

	h_daemon_init(&D);
	h_set(&D, "smtp_tls", "yes");
	h_daemon_start(&D);
	h_srcpath("t/integration/starttls_inject.py", script, sizeof(script));
	snprintf(port, sizeof(port), "%d", D.port);
	char *argv[] = {"/usr/bin/python3", script, port, NULL};
	st = h_run(argv, NULL, 0, 30000, &out, NULL);
	cr_expect_eq(st, 0, "STARTTLS injection check: %s", out);
	cr_log_info("%s", out);
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}
