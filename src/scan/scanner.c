/*
 * scanner.c: the scanner child: takes accepted mail from hi/ and lo/ and
 * hands it to delivery through out/.
 *
 * Owns the scheduling of the two queues of the paper's model: every
 * message waiting in hi/ goes before any in lo/, oldest first within a
 * queue (queue IDs sort by arrival). The child learns of new files through
 * spool_watch (inotify, plus a rescan every queue_rescan_interval), keeps
 * one ordered in-memory list per queue and works through them in its
 * libevent loop, a few messages per turn so new hi/ mail and signals are
 * noticed between messages.
 *
 * Scanning itself (libclamav) is not part of this build: with "scan = no"
 * a message is moved to out/ unchanged. The scan step belongs in
 * scanner_process(), between picking the message and moving it. The master
 * refuses "scan = yes"; the check in scanner_main() is a safety net.
 *
 * Called by the master (src/tempomxd/child.c) through scanner_main() in a
 * forked child that has already dropped its privileges.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "spool.h"
#include "tempomx.h"
#include "util.h"

/* sysexits.h EX_CONFIG: the master logs it; its back-off applies. */
#define SCANNER_EX_CONFIG 78
/* Messages handled per loop turn before other events get a look in. */
#define SCANNER_BATCH 16

/*
 * A sorted set of queue IDs, oldest first: a sorted array with a moving
 * head. New IDs almost always sort last (inotify reports them in arrival
 * order) and are appended; a rescan reports known IDs again, which binary
 * search recognises without copying anything.
 */
struct idq {
	char (*v)[QUEUEID_SIZE];
	size_t head, n, cap;
};

