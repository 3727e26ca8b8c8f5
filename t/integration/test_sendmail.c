/*
 * test_sendmail.c: tempomx-sendmail as local programs use it.
 *
 * -t takes the recipients from To, Cc and Bcc and the delivered copies
 * have no Bcc field; a message given while the daemon is stopped waits in
 * the maildrop and is delivered once it starts; a line with a single dot
 * ends the message unless -i; -bs speaks SMTP through the daemon; -bp
 * lists the queue; bad options and missing recipients give one line on
 * stderr and a sysexits status.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(sendmail, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;

#define RUN_MS 20000

static const char *sendmail_path(void)
{
	static char path[H_PATH];
	const char *e = getenv("TMX_BUILDDIR");
	snprintf(path, sizeof(path), "%s/tempomx-sendmail", e && *e ? e : ".");
	return path;
}

/* Run tempomx-sendmail -C conf ARGS... with in on stdin. */
static int run(const char *in, char **out, const char *const *args)
{
	char *argv[16];
	int argc = 0;
	argv[argc++] = (char *)sendmail_path();
	argv[argc++] = "-C";
	argv[argc++] = D.conf;
	for (; *args && argc < 15; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return h_run(argv, in, in ? strlen(in) : 0, RUN_MS, out, NULL);
}

static void local_daemon(void)
{
	h_daemon_init(&D);
	h_set(&D, "local_domains", "example.test");
}

static char *first_mail(const char *user)
{
	char md[H_PATH + 64], **paths;
	h_maildir(&D, "example.test", user, md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, 15000), 1, "nothing for %s", user);
	int n = h_maildir_list(md, &paths);
	char *m = n > 0 ? h_read_file(paths[0], NULL) : NULL;
	h_free_list(paths, n);
	cr_assert_not_null(m);
	return m;
}

