/*
 * recipients.c: the "recipients" and "relay_recipients" tables.
 *
 * A table is a text file of addresses, one per line: "user@domain", or
 * "@domain" for every user of the domain; '#' starts a comment; case is
 * ignored (RFC 5321 2.4 lets us treat local parts case-insensitively for
 * our own users). smtpd checks each RCPT of a local (or relay) domain
 * against it and answers 550 5.1.1 to an unknown user, so tempomx never
 * accepts mail it would have to bounce (backscatter). The file is read
 * once and again whenever its inode, size or mtime change, or after
 * SIGHUP. Called by smtpd (src/smtpd/session.c at RCPT, server.c on
 * SIGHUP); it lives in common/ because the tables describe what delivery
 * can deliver while smtpd is the one that checks them.
 *
 * SMTPUTF8: entries and addresses are compared with their domain in
 * A-label form (idn.c), so "jörg@bücher.example" in the table is the
 * address "jörg@xn--bcher-kva.example" and the other way round; UTF-8 local
 * parts are compared octet for octet (only ASCII case is ignored).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "recipients.h"
#include "table.h"
#include "utf8.h"
#include "util.h"

/* Larger files are refused: the table lives in smtpd's memory. */
#define RECIPIENTS_MAX_FILE (64 * 1024 * 1024)

struct recipients_table {
	char **v; /* sorted, lower-case */
	size_t n;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The comparison form of "user@domain" or "@domain": ASCII lower-cased, a
 * U-label domain as its A-label (left as it is if it is no valid IDN).
 * malloc'd. */
static char *canonical(const char *s, size_t n)
{
	char *low = xstrndup(s, n);
	ascii_lower(low);
	char *at = strrchr(low, '@');
	char ace[256];
	if (at && utf8_has_8bit(at + 1) && idn_to_ascii(at + 1, ace, sizeof(ace)) == 0) {
		char *out;
		xasprintf(&out, "%.*s@%s", (int)(at - low), low, ace);
		free(low);
		return out;
	}
	return low;
}

struct recipients_table *recipients_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct recipients_table *t = xcalloc(1, sizeof(*t));
	struct table_cursor cur;
	const char *s;
	size_t cap = 0, n;

	table_cursor_init(&cur, text, len);
	while (table_next_line(&cur, &s, &n)) {
		const char *at = memchr(s, '@', n);
		int bad = at == NULL || at == s + n - 1 || memchr(s, ' ', n) || memchr(s, '\t', n);
		for (size_t i = 0; i < n && !bad; i++)
			bad = (unsigned char)s[i] < 0x21 || (unsigned char)s[i] == 0x7f;
		if (bad) {
			snprintf(err, errlen, "line %zu: expected user@domain or @domain",
			         cur.lineno);
			recipients_free(t);
			return NULL;
		}
		if (t->n == cap) {
			cap = cap ? cap * 2 : 64;
			t->v = xreallocarray(t->v, cap, sizeof(*t->v));
		}
		t->v[t->n++] = canonical(s, n);
	}
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_str);
	return t;
}

static int table_has(const struct recipients_table *t, const char *key)
{
	return t->n > 0 && bsearch(&key, t->v, t->n, sizeof(*t->v), cmp_str) != NULL;
}

int recipients_lookup(const struct recipients_table *t, const char *addr)
{
	char *low = canonical(addr, strlen(addr));
	const char *at = strrchr(low, '@');
	int found = table_has(t, low) || (at && table_has(t, at));
	free(low);
	return found;
}

void recipients_free(struct recipients_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	free(t);
}

/* ---- the per-process cache of table files ---- */

struct cached {
	char *path;
	struct stat st;
	struct recipients_table *t;
};

static struct cached cache[4];

void recipients_flush(void)
{
	for (size_t i = 0; i < sizeof(cache) / sizeof(cache[0]); i++) {
		free(cache[i].path);
		recipients_free(cache[i].t);
		memset(&cache[i], 0, sizeof(cache[i]));
	}
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static struct recipients_table *load(const char *path, struct stat *st)
{
	char err[600];
	size_t got;
	char *buf = table_load(path, RECIPIENTS_MAX_FILE, &got, st, err, sizeof(err));
	if (buf == NULL) {
		log_warnx("recipients table %s", err);
		return NULL;
	}
	struct recipients_table *t = recipients_parse(buf, got, err, sizeof(err));
	free(buf);
	if (t == NULL)
		log_warnx("recipients table %s: %s", path, err);
	else
		log_info("recipients table %s: %zu entries", path, t->n);
	return t;
}

int recipients_check(const char *path, const char *addr)
{
	if (path == NULL || *path == '\0')
		return RECIPIENTS_NO_TABLE;
	struct cached *c = NULL, *freeslot = NULL;
	for (size_t i = 0; i < sizeof(cache) / sizeof(cache[0]); i++) {
		if (cache[i].path && strcmp(cache[i].path, path) == 0)
			c = &cache[i];
		else if (cache[i].path == NULL && freeslot == NULL)
			freeslot = &cache[i];
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		log_warn("recipients table %s", path);
		return RECIPIENTS_ERROR;
	}
	if (c == NULL || c->t == NULL || !same_file(&c->st, &st)) {
		if (c == NULL) {
			c = freeslot ? freeslot : &cache[0];
			free(c->path);
			recipients_free(c->t);
			memset(c, 0, sizeof(*c));
			c->path = xstrdup(path);
		}
		recipients_free(c->t);
		c->t = load(path, &c->st);
	}
	if (c->t == NULL)
		return RECIPIENTS_ERROR;
	return recipients_lookup(c->t, addr) ? RECIPIENTS_KNOWN : RECIPIENTS_UNKNOWN;
}
