/*
 * scanner.c: the scanner child: the SCHEDULE and SCAN stages of the
 * paper's model, between hi/ + lo/ and out/.
 *
 * Owns the child's event loop and wires the parts together:
 *   - spool_watch (inotify + periodic rescan) reports files in hi/ and
 *     lo/; they go into the scheduler's lists (scheduler.c), which the
 *     start-up rescan fills from the spool;
 *   - whenever a worker thread is free, the scheduler picks the next
 *     message and a worker (worker.c) scans it and moves it on;
 *   - one libclamav engine, loaded here at start-up and held in an
 *     engine_holder, is shared by all workers; SIGHUP and changes in the
 *     database directory (inotify, settled for a moment because freshclam
 *     writes several files) compile a new one in the background
 *     (engine_reload.c) while scans go on.
 *
 * The loop runs with three event priorities: the dispatch of work to
 * workers has the lowest, so every file notice and worker completion that
 * is ready is taken in before the next pick. That is what makes "a hi
 * message arriving while lo mail waits is the next one started" hold.
 * A message being scanned is remembered (in flight) so that a rescan
 * reporting its file again does not start it twice.
 *
 * If the database cannot be loaded when the child starts, it exits with
 * status 78 (EX_CONFIG); the master has already test-loaded the database
 * before forking, so at daemon start-up this is reported on the terminal
 * and the daemon does not start (see src/tempomxd/main.c).
 *
 * Called by the master (src/tempomxd/child.c) through scanner_main() in a
 * forked child that has already dropped its privileges.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "history.h"
#include "history_store.h"
#include "log.h"
#include "scan.h"
#include "spool.h"
#include "stats.h"
#include "tempomx.h"
#include "util.h"

/* sysexits.h EX_CONFIG: the master logs it; its back-off applies. */
#define SCANNER_EX_CONFIG 78
/* Quiet time after the last change in the database directory before the
 * reload starts. */
#define SCANNER_DB_SETTLE_SEC 2
#define SCANNER_MAX_THREADS 256

struct scanner {
	struct runtime *rt;
	struct event_base *base;
	struct spool sp;
	struct spool_watch *watch;
	struct scheduler sched;
	struct engine_holder holder;
	struct history_store *hist;
	struct worker_env wenv;
	struct worker_pool *pool;
	unsigned nthreads;
	char (*inflight)[QUEUEID_SIZE]; /* nthreads slots, "" = free */
	int pipefd[2];                  /* reload thread -> loop */
	struct event *pipe_ev;
	struct event *dispatch_ev;
	int dbfd;          /* inotify on clamav_database, -1: none */
	char tmpdir[4096]; /* for libclamav; "" = its default ($TMPDIR, /tmp) */
	struct event *db_ev, *db_timer;
	struct event *sig_ev[3];
	int stopping;
};

static void scanner_kick(struct scanner *s)
{
	if (!s->stopping)
		event_active(s->dispatch_ev, EV_TIMEOUT, 0);
}

static int scanner_inflight_find(struct scanner *s, const char *id)
{
	for (unsigned i = 0; i < s->nthreads; i++)
		if (strcmp(s->inflight[i], id) == 0)
			return (int)i;
	return -1;
}

static void scanner_seen(void *arg, enum spool_queue q, const char *id)
{
	struct scanner *s = arg;
	if ((q != Q_HI && q != Q_LO) || scanner_inflight_find(s, id) >= 0)
		return;
	if (sched_add(&s->sched, q == Q_HI ? CLASS_HI : CLASS_LO, id) == 1)
		scanner_kick(s);
}

/* Lowest priority: runs after every notice that is ready. */
static void scanner_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct scanner *s = arg;
	struct worker_job job;

	if (s->stopping)
		return;
	if (s->rt->cf->scan && s->wenv.holder != NULL) {
		struct scan_engine *e = engine_holder_get(&s->holder);
		if (e == NULL)
			return; /* waiting for a reload; its end kicks us */
		engine_release(e);
	}
	while (worker_pool_idle(s->pool) > 0) {
		int slot = scanner_inflight_find(s, "");
		if (slot < 0)
			break;
		memset(&job, 0, sizeof(job));
		if (!sched_next(&s->sched, wall_usec(), &job.pick))
			break;
		job.picked_usec = wall_usec();
		memcpy(s->inflight[slot], job.pick.id, QUEUEID_SIZE);
		if (worker_pool_submit(s->pool, &job) < 0) {
			/* Cannot happen with a free thread counted above; put it
			 * back rather than lose track of it. */
			s->inflight[slot][0] = '\0';
			sched_add(&s->sched, job.pick.queue, job.pick.id);
			break;
		}
	}
}

