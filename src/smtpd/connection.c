/*
 * connection.c: the transport under a session: the socket's bufferevent,
 * the session timer, the switch to TLS after STARTTLS, closing, and the
 * session's life cycle (session_new, shutdown, destroy).
 *
 * One timer per session; what it means follows the state: command or
 * data timeout, TLS handshake timeout, greeting pause, flush deadline,
 * linger deadline, deferred free.
 *
 * Closing: the final reply is flushed, then the write side is shut down
 * and input is read and discarded for a short while before close(), so
 * that unread client data does not make the kernel reset the connection
 * and destroy the reply in flight. Freeing is always deferred to a timer
 * callback so no bufferevent (nor its SSL) is freed from inside its own
 * callback.
 *
 * The client's name: session_new() asks rdns.c for it and the final
 * greeting line waits for the answer (the greet pause, when there is one,
 * runs meanwhile), so that "connect from name[addr]" and every later line
 * has the name, as Postfix's smtpd does it. The answer is reported to the
 * observer (SEV_RDNS).
 *
 * Called by server.c (session_new, session_shutdown_all,
 * session_abort_all) and by session.c/receive.c for timers and closing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "rdns.h"
#include "session.h"
#include "slots.h"
#include "smtpd.h"
#include "tls.h"
#include "util.h"

static void on_read(struct bufferevent *bev, void *arg);
static void session_log_connect(struct session *s);
static void session_name_abandon(struct session *s);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

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
	return s->fd;
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
	return s->bev ? evbuffer_get_length(bufferevent_get_input(s->bev)) : 0;
}

int session_holding(const struct session *s)
{
	return s->held != NULL;
}

const char *session_queue_id(const struct session *s)
{
	return s->id;
}

/* Timers: one per session; its meaning follows the state. */

void session_timer(struct session *s, int64_t seconds)
{
	struct timeval tv = {.tv_sec = (time_t)seconds, .tv_usec = 0};
	evtimer_del(s->timer);
	evtimer_add(s->timer, &tv);
}

/* The timeout that applies while waiting for the client in this state,
 * within the session's other deadlines (slots.c). */
void session_arm(struct session *s)
{
	const struct config *cf = session_cf(s);
	int64_t t;
	if (s->io == IO_TLS)
		t = cf->tls_handshake_timeout;
	else if (s->io == IO_STARTTLS || session_in(s, PH_CMD))
		t = cf->command_timeout;
	else if (session_in(s, PH(PH_DATA)))
		t = cf->data_timeout;
	else {
		evtimer_del(s->timer);
		return;
	}
	int64_t usec = slots_wait_usec(s, t);
	struct timeval tv = {.tv_sec = (time_t)(usec / 1000000),
	                     .tv_usec = (suseconds_t)(usec % 1000000)};
	evtimer_del(s->timer);
	evtimer_add(s->timer, &tv);
}

/* Queue the final reply, then flush, shut down and linger. */
void session_close(struct session *s)
{
	if (session_ending(s))
		return;
	s->io = IO_CLOSING;
	s->stalled = 0;
	if (s->bev == NULL) {
		session_kill(s);
		return;
	}
	evbuffer_drain(bufferevent_get_input(s->bev),
	               evbuffer_get_length(bufferevent_get_input(s->bev)));
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_timer(s, 0);
	else
		session_timer(s, SESSION_FLUSH_TIMEOUT);
}

/* TLS: switch the socket once the 220 is out, then start over. */

static void session_setup_bev(struct session *s)
{
	const struct config *cf = session_cf(s);
	struct timeval wt = {.tv_sec = (time_t)cf->command_timeout, .tv_usec = 0};
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_MAX);
	/* A client that stops reading our replies is cut off. */
	bufferevent_set_timeouts(s->bev, NULL, &wt);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void session_tls_prepare(struct session *s)
{
	s->io = IO_STARTTLS;
	/* RFC 3207 4.2 and CVE-2011-0411: nothing the client sent after
	 * STARTTLS in the clear may be taken as a command. Drop it, and read
	 * nothing more on the plain socket: what follows belongs to TLS. */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);
	if (junk > 0) {
		log_info("%s[%s]:%u: discarded %zu octets sent after STARTTLS", s->name, s->addr,
		         s->port, junk);
		evbuffer_drain(in, junk);
	}
	bufferevent_disable(s->bev, EV_READ);
	session_arm(s);
}

static void session_tls_switch(struct session *s)
{
	bufferevent_free(s->bev);
	s->bev = tls_start(s->srv->base, s->srv->tls_ctx, s->fd);
	if (s->bev == NULL) {
		char err[256];
		tls_error(NULL, err, sizeof(err));
		log_warnx("STARTTLS from %s[%s]:%u: cannot start TLS: %s", s->name, s->addr,
		          s->port, err);
		session_kill(s);
		return;
	}
	s->bev_tls = 1;
	s->io = IO_TLS;
	session_setup_bev(s);
	session_arm(s);
}

