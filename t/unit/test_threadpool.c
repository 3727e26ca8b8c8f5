/*
 * test_threadpool.c: unit tests for src/common/threadpool.c: jobs start in
 * the order submitted and their done() runs in the loop thread in the
 * order they finished; a done() may submit more work; the idle count
 * follows the running jobs; freeing the pool with jobs still queued runs
 * every one of them and their done(); every signal is blocked in the
 * workers, and a signal sent to the process while the loop thread blocks
 * it waits for that thread instead of going to a worker; a thread started
 * with threadpool_thread_create() blocks them too.
 */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "threadpool.h"
#include "util.h"

#define NJOBS 200
/* Upper bound on any wait for the pool, so a broken pool fails the test
 * instead of hanging it. */
#define WAIT_USEC (10 * 1000000LL)

struct tjob {
	struct threadpool_job j; /* first */
	int n;
	int work_pos, done_pos;
	pid_t work_tid, done_tid;
	int sleep_usec;
	sigset_t mask;
	struct threadpool *pool; /* for done() that submits again */
	int chain;               /* follow-up jobs still to submit */
};

static _Atomic int work_seq;
static int done_seq;
static int chained;

static pid_t tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void t_work(struct threadpool_job *j)
{
	struct tjob *t = (struct tjob *)j;
	if (t->sleep_usec > 0)
		usleep((useconds_t)t->sleep_usec);
	t->work_pos = atomic_fetch_add(&work_seq, 1);
	t->work_tid = tid();
	pthread_sigmask(SIG_BLOCK, NULL, &t->mask);
}

static void t_done(struct threadpool_job *j)
{
	struct tjob *t = (struct tjob *)j;
	t->done_pos = done_seq++;
	t->done_tid = tid();
	if (t->chain > 0) {
		struct tjob *next = calloc(1, sizeof(*next));
		cr_assert_not_null(next);
		next->j.work = t_work;
		next->j.done = t_done;
		next->pool = t->pool;
		next->chain = t->chain - 1;
		chained++;
		threadpool_submit(t->pool, &next->j);
	} else if (t->pool != NULL) {
		chained = -chained; /* the last one: mark the chain complete */
	}
	if (t->pool != NULL)
		free(t);
}

static void reset(void)
{
	atomic_store(&work_seq, 0);
	done_seq = 0;
	chained = 0;
}

/* Run the loop until the pool has nothing pending, at most WAIT_USEC. */
static void run_until_idle(struct event_base *base, struct threadpool *p)
{
	int64_t end = mono_usec() + WAIT_USEC;
	while (threadpool_pending(p) > 0 && mono_usec() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(500);
	}
	cr_assert_eq(threadpool_pending(p), 0, "jobs still pending after %llds",
	             (long long)(WAIT_USEC / 1000000));
}

static void init_jobs(struct tjob *jobs, int n, int sleep_usec)
{
	memset(jobs, 0, (size_t)n * sizeof(*jobs));
	for (int i = 0; i < n; i++) {
		jobs[i].j.work = t_work;
		jobs[i].j.done = t_done;
		jobs[i].n = i;
		jobs[i].sleep_usec = sleep_usec;
		jobs[i].done_pos = -1;
		jobs[i].work_pos = -1;
	}
}

Test(threadpool, one_thread_keeps_submission_order)
{
	static struct tjob jobs[NJOBS];
	reset();
	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 1);
	cr_assert_eq(threadpool_threads(p), 1);
	init_jobs(jobs, NJOBS, 0);
	for (int i = 0; i < NJOBS; i++)
		threadpool_submit(p, &jobs[i].j);
	run_until_idle(base, p);
	pid_t me = tid();
	for (int i = 0; i < NJOBS; i++) {
		cr_expect_eq(jobs[i].work_pos, i, "job %d ran as number %d", i, jobs[i].work_pos);
		cr_expect_eq(jobs[i].done_pos, i, "job %d done as number %d", i, jobs[i].done_pos);
		cr_expect_neq(jobs[i].work_tid, me, "work() ran in the loop thread");
		cr_expect_eq(jobs[i].done_tid, me, "done() ran outside the loop thread");
	}
	threadpool_free(p);
	event_base_free(base);
}

