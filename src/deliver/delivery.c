/*
 * delivery.c: the delivery child: takes messages from out/, delivers each
 * recipient, and removes the message or defers it for a retry.
 *
 * Owns the delivery event loop, its worker threads and the retry of
 * deferred mail. Called by the master (src/tempomxd/child.c) through
 * delivery_main() in a forked child that has already dropped privileges.
 *
 * Each recipient is routed (route.c): local domains (and the bare
 * "postmaster", which goes to postmaster@<first local domain>) are written
 * to their Maildir (maildir.c); the others are grouped by destination and
 * sent in one SMTP or LMTP transaction per destination (remote.c). 2xx
 * delivers, 4xx or a network/DNS failure defers (retry.c: exponential
 * back-off, queue lifetime), 5xx bounces (bounce.c: one RFC 3464 report
 * per message, queued before the original forgets the recipients). Each
 * recipient's DSN NOTIFY (RFC 3461) says which reports it gets: NEVER or
 * a list without FAILURE none on failure, DELAY decides the delay
 * warning, SUCCESS a "delivered" report for Maildir and LMTP, or for an
 * SMTP next hop a "relayed" one unless that hop offers DSN and so got
 * the parameters itself (remote.c, src/smtp/). A
 * message with recipients left to do waits in deferred/; a timer set to
 * the earliest known retry time, and a periodic rescan, bring it back.
 *
 * Internationalised mail (SMTPUTF8, RFC 6531): each SMTP/LMTP job says
 * whether its transaction needs SMTPUTF8 (a UTF-8 address in it, or UTF-8
 * in the header of a message that came with SMTPUTF8); the client passes
 * the parameter where it is offered and fails the host with 550 5.6.7
 * where it is not, so the recipient bounces (RFC 6533 report) unless
 * another MX host takes it. A U-label domain is grouped and looked up as
 * its A-label.
 *
 * The loop never blocks. SMTP and LMTP transactions and their DNS lookups
 * are events of the loop itself (remote.c, src/smtp/, dns.c: a job
 * waits in remote.c's queue, not in a thread, for the connection limits).
 * Maildir writes, envelope updates, removals and deferred-queue scans (file
 * I/O with fsync) run in the common pool of threads
 * (src/common/threadpool.c, delivery_threads), and each result is handed
 * back to the loop. The loop alone touches the message state.
 *
 * Crash safety (at-least-once): a recipient is marked sent in the
 * envelope only after its Maildir file is durable (maildir_deliver()
 * returned) or the next hop answered the final dot with 2xx, and the
 * envelope is updated (an update record appended, then the file renamed
 * into deferred/) or the file removed only once every delivery of the
 * message has finished. None of that is flushed: a crash that loses it
 * leaves the file as it was before this attempt, which delivers a
 * recipient again, never loses one. Our X-Tempomx-* header fields are
 * made from the envelope when the message is picked up and sent before
 * it (src/spool/headers.c); the spool file itself is only read and
 * appended to. A message is claimed (spool_claim) from its open to its
 * final update, so tempomxctl never moves it in the meantime.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bounce.h"
#include "dsn.h"
#include "fault.h"
#include "idlist.h"
#include "log.h"
#include "maildir.h"
#include "maildir_path.h"
#include "remote.h"
#include "retry.h"
#include "route.h"
#include "spool.h"
#include "stats.h"
#include "tempomx.h"
#include "threadpool.h"
#include "utf8.h"
#include "util.h"

/* Messages open at once, per worker thread (each holds a descriptor), plus
 * one per outbound connection allowed: SMTP and LMTP do not hold threads,
 * so the threads alone must not bound them. */
#define DELIVERY_ACTIVE_PER_THREAD 4
/* The outbound share at most (max_outbound_connections may be 0: no
 * limit), so that open files stay well under the usual 1024. */
#define DELIVERY_ACTIVE_OUTBOUND_MAX 200
/* Wait before retrying an envelope update that failed (e.g. ENOSPC). */
#define DELIVERY_FINISH_RETRY 10

/* ---- delivery state ---- */

struct delivery;

/* One message taken from out/, while its recipients are delivered. */
struct msg {
	struct delivery *d;
	struct msg *next; /* active list */
	char id[QUEUEID_SIZE];
	struct envelope env;
	size_t body_off;
	int fd;
	int64_t picked; /* wall clock, usec */
	size_t jobs_left;
	int tried; /* a delivery was attempted */
	/* Settings copied at pick-up: a reload may free the old ones. */
	char *hostname;
	int crlf;
	/* Our X-Tempomx-* fields, made from the envelope at pick-up: with
	 * CRLF for SMTP and LMTP, and with the Maildir's line ends. */
	char *head, *md_head;
	size_t headlen, md_headlen;
	/* Recipients to report in a bounce (indices), and why. */
	size_t *bounce_idx;
	size_t nbounce;
	int expired;
	int bounce_rc, bounce_errno;
	/* delay_warning_time: recipients to warn the sender about, once. */
	size_t *warn_idx;
	size_t nwarn;
	int warn_rc;
	/* NOTIFY=SUCCESS (RFC 3461): recipients delivered or relayed in
	 * this attempt whose sender asked to hear of it, and which. */
	size_t *ok_idx;
	const char **ok_action;
	size_t nok;
	int ok_rc, ok_errno;
	/* MAIL's DSN parameters for a next hop that offers DSN, or NULL. */
	char *dsn_mail;
	int64_t prev_attempt; /* latest attempt before this one, seconds */
	/* Remote jobs being formed, by destination (msg_start only). */
	struct rjob *forming;
	/* The final envelope update or removal. */
	struct threadpool_job fin;
	int fin_remove;
	int fin_rc, fin_errno;
	struct event *retry_ev;
};

/* Recipients of one message going to one destination in one SMTP or
 * LMTP transaction (remote.c runs it in the loop). */
struct rjob {
	struct remote_job rj;
	struct msg *m;
	struct rjob *next; /* forming list */
	size_t *idx;       /* recipient indices */
	const char **addrs;
	char **dsn_rcpt; /* each recipient's NOTIFY and ORCPT for the next hop, or NULL */
	size_t n;
	char *self, *dns_servers, *tls_ca_file;
	struct sockaddr_storage *listen;
	int64_t finished;
};

