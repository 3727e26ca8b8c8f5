/*
 * gauges.h: smtpd's live gauges (src/smtpd/gauges.c): the open sessions
 * and their states, written once a second for tempomxctl.
 */
#ifndef TEMPOMX_GAUGES_H
#define TEMPOMX_GAUGES_H

struct smtpd;
struct gauges;

/* Start writing <spool>/SMTPD_GAUGES_FILE (stats.h) every second. */
struct gauges *gauges_new(struct smtpd *srv);
/* Stop, and remove the file: no sessions are open any more. */
void gauges_free(struct gauges *g);

#endif
