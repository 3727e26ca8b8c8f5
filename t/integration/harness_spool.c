/*
 * harness_spool.c: what the daemon left on disk: files per spool queue,
 * waits for the queues to drain, Maildir counts and listings, and the
 * check that a delivered file holds the message sent (with the headers
 * the daemon adds). Part of libharness.a (see harness.c).
 */
#include "harness.h"
#include "harness_int.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- spool ---- */

static int count_files(const char *dirpath)
{
	DIR *dir = opendir(dirpath);
	struct dirent *de;
	int n = 0;

	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

int h_spool_count(struct h_daemon *d, const char *queue)
{
	char path[H_PATH + 32];

	snprintf(path, sizeof(path), "%s/%s", d->spool, queue);
	return count_files(path);
}

int h_spool_total(struct h_daemon *d)
{
	static const char *const q[] = {"hi", "lo", "out", "deferred", "hold", "quarantine"};
	int n = 0;

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		n += h_spool_count(d, q[i]);
	return n;
}

int h_spool_wait_idle(struct h_daemon *d, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	for (;;) {
		if (h_spool_count(d, "incoming") + h_spool_count(d, "hi") + h_spool_count(d, "lo") +
		        h_spool_count(d, "out") ==
		    0)
			return 1;
		if (h_now_ms() >= deadline)
			return 0;
		h_sleep_ms(50);
	}
}

char *h_spool_slurp(struct h_daemon *d, const char *queue, int *count)
{
	char path[H_PATH + 32], file[H_PATH + 32 + 260];
	DIR *dir;
	struct dirent *de;
	char *all = calloc(1, 1);
	size_t len = 0;

	cr_assert_not_null(all);
	*count = 0;
	snprintf(path, sizeof(path), "%s/%s", d->spool, queue);
	dir = opendir(path);
	if (!dir)
		return all;
	while ((de = readdir(dir)) != NULL) {
		size_t flen;
		char *s;

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		s = h_read_file(file, &flen);
		if (!s)
			continue; /* moved on meanwhile */
		all = realloc(all, len + flen + 2);
		cr_assert_not_null(all);
		memcpy(all + len, s, flen);
		len += flen;
		all[len++] = '\n';
		all[len] = '\0';
		free(s);
		(*count)++;
	}
	closedir(dir);
	return all;
}

/* ---- Maildir ---- */

void h_maildir(struct h_daemon *d, const char *domain, const char *user, char *out, size_t size)
{
	snprintf(out, size, "%s/%s/%s", d->mail, domain, user);
}

int h_maildir_count(const char *maildir)
{
	char path[H_PATH + 16];
	int n;

	snprintf(path, sizeof(path), "%s/new", maildir);
	n = count_files(path);
	snprintf(path, sizeof(path), "%s/cur", maildir);
	return n + count_files(path);
}

int h_maildir_wait(const char *maildir, int n, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int have;

	for (;;) {
		have = h_maildir_count(maildir);
		if (have >= n || h_now_ms() >= deadline)
			return have;
		h_sleep_ms(50);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int h_maildir_list(const char *maildir, char ***paths)
{
	static const char *const sub[] = {"new", "cur"};
	char **v = NULL;
	int n = 0, cap = 0;

	for (size_t i = 0; i < 2; i++) {
		char path[H_PATH + 16];
		DIR *dir;
		struct dirent *de;
		int first = n;

		snprintf(path, sizeof(path), "%s/%s", maildir, sub[i]);
		dir = opendir(path);
		if (!dir)
			continue;
		while ((de = readdir(dir)) != NULL) {
			size_t l;

			if (de->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = realloc(v, (size_t)cap * sizeof(*v));
				cr_assert_not_null(v);
			}
			l = strlen(path) + strlen(de->d_name) + 2;
			v[n] = malloc(l);
			cr_assert_not_null(v[n]);
			snprintf(v[n], l, "%s/%s", path, de->d_name);
			n++;
		}
		closedir(dir);
		if (n > first) /* v is still NULL when both are empty */
			qsort(v + first, (size_t)(n - first), sizeof(*v), cmp_str);
	}
	*paths = v;
	return n;
}

void h_free_list(char **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int header_line_ok(const char *s, size_t len, int first)
{
	size_t i = 0;

	if (len == 0)
		return 0;
	if (s[0] == ' ' || s[0] == '\t')
		return !first; /* a folded continuation */
	/* field-name = 1*(%d33-57 / %d59-126), RFC 5322 3.6.8 */
	while (i < len && s[i] != ':') {
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			return 0;
		i++;
	}
	return i > 0 && i < len;
}

const char *h_check_delivered(const char *path, const char *msg, size_t len)
{
	static char why[512];
	size_t flen, plen, off = 0;
	char *f = h_read_file(path, &flen);
	int received = 0, first = 1;

	if (!f) {
		snprintf(why, sizeof(why), "cannot read %s: %s", path, strerror(errno));
		return why;
	}
	if (flen < len || memcmp(f + flen - len, msg, len) != 0) {
		/* Explain where it differs, starting from where the message
		 * seems to begin. */
		size_t probe = len < 32 ? len : 32;
		const char *start = memmem(f, flen, msg, probe);

		if (!start) {
			snprintf(why, sizeof(why),
			         "%s (%zu octets) does not contain the start of the message", path,
			         flen);
		} else {
			size_t o = (size_t)(start - f), i = 0;

			while (o + i < flen && i < len && f[o + i] == msg[i])
				i++;
			snprintf(why, sizeof(why),
			         "%s: message differs at octet %zu of %zu (file has %zu octets "
			         "after the headers); sent 0x%02x, file 0x%02x",
			         path, i, len, flen - o, i < len ? (unsigned char)msg[i] : 0,
			         o + i < flen ? (unsigned char)f[o + i] : 0);
		}
		free(f);
		return why;
	}
	plen = flen - len;
	while (off < plen) {
		const char *eol = memchr(f + off, '\n', plen - off);
		size_t llen;

		if (!eol || eol == f + off || eol[-1] != '\r') {
			snprintf(why, sizeof(why),
			         "%s: added header text is not CRLF-terminated lines (offset %zu)",
			         path, off);
			free(f);
			return why;
		}
		llen = (size_t)(eol - 1 - (f + off));
		if (!header_line_ok(f + off, llen, first)) {
			snprintf(why, sizeof(why), "%s: added text is not a header line: %.*s",
			         path, (int)(llen > 200 ? 200 : llen), f + off);
			free(f);
			return why;
		}
		if (llen >= 9 && strncasecmp(f + off, "Received:", 9) == 0)
			received++;
		first = 0;
		off = (size_t)(eol - f) + 1;
	}
	free(f);
	if (received == 0) {
		snprintf(why, sizeof(why), "%s: no Received: header was added", path);
		return why;
	}
	return NULL;
}
