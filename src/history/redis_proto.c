/*
 * redis_proto.c: the Redis form of the sender history, for both Redis
 * clients (redis.c, redis_async.c): keys, the Lua scripts that change
 * records, the decoding of a hash into struct history_record, and the
 * history_store parser and password file.
 *
 * The scripts apply the rules of record.c (history_rec_apply_event,
 * _apply_feedback, _vote, _count_vote) to hashes; a change to those rules
 * must be made in both places (t/integration/test_redis.c compares the
 * two stores after the same sessions). Counters saturate at UINT32_MAX
 * as in LMDB. A record older than max_age (by last_seen) starts afresh,
 * as in LMDB; EXPIRE removes it anyway soon after.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "history_int.h"
#include "redis_int.h"
#include "util.h"

/* ---- scripts ------------------------------------------------------------- */

#define LUA_COMMON                                                                                 \
	"local F = {'sessions','first_seen','last_seen','admin','admin_at','accepted_good',"       \
	"'accepted_lo','clean','junk','virus','tempfails','rejects','admin_good','admin_junk',"    \
	"'score_n','score','good_hosts','junk_hosts','last_junk'}\n"                               \
	"local MAX = 4294967295\n"                                                                 \
	"local now = tonumber(ARGV[2])\n"                                                          \
	"local maxage = tonumber(ARGV[3])\n"                                                       \
	"local function g(r, f) return r[f] or 0 end\n"                                            \
	"local function inc(r, f) local v = g(r, f) if v < MAX then r[f] = v + 1 end end\n"        \
	"local function load(k)\n"                                                                 \
	"  local raw = redis.call('HGETALL', k)\n"                                                 \
	"  local r = {}\n"                                                                         \
	"  for i = 1, #raw, 2 do r[raw[i]] = tonumber(raw[i + 1]) end\n"                           \
	"  local have = r.last_seen ~= nil\n"                                                      \
	"  local live = have and not (maxage > 0 and now - r.last_seen > maxage)\n"                \
	"  return r, have, live\n"                                                                 \
	"end\n"                                                                                    \
	"local function fresh() return {first_seen = now, last_seen = now} end\n"                  \
	"local function touch(r)\n"                                                                \
	"  if now > g(r, 'last_seen') then r.last_seen = now end\n"                                \
	"  if now < g(r, 'first_seen') then r.first_seen = now end\n"                              \
	"end\n"                                                                                    \
	"local function vote(r)\n"                                                                 \
	"  local a = g(r, 'admin')\n"                                                              \
	"  if a == 2 then return 2 elseif a == 1 then return 1 end\n"                              \
	"  local clean = g(r, 'clean') - g(r, 'virus')\n"                                          \
	"  if clean < 0 then clean = 0 end\n"                                                      \
	"  local good = clean + g(r, 'admin_good')\n"                                              \
	"  local junk = g(r, 'junk') + g(r, 'virus') + g(r, 'admin_junk')\n"                       \
	"  if good + junk == 0 then return 0 end\n"                                                \
	"  if junk * 2 > good + junk then return 2 end\n"                                          \
	"  return 1\n"                                                                             \
	"end\n"                                                                                    \
	"local function move(r, was, v)\n"                                                         \
	"  if was == v then return end\n"                                                          \
	"  if was == 1 and g(r, 'good_hosts') > 0 then r.good_hosts = r.good_hosts - 1 end\n"      \
	"  if was == 2 and g(r, 'junk_hosts') > 0 then r.junk_hosts = r.junk_hosts - 1 end\n"      \
	"  if v == 1 then inc(r, 'good_hosts') elseif v == 2 then inc(r, 'junk_hosts') end\n"      \
	"end\n"                                                                                    \
	"local function store(k, r, wipe)\n"                                                       \
	"  local a = {}\n"                                                                         \
	"  for _, f in ipairs(F) do\n"                                                             \
	"    local v = r[f]\n"                                                                     \
	"    if v ~= nil then\n"                                                                   \
	"      a[#a + 1] = f\n"                                                                    \
	"      if f == 'score' then a[#a + 1] = string.format('%.9g', v)\n"                        \
	"      else a[#a + 1] = string.format('%d', v) end\n"                                      \
	"    end\n"                                                                                \
	"  end\n"                                                                                  \
	"  if wipe then redis.call('DEL', k) end\n"                                                \
	"  redis.call('HSET', k, unpack(a))\n"                                                     \
	"  if maxage > 0 then redis.call('EXPIRE', k, maxage) end\n"                               \
	"end\n"                                                                                    \
	"local function member(set, k)\n"                                                          \
	"  redis.call('SADD', set, k)\n"                                                           \
	"  if maxage > 0 then redis.call('EXPIRE', set, maxage) end\n"                             \
	"end\n"                                                                                    \
	"local function fbapply(r, fb, verdict)\n"                                                 \
	"  touch(r)\n"                                                                             \
	"  if fb == 1 then inc(r, 'admin_good') else inc(r, 'admin_junk') end\n"                   \
	"  if fb == 2 and now > g(r, 'last_junk') then r.last_junk = now end\n"                    \
	"  if verdict then r.admin = fb r.admin_at = now end\n"                                    \
	"end\n"

