/*
 * scan.h: the scanner stage (src/scan/), run by the scanner child.
 *
 *   engine.c         libclamav: process-wide init, compiled engines with
 *                    reference counts, scanning one message of a spool file
 *   engine_reload.c  the holder of the current engine, and the background
 *                    reload that compiles a new engine in its own thread
 *                    and swaps it in while scans go on
 *
 * One compiled engine is shared by every worker thread: libclamav allows
 * concurrent scans on a compiled engine, and a production database takes
 * about 1 GB and tens of seconds to compile, so there is exactly one per
 * process (two for the duration of a reload). A worker takes a reference
 * with engine_holder_get() for each message and drops it with
 * engine_release() when that scan is done; a reload swaps the holder's
 * pointer and the old engine is freed by whoever drops the last reference.
 *
 *   scheduler.c      the ordered work lists of hi/ and lo/ and the rule
 *                    that picks the next message (absolute, weighted,
 *                    fifo, promotion of old lo mail); pure, no I/O
 *   worker.c         the worker threads (the common thread pool): scan one
 *                    message and hand it on (out/, quarantine/, hold/),
 *                    record virus hits
 *   scanner.c        the scanner child: event loop, spool watch, engine
 *                    reloads, dispatch of the scheduler's picks to workers
 */
#ifndef TEMPOMX_SCAN_H
#define TEMPOMX_SCAN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "envelope.h"
#include "idlist.h"
#include "queueid.h"

/* ---- engine.c ---------------------------------------------------------- */

/*
 * Limits applied to every scan of an engine (cl_engine_set_num). Zero
 * keeps libclamav's default for that limit. When a limit is hit libclamav
 * stops looking at the rest of the object and, unless alert_exceeds_max
 * is set, calls the message clean: the admin chooses between "scan what
 * fits" and "report what did not fit".
 */
struct engine_limits {
	uint64_t max_scansize;  /* octets read per message, all parts together */
	uint64_t max_filesize;  /* octets of one object (message, part, member) */
	uint32_t max_recursion; /* nesting: message > zip > document ... */
	uint32_t max_files;     /* objects per message */
	uint32_t max_scantime;  /* milliseconds per message */
	int alert_exceeds_max;  /* report a hit limit as SCAN_EXCEEDED */
	int alert_encrypted;    /* report encrypted archives/documents as a hit */
	const char *tmpdir;     /* for extracted parts; NULL: $TMPDIR or /tmp */
};

/* <spool_directory>/SCANNER_STATUS_FILE: the scanner's database as
 * tempomxctl status shows it, rewritten (new file, rename) at start and
 * after every reload. Lines: "engine signatures=N, db=VERSION, loaded=T"
 * (T in seconds since the epoch) or "engine none", and after
 * a failed reload "reload-failed T REASON". */
#define SCANNER_STATUS_FILE "scanner.status"

/* What an engine was built from, for log lines and tempomxctl status. */
struct engine_info {
	unsigned signatures;  /* as counted by cl_load() */
	char db_version[128]; /* "main:62,daily:27450,bytecode:335" or "custom" */
	char dbdir[4096];
	int64_t load_usec; /* cl_load + cl_engine_compile */
	int64_t loaded_at; /* wall clock, seconds since the epoch */
	/* Effective limits (libclamav defaults filled in). */
	uint64_t max_scansize, max_filesize;
	uint32_t max_recursion, max_files, max_scantime;
};

struct scan_engine;

/* Process-wide libclamav set-up (cl_init, libclamav's messages routed to
 * our log). Safe to call more than once and from several threads: the
 * work is done once; later calls return the first result. Returns 0, or
 * -1 with a message in err. engine_load() calls it as well; a daemon calls
 * it before starting threads so that a broken libclamav is reported at
 * start-up. */
int engine_init(char *err, size_t errlen);
/* libclamav's version string, e.g. "1.4.6". */
const char *engine_libclamav_version(void);

/* tmpdir.c: the directory for libclamav's temporary files: configured
 * (scan_tmpdir) if not empty, else a private directory on /dev/shm made
 * in buf, else NULL (libclamav's default). Logs what it falls back to. */
const char *scan_tmpdir_choose(const char *configured, char *buf, size_t size);

/* Fill *lim with zero limits (libclamav defaults), no alerts, no tmpdir. */
void engine_limits_default(struct engine_limits *lim);

/* Load every database in the directory dbdir (cl_load, CL_DB_STDOPT),
 * apply the limits and compile. Blocking: a production database takes
 * tens of seconds; see engine_reload_start(). Returns an engine holding
 * one reference, or NULL with a message naming the directory in err (it
 * does not exist, holds no database file, a database is malformed, no
 * signature was loaded). */
