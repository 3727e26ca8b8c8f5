/*
 * receive.c: the message of a session: from the DATA command to the
 * "250 Ok: queued as" reply.
 *
 * At DATA the envelope is filled in and the spool file created in
 * incoming/ (spool_create), our Received: header written first, then the
 * octets after 354 go through the DATA parser (data.h), which finds the
 * end of data, undoes dot-stuffing, applies the limits and writes through
 * the sink into the file. At the end of data a refused message is
 * unlinked and answered at once; an accepted one is handed to the commit
 * pool, and the 250 is sent only from the commit callback, once the file
 * is fsync'd and renamed into hi/ (never before: a 250 is a promise).
 *
 * If the client goes away while the commit is pending, the callback is
 * forgotten but the commit completes: the client saw no 250 and will
 * retry, so a duplicate is possible and a loss is not.
 *
 * Calls go one way: this file calls session.c (replies, phases) and
 * connection.c (the timer); session.c reaches it only through
 * receive_message_ops, which server.c gives it (srv->msg_ops).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conf.h"
#include "connection.h"
#include "data.h"
#include "bdat.h"
#include "dsn.h"
#include "log.h"
#include "receive.h"
#include "session.h"
#include "spool.h"
#include "stats.h"
#include "tls.h"
#include "util.h"

/* Drop a message being received; let a pending commit finish unseen. */
void session_release_message(struct session *s)
{
	if (s->sf_open) {
		spool_abort(&s->srv->spool, &s->sf);
		s->sf_open = 0;
	}
	if (s->commit_pending) {
		commit_pool_forget(s->srv->commits, s);
		s->commit_pending = 0;
		log_info("%s: client %s[%s]:%u left before the commit completed; the message "
		         "is kept",
		         s->id, s->name, s->addr, s->port);
	}
}

/* The queue the observer's decision puts the message in (hi without one). */
static enum spool_queue message_queue(struct session *s)
{
	return s->obs && s->obs->queue ? s->obs->queue(s->obs_ctx, s) : Q_HI;
}

static int session_sink(void *arg, const char *buf, size_t len)
{
	struct session *s = arg;
	return spool_write(&s->sf, buf, len) == 0 ? 0 : -1;
}

/* RFC 5321 4.4 trace header; "for" only with a single recipient, so a
 * list of recipients is never disclosed to the others. */
static int session_received(struct session *s, char **out)
{
	const struct config *cf = session_cf(s);
	char date[64], tls[160] = "", forpart[ADDR_PATH_MAX * 2 + 16];
	rfc5322_date(wall_usec() / 1000000, date, sizeof(date));
	if (s->tls_active)
		snprintf(tls, sizeof(tls), " (%s %s)", tls_protocol(s->conn.bev),
		         tls_cipher(s->conn.bev));
	if (s->nrcpt == 1)
		snprintf(forpart, sizeof(forpart), "\r\n\tfor <%s>; ", s->rcpts[0]);
	else
		snprintf(forpart, sizeof(forpart), ";\r\n\t");
	return xasprintf(out,
	                 "Received: from %s (%s [%s%s])\r\n"
	                 "\tby %s (tempomx) with %s%s id %s%s%s\r\n",
	                 s->helo, s->name, strchr(s->addr, ':') ? "IPv6:" : "", s->addr,
	                 cf->hostname, session_protocol(s), tls, s->id, forpart, date);
}

/* The message of the transaction: envelope, spool file in incoming/, our
 * Received: header, the parser (DATA's, or BDAT's when chunks is 1) and
 * the header filter. Returns RPL_NONE, or the reply to refuse with (the
 * argument in *arg). */
