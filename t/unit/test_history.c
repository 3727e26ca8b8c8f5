/*
 * test_history.c: unit tests for the sender-history store and prediction
 * (src/history/store.c, src/history/predict.c): the prediction rules as a
 * table, host and network aggregation for IPv4 and IPv6, expiry and the
 * bounded sweep, admin feedback, the listing, map growth within one process
 * and across processes, several writer processes at once, writers killed
 * at random moments, and unreadable stores.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "log.h"
#include "util.h"

#define T0 1700000000LL /* an arbitrary "now" */
#define DAY 86400LL

static char tmpdir[64];
static char dbdir[128];

static void setup(void)
{
	log_init("test_history", 1, 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_history.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(dbdir, sizeof(dbdir), "%s/db", tmpdir);
}

static void teardown(void)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/data.mdb", dbdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dbdir);
	unlink(p);
	rmdir(dbdir);
	rmdir(tmpdir);
}

TestSuite(history, .init = setup, .fini = teardown, .timeout = 120);

static struct sockaddr_storage sa(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		cr_assert_fail("bad test address %s", ip);
	return ss;
}

static struct cidr net_of(const char *ip, int bits)
{
	struct cidr c;
	memset(&c, 0, sizeof(c));
	c.family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	cr_assert_eq(inet_pton(c.family, ip, c.addr), 1);
	c.bits = bits;
	return c;
}

static struct history *open_store(size_t map_size)
{
	char err[256] = "";
	struct history *h = history_open(dbdir, map_size, err, sizeof(err));
	cr_assert_not_null(h, "history_open: %s", err);
	return h;
}

static void record(struct history *h, const char *ip, unsigned flags, int64_t now)
{
	struct sockaddr_storage ss = sa(ip);
	struct history_event ev = {(struct sockaddr *)&ss, flags, 0.0, now};
	cr_assert_eq(history_record(h, &ev), 0, "history_record(%s)", ip);
}

static void lookup(struct history *h, const char *ip, int64_t now, struct history_entry *host,
                   struct history_entry *agg)
{
	struct sockaddr_storage ss = sa(ip);
	cr_assert_eq(history_lookup(h, (struct sockaddr *)&ss, now, host, agg), 0,
	             "history_lookup(%s)", ip);
}

static const struct history_params params = {
    .junk_threshold = 0.5, .min_history = 3, .max_age = 30 * DAY};

static enum history_class predict_ip(struct history *h, const char *ip, int64_t now,
                                     struct history_prediction *pr)
{
	struct history_entry host, agg;
	lookup(h, ip, now, &host, &agg);
	return history_predict(&host, &agg, &params, now, pr);
}

#define GOOD_MAIL (HISTORY_EV_SESSION | HISTORY_EV_HI)
#define JUNK_SESSION (HISTORY_EV_SESSION | HISTORY_EV_REJECT | HISTORY_EV_JUNK)

/* ---- prediction rules, as a table ------------------------------------------ */

struct rec_spec {
	int present;
	uint32_t clean, junk, virus, admin_good, admin_junk, sessions;
	uint32_t good_hosts, junk_hosts; /* network records */
	uint8_t admin;
	int64_t last_seen_ago;
};

struct predict_case {
	const char *what;
	struct rec_spec host, agg;
	double threshold;
	uint32_t min_history;
	enum history_class want;
	int want_from_agg;
};

/* Short designated initialisers for the table. */
#define NONE                                                                                       \
	{                                                                                          \
		.present = 0                                                                       \
	}
#define REC(...)                                                                                   \
	{                                                                                          \
		.present = 1, __VA_ARGS__                                                          \
	}

static const struct predict_case predict_cases[] = {
    {"no record at all", NONE, NONE, 0.5, 3, HISTORY_NEW, 0},
    {"host with good mail", REC(.clean = 5), NONE, 0.5, 3, HISTORY_GOOD, 0},
    {"host mostly junk", REC(.clean = 1, .junk = 9), NONE, 0.5, 3, HISTORY_JUNK, 0},
    {"junk share exactly at threshold is not junk", REC(.clean = 5, .junk = 5), NONE, 0.5, 3,
     HISTORY_GOOD, 0},
    {"junk share just above threshold", REC(.clean = 4, .junk = 6), NONE, 0.5, 3, HISTORY_JUNK, 0},
    {"all junk below min_history is not junk", REC(.junk = 2), NONE, 0.5, 3, HISTORY_NEW, 0},
    {"some junk below min_history", REC(.clean = 2, .junk = 1), NONE, 0.5, 5, HISTORY_GOOD, 0},
    {"min_history 0 counts as 1", REC(.junk = 1), NONE, 0.5, 0, HISTORY_JUNK, 0},
    {"lower threshold", REC(.clean = 8, .junk = 2), NONE, 0.1, 3, HISTORY_JUNK, 0},
    {"viruses move clean mail to junk", REC(.clean = 10, .virus = 8), NONE, 0.5, 3, HISTORY_JUNK,
     0},
    {"only tempfailed sessions so far", REC(.sessions = 3), NONE, 0.5, 3, HISTORY_NEW, 0},
    {"new host in a junk network", NONE, REC(.junk = 20, .junk_hosts = 5), 0.5, 3, HISTORY_JUNK, 1},
    {"new host in a good network", NONE, REC(.clean = 20, .good_hosts = 4), 0.5, 3, HISTORY_GOOD,
     1},
    /* One host's many sessions never speak for its neighbours. */
    {"new host, one junk host's 20 sessions", NONE, REC(.junk = 20, .junk_hosts = 1), 0.5, 3,
     HISTORY_NEW, 1},
    {"new host, one good host's 20 messages", NONE, REC(.clean = 20, .good_hosts = 1), 0.5, 3,
     HISTORY_NEW, 1},
    {"new host, two junk hosts", NONE, REC(.junk = 2, .junk_hosts = 2), 0.5, 3, HISTORY_NEW, 1},
    {"new host, junk hosts outnumbered", NONE,
     REC(.junk = 5, .clean = 20, .junk_hosts = 3, .good_hosts = 6), 0.5, 3, HISTORY_GOOD, 1},
    /* A host's own judged mail wins over its network... */
    {"young good host in a junk network", REC(.clean = 1),
     REC(.clean = 1, .junk = 20, .junk_hosts = 5, .good_hosts = 1), 0.5, 3, HISTORY_GOOD, 0},
    /* ...unless the network is overwhelmingly junk. */
    {"young host in an overwhelmingly junk network", REC(.clean = 1),
     REC(.clean = 1, .junk = 40, .junk_hosts = 12, .good_hosts = 1), 0.5, 3, HISTORY_JUNK, 1},
    {"known host in a junk network", REC(.clean = 10), REC(.clean = 10, .junk = 30), 0.5, 3,
     HISTORY_GOOD, 0},
    {"young host, young network", REC(.clean = 1), REC(.clean = 1), 0.5, 3, HISTORY_GOOD, 0},
    {"host without mail, young junk network", REC(.sessions = 2), REC(.junk = 2), 0.5, 3,
     HISTORY_NEW, 1},
    {"admin junk beats good counts",
     REC(.clean = 50, .admin_junk = 1, .admin = HISTORY_FEEDBACK_JUNK), NONE, 0.5, 3, HISTORY_JUNK,
     0},
    {"host admin good beats junk network", REC(.admin_good = 1, .admin = HISTORY_FEEDBACK_GOOD),
     REC(.junk = 50), 0.5, 3, HISTORY_GOOD, 0},
    {"network admin junk for a new host", NONE,
     REC(.admin_junk = 1, .admin = HISTORY_FEEDBACK_JUNK), 0.5, 3, HISTORY_JUNK, 1},
    {"admin counts are observations", REC(.clean = 1, .admin_junk = 3), NONE, 0.5, 3, HISTORY_JUNK,
     0},
    {"expired host record", REC(.junk = 9, .last_seen_ago = 31 * DAY), NONE, 0.5, 3, HISTORY_NEW,
     0},
    {"expired host, live network", REC(.junk = 9, .last_seen_ago = 31 * DAY),
     REC(.clean = 9, .good_hosts = 3), 0.5, 3, HISTORY_GOOD, 1},
};

