/*
 * test_realclients.c: RFC-legal but less common clients, from addresses
 * outside mynetworks, against the real tempomxd.
 *
 * - msmtp and Python's smtplib with STARTTLS, several recipients, several
 *   messages on one connection with RSET between them, and the last end
 *   of data sent together with QUIT; each runs twice from its own address.
 * - A table of the command groups RFC 2920 allows, one raw client per row
 *   bound to its own 127.0.1x.7 address (each in its own /24, so that one
 *   row's history cannot vouch for or against another): a whole envelope
 *   in one write after EHLO, ".\r\nQUIT\r\n" in one write, the next
 *   transaction right after the final dot, RSET at the start of a group,
 *   and a connection reused for three messages. Each shape runs three
 *   times (min_history's default) and then a plain session follows from
 *   the same address: all must be accepted, the history must hold no
 *   junk for the address.
 * - Groups RFC 2920 forbids (a command after DATA before the 354, a
 *   command after EHLO before its reply, pipelining after HELO, where no
 *   PIPELINING was offered): noted as unauthorised pipelining and refused
 *   at DATA with 554 5.7.1.
 * New clients get the split banner (greet_pause 1 s) and a delayed RCPT
 * reply (patience_delay 2 s); legal clients wait for the reply that ends
 * each of their groups. Outcomes are read from the daemon's classify
 * lines, matched on "[ADDR]:".
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "realclient.h"

TestSuite(realclients, .init = h_setup, .fini = rc_teardown, .timeout = 180);

static struct h_daemon D;

static void start(void)
{
	h_daemon_init(&D);
	h_set(&D, "greet_pause", "1");
	h_set(&D, "patience_delay", "2");
	h_set(&D, "smtp_tls", "yes");
	h_daemon_start(&D);
}

static void finish(void)
{
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* Every session of addr accepted, none refused, and no junk in the
 * history it was judged with; nsessions transactions expected. */
static void expect_accepted(const char *addr, int transactions, const char *what)
{
	int n = 0;
	char *lines = rc_classify_lines(&D, 0, addr, &n);
	int ok = rc_outcomes(&D, 0, addr, "hi") + rc_outcomes(&D, 0, addr, "lo");
	int refused = rc_refusals(&D, 0, addr), junk = rc_history_has_junk(lines);
	rc_head(lines, 8);
	cr_expect_eq(refused, 0, "%s (%s) was refused %d times:\n%s", what, addr, refused, lines);
	cr_expect_eq(ok, transactions, "%s (%s): %d of %d transactions accepted", what, addr, ok,
	             transactions);
	cr_expect(!junk, "%s (%s): the history holds junk:\n%s", what, addr, lines);
	free(lines);
}

/* ---- msmtp and smtplib ---- */

static const char py_client[] =
    "import smtplib, ssl, sys\n"
    "port, src = int(sys.argv[1]), sys.argv[2]\n"
    "ctx = ssl.create_default_context()\n"
    "ctx.check_hostname = False\n"
    "ctx.verify_mode = ssl.CERT_NONE\n"
    "def msg(i):\n"
    "    return ('From: py@example.test\\r\\nTo: py@localhost\\r\\n'\n"
    "            'Subject: smtplib %d\\r\\n\\r\\nhello %d\\r\\n' % (i, i))\n"
    "s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.example.test',\n"
    "                 source_address=(src, 0), timeout=30)\n"
    "s.ehlo()\n"
    "s.starttls(context=ctx)\n"
    "s.ehlo()\n"
    "for i in range(2):\n"
    "    s.sendmail('py@example.test', ['py0@localhost', 'py1@localhost'], msg(i))\n"
    "    if s.rset()[0] != 250: sys.exit('RSET refused')\n"
    "# The last message: end of data and QUIT in one write (RFC 2920 3.1).\n"
    "if s.mail('py@example.test')[0] != 250: sys.exit('MAIL refused')\n"
    "if s.rcpt('py0@localhost')[0] != 250: sys.exit('RCPT refused')\n"
    "code, text = s.docmd('DATA')\n"
    "if code != 354: sys.exit('DATA: %d %s' % (code, text))\n"
    "s.send(msg(2).encode() + b'.\\r\\nQUIT\\r\\n')\n"
    "code, text = s.getreply()\n"
    "if code != 250: sys.exit('end of data: %d %s' % (code, text))\n"
    "code, text = s.getreply()\n"
    "if code != 221: sys.exit('QUIT: %d %s' % (code, text))\n"
    "s.close()\n";

