/*
 * screen.c: the timing classifier and the pre-acceptance policy wired into
 * smtpd sessions (the judging itself is in src/classify/).
 *
 * At connect: is the client exempt (mynetworks, a listener with
 * timing = off, a whitelisted address)? What does its history predict?
 * Clients without a good history get the split banner (greet_pause) and
 * one delayed reply (patience_delay); good ones get neither. During the
 * dialogue the session's events feed the evidence (timing.c). At DATA,
 * before the 354, the verdict and the policy decide: accept into hi/ or
 * lo/, tempfail or reject; admission control may shed load. At the end
 * the verdict is logged (with the queue ID, or the client when nothing
 * was accepted) and the history learns what happened, through the writer
 * below: history writes fsync and must never block the loop, so they run
 * in one thread of the common pool (src/common/threadpool.c), a batch at a
 * time, while the next batch gathers in the loop.
 * With a shared history (history_store = redis://...), the prediction
 * rests on Redis' answer when it comes within history_redis_timeout (the
 * greeting waits for it through the observer's greet_wait), else on the
 * local store; history_share.c asks and records.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "admission.h"
#include "classify.h"
#include "conf.h"
#include "history.h"
#include "history_share.h"
#include "history_store.h"
#include "log.h"
#include "rdnsname.h"
#include "screen.h"
#include "stats.h"
#include "threadpool.h"
#include "util.h"

/* Events waiting for the writer beyond this are dropped (and logged):
 * the history is advisory, mail never waits for it. */
#define SCREEN_QUEUE_MAX 4096
/* Session records written in one history transaction (one fsync). */
#define SCREEN_BATCH_MAX 64
/* The expiry sweep: this often, at most this many records a slice. */
#define SCREEN_SWEEP_SEC 60
#define SCREEN_SWEEP_RECORDS 20000
/* TCP_INFO is read with each of the first commands of a session. */
#define SCREEN_RTT_READS 16

/* Whitelist semantics (tempomx.conf(5) WHITELISTS). A client entry
 * skips every delay (known at connect: no split banner, no held reply)
 * and overrides every policy refusal. A sender entry is known from MAIL
 * on: it skips the held reply when that comes later (patience_reply
 * mail or rcpt) and overrides the decision at DATA. A recipient entry
 * skips the held reply of its own RCPT and, when every recipient of the
 * transaction is whitelisted, overrides the decision at DATA. None skips
 * what is already past, and none stops the evidence being gathered: the
 * real verdict is logged, stored and added to the message beside the
 * override, and the history learns how the client behaved. */
enum wl_kind { WL_NONE = 0, WL_CLIENT, WL_SENDER, WL_RECIPIENT };

static const char *wl_kind_name(enum wl_kind k)
{
	return k == WL_CLIENT ? "client" : k == WL_SENDER ? "sender" : "recipient";
}

struct screen_item {
	struct sockaddr_storage ss;
	unsigned flags;
	double score;
	int64_t now;
};

struct screen_server {
	struct smtpd *srv;
	struct history_store *hist;
	struct history_share *share; /* history_store = redis: history_share.c */
	struct whitelist wl;
	/* History writer: one pool thread; the rest is the loop thread's. */
	struct threadpool *writer;
	struct screen_item *q; /* records waiting for the next batch */
	size_t qlen;
	int writing;  /* a batch of records is with the writer */
	int sweeping; /* an expiry slice is with the writer */
	int stopping;
	unsigned long dropped;
	struct event *sweep_ev;
};

/* One job of the writer: records to store, or an expiry slice. */
struct screen_batch {
	struct threadpool_job pj; /* first */
	struct screen_server *ss;
	int sweep;
	int64_t max_age; /* sweep: history_max_age when it was submitted */
	size_t n;
	struct screen_item items[SCREEN_BATCH_MAX];
};

