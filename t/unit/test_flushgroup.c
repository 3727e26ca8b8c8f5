/*
 * test_flushgroup.c: unit tests for src/common/flushgroup.c: concurrent
 * callers share flushes, yet every caller returns only after a flush that
 * started after its call has completed; a failed flush is reported to the
 * caller that ran it and the others retry; directories by path work and
 * share flushes per path.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flushgroup.h"
#include "util.h"

#define THREADS 8
#define ROUNDS 20
#define MAX_FLUSHES (THREADS * ROUNDS)

static struct flush_group group;
static _Atomic int nflushes;
static int64_t flush_start[MAX_FLUSHES], flush_end[MAX_FLUSHES];
static _Atomic int fail_next;

static int slow_flush(void *arg)
{
	(void)arg;
	int i = atomic_fetch_add(&nflushes, 1);
	cr_assert_lt(i, MAX_FLUSHES);
	flush_start[i] = mono_usec();
	usleep(2000);
	flush_end[i] = mono_usec();
	if (atomic_exchange(&fail_next, 0)) {
		errno = EIO;
		return -1;
	}
	return 0;
}

struct caller {
	int64_t called[ROUNDS], returned[ROUNDS];
	int failures;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	for (int r = 0; r < ROUNDS; r++) {
		c->called[r] = mono_usec();
		if (flush_group_sync(&group, slow_flush, NULL) < 0)
			c->failures++;
		c->returned[r] = mono_usec();
	}
	return NULL;
}

static void run_callers(struct caller *c)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, caller_main, &c[i]), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

Test(flushgroup, shared_yet_every_change_covered)
{
	static struct caller c[THREADS];
	flush_group_init(&group);
	run_callers(c);
	int n = atomic_load(&nflushes);
	cr_expect_lt(n, THREADS * ROUNDS / 2, "%d flushes for %d calls: nothing shared", n,
	             THREADS * ROUNDS);
	for (int i = 0; i < THREADS; i++) {
		cr_expect_eq(c[i].failures, 0);
		for (int r = 0; r < ROUNDS; r++) {
			int covered = 0;
			for (int f = 0; f < n && !covered; f++)
				covered = flush_start[f] >= c[i].called[r] &&
				          flush_end[f] <= c[i].returned[r];
			cr_expect(covered, "call %d/%d returned without a flush after it", i, r);
		}
	}
	flush_group_destroy(&group);
}

Test(flushgroup, failure_goes_to_the_flusher_only)
{
	static struct caller c[THREADS];
	flush_group_init(&group);
	atomic_store(&nflushes, 0);
	atomic_store(&fail_next, 1);
	run_callers(c);
	int failures = 0;
	for (int i = 0; i < THREADS; i++)
		failures += c[i].failures;
	cr_expect_eq(failures, 1, "one flush failed, %d calls reported it", failures);
	flush_group_destroy(&group);
}

static char dirs[2][64];

static void *path_caller(void *arg)
{
	const char *d = arg;
	for (int r = 0; r < 50; r++)
		cr_assert_eq(flush_dir_path_grouped(d), 0);
	return NULL;
}

Test(flushgroup, directories_by_path)
{
	for (int i = 0; i < 2; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "/tmp/tmx-flush-XXXXXX");
		cr_assert_not_null(mkdtemp(dirs[i]));
	}
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, path_caller, dirs[i % 2]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_expect_eq(flush_dir_path_grouped("/nonexistent/tmx-flush"), -1);
	cr_expect_eq(errno, ENOENT);
	for (int i = 0; i < 2; i++)
		rmdir(dirs[i]);
}
