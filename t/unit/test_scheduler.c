/*
 * test_scheduler.c: unit tests of src/scan/scheduler.c, the order in which
 * the scanner starts waiting messages.
 *
 * The rules are a table: each row lists waiting messages (class, label,
 * arrival second), the schedule settings and the clock, and the order of
 * labels the scheduler must pick. The rest covers arrivals while picking
 * (a hi message arriving behind 200 lo messages), duplicates and removal.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "queueid.h"
#include "scan.h"

#define T0 1790000000LL /* an arbitrary arrival second */

/* A queue ID that arrived at second sec (+ usec); n keeps IDs unique. */
static void make_id(char *out, int64_t sec, unsigned usec, unsigned n)
{
	snprintf(out, QUEUEID_SIZE, "%09" PRIX64 "%05X%05X%03X", (uint64_t)sec, usec, 0x1234u,
	         n & 0xfff);
	cr_assert(queueid_valid(out), "%s", out);
	cr_assert_eq(queueid_time(out), sec * 1000000 + usec);
}

struct order_case {
	const char *name;
	int mode;
	unsigned weight;
	int64_t lo_max_wait; /* seconds */
	int64_t now;         /* seconds after T0 */
	/* "hA@5": class h or l, one-letter label, arrival second after T0 */
	const char *waiting;
	const char *want; /* labels in pick order */
};

static const struct order_case order_cases[] = {
    {"absolute: hi before lo, oldest first", SCHEDULE_ABSOLUTE, 4, 0, 100,
     "lA@1 lB@2 hC@3 lD@4 hE@5", "CEABD"},
    {"absolute: only lo", SCHEDULE_ABSOLUTE, 4, 0, 100, "lB@2 lA@1 lC@3", "ABC"},
    {"absolute: only hi", SCHEDULE_ABSOLUTE, 4, 0, 100, "hC@3 hA@1 hB@2", "ABC"},
    {"absolute: nothing", SCHEDULE_ABSOLUTE, 4, 0, 100, "", ""},
    {"fifo: arrival across both", SCHEDULE_FIFO, 4, 0, 100, "lA@1 lB@2 hC@3 lD@4 hE@5", "ABCDE"},
    {"fifo: lo_max_wait changes nothing", SCHEDULE_FIFO, 4, 10, 100, "hA@1 lB@2 hC@3", "ABC"},
    {"weighted 2: two hi per lo", SCHEDULE_WEIGHTED, 2, 0, 100,
     "lA@1 lB@2 lC@3 hD@4 hE@5 hF@6 hG@7 hH@8", "DEAFGBHC"},
    {"weighted 1: alternate", SCHEDULE_WEIGHTED, 1, 0, 100, "lA@1 lB@2 hC@3 hD@4 hE@5", "CADBE"},
    {"weighted: hi picks without lo waiting do not count", SCHEDULE_WEIGHTED, 3, 0, 100,
     "hA@1 hB@2", "AB"},
    {"weighted: only lo", SCHEDULE_WEIGHTED, 3, 0, 100, "lA@1 lB@2", "AB"},
    {"absolute + lo_max_wait: old lo goes before newer hi", SCHEDULE_ABSOLUTE, 4, 60, 100,
     "lA@1 lB@2 lC@90 hD@50 hE@95", "ABDEC"},
    {"absolute + lo_max_wait: older hi still first", SCHEDULE_ABSOLUTE, 4, 60, 100,
     "hA@1 lB@2 hC@3", "ABC"},
    {"absolute + lo_max_wait: young lo waits", SCHEDULE_ABSOLUTE, 4, 60, 100, "lA@50 hB@60 hC@70",
     "BCA"},
    {"absolute + lo_max_wait exactly reached: not yet", SCHEDULE_ABSOLUTE, 4, 60, 100,
     "lA@40 hB@60", "BA"},
    {"weighted + lo_max_wait", SCHEDULE_WEIGHTED, 5, 60, 100, "lA@1 hB@10 hC@95 lD@96", "ABCD"},
};

struct labelled {
	char label;
	enum msg_class c;
	char id[QUEUEID_SIZE];
};

