/*
 * idlist.c: a sorted list of queue IDs with a moving head (see idlist.h).
 * Binary search for the position; new IDs nearly always go at the end.
 */
#include <stdlib.h>
#include <string.h>

#include "idlist.h"
#include "util.h"

static size_t idlist_search(const struct idlist *l, const char *id, int *found)
{
	size_t lo = l->head, hi = l->head + l->n;
	*found = 0;
	if (l->n == 0 || strcmp(l->v[hi - 1], id) < 0)
		return hi;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid], id);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int idlist_insert(struct idlist *l, const char *id)
{
	int found;
	size_t pos = idlist_search(l, id, &found);
	if (found)
		return 0;
	if (l->head + l->n == l->cap) {
		if (l->head > 0) {
			memmove(l->v, l->v + l->head, l->n * sizeof(*l->v));
			pos -= l->head;
			l->head = 0;
		} else {
			l->cap = l->cap ? l->cap * 2 : 64;
			l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
		}
	}
	size_t end = l->head + l->n;
	if (pos < end)
		memmove(l->v + pos + 1, l->v + pos, (end - pos) * sizeof(*l->v));
	memcpy(l->v[pos], id, QUEUEID_SIZE);
	l->n++;
	return 1;
}

int idlist_remove(struct idlist *l, const char *id)
{
	int found;
	size_t pos = idlist_search(l, id, &found);
	if (!found)
		return 0;
	size_t end = l->head + l->n;
	memmove(l->v + pos, l->v + pos + 1, (end - pos - 1) * sizeof(*l->v));
	if (--l->n == 0)
		l->head = 0;
	return 1;
}

const char *idlist_first(const struct idlist *l)
{
	return l->n ? l->v[l->head] : NULL;
}

int idlist_pop(struct idlist *l, char *id)
{
	if (l->n == 0)
		return 0;
	memcpy(id, l->v[l->head], QUEUEID_SIZE);
	l->head++;
	if (--l->n == 0)
		l->head = 0;
	return 1;
}

void idlist_free(struct idlist *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}
