/*
 * envelope.c: the envelope block at the head of every spool file.
 *
 * Owns the text format described in include/envelope.h: rendering a
 * struct envelope, parsing it back (from memory or incrementally from a
 * spool file), and the %XX escaping of values. Called by src/spool/spool.c
 * for every file it writes or reads, and by tempomxctl to show a message.
 *
 * One table (envelope_fields) lists every key in the order it is written,
 * with its type and limits; the formatter and the parser both walk it, so
 * they cannot disagree. The parser is strict because a spool file is only
 * ever written by this code: anything it cannot fully understand (unknown
 * or repeated key, a number out of range, a control octet, no "end" line)
 * is an error with a line number, and the caller moves the file to
 * corrupt/ rather than guess. The formatter clamps numbers into the
 * ranges the parser accepts, so it never writes a block it would refuse.
 * A key carries the first version that has it: a version 1 block is
 * written and read without the keys version 2 added.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "strbuf.h"
#include "util.h"

#define ENVELOPE_MAGIC "tempomx-envelope"
#define READ_CHUNK 16384

enum ftype {
	F_STR,     /* char *, line absent when NULL */
	F_SENDER,  /* char *, always written ("" for NULL) */
	F_INT,     /* int */
	F_UINT,    /* unsigned */
	F_I64,     /* int64_t */
	F_ID,      /* char id[] */
	F_ARRIVAL, /* seconds.microseconds */
	F_CLASS,   /* hi / lo */
	F_RCPT,    /* one line per recipient */
	F_ORCPT,   /* belongs to the rcpt line before it */
	F_NOTIFY,  /* belongs to the rcpt line before it */
	F_REPLY,   /* belongs to the rcpt line before it */
	F_HOPS,    /* fixed width, line absent when negative */
	F_SIZE,    /* fixed width */
	F_END,
};

struct field {
	const char *key;
	enum ftype type;
	size_t off;
	int64_t min, max;
	int required;
	int since; /* first envelope version with this key; 0 = all */
};

#define ENV_OFF(m) offsetof(struct envelope, m)

static const struct field envelope_fields[] = {
    {"id", F_ID, 0, 0, 0, 1, 0},
    {"arrival", F_ARRIVAL, 0, 0, 0, 1, 0},
    {"client-addr", F_STR, ENV_OFF(client_addr), 0, 0, 0, 0},
    {"client-port", F_UINT, ENV_OFF(client_port), 0, 65535, 1, 0},
    {"client-name", F_STR, ENV_OFF(client_name), 0, 0, 0, 0},
    {"helo", F_STR, ENV_OFF(helo), 0, 0, 0, 0},
    {"protocol", F_STR, ENV_OFF(protocol), 0, 0, 0, 0},
    {"tls", F_STR, ENV_OFF(tls), 0, 0, 0, 0},
    {"sender", F_SENDER, ENV_OFF(sender), 0, 0, 1, 0},
    {"body-type", F_STR, ENV_OFF(body_type), 0, 0, 0, 0},
    {"smtputf8", F_INT, ENV_OFF(smtputf8), 0, 1, 1, 0},
    {"envid", F_STR, ENV_OFF(envid), 0, 0, 0, 0},
    {"ret", F_STR, ENV_OFF(ret), 0, 0, 0, 0},
    {"class", F_CLASS, 0, 0, 0, 1, 0},
    {"verdict", F_STR, ENV_OFF(verdict), 0, 0, 0, 0},
    {"score", F_INT, ENV_OFF(score), INT_MIN, INT_MAX, 1, 0},
    {"reasons", F_STR, ENV_OFF(reasons), 0, 0, 0, 0},
    {"history", F_STR, ENV_OFF(history), 0, 0, 0, 0},
    {"attempts", F_INT, ENV_OFF(attempts), 0, INT_MAX, 1, 0},
    {"next-retry", F_I64, ENV_OFF(next_retry), 0, INT64_MAX, 1, 0},
    {"scan-result", F_STR, ENV_OFF(scan_result), 0, 0, 0, 0},
    {"bounce-of", F_STR, ENV_OFF(bounce_of), 0, 0, 0, 0},
    {"scan-info", F_STR, ENV_OFF(scan_info), 0, 0, 0, 2},
    {"scan-class", F_STR, ENV_OFF(scan_class), 0, 0, 0, 2},
    {"rcpt", F_RCPT, 0, 0, 0, 0, 0},
    {"rcpt-orcpt", F_ORCPT, 0, 0, 0, 0, 0},
    {"rcpt-notify", F_NOTIFY, 0, 0, 0, 0, 0},
    {"rcpt-reply", F_REPLY, 0, 0, 0, 0, 0},
    {"hops", F_HOPS, 0, 0, 0, 0, 2}, /* right before size: see envelope.h */
    {"size", F_SIZE, 0, 0, 0, 1, 0},
    {"end", F_END, 0, 0, 0, 1, 0},
};

