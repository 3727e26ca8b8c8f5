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

enum session_state {
	S_GREETING, /* connected; the greeting is not complete */
	S_INIT,     /* greeting sent; HELO/EHLO expected */
	S_HELO,     /* HELO/EHLO accepted; no transaction */
	S_MAIL,     /* MAIL accepted */
	S_RCPT,     /* at least one RCPT accepted */
	S_DATA,     /* receiving the message after 354 */
	S_COMMIT,   /* end of data seen; waiting for the spool commit */
	S_STARTTLS, /* "220 Ready to start TLS" queued; waiting for it to flush */
	S_TLS,      /* TLS handshake in progress */
	S_CLOSING,  /* last reply queued; flushing it */
	S_LINGER,   /* write side shut down; reading until the client's FIN */
	S_DEAD,     /* freed from the next timer callback */
};

#define ST(s) (1u << (s))
/* States in which command lines are read and answered. */
#define ST_CMD (ST(S_INIT) | ST(S_HELO) | ST(S_MAIL) | ST(S_RCPT))

/* "HELO", "DATA" ... for logs and the live gauges (connection.c). */
const char *session_state_name(enum session_state st);

struct session {
	struct smtpd *srv;
	struct session *prev, *next; /* srv->sessions */
	enum session_state state;
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
	const char *cur_what; /* command being answered, for reject logs */
	const char *cur_rcpt; /* recipient being answered, for reject logs */

	/* timing evidence (mono_usec) */
	int64_t connect_usec, last_reply_usec, last_flush_usec, last_read_usec, last_cmd_usec;
	size_t pregreet_seen;
	const struct session_observer *obs;
	void *obs_ctx;
	struct screen *scr; /* classifier state (screen.c) */
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

/* session.c */
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
