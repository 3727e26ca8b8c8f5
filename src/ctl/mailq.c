/*
 * mailq.c: tempomxctl queue (and mailq): the listing of queued mail.
 *
 * The text layout is Postfix's mailq layout, column for column, so that
 * admins' habits and scripts keep working: the heading line, for each
 * message its ID (with '*' while it is in out/, being delivered, and '!'
 * while it is held or quarantined), size, arrival time and sender, then
 * each recipient still to be delivered, with the last reply in
 * parentheses above it, right-aligned, when it differs from the one
 * above; a blank line between messages and the "-- N Kbytes in M
 * Requests." total, or "Mail queue is empty". Postfix's sender field is
 * the seventh word of the line; tempomx adds the class and the queue
 * directory after it ("class=HI queue=deferred"), where no script looks.
 *
 * With -j (--json) each message is one JSON object on one line, holding
 * the fields of its envelope (the names of Postfix's postqueue -j where
 * there is one: queue_name, queue_id, arrival_time, message_size,
 * sender, recipients with address and delay_reason).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "util.h"

/* Postfix's columns: ID 11, size 7, arrival 20, then the address; a
 * recipient line is indented by the width of the first three. */
#define MAILQ_LINE_FMT "%-11s %7s %-20s %s\n"
#define MAILQ_REASON_WIDTH 76

static char status_mark(enum spool_queue q)
{
	if (q == Q_OUT)
		return '*';
	if (q == Q_HOLD || q == Q_QUARANTINE)
		return '!';
	return '\0';
}

static void print_text(const struct ctl_msg *m)
{
	const struct envelope *e = &m->env;
	char idst[QUEUEID_SIZE + 2], size[32], when[64];
	time_t t = (time_t)(e->arrival_usec / 1000000);
	struct tm tm;
	char mark = status_mark(m->q);

	snprintf(idst, sizeof(idst), "%s%c", e->id, mark);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)e->size);
	/* asctime's form ("Thu Dec  3 12:31:01 2026"), cut to 20 columns. */
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	char *sender = ctl_printable(e->sender);
	printf("%-11s %7s %-20.20s %s  class=%s queue=%s\n", idst, size, when,
	       sender[0] ? sender : "MAILER-DAEMON", e->class == CLASS_LO ? "LO" : "HI",
	       spool_queue_name(m->q));
	free(sender);

	const char *shown = "";
	for (size_t i = 0; i < e->nrcpt; i++) {
		const struct rcpt *r = &e->rcpts[i];
		if (r->status != RCPT_PENDING && r->status != RCPT_DEFERRED)
			continue;
		const char *why = r->last_reply ? r->last_reply : "";
		if (strcmp(why, shown) != 0) {
			char *p = ctl_printable(why[0] ? why : "reason unavailable");
			int pad = MAILQ_REASON_WIDTH - (int)strlen(p);
			printf("%*s(%s)\n", pad > 0 ? pad : 0, "", p);
			free(p);
			shown = why;
		}
		char *addr = ctl_printable(r->addr);
		printf(MAILQ_LINE_FMT, "", "", "", addr);
		free(addr);
	}
}

static void print_json(const struct ctl_msg *m)
{
	const struct envelope *e = &m->env;
	int first = 1;
	putchar('{');
	json_key_str(stdout, &first, "queue_name", spool_queue_name(m->q));
	json_key_str(stdout, &first, "queue_id", e->id);
	json_key_int(stdout, &first, "arrival_time", (long long)(e->arrival_usec / 1000000));
	json_key_int(stdout, &first, "message_size", (long long)e->size);
	json_key_str(stdout, &first, "sender", e->sender ? e->sender : "");
	json_key_str(stdout, &first, "class", msg_class_name(e->class));
	json_key_str(stdout, &first, "client_address", e->client_addr);
	json_key_int(stdout, &first, "client_port", (long long)e->client_port);
	json_key_str(stdout, &first, "client_name", e->client_name);
	json_key_str(stdout, &first, "helo", e->helo);
	json_key_str(stdout, &first, "protocol", e->protocol);
	json_key_str(stdout, &first, "tls", e->tls);
	json_key_str(stdout, &first, "body_type", e->body_type);
	json_key_int(stdout, &first, "smtputf8", e->smtputf8);
	json_key_str(stdout, &first, "envid", e->envid);
	json_key_str(stdout, &first, "ret", e->ret);
	json_key_str(stdout, &first, "verdict", e->verdict);
	json_key_int(stdout, &first, "score", e->score);
	json_key_str(stdout, &first, "reasons", e->reasons);
	json_key_str(stdout, &first, "history", e->history);
	json_key_int(stdout, &first, "attempts", e->attempts);
	json_key_int(stdout, &first, "next_retry", (long long)e->next_retry);
	json_key_str(stdout, &first, "scan_result", e->scan_result);
	json_key_str(stdout, &first, "bounce_of", e->bounce_of);
	fputs(",\"recipients\":[", stdout);
	for (size_t i = 0; i < e->nrcpt; i++) {
		const struct rcpt *r = &e->rcpts[i];
		int rf = 1;
		if (i > 0)
			putchar(',');
		putchar('{');
		json_key_str(stdout, &rf, "address", r->addr);
		json_key_str(stdout, &rf, "status", rcpt_status_name(r->status));
		json_key_str(stdout, &rf, "orcpt", r->orcpt);
		json_key_str(stdout, &rf, "notify", r->notify);
		json_key_int(stdout, &rf, "attempts", r->attempts);
		json_key_int(stdout, &rf, "last_attempt", (long long)r->last_attempt);
		json_key_int(stdout, &rf, "next_retry", (long long)r->next_retry);
		json_key_str(stdout, &rf, "delay_reason", r->last_reply);
		putchar('}');
	}
	fputs("]}\n", stdout);
}

int cmd_queue(struct ctl *c, int argc, char **argv)
{
	struct ctl_filter f;
	int json = 0;
	ctl_filter_init(&f);
	for (int i = 1; i < argc; i++) {
		int r = ctl_filter_option(&f, argc, argv, &i);
		if (r < 0)
			return CTL_USAGE;
		if (r > 0)
			continue;
		if (strcmp(argv[i], "-j") == 0 || strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else {
			return ctl_usage_why("queue", "unknown argument %s", argv[i]);
		}
	}
	if (ctl_open_spool(c) < 0)
		return CTL_FAIL;
	struct ctl_msg *v;
	size_t n = ctl_collect(c, &f, &v);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (json) {
			print_json(&v[i]);
			continue;
		}
		if (i == 0)
			printf(MAILQ_LINE_FMT, "-Queue ID-", "--Size--", "----Arrival Time----",
			       "-Sender/Recipient-------");
		else
			putchar('\n');
		print_text(&v[i]);
		total += v[i].env.size;
	}
	if (!json) {
		if (n == 0)
			printf("Mail queue is empty\n");
		else
			printf("\n-- %llu Kbytes in %zu Request%s.\n",
			       (unsigned long long)(total / 1024), n, n == 1 ? "" : "s");
	}
	ctl_msgs_free(v, n);
	return CTL_OK;
}
