/*
 * conn.h: the bytes and timers under one outbound SMTP/LMTP session
 * (conn.c), private to src/smtp/: the bufferevent and its connect, the
 * switch to TLS, the reading of whole replies (proto.c assembles them),
 * one timer, and one event to tell the session's owner something from
 * the loop. client.c, which owns the dialogue, drives it and hears of its
 * events through struct smtp_conn_ops; conn.c knows nothing of the
 * dialogue.
 */
#ifndef TEMPOMX_SMTP_CONN_H
#define TEMPOMX_SMTP_CONN_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evbuffer;
struct smtp_reply;
struct smtp_conn;

/* What the connection reports, each with the arg given to
 * smtp_conn_new(). A callback may free the connection. */
struct smtp_conn_ops {
	void (*connected)(void *arg);       /* connect, or the TLS handshake, done */
	void (*readable)(void *arg);        /* input: smtp_conn_read_reply() */
	void (*drained)(void *arg);         /* the output went below its low mark */
	void (*broken)(void *arg, int err); /* closed (err 0) or failed (errno) */
	void (*timeout)(void *arg);         /* the timer of smtp_conn_arm() */
	void (*posted)(void *arg);          /* the event of smtp_conn_post() */
};

struct smtp_conn *smtp_conn_new(struct event_base *base, const struct smtp_conn_ops *ops,
                                void *arg);
/* Start connecting; -1 with errno when it fails at once. */
int smtp_conn_connect(struct smtp_conn *c, const struct sockaddr *sa, socklen_t len);
/* Go on under TLS (RFC 3207): what was read so far is dropped, then the
 * handshake; connected() when it is done, broken() if it fails (then
 * smtp_conn_tls_error() says why). verify: check the certificate against
 * ca_file and peer. -1 with why when TLS cannot even start. */
int smtp_conn_start_tls(struct smtp_conn *c, int verify, const char *ca_file, const char *peer,
                        char *why, size_t whylen);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once under TLS, else "". */
const char *smtp_conn_tls(const struct smtp_conn *c);
/* Why the TLS handshake failed. */
void smtp_conn_tls_error(struct smtp_conn *c, char *why, size_t whylen);

void smtp_conn_printf(struct smtp_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
struct evbuffer *smtp_conn_output(struct smtp_conn *c);
/* drained() when the output falls below low; 0: when it is empty. */
void smtp_conn_low_mark(struct smtp_conn *c, size_t low);
/* The next complete reply into *rp: 1, or 0 when more must be read, or
 * SMTP_CONN_MALFORMED when what came is no reply, SMTP_CONN_TOO_LONG for
 * a line without end beyond SMTP_REPLY_LINE_MAX. */
#define SMTP_CONN_MALFORMED (-1)
#define SMTP_CONN_TOO_LONG (-2)
int smtp_conn_read_reply(struct smtp_conn *c, struct smtp_reply *rp);

/* (Re)start the timer: timeout() in secs seconds (at least 1). */
void smtp_conn_arm(struct smtp_conn *c, int secs);
void smtp_conn_disarm(struct smtp_conn *c);
/* posted() from the loop, soon; the timer stops. */
void smtp_conn_post(struct smtp_conn *c);
void smtp_conn_unpost(struct smtp_conn *c);
/* No more reading, writing or timeouts. */
void smtp_conn_stop(struct smtp_conn *c);
/* Close (with a TLS close_notify if close_tls) and free. */
void smtp_conn_free(struct smtp_conn *c, int close_tls);

#endif
