/*
 * flushgroup.h: group commit of fsync() calls (src/common/flushgroup.c).
 *
 * Threads that each changed the same file or directory and each need the
 * change durable share one fsync: a flush started after a change covers
 * it, so a thread waits for such a flush instead of starting its own
 * while one is already running. Used for the spool's queue directories
 * and for Maildir new/ directories.
 */
#ifndef TEMPOMX_FLUSHGROUP_H
#define TEMPOMX_FLUSHGROUP_H

#include <pthread.h>
#include <stdint.h>

struct flush_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t ticket; /* changes announced so far */
	uint64_t synced; /* changes covered by a completed flush */
	int running;     /* a flush is in progress */
	unsigned users;  /* threads inside flush_group_sync() */
};

void flush_group_init(struct flush_group *g);
void flush_group_destroy(struct flush_group *g);

/* The caller has made a change that flush(arg) makes durable; return once
 * a flush that started after this call has completed (running flush(arg)
 * itself when no flush is in progress). Returns 0, or -1 with errno when
 * the flush this caller ran failed (waiters then run their own). */
int flush_group_sync(struct flush_group *g, int (*flush)(void *arg), void *arg);

/*
 * Flushes of directories named by path, for any number of directories: a
 * fixed table of groups indexed by a hash of the path. Threads flushing
 * the same path share flushes; a path whose slot is busy with another
 * path is flushed on its own (correct, just not shared).
 */
int flush_dir_path_grouped(const char *path);

#endif
