/*
 * fuzz_smtp_reply.c: libFuzzer target for what a remote SMTP or LMTP
 * server sends the outbound client (src/smtp/proto.c), for delivery and
 * for recipient verification alike: the input is split into lines as the
 * client splits them and fed as replies, one after the other; a complete
 * reply must be consistent, its extension lines go through the EHLO
 * parser, and the input is dot-stuffed in two pieces.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size octets, so ASan sees any overread. */
	char *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	const char *p = buf, *end = buf + size;
	struct smtp_reply rp;
	struct smtp_caps caps;
	smtp_reply_init(&rp);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t l = len;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l <= SMTP_REPLY_LINE_MAX) {
			int r = smtp_reply_line(&rp, p, l);
			if (r == 1) {
				if (rp.code < 200 || rp.code > 599 || rp.lines == 0 ||
				    strlen(rp.text) >= sizeof(rp.text) ||
				    strlen(rp.ext) >= sizeof(rp.ext))
					abort();
				smtp_caps_parse(rp.ext, &caps);
			}
			if (r != 0)
				smtp_reply_init(&rp);
		}
		p += len + (nl ? 1 : 0);
	}
	char *out = malloc(2 * size + 1);
	if (out) {
		int bol = 1;
		size_t half = size / 2;
		size_t n = smtp_dotstuff(buf, half, out, &bol);
		smtp_dotstuff(buf + half, size - half, out + n, &bol);
		free(out);
	}
	free(buf);
	return 0;
}