struct screen {
	struct screen_server *ss;
	struct session *s;
	struct share_lookup shared; /* the shared history's latest answer */
	struct timing t;
	int observe;              /* the evidence is gathered (not exempt) */
	int probe;                /* the delays apply (not exempt, client not whitelisted) */
	int exempt;               /* mynetworks or a listener with timing = off */
	int wl_client;            /* whitelisted client address */
	enum wl_kind whitelisted; /* what whitelisted the current transaction */
	enum policy_history hist;
	int64_t first_seen;
	int64_t junk_since;
	char hist_reason[160];
	int patience_used;
	/* the decision of the current transaction */
	struct verdict v;
	struct policy_result pr;
	int decided;
	/* what the session did, for the history */
	unsigned accepted_hi, accepted_lo, tempfails, rejects;
	int logged_with_id;
};

static const struct session_observer screen_observer;

/* The settings in force (SIGHUP swaps them in place: never cached). */
static const struct config *screen_cf(const struct screen *sc)
{
	return sc->ss->srv->rt->cf;
}

/* ---- history writer ---- */

/* Writer thread. */
static void batch_work(struct threadpool_job *pj)
{
	struct screen_batch *b = (struct screen_batch *)pj;
	struct history_store *hist = b->ss->hist;
	if (b->sweep) {
		/* Expiry: smtpd is the one process that sweeps, a slice at a
		 * time so a large store never holds the writer. */
		size_t removed = 0;
		if (history_store_expire(hist, wall_usec() / 1000000, b->max_age,
		                         SCREEN_SWEEP_RECORDS, &removed) >= 0 &&
		    removed > 0)
			log_info("history: %zu expired records removed", removed);
		return;
	}
	struct history_event evs[SCREEN_BATCH_MAX];
	for (size_t i = 0; i < b->n; i++) {
		evs[i].addr = (const struct sockaddr *)&b->items[i].ss;
		evs[i].flags = b->items[i].flags;
		evs[i].score = b->items[i].score;
		evs[i].now = b->items[i].now;
	}
	/* One transaction, one fsync for the whole batch. */
	if (history_store_record(hist, evs, b->n) != 0)
		log_warnx("history: %zu session records not written", b->n);
}

static void writer_kick(struct screen_server *ss);

/* Loop thread: the writer is done with b. */
static void batch_done(struct threadpool_job *pj)
{
	struct screen_batch *b = (struct screen_batch *)pj;
	struct screen_server *ss = b->ss;
	if (b->sweep)
		ss->sweeping = 0;
	else
		ss->writing = 0;
	free(b);
	if (!ss->stopping)
		writer_kick(ss);
}

/* Hand the oldest waiting records (at most a batch) to the writer. */
static void writer_submit(struct screen_server *ss)
{
	struct screen_batch *b = xcalloc(1, sizeof(*b));
	b->pj.work = batch_work;
	b->pj.done = batch_done;
	b->ss = ss;
	b->n = ss->qlen < SCREEN_BATCH_MAX ? ss->qlen : SCREEN_BATCH_MAX;
	memcpy(b->items, ss->q, b->n * sizeof(b->items[0]));
	memmove(ss->q, ss->q + b->n, (ss->qlen - b->n) * sizeof(ss->q[0]));
	ss->qlen -= b->n;
	ss->writing = 1;
	threadpool_submit(ss->writer, &b->pj);
}

/* One batch at a time: what arrives meanwhile makes the next one. */
static void writer_kick(struct screen_server *ss)
{
	if (!ss->writing && ss->qlen > 0)
		writer_submit(ss);
}

static void writer_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct screen_server *ss = arg;
	int64_t max_age = ss->srv->rt->cf->history_max_age;
	(void)fd;
	(void)what;
	if (ss->sweeping || ss->stopping || max_age <= 0)
		return;
	struct screen_batch *b = xcalloc(1, sizeof(*b));
	b->pj.work = batch_work;
	b->pj.done = batch_done;
	b->ss = ss;
	b->sweep = 1;
	b->max_age = max_age;
	ss->sweeping = 1;
	threadpool_submit(ss->writer, &b->pj);
}

