/*
 * test_data.c: unit tests for the DATA stream parser (src/smtpd/data.c).
 *
 * Every input is fed whole, split at every byte boundary, split at every
 * pair of boundaries (short inputs) and one byte at a time, and each way
 * must give the same message, the same counters and stop at the same
 * octet. Expected messages are checked against literal strings and, for
 * generated inputs, against a separate two-pass model of the rules in
 * include/data.h (split into CR LF lines and unstuff, then normalise), so
 * the state machine is not checked against itself.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

struct sinkbuf {
	char *buf;
	size_t len, cap;
	unsigned calls;
	unsigned fail_on_call; /* 1-based call number that fails; 0 = never */
};

struct result {
	char *out;
	size_t outlen;
	size_t consumed;
	int done;
	unsigned sink_calls;
	struct data_parser dp;
};

static int sink_collect(void *arg, const char *b, size_t n)
{
	struct sinkbuf *s = arg;

	s->calls++;
	cr_assert(n > 0, "the sink is never called with nothing");
	if (s->fail_on_call != 0 && s->calls >= s->fail_on_call)
		return -1;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
		cr_assert_not_null(s->buf);
	}
	memcpy(s->buf + s->len, b, n);
	s->len += n;
	return 0;
}

static const struct data_limits NORMALIZE = {0, 0, 0, 1};
static const struct data_limits REJECT = {0, 0, 0, 0};

/* Feed in pieces ending at cuts[0..ncuts-1] (increasing), then the rest.
 * Feeding stops when the parser reports the end; it must have taken every
 * octet of every piece before that. */
static void run_cuts(const char *in, size_t len, const struct data_limits *lim, const size_t *cuts,
                     size_t ncuts, unsigned fail_on_call, struct result *r)
{
	struct sinkbuf s = {NULL, 0, 0, 0, fail_on_call};
	size_t pos = 0, i, stop, n;
	int done = 0;

	memset(r, 0, sizeof(*r));
	data_init(&r->dp, lim, sink_collect, &s);
	for (i = 0; i <= ncuts && !done; i++) {
		stop = i < ncuts ? cuts[i] : len;
		cr_assert(stop >= pos && stop <= len);
		n = data_feed(&r->dp, in + pos, stop - pos, &done);
		cr_assert(n <= stop - pos);
		if (!done)
			cr_assert_eq(n, stop - pos,
			             "a piece was not consumed whole before the end");
		pos += n;
	}
	r->consumed = pos;
	r->done = done;
	r->out = s.buf;
	r->outlen = s.len;
	r->sink_calls = s.calls;
	cr_assert_eq(r->dp.size, (uint64_t)s.len, "size is what the sink took");
}

static void run_whole(const char *in, size_t len, const struct data_limits *lim, struct result *r)
{
	run_cuts(in, len, lim, NULL, 0, 0, r);
}

static void free_result(struct result *r)
{
	free(r->out);
	r->out = NULL;
}

static void assert_same(const struct result *a, const struct result *b, const char *how)
{
	cr_assert_eq(a->done, b->done, "%s: done differs", how);
	cr_assert_eq(a->consumed, b->consumed, "%s: consumed %zu vs %zu", how, a->consumed,
	             b->consumed);
	cr_assert_eq(a->outlen, b->outlen, "%s: output length %zu vs %zu", how, a->outlen,
	             b->outlen);
	cr_assert(a->outlen == 0 || memcmp(a->out, b->out, a->outlen) == 0, "%s: output differs",
	          how);
	cr_assert_eq(a->dp.error, b->dp.error, "%s: error differs", how);
	cr_assert_eq(a->dp.size, b->dp.size, "%s: size differs", how);
	cr_assert_eq(a->dp.header_size, b->dp.header_size, "%s: header_size differs", how);
	cr_assert_eq(a->dp.received, b->dp.received, "%s: received differs", how);
	cr_assert_eq(a->dp.bare_lf, b->dp.bare_lf, "%s: bare_lf differs", how);
	cr_assert_eq(a->dp.bare_cr, b->dp.bare_cr, "%s: bare_cr differs", how);
	cr_assert_eq(a->dp.nul, b->dp.nul, "%s: nul differs", how);
	cr_assert_eq(a->dp.eightbit, b->dp.eightbit, "%s: eightbit differs", how);
}

/* Feed whole, then every other way; all must agree. Pairs of cuts are
 * tried for inputs up to pair_max octets (the cost is cubic). */