static const char lua_lookup[] = "local a = redis.call('HGETALL', KEYS[1])\n"
                                 "local b = {}\n"
                                 "if #KEYS > 1 then b = redis.call('HGETALL', KEYS[2]) end\n"
                                 "return {a, b}\n";

/* ARGV: flags, now, max_age, score ("" = none). Returns the host's vote. */
static const char lua_record[] =
    LUA_COMMON "local flags = tonumber(ARGV[1])\n"
               "local score = tonumber(ARGV[4])\n"
               "local band = bit.band\n"
               "local function apply(r)\n"
               "  touch(r)\n"
               "  if band(flags, 1) ~= 0 then inc(r, 'sessions') end\n"
               "  if band(flags, 2) ~= 0 then inc(r, 'accepted_good') end\n"
               "  if band(flags, 4) ~= 0 then inc(r, 'accepted_lo') end\n"
               "  if band(flags, 6) ~= 0 and band(flags, 96) == 0 then inc(r, 'clean') end\n"
               "  if band(flags, 8) ~= 0 then inc(r, 'tempfails') end\n"
               "  if band(flags, 16) ~= 0 then inc(r, 'rejects') end\n"
               "  if band(flags, 32) ~= 0 then inc(r, 'junk') end\n"
               "  if band(flags, 64) ~= 0 then inc(r, 'virus') end\n"
               "  if band(flags, 96) ~= 0 and now > g(r, 'last_junk') then r.last_junk = now end\n"
               "  if band(flags, 128) ~= 0 and score ~= nil and score == score then\n"
               "    if g(r, 'score_n') == 0 or r.score == nil then r.score = score\n"
               "    else r.score = r.score + 0.2 * (score - r.score) end\n"
               "    inc(r, 'score_n')\n"
               "  end\n"
               "end\n"
               "local h, have, live = load(KEYS[1])\n"
               "local was = 0\n"
               "if have then was = vote(h) end\n"
               "if not live then h = fresh() end\n"
               "apply(h)\n"
               "local v = vote(h)\n"
               "store(KEYS[1], h, not live)\n"
               "if #KEYS >= 3 then\n"
               "  local n, nh, nl = load(KEYS[2])\n"
               "  if not nl then n = fresh() end\n"
               "  apply(n)\n"
               "  move(n, was, v)\n"
               "  store(KEYS[2], n, not nl)\n"
               "  member(KEYS[3], KEYS[1])\n"
               "end\n"
               "return v\n";

/* ARGV: fb, now, max_age, create. KEYS[1] gets the verdict (a record is
 * created unless create is 0); KEYS[2], the host's network, counts the
 * feedback and the host's changed vote. Returns the records written. */