static void session_tls_done(struct session *s)
{
	char desc[256];
	tls_describe(s->bev, desc, sizeof(desc));
	free(s->tls_desc);
	s->tls_desc = xstrdup(desc);
	s->tls_active = 1;
	log_info("STARTTLS: %s with cipher %s from %s[%s]:%u", tls_protocol(s->bev),
	         tls_cipher(s->bev), s->name, s->addr, s->port);
	s->io = IO_OPEN;
	session_tls_started(s);
}

/* Teardown. */

static void session_destroy(struct session *s)
{
	struct smtpd *srv = s->srv;
	session_release_message(s);
	/* The observer sees a held reply as never sent (s->held). */
	if (s->obs && s->obs->close)
		s->obs->close(s->obs_ctx, s, s->quit);
	free(s->held);
	s->held = NULL;
	if (s->linger)
		event_free(s->linger);
	if (s->bev) {
		if (s->bev_tls)
			tls_free(s->bev, 0);
		else
			bufferevent_free(s->bev);
	}
	if (s->fd >= 0)
		close(s->fd);
	event_free(s->timer);
	log_info("disconnect from %s[%s]:%u commands=%u errors=%u messages=%u%s", s->name, s->addr,
	         s->port, s->ncommands, s->errors, s->nmessages, s->quit ? " quit" : "");

	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	smtpd_session_gone(srv, s->addr);

	session_reset_transaction(s);
	free(s->rcpts);
	free(s->helo);
	free(s->tls_desc);
	free(s);
}

/* Stop all I/O now and free from the next loop iteration. */
void session_kill(struct session *s)
{
	if (s->io == IO_DEAD)
		return;
	s->io = IO_DEAD;
	session_name_abandon(s);
	session_release_message(s);
	verify_cancel(s);
	if (s->bev) {
		bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	}
	if (s->linger)
		event_del(s->linger);
	session_timer(s, 0);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	char buf[2048];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* FIN or error: done */
	}
	session_kill(s);
}

/* The last reply is out: stop sending, then read until the client
 * closes (see the header comment), at most SESSION_LINGER_TIMEOUT. */
