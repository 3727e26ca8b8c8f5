/*
 * envelope.h: the envelope block at the head of every spool file.
 *
 * A spool file is the envelope block followed by the message exactly as
 * received (dot-unstuffed, CRLF line ends, our Received: header first).
 * The block is text, one "key value" line each, ending with a line "end":
 *
 *   tempomx-envelope 1
 *   id 06B07CF6A1E2400012F000
 *   arrival 1795673962.123456
 *   ...
 *   rcpt pending 0 0 0 alice@example.test
 *   rcpt-orcpt rfc822;al@example.test  (optional, follows its rcpt line)
 *   rcpt-notify SUCCESS,FAILURE        (optional, follows its rcpt line)
 *   rcpt-reply 250 2.0.0 ok            (optional, follows its rcpt line)
 *   size 00000000000000002048
 *   end
 *
 * Values are escaped so that a line never holds CR, LF, NUL or other
 * control octets ("%XX", and "%" itself as "%25"). The size field has a
 * fixed width so it can be patched in place once the body is complete,
 * before the file is fsync'd and becomes visible (see spool.c).
 * Unknown keys are an error for the same major version: a file we cannot
 * fully understand is moved to corrupt/, never guessed at.
 *
 * Version 2 (written since the spool stopped copying messages) differs
 * from version 1 in two ways. The message octets are exactly what smtpd
 * received plus its Received: line; the X-Tempomx-Class and
 * X-Tempomx-Scan fields are generated from the envelope when the message
 * is read for delivery (headers.c), never stored. And the file may end
 * with update records after the message (records.c): each is a complete
 * version 2 block, framed with its length and a CRC-32, and the last
 * valid one is the envelope. Version 1 files are still read: their
 * message already carries the fields (written by the scanner of that
 * version), so nothing is generated for them, and they are updated by
 * rewriting the whole file in version 1 as before. scan-info and
 * scan-class exist in version 2 only.
 *
 * A version 2 block may carry "hops": the number of Received: fields in
 * the message's header section, ours included, counted by smtpd while it
 * received the message (RFC 5321 6.3 loop detection at delivery). It is
 * written with a fixed width on the line right before "size", and patched
 * in place by spool_commit() like the size; it is absent from blocks
 * written before it existed and from messages whose creator did not count
 * (delivery then counts the fields in the message itself).
 *
 * Numbers (client-port, smtputf8, score, attempts, next-retry, the rcpt
 * fields), id, arrival, class, sender and size are always written and
 * required; any other string line is absent when the field is NULL. A NULL
 * sender is written as the null sender "". The block, "end" line
 * included, is at most ENVELOPE_MAX_BLOCK octets.
 */
#ifndef TEMPOMX_ENVELOPE_H
#define TEMPOMX_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "queueid.h"

#define ENVELOPE_VERSION 2
/* The oldest version still read (and written back when such a file is
 * updated). */
#define ENVELOPE_VERSION_MIN 1
#define ENVELOPE_SIZE_WIDTH 20
#define ENVELOPE_HOPS_WIDTH 5
#define ENVELOPE_HOPS_MAX 99999
/* Where the hops digits start, when the line is there: this many octets
 * before the size digits ("hops NNNNN\nsize "). */
#define ENVELOPE_HOPS_BEFORE_SIZE (ENVELOPE_HOPS_WIDTH + sizeof("\nsize ") - 1)
#define ENVELOPE_MAX_BLOCK (1024 * 1024)

enum rcpt_status { RCPT_PENDING = 0, RCPT_SENT, RCPT_DEFERRED, RCPT_BOUNCED };

struct rcpt {
	char *addr;   /* "local@domain" as received, no brackets */
	char *orcpt;  /* DSN ORCPT: "addr-type;address" (decoded), or NULL */
	char *notify; /* DSN NOTIFY: "NEVER" or e.g. "SUCCESS,FAILURE", or NULL */
	enum rcpt_status status;
	int attempts;
	int64_t last_attempt; /* seconds since the epoch, 0 = never */
	int64_t next_retry;   /* seconds since the epoch, 0 = now */
	char *last_reply;     /* last reply text (e.g. remote "550 5.1.1 ..."), or NULL */
};

enum msg_class { CLASS_HI = 0, CLASS_LO = 1 };

struct envelope {
	int version;
	char id[QUEUEID_SIZE];
	int64_t arrival_usec; /* wall clock, microseconds since the epoch */
	char *client_addr;    /* numeric; "" for locally generated mail */
	unsigned client_port;
	char *client_name; /* reverse name or "unknown" */
	char *helo;
	char *protocol;  /* SMTP, ESMTP, ESMTPS, UTF8SMTP(S) (RFC 6531), LOCAL */
	char *tls;       /* "TLSv1.3 TLS_AES_256_GCM_SHA384 256/256" or NULL */
	char *sender;    /* "" for the null sender */
	char *body_type; /* "7BIT", "8BITMIME" or NULL */
	int smtputf8;
	char *envid; /* DSN ENVID (xtext decoded) or NULL */
	char *ret;   /* DSN RET (FULL/HDRS) or NULL */
	struct rcpt *rcpts;
	size_t nrcpt;
	uint64_t size; /* octets of the message after the block */
	enum msg_class class;
	char *verdict; /* "unclassified", "good", "suspect", "junk" */
	int score;
	char *reasons;      /* plain words, "; " separated, or NULL */
	char *history;      /* history prediction: "new", "good", "junk" or NULL */
	int attempts;       /* delivery attempts of the message */
	int64_t next_retry; /* seconds since the epoch, 0 = as soon as possible */
	char *scan_result;  /* "clean", "infected NAME", "unscanned NAME", or NULL */
	char *bounce_of;    /* queue ID this bounce reports on, or NULL */
	/* Version 2: what the scan used ("engine=libclamav 1.4.6; db=...;
	 * signatures=N; host=NAME") and the queue it was taken from ("hi",
	 * "lo", "lo (promoted)"): the X-Tempomx-* fields are made of them. */
	char *scan_info;
	char *scan_class;
	/* Version 2: Received: fields in the message's header, ours included
	 * (up to ENVELOPE_HOPS_MAX); -1: not counted, no "hops" line. */
	int hops;
	/* Set by the spool reader, never written: the file offset just past
	 * the last valid update record (where the next one goes), the file's
	 * length when it was read, how many records were applied, and the
	 * file's ctime (when it was last renamed into its queue, usec). */
	uint64_t log_end;
	uint64_t file_len;
	unsigned nrecords;
	int64_t queued_usec;
};

