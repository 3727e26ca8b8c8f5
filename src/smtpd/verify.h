/*
 * verify.h: recipient verification against the mail store or the primary
 * MX (verify.c).
 *
 * With recipient_verify = lmtp:..., smtpd asks the LMTP server that holds
 * the mailboxes (Dovecot, Cyrus) whether a recipient of a local domain
 * exists; with recipient_verify = smtp:[addr]:port, a backup MX asks its
 * primary about the recipients of the relay domains. Either way with the
 * one outbound client (smtp.h): LHLO or EHLO, MAIL FROM:<>, RCPT
 * TO:<addr>, RSET, and the client's RCPT is answered with what it learnt:
 * unknown users get 550 5.1.1 at RCPT instead of a bounce later (no
 * backscatter). Answers are cached.
 *
 * The session (session.c) calls verify_rcpt() from its RCPT handler. When
 * the answer is not known at once, it stops taking commands until the
 * answer callback it gave (struct verify_asker) brings it, always from a
 * callback of verify.c's own (never from inside verify_rcpt()), so
 * pipelined replies stay in order. server.c calls verify_init(),
 * verify_reload() on SIGHUP and verify_free(); session.c calls
 * verify_cancel() when a session dies. verify.c calls none of them: it
 * answers through the callback only.
 */
#ifndef TEMPOMX_SMTPD_VERIFY_H
#define TEMPOMX_SMTPD_VERIFY_H

#include "addr.h"

struct smtpd;
struct verify;
struct verify_probe;

enum verify_result {
	VERIFY_ACCEPT = 0, /* known to the store, or no verification applies */
	VERIFY_UNKNOWN,    /* the target refused it: 550 5.1.1 */
	VERIFY_TEMPFAIL,   /* the target could not be asked: 451 4.4.3 */
	VERIFY_PENDING,    /* asked; the asker's answer callback brings it */
};

/* Who asks about a recipient, and where the answer goes. */
struct verify_asker {
	/* The client, for log lines; valid while the question is pending. */
	const char *name; /* session_client_name() */
	const char *addr;
	unsigned port;
	/* The answer, after verify_rcpt() said VERIFY_PENDING; by then
	 * *probe is NULL again. Never called after verify_cancel(). */
	void (*answer)(void *arg, const char *addr, enum verify_result r);
	void *arg;
	/* Where the asker keeps its pending question (NULL when none). */
	struct verify_probe **probe;
};

/* The verification of addr (a as parsed) for who (v: srv->verify).
 * Applies, when recipient_verify is set, to the local domains (an lmtp:
 * target) or the relay domains (an smtp: target); never to postmaster.
 * VERIFY_PENDING: the question is in *who->probe until answered. */
enum verify_result verify_rcpt(struct verify *v, const struct verify_asker *who,
                               const struct mailaddr *a, const char *addr);
/* The asker is going away: forget its pending question *probe, if any,
 * and clear it (the answer, when it comes, still fills the cache). */
void verify_cancel(struct verify_probe **probe);

void verify_init(struct smtpd *srv);
/* SIGHUP: a new recipient_verify target takes effect, the cache is
 * flushed, connections to the old target close once idle. */
void verify_reload(struct smtpd *srv);
void verify_free(struct smtpd *srv);

#endif
