/*
 * tmpdir.c: the directory where libclamav writes the parts it extracts
 * while scanning (scan_tmpdir), by default a private directory on a
 * memory file system.
 *
 * Why: libclamav's mail parser makes two directories and a file for every
 * message it scans. Under /tmp on the spool's disk that is three inode
 * creations and deletions per message, and on ext4 without a journal
 * each creation scans past the inodes freed in the last minutes: it slows
 * the whole spool. Nothing there needs to survive a crash (a message is
 * scanned again), so /dev/shm, a tmpfs on Linux, is the right place.
 *
 * Safety: /dev/shm is writable by everyone, so the directory is
 * "/dev/shm/tempomx-UID-scan", made with mode 0700 by the scanner (which
 * runs as the mail user) and used only if it is a real directory (not a
 * symbolic link) owned by that user and open to nobody else. When it is
 * not, a fresh one from mkdtemp() is used; when /dev/shm is missing or not
 * a memory file system, libclamav's own default ($TMPDIR or /tmp). A
 * scan_tmpdir set in the configuration is used as it is. Called by
 * scanner.c at start-up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "log.h"
#include "scan.h"

#define SCAN_SHM "/dev/shm"
/* statfs(2) f_type of tmpfs and ramfs. */
#define SCAN_TMPFS_MAGIC 0x01021994
#define SCAN_RAMFS_MAGIC 0x858458f6

static int scan_dir_ok(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 077) == 0;
}

const char *scan_tmpdir_choose(const char *configured, char *buf, size_t size)
{
	struct statfs fs;
	if (configured != NULL && configured[0] != '\0')
		return configured;
	if (statfs(SCAN_SHM, &fs) < 0 || ((unsigned long)fs.f_type != SCAN_TMPFS_MAGIC &&
	                                  (unsigned long)fs.f_type != SCAN_RAMFS_MAGIC)) {
		log_info("no memory file system at %s; scanning uses $TMPDIR or /tmp", SCAN_SHM);
		return NULL;
	}
	snprintf(buf, size, "%s/tempomx-%ld-scan", SCAN_SHM, (long)geteuid());
	if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
		log_warn("mkdir %s; scanning uses $TMPDIR or /tmp", buf);
		return NULL;
	}
	if (scan_dir_ok(buf))
		return buf;
	log_warnx("%s is not a private directory of this user; using a new one", buf);
	snprintf(buf, size, "%s/tempomx-%ld-scan.XXXXXX", SCAN_SHM, (long)geteuid());
	if (mkdtemp(buf) == NULL) {
		log_warn("mkdtemp in %s; scanning uses $TMPDIR or /tmp", SCAN_SHM);
		return NULL;
	}
	return buf;
}