/* Zero-initialise *env (version, verdict "unclassified", class hi, hops
 * not counted). */
void envelope_init(struct envelope *env);
void envelope_free(struct envelope *env);
/* Append a recipient with status pending. Returns its index. */
size_t envelope_add_rcpt(struct envelope *env, const char *addr, const char *orcpt);
/* Deep copy. */
void envelope_copy(struct envelope *dst, const struct envelope *src);

/* Render the block in env->version (ENVELOPE_VERSION_MIN up to
 * ENVELOPE_VERSION; anything else is written as ENVELOPE_VERSION).
 * Returns a malloc'd buffer of *lenp octets; *size_off (if not NULL)
 * receives the offset of the fixed-width size digits. */
char *envelope_format(const struct envelope *env, size_t *lenp, size_t *size_off);
/* Write the fixed-width decimal of size into buf (ENVELOPE_SIZE_WIDTH). */
void envelope_format_size(char *buf, uint64_t size);
/* The same for hops (ENVELOPE_HOPS_WIDTH), clamped to 0..ENVELOPE_HOPS_MAX. */
void envelope_format_hops(char *buf, int hops);

/* Parse a block at the start of buf. On success returns 0, fills *env and
 * sets *body_off to the offset of the first message octet. On failure
 * returns -1 with errno EBADMSG and a message in err ("line 3: unknown
 * key 'foo'"); *env is then all zero, owning nothing (envelope_free() on
 * it is harmless). */
int envelope_parse(const char *buf, size_t len, struct envelope *env, size_t *body_off, char *err,
                   size_t errlen);
/* Read and parse the block from an open spool file (reads only as much as
 * needed, from offset 0 with pread). Same contract; *body_off is the file
 * offset of the message. A read error also returns -1, with the read's
 * errno (never EBADMSG) and "read: ..." in err: only EBADMSG means the
 * file itself is bad. */
int envelope_read_fd(int fd, struct envelope *env, size_t *body_off, char *err, size_t errlen);

/* The value escaping, exposed for tools that show raw values: every octet
 * below 0x20, 0x7f and '%' becomes "%XX"; reversible for any byte string.
 * envelope_escape() returns a malloc'd string. envelope_unescape() returns
 * 0 and a malloc'd, NUL-terminated copy of the len decoded octets in *out
 * (which may contain NUL), or -1 on a bad escape or a raw control octet. */
char *envelope_escape(const void *data, size_t len);
int envelope_unescape(const char *s, size_t len, char **out, size_t *outlen);

/*
 * records.c: update records appended after the message (version 2).
 *
 *   tempomx-update LEN CRC\n      LEN decimal octets, CRC 8 hex digits
 *   <LEN octets: a version 2 block, "end" line included>
 *
 * envelope_record() renders one for env (a malloc'd buffer of *lenp
 * octets). envelope_apply_records() reads the records in buf[0..len),
 * the octets after the message, and replaces *env by the last valid one.
 * A record that is cut short, has a bad frame or a CRC that does not
 * match, is the unfinished tail of an append interrupted by a crash: it
 * and everything after it are ignored (*validp says how many octets were
 * used). A record whose CRC matches but whose block cannot be parsed, or
 * names another ID or size, cannot come from a crash: -1 with EBADMSG
 * and a message in err, *env unchanged. Returns 0 otherwise.
 */
#define ENVELOPE_RECORD_MAGIC "tempomx-update"
char *envelope_record(const struct envelope *env, size_t *lenp);
int envelope_apply_records(const char *buf, size_t len, struct envelope *env, size_t *validp,
                           char *err, size_t errlen);
/* CRC-32 (ISO-HDLC, as in zlib) of len octets. */
uint32_t envelope_crc32(const void *data, size_t len);

/*
 * headers.c: the header fields tempomx adds to a message it delivers,
 * made from a version 2 envelope when the message is read for delivery:
 * "X-Tempomx-Scan:" (when the scanner recorded a result) and
 * "X-Tempomx-Class:". Each line ends with eol ("\r\n" or "\n").
 * Returns a malloc'd string ("" for a version 1 envelope, whose message
 * already carries them, and for a report tempomx made, bounce-of set)
 * and its length in *lenp.
 */
char *envelope_headers(const struct envelope *env, const char *eol, size_t *lenp);

const char *rcpt_status_name(enum rcpt_status s);
const char *msg_class_name(enum msg_class c);
/* Number of recipients still pending or deferred. */
size_t envelope_pending(const struct envelope *env);

#endif
