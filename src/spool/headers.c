/*
 * headers.c: the header fields tempomx adds to each message it delivers,
 * X-Tempomx-Scan and X-Tempomx-Class, made from the envelope.
 *
 * Why here and at delivery: a version 2 spool file holds the message as
 * received and is never rewritten, so the fields are not stored in it;
 * the delivery child puts them in front of the message as it reads it
 * (SMTP, LMTP and Maildir alike). One place makes them, so there is one
 * X-Tempomx-Class field per message, and it says what the envelope says.
 * The scanner of version 1 wrote them into the message itself; this
 * function gives nothing for such an envelope, nor for the delivery
 * reports tempomx makes itself. Called by the delivery
 * child (src/deliver/delivery.c).
 *
 * The values come from the envelope: words chosen by tempomx, but also
 * the virus name from libclamav and the host name. They are reduced to
 * printable ASCII and cut to a bounded length, so a field can neither
 * break the header section nor pass RFC 5322's 998-octet line limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "util.h"

/* Longest text taken from one envelope value. */
#define HEADERS_VALUE_MAX 200

static void clean(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	for (; src != NULL && *src != '\0' && n + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;
		dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[n] = '\0';
}

/* The scan result as the field says it: "clean", "not fully scanned
 * (NAME)", "infected NAME". */
static void scan_words(char *dst, size_t size, const char *result)
{
	char v[HEADERS_VALUE_MAX];
	if (strncmp(result, "unscanned", 9) == 0) {
		const char *why = result[9] == ' ' ? result + 10 : "";
		clean(v, sizeof(v), why[0] ? why : "error");
		snprintf(dst, size, "not fully scanned (%s)", v);
		return;
	}
	clean(dst, size, result);
}

char *envelope_headers(const struct envelope *env, const char *eol, size_t *lenp)
{
	char scan[HEADERS_VALUE_MAX + 32], info[HEADERS_VALUE_MAX], cls[64], verdict[64];
	char hist[32], reasons[HEADERS_VALUE_MAX];
	char *s = NULL, *c = NULL, *out;

	/* Reports tempomx made itself (bounce-of) are neither classified
	 * nor scanned. */
	if (env->version < 2 || env->bounce_of != NULL) {
		*lenp = 0;
		return xstrdup("");
	}
	if (env->scan_result != NULL && env->scan_info != NULL) {
		scan_words(scan, sizeof(scan), env->scan_result);
		clean(info, sizeof(info), env->scan_info);
		xasprintf(&s, "X-Tempomx-Scan: %s; %s%s", scan, info, eol);
	}
	clean(cls, sizeof(cls), env->scan_class ? env->scan_class : msg_class_name(env->class));
	clean(verdict, sizeof(verdict), env->verdict ? env->verdict : "unclassified");
	clean(hist, sizeof(hist), env->history ? env->history : "");
	clean(reasons, sizeof(reasons), env->reasons ? env->reasons : "");
	xasprintf(&c, "X-Tempomx-Class: %s; verdict=%s; score=%d%s%s%s%s%s", cls, verdict,
	          env->score, hist[0] ? "; history=" : "", hist, reasons[0] ? "; reasons=" : "",
	          reasons, eol);
	int n = xasprintf(&out, "%s%s", s ? s : "", c);
	free(s);
	free(c);
	*lenp = (size_t)n;
	return out;
}
