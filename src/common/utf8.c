/*
 * utf8.c: the validator of UTF-8 in envelope addresses (SMTPUTF8, RFC
 * 6531 3.3: UTF8-non-ascii of RFC 6532 3.1 in atext, qtext and U-labels);
 * the contract is include/utf8.h.
 *
 * Pure functions of their arguments, so the address parser (addr.c) can
 * call them from its own pure code, and the unit tests and fuzz targets
 * drive them directly. The table of well-formed sequences is RFC 3629
 * section 4; the checks below are that table written as arithmetic.
 */
#include <string.h>

#include "utf8.h"

size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
	unsigned long cp;
	size_t n, i;

	if (p >= e)
		return 0;
	unsigned char c = p[0];
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0fu;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07u;
	} else {
		/* ASCII, a continuation octet, 0xc0/0xc1 (always overlong),
		 * 0xf5..0xff (beyond U+10FFFF). */
		return 0;
	}
	if ((size_t)(e - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (n == 2 && cp < 0xa0)
		return 0; /* C1 control (0xc2 0x80..0x9f) */
	if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0; /* overlong, or a surrogate */
	if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0; /* overlong, or beyond Unicode */
	return n;
}

int utf8_valid(const void *data, size_t len)
{
	const unsigned char *p = data, *e = p + len;

	while (p < e) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = utf8_seq(p, e);
		if (n == 0)
			return 0;
		p += n;
	}
	return 1;
}

int utf8_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}
