/*
 * spool.c: the on-disk queue: directory layout and every file operation
 * on it (create, commit, move, note, update, remove, listing).
 *
 * Owns all renames and unlinks of spool files; no other file in tempomx
 * calls rename() or unlink() on the spool. Called by the master
 * (spool_prepare, spool_clean_incoming at start-up), smtpd (create, write,
 * commit through commit.c), the scanner and delivery (read, update, move,
 * remove) and tempomxctl (list, read, move).
 *
 * Crash-safety argument. The promise is: once a client got its 250, the
 * message survives a kill -9 of any process and a power failure, it is
 * delivered at least once, and at every instant it is in some queue. The
 * message octets are written and flushed once, by smtpd, and never
 * copied; what changes later (the scan result, the recipients' states) is
 * appended to the same file as update records. It rests on five rules.
 *
 * 1. A file becomes visible to another stage only by a rename into a
 *    queue directory, and only after its content is complete and fsync'd.
 *    A message is written under its queue ID in incoming/, the size field
 *    is patched, the file is fsync'd, then renamed into hi/ or lo/ and the
 *    directory is fsync'd (group-committed: the writer threads of smtpd
 *    that renamed into the same directory share one flush,
 *    flushgroup.c); only then does spool_commit() return and smtpd send
 *    the 250. Because rename is atomic, a reader sees either no file or a
 *    complete one; because the data was flushed before the rename, a name
 *    that survives a power failure points at complete data; because the
 *    directory was flushed before the 250, the name survives too. This is
 *    the only fsync of message data on the common path.
 * 2. incoming/ is private to the writer. Nothing in it was ever
 *    acknowledged, so the master removes whatever it finds there at
 *    start-up (spool_clean_incoming): a half-received message is simply
 *    not accepted and the client, which got no 250, sends it again.
 * 3. The head of a file (envelope block and message) is never modified
 *    once visible. A later envelope is one update record appended after
 *    the message by the stage that owns the file (spool_note): a frame
 *    with the length and a CRC-32 of a complete envelope block. The last
 *    valid record is the envelope. An append cut short by a crash (part
 *    of a record, zeros, or on a file system without a journal octets of
 *    another file) fails its frame or its CRC and is ignored, so a reader
 *    sees the envelope before the append or after it, never a mix; the
 *    next append goes where the last valid record ends and truncates what
 *    lay beyond. Only the head needs to be durable for the promise: a
 *    record lost in a crash takes the message back to an earlier state it
 *    really was in, and every earlier state leads to delivery. The scan
 *    result lost: delivery finds a file in out/ without one and sends it
 *    back to hi/ or lo/ to be scanned again (never out unscanned). A
 *    recipient's "sent" lost: it is delivered again (a duplicate, never a
 *    loss). A bounce's recipient state lost: the bounce, itself a durable
 *    new message (rule 1), is queued again. So records are not flushed.
 *    spool_update() (a whole new file, fsync, rename over the old one)
 *    remains for the admin (tempomxctl requeue) and for version 1 files.
 * 4. Moves between queues are renames, and a rename is atomic on the
 *    journalling file systems a spool belongs on (ext4 with its journal,
 *    xfs): after a power failure the file has its old name or its new
 *    one, never none (on ext4 without a journal, e2fsck puts an orphan in
 *    lost+found; a spool there has that risk on every rename, flushed or
 *    not). A hand-off whose undoing only repeats work is not flushed
 *    (spool_handoff): hi/ or lo/ to out/ (scanned again), out/ to
 *    deferred/ and back (tried again). Moves that nothing else would
 *    repeat (to hold/ or quarantine/, the admin's moves) are flushed by
 *    spool_move(), destination first, group-committed across the threads
 *    of a process like the commits of rule 1.
 * 5. A message has exactly one name at a time: each stage acts only on
 *    the files of its own queues and moves a file only by renaming its
 *    one name, so a message is never in two queues, except after a crash
 *    on a file system that keeps both names of an unflushed rename; it is
 *    then handled twice (a duplicate), never zero times.
 *
 * Delivery is therefore at-least-once: after a crash a recipient may get a
 * message twice (delivered, but the record of it was lost), never zero
 * times. Version 1 files (the message already carrying our header fields,
 * no records) are still read, and updated by spool_update() as version 1
 * did: new file, fsync, rename over, then on into the destination.
 *
 * Another process acting on a message (tempomxctl hold, delete, requeue)
 * must not make a second copy either. A rename is exclusive: of two
 * processes renaming one name, one gets ENOENT. An update never writes a
 * file back under a name that was taken away (spool_update). And a stage
 * that keeps a message open while it works on it claims it
 * (spool_claim, an flock on the file), so the admin's move waits for the
 * end of a delivery instead of taking the file from under it.
 *
 * New names are created with O_EXCL (or a spare file is renamed to them
 * with RENAME_NOREPLACE) and committed with RENAME_NOREPLACE, so even a
 * queue ID collision cannot overwrite an accepted message. Files that are
 * no longer needed go to spare/ for reuse (recycle.c) instead of being
 * unlinked; nothing there is ever read as a message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "flushgroup.h"
#include "log.h"
#include "recycle.h"
#include "spool.h"
#include "util.h"

static const char *const queue_names[Q_COUNT] = {
    [Q_INCOMING] = "incoming",
    [Q_HI] = "hi",
    [Q_LO] = "lo",
    [Q_OUT] = "out",
    [Q_DEFERRED] = "deferred",
    [Q_HOLD] = "hold",
    [Q_QUARANTINE] = "quarantine",
    [Q_CORRUPT] = "corrupt",
};

/* Directories below the spool root that are not queues. */
static const char *const extra_dirs[] = {"db", "tls", "spare", "stats"};