static size_t fill(struct scheduler *s, const char *spec, struct labelled *out, size_t max)
{
	size_t n = 0;
	const char *p = spec;
	while (*p) {
		char cls, label;
		int sec, used;
		if (*p == ' ') {
			p++;
			continue;
		}
		cr_assert_eq(sscanf(p, "%c%c@%d%n", &cls, &label, &sec, &used), 3, "bad spec %s",
		             p);
		cr_assert_lt(n, max);
		out[n].label = label;
		out[n].c = cls == 'h' ? CLASS_HI : CLASS_LO;
		make_id(out[n].id, T0 + sec, 0, (unsigned)n);
		cr_assert_eq(sched_add(s, out[n].c, out[n].id), 1);
		n++;
		p += used;
	}
	return n;
}

static char label_of(const struct labelled *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].id, id) == 0)
			return v[i].label;
	return '?';
}

Test(scheduler, order_table)
{
	for (size_t k = 0; k < sizeof(order_cases) / sizeof(order_cases[0]); k++) {
		const struct order_case *oc = &order_cases[k];
		struct scheduler s;
		struct labelled v[32];
		char got[33] = "";
		size_t ng = 0;

		sched_init(&s, oc->mode, oc->weight, oc->lo_max_wait * 1000000);
		size_t n = fill(&s, oc->waiting, v, 32);
		struct sched_pick p;
		while (ng < 32 && sched_next(&s, (T0 + oc->now) * 1000000, &p) == 1) {
			got[ng++] = label_of(v, n, p.id);
			cr_expect_eq(p.order, ng, "%s: order numbers", oc->name);
			for (size_t i = 0; i < n; i++)
				if (strcmp(v[i].id, p.id) == 0)
					cr_expect_eq(p.queue, v[i].c, "%s: queue of %c", oc->name,
					             v[i].label);
		}
		got[ng] = '\0';
		cr_expect_str_eq(got, oc->want, "%s", oc->name);
		cr_expect_eq(sched_waiting(&s, CLASS_HI) + sched_waiting(&s, CLASS_LO), 0);
		sched_free(&s);
	}
}

/* The promoted flag is set only on lo picks made because of lo_max_wait. */
Test(scheduler, promoted_flag)
{
	struct scheduler s;
	char a[QUEUEID_SIZE], b[QUEUEID_SIZE], c[QUEUEID_SIZE];
	struct sched_pick p;

	sched_init(&s, SCHEDULE_ABSOLUTE, 1, 60 * 1000000LL);
	make_id(a, T0 + 1, 0, 1);
	make_id(b, T0 + 50, 0, 2);
	make_id(c, T0 + 90, 0, 3);
	sched_add(&s, CLASS_LO, a);
	sched_add(&s, CLASS_HI, b);
	sched_add(&s, CLASS_LO, c);
	int64_t now = (T0 + 100) * 1000000;
	cr_assert_eq(sched_next(&s, now, &p), 1);
	cr_expect_str_eq(p.id, a);
	cr_expect_eq(p.promoted, 1);
	cr_assert_eq(sched_next(&s, now, &p), 1);
	cr_expect_str_eq(p.id, b);
	cr_expect_eq(p.promoted, 0);
	cr_assert_eq(sched_next(&s, now, &p), 1);
	cr_expect_str_eq(p.id, c);
	cr_expect_eq(p.promoted, 0, "only lo left: an ordinary lo pick");
	cr_expect_eq(sched_next(&s, now, &p), 0);
	sched_free(&s);
}

/* 200 messages wait in lo/; one arrives in hi/ after 7 lo picks: it is
 * the very next pick under absolute and weighted, and last (by arrival)
 * under fifo. lo_before counts the lo picks after its arrival. */
