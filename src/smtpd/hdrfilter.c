/*
 * hdrfilter.c: drops client-supplied "X-Tempomx-*" header fields while a
 * message streams into the spool.
 *
 * Called by receive.c as the DATA parser's sink. Works octet by octet on
 * the parser's output (CR LF line ends only, so a line ends at LF). The
 * header section is as data.c sees it: field lines ("name:") and their
 * continuation lines, up to the empty line or the first line that is
 * neither; after that every octet passes unchanged. At the start of each
 * header line the octets are held back until the colon decides: a field
 * named "X-Tempomx-..." is dropped with its continuation lines, anything
 * else is passed on unchanged, in order. A name longer than the hold
 * buffer (HDR_FILTER_HOLD) is passed on: none of our names is that long,
 * and a byte-exact message matters more than such a field.
 *
 * The filter starts "after a field": receive.c has already written our
 * Received: and X-Tempomx-Class: above the client's data, so a client line
 * that starts with white space would read, to every later parser, as a
 * continuation of our field. Such leading continuation lines are dropped
 * (and counted), exactly as the continuation of a removed field is, and the
 * fields after them are filtered as usual.
 */
#include <string.h>

#include "hdrfilter.h"

#define OUR_PREFIX "x-tempomx-"
#define OUR_PREFIX_LEN (sizeof(OUR_PREFIX) - 1)

enum {
	HF_LSTART, /* at the start of a header line */
	HF_NAME,   /* holding a name that may be ours */
	HF_OTHER,  /* passing a name that is not ours, colon not yet seen */
	HF_KEEP,   /* passing the rest of a kept field line */
	HF_DROP,   /* dropping the rest of one of our field lines */
	HF_BODY    /* past the header section */
};

/* Kept octets are gathered here and handed to the sink in pieces. */
struct out {
	struct hdr_filter *f;
	size_t n;
	int rc;
	char buf[4096];
};

void hdr_filter_init(struct hdr_filter *f, data_sink_fn sink, void *arg)
{
	memset(f, 0, sizeof(*f));
	f->sink = sink;
	f->sink_arg = arg;
	f->state = HF_LSTART;
	/* Our own fields come first: a leading continuation line would
	 * continue one of them, so it goes. */
	f->seen_field = 1;
	f->drop_field = 1;
	f->leading = 1;
}

static void emit(struct out *o, const char *p, size_t n)
{
	if (n == 0 || o->rc != 0)
		return;
	o->f->written += n;
	o->rc = o->f->sink(o->f->sink_arg, p, n);
}

static void flush(struct out *o)
{
	emit(o, o->buf, o->n);
	o->n = 0;
}

static void put(struct out *o, const char *p, size_t n)
{
	while (n > 0 && o->rc == 0) {
		size_t k = sizeof(o->buf) - o->n;
		if (k > n)
			k = n;
		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p += k;
		n -= k;
		if (o->n == sizeof(o->buf))
			flush(o);
	}
}

static int is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 3.6.8 ftext: printable US-ASCII except ':'. */
static int is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The held octets can still begin one of our fields: the prefix matches
 * as far as it goes, then ftext, then (obsolete syntax, RFC 5322 4.5.8)
 * only white space before the colon. */
static int could_be_ours(const struct hdr_filter *f)
{
	size_t i = 0;
	for (; i < f->held && i < OUR_PREFIX_LEN; i++)
		if (lower((unsigned char)f->hold[i]) != (unsigned char)OUR_PREFIX[i])
			return 0;
	int ws = 0;
	for (; i < f->held; i++) {
		unsigned char c = (unsigned char)f->hold[i];
		if (is_wsp(c))
			ws = 1;
		else if (!is_ftext(c) || ws)
			return 0;
	}
	return 1;
}

/* In a field name that is not ours (or after the held octets were let go):
 * where does octet c take the line? */
static int after_name_octet(unsigned char c, int have_name)
{
	if (c == ':' && have_name)
		return HF_KEEP;
	if (is_ftext(c) || (is_wsp(c) && have_name))
		return HF_OTHER;
	/* A line without a colon is not a field: the header is over. */
	return HF_BODY;
}

int hdr_filter_feed(void *arg, const char *buf, size_t len)
{
	struct out o = {.f = arg, .n = 0, .rc = 0};
	struct hdr_filter *f = o.f;

	for (size_t i = 0; i < len && o.rc == 0; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (f->state == HF_BODY) {
			flush(&o);
			emit(&o, buf + i, len - i);
			break;
		}
		switch (f->state) {
		case HF_KEEP:
			put(&o, (const char *)&c, 1);
			if (c == '\n')
				f->state = HF_LSTART;
			break;
		case HF_DROP:
			if (c == '\n')
				f->state = HF_LSTART;
			break;
		case HF_OTHER:
			put(&o, (const char *)&c, 1);
			f->state = after_name_octet(c, 1);
			f->seen_field |= f->state == HF_KEEP;
			break;
		case HF_LSTART:
			if (is_wsp(c)) {
				/* A continuation line of the field before. */
				if (f->leading)
					f->orphans++;
				if (f->drop_field) {
					f->state = HF_DROP;
				} else {
					put(&o, (const char *)&c, 1);
					f->state = HF_KEEP;
				}
			} else if (is_ftext(c)) {
				f->drop_field = 0;
				f->leading = 0;
				f->hold[0] = (char)c;
				f->held = 1;
				f->state = HF_NAME;
				if (!could_be_ours(f)) {
					put(&o, f->hold, f->held);
					f->held = 0;
					f->state = HF_OTHER;
				}
			} else {
				/* The empty line, or a line that is no field. */
				f->state = HF_BODY;
				i--; /* passed on with the rest */
			}
			break;
		case HF_NAME:
			if (c == ':' && f->held >= OUR_PREFIX_LEN) {
				/* could_be_ours() held all along: ours. */
				f->held = 0;
				f->drop_field = 1;
				f->seen_field = 1;
				f->removed++;
				f->state = HF_DROP;
				break;
			}
			if (f->held < sizeof(f->hold)) {
				f->hold[f->held++] = (char)c;
				if (c != ':' && c != '\r' && c != '\n' && could_be_ours(f))
					break;
				/* Not ours: let the held octets (c included) go. */
				put(&o, f->hold, f->held);
				f->held = 0;
			} else {
				/* Longer than any name we would hold: not ours. */
				put(&o, f->hold, f->held);
				f->held = 0;
				put(&o, (const char *)&c, 1);
			}
			f->state = after_name_octet(c, 1);
			f->seen_field |= f->state == HF_KEEP;
			break;
		}
	}
	flush(&o);
	return o.rc;
}
