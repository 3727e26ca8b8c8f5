/*
 * queueid.h: queue identifiers.
 *
 * A queue ID names one message in the spool and in every log line. It is
 * unique across processes and restarts, sorts by arrival time as a plain
 * string, and uses only [0-9A-F] so it is safe as a file name:
 *   9 hex digits of seconds, 5 of microseconds, 5 of the process ID,
 *   3 of a per-process counter  (22 characters).
 */
#ifndef TEMPOMX_QUEUEID_H
#define TEMPOMX_QUEUEID_H

#include <stdint.h>

#define QUEUEID_LEN 22
#define QUEUEID_SIZE (QUEUEID_LEN + 1)

/* Make a new ID into buf (QUEUEID_SIZE bytes). Thread-safe; strictly
 * increasing within a process even if the wall clock steps back. */
void queueid_new(char *buf);
/* 1 if s is a well-formed queue ID (exact length and alphabet). */
int queueid_valid(const char *s);
/* Arrival time encoded in the ID, in microseconds since the epoch. */
int64_t queueid_time(const char *id);

#endif
