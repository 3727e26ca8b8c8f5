/*
 * command.c: SMTP command-line and MAIL/RCPT argument parsing.
 *
 * Pure functions: the session gives a line, gets a verb, an argument and,
 * on error, the identifier of the reply to send. Nothing here knows the
 * session state or the configuration; the session applies the limits
 * (SIZE against message_size_limit, relay rules) to what is parsed here.
 *
 * SMTPUTF8 (RFC 6531): the MAIL parameter, and UTF-8 in paths only in a
 * transaction that gave it; a non-ASCII path without it gets the 5.6.7
 * replies of RFC 6531 3.5 (550 for MAIL, 553 for RCPT).
 *
 * Strictness follows RFC 5321 4.1.1 and 4.1.2 with two tolerances that
 * common clients need and that cannot be abused: blanks after "FROM:" and
 * "TO:", and trailing blanks at the end of the line. The DSN parameters
 * (RFC 3461: RET, ENVID, NOTIFY, ORCPT) are parsed by src/common/dsn.c,
 * and MAIL and RCPT lines get the longer limits that RFC gives them.
 */
#include <arpa/inet.h>
#include <string.h>

#include "command.h"
#include "util.h"

struct verb_def {
	const char *name;
	enum cmd_verb verb;
	enum { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED, ARG_ANY } args;
};

static const struct verb_def verbs[] = {
    {"HELO", CMD_HELO, ARG_REQUIRED},     {"EHLO", CMD_EHLO, ARG_REQUIRED},
    {"MAIL", CMD_MAIL, ARG_REQUIRED},     {"RCPT", CMD_RCPT, ARG_REQUIRED},
    {"DATA", CMD_DATA, ARG_NONE},         {"RSET", CMD_RSET, ARG_NONE},
    {"NOOP", CMD_NOOP, ARG_OPTIONAL},     {"QUIT", CMD_QUIT, ARG_NONE},
    {"VRFY", CMD_VRFY, ARG_REQUIRED},     {"HELP", CMD_HELP, ARG_OPTIONAL},
    {"STARTTLS", CMD_STARTTLS, ARG_NONE}, {"EXPN", CMD_EXPN, ARG_ANY},
    {"BDAT", CMD_BDAT, ARG_ANY},          {"AUTH", CMD_AUTH, ARG_ANY},
    {"ETRN", CMD_ETRN, ARG_ANY},          {"TURN", CMD_TURN, ARG_ANY},
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

/* First words of requests of other protocols that reach an SMTP port:
 * HTTP request lines (web proxies abused to send mail, scanners). */
static const char *const foreign_verbs[] = {
    "GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE", "TRACE", "PATCH",
};

static int is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static unsigned char upper(unsigned char c)
{
	return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
}

static int word_caseeq(const char *p, size_t len, const char *word)
{
	size_t wl = strlen(word);
	if (len != wl)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (upper((unsigned char)p[i]) != (unsigned char)word[i])
			return 0;
	return 1;
}

static const struct verb_def *verb_lookup(enum cmd_verb v)
{
	for (size_t i = 0; i < NVERBS; i++)
		if (verbs[i].verb == v)
			return &verbs[i];
	return NULL;
}

const char *cmd_verb_name(enum cmd_verb v)
{
	const struct verb_def *d = verb_lookup(v);
	if (d)
		return d->name;
	return v == CMD_UNKNOWN ? "UNKNOWN" : "NONE";
}

int cmd_is_tls_record(const unsigned char *p, size_t len)
{
	/* TLS record header: content type 22 (handshake), then major
	 * version 3 (SSL 3.0 to TLS 1.3 all use 3.x here). */
	return len >= 2 && p[0] == 0x16 && p[1] == 0x03;
}

/* A message header line sent as a command ("Subject: hi", "From:",
 * "X-Mailer:"): a field name of RFC 5322 3.6.8 (printable characters but
 * the colon, at least one letter) followed at once by a colon. No SMTP
 * command has a colon in its first word: that is a client writing the
 * message where the dialogue is. A word that starts with a verb
 * ("MAILFROM:<a@b>") is a malformed command instead. */
static int is_header_line(const char *line, size_t len)
{
	int letters = 0;
	for (size_t v = 0; v < NVERBS; v++) {
		size_t vl = strlen(verbs[v].name);
		if (len >= vl && ascii_strncasecmp(line, verbs[v].name, vl) == 0)
			return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == ':')
			return i > 0 && letters > 0;
		if (c < 33 || c > 126)
			return 0;
		if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
			letters++;
	}
	return 0;
}

