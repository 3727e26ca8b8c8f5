/*
 * maildir.h: local delivery into a Maildir (src/deliver/maildir.c).
 *
 * The delivery child finds a recipient's Maildir with maildir_expand()
 * (include/maildir_path.h) in its event loop, then calls maildir_deliver()
 * from a worker thread: the write ends with two fsyncs and must never
 * block the loop. Every function here is thread-safe.
 */
#ifndef TEMPOMX_MAILDIR_H
#define TEMPOMX_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One message for one recipient. */
struct maildir_delivery {
	const char *dir;      /* the Maildir (expanded template), absolute */
	const char *sender;   /* envelope sender; "" for the null sender <> */
	const char *rcpt;     /* recipient address, for Delivered-To: */
	const char *hostname; /* this host, for the unique file name */
	int fd;               /* spool file, read with pread() only */
	off_t body_off;       /* offset of the first message octet in fd */
	uint64_t size;        /* message octets (update records may follow) */
	const char *head;     /* fields put before the message (our X-Tempomx-*),
	                       * line ends already as crlf says; may be NULL */
	size_t headlen;
	int crlf; /* 1: keep CRLF line ends; 0: write LF */
};

/* Make a file name that is unique on this host, per the Maildir
 * convention: "<seconds>.M<usec>P<pid>Q<counter>.<host>", with '/' and ':'
 * in the host name written as \057 and \072. */
void maildir_unique(const char *hostname, char *buf, size_t size);

/* Deliver: create the Maildir (tmp, new, cur; mode 0700) if missing, write
 * "Return-Path:" and "Delivered-To:" lines and the message into tmp/,
 * fsync, link it into new/, fsync new/. On success return 0 and, when path
 * is not NULL, the delivered file's path. On failure return -1 with errno
 * set, nothing left in tmp/ and a reason ("write /x/tmp/y: No space left
 * on device") in err. */
int maildir_deliver(const struct maildir_delivery *md, char *path, size_t pathsize, char *err,
                    size_t errlen);

#endif
