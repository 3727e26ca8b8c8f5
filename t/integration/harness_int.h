/*
 * harness_int.h: what the files of libharness.a share with each other and
 * not with the tests: the registry of daemons a test started (so the
 * suite's .fini stops them), removal of a daemon's temporary directory,
 * and the user the daemon runs as. Tests include harness.h only.
 */
#ifndef TMX_ITEST_HARNESS_INT_H
#define TMX_ITEST_HARNESS_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

#define H_CMD_TIMEOUT_MS 10000
#define H_STOP_TIMEOUT_MS 15000

/* Remember d so that h_teardown() stops and frees it; forget it again. */
void h_registry_add(struct h_daemon *d);
void h_registry_del(struct h_daemon *d);
/* Remove a directory tree made by mkdtemp under /tmp (nothing else). */
void h_rm_tree(const char *dir);
/* The user the daemon runs as: nobody when the tests run as root, else
 * the user running them. */
void h_run_user(uid_t *uid, gid_t *gid, char *name, size_t size);

#endif
