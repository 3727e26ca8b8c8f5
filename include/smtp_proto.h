/*
 * smtp_proto.h: the text of the outbound SMTP/LMTP dialogue, without any
 * I/O (src/smtp/proto.c): the one parser of server replies, assembling a
 * (multi-line) reply from its lines, the extensions of an EHLO reply,
 * dot-stuffing, and the text of failures that are ours, not the
 * server's. Used by the client (smtp.h) and its owners; pure functions,
 * so unit tests and t/fuzz/fuzz_smtp_reply call them directly.
 */
#ifndef TEMPOMX_SMTP_PROTO_H
#define TEMPOMX_SMTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Longest reply line accepted (RFC 5321 4.5.3.1.5 says 512; servers send
 * longer ones) and most lines in one reply. */
#define SMTP_REPLY_LINE_MAX 4096
#define SMTP_REPLY_LINES_MAX 1000

struct smtp_reply {
	int code;       /* 0 until the first line */
	size_t lines;   /* lines so far */
	char text[512]; /* the first line, for logs and the recipients' status */
	char ext[2048]; /* the text of the lines after the first, one per line */
};

void smtp_reply_init(struct smtp_reply *rp);
/* Add one line (without its CR LF or bare LF) to rp. Returns 1 when the
 * reply is complete (a line "NNN " or "NNN"), 0 when more lines follow
 * ("NNN-"), -1 when the line is not a reply line (first digit 2 to 5, a
 * CR or NUL inside), its code differs from the first line's, or the reply
 * has too many lines. rp->text keeps the first line, control octets as
 * '?'. */
int smtp_reply_line(struct smtp_reply *rp, const char *line, size_t len);

/* What an EHLO reply offers. */
struct smtp_caps {
	int pipelining, size, eightbit, starttls, dsn, smtputf8;
	uint64_t size_max; /* SIZE's argument; 0 = none given */
};

/* Parse the extension lines (smtp_reply.ext of a 250 to EHLO or LHLO). */
void smtp_caps_parse(const char *ext, struct smtp_caps *cp);

/* Append the dot-stuffed form of len octets of a message to out (RFC 5321
 * 4.5.2: a line that starts with "." gets another "."). *bol is 1 at the
 * start of a line and is kept across calls. Returns the octets written;
 * out must hold 2 * len. */
size_t smtp_dotstuff(const char *in, size_t len, char *out, int *bol);

/* The text of a failure that did not come from the server: "451 4.4.1
 * relay: connect: Connection refused". The RFC 3463 code (enh) is what
 * the recipient's last reply, the log and the DSN Status: field show. */
void smtp_local_reply(char *buf, size_t len, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