static size_t idq_search(const struct idq *q, const char *id, int *found)
{
	size_t lo = q->head, hi = q->head + q->n;
	*found = 0;
	/* Fast path: newer than everything queued. */
	if (q->n == 0 || strcmp(q->v[hi - 1], id) < 0)
		return hi;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(q->v[mid], id);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Returns 1 when id was added, 0 when it was already queued. */
static int idq_insert(struct idq *q, const char *id)
{
	int found;
	size_t pos = idq_search(q, id, &found);
	if (found)
		return 0;
	if (q->head + q->n == q->cap) {
		if (q->head > 0) {
			memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
			pos -= q->head;
			q->head = 0;
		} else {
			q->cap = q->cap ? q->cap * 2 : 64;
			q->v = xreallocarray(q->v, q->cap, sizeof(*q->v));
		}
	}
	size_t end = q->head + q->n;
	if (pos < end)
		memmove(q->v + pos + 1, q->v + pos, (end - pos) * sizeof(*q->v));
	memcpy(q->v[pos], id, QUEUEID_SIZE);
	q->n++;
	return 1;
}

static int idq_pop(struct idq *q, char *id)
{
	if (q->n == 0)
		return 0;
	memcpy(id, q->v[q->head], QUEUEID_SIZE);
	q->head++;
	q->n--;
	if (q->n == 0)
		q->head = 0;
	return 1;
}

static void idq_free(struct idq *q)
{
	free(q->v);
	memset(q, 0, sizeof(*q));
}

struct scanner {
	struct runtime *rt;
	struct event_base *base;
	struct spool sp;
	struct spool_watch *watch;
	int64_t watch_interval;
	struct idq hi, lo;
	struct event *work_ev;
	struct event *sig_ev[3];
	int stopping;
};

static void scanner_kick(struct scanner *s)
{
	if (!s->stopping && !event_pending(s->work_ev, EV_TIMEOUT, NULL))
		event_active(s->work_ev, EV_TIMEOUT, 0);
}

static void scanner_seen(void *arg, enum spool_queue q, const char *id)
{
	struct scanner *s = arg;
	if (q != Q_HI && q != Q_LO)
		return;
	if (idq_insert(q == Q_HI ? &s->hi : &s->lo, id))
		scanner_kick(s);
}

/* Seconds the message has waited in its queue: since the rename into it,
 * which set the file's ctime. */
static double scanner_wait(struct scanner *s, enum spool_queue q, const char *id)
{
	struct stat st;
	if (fstatat(s->sp.dirfd[q], id, &st, 0) < 0)
		return 0.0;
	int64_t now = wall_usec();
	int64_t then = (int64_t)st.st_ctim.tv_sec * 1000000 + st.st_ctim.tv_nsec / 1000;
	return now > then ? (double)(now - then) / 1e6 : 0.0;
}

/* One message: read its envelope, (scan it, when scanning exists), then
 * hand it to delivery. */
static void scanner_process(struct scanner *s, enum spool_queue q, const char *id)
{
	struct envelope env;
	size_t body_off;
	int fd;
	double wait = scanner_wait(s, q, id);

	/* Reading the envelope here catches a damaged file at the first
	 * stage that sees it (the spool library moves it to corrupt/). */
	int r = spool_open_message(&s->sp, q, id, &env, &body_off, &fd);
	if (r < 0) {
		if (r == -1 && errno == ENOENT)
			log_debug("%s: gone from %s", id, spool_queue_name(q));
		else if (r == -1)
			log_warn("%s: cannot read %s/%s", id, spool_queue_name(q), id);
		envelope_free(&env);
		return;
	}

	/* The libclamav scan goes here, on fd from body_off: clean mail
	 * continues to out/, infected mail goes to quarantine/ instead. */
	const char *scan = "off";
	close(fd);
	envelope_free(&env);

	if (spool_move(&s->sp, id, q, Q_OUT) < 0) {
		if (errno == ENOENT) {
			/* Held, deleted or already moved: nothing to do. */
			log_debug("%s: gone from %s", id, spool_queue_name(q));
			return;
		}
		/* It stays in its queue; the next rescan brings it back. */
		log_warn("%s: cannot move from %s to out", id, spool_queue_name(q));
		return;
	}
	log_info("%s: class=%s, wait=%.3fs, scan=%s, moved to out", id, q == Q_HI ? "hi" : "lo",
	         wait, scan);
}

static void scanner_work(evutil_socket_t fd, short what, void *arg)
{
	struct scanner *s = arg;
	char id[QUEUEID_SIZE];

	for (int i = 0; i < SCANNER_BATCH && !s->stopping; i++) {
		/* Absolute priority (the paper's scheduler): lo/ mail only
		 * when hi/ is empty. */
		if (idq_pop(&s->hi, id))
			scanner_process(s, Q_HI, id);
		else if (idq_pop(&s->lo, id))
			scanner_process(s, Q_LO, id);
		else
			return;
	}
	if (s->hi.n + s->lo.n > 0)
		scanner_kick(s);
}

static int scanner_watch(struct scanner *s)
{
	int64_t interval = s->rt->cf->queue_rescan_interval;
	s->watch = spool_watch_new(s->base, &s->sp, (1u << Q_HI) | (1u << Q_LO), interval,
	                           scanner_seen, s);
	if (s->watch == NULL) {
		log_warn("cannot watch the hi and lo queues");
		return -1;
	}
	s->watch_interval = interval;
	return 0;
}

static void scanner_signal(evutil_socket_t sig, short what, void *arg)
{
	struct scanner *s = arg;

	switch (sig) {
	case SIGTERM:
		/* The message being moved is already done (moves are
		 * synchronous); what is queued stays on disk for next time. */
		log_info("stopping: %zu hi and %zu lo messages left in the queues", s->hi.n,
		         s->lo.n);
		s->stopping = 1;
		event_base_loopexit(s->base, NULL);
		break;
	case SIGHUP:
		if (runtime_reload(s->rt) < 0)
			break;
		if (s->rt->cf->scan)
			log_warnx("scan = yes: libclamav scanning is not implemented yet; "
			          "messages still go to out unscanned");
		if (s->rt->cf->queue_rescan_interval != s->watch_interval) {
			spool_watch_free(s->watch);
			s->watch = NULL;
			if (scanner_watch(s) < 0) {
				s->stopping = 1;
				event_base_loopexit(s->base, NULL);
			}
		} else {
			spool_watch_rescan(s->watch);
		}
		break;
	case SIGUSR1:
		spool_watch_rescan(s->watch);
		break;
	}
}

int scanner_main(struct runtime *rt)
{
	static const int sigs[] = {SIGTERM, SIGHUP, SIGUSR1};
	struct scanner s;
	int status = 0;

	memset(&s, 0, sizeof(s));
	s.rt = rt;
	if (rt->cf->scan) {
		log_warnx("scan = yes: libclamav scanning is not implemented yet");
		return SCANNER_EX_CONFIG;
	}
	if (spool_open(&s.sp, rt->cf->spool_directory) < 0) {
		log_warn("cannot open spool %s", rt->cf->spool_directory);
		return 1;
	}
	s.base = event_base_new();
	if (s.base == NULL)
		fatalx("event_base_new failed");
	s.work_ev = event_new(s.base, -1, 0, scanner_work, &s);
	if (s.work_ev == NULL)
		fatalx("event_new failed");
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		s.sig_ev[i] = evsignal_new(s.base, sigs[i], scanner_signal, &s);
		if (s.sig_ev[i] == NULL || evsignal_add(s.sig_ev[i], NULL) < 0)
			fatalx("cannot handle signal %d", sigs[i]);
	}
	if (scanner_watch(&s) < 0) {
		status = 1;
	} else {
		log_info("started: scan=off, rescan every %llds",
		         (long long)rt->cf->queue_rescan_interval);
		if (event_base_dispatch(s.base) < 0) {
			log_warnx("event loop failed");
			status = 1;
		}
	}

	if (s.watch)
		spool_watch_free(s.watch);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(s.sig_ev[i]);
	event_free(s.work_ev);
	event_base_free(s.base);
	idq_free(&s.hi);
	idq_free(&s.lo);
	spool_close(&s.sp);
	return status;
}
