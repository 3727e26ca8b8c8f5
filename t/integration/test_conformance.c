/*
 * test_conformance.c: replies of the real tempomxd where RFC 5321 leaves
 * a choice or is easy to get subtly wrong, each found by probing the
 * daemon the way an outside conformance or relay battery would: the reply
 * code and its RFC 3463 enhanced code, and whether the session goes on.
 *
 * test_smtp.c holds the basic dialogue; this file holds the corner cases
 * (address literals, mail loops, HELO forms, ...). Clients connect from
 * 127.0.0.2, outside the default mynetworks, unless a test says otherwise.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"

TestSuite(conformance, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;
static struct h_conn C1;

/* Send a command and expect code and enhanced code. */
static void expect_enh(struct h_conn *c, int code, const char *enh, const char *line)
{
	int got = h_cmd(c, "%s", line);

	cr_expect_eq(got, code, "%s: %d %s", line, got, c->last);
	cr_expect(h_last_has(c, enh), "%s: want %s, got %s", line, enh, c->last);
}

/* RFC 5321 4.1.3: an address literal is a valid domain. A sender at one
 * is accepted; a recipient at one is refused by policy (5.7.1) while
 * allow_address_literals is off, never as a syntax error. */
Test(conformance, address_literals_are_policy_not_syntax)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	expect_enh(&C1, 250, "2.1.0", "MAIL FROM:<user@[192.0.2.1]>");
	expect_enh(&C1, 554, "5.7.1", "RCPT TO:<user@[127.0.0.1]>");
	expect_enh(&C1, 554, "5.7.1", "RCPT TO:<user@[IPv6:::1]>");
	expect_enh(&C1, 554, "5.7.1", "RCPT TO:<postmaster@[192.0.2.1]>");
	/* Malformed literals stay syntax errors. */
	expect_enh(&C1, 501, "5.1.3", "RCPT TO:<user@[1.2.3]>");
	expect_enh(&C1, 250, "2.0.0", "RSET");
	expect_enh(&C1, 250, "2.1.0", "MAIL FROM:<user@[IPv6:2001:db8::1]>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect(h_log_has(&D, "user@[127.0.0.1]"), "the refused literal is not logged");
	/* From mynetworks too: literals are off, whoever asks. */
	h_open(&C1, "127.0.0.1", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<user@localhost>");
	expect_enh(&C1, 554, "5.7.1", "RCPT TO:<user@[192.0.2.1]>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* With allow_address_literals, a literal naming the address the client
 * connected to is this host: user@[127.0.0.1] is user@ the first local
 * domain (delivered there, checked against the recipients table); any
 * other literal is relaying. */
Test(conformance, address_literals_allowed)
{
	size_t mlen;
	char *msg = h_make_message("literal", "literal-1", &mlen);
	static const char *const rcpts[] = {"bob@[127.0.0.1]", NULL};
	char table[H_PATH], bob[H_PATH];

	h_daemon_init(&D);
	snprintf(table, sizeof(table), "%s/recipients", D.dir);
	cr_assert_eq(h_write_file(table, "bob@localhost\n", 14, 0644), 0);
	h_set(&D, "allow_address_literals", "yes");
	h_set(&D, "recipients", "%s", table);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<user@example.net>");
	expect_enh(&C1, 250, "2.1.5", "RCPT TO:<bob@[127.0.0.1]>");
	expect_enh(&C1, 550, "5.1.1", "RCPT TO:<nobody@[127.0.0.1]>");
	expect_enh(&C1, 554, "5.7.1", "RCPT TO:<bob@[192.0.2.1]>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect_eq(h_send_mail(D.port, "127.0.0.2", "user@[192.0.2.7]", rcpts, msg, mlen), 250);
	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_expect_eq(h_maildir_wait(bob, 1, 15000), 1,
	             "bob@[127.0.0.1] did not reach bob@localhost");
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A message of n Received: lines, then a subject and a body. */
static char *looping_message(int n, size_t *len)
{
	size_t size = (size_t)n * 80 + 256, off = 0;
	char *m = malloc(size);

	cr_assert_not_null(m);
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(m + off, size - off,
		                        "Received: from hop%d.example.net by hop%d.example.net\r\n",
		                        i, i + 1);
	off += (size_t)snprintf(m + off, size - off, "Subject: loop %d\r\n\r\nbody\r\n", n);
	*len = off;
	return m;
}

/* RFC 5321 6.3: a message that has looped is refused at the end of DATA
 * (554 5.4.6), not accepted and bounced; the session goes on. The limit
 * is max_hops, our own Received: line included. */
Test(conformance, mail_loop_refused_at_data)
{
	static const char *const rcpts[] = {"bob@localhost", NULL};
	size_t len;
	char *msg;

	h_daemon_init(&D);
	h_set(&D, "max_hops", "5");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	msg = looping_message(5, &len);
	int code = h_transaction(&C1, NULL, "user@example.net", rcpts, msg, len);
	free(msg);
	cr_expect_eq(code, 554, "5 Received: + ours > max_hops 5: %d %s", code, C1.last);
	cr_expect(h_last_has(&C1, "5.4.6"), "mail loop reply: %s", C1.last);
	/* Still in step: the next message, one hop less, is taken. */
	msg = looping_message(4, &len);
	code = h_transaction(&C1, NULL, "user@example.net", rcpts, msg, len);
	free(msg);
	cr_expect_eq(code, 250, "4 Received: + ours = max_hops: %d %s", code, C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect(h_log_has(&D, "5.4.6"), "the refused loop is not logged");
	h_spool_wait_idle(&D, 10000);
	cr_expect_eq(h_spool_count(&D, "incoming"), 0, "the refused message left a file");
	char bob[H_PATH];
	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_expect_eq(h_maildir_wait(bob, 1, 10000), 1, "exactly the second message arrives");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* HELO/EHLO: RFC 5321 4.1.1.1 wants a domain or an address literal, but
 * real clients also send a bare IP address or a host name with '_';
 * like common servers we take them (the classifier weighs the form).
 * No argument, or more than one word, is still 501. */
Test(conformance, helo_forms)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO 192.0.2.1");
	h_expect(&C1, 250, "HELO 2001:db8::1");
	h_expect(&C1, 250, "EHLO desktop_7.example.net");
	h_expect(&C1, 250, "EHLO [192.0.2.1]");
	h_expect(&C1, 250, "EHLO host.example.net.");
	expect_enh(&C1, 501, "5.5.4", "EHLO");
	expect_enh(&C1, 501, "5.5.4", "HELO");
	expect_enh(&C1, 501, "5.5.4", "EHLO two words");
	expect_enh(&C1, 501, "5.5.4", "EHLO host!.example");
	/* The session goes on after the errors. */
	h_expect(&C1, 250, "EHLO mta_1.example.net");
	h_expect(&C1, 250, "MAIL FROM:<user@example.net>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* On shutdown an idle session gets 421 4.3.2 and the connection is
 * closed; the refusal is logged with the client like any other. */
Test(conformance, shutdown_421_is_logged)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<user@example.net>");
	cr_assert_eq(kill(D.pid, SIGTERM), 0);
	cr_expect_eq(h_reply(&C1, 10000), 421, "idle session at shutdown: %s", C1.last);
	cr_expect(h_last_has(&C1, "4.3.2"), "shutdown reply: %s", C1.last);
	cr_expect(h_wait_closed(&C1, 10000), "the connection stays open after 421");
	h_close(&C1);
	cr_expect(h_log_wait(&D, "421 4.3.2", 5000), "the 421 is not logged");
	cr_expect(h_log_has(&D, "[127.0.0.2]"), "the log does not name the client");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

struct step {
	const char *line;
	int code;
	const char *enh; /* NULL: no enhanced code expected (RFC 2034) */
};

static void run_steps(struct h_conn *c, const struct step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = h_cmd(c, "%s", steps[i].line);

		cr_expect_eq(got, steps[i].code, "step %zu \"%s\": %d %s", i, steps[i].line, got,
		             c->last);
		if (steps[i].enh)
			cr_expect(strncmp(c->last + 4, steps[i].enh, strlen(steps[i].enh)) == 0,
			          "step %zu \"%s\": want %s, got %s", i, steps[i].line,
			          steps[i].enh, c->last);
	}
}

/* The command battery of an outside conformance suite, state by state:
 * every reply with its code and RFC 3463 enhanced code. */
static const struct step battery[] = {
    /* Before HELO: the commands allowed in any state, and 503 for the
     * transaction. */
    {"NOOP", 250, "2.0.0"},
    {"RSET", 250, "2.0.0"},
    {"VRFY bob", 252, "2.5.2"},
    {"EXPN staff", 502, "5.5.1"},
    {"HELP", 214, "2.0.0"},
    {"HELP MAIL", 214, "2.0.0"},
    {"MAIL FROM:<a@example.net>", 503, "5.5.1"},
    {"RCPT TO:<bob@localhost>", 503, "5.5.1"},
    {"DATA", 503, "5.5.1"},
    /* BDAT (RFC 3030) out of sequence; its chunk (none here) is read
     * all the same. A size then anything but LAST is a syntax error. */
    {"BDAT 0", 503, "5.5.1"},
    {"BDAT 0 LAST", 503, "5.5.1"},
    {"BDAT 0 LAST now", 501, "5.5.4"},
    {"", 500, "5.5.1"},
    {"XYZZY", 500, "5.5.1"},
    {"RSET now", 501, "5.5.4"},
    {"VRFY", 501, "5.5.4"},
    {"ehlo mta.example.net", 250, NULL},
    {"BDAT 0 LAST", 503, "5.5.1"},
    /* MAIL syntax and parameters (RFC 5321 4.1.1.2, RFC 1870, 6152). */
    {"MAIL FROM<a@example.net>", 501, "5.5.4"},
    {"MAIL FROM:a@example.net", 501, "5.1.7"},
    {"MAIL FROM:<a@example.net> FOO=BAR", 555, "5.5.4"},
    {"MAIL FROM:<a@example.net> SMTPUTF8=yes", 501, "5.5.4"},
    {"MAIL FROM:<j\xc3\xb6rg@example.net>", 550, "5.6.7"},
    {"MAIL FROM:<a@example.net> SIZE=99999999999", 552, "5.3.4"},
    {"MAIL FROM:<a@example.net> SIZE=12k", 501, "5.5.4"},
    {"MAIL FROM:<a@example.net> SIZE=1 SIZE=1", 501, "5.5.4"},
    {"MAIL FROM:<a@example.net> BODY=9BIT", 501, "5.5.4"},
    {"MAIL FROM:<a@example.net> BODY=7BIT BODY=7BIT", 501, "5.5.4"},
    /* DSN (RFC 3461 4.3, 4.4): bad values and repeats are syntax errors. */
    {"MAIL FROM:<a@example.net> RET=BODY", 501, "5.5.4"},
    {"MAIL FROM:<a@example.net> RET=FULL RET=FULL", 501, "5.5.4"},
    {"MAIL FROM:<a@example.net> ENVID=a+2z", 501, "5.5.4"},
    {"mail from: <a@example.net>   ", 250, "2.1.0"},
    {"MAIL FROM:<a@example.net>", 503, "5.5.1"},
    {"DATA", 503, "5.5.1"},
    /* RCPT (RFC 5321 4.1.1.3, 4.5.1). */
    {"RCPT TO:<>", 501, "5.1.3"},
    /* DSN (RFC 3461 4.1, 4.2). */
    {"RCPT TO:<bob@localhost> NOTIFY=NEVER,DELAY", 501, "5.5.4"},
    {"RCPT TO:<bob@localhost> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4"},
    {"RCPT TO:<bob@localhost> ORCPT=bob@localhost", 501, "5.5.4"},
    {"RCPT TO:<bob@other.example>", 554, "5.7.1"},
    {"RCPT TO:<postmaster>", 250, "2.1.5"},
    {"rcpt to: <Bob@LocalHost.>", 250, "2.1.5"},
    {"STARTTLS", 503, "5.5.1"},
    {"NOOP", 250, "2.0.0"},
    /* A chunk of the message; then DATA in the same transaction is 503
     * (RFC 3030 2) and the message is dropped, so BDAT LAST finds no
     * transaction. */
    {"BDAT 0", 250, "2.0.0"},
    {"DATA", 503, "5.5.1"},
    {"BDAT 0 LAST", 503, "5.5.1"},
    {"MAIL FROM:<a@example.net>", 250, "2.1.0"},
    {"RCPT TO:<bob@localhost>", 250, "2.1.5"},
    {"BDAT 0", 250, "2.0.0"},
    {"RCPT TO:<postmaster>", 503, "5.5.1"},
    {"MAIL FROM:<a@example.net>", 250, "2.1.0"},
    {"RCPT TO:<bob@localhost>", 250, "2.1.5"},
    /* A second EHLO ends the transaction (RFC 5321 4.1.4). */
    {"EHLO mta.example.net", 250, NULL},
    {"RCPT TO:<bob@localhost>", 503, "5.5.1"},
    {"HELO mta.example.net", 250, NULL},
    /* Extensions exist only after EHLO (RFC 5321 4.1.1.1). */
    {"MAIL FROM:<a@example.net> SIZE=10", 555, "5.5.4"},
    {"MAIL FROM:<a@example.net> BODY=8BITMIME", 555, "5.5.4"},
    {"MAIL FROM:<a@example.net> RET=HDRS", 555, "5.5.4"},
    {"MAIL FROM:<a@example.net> ENVID=x", 555, "5.5.4"},
    {"MAIL FROM:<a@example.net> SMTPUTF8", 555, "5.5.4"},
    {"STARTTLS", 503, "5.5.1"},
    {"MAIL FROM:<>", 250, "2.1.0"},
    {"RCPT TO:<bob@localhost> NOTIFY=SUCCESS", 555, "5.5.4"},
    {"RCPT TO:<bob@localhost>", 250, "2.1.5"},
    /* CHUNKING is offered after EHLO only. */
    {"BDAT 0 LAST", 503, "5.5.1"},
    {"RCPT TO:<bob@localhost>", 503, "5.5.1"},
    {"QUIT now", 501, "5.5.4"},
    {"QUIT", 221, "2.0.0"},
};

Test(conformance, command_battery)
{
	h_daemon_init(&D);
	h_set(&D, "max_errors", "100");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	run_steps(&C1, battery, sizeof(battery) / sizeof(battery[0]));
	cr_expect(h_wait_closed(&C1, 5000), "no close after QUIT");
	h_close(&C1);
	/* Every refusal is in the log with the client and the reply. */
	cr_expect(h_log_has(&D, "reject: MAIL from unknown[127.0.0.2]"), "MAIL refusal not logged");
	cr_expect(h_log_has(&D, "555 5.5.4 Unsupported parameter: FOO"), "555 not logged");
	cr_expect(h_log_has(&D, "to=<bob@other.example>"), "relay refusal not logged");
	cr_expect(h_log_has(&D, "reject: BDAT from unknown[127.0.0.2]"), "BDAT refusal not logged");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* SMTPUTF8 (RFC 6531), the way a conformance battery probes it: the
 * keyword, the parameter (no value, once, after EHLO only), UTF-8 in
 * paths only inside an SMTPUTF8 transaction (550 5.6.7 for MAIL, 553 5.6.7
 * for RCPT, 3.5), malformed UTF-8 as an address syntax error, VRFY with
 * the SMTPUTF8 argument (3.7.4.2) answered as VRFY is, and a transaction
 * that ends with the flag gone (RSET, a new MAIL). */
static const struct step smtputf8_battery[] = {
    {"EHLO mta.example.net", 250, NULL},
    {"MAIL FROM:<j\xc3\xb6rg@example.net> BODY=8BITMIME", 550, "5.6.7"},
    {"MAIL FROM:<a@b\xc3\xbc"
     "cher.example>",
     550, "5.6.7"},
    {"MAIL FROM:<a@example.net> SMTPUTF8 SMTPUTF8", 501, "5.5.4"},
    {"MAIL FROM:<a\xc0\xaf@example.net> SMTPUTF8", 501, "5.1.7"},
    {"MAIL FROM:<a\xed\xa0\x80@example.net> SMTPUTF8", 501, "5.1.7"},
    {"MAIL FROM:<a\xc2\x9b@example.net> SMTPUTF8", 501, "5.1.7"},
    {"MAIL FROM:<a\xf4\x90\x80\x80@example.net> SMTPUTF8", 501, "5.1.7"},
    {"MAIL FROM:<a@example.net>", 250, "2.1.0"},
    {"RCPT TO:<j\xc3\xb6rg@localhost>", 553, "5.6.7"},
    {"RCPT TO:<bob@localhost>", 250, "2.1.5"},
    {"RSET", 250, "2.0.0"},
    {"mail from:<j\xc3\xb6rg@example.net> smtputf8 body=8bitmime", 250, "2.1.0"},
    {"RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@localhost>", 250, "2.1.5"},
    {"RCPT TO:<\"j\xc3\xb6rg x\"@localhost>", 250, "2.1.5"},
    {"RCPT TO:<bad\xe0\x80\xaf@localhost>", 501, "5.1.3"},
    {"RCPT TO:<bad\xc3@localhost>", 501, "5.1.3"},
    {"RCPT TO:<x@\xe4\xbe\x8b\xe5\xad\x90.example>", 554, "5.7.1"},
    {"RSET", 250, "2.0.0"},
    /* The flag belonged to that transaction. */
    {"MAIL FROM:<a@example.net>", 250, "2.1.0"},
    {"RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@localhost>", 553, "5.6.7"},
    {"RSET", 250, "2.0.0"},
    {"VRFY j\xc3\xb6rg SMTPUTF8", 252, "2.5.2"},
    {"VRFY j\xc3\xb6rg", 252, "2.5.2"},
    {"QUIT", 221, "2.0.0"},
};

Test(conformance, smtputf8_battery)
{
	h_daemon_init(&D);
	h_set(&D, "max_errors", "100");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	int got = h_cmd(&C1, "EHLO mta.example.net");
	cr_expect_eq(got, 250);
	cr_expect(h_last_has(&C1, "-SMTPUTF8\r\n") || h_last_has(&C1, " SMTPUTF8\r\n"),
	          "SMTPUTF8 not offered: %s", C1.last);
	run_steps(&C1, smtputf8_battery, sizeof(smtputf8_battery) / sizeof(smtputf8_battery[0]));
	cr_expect(h_wait_closed(&C1, 5000), "no close after QUIT");
	h_close(&C1);
	/* Each refusal is logged with its reply; no reply had UTF-8. */
	cr_expect(h_log_has(&D, "550 5.6.7 Non-ASCII sender address"), "550 5.6.7 not logged");
	cr_expect(h_log_has(&D, "553 5.6.7 Non-ASCII recipient address"), "553 5.6.7 not logged");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* DSN (RFC 3461): offered after EHLO; every parameter in its valid
 * forms is accepted, in any case, with the longer RCPT line it allows
 * (500 more octets), and the message is taken. */
Test(conformance, dsn_parameters)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	cr_expect(h_last_has(&C1, "\r\n250-DSN\r\n") || h_last_has(&C1, "\r\n250 DSN\r\n"),
	          "DSN not in the EHLO reply: %s", C1.last);
	char envid[101], orcpt[501], line[1100];
	memset(envid, 'e', 100);
	envid[100] = '\0';
	memcpy(orcpt, "rfc822;", 7);
	memset(orcpt + 7, 'o', 493);
	orcpt[500] = '\0';
	/* The longest ENVID, RET in lower case, with SIZE. */
	snprintf(line, sizeof(line), "MAIL FROM:<a@example.net> ret=FULL ENVID=%s SIZE=100", envid);
	expect_enh(&C1, 250, "2.1.0", line);
	expect_enh(&C1, 250, "2.1.5", "RCPT TO:<bob@localhost> NOTIFY=success,failure,delay");
	expect_enh(&C1, 250, "2.1.5", "RCPT TO:<carol@localhost> NOTIFY=NEVER ORCPT=rfc822;c+2B1");
	snprintf(line, sizeof(line), "RCPT TO:<dave@localhost> NOTIFY=DELAY ORCPT=%s", orcpt);
	cr_expect_gt(strlen(line) + 2, 512);
	expect_enh(&C1, 250, "2.1.5", line);
	size_t len;
	char *msg = h_make_message("dsn conformance", "dsn-conf-1", &len);
	size_t dl;
	char *d = h_dotstuff(msg, len, &dl);
	h_expect(&C1, 354, "DATA");
	h_send(&C1, d, dl);
	h_expect_reply(&C1, 250, "end of data");
	/* Over the limits: the RCPT line past 1012 octets is too long. */
	snprintf(line, sizeof(line), "RCPT TO:<dave@localhost> ORCPT=%s%0500d", orcpt, 0);
	expect_enh(&C1, 500, "5.5.2", line);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	char md[H_PATH];
	h_maildir(&D, "localhost", "dave", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 1, 20000), 1, "the message was not delivered");
	free(d);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A client that sends commands and never reads the replies: the server
 * stops reading from it once its replies back up (bounded output and
 * input buffers), instead of reading on and queueing replies without
 * limit; other clients are served meanwhile. */
Test(conformance, client_that_never_reads)
{
	static char chunk[60000];
	const size_t target = 24u * 1024 * 1024;
	size_t sent = 0;

	for (size_t i = 0; i + 6 <= sizeof(chunk); i += 6)
		memcpy(chunk + i, "NOOP\r\n", 6);
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	long long deadline = h_now_ms() + 6000;
	while (sent < target && h_now_ms() < deadline) {
		ssize_t w = send(C1.fd, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0)
			sent += (size_t)w;
		else
			h_sleep_ms(20);
	}
	/* The kernel buffers hold a few MB, so a server that stops reading
	 * blocks us early; one that reads on takes 24 MB in well under 6 s
	 * (64 MB of replies). */
	cr_expect_lt(sent, target, "the server read %zu octets without its replies being read",
	             sent);
	cr_log_info("sent %zu octets before the server stopped reading", sent);
	struct h_conn c2;
	h_open(&c2, "127.0.0.3", D.port);
	h_expect(&c2, 250, "EHLO other.example.net");
	h_expect(&c2, 221, "QUIT");
	h_close(&c2);
	h_close(&C1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* curl uploads a file as it is: a message written with Unix line ends
 * arrives with bare LFs. With bare_lf = reject (the default, as the
 * smuggling defences of recent Postfix) it is refused with 554 5.6.0 and
 * nothing is queued; with normalize it is taken, with CR LF line ends in
 * the Maildir. */
static int curl_upload(const char *file, char **out)
{
	char url[64];
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", D.port);
	char *const argv[] = {"curl",
	                      "-sS",
	                      "--interface",
	                      "127.0.0.2",
	                      url,
	                      "--mail-from",
	                      "a@example.net",
	                      "--mail-rcpt",
	                      "bob@localhost",
	                      "-T",
	                      (char *)file,
	                      NULL};
	return h_run(argv, NULL, 0, 30000, out, NULL);
}

Test(conformance, curl_upload_with_unix_line_ends)
{
	static const char msg[] = "From: a@example.net\nTo: bob@localhost\nSubject: unix\n\n"
	                          "line one\n.line with a dot\nlast line\n";
	char file[H_PATH], bob[H_PATH], *out = NULL;

	h_daemon_init(&D);
	h_daemon_start(&D);
	snprintf(file, sizeof(file), "%s/unix.txt", D.dir);
	cr_assert_eq(h_write_file(file, msg, strlen(msg), 0644), 0);
	int rc = curl_upload(file, &out);
	cr_expect_neq(rc, 0, "bare LFs accepted under the default bare_lf = reject: %s",
	              out ? out : "");
	free(out);
	out = NULL;
	cr_expect(h_log_has(&D, "5.6.0"), "no log line for the refused message");
	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_expect(h_spool_wait_idle(&D, 5000));
	cr_expect_eq(h_maildir_count(bob), 0, "the refused message was delivered");
	h_daemon_stop(&D);
	h_daemon_free(&D);

	h_daemon_init(&D);
	h_set(&D, "bare_lf", "normalize");
	h_daemon_start(&D);
	snprintf(file, sizeof(file), "%s/unix.txt", D.dir);
	cr_assert_eq(h_write_file(file, msg, strlen(msg), 0644), 0);
	rc = curl_upload(file, &out);
	cr_expect_eq(rc, 0, "curl: exit %d: %s", rc, out ? out : "");
	free(out);
	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_assert_eq(h_maildir_wait(bob, 1, 15000), 1, "the message did not arrive");
	char **files;
	int n = h_maildir_list(bob, &files);
	cr_assert_eq(n, 1);
	size_t len;
	char *got = h_read_file(files[0], &len);
	cr_assert_not_null(got);
	cr_expect(h_contains(got, len, "\r\nline one\r\n.line with a dot\r\nlast line\r\n"),
	          "lines not normalised to CR LF: %s", got);
	cr_expect_eq(h_count(got, len, "\n") - h_count(got, len, "\r\n"), 0, "a bare LF was kept");
	free(got);
	h_free_list(files, n);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* An HTTP request on the SMTP port: 500 5.5.1, the connection closed,
 * and a log line with the client, what it sent and the reply. */
Test(conformance, non_smtp_refusal_is_logged)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	expect_enh(&C1, 500, "5.5.1", "GET / HTTP/1.1");
	cr_expect(h_wait_closed(&C1, 5000), "the connection stays open");
	h_close(&C1);
	cr_expect(h_log_wait(&D, "non-SMTP input from unknown[127.0.0.2]", 5000),
	          "no log line for the client");
	cr_expect(h_log_has(&D, "GET / HTTP/1.1; reply 500 5.5.1"), "the log line lacks the reply");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Header fields named X-Tempomx-* are ours to write: a client's are
 * removed (folded lines included) before the message is queued, ours
 * stay, the body is untouched, and the removal is logged. */
Test(conformance, client_tempomx_headers_are_removed)
{
	static const char msg[] = "X-Tempomx-Class: hi; verdict=good; score=0\r\n"
	                          "From: a@example.net\r\n"
	                          "x-tempomx-scan: clean;\r\n"
	                          " engine=forged\r\n"
	                          "Subject: forged verdicts\r\n"
	                          "\r\n"
	                          "X-Tempomx-Scan: this line is body text\r\n";
	static const char *const rcpts[] = {"bob@localhost", NULL};
	char bob[H_PATH];

	h_daemon_init(&D);
	h_daemon_start(&D);
	cr_assert_eq(h_send_mail(D.port, "127.0.0.2", "a@example.net", rcpts, msg, strlen(msg)),
	             250);
	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_assert_eq(h_maildir_wait(bob, 1, 15000), 1, "the message did not arrive");
	char **files;
	int n = h_maildir_list(bob, &files);
	cr_assert_eq(n, 1);
	size_t len;
	char *got = h_read_file(files[0], &len);
	cr_assert_not_null(got);
	cr_expect(!h_contains(got, len, "verdict=good; score=0\r\n"), "the forged class stayed");
	cr_expect(!h_contains(got, len, "engine=forged"), "the forged scan header stayed");
	cr_expect(h_contains(got, len,
	                     "From: a@example.net\r\nSubject: forged verdicts\r\n\r\n"
	                     "X-Tempomx-Scan: this line is body text\r\n"),
	          "the rest of the message changed:\n%s", got);
	cr_expect_eq(h_count(got, len, "X-Tempomx-Class:"), 1, "ours is missing or doubled:\n%s",
	             got);
	free(got);
	h_free_list(files, n);
	cr_expect(h_log_has(&D, "removed 2 X-Tempomx- header fields supplied by the client"));
	h_daemon_stop(&D);
	h_daemon_free(&D);
}
