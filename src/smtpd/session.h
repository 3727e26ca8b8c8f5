/*
 * session.h: struct session and the functions shared by the three files
 * that make up one client's SMTP session. Private to src/smtpd/.
 *
 *   session.c     the SMTP state machine: command table, handlers,
 *                 replies, the greeting, line framing
 *   receive.c     the message: envelope, Received: header, DATA stream
 *                 into the spool file, commit and its reply
 *   connection.c  the transport: bufferevents, timers, STARTTLS switch,
 *                 closing and lingering, life cycle, the client's name
 *                 (asked of rdns.c at connect)
 */
#ifndef TEMPOMX_SMTPD_SESSION_H
#define TEMPOMX_SMTPD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "command.h"
#include "data.h"
#include "hdrfilter.h"
#include "rdnsname.h"
#include "reply.h"
#include "smtpd.h"
#include "spool.h"
#include "verify.h"

struct bufferevent;
struct evbuffer;
struct event;
struct verify_probe;
struct rdns_query;

/* Input kept while we are not consuming it (commit pending, output
 * stalled); libevent stops reading beyond this. */
#define SESSION_INPUT_MAX (64 * 1024)
/* Replies the client has not read yet before we stop taking commands. */
#define SESSION_OUTPUT_MAX (64 * 1024)
/* Seconds to get the last reply out, then to wait for the client's FIN. */
#define SESSION_FLUSH_TIMEOUT 30
#define SESSION_LINGER_TIMEOUT 2

/* The phase of the SMTP dialogue. session.c owns it: every change goes
 * through session_set_phase(), which checks it against the table of
 * allowed transitions beside the command table. */
enum smtp_phase {
	PH_GREETING, /* connected; the greeting is not complete */
	PH_INIT,     /* greeting sent; HELO/EHLO expected */
	PH_HELO,     /* HELO/EHLO accepted; no transaction */
	PH_MAIL,     /* MAIL accepted */
	PH_RCPT,     /* at least one RCPT accepted */
	PH_DATA,     /* receiving the message after 354 */
	PH_COMMIT,   /* end of data seen; waiting for the spool commit */
};
#define PH_NPHASES (PH_COMMIT + 1)
#define PH(p) (1u << (p))
/* Phases in which command lines are read and answered. */
#define PH_CMD (PH(PH_INIT) | PH(PH_HELO) | PH(PH_MAIL) | PH(PH_RCPT))

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

struct session {
	struct smtpd *srv;
	struct session *prev, *next; /* srv->sessions */
	enum smtp_phase phase;       /* session.c: session_set_phase() */
	enum io_state io;            /* connection.c */
	int fd;
	struct bufferevent *bev;
	int bev_tls; /* bev is a TLS bufferevent */
	struct event *timer;
	struct event *linger;
	size_t listen_index;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char addr[64]; /* numeric client address */
	unsigned port;
	/* The client's name (rdns.c): forward-confirmed, else "unknown";
	 * what its PTR said, confirmed or not; how the lookup went. */
	char name[RDNSNAME_MAX + 1];
	char ptr[RDNSNAME_MAX + 1];
	enum session_rdns rdns;
	struct rdns_query *rdns_query; /* under way; the final greeting waits */
	int greet_pause_over;          /* the split banner's pause is over */
	int greet_waiting;             /* the observer's greet_wait is not over */
	int connect_logged;            /* "connect from" is in the log */

	char *helo;
	int esmtp;      /* EHLO (not HELO) was accepted */
	int tls_active; /* handshake completed */
	char *tls_desc; /* for the envelope */

	/* transaction */
	char *sender; /* "" for <>; NULL before MAIL */
	enum cmd_body body;
	char **rcpts;
	size_t nrcpt, rcptcap;

	/* message being received, then committed (receive.c) */
	struct spool_file sf;
	int sf_open;
	int commit_pending;
	struct data_parser dp;
	struct hdr_filter hf; /* between dp and the spool file */
	uint64_t hdrlen;      /* our Received: header */
	char id[QUEUEID_SIZE];

	int discarding; /* inside a command line longer than 512 octets */
	int stalled;    /* stopped taking commands until the output drains */
	int quit;
	int peer_eof;
	unsigned errors, ncommands, nmessages;
	unsigned junk_commands;  /* since the last accepted message (slots.c) */
	int64_t data_start_usec; /* the 354, for data_min_rate (slots.c) */
	const char *cur_what;    /* command being answered, for reject logs */
	const char *cur_rcpt;    /* recipient being answered, for reject logs */

