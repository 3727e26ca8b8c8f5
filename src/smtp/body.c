/*
 * body.c: the message body of an outbound SMTP/LMTP transaction, for the
 * BODY state of client.c. The spool file is read with pread() in chunks
 * of SMTP_BODY_CHUNK, dot-stuffed (proto.c) and added to the connection's
 * output only while less than the caller's high mark waits there, so a
 * large message never sits in memory whole; client.c calls again each
 * time the output has drained below its low mark. Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "body.h"
#include "smtp_proto.h"
#include "util.h"

#define SMTP_BODY_CHUNK 65536

void smtp_body_begin(struct smtp_body *b, int fd, off_t off, uint64_t size)
{
	b->fd = fd;
	b->off = off;
	b->left = size;
	b->bol = 1;
	b->last = '\n';
	if (b->chunk == NULL) {
		b->chunk = xmalloc(SMTP_BODY_CHUNK);
		b->stuffed = xmalloc(2 * SMTP_BODY_CHUNK + 8);
	}
}

void smtp_body_head(struct smtp_body *b, struct evbuffer *out, const char *head, size_t len)
{
	/* Our own fields never start with a dot, but the same stuffing keeps
	 * the line state right for the message that follows. */
	if (head == NULL || len == 0 || len > SMTP_BODY_CHUNK)
		return;
	size_t n = smtp_dotstuff(head, len, b->stuffed, &b->bol);
	b->last = head[len - 1];
	evbuffer_add(out, b->stuffed, n);
}

enum smtp_body_status smtp_body_fill(struct smtp_body *b, struct evbuffer *out, size_t high,
                                     char *why, size_t whylen)
{
	while (b->left > 0 && evbuffer_get_length(out) < high) {
		size_t want = b->left < SMTP_BODY_CHUNK ? (size_t)b->left : SMTP_BODY_CHUNK;
		ssize_t r = pread(b->fd, b->chunk, want, b->off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			smtp_local_reply(why, whylen, 451, "4.3.0",
			                 "cannot read the queue file: %s",
			                 r == 0 ? "short file" : strerror(errno));
			return SMTP_BODY_ERROR;
		}
		size_t n = smtp_dotstuff(b->chunk, (size_t)r, b->stuffed, &b->bol);
		b->last = b->chunk[r - 1];
		evbuffer_add(out, b->stuffed, n);
		b->off += r;
		b->left -= (uint64_t)r;
	}
	if (b->left > 0)
		return SMTP_BODY_MORE;
	const char *end = b->last == '\n' ? ".\r\n" : "\r\n.\r\n";
	evbuffer_add(out, end, strlen(end));
	return SMTP_BODY_END;
}

void smtp_body_free(struct smtp_body *b)
{
	free(b->chunk);
	free(b->stuffed);
	b->chunk = b->stuffed = NULL;
}