/* Loop thread: job is done and its thread is free. */
static void scanner_job_done(void *arg, const struct worker_job *job)
{
	struct scanner *s = arg;
	int slot = scanner_inflight_find(s, job->pick.id);
	if (slot >= 0)
		s->inflight[slot][0] = '\0';
	scanner_kick(s);
}

/* The database for tempomxctl status (scan.h, SCANNER_STATUS_FILE):
 * info NULL means no engine; failure, when not NULL, why the last reload
 * did not take. A small file, renamed into place; no flush: it is
 * written again at the next start. */
static void scanner_write_status(const struct scanner *s, const struct engine_info *info,
                                 const char *failure)
{
	char path[4096], tmp[4200], *text;
	const char *spool = s->rt->cf->spool_directory;
	if (info != NULL)
		xasprintf(&text, "engine signatures=%u, db=%s, loaded=%lld\n", info->signatures,
		          info->db_version, (long long)info->loaded_at);
	else
		xasprintf(&text, "engine none\n");
	if (failure != NULL) {
		char *more;
		xasprintf(&more, "%sreload-failed %lld %s\n", text,
		          (long long)(wall_usec() / 1000000), failure);
		free(text);
		text = more;
	}
	snprintf(path, sizeof(path), "%s/%s", spool, SCANNER_STATUS_FILE);
	snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	size_t len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		log_warn("cannot write %s", path);
		unlink(tmp);
	}
	free(text);
}

/* Reload thread: an engine may now exist; one byte on the pipe wakes the
 * loop, which may be waiting for it to dispatch. */
static void scanner_reloaded(void *arg, const struct engine_reload_report *r)
{
	struct scanner *s = arg;
	scanner_write_status(s, r->ok || r->info.signatures > 0 ? &r->info : NULL,
	                     r->ok ? NULL : r->err);
	if (!r->ok)
		return;
	ssize_t n;
	do
		n = write(s->pipefd[1], "r", 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		fatal("scanner: cannot notify the event loop");
}

static void scanner_on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct scanner *s = arg;
	char buf[64];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		;
	scanner_kick(s);
}

static void scanner_limits(const struct scanner *s, const struct config *cf,
                           struct engine_limits *lim)
{
	engine_limits_default(lim);
	lim->max_scansize = cf->scan_max_scansize;
	lim->max_filesize = cf->scan_max_filesize;
	lim->max_recursion = (uint32_t)cf->scan_max_recursion;
	lim->max_files = (uint32_t)cf->scan_max_files;
	/* What did not fit or could not be opened is reported, so that
	 * scan_error_action decides instead of a silent "clean". */
	lim->alert_exceeds_max = 1;
	lim->alert_encrypted = 1;
	lim->tmpdir = cf->scan_tmpdir[0] ? cf->scan_tmpdir : s->tmpdir[0] ? s->tmpdir : NULL;
}

static void scanner_reload_engine(struct scanner *s, const char *why)
{
	struct engine_limits lim;
	scanner_limits(s, s->rt->cf, &lim);
	log_info("reloading the virus database (%s)", why);
	engine_reload_start(&s->holder, s->rt->cf->clamav_database, &lim);
}

static void scanner_db_timer(evutil_socket_t fd, short what, void *arg)
{
	struct scanner *s = arg;
	if (s->rt->cf->scan)
		scanner_reload_engine(s, "database directory changed");
}

static void scanner_on_db(evutil_socket_t fd, short what, void *arg)
{
	struct scanner *s = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int seen = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		seen = 1;
	if (seen) {
		struct timeval tv = {SCANNER_DB_SETTLE_SEC, 0};
		evtimer_add(s->db_timer, &tv); /* re-arming restarts the wait */
	}
}

