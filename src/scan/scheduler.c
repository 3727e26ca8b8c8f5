/*
 * scheduler.c: the SCHEDULE stage of the paper's model: which waiting
 * message the scanner starts next.
 *
 * Owns the two ordered work lists (hi/ and lo/) and the pick rule:
 *   absolute  no lo message is started while a hi message waits (the
 *             paper's scheduler: junk floods lo/ and good mail in hi/
 *             overtakes it);
 *   weighted  while both wait, `weight` hi messages per lo message, so lo
 *             mail keeps a share of the scanner;
 *   fifo      one order by arrival across both lists: the baseline
 *             without prioritization, for comparisons.
 * Within a class the oldest goes first. With lo_max_wait, a lo message
 * older than that is treated as hi: it competes with the hi list by
 * arrival time, so a steady stream of hi mail cannot starve lo forever.
 *
 * Pure: no I/O and no clock of its own (the caller passes the time), so
 * the rules are tested as a table (t/unit/test_scheduler.c). Used by the
 * scanner child's event loop (scanner.c), from that one thread only.
 *
 * Queue IDs sort by arrival as plain strings and carry their arrival
 * time (queueid.h), so a list is a sorted array of IDs with a moving
 * head: new IDs nearly always sort last and are appended, and the
 * duplicates a rescan reports are found by binary search.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "idlist.h"
#include "queueid.h"
#include "scan.h"
#include "util.h"

void sched_configure(struct scheduler *s, int mode, unsigned weight, int64_t lo_max_wait_usec)
{
	s->mode = mode;
	s->weight = weight ? weight : 1;
	s->lo_max_wait_usec = lo_max_wait_usec > 0 ? lo_max_wait_usec : 0;
	s->hi_run = 0;
}

void sched_init(struct scheduler *s, int mode, unsigned weight, int64_t lo_max_wait_usec)
{
	memset(s, 0, sizeof(*s));
	sched_configure(s, mode, weight, lo_max_wait_usec);
}

void sched_free(struct scheduler *s)
{
	idlist_free(&s->list[CLASS_HI]);
	idlist_free(&s->list[CLASS_LO]);
	memset(s, 0, sizeof(*s));
}

int sched_add(struct scheduler *s, enum msg_class c, const char *id)
{
	if ((c != CLASS_HI && c != CLASS_LO) || !queueid_valid(id))
		return -1;
	return idlist_insert(&s->list[c], id);
}

int sched_remove(struct scheduler *s, enum msg_class c, const char *id)
{
	if (c != CLASS_HI && c != CLASS_LO)
		return 0;
	return idlist_remove(&s->list[c], id);
}

size_t sched_waiting(const struct scheduler *s, enum msg_class c)
{
	return (c == CLASS_HI || c == CLASS_LO) ? s->list[c].n : 0;
}

const char *sched_mode_name(int mode)
{
	switch (mode) {
	case SCHEDULE_ABSOLUTE:
		return "absolute";
	case SCHEDULE_WEIGHTED:
		return "weighted";
	case SCHEDULE_FIFO:
		return "fifo";
	}
	return "unknown";
}

/* The oldest lo message has waited past lo_max_wait. */
static int sched_lo_promoted(const struct scheduler *s, const char *lo, int64_t now_usec)
{
	return s->lo_max_wait_usec > 0 && lo != NULL &&
	       now_usec - queueid_time(lo) > s->lo_max_wait_usec;
}

/* Which list the next pick comes from; *promoted when a lo message goes
 * as hi. Both lists are known not to be empty together. */
static enum msg_class sched_choose(struct scheduler *s, int64_t now_usec, int *promoted)
{
	const char *hi = idlist_first(&s->list[CLASS_HI]);
	const char *lo = idlist_first(&s->list[CLASS_LO]);

	*promoted = 0;
	if (hi == NULL)
		return CLASS_LO;
	if (lo == NULL)
		return CLASS_HI;
	if (s->mode == SCHEDULE_FIFO)
		return strcmp(lo, hi) < 0 ? CLASS_LO : CLASS_HI;
	/* An old lo message counts as hi: it goes before the hi messages
	 * that arrived after it, and after those that arrived before. */
	if (sched_lo_promoted(s, lo, now_usec) && strcmp(lo, hi) < 0) {
		*promoted = 1;
		return CLASS_LO;
	}
	if (s->mode == SCHEDULE_WEIGHTED && s->hi_run >= s->weight)
		return CLASS_LO;
	return CLASS_HI;
}

int sched_next(struct scheduler *s, int64_t now_usec, struct sched_pick *p)
{
	if (s->list[CLASS_HI].n == 0 && s->list[CLASS_LO].n == 0)
		return 0;
	int lo_waiting = s->list[CLASS_LO].n > 0;
	int promoted;
	enum msg_class c = sched_choose(s, now_usec, &promoted);

	memset(p, 0, sizeof(*p));
	idlist_pop(&s->list[c], p->id);
	p->queue = c;
	p->promoted = promoted;
	p->order = ++s->picks;
	if (s->mode == SCHEDULE_WEIGHTED) {
		/* Only hi picks that made waiting lo mail wait count toward
		 * its turn; a promoted message was due anyway. */
		if (c == CLASS_LO && !promoted)
			s->hi_run = 0;
		else if (c == CLASS_HI && lo_waiting)
			s->hi_run++;
	}
	return 1;
}
