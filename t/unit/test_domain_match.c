/*
 * test_domain_match.c: the meaning of ".example.com" in every kind of
 * table, run against the same inputs: addr_domain_match() under each rule,
 * then the tables themselves (local_domains and relay_domains in conf.c,
 * the recipient whitelist in whitelist.c, the transport table and
 * tls_policy in route.c), so a table that stops using its rule fails here.
 * The rules are documented in tempomx.conf(5), "Domain tables".
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "classify.h"
#include "conf.h"
#include "route.h"

/* One input and whether it matches under each rule. */
struct domain_case {
	const char *key, *domain;
	int with_subdomains; /* local_domains, relay_domains, whitelists */
	int subdomains;      /* transport (Postfix transport(5)) */
	int exact;           /* tls_policy */
};

static const struct domain_case cases[] = {
    {"example.com", "example.com", 1, 1, 1},
    {"example.com", "EXAMPLE.com.", 1, 1, 1},
    {"example.com", "mail.example.com", 0, 0, 0},
    {"example.com", "example.org", 0, 0, 0},
    {".example.com", "example.com", 1, 0, 0},
    {".example.com", "example.com.", 1, 0, 0},
    {".example.com", "mail.example.com", 1, 1, 0},
    {".example.com", "a.b.example.com", 1, 1, 0},
    {".example.com", "Mail.Example.COM.", 1, 1, 0},
    {".example.com", "badexample.com", 0, 0, 0},
    {".example.com", "example.com.evil.test", 0, 0, 0},
    {".mail.example.com", "example.com", 0, 0, 0},
    {".mail.example.com", "x.mail.example.com", 1, 1, 0},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

Test(domain_match, the_rules)
{
	for (size_t i = 0; i < NCASES; i++) {
		const struct domain_case *c = &cases[i];

		cr_expect_eq(!!addr_domain_match(c->key, c->domain, ADDR_MATCH_WITH_SUBDOMAINS),
		             c->with_subdomains, "with subdomains: %s / %s", c->key, c->domain);
		cr_expect_eq(!!addr_domain_match(c->key, c->domain, ADDR_MATCH_SUBDOMAINS),
		             c->subdomains, "subdomains: %s / %s", c->key, c->domain);
		cr_expect_eq(!!addr_domain_match(c->key, c->domain, ADDR_MATCH_EXACT), c->exact,
		             "exact: %s / %s", c->key, c->domain);
	}
}

Test(domain_match, same_beats_parent)
{
	cr_expect_eq(
	    addr_domain_match("mail.example.com", "mail.example.com", ADDR_MATCH_SUBDOMAINS),
	    ADDR_MATCH_SAME);
	cr_expect_eq(addr_domain_match(".example.com", "mail.example.com", ADDR_MATCH_SUBDOMAINS),
	             ADDR_MATCH_PARENT);
	cr_expect_eq(addr_domain_match(".example.com", "example.com", ADDR_MATCH_WITH_SUBDOMAINS),
	             ADDR_MATCH_SAME);
	cr_expect_eq(addr_domain_match("", "example.com", ADDR_MATCH_WITH_SUBDOMAINS), 0);
	cr_expect_eq(addr_domain_match(".", "example.com", ADDR_MATCH_WITH_SUBDOMAINS), 0);
	cr_expect_eq(addr_domain_match("example.com", NULL, ADDR_MATCH_EXACT), 0);
}

static void config_with(struct config *cf, const char *key, const char *value)
{
	char line[256], err[512];

	snprintf(line, sizeof(line), "%s=%s", key, value);
	cr_assert_eq(conf_set(cf, line, err, sizeof(err)), 0, "%s: %s", line, err);
}

Test(domain_match, every_kind_of_table)
{
	for (size_t i = 0; i < NCASES; i++) {
		const struct domain_case *c = &cases[i];
		struct config cf;
		struct whitelist wl = {0};
		struct route r;
		char rcpt[300], transport[300], policy[300], err[512];

		conf_defaults(&cf);
		config_with(&cf, "local_domains", c->key);
		config_with(&cf, "relay_domains", c->key);
		snprintf(transport, sizeof(transport), "%s=smtp:[192.0.2.1]:25", c->key);
		config_with(&cf, "transport", transport);
		cr_expect_eq(conf_is_local_domain(&cf, c->domain), c->with_subdomains,
		             "local_domains: %s / %s", c->key, c->domain);
		cr_expect_eq(conf_is_relay_domain(&cf, c->domain), c->with_subdomains,
		             "relay_domains: %s / %s", c->key, c->domain);

		cr_assert_eq(whitelist_add(&wl, 2, c->key), 0, "whitelist entry %s", c->key);
		snprintf(rcpt, sizeof(rcpt), "user@%s", c->domain);
		cr_expect_eq(whitelist_recipient(&wl, rcpt), c->with_subdomains,
		             "whitelist: %s / %s", c->key, rcpt);
		whitelist_free(&wl);

		/* Not in the transport table: a local domain goes to its
		 * Maildir, anything else to the MX; in it: the relay host. */
		cr_assert_eq(route_lookup(&cf, c->domain, &r, err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(r.kind == ROUTE_SMTP, c->subdomains, "transport: %s / %s", c->key,
		             c->domain);

		snprintf(policy, sizeof(policy), "may %s=verify", c->key);
		cr_expect_eq(route_tls_policy(policy, c->domain, NULL, err, sizeof(err)) == 3,
		             c->exact, "tls_policy: %s / %s", c->key, c->domain);
		conf_free(&cf);
	}
}