static void fill_entry(struct history_entry *e, const struct rec_spec *s, const char *net, int bits)
{
	memset(e, 0, sizeof(*e));
	e->net = net_of(net, bits);
	e->present = s->present;
	e->rec.version = HISTORY_RECORD_VERSION;
	e->rec.first_seen = T0 - 40 * DAY;
	e->rec.last_seen = T0 - s->last_seen_ago;
	e->rec.clean = e->rec.accepted_good = s->clean;
	e->rec.good_hosts = s->good_hosts;
	e->rec.junk_hosts = s->junk_hosts;
	e->rec.junk = s->junk;
	e->rec.virus = s->virus;
	e->rec.admin_good = s->admin_good;
	e->rec.admin_junk = s->admin_junk;
	e->rec.admin = s->admin;
	e->rec.sessions = s->sessions + s->clean + s->junk;
}

Test(history, predict_table)
{
	for (size_t i = 0; i < sizeof(predict_cases) / sizeof(predict_cases[0]); i++) {
		const struct predict_case *c = &predict_cases[i];
		struct history_entry host, agg;
		struct history_prediction pr;
		struct history_params p = {.junk_threshold = c->threshold,
		                           .min_history = c->min_history,
		                           .max_age = 30 * DAY};
		fill_entry(&host, &c->host, "192.0.2.7", 32);
		fill_entry(&agg, &c->agg, "192.0.2.0", 24);
		enum history_class got = history_predict(&host, &agg, &p, T0, &pr);
		cr_expect_eq(got, c->want, "%s: got %s, want %s (%s)", c->what,
		             history_class_name(got), history_class_name(c->want), pr.reason);
		cr_expect_eq(pr.cls, got, "%s: out->cls", c->what);
		if (got != HISTORY_NEW || c->host.present || c->agg.present)
			cr_expect_eq(pr.from_aggregate, c->want_from_agg, "%s: from_aggregate (%s)",
			             c->what, pr.reason);
		cr_expect_neq(pr.reason[0], '\0', "%s: empty reason", c->what);
	}
}

Test(history, predict_reasons_and_first_seen)
{
	struct history_entry host, agg;
	struct history_prediction pr;
	struct rec_spec h = REC(.clean = 1, .junk = 9), a = REC(.clean = 3);
	fill_entry(&host, &h, "192.0.2.7", 32);
	fill_entry(&agg, &a, "192.0.2.0", 24);
	agg.rec.first_seen = T0 - 50 * DAY;
	cr_assert_eq(history_predict(&host, &agg, &params, T0, &pr), HISTORY_JUNK);
	cr_expect_str_eq(pr.reason, "host 192.0.2.7/32: 9 of 10 observations junk (90%)");
	cr_expect_eq(pr.observations, 10);
	cr_expect_float_eq(pr.junk_share, 0.9, 1e-9);
	cr_expect_eq(pr.first_seen, T0 - 50 * DAY);
	cr_assert_eq(history_predict(NULL, NULL, NULL, T0, &pr), HISTORY_NEW);
	cr_expect_str_eq(pr.reason, "no history");
	cr_expect_eq(pr.first_seen, 0);
	cr_expect_str_eq(history_class_name(HISTORY_JUNK), "junk");
}

/* ---- the store -------------------------------------------------------------- */

Test(history, new_address_is_new)
{
	struct history *h = open_store(0);
	struct history_prediction pr;
	cr_expect_eq(predict_ip(h, "192.0.2.1", T0, &pr), HISTORY_NEW);
	cr_expect_str_eq(pr.reason, "no history");
	history_close(h);
}

