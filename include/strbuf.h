/*
 * strbuf.h: one growable string buffer for text built piece by piece
 * (configuration values, "tempomxd -n" output, bounce reports).
 *
 * The bytes are always NUL-terminated and s is never NULL once anything,
 * even zero bytes, has been added. Growth is checked for size_t overflow;
 * running out of memory or past SIZE_MAX ends the process (fatalx), like
 * every allocation in util.c, so callers have no error to handle.
 * Defined in src/common/strbuf.c (libtmx_base).
 */
#ifndef TEMPOMX_STRBUF_H
#define TEMPOMX_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *s;    /* the text, NUL-terminated; NULL before the first add */
	size_t len; /* bytes in s, without the NUL */
	size_t cap; /* bytes allocated */
};

#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Append n bytes (they may hold NULs). */
void strbuf_add(struct strbuf *b, const void *p, size_t n);
/* Append a C string. */
void strbuf_str(struct strbuf *b, const char *s);
/* Append a string literal, its length counted by the compiler. */
#define strbuf_lit(b, lit) strbuf_add((b), (lit), sizeof(lit) - 1)
/* Append formatted text. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empty the text, keeping the memory. */
void strbuf_reset(struct strbuf *b);
/* Hand the text to the caller (never NULL; free() it), its length in
 * *len when len is not NULL; b is empty afterwards. */
char *strbuf_detach(struct strbuf *b, size_t *len);
/* Free the memory; b is empty afterwards. */
void strbuf_free(struct strbuf *b);

#endif
