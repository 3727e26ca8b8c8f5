/*
 * test_hdrfilter.c: unit tests for src/smtpd/hdrfilter.c: client-made
 * "X-Tempomx-*" header fields (any case, folded or not, obsolete white
 * space before the colon) are removed from the header section, and
 * nothing else changes: other fields, look-alike names, the body, and
 * messages without a header section pass octet for octet, whatever the
 * pieces the input arrives in.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hdrfilter.h"

struct sinkbuf {
	char buf[4096];
	size_t n;
	int fail;
};

static int sink(void *arg, const char *p, size_t n)
{
	struct sinkbuf *s = arg;
	if (s->fail)
		return -1;
	cr_assert_leq(s->n + n, sizeof(s->buf));
	memcpy(s->buf + s->n, p, n);
	s->n += n;
	return 0;
}

struct filter_case {
	const char *in, *out;
	unsigned removed;
};

static const struct filter_case cases[] = {
    {"Subject: hi\r\n\r\nbody\r\n", "Subject: hi\r\n\r\nbody\r\n", 0},
    {"X-Tempomx-Class: hi; verdict=good\r\nSubject: hi\r\n\r\nbody\r\n",
     "Subject: hi\r\n\r\nbody\r\n", 1},
    {"Subject: hi\r\nx-tempomx-scan: clean\r\n\tengine=none\r\nFrom: a@b\r\n\r\nb\r\n",
     "Subject: hi\r\nFrom: a@b\r\n\r\nb\r\n", 1},
    {"X-TEMPOMX-CLASS : hi\r\n folded\r\n\r\n", "\r\n", 1},
    {"X-Tempomx-: empty suffix\r\n\r\n", "\r\n", 1},
    /* Look-alikes stay. */
    {"X-Tempomx: no dash\r\nX-Tempomxx-A: b\r\nX-Tempo-Class: c\r\n\r\n",
     "X-Tempomx: no dash\r\nX-Tempomxx-A: b\r\nX-Tempo-Class: c\r\n\r\n", 0},
    {"X-Original-X-Tempomx-Class: a\r\n\r\n", "X-Original-X-Tempomx-Class: a\r\n\r\n", 0},
    /* A continuation of a kept field stays, of a dropped one goes. */
    {"A: 1\r\n 2\r\nX-Tempomx-B: 3\r\n 4\r\n\t5\r\nC: 6\r\n 7\r\n\r\n",
     "A: 1\r\n 2\r\nC: 6\r\n 7\r\n\r\n", 1},
    {"X-Tempomx-A: 1\r\nX-Tempomx-B: 2\r\n\r\n", "\r\n", 2},
    /* The body is never touched. */
    {"Subject: s\r\n\r\nX-Tempomx-Class: hi\r\n", "Subject: s\r\n\r\nX-Tempomx-Class: hi\r\n", 0},
    /* No header section: a first line that is no field ends it. */
    {"no colon here\r\nX-Tempomx-Class: hi\r\n", "no colon here\r\nX-Tempomx-Class: hi\r\n", 0},
    /* A leading continuation line would continue our own field (written
     * above the client's data): it goes, and the fields after it are
     * filtered as usual. */
    {" starts with a space\r\nX-Tempomx-Class: hi\r\n", "", 1},
    {"\tappended to ours\r\n more\r\nX-Tempomx-Class: hi; verdict=good\r\nSubject: s\r\n\r\n"
     " body\r\n",
     "Subject: s\r\n\r\n body\r\n", 1},
    {"X-Tempomx-Class without colon\r\nX-Tempomx-Scan: x\r\n",
     "X-Tempomx-Class without colon\r\nX-Tempomx-Scan: x\r\n", 0},
    {"\r\nX-Tempomx-Class: hi\r\n", "\r\nX-Tempomx-Class: hi\r\n", 0},
    /* A name longer than the hold buffer (none of ours is) passes whole. */
    {"X-Tempomx-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
     "AAAAAAAAAA: long\r\nX-Tempomx-Scan: x\r\n\r\n",
     "X-Tempomx-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
     "AAAAAAAAAA: long\r\n\r\n",
     1},
    {"", "", 0},
};

static void run_case(const struct filter_case *c, size_t piece)
{
	struct sinkbuf out = {.n = 0};
	struct hdr_filter f;
	hdr_filter_init(&f, sink, &out);
	size_t len = strlen(c->in);
	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;
		cr_assert_eq(hdr_filter_feed(&f, c->in + off, n), 0);
	}
	cr_expect_eq(out.n, strlen(c->out), "pieces of %zu: %zu octets for \"%s\"", piece, out.n,
	             c->in);
	cr_expect(out.n == strlen(c->out) && memcmp(out.buf, c->out, out.n) == 0,
	          "pieces of %zu: \"%.*s\" for \"%s\"", piece, (int)out.n, out.buf, c->in);
	cr_expect_eq(f.written, out.n);
	cr_expect_eq(f.removed, c->removed, "pieces of %zu: removed %u in \"%s\"", piece, f.removed,
	             c->in);
}

Test(hdrfilter, table_in_every_piece_size)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t piece = 1; piece <= 8; piece++)
			run_case(&cases[i], piece);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], 4096);
}

Test(hdrfilter, leading_continuation_lines_are_counted)
{
	struct sinkbuf out = {.n = 0};
	struct hdr_filter f;
	hdr_filter_init(&f, sink, &out);
	static const char in[] = " a\r\n\tb\r\nSubject: s\r\n c\r\n\r\n";
	cr_assert_eq(hdr_filter_feed(&f, in, sizeof(in) - 1), 0);
	cr_expect_eq(f.orphans, 2);
	cr_expect_eq(f.removed, 0);
	cr_expect_eq(out.n, strlen("Subject: s\r\n c\r\n\r\n"));
}

Test(hdrfilter, sink_failure_is_reported)
{
	struct sinkbuf out = {.n = 0, .fail = 1};
	struct hdr_filter f;
	hdr_filter_init(&f, sink, &out);
	cr_expect_eq(hdr_filter_feed(&f, "Subject: a\r\n", 12), -1);
}