static void writer_push(struct screen_server *ss, const struct sockaddr *sa, socklen_t len,
                        unsigned flags, double score)
{
	if (ss == NULL || ss->writer == NULL || ss->stopping)
		return;
	if (ss->qlen >= SCREEN_QUEUE_MAX) {
		if (ss->dropped++ % 1000 == 0)
			log_warnx("history: writer behind, %lu session records dropped",
			          ss->dropped);
		return;
	}
	struct screen_item *it = &ss->q[ss->qlen++];
	memset(it, 0, sizeof(*it));
	memcpy(&it->ss, sa, len < sizeof(it->ss) ? len : sizeof(it->ss));
	it->flags = flags;
	it->score = score;
	it->now = wall_usec() / 1000000;
	writer_kick(ss);
}

static void writer_start(struct screen_server *ss)
{
	ss->q = xcalloc(SCREEN_QUEUE_MAX, sizeof(*ss->q));
	ss->writer = threadpool_new(ss->srv->base, "history", 1);
	struct timeval tv = {SCREEN_SWEEP_SEC, 0};
	ss->sweep_ev = event_new(ss->srv->base, -1, EV_PERSIST, writer_sweep, ss);
	if (ss->sweep_ev == NULL || event_add(ss->sweep_ev, &tv) < 0)
		fatalx("history: cannot add the expiry timer");
}

/* Write what is still waiting, then stop the writer. */
static void writer_stop(struct screen_server *ss)
{
	if (ss->writer == NULL)
		return;
	ss->stopping = 1;
	event_free(ss->sweep_ev);
	while (ss->qlen > 0)
		writer_submit(ss); /* queued behind each other: one thread */
	threadpool_free(ss->writer);
	ss->writer = NULL;
}

/* ---- process level ---- */

void screen_server_init(struct smtpd *srv)
{
	const struct config *cf = srv->rt->cf;
	struct screen_server *ss = xcalloc(1, sizeof(*ss));
	srv->scr = ss;
	ss->srv = srv;
	smtpd_set_observer(srv, &screen_observer, ss);
	whitelist_from_config(cf, &ss->wl);
	char path[4096], err[512];
	struct history_store_settings st;
	history_store_settings(cf, &st, path, sizeof(path));
	st.local_only = 1; /* Redis through the event loop: history_share.c */
	ss->hist = history_store_open(&st, err, sizeof(err));
	if (ss->hist == NULL) {
		log_warnx("history: %s; every client is treated as new", err);
		return;
	}
	writer_start(ss);
	ss->share = history_share_new(srv);
}

void screen_server_reload(struct smtpd *srv)
{
	if (srv->scr == NULL)
		return;
	whitelist_free(&srv->scr->wl);
	whitelist_from_config(srv->rt->cf, &srv->scr->wl);
	log_info("whitelists: %zu clients, %zu senders, %zu recipients", srv->scr->wl.nclients,
	         srv->scr->wl.nsenders, srv->scr->wl.nrcpts);
}

void screen_server_free(struct smtpd *srv)
{
	struct screen_server *ss = srv->scr;
	if (ss == NULL)
		return;
	writer_stop(ss);
	history_share_free(ss->share);
	if (ss->hist)
		history_store_close(ss->hist);
	whitelist_free(&ss->wl);
	free(ss->q);
	free(ss);
	srv->scr = NULL;
}

/* ---- session level ---- */

static void test_actions(const struct config *cf, enum test_action a[TT_NTESTS])
{
	a[TT_PREGREET] = (enum test_action)cf->pregreet_action;
	a[TT_PIPELINING] = (enum test_action)cf->pipelining_action;
	a[TT_PATIENCE] = (enum test_action)cf->patience_action;
	a[TT_THINK] = (enum test_action)cf->think_time_action;
	a[TT_NON_SMTP] = (enum test_action)cf->non_smtp_action;
	a[TT_HELO] = (enum test_action)cf->helo_action;
}

