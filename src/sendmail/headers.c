/*
 * headers.c: the header section of a message given to tempomx-sendmail.
 *
 * With -t the recipients come from the To, Cc and Bcc fields (RFC 5322
 * 3.6.3), which may be folded over several lines and hold display names,
 * quoted strings, comments and groups; Bcc fields are removed from the
 * message in every case, so no recipient learns of the blind copies.
 * A message without From, Date or Message-ID gets them, as RFC 5322 3.6
 * requires of what is sent. The header section ends at the first empty
 * line (LF or CR LF line ends are both taken as given); the body is not
 * touched. The input is a local user's text: nothing here trusts its
 * lengths or its syntax.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "headers.h"
#include "util.h"

void strvec_add(struct strvec *sv, const char *s)
{
	sv->v = xreallocarray(sv->v, sv->n + 1, sizeof(*sv->v));
	sv->v[sv->n++] = xstrdup(s);
}

void strvec_free(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

/* One address of a list: the part in <>, or the text without comments
 * and white space. */
static void add_token(const char *s, size_t len, struct strvec *out)
{
	char *buf = xmalloc(len + 1);
	size_t n = 0;
	const char *lt = NULL, *gt = NULL;
	int quote = 0, paren = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (quote) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				quote = 0;
		} else if (paren) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				paren++;
			else if (c == ')')
				paren--;
		} else if (c == '"') {
			quote = 1;
		} else if (c == '(') {
			paren = 1;
		} else if (c == '<' && lt == NULL) {
			lt = s + i;
		} else if (c == '>' && lt != NULL && gt == NULL) {
			gt = s + i;
		}
	}
	if (lt != NULL && gt != NULL) {
		for (const char *p = lt + 1; p < gt; p++)
			if (*p != ' ' && *p != '\t')
				buf[n++] = *p;
	} else {
		/* A bare address: drop comments and blanks, keep quotes. */
		quote = paren = 0;
		for (size_t i = 0; i < len; i++) {
			char c = s[i];
			if (paren) {
				if (c == '(')
					paren++;
				else if (c == ')')
					paren--;
				continue;
			}
			if (c == '"')
				quote = !quote;
			else if (c == '(' && !quote) {
				paren = 1;
				continue;
			}
			if (!quote && (c == ' ' || c == '\t'))
				continue;
			buf[n++] = c;
		}
	}
	buf[n] = '\0';
	if (n > 0)
		strvec_add(out, buf);
	free(buf);
}

void headers_addresses(const char *list, struct strvec *out)
{
	size_t len = strlen(list), start = 0;
	int quote = 0, paren = 0, angle = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? list[i] : ',';
		if (quote) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				quote = 0;
			continue;
		}
		if (paren) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				paren++;
			else if (c == ')')
				paren--;
			continue;
		}
		if (c == '"') {
			quote = 1;
		} else if (c == '(') {
			paren = 1;
		} else if (c == '<') {
			angle = 1;
		} else if (c == '>') {
			angle = 0;
		} else if (c == ':' && !angle) {
			/* "group-name:" starts a group: the name is no address. */
			start = i + 1;
		} else if ((c == ',' || c == ';') && !angle) {
			add_token(list + start, i - start, out);
			start = i + 1;
		}
	}
}

/* Length of the line at p (its end included), within end. */
static size_t line_len(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
}

static int is_blank_line(const char *p, size_t l)
{
	return (l == 1 && p[0] == '\n') || (l == 2 && p[0] == '\r' && p[1] == '\n') || l == 0;
}