static enum reply_id message_open(struct session *s, int chunks, const char **arg)
{
	const struct config *cf = session_cf(s);
	struct envelope env;
	envelope_init(&env);
	env.arrival_usec = wall_usec();
	env.client_addr = xstrdup(s->addr);
	env.client_port = s->port;
	env.client_name = xstrdup(s->name);
	env.helo = xstrdup(s->helo);
	env.protocol = xstrdup(session_protocol(s));
	env.tls = s->tls_desc ? xstrdup(s->tls_desc) : NULL;
	env.sender = xstrdup(s->sender);
	if (s->body != CMD_BODY_NONE)
		env.body_type = xstrdup(s->body == CMD_BODY_8BITMIME ? "8BITMIME" : "7BIT");
	env.smtputf8 = s->smtputf8;
	/* DSN (RFC 3461): kept for the reports delivery makes. */
	if (s->dsn.ret != DSN_RET_NONE)
		env.ret = xstrdup(s->dsn.ret == DSN_RET_FULL ? "FULL" : "HDRS");
	if (s->dsn.has_envid)
		env.envid = xstrdup(s->dsn.envid);
	for (size_t i = 0; i < s->nrcpt; i++) {
		const struct dsn_rcpt *d = &s->rcpt_dsn[i];
		size_t k = envelope_add_rcpt(&env, s->rcpts[i], d->has_orcpt ? d->orcpt : NULL);
		if (d->notify != 0) {
			char nb[32];
			dsn_notify_format(d->notify, nb, sizeof(nb));
			env.rcpts[k].notify = xstrdup(nb);
		}
	}
	env.class = CLASS_HI;
	env.hops = 0; /* counted by the DATA parser; written at the commit */
	if (s->obs && s->obs->envelope)
		s->obs->envelope(s->obs_ctx, s, &env);
	int rc = spool_create(&s->srv->spool, &env, &s->sf);
	if (rc == 0)
		memcpy(s->id, env.id, sizeof(s->id));
	envelope_free(&env);
	if (rc != 0) {
		log_warn("cannot create a queue file for %s[%s]:%u", s->name, s->addr, s->port);
		*arg = "cannot create queue file";
		return RPL_LOCAL_ERROR;
	}
	s->sf_open = 1;
	log_info("%s: client=%s[%s]:%u", s->id, s->name, s->addr, s->port);

	/* Our Received: is the only field we write into the message; the
	 * class and scan fields are made from the envelope at delivery
	 * (src/spool/headers.c). */
	char *hdr;
	int n = session_received(s, &hdr);
	int wrc = spool_write(&s->sf, hdr, (size_t)n);
	free(hdr);
	if (wrc != 0) {
		log_warn("%s: cannot write the queue file", s->id);
		session_release_message(s);
		*arg = "cannot write queue file";
		return RPL_LOCAL_ERROR;
	}
	s->hdrlen = (uint64_t)n;

	struct data_limits lim = {
	    .max_size = cf->message_size_limit,
	    .max_line = (size_t)cf->line_length_limit,
	    .max_header = cf->header_size_limit,
	    .normalize_bare = cf->bare_lf == BARE_LF_NORMALIZE,
	};
	/* Parser -> header filter (drops client-made X-Tempomx-*) -> file. */
	hdr_filter_init(&s->hf, session_sink, s);
	if (chunks)
		data_init_chunks(&s->dp, &lim, hdr_filter_feed, &s->hf);
	else
		data_init(&s->dp, &lim, hdr_filter_feed, &s->hf);
	return RPL_NONE;
}

void session_data_start(struct session *s)
{
	const char *arg = NULL;
	enum reply_id r = message_open(s, 0, &arg);
	if (r != RPL_NONE) {
		session_reply(s, r, arg);
		return;
	}
	session_set_phase(s, PH_DATA);
	s->data_start_usec = mono_usec();
	static const char go[] = "354 End data with <CR><LF>.<CR><LF>\r\n";
	session_emit(s, 354, go, sizeof(go) - 1);
	session_arm(s);
}

static void session_commit_done(void *arg, int error)
{
	struct session *s = arg;
	s->commit_pending = 0;
	s->cur_what = "END-OF-DATA";
	s->cur_rcpt = NULL;
	session_set_phase(s, PH_HELO);
	if (error != 0) {
		log_warnx("%s: commit failed: %s", s->id, strerror(error));
		session_reply(s, RPL_LOCAL_ERROR, "queue file write error");
	} else {
		s->nmessages++;
		s->junk_commands = 0;
		/* The from= line is the scanner's, which takes the message into
		 * its queue as Postfix's qmgr does (log analysers such as
		 * pflogsumm count senders and bytes from there). */
		log_info("%s: accepted into %s, size=%" PRIu64 ", nrcpt=%zu", s->id,
		         spool_queue_name(message_queue(s)), s->hdrlen + s->hf.written, s->nrcpt);
		session_notify_type(s, SEV_COMMITTED);
		stats_add(message_queue(s) == Q_LO ? STAT_ACCEPTED_LO : STAT_ACCEPTED_HI, 1);
		session_reply(s, RPL_QUEUED, s->id);
	}
	if (session_in(s, PH(PH_HELO)))
		session_reset_transaction(s);
	session_idle(s);
}

