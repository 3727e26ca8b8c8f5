/*
 * policy.c: the pre-acceptance decision for one transaction, from the
 * client's history class, the timing verdict and the whitelists:
 * accept into hi/, accept into lo/, tempfail (451 4.7.1) or reject
 * (554 5.7.1). Called by smtpd at DATA, before the 354, by tempomxctl
 * why (which asks what would be decided now) and by the unit tests. Pure: no I/O, no clock (the
 * caller passes now).
 *
 * Order (DESIGN.md "Sender history and pre-acceptance policy"):
 * whitelisted -> hi; exempt -> hi; timing junk -> timing_junk_action;
 * predicted junk -> junk_action until junk_delay after the latest junk
 * evidence; new -> new_action until new_delay after first seen; then hi
 * when history and verdict are both good, lo otherwise.
 *
 * The two delays differ on purpose. A new sender waits new_delay once,
 * from its first connection (retrying meanwhile changes nothing). A
 * predicted-junk sender is refused for junk_delay after its latest junk
 * (the junk mail the history saw, or the admin's junk verdict): each new
 * junk observation starts the window again, and a sender that has been
 * quiet for junk_delay is accepted into lo, scanned, and judged anew by
 * what it sends. A log-only mode decides, records
 * the decision in "would" and carries on as if the check had passed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "classify.h"
#include "conf.h"
#include "history.h"

const char *policy_decision_name(enum policy_decision d)
{
	switch (d) {
	case POLICY_HI:
		return "hi";
	case POLICY_LO:
		return "lo";
	case POLICY_TEMPFAIL:
		return "tempfail";
	case POLICY_REJECT:
		return "reject";
	}
	return "?";
}

static enum policy_decision accepted(const struct policy_input *in)
{
	return in->history == POLICY_GOOD && in->verdict == VERDICT_GOOD ? POLICY_HI : POLICY_LO;
}

/* A refusal, or only its record when log_only. */
static void refuse(struct policy_result *out, const struct policy_input *in, enum policy_decision d,
                   int log_only)
{
	out->would = d;
	out->decision = log_only ? accepted(in) : d;
}

void policy_decide(const struct policy_params *p, const struct policy_input *in,
                   struct policy_result *out)
{
	memset(out, 0, sizeof(*out));
	if (in->whitelisted || in->exempt) {
		out->decision = out->would = POLICY_HI;
		snprintf(out->why, sizeof(out->why), "%s",
		         in->whitelisted ? "whitelisted" : "exempt");
		return;
	}
	out->decision = out->would = accepted(in);

	if (in->verdict == VERDICT_JUNK) {
		refuse(out, in,
		       p->timing_junk_action == TJ_TEMPFAIL ? POLICY_TEMPFAIL : POLICY_REJECT,
		       p->timing_log_only);
		snprintf(out->why, sizeof(out->why), "timing verdict junk");
		return;
	}
	int64_t age =
	    in->first_seen > 0 && in->now >= in->first_seen ? in->now - in->first_seen : 0;
	if (in->history == POLICY_JUNK) {
		int64_t since = in->junk_since > 0 ? in->junk_since : in->first_seen;
		int64_t quiet = since > 0 && in->now >= since ? in->now - since : 0;
		if (p->junk_action == JUNK_REJECT) {
			refuse(out, in, POLICY_REJECT, p->junk_log_only);
			snprintf(out->why, sizeof(out->why), "predicted junk");
		} else if (p->junk_action == JUNK_TEMPFAIL && quiet < p->junk_delay) {
			refuse(out, in, POLICY_TEMPFAIL, p->junk_log_only);
			snprintf(out->why, sizeof(out->why),
			         "predicted junk, latest junk %" PRId64
			         " s ago (junk_delay %" PRId64 " s)",
			         quiet, p->junk_delay);
		} else {
			out->decision = out->would = POLICY_LO;
			snprintf(out->why, sizeof(out->why), "predicted junk, accepted into lo");
		}
		return;
	}
	if (in->history == POLICY_NEW) {
		/* A client never seen has first_seen 0: its age is 0 too. */
		if (p->new_action == NEW_TEMPFAIL && age < p->new_delay) {
			refuse(out, in, POLICY_TEMPFAIL, p->new_log_only);
			snprintf(out->why, sizeof(out->why),
			         "new client, first seen %" PRId64 " s ago (new_delay %" PRId64
			         " s)",
			         age, p->new_delay);
		} else {
			snprintf(out->why, sizeof(out->why), "new client");
		}
		return;
	}
	snprintf(out->why, sizeof(out->why), "history good, verdict %s",
	         verdict_class_name(in->verdict));
}

void history_params_from_config(const struct config *cf, struct history_params *p)
{
	memset(p, 0, sizeof(*p));
	p->junk_threshold = (double)cf->junk_threshold / 100.0;
	p->min_history = (uint32_t)cf->min_history;
	p->max_age = cf->history_max_age;
	p->net_junk_hosts = (uint32_t)cf->network_junk_hosts;
	p->net_good_hosts = (uint32_t)cf->network_good_hosts;
	p->net_overwhelming = (uint32_t)cf->network_overwhelming_hosts;
}

void policy_params_from_config(const struct config *cf, struct policy_params *p)
{
	memset(p, 0, sizeof(*p));
	/* new_action: accept, tempfail, log */
	p->new_action = cf->new_action == 0 ? NEW_ACCEPT : NEW_TEMPFAIL;
	p->new_log_only = cf->new_action == 2;
	p->new_delay = cf->new_delay;
	/* predicted_junk_action: tempfail, reject, accept, log */
	p->junk_action = cf->predicted_junk_action == 1   ? JUNK_REJECT
	                 : cf->predicted_junk_action == 2 ? JUNK_ACCEPT
	                                                  : JUNK_TEMPFAIL;
	p->junk_log_only = cf->predicted_junk_action == 3;
	p->junk_delay = cf->junk_delay;
	/* timing_junk_action: reject, tempfail, log */
	p->timing_junk_action = cf->timing_junk_action == 1 ? TJ_TEMPFAIL : TJ_REJECT;
	p->timing_log_only = cf->timing_junk_action == 2;
}
