/*
 * lmtp_reply.c: parsing of LMTP server replies (RFC 2033 section 4,
 * which takes the reply syntax of RFC 5321 4.2).
 *
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                Reply-code [ SP textstring ] CRLF
 *
 * Every line of a reply must carry the same code. We accept a bare LF as
 * a line end (some servers send one), and nothing else that is loose: a
 * reply we cannot read is a broken connection to the verification client
 * (verify.c), which closes it. Nothing here allocates or keeps state.
 */
#include <string.h>

#include "lmtp_reply.h"

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The text of the first line, for logs: control octets neutralised. */
static void keep_text(struct lmtp_reply *out, const char *line, size_t len)
{
	if (len >= sizeof(out->text))
		len = sizeof(out->text) - 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		out->text[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out->text[len] = '\0';
}

enum lmtp_reply_status lmtp_reply_parse(const char *buf, size_t avail, struct lmtp_reply *out,
                                        size_t *consumed)
{
	size_t window = avail < LMTP_REPLY_MAX ? avail : LMTP_REPLY_MAX;
	size_t off = 0;
	memset(out, 0, sizeof(*out));
	*consumed = 0;
	for (;;) {
		const char *line = buf + off;
		const char *lf = memchr(line, '\n', window - off);
		if (lf == NULL)
			return avail >= LMTP_REPLY_MAX ? LMTP_REPLY_BAD : LMTP_REPLY_MORE;
		size_t len = (size_t)(lf - line);
		size_t next = off + len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) ||
		    !is_digit(line[2]))
			return LMTP_REPLY_BAD;
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (out->nlines > 0 && code != out->code)
			return LMTP_REPLY_BAD;
		if (memchr(line, '\r', len) != NULL || memchr(line, '\0', len) != NULL)
			return LMTP_REPLY_BAD;
		if (out->nlines == 0) {
			out->code = code;
			keep_text(out, line, len);
		}
		out->nlines++;
		if (len == 3 || line[3] == ' ') {
			*consumed = next;
			return LMTP_REPLY_DONE;
		}
		if (line[3] != '-')
			return LMTP_REPLY_BAD;
		off = next;
	}
}
