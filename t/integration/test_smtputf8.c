/*
 * test_smtputf8.c: SMTPUTF8 (RFC 6531) end to end with the real tempomxd:
 * Python's smtplib (send_message and sendmail with SMTPUTF8, as it sends
 * internationalised mail) and raw sockets deliver UTF-8 addresses and
 * UTF-8 header fields into the Maildir byte for byte, with the U-label
 * domain matched against local_domains written in A-labels; relaying to a
 * capture sink (outbound_sink.py) that offers SMTPUTF8 passes the
 * parameter on, one that does not gets nothing and the sender gets a 5.6.7
 * report in the RFC 6533 form; a message whose only 8-bit octets are in
 * the body goes there as before (BODY=8BITMIME, no SMTPUTF8).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "outbound.h"

TestSuite(smtputf8, .init = h_setup, .fini = h_teardown, .timeout = 120);

static struct h_daemon D;

/* jörg, Bücher, "用户" (user), "例子" (example), Grüße */
#define JOERG "j\xc3\xb6rg"
#define BUECHER                                                                                    \
	"b\xc3\xbc"                                                                                \
	"cher.example"
#define BUECHER_ACE "xn--bcher-kva.example"
#define YONGHU "\xe7\x94\xa8\xe6\x88\xb7"
#define GRUESSE                                                                                    \
	"Gr\xc3\xbc\xc3\x9f"                                                                       \
	"e"

/* One transaction on an open, greeted connection with MAIL parameters;
 * returns the reply to the end of data or the first failing reply. */
static int utf8_transaction(struct h_conn *c, const char *from, const char *params,
                            const char *const *rcpts, const char *msg, size_t len)
{
	int code;
	if ((code = h_cmd(c, "EHLO client.example.test")) != 250)
		return code;
	if ((code = h_cmd(c, "MAIL FROM:<%s>%s%s", from, params[0] ? " " : "", params)) != 250)
		return code;
	for (size_t i = 0; rcpts[i]; i++)
		if ((code = h_cmd(c, "RCPT TO:<%s>", rcpts[i])) != 250)
			return code;
	if ((code = h_cmd(c, "DATA")) != 354)
		return code;
	size_t slen;
	char *stuffed = h_dotstuff(msg, len, &slen);
	int rc = h_send(c, stuffed, slen);
	free(stuffed);
	return rc == -1 ? -3 : h_reply(c, 30000);
}