Test(history, good_events_make_good)
{
	struct history *h = open_store(0);
	struct history_entry host, agg;
	struct history_prediction pr;
	for (int i = 0; i < 4; i++)
		record(h, "192.0.2.1", GOOD_MAIL, T0 + i);
	lookup(h, "192.0.2.1", T0 + 10, &host, &agg);
	cr_assert(host.present && agg.present);
	cr_expect_eq(host.rec.sessions, 4);
	cr_expect_eq(host.rec.accepted_good, 4);
	cr_expect_eq(host.rec.clean, 4);
	cr_expect_eq(host.rec.first_seen, T0);
	cr_expect_eq(host.rec.last_seen, T0 + 3);
	cr_expect_eq(agg.rec.accepted_good, 4);
	cr_expect_eq(host.net.bits, 32);
	cr_expect_eq(agg.net.bits, 24);
	cr_expect_eq(history_predict(&host, &agg, &params, T0 + 10, &pr), HISTORY_GOOD);
	history_close(h);
}

Test(history, junk_after_min_history)
{
	struct history *h = open_store(0);
	struct history_prediction pr;
	record(h, "192.0.2.9", JUNK_SESSION, T0);
	record(h, "192.0.2.9", JUNK_SESSION, T0 + 1);
	/* Two observations, min_history 3: not junk yet. */
	cr_expect_neq(predict_ip(h, "192.0.2.9", T0 + 2, &pr), HISTORY_JUNK, "%s", pr.reason);
	record(h, "192.0.2.9", JUNK_SESSION, T0 + 2);
	cr_expect_eq(predict_ip(h, "192.0.2.9", T0 + 3, &pr), HISTORY_JUNK, "%s", pr.reason);
	cr_expect_eq(pr.from_aggregate, 0);
	history_close(h);
}

Test(history, ipv4_aggregate)
{
	struct history *h = open_store(0);
	struct history_prediction pr;
	/* Several hosts of one /24 send junk; a host never seen there is
	 * predicted junk through the network, one in the next /24 is new. */
	const char *junk_hosts[] = {"198.51.100.1", "198.51.100.2", "198.51.100.3"};
	for (size_t i = 0; i < 3; i++)
		record(h, junk_hosts[i], JUNK_SESSION, T0);
	cr_expect_eq(predict_ip(h, "198.51.100.200", T0, &pr), HISTORY_JUNK, "%s", pr.reason);
	cr_expect_eq(pr.from_aggregate, 1);
	cr_expect(strstr(pr.reason, "198.51.100.0/24") != NULL, "%s", pr.reason);
	cr_expect_eq(predict_ip(h, "198.51.101.200", T0, &pr), HISTORY_NEW);
	/* Large senders retry from another address of the same network: a
	 * good /24 vouches for a host we have not seen. */
	for (int i = 1; i <= 3; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		record(h, ip, GOOD_MAIL, T0);
	}
	cr_expect_eq(predict_ip(h, "203.0.113.77", T0, &pr), HISTORY_GOOD, "%s", pr.reason);
	cr_expect_eq(pr.from_aggregate, 1);
	history_close(h);
}

Test(history, ipv6_aggregate_and_mapped)
{
	struct history *h = open_store(0);
	struct history_entry host, agg;
	struct history_prediction pr;
	const char *junk6[] = {"2001:db8:1:2::5", "2001:db8:1:2::6", "2001:db8:1:2::7"};
	for (int i = 0; i < 3; i++)
		record(h, junk6[i], JUNK_SESSION, T0);
	lookup(h, "2001:db8:1:2::5", T0, &host, &agg);
	cr_expect_eq(host.net.bits, 128);
	cr_expect_eq(agg.net.bits, 64);
	cr_expect_eq(agg.rec.junk, 3);
	cr_expect_eq(agg.rec.junk_hosts, 3);
	cr_expect_eq(predict_ip(h, "2001:db8:1:2:ffff::9", T0, &pr), HISTORY_JUNK, "%s", pr.reason);
	cr_expect(strstr(pr.reason, "2001:db8:1:2::/64") != NULL, "%s", pr.reason);
	cr_expect_eq(predict_ip(h, "2001:db8:1:3::5", T0, &pr), HISTORY_NEW);
	/* An IPv4-mapped IPv6 client is the IPv4 host. */
	record(h, "::ffff:192.0.2.44", GOOD_MAIL, T0);
	lookup(h, "192.0.2.44", T0, &host, &agg);
	cr_expect(host.present);
	cr_expect_eq(host.net.family, AF_INET);
	cr_expect_eq(host.rec.accepted_good, 1);
	history_close(h);
}

Test(history, configurable_prefixes)
{
	struct history *h = open_store(0);
	struct history_entry host, agg;
	cr_expect_eq(history_configure(h, 7, 64, DAY), -1);
	cr_expect_eq(history_configure(h, 24, 129, DAY), -1);
	cr_expect_eq(history_configure(h, 24, 64, -1), -1);
	cr_assert_eq(history_configure(h, 16, 48, 30 * DAY), 0);
	record(h, "10.1.2.3", GOOD_MAIL, T0);
	lookup(h, "10.1.200.200", T0, &host, &agg);
	cr_expect(!host.present);
	cr_expect(agg.present);
	cr_expect_eq(agg.net.bits, 16);
	record(h, "2001:db8:aa::1", GOOD_MAIL, T0);
	lookup(h, "2001:db8:aa:ffff::1", T0, &host, &agg);
	cr_expect(agg.present);
	cr_expect_eq(agg.net.bits, 48);
	/* The full length turns aggregation off. */
	cr_assert_eq(history_configure(h, 32, 128, 30 * DAY), 0);
	record(h, "10.9.9.9", GOOD_MAIL, T0);
	lookup(h, "10.9.9.10", T0, &host, &agg);
	cr_expect(!host.present && !agg.present);
	size_t n = 0;
	cr_assert_eq(history_stat(h, &n, NULL), 0);
	cr_expect_eq(n, 5, "records: %zu", n); /* 10.1.2.3 + /16, v6 host + /48, 10.9.9.9 */
	history_close(h);
}

