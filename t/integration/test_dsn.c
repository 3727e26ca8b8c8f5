/*
 * test_dsn.c: Delivery Status Notifications (RFC 3461, reports in the
 * RFC 3464 format) end to end. Python's smtplib sends RET, ENVID,
 * NOTIFY and ORCPT to the real tempomxd; the reports that come back to
 * the sender's Maildir are parsed with Python's email package and their
 * fields checked; what reaches a next hop is what the capture sink
 * (outbound_sink.py, with and without --dsn) saw on the wire. Raw sockets
 * send the malformed parameters no client would. The last tests mix DSN
 * with SMTPUTF8: next hops with both, either or neither, and reports of
 * SMTPUTF8 messages in the RFC 6533 form with the DSN fields.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "outbound.h"

TestSuite(dsn, .init = h_setup, .fini = h_teardown, .timeout = 90);

static struct h_daemon D;

/* smtplib: "sendmail" mode uses sendmail(..., mail_options,
 * rcpt_options) with the first recipient's options for all; "each" mode
 * gives each recipient its own options (mail(), rcpt(), data()). Every
 * argument after the message file is "address|option|option...". */
static const char py_send[] =
    "import smtplib, sys\n"
    "port, sender, mode, mailopts, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], "
    "sys.argv[4], sys.argv[5]\n"
    "rcpts = [a.split('|') for a in sys.argv[6:]]\n"
    "mo = [o for o in mailopts.split('|') if o]\n"
    "msg = open(path, 'rb').read()\n"
    "with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.test', "
    "timeout=20) as s:\n"
    "    s.ehlo()\n"
    "    if not s.has_extn('dsn'):\n"
    "        sys.exit('DSN is not offered: %r' % s.esmtp_features)\n"
    "    if mode == 'sendmail':\n"
    "        refused = s.sendmail(sender, [r[0] for r in rcpts], msg, mail_options=mo,\n"
    "                             rcpt_options=rcpts[0][1:])\n"
    "        if refused:\n"
    "            sys.exit('refused: %r' % refused)\n"
    "    else:\n"
    "        code, text = s.mail(sender, mo)\n"
    "        if code != 250:\n"
    "            sys.exit('MAIL: %d %r' % (code, text))\n"
    "        for r in rcpts:\n"
    "            code, text = s.rcpt(r[0], r[1:])\n"
    "            if code != 250:\n"
    "                sys.exit('RCPT %s: %d %r' % (r[0], code, text))\n"
    "        code, text = s.data(msg)\n"
    "        if code != 250:\n"
    "            sys.exit('DATA: %d %r' % (code, text))\n";

static void py_send_mail(const char *sender, const char *mode, const char *mailopts,
                         const char *msg, size_t len, const char *const *rcpts)
{
	char port[16], path[H_PATH];
	static int seq;
	snprintf(port, sizeof(port), "%d", D.port);
	snprintf(path, sizeof(path), "%s/msg%d.eml", D.dir, ++seq);
	cr_assert_eq(h_write_file(path, msg, len, 0644), 0);
	char *argv[16] = {"/usr/bin/python3", "-c",         (char *)py_send,  port,
	                  (char *)sender,     (char *)mode, (char *)mailopts, path};
	int n = 8;
	for (int i = 0; rcpts[i] && n < 15; i++)
		argv[n++] = (char *)rcpts[i];
	argv[n] = NULL;
	char *out = NULL;
	int st = h_run(argv, NULL, 0, 30000, &out, NULL);
	cr_assert_eq(st, 0, "smtplib exit %d:\n%s", st, out ? out : "");
	free(out);
}

/* The report at path, parsed: m (the message), msgf (per-message
 * fields), rcpts (per-recipient fields by Final-Recipient address),
 * ctype3 and text3 (the returned part). Each expression must hold. */
static const char py_check[] =
    "import email, sys\n"
    "m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n"
    "assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
    "assert m.get_param('report-type') == 'delivery-status'\n"
    "parts = m.get_payload()\n"
    "assert len(parts) == 3, len(parts)\n"
    "assert parts[0].get_content_type() == 'text/plain'\n"
    "assert parts[1].get_content_type() == 'message/delivery-status'\n"
    "blocks = parts[1].get_payload()\n"
    "msgf = blocks[0]\n"
    "rcpts = {}\n"
    "for b in blocks[1:]:\n"
    "    t, a = b['Final-Recipient'].split(';', 1)\n"
    "    assert t.strip() == 'rfc822', t\n"
    "    rcpts[a.strip()] = b\n"
    "ctype3 = parts[2].get_content_type()\n"
    "if ctype3 == 'message/rfc822':\n"
    "    text3 = parts[2].get_payload()[0].as_string()\n"
    "else:\n"
    "    text3 = parts[2].get_payload()\n"
    "for e in sys.argv[2:]:\n"
    "    if not eval(e):\n"
    "        sys.exit('does not hold: %s\\nper message: %r\\nrecipients: %r\\n"
    "part 3 %s: %.400r' % (e, msgf.items(), {k: v.items() for k, v in rcpts.items()}, "
    "ctype3, text3))\n";

