/*
 * test_idlist.c: unit tests for src/spool/idlist.c, the sorted queue-ID
 * list behind the scanner's scheduler and delivery's waiting list.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "idlist.h"

static void mkid(char *out, unsigned n)
{
	snprintf(out, QUEUEID_SIZE, "%022X", n);
}

Test(idlist, keeps_order_and_refuses_duplicates)
{
	static const unsigned in[] = {50, 10, 30, 20, 40, 10, 60, 5, 30};
	static const unsigned want[] = {5, 10, 20, 30, 40, 50, 60};
	struct idlist l = {0};
	char id[QUEUEID_SIZE], got[QUEUEID_SIZE];
	int added = 0;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		mkid(id, in[i]);
		added += idlist_insert(&l, id);
	}
	cr_expect_eq(added, 7, "duplicates are not added twice");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		mkid(id, want[i]);
		cr_assert_eq(idlist_pop(&l, got), 1);
		cr_expect_str_eq(got, id);
	}
	cr_expect_eq(idlist_pop(&l, got), 0);
	cr_expect_null(idlist_first(&l));
	idlist_free(&l);
}

Test(idlist, remove_and_moving_head)
{
	struct idlist l = {0};
	char id[QUEUEID_SIZE], got[QUEUEID_SIZE];
	/* Enough to grow, pop from the front, then insert again so the head
	 * has to be moved back instead of growing. */
	for (unsigned i = 0; i < 200; i++) {
		mkid(id, 2 * i);
		idlist_insert(&l, id);
	}
	for (unsigned i = 0; i < 100; i++)
		cr_assert_eq(idlist_pop(&l, got), 1);
	for (unsigned i = 200; i < 300; i++) {
		mkid(id, 2 * i);
		idlist_insert(&l, id);
	}
	mkid(id, 251); /* odd: between existing ones */
	cr_expect_eq(idlist_insert(&l, id), 1);
	cr_expect_eq(idlist_remove(&l, id), 1);
	cr_expect_eq(idlist_remove(&l, id), 0, "already gone");
	mkid(id, 200);
	cr_expect_str_eq(idlist_first(&l), id);
	cr_expect_eq(l.n, 200);
	unsigned prev = 0;
	int sorted = 1;
	while (idlist_pop(&l, got)) {
		unsigned v;
		sscanf(got, "%X", &v);
		if (v < prev)
			sorted = 0;
		prev = v;
	}
	cr_expect(sorted);
	cr_expect_eq(prev, 598);
	idlist_free(&l);
}
