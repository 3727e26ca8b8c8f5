/*
 * flushgroup.c: group commit of fsync() calls shared by threads.
 *
 * A rename or link becomes durable with an fsync of the directory it went
 * into, and one fsync covers every change made before it started. So a
 * thread that changed the directory takes a ticket and waits until a
 * flush that started after its ticket has completed, starting one itself
 * when none is running. With several threads this turns N flushes into
 * about two, which is what lets the spool and Maildir delivery go faster
 * than the disk does flushes. Called by src/spool/spool.c (one group per
 * queue directory) and src/deliver/maildir.c (by path).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "flushgroup.h"
#include "util.h"

void flush_group_init(struct flush_group *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
}

void flush_group_destroy(struct flush_group *g)
{
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
}

/* Called and returns with g->mu held. */
static int group_sync_locked(struct flush_group *g, int (*flush)(void *), void *arg)
{
	uint64_t mine = ++g->ticket;
	while (g->synced < mine) {
		if (g->running) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		g->running = 1;
		uint64_t target = g->ticket;
		pthread_mutex_unlock(&g->mu);
		int r = flush(arg);
		int e = errno;
		pthread_mutex_lock(&g->mu);
		g->running = 0;
		if (r == 0 && target > g->synced)
			g->synced = target;
		pthread_cond_broadcast(&g->cv);
		if (r < 0) {
			/* Our own flush failed: report it; waiters retry theirs. */
			errno = e;
			return -1;
		}
	}
	return 0;
}

int flush_group_sync(struct flush_group *g, int (*flush)(void *), void *arg)
{
	pthread_mutex_lock(&g->mu);
	int r = group_sync_locked(g, flush, arg);
	int e = errno;
	pthread_mutex_unlock(&g->mu);
	errno = e;
	return r;
}

/* ---- directories by path ---- */

#define PATH_GROUPS 64
#define PATH_GROUP_MAX 1024

static struct path_group {
	struct flush_group g;
	char path[PATH_GROUP_MAX];
} path_groups[PATH_GROUPS];
static pthread_once_t path_groups_once = PTHREAD_ONCE_INIT;

static void path_groups_init(void)
{
	for (size_t i = 0; i < PATH_GROUPS; i++)
		flush_group_init(&path_groups[i].g);
}

static int flush_path(void *arg)
{
	return fsync_dir_path(arg);
}

int flush_dir_path_grouped(const char *path)
{
	size_t len = strlen(path);
	if (len >= PATH_GROUP_MAX)
		return fsync_dir_path(path);
	pthread_once(&path_groups_once, path_groups_init);
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)path[i]) * 16777619u;
	struct path_group *pg = &path_groups[h % PATH_GROUPS];

	pthread_mutex_lock(&pg->g.mu);
	if (pg->g.users > 0 && strcmp(pg->path, path) != 0) {
		/* The slot serves another directory right now. */
		pthread_mutex_unlock(&pg->g.mu);
		return fsync_dir_path(path);
	}
	if (pg->g.users == 0 && strcmp(pg->path, path) != 0) {
		/* Tickets only mean something for one directory: a slot
		 * changes directory only when nobody is using it. */
		memcpy(pg->path, path, len + 1);
		pg->g.ticket = pg->g.synced = 0;
	}
	pg->g.users++;
	int r = group_sync_locked(&pg->g, flush_path, pg->path);
	int e = errno;
	pg->g.users--;
	pthread_mutex_unlock(&pg->g.mu);
	errno = e;
	return r;
}
