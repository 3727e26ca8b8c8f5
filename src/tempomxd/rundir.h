/*
 * rundir.h: the master's own directory inside the spool
 * (src/tempomxd/rundir.c).
 */
#ifndef TEMPOMX_RUNDIR_H
#define TEMPOMX_RUNDIR_H

#include <stddef.h>
#include <sys/types.h>

/* Name of the master's directory under spool_directory; the self-signed
 * TLS files are in its subdirectory RUNDIR_TLS. */
#define RUNDIR_NAME "master"
#define RUNDIR_TLS "master/tls"

/* Before spool_prepare() (which would repair it): a spool directory that
 * exists must be owned by root or uid and writable by its owner only. Returns 0, or -1 with a
 * reason in err. */
int rundir_check_spool(const char *spool, uid_t uid, char *err, size_t errlen);
/* Check the spool directory (owned by root or uid, not group or world
 * writable) and make <spool>/master owned by the
 * master's user (root), mode 0755, and <spool>/master/tls, mode 0750,
 * group gid (so that smtpd can read its key). Returns an open descriptor
 * of <spool>/master, or -1 with a reason in err. */
int rundir_prepare(const char *spool, uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
