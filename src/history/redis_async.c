/*
 * redis_async.c: smtpd's Redis client for the shared sender history,
 * inside smtpd's event loop (hiredis' libevent adapter): lookups at
 * connect and before DATA, and the record of each session, none of which
 * ever blocks the loop.
 *
 * A lookup answers through its callback, always later from the loop and
 * never from inside history_async_lookup(): with the records, or with
 * ok = 0 when Redis did not answer within history_redis_timeout or the
 * connection broke. While Redis is not connected a lookup is refused at
 * once (NULL) and the caller decides from its local store. Records are
 * sent and forgotten: while Redis is down they reach only the local
 * store.
 *
 * Connection: made at start, and again after each failure after a
 * backoff (250 ms doubling to 5 s); a connect that does not complete
 * within the timeout (at least a second) counts as a failure, and so do
 * three lookups in a row that time out (a Redis that accepts and does not
 * answer). After connecting: AUTH when a password is set, SELECT when a
 * database is, SCRIPT LOAD of every script; the connection is "up" once
 * the last of these has answered. One log line when Redis goes away or is
 * not usable at the first attempt (with the reason: refused, wrong
 * password...), one when it is back.
 */
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history_int.h"
#include "log.h"
#include "redis_int.h"
#include "util.h"

#define BACKOFF_MIN_USEC 250000
#define BACKOFF_MAX_USEC 5000000
#define CONNECT_MIN_MSEC 1000
#define HUNG_TIMEOUTS 3

struct history_async {
	struct event_base *base;
	struct history_remote r;
	int v4_prefix, v6_prefix;
	int64_t max_age;
	redisAsyncContext *ac;
	int up;    /* connected and set up */
	int state; /* -1 never connected, 0 down, 1 up (for the log lines) */
	int setup_left;
	int timeouts; /* lookups in a row without an answer in time */
	int64_t backoff;
	struct event *retry_ev;
	struct event *connect_ev;
	int64_t last_err_log;
};

struct history_async_req {
	struct history_async *a;
	struct hr_keys k;
	int64_t now;
	history_async_cb cb;
	void *arg;
	struct event *timer;
	int done; /* the callback was called, or the caller cancelled */
};

static void connect_now(struct history_async *a);

static void schedule_retry(struct history_async *a)
{
	a->backoff = a->backoff == 0                     ? BACKOFF_MIN_USEC
	             : a->backoff * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC
	                                                 : a->backoff * 2;
	struct timeval tv = {(time_t)(a->backoff / 1000000), (suseconds_t)(a->backoff % 1000000)};
	evtimer_add(a->retry_ev, &tv);
}

/* The connection is gone or unusable: say so once, retry later. */
static void went_down(struct history_async *a, const char *why)
{
	a->up = 0;
	a->timeouts = 0;
	evtimer_del(a->connect_ev);
	if (a->state != 0)
		log_warnx("history: Redis at %s not usable (%s); deciding from the local history "
		          "until it is back",
		          a->r.text, why);
	a->state = 0;
	schedule_retry(a);
}

static void came_up(struct history_async *a)
{
	a->up = 1;
	a->timeouts = 0;
	a->backoff = 0;
	evtimer_del(a->connect_ev);
	if (a->state == 0)
		log_notice("history: Redis at %s answers again", a->r.text);
	else if (a->state < 0)
		log_info("history: sharing the history through Redis at %s", a->r.text);
	a->state = 1;
}

/* Drop the connection ourselves (never from inside a hiredis callback). */
static void drop(struct history_async *a, const char *why)
{
	redisAsyncContext *ac = a->ac;
	a->ac = NULL;
	went_down(a, why);
	if (ac != NULL)
		redisAsyncFree(ac); /* pending lookups get their NULL replies */
}