static const char lua_feedback[] = LUA_COMMON "local fb = tonumber(ARGV[1])\n"
                                              "local h, have, live = load(KEYS[1])\n"
                                              "if not live and ARGV[4] ~= '1' then return 0 end\n"
                                              "local was = 0\n"
                                              "if live then was = vote(h) else h = fresh() end\n"
                                              "fbapply(h, fb, true)\n"
                                              "store(KEYS[1], h, not live)\n"
                                              "local written = 1\n"
                                              "if #KEYS >= 3 then\n"
                                              "  local v = vote(h)\n"
                                              "  local n, nh, nl = load(KEYS[2])\n"
                                              "  if not nl then n = fresh() end\n"
                                              "  fbapply(n, fb, false)\n"
                                              "  move(n, was, v)\n"
                                              "  store(KEYS[2], n, not nl)\n"
                                              "  member(KEYS[3], KEYS[1])\n"
                                              "  written = written + 1\n"
                                              "end\n"
                                              "return written\n";

/* ARGV: fb, now, max_age. The network (created if needed) and every live
 * host of it get the verdict. Returns the records written. */
static const char lua_netfeedback[] =
    LUA_COMMON "local fb = tonumber(ARGV[1])\n"
               "local n, nh, nl = load(KEYS[1])\n"
               "if not nl then n = fresh() end\n"
               "fbapply(n, fb, true)\n"
               "store(KEYS[1], n, not nl)\n"
               "local written = 1\n"
               "for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
               "  local h, have, live = load(k)\n"
               "  if live then\n"
               "    fbapply(h, fb, true)\n"
               "    store(k, h, false)\n"
               "    written = written + 1\n"
               "  else\n"
               "    redis.call('SREM', KEYS[2], k)\n"
               "  end\n"
               "end\n"
               "return written\n";

/* The network, its hosts and its host set. Returns the records removed. */
static const char lua_forget[] = "local removed = 0\n"
                                 "for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
                                 "  removed = removed + redis.call('DEL', k)\n"
                                 "end\n"
                                 "removed = removed + redis.call('DEL', KEYS[1])\n"
                                 "redis.call('DEL', KEYS[2])\n"
                                 "return removed\n";

static const char *const scripts[HR_NSCRIPTS] = {lua_lookup, lua_record, lua_feedback,
                                                 lua_netfeedback, lua_forget};
static char shas[HR_NSCRIPTS][41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
	for (int i = 0; i < HR_NSCRIPTS; i++) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		if (EVP_Digest(scripts[i], strlen(scripts[i]), md, &mdlen, EVP_sha1(), NULL) != 1 ||
		    mdlen != 20)
			abort();
		for (unsigned j = 0; j < 20; j++)
			snprintf(shas[i] + 2 * j, 3, "%02x", md[j]);
	}
}

const char *hr_script_sha(enum hr_script s)
{
	pthread_once(&sha_once, sha_init);
	return shas[s];
}

const char *hr_script_text(enum hr_script s)
{
	return scripts[s];
}

/* ---- keys ---------------------------------------------------------------- */

void hr_record_key(char *out, size_t size, const struct cidr *net)
{
	char text[HISTORY_NET_TEXT];
	history_net_format(net, text, sizeof(text));
	snprintf(out, size, HR_PREFIX_RECORD "%s", text);
}

void hr_members_key(char *out, size_t size, const struct cidr *net)
{
	char text[HISTORY_NET_TEXT];
	history_net_format(net, text, sizeof(text));
	snprintf(out, size, HR_PREFIX_MEMBERS "%s", text);
}

int hr_keys_of(const struct sockaddr *addr, int v4_prefix, int v6_prefix, struct hr_keys *k)
{
	memset(k, 0, sizeof(*k));
	if (history_sockaddr_net(addr, &k->host) != 0)
		return -1;
	k->agg = k->host;
	k->agg.bits = k->host.family == AF_INET ? v4_prefix : v6_prefix;
	history_mask_addr(k->agg.addr, k->agg.family, k->agg.bits);
	k->has_agg = k->agg.bits < k->host.bits;
	hr_record_key(k->khost, sizeof(k->khost), &k->host);
	if (k->has_agg) {
		hr_record_key(k->kagg, sizeof(k->kagg), &k->agg);
		hr_members_key(k->kmembers, sizeof(k->kmembers), &k->agg);
	}
	return 0;
}