/* Why the parser marked the message for refusal, as a reply. */
static enum reply_id data_error_reply(struct session *s)
{
	switch (s->dp.error) {
	case DATA_OK:
		return RPL_NONE;
	case DATA_ERR_SIZE:
		return RPL_DATA_TOO_BIG;
	case DATA_ERR_LINE:
		return RPL_DATA_LINE;
	case DATA_ERR_HEADER:
		return RPL_DATA_HEADER;
	case DATA_ERR_BARE:
		return RPL_DATA_BARE;
	case DATA_ERR_SINK:
		log_warn("%s: cannot write the queue file", s->id);
		return RPL_LOCAL_ERROR;
	}
	return RPL_LOCAL_ERROR;
}

static void session_data_end(struct session *s)
{
	enum reply_id r = data_error_reply(s);
	/* RFC 5321 6.3: a mail loop is refused now rather than bounced
	 * later; our own Received: counts, as it does for delivery. */
	if (r == RPL_NONE && (int64_t)s->dp.received + 1 > session_cf(s)->max_hops)
		r = RPL_TOO_MANY_HOPS;
	s->cur_what = "END-OF-DATA";
	s->cur_rcpt = NULL;
	if (r != RPL_NONE) {
		session_release_message(s);
		session_set_phase(s, PH_HELO);
		session_reply(s, r, "queue file write error");
		if (session_in(s, PH(PH_HELO)))
			session_reset_transaction(s);
		/* session_process(), our caller, goes on with the input. */
		session_ready(s);
		return;
	}
	session_set_phase(s, PH_COMMIT);
	s->sf_open = 0;
	s->commit_pending = 1;
	connection_timer_stop(&s->conn);
	if (s->hf.removed > 0)
		log_info("%s: removed %u X-Tempomx- header field%s supplied by the client", s->id,
		         s->hf.removed, s->hf.removed == 1 ? "" : "s");
	if (s->hf.orphans > 0)
		log_info("%s: removed %u leading continuation line%s supplied by the client", s->id,
		         s->hf.orphans, s->hf.orphans == 1 ? "" : "s");
	s->sf.hops = (int)s->dp.received + 1; /* ours too, as delivery counts */
	commit_pool_submit(s->srv->commits, &s->sf, s->hdrlen + s->hf.written, message_queue(s),
	                   session_commit_done, s);
}

/* Feed what arrived to the DATA parser. Returns 1 when the end of the
 * data was reached. */
int session_data_input(struct session *s, struct evbuffer *in)
{
	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		int done = 0;
		size_t used = data_feed(&s->dp, v.iov_base, v.iov_len, &done);
		evbuffer_drain(in, used);
		if (done) {
			session_notify_type(s, SEV_DATA_END);
			session_data_end(s);
			return 1;
		}
		if (used == 0)
			fatalx("%s: the DATA parser consumed nothing", s->id);
	}
	return 0;
}

/* BDAT (RFC 3030). The message is the concatenation of the chunks, no
 * dot-stuffing and no end-of-data line: the octets go through the same
 * parser in chunk mode (data.h), so bare CR/LF, the limits, the header
 * filter and the Received: count are DATA's. The first BDAT of a
 * transaction is where DATA would be: the observer decides there
 * (timing verdict, history, whitelists, policy, admission) before
 * anything is stored. BDAT LAST ends the message as the final dot does:
 * the commit, then the 250 once the file is fsync'd and renamed.
 *
 * Every BDAT whose size can be read has its chunk read, kept or
 * discarded, so the session stays in step (RFC 3030 4.2: chunks already
 * in the pipeline after a failed BDAT are accepted and discarded). A
 * refused BDAT is answered at once and ends its transaction: the client
 * takes any error as the failure of the message, and no later chunk may
 * be appended to a message with a hole in it. */

void session_bdat_reset(struct session *s)
{
	if (s->chunking && s->sf_open)
		session_release_message(s);
	s->chunking = 0;
	s->chunk_total = 0;
}

int session_bdat_refused(struct session *s, enum cmd_verb verb)
{
	if (!s->chunking || (verb != CMD_DATA && verb != CMD_MAIL && verb != CMD_RCPT))
		return 0;
	/* RFC 3030 2: DATA after BDAT is a 503 and leaves the state
	 * undefined until RSET; MAIL and RCPT cannot change a message
	 * whose envelope is written. The message is dropped either way. */
	log_info("%s: %s after BDAT from %s[%s]:%u: message discarded", s->id, cmd_verb_name(verb),
	         s->name, s->addr, s->port);
	session_reply(s, RPL_BDAT_MIXED, cmd_verb_name(verb));
	if (session_in(s, PH_CMD))
		session_reset_transaction(s);
	return 1;
}

