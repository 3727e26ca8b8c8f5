/*
 * worker.c: the scanner's worker threads (the SCAN stage): each takes one
 * message picked by the scheduler, scans it with the shared engine and
 * hands it on.
 *
 * Owns what happens to one message: clean mail goes to out/ with the
 * scan result in its envelope (the X-Tempomx-Scan and X-Tempomx-Class
 * fields are made of it at delivery, src/spool/headers.c); infected mail
 * goes to quarantine/ with the virus name in its envelope and a virus
 * counted in the sender history of its client address (never a bounce:
 * the sender address of a virus is forged, so a bounce would be
 * backscatter); mail that could not be fully scanned follows
 * scan_error_action.
 *
 * The message is never copied: the result is one update record appended
 * to the file (spool_note, no flush), then the file is renamed into out/
 * (spool_handoff, no flush). Neither needs to be durable: if a crash
 * loses the rename, the file is in hi/ or lo/ again; if it loses the
 * record, delivery finds a file in out/ without a scan result and sends
 * it back to be scanned. Either way the message is scanned again, never
 * lost and never delivered unscanned. A file found in hi/ or lo/ with a
 * result already (the rename was lost, the record was not) is moved on
 * as it is, without a second scan. A version 1 file is still handled as
 * version 1 did it: header fields put into the message by spool_update().
 *
 * The threads are the common pool's (src/common/threadpool.c); the layer
 * at the end of this file takes a job only when a thread is idle, so the
 * pool's queue never holds a message: the scheduler decides at the last
 * moment and a message that arrives in hi/ is not stuck behind lo mail
 * already queued. Each job carries a copy of the settings it was
 * submitted with, and its completion is reported in the scanner's loop.
 * Called by scanner.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "fault.h"
#include "history.h"
#include "history_store.h"
#include "log.h"
#include "scan.h"
#include "spool.h"
#include "stats.h"
#include "threadpool.h"
#include "util.h"

/* Longest value copied into a header field from the envelope (reasons)
 * or from libclamav (names); keeps the line under RFC 5322's 998. */
#define WORKER_FIELD_MAX 200

/* Copy src into dst keeping printable ASCII only: the values come from
 * the envelope (client-controlled words) and libclamav, and must not
 * break the header block with CR, LF or 8-bit octets. */
static void worker_clean_text(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	if (size == 0)
		return;
	for (; src != NULL && *src != '\0' && n + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;
		dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[n] = '\0';
}

/* What the scan used, kept in the envelope (scan-info) for the
 * X-Tempomx-Scan field that delivery makes of it. */
static char *worker_scan_info(const struct worker_env *wenv, const struct scan_engine *e)
{
	const struct engine_info *info = e ? engine_info(e) : NULL;
	char db[sizeof(info->db_version)];
	char *out;
	worker_clean_text(db, sizeof(db), info ? info->db_version : "none");
	xasprintf(&out, "engine=libclamav %s; db=%s; signatures=%u; host=%s",
	          engine_libclamav_version(), db, info ? info->signatures : 0, wenv->hostname);
	return out;
}

/* Count a virus in the history of the client that sent it. */
static void worker_record_virus(const struct worker_env *wenv, const struct envelope *env)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (wenv->hist == NULL || env->client_addr == NULL || env->client_addr[0] == '\0')
		return;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, env->client_addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, env->client_addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
	} else {
		log_warnx("%s: client address '%s' not understood; history not updated", env->id,
		          env->client_addr);
		return;
	}
	struct history_event ev = {.addr = (struct sockaddr *)&ss,
	                           .flags = HISTORY_EV_VIRUS,
	                           .score = NAN,
	                           .now = time(NULL)};
	if (history_store_record(wenv->hist, &ev, 1) < 0)
		log_warnx("%s: history not updated for %s", env->id, env->client_addr);
}

/* Where a file already scanned before a crash goes. */
static enum spool_queue worker_rescued_dest(const struct worker_env *wenv, const char *result)
{
	if (strncmp(result, "infected", 8) == 0)
		return Q_QUARANTINE;
	if (strncmp(result, "unscanned", 9) == 0) {
		if (wenv->error_action == ERROR_ACTION_HOLD)
			return Q_HOLD;
		if (wenv->error_action == ERROR_ACTION_QUARANTINE)
			return Q_QUARANTINE;
	}
	return Q_OUT;
}

static int worker_is_incomplete(const struct scan_result *res)
{
	if (res->status == SCAN_EXCEEDED || res->status == SCAN_ERROR)
		return 1;
	/* alert_encrypted reports encrypted content as a "virus" of this
	 * family; it is content we could not look into, not a finding. */
	return res->status == SCAN_VIRUS && strncmp(res->name, "Heuristics.Encrypted.", 21) == 0;
}

