/*
 * engine_reload.c: the current engine of the scanner, and its reload.
 *
 * struct engine_holder owns the pointer to the engine new scans use. A
 * worker takes a reference under the holder's mutex (engine_holder_get)
 * and scans without any lock; a swap replaces the pointer under the mutex
 * and drops the holder's reference, so the old engine lives on exactly
 * until the last scan that started on it has finished.
 *
 * A reload (SIGHUP, tempomxctl reload, a database update) compiles the
 * new engine in its own thread: with the official databases that takes
 * tens of seconds and about 1 GB, and scanning must not stop meanwhile
 * (the process holds both engines until the swap). If the new database
 * cannot be loaded, the current engine stays and the log says why.
 * Requests that arrive during a reload are merged into one more run with
 * the latest parameters, so the newest database always ends up loaded.
 *
 * Called by the scanner child's main thread (init, reload, destroy) and
 * its workers (get). The hook runs in the reload thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "scan.h"
#include "threadpool.h"
#include "util.h"

static void holder_lock(struct engine_holder *h)
{
	int rc = pthread_mutex_lock(&h->mu);
	if (rc != 0)
		fatalx("engine holder: pthread_mutex_lock: %s", strerror(rc));
}

static void holder_unlock(struct engine_holder *h)
{
	int rc = pthread_mutex_unlock(&h->mu);
	if (rc != 0)
		fatalx("engine holder: pthread_mutex_unlock: %s", strerror(rc));
}

void engine_holder_init(struct engine_holder *h, struct scan_engine *e)
{
	memset(h, 0, sizeof(*h));
	int rc = pthread_mutex_init(&h->mu, NULL);
	if (rc != 0)
		fatalx("engine holder: pthread_mutex_init: %s", strerror(rc));
	/* A monotonic clock for engine_reload_wait(): a wall clock step must
	 * not shorten or stretch a shutdown's wait. */
	pthread_condattr_t ca;
	if ((rc = pthread_condattr_init(&ca)) != 0 ||
	    (rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
	    (rc = pthread_cond_init(&h->idle, &ca)) != 0)
		fatalx("engine holder: pthread_cond_init: %s", strerror(rc));
	pthread_condattr_destroy(&ca);
	h->cur = e;
	engine_limits_default(&h->next_limits);
}

static void holder_clear_next(struct engine_holder *h)
{
	free(h->next_dbdir);
	free(h->next_tmpdir);
	h->next_dbdir = NULL;
	h->next_tmpdir = NULL;
	engine_limits_default(&h->next_limits);
}

void engine_holder_destroy(struct engine_holder *h)
{
	engine_reload_wait(h, -1);
	holder_lock(h);
	if (h->joinable) {
		/* The thread has ended its last run and only returns now. */
		pthread_join(h->thread, NULL);
		h->joinable = 0;
	}
	struct scan_engine *e = h->cur;
	h->cur = NULL;
	holder_clear_next(h);
	holder_unlock(h);
	engine_release(e);
	pthread_cond_destroy(&h->idle);
	pthread_mutex_destroy(&h->mu);
}

struct scan_engine *engine_holder_get(struct engine_holder *h)
{
	holder_lock(h);
	struct scan_engine *e = h->cur != NULL ? engine_acquire(h->cur) : NULL;
	holder_unlock(h);
	return e;
}

void engine_holder_swap(struct engine_holder *h, struct scan_engine *e)
{
	holder_lock(h);
	struct scan_engine *old = h->cur;
	h->cur = e;
	h->generation++;
	holder_unlock(h);
	/* Outside the lock: freeing a large engine takes a while, and scans
	 * still running on it keep it alive through their own references. */
	engine_release(old);
}

unsigned engine_holder_generation(struct engine_holder *h)
{
	holder_lock(h);
	unsigned g = h->generation;
	holder_unlock(h);
	return g;
}

void engine_holder_set_hook(struct engine_holder *h, engine_reload_hook fn, void *arg)
{
	holder_lock(h);
	h->hook = fn;
	h->hook_arg = arg;
	holder_unlock(h);
}

