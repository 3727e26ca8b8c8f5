/*
 * localuser.h: which local parts of a local domain exist, and which
 * recipient local parts carry routing characters (src/smtpd/localuser.c).
 *
 * Called by session.c at RCPT, after relay control and before recipient
 * verification.
 */
#ifndef TEMPOMX_LOCALUSER_H
#define TEMPOMX_LOCALUSER_H

#include "addr.h"
#include "conf.h"

/* 1 when the Maildir of addr (user@domain, as delivery would write to
 * it: the maildir template) is an existing directory, else 0. */
int localuser_has_maildir(const struct config *cf, const char *addr);

/* 1 when the local part of a holds '%', '!' or (quoted) '@': characters
 * that some next hops read as a route to another host. */
int localuser_has_routing(const struct mailaddr *a);

#endif
