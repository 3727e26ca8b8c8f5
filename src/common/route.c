/*
 * route.c: choose the transport of a recipient domain.
 *
 * The table is the "transport" setting: items "domain=transport"
 * separated by white space or commas (repeated lines add up). A key that
 * starts with a dot matches every subdomain, not the domain itself (as in
 * Postfix's transport(5); addr_domain_match in addr.c). An address literal
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]") is matched as an address: an
 * entry written as a literal matches the same address however it is
 * spelt, and never as a subdomain. Local domains not in the table go to
 * their Maildir; anything else takes "default_transport".
 * Called by delivery.c for each recipient, and by smtpd's recipient
 * verification for its target (same syntax); the table is parsed on each
 * lookup, which is cheap for the few entries a small site has.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "route.h"
#include "utf8.h"
#include "util.h"

static int parse_port(const char *s, unsigned *port)
{
	char *end;
	if (*s == '\0')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535 || !isdigit((unsigned char)*s))
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* "[host]:port", "[host]", "host:port" or "host"; *bracketed tells. */
static int parse_hostport(const char *s, struct route *r, int *bracketed, char *err, size_t errlen)
{
	const char *hs = s, *he, *rest;
	*bracketed = 0;
	if (*s == '[') {
		he = strchr(s, ']');
		if (he == NULL) {
			snprintf(err, errlen, "missing ']'");
			return -1;
		}
		hs = s + 1;
		rest = he + 1;
		*bracketed = 1;
	} else {
		he = strrchr(s, ':');
		if (he == NULL)
			he = s + strlen(s);
		rest = he;
	}
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(r->host)) {
		snprintf(err, errlen, "bad host");
		return -1;
	}
	for (size_t i = 0; i < hl; i++) {
		unsigned char c = (unsigned char)hs[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_') {
			snprintf(err, errlen, "bad character in host");
			return -1;
		}
	}
	memcpy(r->host, hs, hl);
	r->host[hl] = '\0';
	if (*rest == ':') {
		if (parse_port(rest + 1, &r->port) < 0) {
			snprintf(err, errlen, "bad port");
			return -1;
		}
	} else if (*rest != '\0') {
		snprintf(err, errlen, "junk after the host");
		return -1;
	}
	return 0;
}

int route_literal(const char *domain, char *host, size_t hostlen, int *v6)
{
	char body[ROUTE_LITERAL_MAX];
	unsigned char bin[16];
	size_t len = strlen(domain);
	if (len == 0 || domain[0] != '[')
		return 0;
	if (len < 3 || domain[len - 1] != ']' || len - 2 >= sizeof(body))
		return -1;
	memcpy(body, domain + 1, len - 2);
	body[len - 2] = '\0';
	/* RFC 5321 4.1.3: the "IPv6:" tag is case-insensitive; anything
	 * else must be a dotted quad (a general literal is not usable). */
	int six = ascii_strncasecmp(body, "IPv6:", 5) == 0;
	int af = six ? AF_INET6 : AF_INET;
	const char *num = six ? body + 5 : body;
	if (inet_pton(af, num, bin) != 1)
		return -1;
	if (inet_ntop(af, bin, host, (socklen_t)hostlen) == NULL)
		return -1;
	if (v6)
		*v6 = six;
	return 1;
}

