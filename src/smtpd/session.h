/*
 * session.h: struct session and the functions of the files above the
 * transport that make up one client's SMTP session. Private to
 * src/smtpd/.
 *
 *   receive.c     the message: envelope, Received: header, DATA stream
 *                 or BDAT chunks into the spool file, commit and its reply
 *   session.c     the SMTP state machine: command table, handlers,
 *                 replies, the greeting, line framing; the session's life
 *                 cycle and the client's name (asked of rdns.c at connect)
 *   session_facts.c  the read-only facts observers and log lines ask
 *                 for (smtpd.h's getters); calls nothing
 *   connection.c  the transport: bufferevents, timers, STARTTLS switch,
 *                 closing and lingering (connection.h)
 *
 * Calls go one way, down that list. receive.c calls session.c; session.c
 * hands the message over through the message ops server.c gave it
 * (srv->msg_ops, struct session_message_ops, from receive.h). session.c
 * calls connection.c, which reports back through the struct
 * connection_ops session.c gave it and does not include this header (it
 * never sees struct session). None of them calls server.c: a destroyed
 * session is reported through srv->session_gone.
 */
#ifndef TEMPOMX_SMTPD_SESSION_H
#define TEMPOMX_SMTPD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "command.h"
#include "connection.h"
#include "data.h"
#include "dsn.h"
#include "hdrfilter.h"
#include "rdnsname.h"
#include "reply.h"
#include "smtpd.h"
#include "spool.h"
#include "verify.h"

struct evbuffer;
struct verify_probe;
struct rdns_query;

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

struct session {
	struct smtpd *srv;
	struct session *prev, *next; /* srv->sessions */
	enum smtp_phase phase;       /* session.c: session_set_phase() */
	/* The transport (connection.c): conn.io, conn.bev, conn.fd, the
	 * timer; conn.last_read_usec, conn.last_flush_usec. */
	struct connection conn;
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
	int smtputf8; /* MAIL gave SMTPUTF8: UTF-8 addresses (RFC 6531) */
	char **rcpts;
	size_t nrcpt, rcptcap;
	/* DSN (RFC 3461): MAIL's RET and ENVID; each recipient's NOTIFY and
	 * ORCPT (rcpt_dsn[i] for rcpts[i]); those of the RCPT being
	 * verified. */
	struct dsn_mail dsn;
	struct dsn_rcpt *rcpt_dsn;
	struct dsn_rcpt cur_dsn;

	/* message being received, then committed (receive.c) */
	struct spool_file sf;
	int sf_open;
	int commit_pending;
	struct data_parser dp;
	struct hdr_filter hf; /* between dp and the spool file */
	uint64_t hdrlen;      /* our Received: header */
	char id[QUEUEID_SIZE];
	/* BDAT (RFC 3030, receive.c). A transaction whose message comes in
	 * chunks stays in PH_RCPT with chunking set until BDAT LAST. A
	 * chunk is read in the command phase it was announced in, kept or
	 * discarded, under the data timeout; no command is taken meanwhile. */
	int chunking;             /* the spool file is open for BDAT chunks */
	int chunk_active;         /* reading a chunk's octets */
	int chunk_store;          /* they go to the message (else discarded) */
	int chunk_last;           /* the chunk ends the message */
	uint64_t chunk_size;      /* octets of the chunk */
	uint64_t chunk_left;      /* of which still to read */
	uint64_t chunk_total;     /* octets of the transaction's chunks so far */
	int64_t chunk_start_usec; /* the BDAT line, for data_min_rate (slots.c) */

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
	int64_t connect_usec, last_reply_usec, last_cmd_usec;
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
	return s->conn.io == IO_OPEN && (PH(s->phase) & phases) != 0;
}
/* Closing, lingering or dead: nothing more is said to the client. */
static inline int session_ending(const struct session *s)
{
	return connection_ending(&s->conn);
}

/* The message, as session.c hands it over (receive.c's, given in
 * srv->msg_ops by server.c). */
struct session_message_ops {
	/* DATA accepted by the state machine: spool file, Received:, 354. */
	void (*start)(struct session *s);
	/* Feed input to the DATA parser; 1 when the end of data was reached. */
	int (*input)(struct session *s, struct evbuffer *in);
	/* Drop a message being received; let a pending commit finish unseen. */
	void (*release)(struct session *s);
	/* BDAT (RFC 3030), in any command phase: the chunk that follows is
	 * read whatever the answer. */
	void (*bdat)(struct session *s, const struct cmd_line *cmd);
	/* Read the octets of the chunk in progress (s->chunk_active); 1 when
	 * the chunk is complete and answered, 0 when more input is needed. */
	int (*chunk_input)(struct session *s, struct evbuffer *in);
	/* A command that cannot follow BDAT in its transaction (MAIL, RCPT,
	 * DATA): answered 503 and the message dropped; returns 1 then. */
	int (*bdat_refused)(struct session *s, enum cmd_verb verb);
	/* The transaction ends: drop a message sent in chunks so far. */
	void (*bdat_reset)(struct session *s);
};

/* session.c */
/* The one place the phase changes; an unlisted transition is a bug. */
void session_set_phase(struct session *s, enum smtp_phase to);
/* What the transport reports while it is open (connection.c, through
 * the connection_ops session.c gives it): input arrived; the output
 * drained; the session timer fired; the client half-closed (returns 1
 * when the dialogue goes on to answer what it sent, 0 when the session is
 * to be ended). */
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

/* The transport under the session (session.c, on connection.c). */
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
