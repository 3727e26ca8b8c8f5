/*
 * idlist.h: a sorted list of queue IDs, oldest first (src/spool/idlist.c).
 *
 * Queue IDs sort by arrival time, so keeping them sorted gives the order
 * in which a stage takes its work. Used by the scanner's scheduler (one
 * list per class) and by delivery (messages waiting in out/). Insertions
 * are mostly at the end (new mail) and removals at the front, so the list
 * keeps a moving head instead of shifting on every pop.
 */
#ifndef TEMPOMX_IDLIST_H
#define TEMPOMX_IDLIST_H

#include <stddef.h>

#include "queueid.h"

struct idlist {
	char (*v)[QUEUEID_SIZE];
	size_t head, n, cap;
};

/* Add id in order. Returns 1, or 0 when it is already there. */
int idlist_insert(struct idlist *l, const char *id);
/* Remove id. Returns 1, or 0 when it was not there. */
int idlist_remove(struct idlist *l, const char *id);
/* The oldest ID, or NULL when the list is empty. */
const char *idlist_first(const struct idlist *l);
/* Take the oldest ID into id (QUEUEID_SIZE). Returns 0 when empty. */
int idlist_pop(struct idlist *l, char *id);
void idlist_free(struct idlist *l);

#endif
