/*
 * conf.c: the tempomx.conf parser, "-o" overrides, the cross-key checks
 * and the "tempomxd -n" printers, all driven by conf_keys[] (conf_keys.c).
 *
 * Built-in defaults are written in the table as they would be written in
 * the file and go through the same parser, so a default can never be a
 * value the file could not hold. Called by the master at start and by every process
 * on SIGHUP (through src/common/runtime.c); also fuzzed directly.
 *
 * The input is an admin's file: any bad byte, line or value is reported as
 * "file:line: message" and nothing here aborts except out of memory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "utf8.h"
#include "conf.h"
#include "log.h"
#include "strbuf.h"
#include "table.h"
#include "util.h"

/* Largest configuration file read; a real one is a few KB. */
#define CONF_MAX_FILE (1024 * 1024)
/* Longest value echoed back in an error message. */
#define ECHO_MAX 120
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; "220 " plus a
 * 255-octet host name plus the banner must fit. */
#define BANNER_MAX 200

static int is_ws(int c)
{
	return c == ' ' || c == '\t';
}

static void *field(const struct config *cf, const struct conf_key *k)
{
	return (char *)cf + k->offset;
}

/* Keys are matched exactly: they are written in lower case. */
static const struct conf_key *find_key_n(const char *name, size_t n)
{
	for (size_t i = 0; i < conf_nkeys; i++)
		if (strlen(conf_keys[i].name) == n && memcmp(conf_keys[i].name, name, n) == 0)
			return &conf_keys[i];
	return NULL;
}

const struct conf_key *conf_find_key(const char *name)
{
	return find_key_n(name, strlen(name));
}

/* Next item of a list value; items are separated by white space or commas.
 * Returns 0 at the end. */
static int next_item(const char **pp, const char **item, size_t *len)
{
	const char *p = *pp;
	while (*p && (is_ws(*p) || *p == ','))
		p++;
	if (*p == '\0')
		return 0;
	const char *s = p;
	while (*p && !is_ws(*p) && *p != ',')
		p++;
	*item = s;
	*len = (size_t)(p - s);
	*pp = p;
	return 1;
}

