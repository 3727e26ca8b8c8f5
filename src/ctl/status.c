/*
 * status.c: tempomxctl status: is the daemon running, since when, with
 * which children (pid, restarts) and listeners, how did the last reload
 * go (all from the master, over the control socket); the SMTP sessions
 * open and their states (smtpd's gauges); the scanner's
 * virus database (signatures, version, when loaded, a failed reload) from
 * the file the scanner keeps; and, from the spool itself, how many messages wait in each queue
 * directory and how old the oldest message of each class is. The spool part works with the daemon
 * down too; the exit status then says it is not running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ctl.h"
#include "scan.h"
#include "util.h"

static void age(int64_t s, char *buf, size_t size)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, size, "%lldd%02lldh", (long long)(s / 86400),
		         (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, size, "%lldh%02lldm", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, size, "%llds", (long long)s);
}

static void when_str(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (localtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
}

/* The master's "status" lines, in words. */
static void print_daemon(const char *lines)
{
	char *copy = xstrdup(lines), *save = NULL;
	long long started = 0, uptime = 0;
	char pid[32] = "?", version[64] = "?";
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char buf[64], name[64], cpid[32];
		unsigned restarts;
		long long t;
		if (sscanf(l, "pid %31s", pid) == 1 || sscanf(l, "version %63s", version) == 1)
			continue;
		if (sscanf(l, "started %lld", &started) == 1)
			continue;
		if (sscanf(l, "uptime %lld", &uptime) == 1) {
			age(uptime, buf, sizeof(buf));
			char since[64];
			when_str(started, since, sizeof(since));
			printf("tempomxd: running, pid %s, version %s, up %s (since %s)\n", pid,
			       version, buf, since);
		} else if (strncmp(l, "config ", 7) == 0) {
			printf("configuration: %s\n", l + 7);
		} else if (sscanf(l, "child %63s pid %31s restarts %u", name, cpid, &restarts) ==
		           3) {
			if (strcmp(cpid, "0") == 0)
				printf("  %-9s not running (restarting), %u restart%s\n", name,
				       restarts, restarts == 1 ? "" : "s");
			else
				printf("  %-9s pid %s, %u restart%s\n", name, cpid, restarts,
				       restarts == 1 ? "" : "s");
		} else if (strncmp(l, "listen ", 7) == 0) {
			printf("  listening on %s\n", l + 7);
		} else if (strcmp(l, "reload never") == 0) {
			printf("last reload: none since the start\n");
		} else if (sscanf(l, "reload %lld", &t) == 1) {
			const char *rest = strchr(l + 7, ' ');
			when_str(t, buf, sizeof(buf));
			printf("last reload: %s, %s\n", buf, rest ? rest + 1 : "");
		}
	}
	free(copy);
}

int ctl_gauges(struct ctl *c, unsigned *sessions, char *states, size_t size)
{
	char path[4096], line[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", c->cf.spool_directory, SMTPD_GAUGES_FILE);
	if (stat(path, &st) < 0 || (int64_t)time(NULL) - st.st_mtime > SMTPD_GAUGES_STALE)
		return -1;
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return -1;
	*sessions = 0;
	if (size > 0)
		states[0] = '\0';
	while (fgets(line, sizeof(line), fp) != NULL) {
		char name[32];
		unsigned n;
		if (sscanf(line, "sessions %u", &n) == 1) {
			*sessions = n;
		} else if (sscanf(line, "state %31s %u", name, &n) == 2) {
			size_t l = strlen(states);
			snprintf(states + l, size - l, "%s%s %u", l ? ", " : "", name, n);
		}
	}
	fclose(fp);
	return 0;
}

/* The scanner's database, from the file the scanner keeps (scan.h). */
static void print_scanner(struct ctl *c)
{
	char path[4096], when[64];
	snprintf(path, sizeof(path), "%s/%s", c->cf.spool_directory, SCANNER_STATUS_FILE);
	FILE *fp = fopen(path, "r");
	if (fp == NULL) {
		printf("virus database: unknown (the scanner has not started)\n");
		return;
	}
	char line[1024];
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		long long t;
		int off = 0;
		if (strcmp(line, "engine none") == 0) {
			printf("virus database: none loaded%s\n",
			       c->cf.scan ? "" : " (scan = no: mail is not scanned)");
		} else if (strncmp(line, "engine ", 7) == 0) {
			const char *loaded = strstr(line, ", loaded=");
			if (loaded != NULL && sscanf(loaded + 9, "%lld", &t) == 1) {
				when_str(t, when, sizeof(when));
				printf("virus database: %.*s, loaded %s\n",
				       (int)(loaded - line - 7), line + 7, when);
			} else {
				printf("virus database: %s\n", line + 7);
			}
		} else if (sscanf(line, "reload-failed %lld %n", &t, &off) == 1 && off > 0) {
			when_str(t, when, sizeof(when));
			printf("  last database reload failed at %s: %s\n", when, line + off);
		}
	}
	fclose(fp);
}

static void print_queues(struct ctl *c)
{
	static const enum spool_queue qs[] = {Q_INCOMING, Q_HI,   Q_LO,         Q_OUT,
	                                      Q_DEFERRED, Q_HOLD, Q_QUARANTINE, Q_CORRUPT};
	printf("queues in %s:\n", c->cf.spool_directory);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		printf("  %-11s %zu\n", spool_queue_name(qs[i]), spool_count(&c->sp, qs[i]));
	/* The oldest message of each class still to be delivered (not
	 * counting quarantine, which never is). */
	struct ctl_filter f;
	struct ctl_msg *v;
	ctl_filter_init(&f);
	size_t n = ctl_collect(c, &f, &v);
	int64_t now = wall_usec() / 1000000;
	for (int cls = CLASS_HI; cls <= CLASS_LO; cls++) {
		const struct ctl_msg *oldest = NULL;
		for (size_t i = 0; i < n; i++)
			if ((int)v[i].env.class == cls && v[i].q != Q_QUARANTINE &&
			    (oldest == NULL || v[i].env.arrival_usec < oldest->env.arrival_usec))
				oldest = &v[i];
		if (oldest == NULL) {
			printf("oldest %s message: none\n", cls == CLASS_HI ? "hi" : "lo");
			continue;
		}
		char buf[32];
		age(now - oldest->env.arrival_usec / 1000000, buf, sizeof(buf));
		printf("oldest %s message: %s old, %s in %s/\n", cls == CLASS_HI ? "hi" : "lo", buf,
		       oldest->env.id, spool_queue_name(oldest->q));
	}
	ctl_msgs_free(v, n);
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	(void)argv;
	char *lines = NULL;
	if (argc != 1)
		return ctl_usage("status");
	int rc = ctl_daemon_request(c, "status", &lines, "status");
	if (rc == -2)
		printf("tempomxd: not running (no control socket at %s)\n", c->cf.control_socket);
	else if (rc == 0)
		print_daemon(lines);
	unsigned sessions;
	char states[512];
	if (rc == 0 && ctl_gauges(c, &sessions, states, sizeof(states)) == 0)
		printf("smtp sessions open: %u%s%s%s\n", sessions, states[0] ? " (" : "", states,
		       states[0] ? ")" : "");
	free(lines);
	if (ctl_open_spool(c) < 0)
		return CTL_FAIL;
	print_scanner(c);
	print_queues(c);
	return rc == 0 ? CTL_OK : CTL_FAIL;
}
