/*
 * fuzz_command.c: libFuzzer target for src/smtpd/command.c.
 *
 * The input is treated as what a client sends: it is framed into command
 * lines exactly as the session does (windows of at most 512 octets, the
 * discard state of over-long lines), and every line is parsed, its
 * argument count checked and, for HELO/EHLO, MAIL and RCPT, its argument
 * parsed. Each line is copied into an exact-size buffer so a read past its
 * end is caught. Besides "no crash" it checks what must hold for every
 * input: framing always makes progress and never passes 512 octets, every
 * error names a row of the reply table, an accepted path fits RFC 5321's
 * limits and an accepted SIZE or BODY is really there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "command.h"
#include "reply.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void check_reply(enum reply_id r)
{
	if (r != RPL_NONE)
		CHECK(reply_get(r) != NULL);
}

static void check_addr(const struct mailaddr *a)
{
	char buf[ADDR_PATH_MAX * 2 + 8];
	size_t n = addr_format(a, buf, sizeof(buf));
	CHECK(n < sizeof(buf));
	CHECK(strlen(a->local) <= ADDR_LOCAL_MAX * 2 + 2);
	CHECK(strlen(a->domain) <= ADDR_DOMAIN_MAX);
}

static void parse_line(const char *line, size_t len, int flags)
{
	struct cmd_line cmd;
	enum reply_id r = cmd_parse(line, len, &cmd);
	check_reply(r);
	CHECK(cmd.verb >= CMD_NONE && cmd.verb < CMD_COUNT);
	CHECK(cmd.arg >= line && cmd.arg + cmd.arglen <= line + len);
	CHECK(cmd_verb_name(cmd.verb) != NULL);
	if (r != RPL_NONE)
		return;
	check_reply(cmd_check_args(&cmd));

	switch (cmd.verb) {
	case CMD_HELO:
	case CMD_EHLO:
		r = cmd_check_helo(cmd.arg, cmd.arglen);
		CHECK(r == RPL_NONE || r == RPL_BAD_HELO);
		break;
	case CMD_MAIL: {
		struct cmd_mail m;
		r = cmd_parse_mail(cmd.arg, cmd.arglen, flags, &m);
		check_reply(r);
		CHECK(memchr(m.param, '\0', sizeof(m.param)) != NULL);
		if (r == RPL_NONE) {
			check_addr(&m.addr);
			CHECK(!m.addr.is_postmaster);
			if (!(flags & ADDR_ALLOW_LITERAL))
				CHECK(!m.addr.is_literal);
			if (m.has_size)
				CHECK(memmem(cmd.arg, cmd.arglen, "=", 1) != NULL);
			/* UTF-8 only with SMTPUTF8 (RFC 6531 3.4). */
			if (m.addr.is_utf8 && !(flags & ADDR_ALLOW_UTF8))
				CHECK(m.smtputf8);
		} else if (r == RPL_MAIL_NOT_ASCII) {
			CHECK(m.addr_err == ADDR_ERR_8BIT && !(flags & ADDR_ALLOW_UTF8));
		} else if (r == RPL_BAD_SENDER) {
			CHECK(m.addr_err != ADDR_OK);
			CHECK(addr_strerror(m.addr_err) != NULL);
		}
		break;
	}
	case CMD_RCPT: {
		struct cmd_rcpt rc;
		r = cmd_parse_rcpt(cmd.arg, cmd.arglen, flags, &rc);
		check_reply(r);
		CHECK(memchr(rc.param, '\0', sizeof(rc.param)) != NULL);
		if (r == RPL_NONE) {
			check_addr(&rc.addr);
			CHECK(!rc.addr.is_null);
			CHECK(!rc.addr.is_utf8 || (flags & ADDR_ALLOW_UTF8));
		} else if (r == RPL_RCPT_NOT_ASCII) {
			CHECK(rc.addr_err == ADDR_ERR_8BIT && !(flags & ADDR_ALLOW_UTF8));
		} else if (r == RPL_BAD_RCPT) {
			CHECK(rc.addr_err != ADDR_OK);
		}
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* The first octet picks the address flags the session could use. */
	int flags = (data[0] & 1) ? ADDR_ALLOW_LITERAL : 0;
	const char *in = (const char *)data + 1;
	size_t avail = size - 1, off = 0;
	int discarding = 0;

	while (off < avail) {
		size_t rest = avail - off;
		size_t window = rest < CMD_WINDOW_MAX ? rest : CMD_WINDOW_MAX;
		struct cmd_frame f;
		enum cmd_frame_status st = cmd_frame(in + off, window, discarding, &f);
		if (st == CMD_FRAME_MORE) {
			/* An unterminated last line is still worth parsing. */
			CHECK(window < CMD_WINDOW_MAX);
			char *copy = malloc(window ? window : 1);
			CHECK(copy != NULL);
			memcpy(copy, in + off, window);
			parse_line(copy, window, flags);
			free(copy);
			break;
		}
		CHECK(f.consumed > 0 && f.consumed <= window);
		if (st == CMD_FRAME_DISCARD) {
			discarding = 1;
		} else if (st == CMD_FRAME_TOO_LONG) {
			discarding = 0;
		} else {
			CHECK(st == CMD_FRAME_LINE);
			CHECK(!discarding);
			CHECK(f.len < f.consumed && f.consumed <= CMD_WINDOW_MAX);
			CHECK(f.consumed <= CMD_LINE_MAX ||
			      ascii_strncasecmp(in + off, "MAIL ", 5) == 0 ||
			      ascii_strncasecmp(in + off, "RCPT ", 5) == 0);
			CHECK(f.consumed - f.len == (f.bare_lf ? 1u : 2u));
			char *copy = malloc(f.len ? f.len : 1);
			CHECK(copy != NULL);
			memcpy(copy, in + off, f.len);
			parse_line(copy, f.len, flags);
			free(copy);
		}
		off += f.consumed;
	}
	return 0;
}
