/*
 * fuzz_data.c: libFuzzer target for the DATA stream parser
 * (src/smtpd/data.c).
 *
 * Input layout: four configuration octets (mode, and small limits so they
 * are reached), then the stream. The stream is fed whole, in pieces of
 * pseudo-random sizes derived from the input, and one octet at a time; all
 * three must agree. Invariants checked: the data ends only after CR LF "."
 * CR LF at a line start (compared with a separate two-pass model of the
 * rules), nothing after the end is consumed, reject mode never writes more
 * than it read, normalize mode writes no bare CR or LF, the limits hold
 * when no error is reported, and a clean message dot-stuffed again parses
 * back to itself (no smuggled end can survive a round trip), and a
 * leading continuation line is header (it continues our own field), never
 * a way past header_size_limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct sink {
	char *buf;
	size_t len, cap;
	unsigned calls, fail_on;
};

struct run {
	struct sink s;
	struct data_parser dp;
	size_t consumed;
	int done;
};

static int sink_write(void *arg, const char *b, size_t n)
{
	struct sink *s = arg;

	CHECK(n > 0);
	s->calls++;
	if (s->fail_on != 0 && s->calls >= s->fail_on)
		return -1;
	if (s->len + n > s->cap) {
		s->cap = 2 * (s->len + n);
		s->buf = realloc(s->buf, s->cap);
		if (s->buf == NULL)
			abort();
	}
	memcpy(s->buf + s->len, b, n);
	s->len += n;
	return 0;
}

static uint32_t next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* mode 0: whole; 1: pseudo-random pieces; 2: one octet at a time. */
static void feed(const char *in, size_t len, const struct data_limits *lim, unsigned fail_on,
                 int mode, uint32_t seed, struct run *r)
{
	size_t pos = 0, piece, n, rounds = 0;
	int done = 0;

	memset(r, 0, sizeof(*r));
	r->s.fail_on = fail_on;
	data_init(&r->dp, lim, sink_write, &r->s);
	while (!done && (pos < len || rounds == 0)) {
		rounds++;
		if (mode == 0) {
			piece = len - pos;
		} else if (mode == 2) {
			piece = 1;
		} else {
			uint32_t x = next_rand(&seed);

			piece = (x & 7) == 0 ? (x >> 8) % 700 : (x >> 8) % 6;
			/* Bounded: after enough rounds take the rest. */
			if (rounds > 4 * len + 16)
				piece = len - pos;
		}
		if (piece > len - pos)
			piece = len - pos;
		n = data_feed(&r->dp, in + pos, piece, &done);
		CHECK(n <= piece);
		CHECK(done || n == piece);
		pos += n;
		if (len == 0)
			break;
	}
	r->consumed = pos;
	r->done = done;
	CHECK(r->dp.size == r->s.len);
}

static void same(const struct run *a, const struct run *b)
{
	CHECK(a->done == b->done);
	CHECK(a->consumed == b->consumed);
	CHECK(a->s.len == b->s.len);
	CHECK(a->s.len == 0 || memcmp(a->s.buf, b->s.buf, a->s.len) == 0);
	CHECK(a->dp.error == b->dp.error);
	CHECK(a->dp.header_size == b->dp.header_size);
	CHECK(a->dp.received == b->dp.received);
	CHECK(a->dp.bare_lf == b->dp.bare_lf);
	CHECK(a->dp.bare_cr == b->dp.bare_cr);
	CHECK(a->dp.nul == b->dp.nul);
	CHECK(a->dp.eightbit == b->dp.eightbit);
}

/* The rules of data.h in two passes: CR LF lines, terminator and
 * unstuffing first; then every CR or LF left inside a line is bare and
 * becomes CR LF. Returns the consumed length when the data ends, else 0;
 * fills out (2 * len octets) and its length. */
static size_t model(const char *in, size_t len, char *out, size_t *outlen)
{
	size_t pos = 0, end, i, o = 0;

	for (;;) {
		for (end = pos; end + 1 < len; end++)
			if (in[end] == '\r' && in[end + 1] == '\n')
				break;
		if (end + 1 >= len)
			break;
		if (end - pos == 1 && in[pos] == '.') {
			*outlen = o;
			return end + 2;
		}
		for (i = pos + (in[pos] == '.' && end > pos); i < end; i++) {
			if (in[i] == '\r' || in[i] == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
			} else {
				out[o++] = in[i];
			}
		}
		out[o++] = '\r';
		out[o++] = '\n';
		pos = end + 2;
	}
	*outlen = o;
	return 0;
}

static void check_clean_output(const struct run *r, const struct data_limits *lim)
{
	const char *b = r->s.buf;
	size_t i, line = 0;

	for (i = 0; i < r->s.len; i++) {
		if (b[i] == '\r')
			CHECK(i + 1 < r->s.len && b[i + 1] == '\n');
		if (b[i] == '\n') {
			CHECK(i > 0 && b[i - 1] == '\r');
			CHECK(lim->max_line == 0 || line + 1 <= lim->max_line);
			line = 0;
		} else {
			line++;
		}
	}
	if (lim->max_size)
		CHECK(r->dp.size <= lim->max_size);
	if (lim->max_header)
		CHECK(r->dp.header_size <= lim->max_header);
	CHECK(r->dp.header_size <= r->dp.size);
}