static void strlist_clear(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void listenlist_clear(struct listenlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Checks of single values that their type alone does not express. */
static int check_special(const struct conf_key *k, const char *v, char *why, size_t wlen)
{
	const char *name = k->name;
	if (strcmp(name, "hostname") == 0) {
		if (*v != '\0' && !addr_domain_valid(v, 0)) {
			snprintf(why, wlen, "not a valid domain name");
			return -1;
		}
	} else if (strcmp(name, "user") == 0) {
		size_t n = strlen(v);
		int ok = n > 0 && n <= 32 && v[0] != '-';
		for (const char *p = v; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.';
		if (!ok) {
			snprintf(why, wlen, "not a valid user name");
			return -1;
		}
	} else if (strcmp(name, "syslog_facility") == 0) {
		int ok =
		    strcmp(v, "mail") == 0 || strcmp(v, "daemon") == 0 ||
		    (strncmp(v, "local", 5) == 0 && v[5] >= '0' && v[5] <= '7' && v[6] == '\0');
		if (!ok) {
			snprintf(why, wlen, "expected mail, daemon or local0 to local7");
			return -1;
		}
	} else if (strcmp(name, "banner") == 0) {
		/* It goes on the wire after "220 host ": printable ASCII only. */
		if (strlen(v) > BANNER_MAX) {
			snprintf(why, wlen, "longer than %d characters", BANNER_MAX);
			return -1;
		}
		for (const unsigned char *p = (const unsigned char *)v; *p; p++)
			if (*p < 0x20 || *p > 0x7e) {
				snprintf(why, wlen, "not printable ASCII");
				return -1;
			}
	} else if (strcmp(name, "maildir") == 0) {
		int user = 0;
		if (v[0] != '/') {
			snprintf(why, wlen, "not an absolute path");
			return -1;
		}
		for (const char *p = v; *p; p++) {
			if (*p != '%')
				continue;
			p++;
			if (*p == 'u' || *p == 'a')
				user = 1;
			else if (*p != 'd' && *p != '%') {
				if (*p == '\0')
					snprintf(why, wlen, "'%%' at the end");
				else
					snprintf(
					    why, wlen,
					    "unknown escape '%%%c' (use %%u, %%d, %%a or %%%%)",
					    *p);
				return -1;
			}
		}
		if (!user) {
			snprintf(why, wlen, "must contain %%u or %%a");
			return -1;
		}
	}
	return 0;
}

/* "bad value 'x' for key: reason", the shape of every value error. */
static void bad_value(char *why, size_t wlen, const struct conf_key *k, const char *value,
                      const char *reason)
{
	snprintf(why, wlen, "bad value '%.*s' for %s: %s", ECHO_MAX, value, k->name, reason);
}

static int apply_domains(const struct conf_key *k, struct strlist *l, const char *value, char *why,
                         size_t wlen)
{
	struct strlist nl = {NULL, 0};
	const char *p = value, *it;
	size_t len;
	while (next_item(&p, &it, &len)) {
		char *d = xstrndup(it, len);
		ascii_lower(d);
		size_t n = strlen(d);
		if (n > 1 && d[n - 1] == '.')
			d[--n] = '\0';
		if (utf8_has_8bit(d)) {
			/* U-labels are kept as A-labels (RFC 5890), the form
			 * every domain is compared in (domain_in_list). */
			char ace[ADDR_DOMAIN_MAX + 2];
			int dot = d[0] == '.';
			ace[0] = '.';
			if (!utf8_valid(d, n) ||
			    idn_to_ascii(d + dot, ace + dot, sizeof(ace) - 1) < 0) {
				snprintf(why, wlen, "bad domain '%.*s' in %s", ECHO_MAX, d,
				         k->name);
				free(d);
				strlist_clear(&nl);
				return -1;
			}
			free(d);
			d = xstrdup(ace);
			n = strlen(d);
		}
		const char *base = d[0] == '.' ? d + 1 : d;
		if (n > ADDR_DOMAIN_MAX || *base == '\0' || !addr_domain_valid(base, 0)) {
			snprintf(why, wlen, "bad domain '%.*s' in %s", ECHO_MAX, d, k->name);
			free(d);
			strlist_clear(&nl);
			return -1;
		}
		nl.v = xreallocarray(nl.v, nl.n + 1, sizeof(*nl.v));
		nl.v[nl.n++] = d;
	}
	strlist_clear(l);
	*l = nl;
	return 0;
}

static int apply_cidrs(const struct conf_key *k, struct cidrlist *l, const char *value, char *why,
                       size_t wlen)
{
	struct cidrlist nl = {NULL, 0};
	const char *p = value, *it;
	size_t len;
	while (next_item(&p, &it, &len)) {
		char *s = xstrndup(it, len);
		struct cidr c;
		if (cidr_parse(s, &c) == -1) {
			snprintf(why, wlen, "bad network '%.*s' in %s", ECHO_MAX, s, k->name);
			free(s);
			free(nl.v);
			return -1;
		}
		free(s);
		nl.v = xreallocarray(nl.v, nl.n + 1, sizeof(*nl.v));
		nl.v[nl.n++] = c;
	}
	free(l->v);
	*l = nl;
	return 0;
}

/* A listen value: addresses, each optionally followed by its options. */
static int apply_listen(struct listenlist *l, const char *value, int add, char *why, size_t wlen)
{
	struct listenlist nl = {NULL, 0};
	const char *p = value, *it;
	size_t len;
	while (next_item(&p, &it, &len)) {
		char *s = xstrndup(it, len);
		char *eq = strchr(s, '=');
		if (eq != NULL) {
			*eq = '\0';
			int on;
			if (strcmp(s, "timing") != 0) {
				*eq = '=';
				snprintf(why, wlen, "unknown listen option '%.*s'", ECHO_MAX, s);
			} else if (nl.n == 0) {
				*eq = '=';
				snprintf(why, wlen, "listen option '%.*s' must follow an address",
				         ECHO_MAX, s);
			} else if (parse_bool(eq + 1, &on) == -1) {
				snprintf(why, wlen, "bad value '%.*s' for listen option timing",
				         ECHO_MAX, eq + 1);
			} else {
				nl.v[nl.n - 1].timing = on;
				free(s);
				continue;
			}
			free(s);
			goto fail;
		}
		struct listen_conf lc;
		memset(&lc, 0, sizeof(lc));
		lc.sslen = sizeof(lc.ss);
		if (sockaddr_parse_listen(s, &lc.ss, &lc.sslen) == -1) {
			snprintf(
			    why, wlen,
			    "bad listen address '%.*s' (expected ADDR:PORT such as 127.0.0.1:25 "
			    "or [::1]:25)",
			    ECHO_MAX, s);
			free(s);
			goto fail;
		}
		lc.text = s;
		lc.timing = 1;
		nl.v = xreallocarray(nl.v, nl.n + 1, sizeof(*nl.v));
		nl.v[nl.n++] = lc;
	}
	/* The text is the address plus any option that differs from the
	 * default, so that printing it gives a line that reads back the same. */
	for (size_t i = 0; i < nl.n; i++) {
		if (nl.v[i].timing == 0) {
			char *t;
			xasprintf(&t, "%s timing=off", nl.v[i].text);
			free(nl.v[i].text);
			nl.v[i].text = t;
		}
	}
	if (!add) {
		listenlist_clear(l);
		*l = nl;
		return 0;
	}
	l->v = xreallocarray(l->v, l->n + nl.n, sizeof(*l->v));
	if (nl.n > 0)
		memcpy(l->v + l->n, nl.v, nl.n * sizeof(*nl.v));
	l->n += nl.n;
	free(nl.v);
	return 0;
fail:
	listenlist_clear(&nl);
	return -1;
}

/* Store one value. add: append to a listen list instead of replacing it. */
static int conf_apply(struct config *cf, const struct conf_key *k, const char *value, int add,
                      char *why, size_t wlen)
{
	void *f = field(cf, k);
	char reason[160];
	switch (k->type) {
	case CONF_STRING:
	case CONF_PATH:
		if (k->type == CONF_PATH && *value != '\0' && *value != '/') {
			bad_value(why, wlen, k, value, "not an absolute path");
			return -1;
		}
		if (check_special(k, value, reason, sizeof(reason)) == -1) {
			bad_value(why, wlen, k, value, reason);
			return -1;
		}
		if (add && **(char **)f != '\0' && *value != '\0') {
			/* "transport" lines add up: the table is one list. */
			char *joined;
			xasprintf(&joined, "%s, %s", *(char **)f, value);
			free(*(char **)f);
			*(char **)f = joined;
			return 0;
		}
		free(*(char **)f);
		*(char **)f = xstrdup(value);
		return 0;
	case CONF_INT:
	case CONF_DURATION: {
		int dur = k->type == CONF_DURATION, rc;
		int64_t v;
		rc = dur ? parse_duration(value, &v) : parse_int(value, INT64_MIN, INT64_MAX, &v);
		if (rc == -1) {
			bad_value(
			    why, wlen, k, value,
			    dur ? "not a duration (seconds, or with an s, m, h, d or w suffix)"
			        : "not a number");
			return -1;
		}
		if (v < k->min || v > k->max) {
			snprintf(why, wlen, "%s must be between %lld%s and %lld%s", k->name,
			         (long long)k->min, dur ? "s" : "", (long long)k->max,
			         dur ? "s" : "");
			return -1;
		}
		*(int64_t *)f = v;
		return 0;
	}
	case CONF_SIZE: {
		uint64_t v;
		if (parse_size(value, &v) == -1) {
			bad_value(why, wlen, k, value,
			          "not a size (bytes, or with a k, M or G suffix)");
			return -1;
		}
		if (v < (uint64_t)k->min || v > (uint64_t)k->max) {
			snprintf(why, wlen, "%s must be between %lld and %lld bytes", k->name,
			         (long long)k->min, (long long)k->max);
			return -1;
		}
		*(uint64_t *)f = v;
		return 0;
	}
	case CONF_BOOL:
		if (parse_bool(value, (int *)f) == -1) {
			bad_value(why, wlen, k, value, "expected yes or no");
			return -1;
		}
		return 0;
	case CONF_ENUM:
		for (int i = 0; k->enum_values[i] != NULL; i++) {
			if (ascii_strcasecmp(value, k->enum_values[i]) == 0) {
				*(int *)f = i;
				return 0;
			}
		}
		snprintf(reason, sizeof(reason), "expected");
		for (int i = 0; k->enum_values[i] != NULL; i++) {
			size_t n = strlen(reason);
			const char *sep = i == 0                          ? " "
			                  : k->enum_values[i + 1] == NULL ? " or "
			                                                  : ", ";
			snprintf(reason + n, sizeof(reason) - n, "%s%s", sep, k->enum_values[i]);
		}
		bad_value(why, wlen, k, value, reason);
		return -1;
	case CONF_DOMAINS:
		return apply_domains(k, f, value, why, wlen);
	case CONF_CIDRS:
		return apply_cidrs(k, f, value, why, wlen);
	case CONF_LISTEN:
		return apply_listen(f, value, add, why, wlen);
	}
	fatalx("conf: key %s has an unknown type", k->name);
}

void conf_free(struct config *cf)
{
	if (cf == NULL)
		return;
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		void *f = field(cf, k);
		switch (k->type) {
		case CONF_STRING:
		case CONF_PATH:
			free(*(char **)f);
			break;
		case CONF_DOMAINS:
			strlist_clear(f);
			break;
		case CONF_CIDRS:
			free(((struct cidrlist *)f)->v);
			break;
		case CONF_LISTEN:
			listenlist_clear(f);
			break;
		default:
			break;
		}
	}
	memset(cf, 0, sizeof(*cf));
}

void conf_defaults(struct config *cf)
{
	char why[512];
	memset(cf, 0, sizeof(*cf));
	for (size_t i = 0; i < conf_nkeys; i++)
		if (conf_apply(cf, &conf_keys[i], conf_keys[i].def, 0, why, sizeof(why)) == -1)
			fatalx("conf: built-in default of %s: %s", conf_keys[i].name, why);
}

/* A double quoted string starting at s[i] (the quote): \" and \\ are the
 * only escapes. Appends its content to q and returns the index after the
 * closing quote, or -1. */
static long read_quoted(const char *s, size_t i, size_t n, struct strbuf *q, char *why, size_t wlen)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
			strbuf_add(q, &s[++i], 1);
		else if (s[i] == '"')
			return (long)i + 1;
		else
			strbuf_add(q, &s[i], 1);
	}
	snprintf(why, wlen, "missing closing quote");
	return -1;
}

