/*
 * reply.c: the one table of SMTP replies and its formatter.
 *
 * Codes follow RFC 5321 4.2.2/4.2.3; enhanced codes follow RFC 3463 and
 * the registry of RFC 5248 (5.5.x protocol, 5.1.x addresses, 5.3.4 size,
 * 5.6.0 content, 5.7.1 policy, 4.4.2 timeout, 4.3.2 shutdown). Texts are
 * short and say what the client can do about it. Called by session.c for
 * every reply and by server.c for the refusal of an excess connection.
 */
#include <string.h>

#include "reply.h"

static const struct reply reply_table[RPL_COUNT] = {
    [RPL_OK] = {250, "2.0.0", "Ok", 0},
    [RPL_MAIL_OK] = {250, "2.1.0", "Ok", 0},
    [RPL_RCPT_OK] = {250, "2.1.5", "Ok", 0},
    [RPL_QUEUED] = {250, "2.0.0", "Ok: queued as %s", 0},
    [RPL_VRFY] = {252, "2.5.2",
                  "Cannot verify the address; send mail and delivery will be attempted", 0},
    [RPL_HELP] =
        {214, "2.0.0",
         "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS (RFC 5321)", 0},
    [RPL_BYE] = {221, "2.0.0", "Bye", REPLY_F_CLOSE},
    [RPL_TLS_READY] = {220, "2.0.0", "Ready to start TLS", 0},
    [RPL_BDAT_OK] = {250, "2.0.0", "Ok: %s octets received", 0},

    [RPL_SHUTDOWN] = {421, "4.3.2", "Service shutting down", REPLY_F_CLOSE | REPLY_F_NOT_ERROR},
    [RPL_TOO_MANY_CONN] = {421, "4.7.0", "Too many connections", REPLY_F_CLOSE | REPLY_F_NOT_ERROR},
    [RPL_TIMEOUT] = {421, "4.4.2", "Timeout", REPLY_F_CLOSE | REPLY_F_NOT_ERROR},
    [RPL_TOO_MANY_ERRORS] = {421, "4.7.0", "Too many errors", REPLY_F_CLOSE | REPLY_F_NOT_ERROR},
    /* RFC 5321 3.8: only a 421 may announce the close; the client's
     * octets after the command could not be told from commands. */
    [RPL_BDAT_SIZE] = {421, "4.5.4",
                       "Syntax: BDAT chunk-size [LAST]; unreadable chunk size, closing",
                       REPLY_F_CLOSE},
    [RPL_TOO_MANY_JUNK] = {421, "4.7.0", "Too many commands without mail",
                           REPLY_F_CLOSE | REPLY_F_NOT_ERROR},

    [RPL_LOCAL_ERROR] = {451, "4.3.0", "Local error: %s", 0},
    /* RFC 5321 4.5.3.1.10: the client sends the rest in a new
     * transaction; this is flow control, not a client error. */
    [RPL_TOO_MANY_RCPT] = {452, "4.5.3", "Too many recipients", REPLY_F_NOT_ERROR},
    /* Policy and load shedding: expected flow control, not errors, so
     * a legitimate client keeps its session (RFC 5321 4.2.5). */
    [RPL_POLICY_TEMPFAIL] = {451, "4.7.1", "Service temporarily unavailable, try again later",
                             REPLY_F_NOT_ERROR},
    [RPL_QUEUE_FULL] = {452, "4.3.1", "Insufficient system resources, try again later",
                        REPLY_F_NOT_ERROR},
    [RPL_DISK_LOW] = {452, "4.3.1", "Insufficient system storage, try again later",
                      REPLY_F_NOT_ERROR},
    /* RFC 3463 X.4.3, directory server failure: the service that knows
     * the mailboxes cannot be reached. Our trouble, not the client's. */
    [RPL_VERIFY_TEMPFAIL] = {451, "4.4.3",
                             "%s: Recipient address verification unavailable, try again later",
                             REPLY_F_NOT_ERROR},
    [RPL_TLS_UNAVAIL] = {454, "4.7.0", "TLS not available", 0},

    [RPL_UNKNOWN_CMD] = {500, "5.5.1", "Command unrecognized", 0},
    [RPL_NON_SMTP] = {500, "5.5.1", "Protocol error: this is an SMTP server",
                      REPLY_F_CLOSE | REPLY_F_NOT_ERROR},
    [RPL_LINE_TOO_LONG] = {500, "5.5.2", "Line too long", 0},
    [RPL_BAD_CHAR] = {500, "5.5.2", "Invalid character in command", 0},
    [RPL_SYNTAX] = {501, "5.5.4", "Syntax error", 0},
    [RPL_NO_ARGS] = {501, "5.5.4", "Syntax error: %s takes no arguments", 0},
    [RPL_NEED_ARG] = {501, "5.5.4", "Syntax error: %s needs an argument", 0},
    [RPL_BAD_HELO] = {501, "5.5.4", "Syntax: HELO/EHLO domain-or-address-literal", 0},
    [RPL_MAIL_SYNTAX] = {501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]", 0},
    [RPL_RCPT_SYNTAX] = {501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]", 0},
    [RPL_PARAM_SYNTAX] = {501, "5.5.4", "Bad parameter syntax: %s", 0},
    [RPL_PARAM_DUP] = {501, "5.5.4", "Parameter given twice: %s", 0},
    [RPL_BDAT_SYNTAX] = {501, "5.5.4", "Syntax: BDAT chunk-size [LAST]; chunk discarded", 0},
    [RPL_BAD_SENDER] = {501, "5.1.7", "Bad sender address syntax: %s", 0},
    [RPL_BAD_RCPT] = {501, "5.1.3", "Bad recipient address syntax: %s", 0},
    [RPL_NOT_IMPL] = {502, "5.5.1", "Command not implemented", 0},
    [RPL_BAD_SEQUENCE] = {503, "5.5.1", "Bad sequence of commands", 0},
    [RPL_NEED_HELO] = {503, "5.5.1", "Bad sequence of commands: send HELO/EHLO first", 0},
    [RPL_NEED_EHLO] = {503, "5.5.1", "Bad sequence of commands: send EHLO first", 0},
    [RPL_NESTED_MAIL] = {503, "5.5.1", "Bad sequence of commands: sender already given", 0},
    [RPL_NEED_MAIL] = {503, "5.5.1", "Bad sequence of commands: send MAIL first", 0},
    [RPL_NEED_RCPT] = {503, "5.5.1", "No valid recipients", 0},
    [RPL_TLS_ACTIVE] = {503, "5.5.1", "Bad sequence of commands: TLS already active", 0},
    [RPL_TLS_IN_MAIL] = {503, "5.5.1", "Bad sequence of commands: STARTTLS inside a transaction",
                         0},
    [RPL_BDAT_MIXED] = {503, "5.5.1",
                        "Bad sequence of commands: %s after BDAT; message discarded, send RSET", 0},
    [RPL_PARAM_UNKNOWN] = {555, "5.5.4", "Unsupported parameter: %s", 0},

    [RPL_SIZE_EXCEEDED] = {552, "5.3.4", "Message size exceeds fixed limit", 0},
    [RPL_DATA_TOO_BIG] = {552, "5.3.4", "Message size exceeds fixed limit", 0},
    [RPL_DATA_LINE] = {554, "5.6.0", "Message line too long (see RFC 5321 4.5.3.1.6)", 0},
    [RPL_DATA_HEADER] = {554, "5.6.0", "Message header section too large", 0},
    [RPL_DATA_BARE] = {554, "5.6.0", "Bare CR or LF not allowed in message (see RFC 5321 2.3.8)",
                       0},
    [RPL_TOO_MANY_HOPS] = {554, "5.4.6", "Too many hops (Received: header lines): mail loop", 0},
    [RPL_RELAY_DENIED] = {554, "5.7.1", "%s: Relay access denied", 0},
    [RPL_LITERAL_DENIED] = {554, "5.7.1", "%s: Recipient address literals not accepted", 0},
    [RPL_USER_UNKNOWN] = {550, "5.1.1", "%s: Recipient address rejected: User unknown", 0},
    [RPL_ROUTING_DENIED] = {550, "5.7.1",
                            "%s: Recipient address rejected: routing characters in the local part",
                            0},
    /* RFC 6531 3.5: a non-ASCII address in a transaction without
     * SMTPUTF8 ("mailbox unavailable" for MAIL, "mailbox name not
     * allowed" for RCPT). */
    [RPL_MAIL_NOT_ASCII] = {550, "5.6.7", "Non-ASCII sender address not permitted without SMTPUTF8",
                            0},
    [RPL_RCPT_NOT_ASCII] = {553, "5.6.7",
                            "Non-ASCII recipient address not permitted without SMTPUTF8", 0},
    [RPL_POLICY_REJECT] = {554, "5.7.1", "Rejected: this client does not behave like a mail server",
                           0},
};