/* "GET / HTTP/1.1" and friends: a method in capitals and a space. HTTP
 * methods are case-sensitive, and no SMTP verb collides with them. */
static int is_foreign(const char *line, size_t len)
{
	if (cmd_is_tls_record((const unsigned char *)line, len))
		return 1;
	if (is_header_line(line, len))
		return 1;
	for (size_t i = 0; i < sizeof(foreign_verbs) / sizeof(foreign_verbs[0]); i++) {
		size_t wl = strlen(foreign_verbs[i]);
		if (len > wl && memcmp(line, foreign_verbs[i], wl) == 0 && line[wl] == ' ')
			return 1;
	}
	return 0;
}

/* The longest a line may be, from its first octets: RFC 3461 lets
 * MAIL and RCPT carry the DSN parameters beyond RFC 5321's 512. */
static size_t line_limit(const char *buf, size_t avail, int discarding)
{
	if (!discarding && avail >= 5 && buf[4] == ' ') {
		if (ascii_strncasecmp(buf, "MAIL", 4) == 0)
			return CMD_LINE_MAX_MAIL;
		if (ascii_strncasecmp(buf, "RCPT", 4) == 0)
			return CMD_LINE_MAX_RCPT;
	}
	return CMD_LINE_MAX;
}

enum cmd_frame_status cmd_frame(const char *buf, size_t avail, int discarding,
                                struct cmd_frame *out)
{
	size_t limit = line_limit(buf, avail, discarding);
	size_t window = avail < limit ? avail : limit;
	const char *lf = memchr(buf, '\n', window);
	memset(out, 0, sizeof(*out));
	if (lf == NULL) {
		/* The limit without LF: whatever comes, the line is too long. */
		if (discarding || window == limit) {
			out->consumed = window;
			return CMD_FRAME_DISCARD;
		}
		return CMD_FRAME_MORE;
	}
	out->consumed = (size_t)(lf - buf) + 1;
	if (discarding)
		return CMD_FRAME_TOO_LONG;
	out->len = out->consumed - 1;
	if (out->len > 0 && buf[out->len - 1] == '\r')
		out->len--;
	else
		out->bare_lf = 1;
	return CMD_FRAME_LINE;
}

enum reply_id cmd_parse(const char *line, size_t len, struct cmd_line *out)
{
	out->verb = CMD_NONE;
	out->arg = line + len;
	out->arglen = 0;

	if (is_foreign(line, len))
		return RPL_NON_SMTP;
	/* RFC 5321 2.3.8: CR only as part of CR LF; NUL never in commands. */
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL)
		return RPL_BAD_CHAR;

	/* Trailing blanks mean nothing (and some clients send them). */
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	size_t vlen = 0;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	if (vlen == 0)
		return RPL_UNKNOWN_CMD;

	out->verb = CMD_UNKNOWN;
	for (size_t i = 0; i < NVERBS; i++) {
		if (word_caseeq(line, vlen, verbs[i].name)) {
			out->verb = verbs[i].verb;
			break;
		}
	}

	size_t a = vlen;
	while (a < len && line[a] == ' ')
		a++;
	out->arg = line + a;
	out->arglen = len - a;
	return out->verb == CMD_UNKNOWN ? RPL_UNKNOWN_CMD : RPL_NONE;
}

