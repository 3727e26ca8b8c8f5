/*
 * nofile.h: the descriptor limit (RLIMIT_NOFILE) against max_connections
 * (src/common/nofile.c).
 *
 * The master raises the soft limit before it forks the children, which
 * inherit it; smtpd caps its connections at what the limit allows.
 */
#ifndef TEMPOMX_NOFILE_H
#define TEMPOMX_NOFILE_H

#include <stdint.h>

#include "conf.h"

/* Descriptors a process keeps besides its connections: listeners, spool
 * directories, the history store, logs, threads' files, DNS sockets. */
#define NOFILE_RESERVE 128

/* Descriptors the busiest child needs for cf. */
int64_t nofile_needed(const struct config *cf);
/* max_connections as the current soft limit allows it (at least 1). */
int64_t nofile_max_connections(const struct config *cf);
/* Raise the soft limit towards nofile_needed() (up to the hard limit),
 * log what was got, and warn when max_connections cannot be reached.
 * Returns the effective max_connections. */
int64_t nofile_raise(const struct config *cf);

#endif