/*
 * The value part of one physical line, from s[i] to s[n]: either a quoted
 * string (it keeps '#' and leading or trailing spaces) followed by nothing
 * but an optional comment, or bare text ending where the comment starts (a
 * '#' after white space). Appends the value to out, after a space when out
 * already holds the value of earlier lines.
 */
static int value_segment(const char *s, size_t i, size_t n, struct strbuf *out, char *why,
                         size_t wlen)
{
	while (i < n && is_ws(s[i]))
		i++;
	if (i < n && s[i] == '"') {
		struct strbuf q = STRBUF_INIT;
		strbuf_add(&q, "", 0);
		long e = read_quoted(s, i, n, &q, why, wlen);
		if (e >= 0) {
			for (i = (size_t)e; i < n && is_ws(s[i]); i++)
				;
			if (i < n && s[i] != '#') {
				snprintf(why, wlen, "unexpected text after the closing quote");
				e = -1;
			}
		}
		if (e >= 0) {
			if (out->len > 0 && q.len > 0)
				strbuf_add(out, " ", 1);
			strbuf_add(out, q.s, q.len);
		}
		free(q.s);
		return e >= 0 ? 0 : -1;
	}
	size_t start = i, end = i;
	for (; i < n; i++) {
		if (s[i] == '#' && i > 0 && is_ws(s[i - 1]))
			break;
		if (!is_ws(s[i]))
			end = i + 1;
	}
	if (end > start) {
		if (out->len > 0)
			strbuf_add(out, " ", 1);
		strbuf_add(out, s + start, end - start);
	}
	return 0;
}