static void setup_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct history_async *a = ac->data;
	const redisReply *r = reply;
	const char *what = privdata;
	if (a == NULL || a->ac != ac)
		return;
	if (r == NULL)
		return; /* the disconnect callback reports it */
	if (r->type == REDIS_REPLY_ERROR) {
		char why[300];
		snprintf(why, sizeof(why), "%s refused: %s", what, r->str);
		a->ac = NULL;
		went_down(a, why);
		ac->data = NULL;
		redisAsyncDisconnect(ac);
		return;
	}
	if (--a->setup_left == 0)
		came_up(a);
}

static void connect_cb(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct history_async *a = ac->data;
	if (a == NULL || a->ac != ac)
		return;
	if (status != REDIS_OK) {
		char why[160];
		snprintf(why, sizeof(why), "%s", ac->errstr[0] ? ac->errstr : "connect failed");
		a->ac = NULL; /* hiredis frees it */
		went_down(a, why);
		return;
	}
	a->setup_left = 0;
	if (a->r.password[0] != '\0') {
		const char *argv[] = {"AUTH", a->r.password};
		size_t lens[] = {4, strlen(a->r.password)};
		redisAsyncCommandArgv(ac, setup_cb, (void *)"AUTH", 2, argv, lens);
		a->setup_left++;
	}
	if (a->r.db != 0) {
		char db[16];
		snprintf(db, sizeof(db), "%d", a->r.db);
		const char *argv[] = {"SELECT", db};
		size_t lens[] = {6, strlen(db)};
		redisAsyncCommandArgv(ac, setup_cb, (void *)"SELECT", 2, argv, lens);
		a->setup_left++;
	}
	for (int i = 0; i < HR_NSCRIPTS; i++) {
		const char *text = hr_script_text((enum hr_script)i);
		const char *argv[] = {"SCRIPT", "LOAD", text};
		size_t lens[] = {6, 4, strlen(text)};
		redisAsyncCommandArgv(ac, setup_cb, (void *)"SCRIPT LOAD", 3, argv, lens);
		a->setup_left++;
	}
}

