/*
 * spool.h: the on-disk queue shared by all stages.
 *
 * A message is written and fsync'd once, by smtpd; every later change of
 * its envelope is a record appended to the same file (spool_note), and
 * every hand-off between stages is a rename of that file. Only src/spool/
 * calls rename() or unlink() on spool files. See src/spool/spool.c for
 * the crash-safety argument.
 *
 *   spool.c   directory layout, create/commit/move/note/update/remove, listing
 *   envelope.c, records.c  the envelope block and the update records
 *   headers.c the X-Tempomx-* fields made from the envelope at delivery
 *   recycle.c spare files in spare/, reused instead of create + unlink
 *   commit.c  writer thread pool: fsyncs off the event loop (smtpd)
 *   watch.c   inotify + periodic rescan of queue directories (libevent)
 */
#ifndef TEMPOMX_SPOOL_H
#define TEMPOMX_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "envelope.h"
#include "queueid.h"

struct event_base;

enum spool_queue {
	Q_INCOMING = 0,
	Q_HI,
	Q_LO,
	Q_OUT,
	Q_DEFERRED,
	Q_HOLD,
	Q_QUARANTINE,
	Q_CORRUPT,
	Q_COUNT
};

/* Open handles on one spool; one per process (or per thread that needs
 * its own; the struct is read-only after spool_open and may be shared). */
struct flush_group;
struct spool_recycle;

struct spool {
	char *path;
	int dirfd[Q_COUNT]; /* O_DIRECTORY descriptors of each queue */
	int rootfd;
	int sparefd; /* spare/: files kept for reuse (recycle.c); -1 if absent */
	struct spool_recycle *recycle;
	/* Group commit of directory flushes (spool.c): threads of one process
	 * that renamed into the same directory share one fsync of it. */
	struct flush_group *dsync;
};

/* "incoming", "hi", ... */
const char *spool_queue_name(enum spool_queue q);
/* Reverse of spool_queue_name(); -1 if unknown. */
int spool_queue_from_name(const char *name);

/* Master, at start-up, as root: create the spool root and every queue
 * directory (and db/, tls/) with mode 0700 owned by uid/gid; check that
 * existing ones are not group/world writable. Returns 0 or -1 with err. */
int spool_prepare(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen);
/* Open the queue directories. Returns 0 or -1 (errno set). */
int spool_open(struct spool *sp, const char *path);
void spool_close(struct spool *sp);
/* Remove files left in incoming/ (they never got a 250). Returns count. */
int spool_clean_incoming(struct spool *sp);

/* Remove the files in incoming/ that process pid left behind when it died
 * (the master calls this before restarting a child): messages it was
 * receiving (their queue ID carries its pid) and its unfinished envelope
 * updates. None of them was acknowledged or replaced anything. Returns
 * the count. */
int spool_clean_incoming_pid(struct spool *sp, pid_t pid);

/* A message being received. */
struct spool_file {
	int fd;
	char id[QUEUEID_SIZE];
	off_t size_off;   /* file offset of the fixed-width size field */
	off_t hops_off;   /* of the fixed-width hops field; 0: none */
	off_t body_start; /* file offset of the first message octet */
	/* Received: fields in the message (ours included), written by
	 * spool_commit() into the hops field; starts as env->hops. */
	int hops;
};

/* Create incoming/<new id> (O_EXCL, 0600) and write the envelope block.
 * env->id is set to the new ID. Returns 0 or -1 (errno set, nothing left).
 * A creator that will count the Received: fields sets env->hops to 0 (or
 * any count so far) and sf->hops to the final count before the commit;
 * env->hops -1 leaves the envelope without a count. */
int spool_create(struct spool *sp, struct envelope *env, struct spool_file *sf);
/* Append message octets (blocking write to the page cache). */
int spool_write(struct spool_file *sf, const void *buf, size_t len);
/* Finish: patch the size (and the hops count, when the block has one, from
 * sf->hops), fsync the file, close it, rename it into dest
 * and fsync dest. Blocking: run it off the event loop (commit.c). Returns 0,
 * or -1 with errno set and the incoming file removed (EIO if the file's
 * length is not body_start + size; EEXIST if dest already has the name).
 * Only if the final directory fsync fails is the file left in dest with -1
 * returned: no 250 is sent, so the worst case is a duplicate. */
