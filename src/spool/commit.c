/*
 * commit.c: the writer thread pool that runs spool_commit() off the event
 * loop.
 *
 * Owns the commit jobs; the threads, their queue and the hand-back of
 * results to libevent are the common pool's (src/common/threadpool.c).
 * Called by smtpd at the end of DATA: the session submits its
 * spool file and gets its callback, in the loop, once the file is fsync'd
 * and renamed into hi/ or lo/; only then does it send the 250.
 *
 * Why threads: an fsync blocks for milliseconds, and the disk does about
 * three times as many durable file creations per second with 8-16
 * fsyncs in flight as with one (the file system batches concurrent
 * flushes into one journal commit). A session never blocks the loop and
 * many sessions' commits share the disk's flushes.
 *
 * Hand-back: the pool runs each job's callback in the loop, one job at a
 * time, so a callback may forget (commit_pool_forget) or submit other
 * jobs safely. The jobs not yet called back are kept in a list that only
 * the loop thread touches (submit, forget, callback), so forgetting one
 * needs no lock: a worker reads only the file, size and queue of its job.
 *
 * A forgotten job still commits: the message was fully received, and if
 * the session went away after the end of DATA the client will retry, so
 * keeping the file risks a duplicate, while dropping it could lose mail
 * whose 250 was already on its way.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "spool.h"
#include "threadpool.h"
#include "util.h"

#define COMMIT_MAX_THREADS 64

struct commit_job {
	struct threadpool_job pj;
	struct commit_pool *pool;
	struct commit_job *prev, *next; /* outstanding jobs (loop thread only) */
	struct spool_file sf;
	uint64_t size;
	enum spool_queue dest;
	commit_done_fn done; /* NULL once forgotten */
	void *arg;
	int error; /* set by the worker */
};

struct commit_pool {
	struct spool *sp;
	struct threadpool *tp;
	struct commit_job *jobs; /* submitted, not yet called back */
};

static struct commit_job *job_of(struct threadpool_job *pj)
{
	return (struct commit_job *)(void *)((char *)pj - offsetof(struct commit_job, pj));
}

/* Worker thread. */
static void commit_work(struct threadpool_job *pj)
{
	struct commit_job *job = job_of(pj);
	job->error = 0;
	if (spool_commit(job->pool->sp, &job->sf, job->size, job->dest) < 0)
		job->error = errno ? errno : EIO;
}

/* Loop thread. */
static void commit_done(struct threadpool_job *pj)
{
	struct commit_job *job = job_of(pj);
	struct commit_pool *pool = job->pool;
	if (job->prev)
		job->prev->next = job->next;
	else
		pool->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	if (job->done)
		job->done(job->arg, job->error);
	free(job);
}

struct commit_pool *commit_pool_new(struct event_base *base, struct spool *sp, int nthreads)
{
	struct commit_pool *pool = xcalloc(1, sizeof(*pool));
	pool->sp = sp;
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > COMMIT_MAX_THREADS)
		nthreads = COMMIT_MAX_THREADS;
	pool->tp = threadpool_new(base, "commit", (unsigned)nthreads);
	return pool;
}

void commit_pool_submit(struct commit_pool *pool, struct spool_file *sf, uint64_t size,
                        enum spool_queue dest, commit_done_fn done, void *arg)
{
	struct commit_job *job = xcalloc(1, sizeof(*job));
	job->pj.work = commit_work;
	job->pj.done = commit_done;
	job->pool = pool;
	job->sf = *sf;
	job->size = size;
	job->dest = dest;
	job->done = done;
	job->arg = arg;
	sf->fd = -1; /* the pool owns the descriptor now */
	job->next = pool->jobs;
	if (pool->jobs)
		pool->jobs->prev = job;
	pool->jobs = job;
	threadpool_submit(pool->tp, &job->pj);
}

void commit_pool_forget(struct commit_pool *pool, void *arg)
{
	for (struct commit_job *j = pool->jobs; j; j = j->next)
		if (j->arg == arg)
			j->done = NULL;
}

size_t commit_pool_pending(struct commit_pool *pool)
{
	return threadpool_pending(pool->tp);
}

void commit_pool_free(struct commit_pool *pool)
{
	if (pool == NULL)
		return;
	/* Every queued commit lands; the sessions still waiting are told. */
	threadpool_free(pool->tp);
	free(pool);
}