static void check_report(const char *path, const char *const *exprs)
{
	char *argv[32] = {"/usr/bin/python3", "-c", (char *)py_check, (char *)path};
	int n = 4;
	for (int i = 0; exprs[i] && n < 31; i++)
		argv[n++] = (char *)exprs[i];
	argv[n] = NULL;
	char *out = NULL;
	int st = h_run(argv, NULL, 0, 20000, &out, NULL);
	cr_expect_eq(st, 0, "report %s:\n%s", path, out ? out : "");
	free(out);
}

/* The one report in bob@local.test's Maildir (the sender of the tests). */
static char *one_report(void)
{
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 40);
	cr_assert_eq(n, 1, "no report reached the sender");
	char **files;
	cr_assert_eq(h_maildir_list(md, &files), 1);
	char *p = strdup(files[0]);
	h_free_list(files, 1);
	return p;
}

static int sender_reports(void)
{
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	return h_maildir_count(md);
}

static void sink_conf(struct sink *s, const char *const *extra)
{
	ob_base_conf(&D);
	ob_sink_start(s, D.dir, "sink", "127.0.0.1", h_free_port(), extra);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s->port);
	h_daemon_start(&D);
}

static void finish(struct sink *s)
{
	h_daemon_stop(&D);
	if (s)
		ob_stop_py(s->pid);
	h_check_sanitizers(&D);
}

/* NOTIFY=SUCCESS on local delivery: a "delivered" report with the ENVID
 * and ORCPT decoded from xtext, and only the headers (RET=HDRS). */
Test(dsn, smtplib_success_report_for_local_delivery)
{
	ob_base_conf(&D);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("dsn success", "dsn-ok-1", &len);
	const char *rcpts[] = {
	    "alice@local.test|NOTIFY=SUCCESS,FAILURE|ORCPT=rfc822;Alice+2BX@local.test", NULL};
	py_send_mail("bob@local.test", "sendmail", "RET=HDRS|ENVID=QQ+2B1", msg, len, rcpts);
	char md[H_PATH];
	h_maildir(&D, "local.test", "alice", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 1, WAIT_MS), 1, "alice got nothing");
	char *rep = one_report();
	static const char *const want[] = {
	    "m['Subject'] == 'Successful Mail Delivery Report'",
	    "m['To'] == '<bob@local.test>'",
	    "m['Auto-Submitted'] == 'auto-replied'",
	    "msgf['Reporting-MTA'] == 'dns; mx.example.test'",
	    "msgf['Original-Envelope-Id'] == 'QQ+1'",
	    "list(rcpts) == ['alice@local.test']",
	    "rcpts['alice@local.test']['Action'] == 'delivered'",
	    "rcpts['alice@local.test']['Status'] == '2.0.0'",
	    "rcpts['alice@local.test']['Original-Recipient'] == 'rfc822;Alice+X@local.test'",
	    "ctype3 == 'text/rfc822-headers'",
	    "'Subject: dsn success' in text3",
	    "'First line of the body' not in text3",
	    NULL};
	check_report(rep, want);
	cr_expect(h_log_wait(&D, "sender delivery notification for 1 recipient", 5000));
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(300);
	cr_expect_eq(sender_reports(), 1, "one report only");
	free(rep);
	free(msg);
	finish(NULL);
}

/* The RCPT's parameters wait with it while the mail store is asked about
 * the recipient (recipient_verify, an LMTP probe to the sink). */
Test(dsn, parameters_survive_recipient_verification)
{
	struct sink s;
	static const char *const lm[] = {"--lmtp", NULL};
	ob_base_conf(&D);
	ob_sink_start(&s, D.dir, "store", "127.0.0.1", h_free_port(), lm);
	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("dsn verify", "dsn-verify-1", &len);
	const char *rcpts[] = {"alice@local.test|NOTIFY=SUCCESS|ORCPT=rfc822;A+2B1@local.test",
	                       "carol@local.test|NOTIFY=SUCCESS", NULL};
	py_send_mail("bob@local.test", "each", "ENVID=v1", msg, len, rcpts);
	char *rep = one_report();
	static const char *const want[] = {
	    "sorted(rcpts) == ['alice@local.test', 'carol@local.test']",
	    "rcpts['alice@local.test']['Original-Recipient'] == 'rfc822;A+1@local.test'",
	    "rcpts['carol@local.test']['Original-Recipient'] is None",
	    "rcpts['carol@local.test']['Action'] == 'delivered'",
	    "msgf['Original-Envelope-Id'] == 'v1'",
	    NULL};
	check_report(rep, want);
	free(rep);
	free(msg);
	finish(&s);
}

