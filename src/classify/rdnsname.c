/*
 * rdnsname.c: reverse DNS names as evidence: is a PTR answer a usable
 * host name, and does it look like the name of an address in an access
 * provider's pool rather than a mail server's own name (see rdnsname.h).
 *
 * Access providers name their customers' addresses after the address
 * ("dsl-192-0-2-1.example.net", "1.2.0.192.dyn.example.net",
 * "c0000201.example.net") or after the kind of access ("dynamic", "dsl",
 * "pool"). Mail servers rarely have such names, bots very often do; but
 * some small sites do send from such hosts, so this is weak evidence for
 * the verdict, never a reason to refuse on its own.
 *
 * Two tests, in order. The address: the decimal octets of an IPv4
 * address, forward or reversed, as four numbers joined by single '-',
 * '.' or '_' (leading zeros allowed), or the twelve digits zero-padded,
 * or eight hex digits; for IPv6 the last four groups as hex numbers
 * joined the same way, or the 32 hex digits. The words: labels left of
 * the registered domain (all but the last two) are cut into runs of
 * letters; a strong word anywhere ("dynamic"), or a weak one ("host",
 * "ip") in a label that also has digits ("host17", "ip-5"), is enough.
 *
 * Pure code, no state: called by smtpd (src/smtpd/rdns.c) and the
 * classifier, and fuzzed (t/fuzz/fuzz_rdnsname.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "rdnsname.h"

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int hex_value(char c)
{
	if (is_digit(c))
		return c - '0';
	c = lower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

int rdnsname_valid(const char *name)
{
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > RDNSNAME_MAX)
		return 0;
	size_t label = 0;
	int all_digits = 1;
	char prev = '.';
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? name[i] : '.';
		if (c == '.') {
			if (label == 0 || label > 63 || prev == '-')
				return 0;
			if (i == len && all_digits)
				return 0;
			label = 0;
			all_digits = 1;
		} else if (is_alpha(c) || is_digit(c) || c == '_' || c == '-') {
			if (label == 0 && c == '-')
				return 0;
			if (!is_digit(c))
				all_digits = 0;
			label++;
		} else {
			return 0;
		}
		prev = c;
	}
	return 1;
}

/* A run of digits in the name (decimal, or hex for IPv6). */
struct run {
	size_t start, end; /* [start, end) */
	unsigned long value;
};

#define MAX_RUNS 64

static int is_sep(char c)
{
	return c == '-' || c == '.' || c == '_';
}

/* The runs of decimal (base 10) or hex (base 16) digits of name, at most
 * max, each of at most 4 digits (longer runs are not numbers we want). */
static size_t find_runs(const char *name, int base, struct run *r, size_t max)
{
	size_t n = 0, i = 0, len = strlen(name);
	while (i < len && n < max) {
		int v = base == 16 ? hex_value(name[i]) : (is_digit(name[i]) ? name[i] - '0' : -1);
		if (v < 0) {
			i++;
			continue;
		}
		size_t start = i;
		unsigned long value = 0;
		while (i < len) {
			v = base == 16 ? hex_value(name[i])
			               : (is_digit(name[i]) ? name[i] - '0' : -1);
			if (v < 0)
				break;
			value = value * (unsigned long)base + (unsigned long)v;
			i++;
			if (i - start > 4)
				value = (unsigned long)-1;
		}
		r[n].start = start;
		r[n].end = i;
		r[n].value = value;
		n++;
	}
	return n;
}

/* want[0..3] appear as four consecutive runs joined by one separator
 * each, in this order or reversed. */
static int runs_match(const char *name, const struct run *r, size_t n, const unsigned long *want)
{
	for (size_t i = 0; i + 4 <= n; i++) {
		int joined = 1;
		for (size_t k = i; k < i + 3 && joined; k++)
			joined = r[k + 1].start == r[k].end + 1 && is_sep(name[r[k].end]);
		if (!joined)
			continue;
		int fwd = 1, rev = 1;
		for (size_t k = 0; k < 4; k++) {
			fwd = fwd && r[i + k].value == want[k];
			rev = rev && r[i + k].value == want[3 - k];
		}
		if (fwd || rev)
			return 1;
	}
	return 0;
}