/* What the history predicts for the client now. Called at connect (for
 * the delays) and again at each DATA: a connection kept open or reused by
 * its client must be judged by what the history learnt meanwhile. The
 * shared history's latest answer when it came in time, else one LMDB read
 * transaction, a few microseconds. */
static void predict(struct session *s, struct screen *sc)
{
	const struct config *cf = screen_cf(sc);
	struct screen_server *ss = sc->ss;
	sc->hist = POLICY_NEW;
	snprintf(sc->hist_reason, sizeof(sc->hist_reason), "no history");
	if (ss && ss->hist) {
		struct history_entry host, agg;
		int64_t now = wall_usec() / 1000000;
		int rc = 0;
		if (sc->shared.ok) {
			host = sc->shared.host;
			agg = sc->shared.agg;
		} else {
			rc = history_store_lookup(ss->hist, session_peer(s), now, &host, &agg);
		}
		if (rc == 0) {
			struct history_params hp;
			history_params_from_config(cf, &hp);
			struct history_prediction pred;
			sc->hist =
			    (enum policy_history)history_predict(&host, &agg, &hp, now, &pred);
			sc->first_seen = pred.first_seen;
			sc->junk_since = pred.junk_since;
			snprintf(sc->hist_reason, sizeof(sc->hist_reason), "%s", pred.reason);
		}
	}
}

static void *scr_open(void *arg, struct session *s)
{
	struct screen_server *ss = arg;
	struct screen *sc = xcalloc(1, sizeof(*sc));
	sc->ss = ss;
	const struct config *cf = screen_cf(sc);
	timing_init(&sc->t, session_connect_usec(s));
	sc->exempt = !session_timing_enabled(s) || conf_in_mynetworks(cf, session_peer(s));
	sc->wl_client = ss && whitelist_client(&ss->wl, session_peer(s));
	sc->observe = !sc->exempt;
	sc->probe = !sc->exempt && !sc->wl_client;
	predict(s, sc);
	sc->s = s;
	if (sc->observe)
		timing_rtt(&sc->t, session_fd(s));
	return sc;
}

/* The shared history answered (or did not in time): predict again. */
static void shared_answer(void *arg)
{
	struct screen *sc = arg;
	predict(sc->s, sc);
	session_observer_ready(sc->s);
}

/* The greeting depends on the prediction: wait for the shared history,
 * at most history_redis_timeout. */
static int scr_greet_wait(void *ctx, struct session *s)
{
	struct screen *sc = ctx;
	if (sc->ss == NULL || sc->exempt || sc->wl_client)
		return 0;
	return history_share_lookup(sc->ss->share, &sc->shared, session_peer(s), shared_answer, sc);
}

static int64_t scr_greet_pause(void *ctx, struct session *s)
{
	const struct screen *sc = ctx;
	(void)s;
	if (sc == NULL || !sc->probe || sc->hist == POLICY_GOOD)
		return 0;
	if ((enum test_action)screen_cf(sc)->pregreet_action == TEST_OFF)
		return 0;
	return screen_cf(sc)->greet_pause;
}

/* Reverse DNS as weak evidence: a name that does not lead back to the
 * client, or none at all, and a name that looks like a dynamic pool. A
 * lookup that failed says nothing about the client. */
static void note_rdns(struct session *s, struct screen *sc, enum session_rdns r)
{
	const char *ptr = session_client_ptr(s);
	const char *generic = NULL;
	if (r == RDNS_NONE || r == RDNS_TEMPFAIL)
		return;
	if (ptr != NULL && ptr[0] != '\0')
		generic = rdnsname_generic(ptr, session_client_addr(s));
	char what[40];
	if (r == RDNS_CONFIRMED)
		snprintf(what, sizeof(what), "%s", ptr ? ptr : "?");
	else if (r == RDNS_NO_PTR)
		snprintf(what, sizeof(what), "no PTR");
	else
		snprintf(what, sizeof(what), "%s does not confirm", ptr && ptr[0] ? ptr : "PTR");
	timing_note_rdns(&sc->t, r != RDNS_CONFIRMED, generic != NULL, what);
}