int hr_parse_key(const char *key, size_t len, struct cidr *net)
{
	char text[HR_KEY_MAX];
	size_t plen = strlen(HR_PREFIX_RECORD);
	if (len <= plen || len - plen >= sizeof(text) || memcmp(key, HR_PREFIX_RECORD, plen) != 0)
		return -1;
	memcpy(text, key + plen, len - plen);
	text[len - plen] = '\0';
	char *slash = strchr(text, '/');
	int64_t bits;
	if (slash == NULL)
		return -1;
	*slash = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, text, net->addr) == 1)
		net->family = AF_INET;
	else if (inet_pton(AF_INET6, text, net->addr) == 1)
		net->family = AF_INET6;
	else
		return -1;
	if (parse_int(slash + 1, 0, history_family_bits(net->family), &bits) != 0)
		return -1;
	net->bits = (int)bits;
	uint8_t masked[16];
	memcpy(masked, net->addr, sizeof(masked));
	history_mask_addr(masked, net->family, net->bits);
	return memcmp(masked, net->addr, sizeof(masked)) == 0 ? 0 : -1;
}

/* ---- commands ------------------------------------------------------------ */

static void arg(struct hr_cmd *c, const char *s)
{
	if (c->argc < HR_ARGV_MAX) {
		c->argv[c->argc] = s;
		c->argvlen[c->argc] = strlen(s);
		c->argc++;
	}
}

static void begin(struct hr_cmd *c, enum hr_script s, int nkeys)
{
	memset(c, 0, sizeof(*c));
	arg(c, "EVALSHA");
	arg(c, hr_script_sha(s));
	snprintf(c->num[0], sizeof(c->num[0]), "%d", nkeys);
	arg(c, c->num[0]);
}

void hr_cmd_lookup(struct hr_cmd *c, const struct hr_keys *k)
{
	begin(c, HR_LOOKUP, k->has_agg ? 2 : 1);
	arg(c, k->khost);
	if (k->has_agg)
		arg(c, k->kagg);
}

static void host_keys(struct hr_cmd *c, const struct hr_keys *k)
{
	arg(c, k->khost);
	if (k->has_agg) {
		arg(c, k->kagg);
		arg(c, k->kmembers);
	}
}

void hr_cmd_record(struct hr_cmd *c, const struct hr_keys *k, const struct history_event *ev,
                   int64_t max_age)
{
	begin(c, HR_RECORD, k->has_agg ? 3 : 1);
	host_keys(c, k);
	snprintf(c->num[1], sizeof(c->num[1]), "%u", ev->flags);
	snprintf(c->num[2], sizeof(c->num[2]), "%lld", (long long)ev->now);
	snprintf(c->num[3], sizeof(c->num[3]), "%lld", (long long)max_age);
	if ((ev->flags & HISTORY_EV_SCORE) && isfinite(ev->score)) {
		double s = ev->score > 1e30 ? 1e30 : ev->score < -1e30 ? -1e30 : ev->score;
		snprintf(c->num[4], sizeof(c->num[4]), "%.9g", s);
	}
	arg(c, c->num[1]);
	arg(c, c->num[2]);
	arg(c, c->num[3]);
	arg(c, c->num[4]);
}

void hr_cmd_feedback(struct hr_cmd *c, const char *key, const struct hr_keys *host,
                     enum history_feedback fb, int64_t now, int64_t max_age, int create)
{
	begin(c, HR_FEEDBACK, host != NULL && host->has_agg ? 3 : 1);
	if (host != NULL)
		host_keys(c, host);
	else
		arg(c, key);
	snprintf(c->num[1], sizeof(c->num[1]), "%d", (int)fb);
	snprintf(c->num[2], sizeof(c->num[2]), "%lld", (long long)now);
	snprintf(c->num[3], sizeof(c->num[3]), "%lld", (long long)max_age);
	arg(c, c->num[1]);
	arg(c, c->num[2]);
	arg(c, c->num[3]);
	arg(c, create ? "1" : "0");
}

