/*
 * table.c: the one reader of admin table files (table.h).
 *
 * A table file is read whole, once per change, and parsed from memory, so
 * a reader never holds a descriptor or sees half of a file an editor is
 * writing (editors and tempomxctl replace the file by rename). Only a
 * regular file is read: a FIFO would block the process and a device has
 * no size. The size limit is the caller's (each table lives in some
 * process's memory). Callers: conf.c, src/deliver/recipients.c,
 * src/classify/whitelist.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "table.h"
#include "util.h"

char *table_load(const char *path, size_t max, size_t *len, struct stat *st, char *err,
                 size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), e;

	if (st == NULL)
		st = &sb;
	if (fd == -1 || fstat(fd, st) == -1)
		goto syserr;
	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size > max) {
		snprintf(err, errlen, "%s: %s", path,
		         S_ISREG(st->st_mode) ? "file too large" : "not a regular file");
		close(fd);
		errno = S_ISREG(st->st_mode) ? EFBIG : EINVAL;
		return NULL;
	}
	buf = read_fd_all(fd, (size_t)st->st_size, len);
	if (buf == NULL)
		goto syserr;
	close(fd);
	return buf;
syserr:
	e = errno;
	snprintf(err, errlen, "%s: %s", path, strerror(e));
	if (fd != -1)
		close(fd);
	errno = e;
	return NULL;
}

void table_cursor_init(struct table_cursor *c, const char *text, size_t len)
{
	c->p = text;
	c->end = text + len;
	c->lineno = 0;
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

int table_next_line(struct table_cursor *c, const char **line, size_t *len)
{
	while (c->p < c->end) {
		const char *s = c->p;
		const char *nl = memchr(s, '\n', (size_t)(c->end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(c->end - s);
		const char *hash = memchr(s, '#', n);

		c->p = nl ? nl + 1 : c->end;
		c->lineno++;
		if (hash)
			n = (size_t)(hash - s);
		while (n > 0 && is_blank(s[0])) {
			s++;
			n--;
		}
		while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
			n--;
		if (n > 0) {
			*line = s;
			*len = n;
			return 1;
		}
	}
	return 0;
}
