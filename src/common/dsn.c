/*
 * dsn.c: Delivery Status Notification parameters (RFC 3461 section 4)
 * and the xtext encoding they use.
 *
 * The one parser of RET, ENVID, NOTIFY and ORCPT (smtpd's command.c
 * hands each MAIL and RCPT parameter here), what delivery asks about a
 * recipient's NOTIFY (dsn_wants), and the parameters the SMTP client
 * sends on to a next hop that offers DSN. Strict: xtext with upper-case
 * hex only, decoded values printable US-ASCII (RFC 3461 4.2, 4.4), the
 * length limits of 4.2 and 4.4, NEVER alone, no parameter or NOTIFY
 * element twice. Pure functions; see include/dsn.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "util.h"

static int keyeq(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && ascii_strncasecmp(p, word, len) == 0;
}

static int hexdigit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 3461 4: upper case only */
}

static int is_xchar(unsigned char c)
{
	return c >= '!' && c <= '~' && c != '+' && c != '=';
}

int xtext_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			int hi = i + 1 < len ? hexdigit((unsigned char)in[i + 1]) : -1;
			int lo = i + 2 < len ? hexdigit((unsigned char)in[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (!is_xchar(c)) {
			return -1;
		}
		/* RFC 3461 4.2, 4.4: printable (graphic and space) US-ASCII. */
		if (c < 0x20 || c > 0x7e)
			return -1;
		if (n + 1 >= size)
			return -1;
		out[n++] = (char)c;
	}
	if (size == 0)
		return -1;
	out[n] = '\0';
	return (int)n;
}

size_t xtext_encode(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = 0, n = 0;
	int cut = size == 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char e[3];
		size_t el = 1;
		if (is_xchar(*p)) {
			e[0] = (char)*p;
		} else {
			e[0] = '+';
			e[1] = hex[*p >> 4];
			e[2] = hex[*p & 0xf];
			el = 3;
		}
		need += el;
		if (!cut && n + el < size) {
			memcpy(out + n, e, el);
			n += el;
		} else {
			cut = 1; /* cut here: a shorter encoding after it would mislead */
		}
	}
	if (size > 0)
		out[n] = '\0';
	return need;
}

static const struct {
	const char *name;
	unsigned bit;
} notify_names[] = {
    {"SUCCESS", DSN_NOTIFY_SUCCESS},
    {"FAILURE", DSN_NOTIFY_FAILURE},
    {"DELAY", DSN_NOTIFY_DELAY},
};

int dsn_notify_parse(const char *s, size_t len, unsigned *out)
{
	if (keyeq(s, len, "NEVER")) {
		*out = DSN_NOTIFY_NEVER;
		return 0;
	}
	unsigned v = 0;
	size_t i = 0;
	for (;;) {
		size_t j = i;
		while (j < len && s[j] != ',')
			j++;
		unsigned bit = 0;
		for (size_t k = 0; k < sizeof(notify_names) / sizeof(notify_names[0]); k++)
			if (keyeq(s + i, j - i, notify_names[k].name))
				bit = notify_names[k].bit;
		/* NEVER in a list, an unknown or empty element, a repeat. */
		if (bit == 0 || (v & bit) != 0)
			return -1;
		v |= bit;
		if (j == len)
			break;
		i = j + 1;
	}
	*out = v;
	return 0;
}

void dsn_notify_format(unsigned notify, char *buf, size_t size)
{
	if (size == 0)
		return;
	buf[0] = '\0';
	if (notify & DSN_NOTIFY_NEVER) {
		snprintf(buf, size, "NEVER");
		return;
	}
	size_t n = 0;
	for (size_t k = 0; k < sizeof(notify_names) / sizeof(notify_names[0]); k++) {
		if (!(notify & notify_names[k].bit))
			continue;
		int w = snprintf(buf + n, size - n, "%s%s", n ? "," : "", notify_names[k].name);
		if (w < 0 || (size_t)w >= size - n)
			return;
		n += (size_t)w;
	}
}

enum dsn_param_result dsn_mail_param(struct dsn_mail *m, const char *key, size_t keylen,
                                     const char *val, size_t vallen)
{
	if (keyeq(key, keylen, "RET")) {
		if (m->ret != DSN_RET_NONE)
			return DSN_PARAM_DUP;
		if (val == NULL)
			return DSN_PARAM_BAD;
		if (keyeq(val, vallen, "FULL"))
			m->ret = DSN_RET_FULL;
		else if (keyeq(val, vallen, "HDRS"))
			m->ret = DSN_RET_HDRS;
		else
			return DSN_PARAM_BAD;
		return DSN_PARAM_OK;
	}
	if (keyeq(key, keylen, "ENVID")) {
		if (m->has_envid)
			return DSN_PARAM_DUP;
		if (val == NULL || vallen == 0 || vallen > DSN_ENVID_MAX)
			return DSN_PARAM_BAD;
		if (xtext_decode(val, vallen, m->envid, sizeof(m->envid)) < 0)
			return DSN_PARAM_BAD;
		m->has_envid = 1;
		return DSN_PARAM_OK;
	}
	return DSN_PARAM_NOT_OURS;
}

