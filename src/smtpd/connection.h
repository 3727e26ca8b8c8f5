/*
 * connection.h: the transport under a session (connection.c): the
 * socket's bufferevent, the one timer, the switch to TLS after STARTTLS,
 * closing and lingering. Private to src/smtpd/.
 *
 * Calls go one way: session.c calls the functions below, and connection.c
 * reaches the session only through the callbacks it was given (struct
 * connection_ops, with their argument); it never sees struct session.
 */
#ifndef TEMPOMX_SMTPD_CONNECTION_H
#define TEMPOMX_SMTPD_CONNECTION_H

#include <stdint.h>

struct bufferevent;
struct event;
struct smtpd;

/* Input kept while we are not consuming it (commit pending, output
 * stalled); libevent stops reading beyond this. */
#define SESSION_INPUT_MAX (64 * 1024)
/* Replies the client has not read yet before we stop taking commands. */
#define SESSION_OUTPUT_MAX (64 * 1024)
/* Seconds to get the last reply out, then to wait for the client's FIN. */
#define SESSION_FLUSH_TIMEOUT 30
#define SESSION_LINGER_TIMEOUT 2

/* The transport under the dialogue. connection.c owns it; the phase
 * stays what it was while the transport switches to TLS or closes. */
enum io_state {
	IO_OPEN,     /* reading and writing: the phase applies */
	IO_STARTTLS, /* "220 Ready to start TLS" queued; waiting for it to flush */
	IO_TLS,      /* TLS handshake in progress */
	IO_CLOSING,  /* last reply queued; flushing it */
	IO_LINGER,   /* write side shut down; reading until the client's FIN */
	IO_DEAD,     /* freed from the next timer callback */
};

/* What the transport reports to the session above it; each gets the arg
 * given to connection_init(). The first five only while it is open. */
struct connection_ops {
	void (*input)(void *arg);   /* input arrived */
	void (*drained)(void *arg); /* the output drained */
	void (*timeout)(void *arg); /* the session timer fired */
	/* The client half-closed: 1 when the dialogue goes on to answer
	 * what it sent, 0 when the connection is to be ended. */
	int (*peer_closed)(void *arg);
	/* The TLS handshake after STARTTLS completed (the transport is
	 * open again): the dialogue starts over. */
	void (*tls_started)(void *arg);
	/* Every write to the socket (last_flush_usec is its time). */
	void (*flushed)(void *arg);
	/* The timer is to be armed for waiting on the client (TLS states). */
	void (*arm)(void *arg);
	/* An error or end of file, before the line that says what it was. */
	void (*ending)(void *arg);
	/* The connection was lost in the middle of the dialogue. */
	void (*lost)(void *arg);
	/* All I/O stopped (connection_kill()); freed from the next loop
	 * iteration. */
	void (*killed)(void *arg);
	/* The deferred free is due: the session frees itself, calling
	 * connection_free() on the way. */
	void (*dead)(void *arg);
};

struct connection {
	const struct connection_ops *ops;
	void *arg;
	struct smtpd *srv; /* the event base, the TLS context, the settings */
	enum io_state io;
	int fd;
	struct bufferevent *bev;
	int bev_tls;  /* bev is a TLS bufferevent */
	int tls_done; /* its handshake completed */
	struct event *timer;
	struct event *linger;
	/* The client, for log lines: name[addr]:port (the session's). */
	const char *name, *addr;
	unsigned port;
	int64_t last_read_usec, last_flush_usec; /* mono_usec() */
};

/* Take over the non-blocking socket fd: its bufferevent and the timer,
 * reading and writing. */
void connection_init(struct connection *c, struct smtpd *srv, int fd,
                     const struct connection_ops *ops, void *arg, const char *name,
                     const char *addr, unsigned port);
/* Free the bufferevent, the events and the socket. */
void connection_free(struct connection *c);
void connection_timer(struct connection *c, int64_t seconds);
/* Arm the timer for usec microseconds; stop it. */
void connection_timer_usec(struct connection *c, int64_t usec);
void connection_timer_stop(struct connection *c);
/* The last reply is queued: flush it, then close. */
void connection_close(struct connection *c);
/* Stop all I/O now; freed from the next loop iteration. */
void connection_kill(struct connection *c);
/* STARTTLS accepted: drop what follows in the clear and stop reading. */
void connection_tls_prepare(struct connection *c);
/* Closing, lingering or dead: nothing more is said to the client. */
static inline int connection_ending(const struct connection *c)
{
	return c->io == IO_CLOSING || c->io == IO_LINGER || c->io == IO_DEAD;
}

#endif
