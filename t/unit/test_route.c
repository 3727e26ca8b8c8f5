/*
 * test_route.c: transports and the transport table (route.c), address
 * literals as destinations, MX list ordering and the loop rule (dns.c), the retry schedule
 * (retry.c), and server replies, EHLO keywords and dot-stuffing (src/smtp/proto.c).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "dns.h"
#include "retry.h"
#include "route.h"
#include "smtp.h"
#include "smtp_proto.h"
#include "util.h"

static const struct {
	const char *text;
	int ok;
	enum route_kind kind;
	const char *host;
	unsigned port;
} parse_cases[] = {
    {"mx", 1, ROUTE_MX, "", 25},
    {"maildir", 1, ROUTE_MAILDIR, "", 25},
    {"smtp:[10.0.0.5]:2525", 1, ROUTE_SMTP, "10.0.0.5", 2525},
    {"smtp:[10.0.0.5]", 1, ROUTE_SMTP, "10.0.0.5", 25},
    {"smtp:[::1]:26", 1, ROUTE_SMTP, "::1", 26},
    {"smtp:mail.example.org", 1, ROUTE_SMTP_MX, "mail.example.org", 25},
    {"smtp:mail.example.org:587", 1, ROUTE_SMTP_MX, "mail.example.org", 587},
    {"lmtp:[127.0.0.1]:24", 1, ROUTE_LMTP, "127.0.0.1", 24},
    {"lmtp:[127.0.0.1]", 1, ROUTE_LMTP, "127.0.0.1", 24},
    {"lmtp:unix:/run/dovecot/lmtp", 1, ROUTE_LMTP_UNIX, "/run/dovecot/lmtp", 0},
    {"lmtp:unix:relative", 0, 0, NULL, 0},
    {"smtp:[10.0.0.5]:0", 0, 0, NULL, 0},
    {"smtp:[10.0.0.5]:65536", 0, 0, NULL, 0},
    {"smtp:[10.0.0.5]:x", 0, 0, NULL, 0},
    {"smtp:[10.0.0.5", 0, 0, NULL, 0},
    {"smtp:", 1, ROUTE_MX, "", 25},
    {"smtp::2525", 1, ROUTE_MX, "", 2525},
    {"smtp::0", 0, 0, NULL, 0},
    {"smtp::x", 0, 0, NULL, 0},
    {"smtp::", 0, 0, NULL, 0},
    {"smtp:bad/host", 0, 0, NULL, 0},
    {"uucp:host", 0, 0, NULL, 0},
    {"", 0, 0, NULL, 0},
};

Test(route, parse_table)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		struct route r;
		char err[200] = "";
		int rc = route_parse(parse_cases[i].text, &r, err, sizeof(err));
		cr_expect_eq(rc == 0, parse_cases[i].ok, "'%s': rc %d (%s)", parse_cases[i].text,
		             rc, err);
		if (rc != 0 || !parse_cases[i].ok)
			continue;
		cr_expect_eq(r.kind, parse_cases[i].kind, "'%s': kind", parse_cases[i].text);
		cr_expect_str_eq(r.host, parse_cases[i].host, "'%s': host", parse_cases[i].text);
		cr_expect_eq(r.port, parse_cases[i].port, "'%s': port", parse_cases[i].text);
	}
}

static void load(struct config *cf, const char *text)
{
	char err[300];
	cr_assert_eq(conf_parse_buffer("t.conf", text, strlen(text), cf, err, sizeof(err)), 0, "%s",
	             err);
}

Test(route, lookup_order)
{
	struct config cf;
	struct route r;
	char err[200];
	load(&cf,
	     "local_domains = local.test\n"
	     "transport = example.org=smtp:[10.0.0.5]:25 .example.org=smtp:[10.0.0.6]\n"
	     "transport = .sub.example.org=lmtp:unix:/tmp/l, local.test=lmtp:[127.0.0.1]:2424\n"
	     "default_transport = smtp:[192.0.2.1]:2525\n");
	cr_assert_eq(route_check(&cf, err, sizeof(err)), 0, "%s", err);

	cr_assert_eq(route_lookup(&cf, "example.org", &r, err, sizeof(err)), 0);
	cr_expect_str_eq(r.host, "10.0.0.5");
	cr_assert_eq(route_lookup(&cf, "EXAMPLE.ORG", &r, err, sizeof(err)), 0);
	cr_expect_str_eq(r.host, "10.0.0.5");
	cr_assert_eq(route_lookup(&cf, "a.example.org", &r, err, sizeof(err)), 0);
	cr_expect_str_eq(r.host, "10.0.0.6");
	/* The longest parent entry wins. */
	cr_assert_eq(route_lookup(&cf, "x.sub.example.org", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_LMTP_UNIX);
	/* A local domain in the table takes its entry, not maildir. */
	cr_assert_eq(route_lookup(&cf, "local.test", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_LMTP);
	cr_expect_eq(r.port, 2424);
	cr_assert_eq(route_lookup(&cf, "elsewhere.test", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_SMTP);
	cr_expect_eq(r.port, 2525);
	conf_free(&cf);

	load(&cf, "local_domains = local.test\n");
	cr_assert_eq(route_lookup(&cf, "local.test", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_MAILDIR);
	cr_assert_eq(route_lookup(&cf, "other.test", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_MX, "the default transport is mx");
	conf_free(&cf);

	load(&cf, "transport = example.org\n");
	cr_expect_eq(route_check(&cf, err, sizeof(err)), -1, "an item without '=' is an error");
	conf_free(&cf);
	load(&cf, "transport = example.org=bogus:x\n");
	cr_expect_eq(route_lookup(&cf, "example.org", &r, err, sizeof(err)), -1);
	cr_expect(strstr(err, "unknown transport") != NULL, "%s", err);
	conf_free(&cf);
}

Test(route, retry_schedule)
{
	/* retry_min 300, retry_max 3600: 300, 600, 1200, 2400, 3600, 3600 */
	static const int64_t want[] = {300, 300, 600, 1200, 2400, 3600, 3600, 3600};
	for (int a = 0; a < 8; a++)
		cr_expect_eq(retry_delay(300, 3600, a), want[a], "attempt %d: %lld", a,
		             (long long)retry_delay(300, 3600, a));
	cr_expect_eq(retry_delay(1, 3600, 1000), 3600, "no overflow on many attempts");
	cr_expect_eq(retry_delay(500, 100, 1), 100, "retry_max caps retry_min too");

	int64_t arrival = 1000000LL * 1000000; /* 10^6 s, in usec */
	cr_expect_eq(retry_expired(arrival, 60, 1000059), 0);
	cr_expect_eq(retry_expired(arrival, 60, 1000060), 1);
	/* The next attempt never lands after the expiry. */
	cr_expect_eq(retry_next(300, 3600, 1, arrival, 100, 1000010), 1000100);
	cr_expect_eq(retry_next(300, 3600, 1, arrival, 100000, 1000010), 1000310);
}

Test(route, mx_sort_and_self)
{
	struct dns_mx *v;
	static const char *hosts[] = {"c.test",  "a1.test", "b.test",
	                              "a2.test", "d.test",  "a3.test"};
	static const unsigned prefs[] = {30, 10, 20, 10, 40, 10};
	int seen_first[3] = {0, 0, 0};
	for (int round = 0; round < 60; round++) {
		v = xcalloc(6, sizeof(*v));
		for (int i = 0; i < 6; i++) {
			v[i].host = xstrdup(hosts[i]);
			v[i].pref = prefs[i];
		}
		dns_mx_sort(v, 6);
		for (int i = 1; i < 6; i++)
			cr_assert(v[i - 1].pref <= v[i].pref, "not sorted by preference");
		cr_expect_eq(strncmp(v[0].host, "a", 1), 0);
		seen_first[v[0].host[1] - '1'] = 1;
		cr_expect_str_eq(v[3].host, "b.test");
		/* We are c.test: c and d (same or higher preference) go. */
		struct dns_self self = {"C.TEST", NULL, 0, 25};
		size_t n = dns_mx_prune_self(v, 6, &self);
		cr_expect_eq(n, 4);
		dns_mx_free(v, n);
	}
	cr_expect(seen_first[0] && seen_first[1] && seen_first[2],
	          "equal preferences are not shuffled");

	/* We are the best MX: nothing is left (the caller refuses to loop). */
	v = xcalloc(2, sizeof(*v));
	v[0].host = xstrdup("me.test.");
	v[0].pref = 5;
	v[1].host = xstrdup("other.test");
	v[1].pref = 10;
	struct dns_self me = {"me.test", NULL, 0, 25};
	cr_expect_eq(dns_mx_prune_self(v, 2, &me), 0);
	/* Not listed: untouched. */
	v[0].host = xstrdup("x.test");
	v[1].host = xstrdup("y.test");
	cr_expect_eq(dns_mx_prune_self(v, 2, &me), 2);
	dns_mx_free(v, 2);
}

Test(route, literal_parse)
{
	static const struct {
		const char *domain;
		int rc, v6;
		const char *host;
	} cases[] = {
	    {"example.org", 0, 0, NULL},
	    {"", 0, 0, NULL},
	    {"[192.0.2.1]", 1, 0, "192.0.2.1"},
	    {"[IPv6:2001:db8::1]", 1, 1, "2001:db8::1"},
	    {"[ipv6:2001:DB8:0:0::1]", 1, 1, "2001:db8::1"},
	    {"[IPV6:::1]", 1, 1, "::1"},
	    {"[IPv6:::ffff:192.0.2.1]", 1, 1, "::ffff:192.0.2.1"},
	    {"[999.1.1.1]", -1, 0, NULL},
	    {"[192.0.2]", -1, 0, NULL},
	    {"[IPv6:zz]", -1, 0, NULL},
	    {"[IPv6:192.0.2.1]", -1, 0, NULL},
	    {"[2001:db8::1]", -1, 0, NULL},
	    {"[x-tag:stuff]", -1, 0, NULL},
	    {"[192.0.2.1", -1, 0, NULL},
	    {"[]", -1, 0, NULL},
	    {"[", -1, 0, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[ROUTE_LITERAL_MAX] = "";
		int v6 = -1;
		int rc = route_literal(cases[i].domain, host, sizeof(host), &v6);
		cr_expect_eq(rc, cases[i].rc, "'%s': %d", cases[i].domain, rc);
		if (rc == 1 && cases[i].rc == 1) {
			cr_expect_str_eq(host, cases[i].host, "'%s'", cases[i].domain);
			cr_expect_eq(v6, cases[i].v6, "'%s'", cases[i].domain);
		}
	}
}

/* A literal recipient follows default_transport like any domain (mx: to
 * the address itself, remote.c); an admin's table entry for a literal
 * matches the address however it is spelt, and no ".parent" entry
 * ever matches a literal. */
Test(route, literal_lookup)
{
	struct config cf;
	struct route r;
	char err[200];
	load(&cf, "transport = [192.0.2.1]=smtp:[10.0.0.5]:26 "
	          "[IPv6:2001:db8::1]=lmtp:[127.0.0.1]:24 .1]=smtp:[10.0.0.9]\n"
	          "default_transport = smtp::2525\n");
	cr_assert_eq(route_check(&cf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(route_lookup(&cf, "[192.0.2.1]", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_SMTP);
	cr_expect_str_eq(r.host, "10.0.0.5");
	cr_assert_eq(route_lookup(&cf, "[ipv6:2001:DB8:0::1]", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_LMTP);
	cr_assert_eq(route_lookup(&cf, "[192.0.2.2]", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_MX, "'.1]' matched a literal");
	cr_expect_eq(r.port, 2525);
	cr_assert_eq(route_lookup(&cf, "[999.1.1.1]", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_MX, "a bad literal goes to remote.c, which bounces it");
	conf_free(&cf);

	load(&cf, "local_domains = local.test\n");
	cr_assert_eq(route_lookup(&cf, "[192.0.2.1]", &r, err, sizeof(err)), 0);
	cr_expect_eq(r.kind, ROUTE_MX);
	cr_expect_eq(r.port, 25);
	conf_free(&cf);
}

static void listener(struct sockaddr_storage *ss, const char *text)
{
	socklen_t len;
	cr_assert_eq(sockaddr_parse_listen(text, ss, &len), 0, "%s", text);
}

/* The loop rule for addresses: a literal (or an MX host written as an
 * address) is us when the connection would reach one of our listeners. */
Test(route, self_by_address)
{
	struct sockaddr_storage l[2];
	listener(&l[0], "192.0.2.1:25");
	listener(&l[1], "[2001:db8::1]:2525");
	struct dns_self self = {"mx.example.test", l, 2, 25};
	cr_expect(dns_is_self(&self, "MX.example.test."));
	cr_expect(dns_is_self(&self, "192.0.2.1"));
	cr_expect(!dns_is_self(&self, "192.0.2.2"));
	cr_expect(!dns_is_self(&self, "2001:db8::1"), "another port is not us");
	cr_expect(!dns_is_self(&self, "127.0.0.1"), "no wildcard listener");
	self.port = 2525;
	cr_expect(dns_is_self(&self, "2001:db8::1"));
	cr_expect(!dns_is_self(&self, "192.0.2.1"));

	/* A wildcard listener is every local address on its port. */
	listener(&l[0], "*:2526");
	struct dns_self wild = {"mx.example.test", l, 1, 2526};
	cr_expect(dns_is_self(&wild, "127.0.0.1"));
	cr_expect(dns_is_self(&wild, "127.0.0.2"));
	cr_expect(!dns_is_self(&wild, "192.0.2.77"), "not an address of this host");
	wild.port = 25;
	cr_expect(!dns_is_self(&wild, "127.0.0.1"));

	/* The literal is the one host of its destination: ours, none left. */
	struct dns_mx *v = xcalloc(1, sizeof(*v));
	v[0].host = xstrdup("127.0.0.9");
	wild.port = 2526;
	cr_expect_eq(dns_mx_prune_self(v, 1, &wild), 0);
	free(v);
}

Test(route, dotstuff)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {".\r\n", "..\r\n"},
	    {"a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n"},
	    {"a.b\r\n", "a.b\r\n"},
	    {"", ""},
	};
	char out[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int bol = 1;
		size_t n = smtp_dotstuff(cases[i].in, strlen(cases[i].in), out, &bol);
		out[n] = '\0';
		cr_expect_str_eq(out, cases[i].out, "case %zu", i);
	}
	/* A line split across two chunks. */
	int bol = 1;
	size_t n = smtp_dotstuff("x\r\n", 3, out, &bol);
	n += smtp_dotstuff(".y\r\n", 4, out + n, &bol);
	out[n] = '\0';
	cr_expect_str_eq(out, "x\r\n..y\r\n");
}

static int feed(struct smtp_reply *rp, const char *line)
{
	return smtp_reply_line(rp, line, strlen(line));
}

Test(route, smtp_replies)
{
	struct smtp_reply rp;
	smtp_reply_init(&rp);
	cr_expect_eq(feed(&rp, "250-mx.example.test greets you"), 0);
	cr_expect_eq(feed(&rp, "250-PIPELINING"), 0);
	cr_expect_eq(feed(&rp, "250-SIZE 1000"), 0);
	cr_expect_eq(feed(&rp, "250-8bitmime"), 0);
	cr_expect_eq(feed(&rp, "250 STARTTLS"), 1);
	cr_expect_eq(rp.code, 250);
	cr_expect_str_eq(rp.text, "250-mx.example.test greets you");
	struct smtp_caps c;
	smtp_caps_parse(rp.ext, &c);
	cr_expect(c.pipelining && c.size && c.eightbit && c.starttls);
	cr_expect_eq(c.size_max, 1000);

	/* No PIPELINING, SIZE without a number. */
	smtp_reply_init(&rp);
	cr_expect_eq(feed(&rp, "250-x"), 0);
	cr_expect_eq(feed(&rp, "250-SIZE"), 0);
	cr_expect_eq(feed(&rp, "250 PIPELININGX"), 1);
	smtp_caps_parse(rp.ext, &c);
	cr_expect(!c.pipelining && c.size && c.size_max == 0 && !c.starttls);

	/* A bare code, and what is not a reply. */
	smtp_reply_init(&rp);
	cr_expect_eq(feed(&rp, "354"), 1);
	smtp_reply_init(&rp);
	cr_expect_eq(feed(&rp, "hello"), -1);
	smtp_reply_init(&rp);
	cr_expect_eq(feed(&rp, "199 too low"), -1);
	smtp_reply_init(&rp);
	cr_expect_eq(feed(&rp, "250x"), -1);
	smtp_reply_init(&rp);
	cr_expect_eq(feed(&rp, "250-a"), 0);
	cr_expect_eq(feed(&rp, "251 other code"), -1, "a code change inside a reply");
}

Test(route, local_reply_text)
{
	char buf[128];
	smtp_local_reply(buf, sizeof(buf), 451, "4.4.1", "%s: %s", "h[1.2.3.4]:25", "refused");
	cr_expect_str_eq(buf, "451 4.4.1 h[1.2.3.4]:25: refused");
}

Test(route, tls_policy_setting)
{
	char err[200];
	cr_expect_eq(route_tls_policy("", "a.test", "h", err, sizeof(err)), TLS_POLICY_MAY);
	cr_expect_eq(route_tls_policy(NULL, "a.test", "h", err, sizeof(err)), TLS_POLICY_MAY);
	cr_expect_eq(route_tls_policy("none", "a.test", "h", err, sizeof(err)), TLS_POLICY_NONE);
	const char *set = "may strict.test=encrypt, 10.0.0.5=verify";
	cr_expect_eq(route_tls_policy(set, "STRICT.test", "mx", err, sizeof(err)),
	             TLS_POLICY_ENCRYPT);
	cr_expect_eq(route_tls_policy(set, "x.test", "10.0.0.5", err, sizeof(err)),
	             TLS_POLICY_VERIFY, "the next-hop host matches too");
	cr_expect_eq(route_tls_policy(set, "x.test", "mx", err, sizeof(err)), TLS_POLICY_MAY);
	static const char *const bad[] = {"maybe", "may none", "may a.test=sometimes", "=verify"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(route_tls_policy(bad[i], "a.test", "h", err, sizeof(err)), -1, "'%s'",
		             bad[i]);
}
