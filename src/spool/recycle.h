/*
 * recycle.h: spare spool files kept in spare/ for reuse (recycle.c).
 * Private to src/spool: spool.c calls it wherever it would create or
 * remove a message file.
 */
#ifndef TEMPOMX_RECYCLE_H
#define TEMPOMX_RECYCLE_H

#include <sys/types.h>

struct spool;

/* Per-process state; spool_open() creates it, spool_close() frees it. */
struct spool_recycle *recycle_new(void);
void recycle_free(struct spool_recycle *rc);

/* Give dirfd/name (which must not exist) a spare file, empty and open for
 * writing, and return its descriptor. -1 when none is left or anything
 * fails: the caller then creates a new file as usual. */
int recycle_take(struct spool *sp, int dirfd, const char *name);

/* Remove dirfd/name from its directory: moved into spare/ when it is
 * small enough and the pool has room, else unlinked. Same contract as
 * unlinkat(): 0, or -1 with errno (ENOENT if the name is gone). Nothing
 * is flushed. */
int recycle_put(struct spool *sp, int dirfd, const char *name);

#endif