/* Move a scanned file on. Into out/ it needs no flush: if a crash undoes
 * the rename, the file is found in hi/ or lo/ with its result and moved
 * on again. Into quarantine/ or hold/ (rare) the move is flushed, since
 * nothing would otherwise take it further. */
static int worker_pass_on(const struct worker_env *wenv, const char *id, enum spool_queue q,
                          enum spool_queue dest)
{
	if (dest == Q_OUT)
		return spool_handoff(wenv->sp, id, q, dest);
	return spool_move(wenv->sp, id, q, dest);
}

void worker_process(const struct worker_env *wenv, const struct worker_job *job)
{
	enum spool_queue q = job->pick.queue == CLASS_HI ? Q_HI : Q_LO;
	const char *id = job->pick.id;
	const char *qname = spool_queue_name(q);
	struct envelope env;
	size_t body_off;
	int fd;

	int r = spool_take(wenv->sp, q, id, &env, &body_off, &fd);
	if (r < 0) {
		if (r == -1 && errno == ENOENT)
			log_debug("%s: gone from %s", id, qname);
		else if (r == -1)
			log_warn("%s: cannot read %s/%s", id, qname, id);
		envelope_free(&env);
		return;
	}
	/* The queue manager's line, in Postfix's shape: the message enters
	 * the scanner's queue (each time it does). */
	log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue %s)", id, env.sender ? env.sender : "",
	         (unsigned long long)env.size, env.nrcpt, qname);
	double wait = 0.0;
	/* The rename into the queue set the ctime. */
	if (job->picked_usec > env.queued_usec)
		wait = (double)(job->picked_usec - env.queued_usec) / 1e6;
	char cls[32];
	snprintf(cls, sizeof(cls), "%s%s", job->pick.queue == CLASS_HI ? "hi" : "lo",
	         job->pick.promoted ? " (promoted)" : "");

	if (env.scan_result != NULL) {
		close(fd);
		enum spool_queue dest = worker_rescued_dest(wenv, env.scan_result);
		if (worker_pass_on(wenv, id, q, dest) < 0)
			log_warn("%s: cannot move from %s to %s", id, qname,
			         spool_queue_name(dest));
		else
			log_info("%s: class=%s, order=%llu, wait=%.3fs, scan=done before restart "
			         "(%s), moved to %s",
			         id, cls, (unsigned long long)job->pick.order, wait,
			         env.scan_result, spool_queue_name(dest));
		envelope_free(&env);
		return;
	}
	if (!wenv->scan) {
		close(fd);
		/* The file is passed on unchanged, so no flush is needed: if a
		 * crash undoes the rename, the message is simply taken again. */
		if (spool_handoff(wenv->sp, id, q, Q_OUT) < 0) {
			if (errno == ENOENT)
				log_debug("%s: gone from %s", id, qname);
			else
				log_warn("%s: cannot move from %s to out", id, qname);
		} else {
			stats_add(STAT_SCANNED, 1);
			log_info("%s: class=%s, order=%llu, wait=%.3fs, scan=off, moved to out", id,
			         cls, (unsigned long long)job->pick.order, wait);
		}
		envelope_free(&env);
		return;
	}

	struct scan_engine *e = engine_holder_get(wenv->holder);
	struct scan_result res;
	memset(&res, 0, sizeof(res));
	if (e == NULL) {
		/* Only when a reload turned scanning on and its engine is not
		 * ready: the message stays and is picked again later. */
		log_warnx("%s: no scan engine loaded; left in %s", id, qname);
		close(fd);
		envelope_free(&env);
		return;
	}
	engine_scan_range(e, fd, (off_t)body_off, env.size, &res);

	char name[WORKER_FIELD_MAX], result[WORKER_FIELD_MAX + 32];
	worker_clean_text(name, sizeof(name), res.name);
	enum spool_queue dest;
	const char *what;
	if (res.status == SCAN_VIRUS && !worker_is_incomplete(&res)) {
		snprintf(result, sizeof(result), "infected %s", name);
		dest = Q_QUARANTINE;
		what = "virus";
	} else if (worker_is_incomplete(&res)) {
		snprintf(result, sizeof(result), "unscanned %s", name[0] ? name : "error");
		what = "incomplete";
		if (wenv->error_action == ERROR_ACTION_HOLD)
			dest = Q_HOLD;
		else if (wenv->error_action == ERROR_ACTION_QUARANTINE)
			dest = Q_QUARANTINE;
		else
			dest = Q_OUT;
	} else {
		snprintf(result, sizeof(result), "clean");
		dest = Q_OUT;
		what = "clean";
	}
	free(env.scan_result);
	env.scan_result = xstrdup(result);
	free(env.scan_info);
	env.scan_info = worker_scan_info(wenv, e);
	engine_release(e);
	free(env.scan_class);
	env.scan_class = xstrdup(cls);

	int rc;
	if (env.version >= 2) {
		/* The result is appended to the file, which then changes queue:
		 * no copy of the message and no flush (see spool.c). */
		rc = spool_note(fd, &env, 0);
		close(fd);
		fault_point("scan-noted");
		if (rc == 0)
			rc = worker_pass_on(wenv, id, q, dest);
		fault_point("scan-passed");
	} else {
		/* A file from version 1 of the spool: the scan field goes into
		 * the message, as that version did, and it stays version 1. Its
		 * smtpd already wrote the class field under its Received:. */
		close(fd);
		struct envelope v2 = env;
		size_t hlen;
		v2.version = 2;
		char *prepend = envelope_headers(&v2, "\r\n", &hlen);
		char *eol = strstr(prepend, "\r\n");
		if (strncmp(prepend, "X-Tempomx-Scan:", 15) == 0 && eol != NULL)
			eol[2] = '\0';
		else
			prepend[0] = '\0';
		rc = spool_update(wenv->sp, q, id, &env, dest == Q_OUT ? prepend : NULL, dest);
		free(prepend);
	}
	if (rc < 0) {
		/* The old file is untouched (or has its result, which the
		 * scan-result check above handles): the next rescan retries.
		 * ENOENT: the admin took it away (tempomxctl hold, delete)
		 * while it was being scanned; it is theirs now. */
		if (errno == ENOENT)
			log_info(
			    "%s: taken out of %s/ during its scan; left where the admin put it", id,
			    qname);
		else
			log_warn("%s: cannot move from %s to %s", id, qname,
			         spool_queue_name(dest));
	} else {
		stats_add(STAT_SCANNED, 1);
		if (dest == Q_QUARANTINE && res.status == SCAN_VIRUS &&
		    strcmp(what, "virus") == 0) {
			worker_record_virus(wenv, &env);
			stats_add(STAT_VIRUS, 1);
		}
		log_info("%s: class=%s, order=%llu, wait=%.3fs, scan=%.1fms, size=%llu, "
		         "result=%s%s%s, client=%s, moved to %s",
		         id, cls, (unsigned long long)job->pick.order, wait,
		         (double)res.usec / 1000.0, (unsigned long long)res.size, what,
		         name[0] ? ", name=" : "", name,
		         env.client_addr && env.client_addr[0] ? env.client_addr : "local",
		         spool_queue_name(dest));
	}
	envelope_free(&env);
}