static int utf8_send(int port, const char *from, const char *params, const char *const *rcpts,
                     const char *msg, size_t len)
{
	struct h_conn c;
	h_open(&c, "127.0.0.1", port);
	int code = utf8_transaction(&c, from, params, rcpts, msg, len);
	if (code > 0)
		h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

/* The one message of a Maildir, checked to be msg after our headers. */
static void expect_delivered(const char *domain, const char *user, const char *msg, size_t len)
{
	char md[H_PATH];
	char **files;
	h_maildir(&D, domain, user, md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_assert_eq(n, 1, "%s holds %d messages, expected 1", md, n);
	h_spool_wait_idle(&D, 5000);
	n = h_maildir_list(md, &files);
	cr_assert_eq(n, 1, "%s holds %d messages", md, n);
	const char *why = h_check_delivered(files[0], msg, len);
	cr_expect(why == NULL, "%s", why);
	size_t flen;
	char *f = h_read_file(files[0], &flen);
	cr_expect(h_contains(f, flen, " with UTF8SMTP id "), "no UTF8SMTP trace:\n%.400s", f);
	free(f);
	h_free_list(files, n);
}

/* smtplib.send_message() with non-ASCII addresses: it sees SMTPUTF8 in
 * the EHLO reply, sends MAIL ... SMTPUTF8 BODY=8BITMIME and the message
 * flattened with utf8=True. The script writes those octets for the test
 * to compare. */
static const char py_send_message[] =
    "import email.generator, email.message, io, smtplib, sys\n"
    "port, out = int(sys.argv[1]), sys.argv[2]\n"
    "m = email.message.EmailMessage()\n"
    "m['From'] = 'J\\u00f6rg M\\u00fcller <j\\u00f6rg@b\\u00fccher.example>'\n"
    "m['To'] = '\\u7528\\u6237 <\\u7528\\u6237@xn--bcher-kva.example>, anna@localhost'\n"
    "m['Subject'] = 'Gr\\u00fc\\u00dfe aus K\\u00f6ln'\n"
    "m['Date'] = 'Mon, 01 Jan 2024 12:00:00 +0000'\n"
    "m['Message-ID'] = '<utf8-1@client.example.test>'\n"
    "m.set_content('Sch\\u00f6ne Gr\\u00fc\\u00dfe.\\n.A leading dot.\\n', cte='8bit')\n"
    "buf = io.BytesIO()\n"
    "email.generator.BytesGenerator(buf, policy=m.policy.clone(utf8=True)).flatten(\n"
    "    m, linesep='\\r\\n')\n"
    "open(out, 'wb').write(buf.getvalue())\n"
    "with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.test',\n"
    "                  timeout=20) as s:\n"
    "    s.ehlo()\n"
    "    assert s.has_extn('smtputf8'), s.esmtp_features\n"
    "    refused = s.send_message(m)\n"
    "print('refused', refused)\n"
    "sys.exit(1 if refused else 0)\n";

Test(smtputf8, smtplib_send_message_to_utf8_maildirs)
{
	char port[16], sent[H_PATH];
	char *out = NULL;
	h_daemon_init(&D);
	/* The local domain is configured as an A-label; mail comes for its
	 * U-label and A-label forms alike. */
	h_set(&D, "local_domains", "localhost " BUECHER_ACE);
	h_daemon_start(&D);
	snprintf(port, sizeof(port), "%d", D.port);
	snprintf(sent, sizeof(sent), "%s/sent.eml", D.dir);
	char *argv[] = {"/usr/bin/python3", "-c", (char *)py_send_message, port, sent, NULL};
	int st = h_run(argv, NULL, 0, 30000, &out, NULL);
	if (st != 0)
		h_dump_log(&D, 20);
	cr_assert_eq(st, 0, "smtplib exit %d:\n%s", st, out);
	size_t mlen;
	char *msg = h_read_file(sent, &mlen);
	cr_assert_not_null(msg);
	cr_expect(h_contains(msg, mlen, "Subject: " GRUESSE " aus K\xc3\xb6ln\r\n"),
	          "the header was not sent as UTF-8:\n%.300s", msg);
	/* Maildir directory = the UTF-8 local part, the domain's A-label. */
	expect_delivered(BUECHER_ACE, YONGHU, msg, mlen);
	expect_delivered("localhost", "anna", msg, mlen);
	free(msg);
	free(out);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* sendmail() with mail_options=['SMTPUTF8'] and a message given as
 * octets: delivered exactly as sent; and the same addresses without
 * SMTPUTF8 are refused with 550/553 5.6.7, which smtplib reports. */
static const char py_sendmail[] =
    "import smtplib, sys\n"
    "port, path = int(sys.argv[1]), sys.argv[2]\n"
    "msg = open(path, 'rb').read()\n"
    "frm, to = 'j\\u00f6rg@b\\u00fccher.example', ['\\u00e9l\\u00e8ve@b\\u00fccher.example']\n"
    "with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.test',\n"
    "                  timeout=20) as s:\n"
    "    print('refused', s.sendmail(frm, to, msg, mail_options=['SMTPUTF8', "
    "'BODY=8BITMIME']))\n"
    "    s.command_encoding = 'utf-8'  # as if it did not know SMTPUTF8\n"
    "    try:\n"
    "        s.sendmail('plain@localhost', to, msg)\n"
    "        sys.exit(2)\n"
    "    except smtplib.SMTPRecipientsRefused as e:\n"
    "        print('rcpt', e.recipients[to[0]])\n"
    "        assert e.recipients[to[0]][0] == 553, e.recipients\n"
    "        assert e.recipients[to[0]][1].startswith(b'5.6.7'), e.recipients\n"
    "    s.command_encoding = 'utf-8'\n"
    "    try:\n"
    "        s.sendmail('x\\u00f6@localhost', ['anna@localhost'], msg,\n"
    "                   mail_options=['BODY=8BITMIME'])\n"
    "        sys.exit(3)\n"
    "    except smtplib.SMTPSenderRefused as e:\n"
    "        print('mail', e)\n"
    "        assert e.smtp_code == 550 and e.smtp_error.startswith(b'5.6.7'), e\n";

Test(smtputf8, smtplib_sendmail_byte_exact_and_refusals)
{
	char port[16], path[H_PATH];
	char *out = NULL;
	static const char msg[] = "From: " JOERG "@" BUECHER "\r\n"
	                          "To: \xc3\xa9l\xc3\xa8ve@" BUECHER "\r\n"
	                          "Subject: " GRUESSE "\r\n"
	                          "MIME-Version: 1.0\r\n"
	                          "Content-Type: text/plain; charset=utf-8\r\n"
	                          "Content-Transfer-Encoding: 8bit\r\n"
	                          "\r\n"
	                          "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80\r\n"
	                          ".dot\r\n";
	h_daemon_init(&D);
	h_set(&D, "local_domains", "localhost " BUECHER);
	h_daemon_start(&D);
	snprintf(port, sizeof(port), "%d", D.port);
	snprintf(path, sizeof(path), "%s/msg.eml", D.dir);
	cr_assert_eq(h_write_file(path, msg, sizeof(msg) - 1, 0644), 0);
	char *argv[] = {"/usr/bin/python3", "-c", (char *)py_sendmail, port, path, NULL};
	int st = h_run(argv, NULL, 0, 30000, &out, NULL);
	cr_assert_eq(st, 0, "smtplib exit %d:\n%s", st, out);
	expect_delivered(BUECHER_ACE, "\xc3\xa9l\xc3\xa8ve", msg, sizeof(msg) - 1);
	cr_expect(h_log_has(&D, "553 5.6.7 "), "the 553 is not logged");
	free(out);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* Raw dialogue: the EHLO keyword, the reply codes of RFC 6531 3.5, and
 * replies that never carry UTF-8 (3.7.4) even when they name a UTF-8
 * address. */
Test(smtputf8, raw_dialogue)
{
	struct h_conn c;
	h_daemon_init(&D);
	h_set(&D, "local_domains", "localhost " BUECHER);
	h_set(&D, "maildir_create", "no");
	h_set(&D, "max_errors", "100");
	h_daemon_start(&D);
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO client.example.test");
	cr_expect(h_last_has(&c, "250-SMTPUTF8\r\n") || h_last_has(&c, "250 SMTPUTF8\r\n"),
	          "no SMTPUTF8 in %s", c.last);
	cr_expect(h_last_has(&c, "8BITMIME"), "SMTPUTF8 without 8BITMIME: %s", c.last);
	h_expect(&c, 550, "MAIL FROM:<" JOERG "@" BUECHER ">");
	cr_expect(h_last_has(&c, "550 5.6.7 "), "%s", c.last);
	h_expect(&c, 250, "MAIL FROM:<a@example.net>");
	h_expect(&c, 553, "RCPT TO:<" JOERG "@" BUECHER ">");
	cr_expect(h_last_has(&c, "553 5.6.7 "), "%s", c.last);
	h_expect(&c, 250, "RSET");
	h_expect(&c, 250, "MAIL FROM:<" JOERG "@" BUECHER "> SMTPUTF8 BODY=8BITMIME");
	/* Not a user here (maildir_create = no): 550 5.1.1, the address in
	 * the reply with '?' for its non-ASCII octets. */
	h_expect(&c, 550, "RCPT TO:<nobody\xc3\xa9@" BUECHER ">");
	for (const char *p = c.last; *p; p++)
		cr_expect((unsigned char)*p < 0x80, "UTF-8 in a reply: %s", c.last);
	cr_expect(h_last_has(&c, "<nobody??@b??cher.example>"), "%s", c.last);
	h_expect(&c, 250, "RCPT TO:<postmaster@" BUECHER ">");
	h_expect(&c, 250, "RSET");
	/* A whole transaction, then one without SMTPUTF8: the flag ended
	 * with the first. */
	static const char msg[] = "From: " JOERG "@" BUECHER "\r\nTo: postmaster@" BUECHER
	                          "\r\nSubject: " GRUESSE "\r\n\r\n.\xc3\xa4\r\n";
	const char *rcpts[] = {"postmaster@" BUECHER, NULL};
	cr_assert_eq(
	    utf8_transaction(&c, JOERG "@" BUECHER, "SMTPUTF8", rcpts, msg, sizeof(msg) - 1), 250,
	    "%s", c.last);
	h_expect(&c, 250, "MAIL FROM:<a@example.net>");
	h_expect(&c, 553, "RCPT TO:<postmaster@" BUECHER ">");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	expect_delivered(BUECHER_ACE, "postmaster", msg, sizeof(msg) - 1);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* An RFC 6533 report (the original came with SMTPUTF8): a well-formed
 * multipart/report of three parts, parsed by Python's email package, of
 * report type global-delivery-status, with the recipient as a utf-8 (or,
 * when ASCII, rfc822) address, the status, and the returned header
 * section as message/global-headers. */
static void check_global_dsn(const char *path, const char *final_rcpt, const char *status,
                             const char *subject)
{
	static const char script[] =
	    "import email, sys\n"
	    "m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n"
	    "assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
	    "assert m.get_param('report-type') == 'global-delivery-status'\n"
	    "p = m.get_payload()\n"
	    "assert [x.get_content_type() for x in p] == ['text/plain',\n"
	    "    'message/global-delivery-status', 'message/global-headers'], p\n"
	    "assert m['Auto-Submitted'] == 'auto-replied'\n";
	char *argv[] = {"/usr/bin/python3", "-c", (char *)script, (char *)path, NULL};
	char *out = NULL;
	int rc = h_run(argv, NULL, 0, 20000, &out, NULL);
	cr_expect_eq(rc, 0, "not a valid report: %s", out ? out : "");
	free(out);
	size_t len;
	char *f = h_read_file(path, &len);
	cr_assert_not_null(f);
	char want[512];
	snprintf(want, sizeof(want), "\r\nFinal-Recipient: %s\r\nAction: failed\r\nStatus: %s\r\n",
	         final_rcpt, status);
	cr_expect(h_contains(f, len, want), "no \"%s\" in:\n%s", want, f);
	snprintf(want, sizeof(want), "\r\nSubject: %s\r\n", subject);
	cr_expect(h_contains(f, len, want), "the returned headers lack \"%s\"", subject);
	free(f);
}

/* Relay to a next hop that offers SMTPUTF8: MAIL carries SMTPUTF8 (and
 * BODY=8BITMIME), the addresses go as received, the message byte for
 * byte. */
Test(smtputf8, relay_to_a_hop_with_smtputf8)
{
	struct sink s;
	static const char *const u8[] = {"--smtputf8", NULL};
	ob_base_conf(&D);
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), u8);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	static const char msg[] = "From: bob@local.test\r\nTo: " YONGHU "@\xe4\xbe\x8b\xe5\xad\x90"
	                          ".test\r\nSubject: " GRUESSE "\r\n\r\nHallo\r\n";
	const char *rcpts[] = {YONGHU "@\xe4\xbe\x8b\xe5\xad\x90.test", NULL};
	cr_assert_eq(utf8_send(D.port, "bob@local.test", "SMTPUTF8", rcpts, msg, sizeof(msg) - 1),
	             250);
	char *env, *data;
	size_t dlen;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, &data, &dlen);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "nothing arrived at the sink");
	cr_expect(strstr(env, "rcpt " YONGHU "@\xe4\xbe\x8b\xe5\xad\x90.test\n") != NULL, "%s",
	          env);
	cr_expect(strstr(env, " SMTPUTF8") != NULL, "no SMTPUTF8 on MAIL:\n%s", env);
	cr_expect(strstr(env, "BODY=8BITMIME") != NULL, "no BODY=8BITMIME on MAIL:\n%s", env);
	cr_assert(dlen >= sizeof(msg) - 1);
	cr_expect(memcmp(data + dlen - (sizeof(msg) - 1), msg, sizeof(msg) - 1) == 0,
	          "the relayed message differs");
	cr_expect(h_log_wait(&D, "status=sent", 5000));
	free(env);
	free(data);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* Relay to a next hop without SMTPUTF8: a non-ASCII recipient, and (in
 * an SMTPUTF8 transaction) a UTF-8 header with ASCII addresses, are never
 * sent; each bounces to its sender with status 5.6.7. A message with
 * 8-bit octets in its body only, without SMTPUTF8, goes there as before. */
Test(smtputf8, relay_to_a_hop_without_smtputf8)
{
	struct sink s;
	ob_base_conf(&D);
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);

	static const char m1[] = "From: bob@local.test\r\nSubject: utf8 rcpt\r\n\r\nHallo\r\n";
	const char *r1[] = {JOERG "@remote.test", NULL};
	cr_assert_eq(utf8_send(D.port, "bob@local.test", "SMTPUTF8", r1, m1, sizeof(m1) - 1), 250);
	static const char m2[] =
	    "From: carol@local.test\r\nSubject: utf8 header " GRUESSE "\r\n\r\nHallo\r\n";
	const char *r2[] = {"plain@remote.test", NULL};
	cr_assert_eq(
	    utf8_send(D.port, "carol@local.test", "SMTPUTF8 BODY=8BITMIME", r2, m2, sizeof(m2) - 1),
	    250);

	char md[H_PATH];
	char **files;
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 40);
	cr_assert_eq(n, 1, "no bounce reached bob");
	cr_assert_eq(h_maildir_list(md, &files), 1);
	check_global_dsn(files[0], "utf-8; " JOERG "@remote.test", "5.6.7", "utf8 rcpt");
	h_free_list(files, 1);
	h_maildir(&D, "local.test", "carol", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, WAIT_MS), 1, "no bounce reached carol");
	cr_assert_eq(h_maildir_list(md, &files), 1);
	check_global_dsn(files[0], "rfc822; plain@remote.test", "5.6.7", "utf8 header " GRUESSE);
	h_free_list(files, 1);
	cr_expect(h_log_has(&D, "the server does not offer it"), "the reason is not logged");
	cr_expect_eq(ob_sink_count(&s), 0, "an internationalised message reached the sink");

	/* 8-bit body, ASCII header and addresses, no SMTPUTF8: relayed. */
	static const char m3[] = "From: dave@local.test\r\nSubject: latin\r\nMIME-Version: 1.0\r\n"
	                         "Content-Type: text/plain; charset=utf-8\r\n"
	                         "Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9f"
	                         "e\r\n";
	const char *r3[] = {"plain@remote.test", NULL};
	cr_assert_eq(utf8_send(D.port, "dave@local.test", "BODY=8BITMIME", r3, m3, sizeof(m3) - 1),
	             250);
	char *env, *data;
	size_t dlen;
	cr_assert(ob_sink_wait(&s, 1, WAIT_MS, &env, &data, &dlen),
	          "the 8-bit body was not relayed");
	cr_expect(strstr(env, "params SIZE=") != NULL && strstr(env, "BODY=8BITMIME") != NULL &&
	              strstr(env, "SMTPUTF8") == NULL,
	          "%s", env);
	cr_assert(dlen >= sizeof(m3) - 1);
	cr_expect(memcmp(data + dlen - (sizeof(m3) - 1), m3, sizeof(m3) - 1) == 0);
	free(env);
	free(data);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* RFC 6531 3.2: the MX of a U-label domain is looked up as its A-label
 * (the DNS responder knows only that name, and records every question);
 * the recipient goes to the MX host with its U-labels under SMTPUTF8. */
