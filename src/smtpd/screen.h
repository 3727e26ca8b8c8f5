/*
 * screen.h: smtpd's side of the timing classifier and the pre-acceptance
 * policy (src/classify/ does the judging, this glues it to the session).
 * Private to src/smtpd/.
 *
 *   screen.c     per session: exemptions, history look-up, the split
 *                banner and the delayed reply, evidence from the session's
 *                events, the decision at DATA, the class of the message,
 *                logging and the history record at the end
 *   admission.c  per process: queue depth and free disk, counted once a
 *                second, and the load-shedding answer at DATA
 *
 * The history store is opened once per smtpd process (after the fork);
 * its writes (which fsync) run in one writer thread, never on the event
 * loop.
 */
#ifndef TEMPOMX_SMTPD_SCREEN_H
#define TEMPOMX_SMTPD_SCREEN_H

#include <stdint.h>

#include "envelope.h"
#include "reply.h"
#include "smtpd.h"
#include "spool.h"

/* Process level (server.c). screen_server_init() also makes the
 * classifier the observer of every session (smtpd.h, struct
 * session_observer): the session asks and tells it everything through
 * that, never by name. */
void screen_server_init(struct smtpd *srv);
void screen_server_reload(struct smtpd *srv); /* SIGHUP: whitelists */
void screen_server_free(struct smtpd *srv);

/* admission.c */
void admission_init(struct smtpd *srv);
void admission_free(struct smtpd *srv);
/* RPL_NONE, or the 4xx for a transaction bound for hi (hi = 1) or lo. */
enum reply_id admission_check(struct smtpd *srv, int hi);

#endif
