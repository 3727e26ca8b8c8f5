/*
 * receive.h: the message of a session (receive.c), as server.c gives it
 * to session.c: srv->msg_ops = &receive_message_ops. Private to
 * src/smtpd/.
 *
 * receive.c calls session.c (replies, phases, the timer); session.c
 * reaches receive.c only through these ops, never by name.
 */
#ifndef TEMPOMX_SMTPD_RECEIVE_H
#define TEMPOMX_SMTPD_RECEIVE_H

#include "command.h"

struct evbuffer;
struct session;

/* start, input and release below, and BDAT's. */
extern const struct session_message_ops receive_message_ops;

/* DATA accepted by the state machine: spool file, Received:, 354. */
void session_data_start(struct session *s);
/* Feed input to the DATA parser; 1 when the end of data was reached. */
int session_data_input(struct session *s, struct evbuffer *in);
/* Drop a message being received; let a pending commit finish unseen. */
void session_release_message(struct session *s);
/* BDAT (RFC 3030): the command, its chunk's octets, the commands that
 * cannot follow it, the end of its transaction (the ops above). */
void session_bdat(struct session *s, const struct cmd_line *cmd);
int session_chunk_input(struct session *s, struct evbuffer *in);
int session_bdat_refused(struct session *s, enum cmd_verb verb);
void session_bdat_reset(struct session *s);

#endif
