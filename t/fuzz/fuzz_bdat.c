/*
 * fuzz_bdat.c: libFuzzer target for BDAT (RFC 3030): the command's
 * argument parser (src/smtpd/bdat.c) and the chunk mode of the message
 * parser (data_init_chunks in src/smtpd/data.c) as the session drives
 * them.
 *
 * Input layout: one configuration octet (bare line end mode, small
 * limits), then records: one octet n, n octets of BDAT argument, then as
 * many chunk octets as the argument's size says (fewer when the input
 * ends). Invariants checked:
 * - bdat_parse() agrees with a separate reading of the grammar (size =
 *   a whole word of digits up to INT64_MAX; then nothing, or "LAST" in
 *   any case; else a syntax error with the size known);
 * - the message is the same whether the chunks are fed as sent, all at
 *   once, or one octet at a time, and the parser takes every octet
 *   without ever finding an end of data in it;
 * - without limits it matches a model of the rules: the octets as sent,
 *   with each bare CR or LF written as CR LF and the last line ended;
 * - what is stored has no bare CR or LF, ends with CR LF, and, dot-stuffed
 *   and sent with DATA, comes back exactly (no smuggled end of data);
 * - with limits the output is a prefix of the unlimited one, within the
 *   limits when no error is reported.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bdat.h"
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		b->cap = 2 * (b->len + n);
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static int sink(void *arg, const char *p, size_t n)
{
	CHECK(n > 0);
	buf_add(arg, p, n);
	return 0;
}

/* The grammar, read another way: 1 when arg is a valid BDAT argument
 * (*size, *last set), 0 for a syntax error after a valid size (*size
 * set), -1 when there is no valid size. */
static int model_parse(const char *arg, size_t len, uint64_t *size, int *last)
{
	size_t d = 0;
	char num[32];

	while (d < len && arg[d] >= '0' && arg[d] <= '9')
		d++;
	if (d == 0 || (d < len && arg[d] != ' '))
		return -1;
	/* Leading zeros do not make a number larger. */
	size_t z = 0;
	while (z + 1 < d && arg[z] == '0')
		z++;
	if (d - z > 19)
		return -1;
	memcpy(num, arg + z, d - z);
	num[d - z] = '\0';
	if (d - z == 19 && strcmp(num, "9223372036854775807") > 0)
		return -1;
	*size = strtoull(num, NULL, 10);
	*last = 0;
	size_t i = d;
	while (i < len && arg[i] == ' ')
		i++;
	if (i == len)
		return 1;
	if (len - i == 4 && strncasecmp(arg + i, "LAST", 4) == 0) {
		*last = 1;
		return 1;
	}
	return 0;
}

/* Without limits, normalize mode: every CR LF is kept, every other CR or
 * LF becomes CR LF, a last line without its end gets one. */
static void model_message(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	int line = 0;

	while (i < len) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
			buf_add(out, "\r\n", 2);
			i += 2;
			line = 0;
		} else if (in[i] == '\r' || in[i] == '\n') {
			buf_add(out, "\r\n", 2);
			i++;
			line = 0;
		} else {
			buf_add(out, in + i, 1);
			i++;
			line = 1;
		}
	}
	if (line)
		buf_add(out, "\r\n", 2);
}

/* Feed the message: as the chunks came (cuts), whole (ncuts 0) or one
 * octet at a time (bytes 1); then finish. */
static void feed(const char *msg, size_t len, const size_t *cuts, size_t ncuts, int bytes,
                 const struct data_limits *lim, struct data_parser *dp, struct buf *out)
{
	size_t pos = 0;
	int done = 0;

	data_init_chunks(dp, lim, sink, out);
	if (bytes) {
		for (pos = 0; pos < len; pos++) {
			CHECK(data_feed(dp, msg + pos, 1, &done) == 1);
			CHECK(!done);
		}
	} else {
		for (size_t i = 0; i <= ncuts; i++) {
			size_t stop = i < ncuts ? cuts[i] : len;
			CHECK(stop >= pos && stop <= len);
			CHECK(data_feed(dp, msg + pos, stop - pos, &done) == stop - pos);
			CHECK(!done);
			pos = stop;
		}
	}
	data_finish(dp);
	CHECK(dp->size == out->len);
}

static void same(const struct data_parser *a, const struct buf *ao, const struct data_parser *b,
                 const struct buf *bo)
{
	CHECK(ao->len == bo->len && (ao->len == 0 || memcmp(ao->p, bo->p, ao->len) == 0));
	CHECK(a->error == b->error);
	CHECK(a->header_size == b->header_size);
	CHECK(a->received == b->received);
	CHECK(a->bare_lf == b->bare_lf && a->bare_cr == b->bare_cr);
	CHECK(a->nul == b->nul && a->eightbit == b->eightbit);
}

/* Dot-stuffed with the terminator, the stored message parses back with
 * DATA to itself, ending exactly at the end. */
