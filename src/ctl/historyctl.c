/*
 * historyctl.c: tempomxctl history show|good|junk|forget|list: the
 * sender history (LMDB in <spool>/db, src/history/) as an admin sees it.
 *
 * show prints the host record and the network (aggregate) record of a
 * client address and what the prediction makes of them; good and junk
 * are the admin feedback the prediction already weighs (history.h:
 * history_feedback); forget removes records; list walks the store and
 * prints one line per record, optionally only those predicting good,
 * junk or new. The store is shared with the running daemon: LMDB lets
 * several processes read and write it at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "classify.h"
#include "ctl.h"
#include "history.h"
#include "history_store.h"
#include "log.h"
#include "util.h"

void ctl_history_params(const struct ctl *c, struct history_params *p)
{
	history_params_from_config(&c->cf, p);
}

/* A client address (IPv4 or IPv6, "[...]" allowed) into ss. */
int ctl_parse_client(const char *s, struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(s);
	memset(ss, 0, sizeof(*ss));
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']' && len - 2 < sizeof(buf)) {
		memcpy(buf, s + 1, len - 2);
		buf[len - 2] = '\0';
		s = buf;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

static void day(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t == 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, size, "never");
}

static const char *admin_name(uint8_t a)
{
	return a == HISTORY_FEEDBACK_GOOD ? "good" : a == HISTORY_FEEDBACK_JUNK ? "junk" : "none";
}

void ctl_history_print_record(const char *label, const struct history_entry *e)
{
	char net[HISTORY_NET_TEXT], first[32], last[32], adm[32];
	history_net_format(&e->net, net, sizeof(net));
	if (!e->present) {
		printf("%s %s: no record\n", label, net);
		return;
	}
	const struct history_record *r = &e->rec;
	day(r->first_seen, first, sizeof(first));
	day(r->last_seen, last, sizeof(last));
	printf("%s %s: first seen %s, last seen %s\n", label, net, first, last);
	printf("  sessions %u, accepted hi %u, lo %u, clean %u, junk %u, virus %u\n", r->sessions,
	       r->accepted_good, r->accepted_lo, r->clean, r->junk, r->virus);
	printf("  tempfailed %u, refused %u, timing score %.2f (%u samples)\n", r->tempfails,
	       r->rejects, (double)r->score, r->score_n);
	day(r->admin_at, adm, sizeof(adm));
	printf("  admin feedback: %s%s%s (good %u, junk %u)\n", admin_name(r->admin),
	       r->admin ? " since " : "", r->admin ? adm : "", r->admin_good, r->admin_junk);
	if (r->last_junk > 0) {
		char lj[32];
		day(r->last_junk, lj, sizeof(lj));
		printf("  latest junk %s\n", lj);
	}
	if (e->net.bits < (e->net.family == AF_INET ? 32 : 128))
		printf("  hosts counted: %u good, %u junk\n", r->good_hosts, r->junk_hosts);
}

int cmd_history_show(struct ctl *c, int argc, char **argv)
{
	struct sockaddr_storage ss;
	if (argc != 2)
		return ctl_usage("history show");
	if (ctl_parse_client(argv[1], &ss) < 0) {
		ctl_err("history show: %s is not an IP address", argv[1]);
		return CTL_USAGE;
	}
	if (ctl_open_history(c) < 0)
		return CTL_FAIL;
	struct history_entry host, agg;
	int64_t now = time(NULL);
	if (history_store_lookup(c->hist, (struct sockaddr *)&ss, now, &host, &agg) < 0) {
		ctl_err("history show: cannot read the history of %s", argv[1]);
		return CTL_FAIL;
	}
	struct history_params hp;
	struct history_prediction pred;
	ctl_history_params(c, &hp);
	enum history_class cls = history_predict(&host, &agg, &hp, now, &pred);
	printf("%s: predicted %s (%s)\n", argv[1], history_class_name(cls), pred.reason);
	ctl_history_print_record("host", &host);
	ctl_history_print_record("network", &agg);
	return CTL_OK;
}

