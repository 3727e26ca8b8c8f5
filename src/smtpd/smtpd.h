/*
 * smtpd.h: the smtpd child's internal interfaces.
 *
 * server.c owns struct smtpd (listeners, connection limits, signals, the
 * spool and its commit pool, the TLS context) and calls session_new() for
 * each accepted connection. session.c owns struct session (one client's
 * SMTP dialogue) and keeps the list of live sessions. Calls go one way,
 * from server.c down: a session reports its end through the
 * srv->session_gone callback server.c sets, and reaches the message
 * (receive.c) through the srv->msg_ops server.c sets.
 *
 * The session reports what happens on the wire to an optional observer
 * (struct session_observer): this is how the timing classifier sees reply
 * times, command arrivals, pipelining and bytes sent before the banner
 * without reaching into the session. Every reply passes through one
 * function in session.c and every complete command line through another;
 * both report here.
 *
 * The client's name comes from reverse DNS (rdns.c) before the final
 * greeting line; SEV_RDNS says it is known, and session_client_name()
 * gives it ("unknown" unless forward-confirmed).
 */
#ifndef TEMPOMX_SMTPD_SMTPD_H
#define TEMPOMX_SMTPD_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "command.h"
#include "reply.h"
#include "spool.h"
#include "tempomx.h"

struct event;
struct event_base;
struct evconnlistener;
struct session;
struct smtpd_client;
struct smtpd_listener;
struct screen_server;
struct admission;
struct verify;
struct rdns;

/* What the observer is told. */
enum session_event_type {
	SEV_PREGREET,   /* octets arrived before the greeting was complete */
	SEV_GREETING,   /* the final "220 " greeting line was queued */
	SEV_COMMAND,    /* a complete command line was taken from the input */
	SEV_REPLY,      /* a reply was queued for sending */
	SEV_FLUSHED,    /* every queued reply has been written to the socket */
	SEV_TLS,        /* the TLS handshake completed */
	SEV_NON_SMTP,   /* HTTP request or TLS record on the plain port */
	SEV_DATA_END,   /* the end-of-data line of a message was received */
	SEV_QUIT,       /* QUIT was taken; .octets: input was waiting after it */
	SEV_HOLD_INPUT, /* input arrived while a reply was held back */
	SEV_HOLD_OVER,  /* the held reply went out: the client waited */
	SEV_RDNS,       /* the client's reverse DNS lookup is over (.rdns) */
	SEV_HELO,       /* HELO/EHLO accepted (session_helo()) */
	SEV_COMMITTED,  /* the message is in the spool (session_queue_id()) */
};

/* Which reply the patience test may hold (config patience_reply). */
enum screen_reply { SCREEN_REPLY_RCPT = 0, SCREEN_REPLY_MAIL = 1, SCREEN_REPLY_HELO = 2 };

/* What reverse DNS said of the client (rdns.c). */
enum session_rdns {
	RDNS_NONE = 0,    /* not looked up: reverse_dns = no, or not yet */
	RDNS_CONFIRMED,   /* a PTR name one of whose A/AAAA records is the client */
	RDNS_NO_PTR,      /* no PTR record (NXDOMAIN, or no record of that type) */
	RDNS_UNCONFIRMED, /* a PTR, but not a valid host name or none of its
	                   * addresses is the client's */
	RDNS_TEMPFAIL,    /* timeout, SERVFAIL, network: no answer either way */
};

struct session_event {
	enum session_event_type type;
	int64_t usec; /* mono_usec() when it happened */
	/* SEV_COMMAND */
	enum cmd_verb verb; /* CMD_NONE: too long or not a command */
	int early;          /* it arrived before the previous reply was sent */
	int64_t arrival;    /* mono_usec() when its octets were read */
	int bare_lf;        /* the line ended in LF without CR */
	int pipelining;     /* our EHLO reply offered PIPELINING (RFC 2920) */
	/* SEV_REPLY */
	int code;
	/* SEV_PREGREET: octets newly seen; SEV_QUIT: octets left unread */
	size_t octets;
	/* SEV_RDNS; the names are session_client_name() and _ptr() */
	enum session_rdns rdns;
	/* SEV_NON_SMTP: what it was */
	const char *text;
};

struct envelope;
struct session_message_ops;

/* The classifier watches a session through this, and answers the few
 * questions the session asks before it acts; a hook left NULL answers
 * "nothing to add". The session never calls the classifier by name. */