#define NFIELDS (sizeof(envelope_fields) / sizeof(envelope_fields[0]))

static const char *const rcpt_status_names[] = {"pending", "sent", "deferred", "bounced"};

const char *rcpt_status_name(enum rcpt_status s)
{
	if ((unsigned)s < sizeof(rcpt_status_names) / sizeof(rcpt_status_names[0]))
		return rcpt_status_names[s];
	return "unknown";
}

const char *msg_class_name(enum msg_class c)
{
	return c == CLASS_LO ? "lo" : "hi";
}

/* ---- envelope objects ---- */

void envelope_init(struct envelope *env)
{
	memset(env, 0, sizeof(*env));
	env->version = ENVELOPE_VERSION;
	env->class = CLASS_HI;
	env->verdict = xstrdup("unclassified");
	env->hops = -1;
}

static char **str_field(struct envelope *env, size_t off)
{
	return (char **)(void *)((char *)env + off);
}

static char *const *cstr_field(const struct envelope *env, size_t off)
{
	return (char *const *)(const void *)((const char *)env + off);
}

static void rcpt_free(struct rcpt *r)
{
	free(r->addr);
	free(r->orcpt);
	free(r->notify);
	free(r->last_reply);
}

void envelope_free(struct envelope *env)
{
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &envelope_fields[i];
		if (f->type == F_STR || f->type == F_SENDER) {
			char **p = str_field(env, f->off);
			free(*p);
			*p = NULL;
		}
	}
	for (size_t i = 0; i < env->nrcpt; i++)
		rcpt_free(&env->rcpts[i]);
	free(env->rcpts);
	env->rcpts = NULL;
	env->nrcpt = 0;
}

static struct rcpt *rcpt_append(struct envelope *env)
{
	env->rcpts = xreallocarray(env->rcpts, env->nrcpt + 1, sizeof(*env->rcpts));
	struct rcpt *r = &env->rcpts[env->nrcpt++];
	memset(r, 0, sizeof(*r));
	r->status = RCPT_PENDING;
	return r;
}

size_t envelope_add_rcpt(struct envelope *env, const char *addr, const char *orcpt)
{
	struct rcpt *r = rcpt_append(env);
	r->addr = xstrdup(addr);
	r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
	return env->nrcpt - 1;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void envelope_copy(struct envelope *dst, const struct envelope *src)
{
	*dst = *src;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &envelope_fields[i];
		if (f->type == F_STR || f->type == F_SENDER)
			*str_field(dst, f->off) = dup_or_null(*cstr_field(src, f->off));
	}
	dst->rcpts = NULL;
	if (src->nrcpt > 0) {
		dst->rcpts = xreallocarray(NULL, src->nrcpt, sizeof(*dst->rcpts));
		for (size_t i = 0; i < src->nrcpt; i++) {
			dst->rcpts[i] = src->rcpts[i];
			dst->rcpts[i].addr = dup_or_null(src->rcpts[i].addr);
			dst->rcpts[i].orcpt = dup_or_null(src->rcpts[i].orcpt);
			dst->rcpts[i].notify = dup_or_null(src->rcpts[i].notify);
			dst->rcpts[i].last_reply = dup_or_null(src->rcpts[i].last_reply);
		}
	}
}

