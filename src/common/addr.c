/*
 * addr.c: RFC 5321 paths and mailboxes, domain names, CIDR networks and
 * socket address helpers; the contract is include/addr.h.
 *
 * Called by the SMTP session (MAIL FROM / RCPT TO arguments), by the
 * configuration parser (domain and network lists, listen addresses) and by
 * delivery (routing by recipient domain). Everything here is a pure
 * function of its arguments (no I/O, no allocation), so it is unit-tested
 * and fuzzed directly.
 *
 * Relay safety: '%' and '!' are ordinary local-part characters, never
 * routing syntax, and a source route (RFC 5321 4.1.2, appendix C) is either
 * refused or dropped (3.6.1 lets a server ignore it), so the only
 * destination of a mailbox is the domain after its '@'. A quoted local part
 * may contain '@' ("user@host"@example.org): it is still a local part of
 * example.org and is kept with its quotes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "utf8.h"

/* Longest address literal body we hand to inet_pton: "IPv6:" plus the
 * longest textual IPv6 address, with room to spare. */
#define LITERAL_MAX 64

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static unsigned char to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive comparison of n octets, independent of locale. */
static int ascii_caseeq(const void *a, const char *b, size_t n)
{
	const unsigned char *x = a;
	size_t i;

	for (i = 0; i < n; i++)
		if (to_lower(x[i]) != to_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* RFC 5322 3.2.3 atext: the octets of an unquoted local part. */
static int is_atext(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* An octet >= 0x80 at *pp: refused without SMTPUTF8 (RFC 6531 3.3),
 * otherwise it must start a well-formed UTF-8 sequence (utf8.c: no C1
 * controls, surrogates or overlong forms), which is skipped. */
static enum addr_error skip_8bit(const unsigned char **pp, const unsigned char *e, int flags,
                                 enum addr_error bad)
{
	size_t n;

	if (!(flags & ADDR_ALLOW_UTF8))
		return ADDR_ERR_8BIT;
	n = utf8_seq(*pp, e);
	if (n == 0)
		return bad;
	*pp += n;
	return ADDR_OK;
}

/* Dot-string = Atom *("." Atom) (RFC 5321 4.1.2). Stops at the first octet
 * that cannot continue it; an empty atom (leading, trailing or doubled dot)
 * is an error. */
static enum addr_error scan_dotstring(const unsigned char **pp, const unsigned char *e, int flags)
{
	const unsigned char *p = *pp, *atom;
	enum addr_error err;

	for (;;) {
		atom = p;
		while (p < e) {
			if (*p >= 0x80) {
				if ((err = skip_8bit(&p, e, flags, ADDR_ERR_LOCAL)) != ADDR_OK)
					return err;
			} else if (is_atext(*p)) {
				p++;
			} else {
				break;
			}
		}
		if (p == atom)
			return ADDR_ERR_LOCAL;
		if (p < e && *p == '.') {
			p++;
			continue;
		}
		break;
	}
	*pp = p;
	return ADDR_OK;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE, with qtextSMTP %d32-33 /
 * %d35-91 / %d93-126 and quoted-pairSMTP "\" %d32-126 (RFC 5321 4.1.2);
 * UTF-8 is allowed in qtext with SMTPUTF8 (RFC 6531 3.3). *pp is at the
 * opening quote. */
static enum addr_error scan_quoted(const unsigned char **pp, const unsigned char *e, int flags)
{
	const unsigned char *p = *pp + 1;
	enum addr_error err;

	for (;;) {
		if (p >= e)
			return ADDR_ERR_LOCAL;
		if (*p == '"') {
			p++;
			break;
		}
		if (*p == '\\') {
			p++;
			if (p >= e)
				return ADDR_ERR_LOCAL;
			if (*p >= 0x80)
				return (flags & ADDR_ALLOW_UTF8) ? ADDR_ERR_LOCAL : ADDR_ERR_8BIT;
			if (*p < 32 || *p > 126)
				return ADDR_ERR_LOCAL;
			p++;
		} else if (*p >= 0x80) {
			if ((err = skip_8bit(&p, e, flags, ADDR_ERR_LOCAL)) != ADDR_OK)
				return err;
		} else if (*p < 32 || *p == 127) {
			return ADDR_ERR_LOCAL;
		} else {
			p++;
		}
	}
	*pp = p;
	return ADDR_OK;
}

/* address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]" (RFC 5321 4.1.3). Only the first two are
 * usable, so a general literal is refused; inet_pton() is the validator.
 * *pp is at the '['. */
static enum addr_error scan_literal(const unsigned char **pp, const unsigned char *e, int flags)
{
	const unsigned char *p = *pp + 1, *body = p;
	char buf[LITERAL_MAX + 1];
	unsigned char bin[16];
	size_t n;

	/* dcontent = %d33-90 / %d94-126 */
	while (p < e && *p >= 33 && *p <= 126 && *p != '[' && *p != '\\' && *p != ']')
		p++;
	if (p < e && *p >= 0x80 && !(flags & ADDR_ALLOW_UTF8))
		return ADDR_ERR_8BIT;
	if (p >= e || *p != ']')
		return ADDR_ERR_DOMAIN;
	if (!(flags & ADDR_ALLOW_LITERAL))
		return ADDR_ERR_LITERAL;
	n = (size_t)(p - body);
	if (n == 0 || n > LITERAL_MAX)
		return ADDR_ERR_DOMAIN;
	memcpy(buf, body, n);
	buf[n] = '\0';
	/* The tag "IPv6:" is an ABNF string, so case-insensitive. */
	if (n > 5 && ascii_caseeq(buf, "IPv6:", 5)) {
		if (inet_pton(AF_INET6, buf + 5, bin) != 1)
			return ADDR_ERR_DOMAIN;
	} else if (inet_pton(AF_INET, buf, bin) != 1) {
		return ADDR_ERR_DOMAIN;
	}
	*pp = p + 1;
	return ADDR_OK;
}

/* Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 4.1.2): labels of letters, digits and inner hyphens, 1-63
 * octets (RFC 1035 2.3.4), at most ADDR_DOMAIN_MAX in all. One trailing dot
 * is accepted and left out of *dlen. The last label may not be all digits
 * (RFC 3696 2), so "user@192.0.2.1" cannot pass for a literal. With
 * ADDR_ALLOW_UTF8 UTF-8 octets count as letters (U-labels, RFC 6531 3.3).
 * Stops at the first octet that cannot continue the domain. */
static enum addr_error scan_domain(const unsigned char **pp, const unsigned char *e, int flags,
                                   size_t *dlen, int *literal)
{
	const unsigned char *p = *pp, *start = *pp, *label, *dend;
	enum addr_error err;
	int numeric;

	*literal = 0;
	if (p < e && *p == '[') {
		if ((err = scan_literal(&p, e, flags)) != ADDR_OK)
			return err;
		*literal = 1;
		*dlen = (size_t)(p - start);
		*pp = p;
		return ADDR_OK;
	}
	for (;;) {
		label = p;
		numeric = 1;
		while (p < e) {
			if (*p >= 0x80) {
				if ((err = skip_8bit(&p, e, flags, ADDR_ERR_DOMAIN)) != ADDR_OK)
					return err;
				numeric = 0;
			} else if (is_alnum(*p)) {
				if (!is_digit(*p))
					numeric = 0;
				p++;
			} else if (*p == '-') {
				if (p == label)
					return ADDR_ERR_DOMAIN;
				numeric = 0;
				p++;
			} else {
				break;
			}
		}
		if (p == label || p[-1] == '-' || p - label > 63)
			return ADDR_ERR_DOMAIN;
		if (p < e && *p == '.' && p + 1 < e &&
		    (p[1] >= 0x80 || is_alnum(p[1]) || p[1] == '-')) {
			p++;
			continue;
		}
		break;
	}
	if (numeric)
		return ADDR_ERR_DOMAIN;
	dend = p;
	if (p < e && *p == '.')
		p++;
	if ((size_t)(dend - start) > ADDR_DOMAIN_MAX)
		return ADDR_ERR_TOOLONG;
	*dlen = (size_t)(dend - start);
	*pp = p;
	return ADDR_OK;
}

/* Where a path may stop: '>' when it began with '<'; otherwise (bracket-less
 * tolerance) the end of the input or the space before ESMTP parameters. */
static int at_path_end(const unsigned char *p, const unsigned char *e, int bracket)
{
	if (bracket)
		return p < e && *p == '>';
	return p >= e || *p == ' ' || *p == '\r';
}

/* A-d-l = At-domain *( "," At-domain ) ":" (RFC 5321 4.1.2). *pp is at the
 * first '@'. The route is checked, then dropped. */
static enum addr_error scan_route(const unsigned char **pp, const unsigned char *e, int flags)
{
	const unsigned char *p = *pp;
	enum addr_error err;
	size_t dlen;
	int lit;

	for (;;) {
		if (p >= e || *p != '@')
			return ADDR_ERR_SYNTAX;
		p++;
		if ((err = scan_domain(&p, e, flags, &dlen, &lit)) != ADDR_OK)
			return err;
		if (p < e && *p == ',') {
			p++;
			continue;
		}
		if (p < e && *p == ':') {
			p++;
			break;
		}
		return ADDR_ERR_SYNTAX;
	}
	*pp = p;
	return ADDR_OK;
}

static int has_8bit(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80)
			return 1;
	return 0;
}

enum addr_error addr_parse_path(const char *s, size_t len, int flags, struct mailaddr *out,
                                const char **end)
{
	const unsigned char *start = (const unsigned char *)s, *e, *p, *local, *dom;
	size_t llen, dlen, i, pathlen;
	enum addr_error err;
	int bracket = 0, quoted, literal;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return ADDR_ERR_SYNTAX;
	p = start;
	e = start + len;
	if (p < e && *p == '<') {
		bracket = 1;
		p++;
	} else if (!(flags & ADDR_ALLOW_NOBRACKETS)) {
		return ADDR_ERR_NOBRACKET;
	}

	/* Reverse-path "<>" (RFC 5321 4.1.1.2, 6.1: bounces and DSNs). */
	if (bracket && p < e && *p == '>') {
		if (!(flags & ADDR_ALLOW_NULL))
			return ADDR_ERR_NULL;
		out->is_null = 1;
		p++;
		goto follow;
	}

	if (p < e && *p == '@') {
		if (!(flags & ADDR_ALLOW_ROUTE))
			return ADDR_ERR_ROUTE;
		if ((err = scan_route(&p, e, flags)) != ADDR_OK)
			return err;
		out->had_route = 1;
	}

	local = p;
	quoted = p < e && *p == '"';
	err = quoted ? scan_quoted(&p, e, flags) : scan_dotstring(&p, e, flags);
	if (err != ADDR_OK)
		return err;
	llen = (size_t)(p - local);

	if (p >= e || *p != '@') {
		/* RFC 5321 4.1.1.3: "<Postmaster>" without a domain, any case. */
		if (!quoted && !out->had_route && llen == 10 &&
		    ascii_caseeq(local, "postmaster", 10) && at_path_end(p, e, bracket)) {
			if (!(flags & ADDR_ALLOW_POSTMASTER))
				return ADDR_ERR_DOMAIN;
			out->is_postmaster = 1;
			if (bracket)
				p++;
			goto follow;
		}
		if (p >= e || at_path_end(p, e, bracket) || (!bracket && *p == '>'))
			return ADDR_ERR_DOMAIN;
		return ADDR_ERR_LOCAL;
	}
	if (llen > ADDR_LOCAL_MAX)
		return ADDR_ERR_TOOLONG;
	p++;

	dom = p;
	if ((err = scan_domain(&p, e, flags, &dlen, &literal)) != ADDR_OK)
		return err;
	if (!at_path_end(p, e, bracket)) {
		if (bracket ? p >= e : *p == '>')
			return ADDR_ERR_NOBRACKET;
		if (*p >= 0x80 && !(flags & ADDR_ALLOW_UTF8))
			return ADDR_ERR_8BIT;
		return ADDR_ERR_DOMAIN;
	}
	/* RFC 5321 4.5.3.1.3: 256 octets including the punctuation. A
	 * bracket-less path is counted as if it had its brackets. */
	pathlen = (size_t)(p - start) + (bracket ? 1 : 2);
	if (pathlen > ADDR_PATH_MAX)
		return ADDR_ERR_TOOLONG;

	memcpy(out->local, local, llen);
	out->local[llen] = '\0';
	for (i = 0; i < dlen; i++)
		out->domain[i] = literal ? (char)dom[i] : (char)to_lower(dom[i]);
	out->domain[dlen] = '\0';
	out->is_literal = literal;
	out->is_utf8 = has_8bit(local, llen) || has_8bit(dom, dlen);
	if (bracket)
		p++;

follow:
	/* After the path: the end of the argument, or SP before ESMTP
	 * parameters (RFC 5321 4.1.1.2). A CR is tolerated for callers that
	 * pass the line with its CR LF. */
	if (p < e && *p != ' ' && *p != '\r')
		return ADDR_ERR_SYNTAX;
	if (end)
		*end = (const char *)p;
	return ADDR_OK;
}

const char *addr_strerror(enum addr_error e)
{
	switch (e) {
	case ADDR_OK:
		return "valid address";
	case ADDR_ERR_SYNTAX:
		return "syntax error in address";
	case ADDR_ERR_NOBRACKET:
		return "address must be enclosed in <>";
	case ADDR_ERR_LOCAL:
		return "malformed local part";
	case ADDR_ERR_DOMAIN:
		return "missing or malformed domain";
	case ADDR_ERR_TOOLONG:
		return "address too long";
	case ADDR_ERR_NULL:
		return "null address not allowed here";
	case ADDR_ERR_LITERAL:
		return "address literals not accepted";
	case ADDR_ERR_ROUTE:
		return "source routes not accepted";
	case ADDR_ERR_8BIT:
		return "8-bit address without SMTPUTF8";
	}
	return "unknown address error";
}

size_t addr_format(const struct mailaddr *a, char *out, size_t size)
{
	int n;

	if (a->is_null)
		n = snprintf(out, size, "%s", "");
	else if (a->is_postmaster)
		n = snprintf(out, size, "%s", "postmaster");
	else
		n = snprintf(out, size, "%s@%s", a->local, a->domain);
	return n < 0 ? 0 : (size_t)n;
}

int addr_domain_valid(const char *d, int allow_literal)
{
	const unsigned char *p, *e;
	size_t dlen;
	int lit;

	if (d == NULL)
		return 0;
	p = (const unsigned char *)d;
	e = p + strlen(d);
	if (scan_domain(&p, e, allow_literal ? ADDR_ALLOW_LITERAL : 0, &dlen, &lit) != ADDR_OK)
		return 0;
	return p == e;
}

int addr_domain_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	if (la != lb)
		return 0;
	for (i = 0; i < la; i++)
		if (to_lower((unsigned char)a[i]) != to_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Length of a name without one trailing dot (the root label). */
static size_t name_len(const char *s)
{
	size_t n = strlen(s);

	return n > 1 && s[n - 1] == '.' ? n - 1 : n;
}

static int same_chars(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (to_lower((unsigned char)a[i]) != to_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

int addr_domain_match(const char *key, const char *domain, enum addr_match_rule rule)
{
	if (key == NULL || domain == NULL)
		return 0;
	size_t kl = name_len(key), dl = name_len(domain);
	if (kl == 0 || dl == 0)
		return 0;
	if (key[0] != '.' || kl == 1 || rule == ADDR_MATCH_EXACT)
		return kl == dl && same_chars(key, domain, kl) ? ADDR_MATCH_SAME : 0;
	/* ".example.com": the parent itself, under one rule only. */
	if (rule == ADDR_MATCH_WITH_SUBDOMAINS && kl - 1 == dl && same_chars(key + 1, domain, dl))
		return ADDR_MATCH_SAME;
	/* A name below it: the key, dot included, ends the domain, so
	 * "badexample.com" is not below ".example.com". */
	if (dl > kl && same_chars(domain + dl - kl, key, kl))
		return ADDR_MATCH_PARENT;
	return 0;
}

int addr_split(const char *addr, char *local, size_t lsize, char *domain, size_t dsize)
{
	const char *p, *at = NULL;
	size_t llen, dlen, i;
	int inq = 0;

	for (p = addr; *p != '\0'; p++) {
		if (inq) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				inq = 0;
		} else if (*p == '"') {
			inq = 1;
		} else if (*p == '@') {
			at = p;
		}
	}
	if (at == NULL || at[1] == '\0')
		return -1;
	llen = (size_t)(at - addr);
	dlen = strlen(at + 1);
	if (llen >= lsize || dlen >= dsize)
		return -1;
	memcpy(local, addr, llen);
	local[llen] = '\0';
	/* An address literal keeps its case, as in struct mailaddr. */
	for (i = 0; i < dlen; i++)
		domain[i] = at[1] == '[' ? at[1 + i] : (char)to_lower((unsigned char)at[1 + i]);
	domain[dlen] = '\0';
	return 0;
}

/* ::ffff:a.b.c.d (RFC 4291 2.5.5.2) */
static int is_v4mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

static void mask_host_bits(uint8_t *a, size_t nbytes, int bits)
{
	size_t i;

	for (i = 0; i < nbytes; i++) {
		if (bits >= 8) {
			bits -= 8;
		} else {
			a[i] &= (uint8_t)(0xff00u >> bits);
			bits = 0;
		}
	}
}

static int prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

int cidr_parse(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash, *q;
	struct cidr c;
	size_t alen;
	int max;

	if (s == NULL)
		return -1;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(&c, 0, sizeof(c));
	if (strchr(buf, ':') != NULL) {
		if (inet_pton(AF_INET6, buf, c.addr) != 1)
			return -1;
		c.family = AF_INET6;
		max = 128;
	} else {
		if (inet_pton(AF_INET, buf, c.addr) != 1)
			return -1;
		c.family = AF_INET;
		max = 32;
	}
	c.bits = max;
	if (slash) {
		q = slash + 1;
		if (*q == '\0' || strlen(q) > 3)
			return -1;
		c.bits = 0;
		for (; *q != '\0'; q++) {
			if (!is_digit((unsigned char)*q))
				return -1;
			c.bits = c.bits * 10 + (*q - '0');
		}
		if (c.bits > max)
			return -1;
	}
	/* A network inside ::ffff:0:0/96 is an IPv4 network: store it so,
	 * since client addresses are compared in their IPv4 form. */
	if (c.family == AF_INET6 && c.bits >= 96 && is_v4mapped(c.addr)) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.bits -= 96;
	}
	/* "192.0.2.1/24" means the network 192.0.2.0/24. */
	mask_host_bits(c.addr, c.family == AF_INET ? 4 : 16, c.bits);
	*out = c;
	return 0;
}

/* The client address in canonical form: IPv4 for AF_INET and for an
 * IPv4-mapped AF_INET6 address (a dual-stack listener). */
static int client_addr(const struct sockaddr *sa, uint8_t *a)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		memcpy(a, &sin->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (is_v4mapped(sin6->sin6_addr.s6_addr)) {
			memcpy(a, sin6->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(a, sin6->sin6_addr.s6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

int cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	uint8_t a[16];

	if (c == NULL || client_addr(sa, a) != c->family)
		return 0;
	return prefix_eq(a, c->addr, c->bits);
}

int cidr_match_list(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cidr_match(&list[i], sa))
			return 1;
	return 0;
}

void cidr_format(const struct cidr *c, char *out, size_t size)
{
	char buf[INET6_ADDRSTRLEN];

	if (size == 0)
		return;
	if ((c->family != AF_INET && c->family != AF_INET6) ||
	    inet_ntop(c->family, c->addr, buf, sizeof(buf)) == NULL) {
		out[0] = '\0';
		return;
	}
	snprintf(out, size, "%s/%d", buf, c->bits);
}

const char *sockaddr_host(const struct sockaddr *sa, char *out, size_t size)
{
	char buf[INET6_ADDRSTRLEN];
	uint8_t a[16];
	int family;

	if (size == 0)
		return out;
	family = client_addr(sa, a);
	if (family < 0 || inet_ntop(family, a, buf, sizeof(buf)) == NULL)
		snprintf(buf, sizeof(buf), "%s", "unknown");
	snprintf(out, size, "%s", buf);
	return out;
}

unsigned sockaddr_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}

/* A TCP port to listen on: 1-65535 in decimal, nothing else. */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		if (!is_digit((unsigned char)*s) || n >= 5)
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (n == 0 || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int sockaddr_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_storage st;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&st;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&st;
	char host[INET6_ADDRSTRLEN + 1];
	const char *hend, *port;
	uint16_t pnum;
	size_t hlen;
	int v6;

	if (s == NULL)
		return -1;
	if (s[0] == '[') {
		/* IPv6 needs brackets, as in a URL (RFC 3986 3.2.2). */
		hend = strchr(s, ']');
		if (hend == NULL || hend[1] != ':')
			return -1;
		s++;
		port = hend + 2;
		v6 = 1;
	} else {
		hend = strrchr(s, ':');
		if (hend == NULL)
			return -1;
		port = hend + 1;
		v6 = 0;
	}
	hlen = (size_t)(hend - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (parse_port(port, &pnum) != 0)
		return -1;
	memset(&st, 0, sizeof(st));
	if (v6) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(pnum);
		*len = sizeof(*sin6);
	} else {
		if (strcmp(host, "*") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(pnum);
		*len = sizeof(*sin);
	}
	*ss = st;
	return 0;
}
