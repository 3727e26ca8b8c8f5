/*
 * test_addr.c: unit tests for src/common/addr.c: RFC 5321 paths (a table
 * of valid paths with the expected parts, a table of invalid ones with the
 * expected error, covering the relay tricks), domains, CIDR networks and
 * listen addresses.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

#define NUL ADDR_ALLOW_NULL
#define PM ADDR_ALLOW_POSTMASTER
#define LIT ADDR_ALLOW_LITERAL
#define U8 ADDR_ALLOW_UTF8
#define RT ADDR_ALLOW_ROUTE
#define NB ADDR_ALLOW_NOBRACKETS

/* Expected attributes of a parsed path. */
#define A_NULL 0x01
#define A_LIT 0x02
#define A_PM 0x04
#define A_ROUTE 0x08
#define A_UTF8 0x10

/* An input with its exact length, so it may hold a NUL. */
#define IN(x) x, sizeof(x) - 1

struct valid_case {
	const char *in;
	size_t len;
	int flags;
	const char *local;
	const char *domain;
	int attrs;
	const char *rest; /* what follows the path */
};

static const struct valid_case valid[] = {
    {IN("<user@example.com>"), 0, "user", "example.com", 0, ""},
    {IN("<User.Name+tag@Example.COM>"), 0, "User.Name+tag", "example.com", 0, ""},
    /* '%' and '!' are plain local-part characters, never routing. */
    {IN("<user%other.example@example.com>"), 0, "user%other.example", "example.com", 0, ""},
    {IN("<other.example!user@example.com>"), 0, "other.example!user", "example.com", 0, ""},
    {IN("<a!b%c@example.com>"), 0, "a!b%c", "example.com", 0, ""},
    /* Quoted local parts are kept as given, quotes included; the domain
     * is the one after the quotes. */
    {IN("<\"user@other.example\"@example.com>"), 0, "\"user@other.example\"", "example.com", 0, ""},
    {IN("<\"john doe\"@example.com>"), 0, "\"john doe\"", "example.com", 0, ""},
    {IN("<\"a\\\"b\\\\c\"@example.com>"), 0, "\"a\\\"b\\\\c\"", "example.com", 0, ""},
    {IN("<\"<@x:y>\"@example.com>"), 0, "\"<@x:y>\"", "example.com", 0, ""},
    {IN("<\"\"@example.com>"), 0, "\"\"", "example.com", 0, ""},
    {IN("<!#$%&'*+-/=?^_`{|}~@example.com>"), 0, "!#$%&'*+-/=?^_`{|}~", "example.com", 0, ""},
    /* Domains: lower-cased, one trailing dot dropped. */
    {IN("<user@example.com.>"), 0, "user", "example.com", 0, ""},
    {IN("<USER@EXAMPLE.COM>"), 0, "USER", "example.com", 0, ""},
    {IN("<a@b-c.d--e.example>"), 0, "a", "b-c.d--e.example", 0, ""},
    {IN("<a@xn--bcher-kva.example>"), 0, "a", "xn--bcher-kva.example", 0, ""},
    {IN("<a@localhost>"), 0, "a", "localhost", 0, ""},
    {IN("<a@123.example>"), 0, "a", "123.example", 0, ""},
    {IN("<a@1example>"), 0, "a", "1example", 0, ""},
    /* Null path and postmaster. */
    {IN("<>"), NUL, "", "", A_NULL, ""},
    {IN("<> SIZE=100"), NUL, "", "", A_NULL, " SIZE=100"},
    {IN("<postmaster>"), PM, "", "", A_PM, ""},
    {IN("<PostMaster>"), PM, "", "", A_PM, ""},
    {IN("<Postmaster@Example.com>"), 0, "Postmaster", "example.com", 0, ""},
    {IN("postmaster"), PM | NB, "", "", A_PM, ""},
    /* ESMTP parameters follow after a space. */
    {IN("<user@example.com> SIZE=100 BODY=8BITMIME"), 0, "user", "example.com", 0,
     " SIZE=100 BODY=8BITMIME"},
    {IN("<user@example.com>\r\n"), 0, "user", "example.com", 0, "\r\n"},
    /* Source routes are dropped when allowed. */
    {IN("<@a.example,@b.example:user@c.example>"), RT, "user", "c.example", A_ROUTE, ""},
    {IN("<@relay.example:user%x@c.example> SIZE=1"), RT, "user%x", "c.example", A_ROUTE, " SIZE=1"},
    /* Bracket-less tolerance. */
    {IN("user@example.com"), NB, "user", "example.com", 0, ""},
    {IN("user@example.com SIZE=10"), NB, "user", "example.com", 0, " SIZE=10"},
    {IN("\"a b\"@example.com"), NB, "\"a b\"", "example.com", 0, ""},
    {IN("<user@example.com>"), NB, "user", "example.com", 0, ""},
    /* Address literals, kept as given. */
    {IN("<user@[192.0.2.1]>"), LIT, "user", "[192.0.2.1]", A_LIT, ""},
    {IN("<user@[IPv6:2001:DB8::1]>"), LIT, "user", "[IPv6:2001:DB8::1]", A_LIT, ""},
    {IN("<user@[ipv6:::1]>"), LIT, "user", "[ipv6:::1]", A_LIT, ""},
    {IN("<user@[IPv6:::ffff:192.0.2.1]>"), LIT, "user", "[IPv6:::ffff:192.0.2.1]", A_LIT, ""},
    {IN("<\"user@host\"@[192.0.2.1]>"), LIT, "\"user@host\"", "[192.0.2.1]", A_LIT, ""},
    /* UTF-8 with SMTPUTF8 (RFC 6531). */
    {IN("<j\xc3\xb6rg@B\xc3\xbc"
        "cher.Example>"),
     U8, "j\xc3\xb6rg",
     "b\xc3\xbc"
     "cher.example",
     A_UTF8, ""},
    {IN("<\"j\xc3\xb6rg x\"@example.com>"), U8, "\"j\xc3\xb6rg x\"", "example.com", A_UTF8, ""},
    {IN("<\xe2\x82\xac\xf0\x9f\x98\x80@example.com>"), U8, "\xe2\x82\xac\xf0\x9f\x98\x80",
     "example.com", A_UTF8, ""},
    {IN("<user@example.com>"), U8, "user", "example.com", 0, ""},
};