static void note_helo(struct session *s, struct screen *sc);
static void committed(struct session *s, struct screen *sc);
static void patience_over(struct screen *sc, int closed, int spoke);

static void scr_event(void *ctx, struct session *s, const struct session_event *ev)
{
	struct screen *sc = ctx;
	if (ev->type == SEV_COMMITTED) {
		committed(s, sc); /* exempt clients' messages too */
		return;
	}
	if (!sc->observe)
		return;
	switch (ev->type) {
	case SEV_PREGREET:
		timing_note_pregreet(&sc->t, ev->octets, ev->usec);
		break;
	case SEV_GREETING:
		timing_note_greeting(&sc->t, scr_greet_pause(sc, s) > 0, ev->usec);
		break;
	case SEV_COMMAND:
		/* The round trip the answer is judged against: the kernel's
		 * estimate settles over the first exchanges. */
		if (!ev->early && sc->t.commands < SCREEN_RTT_READS)
			timing_rtt(&sc->t, session_fd(s));
		/* What the other MXes learnt since connect, for the decision
		 * at DATA. */
		if (ev->verb == CMD_MAIL && sc->ss != NULL)
			history_share_refresh(sc->ss->share, &sc->shared, session_peer(s));
		timing_note_command(&sc->t, ev->verb == CMD_NONE ? NULL : cmd_verb_name(ev->verb),
		                    ev->early, ev->bare_lf, ev->pipelining,
		                    ev->arrival > 0 ? ev->arrival : ev->usec);
		break;
	case SEV_REPLY:
		timing_note_reply(&sc->t, ev->usec);
		break;
	case SEV_FLUSHED:
		timing_note_flushed(&sc->t, ev->usec);
		break;
	case SEV_TLS:
		timing_note_tls(&sc->t);
		break;
	case SEV_DATA_END:
		timing_note_end_of_data(&sc->t, session_esmtp(s));
		break;
	case SEV_QUIT:
		if (ev->octets > 0)
			timing_note_after_quit(&sc->t);
		break;
	case SEV_HOLD_INPUT:
		timing_patience_input(&sc->t, session_esmtp(s), ev->usec);
		break;
	case SEV_RDNS:
		note_rdns(s, sc, ev->rdns);
		break;
	case SEV_NON_SMTP:
		timing_note_non_smtp(&sc->t, ev->text);
		break;
	case SEV_HELO:
		note_helo(s, sc);
		break;
	case SEV_HOLD_OVER:
		patience_over(sc, 0, 0);
		break;
	case SEV_COMMITTED:
		break;
	}
}

static void note_helo(struct session *s, struct screen *sc)
{
	if (session_helo(s) == NULL)
		return;
	char ours[64] = "";
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	if (getsockname(session_fd(s), (struct sockaddr *)&local, &llen) == 0)
		sockaddr_host((struct sockaddr *)&local, ours, sizeof(ours));
	timing_note_helo(&sc->t, timing_helo_form(session_helo(s), session_client_addr(s),
	                                          ours[0] ? ours : NULL, screen_cf(sc)->hostname));
}