void hr_cmd_netfeedback(struct hr_cmd *c, const char *key, const char *members,
                        enum history_feedback fb, int64_t now, int64_t max_age)
{
	begin(c, HR_NETFEEDBACK, 2);
	arg(c, key);
	arg(c, members);
	snprintf(c->num[1], sizeof(c->num[1]), "%d", (int)fb);
	snprintf(c->num[2], sizeof(c->num[2]), "%lld", (long long)now);
	snprintf(c->num[3], sizeof(c->num[3]), "%lld", (long long)max_age);
	arg(c, c->num[1]);
	arg(c, c->num[2]);
	arg(c, c->num[3]);
}

/* ---- replies ------------------------------------------------------------- */

struct field {
	const char *name;
	size_t off;
	int kind; /* 0 uint32, 1 int64, 2 uint8, 3 float */
};

#define FLD(n, k)                                                                                  \
	{                                                                                          \
#n, offsetof(struct history_record, n), k                                          \
	}
static const struct field fields[] = {
    FLD(sessions, 0),   FLD(first_seen, 1),    FLD(last_seen, 1),   FLD(admin, 2),
    FLD(admin_at, 1),   FLD(accepted_good, 0), FLD(accepted_lo, 0), FLD(clean, 0),
    FLD(junk, 0),       FLD(virus, 0),         FLD(tempfails, 0),   FLD(rejects, 0),
    FLD(admin_good, 0), FLD(admin_junk, 0),    FLD(score_n, 0),     FLD(score, 3),
    FLD(good_hosts, 0), FLD(junk_hosts, 0),    FLD(last_junk, 1),
};

static int set_field(struct history_record *r, const char *name, size_t nlen, const char *val,
                     size_t vlen)
{
	char buf[64];
	if (vlen >= sizeof(buf))
		return -1;
	memcpy(buf, val, vlen);
	buf[vlen] = '\0';
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field *f = &fields[i];
		if (strlen(f->name) != nlen || memcmp(f->name, name, nlen) != 0)
			continue;
		char *end;
		errno = 0;
		uint8_t *p = (uint8_t *)r + f->off;
		if (f->kind == 3) {
			double d = strtod(buf, &end);
			if (*end != '\0' || !isfinite(d))
				return -1;
			float fl = (float)d;
			memcpy(p, &fl, sizeof(fl));
			return 0;
		}
		long long v = strtoll(buf, &end, 10);
		if (*end != '\0' || errno != 0 || v < 0)
			return -1;
		if (f->kind == 1) {
			int64_t x = v;
			memcpy(p, &x, sizeof(x));
		} else if (f->kind == 2) {
			if (v > 2)
				return -1;
			*p = (uint8_t)v;
		} else {
			uint32_t x = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
			memcpy(p, &x, sizeof(x));
		}
		return 0;
	}
	return 0; /* a field of a later version: ignored */
}

void hr_entry_from_reply(const redisReply *r, int64_t now, int64_t max_age, struct history_entry *e)
{
	int has_last = 0;
	e->present = 0;
	memset(&e->rec, 0, sizeof(e->rec));
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->elements % 2 != 0)
		return;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			return;
		if (set_field(&e->rec, k->str, k->len, v->str, v->len) != 0) {
			memset(&e->rec, 0, sizeof(e->rec));
			return; /* unreadable: absent */
		}
		if (k->len == 9 && memcmp(k->str, "last_seen", 9) == 0)
			has_last = 1;
	}
	if (!has_last)
		return;
	e->rec.version = HISTORY_RECORD_VERSION;
	e->present = !history_rec_expired(&e->rec, now, max_age);
}

int hr_lookup_reply(const redisReply *r, const struct hr_keys *k, int64_t now, int64_t max_age,
                    struct history_entry *host, struct history_entry *agg, const char **why)
{
	memset(host, 0, sizeof(*host));
	memset(agg, 0, sizeof(*agg));
	host->net = k->host;
	agg->net = k->has_agg ? k->agg : k->host;
	if (r == NULL) {
		*why = "no reply";
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		*why = r->str;
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		*why = "unexpected reply";
		return -1;
	}
	hr_entry_from_reply(r->element[0], now, max_age, host);
	if (k->has_agg)
		hr_entry_from_reply(r->element[1], now, max_age, agg);
	return 0;
}

