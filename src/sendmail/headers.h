/*
 * headers.h: what headers.c gives sendmail.c, the two files of
 * tempomx-sendmail. Calls go one way, sendmail.c to headers.c.
 *
 *   sendmail.c  options, reading the message, the maildrop file, and the
 *               modes that are other programs' work (-bp, -q, -bs)
 *   headers.c   the message's header section: recipients from To, Cc
 *               and Bcc (-t), Bcc removed, From, Date and Message-ID
 *               added when missing
 */
#ifndef TEMPOMX_SENDMAIL_HEADERS_H
#define TEMPOMX_SENDMAIL_HEADERS_H

#include <stddef.h>

struct strvec {
	char **v;
	size_t n;
};

void strvec_add(struct strvec *sv, const char *s);
void strvec_free(struct strvec *sv);

/* The addresses of an RFC 5322 address list ("A <a@x>, b@y (c), g: d@z;")
 * appended to out; display names, comments and group names dropped. */
void headers_addresses(const char *list, struct strvec *out);

/* The new message: the header section of msg (len octets) without its
 * Bcc fields, with "From: fullname <sender>" (or just the sender),
 * "Date:" and "Message-ID:" put first when msg has none; the body as it
 * is. With rcpts not NULL, the addresses of To, Cc and Bcc are appended
 * to it (-t). Returns a malloc'd buffer of *outlen octets. */
char *headers_rewrite(const char *msg, size_t len, const char *sender, const char *fullname,
                      const char *hostname, struct strvec *rcpts, size_t *outlen);

#endif