Test(history, score_and_batch)
{
	struct history *h = open_store(0);
	struct history_entry host, agg;
	struct sockaddr_storage a = sa("192.0.2.5"), b = sa("192.0.2.6");
	struct history_event ev[4] = {
	    {(struct sockaddr *)&a, HISTORY_EV_SESSION | HISTORY_EV_SCORE, 1.0, T0},
	    {(struct sockaddr *)&a, HISTORY_EV_SCORE, 0.0, T0 + 1},
	    {(struct sockaddr *)&a, HISTORY_EV_SCORE, NAN, T0 + 2},
	    {(struct sockaddr *)&b, HISTORY_EV_LO | HISTORY_EV_JUNK | HISTORY_EV_SCORE, 1e300, T0},
	};
	cr_assert_eq(history_record_many(h, ev, 4), 0);
	lookup(h, "192.0.2.5", T0, &host, &agg);
	cr_expect_float_eq(host.rec.score, 1.0 - HISTORY_SCORE_ALPHA, 1e-6);
	cr_expect_eq(host.rec.score_n, 2);
	cr_expect_eq(host.rec.last_seen, T0 + 2);
	cr_expect_eq(agg.rec.sessions, 1);
	cr_expect_eq(agg.rec.score_n, 3); /* the NaN sample is ignored */
	lookup(h, "192.0.2.6", T0, &host, &agg);
	cr_expect_eq(host.rec.accepted_lo, 1);
	cr_expect_eq(host.rec.clean, 0, "junk-verdict mail is not clean");
	cr_expect(isfinite(host.rec.score));
	/* A bad address fails the call without crashing or writing. */
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct history_event bad = {(struct sockaddr *)&un, GOOD_MAIL, 0, T0};
	cr_expect_eq(history_record(h, &bad), -1);
	cr_expect_eq(history_lookup(h, (struct sockaddr *)&un, T0, &host, &agg), -1);
	cr_expect(!host.present && !agg.present);
	history_close(h);
}

Test(history, expiry_and_sweep)
{
	struct history *h = open_store(0);
	struct history_entry host, agg;
	cr_assert_eq(history_configure(h, 24, 64, 10 * DAY), 0);
	record(h, "192.0.2.1", JUNK_SESSION, T0);
	lookup(h, "192.0.2.1", T0 + 10 * DAY, &host, &agg);
	cr_expect(host.present, "exactly max_age old is still present");
	lookup(h, "192.0.2.1", T0 + 10 * DAY + 1, &host, &agg);
	cr_expect(!host.present && !agg.present, "older than max_age is absent");
	/* Recording on an expired record starts afresh. */
	record(h, "192.0.2.1", GOOD_MAIL, T0 + 20 * DAY);
	lookup(h, "192.0.2.1", T0 + 20 * DAY, &host, &agg);
	cr_expect_eq(host.rec.junk, 0);
	cr_expect_eq(host.rec.first_seen, T0 + 20 * DAY);

	/* 500 old hosts (in two /24s), 20 recent ones. */
	struct history_event *ev = calloc(520, sizeof(*ev));
	struct sockaddr_storage *ss = calloc(520, sizeof(*ss));
	cr_assert(ev && ss);
	for (int i = 0; i < 520; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i < 500 ? 1 : 2, i / 250, i % 250 + 1);
		ss[i] = sa(ip);
		ev[i].addr = (struct sockaddr *)&ss[i];
		ev[i].flags = GOOD_MAIL;
		ev[i].now = i < 500 ? T0 : T0 + 25 * DAY;
	}
	cr_assert_eq(history_record_many(h, ev, 520), 0);
	free(ev);
	free(ss);
	size_t before = 0, after = 0, removed_total = 0;
	cr_assert_eq(history_stat(h, &before, NULL), 0);
	/* 192.0.2.1 and its /24, 500 + 2 old, 20 + 1 recent */
	cr_expect_eq(before, 525, "records before: %zu", before);
	int rc, calls = 0;
	do {
		size_t removed = 0;
		rc = history_sweep(h, T0 + 26 * DAY, 10 * DAY, 50, &removed);
		cr_assert_geq(rc, 0);
		cr_assert_leq(removed, 50);
		removed_total += removed;
		calls++;
	} while (rc == 0 && calls < 100);
	cr_expect_eq(rc, 1);
	cr_expect_geq(calls, 11, "bounded work: %d calls for 525 records", calls);
	cr_expect_eq(removed_total, 502, "removed %zu", removed_total);
	cr_assert_eq(history_stat(h, &after, NULL), 0);
	cr_expect_eq(after, 23);
	lookup(h, "10.2.2.1", T0 + 26 * DAY, &host, &agg);
	cr_expect(host.present);
	history_close(h);
}

