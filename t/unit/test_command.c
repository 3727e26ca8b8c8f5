/*
 * test_command.c: unit tests for src/smtpd/command.c (command-line
 * framing and parsing, MAIL/RCPT arguments and ESMTP parameters) and for
 * the reply table of src/smtpd/reply.c that its results index.
 *
 * Table-driven: each table row is one input and the reply a client would
 * get (code and enhanced code), so a failure names the command line.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "reply.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* "500 5.5.1" for a reply id, "none" for RPL_NONE. */
static const char *code_of(enum reply_id id, char *buf, size_t size)
{
	const struct reply *r = reply_get(id);
	if (r == NULL)
		snprintf(buf, size, "none");
	else
		snprintf(buf, size, "%d %s", r->code, r->enh);
	return buf;
}

#define EXPECT_REPLY(got, want, fmt, ...)                                                          \
	do {                                                                                       \
		char g_[32], w_[32];                                                               \
		cr_expect_str_eq(code_of(got, g_, sizeof(g_)), code_of(want, w_, sizeof(w_)), fmt, \
		                 __VA_ARGS__);                                                     \
	} while (0)

/* Framing: RFC 5321 4.5.3.1.4, 512 octets including CR LF. */

struct frame_case {
	const char *what;
	size_t textlen; /* octets of 'a' */
	const char *end;
	int discarding;
	enum cmd_frame_status want;
	size_t consumed;
	size_t len;
	int bare_lf;
};

static const struct frame_case frame_cases[] = {
    {"empty input", 0, "", 0, CMD_FRAME_MORE, 0, 0, 0},
    {"partial", 10, "", 0, CMD_FRAME_MORE, 0, 0, 0},
    {"partial with CR", 10, "\r", 0, CMD_FRAME_MORE, 0, 0, 0},
    {"CRLF", 4, "\r\n", 0, CMD_FRAME_LINE, 6, 4, 0},
    {"bare LF", 4, "\n", 0, CMD_FRAME_LINE, 5, 4, 1},
    {"empty line", 0, "\r\n", 0, CMD_FRAME_LINE, 2, 0, 0},
    {"510 + CRLF = 512", 510, "\r\n", 0, CMD_FRAME_LINE, 512, 510, 0},
    {"511 + LF = 512", 511, "\n", 0, CMD_FRAME_LINE, 512, 511, 1},
    {"511 + CRLF = 513", 511, "\r\n", 0, CMD_FRAME_DISCARD, 512, 0, 0},
    {"512 + LF", 512, "\n", 0, CMD_FRAME_DISCARD, 512, 0, 0},
    {"511 no end yet", 511, "", 0, CMD_FRAME_MORE, 0, 0, 0},
    {"512 no end", 512, "", 0, CMD_FRAME_DISCARD, 512, 0, 0},
    {"discarding, no end", 100, "", 1, CMD_FRAME_DISCARD, 100, 0, 0},
    {"discarding, end", 100, "\r\n", 1, CMD_FRAME_TOO_LONG, 102, 0, 0},
    {"discarding, bare LF end", 3, "\n", 1, CMD_FRAME_TOO_LONG, 4, 0, 0},
};

Test(command, frame_table)
{
	for (size_t i = 0; i < N(frame_cases); i++) {
		const struct frame_case *c = &frame_cases[i];
		char buf[2048];
		memset(buf, 'a', c->textlen);
		memcpy(buf + c->textlen, c->end, strlen(c->end));
		size_t avail = c->textlen + strlen(c->end);
		/* The session passes at most CMD_LINE_MAX octets. */
		size_t window = avail < CMD_LINE_MAX ? avail : CMD_LINE_MAX;
		struct cmd_frame f;
		enum cmd_frame_status st = cmd_frame(buf, window, c->discarding, &f);
		cr_expect_eq(st, c->want, "%s: status %d, want %d", c->what, st, c->want);
		cr_expect_eq(f.consumed, c->consumed, "%s: consumed %zu, want %zu", c->what,
		             f.consumed, c->consumed);
		if (st == CMD_FRAME_LINE) {
			cr_expect_eq(f.len, c->len, "%s: len %zu", c->what, f.len);
			cr_expect_eq(f.bare_lf, c->bare_lf, "%s: bare_lf %d", c->what, f.bare_lf);
		}
	}
}

/* RFC 3461 4: MAIL may be 100 octets longer, RCPT 500 (DSN). */
Test(command, frame_dsn_lengths)
{
	static const struct {
		const char *verb;
		size_t total; /* octets with CR LF */
		enum cmd_frame_status want;
	} cases[] = {
	    {"MAIL ", 612, CMD_FRAME_LINE},    {"MAIL ", 613, CMD_FRAME_DISCARD},
	    {"rcpt ", 1012, CMD_FRAME_LINE},   {"RCPT ", 1013, CMD_FRAME_DISCARD},
	    {"NOOP ", 513, CMD_FRAME_DISCARD}, {"MAILX", 513, CMD_FRAME_DISCARD},
	};
	for (size_t i = 0; i < N(cases); i++) {
		char buf[2048];
		size_t n = cases[i].total;
		memset(buf, 'a', n);
		memcpy(buf, cases[i].verb, 5);
		memcpy(buf + n - 2, "\r\n", 2);
		size_t window = n < CMD_WINDOW_MAX ? n : CMD_WINDOW_MAX;
		struct cmd_frame f;
		enum cmd_frame_status st = cmd_frame(buf, window, 0, &f);
		cr_expect_eq(st, cases[i].want, "%s%zu: %d", cases[i].verb, n, st);
		if (st == CMD_FRAME_LINE)
			cr_expect_eq(f.len, n - 2);
	}
}

