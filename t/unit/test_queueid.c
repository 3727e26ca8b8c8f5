/*
 * test_queueid.c: unit tests for src/spool/queueid.c.
 *
 * Queue IDs name spool files, so the properties checked are the ones the
 * spool relies on: the documented shape, uniqueness across threads and
 * across forked processes, strict order within a process, and a correct
 * arrival time.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queueid.h"
#include "util.h"

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Sort n IDs and return the number of adjacent duplicates. */
static size_t count_duplicates(char (*ids)[QUEUEID_SIZE], size_t n)
{
	qsort(ids, n, QUEUEID_SIZE, cmp_ids);
	size_t dups = 0;
	for (size_t i = 1; i < n; i++) {
		if (strcmp(ids[i - 1], ids[i]) == 0)
			dups++;
	}
	return dups;
}

Test(queueid, shape_and_time)
{
	char id[QUEUEID_SIZE];
	int64_t before = wall_usec();
	queueid_new(id);
	int64_t after = wall_usec();

	cr_assert_eq(strlen(id), QUEUEID_LEN);
	cr_assert_eq(strspn(id, "0123456789ABCDEF"), QUEUEID_LEN, "bad alphabet: %s", id);
	cr_assert(queueid_valid(id));
	int64_t t = queueid_time(id);
	/* The ID may run slightly ahead of the clock only after a burst of
	 * 4096 IDs in one microsecond, which a single call cannot cause. */
	cr_assert(t >= before && t <= after + 1, "time %lld not in [%lld, %lld]", (long long)t,
	          (long long)before, (long long)after);
	char pid[6];
	snprintf(pid, sizeof(pid), "%05X", (unsigned)getpid() & 0xfffff);
	cr_assert(strncmp(id + 14, pid, 5) == 0, "pid field of %s is not %s", id, pid);
}

Test(queueid, known_time)
{
	/* 1795673962 s = 0x6B07CF6A, 123456 us = 0x1E240 */
	cr_assert_eq(queueid_time("06B07CF6A1E2400012F000"), 1795673962123456LL);
	cr_assert_eq(queueid_time("0000000000000000000000"), 0);
	cr_assert_eq(queueid_time("bad"), -1);
}

Test(queueid, valid_table)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
	    {"06B07CF6A1E2400012F000", 1},
	    {"FFFFFFFFFFFFFFFFFFFFFF", 1},
	    {"06b07cf6a1e2400012f000", 0},  /* lower case */
	    {"06B07CF6A1E2400012F00", 0},   /* 21 */
	    {"06B07CF6A1E2400012F0000", 0}, /* 23 */
	    {"06B07CF6A1E2400012F00G", 0},
	    {"06B07CF6A1E2400012F00.", 0},
	    {"../../../../etc/passwd", 0},
	    {"06B07CF6A1E2400012F000.1", 0},
	    {"", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(queueid_valid(cases[i].s), cases[i].ok, "queueid_valid(\"%s\")",
		             cases[i].s);
	cr_expect_eq(queueid_valid(NULL), 0);
}

Test(queueid, strictly_increasing)
{
	char prev[QUEUEID_SIZE], cur[QUEUEID_SIZE];
	queueid_new(prev);
	/* Far more than 4096 per microsecond at times: the counter carries
	 * into the time and order must still hold. */
	for (int i = 0; i < 200000; i++) {
		queueid_new(cur);
		if (strcmp(prev, cur) >= 0)
			cr_assert_fail("not increasing at %d: %s then %s", i, prev, cur);
		memcpy(prev, cur, sizeof(cur));
	}
}

#define NTHREADS 8
#define PER_THREAD 20000

struct thread_ids {
	char (*ids)[QUEUEID_SIZE];
	int ordered;
};

static void *make_ids(void *arg)
{
	struct thread_ids *t = arg;
	t->ordered = 1;
	for (int i = 0; i < PER_THREAD; i++) {
		queueid_new(t->ids[i]);
		if (i > 0 && strcmp(t->ids[i - 1], t->ids[i]) >= 0)
			t->ordered = 0;
	}
	return NULL;
}

Test(queueid, unique_across_threads)
{
	char(*all)[QUEUEID_SIZE] = calloc(NTHREADS * PER_THREAD, QUEUEID_SIZE);
	cr_assert_not_null(all);
	pthread_t th[NTHREADS];
	struct thread_ids t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		t[i].ids = all + (size_t)i * PER_THREAD;
		cr_assert_eq(pthread_create(&th[i], NULL, make_ids, &t[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		cr_expect(t[i].ordered, "thread %d saw IDs out of order", i);
	}
	cr_assert_eq(count_duplicates(all, NTHREADS * PER_THREAD), 0);
	free(all);
}

#define NCHILDREN 4
#define PER_CHILD 5000

Test(queueid, unique_across_processes)
{
	size_t total = (NCHILDREN + 1) * PER_CHILD;
	char(*all)[QUEUEID_SIZE] = calloc(total, QUEUEID_SIZE);
	cr_assert_not_null(all);
	/* Prime the parent's state so each child inherits it on fork. */
	queueid_new(all[0]);

	int fds[NCHILDREN];
	pid_t pids[NCHILDREN];
	for (int c = 0; c < NCHILDREN; c++) {
		int p[2];
		cr_assert_eq(pipe(p), 0);
		pids[c] = fork();
		cr_assert_neq(pids[c], -1);
		if (pids[c] == 0) {
			close(p[0]);
			char id[QUEUEID_SIZE];
			for (int i = 0; i < PER_CHILD; i++) {
				queueid_new(id);
				if (write(p[1], id, QUEUEID_SIZE) != QUEUEID_SIZE)
					_exit(1);
			}
			_exit(0);
		}
		close(p[1]);
		fds[c] = p[0];
	}
	for (int i = 1; i < PER_CHILD; i++)
		queueid_new(all[i]);
	size_t n = PER_CHILD;
	for (int c = 0; c < NCHILDREN; c++) {
		size_t got = 0;
		char *dst = all[n];
		while (got < (size_t)PER_CHILD * QUEUEID_SIZE) {
			ssize_t r = read(fds[c], dst + got, (size_t)PER_CHILD * QUEUEID_SIZE - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		close(fds[c]);
		int status;
		waitpid(pids[c], &status, 0);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		cr_assert_eq(got, (size_t)PER_CHILD * QUEUEID_SIZE);
		n += PER_CHILD;
	}
	for (size_t i = 0; i < n; i++)
		cr_assert(queueid_valid(all[i]), "invalid ID %zu", i);
	cr_assert_eq(count_duplicates(all, n), 0);
	free(all);
}