static int64_t scr_patience(void *ctx, struct session *s, enum screen_reply which)
{
	struct screen *sc = ctx;
	const struct config *cf = screen_cf(sc);
	if (!sc->probe || sc->patience_used || sc->hist == POLICY_GOOD)
		return 0;
	if (cf->patience_delay <= 0 || (enum test_action)cf->patience_action == TEST_OFF ||
	    cf->patience_reply != (int)which)
		return 0;
	/* A whitelisted sender skips the delays still to come; a whitelisted
	 * recipient the delay of its own RCPT reply. */
	const struct whitelist *wl = sc->ss ? &sc->ss->wl : NULL;
	if (wl && session_sender(s) && whitelist_sender(wl, session_sender(s)))
		return 0;
	if (wl && which == SCREEN_REPLY_RCPT && session_nrcpt(s) > 0 &&
	    whitelist_recipient(wl, session_rcpt(s, session_nrcpt(s) - 1)))
		return 0;
	sc->patience_used = 1;
	timing_patience_start(&sc->t, mono_usec(), cf->patience_delay * 1000000);
	return cf->patience_delay;
}

static void patience_over(struct screen *sc, int closed, int spoke)
{
	if (closed || spoke)
		timing_patience_break(&sc->t, closed, mono_usec());
	else
		timing_patience_end(&sc->t);
}

static enum wl_kind transaction_whitelisted(const struct session *s, const struct screen *sc)
{
	const struct whitelist *wl = sc->ss ? &sc->ss->wl : NULL;
	if (sc->wl_client)
		return WL_CLIENT;
	if (wl == NULL)
		return WL_NONE;
	if (session_sender(s) && whitelist_sender(wl, session_sender(s)))
		return WL_SENDER;
	if (session_nrcpt(s) == 0)
		return WL_NONE;
	for (size_t i = 0; i < session_nrcpt(s); i++)
		if (!whitelist_recipient(wl, session_rcpt(s, i)))
			return WL_NONE;
	return WL_RECIPIENT;
}

/* The daily counter of a refusal at DATA: by timing (with the strongest
 * enforced evidence as its reason), as predicted junk, as new, or by
 * load. */
static enum stats_counter refusal_counter(const struct screen *sc,
                                          const enum test_action act[TT_NTESTS], enum reply_id r)
{
	const struct timing *t = &sc->t;
	if (r != RPL_POLICY_REJECT && r != RPL_POLICY_TEMPFAIL)
		return STAT_TEMPFAIL_LOAD;
	if (sc->v.cls == VERDICT_JUNK && !sc->whitelisted && !sc->exempt) {
		if (r == RPL_POLICY_TEMPFAIL)
			return STAT_TEMPFAIL_TIMING;
		if (act[TT_PREGREET] == TEST_ENFORCE && t->pregreet_octets > 0)
			return STAT_REFUSED_PREGREET;
		if (act[TT_PIPELINING] == TEST_ENFORCE &&
		    (t->unauth_pipelining || t->body_before_354))
			return STAT_REFUSED_PIPELINING;
		if (act[TT_PATIENCE] == TEST_ENFORCE && t->impatient)
			return STAT_REFUSED_PATIENCE;
		if (act[TT_NON_SMTP] == TEST_ENFORCE && t->bare_lf > 0)
			return STAT_REFUSED_BARE_LF;
		if (act[TT_NON_SMTP] == TEST_ENFORCE && t->non_smtp)
			return STAT_REFUSED_NON_SMTP;
		return STAT_REFUSED_TIMING_OTHER;
	}
	if (sc->hist == POLICY_JUNK)
		return r == RPL_POLICY_REJECT ? STAT_REFUSED_JUNK : STAT_TEMPFAIL_JUNK;
	return STAT_TEMPFAIL_NEW;
}

