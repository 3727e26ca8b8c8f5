/*
 * admission.h: smtpd's admission control (admission.c): the queue depth
 * and the free disk, counted once a second, and the load-shedding answer
 * the classifier gives at DATA. Private to src/smtpd/.
 */
#ifndef TEMPOMX_SMTPD_ADMISSION_H
#define TEMPOMX_SMTPD_ADMISSION_H

#include "reply.h"
#include "smtpd.h"

void admission_init(struct smtpd *srv);
void admission_free(struct smtpd *srv);
/* RPL_NONE, or the 4xx for a transaction bound for hi (hi = 1) or lo. */
enum reply_id admission_check(struct smtpd *srv, int hi);

#endif
