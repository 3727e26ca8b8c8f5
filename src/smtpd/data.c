/*
 * data.c: the SMTP DATA stream parser; the contract is include/data.h.
 *
 * The smtpd session feeds it the octets after the 354 reply in whatever
 * pieces the network delivers; it finds the end of the data, undoes
 * dot-stuffing, normalises or rejects bare line ends, enforces the limits,
 * counts Received: fields and hands the message to the sink. No I/O of its
 * own, so it is unit-tested and fuzzed directly.
 *
 * SMTP smuggling: the only end of the data is CR LF "." CR LF, with the
 * first CR LF a real line end (or the 354 itself). The state machine sees
 * the input as CR LF lines only (RFC 5321 2.3.8): a bare CR or LF is line
 * content in that view, so it can neither start a line for the terminator
 * nor for unstuffing. Only afterwards, when the octets are written out, does
 * a bare CR or LF become CR LF (or mark the message for rejection). All the
 * ambiguity at a piece boundary (a CR, a dot at line start, ".\r") lives in
 * the state, never in buffered input, so the result is the same whatever
 * the pieces.
 *
 * The message as written (the "output") is what the limits and the header
 * section refer to: sizes count output octets, an unstuffed dot is not
 * counted (RFC 5321 4.5.3.1.6), and an output line ends at each CR LF,
 * including one made from a bare CR or LF. The header section is the
 * leading run of header field lines ("name:" with optional white space
 * before the colon) and their continuation lines (RFC 5322 2.2, 3.2.2); it
 * ends at the empty line or at the first line that is neither. The parser
 * starts "after a field": our Received: and X-Tempomx-Class: are written
 * above the client's data, so a leading line that starts with white space
 * continues our field for every later reader; it is header, counts against
 * header_size_limit, and the Received: fields after it are counted (the
 * header filter then removes it, hdrfilter.c).
 *
 * BDAT chunks (data_init_chunks) run through the same state machine with
 * the dot rules switched off: a line start is only a line start, so
 * "." CR LF is a line of content and a leading dot is kept; everything
 * else (bare CR and LF, limits, header section) is shared. data_finish()
 * settles what the state still holds when the last chunk is in.
 */
#include <limits.h>
#include <string.h>

#include "data.h"

/* Position in the CR LF line structure of the input. */
enum {
	S_START,  /* at the start of a line (also right after the 354) */
	S_DOT,    /* a "." at line start: the terminator or a stuffed dot */
	S_DOT_CR, /* "." CR at line start: LF ends the data */
	S_MID,    /* inside a line */
	S_CR,     /* a CR inside a line: CR LF or a bare CR */
	S_DONE,   /* the terminator was consumed */
};

/* Position in the header section, per output line. */
enum {
	H_LSTART, /* at the start of an output line */
	H_NAME,   /* reading what may be a field name */
	H_WS,     /* white space after the name, before the colon */
	H_FIELD,  /* inside a header field line or continuation */
	H_BODY,   /* the header section has ended */
};

/* Kinds of line end written out as CR LF. */
enum { BRK_CRLF, BRK_BARE_CR, BRK_BARE_LF };

/* Output collected during one data_feed() call and written in batches, so
 * the sink sees few calls whatever the size of the pieces. */
struct data_out {
	struct data_parser *dp;
	size_t n;
	char buf[4096];
};

static void set_error(struct data_parser *dp, enum data_error e)
{
	if (dp->error == DATA_OK)
		dp->error = e;
}

static void count(unsigned *c)
{
	if (*c < UINT_MAX)
		(*c)++;
}

static void out_flush(struct data_out *o)
{
	struct data_parser *dp = o->dp;

	if (o->n == 0)
		return;
	if (dp->sink != NULL && dp->sink(dp->sink_arg, o->buf, o->n) < 0)
		set_error(dp, DATA_ERR_SINK);
	else
		dp->size += o->n;
	o->n = 0;
}

/* One octet of the message. Once the message is marked for rejection
 * nothing more is written: it will be refused, so the spool file is
 * discarded anyway, and a size overflow must not fill the disk. */
