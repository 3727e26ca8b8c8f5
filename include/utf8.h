/*
 * utf8.h: well-formed UTF-8 (RFC 3629) and internationalised domain names
 * (IDNA, RFC 5890) for SMTPUTF8 (RFC 6531).
 *
 * utf8.c is pure (no I/O, no allocation): the one validator of UTF-8 in
 * addresses, used by the address parser (addr.c) and delivery, unit-tested
 * and fuzzed. idn.c wraps libidn2: the A-label form of a domain, which is
 * what DNS lookups use and what configured domains are compared in.
 */
#ifndef TEMPOMX_UTF8_H
#define TEMPOMX_UTF8_H

#include <stddef.h>

/* Length (2 to 4) of the well-formed UTF-8 sequence of a non-ASCII
 * character at p, or 0 when p[0] is ASCII or p does not start one. e is
 * the end of the input. Refused (RFC 3629 3): stray continuation octets,
 * 0xc0, 0xc1 and 0xf5..0xff, overlong forms, surrogates (U+D800..DFFF),
 * code points above U+10FFFF, a sequence cut short or with a bad
 * continuation octet; also the C1 controls U+0080..U+009F, which RFC 6532
 * 3.1 (UTF8-non-ascii) leaves to RFC 5198 and no address may carry. */
size_t utf8_seq(const unsigned char *p, const unsigned char *e);

/* 1 when the n octets at p are ASCII, or ASCII mixed with well-formed
 * non-ASCII characters (utf8_seq); 0 otherwise. */
int utf8_valid(const void *p, size_t n);

/* 1 when a NUL-terminated string has an octet >= 0x80. */
int utf8_has_8bit(const char *s);

/* The A-label form of a domain (RFC 5890 2.3.2.1): an all-ASCII name is
 * copied lower-cased; one with U-labels is converted with libidn2 (UTS 46
 * non-transitional mapping, so "Bücher" and "bücher" are one name) to
 * "xn--" labels. One trailing dot is dropped, an address literal
 * ("[192.0.2.1]") is copied as it is. Returns 0, or -1 when the name is
 * not a valid IDN or does not fit (out is then ""). */
int idn_to_ascii(const char *domain, char *out, size_t size);

#endif