struct session_observer {
	/* A session starts; the return value is passed back below. */
	void *(*open)(void *arg, struct session *s);
	void (*event)(void *ctx, struct session *s, const struct session_event *ev);
	/* 1: the greeting (and greet_pause) must wait for something the
	 * observer is finding out (the client's shared history); it then
	 * calls session_observer_ready() once, from the loop. 0: go on. */
	int (*greet_wait)(void *ctx, struct session *s);
	/* Seconds of pause inside the split banner (0: whole banner). */
	int64_t (*greet_pause)(void *ctx, struct session *s);
	/* Seconds to hold the reply that is about to go out (0: none). */
	int64_t (*patience)(void *ctx, struct session *s, enum screen_reply which);
	/* At DATA, before the 354: RPL_NONE accepts, else the refusal. */
	enum reply_id (*decide)(void *ctx, struct session *s);
	/* The accepted message: its queue and its envelope fields (the
	 * X-Tempomx-Class field is made of them at delivery). */
	enum spool_queue (*queue)(void *ctx, struct session *s);
	void (*envelope)(void *ctx, struct session *s, struct envelope *env);
	/* The session ends; quit is 1 when the client said QUIT. */
	void (*close)(void *ctx, struct session *s, int quit);
};

/* The smtpd process. */
struct smtpd {
	struct runtime *rt; /* rt->cf: current settings, swapped in place on SIGHUP */
	struct event_base *base;
	struct spool spool;
	struct commit_pool *commits;
	SSL_CTX *tls_ctx; /* NULL: STARTTLS not offered */

	struct smtpd_listener *listeners;
	size_t nlisteners;
	struct event *ev_term, *ev_int, *ev_hup, *ev_grace;

	struct session *sessions; /* live sessions (session.c) */
	size_t nsessions;
	struct smtpd_client **clients; /* connections per client address */
	size_t nbuckets;

	int stopping; /* SIGTERM seen */
	const struct session_observer *obs;
	void *obs_arg;
	struct screen_server *scr; /* classifier, history, whitelists (screen.c) */
	struct admission *adm;     /* queue depth and free disk (admission.c) */
	struct verify *verify;     /* recipient verification (verify.c) */
	struct rdns *rdns;         /* reverse DNS of clients (rdns.c) */
	struct pickup *pickup;     /* local submissions (pickup.c) */
	struct gauges *gauges;     /* open sessions for tempomxctl (gauges.c) */

	/* Set by server.c for session.c: a session was destroyed (release
	 * its connection slot); the message part of a session (receive.c's
	 * receive_message_ops). */
	void (*session_gone)(struct smtpd *srv, const char *client_addr);
	const struct session_message_ops *msg_ops;
};

/* server.c */
/* Attach an observer (NULL to detach); sessions opened afterwards use it. */
void smtpd_set_observer(struct smtpd *srv, const struct session_observer *obs, void *arg);

/* session.c */
/* Start a session on an accepted, non-blocking socket; sends the
 * greeting. Takes over fd. listen_index selects cf->listen.v[i]. */
struct session *session_new(struct smtpd *srv, int fd, const struct sockaddr *peer,
                            socklen_t peerlen, size_t listen_index);
/* SIGTERM: idle sessions get "421 4.3.2" and close; those in DATA or
 * waiting for a commit finish first. */
void session_shutdown_all(struct smtpd *srv);
/* Grace period over: end every session now (a message being received is
 * dropped, a pending commit still completes). */
void session_abort_all(struct smtpd *srv);

/* The observer's greet_wait is over: the greeting goes on (session.c). */
void session_observer_ready(struct session *s);

/* Read-only facts for observers. */
const struct sockaddr *session_peer(const struct session *s);
const char *session_client_addr(const struct session *s);
/* The forward-confirmed name of the client, else "unknown" (also before
 * the lookup is over and with reverse_dns = no): log lines say
 * name[addr]. */
const char *session_client_name(const struct session *s);
/* The name the PTR record gave, confirmed or not; "" when none. */
const char *session_client_ptr(const struct session *s);
enum session_rdns session_client_rdns(const struct session *s);
int session_fd(const struct session *s);
int session_timing_enabled(const struct session *s);
const char *session_helo(const struct session *s);
int64_t session_connect_usec(const struct session *s);
int64_t session_last_reply_usec(const struct session *s);
int64_t session_last_command_usec(const struct session *s);
unsigned session_client_port(const struct session *s);
socklen_t session_peer_len(const struct session *s);
int session_esmtp(const struct session *s);
/* NULL before MAIL, "" for the null sender. */
const char *session_sender(const struct session *s);
size_t session_nrcpt(const struct session *s);
const char *session_rcpt(const struct session *s, size_t i);
/* Octets received and not taken yet. */
size_t session_input_pending(const struct session *s);
/* The transaction's message is being sent with BDAT (RFC 3030): its
 * octets follow each command at once, so input waiting at the decision
 * is not a body sent too early. */
int session_chunking(const struct session *s);
/* A reply is being held back (patience test). */
int session_holding(const struct session *s);
/* The queue ID of the message being received or just committed. */
const char *session_queue_id(const struct session *s);

#endif
