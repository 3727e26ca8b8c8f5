/*
 * test_verify_smtp.c: recipient verification of a backup MX against its
 * primary (recipient_verify = smtp:[addr]:port). The honest target is a
 * second tempomxd with a recipients table: the backup refuses at RCPT
 * what the primary does not know, relays the rest, and the probes deliver
 * nothing. A scripted SMTP server then pins down the dialogue (EHLO,
 * MAIL FROM:<>, RCPT, RSET; never DATA) and the meaning of each reply
 * code: 250/251 known, 550/551/553 unknown, anything else no answer.
 * Only the relay domains are asked; a primary that is down tempfails, or
 * accepts with recipient_verify_failure = accept.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "outbound.h"

TestSuite(verify_smtp, .init = h_setup, .fini = h_teardown, .timeout = 90);

static struct h_daemon B; /* the backup MX under test */
static struct h_daemon P; /* its primary */

/* The backup: relays relay.test to the primary's port and asks it. */
static void backup_conf(int primary_port)
{
	ob_base_conf(&B);
	h_set(&B, "hostname", "backup.example.test");
	h_set(&B, "relay_domains", "relay.test");
	h_set(&B, "transport", "relay.test=smtp:[127.0.0.1]:%d", primary_port);
	h_set(&B, "recipient_verify", "smtp:[127.0.0.1]:%d", primary_port);
}

static void finish(struct h_daemon *d)
{
	h_daemon_stop(d);
	h_check_sanitizers(d);
	h_daemon_free(d);
}

Test(verify_smtp, backup_asks_a_primary_tempomxd)
{
	char table[H_PATH + 32], md[H_PATH + 64];
	ob_base_conf(&P);
	h_set(&P, "local_domains", "relay.test");
	snprintf(table, sizeof(table), "%s/recipients", P.dir);
	static const char users[] = "alice@relay.test\nbob@relay.test\n";
	cr_assert_eq(h_write_file(table, users, sizeof(users) - 1, 0644), 0);
	h_set(&P, "recipients", "%s", table);
	h_daemon_start(&P);
	backup_conf(P.port);
	h_daemon_start(&B);

	struct h_conn c;
	h_open(&c, "127.0.0.2", B.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 250, "RCPT TO:<alice@relay.test>");
	h_expect(&c, 550, "RCPT TO:<nobody@relay.test>");
	cr_expect(h_last_has(&c, "550 5.1.1 <nobody@relay.test>"), "reply: %s", c.last);
	/* The second time from the cache. */
	h_expect(&c, 550, "RCPT TO:<nobody@relay.test>");
	h_expect(&c, 250, "RSET");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_wait(&B, "verify: reject: RCPT from unknown[127.0.0.2]", WAIT_MS));
	cr_expect(h_log_has(&B, "to=<nobody@relay.test>: smtp:[127.0.0.1]"),
	          "the log line does not name the recipient and the primary");
	cr_expect(h_log_has(&B, "said: 550 5.1.1"), "the log line lacks the primary's reply");
	cr_expect(h_log_has(&B, "(cached)"), "the second question was asked again");
	cr_expect_eq(h_spool_total(&B), 0, "the backup queued something");

	/* A known recipient's mail is relayed to the primary, and only that
	 * message arrives: the questions delivered nothing. */
	size_t len;
	char *msg = h_make_message("via the backup", "verify-smtp-1", &len);
	const char *rcpts[] = {"bob@relay.test", NULL};
	cr_expect_eq(h_send_mail(B.port, "127.0.0.2", "someone@remote.test", rcpts, msg, len), 250);
	h_maildir(&P, "relay.test", "bob", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 1, WAIT_MS), 1, "bob got nothing through the backup");
	h_maildir(&P, "relay.test", "alice", md, sizeof(md));
	cr_expect_eq(h_maildir_count(md), 0, "the question about alice delivered a message");
	free(msg);
	finish(&B);
	finish(&P);
}

/* A scripted primary: answers RCPT by the local part's first letters
 * ("c250" gets 250, "c553" gets 553...), and writes every command it gets
 * to log, one per line. No PIPELINING: one command at a time. */
