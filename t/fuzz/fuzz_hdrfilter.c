/*
 * fuzz_hdrfilter.c: libFuzzer target for the header filter
 * (src/smtpd/hdrfilter.c). The first octet picks a piece size; the rest
 * is fed in pieces of that size and must give exactly what feeding it in
 * one piece gives (the filter keeps its state across pieces), never more
 * octets than went in, and a correct count of what it wrote. The output
 * never starts with white space: our own fields precede it in the spool
 * file, so a leading continuation line would extend them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdrfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sinkbuf {
	char *buf;
	size_t n, cap;
};

static int sink(void *arg, const char *p, size_t n)
{
	struct sinkbuf *s = arg;
	if (s->n + n > s->cap)
		abort(); /* more out than in */
	memcpy(s->buf + s->n, p, n);
	s->n += n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t piece = (size_t)data[0] % 17 + 1;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	struct sinkbuf whole = {malloc(len + 1), 0, len}, parts = {malloc(len + 1), 0, len};
	if (whole.buf == NULL || parts.buf == NULL)
		abort();

	struct hdr_filter f;
	hdr_filter_init(&f, sink, &whole);
	/* A copy of exactly len octets, so ASan sees any overread. */
	char *copy = malloc(len ? len : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, in, len);
	hdr_filter_feed(&f, copy, len);
	if (f.written != whole.n)
		abort();
	if (whole.n > 0 && (whole.buf[0] == ' ' || whole.buf[0] == '\t'))
		abort();

	hdr_filter_init(&f, sink, &parts);
	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;
		char *p = malloc(n);
		if (p == NULL)
			abort();
		memcpy(p, in + off, n);
		hdr_filter_feed(&f, p, n);
		free(p);
	}
	if (f.written != parts.n || parts.n != whole.n ||
	    memcmp(parts.buf, whole.buf, whole.n) != 0)
		abort();
	free(copy);
	free(whole.buf);
	free(parts.buf);
	return 0;
}
