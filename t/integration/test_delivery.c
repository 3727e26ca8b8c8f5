/*
 * test_delivery.c: mail sent by real clients ends up in the Maildir,
 * octet for octet.
 *
 * Clients: swaks (plain, --pipeline, --tls), Python's smtplib
 * send_message, curl's SMTP client, msmtp, and raw sockets for what the
 * clients cannot be made to send (8-bit octets, 5 MB, over-size). Each
 * Maildir file must be header lines added by the server (at least one
 * Received:) followed by exactly the message the client sent, with CR LF
 * line ends (the harness sets maildir_crlf = yes to compare octets) and
 * dots unstuffed. With the default (maildir_crlf = no) the same message
 * is stored with LF line ends, and every file has one X-Tempomx-Class.
 * Loop detection at delivery uses the Received: count smtpd keeps in the
 * envelope, and reads the header only for files without one.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"

TestSuite(delivery, .init = h_setup, .fini = h_teardown, .timeout = 90);

static struct h_daemon D;
static struct h_conn C1;

#define CLIENT_TIMEOUT_MS 30000
#define DELIVERY_WAIT_MS 20000

/* Exactly one message in <domain>/<user>, and it is msg. */
static void expect_one_delivered(const char *domain, const char *user, const char *msg, size_t len)
{
	char md[H_PATH];
	char **files;
	const char *why;
	int n;

	h_maildir(&D, domain, user, md, sizeof(md));
	n = h_maildir_wait(md, 1, DELIVERY_WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 20);
	cr_assert_eq(n, 1, "%s holds %d messages, expected 1", md, n);
	/* Let the queue drain so a duplicate would show up too. */
	h_spool_wait_idle(&D, 5000);
	n = h_maildir_list(md, &files);
	cr_assert_eq(n, 1, "%s holds %d messages, expected 1", md, n);
	why = h_check_delivered(files[0], msg, len);
	cr_expect(why == NULL, "%s", why);
	h_free_list(files, n);
}

/* The Received: line we added names us and the client (RFC 5321 4.4). */
static void check_trace_header(const char *domain, const char *user)
{
	char md[H_PATH];
	char **files;
	int n;

	h_maildir(&D, domain, user, md, sizeof(md));
	n = h_maildir_list(md, &files);
	if (n >= 1) {
		size_t flen;
		char *f = h_read_file(files[0], &flen);
		const char *rcv = f ? strstr(f, "Received: from ") : NULL;
		size_t hl = 0;

		/* The header field ends at a CR LF not followed by a fold. */
		while (rcv && rcv[hl] &&
		       !(rcv[hl] == '\r' && rcv[hl + 1] == '\n' && rcv[hl + 2] != ' ' &&
		         rcv[hl + 2] != '\t'))
			hl++;

		cr_expect(rcv != NULL, "no \"Received: from\" line:\n%.400s", f ? f : "");
		cr_expect(h_contains(rcv, hl, "client.example.test"),
		          "Received: does not name the HELO:\n%.400s", rcv ? rcv : "");
		cr_expect(h_contains(rcv, hl, "127.0.0.1"),
		          "Received: does not give the client address:\n%.400s", rcv ? rcv : "");
		cr_expect(h_contains(rcv, hl, "by mx.example.test"),
		          "Received: does not say \"by\" our host name:\n%.400s", rcv ? rcv : "");
		free(f);
	}
	h_free_list(files, n);
}

/* The queue ID from a "250 ... queued as ID" reply in text, or "". */
static void queue_id(const char *text, char *id, size_t size)
{
	const char *p = text ? strstr(text, "queued as ") : NULL;
	size_t n = 0;

	if (p) {
		p += 10;
		while (isalnum((unsigned char)p[n]) && n + 1 < size)
			n++;
		memcpy(id, p, n);
	}
	id[n] = '\0';
}

