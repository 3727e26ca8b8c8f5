/*
 * workpool.c: a fixed set of worker threads for the delivery child.
 *
 * Tasks are queued by the event loop (pool_submit), run in any free
 * thread (work), and handed back through an eventfd, whose handler runs
 * each task's done() in the loop, in completion order. Only the loop
 * touches the delivery state; a task's work() sees only its own task.
 * Called by delivery.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "workpool.h"

static void *pool_thread(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->pending == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		struct task *t = p->pending;
		if (t == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->pending = t->next;
		if (p->pending == NULL)
			p->pending_tail = &p->pending;
		pthread_mutex_unlock(&p->mu);

		t->work(t);

		pthread_mutex_lock(&p->mu);
		t->next = NULL;
		*p->done_tail = t;
		p->done_tail = &t->next;
		pthread_mutex_unlock(&p->mu);
		uint64_t one = 1;
		while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

/* The loop side: run done() of every finished task. */
static void pool_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	uint64_t n;
	while (read(p->efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&p->mu);
	struct task *t = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->mu);
	while (t) {
		struct task *next = t->next;
		p->busy--;
		t->done(t);
		t = next;
	}
}

void pool_init(struct pool *p, struct event_base *base, size_t nthreads)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->pending_tail = &p->pending;
	p->done_tail = &p->done;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0)
		fatal("eventfd");
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, pool_on_done, p);
	if (p->ev == NULL || event_add(p->ev, NULL) < 0)
		fatalx("cannot add the worker event");
	p->threads = xcalloc(nthreads, sizeof(*p->threads));
	for (size_t i = 0; i < nthreads; i++) {
		int e = pthread_create(&p->threads[i], NULL, pool_thread, p);
		if (e != 0) {
			errno = e;
			fatal("pthread_create");
		}
	}
	p->nthreads = nthreads;
}

void pool_submit(struct pool *p, struct task *t)
{
	t->next = NULL;
	p->busy++;
	pthread_mutex_lock(&p->mu);
	*p->pending_tail = t;
	p->pending_tail = &t->next;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void pool_free(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	event_free(p->ev);
	close(p->efd);
	free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}