static enum reply_id scr_decide(void *ctx, struct session *s)
{
	struct screen *sc = ctx;
	const struct config *cf = screen_cf(sc);
	predict(s, sc);
	/* RFC 2920 3.1: DATA ends a group; the body may only follow the 354.
	 * BDAT's chunk follows its command at once (RFC 3030). */
	if (sc->observe && !session_chunking(s) && session_input_pending(s) > 0)
		timing_note_early_body(&sc->t);
	enum test_action act[TT_NTESTS];
	test_actions(cf, act);
	verdict_compute(&sc->t, act, &sc->v);
	sc->whitelisted = transaction_whitelisted(s, sc);
	struct policy_params pp;
	policy_params_from_config(cf, &pp);
	struct policy_input in = {.history = sc->hist,
	                          .first_seen = sc->first_seen,
	                          .junk_since = sc->junk_since,
	                          .now = wall_usec() / 1000000,
	                          .verdict = sc->v.cls,
	                          .whitelisted = sc->whitelisted != WL_NONE,
	                          .exempt = sc->exempt};
	policy_decide(&pp, &in, &sc->pr);
	if (sc->whitelisted != WL_NONE) {
		/* Say what the whitelist overrode. */
		struct policy_result plain;
		in.whitelisted = 0;
		policy_decide(&pp, &in, &plain);
		int n =
		    snprintf(sc->pr.why, sizeof(sc->pr.why), "whitelisted %s (without it: %s, ",
		             wl_kind_name(sc->whitelisted), policy_decision_name(plain.decision));
		if (n > 0 && (size_t)n < sizeof(sc->pr.why) - 2)
			snprintf(sc->pr.why + n, sizeof(sc->pr.why) - (size_t)n, "%.*s)",
			         (int)(sizeof(sc->pr.why) - (size_t)n - 2), plain.why);
	}
	sc->decided = 1;

	enum reply_id r = RPL_NONE;
	if (sc->pr.decision == POLICY_REJECT)
		r = RPL_POLICY_REJECT;
	else if (sc->pr.decision == POLICY_TEMPFAIL)
		r = RPL_POLICY_TEMPFAIL;
	else
		r = admission_check(sc->ss->srv, sc->pr.decision == POLICY_HI);

	const char *outcome = r == RPL_NONE              ? policy_decision_name(sc->pr.decision)
	                      : r == RPL_POLICY_REJECT   ? "reject"
	                      : r == RPL_POLICY_TEMPFAIL ? "tempfail"
	                                                 : "tempfail (load)";
	log_info("classify: %s[%s]:%u: %s, verdict=%s, score=%d, history=%s (%s), %s%s%s%s; "
	         "reasons: %s",
	         session_client_name(s), session_client_addr(s), session_client_port(s), outcome,
	         verdict_class_name(sc->v.cls), sc->v.score,
	         history_class_name((enum history_class)sc->hist), sc->hist_reason, sc->pr.why,
	         sc->pr.would != sc->pr.decision ? " (log only: would " : "",
	         sc->pr.would != sc->pr.decision ? policy_decision_name(sc->pr.would) : "",
	         sc->pr.would != sc->pr.decision ? ")" : "",
	         sc->v.reasons[0] ? sc->v.reasons : "none");
	if (r == RPL_POLICY_REJECT)
		sc->rejects++;
	else if (r != RPL_NONE)
		sc->tempfails++;
	if (r != RPL_NONE)
		stats_add(refusal_counter(sc, act, r), 1);
	return r;
}

static enum spool_queue scr_queue(void *ctx, struct session *s)
{
	const struct screen *sc = ctx;
	(void)s;
	if (!sc->decided)
		return Q_HI;
	return sc->pr.decision == POLICY_HI ? Q_HI : Q_LO;
}

static void scr_envelope(void *ctx, struct session *s, struct envelope *env)
{
	const struct screen *sc = ctx;
	(void)s;
	if (!sc->decided)
		return;
	env->class = sc->pr.decision == POLICY_HI ? CLASS_HI : CLASS_LO;
	free(env->verdict);
	/* The real verdict, even when a whitelist overrode it; exempt
	 * clients are not judged at all. */
	env->verdict = xstrdup(sc->exempt ? "good" : verdict_class_name(sc->v.cls));
	env->score = sc->v.score;
	free(env->reasons);
	env->reasons = NULL;
	char over[48] = "";
	if (sc->exempt)
		snprintf(over, sizeof(over), "exempt");
	else if (sc->whitelisted != WL_NONE)
		snprintf(over, sizeof(over), "whitelisted %s", wl_kind_name(sc->whitelisted));
	if (sc->v.reasons[0] || over[0])
		xasprintf(&env->reasons, "%s%s%s", over, over[0] && sc->v.reasons[0] ? "; " : "",
		          sc->v.reasons);
	free(env->history);
	env->history = xstrdup(history_class_name((enum history_class)sc->hist));
}