/* One recipient's Maildir delivery. */
struct job {
	struct threadpool_job t; /* first: the pool's job pointer is the job pointer */
	struct msg *m;
	size_t ri;
	char *rcpt; /* address delivered to (postmaster mapped) */
	char *dir;
	int64_t queued, started, finished;
	int rc;
	char err[512];
	char path[PATH_MAX];
};

/* A pass over deferred/: move due (or, for a flush, all) messages to out/. */
struct sweep {
	struct threadpool_job t;
	struct delivery *d;
	int force;
	size_t moved, seen;
	int64_t next_due; /* earliest retry time of what stays, 0 = none */
};

struct delivery {
	struct runtime *rt;
	struct event_base *base;
	struct spool sp;
	struct spool_watch *watch;
	int64_t interval;
	struct threadpool *pool;
	struct remote *remote;
	struct idlist waiting; /* messages in out/, oldest first */
	struct msg *active;
	size_t nactive, max_active;
	struct event *work_ev;
	struct event *sweep_ev;
	/* One-shot timer for the earliest retry time known, so a deferred
	 * message is retried on time, not at the next periodic rescan. */
	struct event *due_ev;
	int64_t due_at; /* when due_ev fires, 0 = not armed */
	struct event *sig_ev[3];
	int sweeping, sweep_again, sweep_force;
	int stopping;
};

static void delivery_due(struct delivery *d, int64_t t);

static void delivery_kick(struct delivery *d)
{
	if (!d->stopping)
		event_active(d->work_ev, EV_TIMEOUT, 0);
}

static void delivery_maybe_exit(struct delivery *d)
{
	if (d->stopping && d->nactive == 0 && threadpool_pending(d->pool) == 0 &&
	    !remote_busy(d->remote))
		event_base_loopexit(d->base, NULL);
}

static void delivery_drained(void *arg)
{
	delivery_maybe_exit(arg);
}