static void check_round_trip(const struct buf *m)
{
	const struct data_limits free_lim = {0, 0, 0, 1};
	struct data_parser dp;
	struct buf wire = {0}, back = {0};
	int done = 0;

	for (size_t i = 0; i < m->len; i++) {
		if (m->p[i] == '.' && (i == 0 || m->p[i - 1] == '\n'))
			buf_add(&wire, ".", 1);
		buf_add(&wire, m->p + i, 1);
	}
	buf_add(&wire, ".\r\n", 3);
	data_init(&dp, &free_lim, sink, &back);
	CHECK(data_feed(&dp, wire.p, wire.len, &done) == wire.len);
	CHECK(done);
	CHECK(back.len == m->len && (m->len == 0 || memcmp(back.p, m->p, m->len) == 0));
	CHECK(dp.bare_cr == 0 && dp.bare_lf == 0 && dp.error == DATA_OK);
	free(wire.p);
	free(back.p);
}

#define MAX_CUTS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct data_limits lim = {0, 0, 0, 0};
	const struct data_limits free_lim = {0, 0, 0, 1};
	struct buf msg = {0}, o_cut = {0}, o_whole = {0}, o_bytes = {0}, o_free = {0},
	           o_model = {0};
	struct data_parser d_cut, d_whole, d_bytes, d_free;
	size_t cuts[MAX_CUTS], ncuts = 0, pos = 1;
	int last_seen = 0;

	if (size < 1 || size > 65536)
		return 0;
	lim.normalize_bare = data[0] & 1;
	if (data[0] & 2)
		lim.max_size = (data[0] >> 4) * 16u + 1;
	if (data[0] & 4)
		lim.max_line = (data[0] >> 3) % 20 + 3;
	if (data[0] & 8)
		lim.max_header = (data[0] >> 4) * 8u + 1;

	/* The records: as the session would, a chunk is read whenever its
	 * size is known, and kept when the command is valid; the message
	 * ends at the first LAST. */
	while (pos < size && !last_seen && ncuts < MAX_CUTS) {
		size_t n = data[pos++];
		if (n > size - pos)
			n = size - pos;
		const char *arg = (const char *)data + pos;
		pos += n;

		struct bdat_cmd b;
		enum reply_id r = bdat_parse(arg, n, &b);
		uint64_t msize = 0;
		int mlast = 0, m = model_parse(arg, n, &msize, &mlast);
		CHECK(r == RPL_NONE || r == RPL_BDAT_SYNTAX || r == RPL_BDAT_SIZE);
		CHECK((m == 1) == (r == RPL_NONE));
		CHECK((m == 0) == (r == RPL_BDAT_SYNTAX));
		if (r == RPL_BDAT_SIZE)
			break; /* the session closes: nothing more is read */
		CHECK(b.size == msize && b.size <= BDAT_SIZE_MAX);
		CHECK(r != RPL_NONE || b.last == mlast);
		size_t take = b.size < (uint64_t)(size - pos) ? (size_t)b.size : size - pos;
		if (r == RPL_NONE) {
			buf_add(&msg, (const char *)data + pos, take);
			cuts[ncuts++] = msg.len;
			last_seen = b.last;
		}
		pos += take;
	}

	feed(msg.p, msg.len, cuts, ncuts, 0, &lim, &d_cut, &o_cut);
	feed(msg.p, msg.len, NULL, 0, 0, &lim, &d_whole, &o_whole);
	same(&d_cut, &o_cut, &d_whole, &o_whole);
	if (msg.len <= 4096) {
		feed(msg.p, msg.len, NULL, 0, 1, &lim, &d_bytes, &o_bytes);
		same(&d_cut, &o_cut, &d_bytes, &o_bytes);
	}

	/* Without limits: the model, a clean message, a safe round trip. */
	feed(msg.p, msg.len, cuts, ncuts, 0, &free_lim, &d_free, &o_free);
	model_message(msg.p, msg.len, &o_model);
	CHECK(o_free.len == o_model.len &&
	      (o_free.len == 0 || memcmp(o_free.p, o_model.p, o_free.len) == 0));
	CHECK(d_free.error == DATA_OK);
	CHECK(o_free.len >= msg.len);
	for (size_t i = 0; i < o_free.len; i++) {
		if (o_free.p[i] == '\r')
			CHECK(i + 1 < o_free.len && o_free.p[i + 1] == '\n');
		if (o_free.p[i] == '\n')
			CHECK(i > 0 && o_free.p[i - 1] == '\r');
	}
	CHECK(o_free.len == 0 ||
	      (o_free.len >= 2 && memcmp(o_free.p + o_free.len - 2, "\r\n", 2) == 0));
	check_round_trip(&o_free);

	/* With limits: a prefix of the message, within them when accepted. */
	CHECK(o_cut.len <= o_free.len &&
	      (o_cut.len == 0 || memcmp(o_cut.p, o_free.p, o_cut.len) == 0));
	CHECK(d_cut.bare_lf == d_free.bare_lf && d_cut.bare_cr == d_free.bare_cr);
	CHECK(d_cut.received == d_free.received);
	if (!lim.normalize_bare)
		CHECK(d_cut.bare_lf + d_cut.bare_cr == 0 || d_cut.error != DATA_OK);
	if (d_cut.error == DATA_OK) {
		CHECK(o_cut.len == o_free.len);
		if (lim.max_size)
			CHECK(d_cut.size <= lim.max_size);
		if (lim.max_header)
			CHECK(d_cut.header_size <= lim.max_header);
	}

	free(msg.p);
	free(o_cut.p);
	free(o_whole.p);
	free(o_bytes.p);
	free(o_free.p);
	free(o_model.p);
	return 0;
}
