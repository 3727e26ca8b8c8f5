/*
 * test_fail2ban.c: the fail2ban filter (etc/fail2ban/filter.d/tempomx.conf)
 * against a log the daemon wrote.
 *
 * Clients refused in each way smtpd refuses (relaying denied, non-SMTP
 * input, too many errors, a timing rejection at DATA for talking before
 * the banner) and one client whose mail is accepted talk to a real
 * daemon; its log is then given to Debian's fail2ban-regex in the two
 * forms it takes in production (syslog, and tempomxd -d through the
 * journal). Every refused client must be matched, the accepted one never.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(fail2ban, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;
static struct h_conn C;

/* The daemon's log as syslog would write it (journal = 0) or as the
 * journal hands tempomxd -d lines to fail2ban (journal = 1). */
static void convert_log(const char *out, int journal)
{
	size_t len;
	char *log = h_read_file(D.log, &len);
	cr_assert_not_null(log);
	FILE *fp = fopen(out, "w");
	cr_assert_not_null(fp);
	for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
		/* "Dec  3 13:09:06.349 tempomxd/smtpd[12593]: text" */
		if (strlen(line) < 20 || line[15] != '.')
			continue;
		if (journal)
			fprintf(fp, "%.15s mx tempomxd[1]: %s\n", line, line);
		else
			fprintf(fp, "%.15s mx %s\n", line, line + 20);
	}
	fclose(fp);
	free(log);
}

/* The addresses fail2ban-regex finds in log, one per matched line. */
static char *matched(const char *log)
{
	char dir[H_PATH + 16], cmd[4 * H_PATH], filter[H_PATH];
	snprintf(dir, sizeof(dir), "%s/f2b", D.dir);
	h_srcpath("etc/fail2ban/filter.d/tempomx.conf", filter, sizeof(filter));
	/* The filter includes common.conf, looked for next to it. */
	snprintf(cmd, sizeof(cmd),
	         "mkdir -p '%s' && cp /etc/fail2ban/filter.d/common.conf '%s' '%s/'", dir, filter,
	         dir);
	cr_assert_eq(system(cmd), 0, "%s (is fail2ban installed? scripts/install-deps)", cmd);
	char path[H_PATH + 32];
	snprintf(path, sizeof(path), "%s/tempomx.conf", dir);
	char *argv[] = {"fail2ban-regex", "-o", "ip", (char *)log, path, NULL};
	char *out;
	int rc = h_run(argv, NULL, 0, 30000, &out, NULL);
	cr_assert_eq(rc, 0, "fail2ban-regex: %d\n%s", rc, out);
	return out;
}

Test(fail2ban, refused_clients_match_accepted_do_not)
{
	const char *rcpts[] = {"alice@example.test", NULL};
	size_t len;
	h_daemon_init(&D);
	h_set(&D, "local_domains", "example.test");
	h_set(&D, "max_errors", "2");
	/* The split banner, so that talking early is a pregreet. */
	h_set(&D, "greet_pause", "1s");
	h_daemon_start(&D);

	/* Relaying denied. */
	h_open(&C, "127.0.0.3", D.port);
	h_expect(&C, 250, "EHLO relay.example");
	h_expect(&C, 250, "MAIL FROM:<a@remote.test>");
	h_expect(&C, 554, "RCPT TO:<x@other.test>");
	h_close(&C);
	/* Non-SMTP input. */
	cr_assert_eq(h_connect(&C, "127.0.0.4", D.port), 0);
	h_reply(&C, 5000);
	h_send(&C, "GET / HTTP/1.0\r\n\r\n", 18);
	h_wait_closed(&C, 5000);
	h_close(&C);
	/* Too many errors. */
	h_open(&C, "127.0.0.5", D.port);
	for (int i = 0; i < 4 && !C.eof; i++)
		h_cmd(&C, "FROB %d", i);
	h_wait_closed(&C, 5000);
	h_close(&C);
	/* Talking before the banner: refused at DATA by timing. */
	cr_assert_eq(h_connect(&C, "127.0.0.6", D.port), 0);
	h_send(&C, "EHLO early.example\r\n", 20);
	h_reply(&C, 5000); /* the banner */
	h_reply(&C, 5000); /* the EHLO reply */
	h_expect(&C, 250, "MAIL FROM:<b@remote.test>");
	h_expect(&C, 250, "RCPT TO:<alice@example.test>");
	h_expect(&C, 554, "DATA");
	h_close(&C);
	/* A client whose mail is accepted. */
	char *msg = h_make_message("fine", "f2b-token", &len);
	cr_assert_eq(h_send_mail(D.port, "127.0.0.7", "c@remote.test", rcpts, msg, len), 250);
	free(msg);
	cr_assert(h_log_wait(&D, "disconnect from unknown[127.0.0.7]", 5000));
	h_daemon_stop(&D);

	static const char *const refused[] = {"127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"};
	for (int journal = 0; journal < 2; journal++) {
		char log[H_PATH + 32];
		snprintf(log, sizeof(log), "%s/%s.log", D.dir, journal ? "journal" : "syslog");
		convert_log(log, journal);
		char *out = matched(log);
		for (size_t i = 0; i < 4; i++) {
			char want[32];
			snprintf(want, sizeof(want), "%s\n", refused[i]);
			cr_expect(strstr(out, want) != NULL, "%s log: %s not matched:\n%s",
			          journal ? "journal" : "syslog", refused[i], out);
		}
		cr_expect(strstr(out, "127.0.0.7") == NULL,
		          "%s log: the accepted client matched:\n%s",
		          journal ? "journal" : "syslog", out);
		free(out);
	}
	h_daemon_free(&D);
}