static int run_msmtp(const char *src, char **out)
{
	char port[16], ip[64], msg[H_PATH + 16];
	const char body[] =
	    "From: ms@example.test\r\nTo: ms@localhost\r\nSubject: msmtp\r\n\r\nhi\r\n";
	snprintf(msg, sizeof(msg), "%s/msmtp.eml", D.dir);
	cr_assert_eq(h_write_file(msg, body, sizeof(body) - 1, 0644), 0);
	snprintf(port, sizeof(port), "--port=%d", D.port);
	snprintf(ip, sizeof(ip), "--source-ip=%s", src);
	char *argv[] = {"/bin/sh",
	                "-c",
	                "exec msmtp -C /dev/null --host=127.0.0.1 \"$1\" \"$2\" "
	                "--from=ms@example.test --auth=off --tls=on --tls-starttls=on "
	                "--tls-certcheck=off --domain=ms.example.test -- ms0@localhost "
	                "ms1@localhost ms2@localhost < \"$3\"",
	                "msmtp",
	                port,
	                ip,
	                msg,
	                NULL};
	return h_run(argv, NULL, 0, 60000, out, NULL);
}

static int run_smtplib(const char *src, char **out)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", D.port);
	char *argv[] = {"python3", "-c", (char *)py_client, port, (char *)src, NULL};
	return h_run(argv, NULL, 0, 60000, out, NULL);
}

Test(realclients, msmtp_and_smtplib_accepted_first_time_and_next)
{
	start();
	for (int round = 1; round <= 2; round++) {
		char *out = NULL;
		int st = run_msmtp("127.0.8.2", &out);
		cr_expect_eq(st, 0, "msmtp, connection %d: exit %d\n%s", round, st, out ? out : "");
		free(out);
		out = NULL;
		st = run_smtplib("127.0.9.2", &out);
		cr_expect_eq(st, 0, "smtplib, connection %d: exit %d\n%s", round, st,
		             out ? out : "");
		free(out);
		h_sleep_ms(1000); /* the history is written after the session */
	}
	expect_accepted("127.0.8.2", 2, "msmtp");
	expect_accepted("127.0.9.2", 6, "smtplib");
	cr_expect(h_log_wait(&D, "STARTTLS: ", 1000));
	cr_expect_gt(rc_lines_with(D.log, 0, "STARTTLS: ", "[127.0.8.2]:"), 0,
	             "msmtp did not use STARTTLS");
	cr_expect_gt(rc_lines_with(D.log, 0, "STARTTLS: ", "[127.0.9.2]:"), 0,
	             "smtplib did not use STARTTLS");
	/* The known senders went to hi the second time. */
	cr_expect_gt(rc_outcomes(&D, 0, "127.0.8.2", "hi"), 0, "msmtp never reached hi");
	cr_expect_gt(rc_outcomes(&D, 0, "127.0.9.2", "hi"), 0, "smtplib never reached hi");
	finish();
}

/* ---- RFC 2920 group shapes, raw ---- */

#define ERRLEN 512

struct row {
	const char *name;
	const char *src;
	/* One session on a greeted connection; 0 when every reply was as a
	 * legal client expects, else -1 with err filled. */
	int (*run)(struct h_conn *c, char *err);
	int transactions; /* per session */
	int expect_code;  /* illegal rows: the reply to DATA */
	int result;
	char err[ERRLEN];
};