static int spells_v4(const char *name, const unsigned char *a)
{
	struct run r[MAX_RUNS];
	size_t n = find_runs(name, 10, r, MAX_RUNS);
	unsigned long want[4] = {a[0], a[1], a[2], a[3]};
	if (runs_match(name, r, n, want))
		return 1;
	char s[4][16];
	snprintf(s[0], sizeof(s[0]), "%03u%03u%03u%03u", a[0], a[1], a[2], a[3]);
	snprintf(s[1], sizeof(s[1]), "%03u%03u%03u%03u", a[3], a[2], a[1], a[0]);
	snprintf(s[2], sizeof(s[2]), "%02x%02x%02x%02x", a[0], a[1], a[2], a[3]);
	snprintf(s[3], sizeof(s[3]), "%02x%02x%02x%02x", a[3], a[2], a[1], a[0]);
	for (size_t i = 0; i < 4; i++)
		if (strstr(name, s[i]) != NULL)
			return 1;
	return 0;
}

static int spells_v6(const char *name, const unsigned char *a)
{
	struct run r[MAX_RUNS];
	size_t n = find_runs(name, 16, r, MAX_RUNS);
	unsigned long want[4];
	for (size_t k = 0; k < 4; k++)
		want[k] = (unsigned long)a[8 + 2 * k] << 8 | a[9 + 2 * k];
	if (runs_match(name, r, n, want))
		return 1;
	char full[33];
	for (size_t k = 0; k < 16; k++)
		snprintf(full + 2 * k, 3, "%02x", a[k]);
	return strstr(name, full) != NULL;
}

/* Words that name a kind of access wherever they appear. */
static const char *const strong_words[] = {
    "dyn",    "dynamic", "dynip",       "dhcp", "pool",  "ppp",       "pppoe",      "dsl",
    "adsl",   "vdsl",    "xdsl",        "sdsl", "cable", "broadband", "dial",       "dialup",
    "dialin", "cpe",     "residential", "catv", "modem", "ftth",      "unassigned",
};

/* Words that do so next to a number ("host17", "ip-5", "static-ip-7"). */
static const char *const weak_words[] = {
    "host",   "ip",     "client",   "clients", "customer", "cust", "user",
    "static", "mobile", "wireless", "node",    "hsd",      "res",  "fiber",
};

static const char *word_in(const char *w, size_t len, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], w, len) == 0)
			return list[i];
	return NULL;
}

/* The label [p, e) of a lower-cased name: a giveaway word, or NULL. */
static const char *label_word(const char *p, const char *e)
{
	int digits = 0;
	for (const char *q = p; q < e; q++)
		digits |= is_digit(*q);
	for (const char *q = p; q < e;) {
		if (!is_alpha(*q)) {
			q++;
			continue;
		}
		const char *w = q;
		while (q < e && is_alpha(*q))
			q++;
		size_t len = (size_t)(q - w);
		const char *hit =
		    word_in(w, len, strong_words, sizeof(strong_words) / sizeof(strong_words[0]));
		if (hit == NULL && digits)
			hit =
			    word_in(w, len, weak_words, sizeof(weak_words) / sizeof(weak_words[0]));
		if (hit)
			return hit;
	}
	return NULL;
}

const char *rdnsname_generic(const char *name, const char *addr)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char lc[RDNSNAME_MAX + 2];
	size_t len = strlen(name);
	if (len == 0 || len > RDNSNAME_MAX + 1)
		return NULL;
	for (size_t i = 0; i < len; i++)
		lc[i] = lower(name[i]);
	lc[len] = '\0';

	unsigned char a[16];
	if (inet_pton(AF_INET, addr, a) == 1) {
		if (spells_v4(lc, a))
			return "address in name";
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		if (memcmp(a, mapped, 12) == 0 ? spells_v4(lc, a + 12) : spells_v6(lc, a))
			return "address in name";
	}

	/* The labels left of the registered domain (all but the last two). */
	if (lc[len - 1] == '.')
		lc[--len] = '\0';
	size_t nlabels = 1;
	for (size_t i = 0; i < len; i++)
		nlabels += lc[i] == '.';
	const char *p = lc;
	for (size_t l = 0; l + 2 < nlabels; l++) {
		const char *e = strchr(p, '.');
		const char *hit = label_word(p, e);
		if (hit)
			return hit;
		p = e + 1;
	}
	return NULL;
}