Test(sendmail, t_takes_to_cc_bcc_and_removes_bcc)
{
	static const char msg[] = "Subject: report\n"
	                          "To: Alice <alice@example.test>\n"
	                          "Cc: \"Bob, the second\" <bob@example.test>, (none) \n"
	                          "Bcc: carol@example.test,\n"
	                          "\tdave@example.test\n"
	                          "\n"
	                          "the report\n";
	static const char *const args[] = {"-t", "-F", "Cron Daemon", "-f", "cron", NULL};
	char *out;
	local_daemon();
	h_daemon_start(&D);
	int rc = run(msg, &out, args);
	cr_expect_eq(rc, 0, "exit %d: %s", rc, out);
	cr_expect_str_eq(out, "");
	free(out);
	static const char *const users[] = {"alice", "bob", "carol", "dave"};
	for (size_t i = 0; i < 4; i++) {
		char *m = first_mail(users[i]);
		cr_expect(strstr(m, "Bcc:") == NULL && strstr(m, "carol@example.test,") == NULL,
		          "%s's copy shows the Bcc:\n%s", users[i], m);
		cr_expect(strstr(m, "Received: by mx.example.test (tempomx, from userid ") != NULL,
		          "%s", m);
		cr_expect(strstr(m, "From: \"Cron Daemon\" <cron@example.test>\r\n") != NULL, "%s",
		          m);
		cr_expect(strstr(m, "Return-Path: <cron@example.test>") != NULL, "%s", m);
		cr_expect(strstr(m, "Cc: \"Bob, the second\" <bob@example.test>") != NULL, "%s", m);
		cr_expect(strstr(m, "\r\n\r\nthe report\r\n") != NULL, "%s", m);
		free(m);
	}
	cr_expect(h_log_has(&D, ": uid=0 from=<cron@example.test>, accepted into hi"));
	/* The delay counts from the submission, not from 1970. */
	cr_expect(h_log_has(&D, "to=<alice@example.test>, relay=local, delay=0."),
	          "no short delay");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(sendmail, waits_in_the_maildrop_while_the_daemon_is_down)
{
	static const char *const args[] = {"alice", NULL};
	char *out, dir[H_PATH + 16];
	local_daemon();
	h_daemon_start(&D); /* makes the maildrop */
	h_daemon_stop(&D);
	int rc = run("Subject: while down\n\nstill here\n", &out, args);
	cr_expect_eq(rc, 0, "exit %d: %s", rc, out);
	free(out);
	/* The maildrop is next to the spool: one file waits there. */
	snprintf(dir, sizeof(dir), "%s-maildrop", D.spool);
	DIR *d = opendir(dir);
	struct dirent *de;
	int files = 0;
	while (d && (de = readdir(d)) != NULL)
		files += de->d_name[0] != '.';
	if (d)
		closedir(d);
	cr_expect_eq(files, 1, "%d files in %s", files, dir);
	h_daemon_start(&D);
	char *m = first_mail("alice");
	cr_expect(strstr(m, "Subject: while down\r\n") && strstr(m, "\r\n\r\nstill here\r\n"), "%s",
	          m);
	free(m);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(sendmail, a_dot_line_ends_the_message_unless_i)
{
	static const char *const plain[] = {"alice", NULL};
	static const char *const keep[] = {"-oi", "bob", NULL};
	static const char text[] = "Subject: dots\n\nbefore\n.\nafter\n";
	char *out;
	local_daemon();
	h_daemon_start(&D);
	cr_expect_eq(run(text, &out, plain), 0, "%s", out);
	free(out);
	cr_expect_eq(run(text, &out, keep), 0, "%s", out);
	free(out);
	char *m = first_mail("alice");
	cr_expect(strstr(m, "before\r\n") && !strstr(m, "after"), "without -i:\n%s", m);
	free(m);
	m = first_mail("bob");
	cr_expect(strstr(m, "before\r\n.\r\nafter\r\n") != NULL, "with -oi:\n%s", m);
	free(m);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(sendmail, bs_speaks_smtp_and_bp_lists)
{
	static const char *const bs[] = {"-bs", NULL};
	static const char *const bp[] = {"-bp", NULL};
	static const char dialogue[] = "EHLO cron.example.test\r\n"
	                               "MAIL FROM:<cron@example.test>\r\n"
	                               "RCPT TO:<alice@example.test>\r\n"
	                               "DATA\r\n"
	                               "Subject: over -bs\r\n\r\nhello\r\n.\r\n"
	                               "QUIT\r\n";
	char *out;
	local_daemon();
	h_daemon_start(&D);
	int rc = run(dialogue, &out, bs);
	cr_expect_eq(rc, 0, "exit %d", rc);
	cr_expect(strstr(out, "220 ") && strstr(out, "250 2.0.0 Ok: queued as") &&
	              strstr(out, "221 "),
	          "dialogue:\n%s", out);
	free(out);
	char *m = first_mail("alice");
	cr_expect(strstr(m, "Subject: over -bs") != NULL, "%s", m);
	free(m);
	cr_expect(h_spool_wait_idle(&D, 10000));
	rc = run(NULL, &out, bp);
	cr_expect_eq(rc, 0, "-bp: %d %s", rc, out);
	cr_expect_str_eq(out, "Mail queue is empty\n");
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

struct bad_case {
	const char *args[4];
	const char *in;
	int status;
	const char *needle;
};

static const struct bad_case bad_cases[] = {
    {{"-x", "alice"}, "x\n", 64, "unknown option -x"},
    {{"-f"}, NULL, 64, "-f needs a value"},
    {{NULL}, "Subject: none\n\nx\n", 64, "no recipients"},
    {{"-bz"}, NULL, 64, "mode not supported"},
    {{"alice@@example.test"}, "x\n", 65, "bad address"},
    {{"alice@-bad-.test"}, "x\n", 65, "bad address"},
};

Test(sendmail, bad_arguments)
{
	local_daemon();
	h_write_conf(&D);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *b = &bad_cases[i];
		char *out;
		int rc = run(b->in, &out, b->args);
		cr_expect_eq(rc, b->status, "case %zu: exit %d, want %d: %s", i, rc, b->status,
		             out);
		cr_expect(strncmp(out, "tempomx-sendmail: ", 18) == 0 &&
		              h_count(out, strlen(out), "\n") == 1 && strstr(out, b->needle),
		          "case %zu: %s", i, out);
		free(out);
	}
	h_daemon_free(&D);
}
