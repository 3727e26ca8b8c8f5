/*
 * test_pflogsumm.c: Debian's pflogsumm reads tempomx's log as it reads
 * Postfix's.
 *
 * Messages from three senders (one of them with two recipients) and a
 * refused relaying attempt go through a real daemon; its log, in syslog
 * form, is given to "pflogsumm --syslog-name=tempomxd", whose grand
 * totals must match what the test sent: messages received and
 * delivered, the refusal, the senders, and the bytes received (the
 * sizes of the scanner's from= lines, as Postfix's qmgr logs them).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(pflogsumm, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;
static struct h_conn C;

/* The number that starts the line holding needle ("   4   received"
 * in pflogsumm's grand totals), or -1. */
static long number_before(const char *out, const char *needle)
{
	const char *p = strstr(out, needle);
	if (p == NULL)
		return -1;
	const char *bol = p;
	while (bol > out && bol[-1] != '\n')
		bol--;
	return strtol(bol, NULL, 10);
}

static long total(const char *out, const char *what)
{
	char needle[64];
	snprintf(needle, sizeof(needle), "  %s\n", what);
	return number_before(out, needle);
}

Test(pflogsumm, grand_totals_match)
{
	static const char *const one[] = {"alice@example.test", NULL};
	static const char *const two[] = {"alice@example.test", "bob@example.test", NULL};
	static const char *const senders[] = {"s1@a.test", "s2@b.test", "s3@c.test", "s1@a.test"};
	size_t len;
	h_daemon_init(&D);
	h_set(&D, "local_domains", "example.test");
	h_daemon_start(&D);
	for (int i = 0; i < 4; i++) {
		char token[32];
		snprintf(token, sizeof(token), "pflog-%d", i);
		char *msg = h_make_message("pflogsumm", token, &len);
		cr_assert_eq(
		    h_send_mail(D.port, "127.0.0.2", senders[i], i == 3 ? two : one, msg, len),
		    250);
		free(msg);
	}
	h_open(&C, "127.0.0.3", D.port);
	h_expect(&C, 250, "EHLO relay.example");
	h_expect(&C, 250, "MAIL FROM:<x@remote.test>");
	h_expect(&C, 554, "RCPT TO:<y@other.test>");
	h_close(&C);
	char md[H_PATH + 64];
	h_maildir(&D, "example.test", "alice", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 4, 15000), 4);
	h_maildir(&D, "example.test", "bob", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, 15000), 1);
	cr_assert(h_spool_wait_idle(&D, 10000));
	h_daemon_stop(&D);

	/* syslog's form of the -d lines, and the bytes the log reports. */
	char syslog[H_PATH + 16];
	snprintf(syslog, sizeof(syslog), "%s/mail.log", D.dir);
	char *log = h_read_file(D.log, NULL);
	cr_assert_not_null(log);
	FILE *fp = fopen(syslog, "w");
	cr_assert_not_null(fp);
	long bytes = 0;
	int froms = 0;
	for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
		if (strlen(line) < 20 || line[15] != '.')
			continue;
		fprintf(fp, "%.15s mx %s\n", line, line + 20);
		const char *f = strstr(line, "tempomxd/scanner[");
		const char *sz = f ? strstr(f, ", size=") : NULL;
		if (sz != NULL && strstr(f, ": from=<")) {
			bytes += strtol(sz + 7, NULL, 10);
			froms++;
		}
	}
	fclose(fp);
	free(log);
	cr_expect_eq(froms, 4, "%d from= lines from the scanner", froms);

	char *argv[] = {"pflogsumm", "--syslog-name=tempomxd", syslog, NULL};
	char *out;
	int rc = h_run(argv, NULL, 0, 30000, &out, NULL);
	cr_assert_eq(rc, 0, "pflogsumm: %d (is it installed? scripts/install-deps)\n%s", rc, out);
	cr_log_info("pflogsumm:\n%.1500s", out);
	cr_expect_eq(total(out, "received"), 4, "received:\n%s", out);
	cr_expect_eq(total(out, "delivered"), 5, "delivered:\n%s", out);
	cr_expect_eq(total(out, "senders"), 3, "senders:\n%s", out);
	cr_expect_eq(total(out, "bytes received"), bytes, "bytes received (log says %ld):\n%s",
	             bytes, out);
	cr_expect_eq(number_before(out, "  rejected ("), 1, "rejected:\n%s", out);
	free(out);
	h_daemon_free(&D);
}