struct invalid_case {
	const char *in;
	size_t len;
	int flags;
	enum addr_error err;
};

static const struct invalid_case invalid[] = {
    /* Brackets. */
    {IN("user@example.com"), 0, ADDR_ERR_NOBRACKET},
    {IN(""), 0, ADDR_ERR_NOBRACKET},
    {IN("<user@example.com"), 0, ADDR_ERR_NOBRACKET},
    {IN("<user@example.com"), NB, ADDR_ERR_NOBRACKET},
    {IN("user@example.com>"), NB, ADDR_ERR_NOBRACKET},
    {IN("<user@example.com>x"), 0, ADDR_ERR_SYNTAX},
    {IN("<user@example.com>\0"), 0, ADDR_ERR_SYNTAX},
    {IN("<user@example.com>>"), 0, ADDR_ERR_SYNTAX},
    {IN("<<user@example.com>>"), 0, ADDR_ERR_LOCAL},
    /* Null path and postmaster where not allowed. */
    {IN("<>"), 0, ADDR_ERR_NULL},
    {IN("<>"), PM | LIT | RT | U8 | NB, ADDR_ERR_NULL},
    {IN("<postmaster>"), 0, ADDR_ERR_DOMAIN},
    {IN("<\"postmaster\">"), PM, ADDR_ERR_DOMAIN},
    {IN("<postmasterx>"), PM, ADDR_ERR_DOMAIN},
    {IN("<postmaster"), PM, ADDR_ERR_DOMAIN},
    {IN("<@a.example:postmaster>"), PM | RT, ADDR_ERR_DOMAIN},
    /* No domain: bang paths and percent hacks do not route. */
    {IN("<user>"), 0, ADDR_ERR_DOMAIN},
    {IN("<other.example!user>"), 0, ADDR_ERR_DOMAIN},
    {IN("other.example!user"), NB, ADDR_ERR_DOMAIN},
    {IN("<user%other.example>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@>"), 0, ADDR_ERR_DOMAIN},
    /* Source routes. */
    {IN("<@relay.example:user@example.com>"), 0, ADDR_ERR_ROUTE},
    {IN("<@a.example,@b.example:user@c.example>"), LIT | NB, ADDR_ERR_ROUTE},
    {IN("<@a.example user@b.example>"), RT, ADDR_ERR_SYNTAX},
    {IN("<@a.example,b.example:user@c.example>"), RT, ADDR_ERR_SYNTAX},
    {IN("<@:user@b.example>"), RT, ADDR_ERR_DOMAIN},
    {IN("<@a.example:>"), RT | NUL, ADDR_ERR_LOCAL},
    /* Local parts. */
    {IN("<.user@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<user.@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<us..er@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<us er@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("< user@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<us\ter@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<us\0er@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<us(er@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<us,er@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<\"unterminated@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<\"a\"b@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<\"a\x01\"@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<\"a\0\"@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<\"a\\\x01\"@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<\"a\r\n\"@example.com>"), 0, ADDR_ERR_LOCAL},
    {IN("<\"a\\"), 0, ADDR_ERR_LOCAL},
    /* Domains. */
    {IN("<user@example..com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@.example.com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@example.com..>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@.>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@-example.com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@example-.com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@example.-com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@exa_mple.com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@exa mple.com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@example.com >"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@exa\0mple.com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@example.com\r\n>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@a@example.com>"), 0, ADDR_ERR_DOMAIN},
    {IN("<\"user@host\"@>"), 0, ADDR_ERR_DOMAIN},
    /* A dotted quad is not a domain: no back door around literals. */
    {IN("<user@192.0.2.1>"), 0, ADDR_ERR_DOMAIN},
    {IN("<user@192.0.2.1>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@123>"), 0, ADDR_ERR_DOMAIN},
    /* Address literals. */
    {IN("<user@[192.0.2.1]>"), 0, ADDR_ERR_LITERAL},
    {IN("<user@[IPv6:::1]>"), NB | RT | U8, ADDR_ERR_LITERAL},
    {IN("<user@[192.0.2.256]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[192.0.2]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[IPv6:1::2::3]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[IPv6:]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[2001:db8::1]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[IPv6:192.0.2.1]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[x-tag:foo]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[IPv6:fe80::1%eth0]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[192.0.2.1>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[ 192.0.2.1]>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[192.0.2.1]x>"), LIT, ADDR_ERR_DOMAIN},
    {IN("<user@[192.0.2.1].example>"), LIT, ADDR_ERR_DOMAIN},
    /* 8-bit octets. */
    {IN("<j\xc3\xb6rg@example.com>"), 0, ADDR_ERR_8BIT},
    {IN("<user@b\xc3\xbc"
        "cher.example>"),
     NUL | PM | LIT | RT | NB, ADDR_ERR_8BIT},
    {IN("<\"\xc3\xb6\"@example.com>"), 0, ADDR_ERR_8BIT},
    {IN("<@r\xc3\xb6.example:user@example.com>"), RT, ADDR_ERR_8BIT},
    {IN("<user@[192.0.2.1\xc3\xb6]>"), LIT, ADDR_ERR_8BIT},
    {IN("<a\xff@example.com>"), U8, ADDR_ERR_LOCAL},
    {IN("<a\xc3@example.com>"), U8, ADDR_ERR_LOCAL},
    {IN("<a\xc0\x80@example.com>"), U8, ADDR_ERR_LOCAL},
    {IN("<a\xed\xa0\x80@example.com>"), U8, ADDR_ERR_LOCAL},
    {IN("<a\xc2\x85@example.com>"), U8, ADDR_ERR_LOCAL},
    {IN("<\"a\\\xc3\xb6\"@example.com>"), U8, ADDR_ERR_LOCAL},
    {IN("<a@b\xc3.example>"), U8, ADDR_ERR_DOMAIN},
};

Test(addr, valid_paths)
{
	struct mailaddr a;
	const char *end;
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		const struct valid_case *c = &valid[i];
		enum addr_error err = addr_parse_path(c->in, c->len, c->flags, &a, &end);

		cr_assert_eq(err, ADDR_OK, "valid[%zu] %s: %s", i, c->in, addr_strerror(err));
		cr_expect_str_eq(a.local, c->local, "valid[%zu] local", i);
		cr_expect_str_eq(a.domain, c->domain, "valid[%zu] domain", i);
		cr_expect_eq(a.is_null, !!(c->attrs & A_NULL), "valid[%zu] is_null", i);
		cr_expect_eq(a.is_literal, !!(c->attrs & A_LIT), "valid[%zu] is_literal", i);
		cr_expect_eq(a.is_postmaster, !!(c->attrs & A_PM), "valid[%zu] is_postmaster", i);
		cr_expect_eq(a.had_route, !!(c->attrs & A_ROUTE), "valid[%zu] had_route", i);
		cr_expect_eq(a.is_utf8, !!(c->attrs & A_UTF8), "valid[%zu] is_utf8", i);
		cr_expect_str_eq(end, c->rest, "valid[%zu] rest", i);
		cr_expect_eq((size_t)(end - c->in) + strlen(c->rest), c->len, "valid[%zu] end", i);
	}
}

Test(addr, invalid_paths)
{
	struct mailaddr a;
	const char *end = NULL;
	size_t i;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		const struct invalid_case *c = &invalid[i];
		enum addr_error err = addr_parse_path(c->in, c->len, c->flags, &a, &end);

		cr_expect_eq(err, c->err, "invalid[%zu] %s: got %d (%s), expected %d (%s)", i,
		             c->in, err, addr_strerror(err), c->err, addr_strerror(c->err));
	}
}

Test(addr, valid_paths_reparse_from_format)
{
	char buf[ADDR_PATH_MAX * 2 + 8], path[ADDR_PATH_MAX * 2 + 10];
	struct mailaddr a, b;
	size_t i, n;
	const char *end;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		const struct valid_case *c = &valid[i];

		cr_assert_eq(addr_parse_path(c->in, c->len, c->flags, &a, &end), ADDR_OK);
		n = addr_format(&a, buf, sizeof(buf));
		cr_assert_eq(n, strlen(buf));
		if (a.is_null) {
			cr_assert_str_eq(buf, "");
			continue;
		}
		if (a.is_postmaster) {
			cr_assert_str_eq(buf, "postmaster");
			continue;
		}
		snprintf(path, sizeof(path), "<%s>", buf);
		cr_assert_eq(addr_parse_path(path, strlen(path), c->flags, &b, &end), ADDR_OK,
		             "valid[%zu]: %s does not parse again", i, path);
		cr_assert_str_eq(a.local, b.local);
		cr_assert_str_eq(a.domain, b.domain);
	}
}