Test(history, feedback)
{
	struct history *h = open_store(0);
	struct history_prediction pr;
	struct history_entry host, agg;
	size_t n = 0;
	for (int i = 0; i < 5; i++)
		record(h, "192.0.2.1", GOOD_MAIL, T0);
	struct cidr one = net_of("192.0.2.1", 32);
	cr_assert_eq(history_feedback(h, &one, HISTORY_FEEDBACK_JUNK, T0 + 5, &n), 0);
	cr_expect_eq(n, 2, "host and its network: %zu", n);
	cr_expect_eq(predict_ip(h, "192.0.2.1", T0 + 6, &pr), HISTORY_JUNK);
	cr_expect_str_eq(pr.reason, "host 192.0.2.1/32: admin feedback junk");
	lookup(h, "192.0.2.1", T0 + 6, &host, &agg);
	cr_expect_eq(host.rec.admin_junk, 1);
	cr_expect_eq(host.rec.admin_at, T0 + 5);
	cr_expect_eq(agg.rec.admin_junk, 1);
	cr_expect_eq(agg.rec.admin, HISTORY_FEEDBACK_NONE, "one host does not condemn its network");
	/* Nor does it vouch for it: one host is one vote (now a junk one). */
	cr_expect_eq(agg.rec.junk_hosts, 1);
	cr_expect_eq(agg.rec.good_hosts, 0);
	cr_expect_eq(predict_ip(h, "192.0.2.2", T0 + 6, &pr), HISTORY_NEW, "%s", pr.reason);
	cr_assert_eq(history_feedback(h, &one, HISTORY_FEEDBACK_GOOD, T0 + 7, NULL), 0);
	cr_expect_eq(predict_ip(h, "192.0.2.1", T0 + 8, &pr), HISTORY_GOOD);

	/* A whole /24: existing hosts and hosts never seen. */
	record(h, "198.51.100.10", GOOD_MAIL, T0);
	struct cidr net24 = net_of("198.51.100.0", 24);
	cr_assert_eq(history_feedback(h, &net24, HISTORY_FEEDBACK_JUNK, T0 + 1, &n), 0);
	cr_expect_eq(n, 2);
	cr_expect_eq(predict_ip(h, "198.51.100.10", T0 + 2, &pr), HISTORY_JUNK, "%s", pr.reason);
	cr_expect_eq(predict_ip(h, "198.51.100.99", T0 + 2, &pr), HISTORY_JUNK, "%s", pr.reason);
	cr_expect_eq(pr.from_aggregate, 1);

	/* A /22 creates its four /24 records; a /28 its 16 hosts. */
	struct cidr net22 = net_of("203.0.113.0", 22);
	cr_assert_eq(history_feedback(h, &net22, HISTORY_FEEDBACK_GOOD, T0, &n), 0);
	cr_expect_eq(n, 4);
	cr_expect_eq(predict_ip(h, "203.0.115.250", T0, &pr), HISTORY_GOOD, "%s", pr.reason);
	cr_expect_eq(predict_ip(h, "203.0.116.1", T0, &pr), HISTORY_NEW);
	struct cidr net28 = net_of("100.64.0.16", 28);
	cr_assert_eq(history_feedback(h, &net28, HISTORY_FEEDBACK_JUNK, T0, &n), 0);
	cr_expect_eq(n, 16);
	cr_expect_eq(predict_ip(h, "100.64.0.31", T0, &pr), HISTORY_JUNK);
	cr_expect_eq(predict_ip(h, "100.64.0.32", T0, &pr), HISTORY_NEW);

	/* IPv6 /64 and an IPv4-mapped host given as IPv6. */
	struct cidr net64 = net_of("2001:db8:5:6::", 64);
	cr_assert_eq(history_feedback(h, &net64, HISTORY_FEEDBACK_JUNK, T0, &n), 0);
	cr_expect_eq(predict_ip(h, "2001:db8:5:6::abcd", T0, &pr), HISTORY_JUNK);
	struct cidr mapped = net_of("::ffff:192.0.2.200", 128);
	cr_assert_eq(history_feedback(h, &mapped, HISTORY_FEEDBACK_JUNK, T0 + 9, &n), 0);
	cr_expect_eq(predict_ip(h, "192.0.2.200", T0 + 9, &pr), HISTORY_JUNK);

	/* Refused: too large, bad verdict, bad network. */
	struct cidr net7 = net_of("10.0.0.0", 7);
	cr_expect_eq(history_feedback(h, &net7, HISTORY_FEEDBACK_JUNK, T0, &n), -1);
	cr_expect_eq(history_feedback(h, &net24, HISTORY_FEEDBACK_NONE, T0, &n), -1);
	struct cidr bad = net24;
	bad.bits = 33;
	cr_expect_eq(history_feedback(h, &bad, HISTORY_FEEDBACK_JUNK, T0, &n), -1);
	history_close(h);
}

struct listing {
	char text[64][HISTORY_NET_TEXT];
	size_t n;
	size_t stop_after;
	struct history *h; /* write from inside the callback */
};

static int list_cb(const char *text, const struct history_entry *e, void *arg)
{
	struct listing *l = arg;
	cr_assert(e->present);
	if (l->n < 64)
		snprintf(l->text[l->n], HISTORY_NET_TEXT, "%s", text);
	l->n++;
	if (l->h != NULL) {
		struct cidr c = e->net;
		cr_assert_eq(history_feedback(l->h, &c, HISTORY_FEEDBACK_JUNK, T0 + 1, NULL), 0);
	}
	return l->stop_after && l->n >= l->stop_after;
}

Test(history, iterate)
{
	struct history *h = open_store(0);
	static struct listing l;
	record(h, "2001:db8::1", GOOD_MAIL, T0);
	record(h, "192.0.2.10", GOOD_MAIL, T0);
	record(h, "192.0.2.9", GOOD_MAIL, T0);
	record(h, "10.0.0.1", GOOD_MAIL, T0);
	record(h, "10.0.0.2", GOOD_MAIL, T0 - 40 * DAY); /* expired */
	memset(&l, 0, sizeof(l));
	cr_assert_eq(history_iterate(h, NULL, T0, list_cb, &l), 7);
	const char *want[] = {"10.0.0.0/24",   "192.0.2.0/24",  "10.0.0.1/32",    "192.0.2.9/32",
	                      "192.0.2.10/32", "2001:db8::/64", "2001:db8::1/128"};
	for (size_t i = 0; i < 7; i++)
		cr_expect_str_eq(l.text[i], want[i], "item %zu", i);
	memset(&l, 0, sizeof(l));
	struct cidr within = net_of("192.0.2.0", 24);
	cr_expect_eq(history_iterate(h, &within, T0, list_cb, &l), 3);
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	cr_expect_eq(history_iterate(h, NULL, T0, list_cb, &l), 2);
	/* The callback may write. */
	memset(&l, 0, sizeof(l));
	l.h = h;
	cr_expect_eq(history_iterate(h, &within, T0, list_cb, &l), 3);
	struct history_prediction pr;
	cr_expect_eq(predict_ip(h, "192.0.2.9", T0 + 1, &pr), HISTORY_JUNK);
	history_close(h);
}

/* ---- map growth ------------------------------------------------------------ */