/* Octets an admin's file must not hold outside of a comment or at all. */
static int check_bytes(const char *s, size_t n, char *why, size_t wlen)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0') {
			snprintf(why, wlen, "NUL byte in line");
			return -1;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			snprintf(why, wlen, "control character 0x%02x in line", c);
			return -1;
		}
	}
	return 0;
}

struct parser {
	struct config *cf;
	int *seen; /* per key of conf_keys[]: line of first use, 0 = none */
	int listen_seen;
	int transport_seen;         /* transport lines add up, like listen */
	const struct conf_key *key; /* pending key, its value collected in val */
	int key_line;
	struct strbuf val;
};

static int flush_pending(struct parser *ps, char *why, size_t wlen)
{
	const struct conf_key *k = ps->key;
	if (k == NULL)
		return 0;
	ps->key = NULL;
	/* The first listen line of a file replaces the built-in listeners;
	 * later ones add to it. */
	int add = k->type == CONF_LISTEN && ps->listen_seen;
	if (k->type == CONF_LISTEN)
		ps->listen_seen = 1;
	if (strcmp(k->name, "transport") == 0) {
		add = ps->transport_seen;
		ps->transport_seen = 1;
	}
	return conf_apply(ps->cf, k, ps->val.s ? ps->val.s : "", add, why, wlen);
}