static void run_all_ways(const char *in, size_t len, const struct data_limits *lim, size_t pair_max,
                         struct result *whole)
{
	struct result r;
	size_t cuts[2], i, j, *bytes;

	run_whole(in, len, lim, whole);
	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		run_cuts(in, len, lim, cuts, 1, 0, &r);
		assert_same(whole, &r, "one cut");
		free_result(&r);
	}
	if (len <= pair_max) {
		for (i = 0; i <= len; i++) {
			for (j = i; j <= len; j++) {
				cuts[0] = i;
				cuts[1] = j;
				run_cuts(in, len, lim, cuts, 2, 0, &r);
				assert_same(whole, &r, "two cuts");
				free_result(&r);
			}
		}
	}
	bytes = malloc((len + 1) * sizeof(*bytes));
	cr_assert_not_null(bytes);
	for (i = 0; i < len; i++)
		bytes[i] = i + 1;
	run_cuts(in, len, lim, bytes, len, 0, &r);
	assert_same(whole, &r, "one byte at a time");
	free_result(&r);
	free(bytes);
}

static void assert_output(const struct result *r, const char *expect)
{
	size_t n = strlen(expect);

	cr_assert_eq(r->outlen, n, "output length %zu, expected %zu", r->outlen, n);
	cr_assert(n == 0 || memcmp(r->out, expect, n) == 0, "output differs from expected");
}

/* A message in both modes, every way of feeding it, expected output in
 * normalize mode. The data must end exactly after the last octet. */
static void check_message(const char *in, const char *expect, unsigned bare_lf, unsigned bare_cr)
{
	struct result n, rj;
	size_t len = strlen(in);

	run_all_ways(in, len, &NORMALIZE, 40, &n);
	cr_assert(n.done, "data did not end: %s", in);
	cr_assert_eq(n.consumed, len, "data ended early");
	assert_output(&n, expect);
	cr_assert_eq(n.dp.error, DATA_OK);
	cr_assert_eq(n.dp.bare_lf, bare_lf);
	cr_assert_eq(n.dp.bare_cr, bare_cr);

	run_all_ways(in, len, &REJECT, 40, &rj);
	cr_assert(rj.done);
	cr_assert_eq(rj.consumed, len, "data ended early in reject mode");
	cr_assert_eq(rj.dp.bare_lf, bare_lf);
	cr_assert_eq(rj.dp.bare_cr, bare_cr);
	cr_assert_eq(rj.dp.error, bare_lf + bare_cr ? DATA_ERR_BARE : DATA_OK);
	cr_assert(rj.outlen <= len);
	cr_assert(rj.outlen <= n.outlen &&
	              (rj.outlen == 0 || memcmp(rj.out, n.out, rj.outlen) == 0),
	          "reject mode output is not a prefix of the message");
	free_result(&n);
	free_result(&rj);
}

Test(data, simple_message)
{
	check_message("Subject: hi\r\n\r\nbody\r\n.\r\n", "Subject: hi\r\n\r\nbody\r\n", 0, 0);
}

Test(data, first_line_dot_is_the_end)
{
	check_message(".\r\n", "", 0, 0);
}

Test(data, terminator_needs_line_start)
{
	/* "x.\r\n" is not a terminator: the dot is not at a line start. */
	check_message("a\r\nx.\r\n.\r\n", "a\r\nx.\r\n", 0, 0);
	check_message(" .\r\n.\r\n", " .\r\n", 0, 0);
}

Test(data, dot_unstuffing)
{
	check_message("..\r\n.\r\n", ".\r\n", 0, 0);
	check_message("a\r\n..\r\n.\r\n", "a\r\n.\r\n", 0, 0);
	check_message("...\r\n.\r\n", "..\r\n", 0, 0);
	check_message(".foo\r\n..bar\r\nx.y\r\n.\r\n", "foo\r\n.bar\r\nx.y\r\n", 0, 0);
	check_message("a\r\n. \r\n.\r\n", "a\r\n \r\n", 0, 0);
	check_message("a\r\n..\r\n..\r\n.\r\n", "a\r\n.\r\n.\r\n", 0, 0);
}