	/* timing evidence (mono_usec) */
	int64_t connect_usec, last_reply_usec, last_flush_usec, last_read_usec, last_cmd_usec;
	size_t pregreet_seen;
	const struct session_observer *obs;
	void *obs_ctx;
	/* A reply held back by the patience test, sent when the timer fires. */
	char *held;
	size_t held_len;
	int held_code;
	/* The RCPT being verified with the mail store (verify.c); no
	 * command is taken until its answer is sent. */
	struct verify_probe *verify;
};

/* The current settings. Never cached in a session: SIGHUP swaps them in
 * place, so every check reads them afresh. */
static inline const struct config *session_cf(const struct session *s)
{
	return s->srv->rt->cf;
}

/* The state for logs and gauges: the phase while the transport is open,
 * else the transport's state; index 0 .. SESSION_NSTATES - 1. */
#define SESSION_NSTATES (PH_NPHASES + IO_DEAD)
int session_state_index(const struct session *s);
const char *session_state_name(int index);
/* In one of the phases (PH() bits) with the transport open. */
static inline int session_in(const struct session *s, unsigned phases)
{
	return s->io == IO_OPEN && (PH(s->phase) & phases) != 0;
}
/* Closing, lingering or dead: nothing more is said to the client. */
static inline int session_ending(const struct session *s)
{
	return s->io == IO_CLOSING || s->io == IO_LINGER || s->io == IO_DEAD;
}

/* session.c */
/* The one place the phase changes; an unlisted transition is a bug. */
void session_set_phase(struct session *s, enum smtp_phase to);
/* What the transport reports while it is open (connection.c): input
 * arrived; the output drained; the session timer fired; the client
 * half-closed (returns 1 when the dialogue goes on to answer what it
 * sent, 0 when the session is to be ended). */
void session_input(struct session *s);
void session_output_drained(struct session *s);
void session_timeout(struct session *s);
int session_peer_closed(struct session *s);
/* The TLS handshake after STARTTLS completed: the dialogue starts over. */
void session_tls_started(struct session *s);
void session_notify(struct session *s, struct session_event *ev);
void session_notify_type(struct session *s, enum session_event_type type);
/* The one place every reply leaves from (queued on the output). */
void session_emit(struct session *s, int code, const char *text, size_t len);
/* A reply from the table; counts errors, logs rejections, closes after
 * 421 and after too many errors. */
void session_reply(struct session *s, enum reply_id id, const char *arg);
void session_reset_transaction(struct session *s);
/* The answer of the recipient verification of the RCPT that s is
 * waiting on (called from verify.c's callbacks, never from inside
 * session_process). */
void session_rcpt_verified(struct session *s, const char *addr, enum verify_result r);
/* session_emit(), unless the patience test holds this reply back. */
void session_emit_patient(struct session *s, int which, int code, const char *text, size_t len);
/* The held reply goes out now. */
void session_release_held(struct session *s);
/* Send the greeting, in two parts when pause_seconds > 0. The final
 * line goes when the pause is over and the client's name is known. */
void session_greet(struct session *s, int64_t pause_seconds);
/* The pause is over: the final line, unless the name is still awaited
 * (then it goes from session_name_known). */
void session_greet_final(struct session *s);
/* Back in a command state: 421 if shutting down, else arm the command
 * timeout; 1 when commands may be taken. */
int session_ready(struct session *s);
/* session_ready(), then run the commands already received (not to be
 * called from inside session_process). */
void session_idle(struct session *s);
/* Run what the input holds, as far as the state allows. */
void session_process(struct session *s);
const char *session_protocol(const struct session *s);

/* receive.c */
/* DATA accepted by the state machine: spool file, Received:, 354. */
void session_data_start(struct session *s);
/* Feed input to the DATA parser; 1 when the end of data was reached. */
int session_data_input(struct session *s, struct evbuffer *in);
/* Drop a message being received; let a pending commit finish unseen. */
void session_release_message(struct session *s);

/* connection.c */
void session_timer(struct session *s, int64_t seconds);
/* Arm the timeout that applies while waiting for the client. */
void session_arm(struct session *s);
/* The last reply is queued: flush it, then close. */
void session_close(struct session *s);
/* Stop all I/O now; freed from the next loop iteration. */
void session_kill(struct session *s);
/* STARTTLS accepted: drop what follows in the clear and stop reading. */
void session_tls_prepare(struct session *s);

#endif