static void out_raw(struct data_out *o, unsigned char c)
{
	struct data_parser *dp = o->dp;

	dp->total++;
	if (dp->lim.max_size != 0 && dp->total > dp->lim.max_size)
		set_error(dp, DATA_ERR_SIZE);
	if (dp->error != DATA_OK)
		return;
	o->buf[o->n++] = (char)c;
	if (o->n == sizeof(o->buf))
		out_flush(o);
}

static void hdr_add(struct data_parser *dp, uint64_t n)
{
	dp->header_size += n;
	if (dp->lim.max_header != 0 && dp->header_size > dp->lim.max_header)
		set_error(dp, DATA_ERR_HEADER);
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

/* A line turned out to be a header field: count what was held back and
 * note a Received: field (RFC 5321 6.3: loop detection). */
static void hdr_confirm(struct data_parser *dp)
{
	hdr_add(dp, dp->hpending + 1);
	if (dp->name_received && dp->name_len == 8)
		count(&dp->received);
	dp->hpending = 0;
	dp->seen_field = 1;
	dp->hstate = H_FIELD;
}

static void hdr_name_octet(struct data_parser *dp, unsigned char c)
{
	static const char received[] = "received";
	unsigned char lc = (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;

	if (dp->name_len >= 8 || (unsigned char)received[dp->name_len] != lc)
		dp->name_received = 0;
	if (dp->name_len < 9)
		dp->name_len++;
}

/* Header section tracking for one content octet of the output. */
static void hdr_octet(struct data_parser *dp, unsigned char c)
{
	switch (dp->hstate) {
	case H_LSTART:
		if (is_wsp(c)) {
			/* A continuation line belongs to the previous field,
			 * ours when it is the first line. */
			dp->hstate = H_FIELD;
			hdr_add(dp, 1);
		} else if (is_ftext(c)) {
			dp->hstate = H_NAME;
			dp->hpending = 1;
			dp->name_len = 0;
			dp->name_received = 1;
			hdr_name_octet(dp, c);
		} else {
			dp->hstate = H_BODY;
		}
		break;
	case H_NAME:
		if (is_ftext(c)) {
			dp->hpending++;
			hdr_name_octet(dp, c);
		} else if (is_wsp(c)) {
			dp->hpending++;
			dp->hstate = H_WS;
		} else if (c == ':') {
			hdr_confirm(dp);
		} else {
			dp->hstate = H_BODY;
		}
		break;
	case H_WS:
		if (is_wsp(c))
			dp->hpending++;
		else if (c == ':')
			hdr_confirm(dp);
		else
			dp->hstate = H_BODY;
		break;
	case H_FIELD:
		hdr_add(dp, 1);
		break;
	default:
		break;
	}
}

/* Header section tracking at the end of an output line. */
static void hdr_break(struct data_parser *dp)
{
	switch (dp->hstate) {
	case H_FIELD:
		hdr_add(dp, 2);
		dp->hstate = H_LSTART;
		break;
	case H_LSTART: /* the empty line that separates the body */
	case H_NAME:   /* a line without a colon is not a field */
	case H_WS:
		dp->hstate = H_BODY;
		break;
	default:
		break;
	}
}

/* One content octet of a line (not a line end, not a stuffed dot). */
static void out_octet(struct data_out *o, unsigned char c)
{
	struct data_parser *dp = o->dp;

	if (c == '\0')
		count(&dp->nul);
	if (c >= 0x80)
		dp->eightbit = 1;
	hdr_octet(dp, c);
	dp->line_len++;
	/* The limit includes the CR LF that will end this line. */
	if (dp->lim.max_line != 0 && dp->line_len + 2 > dp->lim.max_line)
		set_error(dp, DATA_ERR_LINE);
	out_raw(o, c);
}

/* The end of an output line: a CR LF, or a bare CR or LF that is written
 * as CR LF in normalize mode (RFC 5321 2.3.8 forbids them in the data). */
static void out_break(struct data_out *o, int kind)
{
	struct data_parser *dp = o->dp;

	if (kind == BRK_BARE_CR)
		count(&dp->bare_cr);
	else if (kind == BRK_BARE_LF)
		count(&dp->bare_lf);
	if (kind != BRK_CRLF && !dp->lim.normalize_bare)
		set_error(dp, DATA_ERR_BARE);
	hdr_break(dp);
	if (dp->lim.max_line != 0 && dp->line_len + 2 > dp->lim.max_line)
		set_error(dp, DATA_ERR_LINE);
	dp->line_len = 0;
	out_raw(o, '\r');
	out_raw(o, '\n');
}

void data_init(struct data_parser *dp, const struct data_limits *lim, data_sink_fn sink, void *arg)
{
	memset(dp, 0, sizeof(*dp));
	if (lim != NULL)
		dp->lim = *lim;
	dp->sink = sink;
	dp->sink_arg = arg;
	dp->state = S_START;
	dp->hstate = H_LSTART;
	/* Our fields precede the client's (see the top of this file). */
	dp->seen_field = 1;
	dp->error = DATA_OK;
}

size_t data_feed(struct data_parser *dp, const char *buf, size_t len, int *done)
{
	const unsigned char *p = (const unsigned char *)buf, *e = p + len;
	struct data_out o;
	unsigned char c;

	*done = 0;
	if (dp->state == S_DONE) {
		*done = 1;
		return 0;
	}
	o.dp = dp;
	o.n = 0;
	while (p < e) {
		c = *p++;
		switch (dp->state) {
		case S_START:
			if (c == '.' && !dp->chunks) {
				dp->state = S_DOT;
				break;
			}
			goto content;
		case S_DOT:
			if (c == '\r') {
				dp->state = S_DOT_CR;
				break;
			}
			/* RFC 5321 4.5.2: a line that starts with a dot and
			 * has more on it loses that dot. Anything but CR,
			 * bare LF included, is more. */
			goto content;
		case S_DOT_CR:
			if (c == '\n') {
				dp->state = S_DONE;
				out_flush(&o);
				*done = 1;
				return (size_t)(p - (const unsigned char *)buf);
			}
			/* ".\r" then not LF: the dot was stuffing, the CR is
			 * bare. */
			out_break(&o, BRK_BARE_CR);
			goto content;
		case S_CR:
			if (c == '\n') {
				out_break(&o, BRK_CRLF);
				dp->state = S_START;
				break;
			}
			out_break(&o, BRK_BARE_CR);
			goto content;
		default:
		content:
			/* Inside a line. A bare LF is written as a line end
			 * but does not start a line in the CR LF view, so a
			 * dot after it is neither a terminator nor stuffing. */
			if (c == '\r') {
				dp->state = S_CR;
			} else if (c == '\n') {
				out_break(&o, BRK_BARE_LF);
				dp->state = S_MID;
			} else {
				out_octet(&o, c);
				dp->state = S_MID;
			}
			break;
		}
	}
	out_flush(&o);
	return len;
}

void data_init_chunks(struct data_parser *dp, const struct data_limits *lim, data_sink_fn sink,
                      void *arg)
{
	data_init(dp, lim, sink, arg);
	dp->chunks = 1;
}

void data_finish(struct data_parser *dp)
{
	struct data_out o;

	if (dp->state == S_DONE)
		return;
	o.dp = dp;
	o.n = 0;
	switch (dp->state) {
	case S_CR:
	case S_DOT_CR:
		/* Nothing followed the CR: it is bare. */
		out_break(&o, BRK_BARE_CR);
		break;
	case S_DOT:
		/* A lone "." on an unterminated last line (DATA cannot get
		 * here; BDAT never enters S_DOT). */
		out_octet(&o, '.');
		out_break(&o, BRK_CRLF);
		break;
	default:
		/* S_MID: content since the last line end, or nothing after a
		 * bare LF (already written as a line end). */
		if (dp->line_len > 0)
			out_break(&o, BRK_CRLF);
		break;
	}
	dp->state = S_DONE;
	out_flush(&o);
}

const char *data_strerror(enum data_error e)
{
	switch (e) {
	case DATA_OK:
		return "message accepted";
	case DATA_ERR_SIZE:
		return "message too large";
	case DATA_ERR_LINE:
		return "line too long";
	case DATA_ERR_HEADER:
		return "header section too large";
	case DATA_ERR_BARE:
		return "bare CR or LF in message";
	case DATA_ERR_SINK:
		return "error writing message";
	}
	return "unknown data error";
}