static void disconnect_cb(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct history_async *a = ac->data;
	(void)status;
	if (a == NULL || a->ac != ac)
		return; /* we dropped it and said so already */
	a->ac = NULL;   /* hiredis frees it */
	went_down(a, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct history_async *a = arg;
	(void)fd;
	(void)what;
	if (!a->up && a->ac != NULL)
		drop(a, "connect timed out");
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_now(arg);
}

static void connect_now(struct history_async *a)
{
	redisAsyncContext *ac = a->r.unix_socket ? redisAsyncConnectUnix(a->r.path)
	                                         : redisAsyncConnect(a->r.host, a->r.port);
	if (ac == NULL) {
		went_down(a, "out of memory");
		return;
	}
	if (ac->err) {
		char why[160];
		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		went_down(a, why);
		return;
	}
	ac->data = a;
	a->ac = ac;
	if (redisLibeventAttach(ac, a->base) != REDIS_OK) {
		drop(a, "cannot attach to the event loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, connect_cb);
	redisAsyncSetDisconnectCallback(ac, disconnect_cb);
	int ms = a->r.timeout_ms > CONNECT_MIN_MSEC ? a->r.timeout_ms : CONNECT_MIN_MSEC;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(a->connect_ev, &tv);
}

struct history_async *history_async_new(struct event_base *base, const struct history_remote *r,
                                        int v4_prefix, int v6_prefix, int64_t max_age)
{
	struct history_async *a = xcalloc(1, sizeof(*a));
	a->base = base;
	a->r = *r;
	a->v4_prefix = v4_prefix;
	a->v6_prefix = v6_prefix;
	a->max_age = max_age;
	a->state = -1;
	a->retry_ev = evtimer_new(base, retry_cb, a);
	a->connect_ev = evtimer_new(base, connect_timeout, a);
	if (a->retry_ev == NULL || a->connect_ev == NULL)
		fatalx("history: cannot allocate events");
	connect_now(a);
	return a;
}

void history_async_free(struct history_async *a)
{
	if (a == NULL)
		return;
	redisAsyncContext *ac = a->ac;
	a->ac = NULL;
	if (ac != NULL) {
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	event_free(a->retry_ev);
	event_free(a->connect_ev);
	explicit_bzero(a->r.password, sizeof(a->r.password));
	free(a);
}

int history_async_up(const struct history_async *a)
{
	return a != NULL && a->up;
}

static void req_free(struct history_async_req *q)
{
	if (q->timer != NULL)
		event_free(q->timer);
	free(q);
}

static void lookup_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct history_async_req *q = arg;
	struct history_async *a = q->a;
	(void)fd;
	(void)what;
	if (q->done)
		return;
	q->done = 1;
	q->cb(q->arg, 0, NULL, NULL);
	/* q stays until its reply comes (or the connection goes). */
	if (a != NULL && ++a->timeouts >= HUNG_TIMEOUTS && a->ac != NULL)
		drop(a, "no answer within history_redis_timeout");
}

static void lookup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct history_async_req *q = privdata;
	struct history_async *a = ac->data;
	(void)a;
	if (!q->done) {
		struct history_entry host, agg;
		const char *why = NULL;
		q->done = 1;
		evtimer_del(q->timer);
		int rc = hr_lookup_reply(reply, &q->k, q->now, q->a->max_age, &host, &agg, &why);
		if (rc == 0)
			q->a->timeouts = 0;
		else if (reply != NULL)
			log_warnx("history: Redis at %s: lookup: %s", q->a->r.text, why);
		q->cb(q->arg, rc == 0, rc == 0 ? &host : NULL, rc == 0 ? &agg : NULL);
	}
	req_free(q);
}

struct history_async_req *history_async_lookup(struct history_async *a, const struct sockaddr *addr,
                                               int64_t now, history_async_cb cb, void *arg)
{
	struct hr_cmd cmd;
	if (a == NULL || !a->up || a->ac == NULL)
		return NULL;
	struct history_async_req *q = xcalloc(1, sizeof(*q));
	if (hr_keys_of(addr, a->v4_prefix, a->v6_prefix, &q->k) != 0) {
		free(q);
		return NULL;
	}
	q->a = a;
	q->now = now;
	q->cb = cb;
	q->arg = arg;
	q->timer = evtimer_new(a->base, lookup_timeout, q);
	if (q->timer == NULL)
		fatalx("history: cannot allocate a timer");
	hr_cmd_lookup(&cmd, &q->k);
	if (redisAsyncCommandArgv(a->ac, lookup_reply, q, cmd.argc, cmd.argv, cmd.argvlen) !=
	    REDIS_OK) {
		req_free(q);
		return NULL;
	}
	struct timeval tv = {a->r.timeout_ms / 1000, (a->r.timeout_ms % 1000) * 1000};
	evtimer_add(q->timer, &tv);
	return q;
}

void history_async_cancel(struct history_async_req *q)
{
	if (q == NULL || q->done)
		return;
	q->done = 1;
	evtimer_del(q->timer);
}

static void record_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct history_async *a = ac->data;
	const redisReply *r = reply;
	(void)privdata;
	if (a == NULL || r == NULL || r->type != REDIS_REPLY_ERROR)
		return;
	int64_t now = mono_usec();
	if (now - a->last_err_log > 60 * 1000000LL) {
		a->last_err_log = now;
		log_warnx("history: Redis at %s: record: %s", a->r.text, r->str);
	}
}

void history_async_record(struct history_async *a, const struct history_event *ev)
{
	struct hr_keys k;
	struct hr_cmd cmd;
	if (a == NULL || !a->up || a->ac == NULL)
		return;
	if (hr_keys_of(ev->addr, a->v4_prefix, a->v6_prefix, &k) != 0)
		return;
	hr_cmd_record(&cmd, &k, ev, a->max_age);
	redisAsyncCommandArgv(a->ac, record_reply, NULL, cmd.argc, cmd.argv, cmd.argvlen);
}
