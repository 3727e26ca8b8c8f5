/*
 * recipients.h: recipient validation tables (src/common/recipients.c), so
 * smtpd can refuse unknown users at RCPT instead of accepting mail it
 * would bounce.
 */
#ifndef TEMPOMX_RECIPIENTS_H
#define TEMPOMX_RECIPIENTS_H

#include <stddef.h>

enum recipients_result {
	RECIPIENTS_NO_TABLE = 0, /* path is empty: no check */
	RECIPIENTS_KNOWN,
	RECIPIENTS_UNKNOWN,
	RECIPIENTS_ERROR /* the file cannot be read: tempfail */
};

/* Look addr ("user@domain") up in the table file path. The table is
 * cached per path and read again when the file changes (or after
 * recipients_flush()). Single-threaded use (the smtpd event loop). */
int recipients_check(const char *path, const char *addr);
/* Forget every cached table (SIGHUP). */
void recipients_flush(void);

/* Parse table text (for tests): returns a handle, or NULL with err on a
 * malformed line ("line 3: ..."). */
struct recipients_table;
struct recipients_table *recipients_parse(const char *text, size_t len, char *err, size_t errlen);
int recipients_lookup(const struct recipients_table *t, const char *addr);
void recipients_free(struct recipients_table *t);

#endif