const struct reply *reply_get(enum reply_id id)
{
	if ((int)id <= (int)RPL_NONE || (int)id >= (int)RPL_COUNT || reply_table[id].code == 0)
		return NULL;
	return &reply_table[id];
}

/* Append s (len octets) to buf at *off, keeping room for the CR LF; the
 * argument is network input, so control octets are neutralised, and so
 * are octets >= 0x80: RFC 6531 3.7.4 allows UTF-8 in no reply we send
 * (an address in a refusal shows its non-ASCII characters as '?'). */
static void put(char *buf, size_t *off, size_t limit, const char *s, size_t len, int clean)
{
	for (size_t i = 0; i < len && *off < limit; i++) {
		unsigned char c = (unsigned char)s[i];
		if (clean && (c < 0x20 || c >= 0x7f))
			c = '?';
		buf[(*off)++] = (char)c;
	}
}

size_t reply_format(enum reply_id id, const char *arg, char *buf, size_t size)
{
	const struct reply *r = reply_get(id);
	if (r == NULL || size < 16)
		return 0;
	size_t limit = size < REPLY_LINE_MAX ? size : REPLY_LINE_MAX;
	limit -= 2; /* CR LF */
	size_t off = 0;

	buf[off++] = (char)('0' + r->code / 100);
	buf[off++] = (char)('0' + r->code / 10 % 10);
	buf[off++] = (char)('0' + r->code % 10);
	buf[off++] = ' ';
	put(buf, &off, limit, r->enh, strlen(r->enh), 0);
	put(buf, &off, limit, " ", 1, 0);

	const char *t = r->text;
	const char *mark = strstr(t, "%s");
	if (mark == NULL) {
		put(buf, &off, limit, t, strlen(t), 0);
	} else {
		const char *rest = mark + 2;
		size_t restlen = strlen(rest);
		put(buf, &off, limit, t, (size_t)(mark - t), 0);
		/* Cut the argument, not the fixed text after it. */
		size_t room = limit > off + restlen ? limit - off - restlen : 0;
		size_t alen = arg ? strlen(arg) : 0;
		put(buf, &off, off + (alen < room ? alen : room), arg ? arg : "", alen, 1);
		put(buf, &off, limit, rest, restlen, 0);
	}
	buf[off++] = '\r';
	buf[off++] = '\n';
	return off;
}