Test(command, frame_pipelined_lines)
{
	const char *in = "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\nDATA\r\n";
	const char *want[] = {"MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA"};
	const int bare[] = {0, 1, 0};
	size_t off = 0, len = strlen(in);
	for (size_t i = 0; i < N(want); i++) {
		struct cmd_frame f;
		cr_assert_eq(cmd_frame(in + off, len - off, 0, &f), CMD_FRAME_LINE);
		cr_expect_eq(f.len, strlen(want[i]));
		cr_expect(memcmp(in + off, want[i], f.len) == 0, "line %zu", i);
		cr_expect_eq(f.bare_lf, bare[i], "line %zu", i);
		off += f.consumed;
	}
	cr_expect_eq(off, len);
}

/* Verbs. */

struct parse_case {
	const char *line;
	size_t len; /* 0: strlen(line) */
	enum reply_id want;
	enum cmd_verb verb;
	const char *arg;
};

static const struct parse_case parse_cases[] = {
    {"HELO mx.example", 0, RPL_NONE, CMD_HELO, "mx.example"},
    {"helo mx.example", 0, RPL_NONE, CMD_HELO, "mx.example"},
    {"EhLo mx.example", 0, RPL_NONE, CMD_EHLO, "mx.example"},
    {"EHLO   mx.example  ", 0, RPL_NONE, CMD_EHLO, "mx.example"},
    {"MAIL FROM:<a@b.example>", 0, RPL_NONE, CMD_MAIL, "FROM:<a@b.example>"},
    {"mail from:<>", 0, RPL_NONE, CMD_MAIL, "from:<>"},
    {"RCPT TO:<u@example.test>", 0, RPL_NONE, CMD_RCPT, "TO:<u@example.test>"},
    {"DATA", 0, RPL_NONE, CMD_DATA, ""},
    {"data", 0, RPL_NONE, CMD_DATA, ""},
    {"DATA ", 0, RPL_NONE, CMD_DATA, ""},
    {"DATA\t", 0, RPL_NONE, CMD_DATA, ""},
    {"RSET", 0, RPL_NONE, CMD_RSET, ""},
    {"NOOP", 0, RPL_NONE, CMD_NOOP, ""},
    {"noop anything at all", 0, RPL_NONE, CMD_NOOP, "anything at all"},
    {"QUIT", 0, RPL_NONE, CMD_QUIT, ""},
    {"VRFY root", 0, RPL_NONE, CMD_VRFY, "root"},
    {"HELP", 0, RPL_NONE, CMD_HELP, ""},
    {"help mail", 0, RPL_NONE, CMD_HELP, "mail"},
    {"STARTTLS", 0, RPL_NONE, CMD_STARTTLS, ""},
    {"starttls", 0, RPL_NONE, CMD_STARTTLS, ""},
    {"EXPN staff", 0, RPL_NONE, CMD_EXPN, "staff"},
    {"BDAT 100 LAST", 0, RPL_NONE, CMD_BDAT, "100 LAST"},
    {"AUTH PLAIN", 0, RPL_NONE, CMD_AUTH, "PLAIN"},
    {"ETRN example.test", 0, RPL_NONE, CMD_ETRN, "example.test"},
    {"TURN", 0, RPL_NONE, CMD_TURN, ""},
    {"FOO", 0, RPL_UNKNOWN_CMD, CMD_UNKNOWN, ""},
    {"HELOmx.example", 0, RPL_UNKNOWN_CMD, CMD_UNKNOWN, ""},
    {"MAILFROM:<a@b>", 0, RPL_UNKNOWN_CMD, CMD_UNKNOWN, ""},
    {"HELO\tmx.example", 0, RPL_UNKNOWN_CMD, CMD_UNKNOWN, ""},
    {"SEND FROM:<a@b>", 0, RPL_UNKNOWN_CMD, CMD_UNKNOWN, ""},
    {"", 0, RPL_UNKNOWN_CMD, CMD_NONE, ""},
    {" HELO mx.example", 0, RPL_UNKNOWN_CMD, CMD_NONE, ""},
    {"get / HTTP/1.1", 0, RPL_UNKNOWN_CMD, CMD_UNKNOWN, ""},
    {"NOOP\0x", 6, RPL_BAD_CHAR, CMD_NONE, ""},
    {"\0", 1, RPL_BAD_CHAR, CMD_NONE, ""},
    {"NOOP a\rb", 0, RPL_BAD_CHAR, CMD_NONE, ""},
    {"QUIT\r", 0, RPL_BAD_CHAR, CMD_NONE, ""},
    {"GET / HTTP/1.1", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"POST /cgi-bin/x HTTP/1.0", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"CONNECT mx.example:25 HTTP/1.1", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"HEAD / HTTP/1.1", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"PUT /x HTTP/1.1", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"\x16\x03\x01\x02\x00", 5, RPL_NON_SMTP, CMD_NONE, ""},
    /* Message header lines sent at the command prompt. */
    {"Subject: hello", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"From: <a@example.org>", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"To:", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"Received: from x by y", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"X-Mailer: ratware 1.0", 0, RPL_NON_SMTP, CMD_NONE, ""},
    {"message-id:<1@x>", 0, RPL_NON_SMTP, CMD_NONE, ""},
};

