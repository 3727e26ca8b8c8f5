/*
 * test_smtp.c: the one reply parser of the outbound SMTP/LMTP client
 * (src/smtp/proto.c), table-driven over what SMTP and LMTP servers send:
 * whole replies, replies cut short, malformed lines, control octets, and
 * the limits on lines; and which recipient each reply answers (rcpts.c).
 * The dialogue itself is exercised against real
 * servers by t/integration/test_outbound.c and test_verify.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rcpts.h"
#include "smtp.h"
#include "smtp_proto.h"

enum { MORE, DONE, BAD };

/* Feed the replies at the start of in line by line, as the client reads
 * them (a line ends at LF, a CR before it is dropped): the status of the
 * first reply, its octets in *used. */
static int parse(const char *in, size_t len, struct smtp_reply *rp, size_t *used)
{
	size_t off = 0;
	smtp_reply_init(rp);
	*used = 0;
	for (;;) {
		const char *lf = memchr(in + off, '\n', len - off);
		if (lf == NULL)
			return MORE;
		size_t l = (size_t)(lf - (in + off));
		size_t next = off + l + 1;
		if (l > 0 && in[off + l - 1] == '\r')
			l--;
		int r = smtp_reply_line(rp, in + off, l);
		if (r < 0)
			return BAD;
		off = next;
		if (r == 1) {
			*used = off;
			return DONE;
		}
	}
}