/* One physical line; *eline gets the line an error refers to. */
static int parse_line(struct parser *ps, const char *s, size_t n, int line, int *eline, char *why,
                      size_t wlen)
{
	*eline = line;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (check_bytes(s, n, why, wlen) == -1)
		return -1;
	size_t i = 0;
	while (i < n && is_ws(s[i]))
		i++;
	if (i == n || s[i] == '#')
		return 0;
	if (i > 0) {
		if (ps->key == NULL) {
			snprintf(why, wlen, "continuation line without a key before it");
			return -1;
		}
		return value_segment(s, i, n, &ps->val, why, wlen);
	}
	*eline = ps->key_line;
	if (flush_pending(ps, why, wlen) == -1)
		return -1;
	*eline = line;
	size_t klen = 0;
	while (klen < n && !is_ws(s[klen]) && s[klen] != '=')
		klen++;
	for (i = klen; i < n && is_ws(s[i]); i++)
		;
	if (i == n || s[i] != '=') {
		snprintf(why, wlen, "missing '='");
		return -1;
	}
	if (klen == 0) {
		snprintf(why, wlen, "missing key before '='");
		return -1;
	}
	const struct conf_key *k = find_key_n(s, klen);
	if (k == NULL) {
		snprintf(why, wlen, "unknown key '%.*s'", (int)(klen < ECHO_MAX ? klen : ECHO_MAX),
		         s);
		return -1;
	}
	size_t idx = (size_t)(k - conf_keys);
	if (ps->seen[idx] && k->type != CONF_LISTEN && strcmp(k->name, "transport") != 0) {
		snprintf(why, wlen, "key '%s' given twice (first on line %d)", k->name,
		         ps->seen[idx]);
		return -1;
	}
	if (!ps->seen[idx])
		ps->seen[idx] = line;
	ps->key = k;
	ps->key_line = line;
	strbuf_reset(&ps->val);
	return value_segment(s, i + 1, n, &ps->val, why, wlen);
}

