/*
 * pickup.h: local submission (src/smtpd/pickup.c): messages that
 * tempomx-sendmail leaves in maildrop_directory are taken into the queue
 * by smtpd, like mail received by SMTP.
 *
 * The maildrop itself (its format, its permissions and its creation by
 * the master) is described in include/maildrop.h. The file's owner (from
 * fstat, not from the file) is logged and named in the Received: line.
 * An address without a domain gets the first of local_domains (or
 * hostname). A file that cannot be taken (bad format, too large) is
 * renamed to ".bad.NAME" and logged; one whose queue file could not be
 * written stays for the next pass.
 */
#ifndef TEMPOMX_PICKUP_H
#define TEMPOMX_PICKUP_H

#include <stddef.h>
#include <sys/types.h>

#define PICKUP_INTERVAL_MS 500

struct smtpd;
struct pickup;

/* smtpd: look into the maildrop every PICKUP_INTERVAL_MS. NULL when the
 * directory cannot be opened (logged). */
struct pickup *pickup_new(struct smtpd *srv);
/* Call after the commit pool is freed (its callbacks use the pickup). */
void pickup_free(struct pickup *p);

#endif
