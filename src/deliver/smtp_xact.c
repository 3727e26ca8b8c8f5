/*
 * smtp_xact.c: one SMTP/LMTP transaction on an open session
 * (smtp_client.c opened it): MAIL FROM with SIZE= and BODY=8BITMIME when
 * offered, the RCPTs and DATA, all in one write when the server offers
 * PIPELINING (RFC 2920; the replies are matched in order), else one
 * command at a time; an RSET first when the session's last transaction
 * did not end. The body is read from the spool file in chunks and
 * dot-stuffed as the output buffer drains, so a large message is never
 * held in memory; each chunk must drain within smtp_command_timeout, the
 * reply to the final dot within smtp_data_timeout (RFC 5321 4.5.3.2).
 * LMTP gets one reply per accepted recipient after the dot (RFC 2033
 * 4.2). Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "smtp_client.h"
#include "smtp_proto.h"
#include "smtp_session.h"
#include "util.h"

/* Write the next command(s): all of them with PIPELINING, else one. */
static void xact_send(struct smtp_session *s)
{
	const struct smtp_message *m = s->m;
	while (s->sent < s->ncmd && (s->pipe || s->sent == s->answered)) {
		size_t i = s->sent;
		if (i < s->rset) {
			sess_printf(s, "RSET\r\n");
		} else if (i == s->rset) {
			char params[64] = "";
			if (s->caps.size)
				snprintf(params, sizeof(params), " SIZE=%llu",
				         (unsigned long long)(m->size + m->headlen));
			if (s->caps.eightbit && m->eightbit)
				strncat(params, " BODY=8BITMIME",
				        sizeof(params) - strlen(params) - 1);
			sess_printf(s, "MAIL FROM:<%s>%s\r\n", m->sender, params);
		} else if (i <= s->rset + m->nrcpt) {
			sess_printf(s, "RCPT TO:<%s>\r\n", m->rcpts[i - s->rset - 1]);
		} else {
			if (!s->pipe && s->accepted == 0) {
				/* Nobody to send to: the transaction ends here. */
				s->dirty = 1;
				sess_done(s);
				return;
			}
			sess_printf(s, "DATA\r\n");
		}
		s->sent++;
	}
	sess_arm(s, s->command_timeout);
}

static int result_code(int code)
{
	return code / 100 == 2 || code >= 400 ? code : 451;
}

void xact_reply(struct smtp_session *s)
{
	const struct smtp_message *m = s->m;
	struct smtp_reply *rp = &s->rp;
	size_t i = s->answered++;
	int code = rp->code;

	if (code == 421) {
		/* RFC 5321 3.8: the server is closing; whoever has no
		 * answer yet shares this one. */
		sess_fill_undecided(s, 421, rp->text);
		sess_kill(s);
		sess_done(s);
		return;
	}
	if (i < s->rset) {
		if (code != 250) {
			sess_fail_reply(s, "after RSET");
			return;
		}
	} else if (i == s->rset) {
		if (code != 250) {
			/* Every recipient shares the sender's fate. With
			 * PIPELINING, the RCPT and DATA replies still come. */
			s->mail_failed = 1;
			sess_fill_undecided(s, result_code(code), rp->text);
			s->dirty = 1;
			if (!s->pipe) {
				sess_done(s);
				return;
			}
		}
	} else if (i <= s->rset + m->nrcpt) {
		size_t k = i - s->rset - 1;
		if (!s->mail_failed) {
			if (code / 100 == 2) {
				s->accepted_v[k] = 1;
				s->accepted++;
			} else {
				s->res[k].code = result_code(code);
				strlcpy_tmx(s->res[k].reply, rp->text, sizeof(s->res[k].reply));
			}
		}
	} else {
		/* DATA. */
		if (code == 354 && (s->accepted == 0 || s->mail_failed)) {
			/* Pipelined DATA accepted though no recipient was:
			 * end an empty message and let the server refuse it. */
			evbuffer_add(bufferevent_get_output(s->bev), ".\r\n", 3);
			s->st = ST_EMPTY;
			sess_arm(s, s->data_timeout);
			return;
		}
		if (code != 354) {
			if (s->accepted > 0 && !s->mail_failed)
				sess_fill_undecided(s, result_code(code), rp->text);
			s->dirty = 1;
			sess_done(s);
			return;
		}
		s->st = ST_BODY;
		s->off = m->body_off;
		s->left = m->size;
		s->bol = 1;
		s->last = '\n';
		if (s->chunk == NULL) {
			s->chunk = xmalloc(SMTP_CHUNK);
			s->stuffed = xmalloc(2 * SMTP_CHUNK + 8);
		}
		if (m->head != NULL && m->headlen > 0 && m->headlen <= SMTP_HEAD_MAX) {
			/* Our fields first; they never start with a dot, but the
			 * same stuffing keeps the line state right. */
			size_t n = smtp_dotstuff(m->head, m->headlen, s->stuffed, &s->bol);
			evbuffer_add(bufferevent_get_output(s->bev), s->stuffed, n);
			s->last = m->head[m->headlen - 1];
		}
		bufferevent_setwatermark(s->bev, EV_WRITE, SMTP_OUT_LOW, 0);
		xact_pump(s);
		return;
	}
	xact_send(s);
}