/* A next hop that offers DSN gets the parameters (re-encoded as xtext),
 * even after a deferral appended a record to the envelope, and reports
 * itself: no report from us. */
Test(dsn, parameters_passed_to_a_next_hop_that_offers_dsn)
{
	struct sink s;
	static const char *const extra[] = {"--dsn", "--tempfail", "1", NULL};
	sink_conf(&s, extra);
	size_t len;
	char *msg = h_make_message("dsn relay", "dsn-relay-1", &len);
	const char *rcpts[] = {"x@remote.test|NOTIFY=SUCCESS|ORCPT=rfc822;x+2By@remote.test",
	                       "y@remote.test", NULL};
	py_send_mail("bob@local.test", "each", "RET=FULL|ENVID=QQ+2B1", msg, len, rcpts);
	char *env = NULL;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 40);
	cr_assert(got, "nothing reached the next hop");
	cr_expect(h_log_has(&D, "status=deferred (451 4.3.0 try again later)"),
	          "the first attempt was not deferred");
	cr_expect(strstr(env, " RET=FULL ENVID=QQ+2B1\n") != NULL, "MAIL parameters:\n%s", env);
	cr_expect(strstr(env, "\nrcpt-params NOTIFY=SUCCESS ORCPT=rfc822;x+2By@remote.test\n"
	                      "rcpt-params \n") != NULL,
	          "RCPT parameters:\n%s", env);
	cr_expect(h_log_wait(&D, "to=<x@remote.test>, NOTIFY=SUCCESS passed on to", 5000));
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(500);
	cr_expect_eq(sender_reports(), 0, "we reported what the next hop reports");
	free(env);
	free(msg);
	finish(&s);
}

/* A next hop without DSN gets no DSN parameters, and the sender who asked
 * for success hears "relayed" from us. */
Test(dsn, relayed_report_for_a_next_hop_without_dsn)
{
	struct sink s;
	sink_conf(&s, NULL);
	size_t len;
	char *msg = h_make_message("dsn plain", "dsn-plain-1", &len);
	const char *rcpts[] = {"x@remote.test|NOTIFY=SUCCESS,FAILURE",
	                       "y@remote.test|NOTIFY=FAILURE", NULL};
	py_send_mail("bob@local.test", "each", "ENVID=plain1", msg, len, rcpts);
	char *env = NULL;
	cr_assert(ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL), "nothing reached the next hop");
	cr_expect(strstr(env, "RET=") == NULL && strstr(env, "ENVID=") == NULL &&
	              strstr(env, "NOTIFY=") == NULL,
	          "DSN parameters sent to a server that does not offer DSN:\n%s", env);
	char *rep = one_report();
	static const char *const want[] = {
	    "m['Subject'] == 'Successful Mail Delivery Report'",
	    "msgf['Original-Envelope-Id'] == 'plain1'",
	    "list(rcpts) == ['x@remote.test']",
	    "rcpts['x@remote.test']['Action'] == 'relayed'",
	    "rcpts['x@remote.test']['Status'] == '2.0.0'",
	    "rcpts['x@remote.test']['Diagnostic-Code'] == 'smtp; 250 2.0.0 queued as 1'",
	    "rcpts['x@remote.test']['Original-Recipient'] is None",
	    NULL};
	check_report(rep, want);
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(300);
	cr_expect_eq(sender_reports(), 1);
	free(rep);
	free(env);
	free(msg);
	finish(&s);
}

/* LMTP is final delivery (RFC 2033): without DSN at the LMTP server the
 * report says "delivered", not "relayed". */