Test(data, smuggling_lf_dot_lf)
{
	check_message("a\n.\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 2, 0);
}

Test(data, smuggling_cr_dot_cr)
{
	check_message("a\r.\rMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 0, 2);
}

Test(data, smuggling_lf_dot_crlf)
{
	check_message("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 1, 0);
}

Test(data, smuggling_cr_dot_lf)
{
	check_message("a\r.\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 1, 1);
}

Test(data, smuggling_cr_dot_crlf)
{
	check_message("a\r.\r\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 0, 1);
}

Test(data, smuggling_crlf_dot_lf)
{
	/* The dot starts a CR LF line that has more on it (the bare LF),
	 * so it is unstuffed (RFC 5321 4.5.2); the LF becomes CR LF. */
	check_message("a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n\r\nMAIL FROM:<x@y>\r\n", 1, 0);
}

Test(data, smuggling_crlf_dot_cr)
{
	check_message("a\r\n.\rMAIL FROM:<x@y>\r\n.\r\n", "a\r\n\r\nMAIL FROM:<x@y>\r\n", 0, 1);
	check_message("a\r\n.\r\r\nb\r\n.\r\n", "a\r\n\r\n\r\nb\r\n", 0, 1);
}

Test(data, smuggling_at_start)
{
	check_message(".\nx\r\n.\r\n", "\r\nx\r\n", 1, 0);
	check_message(".\rx\r\n.\r\n", "\r\nx\r\n", 0, 1);
	check_message("\n.\r\nx\r\n.\r\n", "\r\n.\r\nx\r\n", 1, 0);
	check_message("\r.\r\nx\r\n.\r\n", "\r\n.\r\nx\r\n", 0, 1);
}

Test(data, smuggling_never_ends_without_terminator)
{
#define FAKE(x)                                                                                    \
	{                                                                                          \
		x, sizeof(x) - 1                                                                   \
	}
	static const struct {
		const char *s;
		size_t len;
	} fakes[] = {
	    FAKE("a\n.\n"),       FAKE("a\r.\r"),      FAKE("a\n.\r\n"),     FAKE("a\r\n.\n"),
	    FAKE("a\r.\n"),       FAKE("a\r.\r\n"),    FAKE("a\r\n.\r"),     FAKE("a\r\n.\rx"),
	    FAKE("a\r\n.\r\rx"),  FAKE("a\r\n. \r\n"), FAKE("a\r\n.\0\r\n"), FAKE("a\n\r\n.\n"),
	    FAKE("a\r\n\n.\r\n"), FAKE("a\r\r\n.\n"),  FAKE("a\r\n.\n\r\n"), FAKE("\n.\n"),
	    FAKE("\r.\r"),        FAKE(".\n"),         FAKE(".\r"),          FAKE(". \r\n"),
	};
#undef FAKE
	struct result r;
	size_t i;

	for (i = 0; i < sizeof(fakes) / sizeof(fakes[0]); i++) {
		const char *in = fakes[i].s;
		size_t len = fakes[i].len;

		run_all_ways(in, len, &NORMALIZE, 40, &r);
		cr_assert(!r.done, "fake terminator %zu ended the data", i);
		cr_assert_eq(r.consumed, len);
		free_result(&r);
		run_all_ways(in, len, &REJECT, 40, &r);
		cr_assert(!r.done, "fake terminator %zu ended the data in reject mode", i);
		cr_assert_eq(r.consumed, len);
		free_result(&r);
	}
}

Test(data, chunk_ending_in_dot_cr_then_x)
{
	struct data_parser dp;
	struct sinkbuf s = {NULL, 0, 0, 0, 0};
	int done;

	data_init(&dp, &NORMALIZE, sink_collect, &s);
	cr_assert_eq(data_feed(&dp, "a\r\n.\r", 5, &done), 5);
	cr_assert(!done);
	cr_assert_eq(data_feed(&dp, "x", 1, &done), 1);
	cr_assert(!done);
	cr_assert_eq(data_feed(&dp, "\r\n.\r", 4, &done), 4);
	cr_assert(!done);
	cr_assert_eq(data_feed(&dp, "\nQUIT\r\n", 7, &done), 1);
	cr_assert(done);
	cr_assert_eq(s.len, 8);
	cr_assert(memcmp(s.buf, "a\r\n\r\nx\r\n", 8) == 0);
	cr_assert_eq(dp.bare_cr, 1);
	free(s.buf);
}

Test(data, pipelined_bytes_not_consumed)
{
	static const char in[] = "hello\r\n.\r\nQUIT\r\n";
	struct result r;
	int done;

	run_all_ways(in, sizeof(in) - 1, &NORMALIZE, 40, &r);
	cr_assert(r.done);
	cr_assert_eq(r.consumed, 10);
	assert_output(&r, "hello\r\n");
	/* Once done, further input is left alone. */
	cr_assert_eq(data_feed(&r.dp, "more", 4, &done), 0);
	cr_assert(done);
	free_result(&r);

	run_all_ways(".\r\nRSET\r\n", 9, &REJECT, 40, &r);
	cr_assert(r.done);
	cr_assert_eq(r.consumed, 3);
	cr_assert_eq(r.outlen, 0);
	free_result(&r);
}

Test(data, empty_feed)
{
	struct data_parser dp;
	int done = 7;

	data_init(&dp, &REJECT, sink_collect, NULL);
	cr_assert_eq(data_feed(&dp, "", 0, &done), 0);
	cr_assert_eq(done, 0);
}

Test(data, bare_counters_and_reject)
{
	struct result r;
	static const char in[] = "a\nb\rc\r\r\nd\n\n\r\n.\r\n";

	run_all_ways(in, sizeof(in) - 1, &NORMALIZE, 40, &r);
	assert_output(&r, "a\r\nb\r\nc\r\n\r\nd\r\n\r\n\r\n");
	cr_assert_eq(r.dp.bare_lf, 3);
	cr_assert_eq(r.dp.bare_cr, 2);
	cr_assert_eq(r.dp.error, DATA_OK);
	free_result(&r);

	run_all_ways(in, sizeof(in) - 1, &REJECT, 40, &r);
	cr_assert(r.done);
	cr_assert_eq(r.consumed, sizeof(in) - 1);
	cr_assert_eq(r.dp.error, DATA_ERR_BARE);
	cr_assert_eq(r.dp.bare_lf, 3);
	cr_assert_eq(r.dp.bare_cr, 2);
	/* Nothing after the first bare line end is written. */
	assert_output(&r, "a");
	free_result(&r);
}

Test(data, crlf_only_is_clean)
{
	struct result r;
	static const char in[] = "A: b\r\n\r\nline\r\n\r\n\r\n.\r\n";

	run_all_ways(in, sizeof(in) - 1, &REJECT, 40, &r);
	cr_assert_eq(r.dp.error, DATA_OK);
	cr_assert_eq(r.dp.bare_lf + r.dp.bare_cr, 0);
	assert_output(&r, "A: b\r\n\r\nline\r\n\r\n\r\n");
	free_result(&r);
}

/* A message with output length exactly n: lines of 'x' and CR LF. */
static char *make_message(size_t n, size_t *inlen)
{
	char *m = malloc(n + 8);
	size_t i;

	cr_assert_not_null(m);
	cr_assert(n >= 2);
	for (i = 0; i < n - 2; i++)
		m[i] = (i % 50 == 49) ? '\n' : 'x';
	/* Turn each "\n" into CR LF by putting a CR before it. */
	for (i = 0; i < n - 2; i++)
		if (m[i] == '\n')
			m[i - 1] = '\r';
	memcpy(m + n - 2, "\r\n.\r\n", 5);
	*inlen = n + 3;
	return m;
}

Test(data, size_limit_exact)
{
	struct data_limits lim = {1000, 0, 0, 0};
	struct result r;
	size_t inlen;
	char *m;

	m = make_message(1000, &inlen);
	run_all_ways(m, inlen, &lim, 0, &r);
	cr_assert(r.done);
	cr_assert_eq(r.dp.error, DATA_OK);
	cr_assert_eq(r.dp.size, 1000);
	free_result(&r);
	free(m);

	m = make_message(1001, &inlen);
	run_all_ways(m, inlen, &lim, 0, &r);
	cr_assert(r.done, "the parser must keep consuming to the terminator");
	cr_assert_eq(r.consumed, inlen);
	cr_assert_eq(r.dp.error, DATA_ERR_SIZE);
	cr_assert(r.dp.size <= 1000);
	free_result(&r);
	free(m);
}

Test(data, size_counts_output_octets)
{
	/* Stuffed dots do not count; a normalised bare LF counts as two. */
	struct data_limits lim = {8, 0, 0, 1};
	struct result r;

	run_all_ways("..a\r\n..b\r\n.\r\n", 14, &lim, 40, &r);
	cr_assert_eq(r.dp.error, DATA_OK);
	cr_assert_eq(r.dp.size, 8);
	free_result(&r);

	run_all_ways("ab\ncd\n\r\n.\r\n", 11, &lim, 40, &r);
	cr_assert_eq(r.dp.error, DATA_ERR_SIZE);
	cr_assert(r.done);
	free_result(&r);
}

Test(data, size_limit_keeps_consuming_big)
{
	struct data_limits lim = {1000, 0, 0, 0};
	struct result r;
	size_t n = 200000, inlen;
	char *m = make_message(n, &inlen);
	size_t cuts[64], i;

	for (i = 0; i < 64; i++)
		cuts[i] = (i + 1) * 3001;
	run_cuts(m, inlen, &lim, cuts, 64, 0, &r);
	cr_assert(r.done);
	cr_assert_eq(r.consumed, inlen);
	cr_assert_eq(r.dp.error, DATA_ERR_SIZE);
	cr_assert_eq(r.outlen, 1000, "exactly max_size octets are written");
	free_result(&r);
	free(m);
}

static char *make_line(size_t content, const char *prefix, size_t *len)
{
	size_t pl = strlen(prefix);
	char *m = malloc(pl + content + 8);
	size_t n;

	cr_assert_not_null(m);
	memcpy(m, prefix, pl);
	memset(m + pl, 'y', content);
	n = pl + content;
	memcpy(m + n, "\r\n.\r\n", 5);
	*len = n + 5;
	return m;
}

Test(data, line_limit_exact)
{
	struct data_limits lim = {0, 1000, 0, 0};
	struct result r;
	size_t len;
	char *m;

	m = make_line(998, "", &len);
	run_all_ways(m, len, &lim, 0, &r);
	cr_assert_eq(r.dp.error, DATA_OK, "998 octets + CR LF = 1000 is allowed");
	cr_assert_eq(r.dp.size, 1000);
	free_result(&r);
	free(m);

	m = make_line(999, "", &len);
	run_all_ways(m, len, &lim, 0, &r);
	cr_assert_eq(r.dp.error, DATA_ERR_LINE, "1001 octets is too long");
	cr_assert(r.done);
	cr_assert_eq(r.consumed, len);
	free_result(&r);
	free(m);

	/* The stuffed dot is not counted (RFC 5321 4.5.3.1.6). */
	m = make_line(998, ".", &len);
	run_all_ways(m, len, &lim, 0, &r);
	cr_assert_eq(r.dp.error, DATA_OK);
	free_result(&r);
	free(m);

	/* Each line counts on its own. */
	m = make_line(998, "short\r\n", &len);
	run_all_ways(m, len, &lim, 0, &r);
	cr_assert_eq(r.dp.error, DATA_OK);
	free_result(&r);
	free(m);
}

Test(data, line_limit_with_normalised_breaks)
{
	struct data_limits lim = {0, 6, 0, 1};
	struct result r;

	run_all_ways("abcd\nabcd\r\n.\r\n", 14, &lim, 40, &r);
	cr_assert_eq(r.dp.error, DATA_OK);
	free_result(&r);
	run_all_ways("abcd\nabcde\r\n.\r\n", 15, &lim, 40, &r);
	cr_assert_eq(r.dp.error, DATA_ERR_LINE);
	cr_assert(r.done);
	free_result(&r);
}

Test(data, header_size_and_limit)
{
	static const char in[] = "A: b\r\nSubject: x\r\n  cont\r\n\r\nbody: no\r\n.\r\n";
	struct data_limits lim = {0, 0, 0, 0};
	struct result r;

	/* 6 + 12 + 8 octets of header section; the empty line is not. */
	run_all_ways(in, sizeof(in) - 1, &lim, 0, &r);
	cr_assert_eq(r.dp.header_size, 26);
	cr_assert_eq(r.dp.error, DATA_OK);
	free_result(&r);

	lim.max_header = 26;
	run_all_ways(in, sizeof(in) - 1, &lim, 0, &r);
	cr_assert_eq(r.dp.error, DATA_OK);
	free_result(&r);

	lim.max_header = 25;
	run_all_ways(in, sizeof(in) - 1, &lim, 0, &r);
	cr_assert_eq(r.dp.error, DATA_ERR_HEADER);
	cr_assert(r.done);
	cr_assert_eq(r.consumed, sizeof(in) - 1);
	free_result(&r);
}

Test(data, header_section_ends_at_non_header_line)
{
	static const char in[] = "A: b\r\nnot a header\r\nReceived: x\r\nB: c\r\n.\r\n";
	struct result r;

	run_all_ways(in, sizeof(in) - 1, &REJECT, 0, &r);
	cr_assert_eq(r.dp.header_size, 6);
	cr_assert_eq(r.dp.received, 0);
	free_result(&r);

	/* No header at all: a body-only message has no header section. */
	run_all_ways("hello world\r\nReceived: x\r\n.\r\n", 29, &REJECT, 0, &r);
	cr_assert_eq(r.dp.header_size, 0);
	cr_assert_eq(r.dp.received, 0);
	free_result(&r);

	/* A leading continuation line continues our own field (written
	 * above the client's data): the header section goes on. */
	run_all_ways(" x: y\r\nReceived: x\r\n.\r\n", 23, &REJECT, 0, &r);
	cr_assert_eq(r.dp.header_size, 20);
	cr_assert_eq(r.dp.received, 1);
	free_result(&r);
}

Test(data, leading_continuation_does_not_bypass_limits)
{
	static const char in[] = "\tpadding\r\n"
	                         "Received: a\r\n"
	                         "Received: b\r\n"
	                         "X-Filler: 0123456789012345678901234567890123456789\r\n"
	                         "\r\nbody\r\n.\r\n";
	struct data_limits lim = {0, 0, 40, 0};
	struct result r;

	run_all_ways(in, sizeof(in) - 1, &lim, 0, &r);
	cr_assert_eq(r.dp.received, 2);
	cr_assert_eq(r.dp.error, DATA_ERR_HEADER);
	cr_assert(r.done);
	free_result(&r);
}

Test(data, received_counting)
{
	static const char in[] = "Received: a\r\n"
	                         "received: b\r\n"
	                         "RECEIVED : c\r\n"
	                         "  Received: continuation\r\n"
	                         "X-Received: d\r\n"
	                         "Receivedx: e\r\n"
	                         "Receive: f\r\n"
	                         ".Received: stuffed\r\n"
	                         "ReCeIvEd:g\r\n"
	                         "\r\n"
	                         "Received: in the body\r\n"
	                         ".\r\n";
	struct result r;

	run_all_ways(in, sizeof(in) - 1, &REJECT, 0, &r);
	cr_assert_eq(r.dp.received, 5);
	cr_assert_eq(r.dp.error, DATA_OK);
	free_result(&r);
}

Test(data, received_after_normalised_break)
{
	struct result r;

	run_all_ways("A: b\nReceived: x\r\n\r\n.\r\n", 23, &NORMALIZE, 0, &r);
	cr_assert_eq(r.dp.received, 1);
	cr_assert_eq(r.dp.header_size, 6 + 13);
	free_result(&r);
}

Test(data, nul_and_eightbit)
{
	static const char in[] = "a\0b\0\r\n\xc3\xa9t\xe9\r\n.\r\n";
	struct result r;

	run_all_ways(in, sizeof(in) - 1, &REJECT, 40, &r);
	cr_assert_eq(r.dp.nul, 2);
	cr_assert_eq(r.dp.eightbit, 1);
	cr_assert_eq(r.dp.error, DATA_OK);
	cr_assert_eq(r.outlen, sizeof(in) - 1 - 3);
	cr_assert(memcmp(r.out, in, r.outlen) == 0);
	free_result(&r);

	run_all_ways("plain\r\n.\r\n", 10, &REJECT, 40, &r);
	cr_assert_eq(r.dp.nul, 0);
	cr_assert_eq(r.dp.eightbit, 0);
	free_result(&r);
}

Test(data, sink_failure)
{
	struct result r;
	size_t inlen;
	char *m = make_message(20000, &inlen);
	size_t cuts[3] = {100, 5000, 12000};

	run_cuts(m, inlen, &NORMALIZE, cuts, 3, 1, &r);
	cr_assert(r.done, "the parser keeps consuming after a sink failure");
	cr_assert_eq(r.consumed, inlen);
	cr_assert_eq(r.dp.error, DATA_ERR_SINK);
	cr_assert_eq(r.sink_calls, 1, "no write after the failure");
	cr_assert_eq(r.dp.size, 0);
	free_result(&r);

	run_cuts(m, inlen, &NORMALIZE, cuts, 3, 3, &r);
	cr_assert(r.done);
	cr_assert_eq(r.dp.error, DATA_ERR_SINK);
	cr_assert_eq(r.sink_calls, 3);
	cr_assert(r.dp.size > 0 && r.dp.size < 20000);
	free_result(&r);
	free(m);
}

Test(data, first_cause_wins)
{
	struct data_limits lim = {10, 4, 0, 0};
	struct result r;

	/* The line limit is hit at octet 3, the size limit later, then a
	 * bare LF. */
	run_all_ways("abcdefghijkl\nm\r\n.\r\n", 19, &lim, 40, &r);
	cr_assert_eq(r.dp.error, DATA_ERR_LINE);
	cr_assert_eq(r.dp.bare_lf, 1);
	assert_output(&r, "ab");
	free_result(&r);

	run_all_ways("a\nbcdefghijkl\r\n.\r\n", 18, &lim, 40, &r);
	cr_assert_eq(r.dp.error, DATA_ERR_BARE);
	free_result(&r);
}

Test(data, strerror)
{
	cr_assert_str_neq(data_strerror(DATA_ERR_SIZE), data_strerror(DATA_ERR_LINE));
	cr_assert_not_null(data_strerror(DATA_OK));
	cr_assert_not_null(data_strerror(DATA_ERR_SINK));
	cr_assert_not_null(data_strerror((enum data_error)99));
}

/*
 * The model: the rules of include/data.h applied in two passes. Pass one
 * cuts the input into CR LF lines, stops at the line ".", drops the first
 * dot of any other line that starts with one. Pass two writes each line's
 * content with every CR and LF in it (all bare, since the line has no CR
 * LF) as CR LF.
 */
struct model {
	char *out;
	size_t outlen, consumed;
	int done;
	unsigned bare_lf, bare_cr;
};

static void model_run(const char *in, size_t len, struct model *m)
{
	size_t pos = 0, end, i, start;

	memset(m, 0, sizeof(*m));
	m->out = malloc(2 * len + 1);
	cr_assert_not_null(m->out);
	for (;;) {
		for (end = pos; end + 1 < len; end++)
			if (in[end] == '\r' && in[end + 1] == '\n')
				break;
		if (end + 1 >= len)
			break; /* no complete line left */
		if (end - pos == 1 && in[pos] == '.') {
			m->done = 1;
			m->consumed = end + 2;
			return;
		}
		start = pos;
		if (end > pos && in[pos] == '.')
			start++;
		for (i = start; i < end; i++) {
			if (in[i] == '\r' || in[i] == '\n') {
				if (in[i] == '\r')
					m->bare_cr++;
				else
					m->bare_lf++;
				m->out[m->outlen++] = '\r';
				m->out[m->outlen++] = '\n';
			} else {
				m->out[m->outlen++] = in[i];
			}
		}
		m->out[m->outlen++] = '\r';
		m->out[m->outlen++] = '\n';
		pos = end + 2;
	}
	m->consumed = len;
}

static void check_against_model(const char *in, size_t len, int all_ways)
{
	struct model m;
	struct result n, rj;

	model_run(in, len, &m);
	if (all_ways)
		run_all_ways(in, len, &NORMALIZE, 0, &n);
	else
		run_whole(in, len, &NORMALIZE, &n);
	cr_assert_eq(n.done, m.done);
	cr_assert_eq(n.consumed, m.consumed);
	if (m.done) {
		/* Before the end, a partial line may still be held back, so
		 * the output is compared only for finished data. */
		cr_assert_eq(n.outlen, m.outlen);
		cr_assert(m.outlen == 0 || memcmp(n.out, m.out, m.outlen) == 0);
		cr_assert_eq(n.dp.bare_lf, m.bare_lf);
		cr_assert_eq(n.dp.bare_cr, m.bare_cr);
	} else {
		/* Complete lines are all written; part of the last line may
		 * follow. */
		cr_assert(n.outlen >= m.outlen);
		cr_assert(m.outlen == 0 || memcmp(n.out, m.out, m.outlen) == 0);
	}
	run_whole(in, len, &REJECT, &rj);
	cr_assert_eq(rj.done, m.done);
	cr_assert_eq(rj.consumed, m.consumed);
	cr_assert(rj.outlen <= rj.consumed);
	if (m.done) {
		cr_assert_eq(rj.dp.error, m.bare_lf + m.bare_cr ? DATA_ERR_BARE : DATA_OK);
		cr_assert(rj.outlen <= m.outlen &&
		          (rj.outlen == 0 || memcmp(rj.out, m.out, rj.outlen) == 0));
	}
	free_result(&n);
	free_result(&rj);
	free(m.out);
}

Test(data, exhaustive_short_inputs_match_model)
{
	static const char alpha[] = {'\r', '\n', '.', 'x'};
	char in[16];
	size_t len, i, k;
	unsigned long code, count_;

	/* Every string of up to 7 octets over CR, LF, "." and "x", alone and
	 * followed by a real terminator. */
	for (len = 0; len <= 7; len++) {
		count_ = 1;
		for (i = 0; i < len; i++)
			count_ *= 4;
		for (code = 0; code < count_; code++) {
			unsigned long c = code;

			for (k = 0; k < len; k++) {
				in[k] = alpha[c % 4];
				c /= 4;
			}
			check_against_model(in, len, len <= 5);
			memcpy(in + len, "\r\n.\r\n", 5);
			check_against_model(in, len + 5, len <= 5);
		}
	}
}

Test(data, random_inputs_match_model)
{
	static const char alpha[] = "\r\n.\r\n.xX: \0";
	uint32_t seed = 12345;
	char in[200];
	size_t iter, len, i;

	for (iter = 0; iter < 3000; iter++) {
		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % 120;
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
		}
		memcpy(in + len, "\r\n.\r\n", 5);
		check_against_model(in, len + 5, iter < 300);
	}
}

/* BDAT (data_init_chunks): feed in pieces ending at cuts, then finish. */
static void run_chunks(const char *in, size_t len, const struct data_limits *lim,
                       const size_t *cuts, size_t ncuts, struct result *r)
{
	struct sinkbuf s = {NULL, 0, 0, 0, 0};
	size_t pos = 0, stop;
	int done = 0;

	memset(r, 0, sizeof(*r));
	data_init_chunks(&r->dp, lim, sink_collect, &s);
	for (size_t i = 0; i <= ncuts; i++) {
		stop = i < ncuts ? cuts[i] : len;
		cr_assert_eq(data_feed(&r->dp, in + pos, stop - pos, &done), stop - pos,
		             "a chunk was not taken whole");
		cr_assert_eq(done, 0, "the chunk parser reported an end of data");
		pos = stop;
	}
	data_finish(&r->dp);
	data_finish(&r->dp); /* a second call changes nothing */
	r->consumed = pos;
	r->out = s.buf;
	r->outlen = s.len;
	cr_assert_eq(r->dp.size, (uint64_t)s.len);
}

/* Whole, at every cut and at every pair of cuts: all the same; the
 * output in normalize mode is expect. */
static void check_chunks(const char *in, const char *expect, unsigned bare_lf, unsigned bare_cr)
{
	struct result whole, r, rj;
	size_t len = strlen(in), cuts[2];

	run_chunks(in, len, &NORMALIZE, NULL, 0, &whole);
	assert_output(&whole, expect);
	cr_assert_eq(whole.dp.error, DATA_OK);
	cr_assert_eq(whole.dp.bare_lf, bare_lf, "bare LF %u", whole.dp.bare_lf);
	cr_assert_eq(whole.dp.bare_cr, bare_cr, "bare CR %u", whole.dp.bare_cr);
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			run_chunks(in, len, &NORMALIZE, cuts, 2, &r);
			assert_same(&whole, &r, "chunk cuts");
			free_result(&r);
		}
	}
	run_chunks(in, len, &REJECT, NULL, 0, &rj);
	cr_assert_eq(rj.dp.error, bare_lf + bare_cr ? DATA_ERR_BARE : DATA_OK);
	free_result(&rj);
	free_result(&whole);
}

Test(data, chunks_keep_dots_and_never_end)
{
	check_chunks(".\r\n..two\r\n.one\r\n\r\n.\r\nafter\r\n",
	             ".\r\n..two\r\n.one\r\n\r\n.\r\nafter\r\n", 0, 0);
}

Test(data, chunks_end_the_last_line)
{
	check_chunks("Subject: x\r\n\r\nno newline", "Subject: x\r\n\r\nno newline\r\n", 0, 0);
	check_chunks("", "", 0, 0);
	check_chunks("line\r\n", "line\r\n", 0, 0);
	/* A bare LF at the end already ended the line. */
	check_chunks("line\n", "line\r\n", 1, 0);
	/* A CR at the end is bare. */
	check_chunks("line\r", "line\r\n", 0, 1);
	check_chunks(".", ".\r\n", 0, 0);
}

Test(data, chunks_bare_line_ends_as_data)
{
	check_chunks("a\n.\nMAIL FROM:<x@y>\r\nb\r.\rc\r\n",
	             "a\r\n.\r\nMAIL FROM:<x@y>\r\nb\r\n.\r\nc\r\n", 2, 2);
}

Test(data, chunks_limits_and_received)
{
	static const char msg[] = "Received: a\r\nreceived: b\r\n\r\nReceived: body\r\n";
	const struct data_limits small = {20, 0, 0, 1};
	struct result r;
	size_t cut = 15;

	run_chunks(msg, sizeof(msg) - 1, &NORMALIZE, &cut, 1, &r);
	cr_assert_eq(r.dp.received, 2, "Received: counted %u", r.dp.received);
	free_result(&r);
	run_chunks(msg, sizeof(msg) - 1, &small, &cut, 1, &r);
	cr_assert_eq(r.dp.error, DATA_ERR_SIZE);
	cr_assert_leq(r.outlen, 20);
	free_result(&r);
}
