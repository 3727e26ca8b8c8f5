/*
 * pickup.h: local submission (src/smtpd/pickup.c): messages that
 * tempomx-sendmail leaves in maildrop_directory are taken into the queue
 * by smtpd, like mail received by SMTP.
 *
 * The maildrop belongs to the user the children run as, mode 1733: any
 * local user may create a file there, nobody but that user may list or
 * remove other people's files. A file is written under a name starting
 * with "." and renamed to its final name once it is complete and flushed,
 * so pickup never reads half a file. Its format:
 *
 *   tempomx-maildrop 1
 *   sender ADDR            (empty: the null sender)
 *   rcpt ADDR              (one line per recipient, at least one)
 *   end
 *   the message, with LF or CR LF line ends
 *
 * The file's owner (from fstat, not from the file) is logged and named
 * in the Received: line. An address without a domain gets the first of
 * local_domains (or hostname). A file that cannot be taken (bad format,
 * too large) is renamed to ".bad.NAME" and logged; one whose queue file
 * could not be written stays for the next pass.
 */
#ifndef TEMPOMX_PICKUP_H
#define TEMPOMX_PICKUP_H

#include <stddef.h>
#include <sys/types.h>

#define PICKUP_MAGIC "tempomx-maildrop 1"
#define PICKUP_INTERVAL_MS 500

struct smtpd;
struct pickup;

/* Master, at start-up, as root: create the maildrop directory (mode 1733,
 * owned by uid/gid) or check an existing one. Returns 0 or -1 with err. */
int pickup_prepare(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen);
/* smtpd: look into the maildrop every PICKUP_INTERVAL_MS. NULL when the
 * directory cannot be opened (logged). */
struct pickup *pickup_new(struct smtpd *srv);
/* Call after the commit pool is freed (its callbacks use the pickup). */
void pickup_free(struct pickup *p);

#endif