/* Fill the output from the spool file up to SMTP_OUT_HIGH; queue the
 * final dot after the last chunk. */
void xact_pump(struct smtp_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (s->left > 0 && evbuffer_get_length(out) < SMTP_OUT_HIGH) {
		size_t want = s->left < SMTP_CHUNK ? (size_t)s->left : SMTP_CHUNK;
		ssize_t r = pread(s->m->fd, s->chunk, want, s->off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			char t[300];
			smtp_local_reply(t, sizeof(t), 451, "4.3.0",
			                 "cannot read the queue file: %s",
			                 r == 0 ? "short file" : strerror(errno));
			sess_fill_undecided(s, 451, t);
			sess_kill(s);
			sess_done(s);
			return;
		}
		size_t n = smtp_dotstuff(s->chunk, (size_t)r, s->stuffed, &s->bol);
		s->last = s->chunk[r - 1];
		evbuffer_add(out, s->stuffed, n);
		s->off += r;
		s->left -= (uint64_t)r;
	}
	if (s->left > 0) {
		/* RFC 5321 4.5.3.2.5: each data block must drain in time. */
		sess_arm(s, s->command_timeout);
		return;
	}
	/* The message must end with CRLF before the terminating dot. */
	const char *end = s->last == '\n' ? ".\r\n" : "\r\n.\r\n";
	evbuffer_add(out, end, strlen(end));
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	s->st = ST_DOT;
	s->lmtp_next = 0;
	sess_arm(s, s->data_timeout);
}

void xact_dot_reply(struct smtp_session *s)
{
	const struct smtp_message *m = s->m;
	int code = result_code(s->rp.code);
	if (!s->lmtp) {
		for (size_t i = 0; i < m->nrcpt; i++) {
			if (!s->accepted_v[i])
				continue;
			s->res[i].code = code;
			strlcpy_tmx(s->res[i].reply, s->rp.text, sizeof(s->res[i].reply));
		}
		s->dirty = 0;
		if (s->rp.code == 421)
			sess_kill(s);
		sess_done(s);
		return;
	}
	/* RFC 2033 4.2: one reply per accepted recipient, in order. */
	while (s->lmtp_next < m->nrcpt && !s->accepted_v[s->lmtp_next])
		s->lmtp_next++;
	if (s->lmtp_next < m->nrcpt) {
		struct smtp_result *r = &s->res[s->lmtp_next++];
		r->code = code;
		strlcpy_tmx(r->reply, s->rp.text, sizeof(r->reply));
	}
	while (s->lmtp_next < m->nrcpt && !s->accepted_v[s->lmtp_next])
		s->lmtp_next++;
	if (s->lmtp_next >= m->nrcpt) {
		s->dirty = 0;
		sess_done(s);
		return;
	}
	sess_arm(s, s->data_timeout);
}

void smtp_send(struct smtp_session *s, const struct smtp_opts *o, const struct smtp_message *m,
               struct smtp_result *res)
{
	s->m = m;
	s->res = res;
	s->command_timeout = o->command_timeout;
	s->data_timeout = o->data_timeout;
	for (size_t i = 0; i < m->nrcpt; i++)
		res[i].code = 0;
	free(s->accepted_v);
	s->accepted_v = xcalloc(m->nrcpt ? m->nrcpt : 1, 1);
	s->accepted = 0;
	s->mail_failed = 0;
	s->answered = s->sent = 0;
	s->rset = s->dirty ? 1 : 0;
	s->ncmd = s->rset + 1 + m->nrcpt + 1;
	s->pipe = s->caps.pipelining;
	smtp_reply_init(&s->rp);
	if (s->dead || s->st != ST_IDLE) {
		sess_fail_local(s, 451, "4.4.2", "connection closed while idle");
		return;
	}
	if (s->caps.size && s->caps.size_max > 0 && m->size > s->caps.size_max) {
		/* Another host of the destination may take it. */
		char what[200];
		snprintf(what, sizeof(what), "message size %llu exceeds the server's limit %llu",
		         (unsigned long long)m->size, (unsigned long long)s->caps.size_max);
		char t[700];
		smtp_local_reply(t, sizeof(t), 552, "5.3.4", "%s: %s", s->relay, what);
		s->fail_code = 552;
		strlcpy_tmx(s->fail_text, t, sizeof(s->fail_text));
		sess_notify(s, SMTP_FAILED); /* still usable: the caller may QUIT */
		return;
	}
	s->st = ST_XACT;
	xact_send(s);
}
