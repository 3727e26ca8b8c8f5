/*
 * slots.h: how long, and how many at once, clients may hold connection
 * slots (src/smtpd/slots.c).
 *
 * Called by connection.c (the time a session may wait), session.c (junk
 * commands) and server.c (which clients share a per-client limit, and the
 * limits under stress).
 */
#ifndef TEMPOMX_SLOTS_H
#define TEMPOMX_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "conf.h"

struct session;
struct smtpd;

/* 1 when the server is near max_connections (stress_threshold). */
int slots_stressed(const struct smtpd *srv);
/* The microseconds the session may now wait for the client, given the
 * timeout of its state (seconds): capped by stress_timeout under stress,
 * by what is left of session_time_limit, and in DATA or a BDAT chunk by
 * the data deadline (data_min_rate). */
int64_t slots_wait_usec(const struct session *s, int64_t timeout);
/* 1 when the session has used up its session_time_limit. */
int slots_session_expired(const struct session *s);
/* Count a command that moves no mail (NOOP, RSET, VRFY, HELP, EXPN,
 * ETRN); 1 when the session is over junk_command_limit. */
int slots_junk_command(struct session *s, enum cmd_verb verb);
/* The per-client limit in force (lower under stress). */
int64_t slots_per_client(const struct smtpd *srv);
/* The key clients share a per-client limit under: the address, or its
 * network (connection_limit_v4_prefix, connection_limit_v6_prefix). */
void slots_client_key(const struct config *cf, const char *addr, char *out, size_t size);

#endif