Test(command, parse_table)
{
	for (size_t i = 0; i < N(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t len = c->len ? c->len : strlen(c->line);
		struct cmd_line cmd;
		enum reply_id r = cmd_parse(c->line, len, &cmd);
		EXPECT_REPLY(r, c->want, "cmd_parse(\"%s\")", c->line);
		cr_expect_eq(cmd.verb, c->verb, "cmd_parse(\"%s\"): verb %s, want %s", c->line,
		             cmd_verb_name(cmd.verb), cmd_verb_name(c->verb));
		if (r == RPL_NONE) {
			cr_expect_eq(cmd.arglen, strlen(c->arg), "cmd_parse(\"%s\"): arglen %zu",
			             c->line, cmd.arglen);
			cr_expect(memcmp(cmd.arg, c->arg, cmd.arglen) == 0,
			          "cmd_parse(\"%s\"): arg \"%.*s\"", c->line, (int)cmd.arglen,
			          cmd.arg);
		}
	}
}

Test(command, verb_names)
{
	cr_expect_str_eq(cmd_verb_name(CMD_MAIL), "MAIL");
	cr_expect_str_eq(cmd_verb_name(CMD_STARTTLS), "STARTTLS");
	cr_expect_str_eq(cmd_verb_name(CMD_UNKNOWN), "UNKNOWN");
	cr_expect_str_eq(cmd_verb_name(CMD_NONE), "NONE");
}

struct args_case {
	const char *line;
	enum reply_id want;
};

static const struct args_case args_cases[] = {
    {"DATA", RPL_NONE},        {"DATA x", RPL_NO_ARGS},
    {"RSET", RPL_NONE},        {"RSET now", RPL_NO_ARGS},
    {"QUIT", RPL_NONE},        {"QUIT bye", RPL_NO_ARGS},
    {"STARTTLS", RPL_NONE},    {"STARTTLS now", RPL_NO_ARGS},
    {"HELO", RPL_BAD_HELO},    {"EHLO", RPL_BAD_HELO},
    {"EHLO   ", RPL_BAD_HELO}, {"HELO x.example", RPL_NONE},
    {"MAIL", RPL_NEED_ARG},    {"RCPT", RPL_NEED_ARG},
    {"VRFY", RPL_NEED_ARG},    {"VRFY x", RPL_NONE},
    {"NOOP", RPL_NONE},        {"NOOP x y z", RPL_NONE},
    {"HELP", RPL_NONE},        {"HELP DATA", RPL_NONE},
    {"EXPN", RPL_NONE},        {"AUTH LOGIN", RPL_NONE},
};

Test(command, argument_counts)
{
	for (size_t i = 0; i < N(args_cases); i++) {
		struct cmd_line cmd;
		cr_assert_eq(cmd_parse(args_cases[i].line, strlen(args_cases[i].line), &cmd),
		             RPL_NONE, "%s", args_cases[i].line);
		EXPECT_REPLY(cmd_check_args(&cmd), args_cases[i].want, "args of \"%s\"",
		             args_cases[i].line);
	}
}

struct helo_case {
	const char *arg;
	int ok;
};

static const struct helo_case helo_cases[] = {
    {"mx.example.com", 1},
    {"MX.Example.COM", 1},
    {"localhost", 1},
    {"mail-1.example", 1},
    {"[192.0.2.1]", 1},
    {"[IPv6:2001:db8::1]", 1},
    {"", 0},
    {"bad_host.example", 1}, /* tolerated: Windows host names */
    {"192.0.2.1", 1},        /* tolerated: bare address, weighed by the classifier */
    {"2001:db8::1", 1},
    {"_.example", 1},
    {"[192.0.2.1]x", 0},
    {"192.0.2.", 0},
    {"[bad_literal]", 0},
    {"two words", 0},
    {"tab\there", 0},
    {"-lead.example", 0},
    {"dots..example", 0},
    {"[192.0.2.1", 0},
    {"host!", 0},
    {"h\xc3\xa9llo.example", 0},
};

Test(command, helo_table)
{
	for (size_t i = 0; i < N(helo_cases); i++) {
		enum reply_id r = cmd_check_helo(helo_cases[i].arg, strlen(helo_cases[i].arg));
		EXPECT_REPLY(r, helo_cases[i].ok ? RPL_NONE : RPL_BAD_HELO, "HELO \"%s\"",
		             helo_cases[i].arg);
	}
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	EXPECT_REPLY(cmd_check_helo(big, strlen(big)), RPL_BAD_HELO, "%s", "300-octet HELO");
	EXPECT_REPLY(cmd_check_helo("a\0b", 3), RPL_BAD_HELO, "%s", "HELO with NUL");
}

/* MAIL FROM: RFC 5321 4.1.1.2, SIZE (RFC 1870), BODY (RFC 6152). */

struct mail_case {
	const char *arg;
	int flags;
	enum reply_id want;
	const char *addr; /* formatted, when accepted */
	int has_size;
	uint64_t size;
	enum cmd_body body;
	const char *param; /* keyword named in the error reply */
	enum addr_error addr_err;
};

static const struct mail_case mail_cases[] = {
    {"FROM:<a@b.example>", 0, RPL_NONE, "a@b.example", 0, 0, CMD_BODY_NONE, "", ADDR_OK},
    {"from:<a@B.Example>", 0, RPL_NONE, "a@b.example", 0, 0, CMD_BODY_NONE, "", ADDR_OK},
    {"FROM: <a@b.example>", 0, RPL_NONE, "a@b.example", 0, 0, CMD_BODY_NONE, "", ADDR_OK},
    {"FROM:<>", 0, RPL_NONE, "", 0, 0, CMD_BODY_NONE, "", ADDR_OK},
    {"FROM:<> SIZE=100", 0, RPL_NONE, "", 1, 100, CMD_BODY_NONE, "", ADDR_OK},
    {"FROM:<> size=0", 0, RPL_NONE, "", 1, 0, CMD_BODY_NONE, "", ADDR_OK},
    {"FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", 0, RPL_NONE, "a@b.example", 1, 1000,
     CMD_BODY_8BITMIME, "", ADDR_OK},
    {"FROM:<a@b.example>  body=7bit   size=5", 0, RPL_NONE, "a@b.example", 1, 5, CMD_BODY_7BIT, "",
     ADDR_OK},
    {"FROM:<> SIZE=18446744073709551615", 0, RPL_NONE, "", 1, UINT64_MAX, CMD_BODY_NONE, "",
     ADDR_OK},
    {"FROM:<> SIZE=99999999999999999999", 0, RPL_NONE, "", 1, UINT64_MAX, CMD_BODY_NONE, "",
     ADDR_OK},
    {"FROM:<@r1.example,@r2.example:a@b.example>", 0, RPL_NONE, "a@b.example", 0, 0, CMD_BODY_NONE,
     "", ADDR_OK},
    {"FROM:<a@[192.0.2.1]>", ADDR_ALLOW_LITERAL, RPL_NONE, "a@[192.0.2.1]", 0, 0, CMD_BODY_NONE, "",
     ADDR_OK},
    {"FROM:<\"a b\"@b.example>", 0, RPL_NONE, "\"a b\"@b.example", 0, 0, CMD_BODY_NONE, "",
     ADDR_OK},
    {"FROM:<> SMTPUTF8", 0, RPL_NONE, "", 0, 0, CMD_BODY_NONE, "", ADDR_OK},
    /* syntax of the command */
    {"FROM <a@b.example>", 0, RPL_MAIL_SYNTAX, NULL, 0, 0, 0, "", ADDR_OK},
    {"FROM:", 0, RPL_MAIL_SYNTAX, NULL, 0, 0, 0, "", ADDR_OK},
    {"FROM:   ", 0, RPL_MAIL_SYNTAX, NULL, 0, 0, 0, "", ADDR_OK},
    {"TO:<a@b.example>", 0, RPL_MAIL_SYNTAX, NULL, 0, 0, 0, "", ADDR_OK},
    {"FRO:<a@b.example>", 0, RPL_MAIL_SYNTAX, NULL, 0, 0, 0, "", ADDR_OK},
    /* the address */
    {"FROM:a@b.example", 0, RPL_BAD_SENDER, NULL, 0, 0, 0, "", ADDR_ERR_NOBRACKET},
    {"FROM:<a@b.example", 0, RPL_BAD_SENDER, NULL, 0, 0, 0, "", ADDR_ERR_NOBRACKET},
    {"FROM:<a@[192.0.2.1]>", 0, RPL_BAD_SENDER, NULL, 0, 0, 0, "", ADDR_ERR_LITERAL},
    {"FROM:<a@b.example>SIZE=1", 0, RPL_BAD_SENDER, NULL, 0, 0, 0, "", ADDR_ERR_SYNTAX},
    {"FROM:<postmaster>", 0, RPL_BAD_SENDER, NULL, 0, 0, 0, "", ADDR_ERR_DOMAIN},
    /* RFC 6531 3.5: UTF-8 without SMTPUTF8 is 550 5.6.7, not a syntax error */
    {"FROM:<a\xc3\xa9@b.example>", 0, RPL_MAIL_NOT_ASCII, NULL, 0, 0, 0, "", ADDR_ERR_8BIT},
    {"FROM:<a..b@b.example>", 0, RPL_BAD_SENDER, NULL, 0, 0, 0, "", ADDR_ERR_LOCAL},
    /* parameters: malformed -> 501 */
    {"FROM:<> SIZE=abc", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "SIZE", ADDR_OK},
    {"FROM:<> SIZE=", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "SIZE=", ADDR_OK},
    {"FROM:<> SIZE", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "SIZE", ADDR_OK},
    {"FROM:<> SIZE=-1", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "SIZE", ADDR_OK},
    {"FROM:<> SIZE=123456789012345678901", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "SIZE", ADDR_OK},
    {"FROM:<> SIZE=1=2", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "SIZE=1=2", ADDR_OK},
    {"FROM:<> =1", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "=1", ADDR_OK},
    {"FROM:<> -X=1", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "-X=1", ADDR_OK},
    {"FROM:<> BODY=9BIT", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "BODY", ADDR_OK},
    {"FROM:<> BODY", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "BODY", ADDR_OK},
    {"FROM:<> SIZE=1 SIZE=2", 0, RPL_PARAM_DUP, NULL, 0, 0, 0, "SIZE", ADDR_OK},
    {"FROM:<> BODY=7BIT body=8bitmime", 0, RPL_PARAM_DUP, NULL, 0, 0, 0, "body", ADDR_OK},
    /* parameters we do not advertise -> 555 */
    {"FROM:<> BODY=BINARYMIME", 0, RPL_PARAM_UNKNOWN, NULL, 0, 0, 0, "BODY", ADDR_OK},
    /* DSN (RFC 3461): accepted; bad values -> 501 (their parsing: test_dsn.c) */
    {"FROM:<> RET=HDRS", 0, RPL_NONE, "", 0, 0, CMD_BODY_NONE, "", ADDR_OK},
    {"FROM:<> ENVID=abc", 0, RPL_NONE, "", 0, 0, CMD_BODY_NONE, "", ADDR_OK},
    {"FROM:<> RET=ALL", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "RET", ADDR_OK},
    {"FROM:<> ENVID=a+2", 0, RPL_PARAM_SYNTAX, NULL, 0, 0, 0, "ENVID", ADDR_OK},
    {"FROM:<> RET=FULL ret=hdrs", 0, RPL_PARAM_DUP, NULL, 0, 0, 0, "ret", ADDR_OK},
    {"FROM:<> ENVID=a ENVID=b", 0, RPL_PARAM_DUP, NULL, 0, 0, 0, "ENVID", ADDR_OK},
    {"FROM:<> AUTH=<>", 0, RPL_PARAM_UNKNOWN, NULL, 0, 0, 0, "AUTH", ADDR_OK},
    {"FROM:<> X-UNKNOWN=1", 0, RPL_PARAM_UNKNOWN, NULL, 0, 0, 0, "X-UNKNOWN", ADDR_OK},
    {"FROM:<> SIZE=10 XYZ", 0, RPL_PARAM_UNKNOWN, NULL, 0, 0, 0, "XYZ", ADDR_OK},
};

Test(command, mail_table)
{
	for (size_t i = 0; i < N(mail_cases); i++) {
		const struct mail_case *c = &mail_cases[i];
		struct cmd_mail m;
		enum reply_id r = cmd_parse_mail(c->arg, strlen(c->arg), c->flags, &m);
		EXPECT_REPLY(r, c->want, "MAIL %s", c->arg);
		if (r != c->want)
			continue;
		if (r == RPL_NONE) {
			char buf[ADDR_PATH_MAX * 2 + 8];
			addr_format(&m.addr, buf, sizeof(buf));
			cr_expect_str_eq(buf, c->addr, "MAIL %s: address", c->arg);
			cr_expect_eq(m.has_size, c->has_size, "MAIL %s: has_size", c->arg);
			if (c->has_size)
				cr_expect_eq(m.size, c->size, "MAIL %s: size %llu", c->arg,
				             (unsigned long long)m.size);
			cr_expect_eq(m.body, c->body, "MAIL %s: body", c->arg);
		} else if (r == RPL_BAD_SENDER) {
			cr_expect_eq(m.addr_err, c->addr_err, "MAIL %s: %s", c->arg,
			             addr_strerror(m.addr_err));
		} else if (r != RPL_MAIL_SYNTAX) {
			cr_expect_str_eq(m.param, c->param, "MAIL %s: param", c->arg);
		}
	}
}

/* RCPT TO: RFC 5321 4.1.1.3. */

struct rcpt_case {
	const char *arg;
	int flags;
	enum reply_id want;
	const char *addr;
	int postmaster;
	const char *param;
};

static const struct rcpt_case rcpt_cases[] = {
    {"TO:<u@example.test>", 0, RPL_NONE, "u@example.test", 0, ""},
    {"to:<U@Example.TEST>", 0, RPL_NONE, "U@example.test", 0, ""},
    {"TO: <u@example.test>", 0, RPL_NONE, "u@example.test", 0, ""},
    {"TO:<postmaster>", 0, RPL_NONE, "postmaster", 1, ""},
    {"TO:<PostMaster>", 0, RPL_NONE, "postmaster", 1, ""},
    {"TO:<postmaster@example.test>", 0, RPL_NONE, "postmaster@example.test", 0, ""},
    {"TO:<@hop.example:u@example.test>", 0, RPL_NONE, "u@example.test", 0, ""},
    {"TO:<u@[192.0.2.1]>", ADDR_ALLOW_LITERAL, RPL_NONE, "u@[192.0.2.1]", 0, ""},
    {"TO:<u@[192.0.2.1]>", 0, RPL_BAD_RCPT, NULL, 0, ""},
    {"TO:<>", 0, RPL_BAD_RCPT, NULL, 0, ""},
    {"TO:u@example.test", 0, RPL_BAD_RCPT, NULL, 0, ""},
    {"TO:<u@>", 0, RPL_BAD_RCPT, NULL, 0, ""},
    {"TO:<u>", 0, RPL_BAD_RCPT, NULL, 0, ""},
    {"TO:<u@example.test>x", 0, RPL_BAD_RCPT, NULL, 0, ""},
    {"TO:", 0, RPL_RCPT_SYNTAX, NULL, 0, ""},
    {"TO", 0, RPL_RCPT_SYNTAX, NULL, 0, ""},
    {"FROM:<u@example.test>", 0, RPL_RCPT_SYNTAX, NULL, 0, ""},
    {"TO:<u@example.test> NOTIFY=NEVER", 0, RPL_NONE, "u@example.test", 0, ""},
    {"TO:<u@example.test> ORCPT=rfc822;u@example.test", 0, RPL_NONE, "u@example.test", 0, ""},
    {"TO:<u@example.test> NOTIFY=NEVER,DELAY", 0, RPL_PARAM_SYNTAX, NULL, 0, "NOTIFY"},
    {"TO:<u@example.test> ORCPT=u@example.test", 0, RPL_PARAM_SYNTAX, NULL, 0, "ORCPT"},
    {"TO:<u@example.test> NOTIFY=DELAY NOTIFY=DELAY", 0, RPL_PARAM_DUP, NULL, 0, "NOTIFY"},
    {"TO:<u@example.test> FOO", 0, RPL_PARAM_UNKNOWN, NULL, 0, "FOO"},
    {"TO:<u@example.test> =x", 0, RPL_PARAM_SYNTAX, NULL, 0, "=x"},
};

Test(command, rcpt_table)
{
	for (size_t i = 0; i < N(rcpt_cases); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		struct cmd_rcpt rc;
		enum reply_id r = cmd_parse_rcpt(c->arg, strlen(c->arg), c->flags, &rc);
		EXPECT_REPLY(r, c->want, "RCPT %s", c->arg);
		if (r != c->want)
			continue;
		if (r == RPL_NONE) {
			char buf[ADDR_PATH_MAX * 2 + 8];
			addr_format(&rc.addr, buf, sizeof(buf));
			cr_expect_str_eq(buf, c->addr, "RCPT %s: address", c->arg);
			cr_expect_eq(rc.addr.is_postmaster, c->postmaster, "RCPT %s", c->arg);
		} else if (r == RPL_PARAM_UNKNOWN || r == RPL_PARAM_SYNTAX) {
			cr_expect_str_eq(rc.param, c->param, "RCPT %s: param", c->arg);
		}
	}
}

/* The DSN values reach the parsed command (RFC 3461). */
Test(command, dsn_parameters_are_kept)
{
	struct cmd_mail m;
	const char *ma = "FROM:<a@b.example> RET=hdrs ENVID=QQ+2B1 SIZE=10";
	cr_assert_eq(cmd_parse_mail(ma, strlen(ma), 0, &m), RPL_NONE);
	cr_expect_eq(m.dsn.ret, DSN_RET_HDRS);
	cr_expect(m.dsn.has_envid);
	cr_expect_str_eq(m.dsn.envid, "QQ+1");
	cr_expect_eq(m.size, 10);
	struct cmd_rcpt rc;
	const char *ra = "TO:<u@example.test> NOTIFY=success,Delay ORCPT=rfc822;x+2By@example.test";
	cr_assert_eq(cmd_parse_rcpt(ra, strlen(ra), 0, &rc), RPL_NONE);
	cr_expect_eq(rc.dsn.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY);
	cr_expect(rc.dsn.has_orcpt);
	cr_expect_str_eq(rc.dsn.orcpt, "rfc822;x+y@example.test");
	const char *plain = "TO:<u@example.test>";
	cr_assert_eq(cmd_parse_rcpt(plain, strlen(plain), 0, &rc), RPL_NONE);
	cr_expect_eq(rc.dsn.notify, 0);
	cr_expect(!rc.dsn.has_orcpt);
}

/* Every MAIL parameter we offer in one line, with a UTF-8 path: SIZE,
 * BODY, SMTPUTF8 (RFC 6531) and RET/ENVID (RFC 3461) are each kept; a
 * UTF-8 RCPT in that transaction takes NOTIFY and ORCPT. */
Test(command, dsn_and_smtputf8_together)
{
	struct cmd_mail m;
	const char *ma = "FROM:<j\xc3\xb6rg@b\xc3\xbc.example> SIZE=10 BODY=8BITMIME SMTPUTF8 "
	                 "RET=FULL ENVID=u8+2B1";
	cr_assert_eq(cmd_parse_mail(ma, strlen(ma), ADDR_ALLOW_LITERAL, &m), RPL_NONE);
	cr_expect_eq(m.size, 10);
	cr_expect_eq(m.body, CMD_BODY_8BITMIME);
	cr_expect(m.smtputf8);
	cr_expect_eq(m.dsn.ret, DSN_RET_FULL);
	cr_expect_str_eq(m.dsn.envid, "u8+1");
	struct cmd_rcpt rc;
	const char *ra = "TO:<\xe7\x94\xa8\xe6\x88\xb7@example.test> NOTIFY=FAILURE "
	                 "ORCPT=rfc822;u@example.test";
	cr_assert_eq(cmd_parse_rcpt(ra, strlen(ra), ADDR_ALLOW_LITERAL | ADDR_ALLOW_UTF8, &rc),
	             RPL_NONE);
	cr_expect(rc.addr.is_utf8);
	cr_expect_eq(rc.dsn.notify, DSN_NOTIFY_FAILURE);
	cr_expect_str_eq(rc.dsn.orcpt, "rfc822;u@example.test");
	/* The ORCPT address itself stays printable US-ASCII xtext: a raw
	 * UTF-8 octet in it is refused. */
	const char *ru = "TO:<u@example.test> ORCPT=utf-8;j\xc3\xb6rg@example.test";
	cr_expect_eq(cmd_parse_rcpt(ru, strlen(ru), ADDR_ALLOW_LITERAL | ADDR_ALLOW_UTF8, &rc),
	             RPL_PARAM_SYNTAX);
}

Test(command, parameter_name_is_cut)
{
	char arg[200];
	snprintf(arg, sizeof(arg), "FROM:<> %0120d=1", 7);
	struct cmd_mail m;
	cr_expect_eq(cmd_parse_mail(arg, strlen(arg), 0, &m), RPL_PARAM_UNKNOWN);
	cr_expect_eq(strlen(m.param), CMD_PARAM_NAME_MAX - 1);
}

/* The reply table those results index. */

struct code_case {
	enum reply_id id;
	int code;
	const char *enh;
};

static const struct code_case code_cases[] = {
    {RPL_UNKNOWN_CMD, 500, "5.5.1"},    {RPL_LINE_TOO_LONG, 500, "5.5.2"},
    {RPL_BAD_CHAR, 500, "5.5.2"},       {RPL_NON_SMTP, 500, "5.5.1"},
    {RPL_SYNTAX, 501, "5.5.4"},         {RPL_NO_ARGS, 501, "5.5.4"},
    {RPL_BAD_HELO, 501, "5.5.4"},       {RPL_BAD_SENDER, 501, "5.1.7"},
    {RPL_BAD_RCPT, 501, "5.1.3"},       {RPL_PARAM_SYNTAX, 501, "5.5.4"},
    {RPL_NOT_IMPL, 502, "5.5.1"},       {RPL_BAD_SEQUENCE, 503, "5.5.1"},
    {RPL_NEED_RCPT, 503, "5.5.1"},      {RPL_PARAM_UNKNOWN, 555, "5.5.4"},
    {RPL_SIZE_EXCEEDED, 552, "5.3.4"},  {RPL_RELAY_DENIED, 554, "5.7.1"},
    {RPL_LITERAL_DENIED, 554, "5.7.1"}, {RPL_TOO_MANY_HOPS, 554, "5.4.6"},
    {RPL_DATA_BARE, 554, "5.6.0"},      {RPL_TOO_MANY_RCPT, 452, "4.5.3"},
    {RPL_LOCAL_ERROR, 451, "4.3.0"},    {RPL_SHUTDOWN, 421, "4.3.2"},
    {RPL_TIMEOUT, 421, "4.4.2"},        {RPL_TOO_MANY_CONN, 421, "4.7.0"},
    {RPL_VRFY, 252, "2.5.2"},           {RPL_HELP, 214, "2.0.0"},
    {RPL_TLS_READY, 220, "2.0.0"},      {RPL_BYE, 221, "2.0.0"},
};

Test(reply, codes_table)
{
	for (size_t i = 0; i < N(code_cases); i++) {
		const struct reply *r = reply_get(code_cases[i].id);
		cr_assert_not_null(r, "id %d", (int)code_cases[i].id);
		cr_expect_eq(r->code, code_cases[i].code, "id %d", (int)code_cases[i].id);
		cr_expect_str_eq(r->enh, code_cases[i].enh, "id %d", (int)code_cases[i].id);
	}
}

Test(reply, every_reply_is_consistent)
{
	cr_expect_null(reply_get(RPL_NONE));
	cr_expect_null(reply_get(RPL_COUNT));
	for (int id = RPL_NONE + 1; id < RPL_COUNT; id++) {
		const struct reply *r = reply_get((enum reply_id)id);
		cr_assert_not_null(r, "id %d has no row", id);
		cr_expect(r->code >= 200 && r->code <= 599, "id %d code %d", id, r->code);
		/* RFC 3463: the class digit matches the reply's first digit. */
		cr_expect_eq(r->enh[0] - '0', r->code / 100, "id %d: %d %s", id, r->code, r->enh);
		char buf[REPLY_LINE_MAX];
		size_t n = reply_format((enum reply_id)id, "x", buf, sizeof(buf));
		cr_expect(n > 12 && buf[n - 2] == '\r' && buf[n - 1] == '\n', "id %d", id);
		cr_expect(memchr(buf, '\n', n - 1) == NULL, "id %d: one line", id);
	}
}

Test(reply, format_substitutes_and_cleans)
{
	char buf[REPLY_LINE_MAX];
	size_t n = reply_format(RPL_RELAY_DENIED, "<u@remote.example>", buf, sizeof(buf));
	cr_expect_eq(n, strlen("554 5.7.1 <u@remote.example>: Relay access denied\r\n"));
	cr_expect(memcmp(buf, "554 5.7.1 <u@remote.example>: Relay access denied\r\n", n) == 0);

	n = reply_format(RPL_QUEUED, "ABC\r\n250 fake", buf, sizeof(buf));
	buf[n] = '\0';
	cr_expect_str_eq(buf, "250 2.0.0 Ok: queued as ABC??250 fake\r\n");

	n = reply_format(RPL_OK, NULL, buf, sizeof(buf));
	buf[n] = '\0';
	cr_expect_str_eq(buf, "250 2.0.0 Ok\r\n");

	char big[2000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = reply_format(RPL_RELAY_DENIED, big, buf, sizeof(buf));
	cr_expect_eq(n, REPLY_LINE_MAX, "long argument cut to one reply line");
	cr_expect(memcmp(buf + n - 23, ": Relay access denied\r\n", 23) == 0, "fixed text kept");
}

/* SMTPUTF8 (RFC 6531 3.4): a MAIL parameter without a value, which allows
 * UTF-8 in the reverse-path before it and in the forward-paths after it. */

struct utf8_mail_case {
	const char *arg;
	enum reply_id want;
	int smtputf8;
	const char *addr;
	enum addr_error addr_err;
};

static const struct utf8_mail_case utf8_mail_cases[] = {
    {"FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", RPL_NONE, 1, "j\xc3\xb6rg@b.example", ADDR_OK},
    {"FROM:<j\xc3\xb6rg@b.example> smtputf8 BODY=8BITMIME", RPL_NONE, 1, "j\xc3\xb6rg@b.example",
     ADDR_OK},
    {"FROM:<a@b.example> BODY=8BITMIME SmtpUtf8", RPL_NONE, 1, "a@b.example", ADDR_OK},
    {"FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a> SMTPUTF8",
     RPL_NONE, 1, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
     ADDR_OK},
    {"FROM:<a@b.example>", RPL_NONE, 0, "a@b.example", ADDR_OK},
    /* no value, once */
    {"FROM:<a@b.example> SMTPUTF8=yes", RPL_PARAM_SYNTAX, 0, NULL, ADDR_OK},
    {"FROM:<a@b.example> SMTPUTF8 SMTPUTF8", RPL_PARAM_DUP, 0, NULL, ADDR_OK},
    /* non-ASCII without SMTPUTF8: 550 5.6.7, in the local part, the
     * domain, a quoted string; also when the UTF-8 itself is malformed */
    {"FROM:<j\xc3\xb6rg@b.example>", RPL_MAIL_NOT_ASCII, 0, NULL, ADDR_ERR_8BIT},
    {"FROM:<a@b\xc3\xbc.example> BODY=8BITMIME", RPL_MAIL_NOT_ASCII, 0, NULL, ADDR_ERR_8BIT},
    {"FROM:<\"\xc3\xb6 x\"@b.example>", RPL_MAIL_NOT_ASCII, 0, NULL, ADDR_ERR_8BIT},
    {"FROM:<a\xc0\xaf@b.example>", RPL_MAIL_NOT_ASCII, 0, NULL, ADDR_ERR_8BIT},
    /* malformed UTF-8 with SMTPUTF8: an address syntax error (501 5.1.7) */
    {"FROM:<a\xc0\xaf@b.example> SMTPUTF8", RPL_BAD_SENDER, 0, NULL, ADDR_ERR_LOCAL},
    {"FROM:<a\xed\xa0\x80@b.example> SMTPUTF8", RPL_BAD_SENDER, 0, NULL, ADDR_ERR_LOCAL},
    {"FROM:<a\xc2\x85@b.example> SMTPUTF8", RPL_BAD_SENDER, 0, NULL, ADDR_ERR_LOCAL},
    {"FROM:<a\xc3@b.example> SMTPUTF8", RPL_BAD_SENDER, 0, NULL, ADDR_ERR_LOCAL},
    {"FROM:<a@b\xf4\x90\x80\x80.example> SMTPUTF8", RPL_BAD_SENDER, 0, NULL, ADDR_ERR_DOMAIN},
};

Test(command, smtputf8_mail)
{
	for (size_t i = 0; i < N(utf8_mail_cases); i++) {
		const struct utf8_mail_case *c = &utf8_mail_cases[i];
		struct cmd_mail m;
		enum reply_id r = cmd_parse_mail(c->arg, strlen(c->arg), ADDR_ALLOW_LITERAL, &m);
		EXPECT_REPLY(r, c->want, "MAIL %s", c->arg);
		if (r != c->want)
			continue;
		if (r == RPL_NONE) {
			char buf[ADDR_PATH_MAX * 2 + 8];
			addr_format(&m.addr, buf, sizeof(buf));
			cr_expect_str_eq(buf, c->addr, "MAIL %s: address", c->arg);
			cr_expect_eq(m.smtputf8, c->smtputf8, "MAIL %s: smtputf8", c->arg);
		} else if (r == RPL_BAD_SENDER || r == RPL_MAIL_NOT_ASCII) {
			cr_expect_eq(m.addr_err, c->addr_err, "MAIL %s: %s", c->arg,
			             addr_strerror(m.addr_err));
		}
	}
}

Test(command, smtputf8_rcpt)
{
	struct cmd_rcpt rc;
	/* Without SMTPUTF8 on MAIL: 553 5.6.7. */
	const char *a = "TO:<j\xc3\xb6rg@b\xc3\xbc.example>";
	cr_expect_eq(cmd_parse_rcpt(a, strlen(a), ADDR_ALLOW_LITERAL, &rc), RPL_RCPT_NOT_ASCII);
	cr_expect_eq(rc.addr_err, ADDR_ERR_8BIT);
	/* With it: the address as sent. */
	cr_expect_eq(cmd_parse_rcpt(a, strlen(a), ADDR_ALLOW_LITERAL | ADDR_ALLOW_UTF8, &rc),
	             RPL_NONE);
	cr_expect_str_eq(rc.addr.local, "j\xc3\xb6rg");
	cr_expect_str_eq(rc.addr.domain, "b\xc3\xbc.example");
	cr_expect(rc.addr.is_utf8);
	/* Malformed UTF-8 stays a syntax error under SMTPUTF8 (501 5.1.3). */
	const char *bad = "TO:<j\xe0\x80\xafrg@b.example>";
	cr_expect_eq(cmd_parse_rcpt(bad, strlen(bad), ADDR_ALLOW_UTF8, &rc), RPL_BAD_RCPT);
	cr_expect_eq(rc.addr_err, ADDR_ERR_LOCAL);
}

Test(command, smtputf8_replies)
{
	const struct reply *r = reply_get(RPL_MAIL_NOT_ASCII);
	cr_assert_not_null(r);
	cr_expect_eq(r->code, 550);
	cr_expect_str_eq(r->enh, "5.6.7");
	r = reply_get(RPL_RCPT_NOT_ASCII);
	cr_assert_not_null(r);
	cr_expect_eq(r->code, 553);
	cr_expect_str_eq(r->enh, "5.6.7");
	/* No reply carries UTF-8 (RFC 6531 3.7.4): an address argument's
	 * non-ASCII octets are neutralised. */
	char buf[REPLY_LINE_MAX];
	size_t n = reply_format(RPL_USER_UNKNOWN, "<j\xc3\xb6rg@example.test>", buf, sizeof(buf));
	cr_assert_gt(n, 0);
	for (size_t i = 0; i < n; i++)
		cr_expect_lt((unsigned char)buf[i], 0x80, "octet %zu of %.*s", i, (int)n, buf);
	cr_expect(memmem(buf, n, "<j??rg@example.test>", 20) != NULL, "%.*s", (int)n, buf);
}