/* ---- the pool ----------------------------------------------------------- */

struct worker_pool {
	struct threadpool *tp;
	struct worker_env env; /* copied into each job at submission */
	worker_done_fn done;
	void *arg;
};

struct worker_task {
	struct threadpool_job pj; /* first */
	struct worker_pool *wp;
	struct worker_env env;
	struct worker_job job;
};

static void worker_task_work(struct threadpool_job *pj)
{
	struct worker_task *t = (struct worker_task *)pj;
	worker_process(&t->env, &t->job);
}

static void worker_task_done(struct threadpool_job *pj)
{
	struct worker_task *t = (struct worker_task *)pj;
	if (t->wp->done)
		t->wp->done(t->wp->arg, &t->job);
	free(t);
}

struct worker_pool *worker_pool_new(struct event_base *base, unsigned n,
                                    const struct worker_env *env, worker_done_fn done, void *arg)
{
	struct worker_pool *wp = xcalloc(1, sizeof(*wp));
	wp->env = *env;
	wp->done = done;
	wp->arg = arg;
	wp->tp = threadpool_new(base, "scanner", n ? n : 1);
	return wp;
}

void worker_pool_set_env(struct worker_pool *wp, const struct worker_env *env)
{
	wp->env = *env;
}

unsigned worker_pool_threads(const struct worker_pool *wp)
{
	return threadpool_threads(wp->tp);
}

unsigned worker_pool_idle(struct worker_pool *wp)
{
	return threadpool_idle(wp->tp);
}

int worker_pool_submit(struct worker_pool *wp, const struct worker_job *job)
{
	if (threadpool_idle(wp->tp) == 0)
		return -1;
	struct worker_task *t = xcalloc(1, sizeof(*t));
	t->pj.work = worker_task_work;
	t->pj.done = worker_task_done;
	t->wp = wp;
	t->env = wp->env;
	t->job = *job;
	threadpool_submit(wp->tp, &t->pj);
	return 0;
}

void worker_pool_free(struct worker_pool *wp)
{
	if (wp == NULL)
		return;
	/* The jobs handed over finish; their completions are reported. */
	threadpool_free(wp->tp);
	free(wp);
}