Test(dsn, lmtp_delivery_reports_delivered)
{
	struct sink s;
	static const char *const lm[] = {"--lmtp", NULL};
	ob_base_conf(&D);
	ob_sink_start(&s, D.dir, "lmtp", "127.0.0.1", h_free_port(), lm);
	h_set(&D, "transport", "remote.test=lmtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("dsn lmtp", "dsn-lmtp-1", &len);
	const char *rcpts[] = {"x@remote.test|NOTIFY=SUCCESS", NULL};
	py_send_mail("bob@local.test", "each", "", msg, len, rcpts);
	char *rep = one_report();
	static const char *const want[] = {
	    "rcpts['x@remote.test']['Action'] == 'delivered'",
	    "rcpts['x@remote.test']['Status'] == '2.0.0'",
	    "rcpts['x@remote.test']['Diagnostic-Code'] == 'smtp; 250 2.0.0 <x@remote.test> "
	    "delivered'",
	    NULL};
	check_report(rep, want);
	free(rep);
	free(msg);
	finish(&s);
}

/* Failures: NEVER and a NOTIFY without FAILURE get no report (logged);
 * the others are in one report, RET=HDRS returning the headers only. */
Test(dsn, never_and_hdrs_on_failure)
{
	struct sink s;
	sink_conf(&s, NULL);
	size_t len;
	char *msg = h_make_message("dsn fail", "dsn-fail-1", &len);
	const char *rcpts[] = {"unknown1@remote.test|NOTIFY=NEVER",
	                       "unknown2@remote.test|NOTIFY=SUCCESS,DELAY", "unknown3@remote.test",
	                       "unknown4@remote.test|NOTIFY=FAILURE|ORCPT=rfc822;U4@remote.test",
	                       NULL};
	py_send_mail("bob@local.test", "each", "RET=HDRS", msg, len, rcpts);
	char *rep = one_report();
	static const char *const want[] = {
	    "m['Subject'] == 'Undelivered Mail Returned to Sender'",
	    "sorted(rcpts) == ['unknown3@remote.test', 'unknown4@remote.test']",
	    "rcpts['unknown3@remote.test']['Action'] == 'failed'",
	    "rcpts['unknown3@remote.test']['Status'] == '5.1.1'",
	    "rcpts['unknown4@remote.test']['Original-Recipient'] == 'rfc822;U4@remote.test'",
	    "msgf['Original-Envelope-Id'] is None",
	    "ctype3 == 'text/rfc822-headers'",
	    "'X-Token: dsn-fail-1' in text3",
	    "'First line of the body' not in text3",
	    NULL};
	check_report(rep, want);
	cr_expect(h_log_has(&D, "to=<unknown1@remote.test>, status=bounced, NOTIFY=NEVER: no "
	                        "notification"));
	cr_expect(h_log_has(&D, "to=<unknown2@remote.test>, status=bounced, "
	                        "NOTIFY=SUCCESS,DELAY: no notification"));
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(300);
	cr_expect_eq(sender_reports(), 1, "one report per message");
	free(rep);
	free(msg);
	finish(&s);
}

/* RET=FULL returns the whole message; one over the size cap only its
 * headers, saying so. NOTIFY=NEVER alone: nothing at all. */
Test(dsn, ret_full_and_its_size_cap)
{
	struct sink s;
	sink_conf(&s, NULL);
	size_t len;
	char *msg = h_make_message("dsn full", "dsn-full-1", &len);
	const char *rcpts[] = {"unknown@remote.test|NOTIFY=FAILURE", NULL};
	py_send_mail("bob@local.test", "each", "RET=FULL", msg, len, rcpts);
	char *rep = one_report();
	static const char *const want[] = {"ctype3 == 'message/rfc822'",
	                                   "'X-Token: dsn-full-1' in text3",
	                                   "'First line of the body, token dsn-full-1.' in text3",
	                                   "'Last line.' in text3",
	                                   "'It is attached below.' in parts[0].get_payload()",
	                                   NULL};
	check_report(rep, want);
	cr_expect(h_spool_wait_idle(&D, 5000));
	char md[H_PATH];
	h_maildir(&D, "local.test", "bob", md, sizeof(md));
	char **files;
	cr_assert_eq(h_maildir_list(md, &files), 1);
	for (int i = 0; i < 1; i++)
		unlink(files[i]);
	h_free_list(files, 1);

	/* 100 KB: over the 64 KiB that a report returns. */
	size_t blen = 100 * 1024;
	char *big = malloc(len + blen);
	cr_assert_not_null(big);
	memcpy(big, msg, len);
	for (size_t i = 0; i < blen; i += 64)
		memcpy(big + len + i,
		       "0123456789012345678901234567890123456789012345678901234567890\r\n", 64);
	py_send_mail("bob@local.test", "each", "RET=FULL", big, len + blen, rcpts);
	free(rep);
	rep = one_report();
	static const char *const cut[] = {
	    "ctype3 == 'text/rfc822-headers'", "'X-Token: dsn-full-1' in text3",
	    "'0123456789' not in text3",
	    "'too large to be returned whole' in ' '.join(parts[0].get_payload().split())", NULL};
	check_report(rep, cut);
	cr_expect(h_spool_wait_idle(&D, 5000));
	unlink(rep);

	const char *never[] = {"unknown@remote.test|NOTIFY=NEVER", NULL};
	py_send_mail("bob@local.test", "each", "RET=FULL", msg, len, never);
	cr_expect(h_log_wait(&D, "NOTIFY=NEVER: no notification", WAIT_MS));
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(500);
	cr_expect_eq(sender_reports(), 0, "NOTIFY=NEVER was bounced");
	free(rep);
	free(big);
	free(msg);
	finish(&s);
}

/* delay_warning_time warns those who asked for DELAY, and those who gave
 * no NOTIFY (as before DSN), never the others. */
Test(dsn, delay_warning_only_when_asked)
{
	ob_base_conf(&D);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", h_free_port());
	h_set(&D, "delay_warning_time", "2s");
	h_set(&D, "retry_max", "1s");
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("dsn slow", "dsn-delay-1", &len);
	const char *rcpts[] = {"far1@remote.test|NOTIFY=FAILURE", "far2@remote.test|NOTIFY=DELAY",
	                       "far3@remote.test", "far4@remote.test|NOTIFY=NEVER", NULL};
	py_send_mail("bob@local.test", "each", "", msg, len, rcpts);
	char *rep = one_report();
	static const char *const want[] = {
	    "m['Subject'].startswith('Delayed Mail')",
	    "sorted(rcpts) == ['far2@remote.test', 'far3@remote.test']",
	    "rcpts['far2@remote.test']['Action'] == 'delayed'",
	    "rcpts['far3@remote.test']['Status'] == '4.4.1'", NULL};
	check_report(rep, want);
	cr_expect(h_log_has(&D, "to=<far1@remote.test>, NOTIFY=FAILURE: no delay notification"));
	cr_expect(h_log_has(&D, "to=<far4@remote.test>, NOTIFY=NEVER: no delay notification"));
	/* The queue listing shows each recipient's NOTIFY. */
	char ctl[H_PATH];
	const char *e = getenv("TEMPOMXCTL");
	snprintf(ctl, sizeof(ctl), "%s", e && *e ? e : "./tempomxctl");
	char *argv[] = {ctl, "-f", D.conf, "queue", "--json", NULL};
	char *out = NULL;
	cr_expect_eq(h_run(argv, NULL, 0, 20000, &out, NULL), 0, "%s", out ? out : "");
	cr_expect(out && strstr(out, "\"address\":\"far2@remote.test\"") &&
	              strstr(out, "\"notify\":\"DELAY\"") && strstr(out, "\"notify\":\"NEVER\"") &&
	              strstr(out, "\"notify\":null"),
	          "queue --json: %s", out ? out : "");
	free(out);
	free(rep);
	free(msg);
	finish(NULL);
}

/* Malformed DSN parameters (RFC 3461 section 4) get 501 5.5.4 and a log
 * line; the parameters do not exist after HELO (555). */
Test(dsn, malformed_parameters_are_refused)
{
	struct h_conn c;
	ob_base_conf(&D);
	h_set(&D, "max_errors", "100");
	h_daemon_start(&D);
	char id101[160], orcpt501[600], cmd[700];
	memset(id101, 'i', 101);
	id101[101] = '\0';
	h_open(&c, "127.0.0.1", D.port);
	h_expect(&c, 250, "EHLO client.example.test");
	cr_expect(h_last_has(&c, "250-DSN\r\n") || h_last_has(&c, "250 DSN\r\n"),
	          "DSN is not offered: %s", c.last);
	static const char *const bad_mail[] = {
	    "RET=ALL",    "RET",           "RET=FULL RET=HDRS", "ENVID=a+2",
	    "ENVID=a+2b", "ENVID=a+0D+0A", "ENVID=x ENVID=y",   "ENVID=",
	};
	for (size_t i = 0; i < sizeof(bad_mail) / sizeof(bad_mail[0]); i++) {
		h_expect(&c, 501, "MAIL FROM:<bob@local.test> %s", bad_mail[i]);
		cr_expect(h_last_has(&c, "5.5.4"), "%s: %s", bad_mail[i], c.last);
	}
	h_expect(&c, 501, "MAIL FROM:<bob@local.test> ENVID=%s", id101);
	id101[100] = '\0';
	h_expect(&c, 250, "MAIL FROM:<bob@local.test> ENVID=%s RET=hdrs", id101);
	static const char *const bad_rcpt[] = {
	    "NOTIFY=NEVER,SUCCESS",
	    "NOTIFY=SUCCESS,NEVER",
	    "NOTIFY=SUCCESS NOTIFY=DELAY",
	    "NOTIFY=FAILURE,FAILURE",
	    "NOTIFY=SOMETIMES",
	    "NOTIFY=",
	    "ORCPT=alice@local.test",
	    "ORCPT=rfc822;alice+40local.test+",
	    "ORCPT=rfc822;a ORCPT=rfc822;b",
	    "ORCPT=rfc822;al+0Aice@local.test",
	};
	for (size_t i = 0; i < sizeof(bad_rcpt) / sizeof(bad_rcpt[0]); i++) {
		h_expect(&c, 501, "RCPT TO:<alice@local.test> %s", bad_rcpt[i]);
		cr_expect(h_last_has(&c, "5.5.4"), "%s: %s", bad_rcpt[i], c.last);
	}
	memcpy(orcpt501, "rfc822;", 7);
	memset(orcpt501 + 7, 'a', 494);
	orcpt501[501] = '\0';
	snprintf(cmd, sizeof(cmd), "RCPT TO:<alice@local.test> ORCPT=%s", orcpt501);
	cr_expect_eq(h_cmd(&c, "%s", cmd), 501, "501-octet ORCPT: %s", c.last);
	orcpt501[500] = '\0';
	snprintf(cmd, sizeof(cmd), "RCPT TO:<alice@local.test> ORCPT=%s", orcpt501);
	cr_expect_eq(h_cmd(&c, "%s", cmd), 250, "500-octet ORCPT: %s", c.last);
	h_expect(&c, 250, "RCPT TO:<carol@local.test> NOTIFY=delay,success ORCPT=rfc822;c+2B1");
	h_expect(&c, 250, "RSET");
	h_expect(&c, 250, "HELO client.example.test");
	h_expect(&c, 555, "MAIL FROM:<bob@local.test> RET=HDRS");
	h_expect(&c, 250, "MAIL FROM:<bob@local.test>");
	h_expect(&c, 555, "RCPT TO:<alice@local.test> NOTIFY=NEVER");
	h_expect(&c, 555, "RCPT TO:<alice@local.test> ORCPT=rfc822;alice@local.test");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_has(&D, "501 5.5.4 Bad parameter syntax: ENVID"), "not logged");
	cr_expect(h_log_has(&D, "501 5.5.4 Parameter given twice: NOTIFY"), "not logged");
	cr_expect(h_log_has(&D, "501 5.5.4 Bad parameter syntax: ORCPT"), "not logged");
	cr_expect(h_log_has(&D, "555 5.5.4 Unsupported parameter: RET"), "not logged");
	finish(NULL);
}

