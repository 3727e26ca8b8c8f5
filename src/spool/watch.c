/*
 * watch.c: tell a stage about files arriving in the queue directories it
 * consumes.
 *
 * Owns one inotify descriptor per watcher, its libevent events and the
 * periodic rescan. Called by the scanner (hi/, lo/) and delivery (out/,
 * deferred/) to learn of new work without polling.
 *
 * Files enter a queue only by rename (spool.c), so IN_MOVED_TO is the
 * event that matters; IN_CLOSE_WRITE also catches a file written in place
 * by hand. inotify is only a fast path: the kernel drops events when its
 * queue overflows (IN_Q_OVERFLOW, answered with a full rescan), watches
 * can be refused (the per-user limit), and files that were there before
 * the stage started raise no event at all. So every watched queue is
 * scanned once at creation and again every interval seconds; a file
 * missed by inotify waits at most one interval. A callback may therefore
 * see the same ID more than once, and a file may be gone by the time it
 * looks: callers tolerate both. After a configuration reload the stage
 * calls spool_watch_reload(), which moves the period if
 * queue_rescan_interval changed and rescans at once.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "util.h"

/* Reads of the inotify descriptor per loop callback, so a flood of
 * events cannot keep the loop from its other work (the event stays
 * readable and fires again). */
#define WATCH_READS_PER_CALLBACK 16
#define WATCH_BUF_SIZE 65536

struct spool_watch {
	struct event_base *base;
	struct spool *sp;
	unsigned mask;
	int64_t interval;
	watch_fn fn;
	void *arg;
	int ifd;
	int wd[Q_COUNT];
	struct event *inotify_ev;
	struct event *timer_ev;
	struct event *rescan_ev;
	int busy; /* inside a callback dispatch */
	int dead; /* spool_watch_free() was called during one */
	char *buf;
};

static void watch_destroy(struct spool_watch *w)
{
	if (w->inotify_ev)
		event_free(w->inotify_ev);
	if (w->timer_ev)
		event_free(w->timer_ev);
	if (w->rescan_ev)
		event_free(w->rescan_ev);
	if (w->ifd >= 0)
		close(w->ifd);
	free(w->buf);
	free(w);
}

/* Returns 1 when the watcher was freed from inside a callback. */
static int watch_leave(struct spool_watch *w)
{
	if (--w->busy == 0 && w->dead) {
		watch_destroy(w);
		return 1;
	}
	return 0;
}

static void watch_scan(struct spool_watch *w)
{
	w->busy++;
	for (int q = 0; q < Q_COUNT && !w->dead; q++) {
		if (!(w->mask & (1u << q)))
			continue;
		char(*ids)[QUEUEID_SIZE];
		size_t n = spool_list(w->sp, (enum spool_queue)q, &ids);
		for (size_t i = 0; i < n && !w->dead; i++)
			w->fn(w->arg, (enum spool_queue)q, ids[i]);
		free(ids);
	}
	watch_leave(w);
}

static void watch_on_rescan(evutil_socket_t fd, short what, void *arg)
{
	watch_scan(arg);
}

static void watch_on_timer(evutil_socket_t fd, short what, void *arg)
{
	watch_scan(arg);
}

static int watch_queue_of(struct spool_watch *w, int wd)
{
	for (int q = 0; q < Q_COUNT; q++) {
		if (w->wd[q] == wd)
			return q;
	}
	return -1;
}

/* Handle the events in buf[0..len). */
static void watch_events(struct spool_watch *w, const char *buf, size_t len)
{
	size_t off = 0;
	while (off + sizeof(struct inotify_event) <= len && !w->dead) {
		const struct inotify_event *ev = (const void *)(buf + off);
		off += sizeof(struct inotify_event) + ev->len;
		if (ev->mask & IN_Q_OVERFLOW) {
			log_notice("spool: inotify queue overflow, rescanning");
			event_active(w->rescan_ev, EV_TIMEOUT, 0);
			continue;
		}
		int q = watch_queue_of(w, ev->wd);
		if (q < 0)
			continue;
		if (ev->mask & IN_IGNORED) {
			/* The directory went away or was unmounted; the
			 * periodic rescan is all that is left. */
			log_warnx("spool: %s/ is no longer watched", spool_queue_name(q));
			w->wd[q] = -1;
			continue;
		}
		if (ev->len == 0 || (ev->mask & IN_ISDIR))
			continue;
		if (!queueid_valid(ev->name))
			continue;
		w->fn(w->arg, (enum spool_queue)q, ev->name);
	}
}