/* One reload: build, then swap or keep, log, and tell the hook. */
static void reload_once(struct engine_holder *h, const char *dbdir, const struct engine_limits *lim)
{
	struct engine_reload_report *rep = xcalloc(1, sizeof(*rep));
	char desc[1024];

	int64_t t0 = mono_usec();
	struct scan_engine *ne = engine_load(dbdir, lim, rep->err, sizeof(rep->err));
	rep->usec = mono_usec() - t0;
	if (ne != NULL) {
		rep->ok = 1;
		rep->info = *engine_info(ne);
		engine_describe(ne, desc, sizeof(desc));
		engine_holder_swap(h, ne);
		log_info("engine reloaded: %s", desc);
	} else {
		struct scan_engine *cur = engine_holder_get(h);
		if (cur != NULL) {
			rep->info = *engine_info(cur);
			engine_describe(cur, desc, sizeof(desc));
			log_warnx("engine reload failed: %s; keeping the current engine (%s)",
			          rep->err, desc);
			engine_release(cur);
		} else {
			log_warnx("engine reload failed: %s; no engine loaded, scanning "
			          "cannot start",
			          rep->err);
		}
	}

	holder_lock(h);
	engine_reload_hook fn = h->hook;
	void *arg = h->hook_arg;
	holder_unlock(h);
	if (fn != NULL)
		fn(arg, rep);
	free(rep);
}

static void *reload_main(void *arg)
{
	struct engine_holder *h = arg;

	holder_lock(h);
	for (;;) {
		char *dbdir = h->next_dbdir;
		char *tmpdir = h->next_tmpdir;
		struct engine_limits lim = h->next_limits;
		lim.tmpdir = tmpdir;
		h->next_dbdir = NULL;
		h->next_tmpdir = NULL;
		h->pending = 0;
		holder_unlock(h);

		reload_once(h, dbdir, &lim);
		free(dbdir);
		free(tmpdir);

		holder_lock(h);
		if (!h->pending)
			break;
	}
	h->reloading = 0;
	pthread_cond_broadcast(&h->idle);
	holder_unlock(h);
	return NULL;
}

int engine_reload_start(struct engine_holder *h, const char *dbdir, const struct engine_limits *lim)
{
	holder_lock(h);
	holder_clear_next(h);
	h->next_dbdir = xstrdup(dbdir);
	h->next_limits = *lim;
	h->next_tmpdir = lim->tmpdir != NULL ? xstrdup(lim->tmpdir) : NULL;
	h->next_limits.tmpdir = NULL; /* reload_main() points it at next_tmpdir */
	if (h->reloading) {
		h->pending = 1;
		holder_unlock(h);
		return 1;
	}
	if (h->joinable) {
		/* The previous reload thread has finished its runs (reloading
		 * is 0) and needs only to return; reap it before reusing. */
		pthread_join(h->thread, NULL);
		h->joinable = 0;
	}

	/* The reload thread takes no signals: the scanner's main thread
	 * handles SIGHUP and SIGTERM through its event loop. */
	h->reloading = 1;
	h->pending = 0;
	int rc = threadpool_thread_create(&h->thread, reload_main, h);
	if (rc != 0) {
		h->reloading = 0;
		holder_clear_next(h);
		holder_unlock(h);
		log_warnx("engine reload: cannot start a thread: %s; keeping the current engine",
		          strerror(rc));
		errno = rc;
		return -1;
	}
	h->joinable = 1;
	holder_unlock(h);
	return 0;
}

int engine_reload_wait(struct engine_holder *h, int64_t timeout_usec)
{
	struct timespec deadline;
	if (timeout_usec >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += (time_t)(timeout_usec / 1000000);
		deadline.tv_nsec += (long)(timeout_usec % 1000000) * 1000;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	int ret = 0;
	holder_lock(h);
	while (h->reloading) {
		int rc = timeout_usec < 0 ? pthread_cond_wait(&h->idle, &h->mu)
		                          : pthread_cond_timedwait(&h->idle, &h->mu, &deadline);
		if (rc == ETIMEDOUT) {
			ret = h->reloading ? -1 : 0;
			break;
		}
		if (rc != 0)
			fatalx("engine holder: pthread_cond_wait: %s", strerror(rc));
	}
	holder_unlock(h);
	return ret;
}
