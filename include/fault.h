/*
 * fault.h: fault injection for the crash tests: a named point in a
 * hand-off where a test build can make its process die by SIGKILL.
 *
 * Only builds configured with --enable-fault-injection (the default with
 * --enable-sanitizers, as the test suite builds) have it; elsewhere
 * fault_point() is nothing at all. See src/common/fault.c.
 */
#ifndef TEMPOMX_FAULT_H
#define TEMPOMX_FAULT_H

#include "config.h"

#ifdef TEMPOMX_FAULTS
void fault_point(const char *name);
#else
#define fault_point(name) ((void)0)
#endif

#endif
