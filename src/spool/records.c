/*
 * records.c: the update records appended to a version 2 spool file after
 * the message, and the CRC-32 that frames them.
 *
 * Owns the record format declared in include/envelope.h: rendering one
 * record for an envelope, and reading the records of a file back so the
 * last valid one becomes the envelope. Called by spool.c, which appends a
 * record where it used to rewrite the whole file (the scan result, the
 * recipients' delivery status) and applies the records whenever it reads
 * a message.
 *
 * Why a record is a whole block: the parser is then the one of the head
 * block (envelope.c), with its strictness, and applying records is just
 * "the last valid one wins"; an update is a few hundred octets against a
 * message of kilobytes, and a message gets a handful of them.
 *
 * Why the frame and the CRC: a record is written with one pwrite() and,
 * where losing it is harmless, without an fsync. After a crash or a power
 * failure the tail of the file may then hold part of a record, zeros, or
 * on a file system without a journal octets that belonged to another
 * file. A frame that does not parse, a length beyond the end or a CRC
 * that does not match are all the mark of such a tail, and the file then
 * reads as it was before that append, which is always a state the message
 * really was in. A record whose CRC matches but whose content is wrong
 * was written wrong, which a crash does not explain: that file is
 * corrupt.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "util.h"

/* "tempomx-update " + up to 7 digits + " " + 8 hex digits + "\n". */
#define RECORD_FRAME_MAX 48

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t envelope_crc32(const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
	const unsigned char *p = data;
	uint32_t crc = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc ^ 0xFFFFFFFFu;
}

char *envelope_record(const struct envelope *env, size_t *lenp)
{
	struct envelope e = *env;
	size_t blen;
	e.version = ENVELOPE_VERSION;
	char *block = envelope_format(&e, &blen, NULL);
	char frame[RECORD_FRAME_MAX];
	int flen = snprintf(frame, sizeof(frame), "%s %zu %08" PRIx32 "\n", ENVELOPE_RECORD_MAGIC,
	                    blen, envelope_crc32(block, blen));
	if (flen < 0 || (size_t)flen >= sizeof(frame))
		fatalx("envelope: record frame too long");
	char *out = xmalloc((size_t)flen + blen);
	memcpy(out, frame, (size_t)flen);
	memcpy(out + flen, block, blen);
	free(block);
	*lenp = (size_t)flen + blen;
	return out;
}

/* Parse "tempomx-update LEN CRC\n" at buf. Returns the frame's length, or
 * 0 when it is not a complete, well-formed frame. */
static size_t record_frame(const char *buf, size_t len, size_t *blen, uint32_t *crc)
{
	size_t mlen = strlen(ENVELOPE_RECORD_MAGIC);
	size_t limit = len < RECORD_FRAME_MAX ? len : RECORD_FRAME_MAX;
	const char *nl = memchr(buf, '\n', limit);
	if (nl == NULL)
		return 0;
	size_t flen = (size_t)(nl - buf) + 1;
	if (flen < mlen + 1 + 1 + 1 + 8 + 1 || memcmp(buf, ENVELOPE_RECORD_MAGIC, mlen) != 0 ||
	    buf[mlen] != ' ')
		return 0;
	size_t pos = mlen + 1, n = 0, digits = 0;
	while (pos < flen && buf[pos] >= '0' && buf[pos] <= '9' && digits < 8) {
		n = n * 10 + (size_t)(buf[pos] - '0');
		pos++;
		digits++;
	}
	if (digits == 0 || n == 0 || n > ENVELOPE_MAX_BLOCK || buf[pos] != ' ')
		return 0;
	pos++;
	if (flen - pos != 9)
		return 0;
	uint32_t c = 0;
	for (size_t i = 0; i < 8; i++) {
		char ch = buf[pos + i];
		int v = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		                                 : -1;
		if (v < 0)
			return 0;
		c = c << 4 | (uint32_t)v;
	}
	*blen = n;
	*crc = c;
	return flen;
}

static int record_bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int record_bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = EBADMSG;
	return -1;
}

int envelope_apply_records(const char *buf, size_t len, struct envelope *env, size_t *validp,
                           char *err, size_t errlen)
{
	struct envelope last;
	int have = 0;
	size_t pos = 0;
	unsigned n = 0;

	if (errlen > 0)
		err[0] = '\0';
	while (pos < len) {
		size_t blen;
		uint32_t crc;
		size_t flen = record_frame(buf + pos, len - pos, &blen, &crc);
		if (flen == 0 || blen > len - pos - flen)
			break; /* an unfinished append */
		const char *block = buf + pos + flen;
		if (envelope_crc32(block, blen) != crc)
			break;
		struct envelope e;
		size_t used = 0;
		char perr[256];
		int r = envelope_parse(block, blen, &e, &used, perr, sizeof(perr));
		if (r == 0 && used != blen) {
			envelope_free(&e);
			snprintf(perr, sizeof(perr), "octets after 'end'");
			r = -1;
		}
		if (r < 0) {
			if (have)
				envelope_free(&last);
			return record_bad(err, errlen, "update record %u: %s", n + 1, perr);
		}
		if (e.version != ENVELOPE_VERSION || strcmp(e.id, env->id) != 0 ||
		    e.size != env->size) {
			envelope_free(&e);
			if (have)
				envelope_free(&last);
			return record_bad(err, errlen,
			                  "update record %u: not version %d of this message's "
			                  "envelope (id or size differ)",
			                  n + 1, ENVELOPE_VERSION);
		}
		if (have)
			envelope_free(&last);
		last = e;
		have = 1;
		n++;
		pos += flen + blen;
	}
	if (have) {
		envelope_free(env);
		*env = last;
		env->nrecords = n;
	}
	*validp = pos;
	return 0;
}