enum reply_id cmd_check_args(const struct cmd_line *cmd)
{
	const struct verb_def *d = verb_lookup(cmd->verb);
	if (d == NULL)
		return RPL_UNKNOWN_CMD;
	switch (d->args) {
	case ARG_NONE:
		return cmd->arglen == 0 ? RPL_NONE : RPL_NO_ARGS;
	case ARG_REQUIRED:
		if (cmd->arglen > 0)
			return RPL_NONE;
		if (cmd->verb == CMD_HELO || cmd->verb == CMD_EHLO)
			return RPL_BAD_HELO;
		return RPL_NEED_ARG;
	case ARG_OPTIONAL:
	case ARG_ANY:
		break;
	}
	return RPL_NONE;
}

enum reply_id cmd_check_helo(const char *arg, size_t len)
{
	char buf[ADDR_DOMAIN_MAX + 1];
	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return RPL_BAD_HELO;
	memcpy(buf, arg, len);
	buf[len] = '\0';
	if (memchr(buf, ' ', len) != NULL || memchr(buf, '\t', len) != NULL || strlen(buf) != len)
		return RPL_BAD_HELO;
	/* Tolerated, as real servers do, because legitimate clients send
	 * them: a bare IP address and '_' in a host name. They are not
	 * refused here; the classifier weighs the HELO form (timing.c). */
	unsigned char bin[16];
	if (inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1)
		return RPL_NONE;
	if (buf[0] != '[')
		for (char *p = buf; *p; p++)
			if (*p == '_')
				*p = 'x';
	return addr_domain_valid(buf, 1) ? RPL_NONE : RPL_BAD_HELO;
}

/* Copy a keyword into a reply argument, cut to the buffer. */
static void set_param(char *dst, const char *p, size_t len)
{
	if (len >= CMD_PARAM_NAME_MAX)
		len = CMD_PARAM_NAME_MAX - 1;
	memcpy(dst, p, len);
	dst[len] = '\0';
}

/* One ESMTP parameter (RFC 5321 4.1.2):
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126)
 * On success sets key/val (val NULL when there is no "=") and returns
 * the position after the parameter. */
struct param {
	const char *key;
	size_t keylen;
	const char *val;
	size_t vallen;
};

static const char *next_param(const char *p, const char *e, struct param *pm, int *ok)
{
	*ok = 0;
	pm->key = p;
	pm->val = NULL;
	pm->vallen = 0;
	if (p >= e || !(is_alpha((unsigned char)*p) || is_digit((unsigned char)*p)))
		return p;
	while (p < e && (is_alpha((unsigned char)*p) || is_digit((unsigned char)*p) || *p == '-'))
		p++;
	pm->keylen = (size_t)(p - pm->key);
	if (p < e && *p == '=') {
		p++;
		pm->val = p;
		while (p < e && (unsigned char)*p >= 33 && (unsigned char)*p <= 126 && *p != '=')
			p++;
		pm->vallen = (size_t)(p - pm->val);
		if (pm->vallen == 0)
			return p;
	}
	if (p < e && *p != ' ')
		return p;
	*ok = 1;
	return p;
}

/* RFC 1870: size-value = 1*20DIGIT. A value beyond 64 bits is still
 * syntactically valid and is simply too large. */
static int parse_size_value(const char *v, size_t len, uint64_t *out)
{
	if (len == 0 || len > 20)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit((unsigned char)v[i]))
			return -1;
		unsigned d = (unsigned)(v[i] - '0');
		if (n > (UINT64_MAX - d) / 10) {
			n = UINT64_MAX;
			for (; i < len; i++)
				if (!is_digit((unsigned char)v[i]))
					return -1;
			break;
		}
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* The reply for a parameter dsn.c looked at (RFC 3461 section 4: a bad
 * value is a syntax error, 501 5.5.4). 0 when it is not a DSN one. */
