/*
 * dsn.h: Delivery Status Notification parameters (RFC 3461) and their
 * xtext encoding (src/common/dsn.c).
 *
 * smtpd parses MAIL's RET and ENVID and RCPT's NOTIFY and ORCPT with
 * dsn_mail_param() and dsn_rcpt_param(); the values are kept in the
 * envelope as plain text (include/envelope.h: ret "FULL" or "HDRS",
 * envid decoded, rcpt-orcpt "addr-type;decoded address", rcpt-notify
 * "NEVER" or a list such as "SUCCESS,FAILURE"). Delivery asks
 * dsn_wants() which reports a recipient gets, and the SMTP client sends
 * the parameters on with dsn_mail_params() and dsn_rcpt_params() to a
 * next hop that offers DSN. Pure functions, no allocation except where
 * said; t/unit/test_dsn.c and t/fuzz/fuzz_dsn.c call them directly.
 */
#ifndef TEMPOMX_DSN_H
#define TEMPOMX_DSN_H

#include <stddef.h>

/* RFC 3461 4.4 and 4.2: the longest ENVID and ORCPT values, as sent (in
 * xtext). A decoded value is never longer than its encoding. */
#define DSN_ENVID_MAX 100
#define DSN_ORCPT_MAX 500

/* NOTIFY (RFC 3461 4.1): NEVER, or any of the others. 0: not given. */
#define DSN_NOTIFY_NEVER 1u
#define DSN_NOTIFY_SUCCESS 2u
#define DSN_NOTIFY_FAILURE 4u
#define DSN_NOTIFY_DELAY 8u

enum dsn_ret { DSN_RET_NONE = 0, DSN_RET_FULL, DSN_RET_HDRS };

/* MAIL's parameters. envid is decoded: printable US-ASCII only. */
struct dsn_mail {
	enum dsn_ret ret;
	int has_envid;
	char envid[DSN_ENVID_MAX + 1];
};

/* RCPT's parameters. orcpt is "addr-type;address", the address decoded
 * (printable US-ASCII only). */
struct dsn_rcpt {
	unsigned notify;
	int has_orcpt;
	char orcpt[DSN_ORCPT_MAX + 1];
};

enum dsn_param_result {
	DSN_PARAM_OK = 0,
	DSN_PARAM_NOT_OURS, /* not a DSN keyword: the caller decides */
	DSN_PARAM_DUP,      /* given twice in one command */
	DSN_PARAM_BAD,      /* a DSN keyword with a bad or missing value */
};

/* One ESMTP parameter of MAIL (RET, ENVID) or RCPT (NOTIFY, ORCPT):
 * keyword and value as on the command line (val NULL when there is no
 * "="). Keywords and the RET and NOTIFY values are case-insensitive. */
enum dsn_param_result dsn_mail_param(struct dsn_mail *m, const char *key, size_t keylen,
                                     const char *val, size_t vallen);
enum dsn_param_result dsn_rcpt_param(struct dsn_rcpt *r, const char *key, size_t keylen,
                                     const char *val, size_t vallen);
/* The keyword of the first DSN parameter given, or NULL when none was
 * (for "not after HELO" replies). */
const char *dsn_mail_given(const struct dsn_mail *m);
const char *dsn_rcpt_given(const struct dsn_rcpt *r);

/* xtext (RFC 3461 4): "+" and two upper-case hex digits stand for an
 * octet; the other characters from "!" to "~" but "+" and "=" stand for
 * themselves. xtext_decode() decodes len octets into out (size octets,
 * NUL-terminated) and returns the decoded length, or -1 when the input
 * is not xtext, a decoded octet is not printable US-ASCII (0x20 to 0x7E)
 * or the result does not fit. xtext_encode() writes the encoding of the
 * string in (NUL-terminated, cut to fit) and returns the length the
 * whole encoding needs. */
int xtext_decode(const char *in, size_t len, char *out, size_t size);
size_t xtext_encode(const char *in, char *out, size_t size);

/* NOTIFY values: parse "NEVER" or a list ("success,delay"); -1 when bad
 * (empty, an unknown or repeated element, NEVER with others). Format the
 * canonical form ("SUCCESS,FAILURE,DELAY", "NEVER"; "" for 0). */
int dsn_notify_parse(const char *s, size_t len, unsigned *out);
void dsn_notify_format(unsigned notify, char *buf, size_t size);

/* Does a recipient whose envelope NOTIFY is notify (NULL: none was given)
 * want a report of kind what (DSN_NOTIFY_SUCCESS, FAILURE or DELAY)?
 * Without NOTIFY: failures and delays (the long-standing default that
 * RFC 3461 4.1 allows), never success. A value that does not parse is
 * treated as absent. */
int dsn_wants(const char *notify, unsigned what);

/* The parameters for a next hop that offers DSN (RFC 3461), each
 * with a leading space, from the envelope's values (NULL: absent):
 * " RET=HDRS ENVID=..." and " NOTIFY=... ORCPT=...". malloc'd, or NULL
 * when there is nothing to send. */
char *dsn_mail_params(const char *ret, const char *envid);
char *dsn_rcpt_params(const char *notify, const char *orcpt);

#endif
