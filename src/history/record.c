/*
 * record.c: the on-disk format of the sender-history store: binary keys
 * (family byte, prefix-length byte, address bytes with the host bits
 * cleared) and the fixed struct history_record, with the rules for
 * applying an event or an admin verdict to a record and for expiry.
 * Called by store.c and admin.c only; no LMDB transaction here.
 *
 * A key or a record we did not write (wrong size, wrong version, host
 * bits set) is reported as unreadable; callers treat it as absent.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "history_int.h"

_Static_assert(sizeof(struct history_record) == 96, "history_record is part of the file format");
/* Version 1 records are the first 80 bytes of version 2. */
#define HISTORY_V1_SIZE 80
_Static_assert(offsetof(struct history_record, good_hosts) == HISTORY_V1_SIZE - 4,
               "version 2 extends version 1");

/* ---- keys ---------------------------------------------------------------- */

int history_family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

int history_agg_bits(const struct history *h, int family)
{
	return family == AF_INET ? h->v4_prefix : h->v6_prefix;
}

void history_mask_addr(uint8_t *a, int family, int bits)
{
	int len = history_family_bits(family) / 8;
	for (int i = 0; i < len; i++) {
		int keep = bits - i * 8;
		if (keep >= 8)
			continue;
		a[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

/* The address of a client; IPv4-mapped IPv6 is IPv4. */
int history_sockaddr_net(const struct sockaddr *sa, struct cidr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		out->family = AF_INET;
		memcpy(out->addr, &s4->sin_addr, 4);
		out->bits = 32;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			out->family = AF_INET;
			memcpy(out->addr, s6->sin6_addr.s6_addr + 12, 4);
			out->bits = 32;
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, s6->sin6_addr.s6_addr, 16);
			out->bits = 128;
		}
		return 0;
	}
	return -1;
}

/* Validate a network given by a caller, fold IPv4-mapped IPv6 networks
 * into IPv4, clear the host bits. */
int history_net_normalize(const struct cidr *in, struct cidr *out)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (in == NULL || (in->family != AF_INET && in->family != AF_INET6))
		return -1;
	if (in->bits < 0 || in->bits > history_family_bits(in->family))
		return -1;
	*out = *in;
	if (in->family == AF_INET6 && in->bits >= 96 && memcmp(in->addr, mapped, 12) == 0) {
		out->family = AF_INET;
		memmove(out->addr, in->addr + 12, 4);
		out->bits = in->bits - 96;
	}
	memset(out->addr + history_family_bits(out->family) / 8, 0,
	       16 - history_family_bits(out->family) / 8);
	history_mask_addr(out->addr, out->family, out->bits);
	return 0;
}

void history_key_make(struct history_rawkey *k, int family, const uint8_t *addr, int bits)
{
	int alen = history_family_bits(family) / 8;
	k->b[0] = family == AF_INET ? 4 : 6;
	k->b[1] = (uint8_t)bits;
	memcpy(k->b + 2, addr, (size_t)alen);
	history_mask_addr(k->b + 2, family, bits);
	k->len = 2 + (size_t)alen;
}

/* A stored key back to a network; -1 for anything we never write. */
int history_key_parse(const MDB_val *k, struct cidr *net)
{
	const uint8_t *b = k->mv_data;
	memset(net, 0, sizeof(*net));
	if (k->mv_size == HISTORY_KEY_LEN4 && b[0] == 4 && b[1] <= 32)
		net->family = AF_INET;
	else if (k->mv_size == HISTORY_KEY_LEN6 && b[0] == 6 && b[1] <= 128)
		net->family = AF_INET6;
	else
		return -1;
	net->bits = b[1];
	memcpy(net->addr, b + 2, k->mv_size - 2);
	uint8_t masked[16];
	memcpy(masked, net->addr, sizeof(masked));
	history_mask_addr(masked, net->family, net->bits);
	return memcmp(masked, net->addr, 16) == 0 ? 0 : -1;
}

