/*
 * test_rdnsname.c: reverse DNS names as evidence (src/classify/rdnsname.c),
 * table-driven: which PTR answers are host names at all, and which names
 * look like an access provider's pool for the client address.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "rdnsname.h"

struct valid_case {
	const char *name;
	int valid;
};

static const struct valid_case valid_cases[] = {
    {"mail.example.org", 1},
    {"mail.example.org.", 1},
    {"MX-1.Example.ORG", 1},
    {"_spf.example.org", 1},
    {"localhost", 1},
    {"1st.example.org", 1},
    {"host.123abc", 1},
    {"", 0},
    {".", 0},
    {"mail..example.org", 0},
    {".example.org", 0},
    {"mail.example.org..", 0},
    {"-mail.example.org", 0},
    {"mail-.example.org", 0},
    {"mail.example.org-", 0},
    {"mail example.org", 0},
    {"mail.exa*mple.org", 0},
    {"mail.ex\xc3\xa4mple.org", 0},
    {"192.0.2.1", 0},
    {"example.123", 0},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org", 1},  /* 63 */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org", 0}, /* 64 */
};

Test(rdnsname, valid_host_names)
{
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *c = &valid_cases[i];
		cr_expect_eq(rdnsname_valid(c->name), c->valid, "rdnsname_valid(\"%s\") != %d",
		             c->name, c->valid);
	}
}

Test(rdnsname, length_limit)
{
	char name[300];
	/* 4 labels of 63 and one of 1: 4 * 64 + 1 = 257 octets, too long. */
	memset(name, 'a', sizeof(name));
	for (size_t i = 63; i < 257; i += 64)
		name[i] = '.';
	name[257] = '\0';
	cr_expect_eq(rdnsname_valid(name), 0);
	/* 253 octets: the longest name. */
	name[253] = '\0';
	cr_expect_eq(rdnsname_valid(name), 1);
	name[253] = '.';
	name[254] = '\0';
	cr_expect_eq(rdnsname_valid(name), 1, "a trailing dot does not count");
}

struct generic_case {
	const char *name;
	const char *addr;
	const char *reason; /* NULL: not generic */
};

#define ADDR "address in name"

static const struct generic_case generic_cases[] = {
    /* mail servers' own names */
    {"mail.example.org", "192.0.2.1", NULL},
    {"mx1.example.org", "192.0.2.1", NULL},
    {"smtp-out-3.mail.example.org", "192.0.2.1", NULL},
    {"mailhost.example.org", "192.0.2.1", NULL},
    {"host.example.org", "192.0.2.1", NULL},
    {"static.example.org", "192.0.2.1", NULL},
    {"mx.dynamic.example", "192.0.2.1", NULL},
    {"dsl.example", "192.0.2.1", NULL},
    {"mail.example.org", "2001:db8::25", NULL},
    /* another address's name, without a giveaway word */
    {"192-0-2-7.example.net", "192.0.2.1", NULL},
    {"1-2-0-192.example.net", "192.0.2.7", NULL},
    /* the address, spelt out */
    {"192-0-2-1.example.net", "192.0.2.1", ADDR},
    {"dsl-192-0-2-1.isp.example", "192.0.2.1", ADDR},
    {"1.2.0.192.in.example.net", "192.0.2.1", ADDR},
    {"192.0.2.1.example.net", "192.0.2.1", ADDR},
    {"1-2-0-192.example.net", "192.0.2.1", ADDR},
    {"x192_0_2_1.example.net", "192.0.2.1", ADDR},
    {"host-192-000-002-001.example.net", "192.0.2.1", ADDR},
    {"192000002001.example.net", "192.0.2.1", ADDR},
    {"001002000192.example.net", "192.0.2.1", ADDR},
    {"c0000201.example.net", "192.0.2.1", ADDR},
    {"C0000201.EXAMPLE.NET", "192.0.2.1", ADDR},
    {"010200c0.example.net", "192.0.2.1", ADDR},
    {"cpe-203-0-113-45.example.com", "::ffff:203.0.113.45", ADDR},
    {"2001-db8-0-0-1-2-3-4.dyn.example.net", "2001:db8::1:2:3:4", ADDR},
    {"ab-cd-ef-12.example.net", "2001:db8::ab:cd:ef:12", ADDR},
    {"20010db8000000000000000000000025.example.net", "2001:db8::25", ADDR},
    /* the kind of access */
    {"ppp-10.example.net", "192.0.2.1", "ppp"},
    {"dynamic.example.net", "192.0.2.1", "dynamic"},
    {"abc.dyn.example.net", "192.0.2.1", "dyn"},
    {"pool-77.west.example.net", "192.0.2.1", "pool"},
    {"x.dhcp.example.net", "192.0.2.1", "dhcp"},
    {"adsl.example.co.uk", "192.0.2.1", "adsl"},
    {"cable-77.example.org", "192.0.2.1", "cable"},
    {"a.broadband.example.com", "192.0.2.1", "broadband"},
    {"dialup.provider.example", "192.0.2.1", "dialup"},
    {"host17.example.org", "192.0.2.1", "host"},
    {"client-5.example.org", "192.0.2.1", "client"},
    {"ip-77.example.org", "192.0.2.1", "ip"},
    {"static-ip-5.example.org", "192.0.2.1", "static"},
    {"DSL-Customer.Example.Net", "2001:db8::25", "dsl"},
};

Test(rdnsname, generic_names)
{
	for (size_t i = 0; i < sizeof(generic_cases) / sizeof(generic_cases[0]); i++) {
		const struct generic_case *c = &generic_cases[i];
		const char *got = rdnsname_generic(c->name, c->addr);
		if (c->reason == NULL)
			cr_expect_null(got, "%s [%s] taken for generic (%s)", c->name, c->addr,
			               got);
		else
			cr_expect(got != NULL && strcmp(got, c->reason) == 0,
			          "%s [%s]: \"%s\", expected \"%s\"", c->name, c->addr,
			          got ? got : "(null)", c->reason);
	}
}

Test(rdnsname, bad_input_is_not_generic)
{
	cr_expect_null(rdnsname_generic("", "192.0.2.1"));
	cr_expect_null(rdnsname_generic(".", "192.0.2.1"));
	cr_expect_null(rdnsname_generic("mail.example.org", "not an address"));
	cr_expect_str_eq(rdnsname_generic("a.dsl.example.org", "not an address"), "dsl");
}
