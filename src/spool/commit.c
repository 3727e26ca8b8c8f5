/*
 * commit.c: the writer thread pool that runs spool_commit() off the event
 * loop.
 *
 * Owns the pool's threads, its job queue and the hand-back of results to
 * libevent. Called by smtpd at the end of DATA: the session submits its
 * spool file and gets its callback, in the loop, once the file is fsync'd
 * and renamed into hi/ or lo/; only then does it send the 250.
 *
 * Why threads: an fsync blocks for milliseconds, and the disk does about
 * three times as many durable file creations per second with 8-16
 * fsyncs in flight as with one (the file system batches concurrent
 * flushes into one journal commit). A session never blocks the loop and
 * many sessions' commits share the disk's flushes.
 *
 * Hand-back: a finished job goes onto a mutex-protected done list and an
 * eventfd, watched by a persistent event in the loop, is bumped when that
 * list goes from empty to non-empty. The loop callback takes jobs off the
 * list one at a time, so a callback may forget (commit_pool_forget) or
 * submit other jobs safely. Workers never touch libevent, so the base
 * needs no locking.
 *
 * A forgotten job still commits: the message was fully received, and if
 * the session went away after the end of DATA the client will retry, so
 * keeping the file risks a duplicate, while dropping it could lose mail
 * whose 250 was already on its way.
 */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "util.h"

#define COMMIT_MAX_THREADS 64

struct commit_job {
	struct commit_job *next;
	struct spool_file sf;
	uint64_t size;
	enum spool_queue dest;
	commit_done_fn done; /* NULL once forgotten */
	void *arg;
	int error;
};

struct commit_worker {
	struct commit_pool *pool;
	pthread_t thread;
	struct commit_job *current; /* being committed, or NULL */
};

struct commit_pool {
	struct event_base *base;
	struct spool *sp;
	pthread_mutex_t mu;
	pthread_cond_t work; /* jobs waiting, or stopping */
	struct commit_job *qhead, *qtail;
	struct commit_job *dhead, *dtail;
	size_t nqueued, nrunning, ndone;
	int stopping;
	int efd;
	struct event *ev;
	struct commit_worker *workers;
	int nworkers;
};

