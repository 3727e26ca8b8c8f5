/*
 * err.c: tempomxctl's error lines on stderr ("tempomxctl: message").
 *
 * The bottom of tempomxctl: the other files call ctl_err() and this file
 * calls none of them, so privs.c reports its errors without calling back
 * into main (tempomxctl.c), which calls privs.c.
 */
#include <stdarg.h>
#include <stdio.h>

#include "ctl.h"

void ctl_err(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("tempomxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
