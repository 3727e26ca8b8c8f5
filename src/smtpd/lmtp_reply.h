/*
 * lmtp_reply.h: the replies of an LMTP server (RFC 2033, replies as in
 * RFC 5321 4.2), parsed for the recipient verification client (verify.c).
 *
 * Pure function of its input, so it is unit-tested and fuzzed
 * (t/fuzz/fuzz_lmtp_reply.c): the caller hands the start of what the
 * server sent, and gets back a whole reply, "need more", or "malformed".
 */
#ifndef TEMPOMX_SMTPD_LMTP_REPLY_H
#define TEMPOMX_SMTPD_LMTP_REPLY_H

#include <stddef.h>

/* The longest reply accepted, all lines with their line ends. A server
 * that sends more without finishing its reply is broken (or hostile). */
#define LMTP_REPLY_MAX 8192
/* Room for the text kept for logs: the first line, without its line end. */
#define LMTP_REPLY_TEXT 256

enum lmtp_reply_status {
	LMTP_REPLY_MORE = 0, /* no complete reply yet: read more */
	LMTP_REPLY_DONE,     /* one reply: *consumed octets, out filled in */
	LMTP_REPLY_BAD,      /* not a reply, or longer than LMTP_REPLY_MAX */
};

struct lmtp_reply {
	int code;                   /* 200 to 599, the same on every line */
	unsigned nlines;            /* lines of the reply */
	char text[LMTP_REPLY_TEXT]; /* "550 5.1.1 ...": control octets become '?' */
};

/* Parse the reply at the start of buf (avail octets). Lines are
 * "DDD-text" (more follow) or "DDD text" / "DDD" (the last), ending in CR
 * LF (a bare LF is tolerated); the first digit is 2 to 5. */
enum lmtp_reply_status lmtp_reply_parse(const char *buf, size_t avail, struct lmtp_reply *out,
                                        size_t *consumed);

#endif