static void job_list_append(struct commit_job **head, struct commit_job **tail,
                            struct commit_job *job)
{
	job->next = NULL;
	if (*tail)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

static struct commit_job *job_list_pop(struct commit_job **head, struct commit_job **tail)
{
	struct commit_job *job = *head;
	if (job) {
		*head = job->next;
		if (*head == NULL)
			*tail = NULL;
		job->next = NULL;
	}
	return job;
}

static void pool_lock(struct commit_pool *pool)
{
	int r = pthread_mutex_lock(&pool->mu);
	if (r != 0)
		fatalx("commit: mutex lock: %s", strerror(r));
}

static void pool_unlock(struct commit_pool *pool)
{
	int r = pthread_mutex_unlock(&pool->mu);
	if (r != 0)
		fatalx("commit: mutex unlock: %s", strerror(r));
}

static void pool_wake_loop(struct commit_pool *pool)
{
	uint64_t one = 1;
	while (write(pool->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the loop is woken anyway. */
		if (errno != EINTR)
			break;
	}
}

static void *commit_worker_main(void *arg)
{
	struct commit_worker *w = arg;
	struct commit_pool *pool = w->pool;

	pool_lock(pool);
	for (;;) {
		while (pool->qhead == NULL && !pool->stopping)
			pthread_cond_wait(&pool->work, &pool->mu);
		/* Even when stopping, the queue is drained first: every
		 * submitted message gets committed. */
		struct commit_job *job = job_list_pop(&pool->qhead, &pool->qtail);
		if (job == NULL)
			break;
		pool->nqueued--;
		pool->nrunning++;
		w->current = job;
		pool_unlock(pool);

		int error = 0;
		if (spool_commit(pool->sp, &job->sf, job->size, job->dest) < 0)
			error = errno ? errno : EIO;

		pool_lock(pool);
		w->current = NULL;
		pool->nrunning--;
		job->error = error;
		int was_empty = pool->dhead == NULL;
		job_list_append(&pool->dhead, &pool->dtail, job);
		pool->ndone++;
		if (was_empty)
			pool_wake_loop(pool);
	}
	pool_unlock(pool);
	return NULL;
}

/* Run the callbacks of finished jobs, one job at a time so a callback can
 * forget or submit. */
static void commit_deliver(struct commit_pool *pool)
{
	for (;;) {
		pool_lock(pool);
		struct commit_job *job = job_list_pop(&pool->dhead, &pool->dtail);
		if (job)
			pool->ndone--;
		pool_unlock(pool);
		if (job == NULL)
			break;
		if (job->done)
			job->done(job->arg, job->error);
		free(job);
	}
}

static void commit_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct commit_pool *pool = arg;
	uint64_t n;
	/* Reset the counter before draining: a job finished after this read
	 * either is taken by the loop below or bumps the counter again. */
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	commit_deliver(pool);
}

struct commit_pool *commit_pool_new(struct event_base *base, struct spool *sp, int nthreads)
{
	struct commit_pool *pool = xcalloc(1, sizeof(*pool));
	pool->base = base;
	pool->sp = sp;
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > COMMIT_MAX_THREADS)
		nthreads = COMMIT_MAX_THREADS;
	if (pthread_mutex_init(&pool->mu, NULL) != 0 || pthread_cond_init(&pool->work, NULL) != 0)
		fatalx("commit: cannot initialise locks");
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0)
		fatal("commit: eventfd");
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST, commit_on_event, pool);
	if (pool->ev == NULL || event_add(pool->ev, NULL) < 0)
		fatalx("commit: cannot add the completion event");

	/* Workers must not take the process's signals (SIGTERM, SIGHUP):
	 * those belong to the loop thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pool->workers = xcalloc((size_t)nthreads, sizeof(*pool->workers));
	for (int i = 0; i < nthreads; i++) {
		pool->workers[i].pool = pool;
		int r = pthread_create(&pool->workers[i].thread, NULL, commit_worker_main,
		                       &pool->workers[i]);
		if (r != 0)
			fatalx("commit: pthread_create: %s", strerror(r));
		pool->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool;
}

void commit_pool_submit(struct commit_pool *pool, struct spool_file *sf, uint64_t size,
                        enum spool_queue dest, commit_done_fn done, void *arg)
{
	struct commit_job *job = xcalloc(1, sizeof(*job));
	job->sf = *sf;
	job->size = size;
	job->dest = dest;
	job->done = done;
	job->arg = arg;
	sf->fd = -1; /* the pool owns the descriptor now */

	pool_lock(pool);
	job_list_append(&pool->qhead, &pool->qtail, job);
	pool->nqueued++;
	pthread_cond_signal(&pool->work);
	pool_unlock(pool);
}

void commit_pool_forget(struct commit_pool *pool, void *arg)
{
	pool_lock(pool);
	for (struct commit_job *j = pool->qhead; j; j = j->next) {
		if (j->arg == arg)
			j->done = NULL;
	}
	for (int i = 0; i < pool->nworkers; i++) {
		struct commit_job *j = pool->workers[i].current;
		if (j && j->arg == arg)
			j->done = NULL;
	}
	for (struct commit_job *j = pool->dhead; j; j = j->next) {
		if (j->arg == arg)
			j->done = NULL;
	}
	pool_unlock(pool);
}

size_t commit_pool_pending(struct commit_pool *pool)
{
	pool_lock(pool);
	size_t n = pool->nqueued + pool->nrunning + pool->ndone;
	pool_unlock(pool);
	return n;
}

void commit_pool_free(struct commit_pool *pool)
{
	if (pool == NULL)
		return;
	pool_lock(pool);
	pool->stopping = 1;
	pthread_cond_broadcast(&pool->work);
	pool_unlock(pool);
	for (int i = 0; i < pool->nworkers; i++) {
		int r = pthread_join(pool->workers[i].thread, NULL);
		if (r != 0)
			fatalx("commit: pthread_join: %s", strerror(r));
	}
	/* Every commit is done; tell the sessions still waiting. */
	commit_deliver(pool);
	event_free(pool->ev);
	close(pool->efd);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->mu);
	free(pool->workers);
	free(pool);
}
