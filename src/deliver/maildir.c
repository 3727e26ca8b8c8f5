/*
 * maildir.c: the Maildir writer used by local delivery.
 *
 * Owns the write of one message into one Maildir. Called by the delivery
 * child (delivery.c) in a worker thread; the path comes from the template
 * expansion shared with smtpd (src/common/maildir_path.c).
 *
 * Crash safety follows the Maildir convention: the message is written
 * under a unique name in tmp/, fsync'd, then linked into new/ and new/ is
 * fsync'd. A reader never sees a partial file, and when maildir_deliver()
 * returns 0 the file survives a crash, so the caller may then mark the
 * recipient delivered in the spool (at-least-once: a crash between the two
 * steps delivers the message again, never zero times).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "flushgroup.h"
#include "maildir.h"
#include "utf8.h"
#include "util.h"

/* Octets read from the spool file at a time. */
#define MAILDIR_CHUNK (64 * 1024)
/* Attempts at a fresh name when one is taken (only possible after a pid
 * wraps within the same microsecond, or a clock step). */
#define MAILDIR_NAME_TRIES 5

static atomic_uint maildir_counter;

void maildir_unique(const char *hostname, char *buf, size_t size)
{
	char host[256 * 4 + 1];
	size_t h = 0;
	struct timeval tv;
	unsigned q = atomic_fetch_add(&maildir_counter, 1) + 1;

	/* The Maildir convention forbids '/' and ':' in the host part; ':'
	 * separates the flags a reader appends in cur/. */
	for (const char *p = hostname; *p && h + 5 < sizeof(host); p++) {
		if (*p == '/') {
			memcpy(host + h, "\\057", 4);
			h += 4;
		} else if (*p == ':') {
			memcpy(host + h, "\\072", 4);
			h += 4;
		} else {
			host[h++] = *p;
		}
	}
	host[h] = '\0';
	gettimeofday(&tv, NULL);
	snprintf(buf, size, "%lld.M%06ldP%ldQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
	         (long)getpid(), q, h ? host : "localhost");
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Create dir with tmp/, new/ and cur/ when new/ is missing. The newly made
 * directory entries are fsync'd up the tree: a Maildir that vanished in a
 * crash would take the message the caller thinks is durable with it. */
static int maildir_create(const char *dir, char *err, size_t errlen)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/new", dir);
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(p, sizeof(p), "%s/tmp", dir);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
	}
	if (mkdir_p(dir, 0700) < 0) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", p, strerror(errno));
			return -1;
		}
	}
	snprintf(p, sizeof(p), "%s", dir);
	for (;;) {
		if (fsync_dir_path(p) < 0) {
			/* A directory we may not read was not made by us, so
			 * it holds no new entry: the walk can stop there. */
			if (errno == EACCES || errno == EPERM)
				break;
			snprintf(err, errlen, "fsync %s: %s", p, strerror(errno));
			return -1;
		}
		char *slash = strrchr(p, '/');
		if (slash == NULL || slash == p)
			break;
		*slash = '\0';
	}
	return 0;
}

/* Header lines a local delivery adds (RFC 5321 4.4: the final delivery
 * records the reverse-path as Return-Path:). Octets that could end the
 * line early are dropped, though the SMTP parser never lets them in. */
