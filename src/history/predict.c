/*
 * predict.c: the class of a client from its sender history: new, good or
 * predicted junk. Pure computation on the records history_lookup() found;
 * called by the pre-acceptance policy in smtpd and by tempomxctl's history
 * lookup. It owns no state.
 *
 * The paper (Twining et al., USENIX ATC 2004, "Email Prioritization")
 * predicts from the sending server's past mail: no history means new; a
 * junk share above a threshold means predicted junk; otherwise good.
 * Large senders spread retries and outbound mail over many addresses of
 * one network, so a host we have never judged may inherit the judgement
 * of its network (the aggregate record, /24 or /64 by default), but only
 * from evidence of several distinct hosts: one host's sessions, however
 * many, never speak for its neighbours.
 *
 * Observations of one record: good = clean - virus + admin_good (a virus
 * hit is reported by the scanner for a message smtpd had already counted
 * as clean, so it moves that message from good to junk), junk = junk +
 * virus + admin_junk. Tempfails, rejects and sessions are not
 * observations: they are our own decisions, and counting them would let
 * the policy confirm itself. A network also counts its good hosts and its
 * junk hosts (history_rec_vote()).
 *
 * Rules, first match wins:
 *   1. no usable record (absent or older than max_age)        -> new
 *   2. the host record carries an admin verdict                -> that verdict
 *   3. the host has at least min_history observations          -> by share
 *   4. the network record carries an admin verdict             -> that verdict
 *   5. the host has fewer observations, but some: its own, unless the
 *      network is overwhelmingly junk (at least net_overwhelming junk
 *      hosts, 90% of its hosts or more) -> junk; else share above the
 *      threshold -> new (too little to predict junk, no reason to trust
 *      it either), otherwise -> good
 *   6. the network's hosts: at least net_junk_hosts junk hosts and a junk
 *      host share above the threshold -> junk; at least net_good_hosts
 *      good hosts and a share at or below it -> good; otherwise -> new.
 * "By share": junk share strictly above junk_threshold -> junk, else good.
 * A host whose only sessions so far were tempfailed has no observations
 * and stays "new" (rule 6), so the policy can time the new-sender delay
 * from first_seen.
 *
 * junk_since, for the policy's junk_delay: the latest junk observation or
 * admin junk verdict of the record the prediction rests on.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "history.h"

struct obs {
	uint64_t good;
	uint64_t junk;
	uint64_t total;
	double share;
};

static void obs_of(const struct history_record *r, struct obs *o)
{
	uint64_t clean = r->clean > r->virus ? (uint64_t)r->clean - r->virus : 0;
	o->good = clean + r->admin_good;
	o->junk = (uint64_t)r->junk + r->virus + r->admin_junk;
	o->total = o->good + o->junk;
	o->share = o->total > 0 ? (double)o->junk / (double)o->total : 0.0;
}

static int usable(const struct history_entry *e, int64_t now, int64_t max_age)
{
	int64_t age;
	if (e == NULL || !e->present || e->rec.version != HISTORY_RECORD_VERSION)
		return 0;
	if (max_age <= 0)
		return 1;
	if (__builtin_sub_overflow(now, e->rec.last_seen, &age))
		return e->rec.last_seen >= now;
	return age <= max_age;
}

const char *history_class_name(enum history_class c)
{
	switch (c) {
	case HISTORY_NEW:
		return "new";
	case HISTORY_GOOD:
		return "good";
	case HISTORY_JUNK:
		return "junk";
	}
	return "unknown";
}

/* Fill the fields describing the record the decision rests on. */
static enum history_class decide(struct history_prediction *out, enum history_class cls, int is_agg,
                                 const struct obs *o)
{
	out->cls = cls;
	out->from_aggregate = is_agg;
	out->observations = o->total;
	out->junk_share = o->share;
	return cls;
}

static const char *label(int is_agg)
{
	return is_agg ? "network" : "host";
}

static enum history_class by_admin(struct history_prediction *out, const struct history_entry *e,
                                   int is_agg)
{
	struct obs o;
	char net[HISTORY_NET_TEXT];
	obs_of(&e->rec, &o);
	history_net_format(&e->net, net, sizeof(net));
	enum history_class cls =
	    e->rec.admin == HISTORY_FEEDBACK_JUNK ? HISTORY_JUNK : HISTORY_GOOD;
	snprintf(out->reason, sizeof(out->reason), "%s %s: admin feedback %s", label(is_agg), net,
	         cls == HISTORY_JUNK ? "junk" : "good");
	return decide(out, cls, is_agg, &o);
}

static enum history_class by_share(struct history_prediction *out, const struct history_entry *e,
                                   int is_agg, double threshold, uint32_t min_history)
{
	struct obs o;
	char net[HISTORY_NET_TEXT];
	enum history_class cls;
	obs_of(&e->rec, &o);
	history_net_format(&e->net, net, sizeof(net));
	if (o.total == 0) {
		cls = HISTORY_NEW;
		snprintf(out->reason, sizeof(out->reason), "%s %s: %u sessions, no mail judged yet",
		         label(is_agg), net, e->rec.sessions);
	} else if (o.total < min_history) {
		cls = o.share > threshold ? HISTORY_NEW : HISTORY_GOOD;
		snprintf(out->reason, sizeof(out->reason),
		         "%s %s: %llu of %llu observations junk, fewer than %u", label(is_agg), net,
		         (unsigned long long)o.junk, (unsigned long long)o.total, min_history);
	} else {
		cls = o.share > threshold ? HISTORY_JUNK : HISTORY_GOOD;
		snprintf(out->reason, sizeof(out->reason),
		         "%s %s: %llu of %llu observations junk (%.0f%%)", label(is_agg), net,
		         (unsigned long long)o.junk, (unsigned long long)o.total, o.share * 100.0);
	}
	return decide(out, cls, is_agg, &o);
}

