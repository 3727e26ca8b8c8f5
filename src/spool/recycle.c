/*
 * recycle.c: a pool of spare spool files in spare/, reused instead of
 * creating and deleting one file per message.
 *
 * Why: every message costs the spool one file creation and one deletion.
 * On ext4 without a journal (common on virtual machines and what the
 * benchmark machine runs), the inode allocator skips inodes freed in the
 * last minutes and scans past each of them on every creation, so at a few
 * hundred messages per second most of the CPU goes into that scan (seen in
 * perf as recently_deleted / find_inode_bit). A delivered message's file
 * is therefore renamed into spare/ instead of unlinked, and the next
 * message to be received (or envelope update to be written) renames a
 * spare file into incoming/ and truncates it. With a journal the saving is
 * smaller but the pool costs nothing either.
 *
 * Safety: a spare file is only ever reached by a rename of a whole file,
 * like every other spool hand-off; a file is put in spare/ only when the
 * caller would otherwise have unlinked it (its content is no longer
 * needed), and it is truncated as soon as it is taken, before anything is
 * written to it. A crash leaves at worst a spare file in incoming/, which
 * the master clears at start-up as it does any other file there.
 *
 * Bounds: only files of at most RECYCLE_MAX_SIZE octets are kept (larger
 * ones are unlinked, so spare/ never holds much disk), and at most about
 * RECYCLE_MAX_FILES of them: each process keeps an estimate of the pool
 * size, recounted every RECYCLE_RECOUNT puts and at every refill.
 * Several processes (smtpd takes, delivery puts, all of them may do both)
 * share spare/: a rename that finds its spare file gone (ENOENT) simply
 * tries the next one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recycle.h"
#include "spool.h"
#include "util.h"

#define RECYCLE_MAX_SIZE (64 * 1024)
#define RECYCLE_MAX_FILES 2048
#define RECYCLE_RECOUNT 256
/* After a read of spare/ found nothing, the next read waits this long. */
#define RECYCLE_EMPTY_WAIT_MS 50
/* Names remembered from one read of spare/. */
#define RECYCLE_BATCH 128
#define RECYCLE_NAME_MAX 64

struct spool_recycle {
	pthread_mutex_t mu;
	char names[RECYCLE_BATCH][RECYCLE_NAME_MAX];
	size_t nnames; /* names[0..nnames) not yet tried */
	size_t estimate;
	size_t puts_since_count;
	int counted;         /* estimate has been set from a directory read */
	int64_t empty_at_ms; /* when a read last found spare/ empty; 0 = not */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct spool_recycle *recycle_new(void)
{
	struct spool_recycle *rc = xcalloc(1, sizeof(*rc));
	pthread_mutex_init(&rc->mu, NULL);
	return rc;
}

void recycle_free(struct spool_recycle *rc)
{
	if (rc == NULL)
		return;
	pthread_mutex_destroy(&rc->mu);
	free(rc);
}

/* Read spare/: remember up to RECYCLE_BATCH names (when want_names) and
 * count every entry. Called with rc->mu held. */
static void recycle_scan(struct spool *sp, struct spool_recycle *rc, int want_names)
{
	int fd = openat(sp->sparefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	size_t count = 0;
	struct dirent *de;
	if (want_names)
		rc->nnames = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		count++;
		/* Only regular files are candidates (an admin may have put
		 * anything there); recycle_take() checks again after the
		 * rename. */
		struct stat st;
		if (de->d_type != DT_REG &&
		    (de->d_type != DT_UNKNOWN ||
		     fstatat(sp->sparefd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISREG(st.st_mode)))
			continue;
		if (want_names && rc->nnames < RECYCLE_BATCH &&
		    strlen(de->d_name) < RECYCLE_NAME_MAX)
			memcpy(rc->names[rc->nnames++], de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	rc->estimate = count;
	rc->puts_since_count = 0;
	rc->counted = 1;
	rc->empty_at_ms = count == 0 ? now_ms() : 0;
}

int recycle_take(struct spool *sp, int dirfd, const char *name)
{
	struct spool_recycle *rc = sp->recycle;
	if (rc == NULL || sp->sparefd < 0)
		return -1;
	pthread_mutex_lock(&rc->mu);
	int refilled = 0;
	for (;;) {
		if (rc->nnames == 0) {
			/* One read per empty batch; while spare/ is empty
			 * (other processes fill it), at most one read per
			 * RECYCLE_EMPTY_WAIT_MS. */
			if (refilled || (rc->empty_at_ms != 0 &&
			                 now_ms() - rc->empty_at_ms < RECYCLE_EMPTY_WAIT_MS))
				break;
			recycle_scan(sp, rc, 1);
			refilled = 1;
			continue;
		}
		char spare[RECYCLE_NAME_MAX];
		memcpy(spare, rc->names[--rc->nnames], sizeof(spare));
		if (renameat2(sp->sparefd, spare, dirfd, name, RENAME_NOREPLACE) < 0) {
			if (errno == ENOENT)
				continue; /* taken by another process */
			break;
		}
		if (rc->estimate > 0)
			rc->estimate--;
		pthread_mutex_unlock(&rc->mu);
		int fd =
		    openat(dirfd, name, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    st.st_uid == geteuid()) {
			/* O_NONBLOCK only guarded the open (a FIFO left by
			 * hand would block it); on the regular file it is now
			 * it changes nothing, so it stays. */
			if ((st.st_mode & 07777) != 0600)
				fchmod(fd, 0600);
			return fd;
		}
		/* Not something we would have put there: drop it and let
		 * the caller create a file. */
		if (fd >= 0)
			close(fd);
		unlinkat(dirfd, name, 0);
		return -1;
	}
	pthread_mutex_unlock(&rc->mu);
	return -1;
}

int recycle_put(struct spool *sp, int dirfd, const char *name)
{
	struct spool_recycle *rc = sp->recycle;
	struct stat st;
	if (rc == NULL || sp->sparefd < 0 || strlen(name) >= RECYCLE_NAME_MAX ||
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > RECYCLE_MAX_SIZE || st.st_nlink != 1)
		return unlinkat(dirfd, name, 0);
	pthread_mutex_lock(&rc->mu);
	if (!rc->counted || rc->puts_since_count >= RECYCLE_RECOUNT)
		recycle_scan(sp, rc, rc->nnames == 0);
	int keep = rc->estimate < RECYCLE_MAX_FILES;
	if (keep) {
		rc->estimate++;
		rc->puts_since_count++;
	}
	pthread_mutex_unlock(&rc->mu);
	if (!keep)
		return unlinkat(dirfd, name, 0);
	if (renameat2(dirfd, name, sp->sparefd, name, RENAME_NOREPLACE) == 0) {
		/* This process is likely to want it back soon: remember it
		 * without reading spare/ again. */
		pthread_mutex_lock(&rc->mu);
		if (rc->nnames < RECYCLE_BATCH)
			memcpy(rc->names[rc->nnames++], name, strlen(name) + 1);
		rc->empty_at_ms = 0;
		pthread_mutex_unlock(&rc->mu);
		return 0;
	}
	if (errno == ENOENT)
		return -1;
	/* EEXIST (a spare file of that name from an earlier run) or any
	 * other trouble: the name must still go. */
	return unlinkat(dirfd, name, 0);
}