static struct msg *delivery_find(struct delivery *d, const char *id)
{
	for (struct msg *m = d->active; m; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static void delivery_seen(void *arg, enum spool_queue q, const char *id)
{
	struct delivery *d = arg;
	if (q != Q_OUT || delivery_find(d, id) != NULL)
		return;
	if (idlist_insert(&d->waiting, id))
		delivery_kick(d);
}

static void msg_free(struct msg *m)
{
	struct delivery *d = m->d;
	for (struct msg **pp = &d->active; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	d->nactive--;
	if (m->fd >= 0)
		close(m->fd);
	if (m->retry_ev)
		event_free(m->retry_ev);
	envelope_free(&m->env);
	free(m->head);
	free(m->md_head);
	free(m->hostname);
	free(m->bounce_idx);
	free(m->warn_idx);
	free(m->ok_idx);
	free(m->ok_action);
	free(m->dsn_mail);
	free(m);
	if (!d->stopping && d->waiting.n > 0)
		delivery_kick(d);
	delivery_maybe_exit(d);
}

static double secs(int64_t usec)
{
	return usec > 0 ? (double)usec / 1e6 : 0.0;
}

static void set_reply(struct rcpt *r, const char *text)
{
	free(r->last_reply);
	r->last_reply = xstrdup(text);
}

/* ---- finishing a message: remove it, or defer it ---- */

static void fin_work(struct threadpool_job *t)
{
	struct msg *m = (struct msg *)((char *)t - offsetof(struct msg, fin));
	struct delivery *d = m->d;
	fault_point("deliver-finishing");
	m->ok_rc = -1;
	/* The bounce is durable before the original forgets the failed
	 * recipients: a crash in between reports twice, never zero times. */
	if (m->nbounce > 0) {
		m->bounce_rc =
		    bounce_queue(&d->sp, &m->env, m->fd, m->body_off, m->hostname, m->bounce_idx,
		                 m->nbounce, BOUNCE_FAILED, m->expired, NULL);
		m->bounce_errno = errno;
		if (m->bounce_rc < 0) {
			m->fin_rc = -1;
			m->fin_errno = m->bounce_errno;
			return;
		}
	}
	/* A success report the sender asked for is held to the same rule
	 * as a failure report: queued before the original forgets. */
	if (m->nok > 0) {
		m->ok_rc = bounce_queue(&d->sp, &m->env, m->fd, m->body_off, m->hostname, m->ok_idx,
		                        m->nok, BOUNCE_SUCCESS, 0, m->ok_action);
		m->ok_errno = errno;
		if (m->ok_rc < 0) {
			m->fin_rc = -1;
			m->fin_errno = m->ok_errno;
			return;
		}
	}
	if (m->nwarn > 0) {
		/* A warning that cannot be queued is not worth holding the
		 * message back for: it is logged and skipped. */
		m->warn_rc = bounce_queue(&d->sp, &m->env, m->fd, m->body_off, m->hostname,
		                          m->warn_idx, m->nwarn, BOUNCE_DELAYED, 0, NULL);
	}
	/* Every recipient is durably somewhere else (a flushed Maildir, a
	 * remote 250, a queued bounce): if a crash undoes the unlink the
	 * message is only delivered again, so the directory needs no flush. */
	if (m->fin_remove) {
		m->fin_rc = spool_release(&d->sp, Q_OUT, m->id);
		fault_point("deliver-released");
	} else if (m->env.version >= 2) {
		/* The new recipient states are appended to the file, which
		 * then moves to deferred/, both unflushed: if a crash loses
		 * either, the message is found as it was before this attempt
		 * and its recipients are tried again (at least once). */
		m->fin_rc = spool_note(m->fd, &m->env, 0);
		fault_point("deliver-noted");
		if (m->fin_rc == 0)
			m->fin_rc = spool_handoff(&d->sp, m->id, Q_OUT, Q_DEFERRED);
		fault_point("deliver-deferred");
	} else {
		m->fin_rc = spool_update(&d->sp, Q_OUT, m->id, &m->env, NULL, Q_DEFERRED);
	}
	m->fin_errno = errno;
}

static void fin_retry(evutil_socket_t fd, short what, void *arg)
{
	struct msg *m = arg;
	threadpool_submit(m->d->pool, &m->fin);
}

static void fin_done(struct threadpool_job *t)
{
	struct msg *m = (struct msg *)((char *)t - offsetof(struct msg, fin));
	struct delivery *d = m->d;

	if (m->nbounce > 0 && m->bounce_rc == 0) {
		log_info("%s: sender non-delivery notification for %zu recipient%s", m->id,
		         m->nbounce, m->nbounce == 1 ? "" : "s");
		m->nbounce = 0; /* queued: a retry of the update must not send it again */
	}
	if (m->nok > 0 && m->ok_rc == 0) {
		log_info("%s: sender delivery notification for %zu recipient%s", m->id, m->nok,
		         m->nok == 1 ? "" : "s");
		m->nok = 0;
	}
	if (m->nwarn > 0) {
		if (m->warn_rc == 0)
			log_info("%s: sender delay notification for %zu recipient%s", m->id,
			         m->nwarn, m->nwarn == 1 ? "" : "s");
		else
			log_warnx("%s: cannot queue the delay notification", m->id);
		m->nwarn = 0;
	}
	if (m->fin_rc == 0 || (m->fin_remove && m->fin_errno == ENOENT)) {
		if (m->fin_remove) {
			log_info("%s: removed", m->id);
		} else {
			delivery_due(d, m->env.next_retry);
			log_info("%s: deferred, %zu recipient%s pending, next retry in %llds",
			         m->id, envelope_pending(&m->env),
			         envelope_pending(&m->env) == 1 ? "" : "s",
			         (long long)(m->env.next_retry - wall_usec() / 1000000));
		}
		msg_free(m);
		return;
	}
	if (m->fin_errno == ENOENT) {
		/* The admin took the message out of out/ (tempomxctl hold,
		 * delete, requeue) while it was being delivered: the file is
		 * theirs now. Recipients delivered meanwhile may get it again
		 * when it is released (at least once). */
		log_info(
		    "%s: taken out of out/ during delivery; %zu recipient%s still pending there",
		    m->id, envelope_pending(&m->env), envelope_pending(&m->env) == 1 ? "" : "s");
		msg_free(m);
		return;
	}
	/* The deliveries are done; only their record failed. Re-reading the
	 * file would deliver them again, so keep the message in memory and
	 * retry the update. On shutdown it stays in out/ as it was: the
	 * next start delivers it again (at least once). */
	errno = m->fin_errno;
	if (m->nbounce > 0 || m->nok > 0) {
		/* The report itself could not be queued (e.g. ENOSPC). */
		log_warn("%s: cannot queue the %s notification, retrying in %ds", m->id,
		         m->nbounce > 0 ? "non-delivery" : "delivery", DELIVERY_FINISH_RETRY);
		if (d->stopping) {
			msg_free(m);
			return;
		}
	} else if (d->stopping) {
		log_warn("%s: cannot %s; left in out/", m->id,
		         m->fin_remove ? "remove the delivered message" : "record the deliveries");
		msg_free(m);
		return;
	}
	log_warn("%s: cannot %s, retrying in %ds", m->id,
	         m->fin_remove ? "remove the delivered message" : "record the deliveries",
	         DELIVERY_FINISH_RETRY);
	if (m->retry_ev == NULL)
		m->retry_ev = evtimer_new(d->base, fin_retry, m);
	struct timeval tv = {DELIVERY_FINISH_RETRY, 0};
	if (m->retry_ev == NULL || evtimer_add(m->retry_ev, &tv) < 0)
		fatalx("cannot add a timer");
}

/* Mark recipient i bounced, to be reported (unless the sender is null:
 * RFC 5321 4.5.5, no report is ever sent about a report). */
static void msg_bounce(struct msg *m, size_t i)
{
	struct rcpt *r = &m->env.rcpts[i];
	r->status = RCPT_BOUNCED;
	r->next_retry = 0;
	stats_add(STAT_BOUNCED, 1);
	const char *why = bounce_suppressed(&m->env);
	if (why != NULL && strcmp(why, "junk") == 0) {
		/* Backscatter: the sender of junk is most likely forged. */
		log_info("%s: to=<%s>, status=bounced, junk: dropped without notification", m->id,
		         r->addr);
		return;
	}
	if (why != NULL) {
		log_info("%s: to=<%s>, status=bounced, no notification to the null sender%s", m->id,
		         r->addr, m->env.bounce_of ? " (a bounce: dropped)" : "");
		return;
	}
	if (!dsn_wants(r->notify, DSN_NOTIFY_FAILURE)) {
		/* RFC 3461 4.1: NEVER, or a NOTIFY without FAILURE. */
		log_info("%s: to=<%s>, status=bounced, NOTIFY=%s: no notification", m->id, r->addr,
		         r->notify);
		return;
	}
	m->bounce_idx = xreallocarray(m->bounce_idx, m->nbounce + 1, sizeof(*m->bounce_idx));
	m->bounce_idx[m->nbounce++] = i;
}

/* Recipient i was delivered (action "delivered") or handed on
 * ("relayed") in this attempt: report it if the sender asked with
 * NOTIFY=SUCCESS (RFC 3461 4.1). Never to the null sender, never about
 * junk (backscatter). */
static void msg_success(struct msg *m, size_t i, const char *action)
{
	const struct rcpt *r = &m->env.rcpts[i];
	if (!dsn_wants(r->notify, DSN_NOTIFY_SUCCESS))
		return;
	const char *why = bounce_suppressed(&m->env);
	if (why != NULL) {
		log_info("%s: to=<%s>, NOTIFY=%s: no delivery notification (%s)", m->id, r->addr,
		         r->notify, why);
		return;
	}
	m->ok_idx = xreallocarray(m->ok_idx, m->nok + 1, sizeof(*m->ok_idx));
	m->ok_action = xreallocarray(m->ok_action, m->nok + 1, sizeof(*m->ok_action));
	m->ok_idx[m->nok] = i;
	m->ok_action[m->nok++] = action;
}

static void msg_finish(struct msg *m)
{
	struct delivery *d = m->d;
	const struct config *cf = d->rt->cf;
	int64_t now = wall_usec() / 1000000;
	/* A delivery report has its own lifetime; when it runs out, its
	 * recipients "bounce" to the null sender, i.e. it is dropped. */
	int64_t lifetime = m->env.bounce_of ? cf->bounce_queue_lifetime : cf->queue_lifetime;

	/* Past the queue lifetime, whatever is still pending bounces. */
	if (envelope_pending(&m->env) > 0 && retry_expired(m->env.arrival_usec, lifetime, now)) {
		for (size_t i = 0; i < m->env.nrcpt; i++) {
			struct rcpt *r = &m->env.rcpts[i];
			if (r->status != RCPT_PENDING && r->status != RCPT_DEFERRED)
				continue;
			log_info("%s: to=<%s>, delay=%.2f, status=expired, returned to sender (%s)",
			         m->id, r->addr, secs(wall_usec() - m->env.arrival_usec),
			         r->last_reply ? r->last_reply : "no attempt");
			m->expired = 1;
			msg_bounce(m, i);
		}
	}
	m->fin_remove = envelope_pending(&m->env) == 0;
	/* delay_warning_time: warn once, on the first attempt past the
	 * threshold (the previous attempt was before it). */
	int64_t warn_at = m->env.arrival_usec / 1000000 + cf->delay_warning_time;
	if (!m->fin_remove && cf->delay_warning_time > 0 && m->prev_attempt < warn_at &&
	    now >= warn_at && bounce_suppressed(&m->env) == NULL && m->env.bounce_of == NULL) {
		for (size_t i = 0; i < m->env.nrcpt; i++) {
			enum rcpt_status st = m->env.rcpts[i].status;
			if (st != RCPT_PENDING && st != RCPT_DEFERRED)
				continue;
			if (!dsn_wants(m->env.rcpts[i].notify, DSN_NOTIFY_DELAY)) {
				log_info("%s: to=<%s>, NOTIFY=%s: no delay notification", m->id,
				         m->env.rcpts[i].addr, m->env.rcpts[i].notify);
				continue;
			}
			m->warn_idx =
			    xreallocarray(m->warn_idx, m->nwarn + 1, sizeof(*m->warn_idx));
			m->warn_idx[m->nwarn++] = i;
		}
	}
	if (!m->fin_remove) {
		if (m->tried)
			m->env.attempts++;
		m->env.next_retry = retry_next(cf->retry_min, cf->retry_max,
		                               m->env.attempts > 0 ? m->env.attempts : 1,
		                               m->env.arrival_usec, lifetime, now);
		for (size_t i = 0; i < m->env.nrcpt; i++) {
			struct rcpt *r = &m->env.rcpts[i];
			if (r->status == RCPT_PENDING || r->status == RCPT_DEFERRED)
				r->next_retry = m->env.next_retry;
		}
	}
	m->fin.work = fin_work;
	m->fin.done = fin_done;
	threadpool_submit(d->pool, &m->fin);
}

/* ---- one recipient ---- */

static void job_work(struct threadpool_job *t)
{
	struct job *j = (struct job *)t;
	struct msg *m = j->m;
	struct maildir_delivery md = {
	    .dir = j->dir,
	    .sender = m->env.sender ? m->env.sender : "",
	    .rcpt = j->rcpt,
	    .hostname = m->hostname,
	    .fd = m->fd,
	    .body_off = (off_t)m->body_off,
	    .size = m->env.size,
	    .head = m->md_head,
	    .headlen = m->md_headlen,
	    .crlf = m->crlf,
	};
	j->started = wall_usec();
	j->rc = maildir_deliver(&md, j->path, sizeof(j->path), j->err, sizeof(j->err));
	j->finished = wall_usec();
}

static void job_done(struct threadpool_job *t)
{
	struct job *j = (struct job *)t;
	struct msg *m = j->m;
	struct rcpt *r = &m->env.rcpts[j->ri];
	int64_t arrival = m->env.arrival_usec;
	char orig[ADDR_PATH_MAX * 2 + 32] = "";

	r->attempts++;
	r->last_attempt = j->finished / 1000000;
	if (strcmp(r->addr, j->rcpt) != 0)
		snprintf(orig, sizeof(orig), ", orig_to=<%s>", r->addr);
	if (j->rc == 0) {
		r->status = RCPT_SENT;
		r->next_retry = 0;
		stats_add(STAT_DELIVERED, 1);
		set_reply(r, "delivered to maildir");
		log_info("%s: to=<%s>%s, relay=local, delay=%.2f, delays=%.2f/%.2f/%.2f, "
		         "status=sent (delivered to maildir)",
		         m->id, j->rcpt, orig, secs(j->finished - arrival),
		         secs(m->picked - arrival), secs(j->started - m->picked),
		         secs(j->finished - j->started));
		log_debug("%s: to=<%s>, file %s", m->id, j->rcpt, j->path);
		msg_success(m, j->ri, "delivered");
	} else {
		char reply[600];
		snprintf(reply, sizeof(reply), "maildir: %s", j->err);
		r->status = RCPT_DEFERRED;
		r->next_retry = r->last_attempt + m->d->rt->cf->retry_min;
		stats_add(STAT_DEFERRED, 1);
		set_reply(r, reply);
		log_info("%s: to=<%s>%s, relay=local, delay=%.2f, delays=%.2f/%.2f/%.2f, "
		         "status=deferred (%s)",
		         m->id, j->rcpt, orig, secs(j->finished - arrival),
		         secs(m->picked - arrival), secs(j->started - m->picked),
		         secs(j->finished - j->started), reply);
	}
	free(j->rcpt);
	free(j->dir);
	free(j);
	if (--m->jobs_left == 0)
		msg_finish(m);
}

/* ---- remote recipients (SMTP, LMTP) ---- */

/* Received: header lines in the message's header section (RFC 5321
 * 6.3: a count above max_hops is a mail loop), for a message whose
 * envelope does not carry the count smtpd made (written before the
 * envelope had it, or a local submission). */
static int count_hops(int fd, size_t body_off, uint64_t size)
{
	char buf[65536];
	size_t want = size < sizeof(buf) - 1 ? (size_t)size : sizeof(buf) - 1;
	ssize_t r;
	do
		r = pread(fd, buf, want, (off_t)body_off);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return 0;
	buf[r] = '\0';
	int hops = 0;
	for (char *p = buf; *p;) {
		if (*p == '\r' || *p == '\n')
			break; /* the empty line: end of the headers */
		if (ascii_strncasecmp(p, "Received:", 9) == 0)
			hops++;
		char *nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return hops;
}

/* Whether the header section (up to the empty line) has an octet >= 0x80,
 * i.e. UTF-8 header fields (RFC 6532). Read in pieces, so a header
 * section of any size header_size_limit allows is seen whole. */
static int header_has_8bit(int fd, size_t body_off, uint64_t size)
{
	char buf[16384];
	uint64_t off = 0;
	int bol = 1;
	while (off < size) {
		size_t want = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		ssize_t r;
		do
			r = pread(fd, buf, want, (off_t)(body_off + off));
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return 0;
		for (ssize_t i = 0; i < r; i++) {
			unsigned char c = (unsigned char)buf[i];
			if (c >= 0x80)
				return 1;
			if (c == '\n') {
				if (bol)
					return 0; /* the empty line */
				bol = 1;
			} else if (c != '\r' || !bol) {
				bol = 0;
			}
		}
		off += (uint64_t)r;
	}
	return 0;
}

/* Record the outcome of a job in the recipients, log it, free the job. */
static void rjob_record(struct rjob *j)
{
	struct msg *m = j->m;
	const struct config *cf = m->d->rt->cf;
	int64_t arrival = m->env.arrival_usec;

	for (size_t k = 0; k < j->n; k++) {
		struct rcpt *r = &m->env.rcpts[j->idx[k]];
		struct smtp_result *res = &j->rj.res[k];
		const char *st;
		if (res->code == 0) {
			/* Cut off by shutdown before a final reply: the
			 * recipient stays as it was, to be tried again. */
			log_info("%s: to=<%s>, relay=%s, status=pending (shut down before the "
			         "final reply)",
			         m->id, r->addr, j->rj.relay[0] ? j->rj.relay : "none");
			continue;
		}
		r->attempts++;
		r->last_attempt = j->finished / 1000000;
		set_reply(r, res->reply[0] ? res->reply : "no reply");
		if (res->code / 100 == 2) {
			r->status = RCPT_SENT;
			r->next_retry = 0;
			st = "sent";
			stats_add(STAT_DELIVERED, 1);
		} else if (res->code / 100 == 5) {
			st = "bounced";
		} else {
			r->status = RCPT_DEFERRED;
			r->next_retry = r->last_attempt + cf->retry_min;
			st = "deferred";
			stats_add(STAT_DEFERRED, 1);
		}
		log_info("%s: to=<%s>, relay=%s, delay=%.2f, delays=%.2f/%.2f/%.2f, %s%s%s"
		         "status=%s (%s)",
		         m->id, r->addr, j->rj.relay[0] ? j->rj.relay : "none",
		         secs(j->finished - arrival), secs(m->picked - arrival),
		         secs(j->rj.started - m->picked), secs(j->finished - j->rj.started),
		         j->rj.tls[0] ? "tls=" : "", j->rj.tls[0] ? j->rj.tls : "",
		         j->rj.tls[0] ? ", " : "", st, r->last_reply);
		if (res->code / 100 == 5)
			msg_bounce(m, j->idx[k]);
		if (res->code / 100 != 2 || !dsn_wants(r->notify, DSN_NOTIFY_SUCCESS))
			continue;
		if (j->rj.dsn)
			/* RFC 3461: the next hop got NOTIFY and reports. */
			log_info("%s: to=<%s>, NOTIFY=%s passed on to %s", m->id, r->addr,
			         r->notify, j->rj.relay[0] ? j->rj.relay : "the next hop");
		else
			/* It cannot: we report (LMTP is final delivery). */
			msg_success(m, j->idx[k], j->rj.opts.lmtp ? "delivered" : "relayed");
	}
	for (size_t k = 0; k < j->n; k++)
		free(j->dsn_rcpt[k]);
	free(j->dsn_rcpt);
	free(j->rj.res);
	free(j->idx);
	free(j->addrs);
	free(j->self);
	free(j->listen);
	free(j->dns_servers);
	free(j->tls_ca_file);
	free(j);
}

static void rjob_done(struct remote_job *rj)
{
	struct rjob *j = (struct rjob *)rj;
	struct msg *m = j->m;
	j->finished = wall_usec();
	rjob_record(j);
	if (--m->jobs_left == 0)
		msg_finish(m);
}

/* Put recipient i into the job for its destination (one transaction per
 * destination: for "mx" the recipient domain, else the route). An
 * address literal is grouped by its address: "[IPv6:2001:DB8::1]" and
 * "[ipv6:2001:db8:0::1]" are one destination. */
static void rjob_add(struct msg *m, size_t i, const struct route *rt, const char *domain,
                     const struct config *cf)
{
	struct rjob *j;
	char perr[200], lit[ROUTE_LITERAL_MAX], canon[ROUTE_LITERAL_MAX + 8];
	char ace[256];
	int v6;
	if (route_literal(domain, lit, sizeof(lit), &v6) == 1) {
		snprintf(canon, sizeof(canon), "[%s%s]", v6 ? "IPv6:" : "", lit);
		domain = canon;
	} else if (utf8_has_8bit(domain) && idn_to_ascii(domain, ace, sizeof(ace)) == 0) {
		/* RFC 6531 3.2: DNS is asked for the A-label form; the
		 * recipients keep their U-labels on the wire. */
		domain = ace;
	}
	int pol = route_tls_policy(cf->tls_policy, domain, rt->host, perr, sizeof(perr));
	if (pol < 0) {
		log_warnx("%s: %s; using may", m->id, perr);
		pol = TLS_POLICY_MAY;
	}
	for (j = m->forming; j; j = j->next) {
		if (!route_equal(&j->rj.route, rt) || j->rj.opts.tls_policy != pol)
			continue;
		if ((rt->kind == ROUTE_MX) && ascii_strcasecmp(j->rj.domain, domain) != 0)
			continue;
		break;
	}
	if (j == NULL) {
		j = xcalloc(1, sizeof(*j));
		j->rj.done = rjob_done;
		j->m = m;
		j->rj.route = *rt;
		snprintf(j->rj.domain, sizeof(j->rj.domain), "%s", domain);
		j->self = xstrdup(cf->hostname);
		j->dns_servers = xstrdup(cf->dns_servers ? cf->dns_servers : "");
		j->rj.self = j->self;
		if (cf->listen.n > 0) {
			j->listen = xcalloc(cf->listen.n, sizeof(*j->listen));
			for (size_t k = 0; k < cf->listen.n; k++)
				j->listen[k] = cf->listen.v[k].ss;
		}
		j->rj.listen = j->listen;
		j->rj.nlisten = cf->listen.n;
		j->rj.dns_servers = j->dns_servers;
		j->rj.connect_timeout = (int)cf->smtp_connect_timeout;
		j->rj.reuse_time = cf->smtp_connection_reuse_time;
		j->rj.max_per_destination = cf->max_connections_per_destination;
		j->rj.max_total = cf->max_outbound_connections;
		j->rj.opts.helo = j->self;
		j->rj.opts.command_timeout = (int)cf->smtp_command_timeout;
		j->rj.opts.data_timeout = (int)cf->smtp_data_timeout;
		j->rj.opts.tls_policy = pol;
		j->tls_ca_file = xstrdup(cf->tls_ca_file ? cf->tls_ca_file : "");
		j->rj.opts.tls_ca_file = j->tls_ca_file;
		j->rj.msg.sender = m->env.sender ? m->env.sender : "";
		j->rj.msg.fd = m->fd;
		j->rj.msg.body_off = (off_t)m->body_off;
		j->rj.msg.size = m->env.size;
		j->rj.msg.head = m->head;
		j->rj.msg.headlen = m->headlen;
		j->rj.msg.eightbit = m->env.body_type && strcmp(m->env.body_type, "8BITMIME") == 0;
		j->rj.msg.dsn_mail = m->dsn_mail;
		j->next = m->forming;
		m->forming = j;
	}
	j->idx = xreallocarray(j->idx, j->n + 1, sizeof(*j->idx));
	j->addrs = xreallocarray(j->addrs, j->n + 1, sizeof(*j->addrs));
	j->dsn_rcpt = xreallocarray(j->dsn_rcpt, j->n + 1, sizeof(*j->dsn_rcpt));
	j->idx[j->n] = i;
	j->addrs[j->n] = m->env.rcpts[i].addr;
	j->dsn_rcpt[j->n] = dsn_rcpt_params(m->env.rcpts[i].notify, m->env.rcpts[i].orcpt);
	j->n++;
}

/* Submit the jobs formed by msg_start to remote.c. A message with more
 * Received: lines than max_hops is not sent anywhere (RFC 5321 6.3). The
 * count is the envelope's, made by smtpd at receive time; without one the
 * header section (at most 64 KiB of a file just opened) is read inline. */
static void rjob_submit_all(struct msg *m)
{
	int hops = m->env.hops, utf8_header = 0;
	if (m->forming) {
		if (hops < 0)
			hops = count_hops(m->fd, m->body_off, m->env.size);
		if (m->env.smtputf8)
			utf8_header = header_has_8bit(m->fd, m->body_off, m->env.size);
	}
	while (m->forming) {
		struct rjob *j = m->forming;
		m->forming = j->next;
		j->rj.msg.rcpts = j->addrs;
		j->rj.msg.nrcpt = j->n;
		j->rj.msg.dsn_rcpt = (const char *const *)j->dsn_rcpt;
		/* RFC 6531 3.2: what needs SMTPUTF8 of the next hop is a
		 * non-ASCII address of this transaction or, in a message
		 * received with SMTPUTF8, a UTF-8 header field. 8-bit octets in
		 * the body only (or in the header of a message that did not
		 * say SMTPUTF8) go on as before, with BODY=8BITMIME. */
		j->rj.msg.smtputf8 = m->env.smtputf8;
		j->rj.msg.needs_smtputf8 =
		    utf8_has_8bit(j->rj.msg.sender) || (m->env.smtputf8 && utf8_header);
		for (size_t i = 0; i < j->n; i++)
			if (utf8_has_8bit(j->addrs[i]))
				j->rj.msg.needs_smtputf8 = 1;
		j->rj.res = xcalloc(j->n, sizeof(*j->rj.res));
		m->tried = 1;
		if (hops > m->d->rt->cf->max_hops) {
			for (size_t i = 0; i < j->n; i++) {
				j->rj.res[i].code = 554;
				snprintf(
				    j->rj.res[i].reply, sizeof(j->rj.res[i].reply),
				    "554 5.4.6 too many hops (%d Received: headers): mail loop",
				    hops);
			}
			j->rj.started = j->finished = wall_usec();
			rjob_record(j);
			continue;
		}
		m->jobs_left++;
		remote_submit(m->d->remote, &j->rj);
	}
}

/* Decide what to do with recipient i: a Maildir job, or a deferral. */
static void msg_route(struct msg *m, size_t i, const struct config *cf, int64_t now)
{
	struct rcpt *r = &m->env.rcpts[i];
	const char *at = strrchr(r->addr, '@');
	char *target = NULL, reason[600], dir[PATH_MAX], err[512];

	if (at == NULL) {
		/* RFC 5321 4.5.1: <postmaster> without a domain must be
		 * accepted; it reaches the first local domain's postmaster. */
		if (ascii_strcasecmp(r->addr, "postmaster") == 0 && cf->local_domains.n > 0) {
			const char *dom = cf->local_domains.v[0];
			xasprintf(&target, "postmaster@%s", dom[0] == '.' ? dom + 1 : dom);
		} else {
			snprintf(reason, sizeof(reason), "no local domain for <%s>", r->addr);
		}
	} else {
		struct route rt;
		char rerr[300];
		if (route_lookup(cf, at + 1, &rt, rerr, sizeof(rerr)) < 0) {
			snprintf(reason, sizeof(reason), "transport table: %s", rerr);
		} else if (rt.kind != ROUTE_MAILDIR) {
			rjob_add(m, i, &rt, at + 1, cf);
			return;
		} else {
			target = xstrdup(r->addr);
		}
	}
	if (target && maildir_expand(cf->maildir, target, dir, sizeof(dir), err, sizeof(err)) < 0) {
		snprintf(reason, sizeof(reason), "maildir: %s", err);
		free(target);
		target = NULL;
	}
	if (target == NULL) {
		/* Not attempted: the recipient keeps its status and waits. */
		r->next_retry = now + cf->retry_min;
		set_reply(r, reason);
		stats_add(STAT_DEFERRED, 1);
		log_info("%s: to=<%s>, relay=none, delay=%.2f, status=deferred (%s)", m->id,
		         r->addr, secs(m->picked - m->env.arrival_usec), reason);
		return;
	}
	struct job *j = xcalloc(1, sizeof(*j));
	j->t.work = job_work;
	j->t.done = job_done;
	j->m = m;
	j->ri = i;
	j->rcpt = target;
	j->dir = xstrdup(dir);
	j->queued = wall_usec();
	m->jobs_left++;
	m->tried = 1;
	threadpool_submit(m->d->pool, &j->t);
}

/* A version 2 file in out/ without a scan result, while scanning is on:
 * the scanner's record of it was lost in a crash (its rename into out/
 * was not). It goes back to be scanned, never out unscanned. Reports
 * (bounce-of) are made here and are not scanned. Frees m and returns 1
 * when it did that. */
static int msg_unscanned(struct delivery *d, struct msg *m)
{
	const struct envelope *e = &m->env;
	if (!d->rt->cf->scan || e->version < 2 || e->scan_result != NULL || e->bounce_of != NULL)
		return 0;
	enum spool_queue q = e->class == CLASS_LO ? Q_LO : Q_HI;
	close(m->fd);
	if (spool_handoff(&d->sp, m->id, Q_OUT, q) == 0)
		log_info("%s: in out/ without a scan result (after a crash); back to %s/ to be "
		         "scanned",
		         m->id, spool_queue_name(q));
	else if (errno != ENOENT)
		log_warn("%s: cannot move from out to %s", m->id, spool_queue_name(q));
	envelope_free(&m->env);
	free(m);
	return 1;
}

/* Take one message from out/. */
static void msg_start(struct delivery *d, const char *id)
{
	struct msg *m = xcalloc(1, sizeof(*m));
	const struct config *cf = d->rt->cf;

	m->d = d;
	m->fd = -1;
	memcpy(m->id, id, QUEUEID_SIZE);
	int r = spool_take(&d->sp, Q_OUT, id, &m->env, &m->body_off, &m->fd);
	if (r < 0) {
		/* ENOENT: taken by someone else (or a duplicate report);
		 * -2: moved to corrupt/ by the spool library, with a log. */
		if (r == -1 && errno != ENOENT)
			log_warn("%s: cannot open out/%s", id, id);
		envelope_free(&m->env);
		free(m);
		return;
	}
	/* tempomxctl claims a message before it takes it out of out/; a
	 * message it is taking is skipped (the rescan brings it back if it
	 * stays). */
	if (spool_claim(&d->sp, Q_OUT, id, m->fd) < 0) {
		log_debug("%s: claimed by another process; not delivered now", id);
		close(m->fd);
		envelope_free(&m->env);
		free(m);
		return;
	}
	if (msg_unscanned(d, m))
		return;
	m->head = envelope_headers(&m->env, "\r\n", &m->headlen);
	m->md_head = envelope_headers(&m->env, cf->maildir_crlf ? "\r\n" : "\n", &m->md_headlen);
	m->picked = wall_usec();
	m->dsn_mail = dsn_mail_params(m->env.ret, m->env.envid);
	m->hostname = xstrdup(cf->hostname);
	m->crlf = cf->maildir_crlf;
	m->next = d->active;
	d->active = m;
	d->nactive++;

	int64_t now = m->picked / 1000000;
	for (size_t i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpts[i].last_attempt > m->prev_attempt)
			m->prev_attempt = m->env.rcpts[i].last_attempt;
	for (size_t i = 0; i < m->env.nrcpt; i++) {
		enum rcpt_status st = m->env.rcpts[i].status;
		if (st == RCPT_PENDING || st == RCPT_DEFERRED)
			msg_route(m, i, cf, now);
	}
	rjob_submit_all(m);
	if (m->jobs_left == 0)
		msg_finish(m);
}

static void delivery_work(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	char id[QUEUEID_SIZE];
	int64_t out = d->rt->cf->max_outbound_connections;
	size_t max = d->max_active + (size_t)(out > 0 && out < DELIVERY_ACTIVE_OUTBOUND_MAX
	                                          ? out
	                                          : DELIVERY_ACTIVE_OUTBOUND_MAX);
	while (!d->stopping && d->nactive < max && idlist_pop(&d->waiting, id)) {
		if (delivery_find(d, id) == NULL)
			msg_start(d, id);
	}
}

/* ---- deferred/ ---- */

static void sweep_work(struct threadpool_job *t)
{
	struct sweep *s = (struct sweep *)t;
	struct delivery *d = s->d;
	char(*ids)[QUEUEID_SIZE];
	int64_t now = wall_usec() / 1000000;
	size_t n = spool_list(&d->sp, Q_DEFERRED, &ids);

	for (size_t i = 0; i < n; i++) {
		struct envelope env;
		s->seen++;
		if (!s->force) {
			if (spool_read(&d->sp, Q_DEFERRED, ids[i], &env, NULL) < 0)
				continue; /* gone, or moved to corrupt/ */
			int due = env.next_retry <= now;
			if (!due && (s->next_due == 0 || env.next_retry < s->next_due))
				s->next_due = env.next_retry;
			envelope_free(&env);
			if (!due)
				continue;
		}
		/* Unflushed: if a crash undoes it, the message is due again. */
		if (spool_handoff(&d->sp, ids[i], Q_DEFERRED, Q_OUT) == 0) {
			s->moved++;
			fault_point("deliver-swept");
		} else if (errno != ENOENT)
			log_warn("%s: cannot move from deferred to out", ids[i]);
	}
	free(ids);
}

static void sweep_start(struct delivery *d, int force);

static void due_timer(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	d->due_at = 0;
	sweep_start(d, 0);
}

/* Make sure a sweep runs at time t (seconds) at the latest. */
static void delivery_due(struct delivery *d, int64_t t)
{
	if (d->stopping || t <= 0 || (d->due_at != 0 && d->due_at <= t))
		return;
	int64_t now = wall_usec() / 1000000;
	struct timeval tv = {(time_t)(t > now ? t - now : 0), 0};
	if (d->due_ev == NULL)
		d->due_ev = evtimer_new(d->base, due_timer, d);
	if (d->due_ev == NULL || evtimer_add(d->due_ev, &tv) < 0)
		fatalx("cannot add the retry timer");
	d->due_at = t;
}

static void sweep_done(struct threadpool_job *t)
{
	struct sweep *s = (struct sweep *)t;
	struct delivery *d = s->d;
	if (s->next_due > 0)
		delivery_due(d, s->next_due);
	if (s->force)
		log_info("flush: %zu deferred message%s moved to out", s->moved,
		         s->moved == 1 ? "" : "s");
	else if (s->moved > 0)
		log_info("retry: %zu of %zu deferred messages due, moved to out", s->moved,
		         s->seen);
	free(s);
	d->sweeping = 0;
	if (d->sweep_again && !d->stopping) {
		int force = d->sweep_force;
		d->sweep_again = d->sweep_force = 0;
		sweep_start(d, force);
	}
	delivery_maybe_exit(d);
}

static void sweep_start(struct delivery *d, int force)
{
	if (d->stopping)
		return;
	if (d->sweeping) {
		/* One pass at a time; remember the request for after it. */
		d->sweep_again = 1;
		d->sweep_force |= force;
		return;
	}
	struct sweep *s = xcalloc(1, sizeof(*s));
	s->t.work = sweep_work;
	s->t.done = sweep_done;
	s->d = d;
	s->force = force;
	d->sweeping = 1;
	threadpool_submit(d->pool, &s->t);
}

static void sweep_timer(evutil_socket_t fd, short what, void *arg)
{
	sweep_start(arg, 0);
}

/* ---- set-up, signals ---- */

/* The periodic pass over deferred/ runs with the queue rescan. */
static void delivery_sweep_every(struct delivery *d, int64_t interval)
{
	struct timeval tv = {(time_t)interval, 0};
	if (d->sweep_ev == NULL)
		d->sweep_ev = event_new(d->base, -1, EV_PERSIST, sweep_timer, d);
	if (d->sweep_ev == NULL || event_add(d->sweep_ev, &tv) < 0)
		fatalx("cannot add the retry timer");
	d->interval = interval;
}

static int delivery_watch(struct delivery *d)
{
	int64_t interval = d->rt->cf->queue_rescan_interval;
	d->watch = spool_watch_new(d->base, &d->sp, 1u << Q_OUT, interval, delivery_seen, d);
	if (d->watch == NULL) {
		log_warn("cannot watch the out queue");
		return -1;
	}
	delivery_sweep_every(d, interval);
	return 0;
}

static void delivery_stop(struct delivery *d)
{
	if (d->stopping)
		return;
	log_info("stopping: %zu message%s in progress, %zu waiting in out", d->nactive,
	         d->nactive == 1 ? "" : "s", d->waiting.n);
	d->stopping = 1;
	/* Outbound sessions close now; their unanswered recipients stay
	 * pending. */
	remote_stop(d->remote, delivery_drained, d);
	spool_watch_free(d->watch);
	d->watch = NULL;
	event_del(d->sweep_ev);
	if (d->due_ev)
		event_del(d->due_ev);
	/* Finish-retry timers would wait; give those messages up now. */
	for (struct msg *m = d->active, *next; m; m = next) {
		next = m->next;
		if (m->retry_ev && evtimer_pending(m->retry_ev, NULL)) {
			log_warnx("%s: deliveries not recorded; left in out/", m->id);
			msg_free(m);
		}
	}
	delivery_maybe_exit(d);
}

static void delivery_signal(evutil_socket_t sig, short what, void *arg)
{
	struct delivery *d = arg;

	switch (sig) {
	case SIGTERM:
		delivery_stop(d);
		break;
	case SIGHUP:
		if (d->stopping || runtime_reload(d->rt) < 0)
			break;
		if (spool_watch_reload(d->watch, d->rt->cf->queue_rescan_interval))
			delivery_sweep_every(d, d->rt->cf->queue_rescan_interval);
		break;
	case SIGUSR1:
		/* Flush: every deferred message is retried now. */
		sweep_start(d, 1);
		break;
	}
}

int delivery_main(struct runtime *rt)
{
	static const int sigs[] = {SIGTERM, SIGHUP, SIGUSR1};
	struct delivery d;
	int status = 0;

	memset(&d, 0, sizeof(d));
	d.rt = rt;
	if (spool_open(&d.sp, rt->cf->spool_directory) < 0) {
		log_warn("cannot open spool %s", rt->cf->spool_directory);
		return 1;
	}
	stats_start(rt->cf->spool_directory, "delivery");
	d.base = event_base_new();
	if (d.base == NULL)
		fatalx("event_base_new failed");
	size_t nthreads = (size_t)rt->cf->delivery_threads;
	d.pool = threadpool_new(d.base, "delivery", (unsigned)nthreads);
	d.remote = remote_new(d.base);
	d.max_active = nthreads * DELIVERY_ACTIVE_PER_THREAD;
	d.work_ev = event_new(d.base, -1, 0, delivery_work, &d);
	if (d.work_ev == NULL)
		fatalx("event_new failed");
	runtime_child_signals(d.base, sigs, sizeof(sigs) / sizeof(sigs[0]), delivery_signal, &d,
	                      d.sig_ev);
	if (delivery_watch(&d) < 0) {
		status = 1;
	} else {
		char rerr[300];
		if (route_check(rt->cf, rerr, sizeof(rerr)) < 0)
			log_warnx("%s: recipients in those domains are deferred", rerr);
		log_info("started: %zu delivery threads, rescan every %llds", nthreads,
		         (long long)d.interval);
		sweep_start(&d, 0);
		if (event_base_dispatch(d.base) < 0) {
			log_warnx("event loop failed");
			status = 1;
		}
	}

	/* Every task has finished (the loop only exits when none is
	 * left), so the threads are idle. */
	threadpool_free(d.pool);
	remote_free(d.remote);
	while (d.active)
		msg_free(d.active);
	spool_watch_free(d.watch);
	if (d.sweep_ev)
		event_free(d.sweep_ev);
	if (d.due_ev)
		event_free(d.due_ev);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(d.sig_ev[i]);
	event_free(d.work_ev);
	event_base_free(d.base);
	idlist_free(&d.waiting);
	spool_close(&d.sp);
	stats_stop();
	return status;
}