static const char msg_body[] = "From: g@example.test\r\nSubject: group\r\n\r\nbody\r\n";

static int fail(char *err, struct h_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, struct h_conn *c, const char *fmt, ...)
{
	va_list ap;
	char what[256];
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, ERRLEN, "%s (last reply: %.200s)", what, c->last);
	return -1;
}

/* Read n replies and compare them with want[]. */
static int replies(struct h_conn *c, char *err, int n, const int *want, const char *what)
{
	for (int i = 0; i < n; i++) {
		int code = h_reply(c, 10000);
		if (code != want[i])
			return fail(err, c, "%s: reply %d is %d, want %d", what, i + 1, code,
			            want[i]);
	}
	return 0;
}

static int send_body(struct h_conn *c, const char *after)
{
	size_t len;
	char *s = h_dotstuff(msg_body, sizeof(msg_body) - 1, &len);
	size_t alen = after ? strlen(after) : 0;
	char *all = malloc(len + alen);
	memcpy(all, s, len);
	if (alen)
		memcpy(all + len, after, alen);
	int r = h_send(c, all, len + alen);
	free(all);
	free(s);
	return r;
}

static int polite_envelope(struct h_conn *c, char *err)
{
	if (h_cmd(c, "MAIL FROM:<g@example.test>") != 250)
		return fail(err, c, "MAIL");
	if (h_cmd(c, "RCPT TO:<g@localhost>") != 250)
		return fail(err, c, "RCPT");
	if (h_cmd(c, "DATA") != 354)
		return fail(err, c, "DATA");
	return 0;
}

static int quit(struct h_conn *c, char *err)
{
	return h_cmd(c, "QUIT") == 221 ? 0 : fail(err, c, "QUIT");
}

/* (a) EHLO, then MAIL RCPT RCPT DATA in one write. */
static int shape_envelope_group(struct h_conn *c, char *err)
{
	static const int want[] = {250, 250, 250, 354};
	if (h_cmd(c, "EHLO a.example.test") != 250)
		return fail(err, c, "EHLO");
	h_sendf(c, "MAIL FROM:<g@example.test>\r\nRCPT TO:<g1@localhost>\r\n"
	           "RCPT TO:<g2@localhost>\r\nDATA\r\n");
	if (replies(c, err, 4, want, "MAIL RCPT RCPT DATA") != 0)
		return -1;
	send_body(c, NULL);
	if (h_reply(c, 30000) != 250)
		return fail(err, c, "end of data");
	return quit(c, err);
}

/* (b) the final dot and QUIT in one write. */
static int shape_dot_quit(struct h_conn *c, char *err)
{
	static const int want[] = {250, 221};
	if (h_cmd(c, "EHLO b.example.test") != 250)
		return fail(err, c, "EHLO");
	if (polite_envelope(c, err) != 0)
		return -1;
	send_body(c, "QUIT\r\n");
	return replies(c, err, 2, want, ". QUIT");
}

/* (c) the next transaction right after the final dot. */
static int shape_dot_next(struct h_conn *c, char *err)
{
	static const int want[] = {250, 250, 250, 354};
	if (h_cmd(c, "EHLO c.example.test") != 250)
		return fail(err, c, "EHLO");
	if (polite_envelope(c, err) != 0)
		return -1;
	send_body(c, "MAIL FROM:<g@example.test>\r\nRCPT TO:<g@localhost>\r\nDATA\r\n");
	if (replies(c, err, 4, want, ". MAIL RCPT DATA") != 0)
		return -1;
	send_body(c, NULL);
	if (h_reply(c, 30000) != 250)
		return fail(err, c, "second end of data");
	return quit(c, err);
}