size_t envelope_pending(const struct envelope *env)
{
	size_t n = 0;
	for (size_t i = 0; i < env->nrcpt; i++) {
		if (env->rcpts[i].status == RCPT_PENDING || env->rcpts[i].status == RCPT_DEFERRED)
			n++;
	}
	return n;
}

/* ---- escaping ---- */

static int needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '%';
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Append the escaped form of len octets. */
static void escaped_add(struct strbuf *b, const void *data, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = data;
	size_t run = 0; /* octets that need no escape, copied in one go */
	for (size_t i = 0; i < len; i++) {
		if (!needs_escape(s[i]))
			continue;
		strbuf_add(b, s + run, i - run);
		char e[3] = {'%', hex[s[i] >> 4], hex[s[i] & 0xf]};
		strbuf_add(b, e, 3);
		run = i + 1;
	}
	strbuf_add(b, s + run, len - run);
}

char *envelope_escape(const void *data, size_t len)
{
	struct strbuf b = STRBUF_INIT;
	escaped_add(&b, data, len);
	return strbuf_detach(&b, NULL);
}

int envelope_unescape(const char *s, size_t len, char **out, size_t *outlen)
{
	char *d = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 1 < len ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(d);
				return -1;
			}
			d[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c < 0x20 || c == 0x7f) {
			free(d);
			return -1;
		} else {
			d[n++] = (char)c;
		}
	}
	d[n] = '\0';
	*out = d;
	if (outlen)
		*outlen = n;
	return 0;
}

/* ---- numeric fields ---- */

static int64_t num_get(const struct envelope *env, const struct field *f)
{
	const void *p = (const char *)env + f->off;
	if (f->type == F_INT)
		return *(const int *)p;
	if (f->type == F_UINT)
		return (int64_t) * (const unsigned *)p;
	return *(const int64_t *)p;
}

/* n is already within the field's limits. */
static void num_set(struct envelope *env, const struct field *f, int64_t n)
{
	void *p = (char *)env + f->off;
	if (f->type == F_INT)
		*(int *)p = (int)n;
	else if (f->type == F_UINT)
		*(unsigned *)p = (unsigned)n;
	else
		*(int64_t *)p = n;
}

