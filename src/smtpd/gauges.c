/*
 * gauges.c: smtpd's live gauges for tempomxctl status and monitor: how
 * many SMTP sessions are open, and how many in each state of the
 * dialogue. Once a second a timer of smtpd's loop counts the sessions and
 * writes them to <spool>/SMTPD_GAUGES_FILE (a new file renamed over the
 * old one, never flushed: it describes this moment only; its age says
 * smtpd is alive). smtpd removes the file when it stops; tempomxctl
 * ignores one older than a few seconds (left by a smtpd that was killed).
 *
 * The file: "sessions N", then "state NAME N" for each state with
 * sessions in it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "gauges.h"
#include "log.h"
#include "session.h"
#include "smtpd.h"
#include "stats.h"
#include "tempomx.h"
#include "util.h"

#define GAUGES_STATES SESSION_NSTATES

struct gauges {
	struct smtpd *srv;
	struct event *timer;
	char *path;
};

static void gauges_write(struct gauges *g)
{
	unsigned count[GAUGES_STATES] = {0};
	unsigned total = 0;
	for (const struct session *s = g->srv->sessions; s != NULL; s = s->next) {
		int st = session_state_index(s);
		if (st >= 0 && st < GAUGES_STATES)
			count[st]++;
		total++;
	}
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "sessions %u\n", total);
	for (int st = 0; st < GAUGES_STATES && n > 0 && (size_t)n < sizeof(buf); st++)
		if (count[st] > 0)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n, "state %s %u\n",
			              session_state_name(st), count[st]);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.%ld", g->path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd) < 0 || rename(tmp, g->path) < 0) {
		if (fd >= 0)
			unlink(tmp);
		return; /* a gauge: the next second tries again */
	}
}

static void gauges_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	gauges_write(arg);
}

struct gauges *gauges_new(struct smtpd *srv)
{
	struct gauges *g = xcalloc(1, sizeof(*g));
	g->srv = srv;
	xasprintf(&g->path, "%s/%s", srv->rt->cf->spool_directory, SMTPD_GAUGES_FILE);
	g->timer = event_new(srv->base, -1, EV_PERSIST, gauges_tick, g);
	struct timeval tv = {1, 0};
	if (g->timer == NULL || event_add(g->timer, &tv) < 0)
		fatalx("gauges: cannot add the timer");
	gauges_write(g);
	return g;
}

void gauges_free(struct gauges *g)
{
	if (g == NULL)
		return;
	event_free(g->timer);
	unlink(g->path);
	free(g->path);
	free(g);
}
