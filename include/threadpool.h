/*
 * threadpool.h: the one pool of worker threads behind an event loop, for
 * blocking work (fsync, LMDB writes, scans) that the loop must not do.
 *
 * A job is submitted by the loop thread, waits in a first-in first-out
 * queue, runs in any free worker (job->work), and its job->done then runs
 * back in the loop thread, the jobs' done() in the order the jobs
 * finished. The hand-back is an eventfd watched by a persistent event of
 * the loop; the workers never touch libevent, so the base needs no locks.
 * Every signal is blocked in the workers: SIGTERM, SIGHUP and the rest
 * belong to the loop thread (its evsignal events).
 *
 * Users: the commit writers (src/spool/commit.c), the delivery child's
 * file work (src/deliver/delivery.c), the scanner's workers
 * (src/scan/worker.c, which submits only to an idle thread so that its
 * scheduler picks at the last moment) and smtpd's history writer
 * (src/smtpd/screen.c). Defined in src/common/threadpool.c (libtmx_base).
 */
#ifndef TEMPOMX_THREADPOOL_H
#define TEMPOMX_THREADPOOL_H

#include <pthread.h>
#include <stddef.h>

struct event_base;
struct threadpool;
struct threadpool_job;

typedef void (*threadpool_fn)(struct threadpool_job *job);

/* Embedded in the caller's own struct (container_of, or first member). */
struct threadpool_job {
	threadpool_fn work; /* in a worker thread */
	/* In the loop thread after work(); NULL: none, and the pool does not
	 * touch the job once work() has returned (work may free it). */
	threadpool_fn done;
	struct threadpool_job *next; /* the pool's */
};

/* Start nthreads workers (at least 1) named name (in log lines and, cut
 * to 15 characters, the thread name ps and top show), handing results
 * back to base's loop. The calling thread's signal mask is as it was
 * afterwards. No thread at all is fatal; fewer than asked is logged and
 * the pool runs with those. */
struct threadpool *threadpool_new(struct event_base *base, const char *name, unsigned nthreads);
/* Queue job (loop thread only). A job submitted while threadpool_free()
 * runs (from a done callback) runs at once in the caller's thread. */
void threadpool_submit(struct threadpool *p, struct threadpool_job *job);
/* Jobs submitted whose done() has not been called yet (queued, running,
 * or finished and waiting for the loop); a done() running now is not
 * counted, so it may check for zero to decide that all work is over. */
size_t threadpool_pending(struct threadpool *p);
/* Threads that would start a job submitted now: the threads minus the
 * running and queued jobs (0 when the queue is longer than that). */
unsigned threadpool_idle(struct threadpool *p);
/* Threads running. */
unsigned threadpool_threads(const struct threadpool *p);
/* Start one thread of its own (not in a pool: a periodic writer, a
 * background reload) the way the pool starts its workers: with every
 * signal blocked in it and the caller's mask untouched. Returns
 * pthread_create()'s result (0 or an error number). */
int threadpool_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);
/* Let every queued job run, join the threads, then call the done() of
 * every finished job in the calling thread (the loop's). NULL is ignored. */
void threadpool_free(struct threadpool *p);

#endif