/* Why this BDAT cannot add to a message, or RPL_NONE. */
static enum reply_id bdat_refusal(struct session *s, const struct bdat_cmd *b, const char **arg)
{
	const struct config *cf = session_cf(s);
	if (session_in(s, PH(PH_INIT)))
		return RPL_NEED_HELO;
	/* CHUNKING is offered in the EHLO reply only (RFC 5321 4.1.1.1). */
	if (!s->esmtp)
		return RPL_NEED_EHLO;
	if (session_in(s, PH(PH_HELO)))
		return RPL_NEED_MAIL;
	if (session_in(s, PH(PH_MAIL)))
		return RPL_NEED_RCPT;
	/* The chunk's octets are at least as many octets of message (no
	 * unstuffing; normalising only adds), so this is exact. */
	if (cf->message_size_limit > 0 &&
	    (b->size > cf->message_size_limit || s->chunk_total > cf->message_size_limit - b->size))
		return RPL_DATA_TOO_BIG;
	if (s->chunking)
		return RPL_NONE;
	/* The first chunk: the decision DATA takes before its 354. */
	enum reply_id r = s->obs && s->obs->decide ? s->obs->decide(s->obs_ctx, s) : RPL_NONE;
	if (r != RPL_NONE)
		return r;
	r = message_open(s, 1, arg);
	if (r != RPL_NONE)
		return r;
	s->chunking = 1;
	return RPL_NONE;
}

void session_bdat(struct session *s, const struct cmd_line *cmd)
{
	struct bdat_cmd b;
	enum reply_id r = bdat_parse(cmd->arg, cmd->arglen, &b);
	const char *arg = NULL;
	if (r == RPL_BDAT_SIZE) {
		log_info("%s[%s]:%u: BDAT with an unreadable chunk size: %.*s", s->name, s->addr,
		         s->port, (int)(cmd->arglen < 40 ? cmd->arglen : 40), cmd->arg);
		if (s->chunking)
			session_bdat_reset(s);
		session_reply(s, RPL_BDAT_SIZE, NULL);
		return;
	}
	/* From here on the chunk is read, whatever the answer (and the
	 * observer's decision knows the octets waiting are the chunk's). */
	s->chunk_active = 1;
	s->chunk_last = b.last;
	s->chunk_size = b.size;
	s->chunk_left = b.size;
	s->chunk_start_usec = mono_usec();
	if (r == RPL_NONE)
		r = bdat_refusal(s, &b, &arg);
	s->chunk_store = r == RPL_NONE;
	if (r != RPL_NONE) {
		/* Answered now; the octets that follow are skipped. */
		session_reply(s, r, arg);
		if (s->sender != NULL && session_in(s, PH_CMD))
			session_reset_transaction(s);
		if (!session_in(s, PH_CMD))
			s->chunk_active = 0;
		else
			session_arm(s);
		return;
	}
	s->chunk_total += b.size;
	session_arm(s); /* the data timeout, now */
}

/* The chunk's last octet is in. */
static void chunk_done(struct session *s)
{
	s->chunk_active = 0;
	if (!s->chunk_store) {
		session_arm(s);
		return;
	}
	if (s->chunk_last) {
		data_finish(&s->dp);
		s->chunking = 0;
		session_notify_type(s, SEV_DATA_END);
		session_data_end(s);
		return;
	}
	s->cur_what = "BDAT";
	enum reply_id r = data_error_reply(s);
	if (r != RPL_NONE) {
		/* The limits are known to be broken now: say so at this chunk
		 * (the client sends no more, or they are discarded). */
		session_reply(s, r, "queue file write error");
		if (session_in(s, PH_CMD))
			session_reset_transaction(s);
		session_ready(s);
		return;
	}
	char n[24];
	snprintf(n, sizeof(n), "%" PRIu64, s->chunk_size);
	session_reply(s, RPL_BDAT_OK, n);
	session_arm(s);
}

int session_chunk_input(struct session *s, struct evbuffer *in)
{
	while (s->chunk_left > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return 0;
		size_t n = v.iov_len;
		if ((uint64_t)n > s->chunk_left)
			n = (size_t)s->chunk_left;
		if (s->chunk_store) {
			int done;
			if (data_feed(&s->dp, v.iov_base, n, &done) != n)
				fatalx("%s: the BDAT parser did not take a whole piece", s->id);
		}
		evbuffer_drain(in, n);
		s->chunk_left -= n;
	}
	chunk_done(s);
	return 1;
}

const struct session_message_ops receive_message_ops = {
    .start = session_data_start,
    .input = session_data_input,
    .release = session_release_message,
    .bdat = session_bdat,
    .chunk_input = session_chunk_input,
    .bdat_refused = session_bdat_refused,
    .bdat_reset = session_bdat_reset,
};