struct scan_engine *engine_load(const char *dbdir, const struct engine_limits *lim, char *err,
                                size_t errlen);
/* Take one more reference; returns e. */
struct scan_engine *engine_acquire(struct scan_engine *e);
/* Drop one reference; the last one frees the engine. NULL is ignored. */
void engine_release(struct scan_engine *e);
const struct engine_info *engine_info(const struct scan_engine *e);
/* One line for the log: "signatures=12, db=custom, libclamav=1.4.6,
 * load=3.1ms, dir=/var/lib/clamav". */
void engine_describe(const struct scan_engine *e, char *buf, size_t size);

enum scan_status {
	SCAN_CLEAN = 0,
	SCAN_VIRUS,    /* a signature or heuristic matched: name says which */
	SCAN_EXCEEDED, /* a limit stopped the scan and alerts are on */
	SCAN_ERROR     /* not scanned: name says why */
};

#define SCAN_NAME_SIZE 256

struct scan_result {
	enum scan_status status;
	/* VIRUS: the signature name ("Eicar-Signature", "Heuristics.Encrypted.Zip",
	 * custom ones end in ".UNOFFICIAL"); EXCEEDED: the limit
	 * ("Heuristics.Limits.Exceeded.MaxFileSize") or libclamav's reason;
	 * ERROR: the reason; CLEAN: empty. */
	char name[SCAN_NAME_SIZE];
	uint64_t size; /* octets of message scanned */
	int64_t usec;  /* wall time of the scan */
};

/*
 * Scan the message that starts at file offset `offset` of fd and runs to
 * the end of the file, as one RFC 5322 message: MIME parts are decoded
 * and archives opened. fd is read with pread() only (its file position is
 * not used or changed), so a spool file is scanned in place after its
 * envelope block, without a copy. Thread-safe: any number of threads may
 * scan with the same engine at once. Returns res->status.
 */
enum scan_status engine_scan_fd(struct scan_engine *e, int fd, off_t offset,
                                struct scan_result *res);
/* The same for the len octets at offset of a regular file the caller has
 * already checked (a spool file, whose message is followed by update
 * records): no fstat. */
enum scan_status engine_scan_range(struct scan_engine *e, int fd, off_t offset, uint64_t len,
                                   struct scan_result *res);
/* "clean", "virus", "exceeded", "error". */
const char *scan_status_name(enum scan_status s);

/* ---- engine_reload.c ---------------------------------------------------- */

/* Result of one background reload, given to the holder's hook. */
struct engine_reload_report {
	int ok;                  /* 1: the new engine is current; 0: the old one stays */
	char err[512];           /* ok == 0: why the new engine was not built */
	struct engine_info info; /* the engine that is current after the reload
	                          * (zeroed when there is none) */
	int64_t usec;            /* time spent loading and compiling */
};

/* Called in the reload thread after each reload, once the outcome has
 * been logged and (on success) the new engine swapped in. Keep it short;
 * an event loop hands the news over with event_active() or a pipe. */
typedef void (*engine_reload_hook)(void *arg, const struct engine_reload_report *r);

/* Holds the current engine. All fields are private to engine_reload.c. */
struct engine_holder {
	pthread_mutex_t mu;
	pthread_cond_t idle; /* signalled when a reload run ends */
	struct scan_engine *cur;
	engine_reload_hook hook;
	void *hook_arg;
	int reloading; /* a reload thread runs */
	int pending;   /* a request arrived while it ran: run again */
	int joinable;  /* thread was started and is not joined yet */
	pthread_t thread;
	char *next_dbdir; /* parameters of the next run */
	struct engine_limits next_limits;
	char *next_tmpdir;
	unsigned generation; /* swaps so far */
};

/* Start with engine e (its reference passes to the holder; NULL: none). */
void engine_holder_init(struct engine_holder *h, struct scan_engine *e);
/* Wait for a running reload to end, then drop the current engine. */
void engine_holder_destroy(struct engine_holder *h);
/* The current engine with a reference taken (release it after the scan),
 * or NULL when there is none. */
struct scan_engine *engine_holder_get(struct engine_holder *h);
/* Make e current (its reference passes to the holder) and drop the
 * holder's reference on the previous one; scans that hold it finish on it. */
void engine_holder_swap(struct engine_holder *h, struct scan_engine *e);
/* How many swaps have happened (a reload that failed does not count). */
unsigned engine_holder_generation(struct engine_holder *h);
/* Set the hook called after each reload (NULL: none). */
void engine_holder_set_hook(struct engine_holder *h, engine_reload_hook fn, void *arg);

/*
 * Build a new engine from dbdir with lim in a background thread and swap
 * it in when it is compiled; scans continue on the current engine in the
 * meantime. When it fails, the current engine stays and the reason is
 * logged. Returns 0 when a reload thread was started, 1 when a reload was
 * already running (this request then runs right after it, with the
 * parameters of the latest request: a database update during a long
 * compile is not missed), -1 with errno when no thread could be started
 * (logged; the current engine stays).
 */