Test(smtputf8, mx_lookup_uses_the_a_label)
{
	struct sink s;
	static const char *const u8[] = {"--smtputf8", NULL};
	ob_base_conf(&D);
	int port = h_free_port(), dport = h_free_port();
	ob_sink_start(&s, D.dir, "sink", "127.0.0.4", port, u8);
	char zone[H_PATH + 16], ready[H_PATH + 16], qlog[H_PATH + 16], dp[16];
	snprintf(zone, sizeof(zone), "%s/zone", D.dir);
	snprintf(ready, sizeof(ready), "%s/dns.ready", D.dir);
	snprintf(qlog, sizeof(qlog), "%s/dns.questions", D.dir);
	const char *z = "xn--bcher-kva.test MX 10 mx.xn--bcher-kva.test\n"
	                "mx.xn--bcher-kva.test A 127.0.0.4\n";
	cr_assert_eq(h_write_file(zone, z, strlen(z), 0644), 0);
	cr_assert_eq(h_write_file(qlog, "", 0, 0644), 0);
	snprintf(dp, sizeof(dp), "%d", dport);
	char *dargs[] = {dp, zone, ready, qlog, NULL};
	pid_t dns = ob_start_py("t/integration/dns_responder.py", ready, dargs);
	h_set(&D, "dns_servers", "127.0.0.1:%d", dport);
	h_set(&D, "default_transport", "smtp::%d", port);
	h_daemon_start(&D);

	static const char msg[] = "From: bob@local.test\r\nSubject: mx\r\n\r\nHallo\r\n";
	const char *rcpts[] = {JOERG "@b\xc3\xbc"
	                             "cher.test",
	                       NULL};
	cr_assert_eq(utf8_send(D.port, "bob@local.test", "SMTPUTF8", rcpts, msg, sizeof(msg) - 1),
	             250);
	char *env;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 30);
	cr_assert(got, "not delivered through the MX of the A-label");
	cr_expect(strstr(env, "rcpt " JOERG "@b\xc3\xbc"
	                      "cher.test\n") != NULL,
	          "%s", env);
	cr_expect(strstr(env, " SMTPUTF8") != NULL, "%s", env);
	size_t qlen;
	char *q = h_read_file(qlog, &qlen);
	cr_assert_not_null(q);
	cr_expect(h_contains(q, qlen, "xn--bcher-kva.test MX"), "questions:\n%s", q);
	free(q);
	free(env);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	ob_stop_py(dns);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* A backup MX that verifies recipients with its primary (recipient_verify
 * = smtp:) asks about a UTF-8 address under SMTPUTF8, since the primary (a
 * second tempomxd) would refuse it without (553 5.6.7); the message then
 * reaches the primary's UTF-8 Maildir through the backup. */
