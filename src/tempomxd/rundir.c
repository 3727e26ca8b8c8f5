/*
 * rundir.c: the directory the master (root) keeps its own files in: the
 * lock, the pid file (by default) and the self-signed TLS key.
 *
 * The spool belongs to the unprivileged user, and whoever runs as that
 * user could replace a file root is about to open there with a symbolic
 * link to any file of the system. So root's files live in
 * <spool>/master, a directory root owns and the user cannot write, every
 * file in it is opened with O_NOFOLLOW, and a spool whose owner is
 * neither root nor the configured user, or whose mode lets others write,
 * is refused rather than repaired. Called by main.c at start-up, after
 * spool_prepare().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rundir.h"

static int fail(char *err, size_t errlen, const char *path, const char *why)
{
	snprintf(err, errlen, "%s: %s", path, why);
	return -1;
}

/* Why a directory could not be opened with O_NOFOLLOW | O_DIRECTORY
 * (which gives ENOTDIR or ELOOP for a symbolic link). */
static const char *open_error(const char *path)
{
	int e = errno;
	struct stat st;
	if ((e == ELOOP || e == ENOTDIR) && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		return "is a symbolic link";
	return strerror(e);
}

/* st must be a directory owned by one of the two owners and writable by
 * its owner only. */
static int check_dir(const struct stat *st, const char *path, uid_t a, uid_t b, char *err,
                     size_t errlen)
{
	char why[128];
	if (!S_ISDIR(st->st_mode))
		return fail(err, errlen, path, "not a directory");
	if (st->st_uid != a && st->st_uid != b) {
		snprintf(why, sizeof(why), "owned by uid %u, not by uid %u or %u; refusing it",
		         (unsigned)st->st_uid, (unsigned)a, (unsigned)b);
		return fail(err, errlen, path, why);
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, sizeof(why), "group or world writable (mode %04o); refusing it",
		         (unsigned)(st->st_mode & 07777));
		return fail(err, errlen, path, why);
	}
	return 0;
}

int rundir_check_spool(const char *spool, uid_t uid, char *err, size_t errlen)
{
	struct stat st;
	/* The spool itself may be a link the admin made (its parent is
	 * root's); what is inside it is the user's, so never followed. */
	int sfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 && errno == ENOENT)
		return 0; /* spool_prepare() makes it */
	if (sfd < 0)
		return fail(err, errlen, spool, strerror(errno));
	int rc = fstat(sfd, &st) < 0 ? fail(err, errlen, spool, strerror(errno))
	                             : check_dir(&st, spool, geteuid(), uid, err, errlen);
	close(sfd);
	return rc;
}

int rundir_prepare(const char *spool, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	uid_t me = geteuid();

	if (rundir_check_spool(spool, uid, err, errlen) < 0)
		return -1;
	int sfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return fail(err, errlen, spool, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s", spool, RUNDIR_NAME);
	if (mkdirat(sfd, RUNDIR_NAME, 0755) < 0 && errno != EEXIST) {
		close(sfd);
		return fail(err, errlen, path, strerror(errno));
	}
	int fd = openat(sfd, RUNDIR_NAME, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(sfd);
	if (fd < 0)
		return fail(err, errlen, path, open_error(path));
	/* Only the master's own user may own it; 0755 whatever the umask, so
	 * that smtpd reaches its TLS key. */
	if (fstat(fd, &st) < 0 || check_dir(&st, path, me, me, err, errlen) < 0)
		goto bad;
	if ((st.st_mode & 07777) != 0755 && fchmod(fd, 0755) < 0) {
		fail(err, errlen, path, strerror(errno));
		goto bad;
	}

	snprintf(path, sizeof(path), "%s/%s", spool, RUNDIR_TLS);
	const char *tls = RUNDIR_TLS + sizeof(RUNDIR_NAME);
	if (mkdirat(fd, tls, 0750) < 0 && errno != EEXIST) {
		fail(err, errlen, path, strerror(errno));
		goto bad;
	}
	int tfd = openat(fd, tls, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0) {
		fail(err, errlen, path, open_error(path));
		goto bad;
	}
	/* root:<user's group> 0750: smtpd reads the key, cannot replace it. */
	int rc = fstat(tfd, &st) < 0 ? -1 : check_dir(&st, path, me, me, err, errlen);
	if (rc == 0 && me == 0 && st.st_gid != gid && fchown(tfd, 0, gid) < 0)
		rc = fail(err, errlen, path, strerror(errno));
	if (rc == 0 && fchmod(tfd, 0750) < 0)
		rc = fail(err, errlen, path, strerror(errno));
	close(tfd);
	if (rc < 0)
		goto bad;
	return fd;
bad:
	close(fd);
	return -1;
}
