/*
 * smtp.h: the one outbound SMTP (RFC 5321) and LMTP (RFC 2033) client of
 * tempomx (src/smtp/client.c): a session is an explicit state machine on a
 * bufferevent of the caller's event loop. Delivery (deliver/remote.c) runs
 * whole transactions on it; recipient verification (smtpd/verify.c) runs
 * RCPT probes. Both park idle sessions in an smtp_cache (smtp_cache.h).
 * Every outcome comes back through the session's callback, always from
 * the loop and never from inside the call that caused it.
 */
#ifndef TEMPOMX_SMTP_H
#define TEMPOMX_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct event_base;

enum tls_policy { TLS_POLICY_NONE = 0, TLS_POLICY_MAY, TLS_POLICY_ENCRYPT, TLS_POLICY_VERIFY };

struct smtp_opts {
	int lmtp;            /* LHLO, one reply per recipient after the dot (RFC 2033) */
	const char *helo;    /* our name */
	int command_timeout; /* seconds: greeting, EHLO, MAIL, RCPT, DATA, a data block */
	int data_timeout;    /* seconds: the reply to the final dot (RFC 5321 4.5.3.2) */
	int tls_policy;      /* enum tls_policy */
	const char *tls_ca_file;
	const char *peer_name; /* for certificate checks */
};

struct smtp_message {
	const char *sender; /* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpt;
	/* A probe asks RCPT only: no DATA, the transaction ends with RSET,
	 * so nothing is ever delivered (recipient verification). A refused
	 * MAIL fails the session (SMTP_FAILED) instead of the recipients. */
	int probe;
	int fd; /* the spool file, read in chunks as the connection drains */
	off_t body_off;
	uint64_t size; /* octets of the message in fd (update records may follow) */
	/* Header fields sent before the message (our X-Tempomx-*), CRLF line
	 * ends, at most SMTP_HEAD_MAX octets; NULL when none. */
	const char *head;
	size_t headlen;
	int eightbit; /* BODY=8BITMIME */
	/* DSN parameters (RFC 3461), sent only when the server offers DSN:
	 * for MAIL (" RET=... ENVID=...") and, when not NULL, for each
	 * recipient (dsn_rcpt[i] for rcpts[i], NULL entries: none); each
	 * with its leading space, already in xtext (dsn.h). */
	const char *dsn_mail;
	const char *const *dsn_rcpt;
	/* SMTPUTF8 (RFC 6531): given on MAIL when the server offers it;
	 * needed when an address or the header is UTF-8, and then a server
	 * that does not offer it fails the session with 550 5.6.7 (the next
	 * host may offer it; RFC 6531 3.2). */
	int smtputf8;
	int needs_smtputf8;
};
#define SMTP_HEAD_MAX 4096

/* The outcome for one recipient: code 0 = not decided. */
struct smtp_result {
	int code;
	char reply[512];
};

enum smtp_event {
	SMTP_READY = 1, /* smtp_open: greeted, EHLO (or HELO) and STARTTLS done */
	SMTP_FAILED,    /* the session failed as a whole (no recipient decided):
	                 * smtp_fail_code/text say why; try the next host */
	SMTP_DONE,      /* smtp_send: every recipient has a code */
	SMTP_CLOSED,    /* an idle session was closed by the server */
};

struct smtp_session;
typedef void (*smtp_cb)(struct smtp_session *s, enum smtp_event ev, void *arg);

/* Connect to sa (TCP or a unix socket) within connect_timeout seconds,
 * read the greeting, EHLO/LHLO (HELO fallback for SMTP), STARTTLS per
 * o->tls_policy; then SMTP_READY or SMTP_FAILED. relay names the peer in
 * replies and logs. o's strings are copied. */
struct smtp_session *smtp_open(struct event_base *base, const struct sockaddr *sa, socklen_t len,
                               int connect_timeout, const struct smtp_opts *o, const char *relay,
                               smtp_cb cb, void *arg);
/* One transaction on a ready session: res[i] for m->rcpts[i] (m, res and
 * the spool fd must live until the callback). Ends in SMTP_DONE, or
 * SMTP_FAILED if the session failed before any recipient was decided.
 * Takes the timeouts of o. */
void smtp_send(struct smtp_session *s, const struct smtp_opts *o, const struct smtp_message *m,
               struct smtp_result *res);
/* Hand the session to another owner (the idle cache, the next job). */
void smtp_set_cb(struct smtp_session *s, smtp_cb cb, void *arg);
/* Open and between transactions: fit for the next message. */
int smtp_usable(const struct smtp_session *s);
const char *smtp_relay(const struct smtp_session *s);
/* The server's EHLO (LHLO) reply offered DSN (RFC 3461): it got the
 * DSN parameters of the last transaction and reports on them itself. */
int smtp_dsn(const struct smtp_session *s);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", "" without TLS. */
const char *smtp_tls(const struct smtp_session *s);
/* After SMTP_FAILED: the code to use if no other host is left (4xx for
 * network trouble, 5xx for a permanent refusal) and the reply text, with
 * an RFC 3463 code. */
int smtp_fail_code(const struct smtp_session *s);
const char *smtp_fail_text(const struct smtp_session *s);
/* Say QUIT (if the session is usable) and free it when the server has
 * answered or a short timeout passed; then gone(arg). No more callbacks. */
void smtp_quit(struct smtp_session *s, void (*gone)(void *), void *arg);
/* Close at once, no QUIT, no callbacks but gone (of smtp_quit). NULL is
 * harmless. */
void smtp_free(struct smtp_session *s);

#endif