/* (d) RSET at the start of a group. */
static int shape_rset_group(struct h_conn *c, char *err)
{
	static const int want[] = {250, 250, 250, 354};
	if (h_cmd(c, "EHLO d.example.test") != 250)
		return fail(err, c, "EHLO");
	h_sendf(c, "RSET\r\nMAIL FROM:<g@example.test>\r\nRCPT TO:<g@localhost>\r\nDATA\r\n");
	if (replies(c, err, 4, want, "RSET MAIL RCPT DATA") != 0)
		return -1;
	send_body(c, NULL);
	if (h_reply(c, 30000) != 250)
		return fail(err, c, "end of data");
	return quit(c, err);
}

/* (e) one connection, three messages. */
static int shape_reuse(struct h_conn *c, char *err)
{
	if (h_cmd(c, "EHLO e.example.test") != 250)
		return fail(err, c, "EHLO");
	for (int i = 0; i < 3; i++) {
		if (polite_envelope(c, err) != 0)
			return -1;
		send_body(c, NULL);
		if (h_reply(c, 30000) != 250)
			return fail(err, c, "end of data %d", i + 1);
	}
	return quit(c, err);
}

/* The plain session that follows each shape. */
static int plain(struct h_conn *c, char *err)
{
	if (h_cmd(c, "EHLO plain.example.test") != 250)
		return fail(err, c, "EHLO");
	if (polite_envelope(c, err) != 0)
		return -1;
	send_body(c, NULL);
	if (h_reply(c, 30000) != 250)
		return fail(err, c, "end of data");
	return quit(c, err);
}

/* Illegal: the body right behind DATA, before the 354. */
static int bad_data_body(struct h_conn *c, char *err)
{
	if (h_cmd(c, "EHLO x.example.test") != 250)
		return fail(err, c, "EHLO");
	if (h_cmd(c, "MAIL FROM:<x@example.test>") != 250 ||
	    h_cmd(c, "RCPT TO:<x@localhost>") != 250)
		return fail(err, c, "envelope");
	h_sendf(c, "DATA\r\nSubject: x\r\n\r\nhello body\r\n.\r\n");
	return h_reply(c, 10000);
}

/* Illegal: MAIL in the same write as EHLO. */
static int bad_ehlo_mail(struct h_conn *c, char *err)
{
	h_sendf(c, "EHLO y.example.test\r\nMAIL FROM:<y@example.test>\r\n");
	if (h_reply(c, 10000) != 250 || h_reply(c, 10000) != 250)
		return fail(err, c, "EHLO MAIL");
	if (h_cmd(c, "RCPT TO:<y@localhost>") != 250)
		return fail(err, c, "RCPT");
	return h_cmd(c, "DATA");
}

/* Illegal: pipelining after HELO (no PIPELINING offered). */
static int bad_helo_group(struct h_conn *c, char *err)
{
	if (h_cmd(c, "HELO z.example.test") != 250)
		return fail(err, c, "HELO");
	h_sendf(c, "MAIL FROM:<z@example.test>\r\nRCPT TO:<z@localhost>\r\nDATA\r\n");
	if (h_reply(c, 10000) != 250 || h_reply(c, 10000) != 250)
		return fail(err, c, "MAIL RCPT");
	return h_reply(c, 10000);
}

static struct row legal[] = {
    {"EHLO, then MAIL RCPT RCPT DATA in one write", "127.0.10.7", shape_envelope_group, 1, 0, 0,
     ""},
    {"end of data and QUIT in one write", "127.0.11.7", shape_dot_quit, 1, 0, 0, ""},
    {"next MAIL RCPT DATA right after the final dot", "127.0.12.7", shape_dot_next, 2, 0, 0, ""},
    {"RSET MAIL RCPT DATA in one write", "127.0.13.7", shape_rset_group, 1, 0, 0, ""},
    {"one connection, three messages", "127.0.14.7", shape_reuse, 3, 0, 0, ""},
};
#define NLEGAL (sizeof(legal) / sizeof(legal[0]))
#define ROUNDS 3

