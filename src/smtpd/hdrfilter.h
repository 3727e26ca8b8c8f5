/*
 * hdrfilter.h: removes header fields that only tempomx may write from a
 * message as it is received (src/smtpd/hdrfilter.c).
 *
 * Sits between the DATA parser (data.c) and the spool file: a data_sink_fn
 * that passes every octet on except the header fields whose name starts
 * with "X-Tempomx-" (any case), continuation lines included. Those names
 * carry our own verdicts (X-Tempomx-Class, X-Tempomx-Scan): a client must
 * not be able to hand a filter downstream a verdict of its own making.
 * Leading continuation lines (before the client's first field) would
 * continue our own fields, so they are removed too.
 * Pure (no I/O), so it is unit-tested and fuzzed directly.
 */
#ifndef TEMPOMX_HDRFILTER_H
#define TEMPOMX_HDRFILTER_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"

/* Octets of a field name held back while it may still be one of ours. */
#define HDR_FILTER_HOLD 80

struct hdr_filter {
	data_sink_fn sink; /* where kept octets go */
	void *sink_arg;
	int state;      /* private (hdrfilter.c) */
	int drop_field; /* the field being continued was removed */
	int seen_field; /* a field was seen: a continuation line may follow */
	int leading;    /* no client field yet: a continuation is an orphan */
	size_t held;
	char hold[HDR_FILTER_HOLD];
	uint64_t written; /* octets passed on to the sink */
	unsigned removed; /* fields removed */
	unsigned orphans; /* leading continuation lines removed */
};

void hdr_filter_init(struct hdr_filter *f, data_sink_fn sink, void *arg);
/* A data_sink_fn (arg is the struct hdr_filter). The input is the
 * parser's output: lines ending in CR LF. Returns what the sink returned
 * (-1 stops the parser writing). */
int hdr_filter_feed(void *arg, const char *buf, size_t len);

#endif
