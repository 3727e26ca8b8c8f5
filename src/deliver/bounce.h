/*
 * bounce.h: delivery status notifications (bounce.c), RFC 3464, and RFC 6533
 * for internationalised (SMTPUTF8) messages.
 */
#ifndef TEMPOMX_BOUNCE_H
#define TEMPOMX_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

struct envelope;
struct spool;

struct bounce_rcpt {
	const char *addr;
	const char *orcpt;  /* "rfc822;addr" from ORCPT (decoded), or NULL */
	char status[16];    /* enhanced status code, "5.1.1" */
	const char *diag;   /* the last reply, or NULL */
	const char *action; /* RFC 3464 Action; NULL: "failed" or "delayed" */
};

/* What a report is about. */
enum bounce_kind { BOUNCE_FAILED = 0, BOUNCE_DELAYED = 1, BOUNCE_SUCCESS = 2 };

struct bounce_report {
	const char *hostname;
	const char *id; /* queue ID of the original */
	const char *sender;
	const char *envid;
	int64_t arrival; /* seconds */
	int64_t now;
	int delayed; /* 1: a delay warning (Action: delayed), 0: failure */
	int success; /* a success report: each recipient's action says which */
	const struct bounce_rcpt *rcpts;
	size_t nrcpt;
	const char *headers; /* the original header section, CRLF lines */
	size_t headers_len;
	/* RET=FULL (RFC 3461 4.3): headers holds the whole message, sent as
	 * message/rfc822 (eightbit: with 8bit octets). full_cut: RET=FULL
	 * was asked for but the message is over BOUNCE_RETURN_MAX, so only
	 * its header section is returned. */
	int full, full_cut, eightbit;
	/* The original came with SMTPUTF8: an RFC 6533 report
	 * (global-delivery-status, message/global-headers) that keeps UTF-8
	 * addresses and header fields as they are. */
	int utf8;
};

/* A failure report returns at most this much of the original: its
 * header section (cut at a whole line), or under RET=FULL the whole
 * message when it fits. */
#define BOUNCE_RETURN_MAX (64 * 1024)

/* Why no report may be sent about orig: "null sender" (RFC 5321 4.5.5:
 * never a report about a report), "junk" (the classifier judged it junk:
 * its sender is most likely forged, and a report would be backscatter),
 * or NULL when a report may be sent. */
const char *bounce_suppressed(const struct envelope *orig);
/* The enhanced status code of a reply ("550 5.1.1 No such user" ->
 * "5.1.1"), else "C.0.0" from the reply code's class. */
void bounce_status(const char *reply, int code, char *out, size_t size);
/* Render the whole DSN message (headers and multipart/report body, CRLF
 * lines). Returns a malloc'd buffer of *len octets. */
char *bounce_format(const struct bounce_report *b, size_t *len);
/* Build and queue into out/ a DSN about the recipients idx[0..n) of orig
 * (open spool file fd, message at body_off): sent from the null sender to
 * orig's sender, bounce_of = orig's ID. kind: a failure, a delay warning
 * or a success report (action[i], "delivered" or "relayed", for
 * idx[i]; NULL for the other kinds). expired: the recipients bounce
 * because the queue lifetime ran out. A failure returns what orig's RET
 * asks for (headers by default); the others return the headers.
 * Blocking (fsync): worker thread. Returns 0, or -1 (errno set). */
int bounce_queue(struct spool *sp, const struct envelope *orig, int fd, size_t body_off,
                 const char *hostname, const size_t *idx, size_t n, int kind, int expired,
                 const char *const *action);

#endif