int spool_commit(struct spool *sp, struct spool_file *sf, uint64_t size, enum spool_queue dest);
/* Give up on a message being received: close and unlink. */
void spool_abort(struct spool *sp, struct spool_file *sf);

/* Move a file between queues: rename, then fsync the destination (and the
 * source) directory. Returns 0, or -1 with errno (ENOENT: someone else
 * took it). */
int spool_move(struct spool *sp, const char *id, enum spool_queue from, enum spool_queue to);
/* Move without flushing any directory, for a hand-off whose loss in a
 * crash only means the message is handled again by the earlier stage
 * (e.g. the scanner passing an unchanged file on to out/). The file's
 * content must already be durable. Same return values as spool_move(). */
int spool_handoff(struct spool *sp, const char *id, enum spool_queue from, enum spool_queue to);
/* Read the envelope of q/id. Returns 0, -1 with errno (ENOENT), or -2 when
 * the file cannot be parsed: it has then been moved to corrupt/ with a log
 * line. *body_off (if not NULL) receives the message offset. The envelope
 * is the last valid update record of a version 2 file (or its head block
 * when it has none); an unfinished record left by a crash is ignored, with
 * a log line. A file is also corrupt when its envelope names another ID,
 * when it is shorter than its size field says (version 1: when its
 * length differs), or when a record with a matching CRC is not this
 * message's envelope. On failure *env is all zero, owning nothing. */
int spool_read(struct spool *sp, enum spool_queue q, const char *id, struct envelope *env,
               size_t *body_off);
/* Open q/id read-only and parse its envelope; on success the caller owns
 * *fdp, positioned nowhere in particular. Same return values as
 * spool_read(). */
int spool_open_message(struct spool *sp, enum spool_queue q, const char *id, struct envelope *env,
                       size_t *body_off, int *fdp);
/* Like spool_open_message(), for the stage that owns q/id: the file is
 * open for reading and writing, so that spool_note() can record an
 * update in it. */
int spool_take(struct spool *sp, enum spool_queue q, const char *id, struct envelope *env,
               size_t *body_off, int *fdp);
/* Record env as the new envelope of the version 2 file open on fd (from
 * spool_take(), env read from it): one update record appended after the
 * last valid one, no copy of the message. Without SPOOL_NOTE_SYNC nothing
 * is flushed: use it only where losing the record in a crash is harmless
 * (a rescan, a repeated delivery attempt; see spool.c). Returns 0 (env's
 * log_end moves on), or -1 with errno (EINVAL for a version 1 file). A
 * record that failed half-way is ignored by every reader. */
#define SPOOL_NOTE_SYNC 1
int spool_note(int fd, struct envelope *env, int flags);
/* Claim the message open on fd, which was opened as q/id: an exclusive
 * flock(2) on the file, released when fd is closed, then a check that
 * q/id is still that file. A stage that works on a message for a while
 * (delivery, from the open to the final update) holds the claim, and
 * tempomxctl claims a message before it moves or removes it from such a
 * queue, so the two never act on one message at once. Never blocks.
 * Returns 0, or -1 with errno EWOULDBLOCK (claimed by another process)
 * or ENOENT (q/id was moved or removed meanwhile). */
int spool_claim(struct spool *sp, enum spool_queue q, const char *id, int fd);
/* Rewrite q/id with a new envelope and the same message, optionally with
 * extra header text (CRLF-terminated lines) put before the message, into
 * queue dest (dest may equal q): new file in incoming/, fsync, rename over
 * q/id, then (if dest != q) rename on into dest, fsync. The id and size
 * written come from the file, not from env. Returns 0 or -1 (errno set;
 * EBADMSG if the old file cannot be parsed). A failure before the first
 * rename leaves the old file untouched; after a crash or failure between
 * the two renames the updated file is in q. If another process took q/id
 * away meanwhile (tempomxctl hold or delete), the update fails with
 * ENOENT and is not written back under the old name. */
