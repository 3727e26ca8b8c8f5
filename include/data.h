/*
 * data.h: the SMTP DATA stream parser (src/smtpd/data.c).
 *
 * The session feeds it the octets that follow the 354 reply, as they
 * arrive, in pieces of any size. It finds the end of the data, undoes
 * dot-stuffing, enforces the limits and hands the message octets to a sink
 * (which writes them to the spool file). It is a pure function of its
 * input: no I/O, no libevent, so it is unit-tested and fuzzed directly.
 *
 * Rules (RFC 5321 4.1.1.4, 4.5.2, 2.3.8; SMTP smuggling):
 * - The data ends only at the five octets CR LF "." CR LF, where the CR LF
 *   before the dot is the end of a line (the 354 counts as a line start,
 *   so "." CR LF as the very first line also ends it). LF "." LF,
 *   CR "." CR, LF "." CR LF and CR LF "." LF never end it.
 * - A line (CR LF terminated) that starts with "." loses that first dot.
 * - A bare LF or bare CR (not part of CR LF) is recorded; in
 *   BARE_LF_NORMALIZE mode it is written out as CR LF, in BARE_LF_REJECT
 *   mode the message is marked for rejection. Normalising happens after the
 *   end has been found, so it can never create an end of data; a "." at the
 *   start of such a normalised segment is not unstuffed.
 * - Limits: message size (octets written), line length (including CR LF),
 *   header section size. Exceeding one marks the message for rejection;
 *   the parser keeps consuming to the end of the data so the session stays
 *   in step with the client, but writes nothing more to the sink. The same
 *   holds for every other cause (bare CR/LF in reject mode, sink failure).
 * - Sizes count the octets written out (an unstuffed dot does not count, a
 *   normalised bare CR/LF counts as CR LF). The header section is the
 *   leading run of "name:" field lines and their continuations; it ends at
 *   the empty line or the first line that is neither. Received: fields are
 *   counted only there.
 *
 * BDAT (RFC 3030): data_init_chunks() sets up the same parser for a
 * message sent in chunks. The octets are the message itself: there is no
 * end-of-data sequence (a "." CR LF line is content) and no dot-stuffing
 * to undo, but bare CR and LF, the limits, the header section and the
 * Received: count follow exactly the rules above, so a message says the
 * same whether it came with DATA or BDAT. The session feeds the chunks'
 * octets as they arrive and calls data_finish() after the last chunk: a
 * CR left at the end is bare, and a last line without its CR LF gets one,
 * so the stored message always ends with CR LF (relaying it with DATA
 * later needs that, and no reader can take its end for something else).
 */
#ifndef TEMPOMX_DATA_H
#define TEMPOMX_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef int (*data_sink_fn)(void *arg, const char *buf, size_t len);

struct data_limits {
	uint64_t max_size;   /* octets of message; 0 = unlimited */
	size_t max_line;     /* octets per line including CR LF; 0 = unlimited */
	uint64_t max_header; /* octets of the header section; 0 = unlimited */
	int normalize_bare;  /* 1: bare CR/LF become CR LF; 0: reject message */
};

/* Why a message must be refused once the data has ended (first cause wins). */
enum data_error {
	DATA_OK = 0,
	DATA_ERR_SIZE,   /* 552 5.3.4 */
	DATA_ERR_LINE,   /* line longer than max_line */
	DATA_ERR_HEADER, /* header section larger than max_header */
	DATA_ERR_BARE,   /* bare CR or LF in reject mode */
	DATA_ERR_SINK,   /* the sink returned -1 (e.g. ENOSPC): 451 4.3.0 */
};

struct data_parser {
	struct data_limits lim;
	data_sink_fn sink;
	void *sink_arg;
	/* state (private, data.c) */
	int state;         /* position in the CR LF line structure */
	int hstate;        /* position in the header section */
	int seen_field;    /* a header field was seen, so a continuation may follow */
	int name_received; /* the field name so far matches "Received" */
	unsigned name_len; /* octets of the field name so far (stops at 9) */
	size_t line_len;   /* octets of the current line, without its CR LF */
	uint64_t hpending; /* octets of a line not yet known to be a header field */
	uint64_t total;    /* octets of the message, written to the sink or not */
	/* results (read after data_feed() reports done) */
	enum data_error error;
	uint64_t size; /* octets written to the sink */
	uint64_t header_size;
	unsigned received; /* Received: header lines seen (loop detection) */
	unsigned bare_lf;  /* bare LF octets seen */
	unsigned bare_cr;  /* bare CR octets seen */
	unsigned nul;      /* NUL octets seen */
	int eightbit;      /* an octet >= 0x80 was seen */
	int chunks;        /* BDAT: no terminator, no unstuffing (data_init_chunks) */
};

void data_init(struct data_parser *dp, const struct data_limits *lim, data_sink_fn sink, void *arg);
/* Consume input. Returns the number of octets consumed; when the end of the
 * data was found, *done is set to 1 and the octets after the terminator
 * (pipelined commands) are not consumed. Never fails; see dp->error. */
size_t data_feed(struct data_parser *dp, const char *buf, size_t len, int *done);
/* The parser for a message sent with BDAT: data_feed() then consumes all
 * it is given and never reports the end; data_finish() ends the message. */
void data_init_chunks(struct data_parser *dp, const struct data_limits *lim, data_sink_fn sink,
                      void *arg);
/* The last chunk is in: a trailing CR is bare, an unterminated last line
 * is ended with CR LF, the rest is written to the sink. Later calls and
 * data_feed() do nothing. For a DATA parser before its end, the same. */
void data_finish(struct data_parser *dp);
const char *data_strerror(enum data_error e);

#endif