int conf_parse_buffer(const char *name, const char *text, size_t len, struct config *cf, char *err,
                      size_t errlen)
{
	struct parser ps;
	char why[512];
	int line = 0, eline = 0, rc = 0;

	memset(&ps, 0, sizeof(ps));
	ps.cf = cf;
	ps.seen = xcalloc(conf_nkeys, sizeof(*ps.seen));
	conf_defaults(cf);
	const char *p = text, *end = text + len;
	/* A byte order mark left by an editor is not part of the first key. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		if (parse_line(&ps, p, n, line, &eline, why, sizeof(why)) == -1) {
			rc = -1;
			break;
		}
		p += n + (nl ? 1 : 0);
	}
	if (rc == 0) {
		eline = ps.key_line;
		rc = flush_pending(&ps, why, sizeof(why));
	}
	free(ps.val.s);
	free(ps.seen);
	if (rc == -1) {
		snprintf(err, errlen, "%s:%d: %s", name, eline, why);
		conf_free(cf);
	}
	return rc;
}

int conf_load(const char *path, struct config *cf, char *err, size_t errlen)
{
	size_t got = 0;
	char *buf = table_load(path, CONF_MAX_FILE, &got, NULL, err, errlen);

	if (buf == NULL) {
		memset(cf, 0, sizeof(*cf));
		return -1;
	}
	int rc = conf_parse_buffer(path, buf, got, cf, err, errlen);
	free(buf);
	return rc;
}

int conf_set(struct config *cf, const char *assignment, char *err, size_t errlen)
{
	char why[512];
	const char *eq = strchr(assignment, '=');
	struct strbuf val = STRBUF_INIT;
	int rc = -1;

	if (eq == NULL) {
		snprintf(err, errlen, "-o: missing '=' in '%.*s'", ECHO_MAX, assignment);
		goto out;
	}
	const char *ks = assignment, *ke = eq;
	while (ks < ke && is_ws(*ks))
		ks++;
	while (ke > ks && is_ws(ke[-1]))
		ke--;
	const struct conf_key *k = find_key_n(ks, (size_t)(ke - ks));
	if (k == NULL) {
		snprintf(err, errlen, "-o: unknown key '%.*s'", (int)(ke - ks), ks);
		goto out;
	}
	const char *v = eq + 1;
	size_t vn = strlen(v);
	if (check_bytes(v, vn, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "-o: %s: %s", k->name, why);
		goto out;
	}
	while (*v && is_ws(*v))
		v++, vn--;
	while (vn > 0 && is_ws(v[vn - 1]))
		vn--;
	strbuf_add(&val, "", 0);
	if (vn > 0 && v[0] == '"') {
		/* A quoted value keeps its spaces; a command line has no comments. */
		long e = read_quoted(v, 0, vn, &val, why, sizeof(why));
		if (e >= 0 && (size_t)e != vn) {
			snprintf(why, sizeof(why), "unexpected text after the closing quote");
			e = -1;
		}
		if (e < 0) {
			snprintf(err, errlen, "-o: %s: %s", k->name, why);
			goto out;
		}
	} else {
		strbuf_add(&val, v, vn);
	}
	/* An override replaces the value, listen included. */
	if (conf_apply(cf, k, val.s, 0, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "-o: %s", why);
		goto out;
	}
	rc = 0;
out:
	free(val.s);
	if (rc == -1)
		conf_free(cf);
	return rc;
}

static int system_hostname(char *buf, size_t size)
{
	if (gethostname(buf, size) == -1)
		return -1;
	buf[size - 1] = '\0';
	return 0;
}

/* <spool>/name, for the settings whose default lives in the spool. */
static char *derived_spool_file(const char *spool, const char *name)
{
	size_t n = strlen(spool);
	while (n > 1 && spool[n - 1] == '/')
		n--;
	char *p;
	xasprintf(&p, "%.*s/%s", (int)n, spool, name);
	return p;
}

/* Next to the spool, not in it: local users must reach the maildrop,
 * and the spool is its owner's alone. */
static char *derived_maildrop(const char *spool)
{
	size_t n = strlen(spool);
	while (n > 1 && spool[n - 1] == '/')
		n--;
	char *p;
	xasprintf(&p, "%.*s-maildrop", (int)n, spool);
	return p;
}

