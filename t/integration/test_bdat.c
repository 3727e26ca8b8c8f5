/*
 * test_bdat.c: CHUNKING (RFC 3030) in the real tempomxd, over raw
 * sockets (no packaged client speaks BDAT): BDAT with and without LAST,
 * many chunks, BDAT 0 LAST, chunks pipelined with MAIL and RCPT, the
 * octets of a chunk taken exactly (no dot-stuffing, no end-of-data line),
 * bare CR and LF under DATA's rules, the size limit across chunks, BDAT
 * out of sequence or mixed with DATA, RSET, malformed and huge sizes, a
 * client that goes away or stalls in a chunk, the classifier's decision
 * at the first chunk. What was stored is checked byte for byte in the
 * Maildir (maildir_crlf = yes), and what was refused must leave nothing
 * in the spool. Clients connect from 127.0.0.2 (not exempt, outside
 * mynetworks).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "harness.h"

TestSuite(bdat, .init = h_setup, .fini = h_teardown, .timeout = 90);

static struct h_daemon D;
static struct h_conn C1;

/* "BDAT n[ LAST]" CR LF and the chunk, in one write. */
static void send_chunk(struct h_conn *c, const char *data, size_t len, int last)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "BDAT %zu%s\r\n", len, last ? " LAST" : "");
	size_t total = (size_t)n + len;
	char *buf = malloc(total + 1);

	cr_assert_not_null(buf);
	memcpy(buf, line, (size_t)n);
	if (len > 0)
		memcpy(buf + n, data, len);
	cr_assert_eq(h_send(c, buf, total), 0, "send BDAT");
	free(buf);
}

/* Send a chunk, read its reply; returns the code. */
static int chunk(struct h_conn *c, const char *data, size_t len, int last)
{
	send_chunk(c, data, len, last);
	return h_reply(c, 10000);
}

/* Greeted, EHLO'd (CHUNKING offered), MAIL and RCPT accepted. */
static void open_transaction(struct h_conn *c, const char *rcpt)
{
	h_open(c, "127.0.0.2", D.port);
	h_expect(c, 250, "EHLO mta.example.net");
	cr_assert(h_last_has(c, "250-CHUNKING") || h_last_has(c, "250 CHUNKING"),
	          "CHUNKING not offered: %s", c->last);
	h_expect(c, 250, "MAIL FROM:<sender@example.net>");
	h_expect(c, 250, "RCPT TO:<%s@localhost>", rcpt);
}

/* The one message user got, checked byte for byte against msg. */
static void expect_delivered(const char *user, const char *msg, size_t len)
{
	char md[H_PATH];
	char **files;
	int n;

	h_maildir(&D, "localhost", user, md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, 15000), 1, "%s: nothing delivered", user);
	n = h_maildir_list(md, &files);
	cr_expect_eq(n, 1, "%s: %d messages, expected 1", user, n);
	if (n >= 1) {
		const char *why = h_check_delivered(files[0], msg, len);
		cr_expect_null(why, "%s: %s", user, why ? why : "");
	}
	h_free_list(files, n);
}

/* Nothing was queued nor delivered for user, and incoming/ is empty. */
static void expect_nothing(const char *user)
{
	char md[H_PATH];

	h_sleep_ms(300);
	h_maildir(&D, "localhost", user, md, sizeof(md));
	cr_expect_eq(h_maildir_count(md), 0, "%s: a refused message was delivered", user);
	cr_expect_eq(h_spool_total(&D), 0, "a refused message was queued");
	cr_expect_eq(h_spool_count(&D, "incoming"), 0, "a file was left in incoming/");
}

/* The log has a "reject: BDAT" line for the client with this reply. */
static int reject_logged(const char *reply)
{
	size_t len;
	char *log = h_read_file(D.log, &len);
	int found = 0;

	for (char *line = log; line && *line && !found;) {
		char *eol = strchr(line, '\n');

		if (eol)
			*eol = '\0';
		found =
		    strstr(line, "reject: BDAT from unknown[127.0.0.2]:") && strstr(line, reply);
		line = eol ? eol + 1 : NULL;
	}
	free(log);
	return found;
}

static void start(void)
{
	h_daemon_init(&D);
	h_daemon_start(&D);
}