/* Record n distinct hosts 10.a.b.c, in batches of 1000 events. */
static int fill_hosts(struct history *h, int n, int64_t now)
{
	struct history_event *ev = calloc(1000, sizeof(*ev));
	struct sockaddr_in *s4 = calloc(1000, sizeof(*s4));
	int rc = 0;
	if (ev == NULL || s4 == NULL)
		return -1;
	for (int base = 0; base < n && rc == 0; base += 1000) {
		int m = n - base < 1000 ? n - base : 1000;
		for (int i = 0; i < m; i++) {
			uint32_t a = 0x0a000000u | (uint32_t)(base + i + 1);
			s4[i].sin_family = AF_INET;
			s4[i].sin_addr.s_addr = htonl(a);
			ev[i].addr = (struct sockaddr *)&s4[i];
			ev[i].flags = GOOD_MAIL;
			ev[i].now = now;
		}
		rc = history_record_many(h, ev, (size_t)m);
	}
	free(ev);
	free(s4);
	return rc;
}

static int has_host(struct history *h, int i)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct history_entry host, agg;
	s4.sin_addr.s_addr = htonl(0x0a000000u | (uint32_t)i);
	if (history_lookup(h, (struct sockaddr *)&s4, T0, &host, &agg) != 0)
		return 0;
	return host.present && host.rec.accepted_good == 1;
}

Test(history, map_growth)
{
	struct history *h = open_store(1 << 20);
	size_t map0 = 0, map1 = 0, n = 0;
	cr_assert_eq(history_stat(h, NULL, &map0), 0);
	cr_assert_eq(fill_hosts(h, 30000, T0), 0);
	cr_assert_eq(history_stat(h, &n, &map1), 0);
	cr_expect_gt(map1, map0, "map %zu -> %zu", map0, map1);
	cr_expect_eq(n, 30000 + 118, "records %zu", n); /* 10.0.0.1 .. 10.0.117.48 */
	for (int i = 1; i <= 30000; i += 997)
		cr_expect(has_host(h, i), "host %d", i);
	history_close(h);
	/* Reopening with a small map keeps everything readable. */
	h = open_store(1 << 20);
	cr_expect(has_host(h, 30000));
	history_close(h);
}

struct thread_arg {
	struct history *h;
	int id;
	int failures;
};

/* Writer threads: 10.<id+1>.x.y, 8000 hosts each in batches of 500, so
 * the map must grow while the other threads hold read transactions. */
static void *writer_thread(void *p)
{
	struct thread_arg *a = p;
	struct history_event ev[500];
	struct sockaddr_in s4[500];
	for (int base = 0; base < 8000; base += 500) {
		for (int i = 0; i < 500; i++) {
			memset(&s4[i], 0, sizeof(s4[i]));
			s4[i].sin_family = AF_INET;
			s4[i].sin_addr.s_addr =
			    htonl(((uint32_t)(10 << 24)) | ((uint32_t)(a->id + 1) << 16) |
			          (uint32_t)(base + i));
			ev[i] = (struct history_event){(struct sockaddr *)&s4[i], GOOD_MAIL, 0, T0};
		}
		if (history_record_many(a->h, ev, 500) != 0)
			a->failures++;
	}
	return NULL;
}

static void *reader_thread(void *p)
{
	struct thread_arg *a = p;
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	for (int i = 0; i < 20000; i++) {
		struct history_entry host, agg;
		s4.sin_addr.s_addr = htonl((10u << 24) | (1u << 16) | (uint32_t)(i % 8000));
		if (history_lookup(a->h, (struct sockaddr *)&s4, T0, &host, &agg) != 0)
			a->failures++;
		else if (host.present && (!agg.present || agg.rec.sessions < host.rec.sessions))
			a->failures++;
	}
	return NULL;
}

Test(history, threads_share_a_handle_while_the_map_grows)
{
	struct history *h = open_store(1 << 20);
	pthread_t th[4];
	struct thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){h, i, 0};
		cr_assert_eq(
		    pthread_create(&th[i], NULL, i < 2 ? writer_thread : reader_thread, &args[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(args[i].failures, 0, "thread %d", i);
	}
	size_t n = 0, map = 0;
	cr_assert_eq(history_stat(h, &n, &map), 0);
	cr_expect_eq(n, 2 * (8000 + 32), "records %zu", n);
	cr_expect_gt(map, (size_t)1 << 20);
	history_close(h);
}

/* ---- several processes --------------------------------------------------- */

/* Wait for a child with a deadline; kill it when it overstays. */
static int wait_child(pid_t pid, int timeout_ms)
{
	int status;
	for (int waited = 0; waited < timeout_ms; waited++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0 && errno != EINTR)
			return -1;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -2;
}

Test(history, map_growth_across_processes)
{
	struct history *h = open_store(1 << 20);
	struct history_entry host, agg;
	lookup(h, "10.0.0.1", T0, &host, &agg); /* map this process at 1 MiB */
	cr_expect(!host.present);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* The inherited handle must not be used; a fresh one must. */
		struct history *mine = history_open(dbdir, 1 << 20, NULL, 0);
		int rc = mine != NULL && fill_hosts(mine, 30000, T0) == 0 ? 0 : 1;
		history_close(mine);
		_exit(rc);
	}
	cr_assert_eq(wait_child(pid, 60000), 0);
	/* The other process grew the map past ours: MDB_MAP_RESIZED inside,
	 * adopted transparently. */
	cr_expect(has_host(h, 29999));
	cr_assert_eq(fill_hosts(h, 40000, T0), 0);
	lookup(h, "10.0.0.1", T0, &host, &agg);
	cr_expect_eq(host.rec.accepted_good, 2);
	history_close(h);
}