/* Backscatter (issue 14): mail judged junk gets no report of any kind,
 * whatever NOTIFY asks for. */
Test(dsn, junk_gets_no_report)
{
	struct sink s;
	struct h_conn c;
	ob_base_conf(&D);
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), NULL);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", s.port);
	h_set(&D, "relay_domains", "remote.test");
	h_set(&D, "greet_pause", "1s");
	h_set(&D, "timing_junk_action", "log");
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("dsn junk", "dsn-junk-1", &len);
	/* Talks before the banner: a junk verdict. */
	cr_assert_eq(h_connect(&c, "127.0.0.20", D.port), 0);
	h_send(&c, "EHLO rat.example.test\r\n", 23);
	cr_expect_eq(h_reply(&c, 5000), 220);
	cr_expect_eq(h_reply(&c, 5000), 250);
	h_expect(&c, 250, "MAIL FROM:<bob@local.test> RET=FULL");
	h_expect(&c, 250, "RCPT TO:<alice@local.test> NOTIFY=SUCCESS,FAILURE");
	h_expect(&c, 250, "RCPT TO:<unknown@remote.test> NOTIFY=SUCCESS,FAILURE");
	h_expect(&c, 354, "DATA");
	size_t dl;
	char *d = h_dotstuff(msg, len, &dl);
	h_send(&c, d, dl);
	cr_expect_eq(h_reply(&c, 10000), 250, "%s", c.last);
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_wait(&D, "junk: dropped without notification", WAIT_MS));
	cr_expect(h_log_wait(&D,
	                     "to=<alice@local.test>, NOTIFY=SUCCESS,FAILURE: no delivery "
	                     "notification (junk)",
	                     WAIT_MS));
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(500);
	cr_expect_eq(sender_reports(), 0, "junk got a report");
	free(d);
	free(msg);
	finish(&s);
}

