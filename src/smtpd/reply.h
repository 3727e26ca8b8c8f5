/*
 * reply.h: the table of every SMTP reply smtpd sends.
 *
 * Each reply has one identifier and one row (code, RFC 3463 enhanced
 * status code, text), so the same situation always gets the same words.
 * The session sends them through session_reply(); the command parser
 * returns identifiers from this table for the errors it finds; the
 * server writes RPL_TOO_MANY_CONN directly on a socket it refuses.
 *
 * The greeting, the HELO/EHLO replies and 354 are not in the table: RFC
 * 5321 fixes their first word (a domain, or nothing for 354) and RFC 2034
 * exempts them from enhanced status codes. The session builds those.
 */
#ifndef TEMPOMX_SMTPD_REPLY_H
#define TEMPOMX_SMTPD_REPLY_H

#include <stddef.h>

enum reply_id {
	RPL_NONE = 0, /* no reply: success of a parser, for instance */

	/* 2xx */
	RPL_OK,        /* 250 2.0.0 generic (NOOP, RSET) */
	RPL_MAIL_OK,   /* 250 2.1.0 */
	RPL_RCPT_OK,   /* 250 2.1.5 */
	RPL_QUEUED,    /* 250 2.0.0 Ok: queued as ID */
	RPL_VRFY,      /* 252 2.5.2 */
	RPL_HELP,      /* 214 2.0.0 */
	RPL_BYE,       /* 221 2.0.0 */
	RPL_TLS_READY, /* 220 2.0.0 Ready to start TLS */
	RPL_BDAT_OK,   /* 250 2.0.0 a BDAT chunk that is not the last */

	/* 421: the session ends after these */
	RPL_SHUTDOWN,        /* 421 4.3.2 */
	RPL_TOO_MANY_CONN,   /* 421 4.7.0 */
	RPL_TIMEOUT,         /* 421 4.4.2 */
	RPL_TOO_MANY_ERRORS, /* 421 4.7.0 */
	RPL_BDAT_SIZE,       /* 421 4.5.4 BDAT size unreadable: the chunk cannot be skipped */

	/* other 4xx */
	RPL_LOCAL_ERROR,     /* 451 4.3.0 */
	RPL_TOO_MANY_RCPT,   /* 452 4.5.3 */
	RPL_TLS_UNAVAIL,     /* 454 4.7.0 */
	RPL_POLICY_TEMPFAIL, /* 451 4.7.1 pre-acceptance policy, at DATA */
	RPL_QUEUE_FULL,      /* 452 4.3.1 admission control: scanner queue */
	RPL_DISK_LOW,        /* 452 4.3.1 admission control: spool disk */
	RPL_VERIFY_TEMPFAIL, /* 451 4.4.3 the mail store cannot be asked (verify.c) */

	/* 5xx: command errors */
	RPL_UNKNOWN_CMD,   /* 500 5.5.1 */
	RPL_NON_SMTP,      /* 500 5.5.1, then the session ends */
	RPL_LINE_TOO_LONG, /* 500 5.5.2 */
	RPL_BAD_CHAR,      /* 500 5.5.2 NUL or stray CR in a command */
	RPL_SYNTAX,        /* 501 5.5.4 generic */
	RPL_NO_ARGS,       /* 501 5.5.4 arguments where none are allowed */
	RPL_NEED_ARG,      /* 501 5.5.4 argument missing */
	RPL_BAD_HELO,      /* 501 5.5.4 */
	RPL_MAIL_SYNTAX,   /* 501 5.5.4 */
	RPL_RCPT_SYNTAX,   /* 501 5.5.4 */
	RPL_PARAM_SYNTAX,  /* 501 5.5.4 malformed ESMTP parameter */
	RPL_PARAM_DUP,     /* 501 5.5.4 parameter given twice */
	RPL_BDAT_SYNTAX,   /* 501 5.5.4 BDAT size then not LAST */
	RPL_BAD_SENDER,    /* 501 5.1.7 */
	RPL_BAD_RCPT,      /* 501 5.1.3 */
	RPL_NOT_IMPL,      /* 502 5.5.1 */
	RPL_BAD_SEQUENCE,  /* 503 5.5.1 */
	RPL_NEED_HELO,     /* 503 5.5.1 */
	RPL_NEED_EHLO,     /* 503 5.5.1 */
	RPL_NESTED_MAIL,   /* 503 5.5.1 */
	RPL_NEED_MAIL,     /* 503 5.5.1 */
	RPL_NEED_RCPT,     /* 503 5.5.1 */
	RPL_TLS_ACTIVE,    /* 503 5.5.1 */
	RPL_TLS_IN_MAIL,   /* 503 5.5.1 */
	RPL_BDAT_MIXED,    /* 503 5.5.1 DATA, MAIL or RCPT after BDAT (RFC 3030 2) */
	RPL_PARAM_UNKNOWN, /* 555 5.5.4 */

	/* 5xx: policy and message errors */
	RPL_SIZE_EXCEEDED,  /* 552 5.3.4 at MAIL (SIZE=) */
	RPL_DATA_TOO_BIG,   /* 552 5.3.4 at the end of DATA */
	RPL_DATA_LINE,      /* 554 5.6.0 */
	RPL_DATA_HEADER,    /* 554 5.6.0 */
	RPL_DATA_BARE,      /* 554 5.6.0 */
	RPL_TOO_MANY_HOPS,  /* 554 5.4.6 mail loop */
	RPL_RELAY_DENIED,   /* 554 5.7.1 */
	RPL_LITERAL_DENIED, /* 554 5.7.1 recipient at an address literal */
	RPL_USER_UNKNOWN,   /* 550 5.1.1 not in the recipients table */
	RPL_ROUTING_DENIED, /* 550 5.7.1 %, ! or quoted @ in the local part */
	RPL_MAIL_NOT_ASCII, /* 550 5.6.7 UTF-8 reverse-path without SMTPUTF8 */
	RPL_RCPT_NOT_ASCII, /* 553 5.6.7 UTF-8 forward-path without SMTPUTF8 */
	RPL_TOO_MANY_JUNK,  /* 421 4.7.0 junk_command_limit */
	RPL_POLICY_REJECT,  /* 554 5.7.1 pre-acceptance policy, at DATA */

	RPL_COUNT
};

/* The reply does not count towards max_errors (expected flow control). */
#define REPLY_F_NOT_ERROR 0x01
/* The server closes the connection after sending it. */
#define REPLY_F_CLOSE 0x02

struct reply {
	int code;
	const char *enh;  /* RFC 3463 status code */
	const char *text; /* may contain one "%s", replaced by the argument */
	unsigned flags;
};

/* The row for id; NULL for RPL_NONE or an out-of-range value. */
const struct reply *reply_get(enum reply_id id);

/* Longest reply line we send, CR LF included (RFC 5321 4.5.3.1.5). */
#define REPLY_LINE_MAX 512

/* Write "CODE ENH text\r\n" into buf (at least REPLY_LINE_MAX octets),
 * with arg in place of "%s" (NULL counts as ""). Control octets in arg
 * become '?' and a long arg is cut so the line stays within 512 octets.
 * Returns the length written, 0 for an unknown id. */
size_t reply_format(enum reply_id id, const char *arg, char *buf, size_t size);

#endif
