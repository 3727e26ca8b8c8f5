/*
 * show.c: tempomxctl show ID [--body]: one message as an admin wants to
 * read it: where it is, its envelope (client, HELO, sender), the timing
 * verdict with its score and reasons, the history prediction, the scan
 * result, the delivery attempts and each recipient's status and last
 * reply; then the message's header section, or with --body the whole
 * message. Envelope values are shown with control octets as %XX, so a
 * hostile HELO cannot drive the terminal; the message itself is shown as
 * stored, with CR LF line ends turned into LF.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

static void field(const char *name, const char *value)
{
	if (value == NULL)
		return;
	char *p = ctl_printable(value);
	printf("%-13s %s\n", name, p);
	free(p);
}

static void time_field(const char *name, int64_t t, const char *zero)
{
	char buf[64];
	time_t tt = (time_t)t;
	struct tm tm;
	if (t == 0) {
		if (zero != NULL)
			printf("%-13s %s\n", name, zero);
		return;
	}
	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(buf, sizeof(buf), "%lld", (long long)t);
	printf("%-13s %s\n", name, buf);
}

static void show_envelope(enum spool_queue q, const struct envelope *e)
{
	char buf[256];
	printf("%-13s %s\n", "id", e->id);
	printf("%-13s %s/\n", "queue", spool_queue_name(q));
	printf("%-13s %s\n", "class", e->class == CLASS_LO ? "lo" : "hi");
	time_field("arrival", e->arrival_usec / 1000000, NULL);
	printf("%-13s %llu\n", "size", (unsigned long long)e->size);
	char *sender = ctl_printable(e->sender);
	printf("%-13s <%s>\n", "sender", sender);
	free(sender);
	if (e->client_addr != NULL && e->client_addr[0] != '\0') {
		char *name = ctl_printable(e->client_name ? e->client_name : "unknown");
		char *addr = ctl_printable(e->client_addr);
		printf("%-13s %s[%s]:%u\n", "client", name, addr, e->client_port);
		free(name);
		free(addr);
	} else {
		printf("%-13s %s\n", "client", "local");
	}
	field("helo", e->helo);
	field("protocol", e->protocol);
	field("tls", e->tls);
	field("body-type", e->body_type);
	if (e->smtputf8)
		printf("%-13s %s\n", "smtputf8", "yes");
	field("envid", e->envid);
	field("ret", e->ret);
	snprintf(buf, sizeof(buf), "%s, score %d", e->verdict ? e->verdict : "unclassified",
	         e->score);
	field("verdict", buf);
	field("reasons", e->reasons);
	field("history", e->history);
	field("scan-result", e->scan_result ? e->scan_result : "not scanned yet");
	field("bounce-of", e->bounce_of);
	printf("%-13s %d\n", "attempts", e->attempts);
	time_field("next-retry", e->next_retry, "as soon as possible");
	for (size_t i = 0; i < e->nrcpt; i++) {
		const struct rcpt *r = &e->rcpts[i];
		char *addr = ctl_printable(r->addr);
		printf("%-13s <%s> %s, %d attempt%s", "recipient", addr,
		       rcpt_status_name(r->status), r->attempts, r->attempts == 1 ? "" : "s");
		free(addr);
		if (r->status == RCPT_DEFERRED && r->next_retry > 0) {
			time_t tt = (time_t)r->next_retry;
			struct tm tm;
			if (localtime_r(&tt, &tm) != NULL &&
			    strftime(buf, sizeof(buf), "%b %e %H:%M:%S", &tm) > 0)
				printf(", next retry %s", buf);
		}
		putchar('\n');
		if (r->orcpt != NULL)
			field("  orcpt", r->orcpt);
		if (r->notify != NULL)
			field("  notify", r->notify);
		if (r->last_reply != NULL)
			field("  last reply", r->last_reply);
	}
}

/* Copy the message (or its header section) to stdout, CR LF as LF. */
static int show_message(int fd, size_t off, uint64_t size, int body)
{
	char buf[65536];
	int at_line_start = 1, pending_cr = 0;
	uint64_t left = size;
	while (left > 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
		left -= (uint64_t)n;
		for (ssize_t i = 0; i < n; i++) {
			char ch = buf[i];
			if (pending_cr) {
				pending_cr = 0;
				if (ch != '\n')
					putchar('\r');
			}
			if (ch == '\r') {
				pending_cr = 1;
				continue;
			}
			/* The empty line ends the header section. */
			if (!body && ch == '\n' && at_line_start)
				return 0;
			putchar(ch);
			at_line_start = ch == '\n';
		}
	}
	if (pending_cr)
		putchar('\r');
	return 0;
}

int cmd_show(struct ctl *c, int argc, char **argv)
{
	const char *id = NULL;
	int body = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--body") == 0)
			body = 1;
		else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else
			return ctl_usage("show");
	}
	if (id == NULL)
		return ctl_usage("show");
	if (!ctl_check_id(id))
		return CTL_USAGE;
	if (ctl_open_spool(c) < 0)
		return CTL_FAIL;
	/* Find its queue, then open it there; it may move on in between. */
	for (int round = 0; round < 3; round++) {
		struct envelope env;
		size_t off;
		int fd;
		int q = ctl_find(c, id, NULL, 0, 0);
		if (q < 0)
			return CTL_FAIL;
		int r = spool_open_message(&c->sp, (enum spool_queue)q, id, &env, &off, &fd);
		if (r == -1 && errno == ENOENT)
			continue;
		if (r < 0) {
			ctl_err("%s: cannot read %s/%s", id, spool_queue_name((enum spool_queue)q),
			        id);
			return CTL_FAIL;
		}
		show_envelope((enum spool_queue)q, &env);
		putchar('\n');
		int rc = show_message(fd, off, env.size, body);
		close(fd);
		envelope_free(&env);
		if (rc < 0) {
			ctl_err("%s: cannot read the message: %s", id, strerror(errno));
			return CTL_FAIL;
		}
		return CTL_OK;
	}
	ctl_err("%s: the message keeps moving between queues; try again", id);
	return CTL_FAIL;
}