/* DSN together with SMTPUTF8 (RFC 6531, reports in the RFC 6533 form).
 * "j\u00f6rg", UTF-8 in C. */
#define JOERG "j\xc3\xb6rg"

/* The one report in the sender's Maildir is an RFC 6533 report whose
 * parts are, in order, of the types in want3 (a Python list), and whose
 * text holds each of needles. The report is removed afterwards. */
static void check_global_report(const char *want3, const char *const *needles)
{
	static const char script[] =
	    "import email, sys\n"
	    "m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n"
	    "assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
	    "assert m.get_param('report-type') == 'global-delivery-status', m.get_params()\n"
	    "got = [x.get_content_type() for x in m.get_payload()]\n"
	    "assert got == eval(sys.argv[2]), got\n";
	char *rep = one_report();
	char *argv[] = {"/usr/bin/python3", "-c", (char *)script, rep, (char *)want3, NULL};
	char *out = NULL;
	int st = h_run(argv, NULL, 0, 20000, &out, NULL);
	cr_expect_eq(st, 0, "report %s:\n%s", rep, out ? out : "");
	free(out);
	size_t len;
	char *f = h_read_file(rep, &len);
	cr_assert_not_null(f);
	for (int i = 0; needles[i]; i++)
		cr_expect(h_contains(f, len, needles[i]), "no \"%s\" in:\n%s", needles[i], f);
	free(f);
	unlink(rep);
	free(rep);
}