/* ---- formatting ---- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void format_line_str(struct strbuf *b, const char *key, const char *val)
{
	strbuf_str(b, key);
	strbuf_lit(b, " ");
	escaped_add(b, val, strlen(val));
	strbuf_lit(b, "\n");
}

static void format_rcpts(struct strbuf *b, const struct envelope *env)
{
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct rcpt *r = &env->rcpts[i];
		unsigned st = (unsigned)r->status <= RCPT_BOUNCED ? (unsigned)r->status : 0;
		strbuf_printf(b, "rcpt %s %d %" PRId64 " %" PRId64 " ", rcpt_status_names[st],
		              (int)clamp64(r->attempts, 0, INT_MAX),
		              clamp64(r->last_attempt, 0, INT64_MAX),
		              clamp64(r->next_retry, 0, INT64_MAX));
		const char *addr = r->addr ? r->addr : "";
		escaped_add(b, addr, strlen(addr));
		strbuf_lit(b, "\n");
		if (r->orcpt)
			format_line_str(b, "rcpt-orcpt", r->orcpt);
		if (r->notify)
			format_line_str(b, "rcpt-notify", r->notify);
		if (r->last_reply)
			format_line_str(b, "rcpt-reply", r->last_reply);
	}
}

void envelope_format_hops(char *buf, int hops)
{
	unsigned v = hops < 0 ? 0 : hops > ENVELOPE_HOPS_MAX ? ENVELOPE_HOPS_MAX : (unsigned)hops;
	for (int i = ENVELOPE_HOPS_WIDTH - 1; i >= 0; i--) {
		buf[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

void envelope_format_size(char *buf, uint64_t size)
{
	for (int i = ENVELOPE_SIZE_WIDTH - 1; i >= 0; i--) {
		buf[i] = (char)('0' + size % 10);
		size /= 10;
	}
}

char *envelope_format(const struct envelope *env, size_t *lenp, size_t *size_off)
{
	struct strbuf b = STRBUF_INIT;
	int version = env->version >= ENVELOPE_VERSION_MIN && env->version <= ENVELOPE_VERSION
	                  ? env->version
	                  : ENVELOPE_VERSION;
	strbuf_printf(&b, "%s %d\n", ENVELOPE_MAGIC, version);
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &envelope_fields[i];
		if (f->since > version)
			continue;
		switch (f->type) {
		case F_STR: {
			const char *v = *cstr_field(env, f->off);
			if (v)
				format_line_str(&b, f->key, v);
			break;
		}
		case F_SENDER: {
			const char *v = *cstr_field(env, f->off);
			format_line_str(&b, f->key, v ? v : "");
			break;
		}
		case F_INT:
		case F_UINT:
		case F_I64:
			strbuf_printf(&b, "%s %" PRId64 "\n", f->key,
			              clamp64(num_get(env, f), f->min, f->max));
			break;
		case F_ID:
			format_line_str(&b, f->key, env->id);
			break;
		case F_ARRIVAL: {
			int64_t t = env->arrival_usec < 0 ? 0 : env->arrival_usec;
			strbuf_printf(&b, "arrival %" PRId64 ".%06" PRId64 "\n", t / 1000000,
			              t % 1000000);
			break;
		}
		case F_CLASS:
			strbuf_printf(&b, "class %s\n", msg_class_name(env->class));
			break;
		case F_RCPT:
			format_rcpts(&b, env);
			break;
		case F_ORCPT:
		case F_NOTIFY:
		case F_REPLY:
			break; /* written with their rcpt line */
		case F_HOPS: {
			if (env->hops < 0)
				break;
			char digits[ENVELOPE_HOPS_WIDTH];
			envelope_format_hops(digits, env->hops);
			strbuf_lit(&b, "hops ");
			strbuf_add(&b, digits, sizeof(digits));
			strbuf_lit(&b, "\n");
			break;
		}
		case F_SIZE: {
			char digits[ENVELOPE_SIZE_WIDTH];
			envelope_format_size(digits, env->size);
			strbuf_lit(&b, "size ");
			if (size_off)
				*size_off = b.len;
			strbuf_add(&b, digits, sizeof(digits));
			strbuf_lit(&b, "\n");
			break;
		}
		case F_END:
			strbuf_lit(&b, "end\n");
			break;
		}
	}
	return strbuf_detach(&b, lenp);
}

/* ---- parsing ---- */

struct pstate {
	struct envelope *env;
	char *err;
	size_t errlen;
	size_t lineno;
	int seen[NFIELDS];
	int rcpt_orcpt_seen, rcpt_notify_seen, rcpt_reply_seen;
};

static int perr(struct pstate *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct pstate *ps, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ps->errlen > 0) {
		if (ps->lineno > 0)
			snprintf(ps->err, ps->errlen, "line %zu: %s", ps->lineno, msg);
		else
			snprintf(ps->err, ps->errlen, "%s", msg);
	}
	return -1;
}