/* Watch the database directory; without it, SIGHUP still reloads. */
static void scanner_watch_db(struct scanner *s)
{
	if (s->db_ev) {
		event_free(s->db_ev);
		s->db_ev = NULL;
	}
	if (s->dbfd >= 0) {
		close(s->dbfd);
		s->dbfd = -1;
	}
	if (!s->rt->cf->scan)
		return;
	s->dbfd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->dbfd < 0) {
		log_warn("inotify for %s", s->rt->cf->clamav_database);
		return;
	}
	if (inotify_add_watch(s->dbfd, s->rt->cf->clamav_database,
	                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
	                          IN_DELETE) < 0) {
		log_warn("cannot watch %s; the database reloads on SIGHUP only",
		         s->rt->cf->clamav_database);
		close(s->dbfd);
		s->dbfd = -1;
		return;
	}
	s->db_ev = event_new(s->base, s->dbfd, EV_READ | EV_PERSIST, scanner_on_db, s);
	if (s->db_ev == NULL || event_add(s->db_ev, NULL) < 0)
		fatalx("cannot watch the database directory");
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
	return 0;
}

static void scanner_configure(struct scanner *s)
{
	const struct config *cf = s->rt->cf;
	sched_configure(&s->sched, cf->schedule, (unsigned)cf->weight, cf->lo_max_wait * 1000000);
	s->wenv.scan = cf->scan;
	s->wenv.error_action = cf->scan_error_action;
	snprintf(s->wenv.hostname, sizeof(s->wenv.hostname), "%s", cf->hostname);
	if (s->pool)
		worker_pool_set_env(s->pool, &s->wenv);
}

static void scanner_signal(evutil_socket_t sig, short what, void *arg)
{
	struct scanner *s = arg;

	switch (sig) {
	case SIGTERM:
		/* Scans in flight finish (the pool is joined after the loop);
		 * what waits stays on disk for next time. */
		log_info("stopping: %zu hi and %zu lo messages left in the queues",
		         sched_waiting(&s->sched, CLASS_HI), sched_waiting(&s->sched, CLASS_LO));
		s->stopping = 1;
		event_base_loopexit(s->base, NULL);
		break;
	case SIGHUP: {
		unsigned threads = s->nthreads;
		if (runtime_reload(s->rt) < 0)
			break;
		scanner_configure(s);
		if (s->rt->cf->scan_threads != 0 && (unsigned)s->rt->cf->scan_threads != threads)
			log_info("scan_threads takes effect when the scanner restarts");
		scanner_watch_db(s);
		if (s->rt->cf->scan)
			scanner_reload_engine(s, "SIGHUP");
		spool_watch_reload(s->watch, s->rt->cf->queue_rescan_interval);
		scanner_kick(s);
		break;
	}
	case SIGUSR1:
		spool_watch_rescan(s->watch);
		break;
	}
}

static unsigned scanner_thread_count(const struct config *cf)
{
	if (cf->scan_threads > 0)
		return (unsigned)cf->scan_threads;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > SCANNER_MAX_THREADS ? SCANNER_MAX_THREADS : (unsigned)n;
}

/* Load the engine before any thread exists. Returns 0 or -1 (logged). */
static int scanner_load_engine(struct scanner *s)
{
	char err[512], desc[512];
	struct engine_limits lim;
	struct scan_engine *e = NULL;

	if (s->rt->cf->scan) {
		char buf[sizeof(s->tmpdir)];
		const char *t =
		    s->rt->cf->scan_tmpdir[0] ? NULL : scan_tmpdir_choose(NULL, buf, sizeof(buf));
		if (t != NULL)
			snprintf(s->tmpdir, sizeof(s->tmpdir), "%s", t);
		if (engine_init(err, sizeof(err)) < 0) {
			log_warnx("libclamav: %s", err);
			return -1;
		}
		scanner_limits(s, s->rt->cf, &lim);
		e = engine_load(s->rt->cf->clamav_database, &lim, err, sizeof(err));
		if (e == NULL) {
			log_warnx("cannot load the virus database: %s", err);
			return -1;
		}
		engine_describe(e, desc, sizeof(desc));
		log_info("virus database loaded: %s", desc);
	}
	scanner_write_status(s, e ? engine_info(e) : NULL, NULL);
	engine_holder_init(&s->holder, e);
	engine_holder_set_hook(&s->holder, scanner_reloaded, s);
	s->wenv.holder = &s->holder;
	return 0;
}

static void scanner_open_history(struct scanner *s)
{
	char path[4096], err[512];
	struct history_store_settings st;
	/* The same aggregate keys as smtpd, or virus hits would count
	 * against networks smtpd never looks up. */
	history_store_settings(s->rt->cf, &st, path, sizeof(path));
	s->hist = history_store_open(&st, err, sizeof(err));
	if (s->hist == NULL)
		log_warnx("sender history unavailable, virus hits will not be recorded: %s", err);
	s->wenv.hist = s->hist;
}