Test(threadpool, done_runs_in_completion_order)
{
	/* Four threads, the first job slow: its done() comes last, after
	 * those of the 15 jobs submitted after it. */
	static struct tjob jobs[16];
	reset();
	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 4);
	init_jobs(jobs, 16, 0);
	jobs[0].sleep_usec = 200000;
	for (int i = 0; i < 16; i++)
		threadpool_submit(p, &jobs[i].j);
	run_until_idle(base, p);
	cr_expect_eq(jobs[0].work_pos, 15, "the slow job finished as %d", jobs[0].work_pos);
	cr_expect_eq(jobs[0].done_pos, 15, "the slow job was done as %d", jobs[0].done_pos);
	threadpool_free(p);
	event_base_free(base);
}

Test(threadpool, done_may_submit_more_work)
{
	reset();
	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 2);
	struct tjob *first = calloc(1, sizeof(*first));
	first->j.work = t_work;
	first->j.done = t_done;
	first->pool = p;
	first->chain = 10;
	threadpool_submit(p, &first->j);
	run_until_idle(base, p);
	cr_expect_eq(chained, -10, "chain: %d", chained);
	cr_expect_eq(atomic_load(&work_seq), 11);
	threadpool_free(p);
	event_base_free(base);
}

/* ---- the idle count ---- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static _Atomic int gate_waiting;

static void gate_work(struct threadpool_job *j)
{
	(void)j;
	pthread_mutex_lock(&gate_mu);
	atomic_fetch_add(&gate_waiting, 1);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
}

static int ndone_plain;
static void plain_done(struct threadpool_job *j)
{
	(void)j;
	ndone_plain++;
}

Test(threadpool, idle_counts_free_threads)
{
	struct threadpool_job jobs[3];
	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 2);
	ndone_plain = 0;
	cr_expect_eq(threadpool_idle(p), 2);
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 3; i++) {
		jobs[i].work = gate_work;
		jobs[i].done = plain_done;
	}
	threadpool_submit(p, &jobs[0]);
	cr_expect_eq(threadpool_idle(p), 1);
	threadpool_submit(p, &jobs[1]);
	cr_expect_eq(threadpool_idle(p), 0);
	threadpool_submit(p, &jobs[2]); /* queued behind them */
	cr_expect_eq(threadpool_idle(p), 0);
	cr_expect_eq(threadpool_pending(p), 3);
	int64_t end = mono_usec() + WAIT_USEC;
	while (atomic_load(&gate_waiting) < 2 && mono_usec() < end)
		usleep(1000);
	cr_expect_eq(atomic_load(&gate_waiting), 2, "the third job started early");
	pthread_mutex_lock(&gate_mu);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	run_until_idle(base, p);
	cr_expect_eq(ndone_plain, 3);
	cr_expect_eq(threadpool_idle(p), 2);
	threadpool_free(p);
	event_base_free(base);
}

/* ---- shutdown ---- */

Test(threadpool, free_runs_every_queued_job)
{
	static struct tjob jobs[40];
	reset();
	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 2);
	init_jobs(jobs, 40, 1000);
	for (int i = 0; i < 40; i++)
		threadpool_submit(p, &jobs[i].j);
	cr_expect_gt(threadpool_pending(p), 30, "the jobs ran before the test could free");
	threadpool_free(p); /* without ever running the loop */
	pid_t me = tid();
	for (int i = 0; i < 40; i++) {
		cr_expect_geq(jobs[i].work_pos, 0, "job %d never ran", i);
		cr_expect_geq(jobs[i].done_pos, 0, "job %d: done() not called", i);
		cr_expect_eq(jobs[i].done_tid, me);
	}
	cr_expect_eq(done_seq, 40);
	event_base_free(base);
}

static int nfreed;
static void self_freeing_work(struct threadpool_job *j)
{
	free(j);
	__atomic_add_fetch(&nfreed, 1, __ATOMIC_SEQ_CST);
}

