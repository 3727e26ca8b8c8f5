/*
 * maildrop.c: the master's preparation of the maildrop directory
 * (include/maildrop.h says what the maildrop is). Called once by
 * src/tempomxd/main.c, as root, before the children start.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildrop.h"

int maildrop_prepare(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct stat st;
	if (mkdir(dir, 01733) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "maildrop_directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "maildrop_directory %s: %s", dir,
		         errno ? strerror(errno) : "not a directory");
		return -1;
	}
	/* mkdir's mode passes through the umask; the sticky bit and the
	 * write bits for all are the point of this directory. */
	if ((geteuid() == 0 && (st.st_uid != uid || st.st_gid != gid) &&
	     chown(dir, uid, gid) < 0) ||
	    chmod(dir, 01733) < 0) {
		snprintf(err, errlen, "maildrop_directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}
