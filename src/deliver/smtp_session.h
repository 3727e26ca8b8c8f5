/*
 * smtp_session.h: the inside of an outbound SMTP/LMTP session, shared by
 * smtp_client.c (the connection: connect, greeting, EHLO, STARTTLS, idle,
 * QUIT, the bufferevent callbacks, the owner's notifications) and
 * smtp_xact.c (one transaction: envelope, body, replies to the dot).
 * Nothing else includes it: remote.c uses smtp_client.h.
 */
#ifndef TEMPOMX_SMTP_SESSION_H
#define TEMPOMX_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smtp_client.h"
#include "smtp_proto.h"

struct bufferevent;
struct event;

#define SMTP_CHUNK 65536
/* The body is refilled when the output drops below LOW, up to HIGH. */
#define SMTP_OUT_LOW (64 * 1024)
#define SMTP_OUT_HIGH (256 * 1024)

enum smtp_state {
	ST_CONNECT,
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS,
	ST_TLS,
	ST_EHLO2, /* after TLS */
	ST_IDLE,
	ST_XACT,  /* envelope replies: [RSET] MAIL RCPT... DATA */
	ST_BODY,  /* sending the message */
	ST_DOT,   /* waiting for the reply(s) to the final dot */
	ST_EMPTY, /* DATA accepted without a recipient: the dot's reply */
	ST_QUIT,
	ST_DEAD,
};

struct smtp_session {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;
	struct event *notify;
	enum smtp_state st;
	smtp_cb cb;
	void *arg;
	int note; /* the enum smtp_event notify will deliver, 0 = none */
	void (*gone)(void *);
	void *gone_arg;

	/* Settings. */
	int lmtp, policy, command_timeout, data_timeout;
	char helo[256], peer[256], ca_file[1024];
	char relay[300];
	char tls[128];

	struct smtp_caps caps;
	int esmtp;
	int dirty; /* a transaction was begun and not finished: RSET */
	int dead;
	struct smtp_reply rp;
	int fail_code;
	char fail_text[700];

	/* The transaction. */
	const struct smtp_message *m;
	struct smtp_result *res;
	char *accepted_v;
	size_t accepted;
	size_t rset; /* 1 if the transaction starts with RSET */
	size_t ncmd, sent, answered;
	int pipe;
	int mail_failed;
	size_t lmtp_next;
	/* The body. */
	off_t off;
	uint64_t left;
	int bol;
	char last;
	char *chunk, *stuffed;
};

/* smtp_client.c */
/* Tell the owner ev, from the loop (never from inside the caller). */
void sess_notify(struct smtp_session *s, enum smtp_event ev);
/* (Re)start the timeout of the current state: secs seconds. */
void sess_arm(struct smtp_session *s, int secs);
void sess_printf(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The connection is unusable from now on; no more events. */
void sess_kill(struct smtp_session *s);
/* The session failed as a whole (SMTP_FAILED), with a reply of ours or
 * the server's last one. */
void sess_fail_local(struct smtp_session *s, int code, const char *enh, const char *what);
void sess_fail_reply(struct smtp_session *s, const char *when);
/* Give every recipient without a code this one. */
void sess_fill_undecided(struct smtp_session *s, int code, const char *text);
/* The transaction is over (SMTP_DONE); the session idles if alive. */
void sess_done(struct smtp_session *s);

/* smtp_xact.c: the replies of ST_XACT and ST_DOT, and refilling the
 * output in ST_BODY. */
void xact_reply(struct smtp_session *s);
void xact_dot_reply(struct smtp_session *s);
void xact_pump(struct smtp_session *s);

#endif