/* A printable, bounded copy of untrusted text for an error message. */
static void shown(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t max = dstlen - 1, n = 0;
	int cut = 0;
	if (len > max) {
		len = max > 3 ? max - 3 : 0;
		cut = 1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[n++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	if (cut) {
		while (n < max)
			dst[n++] = '.';
	}
	dst[n] = '\0';
}

/* Strict decimal: optional '-' only when negative values are allowed, at
 * least one digit, nothing else. The field is not NUL-terminated, so it is
 * copied for parse_int(), which does the rest. */
static int parse_num(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	char buf[24];
	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return -1;
	if (s[0] == '-' && min >= 0)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return parse_int(buf, min, max, out);
}

static int bad_value(struct pstate *ps, const char *key, const char *val, size_t len)
{
	char v[48];
	shown(v, sizeof(v), val, len);
	return perr(ps, "bad value for '%s': '%s'", key, v);
}

static int unescape_value(struct pstate *ps, const char *key, const char *val, size_t len,
                          char **out)
{
	size_t n;
	if (envelope_unescape(val, len, out, &n) < 0)
		return perr(ps, "bad %%-escape in '%s'", key);
	if (n != strlen(*out)) {
		free(*out);
		*out = NULL;
		return perr(ps, "NUL octet (%%00) in '%s'", key);
	}
	return 0;
}

static int parse_rcpt(struct pstate *ps, const char *val, size_t len)
{
	const char *fields[4];
	size_t flen[4];
	size_t pos = 0;
	for (int k = 0; k < 4; k++) {
		const char *sp = memchr(val + pos, ' ', len - pos);
		if (sp == NULL)
			return perr(
			    ps, "malformed rcpt line (want: status attempts last next address)");
		fields[k] = val + pos;
		flen[k] = (size_t)(sp - (val + pos));
		pos = (size_t)(sp - val) + 1;
	}
	int status = -1;
	for (size_t i = 0; i < sizeof(rcpt_status_names) / sizeof(rcpt_status_names[0]); i++) {
		if (strlen(rcpt_status_names[i]) == flen[0] &&
		    memcmp(rcpt_status_names[i], fields[0], flen[0]) == 0)
			status = (int)i;
	}
	if (status < 0)
		return bad_value(ps, "rcpt status", fields[0], flen[0]);
	int64_t att, last, next;
	if (parse_num(fields[1], flen[1], 0, INT_MAX, &att) < 0)
		return bad_value(ps, "rcpt attempts", fields[1], flen[1]);
	if (parse_num(fields[2], flen[2], 0, INT64_MAX, &last) < 0)
		return bad_value(ps, "rcpt last attempt", fields[2], flen[2]);
	if (parse_num(fields[3], flen[3], 0, INT64_MAX, &next) < 0)
		return bad_value(ps, "rcpt next retry", fields[3], flen[3]);
	char *addr;
	if (unescape_value(ps, "rcpt", val + pos, len - pos, &addr) < 0)
		return -1;
	struct rcpt *r = rcpt_append(ps->env);
	r->addr = addr;
	r->status = (enum rcpt_status)status;
	r->attempts = (int)att;
	r->last_attempt = last;
	r->next_retry = next;
	ps->rcpt_orcpt_seen = ps->rcpt_notify_seen = ps->rcpt_reply_seen = 0;
	return 0;
}

static int parse_rcpt_extra(struct pstate *ps, const struct field *f, const char *val, size_t len)
{
	if (ps->env->nrcpt == 0)
		return perr(ps, "'%s' without a preceding 'rcpt'", f->key);
	struct rcpt *r = &ps->env->rcpts[ps->env->nrcpt - 1];
	int *seen = &ps->rcpt_reply_seen;
	char **dst = &r->last_reply;
	if (f->type == F_ORCPT) {
		seen = &ps->rcpt_orcpt_seen;
		dst = &r->orcpt;
	} else if (f->type == F_NOTIFY) {
		seen = &ps->rcpt_notify_seen;
		dst = &r->notify;
	}
	if (*seen)
		return perr(ps, "duplicate key '%s' for one recipient", f->key);
	*seen = 1;
	return unescape_value(ps, f->key, val, len, dst);
}

static int parse_arrival(struct pstate *ps, const char *val, size_t len)
{
	const char *dot = memchr(val, '.', len);
	int64_t sec, usec;
	if (dot == NULL || (size_t)(val + len - dot - 1) != 6 ||
	    parse_num(val, (size_t)(dot - val), 0, INT64_MAX / 1000000 - 1, &sec) < 0 ||
	    parse_num(dot + 1, 6, 0, 999999, &usec) < 0)
		return bad_value(ps, "arrival", val, len);
	ps->env->arrival_usec = sec * 1000000 + usec;
	return 0;
}

static int parse_field(struct pstate *ps, const struct field *f, const char *val, size_t len)
{
	struct envelope *env = ps->env;
	int64_t n;
	switch (f->type) {
	case F_STR:
	case F_SENDER: {
		char **p = str_field(env, f->off);
		free(*p);
		*p = NULL;
		return unescape_value(ps, f->key, val, len, p);
	}
	case F_INT:
	case F_UINT:
	case F_I64:
		if (parse_num(val, len, f->min, f->max, &n) < 0)
			return bad_value(ps, f->key, val, len);
		num_set(env, f, n);
		return 0;
	case F_ID:
		if (len != QUEUEID_LEN)
			return bad_value(ps, f->key, val, len);
		memcpy(env->id, val, QUEUEID_LEN);
		env->id[QUEUEID_LEN] = '\0';
		if (!queueid_valid(env->id))
			return bad_value(ps, f->key, val, len);
		return 0;
	case F_ARRIVAL:
		return parse_arrival(ps, val, len);
	case F_CLASS:
		if (len == 2 && memcmp(val, "hi", 2) == 0)
			env->class = CLASS_HI;
		else if (len == 2 && memcmp(val, "lo", 2) == 0)
			env->class = CLASS_LO;
		else
			return bad_value(ps, f->key, val, len);
		return 0;
	case F_RCPT:
		return parse_rcpt(ps, val, len);
	case F_ORCPT:
	case F_NOTIFY:
	case F_REPLY:
		return parse_rcpt_extra(ps, f, val, len);
	case F_HOPS: {
		/* Fixed width, so that spool_commit() can patch it in place. */
		if (len != ENVELOPE_HOPS_WIDTH || parse_num(val, len, 0, ENVELOPE_HOPS_MAX, &n) < 0)
			return bad_value(ps, f->key, val, len);
		env->hops = (int)n;
		return 0;
	}
	case F_SIZE: {
		if (len != ENVELOPE_SIZE_WIDTH)
			return bad_value(ps, f->key, val, len);
		uint64_t v = 0;
		for (size_t i = 0; i < len; i++) {
			if (val[i] < '0' || val[i] > '9')
				return bad_value(ps, f->key, val, len);
			unsigned d = (unsigned)(val[i] - '0');
			if (v > (UINT64_MAX - d) / 10)
				return bad_value(ps, f->key, val, len);
			v = v * 10 + d;
		}
		env->size = v;
		return 0;
	}
	case F_END:
		if (len != 0)
			return bad_value(ps, f->key, val, len);
		return 0;
	}
	return perr(ps, "internal: unhandled key type");
}

static int parse_header_line(struct pstate *ps, const char *line, size_t len)
{
	size_t mlen = strlen(ENVELOPE_MAGIC);
	if (len < mlen + 1 || memcmp(line, ENVELOPE_MAGIC, mlen) != 0 || line[mlen] != ' ')
		return perr(ps, "not a tempomx envelope (first line must be '%s %d')",
		            ENVELOPE_MAGIC, ENVELOPE_VERSION);
	int64_t v;
	if (parse_num(line + mlen + 1, len - mlen - 1, 0, INT_MAX, &v) < 0)
		return bad_value(ps, "version", line + mlen + 1, len - mlen - 1);
	if (v < ENVELOPE_VERSION_MIN || v > ENVELOPE_VERSION)
		return perr(
		    ps, "unsupported envelope version %" PRId64 " (this reads versions %d to %d)",
		    v, ENVELOPE_VERSION_MIN, ENVELOPE_VERSION);
	ps->env->version = (int)v;
	return 0;
}

/* One line, LF excluded. Returns 1 at "end", 0 to go on, -1 on error. */
static int parse_line(struct pstate *ps, const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			return perr(ps, "control octet 0x%02X in line", c);
	}
	if (ps->lineno == 1)
		return parse_header_line(ps, line, len);
	if (len == 0)
		return perr(ps, "empty line");
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp ? (size_t)(sp - line) : len;
	const char *val = sp ? sp + 1 : line + len;
	size_t vlen = sp ? len - klen - 1 : 0;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &envelope_fields[i];
		if (strlen(f->key) != klen || memcmp(f->key, line, klen) != 0 ||
		    f->since > ps->env->version)
			continue;
		if (f->type != F_RCPT && f->type != F_ORCPT && f->type != F_NOTIFY &&
		    f->type != F_REPLY) {
			if (ps->seen[i])
				return perr(ps, "duplicate key '%s'", f->key);
		}
		ps->seen[i] = 1;
		if (parse_field(ps, f, val, vlen) < 0)
			return -1;
		return f->type == F_END ? 1 : 0;
	}
	char k[48];
	shown(k, sizeof(k), line, klen);
	return perr(ps, "unknown key '%s'", k);
}