static int dsn_reply(enum dsn_param_result d, enum reply_id *r)
{
	switch (d) {
	case DSN_PARAM_OK:
		*r = RPL_NONE;
		return 1;
	case DSN_PARAM_DUP:
		*r = RPL_PARAM_DUP;
		return 1;
	case DSN_PARAM_BAD:
		*r = RPL_PARAM_SYNTAX;
		return 1;
	case DSN_PARAM_NOT_OURS:
		break;
	}
	return 0;
}

static enum reply_id mail_param(struct cmd_mail *out, const struct param *pm)
{
	if (word_caseeq(pm->key, pm->keylen, "SIZE")) {
		if (out->has_size)
			return RPL_PARAM_DUP;
		if (pm->val == NULL || parse_size_value(pm->val, pm->vallen, &out->size) != 0)
			return RPL_PARAM_SYNTAX;
		out->has_size = 1;
		return RPL_NONE;
	}
	if (word_caseeq(pm->key, pm->keylen, "BODY")) {
		if (out->body != CMD_BODY_NONE)
			return RPL_PARAM_DUP;
		if (pm->val == NULL)
			return RPL_PARAM_SYNTAX;
		if (word_caseeq(pm->val, pm->vallen, "7BIT"))
			out->body = CMD_BODY_7BIT;
		else if (word_caseeq(pm->val, pm->vallen, "8BITMIME"))
			out->body = CMD_BODY_8BITMIME;
		else if (word_caseeq(pm->val, pm->vallen, "BINARYMIME"))
			return RPL_PARAM_UNKNOWN; /* RFC 3030: needs CHUNKING */
		else
			return RPL_PARAM_SYNTAX;
		return RPL_NONE;
	}
	if (word_caseeq(pm->key, pm->keylen, "SMTPUTF8")) {
		/* RFC 6531 3.4: no value. */
		if (out->smtputf8)
			return RPL_PARAM_DUP;
		if (pm->val != NULL)
			return RPL_PARAM_SYNTAX;
		out->smtputf8 = 1;
		return RPL_NONE;
	}
	enum reply_id r;
	if (dsn_reply(dsn_mail_param(&out->dsn, pm->key, pm->keylen, pm->val, pm->vallen), &r))
		return r;
	/* AUTH (RFC 4954) and everything else: not advertised, so not
	 * accepted (RFC 5321 4.1.1.11: 555 for unrecognised parameters). */
	return RPL_PARAM_UNKNOWN;
}

/* Skip "FROM:" / "TO:" and the blanks after it. Returns the start of the
 * path or NULL. */
static const char *skip_prefix(const char *arg, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (len < pl)
		return NULL;
	for (size_t i = 0; i < pl; i++)
		if (upper((unsigned char)arg[i]) != (unsigned char)prefix[i])
			return NULL;
	const char *p = arg + pl;
	while (p < arg + len && *p == ' ')
		p++;
	return p;
}

/* Walk the parameters after a path; fn decides what each means. */
static enum reply_id walk_params(const char *p, const char *e, char *param_out,
                                 enum reply_id (*fn)(void *ctx, const struct param *pm), void *ctx)
{
	while (p < e) {
		if (*p != ' ')
			return RPL_PARAM_SYNTAX;
		while (p < e && *p == ' ')
			p++;
		if (p >= e)
			break;
		struct param pm;
		int ok;
		const char *next = next_param(p, e, &pm, &ok);
		if (!ok) {
			const char *w = p;
			while (w < e && *w != ' ')
				w++;
			set_param(param_out, p, (size_t)(w - p));
			return RPL_PARAM_SYNTAX;
		}
		set_param(param_out, pm.key, pm.keylen);
		enum reply_id r = fn(ctx, &pm);
		if (r != RPL_NONE)
			return r;
		p = next;
	}
	param_out[0] = '\0';
	return RPL_NONE;
}

