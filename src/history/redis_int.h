/*
 * redis_int.h: what the two Redis clients of src/history/ share: the
 * keys, the Lua scripts and the decoding of a hash into a record.
 *
 *   redis_proto.c  keys, scripts (and their SHA-1 for EVALSHA), replies
 *   redis.c        the blocking client (scanner, tempomxctl)
 *   redis_async.c  the event-loop client (smtpd)
 *
 * Data model. One hash per record, "tmx:r:<cidr>" ("tmx:r:192.0.2.7/32",
 * "tmx:r:192.0.2.0/24"), its fields named after struct history_record's
 * members, plus one set per network, "tmx:m:<cidr>", of the keys of its
 * hosts (so feedback and forgetting can find them). Every write runs in a
 * Lua script, so the host's record, its network's record and the
 * network's count of good and junk hosts (which depends on the host's
 * vote before and after) change together and atomically: two MXes
 * writing at the same moment lose nothing. Each written key gets EXPIRE
 * history_max_age, refreshed on every update.
 */
#ifndef TEMPOMX_HISTORY_REDIS_INT_H
#define TEMPOMX_HISTORY_REDIS_INT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "history_store.h"

#define HR_KEY_MAX 96
#define HR_PREFIX_RECORD "tmx:r:"
#define HR_PREFIX_MEMBERS "tmx:m:"

enum hr_script {
	HR_LOOKUP = 0,  /* KEYS host [network]: both hashes */
	HR_RECORD,      /* KEYS host [network members]; ARGV flags score now max_age */
	HR_FEEDBACK,    /* KEYS key [network members]; ARGV fb now max_age create */
	HR_NETFEEDBACK, /* KEYS network members; ARGV fb now max_age */
	HR_FORGET,      /* KEYS network members: the network and its hosts */
	HR_NSCRIPTS
};

/* The keys of one client: its host and, unless aggregation is off, its
 * network and the network's host set. */
struct hr_keys {
	struct cidr host, agg;
	int has_agg;
	char khost[HR_KEY_MAX], kagg[HR_KEY_MAX], kmembers[HR_KEY_MAX];
};

void hr_record_key(char *out, size_t size, const struct cidr *net);
void hr_members_key(char *out, size_t size, const struct cidr *net);
int hr_keys_of(const struct sockaddr *addr, int v4_prefix, int v6_prefix, struct hr_keys *k);
/* A key "tmx:r:<cidr>" back to its network; -1 for anything else. */
int hr_parse_key(const char *key, size_t len, struct cidr *net);

const char *hr_script_sha(enum hr_script s);
const char *hr_script_text(enum hr_script s);

/* Arguments of an EVALSHA; the strings live in the struct. */
#define HR_ARGV_MAX 12
struct hr_cmd {
	int argc;
	const char *argv[HR_ARGV_MAX];
	size_t argvlen[HR_ARGV_MAX];
	char num[6][32];
};
void hr_cmd_lookup(struct hr_cmd *c, const struct hr_keys *k);
void hr_cmd_record(struct hr_cmd *c, const struct hr_keys *k, const struct history_event *ev,
                   int64_t max_age);
void hr_cmd_feedback(struct hr_cmd *c, const char *key, const struct hr_keys *host,
                     enum history_feedback fb, int64_t now, int64_t max_age, int create);
void hr_cmd_netfeedback(struct hr_cmd *c, const char *key, const char *members,
                        enum history_feedback fb, int64_t now, int64_t max_age);

/* A HGETALL reply into an entry (present = 0 when empty, unreadable or
 * expired). */
void hr_entry_from_reply(const redisReply *r, int64_t now, int64_t max_age,
                         struct history_entry *e);
/* The reply to HR_LOOKUP; 0, or -1 for an error reply (logged by the
 * caller from *why). */
int hr_lookup_reply(const redisReply *r, const struct hr_keys *k, int64_t now, int64_t max_age,
                    struct history_entry *host, struct history_entry *agg, const char **why);

#endif