/* RFC 5321 4.1.2 atext, for ORCPT's addr-type (an atom). */
static int is_atext(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

enum dsn_param_result dsn_rcpt_param(struct dsn_rcpt *r, const char *key, size_t keylen,
                                     const char *val, size_t vallen)
{
	if (keyeq(key, keylen, "NOTIFY")) {
		if (r->notify != 0)
			return DSN_PARAM_DUP;
		unsigned v;
		if (val == NULL || vallen == 0 || dsn_notify_parse(val, vallen, &v) < 0)
			return DSN_PARAM_BAD;
		r->notify = v;
		return DSN_PARAM_OK;
	}
	if (keyeq(key, keylen, "ORCPT")) {
		if (r->has_orcpt)
			return DSN_PARAM_DUP;
		if (val == NULL || vallen == 0 || vallen > DSN_ORCPT_MAX)
			return DSN_PARAM_BAD;
		const char *semi = memchr(val, ';', vallen);
		if (semi == NULL || semi == val)
			return DSN_PARAM_BAD;
		size_t tl = (size_t)(semi - val);
		for (size_t i = 0; i < tl; i++)
			if (!is_atext((unsigned char)val[i]))
				return DSN_PARAM_BAD;
		memcpy(r->orcpt, val, tl + 1);
		if (xtext_decode(semi + 1, vallen - tl - 1, r->orcpt + tl + 1,
		                 sizeof(r->orcpt) - tl - 1) < 0) {
			r->orcpt[0] = '\0';
			return DSN_PARAM_BAD;
		}
		r->has_orcpt = 1;
		return DSN_PARAM_OK;
	}
	return DSN_PARAM_NOT_OURS;
}

const char *dsn_mail_given(const struct dsn_mail *m)
{
	if (m->ret != DSN_RET_NONE)
		return "RET";
	return m->has_envid ? "ENVID" : NULL;
}

const char *dsn_rcpt_given(const struct dsn_rcpt *r)
{
	if (r->notify != 0)
		return "NOTIFY";
	return r->has_orcpt ? "ORCPT" : NULL;
}

int dsn_wants(const char *notify, unsigned what)
{
	unsigned v = 0;
	if (notify == NULL || dsn_notify_parse(notify, strlen(notify), &v) < 0 || v == 0)
		return what == DSN_NOTIFY_FAILURE || what == DSN_NOTIFY_DELAY;
	return (v & what) != 0;
}

/* Append " KEY=" and the xtext of value to a malloc'd string. */
static void add_xtext(char **acc, const char *key, const char *prefix, const char *value)
{
	size_t need = xtext_encode(value, NULL, 0);
	char *enc = xmalloc(need + 1);
	xtext_encode(value, enc, need + 1);
	char *n;
	xasprintf(&n, "%s %s=%s%s", *acc ? *acc : "", key, prefix, enc);
	free(enc);
	free(*acc);
	*acc = n;
}

char *dsn_mail_params(const char *ret, const char *envid)
{
	char *acc = NULL;
	if (ret && (ascii_strcasecmp(ret, "FULL") == 0 || ascii_strcasecmp(ret, "HDRS") == 0))
		xasprintf(&acc, " RET=%s", ascii_strcasecmp(ret, "FULL") == 0 ? "FULL" : "HDRS");
	if (envid && *envid)
		add_xtext(&acc, "ENVID", "", envid);
	return acc;
}

char *dsn_rcpt_params(const char *notify, const char *orcpt)
{
	char *acc = NULL;
	unsigned v;
	if (notify && dsn_notify_parse(notify, strlen(notify), &v) == 0) {
		char buf[32];
		dsn_notify_format(v, buf, sizeof(buf));
		xasprintf(&acc, " NOTIFY=%s", buf);
	}
	const char *semi = orcpt ? strchr(orcpt, ';') : NULL;
	if (semi && semi > orcpt) {
		char *type = xstrndup(orcpt, (size_t)(semi - orcpt + 1));
		add_xtext(&acc, "ORCPT", type, semi + 1);
		free(type);
	}
	return acc;
}