static void watch_on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct spool_watch *w = arg;
	w->busy++;
	for (int i = 0; i < WATCH_READS_PER_CALLBACK && !w->dead; i++) {
		ssize_t n = read(fd, w->buf, WATCH_BUF_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_warn("spool: inotify read");
			break;
		}
		if (n == 0)
			break;
		watch_events(w, w->buf, (size_t)n);
	}
	watch_leave(w);
}

/* Arm (or disarm, for 0) the periodic rescan. */
static void watch_set_timer(struct spool_watch *w, int64_t interval)
{
	w->interval = interval;
	if (interval <= 0) {
		if (w->timer_ev)
			event_del(w->timer_ev);
		return;
	}
	struct timeval tv = {.tv_sec = (time_t)interval, .tv_usec = 0};
	if (w->timer_ev == NULL)
		w->timer_ev = event_new(w->base, -1, EV_PERSIST, watch_on_timer, w);
	if (w->timer_ev == NULL || event_add(w->timer_ev, &tv) < 0)
		fatalx("spool: cannot add the rescan timer");
}

struct spool_watch *spool_watch_new(struct event_base *base, struct spool *sp, unsigned mask,
                                    int64_t interval, watch_fn fn, void *arg)
{
	struct spool_watch *w = xcalloc(1, sizeof(*w));
	w->base = base;
	w->sp = sp;
	w->mask = mask & ((1u << Q_COUNT) - 1);
	w->fn = fn;
	w->arg = arg;
	w->ifd = -1;
	for (int q = 0; q < Q_COUNT; q++)
		w->wd[q] = -1;
	/* inotify_event holds an int: keep the buffer aligned for it. */
	w->buf = xmalloc(WATCH_BUF_SIZE);

	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0)
		log_warn("spool: inotify_init1 (falling back to rescans every %llds)",
		         (long long)interval);
	for (int q = 0; q < Q_COUNT && w->ifd >= 0; q++) {
		if (!(w->mask & (1u << q)))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", sp->path, spool_queue_name(q));
		w->wd[q] =
		    inotify_add_watch(w->ifd, path, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
		if (w->wd[q] < 0)
			log_warn("spool: inotify watch on %s (rescans only)", path);
	}
	if (w->ifd >= 0) {
		w->inotify_ev = event_new(base, w->ifd, EV_READ | EV_PERSIST, watch_on_inotify, w);
		if (w->inotify_ev == NULL || event_add(w->inotify_ev, NULL) < 0)
			fatalx("spool: cannot add the inotify event");
	}
	w->rescan_ev = event_new(base, -1, 0, watch_on_rescan, w);
	if (w->rescan_ev == NULL)
		fatalx("spool: cannot create the rescan event");
	watch_set_timer(w, interval);
	/* The start-up scan runs from the loop, like every other callback. */
	event_active(w->rescan_ev, EV_TIMEOUT, 0);
	return w;
}

void spool_watch_rescan(struct spool_watch *w)
{
	/* Activating an already active event is a no-op: requests made
	 * before the loop gets to it are merged into one scan. */
	event_active(w->rescan_ev, EV_TIMEOUT, 0);
}

int spool_watch_reload(struct spool_watch *w, int64_t interval)
{
	int changed = interval != w->interval;
	/* The watched directories stay; only the safety-net period moves. */
	if (changed)
		watch_set_timer(w, interval);
	spool_watch_rescan(w);
	return changed;
}

void spool_watch_free(struct spool_watch *w)
{
	if (w == NULL)
		return;
	if (w->busy) {
		w->dead = 1;
		return;
	}
	watch_destroy(w);
}