int conf_finish(struct config *cf, char *err, size_t errlen)
{
	char host[ADDR_DOMAIN_MAX + 2];

	if (cf->listen.n == 0) {
		snprintf(err, errlen, "no listen address: at least one listen line is needed");
		goto fail;
	}
	for (size_t i = 0; i < cf->listen.n; i++) {
		for (size_t j = 0; j < i; j++) {
			const struct listen_conf *a = &cf->listen.v[i], *b = &cf->listen.v[j];
			char ha[64], hb[64];
			sockaddr_host((const struct sockaddr *)&a->ss, ha, sizeof(ha));
			sockaddr_host((const struct sockaddr *)&b->ss, hb, sizeof(hb));
			if (a->ss.ss_family == b->ss.ss_family && strcmp(ha, hb) == 0 &&
			    sockaddr_port((const struct sockaddr *)&a->ss) ==
			        sockaddr_port((const struct sockaddr *)&b->ss)) {
				snprintf(err, errlen, "listen address '%s' given twice", a->text);
				goto fail;
			}
		}
	}
	if (cf->spool_directory == NULL || cf->spool_directory[0] != '/') {
		snprintf(err, errlen, "spool_directory must be an absolute path");
		goto fail;
	}
	if (cf->hostname == NULL || cf->hostname[0] == '\0') {
		if (system_hostname(host, sizeof(host)) == -1) {
			snprintf(err, errlen, "cannot get the system host name (%s): set hostname",
			         strerror(errno));
			goto fail;
		}
		if (!addr_domain_valid(host, 0)) {
			snprintf(
			    err, errlen,
			    "the system host name '%s' is not a valid domain name: set hostname",
			    host);
			goto fail;
		}
		free(cf->hostname);
		cf->hostname = xstrdup(host);
	}
	if (cf->pid_file == NULL || cf->pid_file[0] == '\0') {
		free(cf->pid_file);
		cf->pid_file = derived_spool_file(cf->spool_directory, "master/tempomxd.pid");
	}
	if (cf->control_socket == NULL || cf->control_socket[0] == '\0') {
		free(cf->control_socket);
		cf->control_socket = derived_spool_file(cf->spool_directory, "tempomxd.sock");
	}
	if (cf->maildrop_directory == NULL || cf->maildrop_directory[0] == '\0') {
		free(cf->maildrop_directory);
		cf->maildrop_directory = derived_maildrop(cf->spool_directory);
	}
	if ((cf->tls_cert_file[0] == '\0') != (cf->tls_key_file[0] == '\0')) {
		snprintf(err, errlen, "tls_cert_file and tls_key_file must be set together");
		goto fail;
	}
	/* The full syntax is route_parse()'s, checked by smtpd (it is not
	 * linked here); this catches a misspelt scheme before the start. */
	if (strcmp(cf->recipient_verify, "none") != 0 &&
	    strncmp(cf->recipient_verify, "lmtp:", 5) != 0 &&
	    strncmp(cf->recipient_verify, "smtp:[", 6) != 0) {
		snprintf(err, errlen,
		         "recipient_verify must be none, lmtp:[address]:port, lmtp:unix:/path "
		         "or smtp:[address]:port");
		goto fail;
	}
	return 0;
fail:
	conf_free(cf);
	return -1;
}

char *conf_value_string(const struct config *cf, const struct conf_key *k)
{
	const void *f = field(cf, k);
	struct strbuf b = STRBUF_INIT;
	char tmp[128];

	strbuf_add(&b, "", 0);
	switch (k->type) {
	case CONF_STRING:
	case CONF_PATH: {
		const char *s = *(char *const *)f;
		strbuf_add(&b, s ? s : "", s ? strlen(s) : 0);
		break;
	}
	case CONF_INT:
		snprintf(tmp, sizeof(tmp), "%lld", (long long)*(const int64_t *)f);
		strbuf_str(&b, tmp);
		break;
	case CONF_SIZE:
		snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)*(const uint64_t *)f);
		strbuf_str(&b, tmp);
		break;
	case CONF_DURATION:
		snprintf(tmp, sizeof(tmp), "%llds", (long long)*(const int64_t *)f);
		strbuf_str(&b, tmp);
		break;
	case CONF_BOOL:
		strbuf_add(&b, *(const int *)f ? "yes" : "no", *(const int *)f ? 3 : 2);
		break;
	case CONF_ENUM: {
		int v = *(const int *)f, n = 0;
		while (k->enum_values[n] != NULL)
			n++;
		const char *s = v >= 0 && v < n ? k->enum_values[v] : "?";
		strbuf_str(&b, s);
		break;
	}
	case CONF_DOMAINS: {
		const struct strlist *l = f;
		for (size_t i = 0; i < l->n; i++) {
			if (i > 0)
				strbuf_add(&b, " ", 1);
			strbuf_str(&b, l->v[i]);
		}
		break;
	}
	case CONF_CIDRS: {
		const struct cidrlist *l = f;
		for (size_t i = 0; i < l->n; i++) {
			cidr_format(&l->v[i], tmp, sizeof(tmp));
			if (i > 0)
				strbuf_add(&b, " ", 1);
			strbuf_str(&b, tmp);
		}
		break;
	}
	case CONF_LISTEN: {
		const struct listenlist *l = f;
		for (size_t i = 0; i < l->n; i++) {
			if (i > 0)
				strbuf_add(&b, " ", 1);
			strbuf_str(&b, l->v[i].text);
		}
		break;
	}
	}
	return b.s;
}