/* A path "<" local "@" domain ">" with parts of the given sizes; the
 * domain has labels of 59 or 60 letters. */
static size_t make_path(char *buf, size_t llen, size_t dlen)
{
	size_t n = 0, i;

	buf[n++] = '<';
	memset(buf + n, 'l', llen);
	n += llen;
	buf[n++] = '@';
	for (i = 0; i < dlen; i++)
		buf[n++] = ((i + 1) % 60 == 0 && i + 1 < dlen) ? '.' : 'd';
	buf[n++] = '>';
	buf[n] = '\0';
	return n;
}

Test(addr, length_limits)
{
	char buf[1200], d[400];
	struct mailaddr a;
	const char *end;
	size_t n;

	/* 64-octet local part, path of exactly 256 octets. */
	n = make_path(buf, 64, 189);
	cr_assert_eq(n, 256);
	cr_assert_eq(addr_parse_path(buf, n, 0, &a, &end), ADDR_OK);
	cr_assert_eq(strlen(a.local), 64);
	cr_assert_eq(strlen(a.domain), 189);

	n = make_path(buf, 64, 190);
	cr_assert_eq(n, 257);
	cr_assert_eq(addr_parse_path(buf, n, 0, &a, &end), ADDR_ERR_TOOLONG);

	n = make_path(buf, 65, 20);
	cr_assert_eq(addr_parse_path(buf, n, 0, &a, &end), ADDR_ERR_TOOLONG);

	/* A quoted local part counts with its quotes. */
	strcpy(buf, "<\"");
	memset(buf + 2, 'q', 62);
	strcpy(buf + 64, "\"@example.com>");
	cr_assert_eq(addr_parse_path(buf, strlen(buf), 0, &a, &end), ADDR_OK);
	strcpy(buf, "<\"");
	memset(buf + 2, 'q', 63);
	strcpy(buf + 65, "\"@example.com>");
	cr_assert_eq(addr_parse_path(buf, strlen(buf), 0, &a, &end), ADDR_ERR_TOOLONG);

	/* A bracket-less path is counted as if it had its brackets. */
	n = make_path(buf, 64, 189);
	buf[n - 1] = '\0';
	cr_assert_eq(addr_parse_path(buf + 1, n - 2, NB, &a, &end), ADDR_OK);
	n = make_path(buf, 64, 190);
	buf[n - 1] = '\0';
	cr_assert_eq(addr_parse_path(buf + 1, n - 2, NB, &a, &end), ADDR_ERR_TOOLONG);

	/* Labels: 63 octets are fine, 64 are not. */
	memset(d, 'x', 63);
	strcpy(d + 63, ".example");
	snprintf(buf, sizeof(buf), "<u@%s>", d);
	cr_assert_eq(addr_parse_path(buf, strlen(buf), 0, &a, &end), ADDR_OK);
	memset(d, 'x', 64);
	strcpy(d + 64, ".example");
	snprintf(buf, sizeof(buf), "<u@%s>", d);
	cr_assert_eq(addr_parse_path(buf, strlen(buf), 0, &a, &end), ADDR_ERR_DOMAIN);

	/* A huge input is refused, not overflowed. */
	memset(buf, 'a', sizeof(buf) - 1);
	buf[0] = '<';
	buf[sizeof(buf) - 1] = '\0';
	buf[600] = '@';
	cr_assert_eq(addr_parse_path(buf, strlen(buf), 0, &a, &end), ADDR_ERR_TOOLONG);
	buf[600] = 'a';
	buf[30] = '@';
	buf[sizeof(buf) - 2] = '>';
	cr_assert_neq(addr_parse_path(buf, strlen(buf), 0, &a, &end), ADDR_OK);
}

