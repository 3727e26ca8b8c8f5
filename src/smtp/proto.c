/*
 * proto.c: the text of the outbound SMTP/LMTP dialogue for the one client
 * (client.c), its owners (deliver/remote.c, smtpd/verify.c) and tests: the
 * reply parser (RFC 5321 4.2, which LMTP takes over: RFC 2033 4), EHLO
 * extension parsing, dot-stuffing and the text of local failures. No I/O
 * and no state beyond the caller's structs, so what a hostile server
 * sends can be fuzzed here (t/fuzz/fuzz_smtp_reply.c).
 *
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                Reply-code [ SP textstring ] CRLF
 *
 * Every line of a reply carries the same code. The caller splits lines at
 * LF (a bare LF is tolerated, as some servers send one); a CR or NUL left
 * inside a line is not a reply, and other control octets in the text kept
 * for logs and DSNs become '?'.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_proto.h"
#include "util.h"

void smtp_reply_init(struct smtp_reply *rp)
{
	memset(rp, 0, sizeof(*rp));
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The first line, for logs and DSNs: control octets neutralised. */
static void keep_text(char *out, size_t size, const char *line, size_t len)
{
	if (len >= size)
		len = size - 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[len] = '\0';
}

int smtp_reply_line(struct smtp_reply *rp, const char *line, size_t len)
{
	/* RFC 5321 4.2: "NNN", "NNN text" or "NNN-text"; the first digit is
	 * 2 to 5. */
	if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) || !is_digit(line[2]))
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	if (memchr(line, '\r', len) != NULL || memchr(line, '\0', len) != NULL)
		return -1;
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (rp->lines == 0) {
		rp->code = code;
		keep_text(rp->text, sizeof(rp->text), line, len);
	} else if (code != rp->code) {
		return -1;
	} else if (len > 4) {
		size_t l = strlen(rp->ext), n = len - 4;
		if (l + n + 2 <= sizeof(rp->ext)) {
			memcpy(rp->ext + l, line + 4, n);
			rp->ext[l + n] = '\n';
			rp->ext[l + n + 1] = '\0';
		}
	}
	if (++rp->lines > SMTP_REPLY_LINES_MAX)
		return -1;
	return len > 3 && line[3] == '-' ? 0 : 1;
}

void smtp_caps_parse(const char *ext, struct smtp_caps *cp)
{
	memset(cp, 0, sizeof(*cp));
	const char *p = ext;
	while (*p) {
		size_t n = strcspn(p, "\n");
		size_t k = strcspn(p, " \n");
		char kw[32];
		if (k < sizeof(kw)) {
			memcpy(kw, p, k);
			kw[k] = '\0';
			if (ascii_strcasecmp(kw, "PIPELINING") == 0) {
				cp->pipelining = 1;
			} else if (ascii_strcasecmp(kw, "8BITMIME") == 0) {
				cp->eightbit = 1;
			} else if (ascii_strcasecmp(kw, "STARTTLS") == 0) {
				cp->starttls = 1;
			} else if (ascii_strcasecmp(kw, "DSN") == 0) {
				cp->dsn = 1; /* RFC 3461 */
			} else if (ascii_strcasecmp(kw, "SMTPUTF8") == 0) {
				cp->smtputf8 = 1; /* parameters ignored (RFC 6531 3.1) */
			} else if (ascii_strcasecmp(kw, "SIZE") == 0) {
				/* RFC 1870: "SIZE" or "SIZE <max>"; 0 or
				 * junk means no fixed limit. */
				cp->size = 1;
				cp->size_max = 0;
				if (k < n && p[k] == ' ') {
					char num[24];
					size_t dl = 0;
					while (k + 1 + dl < n && dl < sizeof(num) - 1 &&
					       is_digit(p[k + 1 + dl])) {
						num[dl] = p[k + 1 + dl];
						dl++;
					}
					num[dl] = '\0';
					if (dl > 0 && dl < 20)
						cp->size_max = strtoull(num, NULL, 10);
				}
			}
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}

size_t smtp_dotstuff(const char *in, size_t len, char *out, int *bol)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (*bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		*bol = in[i] == '\n';
	}
	return o;
}

void smtp_local_reply(char *buf, size_t len, int code, const char *enh, const char *fmt, ...)
{
	int n = snprintf(buf, len, "%d %s ", code, enh);
	if (n < 0 || (size_t)n >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
}
