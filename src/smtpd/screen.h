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

struct session;

/* Which reply the patience test may delay (config patience_reply). */
enum screen_reply { SCREEN_REPLY_RCPT = 0, SCREEN_REPLY_MAIL = 1, SCREEN_REPLY_HELO = 2 };

/* Process level (server.c). */
void screen_server_init(struct smtpd *srv);
void screen_server_reload(struct smtpd *srv); /* SIGHUP: whitelists */
void screen_server_free(struct smtpd *srv);

/* Session level. */
void screen_open(struct session *s);
void screen_close(struct session *s);
/* Seconds of the banner pause for this client (0: whole banner). */
int64_t screen_greet_pause(const struct session *s);
void screen_event(struct session *s, const struct session_event *ev);
void screen_helo(struct session *s);
void screen_non_smtp(struct session *s, const char *what);
/* The reply which is about to be sent: seconds to hold it, 0 for none. */
int64_t screen_patience(struct session *s, enum screen_reply which);
/* The held reply went out (closed = 0) or the client left (closed = 1). */
void screen_patience_over(struct session *s, int closed, int spoke);
/* DATA: the decision before the 354. RPL_NONE accepts. */
enum reply_id screen_data(struct session *s);
/* The accepted message: its queue and envelope fields. */
enum spool_queue screen_queue(const struct session *s);
void screen_envelope(const struct session *s, struct envelope *env);
void screen_committed(struct session *s, int ok);

/* admission.c */
void admission_init(struct smtpd *srv);
void admission_free(struct smtpd *srv);
/* RPL_NONE, or the 4xx for a transaction bound for hi (hi = 1) or lo. */
enum reply_id admission_check(struct smtpd *srv, int hi);

#endif
