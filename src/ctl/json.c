/*
 * json.c: the little JSON tempomxctl writes (queue -j: one object per
 * line, as postqueue -j does). Strings from the envelope are octets as
 * the client sent them: valid UTF-8 is kept as it is, any other octet is
 * written as \u00XX, so every line is valid JSON whatever the input.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned min;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	unsigned cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

void json_string(FILE *fp, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	fputc('"', fp);
	while (*s) {
		size_t n;
		if (*s == '"' || *s == '\\') {
			fputc('\\', fp);
			fputc(*s++, fp);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(fp, "\\u%04x", *s++);
		} else if (*s < 0x80) {
			fputc(*s++, fp);
		} else if ((n = utf8_len(s)) > 0) {
			fwrite(s, 1, n, fp);
			s += n;
		} else {
			fprintf(fp, "\\u%04x", *s++);
		}
	}
	fputc('"', fp);
}

static void json_key(FILE *fp, int *first, const char *key)
{
	if (!*first)
		fputc(',', fp);
	*first = 0;
	json_string(fp, key);
	fputc(':', fp);
}

void json_key_str(FILE *fp, int *first, const char *key, const char *value)
{
	json_key(fp, first, key);
	if (value == NULL)
		fputs("null", fp);
	else
		json_string(fp, value);
}

void json_key_int(FILE *fp, int *first, const char *key, long long value)
{
	json_key(fp, first, key);
	fprintf(fp, "%lld", value);
}