static char *message_file(const char *name, const char *msg, size_t len)
{
	char *path = NULL;

	cr_assert(asprintf(&path, "%s/%s", D.dir, name) > 0);
	cr_assert_eq(h_write_file(path, msg, len, 0644), 0);
	return path;
}

static void run_swaks(const char *extra, const char *user, const char *subject)
{
	char port[16], to[64], id[64];
	size_t mlen, olen;
	char *msg = h_make_message(subject, subject, &mlen), *out = NULL;
	/* swaks ends the data with CR LF "." CR LF after what it was given,
	 * so give it the message without its last CR LF. */
	char *file = message_file("swaks.eml", msg, mlen - 2);
	char data[H_PATH + 8];
	char *argv[16];
	int argc = 0, st;

	snprintf(port, sizeof(port), "%d", D.port);
	snprintf(to, sizeof(to), "%s@localhost", user);
	snprintf(data, sizeof(data), "@%s", file);
	argv[argc++] = "swaks";
	argv[argc++] = "--server";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "--port";
	argv[argc++] = port;
	argv[argc++] = "--helo";
	argv[argc++] = "client.example.test";
	argv[argc++] = "--from";
	argv[argc++] = "sender@localhost";
	argv[argc++] = "--to";
	argv[argc++] = to;
	argv[argc++] = "--data";
	argv[argc++] = data;
	if (extra)
		argv[argc++] = (char *)extra;
	argv[argc] = NULL;

	st = h_run(argv, NULL, 0, CLIENT_TIMEOUT_MS, &out, &olen);
	cr_assert_eq(st, 0, "swaks %s exit %d:\n%s", extra ? extra : "", st, out);
	if (extra && strcmp(extra, "--tls") == 0)
		cr_expect(h_contains(out, olen, "TLS started"), "swaks did not start TLS:\n%s",
		          out);
	expect_one_delivered("localhost", user, msg, mlen);
	check_trace_header("localhost", user);

	/* The admin finds the message in the log by the ID the client got. */
	queue_id(out, id, sizeof(id));
	cr_expect(id[0] != '\0', "no queue ID in the 250 reply:\n%s", out);
	if (id[0])
		cr_expect(h_log_wait(&D, id, 5000), "queue ID %s is not in the log", id);
	free(out);
	free(file);
	free(msg);
}