static enum reply_id mail_param_cb(void *ctx, const struct param *pm)
{
	return mail_param(ctx, pm);
}

/* Whether the word SMTPUTF8 (any case) stands on its own somewhere in
 * p..e: the parameters of a path that could not be parsed cannot be
 * found, so this is how a malformed 8-bit path tells whether the client
 * meant SMTPUTF8. */
static int mentions_smtputf8(const char *p, const char *e)
{
	static const char w[] = "SMTPUTF8";
	size_t wl = sizeof(w) - 1;
	for (const char *q = p; q + wl <= e; q++) {
		if (q > p && q[-1] != ' ')
			continue;
		if ((q + wl == e || q[wl] == ' ') && word_caseeq(q, wl, w))
			return 1;
	}
	return 0;
}

enum reply_id cmd_parse_mail(const char *arg, size_t len, int addr_flags, struct cmd_mail *out)
{
	memset(out, 0, sizeof(*out));
	const char *e = arg + len;
	const char *p = skip_prefix(arg, len, "FROM:");
	if (p == NULL || p >= e)
		return RPL_MAIL_SYNTAX;
	const char *end = NULL;
	int flags = addr_flags | ADDR_ALLOW_NULL | ADDR_ALLOW_ROUTE;
	/* The SMTPUTF8 parameter comes after the path it allows UTF-8 in
	 * (RFC 6531 3.4), so the path is parsed as UTF-8 first and judged
	 * once the parameters are known. */
	out->addr_err =
	    addr_parse_path(p, (size_t)(e - p), flags | ADDR_ALLOW_UTF8, &out->addr, &end);
	if (out->addr_err != ADDR_OK) {
		struct mailaddr plain;
		if (!(addr_flags & ADDR_ALLOW_UTF8) &&
		    addr_parse_path(p, (size_t)(e - p), flags, &plain, NULL) == ADDR_ERR_8BIT &&
		    !mentions_smtputf8(p, e)) {
			out->addr_err = ADDR_ERR_8BIT;
			return RPL_MAIL_NOT_ASCII;
		}
		return RPL_BAD_SENDER;
	}
	enum reply_id r = walk_params(end, e, out->param, mail_param_cb, out);
	if (r != RPL_NONE)
		return r;
	if (out->addr.is_utf8 && !out->smtputf8 && !(addr_flags & ADDR_ALLOW_UTF8)) {
		/* RFC 6531 3.5: 550 5.6.7 for a non-ASCII reverse-path. */
		out->addr_err = ADDR_ERR_8BIT;
		return RPL_MAIL_NOT_ASCII;
	}
	return RPL_NONE;
}

static enum reply_id rcpt_param_cb(void *ctx, const struct param *pm)
{
	struct cmd_rcpt *out = ctx;
	enum reply_id r;
	if (dsn_reply(dsn_rcpt_param(&out->dsn, pm->key, pm->keylen, pm->val, pm->vallen), &r))
		return r;
	return RPL_PARAM_UNKNOWN;
}

enum reply_id cmd_parse_rcpt(const char *arg, size_t len, int addr_flags, struct cmd_rcpt *out)
{
	memset(out, 0, sizeof(*out));
	const char *e = arg + len;
	const char *p = skip_prefix(arg, len, "TO:");
	if (p == NULL || p >= e)
		return RPL_RCPT_SYNTAX;
	const char *end = NULL;
	out->addr_err = addr_parse_path(p, (size_t)(e - p),
	                                addr_flags | ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_ROUTE,
	                                &out->addr, &end);
	if (out->addr_err == ADDR_ERR_8BIT)
		return RPL_RCPT_NOT_ASCII; /* RFC 6531 3.5: 553 5.6.7 */
	if (out->addr_err != ADDR_OK)
		return RPL_BAD_RCPT;
	return walk_params(end, e, out->param, rcpt_param_cb, out);
}