/* Does the line of the sink's record that begins with key (key starts
 * with the LF before it) hold what? */
static int env_line_has(const char *env, const char *key, const char *what)
{
	const char *p = strstr(env, key);
	if (p == NULL)
		return 0;
	const char *e = strchr(p + 1, '\n');
	size_t n = e ? (size_t)(e - p) : strlen(p);
	char *line = strndup(p, n);
	int r = strstr(line, what) != NULL;
	free(line);
	return r;
}

/* A next hop that offers both gets SMTPUTF8 and RET/ENVID on MAIL and
 * NOTIFY/ORCPT with the UTF-8 recipient. A recipient it refuses comes
 * back to the sender in the RFC 6533 form with the DSN fields, and under
 * RET=FULL the whole message as message/global. */
Test(dsn, smtputf8_and_dsn_to_a_hop_that_offers_both)
{
	struct sink s;
	static const char *const extra[] = {"--dsn", "--smtputf8", NULL};
	sink_conf(&s, extra);
	size_t len;
	char *msg = h_make_message("dsn utf8", "dsn-utf8-1", &len);
	const char *rcpts[] = {JOERG "@remote.test|NOTIFY=SUCCESS|ORCPT=rfc822;joerg@remote.test",
	                       NULL};
	py_send_mail("bob@local.test", "each", "SMTPUTF8|RET=FULL|ENVID=u8+2Benv", msg, len, rcpts);
	char *env = NULL;
	int got = ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL);
	if (!got)
		h_dump_log(&D, 40);
	cr_assert(got, "nothing reached the next hop");
	cr_expect(env_line_has(env, "\nmail-params ", " SMTPUTF8"), "no SMTPUTF8:\n%s", env);
	cr_expect(env_line_has(env, "\nmail-params ", " RET=FULL ENVID=u8+2Benv"),
	          "no DSN parameters on MAIL:\n%s", env);
	cr_expect(strstr(env, "\nrcpt " JOERG "@remote.test\n") != NULL, "%s", env);
	cr_expect(strstr(env, "\nrcpt-params NOTIFY=SUCCESS ORCPT=rfc822;joerg@remote.test\n") !=
	              NULL,
	          "RCPT parameters:\n%s", env);
	free(env);
	cr_expect(h_spool_wait_idle(&D, 5000));
	h_sleep_ms(300);
	cr_expect_eq(sender_reports(), 0, "we reported what the next hop reports");

	const char *refused[] = {
	    "unknown" JOERG "@remote.test|NOTIFY=FAILURE|ORCPT=rfc822;u@remote.test", NULL};
	py_send_mail("bob@local.test", "each", "SMTPUTF8|RET=FULL|ENVID=u8fail", msg, len, refused);
	static const char *const want[] = {
	    "\r\nOriginal-Envelope-Id: u8fail\r\n",
	    "\r\nFinal-Recipient: utf-8; unknown" JOERG "@remote.test\r\n"
	    "Original-Recipient: rfc822;u@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
	    "Content-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n",
	    "First line of the body, token dsn-utf8-1.", NULL};
	check_global_report("['text/plain', 'message/global-delivery-status', 'message/global']",
	                    want);
	free(msg);
	finish(&s);
}

/* A next hop with DSN but without SMTPUTF8: an SMTPUTF8 message with
 * ASCII addresses and header goes there with RET/ENVID and without
 * SMTPUTF8; a UTF-8 recipient is never sent there and bounces with 5.6.7
 * in the RFC 6533 form, with its ENVID and ORCPT. */