int engine_reload_start(struct engine_holder *h, const char *dbdir,
                        const struct engine_limits *lim);
/* Wait until no reload is running or queued. timeout_usec < 0: no limit.
 * Returns 0, or -1 on timeout. */
int engine_reload_wait(struct engine_holder *h, int64_t timeout_usec);

/* ---- scheduler.c -------------------------------------------------------- */

/*
 * The scheduler of the paper's SCHEDULE stage, as a pure module: it knows
 * queue IDs and the clock it is given, nothing else. IDs sort by arrival
 * (queueid.h), so each class is a sorted set and "oldest first" is the
 * head. A pick is final: a started message is never put back
 * (non-preemptive); the caller forgets or re-adds IDs as files come and go.
 */
struct scheduler {
	int mode;                 /* enum schedule_mode (conf.h) */
	unsigned weight;          /* weighted: hi picks per lo pick, >= 1 */
	int64_t lo_max_wait_usec; /* 0: no promotion */
	struct idlist list[2];    /* indexed by enum msg_class */
	unsigned hi_run;          /* weighted: hi picks since the last lo pick
	                           * made while lo mail was waiting */
	uint64_t picks;           /* picks so far; the next pick is picks + 1 */
};

struct sched_pick {
	char id[QUEUEID_SIZE];
	enum msg_class queue; /* the directory it is in */
	int promoted;         /* a lo message picked as hi (lo_max_wait) */
	uint64_t order;       /* 1 for the first pick, then 2, 3 ... */
};

void sched_init(struct scheduler *s, int mode, unsigned weight, int64_t lo_max_wait_usec);
/* Change the rules (configuration reload); the lists stay. */
void sched_configure(struct scheduler *s, int mode, unsigned weight, int64_t lo_max_wait_usec);
void sched_free(struct scheduler *s);
/* Add a waiting message. Returns 1 when added, 0 when it was already
 * there, -1 when id is not a queue ID. */
int sched_add(struct scheduler *s, enum msg_class c, const char *id);
/* Drop a waiting message (its file went away). Returns 1 if it was there. */
int sched_remove(struct scheduler *s, enum msg_class c, const char *id);
size_t sched_waiting(const struct scheduler *s, enum msg_class c);
/* Pick the next message to start at wall time now_usec and remove it from
 * its list. Returns 1 with *p filled, 0 when nothing waits. */
int sched_next(struct scheduler *s, int64_t now_usec, struct sched_pick *p);
const char *sched_mode_name(int mode);

/* ---- worker.c ------------------------------------------------------------ */

struct spool;
struct history_store;

/* What the worker threads share: read-only while they run, except the
 * holder (its own lock) and the history handle (thread-safe). */
struct worker_env {
	struct spool *sp;
	struct engine_holder *holder;
	struct history_store *hist; /* NULL: no history (logged once) */
	int scan;                   /* scan = yes */
	int error_action;           /* enum scan_error_action */
	char hostname[256];
};

/* One message handed to a worker. */
struct worker_job {
	struct sched_pick pick;
	int64_t picked_usec; /* wall clock when it was picked */
};

struct worker_pool;
struct event_base;
/* Called in the scanner's loop thread after each job, once its thread is
 * free again. */
typedef void (*worker_done_fn)(void *arg, const struct worker_job *job);

/* Start n threads (the common pool, src/common/threadpool.c), reporting
 * to base's loop. Each job runs with a copy of env as it was when the job
 * was submitted. Loop thread only, like every call below. */
struct worker_pool *worker_pool_new(struct event_base *base, unsigned n,
                                    const struct worker_env *env, worker_done_fn done, void *arg);
/* Replace the settings the next jobs see (configuration reload). */
void worker_pool_set_env(struct worker_pool *wp, const struct worker_env *env);
/* Threads started (fewer than n if the system refused some). */
unsigned worker_pool_threads(const struct worker_pool *wp);
/* Number of threads without a job. */
unsigned worker_pool_idle(struct worker_pool *wp);
/* Give a job to an idle thread. Returns 0, or -1 when none is idle: a job
 * never waits in a queue, so the scheduler picks when a thread is free. */
int worker_pool_submit(struct worker_pool *wp, const struct worker_job *job);
/* Let the running jobs finish (their done is called), then stop and join
 * the threads. */
void worker_pool_free(struct worker_pool *wp);

/* Process one message synchronously (what a worker thread does): open it,
 * scan it, move it on. Exposed for tests and benchmarks. */
void worker_process(const struct worker_env *env, const struct worker_job *job);

#endif