Test(delivery, swaks_plain)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	run_swaks(NULL, "plain", "swaks-plain");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, swaks_pipeline)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	run_swaks("--pipeline", "piped", "swaks-pipeline");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, swaks_starttls)
{
	char md[H_PATH];
	char **files;
	size_t flen;
	int n;

	h_daemon_init(&D);
	h_set(&D, "smtp_tls", "yes");
	h_daemon_start(&D);
	run_swaks("--tls", "secure", "swaks-tls");
	/* The self-signed certificate was made at first start, in root's
	 * own directory. */
	cr_expect(h_spool_count(&D, "master/tls") > 0, "nothing in %s/master/tls", D.spool);
	/* The trace header says the mail came over TLS (RFC 3848). */
	h_maildir(&D, "localhost", "secure", md, sizeof(md));
	n = h_maildir_list(md, &files);
	if (n == 1) {
		char *f = h_read_file(files[0], &flen);
		const char *body = f ? strstr(f, "\r\n\r\n") : NULL;

		cr_expect(body && h_contains(f, (size_t)(body - f), "ESMTPS"),
		          "no \"with ESMTPS\" in the trace headers:\n%.600s", f ? f : "");
		free(f);
	}
	h_free_list(files, n);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Flattens the message exactly as smtplib.send_message() does (a
 * BytesGenerator with linesep CR LF), saves those octets for the test to
 * compare, then sends it. */
static const char python_client[] =
    "import copy, email.generator, email.message, io, smtplib, sys\n"
    "port, out = int(sys.argv[1]), sys.argv[2]\n"
    "m = email.message.EmailMessage()\n"
    "m['From'] = 'Py Sender <sender@localhost>'\n"
    "m['To'] = 'bob@localhost, carol@example.test'\n"
    "m['Subject'] = 'smtplib send_message'\n"
    "m['Date'] = 'Mon, 01 Jan 2024 12:00:00 +0000'\n"
    "m['Message-ID'] = '<py-1@client.example.test>'\n"
    "m.set_content('Hello from smtplib.\\n.A leading dot.\\n..\\n\\nBye.\\n')\n"
    "buf = io.BytesIO()\n"
    "email.generator.BytesGenerator(buf).flatten(copy.copy(m), linesep='\\r\\n')\n"
    "open(out, 'wb').write(buf.getvalue())\n"
    "with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.test', "
    "timeout=20) as s:\n"
    "    refused = s.send_message(m, from_addr='sender@localhost',\n"
    "                             to_addrs=['bob@localhost', 'carol@example.test'])\n"
    "print('refused', refused)\n"
    "sys.exit(1 if refused else 0)\n";

Test(delivery, python_smtplib)
{
	char port[16], sent[H_PATH];
	char *out = NULL, *msg;
	size_t mlen;
	char *argv[] = {"/usr/bin/python3", "-c", (char *)python_client, port, sent, NULL};
	int st;

	h_daemon_init(&D);
	h_daemon_start(&D);
	snprintf(port, sizeof(port), "%d", D.port);
	snprintf(sent, sizeof(sent), "%s/python.eml", D.dir);
	st = h_run(argv, NULL, 0, CLIENT_TIMEOUT_MS, &out, NULL);
	cr_assert_eq(st, 0, "python smtplib exit %d:\n%s", st, out);
	msg = h_read_file(sent, &mlen);
	cr_assert_not_null(msg);
	expect_one_delivered("localhost", "bob", msg, mlen);
	expect_one_delivered("example.test", "carol", msg, mlen);
	free(msg);
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, curl_smtp)
{
	char url[128];
	char *out = NULL, *file, *msg;
	size_t mlen;
	int st;

	h_daemon_init(&D);
	h_daemon_start(&D);
	msg = h_make_message("curl", "curl-1", &mlen);
	file = message_file("curl.eml", msg, mlen);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d/client.example.test", D.port);
	char *argv[] = {"curl",
	                "-sS",
	                "--max-time",
	                "20",
	                "--url",
	                url,
	                "--mail-from",
	                "sender@localhost",
	                "--mail-rcpt",
	                "curly@localhost",
	                "--upload-file",
	                file,
	                NULL};
	st = h_run(argv, NULL, 0, CLIENT_TIMEOUT_MS, &out, NULL);
	cr_assert_eq(st, 0, "curl exit %d:\n%s", st, out);
	expect_one_delivered("localhost", "curly", msg, mlen);
	free(out);
	free(file);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, msmtp)
{
	char port[32];
	char *out = NULL, *msg;
	size_t mlen;
	int st;

	h_daemon_init(&D);
	h_daemon_start(&D);
	msg = h_make_message("msmtp", "msmtp-1", &mlen);
	snprintf(port, sizeof(port), "--port=%d", D.port);
	char *argv[] = {"msmtp",
	                "-C",
	                "/dev/null",
	                "--host=127.0.0.1",
	                port,
	                "--from=sender@localhost",
	                "--auth=off",
	                "--tls=off",
	                "--domain=client.example.test",
	                "--",
	                "em@localhost",
	                NULL};
	st = h_run(argv, msg, mlen, CLIENT_TIMEOUT_MS, &out, NULL);
	cr_assert_eq(st, 0, "msmtp exit %d:\n%s", st, out);
	expect_one_delivered("localhost", "em", msg, mlen);
	free(out);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, several_recipients)
{
	static const char *const rcpts[] = {"alice@localhost", "bob@example.test",
	                                    "carol@localhost", NULL};
	size_t mlen;
	char *msg = h_make_message("three recipients", "multi-1", &mlen);
	int code;

	h_daemon_init(&D);
	h_daemon_start(&D);
	code = h_send_mail(D.port, NULL, "sender@localhost", rcpts, msg, mlen);
	cr_assert_eq(code, 250, "end of data: %d", code);
	expect_one_delivered("localhost", "alice", msg, mlen);
	expect_one_delivered("example.test", "bob", msg, mlen);
	expect_one_delivered("localhost", "carol", msg, mlen);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, null_sender)
{
	size_t mlen;
	char *msg = h_make_message("bounce-like", "null-1", &mlen);

	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	/* RFC 5321 4.5.5: the null reverse-path must be accepted. */
	h_expect(&C1, 250, "MAIL FROM:<>");
	h_expect(&C1, 250, "RCPT TO:<postmaster@localhost>");
	h_expect(&C1, 354, "DATA");
	size_t slen;
	char *stuffed = h_dotstuff(msg, mlen, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_one_delivered("localhost", "postmaster", msg, mlen);
	/* Nothing may bounce back to the null sender. */
	cr_expect_eq(h_spool_total(&D), 0, "mail left in the spool after delivery");
	free(stuffed);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, eight_bit_body)
{
	char msg[4096];
	size_t mlen = 0, slen;
	char *stuffed;

	mlen += (size_t)snprintf(msg, sizeof(msg),
	                         "From: sender@localhost\r\nSubject: 8bit\r\n"
	                         "MIME-Version: 1.0\r\n"
	                         "Content-Type: text/plain; charset=utf-8\r\n"
	                         "Content-Transfer-Encoding: 8bit\r\n\r\n"
	                         "Gr\xc3\xbc\xc3\x9f"
	                         "e, \xe2\x82\xac 5, \xf0\x9f\x93\xa7\r\n");
	/* Every octet from 0x80 to 0xff, in lines of 32. */
	for (int i = 0x80; i <= 0xff; i++) {
		msg[mlen++] = (char)i;
		if ((i & 31) == 31) {
			msg[mlen++] = '\r';
			msg[mlen++] = '\n';
		}
	}
	memcpy(msg + mlen, "end\r\n", 5);
	mlen += 5;

	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<sender@localhost> BODY=8BITMIME");
	h_expect(&C1, 250, "RCPT TO:<utf@localhost>");
	h_expect(&C1, 354, "DATA");
	stuffed = h_dotstuff(msg, mlen, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_one_delivered("localhost", "utf", msg, mlen);
	free(stuffed);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A message of about 5 MB: 998-octet lines would be legal too, but
 * 76-character lines with a line number are easier to diagnose. */
static char *big_message(size_t target, size_t *len)
{
	char *m = malloc(target + 256);
	size_t n = 0;
	unsigned line = 0;

	cr_assert_not_null(m);
	n += (size_t)sprintf(m, "From: sender@localhost\r\nSubject: big\r\n\r\n");
	while (n + 80 < target) {
		line++;
		/* Some lines start with a dot to exercise the unstuffing. */
		n += (size_t)sprintf(m + n, "%s%08u %064u\r\n", line % 97 == 0 ? "." : "L", line,
		                     line * 2654435761u);
	}
	*len = n;
	return m;
}

Test(delivery, five_megabytes, .timeout = 120)
{
	size_t mlen, slen;
	char *msg = big_message(5 * 1024 * 1024, &mlen), *stuffed;

	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<sender@localhost> SIZE=%zu", mlen);
	h_expect(&C1, 250, "RCPT TO:<big@localhost>");
	h_expect(&C1, 354, "DATA");
	stuffed = h_dotstuff(msg, mlen, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 250, "end of 5 MB data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_one_delivered("localhost", "big", msg, mlen);
	free(stuffed);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(delivery, over_size_refused)
{
	size_t mlen, slen, small_len;
	char *msg = big_message(200 * 1024, &mlen), *stuffed;
	char *small = h_make_message("small one", "small-1", &small_len);

	h_daemon_init(&D);
	h_set(&D, "message_size_limit", "100k");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	/* The client does not announce the size: the limit is found in DATA. */
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<huge@localhost>");
	h_expect(&C1, 354, "DATA");
	stuffed = h_dotstuff(msg, mlen, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 552, "end of over-size data");
	cr_expect(h_last_has(&C1, "5.3.4"), "%s", C1.last);
	/* Nothing of it was kept. */
	cr_expect_eq(h_spool_total(&D), 0, "the refused message is in the spool");
	cr_expect_eq(h_spool_count(&D, "incoming"), 0, "a file was left in incoming/");
	/* The session goes on and the next message is fine. */
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<huge@localhost>");
	h_expect(&C1, 354, "DATA");
	free(stuffed);
	stuffed = h_dotstuff(small, small_len, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 250, "end of the small message");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_one_delivered("localhost", "huge", small, small_len);
	cr_expect_eq(h_spool_count(&D, "incoming"), 0);
	free(stuffed);
	free(small);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Paths of Maildir "new" directories under dir that hold messages. */
static char found_new[4096];

static int collect_new(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	size_t len = strlen(path);

	(void)st;
	(void)ftw;
	if (flag == FTW_F && len > 0) {
		const char *slash = strrchr(path, '/');

		if (slash && slash - path >= 4 && memcmp(slash - 4, "/new", 4) == 0 &&
		    !h_contains(found_new, strlen(found_new), path)) {
			/* Record the directory once. */
			snprintf(found_new + strlen(found_new),
			         sizeof(found_new) - strlen(found_new), "%.*s\n",
			         (int)(slash - path), path);
		}
	}
	return 0;
}

/* A local part is one mailbox name: quoted strings with "/" and "..",
 * or a dot-string with "/" (legal atext), must never put mail outside
 * <maildir root>/<domain>/<one path component>/. */
Test(delivery, local_part_stays_in_its_maildir)
{
	static const char *const tricky[] = {
	    "\"x/../../../escaped\"",
	    "\"x/../../sibling\"",
	    "\"..\"",
	    "\".\"",
	    "a/b",
	    "\"/abs/path\"",
	    "..hidden",
	};
	size_t mlen, slen;
	char *msg = h_make_message("path tricks", "paths-1", &mlen), *stuffed;
	char prefix[H_PATH + 16];

	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
		int code = h_cmd(&C1, "RCPT TO:<%s@localhost>", tricky[i]);

		cr_expect(code == 250 || (code >= 500 && code < 600), "RCPT TO:<%s@localhost>: %s",
		          tricky[i], C1.last);
	}
	h_expect(&C1, 250, "RCPT TO:<bob@localhost>");
	h_expect(&C1, 354, "DATA");
	stuffed = h_dotstuff(msg, mlen, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_one_delivered("localhost", "bob", msg, mlen);
	h_spool_wait_idle(&D, 10000);

	found_new[0] = '\0';
	nftw(D.dir, collect_new, 16, FTW_PHYS);
	snprintf(prefix, sizeof(prefix), "%s/localhost/", D.mail);
	for (char *line = found_new; *line;) {
		char *eol = strchr(line, '\n');
		const char *rest;

		*eol = '\0';
		rest = strncmp(line, prefix, strlen(prefix)) == 0 ? line + strlen(prefix) : NULL;
		/* rest must be "<component>/new" with one component. */
		cr_expect(rest && strchr(rest, '/') == strrchr(rest, '/') && rest[0] != '/',
		          "mail delivered outside a mailbox of %s: %s", prefix, line);
		line = eol + 1;
	}
	free(stuffed);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* An empty message (the data is just the end marker) is still a message:
 * the Maildir file holds the trace headers and nothing else. */
Test(delivery, empty_message)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<sender@localhost>");
	h_expect(&C1, 250, "RCPT TO:<empty@localhost>");
	h_expect(&C1, 354, "DATA");
	cr_assert_eq(h_send(&C1, ".\r\n", 3), 0);
	h_expect_reply(&C1, 250, "end of empty data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_one_delivered("localhost", "empty", "", 0);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* The default stores LF line ends, as Maildir readers expect: the file
 * holds no CR at all, and our class field once, written at delivery. */
Test(delivery, lf_line_ends_by_default)
{
	char md[H_PATH];
	char **files;
	size_t flen;
	h_daemon_init(&D);
	h_unset(&D, "maildir_crlf");
	h_daemon_start(&D);
	h_open(&C1, NULL, D.port);
	h_expect(&C1, 250, "EHLO client.example.test");
	h_expect(&C1, 250, "MAIL FROM:<sender@localhost>");
	h_expect(&C1, 250, "RCPT TO:<lf@localhost>");
	h_expect(&C1, 354, "DATA");
	static const char msg[] = "Subject: lf\r\n\r\nline one\r\nline two\r\n.\r\n";
	cr_assert_eq(h_send(&C1, msg, sizeof(msg) - 1), 0);
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_maildir(&D, "localhost", "lf", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, DELIVERY_WAIT_MS), 1);
	int n = h_maildir_list(md, &files);
	cr_assert_eq(n, 1);
	char *f = h_read_file(files[0], &flen);
	cr_assert_not_null(f);
	cr_expect(memchr(f, '\r', flen) == NULL, "a CR in the Maildir file:\n%s", f);
	cr_expect(h_contains(f, flen, "\nSubject: lf\n\nline one\nline two\n"), "%s", f);
	cr_expect_eq(h_count(f, flen, "X-Tempomx-Class:"), 1, "%s", f);
	free(f);
	h_free_list(files, n);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* ---- loop detection (RFC 5321 6.3) by the count in the envelope ---- */

/* smtpd counts the Received: fields while it receives the message and
 * the envelope carries the count (ours included): here 2 + ours, kept in
 * deferred/ by a destination that does not answer. */
Test(delivery, received_fields_counted_into_the_envelope)
{
	static const char *const rcpts[] = {"u@remote.test", NULL};
	static const char msg[] = "Received: from a by b; Thu, 3 Dec 2026 10:00:00 +0000\r\n"
	                          "Received: from c\r\n\tby d; Thu, 3 Dec 2026 09:00:00 +0000\r\n"
	                          "Subject: counted\r\n\r\nReceived: in the body, not counted\r\n";
	h_daemon_init(&D);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", h_free_port());
	h_set(&D, "retry_min", "1h");
	h_daemon_start(&D);
	cr_assert_eq(h_send_mail(D.port, NULL, "sender@localhost", rcpts, msg, sizeof(msg) - 1),
	             250);
	long long until = h_now_ms() + DELIVERY_WAIT_MS;
	while (h_spool_count(&D, "deferred") < 1 && h_now_ms() < until)
		h_sleep_ms(100);
	int n = 0;
	char *text = h_spool_slurp(&D, "deferred", &n);
	cr_assert_eq(n, 1, "deferred/ holds %d files", n);
	cr_expect(strstr(text, "\nhops 00003\nsize ") != NULL, "no count of 3 in:\n%.1500s", text);
	free(text);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

/* A version 2 spool file in out/, as a stage hands one on: an envelope
 * with hops (when not NULL) over a message with nrecv Received: fields,
 * from bob@localhost to u@remote.test. */
static void put_out_file(const char *id, const char *hops, int nrecv)
{
	char *body = NULL, *text = NULL, tmp[H_PATH + 32], dst[H_PATH + 64];
	size_t blen = 0;
	FILE *f = open_memstream(&body, &blen);
	cr_assert_not_null(f);
	for (int i = 0; i < nrecv; i++)
		fprintf(f, "Received: from hop%d.example.test by hop%d.example.test\r\n", i, i + 1);
	fprintf(f, "Subject: loop %s\r\n\r\nround and round\r\n", id);
	cr_assert_eq(fclose(f), 0);
	int tlen =
	    asprintf(&text,
	             "tempomx-envelope 2\nid %s\narrival %lld.000000\nclient-addr 192.0.2.1\n"
	             "client-port 25\nclient-name unknown\nhelo loop.example.test\n"
	             "protocol ESMTP\nsender bob@localhost\nsmtputf8 0\nclass hi\n"
	             "verdict good\nscore 0\nattempts 0\nnext-retry 0\nscan-result clean\n"
	             "rcpt pending 0 0 0 u@remote.test\n%s%s%ssize %020zu\nend\n%s",
	             id, (long long)time(NULL), hops ? "hops " : "", hops ? hops : "",
	             hops ? "\n" : "", blen, body);
	cr_assert_gt(tlen, 0);
	snprintf(tmp, sizeof(tmp), "%s/test.tmp", D.spool);
	snprintf(dst, sizeof(dst), "%s/out/%s", D.spool, id);
	cr_assert_eq(h_write_file(tmp, text, (size_t)tlen, 0600), 0);
	h_chown_run_user(tmp);
	cr_assert_eq(rename(tmp, dst), 0, "rename to %s: %s", dst, strerror(errno));
	free(text);
	free(body);
}

/* The bounce in bob's Maildir about the message with the token. */
static int loop_bounced(const char *md, const char *id)
{
	char **files;
	int n = h_maildir_list(md, &files), found = 0;
	for (int i = 0; i < n; i++) {
		size_t len;
		char *f = h_read_file(files[i], &len);
		if (f && h_contains(f, len, id) && h_contains(f, len, "5.4.6"))
			found = 1;
		free(f);
	}
	h_free_list(files, n);
	return found;
}

/* Delivery takes the count from the envelope (60 > max_hops 50 over a
 * message that has only one Received: field) and, for a file whose
 * envelope has none (written before it did), counts the message's own
 * fields. Either way the loop bounces with 5.4.6 and nothing is sent. */
Test(delivery, loop_detected_by_the_envelope_count)
{
	static const char id_env[] = "065A0B1C0000000000B001";
	static const char id_old[] = "065A0B1C0000000000B002";
	static const char id_low[] = "065A0B1C0000000000B003";
	char md[H_PATH];
	h_daemon_init(&D);
	h_set(&D, "default_transport", "smtp:[127.0.0.1]:%d", h_free_port());
	h_set(&D, "retry_min", "1h");
	h_daemon_start(&D);
	put_out_file(id_env, "00060", 1);
	put_out_file(id_old, NULL, 60);
	/* The envelope's count wins over the message's: not a loop. */
	put_out_file(id_low, "00002", 60);
	h_maildir(&D, "localhost", "bob", md, sizeof(md));
	int n = h_maildir_wait(md, 2, DELIVERY_WAIT_MS);
	if (n != 2)
		h_dump_log(&D, 40);
	cr_assert_eq(n, 2, "bob has %d reports, expected 2", n);
	cr_expect(loop_bounced(md, id_env), "no 5.4.6 report about %s", id_env);
	cr_expect(loop_bounced(md, id_old), "no 5.4.6 report about %s", id_old);
	cr_expect(h_log_wait(&D, "too many hops (60 Received: headers)", 5000));
	cr_expect(h_log_wait(&D, id_low, 5000));
	long long until = h_now_ms() + DELIVERY_WAIT_MS;
	while (h_spool_count(&D, "deferred") < 1 && h_now_ms() < until)
		h_sleep_ms(100);
	cr_expect_eq(h_spool_count(&D, "deferred"), 1, "%s was not tried and deferred", id_low);
	cr_expect(!loop_bounced(md, id_low), "%s bounced as a loop", id_low);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}