Test(history, handle_inherited_across_fork_is_refused)
{
	struct history *h = open_store(0);
	record(h, "192.0.2.1", GOOD_MAIL, T0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_storage ss = sa("192.0.2.1");
		struct history_entry host, agg;
		int refused = history_lookup(h, (struct sockaddr *)&ss, T0, &host, &agg) == -1;
		history_close(h); /* frees memory only */
		_exit(refused ? 0 : 1);
	}
	cr_expect_eq(wait_child(pid, 20000), 0);
	/* The parent's environment is untouched. */
	struct history_entry host, agg;
	lookup(h, "192.0.2.1", T0, &host, &agg);
	cr_expect(host.present);
	record(h, "192.0.2.1", GOOD_MAIL, T0);
	history_close(h);
}

#define WRITERS 4
#define WRITES 60

Test(history, concurrent_writer_processes)
{
	pid_t pids[WRITERS + 1];
	for (int w = 0; w <= WRITERS; w++) {
		pids[w] = fork();
		cr_assert_geq(pids[w], 0);
		if (pids[w] != 0)
			continue;
		struct history *h = history_open(dbdir, 0, NULL, 0);
		if (h == NULL)
			_exit(2);
		int bad = 0;
		if (w == WRITERS) {
			/* A reader: every snapshot is consistent, and the
			 * network has at least the shared host's sessions. */
			struct sockaddr_storage ss = sa("192.0.2.1");
			for (int i = 0; i < 2000 && !bad; i++) {
				struct history_entry host, agg;
				if (history_lookup(h, (struct sockaddr *)&ss, T0, &host, &agg) != 0)
					bad = 1;
				else if (host.present && agg.rec.sessions < host.rec.sessions)
					bad = 1;
			}
		} else {
			char own[32];
			snprintf(own, sizeof(own), "192.0.2.%d", 10 + w);
			struct sockaddr_storage shared = sa("192.0.2.1"), mine = sa(own);
			for (int i = 0; i < WRITES && !bad; i++) {
				struct history_event ev = {(struct sockaddr *)&shared, GOOD_MAIL, 0,
				                           T0};
				bad = history_record(h, &ev) != 0;
				ev.addr = (struct sockaddr *)&mine;
				bad = bad || history_record(h, &ev) != 0;
			}
		}
		history_close(h);
		_exit(bad);
	}
	for (int w = 0; w <= WRITERS; w++)
		cr_expect_eq(wait_child(pids[w], 100000), 0, "child %d", w);
	struct history *h = open_store(0);
	struct history_entry host, agg;
	lookup(h, "192.0.2.1", T0, &host, &agg);
	cr_expect_eq(host.rec.sessions, WRITERS * WRITES, "no update lost: %u", host.rec.sessions);
	cr_expect_eq(agg.rec.sessions, 2 * WRITERS * WRITES);
	for (int w = 0; w < WRITERS; w++) {
		char own[32];
		snprintf(own, sizeof(own), "192.0.2.%d", 10 + w);
		lookup(h, own, T0, &host, &agg);
		cr_expect_eq(host.rec.sessions, WRITES, "%s", own);
	}
	history_close(h);
}

/* ---- crash safety ---------------------------------------------------------- */

#define CRASH_HOSTS 16
#define CRASH_ROUNDS 15

/* The child: batches of three events on hosts of 10.9.8.0/24, forever
 * (bounded). Each batch is one transaction, so in every committed state
 * the network's counters equal the sum of its hosts'. */
static void crash_writer(unsigned seed, int ready_fd)
{
	struct history *h = history_open(dbdir, 1 << 20, NULL, 0);
	if (h == NULL)
		_exit(2);
	struct sockaddr_storage ss[3];
	struct history_event ev[3];
	for (int i = 0; i < 100000; i++) {
		for (int k = 0; k < 3; k++) {
			char ip[32];
			snprintf(ip, sizeof(ip), "10.9.8.%d",
			         (int)(rand_r(&seed) % CRASH_HOSTS) + 1);
			ss[k] = sa(ip);
			ev[k].addr = (struct sockaddr *)&ss[k];
			ev[k].flags = GOOD_MAIL | HISTORY_EV_SCORE;
			ev[k].score = 0.5;
			ev[k].now = T0 + i;
		}
		if (history_record_many(h, ev, 3) != 0)
			_exit(3);
		if (i == 0 && (write(ready_fd, "x", 1) != 1 || close(ready_fd) != 0))
			_exit(4);
		if (i % 50 == 49)
			history_sweep(h, T0 + i, 30 * DAY, 8, NULL);
	}
	_exit(0);
}

struct crash_sum {
	uint64_t sessions, good, clean;
	size_t listed;
};

static int crash_cb(const char *text, const struct history_entry *e, void *arg)
{
	struct crash_sum *s = arg;
	s->listed++;
	cr_expect_eq(e->rec.version, HISTORY_RECORD_VERSION, "%s", text);
	cr_expect_leq(e->rec.first_seen, e->rec.last_seen, "%s", text);
	cr_expect_eq(e->rec.sessions, e->rec.accepted_good, "%s", text);
	cr_expect_eq(e->rec.clean, e->rec.accepted_good, "%s", text);
	if (e->net.bits == 32) {
		s->sessions += e->rec.sessions;
		s->good += e->rec.accepted_good;
	}
	return 0;
}

