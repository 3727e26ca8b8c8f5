/*
 * fuzz_addr.c: libFuzzer target for src/common/addr.c and the UTF-8
 * validator it uses (src/common/utf8.c, SMTPUTF8).
 *
 * The input is tried as an SMTP path (exact-length copy, so any read past
 * its end is caught) under several flag sets, and as a NUL-terminated
 * string for the CIDR, domain, split and listen-address parsers. Besides
 * "no crash", it checks what must hold for every accepted input: parts
 * within their limits, flags honoured, and text forms that parse back to
 * the same value. The validator is checked against a second,
 * independent reading of RFC 3629's ABNF (the byte ranges of section 4),
 * on the whole input and on every accepted UTF-8 path, so that the two
 * ways of saying "well-formed" can never disagree; the seeds in
 * t/fuzz/corpus/addr/ include overlong forms, surrogates, C1 controls and
 * cut sequences.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const int flag_sets[] = {
    0,
    ADDR_ALLOW_NULL | ADDR_ALLOW_NOBRACKETS,
    ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_LITERAL,
    ADDR_ALLOW_UTF8 | ADDR_ALLOW_ROUTE,
    ADDR_ALLOW_LITERAL | ADDR_ALLOW_UTF8 | ADDR_ALLOW_NOBRACKETS | ADDR_ALLOW_POSTMASTER,
    ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_LITERAL | ADDR_ALLOW_UTF8 |
        ADDR_ALLOW_ROUTE | ADDR_ALLOW_NOBRACKETS,
};

/* RFC 3629 4, byte ranges as written there, minus the C1 controls
 * (U+0080..U+009F: 0xc2 0x80..0x9f). Returns the sequence length or 0. */
static size_t ref_seq(const unsigned char *p, size_t n)
{
	static const struct {
		unsigned char lead_lo, lead_hi, second_lo, second_hi;
		size_t len;
	} rows[] = {
	    {0xc2, 0xc2, 0xa0, 0xbf, 2}, {0xc3, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
	    {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
	    {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};
	if (n == 0)
		return 0;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		if (p[0] < rows[r].lead_lo || p[0] > rows[r].lead_hi)
			continue;
		if (n < rows[r].len || p[1] < rows[r].second_lo || p[1] > rows[r].second_hi)
			return 0;
		for (size_t i = 2; i < rows[r].len; i++)
			if (p[i] < 0x80 || p[i] > 0xbf)
				return 0;
		return rows[r].len;
	}
	return 0;
}

static int ref_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = ref_seq(p + i, n - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

static void check_utf8(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = utf8_seq(p + i, p + n);
		CHECK(k == (p[i] < 0x80 ? 0 : ref_seq(p + i, n - i)));
		CHECK(k <= n - i);
	}
	CHECK(utf8_valid(p, n) == ref_valid(p, n));
}

static void check_path(const char *s, size_t len, int flags)
{
	char text[ADDR_PATH_MAX * 2 + 8], path[ADDR_PATH_MAX * 2 + 12];
	char l[ADDR_LOCAL_MAX * 2 + 3], d[ADDR_DOMAIN_MAX + 1];
	struct mailaddr a, b;
	const char *end = NULL;
	enum addr_error err;
	size_t n;

	err = addr_parse_path(s, len, flags, &a, &end);
	CHECK(addr_strerror(err) != NULL);
	if (err != ADDR_OK)
		return;
	CHECK(end >= s && end <= s + len);
	CHECK(end == s + len || *end == ' ' || *end == '\r');
	CHECK((flags & ADDR_ALLOW_NOBRACKETS) || (len > 0 && s[0] == '<'));
	CHECK(strlen(a.local) <= ADDR_LOCAL_MAX);
	CHECK(strlen(a.domain) <= ADDR_DOMAIN_MAX);
	CHECK(!a.is_null || (flags & ADDR_ALLOW_NULL));
	CHECK(!a.is_postmaster || (flags & ADDR_ALLOW_POSTMASTER));
	CHECK(!a.is_literal || (flags & ADDR_ALLOW_LITERAL));
	CHECK(!a.had_route || (flags & ADDR_ALLOW_ROUTE));
	CHECK(!a.is_utf8 || (flags & ADDR_ALLOW_UTF8));
	n = addr_format(&a, text, sizeof(text));
	CHECK(n == strlen(text));
	if (a.is_null || a.is_postmaster) {
		CHECK(a.local[0] == '\0' && a.domain[0] == '\0');
		CHECK(!a.is_null || n == 0);
		return;
	}
	CHECK(a.local[0] != '\0' && a.domain[0] != '\0');
	CHECK(n + 2 <= ADDR_PATH_MAX);
	if (!a.is_utf8)
		CHECK(addr_domain_valid(a.domain, a.is_literal));
	/* SMTPUTF8: what is accepted is well-formed UTF-8, and is_utf8 says
	 * exactly whether there is any. */
	CHECK(ref_valid((const unsigned char *)a.local, strlen(a.local)));
	CHECK(ref_valid((const unsigned char *)a.domain, strlen(a.domain)));
	CHECK(a.is_utf8 == (utf8_has_8bit(a.local) || utf8_has_8bit(a.domain)));
	/* The stored form is canonical: it parses back to itself. */
	snprintf(path, sizeof(path), "<%s>", text);
	CHECK(addr_parse_path(path, strlen(path), flags, &b, &end) == ADDR_OK);
	CHECK(strcmp(a.local, b.local) == 0 && strcmp(a.domain, b.domain) == 0);
	CHECK(a.is_literal == b.is_literal && a.is_utf8 == b.is_utf8 && !b.had_route);
	CHECK(addr_split(text, l, sizeof(l), d, sizeof(d)) == 0);
	CHECK(strcmp(l, a.local) == 0 && strcmp(d, a.domain) == 0);
	CHECK(addr_domain_eq(d, a.domain));
}

static void check_cidr(const char *s)
{
	struct cidr c, c2;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	char buf[80];

	if (cidr_parse(s, &c) != 0)
		return;
	CHECK(c.family == AF_INET || c.family == AF_INET6);
	CHECK(c.bits >= 0 && c.bits <= (c.family == AF_INET ? 32 : 128));
	cidr_format(&c, buf, sizeof(buf));
	CHECK(cidr_parse(buf, &c2) == 0);
	CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
	/* The network address lies in its own network, in both forms. */
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	if (c.family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, c.addr, 4);
		CHECK(cidr_match(&c, (struct sockaddr *)&sin));
		sin6.sin6_addr.s6_addr[10] = 0xff;
		sin6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(sin6.sin6_addr.s6_addr + 12, c.addr, 4);
	} else {
		memcpy(sin6.sin6_addr.s6_addr, c.addr, 16);
	}
	if (c.family == AF_INET || !IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr))
		CHECK(cidr_match(&c, (struct sockaddr *)&sin6));
	CHECK(cidr_match_list(&c, 1, (struct sockaddr *)&sin6) ==
	      cidr_match(&c, (struct sockaddr *)&sin6));
}

