/*
 * privs.c: tempomxctl's access to the spool and the history store.
 *
 * The spool belongs to the user the daemon's children run as (mode 0700),
 * and every file in it must stay that user's: a queue file written by
 * root would be unreadable to the stages. So when tempomxctl runs as root
 * it takes the spool owner's identity as its effective user and group
 * before it opens anything there, and keeps root as its saved identity so
 * it can still signal the master (ctl_as_invoker). Any other user works
 * with its own rights: the spool owner can do everything, others get a
 * clear "permission denied".
 *
 * The spool handle never puts files into spare/ (spool_keep_files): the
 * stage that owns a message may still be reading a file tempomxctl
 * removes or replaces.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "history.h"
#include "history_store.h"

static void become_owner(struct ctl *c, const struct stat *st)
{
	if (geteuid() != 0 || st->st_uid == 0)
		return;
	c->invoker_uid = geteuid();
	c->invoker_gid = getegid();
	/* Group first: once the user is not root it could not change it. */
	if (setegid(st->st_gid) < 0 || seteuid(st->st_uid) < 0) {
		ctl_err("cannot take the identity of the spool owner (uid %ld): %s",
		        (long)st->st_uid, strerror(errno));
		return;
	}
	c->switched = 1;
}

void ctl_as_invoker(struct ctl *c)
{
	if (!c->switched)
		return;
	if (seteuid(c->invoker_uid) < 0 || setegid(c->invoker_gid) < 0)
		ctl_err("cannot return to uid %ld: %s", (long)c->invoker_uid, strerror(errno));
}

void ctl_as_owner(struct ctl *c)
{
	struct stat st;
	if (!c->switched || stat(c->cf.spool_directory, &st) < 0)
		return;
	if (setegid(st.st_gid) < 0 || seteuid(st.st_uid) < 0)
		ctl_err("cannot take the identity of the spool owner: %s", strerror(errno));
}

int ctl_open_spool(struct ctl *c)
{
	struct stat st;
	if (c->spool_open)
		return 0;
	if (stat(c->cf.spool_directory, &st) < 0) {
		ctl_err("spool %s: %s", c->cf.spool_directory, strerror(errno));
		return -1;
	}
	become_owner(c, &st);
	if (spool_open(&c->sp, c->cf.spool_directory) < 0) {
		ctl_err("cannot open the spool %s: %s", c->cf.spool_directory,
		        errno == EACCES ? "permission denied (run as root or as the spool owner)"
		                        : strerror(errno));
		return -1;
	}
	spool_keep_files(&c->sp);
	c->spool_open = 1;
	return 0;
}

int ctl_open_history(struct ctl *c)
{
	char path[4096], err[512];
	struct history_store_settings st;
	if (c->hist != NULL)
		return 0;
	if (ctl_open_spool(c) < 0)
		return -1;
	history_store_settings(&c->cf, &st, path, sizeof(path));
	c->hist = history_store_open(&st, err, sizeof(err));
	if (c->hist == NULL) {
		ctl_err("history %s: %s", path, err);
		return -1;
	}
	return 0;
}

void ctl_close(struct ctl *c)
{
	/* Root again before exit: a sanitizer's leak check at exit traces
	 * the process, which a changed effective identity forbids. */
	ctl_as_invoker(c);
	c->switched = 0;
	if (c->hist != NULL)
		history_store_close(c->hist);
	c->hist = NULL;
	if (c->spool_open)
		spool_close(&c->sp);
	c->spool_open = 0;
}
