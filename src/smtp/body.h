/*
 * body.h: the message body of an outbound transaction (body.c), private
 * to src/smtp/: read from the spool file in chunks, dot-stuffed, and
 * queued on the connection's output as it drains, so a large message is
 * never held in memory. client.c calls it in its BODY state; it knows
 * nothing of the session.
 */
#ifndef TEMPOMX_SMTP_BODY_H
#define TEMPOMX_SMTP_BODY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;

struct smtp_body {
	int fd;
	off_t off;
	uint64_t left;
	int bol;
	char last;
	char *chunk, *stuffed; /* kept for the session's next message */
};

enum smtp_body_status {
	SMTP_BODY_MORE = 0, /* out is full: call again when it has drained */
	SMTP_BODY_END,      /* the whole message and the final dot are queued */
	SMTP_BODY_ERROR,    /* the spool file could not be read: why says so */
};

/* Start sending size octets of fd from off. */
void smtp_body_begin(struct smtp_body *b, int fd, off_t off, uint64_t size);
/* Queue len octets of header fields of ours (CRLF line ends) on out
 * before the message: right after smtp_body_begin(). */
void smtp_body_head(struct smtp_body *b, struct evbuffer *out, const char *head, size_t len);
/* Queue on out, up to about high octets waiting, then the final dot
 * after the last chunk (RFC 5321 4.1.1.4: CRLF before it if the message
 * does not end with one). On SMTP_BODY_ERROR, why holds an RFC 3463
 * reply text. */
enum smtp_body_status smtp_body_fill(struct smtp_body *b, struct evbuffer *out, size_t high,
                                     char *why, size_t whylen);
/* Free the buffers; b may be begun again. */
void smtp_body_free(struct smtp_body *b);

#endif