Test(smtp_reply, table)
{
	static const struct {
		const char *in;
		int st;
		int code;
		size_t used;
		const char *text;
	} cases[] = {
	    {"250 2.1.5 OK\r\n", DONE, 250, 14, "250 2.1.5 OK"},
	    {"250\r\n", DONE, 250, 5, "250"},
	    {"250 ok\n", DONE, 250, 7, "250 ok"},
	    {"250-a\r\n250-b\r\n250 c\r\nrest", DONE, 250, 21, "250-a"},
	    {"550 5.1.1 <x@y> User doesn't exist\r\n250 more", DONE, 550, 36,
	     "550 5.1.1 <x@y> User doesn't exist"},
	    {"220 mx.example ESMTP\r\n", DONE, 220, 22, "220 mx.example ESMTP"},
	    {"250-a\r\n250", MORE, 0, 0, NULL},
	    {"", MORE, 0, 0, NULL},
	    {"25", MORE, 0, 0, NULL},
	    {"250-a\r\n251 b\r\n", BAD, 0, 0, NULL},
	    {"150 x\r\n", BAD, 0, 0, NULL},
	    {"650 x\r\n", BAD, 0, 0, NULL},
	    {"25x x\r\n", BAD, 0, 0, NULL},
	    {"250x\r\n", BAD, 0, 0, NULL},
	    {"\r\n", BAD, 0, 0, NULL},
	    {"250 a\rb\r\n", BAD, 0, 0, NULL},
	    {"hello\r\n", BAD, 0, 0, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_reply rp;
		size_t used = 99;
		int st = parse(cases[i].in, strlen(cases[i].in), &rp, &used);
		cr_expect_eq(st, cases[i].st, "case %zu: status %d", i, st);
		if (st != DONE || cases[i].st != DONE)
			continue;
		cr_expect_eq(rp.code, cases[i].code, "case %zu", i);
		cr_expect_eq(used, cases[i].used, "case %zu: used %zu", i, used);
		cr_expect_str_eq(rp.text, cases[i].text, "case %zu", i);
	}
}

Test(smtp_reply, nul_inside_a_line)
{
	struct smtp_reply rp;
	smtp_reply_init(&rp);
	cr_expect_eq(smtp_reply_line(&rp, "250 a\0b", 7), -1);
}

Test(smtp_reply, control_octets_and_length)
{
	struct smtp_reply rp;
	size_t used;
	static const char esc[] = "550 bad \033[31m\r\n";
	cr_assert_eq(parse(esc, sizeof(esc) - 1, &rp, &used), DONE);
	cr_expect_str_eq(rp.text, "550 bad ?[31m");

	/* An endless reply is refused after SMTP_REPLY_LINES_MAX lines. */
	smtp_reply_init(&rp);
	int r = 0;
	for (int i = 0; i <= SMTP_REPLY_LINES_MAX && r == 0; i++)
		r = smtp_reply_line(&rp, "250-xxxxxxxxxx", 14);
	cr_expect_eq(r, -1);
	smtp_reply_init(&rp);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(smtp_reply_line(&rp, "250-xxxxxxxxxx", 14), 0);
	/* A long first line is kept cut, not overflowed. */
	static char big[1002];
	memset(big, 'a', sizeof(big));
	memcpy(big, "250 ", 4);
	memcpy(big + 1000, "\r\n", 2);
	cr_assert_eq(parse(big, sizeof(big), &rp, &used), DONE);
	cr_expect_eq(strlen(rp.text), sizeof(rp.text) - 1);
}

Test(smtp_reply, ehlo_extensions)
{
	struct smtp_reply rp;
	size_t used;
	static const char ehlo[] = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	                           "250-8BITMIME\r\n250 STARTTLS\r\n";
	cr_assert_eq(parse(ehlo, sizeof(ehlo) - 1, &rp, &used), DONE);
	struct smtp_caps c;
	smtp_caps_parse(rp.ext, &c);
	cr_expect(c.pipelining && c.eightbit && c.starttls && c.size);
	cr_expect_eq(c.size_max, 10240000);
	/* LHLO's reply has the same shape. */
	static const char lhlo[] = "250-dovecot\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
	cr_assert_eq(parse(lhlo, sizeof(lhlo) - 1, &rp, &used), DONE);
	smtp_caps_parse(rp.ext, &c);
	cr_expect(!c.pipelining && c.eightbit && !c.starttls && !c.size);
	cr_expect(!c.dsn);
	/* DSN (RFC 3461), in any case, among others. */
	static const char dsn[] = "250-mx.example\r\n250-dsn\r\n250 8BITMIME\r\n";
	cr_assert_eq(parse(dsn, sizeof(dsn) - 1, &rp, &used), DONE);
	smtp_caps_parse(rp.ext, &c);
	cr_expect(c.dsn && c.eightbit);
	cr_expect(!c.smtputf8);
	/* RFC 6531 3.1: SMTPUTF8, any case, parameters ignored. */
	static const char u8[] = "250-mx.example\r\n250-8BITMIME\r\n250-smtputf8 x\r\n"
	                         "250 HELP\r\n";
	cr_assert_eq(parse(u8, sizeof(u8) - 1, &rp, &used), DONE);
	smtp_caps_parse(rp.ext, &c);
	cr_expect(c.smtputf8 && c.eightbit);
	smtp_caps_parse("SMTPUTF8X\n8BITMIME\n", &c);
	cr_expect(!c.smtputf8);
}

/* Who gets which answer (src/smtp/rcpts.c): RCPT replies in order, then
 * one reply to the dot for all (SMTP) or one per accepted recipient in
 * RCPT order (LMTP, RFC 2033 4.2). */
Test(smtp_rcpts, smtp_and_lmtp_answers)
{
	struct smtp_result res[3];
	struct smtp_rcpts r = {0};
	for (int lmtp = 0; lmtp <= 1; lmtp++) {
		rcpts_begin(&r, res, 3);
		cr_expect_eq(rcpts_rcpt_reply(&r, 250, "250 ok", 0, 1), 0);
		cr_expect_eq(rcpts_rcpt_reply(&r, 550, "550 5.1.1 unknown", 0, 1), 0);
		cr_expect_eq(rcpts_rcpt_reply(&r, 251, "251 forwarded", 0, 1), 1);
		cr_expect_eq(r.accepted, 2);
		cr_expect_eq(res[0].code, 0, "an accepted recipient waits for the dot");
		cr_expect_eq(res[1].code, 550);
		rcpts_dot_begin(&r);
		if (lmtp) {
			cr_expect_eq(rcpts_dot_reply(&r, 1, 250, "250 2.0.0 saved"), 0);
			cr_expect_eq(rcpts_dot_reply(&r, 1, 452, "452 4.2.2 over quota"), 1);
			cr_expect_eq(res[2].code, 452);
		} else {
			cr_expect_eq(rcpts_dot_reply(&r, 0, 250, "250 2.0.0 queued"), 1);
			cr_expect_eq(res[2].code, 250);
		}
		cr_expect_eq(res[0].code, 250);
		cr_expect_eq(res[1].code, 550, "a refused recipient kept its RCPT answer");
	}
	/* A probe keeps the 2xx of RCPT; a code outside 2xx-5xx is 451. */
	rcpts_begin(&r, res, 2);
	rcpts_rcpt_reply(&r, 250, "250 ok", 1, 1);
	rcpts_rcpt_reply(&r, 354, "354 what", 1, 1);
	cr_expect_eq(res[0].code, 250);
	cr_expect_eq(res[1].code, 451);
	/* Replies after a refused MAIL only move on; the rest share one. */
	rcpts_begin(&r, res, 2);
	cr_expect_eq(rcpts_any_decided(&r), 0);
	rcpts_rcpt_reply(&r, 250, "250 ok", 0, 0);
	cr_expect_eq(r.accepted, 0);
	rcpts_fill(&r, 421, "421 closing");
	cr_expect(res[0].code == 421 && res[1].code == 421);
	cr_expect_str_eq(res[1].reply, "421 closing");
	rcpts_free(&r);
}
