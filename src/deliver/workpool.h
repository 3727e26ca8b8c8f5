/*
 * workpool.h: the delivery child's worker threads (workpool.c): blocking
 * work (Maildir writes, envelope updates, spool scans) runs in a thread,
 * and its completion runs back in the event loop.
 */
#ifndef TEMPOMX_WORKPOOL_H
#define TEMPOMX_WORKPOOL_H

#include <pthread.h>
#include <stddef.h>

#include <event2/event.h>

struct task;
typedef void (*task_fn)(struct task *);

/* A unit of blocking work: work() runs in a worker thread, then done()
 * runs in the event loop. Embedded in a larger struct. */
struct task {
	task_fn work;
	task_fn done;
	struct task *next;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct task *pending, **pending_tail;
	struct task *done, **done_tail;
	int stop;
	int efd;
	struct event *ev;
	pthread_t *threads;
	size_t nthreads;
	size_t busy; /* submitted and not yet done() */
};

void pool_init(struct pool *p, struct event_base *base, size_t nthreads);
/* Queue t: t->work() runs in a thread, then t->done() in the loop. */
void pool_submit(struct pool *p, struct task *t);
/* Join the threads; queued tasks are run first. */
void pool_free(struct pool *p);

#endif