/* 1 if the field at p is called name (followed by ':'). */
static int field_is(const char *p, size_t l, const char *name)
{
	size_t n = strlen(name);
	if (l <= n || ascii_strncasecmp(p, name, n) != 0)
		return 0;
	size_t i = n;
	while (i < l && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < l && p[i] == ':';
}

/* The unfolded value of the field at p..p+total (its continuation lines
 * included), after the colon. */
static char *field_value(const char *p, size_t total)
{
	const char *colon = memchr(p, ':', total);
	char *v = xmalloc(total + 1);
	size_t n = 0;
	for (const char *q = colon ? colon + 1 : p + total; q < p + total; q++)
		v[n++] = *q == '\r' || *q == '\n' ? ' ' : *q;
	v[n] = '\0';
	return v;
}

char *headers_rewrite(const char *msg, size_t len, const char *sender, const char *fullname,
                      const char *hostname, struct strvec *rcpts, size_t *outlen)
{
	const char *end = msg + len, *p = msg;
	int has_from = 0, has_date = 0, has_msgid = 0;
	/* Where the header section ends (the body starts). */
	const char *body = msg;
	while (body < end) {
		size_t l = line_len(body, end);
		if (is_blank_line(body, l))
			break;
		/* A first line that is no field at all: no header section. */
		if (body == msg && !memchr(body, ':', l))
			break;
		body += l;
	}
	/* Room for the fields added: a quoted name may double in length. */
	char *out = xmalloc(len + 256 + 2 * (fullname ? strlen(fullname) : 0) +
	                    (sender ? strlen(sender) : 0) + 2 * strlen(hostname));
	size_t n = 0;
	/* First pass: what the header section has, and -t's recipients. */
	for (p = msg; p < body;) {
		size_t l = line_len(p, body), total = l;
		while (p + total < body && (p[total] == ' ' || p[total] == '\t'))
			total += line_len(p + total, body);
		has_from |= field_is(p, l, "From");
		has_date |= field_is(p, l, "Date");
		has_msgid |= field_is(p, l, "Message-ID");
		if (rcpts != NULL &&
		    (field_is(p, l, "To") || field_is(p, l, "Cc") || field_is(p, l, "Bcc"))) {
			char *v = field_value(p, total);
			headers_addresses(v, rcpts);
			free(v);
		}
		p += total;
	}
	const char *nlstr = "\n";
	if (body > msg && body[-1] == '\n' && body - msg >= 2 && body[-2] == '\r')
		nlstr = "\r\n";
	if (!has_from) {
		const char *s = sender && sender[0] ? sender : "MAILER-DAEMON";
		if (fullname != NULL && fullname[0] != '\0') {
			/* The name as a quoted string: quotes and backslashes
			 * in it escaped, line ends dropped. */
			n += (size_t)sprintf(out + n, "From: \"");
			for (const char *f = fullname; *f; f++) {
				if (*f == '\r' || *f == '\n')
					continue;
				if (*f == '"' || *f == '\\')
					out[n++] = '\\';
				out[n++] = *f;
			}
			n += (size_t)sprintf(out + n, "\" <%s>%s", s, nlstr);
		} else {
			n += (size_t)sprintf(out + n, "From: %s%s", s, nlstr);
		}
	}
	if (!has_date) {
		char date[64];
		rfc5322_date(wall_usec() / 1000000, date, sizeof(date));
		n += (size_t)sprintf(out + n, "Date: %s%s", date, nlstr);
	}
	if (!has_msgid)
		n += (size_t)sprintf(out + n, "Message-ID: <%lld.%ld@%s>%s", (long long)wall_usec(),
		                     (long)getpid(), hostname, nlstr);
	/* No header section at all: ours ends before the text. */
	if (body == msg)
		n += (size_t)sprintf(out + n, "%s", nlstr);
	/* Second pass: copy, without the Bcc fields. */
	for (p = msg; p < body;) {
		size_t l = line_len(p, body), total = l;
		while (p + total < body && (p[total] == ' ' || p[total] == '\t'))
			total += line_len(p + total, body);
		if (!field_is(p, l, "Bcc")) {
			memcpy(out + n, p, total);
			n += total;
		}
		p += total;
	}
	memcpy(out + n, body, (size_t)(end - body));
	n += (size_t)(end - body);
	*outlen = n;
	return out;
}