Test(history, writers_killed_at_random_moments)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	uint64_t prev = 0;
	for (int round = 0; round < CRASH_ROUNDS; round++) {
		int ready[2];
		cr_assert_eq(pipe(ready), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(ready[0]);
			crash_writer(seed + (unsigned)round, ready[1]);
		}
		close(ready[1]);
		/* Kill at a random moment once the writer is in its loop. */
		struct pollfd pfd = {ready[0], POLLIN, 0};
		cr_expect_eq(poll(&pfd, 1, 20000), 1, "round %d: writer never started", round);
		close(ready[0]);
		usleep(rand_r(&seed) % 50000);
		kill(pid, SIGKILL);
		int st = wait_child(pid, 20000);
		cr_assert(st == 128 + SIGKILL || st == 0, "round %d: writer status %d", round, st);

		struct history *h = open_store(1 << 20);
		struct crash_sum sum = {0};
		size_t records = 0;
		cr_assert_geq(history_iterate(h, NULL, T0, crash_cb, &sum), 0);
		cr_assert_eq(history_stat(h, &records, NULL), 0);
		cr_expect_eq(sum.listed, records, "round %d: every record readable", round);
		struct history_entry host, agg;
		lookup(h, "10.9.8.1", T0, &host, &agg);
		if (sum.sessions > 0) {
			cr_assert(agg.present, "round %d", round);
			cr_expect_eq(agg.rec.sessions, sum.sessions,
			             "round %d: network %u vs hosts %llu: a transaction was torn",
			             round, agg.rec.sessions, (unsigned long long)sum.sessions);
		}
		cr_expect_geq(sum.sessions, prev, "round %d: committed updates lost", round);
		prev = sum.sessions;
		history_close(h);
	}
	cr_expect_gt(prev, 0, "the writers never committed anything");
	/* After all the killing, a new writer still gets the write lock. */
	struct history *h = open_store(0);
	record(h, "10.9.8.1", GOOD_MAIL, T0);
	history_close(h);
}

/* ---- unreadable stores --------------------------------------------------- */

static void write_file(const char *name, const void *data, size_t len)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dbdir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

Test(history, garbage_store_is_a_clear_error)
{
	char junk[16384], err[512] = "";
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	cr_assert_eq(mkdir_p(dbdir, 0700), 0);
	write_file("data.mdb", junk, sizeof(junk));
	cr_expect_null(history_open(dbdir, 0, err, sizeof(err)));
	cr_expect(strstr(err, "unreadable") != NULL, "err: %s", err);
}

Test(history, truncated_store_is_a_clear_error)
{
	char p[256], err[512] = "";
	struct history *h = open_store(0);
	cr_assert_eq(fill_hosts(h, 5000, T0), 0);
	history_close(h);
	snprintf(p, sizeof(p), "%s/data.mdb", dbdir);
	cr_assert_eq(truncate(p, 3 * 4096), 0);
	cr_expect_null(history_open(dbdir, 0, err, sizeof(err)));
	cr_expect(strstr(err, "truncated") != NULL, "err: %s", err);
}

Test(history, unreadable_record_is_absent)
{
	struct history *h = open_store(0);
	record(h, "192.0.2.1", GOOD_MAIL, T0);
	history_close(h);
	/* Plant a record of the wrong size and one of another version. */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_open(env, dbdir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	uint8_t k1[6] = {4, 32, 192, 0, 2, 1}, k2[6] = {4, 32, 192, 0, 2, 2};
	struct history_record r = {.version = 99};
	MDB_val kv = {6, k1}, v = {5, "short"};
	cr_assert_eq(mdb_put(txn, dbi, &kv, &v, 0), 0);
	kv.mv_data = k2;
	v.mv_size = sizeof(r);
	v.mv_data = &r;
	cr_assert_eq(mdb_put(txn, dbi, &kv, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	h = open_store(0);
	struct history_entry host, agg;
	lookup(h, "192.0.2.1", T0, &host, &agg);
	cr_expect(!host.present);
	cr_expect(agg.present);
	lookup(h, "192.0.2.2", T0, &host, &agg);
	cr_expect(!host.present);
	/* A new event replaces the unreadable record. */
	record(h, "192.0.2.1", GOOD_MAIL, T0);
	lookup(h, "192.0.2.1", T0, &host, &agg);
	cr_expect(host.present);
	cr_expect_eq(host.rec.sessions, 1);
	/* The sweep removes the other one. */
	size_t removed = 0, n = 0;
	cr_expect_eq(history_sweep(h, T0, 30 * DAY, 100, &removed), 1);
	cr_expect_eq(removed, 1);
	cr_assert_eq(history_stat(h, &n, NULL), 0);
	cr_expect_eq(n, 2);
	history_close(h);
}

/* Issue-level behaviour of the network aggregate, through the store. */
Test(history, network_needs_distinct_hosts)
{
	struct history *h = open_store(0);
	struct history_prediction pr;
	/* One false verdict of one host does not spill to its neighbours. */
	record(h, "192.0.2.10", JUNK_SESSION, T0);
	cr_expect_eq(predict_ip(h, "192.0.2.11", T0 + 1, &pr), HISTORY_NEW, "%s", pr.reason);
	/* Nor do many sessions of that one host. */
	for (int i = 0; i < 10; i++)
		record(h, "192.0.2.10", JUNK_SESSION, T0 + 2 + i);
	cr_expect_eq(predict_ip(h, "192.0.2.11", T0 + 20, &pr), HISTORY_NEW, "%s", pr.reason);
	/* Five distinct junk hosts: a new host of the /24 is predicted junk,
	 * and junk_since is the latest junk seen there. */
	for (int i = 1; i <= 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		record(h, ip, JUNK_SESSION, T0 + i);
	}
	cr_expect_eq(predict_ip(h, "198.51.100.200", T0 + 10, &pr), HISTORY_JUNK, "%s", pr.reason);
	cr_expect_eq(pr.from_aggregate, 1);
	cr_expect_eq(pr.junk_since, T0 + 5);
	cr_expect(strstr(pr.reason, "5 junk and 0 good hosts") != NULL, "%s", pr.reason);
	/* A neighbour with a good history of its own is not. */
	record(h, "198.51.100.50", GOOD_MAIL, T0);
	record(h, "198.51.100.50", GOOD_MAIL, T0 + 1);
	cr_expect_eq(predict_ip(h, "198.51.100.50", T0 + 10, &pr), HISTORY_GOOD, "%s", pr.reason);
	/* A host that turns from junk to good moves its vote. */
	for (int i = 0; i < 3; i++)
		record(h, "198.51.100.1", GOOD_MAIL, T0 + 20 + i);
	struct history_entry host, agg;
	lookup(h, "198.51.100.1", T0 + 30, &host, &agg);
	cr_expect_eq(agg.rec.junk_hosts, 4);
	cr_expect_eq(agg.rec.good_hosts, 2);
	history_close(h);
}