Test(addr, length_is_respected)
{
	struct mailaddr a;
	const char *end;

	/* Only len octets are read: the rest of the string is not there. */
	cr_assert_eq(addr_parse_path("<user@example.com>", 18, 0, &a, &end), ADDR_OK);
	cr_assert_eq(addr_parse_path("<user@example.com>", 17, 0, &a, &end), ADDR_ERR_NOBRACKET);
	cr_assert_eq(addr_parse_path("<user@example.com>", 0, 0, &a, &end), ADDR_ERR_NOBRACKET);
	cr_assert_eq(addr_parse_path("user@example.comXX", 16, NB, &a, &end), ADDR_OK);
	cr_assert_str_eq(a.domain, "example.com");
	cr_assert_eq(addr_parse_path("<\"abc\"@x.example>", 4, 0, &a, &end), ADDR_ERR_LOCAL);
	cr_assert_eq(addr_parse_path("<u@[192.0.2.1]>", 13, LIT, &a, &end), ADDR_ERR_DOMAIN);
}

Test(addr, strerror_texts)
{
	int e;

	for (e = ADDR_OK; e <= ADDR_ERR_8BIT; e++) {
		cr_assert_not_null(addr_strerror((enum addr_error)e));
		if (e > ADDR_OK)
			cr_assert_str_neq(addr_strerror((enum addr_error)e),
			                  addr_strerror((enum addr_error)(e - 1)));
	}
	cr_assert_not_null(addr_strerror((enum addr_error)99));
}