static uint64_t hi_arrival_pick(int mode, unsigned weight, uint64_t *lo_before)
{
	struct scheduler s;
	char id[QUEUEID_SIZE], hid[QUEUEID_SIZE];
	struct sched_pick p;
	uint64_t hi_order = 0;

	sched_init(&s, mode, weight, 0);
	for (unsigned i = 0; i < 200; i++) {
		make_id(id, T0 + 1, i, i);
		cr_assert_eq(sched_add(&s, CLASS_LO, id), 1);
	}
	int64_t now = (T0 + 10) * 1000000;
	for (int i = 0; i < 7; i++)
		cr_assert_eq(sched_next(&s, now, &p), 1);
	make_id(hid, T0 + 5, 0, 999);
	cr_assert_eq(sched_add(&s, CLASS_HI, hid), 1);
	*lo_before = 0;
	while (sched_next(&s, now, &p) == 1) {
		if (p.queue == CLASS_HI) {
			cr_expect_str_eq(p.id, hid);
			hi_order = p.order;
		} else if (hi_order == 0) {
			(*lo_before)++;
		}
	}
	sched_free(&s);
	return hi_order;
}

Test(scheduler, hi_arrival_behind_200_lo)
{
	uint64_t lo_before;
	cr_expect_eq(hi_arrival_pick(SCHEDULE_ABSOLUTE, 4, &lo_before), 8);
	cr_expect_eq(lo_before, 0, "no lo message started after it arrived");
	/* weighted: the lo picks before the arrival made no hi wait, so the
	 * hi message goes at once as well. */
	cr_expect_eq(hi_arrival_pick(SCHEDULE_WEIGHTED, 4, &lo_before), 8);
	/* fifo: it arrived after all 200. */
	cr_expect_eq(hi_arrival_pick(SCHEDULE_FIFO, 4, &lo_before), 201);
	cr_expect_eq(lo_before, 193);
}

Test(scheduler, duplicates_removal_and_bad_ids)
{
	struct scheduler s;
	char a[QUEUEID_SIZE], b[QUEUEID_SIZE];
	struct sched_pick p;

	sched_init(&s, SCHEDULE_ABSOLUTE, 4, 0);
	make_id(a, T0, 0, 1);
	make_id(b, T0, 0, 2);
	cr_expect_eq(sched_add(&s, CLASS_LO, b), 1);
	cr_expect_eq(sched_add(&s, CLASS_LO, a), 1);
	cr_expect_eq(sched_add(&s, CLASS_LO, a), 0, "a rescan reports it again");
	cr_expect_eq(sched_add(&s, CLASS_LO, "not-a-queue-id"), -1);
	cr_expect_eq(sched_add(&s, CLASS_LO, "../../etc/passwd"), -1);
	cr_expect_eq(sched_waiting(&s, CLASS_LO), 2);
	cr_expect_eq(sched_remove(&s, CLASS_LO, a), 1);
	cr_expect_eq(sched_remove(&s, CLASS_LO, a), 0);
	cr_expect_eq(sched_remove(&s, CLASS_HI, b), 0);
	cr_assert_eq(sched_next(&s, 0, &p), 1);
	cr_expect_str_eq(p.id, b);
	cr_expect_eq(sched_next(&s, 0, &p), 0);
	sched_free(&s);
}

/* Many insertions out of order and interleaved picks keep the lists
 * sorted: every pick is the oldest waiting ID of its class. */
Test(scheduler, large_interleaved)
{
	struct scheduler s;
	char id[QUEUEID_SIZE], last[2][QUEUEID_SIZE] = {"", ""};
	struct sched_pick p;
	unsigned added = 0, picked = 0;

	sched_init(&s, SCHEDULE_WEIGHTED, 3, 0);
	for (unsigned round = 0; round < 50; round++) {
		for (unsigned i = 0; i < 40; i++) {
			unsigned x = (round * 40 + i) * 7919u % 4000u; /* a permutation */
			make_id(id, T0 + 1000 + round * 100 + x % 97, x, x);
			if (sched_add(&s, x % 3 ? CLASS_LO : CLASS_HI, id) == 1)
				added++;
		}
		for (unsigned i = 0; i < 30 && sched_next(&s, 0, &p) == 1; i++)
			picked++;
	}
	while (sched_next(&s, 0, &p) == 1) {
		picked++;
		cr_expect_gt(strcmp(p.id, last[p.queue]), 0);
		memcpy(last[p.queue], p.id, QUEUEID_SIZE);
	}
	cr_expect_eq(picked, added);
	sched_free(&s);
}