static size_t maildir_trace(const struct maildir_delivery *md, char *buf, size_t size)
{
	const char *eol = md->crlf ? "\r\n" : "\n";
	char s[600], r[600];
	size_t i = 0, j = 0;
	for (const char *p = md->sender; *p && i + 1 < sizeof(s); p++)
		if ((unsigned char)*p >= 0x20 && *p != 0x7f)
			s[i++] = *p;
	s[i] = '\0';
	for (const char *p = md->rcpt; *p && j + 1 < sizeof(r); p++)
		if ((unsigned char)*p >= 0x20 && *p != 0x7f)
			r[j++] = *p;
	r[j] = '\0';
	int n = snprintf(buf, size, "Return-Path: <%s>%sDelivered-To: %s%s", s, eol, r, eol);
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

/* Copy the message from the spool file to out. With crlf off, each CR LF
 * becomes LF; a CR at the end of a chunk waits for the next one, and a
 * bare CR is kept as it is. */
static int maildir_copy(const struct maildir_delivery *md, int out, const char *tmp, char *err,
                        size_t errlen)
{
	char *in = xmalloc(MAILDIR_CHUNK);
	char *conv = xmalloc(MAILDIR_CHUNK + 1);
	off_t off = md->body_off;
	uint64_t left = md->size;
	int cr_pending = 0;
	int rc = -1;

	while (left > 0) {
		size_t want = left < MAILDIR_CHUNK ? (size_t)left : MAILDIR_CHUNK;
		ssize_t n = pread(md->fd, in, want, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "read spool file: %s", strerror(errno));
			goto done;
		}
		if (n == 0) {
			snprintf(err, errlen, "read spool file: shorter than its envelope says");
			goto done;
		}
		off += n;
		left -= (uint64_t)n;
		const char *w = in;
		size_t wlen = (size_t)n;
		if (!md->crlf) {
			size_t o = 0;
			for (ssize_t i = 0; i < n; i++) {
				if (cr_pending) {
					cr_pending = 0;
					if (in[i] != '\n')
						conv[o++] = '\r';
				}
				if (in[i] == '\r')
					cr_pending = 1;
				else
					conv[o++] = in[i];
			}
			w = conv;
			wlen = o;
		}
		if (write_all(out, w, wlen) < 0) {
			snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
			goto done;
		}
	}
	if (cr_pending && write_all(out, "\r", 1) < 0) {
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	free(in);
	free(conv);
	return rc;
}

int maildir_deliver(const struct maildir_delivery *md, char *path, size_t pathsize, char *err,
                    size_t errlen)
{
	char name[1200], tmp[PATH_MAX], dst[PATH_MAX], newdir[PATH_MAX], trace[1300];
	int fd = -1, saved;

	if (maildir_create(md->dir, err, errlen) < 0)
		return -1;
	for (int tries = 0;; tries++) {
		maildir_unique(md->hostname, name, sizeof(name));
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s", md->dir, name) >= sizeof(tmp)) {
			snprintf(err, errlen, "maildir path too long: %s", md->dir);
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST || tries + 1 >= MAILDIR_NAME_TRIES) {
			saved = errno;
			snprintf(err, errlen, "open %s: %s", tmp, strerror(saved));
			errno = saved;
			return -1;
		}
	}

	size_t tlen = maildir_trace(md, trace, sizeof(trace));
	if (write_all(fd, trace, tlen) < 0 ||
	    (md->headlen > 0 && write_all(fd, md->head, md->headlen) < 0)) {
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (maildir_copy(md, fd, tmp, err, errlen) < 0)
		goto fail;
	if (fsync(fd) < 0) {
		snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		snprintf(err, errlen, "close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;

	/* link() never replaces an existing file, unlike rename(): on a
	 * name clash pick another name for new/ rather than overwrite mail. */
	for (int tries = 0;; tries++) {
		snprintf(dst, sizeof(dst), "%s/new/%s", md->dir, name);
		if (link(tmp, dst) == 0)
			break;
		if (errno == EEXIST && tries + 1 < MAILDIR_NAME_TRIES) {
			maildir_unique(md->hostname, name, sizeof(name));
			continue;
		}
		if (errno == EPERM || errno == ENOSYS || errno == EOPNOTSUPP) {
			/* A file system without hard links: the new name is
			 * fresh, so a rename cannot replace another message. */
			if (rename(tmp, dst) == 0)
				break;
		}
		snprintf(err, errlen, "link %s to new/: %s", tmp, strerror(errno));
		goto fail;
	}
	unlink(tmp);
	snprintf(newdir, sizeof(newdir), "%s/new", md->dir);
	/* Deliveries to the same Maildir at once share the flush. */
	if (flush_dir_path_grouped(newdir) < 0) {
		/* The file is in new/ but maybe not durable: report a temporary
		 * failure; a retry may deliver twice, never zero times. */
		saved = errno;
		snprintf(err, errlen, "fsync %s: %s", newdir, strerror(saved));
		errno = saved;
		return -1;
	}
	if (path)
		snprintf(path, pathsize, "%s", dst);
	return 0;

fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}