static void finish(void)
{
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* RFC 3030 3: CHUNKING in the EHLO reply, never BINARYMIME (not
 * implemented), and nothing of it after HELO. */
Test(bdat, ehlo_offers_chunking_only)
{
	start();
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	cr_expect(h_last_has(&C1, "CHUNKING"), "EHLO: %s", C1.last);
	cr_expect(!h_last_has(&C1, "BINARYMIME"), "EHLO: %s", C1.last);
	h_expect(&C1, 555, "MAIL FROM:<a@example.net> BODY=BINARYMIME");
	h_expect(&C1, 250, "HELO mta.example.net");
	cr_expect(!h_last_has(&C1, "CHUNKING"), "HELO: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	finish();
}

/* One BDAT LAST: the octets are the message, exactly. A "." line, lines
 * that start with dots and CR LF "." CR LF inside are content: nothing is
 * unstuffed and nothing ends the message early. */
Test(bdat, one_chunk_is_the_message)
{
	static const char msg[] = "From: sender@example.net\r\n"
	                          "Subject: one chunk\r\n"
	                          "\r\n"
	                          "first\r\n"
	                          ".\r\n"
	                          "..two dots\r\n"
	                          ".one dot\r\n"
	                          "MAIL FROM:<admin@localhost>\r\n"
	                          "\r\n.\r\n"
	                          "after the dot line\r\n";

	start();
	open_transaction(&C1, "one");
	cr_expect_eq(chunk(&C1, msg, sizeof(msg) - 1, 1), 250, "BDAT LAST: %s", C1.last);
	cr_expect(h_last_has(&C1, "2.0.0 Ok: queued as"), "BDAT LAST: %s", C1.last);
	/* In step: the next reply answers this command. */
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("one", msg, sizeof(msg) - 1);
	cr_expect(h_log_has(&D, "client=unknown[127.0.0.2]"), "no client= line");
	cr_expect(h_log_has(&D, "accepted into"), "no accepted line");
	finish();
}

/* Many chunks, cut where a DATA reader would trip: between CR and LF,
 * inside "\r\n.\r\n", right after a dot at a line start; each chunk gets
 * its 250, then BDAT 0 LAST ends the message. */
Test(bdat, many_chunks_with_awkward_cuts)
{
	static const char msg[] = "Subject: many chunks\r\n"
	                          "\r\n"
	                          "line one\r\n"
	                          ".\r\n"
	                          "line three\r\n"
	                          "..\r\n"
	                          "end\r\n";
	const size_t len = sizeof(msg) - 1;
	/* Cut points: after the CR of the Subject line, after "\r\n.",
	 * after ".\r", inside "..", and the rest. */
	size_t cuts[8], nc = 0, prev = 0;
	const char *p;

	p = strchr(msg, '\r');
	cuts[nc++] = (size_t)(p - msg) + 1;
	p = strstr(msg, "\r\n.\r\n");
	cuts[nc++] = (size_t)(p - msg) + 3;
	cuts[nc++] = (size_t)(p - msg) + 4;
	p = strstr(msg, "..");
	cuts[nc++] = (size_t)(p - msg) + 1;
	cuts[nc++] = len;

	start();
	open_transaction(&C1, "many");
	for (size_t i = 0; i < nc; i++) {
		char want[64];

		cr_assert_lt(prev, cuts[i]);
		cr_expect_eq(chunk(&C1, msg + prev, cuts[i] - prev, 0), 250, "chunk %zu: %s", i,
		             C1.last);
		snprintf(want, sizeof(want), "250 2.0.0 Ok: %zu octets received", cuts[i] - prev);
		cr_expect(h_last_has(&C1, want), "chunk %zu: %s", i, C1.last);
		prev = cuts[i];
	}
	cr_expect_eq(chunk(&C1, NULL, 0, 1), 250, "BDAT 0 LAST: %s", C1.last);
	cr_expect(h_last_has(&C1, "queued as"), "BDAT 0 LAST: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("many", msg, len);
	finish();
}

/* BDAT 0 LAST alone: an empty message (only our Received: field). */
Test(bdat, empty_message)
{
	start();
	open_transaction(&C1, "empty");
	cr_expect_eq(chunk(&C1, NULL, 0, 1), 250, "BDAT 0 LAST: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("empty", "", 0);
	finish();
}

/* A last line without CR LF is ended with one, so the stored message can
 * be relayed with DATA later without its last line running into the dot. */
Test(bdat, unterminated_last_line_is_ended)
{
	static const char sent[] = "Subject: no final newline\r\n\r\nlast line";
	static const char stored[] = "Subject: no final newline\r\n\r\nlast line\r\n";

	start();
	open_transaction(&C1, "noeol");
	cr_expect_eq(chunk(&C1, sent, sizeof(sent) - 1, 1), 250, "BDAT LAST: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("noeol", stored, sizeof(stored) - 1);
	finish();
}

/* RFC 3030 4.2 with RFC 2920: two whole transactions, their chunks and
 * QUIT in one write, after the EHLO reply. Every reply comes in order,
 * both messages are stored exactly, and the classifier (pipelining
 * enforced, timing junk rejected) takes none of it for ratware: BDAT may
 * sit anywhere in a group, and the chunk after a BDAT line is no body sent
 * before a 354. */
Test(bdat, pipelined_transactions)
{
	static const char m1[] = "Subject: piped 1\r\n\r\nbody one\r\n.\r\nmore\r\n";
	static const char m2[] = "Subject: piped 2\r\n\r\nbody two\r\n";
	char buf[2048];
	size_t off = 0, h1 = 10;
	static const int want[] = {250, 250, 250, 250, 250, 250, 250, 221};

	h_daemon_init(&D);
	h_set(&D, "pipelining_action", "enforce");
	h_set(&D, "timing_junk_action", "reject");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	off += (size_t)snprintf(buf + off, sizeof(buf) - off,
	                        "MAIL FROM:<sender@example.net>\r\nRCPT TO:<piped1@localhost>\r\n"
	                        "BDAT %zu\r\n",
	                        h1);
	memcpy(buf + off, m1, h1);
	off += h1;
	off += (size_t)snprintf(buf + off, sizeof(buf) - off, "BDAT %zu LAST\r\n",
	                        sizeof(m1) - 1 - h1);
	memcpy(buf + off, m1 + h1, sizeof(m1) - 1 - h1);
	off += sizeof(m1) - 1 - h1;
	off += (size_t)snprintf(buf + off, sizeof(buf) - off,
	                        "MAIL FROM:<sender@example.net>\r\nRCPT TO:<piped2@localhost>\r\n"
	                        "BDAT %zu LAST\r\n",
	                        sizeof(m2) - 1);
	memcpy(buf + off, m2, sizeof(m2) - 1);
	off += sizeof(m2) - 1;
	off += (size_t)snprintf(buf + off, sizeof(buf) - off, "QUIT\r\n");
	cr_assert_eq(h_send(&C1, buf, off), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int code = h_reply(&C1, 10000);

		cr_expect_eq(code, want[i], "reply %zu: %d %s", i, code, C1.last);
		if (i == 3 || i == 6)
			cr_expect(h_last_has(&C1, "queued as"), "reply %zu: %s", i, C1.last);
	}
	h_close(&C1);
	expect_delivered("piped1", m1, sizeof(m1) - 1);
	expect_delivered("piped2", m2, sizeof(m2) - 1);
	cr_expect(!h_log_has(&D, "unauth pipelining"), "BDAT pipelining was taken for ratware");
	finish();
}

/* The size limit counts every chunk: the chunk that goes over gets 552
 * 5.3.4 at once, its octets are still read (the session stays in step),
 * the transaction is over, and a chunk already in the pipeline after it
 * is read and discarded (RFC 3030 4.2). Also a chunk over the limit on
 * its own, and a size far beyond any limit, answered before its octets. */
Test(bdat, size_limit_across_chunks)
{
	const size_t part = 40000;
	char *body = malloc(part);
	char head[] = "Subject: big\r\n\r\n";

	cr_assert_not_null(body);
	memset(body, 'x', part);
	memcpy(body, head, sizeof(head) - 1);
	for (size_t i = 100; i + 2 < part; i += 100) {
		body[i] = '\r';
		body[i + 1] = '\n';
	}
	h_daemon_init(&D);
	h_set(&D, "message_size_limit", "65536");
	h_daemon_start(&D);
	open_transaction(&C1, "big");
	cr_expect_eq(chunk(&C1, body, part, 0), 250, "first chunk: %s", C1.last);
	cr_expect_eq(chunk(&C1, body, part, 0), 552, "second chunk: %s", C1.last);
	cr_expect(h_last_has(&C1, "5.3.4"), "second chunk: %s", C1.last);
	/* Pipelined behind it: discarded, answered 503 (no transaction). */
	send_chunk(&C1, body, 500, 1);
	cr_expect_eq(h_cmd(&C1, "NOOP"), 503, "discarded chunk: %s", C1.last);
	cr_expect_eq(h_reply(&C1, 10000), 250, "NOOP after the chunks: %s", C1.last);
	h_expect(&C1, 503, "RCPT TO:<big@localhost>");
	/* One chunk larger than the limit. */
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<big@localhost>");
	char *huge = malloc(70000);
	cr_assert_not_null(huge);
	memset(huge, 'y', 70000);
	cr_expect_eq(chunk(&C1, huge, 70000, 1), 552, "chunk over the limit: %s", C1.last);
	h_expect(&C1, 250, "NOOP");
	/* A size no one could send: refused before its octets arrive. */
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<big@localhost>");
	cr_expect_eq(h_cmd(&C1, "BDAT 9000000000000000000 LAST"), 552, "huge size: %s", C1.last);
	h_close(&C1);
	expect_nothing("big");
	cr_expect(reject_logged(": 552 5.3.4 "), "552 not logged");
	free(body);
	free(huge);
	finish();
}

/* BDAT out of sequence is refused with 503 5.5.1, and its chunk is read
 * all the same: would-be commands inside it are never run. */
Test(bdat, out_of_sequence_chunks_are_skipped)
{
	static const char inner[] =
	    "MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@localhost>\r\n";
	const size_t n = sizeof(inner) - 1;

	h_daemon_init(&D);
	h_set(&D, "max_errors", "100");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	/* Before HELO/EHLO. */
	cr_expect_eq(chunk(&C1, inner, n, 1), 503, "before EHLO: %s", C1.last);
	cr_expect(h_last_has(&C1, "5.5.1"), "before EHLO: %s", C1.last);
	h_expect(&C1, 250, "NOOP");
	/* After HELO: CHUNKING was not offered. */
	h_expect(&C1, 250, "HELO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<victim@localhost>");
	cr_expect_eq(chunk(&C1, inner, n, 1), 503, "after HELO: %s", C1.last);
	cr_expect(h_last_has(&C1, "EHLO"), "after HELO: %s", C1.last);
	h_expect(&C1, 503, "DATA"); /* the refused BDAT ended the transaction */
	/* After EHLO, without MAIL; then without RCPT. */
	h_expect(&C1, 250, "EHLO mta.example.net");
	cr_expect_eq(chunk(&C1, inner, n, 0), 503, "without MAIL: %s", C1.last);
	h_expect(&C1, 503, "RCPT TO:<victim@localhost>");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	cr_expect_eq(chunk(&C1, inner, n, 1), 503, "without RCPT: %s", C1.last);
	cr_expect(h_last_has(&C1, "5.5.1"), "without RCPT: %s", C1.last);
	/* The MAIL inside the chunks never ran, nor did the transaction. */
	h_expect(&C1, 503, "RCPT TO:<victim@localhost>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_nothing("victim");
	cr_expect(reject_logged(": 503 5.5.1 "), "503 not logged");
	finish();
}

/* RFC 3030 2: DATA after BDAT in one transaction is a 503; so are MAIL
 * and RCPT. The message so far is dropped, later chunks are discarded,
 * and RSET starts afresh. */
Test(bdat, data_after_bdat_refused)
{
	static const char part[] = "Subject: mixed\r\n\r\n";
	const char *verbs[] = {"DATA", "RCPT TO:<other@localhost>", "MAIL FROM:<a@example.net>"};

	h_daemon_init(&D);
	h_set(&D, "max_errors", "100");
	h_daemon_start(&D);
	for (size_t i = 0; i < 3; i++) {
		open_transaction(&C1, "mixed");
		cr_expect_eq(chunk(&C1, part, sizeof(part) - 1, 0), 250, "chunk: %s", C1.last);
		cr_expect_eq(h_cmd(&C1, "%s", verbs[i]), 503, "%s: %s", verbs[i], C1.last);
		cr_expect(h_last_has(&C1, "5.5.1"), "%s: %s", verbs[i], C1.last);
		cr_expect_eq(chunk(&C1, "body\r\n", 6, 1), 503, "LAST after %s: %s", verbs[i],
		             C1.last);
		h_expect(&C1, 250, "RSET");
		h_expect(&C1, 221, "QUIT");
		h_close(&C1);
	}
	expect_nothing("mixed");
	expect_nothing("other");
	cr_expect(h_log_has(&D, "DATA after BDAT"), "no log line for DATA after BDAT");
	finish();
}

/* RSET in the middle discards the chunks so far; the next transaction of
 * the session is stored alone. */
Test(bdat, rset_discards_chunks)
{
	static const char first[] = "Subject: dropped\r\n\r\nDROPPED-PART\r\n";
	static const char second[] = "Subject: kept\r\n\r\nkept\r\n";

	start();
	open_transaction(&C1, "rset");
	cr_expect_eq(chunk(&C1, first, sizeof(first) - 1, 0), 250, "chunk: %s", C1.last);
	h_expect(&C1, 250, "RSET");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<rset@localhost>");
	cr_expect_eq(chunk(&C1, second, sizeof(second) - 1, 1), 250, "LAST: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("rset", second, sizeof(second) - 1);
	cr_expect_eq(h_spool_count(&D, "incoming"), 0, "the dropped message left a file");
	finish();
}

/* A size followed by anything but LAST: 501 5.5.4, the chunk skipped. An
 * unreadable size cannot be skipped: 421 4.5.4 and the connection closes,
 * so the octets that follow are never read as commands. */
Test(bdat, malformed_sizes)
{
	static const char inner[] = "QUIT\r\n";
	const char *bad[] = {"BDAT",
	                     "BDAT x12",
	                     "BDAT 12x",
	                     "BDAT -5",
	                     "BDAT +5",
	                     "BDAT 0x10",
	                     "BDAT 99999999999999999999999 LAST"};

	h_daemon_init(&D);
	h_set(&D, "max_errors", "100");
	h_daemon_start(&D);
	open_transaction(&C1, "syntax");
	cr_expect_eq(h_sendf(&C1, "BDAT 6 LASTLY\r\n%s", inner), 0);
	cr_expect_eq(h_reply(&C1, 10000), 501, "LASTLY: %s", C1.last);
	cr_expect(h_last_has(&C1, "5.5.4"), "LASTLY: %s", C1.last);
	cr_expect_eq(h_sendf(&C1, "BDAT 6 LAST now\r\n%s", inner), 0);
	cr_expect_eq(h_reply(&C1, 10000), 501, "LAST now: %s", C1.last);
	/* Neither chunk's QUIT was run; the transaction is over. */
	h_expect(&C1, 503, "RCPT TO:<syntax@localhost>");
	/* "last" in any case is the end marker. */
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<syntax@localhost>");
	cr_expect_eq(h_sendf(&C1, "BDAT 12 last\r\nSubject: s\r\n"), 0);
	cr_expect_eq(h_reply(&C1, 10000), 250, "lower-case last: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("syntax", "Subject: s\r\n", 12);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		open_transaction(&C1, "syntax2");
		cr_expect_eq(h_sendf(&C1, "%s\r\nNOOP\r\n", bad[i]), 0);
		cr_expect_eq(h_reply(&C1, 10000), 421, "%s: %s", bad[i], C1.last);
		cr_expect(h_last_has(&C1, "4.5.4"), "%s: %s", bad[i], C1.last);
		cr_expect(h_wait_closed(&C1, 5000), "%s: no close after 421", bad[i]);
		cr_expect_eq(h_reply(&C1, 500), 0, "%s: the NOOP was answered: %s", bad[i],
		             C1.last);
		h_close(&C1);
	}
	expect_nothing("syntax2");
	cr_expect(h_log_has(&D, "BDAT with an unreadable chunk size"), "421 not logged");
	finish();
}

/* A client that goes away in the middle of a chunk, of the last chunk
 * too, leaves nothing behind. */
Test(bdat, disconnect_mid_chunk)
{
	static const char part[] = "Subject: cut\r\n\r\nhalf of it";

	start();
	open_transaction(&C1, "cut");
	cr_expect_eq(h_sendf(&C1, "BDAT 1000 LAST\r\n%s", part), 0);
	h_close(&C1);
	open_transaction(&C1, "cut");
	cr_expect_eq(chunk(&C1, part, sizeof(part) - 1, 0), 250, "chunk: %s", C1.last);
	cr_expect_eq(h_sendf(&C1, "BDAT 500\r\n%s", part), 0);
	h_close(&C1);
	cr_expect(h_log_wait(&D, "lost connection after BDAT", 5000), "no lost connection line");
	expect_nothing("cut");
	finish();
}

/* A chunk that stalls gets DATA's data_timeout (421 4.4.2), and one that
 * trickles gets DATA's data_min_rate deadline: nothing is stored. */
Test(bdat, timeouts_in_a_chunk)
{
	h_daemon_init(&D);
	h_set(&D, "data_timeout", "2s");
	h_set(&D, "command_timeout", "30s");
	h_set(&D, "data_min_rate", "1000");
	h_daemon_start(&D);
	/* Stalls. */
	open_transaction(&C1, "slow");
	long long t0 = h_now_ms();
	cr_expect_eq(h_sendf(&C1, "BDAT 1000 LAST\r\nSubject: slow\r\n"), 0);
	cr_expect_eq(h_reply(&C1, 10000), 421, "stalled chunk: %s", C1.last);
	cr_expect(h_last_has(&C1, "4.4.2"), "stalled chunk: %s", C1.last);
	long long took = h_now_ms() - t0;
	cr_expect(took >= 1500 && took < 8000, "the data timeout took %lld ms", took);
	h_close(&C1);
	/* Trickles: an octet every 300 ms, never idle for data_timeout, but
	 * far below 1000 octets a second: cut after about 2 s. */
	open_transaction(&C1, "slow");
	t0 = h_now_ms();
	cr_expect_eq(h_sendf(&C1, "BDAT 1000 LAST\r\n"), 0);
	int code = -1;
	for (int i = 0; i < 40 && code == -1; i++) {
		h_send(&C1, "x", 1);
		code = h_reply(&C1, 300);
	}
	took = h_now_ms() - t0;
	cr_expect_eq(code, 421, "trickling chunk: %d %s", code, C1.last);
	cr_expect(took < 8000, "the min-rate deadline took %lld ms", took);
	h_close(&C1);
	expect_nothing("slow");
	cr_expect(h_log_has(&D, ": timeout after BDAT ("), "no timeout line with the queue ID");
	finish();
}

/* Bare CR and LF in chunks follow DATA's rules: refused with 554 5.6.0 by
 * default (bare_lf = reject); with bare_lf = normalize stored as CR LF,
 * and an "LF . LF" there smuggles nothing: one message, holding the
 * would-be commands as text. A CR LF cut between two chunks is no bare
 * line end. */
Test(bdat, bare_line_ends_as_in_data)
{
	static const char bare[] =
	    "Subject: bare\r\n\r\none\ntwo\rthree\n.\nMAIL FROM:<admin@localhost>\r\n";
	static const char normal[] = "Subject: bare\r\n\r\none\r\ntwo\r\nthree\r\n.\r\n"
	                             "MAIL FROM:<admin@localhost>\r\n";
	static const char split[] = "Subject: split\r\n\r\nline\r\nend\r\n";
	size_t cut = strlen("Subject: split\r\n\r\nline\r");

	/* reject: the default */
	start();
	open_transaction(&C1, "bare");
	cr_expect_eq(chunk(&C1, bare, sizeof(bare) - 1, 1), 554, "bare LF: %s", C1.last);
	cr_expect(h_last_has(&C1, "5.6.0"), "bare LF: %s", C1.last);
	h_expect(&C1, 250, "NOOP");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<split@localhost>");
	cr_expect_eq(chunk(&C1, split, cut, 0), 250, "first half: %s", C1.last);
	cr_expect_eq(chunk(&C1, split + cut, sizeof(split) - 1 - cut, 1), 250, "second half: %s",
	             C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("split", split, sizeof(split) - 1);
	expect_nothing("bare");
	finish();

	h_daemon_init(&D);
	h_set(&D, "bare_lf", "normalize");
	h_daemon_start(&D);
	open_transaction(&C1, "bare");
	cr_expect_eq(chunk(&C1, bare, sizeof(bare) - 1, 1), 250, "normalize: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("bare", normal, sizeof(normal) - 1);
	finish();
}

/* The header filter and the loop check are DATA's: client-made
 * X-Tempomx- fields and a leading continuation line are removed, and a
 * message with too many Received: lines is refused at BDAT LAST. */
Test(bdat, header_filter_and_loops)
{
	static const char sent[] = " continues our field\r\n"
	                           "X-Tempomx-Class: hi\r\n"
	                           "Subject: filtered\r\n"
	                           "\r\n"
	                           "body\r\n";
	static const char kept[] = "Subject: filtered\r\n"
	                           "\r\n"
	                           "body\r\n";
	char loop[8192];
	size_t off = 0;

	start();
	open_transaction(&C1, "filter");
	cr_expect_eq(chunk(&C1, sent, 10, 0), 250, "chunk 1: %s", C1.last);
	cr_expect_eq(chunk(&C1, sent + 10, sizeof(sent) - 1 - 10, 1), 250, "LAST: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("filter", kept, sizeof(kept) - 1);
	for (int i = 0; i < 60; i++)
		off += (size_t)snprintf(loop + off, sizeof(loop) - off,
		                        "Received: from hop%d.example.net\r\n", i);
	off += (size_t)snprintf(loop + off, sizeof(loop) - off, "Subject: loop\r\n\r\nx\r\n");
	open_transaction(&C1, "loop");
	cr_expect_eq(chunk(&C1, loop, off / 2, 0), 250, "loop chunk: %s", C1.last);
	cr_expect_eq(chunk(&C1, loop + off / 2, off - off / 2, 1), 554, "loop LAST: %s", C1.last);
	cr_expect(h_last_has(&C1, "5.4.6"), "loop LAST: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_nothing("loop");
	finish();
}

/* The first BDAT of a transaction is where DATA would be: the policy
 * decides there (new_action = tempfail: 451 4.7.1), before anything is
 * stored, and the classify line is logged as for DATA. The refused chunk
 * and those behind it are discarded. */
Test(bdat, policy_decides_at_first_chunk)
{
	static const char part[] = "Subject: new\r\n\r\nbody\r\n";

	h_daemon_init(&D);
	h_set(&D, "new_action", "tempfail");
	h_daemon_start(&D);
	open_transaction(&C1, "newclient");
	send_chunk(&C1, part, sizeof(part) - 1, 0);
	send_chunk(&C1, part, sizeof(part) - 1, 1);
	cr_expect_eq(h_reply(&C1, 10000), 451, "first chunk: %s", C1.last);
	cr_expect(h_last_has(&C1, "4.7.1"), "first chunk: %s", C1.last);
	cr_expect_eq(h_reply(&C1, 10000), 503, "chunk behind it: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_nothing("newclient");
	cr_expect(h_log_has(&D, "classify: unknown[127.0.0.2]"), "no classify line");
	cr_expect(reject_logged(": 451 4.7.1 "), "refusal not logged");
	finish();
}

/* Pipelining without PIPELINING (after HELO nothing may be pipelined,
 * here EHLO then MAIL in one write) makes the timing verdict junk, and the
 * first BDAT is refused as DATA would be (timing_junk_action = reject). */
Test(bdat, timing_verdict_at_first_chunk)
{
	static const char burst[] = "EHLO rat.example.test\r\nMAIL FROM:<rat@example.test>\r\n"
	                            "RCPT TO:<rat@localhost>\r\n";
	static const char part[] = "Subject: rat\r\n\r\nbody\r\n";

	h_daemon_init(&D);
	h_set(&D, "timing_junk_action", "reject");
	h_set(&D, "pipelining_action", "enforce");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	cr_assert_eq(h_send(&C1, burst, sizeof(burst) - 1), 0);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(h_reply(&C1, 10000), 250, "burst reply %d: %s", i, C1.last);
	cr_expect_eq(chunk(&C1, part, sizeof(part) - 1, 1), 554, "BDAT: %s", C1.last);
	cr_expect(h_last_has(&C1, "5.7.1"), "BDAT: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_nothing("rat");
	finish();
}

/* On shutdown a session in the last chunk of its message finishes it, as
 * one in DATA does: 250 once it is on disk, then 421 4.3.2. One between
 * chunks gets the 421 at once, and its chunks so far are dropped. */
Test(bdat, shutdown_lets_the_last_chunk_finish)
{
	static const char msg[] = "Subject: shutdown\r\n\r\nfinished after SIGTERM\r\n";
	const size_t half = 10;
	struct h_conn c2;
	char md[H_PATH];

	start();
	open_transaction(&C1, "last");
	open_transaction(&c2, "between");
	cr_expect_eq(chunk(&c2, msg, half, 0), 250, "between: %s", c2.last);
	cr_expect_eq(h_sendf(&C1, "BDAT %zu LAST\r\n%.*s", sizeof(msg) - 1, (int)half, msg), 0);
	h_sleep_ms(200);
	cr_assert_eq(kill(D.pid, SIGTERM), 0);
	cr_expect_eq(h_reply(&c2, 10000), 421, "between chunks at shutdown: %s", c2.last);
	h_close(&c2);
	h_sleep_ms(200);
	cr_expect_eq(h_send(&C1, msg + half, sizeof(msg) - 1 - half), 0);
	cr_expect_eq(h_reply(&C1, 10000), 250, "last chunk at shutdown: %s", C1.last);
	cr_expect(h_last_has(&C1, "queued as"), "last chunk at shutdown: %s", C1.last);
	cr_expect_eq(h_reply(&C1, 10000), 421, "after the last chunk: %s", C1.last);
	h_close(&C1);
	h_daemon_stop(&D);
	/* Delivered before the stop, or still in the spool. */
	h_maildir(&D, "localhost", "last", md, sizeof(md));
	if (h_maildir_count(md) == 1) {
		expect_delivered("last", msg, sizeof(msg) - 1);
	} else {
		int n = 0;
		char *all = h_spool_slurp(&D, "hi", &n);
		char *lo = h_spool_slurp(&D, "lo", &n);
		cr_expect((all && strstr(all, "finished after SIGTERM")) ||
		              (lo && strstr(lo, "finished after SIGTERM")),
		          "the message finished at shutdown is neither delivered nor queued");
		free(all);
		free(lo);
	}
	h_maildir(&D, "localhost", "between", md, sizeof(md));
	cr_expect_eq(h_maildir_count(md), 0, "the dropped message was delivered");
	cr_expect_eq(h_spool_count(&D, "incoming"), 0, "a file was left in incoming/");
	h_daemon_free(&D);
}

/* A real client: Perl's Net::SMTP (libnet) sends the message in four
 * chunks with its bdat() and bdatlast(); it is stored exactly. */
Test(bdat, perl_net_smtp_client)
{
	static const char msg[] = "From: sender@example.net\r\n"
	                          "To: netsmtp@localhost\r\n"
	                          "Subject: Net::SMTP BDAT\r\n"
	                          "\r\n"
	                          "Sent in chunks by libnet.\r\n"
	                          ".\r\n"
	                          "..a line that starts with two dots\r\n"
	                          "\r\n.\r\n"
	                          "last line\r\n";
	char script[H_PATH], port[16];
	char *out = NULL;

	h_srcpath("t/integration/bdat_netsmtp.pl", script, sizeof(script));
	start();
	snprintf(port, sizeof(port), "%d", D.port);
	char *const argv[] = {"perl", script, port, "127.0.0.2", "netsmtp@localhost", "4", NULL};
	int rc = h_run(argv, msg, sizeof(msg) - 1, 30000, &out, NULL);
	cr_expect_eq(rc, 0, "Net::SMTP exited %d: %s", rc, out ? out : "");
	cr_expect(out && strstr(out, "LAST: 250"), "no 250 to BDAT LAST: %s", out ? out : "");
	free(out);
	expect_delivered("netsmtp", msg, sizeof(msg) - 1);
	finish();
}

/* The 250 to BDAT LAST is a promise: smtpd killed in the commit, after
 * the fsync and before the rename into the queue (the test build's fault
 * injection), must leave the client without a 250; it retries once smtpd
 * is back, and the message is delivered once, exactly. */
Test(bdat, no_250_before_the_commit)
{
#ifndef TEMPOMX_FAULTS
	cr_skip_test("built without fault injection (configure --enable-fault-injection)");
#else
	static const char msg[] = "Subject: commit\r\n\r\ncommitted once\r\n";
	char fdir[H_PATH + 8];
	int code = 0;

	h_daemon_init(&D);
	snprintf(fdir, sizeof(fdir), "%s/faults", D.dir);
	cr_assert_eq(mkdir(fdir, 0777), 0);
	cr_assert_eq(chmod(fdir, 0777), 0);
	cr_assert_eq(setenv("TEMPOMX_FAULT", "commit-synced:1", 1), 0);
	cr_assert_eq(setenv("TEMPOMX_FAULT_DIR", fdir, 1), 0);
	h_daemon_start(&D);
	open_transaction(&C1, "commit");
	cr_expect_eq(chunk(&C1, msg, 8, 0), 250, "first chunk: %s", C1.last);
	code = chunk(&C1, msg + 8, sizeof(msg) - 1 - 8, 1);
	cr_expect_neq(code, 250, "a 250 came before the commit: %s", C1.last);
	h_close(&C1);
	char marker[2 * H_PATH];
	struct stat st;
	snprintf(marker, sizeof(marker), "%s/commit-synced.1", fdir);
	cr_expect_eq(stat(marker, &st), 0, "the fault did not fire");
	/* The retry, once smtpd is back. */
	for (int i = 0; i < 50; i++) {
		if (h_connect(&C1, "127.0.0.2", D.port) == 0 && h_reply(&C1, 2000) == 220)
			break;
		h_close(&C1);
		h_sleep_ms(200);
	}
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<commit@localhost>");
	cr_expect_eq(chunk(&C1, msg, sizeof(msg) - 1, 1), 250, "retry: %s", C1.last);
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	expect_delivered("commit", msg, sizeof(msg) - 1);
	cr_expect_eq(h_spool_count(&D, "incoming"), 0,
	             "the killed commit left a file in incoming/");
	finish();
#endif
}