#define CORRUPT_SUFFIX_MAX 1000

static _Atomic unsigned spool_tmp_seq;

const char *spool_queue_name(enum spool_queue q)
{
	if ((unsigned)q < Q_COUNT)
		return queue_names[q];
	return "unknown";
}

int spool_queue_from_name(const char *name)
{
	for (int q = 0; q < Q_COUNT; q++) {
		if (strcmp(queue_names[q], name) == 0)
			return q;
	}
	return -1;
}

static int valid_queue(enum spool_queue q)
{
	return (unsigned)q < Q_COUNT;
}

/* ---- preparing and opening ---- */

static int prepare_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int prepare_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Check (and when root, set) owner and mode of one spool directory. */
static int prepare_check(int fd, const char *path, int created, uid_t uid, gid_t gid, char *err,
                         size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return prepare_fail(err, errlen, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return prepare_fail(err, errlen, "%s: not a directory", path);
	if (created && fchmod(fd, 0700) < 0)
		return prepare_fail(err, errlen, "%s: chmod: %s", path, strerror(errno));
	if (!created && (st.st_mode & (S_IWGRP | S_IWOTH)))
		return prepare_fail(err, errlen,
		                    "%s: group or world writable (mode %04o); "
		                    "the spool must be writable by its owner only",
		                    path, (unsigned)(st.st_mode & 07777));
	if (geteuid() == 0 && (st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return prepare_fail(err, errlen, "%s: chown: %s", path, strerror(errno));
	return 0;
}

int spool_prepare(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	int created = 0;
	if (mkdir(path, 0700) == 0) {
		created = 1;
	} else if (errno == ENOENT) {
		/* Parents are ordinary system directories: 0755. */
		char *parent = xstrdup(path);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if (mkdir_p(parent, 0755) < 0) {
				int e = errno;
				free(parent);
				return prepare_fail(err, errlen, "%s: %s", path, strerror(e));
			}
		}
		free(parent);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return prepare_fail(err, errlen, "%s: mkdir: %s", path, strerror(errno));
		created = 1;
	} else if (errno != EEXIST) {
		return prepare_fail(err, errlen, "%s: mkdir: %s", path, strerror(errno));
	}

	int rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return prepare_fail(err, errlen, "%s: %s", path, strerror(errno));
	if (prepare_check(rootfd, path, created, uid, gid, err, errlen) < 0)
		goto fail;

	size_t nnames = Q_COUNT + sizeof(extra_dirs) / sizeof(extra_dirs[0]);
	for (size_t i = 0; i < nnames; i++) {
		const char *name = i < Q_COUNT ? queue_names[i] : extra_dirs[i - Q_COUNT];
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/%s", path, name);
		int made = 0;
		if (mkdirat(rootfd, name, 0700) == 0)
			made = 1;
		else if (errno != EEXIST) {
			prepare_fail(err, errlen, "%s: mkdir: %s", sub, strerror(errno));
			goto fail;
		}
		/* The spool owner must not be able to point a queue at
		 * another directory for root to chown: no symbolic links. */
		struct stat lst;
		if (fstatat(rootfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
			prepare_fail(err, errlen, "%s: is a symbolic link", sub);
			goto fail;
		}
		int fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			prepare_fail(err, errlen, "%s: %s", sub,
			             errno == ELOOP ? "is a symbolic link" : strerror(errno));
			goto fail;
		}
		int r = prepare_check(fd, sub, made, uid, gid, err, errlen);
		close(fd);
		if (r < 0)
			goto fail;
		created |= made;
	}
	if (created && fsync_dirfd(rootfd) < 0) {
		prepare_fail(err, errlen, "%s: fsync: %s", path, strerror(errno));
		goto fail;
	}
	close(rootfd);
	return 0;
fail:
	close(rootfd);
	return -1;
}

/* Group commit of directory flushes (flushgroup.c): threads of this
 * process that renamed into the same queue share one fsync of it. */
static int flush_queue_dir(void *arg)
{
	return fsync_dirfd(*(const int *)arg);
}

static int dirsync(struct spool *sp, enum spool_queue q)
{
	if (sp->dsync == NULL)
		return fsync_dirfd(sp->dirfd[q]);
	return flush_group_sync(&sp->dsync[q], flush_queue_dir, &sp->dirfd[q]);
}

int spool_open(struct spool *sp, const char *path)
{
	sp->dsync = NULL;
	sp->path = NULL;
	sp->rootfd = -1;
	sp->sparefd = -1;
	sp->recycle = NULL;
	for (int q = 0; q < Q_COUNT; q++)
		sp->dirfd[q] = -1;
	sp->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->rootfd < 0)
		return -1;
	for (int q = 0; q < Q_COUNT; q++) {
		sp->dirfd[q] =
		    openat(sp->rootfd, queue_names[q], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sp->dirfd[q] < 0) {
			int e = errno;
			spool_close(sp);
			errno = e;
			return -1;
		}
	}
	/* A spool made by an older version has no spare/: files are then
	 * created and unlinked as before. */
	sp->sparefd = openat(sp->rootfd, "spare", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	sp->recycle = recycle_new();
	sp->path = xstrdup(path);
	sp->dsync = xcalloc(Q_COUNT, sizeof(*sp->dsync));
	for (int q = 0; q < Q_COUNT; q++)
		flush_group_init(&sp->dsync[q]);
	return 0;
}

void spool_close(struct spool *sp)
{
	for (int q = 0; q < Q_COUNT; q++) {
		if (sp->dirfd[q] >= 0)
			close(sp->dirfd[q]);
		sp->dirfd[q] = -1;
	}
	if (sp->rootfd >= 0)
		close(sp->rootfd);
	sp->rootfd = -1;
	if (sp->sparefd >= 0)
		close(sp->sparefd);
	sp->sparefd = -1;
	recycle_free(sp->recycle);
	sp->recycle = NULL;
	free(sp->path);
	sp->path = NULL;
	if (sp->dsync != NULL) {
		for (int q = 0; q < Q_COUNT; q++)
			flush_group_destroy(&sp->dsync[q]);
		free(sp->dsync);
		sp->dsync = NULL;
	}
}

/* ---- low-level helpers ---- */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_fd(int fd)
{
	while (fsync(fd) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Rename that fails with EEXIST instead of replacing. Falls back to
 * link + unlink on file systems without RENAME_NOREPLACE; a crash between
 * the two leaves an extra name in incoming/, which start-up removes. */
static int rename_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -1;
	if (linkat(fromfd, from, tofd, to, 0) < 0)
		return -1;
	if (unlinkat(fromfd, from, 0) < 0 && errno != ENOENT)
		log_warn("spool: unlink %s after link", from);
	return 0;
}

/* Drop a file we no longer need: into spare/ or unlinked (recycle.c). */
static void discard_keep_errno(struct spool *sp, int dirfd, const char *name)
{
	int e = errno;
	recycle_put(sp, dirfd, name);
	errno = e;
}

static void close_keep_errno(int fd)
{
	int e = errno;
	close(fd);
	errno = e;
}

/* ---- receiving a message ---- */

int spool_create(struct spool *sp, struct envelope *env, struct spool_file *sf)
{
	int incfd = sp->dirfd[Q_INCOMING];
	int fd = -1;
	sf->fd = -1;
	/* A collision is possible only between two processes whose IDs
	 * share the 5-digit process field; a fresh ID resolves it. */
	for (int tries = 0; tries < 16 && fd < 0; tries++) {
		queueid_new(env->id);
		fd = recycle_take(sp, incfd, env->id);
		if (fd < 0)
			fd = openat(incfd, env->id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return -1;
	}
	if (fd < 0)
		return -1;

	size_t len, size_off;
	char *block = envelope_format(env, &len, &size_off);
	if (write_all(fd, block, len) < 0) {
		free(block);
		close_keep_errno(fd);
		discard_keep_errno(sp, incfd, env->id);
		return -1;
	}
	sf->fd = fd;
	memcpy(sf->id, env->id, QUEUEID_SIZE);
	sf->size_off = (off_t)size_off;
	sf->hops_off = 0;
	sf->hops = env->hops;
	if (env->hops >= 0 && env->version >= 2) {
		/* The hops line is the one before size (envelope.h). */
		if (size_off < ENVELOPE_HOPS_BEFORE_SIZE + 5 ||
		    memcmp(block + size_off - ENVELOPE_HOPS_BEFORE_SIZE - 5, "hops ", 5) != 0)
			fatalx("%s: envelope block without its hops line", env->id);
		sf->hops_off = (off_t)(size_off - ENVELOPE_HOPS_BEFORE_SIZE);
	}
	sf->body_start = (off_t)len;
	free(block);
	return 0;
}

int spool_write(struct spool_file *sf, const void *buf, size_t len)
{
	return write_all(sf->fd, buf, len);
}

int spool_commit(struct spool *sp, struct spool_file *sf, uint64_t size, enum spool_queue dest)
{
	int incfd = sp->dirfd[Q_INCOMING];
	char digits[ENVELOPE_SIZE_WIDTH];
	struct stat st;

	if (!valid_queue(dest) || dest == Q_INCOMING) {
		errno = EINVAL;
		goto fail;
	}
	if (sf->hops_off > 0) {
		/* "NNNNN\nsize DDDD...": both fields in one write. */
		char both[ENVELOPE_HOPS_BEFORE_SIZE + ENVELOPE_SIZE_WIDTH];
		envelope_format_hops(both, sf->hops);
		memcpy(both + ENVELOPE_HOPS_WIDTH, "\nsize ",
		       ENVELOPE_HOPS_BEFORE_SIZE - ENVELOPE_HOPS_WIDTH);
		envelope_format_size(both + ENVELOPE_HOPS_BEFORE_SIZE, size);
		if (pwrite_all(sf->fd, both, sizeof(both), sf->hops_off) < 0)
			goto fail;
	} else {
		envelope_format_size(digits, size);
		if (pwrite_all(sf->fd, digits, sizeof(digits), sf->size_off) < 0)
			goto fail;
	}
	/* The caller counted what it wrote; if the file disagrees, something
	 * is badly wrong and the file must not become visible. */
	if (fstat(sf->fd, &st) < 0)
		goto fail;
	if ((uint64_t)st.st_size != (uint64_t)sf->body_start + size) {
		log_warnx("%s: commit refused: file has %lld octets, expected %llu", sf->id,
		          (long long)st.st_size, (unsigned long long)sf->body_start + size);
		errno = EIO;
		goto fail;
	}
	if (fsync_fd(sf->fd) < 0)
		goto fail;
	fault_point("commit-synced");
	int fd = sf->fd;
	sf->fd = -1;
	if (close(fd) < 0 && errno != EINTR)
		goto fail;
	if (rename_noreplace(incfd, sf->id, sp->dirfd[dest], sf->id) < 0)
		goto fail;
	fault_point("commit-renamed");
	/* Past this point the file is in dest. If the directory flush fails
	 * we still report failure, so no 250 is sent and the client retries:
	 * a possible duplicate, never a loss. */
	if (dirsync(sp, dest) < 0) {
		log_warn("%s: fsync of %s/", sf->id, queue_names[dest]);
		return -1;
	}
	return 0;
fail:
	if (sf->fd >= 0)
		close_keep_errno(sf->fd);
	sf->fd = -1;
	discard_keep_errno(sp, incfd, sf->id);
	return -1;
}

void spool_abort(struct spool *sp, struct spool_file *sf)
{
	if (sf->fd >= 0)
		close(sf->fd);
	sf->fd = -1;
	if (queueid_valid(sf->id))
		discard_keep_errno(sp, sp->dirfd[Q_INCOMING], sf->id);
}

int spool_clean_incoming(struct spool *sp)
{
	int fd = openat(sp->dirfd[Q_INCOMING], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("spool: open incoming/");
		return 0;
	}
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		log_warn("spool: open incoming/");
		close(fd);
		return 0;
	}
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(sp->dirfd[Q_INCOMING], de->d_name, 0) < 0) {
			if (errno != ENOENT)
				log_warn("spool: remove incoming/%s", de->d_name);
			continue;
		}
		/* A name there was never acknowledged with a 250. */
		log_info("%.*s: removed from incoming/ (never accepted)", 64, de->d_name);
		n++;
	}
	closedir(d);
	if (n > 0 && dirsync(sp, Q_INCOMING) < 0)
		log_warn("spool: fsync incoming/");
	return n;
}

/* 1 if name in incoming/ was created by process pid: a queue ID whose pid
 * digits match (see queueid.h), or an update's temporary "ID.uPID.N". */
static int incoming_owned_by(const char *name, pid_t pid)
{
	char id[QUEUEID_SIZE], hex[8];
	if (strlen(name) < QUEUEID_LEN)
		return 0;
	memcpy(id, name, QUEUEID_LEN);
	id[QUEUEID_LEN] = '\0';
	if (!queueid_valid(id))
		return 0;
	if (name[QUEUEID_LEN] == '\0') {
		snprintf(hex, sizeof(hex), "%05lX", (unsigned long)pid & 0xfffff);
		return memcmp(name + 14, hex, 5) == 0;
	}
	char want[32];
	int n = snprintf(want, sizeof(want), ".u%ld.", (long)pid);
	return strncmp(name + QUEUEID_LEN, want, (size_t)n) == 0;
}

int spool_clean_incoming_pid(struct spool *sp, pid_t pid)
{
	int fd = openat(sp->dirfd[Q_INCOMING], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return 0;
	}
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!incoming_owned_by(de->d_name, pid))
			continue;
		if (unlinkat(sp->dirfd[Q_INCOMING], de->d_name, 0) == 0) {
			log_info("%.*s: removed from incoming/ (left by pid %ld, never accepted)",
			         64, de->d_name, (long)pid);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* ---- moving, reading, updating ---- */

int spool_move(struct spool *sp, const char *id, enum spool_queue from, enum spool_queue to)
{
	if (!queueid_valid(id) || !valid_queue(from) || !valid_queue(to)) {
		errno = EINVAL;
		return -1;
	}
	if (from == to)
		return 0;
	if (renameat(sp->dirfd[from], id, sp->dirfd[to], id) < 0)
		return -1;
	/* One journalled rename changes both directories; flushing the
	 * destination makes it durable (ext4, xfs). Were the old name to come
	 * back after a crash, the message would be handled again: a possible
	 * duplicate, never a loss. */
	if (dirsync(sp, to) < 0)
		return -1;
	return 0;
}

int spool_handoff(struct spool *sp, const char *id, enum spool_queue from, enum spool_queue to)
{
	if (!queueid_valid(id) || !valid_queue(from) || !valid_queue(to)) {
		errno = EINVAL;
		return -1;
	}
	if (from == to)
		return 0;
	return renameat(sp->dirfd[from], id, sp->dirfd[to], id);
}

/* Most octets of update records read after a message; a file with more
 * is corrupt (a message gets one record per delivery attempt). */
#define SPOOL_RECORDS_MAX (16 * 1024 * 1024)

/* A file up to this size is read with one pread(): head block, message
 * and records at once (a typical message is a few kilobytes). */
#define SPOOL_READ_WHOLE (64 * 1024)

/* Apply the update records after the message of a version 2 file, the
 * octets from env->log_end to env->file_len: taken from buf when it holds
 * them (have octets from offset 0), else read. Returns 0, -1 on a read
 * error (errno), -2 with err set when the records are corrupt. */
static int read_records(int fd, const char *buf, size_t have, struct envelope *env, char *err,
                        size_t errlen)
{
	if (env->file_len == env->log_end)
		return 0;
	uint64_t tail = env->file_len - env->log_end;
	if (tail > SPOOL_RECORDS_MAX) {
		snprintf(err, errlen, "%llu octets of update records after the message",
		         (unsigned long long)tail);
		return -2;
	}
	char *own = NULL;
	const char *recs;
	size_t got = 0;
	if ((uint64_t)have >= env->file_len) {
		recs = buf + env->log_end;
		got = (size_t)tail;
	} else {
		own = xmalloc((size_t)tail);
		while (got < tail) {
			ssize_t n =
			    pread(fd, own + got, (size_t)tail - got, (off_t)(env->log_end + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				int e = errno;
				free(own);
				errno = e;
				return -1;
			}
			if (n == 0)
				break;
			got += (size_t)n;
		}
		recs = own;
	}
	size_t valid = 0;
	uint64_t start = env->log_end, len = env->file_len;
	int r = envelope_apply_records(recs, got, env, &valid, err, errlen);
	free(own);
	if (r < 0)
		return -2;
	env->log_end = start + valid;
	env->file_len = len;
	return 0;
}

/* Parse the head block of a file of st_size octets: from buf when one
 * pread() got the whole file, else incrementally (envelope_read_fd). */
static int read_head(int fd, off_t st_size, char **bufp, size_t *havep, struct envelope *env,
                     size_t *off, char *err, size_t errlen)
{
	*bufp = NULL;
	*havep = 0;
	if (st_size > 0 && st_size <= SPOOL_READ_WHOLE) {
		char *buf = xmalloc((size_t)st_size);
		ssize_t n;
		do
			n = pread(fd, buf, (size_t)st_size, 0);
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)st_size) {
			*bufp = buf;
			*havep = (size_t)n;
			return envelope_parse(buf, (size_t)n, env, off, err, errlen);
		}
		free(buf); /* short or failed: read it the general way */
	}
	return envelope_read_fd(fd, env, off, err, errlen);
}

static int open_message(struct spool *sp, enum spool_queue q, const char *id, struct envelope *env,
                        size_t *body_off, int *fdp, int mode)
{
	char err[300];
	size_t off, have;
	char *buf;
	struct stat st;

	memset(env, 0, sizeof(*env));
	if (!queueid_valid(id) || !valid_queue(q)) {
		errno = EINVAL;
		return -1;
	}
	/* O_NONBLOCK so a FIFO planted under a queue name cannot hang us
	 * (on a regular file it changes nothing, so it stays set);
	 * O_NOFOLLOW so a symbolic link is never followed out of the spool. */
	int fd = openat(sp->dirfd[q], id, mode | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP) {
			spool_corrupt(sp, q, id, "symbolic link");
			return -2;
		}
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		close_keep_errno(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		spool_corrupt(sp, q, id, "not a regular file");
		return -2;
	}
	if (read_head(fd, st.st_size, &buf, &have, env, &off, err, sizeof(err)) < 0) {
		free(buf);
		if (errno != EBADMSG) {
			log_warnx("%s: %s/: %s", id, queue_names[q], err);
			close_keep_errno(fd);
			return -1;
		}
		close(fd);
		spool_corrupt(sp, q, id, err);
		return -2;
	}
	if (strcmp(env->id, id) != 0) {
		snprintf(err, sizeof(err), "envelope id %s does not match the file name", env->id);
		goto corrupt;
	}
	/* Version 1: the message fills the file. Version 2: update records
	 * may follow it. */
	if ((uint64_t)st.st_size < (uint64_t)off + env->size ||
	    (env->version < 2 && (uint64_t)st.st_size != (uint64_t)off + env->size)) {
		snprintf(err, sizeof(err),
		         "size mismatch: envelope says %llu octets, file has %llu",
		         (unsigned long long)env->size, (unsigned long long)(st.st_size - off));
		goto corrupt;
	}
	env->log_end = (uint64_t)off + env->size;
	env->file_len = (uint64_t)st.st_size;
	env->queued_usec = (int64_t)st.st_ctim.tv_sec * 1000000 + st.st_ctim.tv_nsec / 1000;
	int r = read_records(fd, buf, have, env, err, sizeof(err));
	if (r == -1) {
		log_warn("%s: %s/: reading update records", id, queue_names[q]);
		free(buf);
		close_keep_errno(fd);
		envelope_free(env);
		memset(env, 0, sizeof(*env));
		return -1;
	}
	if (r == -2)
		goto corrupt;
	free(buf);
	if (env->log_end < env->file_len)
		log_info("%s: %s/: ignoring %llu octets of an unfinished update (a crash); "
		         "using the envelope as it was before it",
		         id, queue_names[q], (unsigned long long)(env->file_len - env->log_end));
	if (body_off)
		*body_off = off;
	*fdp = fd;
	return 0;
corrupt:
	free(buf);
	close(fd);
	envelope_free(env);
	memset(env, 0, sizeof(*env));
	spool_corrupt(sp, q, id, err);
	return -2;
}

int spool_open_message(struct spool *sp, enum spool_queue q, const char *id, struct envelope *env,
                       size_t *body_off, int *fdp)
{
	return open_message(sp, q, id, env, body_off, fdp, O_RDONLY);
}

int spool_take(struct spool *sp, enum spool_queue q, const char *id, struct envelope *env,
               size_t *body_off, int *fdp)
{
	return open_message(sp, q, id, env, body_off, fdp, O_RDWR);
}

int spool_note(int fd, struct envelope *env, int flags)
{
	if (env->version < 2 || env->log_end == 0) {
		errno = EINVAL;
		return -1;
	}
	size_t len;
	char *rec = envelope_record(env, &len);
	int r = pwrite_all(fd, rec, len, (off_t)env->log_end);
	free(rec);
	if (r < 0)
		return -1;
	uint64_t end = env->log_end + len;
	/* What lay beyond was the unfinished tail of an earlier append; left
	 * there, part of it could read as a record again. */
	if (env->file_len > end && ftruncate(fd, (off_t)end) < 0)
		return -1;
	if ((flags & SPOOL_NOTE_SYNC) && fdatasync(fd) < 0)
		return -1;
	env->log_end = end;
	if (env->file_len < end)
		env->file_len = end;
	env->nrecords++;
	return 0;
}

int spool_claim(struct spool *sp, enum spool_queue q, const char *id, int fd)
{
	struct stat a, b;
	if (!queueid_valid(id) || !valid_queue(q)) {
		errno = EINVAL;
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EINTR)
			return -1;
	}
	/* Between the open and the lock the other side may have claimed,
	 * moved and released it: the name must still be this file. */
	if (fstat(fd, &a) < 0 || fstatat(sp->dirfd[q], id, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		flock(fd, LOCK_UN);
		errno = ENOENT;
		return -1;
	}
	return 0;
}

int spool_read(struct spool *sp, enum spool_queue q, const char *id, struct envelope *env,
               size_t *body_off)
{
	int fd;
	int r = spool_open_message(sp, q, id, env, body_off, &fd);
	if (r == 0)
		close(fd);
	return r;
}

/* Copy len octets of src from offset off to the end of dst. */
static int copy_octets(int src, off_t off, int dst, uint64_t len)
{
	int use_cfr = 1;
	char *buf = NULL;
	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n;
		if (use_cfr) {
			n = copy_file_range(src, &off, dst, NULL, chunk, 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			              errno == EOPNOTSUPP)) {
				use_cfr = 0;
				continue;
			}
		} else {
			if (buf == NULL)
				buf = xmalloc(65536);
			if (chunk > 65536)
				chunk = 65536;
			n = pread(src, buf, chunk, off);
			if (n > 0 && write_all(dst, buf, (size_t)n) < 0)
				n = -1;
			if (n > 0)
				off += n;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -1;
		}
		if (n == 0) {
			/* The source is shorter than its envelope said. */
			free(buf);
			errno = EIO;
			return -1;
		}
		len -= (uint64_t)n;
	}
	free(buf);
	return 0;
}