int envelope_parse(const char *buf, size_t len, struct envelope *env, size_t *body_off, char *err,
                   size_t errlen)
{
	struct pstate ps;
	memset(&ps, 0, sizeof(ps));
	ps.env = env;
	ps.err = err;
	ps.errlen = errlen;
	envelope_init(env);
	if (errlen > 0)
		err[0] = '\0';

	size_t limit = len < ENVELOPE_MAX_BLOCK ? len : ENVELOPE_MAX_BLOCK;
	size_t pos = 0;
	for (;;) {
		const char *nl = memchr(buf + pos, '\n', limit - pos);
		ps.lineno++;
		if (nl == NULL) {
			ps.lineno = 0;
			if (len > ENVELOPE_MAX_BLOCK)
				perr(&ps, "envelope block larger than %d octets",
				     ENVELOPE_MAX_BLOCK);
			else
				perr(&ps, "truncated envelope block: no 'end' line");
			goto fail;
		}
		size_t llen = (size_t)(nl - (buf + pos));
		int r = parse_line(&ps, buf + pos, llen);
		pos += llen + 1;
		if (r < 0)
			goto fail;
		if (r == 1)
			break;
	}
	ps.lineno = 0;
	for (size_t i = 0; i < NFIELDS; i++) {
		if (envelope_fields[i].required && !ps.seen[i]) {
			perr(&ps, "missing required key '%s'", envelope_fields[i].key);
			goto fail;
		}
	}
	if (body_off)
		*body_off = pos;
	return 0;
fail:
	envelope_free(env);
	memset(env, 0, sizeof(*env));
	errno = EBADMSG;
	return -1;
}

