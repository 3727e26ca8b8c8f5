/*
 * why.c: tempomxctl why ADDR|ID: in plain words, what tempomx would
 * decide now for mail from a client, and why.
 *
 * It asks the same questions smtpd asks at DATA (src/smtpd/screen.c),
 * with the same code: is the client exempt (mynetworks), is it, or (for
 * a queued message) its sender or every recipient, whitelisted; what
 * does the history predict from the host and network records; then
 * policy_decide() with a good timing verdict (the timing of a future
 * session is unknown) and, for comparison, with a junk one. For a
 * tempfail it says how long the client still has to wait. Listeners with
 * timing=off are not considered: the answer is for the classifying ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "classify.h"
#include "ctl.h"
#include "history.h"
#include "history_store.h"

static void duration(int64_t s, char *buf, size_t size)
{
	if (s >= 3600)
		snprintf(buf, size, "%lldh%02lldm", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, size, "%llds", (long long)s);
}

static const char *decision_words(enum policy_decision d, int timing)
{
	switch (d) {
	case POLICY_HI:
		return "accepted into hi (scanned and delivered first)";
	case POLICY_LO:
		return "accepted into lo (scanned after the hi mail)";
	case POLICY_TEMPFAIL:
		return "tempfailed with 451 4.7.1 (a real mail server tries again later)";
	case POLICY_REJECT:
		return timing ? "refused with 554 5.7.1"
		              : "refused with 554 5.7.1 as predicted junk";
	}
	return "?";
}

/* The time left before a tempfail of a new or predicted-junk client
 * ends, or -1 when it is not that kind of tempfail. */
/* How long the tempfail lasts: a new client's from its first contact, a
 * predicted-junk one's from its latest junk (policy.c). */
static int64_t tempfail_left(const struct policy_params *pp, enum policy_history h,
                             int64_t first_seen, int64_t junk_since, int64_t now)
{
	int64_t delay, since = first_seen;
	if (h == POLICY_NEW && pp->new_action == NEW_TEMPFAIL)
		delay = pp->new_delay;
	else if (h == POLICY_JUNK && pp->junk_action == JUNK_TEMPFAIL) {
		delay = pp->junk_delay;
		if (junk_since > 0)
			since = junk_since;
	} else
		return -1;
	int64_t age = since > 0 && now >= since ? now - since : 0;
	return delay > age ? delay - age : 0;
}

static int why_client(struct ctl *c, const char *what, const struct envelope *env)
{
	struct sockaddr_storage ss;
	const char *addr = env ? env->client_addr : what;
	if (addr == NULL || addr[0] == '\0') {
		printf("%s: submitted locally, not by an SMTP client: no policy applies\n", what);
		return CTL_OK;
	}
	if (ctl_parse_client(addr, &ss) < 0) {
		ctl_err("why: %s is neither a queue ID nor an IP address", addr);
		return CTL_USAGE;
	}
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	int64_t now = time(NULL);
	struct whitelist wl;
	whitelist_from_config(&c->cf, &wl);

	printf("client %s%s%s%s\n", addr, env ? " (message " : "", env ? env->id : "",
	       env ? ")" : "");
	int exempt = conf_in_mynetworks(&c->cf, sa);
	int wl_client = whitelist_client(&wl, sa);
	int wl_sender = 0, wl_rcpts = 0;
	if (env != NULL) {
		wl_sender = env->sender && env->sender[0] && whitelist_sender(&wl, env->sender);
		wl_rcpts = env->nrcpt > 0;
		for (size_t i = 0; i < env->nrcpt; i++)
			wl_rcpts = wl_rcpts && whitelist_recipient(&wl, env->rcpts[i].addr);
	}
	if (exempt)
		printf("  in mynetworks: no timing tests, no delays, no policy refusals\n");
	if (wl_client)
		printf("  whitelisted client (whitelist_clients or whitelist_file)\n");
	if (wl_sender)
		printf("  whitelisted sender <%s>\n", env->sender);
	if (wl_rcpts)
		printf("  every recipient is whitelisted\n");

	/* The history, as smtpd looks it up before the banner. */
	enum policy_history hist = POLICY_NEW;
	int64_t first_seen = 0, junk_since = 0;
	int rc = ctl_open_history(c);
	if (rc == 0) {
		struct history_entry host, agg;
		struct history_params hp;
		struct history_prediction pred;
		ctl_history_params(c, &hp);
		if (history_store_lookup(c->hist, sa, now, &host, &agg) == 0) {
			hist = (enum policy_history)history_predict(&host, &agg, &hp, now, &pred);
			first_seen = pred.first_seen;
			junk_since = pred.junk_since;
			printf("  history: predicted %s (%s)\n",
			       history_class_name((enum history_class)hist), pred.reason);
			ctl_history_print_record("  host", &host);
			ctl_history_print_record("  network", &agg);
		}
	} else {
		printf("  history: unreadable, so the client counts as new\n");
	}
	if (hist == POLICY_GOOD && !exempt && !wl_client)
		printf("  a good history: no greeting pause, no delayed reply\n");

	struct policy_params pp;
	struct policy_input in = {.history = hist,
	                          .first_seen = first_seen,
	                          .now = now,
	                          .verdict = VERDICT_GOOD,
	                          .whitelisted = wl_client || wl_sender || wl_rcpts,
	                          .exempt = exempt,
	                          .junk_since = junk_since};
	struct policy_result good, junk;
	policy_params_from_config(&c->cf, &pp);
	policy_decide(&pp, &in, &good);
	in.verdict = VERDICT_JUNK;
	policy_decide(&pp, &in, &junk);

	printf("decision now, if the client behaves like a mail server: %s\n",
	       decision_words(good.decision, 0));
	printf("  because: %s", good.why);
	if (good.would != good.decision)
		printf(" (a log-only setting lets it through; it would be %s)",
		       policy_decision_name(good.would));
	printf("\n");
	int64_t left = good.decision == POLICY_TEMPFAIL
	                   ? tempfail_left(&pp, hist, first_seen, junk_since, now)
	                   : -1;
	if (left >= 0) {
		char d[32];
		duration(left, d, sizeof(d));
		if (first_seen == 0)
			printf("  the delay starts at its first attempt and lasts %s\n", d);
		else
			printf("  the delay ends in %s; until then each retry is tempfailed\n", d);
	}
	if (junk.decision != good.decision)
		printf("if its timing were junk (pregreet, pipelining, impatience ...): %s\n",
		       decision_words(junk.decision, 1));
	whitelist_free(&wl);
	return CTL_OK;
}

int cmd_why(struct ctl *c, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return ctl_usage("why");
	if (queueid_valid(argv[1])) {
		struct envelope env;
		if (ctl_open_spool(c) < 0)
			return CTL_FAIL;
		if (ctl_find(c, argv[1], &env, 0, 0) < 0)
			return CTL_FAIL;
		int rc = why_client(c, argv[1], &env);
		envelope_free(&env);
		return rc;
	}
	return why_client(c, argv[1], NULL);
}
