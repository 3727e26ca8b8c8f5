/*
 * confcheck.h: warnings about harmful but valid settings
 * (src/tempomxd/confcheck.c), for the master.
 */
#ifndef TEMPOMX_CONFCHECK_H
#define TEMPOMX_CONFCHECK_H

#include "conf.h"

/* Log a warning for each harmful combination of settings in cf. */
void confcheck_warn(const struct config *cf);

#endif
