/*
 * session_facts.c: the read-only facts of a session that observers (the
 * classifier, smtpd.h), the gauges and the log lines ask for: the
 * client's address, name and port, HELO, sender and recipients, times,
 * what is pending. Calls nothing: every other smtpd file may use it, and
 * it reads struct session (session.h) only.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "session.h"

const struct sockaddr *session_peer(const struct session *s)
{
	return (const struct sockaddr *)&s->peer;
}

const char *session_client_addr(const struct session *s)
{
	return s->addr;
}

const char *session_client_name(const struct session *s)
{
	return s->name;
}

const char *session_client_ptr(const struct session *s)
{
	return s->ptr;
}

enum session_rdns session_client_rdns(const struct session *s)
{
	return s->rdns;
}

int session_fd(const struct session *s)
{
	return s->conn.fd;
}

int session_timing_enabled(const struct session *s)
{
	const struct config *cf = session_cf(s);
	return s->listen_index < cf->listen.n ? cf->listen.v[s->listen_index].timing : 1;
}

const char *session_helo(const struct session *s)
{
	return s->helo;
}

int64_t session_connect_usec(const struct session *s)
{
	return s->connect_usec;
}

int64_t session_last_reply_usec(const struct session *s)
{
	return s->last_reply_usec;
}

int64_t session_last_command_usec(const struct session *s)
{
	return s->last_cmd_usec;
}

unsigned session_client_port(const struct session *s)
{
	return s->port;
}

socklen_t session_peer_len(const struct session *s)
{
	return s->peerlen;
}

int session_esmtp(const struct session *s)
{
	return s->esmtp;
}

const char *session_sender(const struct session *s)
{
	return s->sender;
}

size_t session_nrcpt(const struct session *s)
{
	return s->nrcpt;
}

const char *session_rcpt(const struct session *s, size_t i)
{
	return i < s->nrcpt ? s->rcpts[i] : NULL;
}

size_t session_input_pending(const struct session *s)
{
	return s->conn.bev ? evbuffer_get_length(bufferevent_get_input(s->conn.bev)) : 0;
}

int session_chunking(const struct session *s)
{
	return s->chunking || s->chunk_active;
}

int session_holding(const struct session *s)
{
	return s->held != NULL;
}

const char *session_queue_id(const struct session *s)
{
	return s->id;
}