Test(dsn, smtputf8_message_to_a_hop_with_dsn_only)
{
	struct sink s;
	static const char *const extra[] = {"--dsn", NULL};
	sink_conf(&s, extra);
	size_t len;
	char *msg = h_make_message("dsn ascii", "dsn-utf8-2", &len);
	const char *ascii[] = {"x@remote.test|NOTIFY=FAILURE", NULL};
	py_send_mail("bob@local.test", "each", "SMTPUTF8|RET=HDRS|ENVID=a1", msg, len, ascii);
	char *env = NULL;
	cr_assert(ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL), "nothing reached the next hop");
	cr_expect(env_line_has(env, "\nmail-params ", " RET=HDRS ENVID=a1"), "%s", env);
	cr_expect(!env_line_has(env, "\nmail-params ", "SMTPUTF8"),
	          "SMTPUTF8 sent to a server that does not offer it:\n%s", env);
	cr_expect(strstr(env, "\nrcpt-params NOTIFY=FAILURE\n") != NULL, "%s", env);
	free(env);

	const char *utf8[] = {JOERG "@remote.test|NOTIFY=FAILURE|ORCPT=rfc822;joerg@remote.test",
	                      NULL};
	py_send_mail("bob@local.test", "each", "SMTPUTF8|ENVID=u2", msg, len, utf8);
	static const char *const want[] = {
	    "\r\nOriginal-Envelope-Id: u2\r\n",
	    "\r\nFinal-Recipient: utf-8; " JOERG "@remote.test\r\n"
	    "Original-Recipient: rfc822;joerg@remote.test\r\nAction: failed\r\nStatus: 5.6.7\r\n",
	    NULL};
	check_global_report(
	    "['text/plain', 'message/global-delivery-status', 'message/global-headers']", want);
	cr_expect_eq(ob_sink_count(&s), 1, "a UTF-8 recipient reached a server without SMTPUTF8");
	free(msg);
	finish(&s);
}

/* A next hop with SMTPUTF8 but without DSN gets SMTPUTF8 and no DSN
 * parameter; who asked for success hears "relayed" from us, in the
 * RFC 6533 form. */
Test(dsn, smtputf8_message_to_a_hop_without_dsn)
{
	struct sink s;
	static const char *const extra[] = {"--smtputf8", NULL};
	sink_conf(&s, extra);
	size_t len;
	char *msg = h_make_message("dsn relayed utf8", "dsn-utf8-3", &len);
	const char *rcpts[] = {JOERG "@remote.test|NOTIFY=SUCCESS,FAILURE", NULL};
	py_send_mail("bob@local.test", "each", "SMTPUTF8|ENVID=u3", msg, len, rcpts);
	char *env = NULL;
	cr_assert(ob_sink_wait(&s, 1, WAIT_MS, &env, NULL, NULL), "nothing reached the next hop");
	cr_expect(env_line_has(env, "\nmail-params ", " SMTPUTF8"), "%s", env);
	cr_expect(strstr(env, "ENVID=") == NULL && strstr(env, "NOTIFY=") == NULL,
	          "DSN parameters sent to a server that does not offer DSN:\n%s", env);
	free(env);
	static const char *const want[] = {"\r\nOriginal-Envelope-Id: u3\r\n",
	                                   "\r\nFinal-Recipient: utf-8; " JOERG
	                                   "@remote.test\r\nAction: relayed\r\n"
	                                   "Status: 2.0.0\r\n",
	                                   NULL};
	check_global_report(
	    "['text/plain', 'message/global-delivery-status', 'message/global-headers']", want);
	free(msg);
	finish(&s);
}

/* A message sent with BDAT (CHUNKING, RFC 3030) keeps its DSN parameters
 * as one sent with DATA does: the success report has its ENVID and ORCPT. */
Test(dsn, bdat_message_keeps_its_parameters)
{
	struct h_conn c;
	ob_base_conf(&D);
	h_daemon_start(&D);
	size_t len;
	char *msg = h_make_message("dsn bdat", "dsn-bdat-1", &len);
	cr_assert_eq(h_connect(&c, "127.0.0.1", D.port), 0);
	cr_expect_eq(h_reply(&c, 5000), 220);
	h_expect(&c, 250, "EHLO client.example.test");
	cr_expect(h_last_has(&c, "CHUNKING") && h_last_has(&c, "DSN"), "%s", c.last);
	h_expect(&c, 250, "MAIL FROM:<bob@local.test> RET=HDRS ENVID=bdat+2B1");
	h_expect(&c, 250, "RCPT TO:<alice@local.test> NOTIFY=SUCCESS ORCPT=rfc822;a@local.test");
	char line[64];
	int n = snprintf(line, sizeof(line), "BDAT %zu LAST\r\n", len);
	cr_assert_eq(h_send(&c, line, (size_t)n), 0);
	cr_assert_eq(h_send(&c, msg, len), 0);
	cr_expect_eq(h_reply(&c, 10000), 250, "BDAT LAST: %s", c.last);
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	char *rep = one_report();
	static const char *const want[] = {
	    "m['Subject'] == 'Successful Mail Delivery Report'",
	    "msgf['Original-Envelope-Id'] == 'bdat+1'",
	    "rcpts['alice@local.test']['Action'] == 'delivered'",
	    "rcpts['alice@local.test']['Original-Recipient'] == 'rfc822;a@local.test'",
	    "'Subject: dsn bdat' in text3",
	    NULL};
	check_report(rep, want);
	free(rep);
	free(msg);
	finish(NULL);
}
