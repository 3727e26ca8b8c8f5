/*
 * test_utf8.c: unit tests of the UTF-8 validator (src/common/utf8.c, RFC
 * 3629 with the C1 controls refused as RFC 6532 3.1 leaves them out) and of
 * the A-label conversion of domains (src/common/idn.c, libidn2).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "utf8.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct seq_case {
	const char *in;
	size_t len;  /* octets of in */
	size_t want; /* utf8_seq() */
	const char *what;
};

#define S(lit) lit, sizeof(lit) - 1

static const struct seq_case seq_cases[] = {
    /* well-formed, each length at its bounds (RFC 3629 4) */
    {S("\xc2\xa0"), 2, "U+00A0, the first non-C1 two-octet character"},
    {S("\xc3\xa9"), 2, "U+00E9"},
    {S("\xdf\xbf"), 2, "U+07FF"},
    {S("\xe0\xa0\x80"), 3, "U+0800"},
    {S("\xe4\xbe\x8b"), 3, "U+4F8B"},
    {S("\xed\x9f\xbf"), 3, "U+D7FF, just below the surrogates"},
    {S("\xee\x80\x80"), 3, "U+E000, just above them"},
    {S("\xef\xbf\xbd"), 3, "U+FFFD"},
    {S("\xf0\x90\x80\x80"), 4, "U+10000"},
    {S("\xf0\x9f\x98\x80"), 4, "U+1F600"},
    {S("\xf4\x8f\xbf\xbf"), 4, "U+10FFFF"},
    {S("\xc3\xa9z"), 2, "a character followed by ASCII"},
    /* not a start */
    {S("a"), 0, "ASCII"},
    {S("\x80"), 0, "a stray continuation octet"},
    {S("\xbf"), 0, "a stray continuation octet"},
    /* overlong forms */
    {S("\xc0\xaf"), 0, "overlong '/' in two octets"},
    {S("\xc1\xbf"), 0, "overlong in two octets"},
    {S("\xe0\x80\xaf"), 0, "overlong '/' in three octets"},
    {S("\xe0\x9f\xbf"), 0, "overlong U+07FF in three octets"},
    {S("\xf0\x80\x80\xaf"), 0, "overlong '/' in four octets"},
    {S("\xf0\x8f\xbf\xbf"), 0, "overlong U+FFFF in four octets"},
    /* surrogates, and beyond U+10FFFF */
    {S("\xed\xa0\x80"), 0, "U+D800"},
    {S("\xed\xbf\xbf"), 0, "U+DFFF"},
    {S("\xf4\x90\x80\x80"), 0, "U+110000"},
    {S("\xf5\x80\x80\x80"), 0, "0xf5 lead"},
    {S("\xff"), 0, "0xff"},
    {S("\xfe"), 0, "0xfe"},
    /* C1 controls */
    {S("\xc2\x80"), 0, "U+0080"},
    {S("\xc2\x85"), 0, "U+0085 NEL"},
    {S("\xc2\x9f"), 0, "U+009F"},
    /* bad or missing continuation octets */
    {S("\xc3"), 0, "cut short after the lead"},
    {S("\xe4\xbe"), 0, "cut short in three"},
    {S("\xf0\x9f\x98"), 0, "cut short in four"},
    {S("\xc3\x28"), 0, "ASCII as continuation"},
    {S("\xc3\xc3"), 0, "a lead as continuation"},
    {S("\xe4\x28\x8b"), 0, "bad second of three"},
    {S("\xe4\xbe\x28"), 0, "bad third of three"},
    {S("\xf0\x9f\x98\x28"), 0, "bad fourth of four"},
};

Test(utf8, seq_table)
{
	for (size_t i = 0; i < N(seq_cases); i++) {
		const struct seq_case *c = &seq_cases[i];
		const unsigned char *p = (const unsigned char *)c->in;
		cr_expect_eq(utf8_seq(p, p + c->len), c->want, "case %zu (%s): got %zu, want %zu",
		             i, c->what, utf8_seq(p, p + c->len), c->want);
	}
}

Test(utf8, seq_never_reads_past_the_end)
{
	/* The end bound cuts a sequence that the octets after it would
	 * complete. */
	const unsigned char buf[] = "\xe4\xbe\x8b";
	cr_expect_eq(utf8_seq(buf, buf + 2), 0);
	cr_expect_eq(utf8_seq(buf, buf), 0);
	cr_expect_eq(utf8_seq(buf, buf + 3), 3);
}

Test(utf8, valid_strings)
{
	cr_expect(utf8_valid("", 0));
	cr_expect(utf8_valid(S("plain ascii")));
	cr_expect(utf8_valid(S("j\xc3\xb6rg@b\xc3\xbc"
	                       "cher.example")));
	cr_expect(utf8_valid(S("\xe7\x94\xa8\xe6\x88\xb7\xf0\x9f\x98\x80")));
	cr_expect(!utf8_valid(S("j\xc3rg")));
	cr_expect(!utf8_valid(S("ok\xed\xa0\x80")));
	cr_expect(!utf8_valid(S("ok\xc2\x85")));
	cr_expect(!utf8_valid(S("\xc0\x80")));
	cr_expect(utf8_has_8bit("a\xc3\xa9"));
	cr_expect(!utf8_has_8bit("abc"));
	cr_expect(!utf8_has_8bit(""));
}

Test(utf8, idn_to_ascii)
{
	char out[256];
	cr_expect_eq(idn_to_ascii("b\xc3\xbc"
	                          "cher.example",
	                          out, sizeof(out)),
	             0);
	cr_expect_str_eq(out, "xn--bcher-kva.example");
	/* upper case and a trailing dot fold into the same name */
	cr_expect_eq(idn_to_ascii("B\xc3\x9c"
	                          "CHER.Example.",
	                          out, sizeof(out)),
	             0);
	cr_expect_str_eq(out, "xn--bcher-kva.example");
	cr_expect_eq(
	    idn_to_ascii("\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "xn--fsqu00a.xn--4rr70v");
	/* ASCII and address literals are copied (ASCII lower-cased) */
	cr_expect_eq(idn_to_ascii("Mail.Example.COM", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "mail.example.com");
	cr_expect_eq(idn_to_ascii("xn--bcher-kva.example", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "xn--bcher-kva.example");
	cr_expect_eq(idn_to_ascii("[IPv6:2001:DB8::1]", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "[IPv6:2001:DB8::1]");
	/* too small, and not a valid IDN (a label of 64 octets) */
	cr_expect_eq(idn_to_ascii("b\xc3\xbc"
	                          "cher.example",
	                          out, 8),
	             -1);
	cr_expect_str_eq(out, "");
	char longlabel[200];
	memset(longlabel, 'a', 70);
	memcpy(longlabel + 70, "\xc3\xbc.example", 10);
	cr_expect_eq(idn_to_ascii(longlabel, out, sizeof(out)), -1);
}