/* Dot-stuff a finished message and add the terminator: it must parse back
 * to the same octets, ending exactly at the end. */
static void check_round_trip(const struct run *r)
{
	const struct data_limits lim = {0, 0, 0, 1};
	const char *m = r->s.buf;
	size_t n = r->s.len, i, o = 0;
	struct run back;
	char *wire = malloc(2 * n + 8);

	if (wire == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if (m[i] == '.' && (i == 0 || m[i - 1] == '\n'))
			wire[o++] = '.';
		wire[o++] = m[i];
	}
	memcpy(wire + o, ".\r\n", 3);
	o += 3;
	feed(wire, o, &lim, 0, 0, 1, &back);
	CHECK(back.done && back.consumed == o);
	CHECK(back.s.len == n && (n == 0 || memcmp(back.s.buf, m, n) == 0));
	CHECK(back.dp.bare_cr == 0 && back.dp.bare_lf == 0 && back.dp.error == DATA_OK);
	free(back.s.buf);
	free(wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct data_limits lim = {0, 0, 0, 0}, free_lim = {0, 0, 0, 1};
	struct run whole, pieces, bytes, plain;
	const char *in;
	size_t len, mlen, mcons;
	unsigned fail_on = 0;
	uint32_t seed = 2166136261u;
	char *mout;
	size_t i;

	if (size < 4 || size > 65536)
		return 0;
	lim.normalize_bare = data[0] & 1;
	if (data[0] & 2)
		lim.max_size = data[1] * 8u + 1;
	if (data[0] & 4)
		lim.max_line = data[2] % 100 + 1;
	if (data[0] & 8)
		lim.max_header = data[3] * 2u + 1;
	if (data[0] & 16)
		fail_on = (data[0] >> 5) + 1;
	in = (const char *)data + 4;
	len = size - 4;
	for (i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	if (seed == 0)
		seed = 1;

	feed(in, len, &lim, 0, 0, seed, &whole);
	feed(in, len, &lim, 0, 1, seed, &pieces);
	same(&whole, &pieces);
	if (len <= 1024) {
		feed(in, len, &lim, 0, 2, seed, &bytes);
		same(&whole, &bytes);
		free(bytes.s.buf);
	}

	/* Where the data ends, and the message without limits, follow the
	 * model exactly. */
	mout = malloc(2 * len + 1);
	if (mout == NULL)
		abort();
	mcons = model(in, len, mout, &mlen);
	CHECK(whole.done == (mcons != 0));
	CHECK(whole.consumed == (mcons ? mcons : len));
	if (whole.done)
		CHECK(whole.consumed == 3 ? memcmp(in, ".\r\n", 3) == 0
		                          : memcmp(in + whole.consumed - 5, "\r\n.\r\n", 5) == 0);
	feed(in, len, &free_lim, 0, 0, seed, &plain);
	CHECK(plain.done == whole.done && plain.consumed == whole.consumed);
	CHECK(plain.dp.error == DATA_OK);
	if (plain.done) {
		CHECK(plain.s.len == mlen && (mlen == 0 || memcmp(plain.s.buf, mout, mlen) == 0));
		check_clean_output(&plain, &free_lim);
		check_round_trip(&plain);
		if (plain.s.len > 0 && (plain.s.buf[0] == ' ' || plain.s.buf[0] == '\t'))
			CHECK(plain.dp.header_size > 0);
	} else {
		CHECK(plain.s.len >= mlen && (mlen == 0 || memcmp(plain.s.buf, mout, mlen) == 0));
	}

	/* With limits: the output is a prefix of the unlimited message. */
	CHECK(whole.s.len <= plain.s.len &&
	      (whole.s.len == 0 || memcmp(whole.s.buf, plain.s.buf, whole.s.len) == 0));
	CHECK(whole.dp.bare_lf == plain.dp.bare_lf && whole.dp.bare_cr == plain.dp.bare_cr);
	CHECK(whole.dp.received == plain.dp.received && whole.dp.nul == plain.dp.nul);
	if (!lim.normalize_bare) {
		CHECK(whole.s.len <= whole.consumed);
		CHECK((whole.dp.bare_lf + whole.dp.bare_cr == 0) || whole.dp.error != DATA_OK);
	}
	if (whole.dp.error == DATA_OK) {
		CHECK(whole.s.len == plain.s.len);
		check_clean_output(&whole, &lim);
	}

	/* A failing sink changes the error, never where the data ends. */
	if (fail_on != 0) {
		struct run failing;

		feed(in, len, &lim, fail_on, 1, seed, &failing);
		CHECK(failing.done == whole.done && failing.consumed == whole.consumed);
		CHECK(failing.dp.error == whole.dp.error ||
		      (failing.dp.error == DATA_ERR_SINK && failing.s.calls >= fail_on));
		free(failing.s.buf);
	}

	free(mout);
	free(whole.s.buf);
	free(pieces.s.buf);
	free(plain.s.buf);
	return 0;
}
