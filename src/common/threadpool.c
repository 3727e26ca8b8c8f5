/*
 * threadpool.c: the worker thread pool of threadpool.h.
 *
 * Owns the threads, the job queue, the done list and the eventfd that
 * hands finished jobs back to the event loop. One mutex guards both lists
 * and the counters; one condition variable wakes idle workers.
 *
 * Hand-back: a finished job goes onto the done list and the eventfd is
 * bumped when that list goes from empty to non-empty. The loop callback
 * resets the counter first, then takes jobs off the list one at a time,
 * so a done() may submit new jobs, or free other state, safely; a job
 * finished after the read is either taken by that loop or bumps the
 * counter again. Nothing is lost and the loop is never woken in vain for
 * long.
 *
 * Signals: the creating thread blocks every signal around
 * pthread_create() (threadpool_thread_create(), also used for the few
 * threads of their own: stats.c's writer, the scanner's engine reload),
 * so each worker starts (and stays) with all of them
 * blocked, and a signal sent to the process (SIGTERM, SIGHUP, SIGUSR1)
 * is taken by a thread that has it unblocked: the loop's. No handler
 * ever runs on a worker's stack, and no worker's system call is cut
 * short with EINTR in the middle of a commit or a scan.
 *
 * Shutdown: threadpool_free() lets the workers drain the queue (a commit
 * submitted must land: its 250 may be on its way), joins them, and then
 * runs the remaining done() callbacks itself.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "threadpool.h"
#include "util.h"

struct threadpool {
	char name[32];
	pthread_mutex_t mu;
	pthread_cond_t work; /* jobs queued, or stopping */
	struct threadpool_job *qhead, *qtail;
	struct threadpool_job *dhead, *dtail;
	size_t nqueued, nrunning, ndone;
	int stopping; /* workers exit once the queue is empty */
	int joined;   /* workers gone: submit runs the job in the caller */
	int efd;
	struct event *ev;
	pthread_t *threads;
	unsigned nthreads;
};

static void job_append(struct threadpool_job **head, struct threadpool_job **tail,
                       struct threadpool_job *job)
{
	job->next = NULL;
	if (*tail)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

static struct threadpool_job *job_pop(struct threadpool_job **head, struct threadpool_job **tail)
{
	struct threadpool_job *job = *head;
	if (job) {
		*head = job->next;
		if (*head == NULL)
			*tail = NULL;
		job->next = NULL;
	}
	return job;
}

static void pool_lock(struct threadpool *p)
{
	int r = pthread_mutex_lock(&p->mu);
	if (r != 0)
		fatalx("%s: mutex lock: %s", p->name, strerror(r));
}

static void pool_unlock(struct threadpool *p)
{
	int r = pthread_mutex_unlock(&p->mu);
	if (r != 0)
		fatalx("%s: mutex unlock: %s", p->name, strerror(r));
}

static void pool_wake_loop(struct threadpool *p)
{
	uint64_t one = 1;
	while (write(p->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the loop is woken anyway. */
		if (errno != EINTR)
			break;
	}
}

/* With the lock held: a job's work() has returned. */
static void pool_finished(struct threadpool *p, struct threadpool_job *job, threadpool_fn done)
{
	if (done == NULL)
		return;
	int was_empty = p->dhead == NULL;
	job_append(&p->dhead, &p->dtail, job);
	p->ndone++;
	if (was_empty)
		pool_wake_loop(p);
}

static void *pool_worker(void *arg)
{
	struct threadpool *p = arg;

	pool_lock(p);
	for (;;) {
		while (p->qhead == NULL && !p->stopping)
			pthread_cond_wait(&p->work, &p->mu);
		/* Even when stopping, the queue is drained first. */
		struct threadpool_job *job = job_pop(&p->qhead, &p->qtail);
		if (job == NULL)
			break;
		p->nqueued--;
		p->nrunning++;
		pool_unlock(p);

		/* Read before work(): a job without done() may be freed by it. */
		threadpool_fn done = job->done;
		job->work(job);

		pool_lock(p);
		p->nrunning--;
		pool_finished(p, job, done);
	}
	pool_unlock(p);
	return NULL;
}

/* Run the done() of finished jobs, one job at a time. */
static void pool_deliver(struct threadpool *p)
{
	for (;;) {
		pool_lock(p);
		struct threadpool_job *job = job_pop(&p->dhead, &p->dtail);
		if (job)
			p->ndone--;
		pool_unlock(p);
		if (job == NULL)
			break;
		job->done(job);
	}
}

static void pool_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct threadpool *p = arg;
	uint64_t n;
	(void)what;
	/* Reset the counter before draining (see the header comment). */
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pool_deliver(p);
}

int threadpool_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	/* A thread inherits its creator's mask: all blocked (see above). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

struct threadpool *threadpool_new(struct event_base *base, const char *name, unsigned nthreads)
{
	struct threadpool *p = xcalloc(1, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	if (nthreads < 1)
		nthreads = 1;
	if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->work, NULL) != 0)
		fatalx("%s: cannot initialise the pool's locks", p->name);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0)
		fatal("%s: eventfd", p->name);
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, pool_on_event, p);
	if (p->ev == NULL || event_add(p->ev, NULL) < 0)
		fatalx("%s: cannot add the completion event", p->name);

	p->threads = xcalloc(nthreads, sizeof(*p->threads));
	for (unsigned i = 0; i < nthreads; i++) {
		int r = threadpool_thread_create(&p->threads[i], pool_worker, p);
		if (r != 0) {
			if (i == 0)
				fatalx("%s: cannot start a thread: %s", p->name, strerror(r));
			log_warnx("%s: started %u threads of %u: %s", p->name, i, nthreads,
			          strerror(r));
			break;
		}
		char tname[16];
		memcpy(tname, p->name, sizeof(tname) - 1);
		tname[sizeof(tname) - 1] = '\0';
		pthread_setname_np(p->threads[i], tname);
		p->nthreads = i + 1;
	}
	return p;
}

void threadpool_submit(struct threadpool *p, struct threadpool_job *job)
{
	pool_lock(p);
	if (p->joined) {
		/* From a done() run by threadpool_free(): no worker is left. */
		threadpool_fn done = job->done;
		pool_unlock(p);
		job->work(job);
		pool_lock(p);
		pool_finished(p, job, done);
		pool_unlock(p);
		return;
	}
	job_append(&p->qhead, &p->qtail, job);
	p->nqueued++;
	pthread_cond_signal(&p->work);
	pool_unlock(p);
}

size_t threadpool_pending(struct threadpool *p)
{
	pool_lock(p);
	size_t n = p->nqueued + p->nrunning + p->ndone;
	pool_unlock(p);
	return n;
}

unsigned threadpool_idle(struct threadpool *p)
{
	pool_lock(p);
	size_t busy = p->nqueued + p->nrunning;
	unsigned idle = busy >= p->nthreads ? 0 : p->nthreads - (unsigned)busy;
	pool_unlock(p);
	return idle;
}

unsigned threadpool_threads(const struct threadpool *p)
{
	return p->nthreads;
}

void threadpool_free(struct threadpool *p)
{
	if (p == NULL)
		return;
	pool_lock(p);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pool_unlock(p);
	for (unsigned i = 0; i < p->nthreads; i++) {
		int r = pthread_join(p->threads[i], NULL);
		if (r != 0)
			fatalx("%s: pthread_join: %s", p->name, strerror(r));
	}
	pool_lock(p);
	p->joined = 1;
	pool_unlock(p);
	/* Every job has run; its owner hears of it. */
	pool_deliver(p);
	event_free(p->ev);
	close(p->efd);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