static int feedback(struct ctl *c, int argc, char **argv, enum history_feedback fb, const char *cmd)
{
	struct cidr net;
	char text[HISTORY_NET_TEXT];
	size_t updated = 0;
	if (argc != 2)
		return ctl_usage(cmd);
	if (cidr_parse(argv[1], &net) != 0) {
		ctl_err("%s: %s is not an address or network (192.0.2.0/24)", cmd, argv[1]);
		return CTL_USAGE;
	}
	if (ctl_open_history(c) < 0)
		return CTL_FAIL;
	cidr_format(&net, text, sizeof(text));
	if (history_store_feedback(c->hist, &net, fb, time(NULL), &updated) < 0) {
		ctl_err("%s: cannot record the feedback for %s (see the log)", cmd, text);
		return CTL_FAIL;
	}
	const char *word = fb == HISTORY_FEEDBACK_GOOD ? "good" : "junk";
	log_info("history: %s marked %s by the admin (%zu records)", text, word, updated);
	printf("%s: marked %s (%zu record%s written)\n", text, word, updated,
	       updated == 1 ? "" : "s");
	return CTL_OK;
}

int cmd_history_good(struct ctl *c, int argc, char **argv)
{
	return feedback(c, argc, argv, HISTORY_FEEDBACK_GOOD, "history good");
}

int cmd_history_junk(struct ctl *c, int argc, char **argv)
{
	return feedback(c, argc, argv, HISTORY_FEEDBACK_JUNK, "history junk");
}

int cmd_history_forget(struct ctl *c, int argc, char **argv)
{
	struct cidr net;
	char text[HISTORY_NET_TEXT];
	size_t removed = 0;
	if (argc != 2)
		return ctl_usage("history forget");
	if (cidr_parse(argv[1], &net) != 0) {
		ctl_err("history forget: %s is not an address or network (192.0.2.0/24)", argv[1]);
		return CTL_USAGE;
	}
	if (ctl_open_history(c) < 0)
		return CTL_FAIL;
	cidr_format(&net, text, sizeof(text));
	if (history_store_forget(c->hist, &net, &removed) < 0) {
		ctl_err("history forget: cannot remove the records of %s (see the log)", text);
		return CTL_FAIL;
	}
	log_info("history: %s forgotten by the admin (%zu records)", text, removed);
	printf("%s: %zu record%s removed\n", text, removed, removed == 1 ? "" : "s");
	return CTL_OK;
}

struct list_job {
	struct history_params hp;
	int64_t now;
	int want; /* -1: all, else enum history_class */
	long limit, shown;
};

static int list_one(const char *text, const struct history_entry *e, void *arg)
{
	struct list_job *j = arg;
	struct history_entry none;
	struct history_prediction pred;
	memset(&none, 0, sizeof(none));
	int host = e->net.bits == (e->net.family == AF_INET ? 32 : 128);
	/* Each record on its own, as a lookup would judge it alone. */
	enum history_class cls = host ? history_predict(e, &none, &j->hp, j->now, &pred)
	                              : history_predict(&none, e, &j->hp, j->now, &pred);
	if (j->want >= 0 && (int)cls != j->want)
		return 0;
	char last[32];
	day(e->rec.last_seen, last, sizeof(last));
	printf("%-20s %-4s sessions=%u hi=%u lo=%u clean=%u junk=%u virus=%u tempfails=%u "
	       "rejects=%u admin=%s last=%s\n",
	       text, history_class_name(cls), e->rec.sessions, e->rec.accepted_good,
	       e->rec.accepted_lo, e->rec.clean, e->rec.junk, e->rec.virus, e->rec.tempfails,
	       e->rec.rejects, admin_name(e->rec.admin), last);
	j->shown++;
	return j->limit > 0 && j->shown >= j->limit;
}

int cmd_history_list(struct ctl *c, int argc, char **argv)
{
	struct list_job j;
	memset(&j, 0, sizeof(j));
	j.want = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--good") == 0 && j.want < 0) {
			j.want = HISTORY_GOOD;
		} else if (strcmp(argv[i], "--junk") == 0 && j.want < 0) {
			j.want = HISTORY_JUNK;
		} else if (strcmp(argv[i], "--new") == 0 && j.want < 0) {
			j.want = HISTORY_NEW;
		} else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			int64_t n;
			if (parse_int(argv[++i], 1, 100000000, &n) != 0) {
				ctl_err("history list: --limit %s: not a positive number", argv[i]);
				return CTL_USAGE;
			}
			j.limit = (long)n;
		} else {
			return ctl_usage("history list");
		}
	}
	if (ctl_open_history(c) < 0)
		return CTL_FAIL;
	ctl_history_params(c, &j.hp);
	j.now = time(NULL);
	if (history_store_iterate(c->hist, NULL, j.now, list_one, &j) < 0) {
		ctl_err("history list: cannot read the history (see the log)");
		return CTL_FAIL;
	}
	return CTL_OK;
}