static int64_t junk_since(const struct history_record *r)
{
	int64_t t = r->last_junk;
	if (r->admin == HISTORY_FEEDBACK_JUNK && r->admin_at > t)
		t = r->admin_at;
	return t > 0 ? t : r->last_seen;
}

/* Rule 6: the network's distinct hosts. */
static enum history_class by_hosts(struct history_prediction *out, const struct history_entry *e,
                                   double threshold, uint32_t need_junk, uint32_t need_good)
{
	struct obs o;
	char net[HISTORY_NET_TEXT];
	obs_of(&e->rec, &o);
	history_net_format(&e->net, net, sizeof(net));
	uint32_t jh = e->rec.junk_hosts, gh = e->rec.good_hosts;
	double share = jh + gh > 0 ? (double)jh / ((double)jh + (double)gh) : 0.0;
	enum history_class cls = HISTORY_NEW;
	if (jh >= need_junk && share > threshold)
		cls = HISTORY_JUNK;
	else if (gh >= need_good && share <= threshold)
		cls = HISTORY_GOOD;
	snprintf(out->reason, sizeof(out->reason), "network %s: %u junk and %u good hosts%s", net,
	         jh, gh,
	         cls == HISTORY_NEW ? (jh + gh == 0 ? ", none judged yet" : ", too few to predict")
	                            : "");
	decide(out, cls, 1, &o);
	out->junk_share = share;
	return cls;
}

static int overwhelming(const struct history_entry *agg, uint32_t need)
{
	uint64_t jh = agg->rec.junk_hosts, gh = agg->rec.good_hosts;
	return jh >= need && jh * 10 >= (jh + gh) * 9;
}

enum history_class history_predict(const struct history_entry *host,
                                   const struct history_entry *agg, const struct history_params *p,
                                   int64_t now, struct history_prediction *out)
{
	struct history_prediction local;
	struct obs ho;
	double threshold = p != NULL ? p->junk_threshold : HISTORY_DEFAULT_JUNK_THRESHOLD;
	uint32_t min_history = p != NULL ? p->min_history : HISTORY_DEFAULT_MIN_HISTORY;
	int64_t max_age = p != NULL ? p->max_age : 0;
	uint32_t need_junk =
	    p != NULL && p->net_junk_hosts ? p->net_junk_hosts : HISTORY_DEFAULT_NET_JUNK_HOSTS;
	uint32_t need_good =
	    p != NULL && p->net_good_hosts ? p->net_good_hosts : HISTORY_DEFAULT_NET_GOOD_HOSTS;
	uint32_t need_over = p != NULL && p->net_overwhelming ? p->net_overwhelming
	                                                      : HISTORY_DEFAULT_NET_OVERWHELMING;

	if (out == NULL)
		out = &local;
	memset(out, 0, sizeof(*out));
	if (isnan(threshold))
		threshold = HISTORY_DEFAULT_JUNK_THRESHOLD;
	threshold = threshold < 0.0 ? 0.0 : threshold > 1.0 ? 1.0 : threshold;
	if (min_history == 0)
		min_history = 1;

	int h_ok = usable(host, now, max_age);
	int a_ok = usable(agg, now, max_age);
	if (!h_ok && !a_ok) {
		snprintf(out->reason, sizeof(out->reason), "no history");
		out->cls = HISTORY_NEW;
		return HISTORY_NEW;
	}
	if (h_ok)
		out->first_seen = host->rec.first_seen;
	if (a_ok && (!h_ok || agg->rec.first_seen < out->first_seen))
		out->first_seen = agg->rec.first_seen;
	int64_t first_seen = out->first_seen;
	enum history_class cls;
	const struct history_entry *basis;

	if (h_ok)
		obs_of(&host->rec, &ho);
	if (h_ok && host->rec.admin != HISTORY_FEEDBACK_NONE) {
		cls = by_admin(out, host, 0);
		basis = host;
	} else if (h_ok && ho.total >= min_history) {
		cls = by_share(out, host, 0, threshold, min_history);
		basis = host;
	} else if (a_ok && agg->rec.admin != HISTORY_FEEDBACK_NONE) {
		cls = by_admin(out, agg, 1);
		basis = agg;
	} else if (h_ok && ho.total > 0 && a_ok && overwhelming(agg, need_over)) {
		cls = by_hosts(out, agg, threshold, need_junk, need_good);
		basis = agg;
	} else if (h_ok && ho.total > 0) {
		cls = by_share(out, host, 0, threshold, min_history);
		basis = host;
	} else if (a_ok) {
		cls = by_hosts(out, agg, threshold, need_junk, need_good);
		basis = agg;
	} else {
		cls = by_share(out, host, 0, threshold, min_history);
		basis = host;
	}
	out->first_seen = first_seen;
	if (cls == HISTORY_JUNK)
		out->junk_since = junk_since(&basis->rec);
	return cls;
}
