/*
 * maildir_path.c: the Maildir of an address, from the "maildir" template.
 *
 * Owns the expansion rules of include/maildir_path.h. Called by delivery
 * (the Maildir it writes to) and by smtpd's local-user check (the Maildir
 * that must exist), so both always mean the same directory. Pure: no
 * I/O, thread-safe.
 */
#include <stdio.h>
#include <string.h>

#include "maildir_path.h"
#include "utf8.h"

/* Append src[0..n) to out at *pos, lower-cased, with '/' and a '.' that
 * would begin a path component made safe. */
static int expand_part(char *out, size_t size, size_t *pos, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = src[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '/')
			c = '_';
		if (c == '.' && (*pos == 0 || out[*pos - 1] == '/'))
			c = '_';
		if (*pos + 1 >= size)
			return -1;
		out[(*pos)++] = c;
	}
	return 0;
}

int maildir_expand(const char *tmpl, const char *addr, char *out, size_t size, char *err,
                   size_t errlen)
{
	const char *at = strrchr(addr, '@');
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);
	const char *domain = at ? at + 1 : "";
	size_t pos = 0;
	char ace[256];

	/* A U-label domain (SMTPUTF8) is named by its A-label, so that
	 * "bücher.example" and "xn--bcher-kva.example" are one directory. The
	 * local part is kept as received: UTF-8 octets as they are (no
	 * Unicode case folding or normalisation), ASCII letters lower-cased. */
	if (utf8_has_8bit(domain) && idn_to_ascii(domain, ace, sizeof(ace)) == 0)
		domain = ace;

	if (size == 0) {
		snprintf(err, errlen, "no room for the path");
		return -1;
	}
	if (tmpl[0] != '/') {
		snprintf(err, errlen, "maildir template '%s' is not an absolute path", tmpl);
		return -1;
	}
	for (const char *p = tmpl; *p; p++) {
		int r = 0;
		if (*p != '%') {
			if (pos + 1 >= size)
				r = -1;
			else
				out[pos++] = *p;
		} else {
			p++;
			switch (*p) {
			case 'u':
				if (llen == 0) {
					snprintf(err, errlen, "empty local part in '%s'", addr);
					return -1;
				}
				r = expand_part(out, size, &pos, addr, llen);
				break;
			case 'd':
				if (*domain == '\0') {
					snprintf(err, errlen, "no domain in '%s'", addr);
					return -1;
				}
				r = expand_part(out, size, &pos, domain, strlen(domain));
				break;
			case 'a':
				if (*addr == '\0') {
					snprintf(err, errlen, "empty address");
					return -1;
				}
				r = expand_part(out, size, &pos, addr, llen);
				if (r == 0 && at != NULL) {
					r = expand_part(out, size, &pos, "@", 1);
					if (r == 0)
						r = expand_part(out, size, &pos, domain,
						                strlen(domain));
				}
				break;
			case '%':
				if (pos + 1 >= size)
					r = -1;
				else
					out[pos++] = '%';
				break;
			default:
				snprintf(err, errlen, "bad escape in maildir template '%s'", tmpl);
				return -1;
			}
		}
		if (r < 0) {
			snprintf(err, errlen, "maildir path for '%s' is too long", addr);
			return -1;
		}
	}
	while (pos > 1 && out[pos - 1] == '/')
		pos--;
	out[pos] = '\0';
	/* The template itself could hold "/../"; an address cannot add one
	 * (a component never starts with '.' from an address). Refuse both
	 * kinds of dot component so the path means what it says. */
	for (const char *c = out; c; c = strchr(c + 1, '/')) {
		const char *s = c + 1;
		size_t n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
			snprintf(err, errlen, "maildir path '%s' has a '.' or '..' component", out);
			return -1;
		}
	}
	return 0;
}