static void session_linger(struct session *s)
{
	if (s->bev) {
		if (s->bev_tls)
			tls_free(s->bev, s->tls_active);
		else
			bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->io = IO_LINGER;
	if (shutdown(s->fd, SHUT_WR) != 0) {
		session_kill(s);
		return;
	}
	s->linger = event_new(s->srv->base, s->fd, EV_READ | EV_PERSIST, on_linger, s);
	if (s->linger == NULL || event_add(s->linger, NULL) != 0)
		fatalx("session: cannot add the linger event");
	session_timer(s, SESSION_LINGER_TIMEOUT);
}

/* Callbacks. */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	size_t unsent = s->bev ? evbuffer_get_length(bufferevent_get_output(s->bev)) : 0;
	switch (s->io) {
	case IO_OPEN:
		/* What a timer means in the dialogue is the dialogue's. */
		session_timeout(s);
		break;
	case IO_STARTTLS:
		if (unsent == 0) {
			session_tls_switch(s);
		} else {
			log_info("timeout sending the STARTTLS reply to %s[%s]:%u", s->name,
			         s->addr, s->port);
			session_kill(s);
		}
		break;
	case IO_TLS:
		log_info("TLS handshake timeout from %s[%s]:%u", s->name, s->addr, s->port);
		session_kill(s);
		break;
	case IO_CLOSING:
		if (unsent == 0)
			session_linger(s);
		else
			session_kill(s);
		break;
	case IO_LINGER:
		session_kill(s);
		break;
	case IO_DEAD:
		session_destroy(s);
		break;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	s->last_read_usec = mono_usec();
	if (s->io == IO_OPEN)
		session_input(s);
	else if (s->io == IO_CLOSING)
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	s->last_flush_usec = mono_usec();
	struct session_event ev = {.type = SEV_FLUSHED, .usec = s->last_flush_usec};
	session_notify(s, &ev);
	if (s->io == IO_CLOSING || s->io == IO_STARTTLS)
		/* Continue from the timer, outside this bufferevent. */
		session_timer(s, 0);
	else if (s->io == IO_OPEN)
		session_output_drained(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->io == IO_TLS)
			session_tls_done(s);
		return;
	}
	int eof = (what & BEV_EVENT_EOF) != 0;
	session_name_abandon(s);
	if (s->io == IO_TLS) {
		char err[256];
		tls_error(bev, err, sizeof(err));
		log_info("TLS handshake failed from %s[%s]:%u: %s", s->name, s->addr, s->port,
		         eof ? "connection closed" : err);
		session_kill(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("timeout sending to %s[%s]:%u", s->name, s->addr, s->port);
		session_kill(s);
		return;
	}
	if (eof && s->io == IO_CLOSING) {
		/* The client half-closed after its last command (QUIT, often):
		 * it still reads, so the final reply goes out as planned. */
		return;
	}
	/* What a half close means depends on the dialogue. */
	if (eof && s->io == IO_OPEN && session_peer_closed(s))
		return;
	if (!session_ending(s) && !s->quit)
		log_info("lost connection after %s from %s[%s]:%u",
		         session_in(s, PH(PH_DATA)) ? "DATA"
		         : s->cur_what              ? s->cur_what
		                                    : "CONNECT",
		         s->name, s->addr, s->port);
	session_kill(s);
}

/* The client's name. */

/* "connect from name[addr]:port", once per session. */
static void session_log_connect(struct session *s)
{
	if (s->connect_logged)
		return;
	s->connect_logged = 1;
	log_info("connect from %s[%s]:%u", s->name, s->addr, s->port);
}

/* The session ends before its name is known: the connect line says
 * unknown, and comes before the line that says why it ended. */
static void session_name_abandon(struct session *s)
{
	if (s->rdns_query) {
		rdns_cancel(s->rdns_query);
		s->rdns_query = NULL;
	}
	session_log_connect(s);
}

static void session_name_known(void *arg, const struct rdns_answer *a)
{
	struct session *s = arg;
	s->rdns_query = NULL;
	s->rdns = a->result;
	if (a->result == RDNS_CONFIRMED)
		strlcpy_tmx(s->name, a->name, sizeof(s->name));
	strlcpy_tmx(s->ptr, a->ptr, sizeof(s->ptr));
	session_log_connect(s);
	struct session_event ev = {.type = SEV_RDNS, .rdns = a->result};
	session_notify(s, &ev);
	if (s->greet_pause_over && session_in(s, PH(PH_GREETING)))
		session_greet_final(s);
}

/* Life cycle, called by server.c. */

struct session *session_new(struct smtpd *srv, int fd, const struct sockaddr *peer,
                            socklen_t peerlen, size_t listen_index)
{
	struct session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->fd = fd;
	s->phase = PH_GREETING;
	s->io = IO_OPEN;
	s->listen_index = listen_index;
	if (peerlen > sizeof(s->peer))
		peerlen = sizeof(s->peer);
	memcpy(&s->peer, peer, peerlen);
	s->peerlen = peerlen;
	sockaddr_host(peer, s->addr, sizeof(s->addr));
	s->port = sockaddr_port(peer);
	s->connect_usec = mono_usec();
	s->sf.fd = -1;
	strlcpy_tmx(s->name, "unknown", sizeof(s->name));

	s->timer = evtimer_new(srv->base, on_timer, s);
	s->bev = bufferevent_socket_new(srv->base, fd, 0);
	if (s->timer == NULL || s->bev == NULL)
		fatalx("session: cannot allocate events");
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	session_setup_bev(s);

	s->obs = srv->obs;
	if (s->obs && s->obs->open)
		s->obs_ctx = s->obs->open(srv->obs_arg, s);
	/* The name is asked for first, so that it may come during the
	 * pause; it always comes from a callback of its own. */
	if (session_cf(s)->reverse_dns)
		s->rdns_query = rdns_lookup(srv, session_peer(s), session_name_known, s);
	else
		session_log_connect(s);
	/* The observer may need a moment (a remote lookup) before it knows
	 * how to greet. */
	if (s->obs && s->obs->greet_wait && s->obs->greet_wait(s->obs_ctx, s)) {
		s->greet_waiting = 1;
		return s;
	}
	/* Clients without a good history get the banner in two parts. */
	session_greet(s, s->obs && s->obs->greet_pause ? s->obs->greet_pause(s->obs_ctx, s) : 0);
	return s;
}

void session_observer_ready(struct session *s)
{
	if (!s->greet_waiting)
		return;
	s->greet_waiting = 0;
	if (session_in(s, PH(PH_GREETING)))
		session_greet(s, s->obs && s->obs->greet_pause ? s->obs->greet_pause(s->obs_ctx, s)
		                                               : 0);
}

void session_shutdown_all(struct smtpd *srv)
{
	struct session *s, *next;
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		if (session_in(s, PH(PH_GREETING)))
			session_name_abandon(s);
		if (session_in(s, PH(PH_GREETING) | PH_CMD)) {
			s->cur_what = "SHUTDOWN";
			session_reply(s, RPL_SHUTDOWN, NULL);
		} else if (s->io == IO_STARTTLS || s->io == IO_TLS) {
			session_kill(s);
		}
		/* DATA and COMMIT finish first (session_idle). */
	}
}

void session_abort_all(struct smtpd *srv)
{
	for (struct session *s = srv->sessions; s; s = s->next) {
		if (session_in(s, PH(PH_DATA) | PH(PH_COMMIT)))
			log_info("%s: shutdown: dropping the session of %s[%s]:%u in %s", s->id,
			         s->name, s->addr, s->port,
			         session_state_name(session_state_index(s)));
		session_kill(s);
	}
}