int spool_update(struct spool *sp, enum spool_queue q, const char *id, const struct envelope *env,
                 const char *prepend, enum spool_queue dest)
{
	struct envelope old, e;
	char tmp[QUEUEID_SIZE + 32], err[300];
	size_t old_off;
	struct stat st;
	int incfd = sp->dirfd[Q_INCOMING], dst = -1;

	if (!queueid_valid(id) || !valid_queue(q) || !valid_queue(dest) || q == Q_INCOMING ||
	    dest == Q_INCOMING) {
		errno = EINVAL;
		return -1;
	}
	int src = openat(sp->dirfd[q], id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (src < 0)
		return -1;
	if (fstat(src, &st) < 0) {
		close_keep_errno(src);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(src);
		errno = EBADMSG;
		return -1;
	}
	if (envelope_read_fd(src, &old, &old_off, err, sizeof(err)) < 0) {
		close_keep_errno(src);
		return -1;
	}
	/* The message is old.size octets; update records after it (version
	 * 2) are replaced by the envelope written now. */
	uint64_t body_len = old.size;
	int version = old.version;
	envelope_free(&old);
	if ((uint64_t)st.st_size < old_off + body_len ||
	    (version < 2 && (uint64_t)st.st_size != old_off + body_len)) {
		close(src);
		errno = EBADMSG;
		return -1;
	}
	size_t plen = prepend ? strlen(prepend) : 0;

	/* The name, the size and the version always describe the file being
	 * written, whatever the caller's copy says: a version 1 file stays
	 * version 1, since its message already carries our header fields. */
	e = *env;
	memcpy(e.id, id, QUEUEID_SIZE);
	e.size = plen + body_len;
	e.version = version;
	size_t blen;
	char *block = envelope_format(&e, &blen, NULL);

	snprintf(tmp, sizeof(tmp), "%s.u%ld.%u", id, (long)getpid(),
	         atomic_fetch_add(&spool_tmp_seq, 1));
	dst = recycle_take(sp, incfd, tmp);
	if (dst < 0)
		dst = openat(incfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (dst < 0)
		goto fail;
	if (write_all(dst, block, blen) < 0 || (plen > 0 && write_all(dst, prepend, plen) < 0) ||
	    copy_octets(src, (off_t)old_off, dst, body_len) < 0)
		goto fail_unlink;
	if (fstat(dst, &st) < 0)
		goto fail_unlink;
	if ((uint64_t)st.st_size != blen + plen + body_len) {
		errno = EIO;
		goto fail_unlink;
	}
	if (fsync_fd(dst) < 0)
		goto fail_unlink;
	if (close(dst) < 0 && errno != EINTR) {
		dst = -1;
		goto fail_unlink;
	}
	dst = -1;
	/* Replace in place first (rule 3), then move on if asked. The
	 * exchange keeps the old file (now under the temporary name) for
	 * reuse; a plain rename where the exchange fails (not supported,
	 * or the old name is gone). */
	if (renameat2(incfd, tmp, sp->dirfd[q], id, RENAME_EXCHANGE) == 0) {
		discard_keep_errno(sp, incfd, tmp);
	} else if (errno == ENOENT) {
		/* The old name is gone: another process (tempomxctl hold or
		 * delete) took the message meanwhile. Putting the update back
		 * under that name would make a second copy of the message. */
		goto fail_unlink;
	} else if (renameat(incfd, tmp, sp->dirfd[q], id) < 0) {
		goto fail_unlink;
	}
	free(block);
	close(src);
	if (dest != q) {
		if (renameat(sp->dirfd[q], id, sp->dirfd[dest], id) < 0)
			return -1;
		if (dirsync(sp, dest) < 0)
			return -1;
	}
	return dirsync(sp, q);

fail_unlink:
	discard_keep_errno(sp, incfd, tmp);
fail:
	if (dst >= 0)
		close_keep_errno(dst);
	free(block);
	close_keep_errno(src);
	return -1;
}

int spool_remove(struct spool *sp, enum spool_queue q, const char *id)
{
	if (!queueid_valid(id) || !valid_queue(q)) {
		errno = EINVAL;
		return -1;
	}
	if (recycle_put(sp, sp->dirfd[q], id) < 0)
		return -1;
	return dirsync(sp, q);
}

int spool_purge(struct spool *sp, enum spool_queue q, const char *id)
{
	if (!valid_queue(q) || (!queueid_valid(id) && q != Q_CORRUPT) || strchr(id, '/') != NULL ||
	    id[0] == '.' || id[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	/* Never into spare/: a stage may still be reading the file, and a
	 * spare file is truncated when it is taken. */
	if (unlinkat(sp->dirfd[q], id, 0) < 0)
		return -1;
	return dirsync(sp, q);
}

void spool_keep_files(struct spool *sp)
{
	if (sp->sparefd >= 0)
		close(sp->sparefd);
	sp->sparefd = -1;
}

int spool_release(struct spool *sp, enum spool_queue q, const char *id)
{
	if (!queueid_valid(id) || !valid_queue(q)) {
		errno = EINVAL;
		return -1;
	}
	return recycle_put(sp, sp->dirfd[q], id);
}

void spool_corrupt(struct spool *sp, enum spool_queue q, const char *id, const char *why)
{
	char name[QUEUEID_SIZE + 16];
	if (!queueid_valid(id) || !valid_queue(q)) {
		log_warnx("spool: refusing to move a bad name to corrupt/");
		return;
	}
	if (q == Q_CORRUPT) {
		log_warnx("%s: in corrupt/: %s", id, why);
		return;
	}
	snprintf(name, sizeof(name), "%s", id);
	int r = -1;
	for (int i = 1; i <= CORRUPT_SUFFIX_MAX; i++) {
		r = rename_noreplace(sp->dirfd[q], id, sp->dirfd[Q_CORRUPT], name);
		if (r == 0 || errno != EEXIST)
			break;
		snprintf(name, sizeof(name), "%s.%d", id, i);
	}
	if (r < 0) {
		log_warn("%s: cannot move %s/%s to corrupt/ (%s)", id, queue_names[q], id, why);
		return;
	}
	if (dirsync(sp, Q_CORRUPT) < 0 || dirsync(sp, q) < 0)
		log_warn("%s: fsync after move to corrupt/", id);
	if (strcmp(name, id) == 0)
		log_warnx("%s: moved to corrupt/: %s", id, why);
	else
		log_warnx("%s: moved to corrupt/ as %s: %s", id, name, why);
}

/* ---- listing ---- */

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static DIR *open_queue_dir(struct spool *sp, enum spool_queue q)
{
	if (!valid_queue(q))
		return NULL;
	/* A fresh descriptor: the stored one is shared and its position must
	 * not move under another thread. */
	int fd = openat(sp->dirfd[q], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("spool: open %s/", queue_names[q]);
		return NULL;
	}
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		log_warn("spool: open %s/", queue_names[q]);
		close(fd);
	}
	return d;
}

size_t spool_list(struct spool *sp, enum spool_queue q, char (**ids)[QUEUEID_SIZE])
{
	char(*v)[QUEUEID_SIZE] = NULL;
	size_t n = 0, cap = 0;
	*ids = NULL;
	DIR *d = open_queue_dir(sp, q);
	if (d == NULL)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!queueid_valid(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		memcpy(v[n++], de->d_name, QUEUEID_SIZE);
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_id);
	*ids = v;
	return n;
}

size_t spool_count(struct spool *sp, enum spool_queue q)
{
	size_t n = 0;
	DIR *d = open_queue_dir(sp, q);
	if (d == NULL)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (queueid_valid(de->d_name))
			n++;
	}
	closedir(d);
	return n;
}