static void script_conn(int fd, FILE *log)
{
	char buf[4096];
	size_t len = 0;
	static const char greet[] = "220 primary ESMTP\r\n";
	if (write(fd, greet, sizeof(greet) - 1) < 0)
		return;
	for (;;) {
		char *nl = memchr(buf, '\n', len);
		if (nl == NULL) {
			if (len == sizeof(buf))
				return;
			ssize_t n = read(fd, buf + len, sizeof(buf) - len);
			if (n <= 0)
				return;
			len += (size_t)n;
			continue;
		}
		*nl = '\0';
		if (nl > buf && nl[-1] == '\r')
			nl[-1] = '\0';
		fprintf(log, "%s\n", buf);
		fflush(log);
		char r[128] = "250 2.0.0 ok\r\n";
		const char *lt = strchr(buf, '<');
		if (strncmp(buf, "EHLO", 4) == 0)
			snprintf(r, sizeof(r), "250-primary\r\n250 8BITMIME\r\n");
		else if (strncmp(buf, "RCPT", 4) == 0 && lt && lt[1] == 'c')
			snprintf(r, sizeof(r), "%.3s %c.0.0 answer\r\n", lt + 2, lt[2]);
		else if (strncmp(buf, "DATA", 4) == 0)
			snprintf(r, sizeof(r), "354 go on\r\n");
		else if (strncmp(buf, "QUIT", 4) == 0)
			snprintf(r, sizeof(r), "221 2.0.0 bye\r\n");
		if (write(fd, r, strlen(r)) < 0)
			return;
		size_t used = (size_t)(nl - buf) + 1;
		memmove(buf, buf + used, len - used);
		len -= used;
	}
}

static pid_t script_start(int *port, const char *logpath)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(lfd, 16), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		alarm(60);
		FILE *log = fopen(logpath, "w");
		if (log == NULL)
			_exit(1);
		for (int n = 0; n < 16; n++) {
			int fd = accept(lfd, NULL, NULL);
			if (fd < 0)
				_exit(1);
			script_conn(fd, log);
			close(fd);
		}
		_exit(0);
	}
	close(lfd);
	h_track(pid);
	return pid;
}

Test(verify_smtp, reply_codes_and_dialogue)
{
	int port;
	char logpath[64];
	snprintf(logpath, sizeof(logpath), "/tmp/tmx-itest-primary.%d.log", (int)getpid());
	pid_t primary = script_start(&port, logpath);
	backup_conf(port);
	h_daemon_start(&B);
	static const struct {
		const char *local;
		int want;
	} cases[] = {
	    {"c250", 250}, {"c251", 250}, {"c550", 550}, {"c551", 550}, {"c553", 550},
	    {"c552", 451}, {"c554", 451}, {"c450", 451}, {"c421", 451},
	};
	struct h_conn c;
	h_open(&c, "127.0.0.2", B.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		h_expect(&c, cases[i].want, "RCPT TO:<%s@relay.test>", cases[i].local);
	/* A local domain is the mail store's business, never the primary's. */
	h_expect(&c, 250, "RCPT TO:<somebody@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_has(&B, "RCPT TO: 552 5.0.0 answer; tempfailed"),
	          "a 552 was not taken as no answer");
	finish(&B);
	kill(primary, SIGTERM);
	waitpid(primary, NULL, 0);
	h_untrack(primary);

	size_t len;
	char *log = h_read_file(logpath, &len);
	cr_assert_not_null(log);
	cr_expect(h_contains(log, len, "EHLO backup.example.test"), "no EHLO: %s", log);
	cr_expect_eq(h_count(log, len, "MAIL FROM:<>\n"), h_count(log, len, "RCPT TO:"),
	             "not one MAIL FROM:<> per question: %s", log);
	cr_expect_eq(h_count(log, len, "RCPT TO:"), 9, "%s", log);
	cr_expect_geq(h_count(log, len, "RSET"), 8, "the questions were not ended: %s", log);
	cr_expect(!h_contains(log, len, "DATA"), "a question went past RCPT: %s", log);
	cr_expect(!h_contains(log, len, "LHLO"), "LMTP spoken to an SMTP server: %s", log);
	cr_expect(!h_contains(log, len, "local.test"), "a local domain was asked: %s", log);
	free(log);
	unlink(logpath);
}

/* Nothing listens where the primary should be: tempfail by default, and
 * with recipient_verify_failure = accept the backup takes the mail, as
 * a backup MX must while its primary is down. */
static void primary_down(const char *failure, int want)
{
	backup_conf(h_free_port());
	if (failure)
		h_set(&B, "recipient_verify_failure", "%s", failure);
	h_daemon_start(&B);
	struct h_conn c;
	h_open(&c, "127.0.0.2", B.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, want, "RCPT TO:<alice@relay.test>");
	h_expect(&c, 250, "RCPT TO:<postmaster@relay.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_has(&B, want == 250 ? "accepted unverified" : "tempfailed"));
	finish(&B);
}

Test(verify_smtp, primary_down_tempfails)
{
	primary_down(NULL, 451);
}

Test(verify_smtp, primary_down_accepts_when_configured)
{
	primary_down("accept", 250);
}

/* smtpd resolves no names: a host name is refused with a warning. */
Test(verify_smtp, host_name_target_tempfails_with_a_warning)
{
	backup_conf(25);
	h_set(&B, "recipient_verify", "smtp:[primary.relay.test]:25");
	h_daemon_start(&B);
	cr_expect(h_log_wait(&B, "the SMTP host must be an IP address", WAIT_MS));
	struct h_conn c;
	h_open(&c, "127.0.0.2", B.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 451, "RCPT TO:<alice@relay.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	finish(&B);
}