int route_parse(const char *text, struct route *r, char *err, size_t errlen)
{
	int br;
	memset(r, 0, sizeof(*r));
	r->port = 25;
	if (strcmp(text, "mx") == 0) {
		r->kind = ROUTE_MX;
		return 0;
	}
	if (strcmp(text, "smtp:") == 0 || strncmp(text, "smtp::", 6) == 0) {
		/* No host: the recipient domain's own MX, on another port. */
		if (text[5] == ':' && parse_port(text + 6, &r->port) < 0) {
			snprintf(err, errlen, "bad port");
			return -1;
		}
		r->kind = ROUTE_MX;
		return 0;
	}
	if (strcmp(text, "maildir") == 0 || strncmp(text, "maildir:", 8) == 0) {
		r->kind = ROUTE_MAILDIR;
		return 0;
	}
	if (strncmp(text, "smtp:", 5) == 0) {
		if (parse_hostport(text + 5, r, &br, err, errlen) < 0)
			return -1;
		r->kind = br ? ROUTE_SMTP : ROUTE_SMTP_MX;
		return 0;
	}
	if (strncmp(text, "lmtp:unix:", 10) == 0) {
		const char *p = text + 10;
		if (*p != '/' || strlen(p) >= sizeof(r->host)) {
			snprintf(err, errlen, "lmtp:unix: needs an absolute path");
			return -1;
		}
		r->kind = ROUTE_LMTP_UNIX;
		snprintf(r->host, sizeof(r->host), "%s", p);
		r->port = 0;
		return 0;
	}
	if (strncmp(text, "lmtp:", 5) == 0) {
		r->port = 24;
		if (parse_hostport(text + 5, r, &br, err, errlen) < 0)
			return -1;
		r->kind = ROUTE_LMTP;
		return 0;
	}
	snprintf(err, errlen, "unknown transport '%.64s'", text);
	return -1;
}

/* Walk the table; fn sees each item, stops the walk by returning 1. */
static int table_walk(const char *table, int (*fn)(void *, const char *, size_t, const char *),
                      void *arg, char *err, size_t errlen)
{
	const char *p = table;
	char item[600];
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		size_t n = strcspn(p, " \t,\n");
		if (n >= sizeof(item)) {
			snprintf(err, errlen, "transport item too long");
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		p += n;
		char *eq = strchr(item, '=');
		if (eq == NULL || eq == item || eq[1] == '\0') {
			snprintf(err, errlen, "transport item '%.64s' is not domain=transport",
			         item);
			return -1;
		}
		*eq = '\0';
		int r = fn(arg, item, (size_t)(eq - item), eq + 1);
		if (r != 0)
			return r;
	}
	return 0;
}

struct match {
	const char *domain;
	int literal; /* 1: an address literal (canonical in lit), -1: a bad one */
	char lit[ROUTE_LITERAL_MAX];
	size_t best; /* length of the best key so far, 0 = none */
	char transport[512];
	int exact;
	char *err;
	size_t errlen;
};

static int match_item(void *arg, const char *key, size_t klen, const char *transport)
{
	struct match *m = arg;
	struct route r;
	if (route_parse(transport, &r, m->err, m->errlen) < 0)
		return -1;
	int hit = 0;
	char klit[ROUTE_LITERAL_MAX];
	if (m->literal) {
		/* The same address however it is spelt, never as a subdomain
		 * of a ".parent" key. */
		if (m->literal > 0)
			hit = route_literal(key, klit, sizeof(klit), NULL) == 1 &&
			      strcmp(klit, m->lit) == 0;
		else
			hit = strcmp(key, m->domain) == 0;
		klen = (size_t)-1;
	} else {
		/* Postfix transport(5): ".example.com" is every name below
		 * example.com, not example.com itself. */
		int how = addr_domain_match(key, m->domain, ADDR_MATCH_SUBDOMAINS);
		hit = how != 0;
		if (how == ADDR_MATCH_SAME)
			klen = (size_t)-1; /* an exact entry beats any parent entry */
	}
	if (hit && klen > m->best) {
		m->best = klen;
		snprintf(m->transport, sizeof(m->transport), "%s", transport);
	}
	return 0;
}

int route_lookup(const struct config *cf, const char *domain, struct route *r, char *err,
                 size_t errlen)
{
	/* A U-label domain (SMTPUTF8) is matched in its A-label form, the
	 * form local_domains are kept in (conf.c); transport keys are
	 * written as A-labels. */
	char ace[ADDR_DOMAIN_MAX + 1];
	if (utf8_has_8bit(domain) && idn_to_ascii(domain, ace, sizeof(ace)) == 0)
		domain = ace;
	struct match m = {.domain = domain, .err = err, .errlen = errlen};
	m.literal = route_literal(domain, m.lit, sizeof(m.lit), NULL);
	if (cf->transport && table_walk(cf->transport, match_item, &m, err, errlen) < 0)
		return -1;
	if (m.best > 0)
		return route_parse(m.transport, r, err, errlen);
	if (conf_is_local_domain(cf, domain)) {
		memset(r, 0, sizeof(*r));
		r->kind = ROUTE_MAILDIR;
		return 0;
	}
	return route_parse(cf->default_transport ? cf->default_transport : "mx", r, err, errlen);
}

