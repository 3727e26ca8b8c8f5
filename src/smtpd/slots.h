/*
 * slots.h: how long, and how many at once, clients may hold connection
 * slots (src/smtpd/slots.c).
 *
 * Called by session.c (the time a session may wait, junk commands, the
 * session's time limit) and server.c (which clients share a
 * per-client limit, and the limits under stress). It answers with return
 * values and never calls back: the callers pass in what it needs of the
 * session.
 */
#ifndef TEMPOMX_SLOTS_H
#define TEMPOMX_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "conf.h"

struct smtpd;

/* A session's deadlines, as slots_wait_usec() needs them. */
struct slots_clock {
	int64_t connect_usec;    /* mono_usec() at the connect */
	int in_data;             /* receiving the message (after the 354, or a BDAT chunk) */
	int64_t data_start_usec; /* the 354 (in_data) */
	uint64_t data_octets;    /* octets of the message so far (in_data) */
};

/* 1 when the server is near max_connections (stress_threshold). */
int slots_stressed(const struct smtpd *srv);
/* The microseconds a session (its clock c) may now wait for the client,
 * given the timeout of its state (seconds): capped by stress_timeout
 * under stress, by what is left of session_time_limit, and in DATA by the
 * data deadline (data_min_rate). */
int64_t slots_wait_usec(const struct smtpd *srv, const struct slots_clock *c, int64_t timeout);
/* 1 when a session that connected at connect_usec has used up its
 * session_time_limit. */
int slots_session_expired(const struct smtpd *srv, int64_t connect_usec);
/* Count (in *count, the session's) a command that moves no mail (NOOP,
 * RSET, VRFY, HELP, EXPN, ETRN); 1 when the session is over
 * junk_command_limit. */
int slots_junk_command(const struct smtpd *srv, unsigned *count, enum cmd_verb verb);
/* The per-client limit in force (lower under stress). */
int64_t slots_per_client(const struct smtpd *srv);
/* The key clients share a per-client limit under: the address, or its
 * network (connection_limit_v4_prefix, connection_limit_v6_prefix). */
void slots_client_key(const struct config *cf, const char *addr, char *out, size_t size);

#endif