Test(addr, format)
{
	struct mailaddr a;
	char buf[ADDR_PATH_MAX * 2 + 8], small[6];
	const char *end;

	cr_assert_eq(addr_parse_path("<a@Example.COM>", 15, 0, &a, &end), ADDR_OK);
	cr_assert_eq(addr_format(&a, buf, sizeof(buf)), 13);
	cr_assert_str_eq(buf, "a@example.com");
	/* Truncated like snprintf, returning the full length. */
	cr_assert_eq(addr_format(&a, small, sizeof(small)), 13);
	cr_assert_str_eq(small, "a@exa");

	cr_assert_eq(addr_parse_path("<>", 2, NUL, &a, &end), ADDR_OK);
	cr_assert_eq(addr_format(&a, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(addr_parse_path("<POSTMASTER>", 12, PM, &a, &end), ADDR_OK);
	cr_assert_eq(addr_format(&a, buf, sizeof(buf)), 10);
	cr_assert_str_eq(buf, "postmaster");
}

Test(addr, domain_valid)
{
	static const struct {
		const char *d;
		int lit;
		int ok;
	} t[] = {
	    {"example.com", 0, 1},
	    {"example.com.", 0, 1},
	    {"EXAMPLE.com", 0, 1},
	    {"localhost", 0, 1},
	    {"a-b.c--d.example", 0, 1},
	    {"", 0, 0},
	    {".", 0, 0},
	    {"-a.example", 0, 0},
	    {"a-.example", 0, 0},
	    {"a..example", 0, 0},
	    {"example.com..", 0, 0},
	    {".example.com", 0, 0},
	    {"exa mple.com", 0, 0},
	    {"exa_mple.com", 0, 0},
	    {"example.com ", 0, 0},
	    {"192.0.2.1", 0, 0},
	    {"192.0.2.1", 1, 0},
	    {"[192.0.2.1]", 1, 1},
	    {"[192.0.2.1]", 0, 0},
	    {"[IPv6:2001:db8::1]", 1, 1},
	    {"[IPv6:2001:db8::1]", 0, 0},
	    {"[IPv6:2001:db8::1]x", 1, 0},
	    {"[192.0.2.1", 1, 0},
	    {"b\xc3\xbc"
	     "cher.example",
	     0, 0},
	    {"user@example.com", 0, 0},
	};
	char d[400];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_expect_eq(addr_domain_valid(t[i].d, t[i].lit), t[i].ok, "domain[%zu] \"%s\"", i,
		             t[i].d);
	cr_assert_eq(addr_domain_valid(NULL, 1), 0);

	/* 255 octets in all is the limit; a trailing dot is not counted. */
	make_path(d, 1, 255);
	d[strlen(d) - 1] = '\0';
	cr_assert_eq(strlen(d + 3), 255);
	cr_assert_eq(addr_domain_valid(d + 3, 0), 1);
	strcat(d, ".");
	cr_assert_eq(addr_domain_valid(d + 3, 0), 1);
	make_path(d, 1, 256);
	d[strlen(d) - 1] = '\0';
	cr_assert_eq(strlen(d + 3), 256);
	cr_assert_eq(addr_domain_valid(d + 3, 0), 0);
}

Test(addr, domain_eq)
{
	cr_assert(addr_domain_eq("Example.COM", "example.com"));
	cr_assert(addr_domain_eq("example.com.", "EXAMPLE.com"));
	cr_assert(addr_domain_eq("example.com.", "example.com."));
	cr_assert(!addr_domain_eq("example.com", "example.org"));
	cr_assert(!addr_domain_eq("example.com", "example.co"));
	cr_assert(!addr_domain_eq("example.com", "xexample.com"));
	cr_assert(!addr_domain_eq("example.com..", "example.com"));
	cr_assert(!addr_domain_eq("a.example.com", "example.com"));
}

Test(addr, split)
{
	char l[ADDR_LOCAL_MAX * 2 + 3], d[ADDR_DOMAIN_MAX + 1];

	cr_assert_eq(addr_split("user@Example.COM", l, sizeof(l), d, sizeof(d)), 0);
	cr_assert_str_eq(l, "user");
	cr_assert_str_eq(d, "example.com");
	cr_assert_eq(addr_split("\"a@b\"@Example.com", l, sizeof(l), d, sizeof(d)), 0);
	cr_assert_str_eq(l, "\"a@b\"");
	cr_assert_str_eq(d, "example.com");
	cr_assert_eq(addr_split("\"a\\\"@b\"@c.example", l, sizeof(l), d, sizeof(d)), 0);
	cr_assert_str_eq(l, "\"a\\\"@b\"");
	cr_assert_str_eq(d, "c.example");
	cr_assert_eq(addr_split("user%x@host.example", l, sizeof(l), d, sizeof(d)), 0);
	cr_assert_str_eq(l, "user%x");
	cr_assert_eq(addr_split("u@[IPv6:2001:DB8::1]", l, sizeof(l), d, sizeof(d)), 0);
	cr_assert_str_eq(d, "[IPv6:2001:DB8::1]");
	cr_assert_eq(addr_split("a@b@c.example", l, sizeof(l), d, sizeof(d)), 0);
	cr_assert_str_eq(l, "a@b");
	cr_assert_str_eq(d, "c.example");

	cr_assert_eq(addr_split("postmaster", l, sizeof(l), d, sizeof(d)), -1);
	cr_assert_eq(addr_split("user@", l, sizeof(l), d, sizeof(d)), -1);
	cr_assert_eq(addr_split("\"user@host\"", l, sizeof(l), d, sizeof(d)), -1);
	cr_assert_eq(addr_split("", l, sizeof(l), d, sizeof(d)), -1);
	cr_assert_eq(addr_split("user@example.com", l, 4, d, sizeof(d)), -1);
	cr_assert_eq(addr_split("user@example.com", l, sizeof(l), d, 11), -1);
	cr_assert_eq(addr_split("user@example.com", l, 5, d, 12), 0);
}

static struct sockaddr_storage sa4(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(25);
	cr_assert_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage sa6(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(587);
	cr_assert_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
	return ss;
}

static int matches(const char *net, const char *client)
{
	struct sockaddr_storage ss = strchr(client, ':') ? sa6(client) : sa4(client);
	struct cidr c;

	cr_assert_eq(cidr_parse(net, &c), 0, "%s does not parse", net);
	return cidr_match(&c, (struct sockaddr *)&ss);
}

Test(cidr, match_table)
{
	static const struct {
		const char *net, *client;
		int match;
	} t[] = {
	    {"192.0.2.0/24", "192.0.2.77", 1},
	    {"192.0.2.0/24", "192.0.2.0", 1},
	    {"192.0.2.0/24", "192.0.2.255", 1},
	    {"192.0.2.0/24", "192.0.3.1", 0},
	    {"192.0.2.0/23", "192.0.3.255", 1},
	    {"192.0.2.0/23", "192.0.4.0", 0},
	    {"192.0.2.1/24", "192.0.2.200", 1},
	    {"192.0.2.1", "192.0.2.1", 1},
	    {"192.0.2.1", "192.0.2.2", 0},
	    {"10.0.0.0/9", "10.127.255.255", 1},
	    {"10.0.0.0/9", "10.128.0.0", 0},
	    {"0.0.0.0/0", "203.0.113.9", 1},
	    {"0.0.0.0/0", "::ffff:203.0.113.9", 1},
	    {"0.0.0.0/0", "2001:db8::1", 0},
	    /* IPv4-mapped clients (dual-stack listener) match IPv4 nets. */
	    {"192.0.2.0/24", "::ffff:192.0.2.5", 1},
	    {"192.0.2.0/24", "::ffff:192.0.3.5", 0},
	    {"127.0.0.1", "::ffff:127.0.0.1", 1},
	    /* ... and a network written in mapped form matches both. */
	    {"::ffff:192.0.2.0/120", "192.0.2.9", 1},
	    {"::ffff:192.0.2.0/120", "::ffff:192.0.2.9", 1},
	    {"::ffff:192.0.2.0/120", "192.0.3.9", 0},
	    {"2001:db8::/32", "2001:db8:ffff::1", 1},
	    {"2001:db8::/32", "2001:db9::1", 0},
	    {"2001:db8::/33", "2001:db8:7fff::1", 1},
	    {"2001:db8::/33", "2001:db8:8000::1", 0},
	    {"2001:db8::1", "2001:db8::1", 1},
	    {"2001:db8::1", "2001:db8::2", 0},
	    {"::1", "::1", 1},
	    {"::/0", "2001:db8::1", 1},
	    {"::/0", "192.0.2.1", 0},
	    {"::/0", "::ffff:192.0.2.1", 0},
	    {"2001:db8::/32", "192.0.2.1", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_expect_eq(matches(t[i].net, t[i].client), t[i].match, "cidr[%zu] %s vs %s", i,
		             t[i].net, t[i].client);
}

Test(cidr, parse_and_format)
{
	static const struct {
		const char *in, *out;
		int family, bits;
	} t[] = {
	    {"192.0.2.0/24", "192.0.2.0/24", AF_INET, 24},
	    {"192.0.2.1/24", "192.0.2.0/24", AF_INET, 24},
	    {"192.0.2.1", "192.0.2.1/32", AF_INET, 32},
	    {"0.0.0.0/0", "0.0.0.0/0", AF_INET, 0},
	    {"255.255.255.255/1", "128.0.0.0/1", AF_INET, 1},
	    {"2001:db8::/32", "2001:db8::/32", AF_INET6, 32},
	    {"2001:DB8:1:2::ff/64", "2001:db8:1:2::/64", AF_INET6, 64},
	    {"::1", "::1/128", AF_INET6, 128},
	    {"::/0", "::/0", AF_INET6, 0},
	    {"::ffff:192.0.2.7/120", "192.0.2.0/24", AF_INET, 24},
	    {"::ffff:192.0.2.7", "192.0.2.7/32", AF_INET, 32},
	    {"::ffff:0:0/80", "::/80", AF_INET6, 80},
	    {"192.0.2.0/024", "192.0.2.0/24", AF_INET, 24},
	};
	struct cidr c, c2;
	char buf[80];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cr_assert_eq(cidr_parse(t[i].in, &c), 0, "%s", t[i].in);
		cr_expect_eq(c.family, t[i].family, "%s family", t[i].in);
		cr_expect_eq(c.bits, t[i].bits, "%s bits", t[i].in);
		cidr_format(&c, buf, sizeof(buf));
		cr_expect_str_eq(buf, t[i].out);
		/* The text form parses back to the same network. */
		cr_assert_eq(cidr_parse(buf, &c2), 0);
		cr_expect(memcmp(&c, &c2, sizeof(c)) == 0, "%s round trip", t[i].in);
	}
	cidr_format(&c, buf, 4);
	cr_assert_eq(strlen(buf), 3);
}

Test(cidr, bad_input)
{
	static const char *bad[] = {
	    "",
	    "/24",
	    "192.0.2.0/",
	    "192.0.2.0/33",
	    "192.0.2.0/-1",
	    "192.0.2.0/+8",
	    "192.0.2.0/8x",
	    "192.0.2.0/ 8",
	    "192.0.2.0 /8",
	    " 192.0.2.0/8",
	    "192.0.2.0/0008",
	    "192.0.2.0/99999999999999999999",
	    "192.0.2.0/24/1",
	    "2001:db8::/129",
	    "2001:db8::/-0",
	    "192.0.2",
	    "192.0.2.0.1",
	    "256.0.0.0/8",
	    "192.000.2.0/24",
	    "example.com",
	    "example.com/24",
	    "[::1]",
	    "2001:db8:::1",
	    "2001:db8::1%eth0",
	    "1:2:3:4:5:6:7:8:9",
	    "0000000000000000000000000000000000000000000000000000000000::1",
	};
	struct cidr c, before;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0xa5, sizeof(c));
		before = c;
		cr_expect_eq(cidr_parse(bad[i], &c), -1, "\"%s\" should be refused", bad[i]);
		cr_expect(memcmp(&c, &before, sizeof(c)) == 0, "\"%s\" wrote output", bad[i]);
	}
	cr_assert_eq(cidr_parse(NULL, &c), -1);
}

Test(cidr, match_list_and_other_families)
{
	struct cidr list[3];
	struct sockaddr_storage in = sa4("198.51.100.3"), out = sa4("203.0.113.3");
	struct sockaddr_un un;

	cr_assert_eq(cidr_parse("192.0.2.0/24", &list[0]), 0);
	cr_assert_eq(cidr_parse("2001:db8::/32", &list[1]), 0);
	cr_assert_eq(cidr_parse("198.51.100.0/24", &list[2]), 0);
	cr_assert(cidr_match_list(list, 3, (struct sockaddr *)&in));
	cr_assert(!cidr_match_list(list, 3, (struct sockaddr *)&out));
	cr_assert(!cidr_match_list(list, 0, (struct sockaddr *)&in));
	cr_assert(!cidr_match_list(list, 2, (struct sockaddr *)&in));

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	cr_assert(!cidr_match(&list[0], (struct sockaddr *)&un));
	cr_assert(!cidr_match(&list[0], NULL));
}

Test(sockaddr, host_and_port)
{
	struct sockaddr_storage s;
	struct sockaddr_un un;
	char buf[64], small[5];

	s = sa4("192.0.2.1");
	cr_assert_str_eq(sockaddr_host((struct sockaddr *)&s, buf, sizeof(buf)), "192.0.2.1");
	cr_assert_eq(sockaddr_port((struct sockaddr *)&s), 25);
	s = sa6("2001:db8::1");
	cr_assert_str_eq(sockaddr_host((struct sockaddr *)&s, buf, sizeof(buf)), "2001:db8::1");
	cr_assert_eq(sockaddr_port((struct sockaddr *)&s), 587);
	s = sa6("::ffff:192.0.2.1");
	cr_assert_str_eq(sockaddr_host((struct sockaddr *)&s, buf, sizeof(buf)), "192.0.2.1");
	s = sa6("::1");
	cr_assert_str_eq(sockaddr_host((struct sockaddr *)&s, buf, sizeof(buf)), "::1");
	s = sa4("192.0.2.123");
	cr_assert_str_eq(sockaddr_host((struct sockaddr *)&s, small, sizeof(small)), "192.");

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	cr_assert_str_eq(sockaddr_host((struct sockaddr *)&un, buf, sizeof(buf)), "unknown");
	cr_assert_eq(sockaddr_port((struct sockaddr *)&un), 0);
	cr_assert_eq(sockaddr_port(NULL), 0);
}

Test(sockaddr, parse_listen)
{
	static const struct {
		const char *in;
		int family;
		const char *host;
		unsigned port;
	} good[] = {
	    {"127.0.0.1:2525", AF_INET, "127.0.0.1", 2525},
	    {"[::1]:2525", AF_INET6, "::1", 2525},
	    {"*:25", AF_INET, "0.0.0.0", 25},
	    {"[::]:25", AF_INET6, "::", 25},
	    {"0.0.0.0:65535", AF_INET, "0.0.0.0", 65535},
	    {"192.0.2.1:1", AF_INET, "192.0.2.1", 1},
	    {"[2001:db8::25]:587", AF_INET6, "2001:db8::25", 587},
	};
	static const char *bad[] = {
	    "",
	    "127.0.0.1",
	    "127.0.0.1:",
	    "127.0.0.1:0",
	    "127.0.0.1:65536",
	    "127.0.0.1:123456",
	    "127.0.0.1:25x",
	    "127.0.0.1:-1",
	    "127.0.0.1:+25",
	    "127.0.0.1: 25",
	    "::1:25",
	    "[::1]25",
	    "[::1]:",
	    "[::1",
	    "[127.0.0.1]:25",
	    "localhost:25",
	    "*:",
	    ":25",
	    "[]:25",
	    "[*]:25",
	    "**:25",
	    "256.1.1.1:25",
	};
	struct sockaddr_storage ss, before;
	char buf[64];
	socklen_t len;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(sockaddr_parse_listen(good[i].in, &ss, &len), 0, "%s", good[i].in);
		cr_expect_eq(ss.ss_family, good[i].family, "%s", good[i].in);
		cr_expect_eq(len, good[i].family == AF_INET ? sizeof(struct sockaddr_in)
		                                            : sizeof(struct sockaddr_in6));
		cr_expect_str_eq(sockaddr_host((struct sockaddr *)&ss, buf, sizeof(buf)),
		                 good[i].host);
		cr_expect_eq(sockaddr_port((struct sockaddr *)&ss), good[i].port);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&ss, 0x5a, sizeof(ss));
		before = ss;
		cr_expect_eq(sockaddr_parse_listen(bad[i], &ss, &len), -1, "\"%s\"", bad[i]);
		cr_expect(memcmp(&ss, &before, sizeof(ss)) == 0);
	}
	cr_assert_eq(sockaddr_parse_listen(NULL, &ss, &len), -1);
}
