/*
 * confcheck.h: warnings about harmful but valid settings, and errors in
 * values whose syntax only their module knows
 * (src/tempomxd/confcheck.c), for the master.
 */
#ifndef TEMPOMX_CONFCHECK_H
#define TEMPOMX_CONFCHECK_H

#include "conf.h"

/* Log a warning for each harmful combination of settings in cf. */
void confcheck_warn(const struct config *cf);
/* Settings that parse as strings but name nothing usable (history_store):
 * 0, or -1 with "key: reason" in err. The master refuses to start on
 * them (and "tempomxd -n" reports them). */
int confcheck_errors(const struct config *cf, char *err, size_t errlen);

#endif