static void committed(struct session *s, struct screen *sc)
{
	if (!sc->decided)
		return;
	if (sc->pr.decision == POLICY_HI)
		sc->accepted_hi++;
	else
		sc->accepted_lo++;
	sc->logged_with_id = 1;
	log_info("%s: class=%s, verdict=%s, score=%d, history=%s, reasons: %s", session_queue_id(s),
	         sc->pr.decision == POLICY_HI ? "hi" : "lo", verdict_class_name(sc->v.cls),
	         sc->v.score, history_class_name((enum history_class)sc->hist),
	         sc->v.reasons[0] ? sc->v.reasons : "none");
}

static void scr_close(void *ctx, struct session *s, int quit)
{
	struct screen *sc = ctx;
	if (session_holding(s))
		patience_over(sc, 1, 0);
	timing_note_close(&sc->t, quit);
	enum test_action act[TT_NTESTS];
	test_actions(screen_cf(sc), act);
	struct verdict v;
	verdict_compute(&sc->t, act, &v);
	if (sc->observe && !sc->logged_with_id)
		log_info("classify: %s[%s]:%u: no message accepted, verdict=%s, score=%d, "
		         "history=%s, %s; reasons: %s",
		         session_client_name(s), session_client_addr(s), session_client_port(s),
		         verdict_class_name(v.cls), v.score,
		         history_class_name((enum history_class)sc->hist),
		         quit ? "quit" : "closed without QUIT", v.reasons[0] ? v.reasons : "none");
	else if (sc->observe && v.cls > sc->v.cls)
		/* Judged worse after its last message was taken: what the
		 * history will learn must be in the log too. */
		log_info("classify: %s[%s]:%u: after %u accepted, session verdict=%s, "
		         "score=%d, %s; reasons: %s",
		         session_client_name(s), session_client_addr(s), session_client_port(s),
		         sc->accepted_hi + sc->accepted_lo, verdict_class_name(v.cls), v.score,
		         quit ? "quit" : "closed without QUIT", v.reasons[0] ? v.reasons : "none");
	/* Exempt clients teach the history nothing: their mail is not
	 * judged. A whitelisted one is recorded as it behaved. */
	if (!sc->exempt) {
		unsigned flags = HISTORY_EV_SESSION | HISTORY_EV_SCORE;
		if (sc->accepted_hi)
			flags |= HISTORY_EV_HI;
		if (sc->accepted_lo)
			flags |= HISTORY_EV_LO;
		if (sc->tempfails)
			flags |= HISTORY_EV_TEMPFAIL;
		if (sc->rejects)
			flags |= HISTORY_EV_REJECT;
		if (v.cls == VERDICT_JUNK && sc->observe)
			flags |= HISTORY_EV_JUNK;
		writer_push(sc->ss, session_peer(s), session_peer_len(s), flags,
		            verdict_score_sample(&v));
		struct history_event ev = {.addr = session_peer(s),
		                           .flags = flags,
		                           .score = verdict_score_sample(&v),
		                           .now = wall_usec() / 1000000};
		history_share_record(sc->ss->share, &ev);
	}
	history_share_cancel(&sc->shared);
	free(sc);
}

static const struct session_observer screen_observer = {
    .open = scr_open,
    .event = scr_event,
    .greet_wait = scr_greet_wait,
    .greet_pause = scr_greet_pause,
    .patience = scr_patience,
    .decide = scr_decide,
    .queue = scr_queue,
    .envelope = scr_envelope,
    .close = scr_close,
};
