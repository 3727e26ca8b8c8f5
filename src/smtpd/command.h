/*
 * command.h: parsing of SMTP command lines and of the MAIL/RCPT arguments.
 *
 * Pure functions of their input (no I/O, no session state), so they are
 * unit-tested table by table and fuzzed. The session (session.c) hands
 * every complete command line, without its line end, to cmd_parse(), then
 * checks the state, then cmd_check_args() and the per-verb parsers below.
 * Errors come back as identifiers of the reply table (reply.h).
 */
#ifndef TEMPOMX_SMTPD_COMMAND_H
#define TEMPOMX_SMTPD_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "dsn.h"
#include "reply.h"

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CR LF.
 * RFC 3461 (DSN) adds 100 to MAIL (RET, ENVID) and 500 to RCPT
 * (NOTIFY, ORCPT); CMD_WINDOW_MAX is the longest line of all. */
#define CMD_LINE_MAX 512
#define CMD_LINE_MAX_MAIL (CMD_LINE_MAX + 100)
#define CMD_LINE_MAX_RCPT (CMD_LINE_MAX + 500)
#define CMD_WINDOW_MAX CMD_LINE_MAX_RCPT

/* Framing of command lines in the input (RFC 5321 2.3.8, 4.5.3.1.4). The
 * session passes the first min(available, CMD_WINDOW_MAX) octets of its
 * input and whether it is inside an over-long line; a line that starts
 * with "MAIL " or "RCPT " may have the longer limits above. */
enum cmd_frame_status {
	CMD_FRAME_MORE,     /* no line end yet: wait for input */
	CMD_FRAME_LINE,     /* a command line: take consumed octets, len of text */
	CMD_FRAME_DISCARD,  /* inside a line over its limit: drop consumed, go on */
	CMD_FRAME_TOO_LONG, /* the end of an over-long line: drop consumed, 500 */
};

struct cmd_frame {
	size_t consumed; /* octets to remove from the input */
	size_t len;      /* CMD_FRAME_LINE: octets of text before CR LF / LF */
	int bare_lf;     /* CMD_FRAME_LINE: ended by LF alone (noted, accepted) */
};

enum cmd_frame_status cmd_frame(const char *buf, size_t avail, int discarding,
                                struct cmd_frame *out);

enum cmd_verb {
	CMD_NONE = 0, /* not a command: empty, too long, invalid octets */
	CMD_HELO,
	CMD_EHLO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_VRFY,
	CMD_HELP,
	CMD_STARTTLS,
	/* known but not offered: 502 */
	CMD_EXPN,
	CMD_BDAT,
	CMD_AUTH,
	CMD_ETRN,
	CMD_TURN,
	CMD_UNKNOWN, /* a word we do not know: 500 */
	CMD_COUNT
};

struct cmd_line {
	enum cmd_verb verb;
	const char *arg; /* into the parsed line; trailing blanks removed */
	size_t arglen;   /* 0 when there is no argument */
};

/* Split a command line (line end already removed) into verb and argument.
 * Returns RPL_NONE, or RPL_BAD_CHAR (NUL or CR in the line), RPL_NON_SMTP (an
 * HTTP request line or a TLS record), RPL_UNKNOWN_CMD (empty line or unknown
 * verb). out->verb is set in every case (CMD_NONE when the line is not a
 * command at all). */
enum reply_id cmd_parse(const char *line, size_t len, struct cmd_line *out);

/* Whether the argument fits the verb: none for DATA, RSET, QUIT and
 * STARTTLS (RPL_NO_ARGS); required for HELO, EHLO, MAIL, RCPT, VRFY
 * (RPL_NEED_ARG; RPL_BAD_HELO for HELO/EHLO). */
enum reply_id cmd_check_args(const struct cmd_line *cmd);

/* Upper-case name of a verb ("MAIL"), "UNKNOWN" or "NONE". */
const char *cmd_verb_name(enum cmd_verb v);

/* First octets that cannot start an SMTP conversation: a TLS handshake
 * record (a client speaking TLS on the plain port). Needs 2 octets. */
int cmd_is_tls_record(const unsigned char *p, size_t len);

/* HELO/EHLO argument: a domain or an address literal, one word; also a
 * bare IP address and '_' in labels, which real clients send. Returns
 * RPL_NONE or RPL_BAD_HELO. */
enum reply_id cmd_check_helo(const char *arg, size_t len);

enum cmd_body { CMD_BODY_NONE = 0, CMD_BODY_7BIT, CMD_BODY_8BITMIME };

/* Room for a parameter keyword quoted in an error reply. */
#define CMD_PARAM_NAME_MAX 32

struct cmd_mail {
	struct mailaddr addr;
	enum addr_error addr_err; /* when RPL_BAD_SENDER is returned */
	int has_size;
	uint64_t size; /* SIZE=; UINT64_MAX when it overflows */
	enum cmd_body body;
	int smtputf8;                   /* SMTPUTF8 (RFC 6531 3.4) */
	struct dsn_mail dsn;            /* RET=, ENVID= (RFC 3461) */
	char param[CMD_PARAM_NAME_MAX]; /* the offending keyword, for replies */
};

struct cmd_rcpt {
	struct mailaddr addr;
	enum addr_error addr_err; /* when RPL_BAD_RCPT is returned */
	struct dsn_rcpt dsn;      /* NOTIFY=, ORCPT= (RFC 3461) */
	char param[CMD_PARAM_NAME_MAX];
};

/* "FROM:<path> [SP params]" (RFC 5321 4.1.1.2, RFC 1870 SIZE, RFC 6152
 * BODY, RFC 6531 SMTPUTF8, RFC 3461 RET and ENVID: dsn.c). addr_flags
 * are added to ADDR_ALLOW_NULL | ADDR_ALLOW_ROUTE (the session always
 * adds ADDR_ALLOW_LITERAL: a literal is refused, if at all, by policy);
 * UTF-8 in the path is allowed when the SMTPUTF8 parameter is given.
 * Returns RPL_NONE, RPL_MAIL_SYNTAX, RPL_BAD_SENDER, RPL_MAIL_NOT_ASCII
 * (UTF-8 without SMTPUTF8; addr_err ADDR_ERR_8BIT), RPL_PARAM_SYNTAX,
 * RPL_PARAM_DUP or RPL_PARAM_UNKNOWN (anything we do not advertise:
 * AUTH). */
enum reply_id cmd_parse_mail(const char *arg, size_t len, int addr_flags, struct cmd_mail *out);

/* "TO:<path> [SP params]". addr_flags are added to ADDR_ALLOW_POSTMASTER
 * | ADDR_ALLOW_ROUTE (the session adds ADDR_ALLOW_UTF8 in an SMTPUTF8
 * transaction; without it a non-ASCII path is RPL_RCPT_NOT_ASCII). NOTIFY
 * and ORCPT (RFC 3461, dsn.c) are the RCPT parameters; any other is
 * RPL_PARAM_UNKNOWN once its syntax is right. */
enum reply_id cmd_parse_rcpt(const char *arg, size_t len, int addr_flags, struct cmd_rcpt *out);

#endif