/* ---- settings ------------------------------------------------------------ */

static int seterr(char *err, size_t errlen, const char *msg, const char *spec)
{
	snprintf(err, errlen, "history_store %s: %s", spec, msg);
	return -1;
}

int history_remote_parse(const char *spec, struct history_remote *r, int *is_remote, char *err,
                         size_t errlen)
{
	memset(r, 0, sizeof(*r));
	*is_remote = 0;
	if (spec == NULL || spec[0] == '\0' || strcmp(spec, "lmdb") == 0)
		return 0;
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *p = spec + 5;
		const char *q = strchr(p, '?');
		size_t plen = q ? (size_t)(q - p) : strlen(p);
		if (plen == 0 || p[0] != '/' || plen >= sizeof(r->path))
			return seterr(err, errlen, "the socket must be an absolute path", spec);
		memcpy(r->path, p, plen);
		r->unix_socket = 1;
		if (q != NULL) {
			int64_t db;
			if (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, 0, 1000000, &db) != 0)
				return seterr(err, errlen, "expected ?db=N after the path", spec);
			r->db = (int)db;
		}
		snprintf(r->text, sizeof(r->text), "unix:%s%s%.*s", r->path, q ? "?" : "",
		         q ? 200 : 0, q ? q + 1 : "");
		*is_remote = 1;
		return 0;
	}
	if (strncmp(spec, "redis://", 8) != 0)
		return seterr(err, errlen, "expected lmdb, redis://HOST:PORT[/DB] or unix:/PATH",
		              spec);
	const char *p = spec + 8, *hend, *port;
	if (strchr(p, '@') != NULL)
		return seterr(err, errlen,
		              "no user or password here (the password goes in "
		              "history_redis_password_file)",
		              spec);
	if (*p == '[') {
		hend = strchr(p, ']');
		if (hend == NULL || hend[1] != ':')
			return seterr(err, errlen, "an IPv6 address is written [addr]:port", spec);
		p++;
		port = hend + 2;
	} else {
		hend = strchr(p, ':');
		if (hend == NULL)
			return seterr(err, errlen, "the port is missing (redis://HOST:PORT)", spec);
		port = hend + 1;
	}
	if (hend == p || (size_t)(hend - p) >= sizeof(r->host))
		return seterr(err, errlen, "bad host", spec);
	memcpy(r->host, p, (size_t)(hend - p));
	char pbuf[16];
	const char *slash = strchr(port, '/');
	size_t plen = slash ? (size_t)(slash - port) : strlen(port);
	int64_t v;
	if (plen == 0 || plen >= sizeof(pbuf))
		return seterr(err, errlen, "bad port", spec);
	memcpy(pbuf, port, plen);
	pbuf[plen] = '\0';
	if (parse_int(pbuf, 1, 65535, &v) != 0)
		return seterr(err, errlen, "bad port", spec);
	r->port = (int)v;
	if (slash != NULL) {
		if (parse_int(slash + 1, 0, 1000000, &v) != 0)
			return seterr(err, errlen, "bad database number after the port", spec);
		r->db = (int)v;
	}
	snprintf(r->text, sizeof(r->text), "%s", spec);
	*is_remote = 1;
	return 0;
}

int history_remote_password(const char *file, struct history_remote *r, char *err, size_t errlen)
{
	struct stat st;
	r->password[0] = '\0';
	if (file == NULL || file[0] == '\0')
		return 0;
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "history_redis_password_file %s: %s", file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "history_redis_password_file %s: not a regular file", file);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO) & ~(mode_t)S_IRGRP) {
		snprintf(err, errlen,
		         "history_redis_password_file %s: mode %03o gives others access (at most "
		         "0640)",
		         file, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	char buf[sizeof(r->password) + 2];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "history_redis_password_file %s: %s", file, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0' || strlen(buf) >= sizeof(r->password)) {
		snprintf(err, errlen, "history_redis_password_file %s: %s", file,
		         buf[0] == '\0' ? "empty" : "password too long");
		return -1;
	}
	snprintf(r->password, sizeof(r->password), "%s", buf);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}
