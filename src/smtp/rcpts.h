/*
 * rcpts.h: the recipients' answers in one outbound transaction (rcpts.c),
 * private to src/smtp/: which RCPT reply or which LMTP reply to the dot
 * belongs to whom, which recipients were accepted, and the code each one
 * ends with. client.c feeds it the replies in order; it does no I/O and
 * knows nothing of the session.
 */
#ifndef TEMPOMX_SMTP_RCPTS_H
#define TEMPOMX_SMTP_RCPTS_H

#include <stddef.h>

struct smtp_result;

struct smtp_rcpts {
	struct smtp_result *res; /* res[i] for the transaction's recipient i */
	size_t n;
	char *accepted_v; /* accepted_v[i]: recipient i's RCPT got a 2xx */
	size_t accepted;
	size_t next; /* whose RCPT reply, then whose LMTP dot reply, is next */
};

/* A transaction for n recipients, answers into res (all undecided). */
void rcpts_begin(struct smtp_rcpts *r, struct smtp_result *res, size_t n);
void rcpts_free(struct smtp_rcpts *r);
/* The reply to the next recipient's RCPT: a 2xx accepts it (and is its
 * answer if keep_2xx, for a probe), anything else is its answer. record
 * 0: the reply only moves on (MAIL was refused). Returns 1 when every
 * RCPT had its reply. */
int rcpts_rcpt_reply(struct smtp_rcpts *r, int code, const char *text, int keep_2xx, int record);
/* Every recipient without an answer gets this one. */
void rcpts_fill(struct smtp_rcpts *r, int code, const char *text);
int rcpts_any_decided(const struct smtp_rcpts *r);
/* The reply to the final dot: SMTP, every accepted recipient's answer;
 * LMTP (RFC 2033 4.2), the next accepted recipient's. Returns 1 when
 * every accepted recipient has its answer. */
int rcpts_dot_reply(struct smtp_rcpts *r, int lmtp, int code, const char *text);
/* Before the replies to the dot. */
void rcpts_dot_begin(struct smtp_rcpts *r);

#endif
