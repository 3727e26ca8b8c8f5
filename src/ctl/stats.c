/*
 * stats.c: tempomxctl stats [--days N] [--svg FILE]: the daily counters
 * the daemon keeps in <spool>/stats/ (include/stats.h), for the last N
 * days (UTC, today included), added up over the processes that wrote
 * them: connections and messages by outcome (accepted into hi or lo,
 * tempfailed as new, as predicted junk or otherwise, refused by timing
 * and as predicted junk, viruses), the recipients delivered, deferred
 * and bounced, and the timing refusals by reason. With --svg the same
 * days are also drawn as a chart (svg.c). Works with the daemon down.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

#define STATS_DAYS_DEFAULT 7
#define STATS_DAYS_MAX 366

/* Add one file's counters to the day it belongs to. */
static void add_file(int dirfd, const char *name, struct ctl_day *days, size_t n)
{
	char day[16];
	uint64_t v[STAT_COUNT] = {0};
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return;
	struct stat st;
	size_t got = 0;
	char *text = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < 65536)
		text = read_fd_all(fd, (size_t)st.st_size, &got);
	close(fd);
	if (text != NULL && stats_parse(text, v, day, sizeof(day)) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(days[i].day, day) != 0)
				continue;
			for (int k = 0; k < STAT_COUNT; k++)
				days[i].v[k] += v[k];
		}
	}
	free(text);
}

int ctl_stats_read(struct ctl *c, struct ctl_day *days, size_t n)
{
	char path[4096];
	int64_t today = (int64_t)time(NULL) / 86400;
	for (size_t i = 0; i < n; i++) {
		memset(&days[i], 0, sizeof(days[i]));
		stats_day_name((today - (int64_t)(n - 1 - i)) * 86400, days[i].day,
		               sizeof(days[i].day));
	}
	snprintf(path, sizeof(path), "%s/%s", c->cf.spool_directory, STATS_DIR);
	int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		if (errno == ENOENT)
			return 0; /* nothing counted yet */
		ctl_err("stats: %s: %s", path, strerror(errno));
		return -1;
	}
	int fd2 = dup(dirfd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (d == NULL) {
		ctl_err("stats: %s: %s", path, strerror(errno));
		if (fd2 >= 0)
			close(fd2);
		close(dirfd);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		/* "YYYY-MM-DD.process"; temporary files start with a dot. */
		if (de->d_name[0] == '.' || strlen(de->d_name) < 12 || de->d_name[10] != '.')
			continue;
		for (size_t i = 0; i < n; i++)
			if (strncmp(de->d_name, days[i].day, 10) == 0)
				add_file(dirfd, de->d_name, days, n);
	}
	closedir(d);
	close(dirfd);
	return 0;
}

/* A column of a table: a counter, or one of the sums below. */
#define COL_TF_OTHER (-1)
#define COL_REF_TIMING (-2)

struct column {
	const char *head;
	int counter;
};

static const struct column mail_cols[] = {
    {"connections", STAT_CONNECTIONS}, {"acc-hi", STAT_ACCEPTED_HI},
    {"acc-lo", STAT_ACCEPTED_LO},      {"tf-new", STAT_TEMPFAIL_NEW},
    {"tf-junk", STAT_TEMPFAIL_JUNK},   {"tf-other", COL_TF_OTHER},
    {"ref-timing", COL_REF_TIMING},    {"ref-junk", STAT_REFUSED_JUNK},
    {"viruses", STAT_VIRUS},           {NULL, 0}};
static const struct column rcpt_cols[] = {{"delivered", STAT_DELIVERED},
                                          {"deferred", STAT_DEFERRED},
                                          {"bounced", STAT_BOUNCED},
                                          {NULL, 0}};
static const struct column reason_cols[] = {{"pregreet", STAT_REFUSED_PREGREET},
                                            {"pipelining", STAT_REFUSED_PIPELINING},
                                            {"patience", STAT_REFUSED_PATIENCE},
                                            {"non-smtp", STAT_REFUSED_NON_SMTP},
                                            {"bare-lf", STAT_REFUSED_BARE_LF},
                                            {"other", STAT_REFUSED_TIMING_OTHER},
                                            {NULL, 0}};

static uint64_t value(const uint64_t *v, int col)
{
	if (col == COL_TF_OTHER)
		return v[STAT_TEMPFAIL_TIMING] + v[STAT_TEMPFAIL_LOAD];
	if (col == COL_REF_TIMING)
		return v[STAT_REFUSED_PREGREET] + v[STAT_REFUSED_PIPELINING] +
		       v[STAT_REFUSED_PATIENCE] + v[STAT_REFUSED_NON_SMTP] +
		       v[STAT_REFUSED_BARE_LF] + v[STAT_REFUSED_TIMING_OTHER];
	return v[col];
}

static void table(const char *title, const struct column *cols, const struct ctl_day *days,
                  size_t n, const uint64_t *total)
{
	printf("%s\n%-10s", title, "day");
	for (const struct column *c = cols; c->head; c++)
		printf(" %10s", c->head);
	putchar('\n');
	for (size_t i = 0; i <= n; i++) {
		const uint64_t *v = i < n ? days[i].v : total;
		printf("%-10s", i < n ? days[i].day : "total");
		for (const struct column *c = cols; c->head; c++)
			printf(" %10llu", (unsigned long long)value(v, c->counter));
		putchar('\n');
	}
}

static void print_tables(const struct ctl_day *days, size_t n)
{
	uint64_t total[STAT_COUNT] = {0};
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < STAT_COUNT; k++)
			total[k] += days[i].v[k];
	table("Connections and messages (acc: accepted, tf: tempfailed, ref: refused; "
	      "tf-other: timing junk or load)",
	      mail_cols, days, n, total);
	putchar('\n');
	table("Recipients", rcpt_cols, days, n, total);
	putchar('\n');
	table("Refused by timing, by reason", reason_cols, days, n, total);
}

int cmd_stats(struct ctl *c, int argc, char **argv)
{
	int64_t ndays = STATS_DAYS_DEFAULT;
	const char *svg = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			if (parse_int(argv[++i], 1, STATS_DAYS_MAX, &ndays) != 0)
				return ctl_usage_why("stats",
				                     "--days %s: not a number from 1 to %d",
				                     argv[i], STATS_DAYS_MAX);
		} else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc) {
			svg = argv[++i];
		} else {
			return ctl_usage_why("stats", "unknown argument %s", argv[i]);
		}
	}
	if (ctl_open_spool(c) < 0)
		return CTL_FAIL;
	struct ctl_day *days = xcalloc((size_t)ndays, sizeof(*days));
	if (ctl_stats_read(c, days, (size_t)ndays) < 0) {
		free(days);
		return CTL_FAIL;
	}
	print_tables(days, (size_t)ndays);
	int rc = CTL_OK;
	if (svg != NULL) {
		/* The chart is the admin's file, not the spool's. */
		ctl_as_invoker(c);
		FILE *fp = fopen(svg, "w");
		if (fp == NULL) {
			ctl_err("stats: %s: %s", svg, strerror(errno));
			rc = CTL_FAIL;
		} else {
			svg_chart(fp, days, (size_t)ndays);
			if (fclose(fp) != 0) {
				ctl_err("stats: cannot write %s", svg);
				rc = CTL_FAIL;
			}
		}
		ctl_as_owner(c);
	}
	free(days);
	return rc;
}