int spool_update(struct spool *sp, enum spool_queue q, const char *id, const struct envelope *env,
                 const char *prepend, enum spool_queue dest);
/* Remove q/id durably (unlink + fsync dir). */
int spool_remove(struct spool *sp, enum spool_queue q, const char *id);
/* Remove q/id durably (unlink + fsync dir) without putting the file in
 * spare/, for a process that does not own the message (tempomxctl): the
 * stage that does may still have it open and read it. In corrupt/, id
 * may also be a suffixed name ("ID.1"). */
int spool_purge(struct spool *sp, enum spool_queue q, const char *id);
/* From now on this handle unlinks the files it replaces or removes
 * instead of keeping them in spare/ (see spool_purge()). */
void spool_keep_files(struct spool *sp);
/* Remove q/id once every recipient is durably delivered elsewhere: unlink
 * without flushing the directory. If a crash undoes the unlink, the
 * message is delivered again (at-least-once), never lost. */
int spool_release(struct spool *sp, enum spool_queue q, const char *id);
/* Move a file that cannot be parsed to corrupt/ and log why. */
void spool_corrupt(struct spool *sp, enum spool_queue q, const char *id, const char *why);

/* List the queue IDs in q, sorted (= by arrival). Returns the count and a
 * malloc'd array of QUEUEID_SIZE strings in *ids (free with free()).
 * Names that are not queue IDs are ignored. */
size_t spool_list(struct spool *sp, enum spool_queue q, char (**ids)[QUEUEID_SIZE]);
/* Count files in q without sorting. */
size_t spool_count(struct spool *sp, enum spool_queue q);

/*
 * commit.c: a pool of writer threads that run spool_commit() so the smtpd
 * event loop never waits for a disk flush; parallel fsyncs are what make a
 * durable spool fast. The completion callback runs in the event loop.
 */
struct commit_pool;
typedef void (*commit_done_fn)(void *arg, int error); /* error: 0 or errno */

struct commit_pool *commit_pool_new(struct event_base *base, struct spool *sp, int nthreads);
/* Takes over sf (its descriptor is closed by the pool). */
void commit_pool_submit(struct commit_pool *pool, struct spool_file *sf, uint64_t size,
                        enum spool_queue dest, commit_done_fn done, void *arg);
/* Cancel the callback for arg (the session went away); the commit itself
 * still completes, so the mail is not lost. */
void commit_pool_forget(struct commit_pool *pool, void *arg);
/* Wait for every queued commit, then stop the threads. The callbacks not
 * forgotten run before it returns, in the caller's thread. Never call it
 * from inside a completion callback. */
void commit_pool_free(struct commit_pool *pool);
size_t commit_pool_pending(struct commit_pool *pool);

/*
 * watch.c: learn of new files in queue directories by inotify (files
 * renamed in), with a periodic full rescan as a safety net. The callback
 * runs in the event loop, once per file seen (possibly more than once for
 * the same file: callers must tolerate ENOENT and duplicates).
 */
struct spool_watch;
typedef void (*watch_fn)(void *arg, enum spool_queue q, const char *id);

/* Watch the queues whose bits (1 << q) are set in mask. A rescan of all
 * of them happens at once (start-up) and then every interval seconds. */
struct spool_watch *spool_watch_new(struct event_base *base, struct spool *sp, unsigned mask,
                                    int64_t interval, watch_fn fn, void *arg);
/* Force a rescan now (e.g. after SIGHUP or a flush request). */
void spool_watch_rescan(struct spool_watch *w);
/* After a configuration reload: the periodic rescan runs every interval
 * seconds from now on (0: none) if that changed, and a rescan runs now
 * either way (an edit may have been missed). Returns 1 when the interval
 * changed, 0 when it did not. */
int spool_watch_reload(struct spool_watch *w, int64_t interval);
void spool_watch_free(struct spool_watch *w);

#endif
