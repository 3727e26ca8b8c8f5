/*
 * table.h: reading the admin's table files (tempomx.conf, the recipients
 * tables, the whitelist file): the whole file at once, and its lines one
 * by one without comments. Each reader parses its own syntax on top.
 * Defined in src/common/table.c (libtmx_base).
 */
#ifndef TEMPOMX_TABLE_H
#define TEMPOMX_TABLE_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * The whole regular file path, at most max bytes, NUL-terminated (free()
 * it), its length in *len and its stat in *st (when st is not NULL).
 * NULL when it cannot be read, with "path: reason" in err and errno set.
 */
char *table_load(const char *path, size_t max, size_t *len, struct stat *st, char *err,
                 size_t errlen);

/* A position in a table's text, for table_next_line(). */
struct table_cursor {
	const char *p, *end;
	size_t lineno; /* of the line last returned, from 1 */
};

void table_cursor_init(struct table_cursor *c, const char *text, size_t len);
/*
 * The next line that holds anything: '#' and what follows it removed,
 * then blanks (space, tab) at both ends and a CR at the end. Returns 0
 * when the text is done. The line is not NUL-terminated.
 */
int table_next_line(struct table_cursor *c, const char **line, size_t *len);

#endif
