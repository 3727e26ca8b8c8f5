/*
 * fuzz_lmtp_reply.c: libFuzzer target for the LMTP reply parser
 * (src/smtpd/lmtp_reply.c, what recipient verification reads from the
 * mail store): any input must parse, ask for more or be refused, never
 * read past its end, and a parsed reply must be consistent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size octets, so ASan sees any overread. */
	char *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	size_t off = 0;
	/* Replies one after the other, as the client reads them. */
	while (off < size) {
		struct lmtp_reply r;
		size_t used;
		enum lmtp_reply_status st = lmtp_reply_parse(buf + off, size - off, &r, &used);
		if (st != LMTP_REPLY_DONE)
			break;
		if (used == 0 || used > size - off || r.code < 200 || r.code > 599 ||
		    r.nlines == 0 || strlen(r.text) >= sizeof(r.text))
			abort();
		off += used;
	}
	free(buf);
	return 0;
}
