/*
 * maildrop.h: the maildrop, where local programs leave mail for the
 * queue: tempomx-sendmail (src/sendmail/) writes a file, smtpd's pickup
 * (src/smtpd/pickup.c) takes it in, the master prepares the directory
 * (src/common/maildrop.c).
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
 */
#ifndef TEMPOMX_MAILDROP_H
#define TEMPOMX_MAILDROP_H

#include <stddef.h>
#include <sys/types.h>

/* The first line of every maildrop file. */
#define MAILDROP_MAGIC "tempomx-maildrop 1"

/* Master, at start-up, as root: create the maildrop directory (mode 1733,
 * owned by uid/gid) or check an existing one. Returns 0 or -1 with err. */
int maildrop_prepare(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