int history_prefix_match(const uint8_t *a, const uint8_t *net, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(a, net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t m = (uint8_t)(0xff << (8 - rest));
	return (a[full] & m) == (net[full] & m);
}

int history_net_within(const struct cidr *n, const struct cidr *within)
{
	return n->family == within->family && n->bits >= within->bits &&
	       history_prefix_match(n->addr, within->addr, within->bits);
}

/* Add one at the last bit of a /bits prefix (the next network). */
void history_addr_next(uint8_t *a, int bits)
{
	if (bits <= 0)
		return;
	int byte = (bits - 1) / 8;
	unsigned carry = 1u << (7 - (bits - 1) % 8);
	for (int i = byte; i >= 0 && carry; i--) {
		unsigned v = a[i] + carry;
		a[i] = (uint8_t)v;
		carry = v >> 8;
	}
}

void history_net_format(const struct cidr *net, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	if (inet_ntop(net->family, net->addr, host, sizeof(host)) == NULL)
		snprintf(host, sizeof(host), "?");
	snprintf(out, size, "%s/%d", host, net->bits);
}

/* ---- records ------------------------------------------------------------- */

int history_rec_decode(const MDB_val *v, struct history_record *r)
{
	if (v->mv_size == HISTORY_V1_SIZE) {
		/* Version 1: no host counts; its junk, if any, dates from
		 * when it was last seen. */
		memset(r, 0, sizeof(*r));
		memcpy(r, v->mv_data, HISTORY_V1_SIZE);
		if (r->version != 1)
			return -1;
		r->version = HISTORY_RECORD_VERSION;
		r->good_hosts = 0;
		if (r->junk > 0 || r->virus > 0 || r->admin_junk > 0)
			r->last_junk = r->last_seen;
		return 0;
	}
	if (v->mv_size != sizeof(*r))
		return -1;
	/* LMDB values are only 2-byte aligned in the map: copy, never cast. */
	memcpy(r, v->mv_data, sizeof(*r));
	return r->version == HISTORY_RECORD_VERSION ? 0 : -1;
}

enum history_vote history_rec_vote(const struct history_record *r)
{
	if (r->admin == HISTORY_FEEDBACK_JUNK)
		return HISTORY_VOTE_JUNK;
	if (r->admin == HISTORY_FEEDBACK_GOOD)
		return HISTORY_VOTE_GOOD;
	uint64_t clean = r->clean > r->virus ? (uint64_t)r->clean - r->virus : 0;
	uint64_t good = clean + r->admin_good;
	uint64_t junk = (uint64_t)r->junk + r->virus + r->admin_junk;
	if (good + junk == 0)
		return HISTORY_VOTE_NONE;
	return junk * 2 > good + junk ? HISTORY_VOTE_JUNK : HISTORY_VOTE_GOOD;
}

void history_rec_count_vote(struct history_record *agg, enum history_vote was,
                            enum history_vote now)
{
	if (was == now)
		return;
	uint32_t *from = was == HISTORY_VOTE_GOOD   ? &agg->good_hosts
	                 : was == HISTORY_VOTE_JUNK ? &agg->junk_hosts
	                                            : NULL;
	uint32_t *to = now == HISTORY_VOTE_GOOD   ? &agg->good_hosts
	               : now == HISTORY_VOTE_JUNK ? &agg->junk_hosts
	                                          : NULL;
	/* A network record younger than its host's may not have counted it. */
	if (from != NULL && *from > 0)
		(*from)--;
	if (to != NULL && *to < UINT32_MAX)
		(*to)++;
}

int history_rec_expired(const struct history_record *r, int64_t now, int64_t max_age)
{
	int64_t age;
	if (max_age <= 0)
		return 0;
	if (__builtin_sub_overflow(now, r->last_seen, &age))
		return r->last_seen < now;
	return age > max_age;
}

void history_rec_init(struct history_record *r, int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->version = HISTORY_RECORD_VERSION;
	r->first_seen = now;
	r->last_seen = now;
}

static void rec_touch(struct history_record *r, int64_t now)
{
	if (now > r->last_seen)
		r->last_seen = now;
	if (now < r->first_seen)
		r->first_seen = now;
}

static void sat_inc(uint32_t *c)
{
	if (*c < UINT32_MAX)
		(*c)++;
}

void history_rec_apply_event(struct history_record *r, const struct history_event *ev)
{
	unsigned f = ev->flags;
	rec_touch(r, ev->now);
	if (f & HISTORY_EV_SESSION)
		sat_inc(&r->sessions);
	if (f & HISTORY_EV_HI)
		sat_inc(&r->accepted_good);
	if (f & HISTORY_EV_LO)
		sat_inc(&r->accepted_lo);
	if ((f & (HISTORY_EV_HI | HISTORY_EV_LO)) && !(f & (HISTORY_EV_JUNK | HISTORY_EV_VIRUS)))
		sat_inc(&r->clean);
	if (f & HISTORY_EV_TEMPFAIL)
		sat_inc(&r->tempfails);
	if (f & HISTORY_EV_REJECT)
		sat_inc(&r->rejects);
	if (f & HISTORY_EV_JUNK)
		sat_inc(&r->junk);
	if (f & HISTORY_EV_VIRUS)
		sat_inc(&r->virus);
	if ((f & (HISTORY_EV_JUNK | HISTORY_EV_VIRUS)) && ev->now > r->last_junk)
		r->last_junk = ev->now;
	if ((f & HISTORY_EV_SCORE) && isfinite(ev->score)) {
		/* Clamp so the float conversion below is defined. */
		double s = ev->score > 1e30 ? 1e30 : ev->score < -1e30 ? -1e30 : ev->score;
		if (r->score_n == 0 || !isfinite(r->score))
			r->score = (float)s;
		else
			r->score = (float)(r->score + HISTORY_SCORE_ALPHA * (s - r->score));
		sat_inc(&r->score_n);
	}
}

void history_rec_apply_feedback(struct history_record *r, enum history_feedback fb, int verdict,
                                int64_t now)
{
	rec_touch(r, now);
	sat_inc(fb == HISTORY_FEEDBACK_GOOD ? &r->admin_good : &r->admin_junk);
	if (fb == HISTORY_FEEDBACK_JUNK && now > r->last_junk)
		r->last_junk = now;
	if (verdict) {
		r->admin = (uint8_t)fb;
		r->admin_at = now;
	}
}