Test(threadpool, job_without_done_may_free_itself)
{
	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 3);
	nfreed = 0;
	for (int i = 0; i < 50; i++) {
		struct threadpool_job *j = calloc(1, sizeof(*j));
		j->work = self_freeing_work;
		threadpool_submit(p, j);
	}
	threadpool_free(p); /* ASan: the pool touched no freed job */
	cr_expect_eq(__atomic_load_n(&nfreed, __ATOMIC_SEQ_CST), 50);
	event_base_free(base);
}

/* ---- signals ---- */

Test(threadpool, workers_block_every_signal)
{
	static struct tjob jobs[8];
	reset();
	sigset_t before, after;
	pthread_sigmask(SIG_BLOCK, NULL, &before);
	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 4);
	pthread_sigmask(SIG_BLOCK, NULL, &after);
	for (int sig = 1; sig < NSIG; sig++)
		cr_expect_eq(sigismember(&before, sig), sigismember(&after, sig),
		             "the caller's mask changed for signal %d", sig);
	init_jobs(jobs, 8, 2000);
	for (int i = 0; i < 8; i++)
		threadpool_submit(p, &jobs[i].j);
	run_until_idle(base, p);
	static const int sigs[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
	                           SIGUSR2, SIGPIPE, SIGALRM, SIGCHLD, SIGWINCH};
	for (int i = 0; i < 8; i++) {
		for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
			cr_expect_eq(sigismember(&jobs[i].mask, sigs[k]), 1,
			             "signal %d not blocked in a worker", sigs[k]);
		/* Real-time signals too. */
		cr_expect_eq(sigismember(&jobs[i].mask, SIGRTMIN), 1);
	}
	threadpool_free(p);
	event_base_free(base);
}

static _Atomic pid_t usr1_tid;
static _Atomic int usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&usr1_tid, (pid_t)syscall(SYS_gettid));
	atomic_fetch_add(&usr1_count, 1);
}

Test(threadpool, process_signal_waits_for_the_loop_thread)
{
	static struct tjob jobs[4];
	reset();
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	atomic_store(&usr1_count, 0);

	struct event_base *base = event_base_new();
	struct threadpool *p = threadpool_new(base, "test", 4);
	/* The loop thread blocks SIGUSR1 now (as a child does until its
	 * loop is ready); the workers were started with it unblocked here. */
	sigset_t usr1, prev;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &prev);
	init_jobs(jobs, 4, 200000); /* workers busy while the signal is sent */
	for (int i = 0; i < 4; i++)
		threadpool_submit(p, &jobs[i].j);
	usleep(20000);
	cr_assert_eq(kill(getpid(), SIGUSR1), 0);
	usleep(50000);
	cr_expect_eq(atomic_load(&usr1_count), 0, "a worker took the signal (thread %d)",
	             (int)atomic_load(&usr1_tid));
	pthread_sigmask(SIG_SETMASK, &prev, NULL); /* delivered here, now */
	cr_expect_eq(atomic_load(&usr1_count), 1);
	cr_expect_eq(atomic_load(&usr1_tid), tid());
	run_until_idle(base, p);
	threadpool_free(p);
	event_base_free(base);
	sigaction(SIGUSR1, &old, NULL);
}

static void *mask_thread(void *arg)
{
	pthread_sigmask(SIG_BLOCK, NULL, (sigset_t *)arg);
	return NULL;
}

/* The threads of their own (stats writer, engine reload) start the same
 * way as the pool's workers. */
Test(threadpool, thread_create_blocks_every_signal)
{
	sigset_t before, after, in;
	sigemptyset(&in);
	pthread_sigmask(SIG_BLOCK, NULL, &before);
	pthread_t t;
	cr_assert_eq(threadpool_thread_create(&t, mask_thread, &in), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	pthread_sigmask(SIG_BLOCK, NULL, &after);
	for (int sig = 1; sig < NSIG; sig++)
		cr_expect_eq(sigismember(&before, sig), sigismember(&after, sig),
		             "the caller's mask changed for signal %d", sig);
	static const int sigs[] = {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM};
	for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
		cr_expect_eq(sigismember(&in, sigs[k]), 1, "signal %d not blocked in the thread",
		             sigs[k]);
}
