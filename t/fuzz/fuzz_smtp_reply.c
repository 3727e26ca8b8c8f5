/*
 * fuzz_smtp_reply.c: libFuzzer target for what a remote SMTP/LMTP server
 * sends the outbound client (src/deliver/smtp_proto.c): the input is split
 * into lines and fed as replies; every complete reply's extension lines go
 * through the EHLO parser, and the input is dot-stuffed in two pieces.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
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
			if (r != 0) {
				if (r == 1)
					smtp_caps_parse(rp.ext, &caps);
				smtp_reply_init(&rp);
			}
		}
		p += len + (nl ? 1 : 0);
	}
	char *out = malloc(2 * size + 1);
	if (out) {
		int bol = 1;
		size_t half = size / 2;
		size_t n = smtp_dotstuff((const char *)data, half, out, &bol);
		smtp_dotstuff((const char *)data + half, size - half, out + n, &bol);
		free(out);
	}
	return 0;
}