Test(smtputf8, backup_mx_verifies_utf8_recipients)
{
	static struct h_daemon P;
	char table[H_PATH + 32], md[H_PATH + 64];
	ob_base_conf(&P);
	h_set(&P, "local_domains", "relay.test");
	snprintf(table, sizeof(table), "%s/recipients", P.dir);
	static const char users[] = JOERG "@relay.test\n";
	cr_assert_eq(h_write_file(table, users, sizeof(users) - 1, 0644), 0);
	h_set(&P, "recipients", "%s", table);
	h_daemon_start(&P);
	ob_base_conf(&D);
	h_set(&D, "hostname", "backup.example.test");
	h_set(&D, "relay_domains", "relay.test");
	h_set(&D, "transport", "relay.test=smtp:[127.0.0.1]:%d", P.port);
	h_set(&D, "recipient_verify", "smtp:[127.0.0.1]:%d", P.port);
	h_daemon_start(&D);

	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test> SMTPUTF8");
	h_expect(&c, 250, "RCPT TO:<" JOERG "@relay.test>");
	h_expect(&c, 550, "RCPT TO:<n\xc3\xa9mo@relay.test>");
	h_expect(&c, 250, "RSET");
	h_expect(&c, 221, "QUIT");
	h_close(&c);

	static const char msg[] =
	    "From: someone@remote.test\r\nSubject: " GRUESSE "\r\n\r\nvia the backup\r\n";
	const char *rcpts[] = {JOERG "@relay.test", NULL};
	cr_assert_eq(utf8_send(D.port, "someone@remote.test", "SMTPUTF8 BODY=8BITMIME", rcpts, msg,
	                       sizeof(msg) - 1),
	             250);
	h_maildir(&P, "relay.test", JOERG, md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_expect_eq(n, 1, "the message did not reach the primary");
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
	h_daemon_stop(&P);
	h_check_sanitizers(&P);
	h_daemon_free(&P);
}

/* The UTF-8 header field may come after more than 64 KiB of ASCII ones
 * (header_size_limit allows 100 KiB): the whole header section is looked
 * at, so the message still never reaches a next hop without SMTPUTF8. */
Test(smtputf8, utf8_header_after_a_long_ascii_header)
{
	struct sink s;
	ob_base_conf(&D);
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	size_t cap = 80 * 1024, len = 0;
	char *msg = malloc(cap);
	cr_assert_not_null(msg);
	len += (size_t)snprintf(msg, cap, "From: erin@local.test\r\n");
	for (int i = 0; len + 1000 < 72 * 1024; i++) {
		int n = snprintf(msg + len, cap - len, "X-Filler-%d: ", i);
		len += (size_t)n;
		memset(msg + len, 'f', 900);
		len += 900;
		memcpy(msg + len, "\r\n", 2);
		len += 2;
	}
	len += (size_t)snprintf(msg + len, cap - len, "Subject: late " GRUESSE "\r\n\r\nbody\r\n");
	const char *rcpts[] = {"plain@remote.test", NULL};
	cr_assert_eq(utf8_send(D.port, "erin@local.test", "SMTPUTF8", rcpts, msg, len), 250);
	char md[H_PATH];
	h_maildir(&D, "local.test", "erin", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_expect_eq(n, 1, "no bounce reached erin");
	cr_expect_eq(ob_sink_count(&s), 0, "the UTF-8 header reached a hop without SMTPUTF8");
	free(msg);
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}