static int check_item(void *arg, const char *key, size_t klen, const char *transport)
{
	struct match *m = arg;
	struct route r;
	(void)key;
	(void)klen;
	return route_parse(transport, &r, m->err, m->errlen) < 0 ? -1 : 0;
}

int route_check(const struct config *cf, char *err, size_t errlen)
{
	struct match m = {.err = err, .errlen = errlen};
	struct route r;
	if (cf->transport && table_walk(cf->transport, check_item, &m, err, errlen) < 0)
		return -1;
	if (route_tls_policy(cf->tls_policy, NULL, NULL, err, errlen) < 0)
		return -1;
	return route_parse(cf->default_transport ? cf->default_transport : "mx", &r, err, errlen);
}

int route_equal(const struct route *a, const struct route *b)
{
	return a->kind == b->kind && a->port == b->port && strcmp(a->host, b->host) == 0;
}

void route_format(const struct route *r, char *buf, size_t len)
{
	switch (r->kind) {
	case ROUTE_MAILDIR:
		snprintf(buf, len, "maildir");
		break;
	case ROUTE_MX:
		if (r->port == 25)
			snprintf(buf, len, "mx");
		else
			snprintf(buf, len, "smtp::%u", r->port);
		break;
	case ROUTE_SMTP_MX:
		snprintf(buf, len, "smtp:%s:%u", r->host, r->port);
		break;
	case ROUTE_SMTP:
		snprintf(buf, len, "smtp:[%s]:%u", r->host, r->port);
		break;
	case ROUTE_LMTP:
		snprintf(buf, len, "lmtp:[%s]:%u", r->host, r->port);
		break;
	case ROUTE_LMTP_UNIX:
		snprintf(buf, len, "lmtp:unix:%s", r->host);
		break;
	}
}

static int tls_policy_word(const char *w, size_t n)
{
	static const char *const names[] = {"none", "may", "encrypt", "verify"};
	for (int i = 0; i < 4; i++)
		if (strlen(names[i]) == n && strncmp(w, names[i], n) == 0)
			return i;
	return -1;
}

int route_tls_policy(const char *setting, const char *domain, const char *host, char *err,
                     size_t errlen)
{
	const char *p = setting ? setting : "";
	int def = -1, best = -1;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		size_t n = strcspn(p, " \t,");
		const char *eq = memchr(p, '=', n);
		if (eq == NULL) {
			if (def >= 0 || (def = tls_policy_word(p, n)) < 0) {
				snprintf(err, errlen,
				         "tls_policy: '%.*s' is not none, may, encrypt or verify "
				         "(once, before the exceptions)",
				         (int)(n < 64 ? n : 64), p);
				return -1;
			}
		} else {
			int pol = tls_policy_word(eq + 1, n - (size_t)(eq + 1 - p));
			size_t kl = (size_t)(eq - p);
			if (pol < 0 || kl == 0) {
				snprintf(err, errlen, "tls_policy: bad item '%.*s'",
				         (int)(n < 64 ? n : 64), p);
				return -1;
			}
			/* A key is one name, domain or MX host: a leading dot
			 * has no meaning here (ADDR_MATCH_EXACT). */
			char key[ADDR_DOMAIN_MAX + 2];
			if (kl < sizeof(key)) {
				memcpy(key, p, kl);
				key[kl] = '\0';
				if (addr_domain_match(key, domain, ADDR_MATCH_EXACT) ||
				    addr_domain_match(key, host, ADDR_MATCH_EXACT))
					best = pol;
			}
		}
		p += n;
	}
	if (best >= 0)
		return best;
	return def >= 0 ? def : 1; /* may */
}