static void scanner_free(struct scanner *s)
{
	static const size_t nsig = sizeof(s->sig_ev) / sizeof(s->sig_ev[0]);
	/* Workers first: they use the engine, the history and the spool. */
	worker_pool_free(s->pool);
	if (s->watch)
		spool_watch_free(s->watch);
	if (s->wenv.holder)
		engine_holder_destroy(&s->holder);
	for (size_t i = 0; i < nsig; i++)
		if (s->sig_ev[i])
			event_free(s->sig_ev[i]);
	if (s->db_ev)
		event_free(s->db_ev);
	if (s->db_timer)
		event_free(s->db_timer);
	if (s->dbfd >= 0)
		close(s->dbfd);
	if (s->pipe_ev)
		event_free(s->pipe_ev);
	if (s->dispatch_ev)
		event_free(s->dispatch_ev);
	for (int i = 0; i < 2; i++)
		if (s->pipefd[i] >= 0)
			close(s->pipefd[i]);
	if (s->base)
		event_base_free(s->base);
	history_store_close(s->hist);
	sched_free(&s->sched);
	free(s->inflight);
	spool_close(&s->sp);
}

int scanner_main(struct runtime *rt)
{
	static const int sigs[] = {SIGTERM, SIGHUP, SIGUSR1};
	struct scanner s;
	int status = 0;

	memset(&s, 0, sizeof(s));
	s.rt = rt;
	s.dbfd = -1;
	s.pipefd[0] = s.pipefd[1] = -1;
	if (spool_open(&s.sp, rt->cf->spool_directory) < 0) {
		log_warn("cannot open spool %s", rt->cf->spool_directory);
		return 1;
	}
	stats_start(rt->cf->spool_directory, "scanner");
	s.wenv.sp = &s.sp;
	sched_init(&s.sched, rt->cf->schedule, (unsigned)rt->cf->weight,
	           rt->cf->lo_max_wait * 1000000);
	if (scanner_load_engine(&s) < 0) {
		scanner_free(&s);
		return SCANNER_EX_CONFIG;
	}
	scanner_open_history(&s);
	scanner_configure(&s);

	s.base = event_base_new();
	if (s.base == NULL || event_base_priority_init(s.base, 3) < 0)
		fatalx("event_base_new failed");
	if (pipe2(s.pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("pipe");
	/* The reload thread must not lose its notice: a blocking write; the
	 * loop reads without blocking. */
	if (fcntl(s.pipefd[1], F_SETFL, 0) < 0)
		fatal("fcntl");
	s.dispatch_ev = event_new(s.base, -1, 0, scanner_dispatch, &s);
	s.pipe_ev = event_new(s.base, s.pipefd[0], EV_READ | EV_PERSIST, scanner_on_pipe, &s);
	s.db_timer = evtimer_new(s.base, scanner_db_timer, &s);
	if (s.dispatch_ev == NULL || s.pipe_ev == NULL || s.db_timer == NULL ||
	    event_priority_set(s.dispatch_ev, 2) < 0 || event_add(s.pipe_ev, NULL) < 0)
		fatalx("event_new failed");
	runtime_child_signals(s.base, sigs, sizeof(sigs) / sizeof(sigs[0]), scanner_signal, &s,
	                      s.sig_ev);
	scanner_watch_db(&s);

	s.nthreads = scanner_thread_count(rt->cf);
	s.inflight = xcalloc(s.nthreads, sizeof(*s.inflight));
	s.pool = worker_pool_new(s.base, s.nthreads, &s.wenv, scanner_job_done, &s);

	if (scanner_watch(&s) < 0) {
		status = 1;
	} else {
		log_info(
		    "started: scan=%s, threads=%u, schedule=%s, weight=%lld, lo_max_wait=%llds, "
		    "rescan every %llds",
		    rt->cf->scan ? "on" : "off", worker_pool_threads(s.pool),
		    sched_mode_name(rt->cf->schedule), (long long)rt->cf->weight,
		    (long long)rt->cf->lo_max_wait, (long long)rt->cf->queue_rescan_interval);
		if (event_base_dispatch(s.base) < 0) {
			log_warnx("event loop failed");
			status = 1;
		}
	}
	s.stopping = 1;
	scanner_free(&s);
	stats_stop();
	return status;
}