/* Is the "end" line complete in buf[0..len)? Looks only at the octets
 * from 'from' on (minus the overlap a split "\nend\n" needs). */
static int has_end_line(const char *buf, size_t len, size_t from)
{
	static const char pat[] = "\nend\n";
	size_t plen = sizeof(pat) - 1;
	size_t start = from > plen ? from - plen : 0;
	if (len < plen)
		return 0;
	return memmem(buf + start, len - start, pat, plen) != NULL;
}

int envelope_read_fd(int fd, struct envelope *env, size_t *body_off, char *err, size_t errlen)
{
	size_t cap = READ_CHUNK, have = 0;
	char *buf = xmalloc(cap);

	/* Read no further than one octet past the cap: enough for the parser
	 * to tell an oversize block from a truncated one. */
	while (have <= ENVELOPE_MAX_BLOCK) {
		if (have == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		size_t want = cap - have;
		if (want > (size_t)ENVELOPE_MAX_BLOCK + 1 - have)
			want = (size_t)ENVELOPE_MAX_BLOCK + 1 - have;
		ssize_t n = pread(fd, buf + have, want, (off_t)have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			if (errlen > 0)
				snprintf(err, errlen, "read: %s", strerror(saved));
			free(buf);
			memset(env, 0, sizeof(*env));
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		size_t before = have;
		have += (size_t)n;
		if (has_end_line(buf, have, before))
			break;
	}
	int r = envelope_parse(buf, have, env, body_off, err, errlen);
	int saved = errno;
	free(buf);
	errno = saved;
	return r;
}
