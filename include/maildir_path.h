/*
 * maildir_path.h: the Maildir of an address, from the "maildir" template
 * (tempomx.conf(5)). Shared by delivery, which writes there, and by
 * smtpd, which checks that a local user's Maildir exists. Defined in
 * src/common/maildir_path.c (libtmx_common).
 */
#ifndef TEMPOMX_MAILDIR_PATH_H
#define TEMPOMX_MAILDIR_PATH_H

#include <stddef.h>

/* Expand template tmpl for address addr ("local@domain", or a bare local
 * part). %u is the local part and %d the domain, both lower-cased (ASCII
 * letters only: UTF-8 local parts are used octet for octet, a U-label
 * domain in its A-label form); %a is the whole address lower-cased; %% is
 * a '%'. In what an address puts
 * into the path, '/' becomes '_' and a leading '.' becomes '_', so an
 * address can never climb out of its directory or name a hidden folder.
 * Returns 0 with the path in out (trailing '/' removed), or -1 with a
 * reason in err. */
int maildir_expand(const char *tmpl, const char *addr, char *out, size_t size, char *err,
                   size_t errlen);

#endif