static void check_listen(const char *s)
{
	struct sockaddr_storage ss, ss2;
	socklen_t len, len2;
	char host[64], text[96];

	if (sockaddr_parse_listen(s, &ss, &len) != 0)
		return;
	CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	CHECK(sockaddr_port((struct sockaddr *)&ss) > 0);
	sockaddr_host((struct sockaddr *)&ss, host, sizeof(host));
	if (ss.ss_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
		snprintf(text, sizeof(text), "[%s]:%u", host,
		         sockaddr_port((struct sockaddr *)&ss));
		CHECK(sockaddr_parse_listen(text, &ss2, &len2) == 0);
		CHECK(len == len2 && memcmp(&ss, &ss2, len) == 0);
	} else if (ss.ss_family == AF_INET) {
		snprintf(text, sizeof(text), "%s:%u", host, sockaddr_port((struct sockaddr *)&ss));
		CHECK(sockaddr_parse_listen(text, &ss2, &len2) == 0);
		CHECK(len == len2 && memcmp(&ss, &ss2, len) == 0);
	}
}

static void check_domain(const char *s)
{
	char path[ADDR_PATH_MAX * 2];
	struct mailaddr a;
	const char *end;
	size_t n = strlen(s);
	int v = addr_domain_valid(s, 0), vl = addr_domain_valid(s, 1);

	CHECK(!v || vl);
	if (!vl)
		return;
	CHECK(addr_domain_eq(s, s));
	/* A valid domain is a valid mailbox domain when it fits a path. */
	if (n + 4 <= ADDR_PATH_MAX) {
		snprintf(path, sizeof(path), "<x@%s>", s);
		CHECK(addr_parse_path(path, strlen(path), v ? 0 : ADDR_ALLOW_LITERAL, &a, &end) ==
		      ADDR_OK);
		CHECK(addr_domain_eq(a.domain, s));
	}
}

static void check_split(const char *s)
{
	char l[64], d[64];

	if (addr_split(s, l, sizeof(l), d, sizeof(d)) != 0)
		return;
	CHECK(d[0] != '\0');
	CHECK(strlen(l) + 1 + strlen(d) == strlen(s));
	CHECK(s[strlen(l)] == '@');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *exact, *str;
	size_t i;

	if (size > 4096)
		return 0;
	exact = malloc(size ? size : 1);
	str = malloc(size + 1);
	if (exact == NULL || str == NULL)
		abort();
	if (size)
		memcpy(exact, data, size);
	memcpy(str, data, size);
	str[size] = '\0';

	for (i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++)
		check_path(exact, size, flag_sets[i]);
	check_utf8((const unsigned char *)exact, size);
	check_cidr(str);
	check_listen(str);
	check_domain(str);
	check_split(str);

	free(exact);
	free(str);
	return 0;
}