/* "key = value", quoting the value when it would not read back as is. */
static void print_key(const struct config *cf, const struct conf_key *k, FILE *fp)
{
	char *v = conf_value_string(cf, k);
	size_t n = strlen(v);
	int quote = n == 0 || is_ws(v[0]) || is_ws(v[n - 1]) || v[0] == '"' || v[0] == '#';
	for (size_t i = 1; i < n && !quote; i++)
		quote = v[i] == '#' && is_ws(v[i - 1]);
	if (!quote) {
		fprintf(fp, "%s = %s\n", k->name, v);
	} else {
		fprintf(fp, "%s = \"", k->name);
		for (size_t i = 0; i < n; i++) {
			if (v[i] == '"' || v[i] == '\\')
				fputc('\\', fp);
			fputc(v[i], fp);
		}
		fputs("\"\n", fp);
	}
	free(v);
}

void conf_print_all(const struct config *cf, FILE *fp)
{
	for (size_t i = 0; i < conf_nkeys; i++)
		print_key(cf, &conf_keys[i], fp);
}

void conf_print_changed(const struct config *cf, FILE *fp)
{
	struct config def;
	char host[ADDR_DOMAIN_MAX + 2];

	conf_defaults(&def);
	/* After conf_finish() an empty hostname, pid_file or control_socket
	 * has been replaced by its derived value; that is still the default. */
	if (cf->hostname && cf->hostname[0] != '\0' && system_hostname(host, sizeof(host)) == 0) {
		free(def.hostname);
		def.hostname = xstrdup(host);
	}
	if (cf->pid_file && cf->pid_file[0] != '\0' && cf->spool_directory) {
		free(def.pid_file);
		def.pid_file = derived_spool_file(cf->spool_directory, "master/tempomxd.pid");
	}
	if (cf->control_socket && cf->control_socket[0] != '\0' && cf->spool_directory) {
		free(def.control_socket);
		def.control_socket = derived_spool_file(cf->spool_directory, "tempomxd.sock");
	}
	if (cf->maildrop_directory && cf->maildrop_directory[0] != '\0' && cf->spool_directory) {
		free(def.maildrop_directory);
		def.maildrop_directory = derived_maildrop(cf->spool_directory);
	}
	for (size_t i = 0; i < conf_nkeys; i++) {
		char *a = conf_value_string(cf, &conf_keys[i]);
		char *b = conf_value_string(&def, &conf_keys[i]);
		if (strcmp(a, b) != 0)
			print_key(cf, &conf_keys[i], fp);
		free(a);
		free(b);
	}
	conf_free(&def);
}

/* local_domains and relay_domains: ".example.com" is example.com and
 * every name below it (addr_domain_match's ADDR_MATCH_WITH_SUBDOMAINS). */
static int domain_in_list(const struct strlist *l, const char *domain)
{
	char ace[ADDR_DOMAIN_MAX + 1];
	if (domain == NULL || strlen(domain) > ADDR_DOMAIN_MAX + 1)
		return 0;
	/* The lists hold A-labels (apply_domains); a U-label domain of an
	 * SMTPUTF8 address is compared in that form. */
	if (utf8_has_8bit(domain)) {
		if (idn_to_ascii(domain, ace, sizeof(ace)) < 0)
			return 0;
		domain = ace;
	}
	for (size_t i = 0; i < l->n; i++)
		if (addr_domain_match(l->v[i], domain, ADDR_MATCH_WITH_SUBDOMAINS))
			return 1;
	return 0;
}

int conf_is_local_domain(const struct config *cf, const char *domain)
{
	return domain_in_list(&cf->local_domains, domain);
}

int conf_is_relay_domain(const struct config *cf, const char *domain)
{
	return domain_in_list(&cf->relay_domains, domain);
}

int conf_in_mynetworks(const struct config *cf, const struct sockaddr *sa)
{
	if (sa == NULL || cf->mynetworks.n == 0)
		return 0;
	return cidr_match_list(cf->mynetworks.v, cf->mynetworks.n, sa);
}