static struct row illegal[] = {
    {"body sent with DATA, before the 354", "127.0.15.7", bad_data_body, 0, 554, 0, ""},
    {"MAIL in the same write as EHLO", "127.0.16.7", bad_ehlo_mail, 0, 554, 0, ""},
    {"MAIL RCPT DATA in one write after HELO", "127.0.17.7", bad_helo_group, 0, 554, 0, ""},
};
#define NILLEGAL (sizeof(illegal) / sizeof(illegal[0]))

/* One session of fn from src: connect, read the (split) banner, run. */
static int session(const char *src, int (*fn)(struct h_conn *, char *), char *err)
{
	struct h_conn *c = malloc(sizeof(*c));
	int r;
	if (c == NULL)
		return -1;
	if (h_connect(c, src, D.port) != 0) {
		snprintf(err, ERRLEN, "connect from %s failed", src);
		free(c);
		return -1;
	}
	if (h_reply(c, 10000) != 220)
		r = fail(err, c, "no 220 greeting");
	else if ((r = fn(c, err)) > 0)
		snprintf(err, ERRLEN, "%.200s", c->last); /* an illegal row's reply */
	h_close(c);
	free(c);
	return r;
}

static void *legal_row(void *arg)
{
	struct row *r = arg;
	for (int i = 0; i < ROUNDS && r->result == 0; i++) {
		char err[ERRLEN];
		if (session(r->src, r->run, err) != 0) {
			r->result = -1;
			snprintf(r->err, ERRLEN, "session %d: %.480s", i + 1, err);
		}
		h_sleep_ms(700); /* let the history record it */
	}
	if (r->result == 0 && session(r->src, plain, r->err) != 0)
		r->result = -2;
	return NULL;
}

static void *illegal_row(void *arg)
{
	struct row *r = arg;
	r->result = session(r->src, r->run, r->err);
	return NULL;
}

Test(realclients, rfc2920_group_shapes)
{
	pthread_t th[NLEGAL + NILLEGAL];
	start();
	for (size_t i = 0; i < NLEGAL; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, legal_row, &legal[i]), 0);
	for (size_t i = 0; i < NILLEGAL; i++)
		cr_assert_eq(pthread_create(&th[NLEGAL + i], NULL, illegal_row, &illegal[i]), 0);
	for (size_t i = 0; i < NLEGAL + NILLEGAL; i++)
		pthread_join(th[i], NULL);
	h_sleep_ms(500);

	for (size_t i = 0; i < NLEGAL; i++) {
		struct row *r = &legal[i];
		int n = 0;
		char *lines = rc_head(rc_classify_lines(&D, 0, r->src, &n), 8);
		cr_expect_eq(r->result, 0, "legal \"%s\" (%s): %s%s:\n%s", r->name, r->src,
		             r->result == -2 ? "the next connection: " : "", r->err, lines);
		free(lines);
		expect_accepted(r->src, ROUNDS * r->transactions + 1, r->name);
	}
	for (size_t i = 0; i < NILLEGAL; i++) {
		struct row *r = &illegal[i];
		int n = 0;
		char *lines = rc_classify_lines(&D, 0, r->src, &n);
		cr_expect_eq(r->result, r->expect_code,
		             "illegal \"%s\" (%s): DATA got %d, want %d %s:\n%s", r->name, r->src,
		             r->result, r->expect_code, r->err, lines);
		cr_expect(r->result != 554 || strstr(r->err, "5.7.1") != NULL,
		          "illegal \"%s\" (%s): not 5.7.1: %s", r->name, r->src, r->err);
		cr_expect(strstr(lines, "pipelining") != NULL,
		          "illegal \"%s\" (%s) not noted as unauthorised pipelining:\n%s", r->name,
		          r->src, lines);
		cr_expect_eq(rc_outcomes(&D, 0, r->src, "hi") + rc_outcomes(&D, 0, r->src, "lo"), 0,
		             "illegal \"%s\" (%s): a message was accepted", r->name, r->src);
		free(lines);
	}
	finish();
}
