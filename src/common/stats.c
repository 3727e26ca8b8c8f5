/*
 * stats.c: the daily counters (include/stats.h): counting in memory,
 * the writer thread that keeps <spool>/stats/YYYY-MM-DD.<process> up to
 * date, reading a file back at start, and the file format shared with
 * tempomxctl stats.
 *
 * Why a file per process and day: each child writes only its own file,
 * so no two writers ever meet and no lock is needed across processes; a
 * day is one name, so old days are kept without a database and removed
 * with rm. Why no fsync: the counters must survive a process dying (the
 * page cache keeps a renamed file), not a power failure, and a flush a
 * second per process would cost more disk work than the counts are
 * worth. The rename makes each update whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"
#include "threadpool.h"
#include "util.h"

#define STATS_MAGIC "tempomx-stats 1"
#define STATS_FILE_MAX 16384

const char *const stats_names[STAT_COUNT] = {
    [STAT_CONNECTIONS] = "connections",
    [STAT_ACCEPTED_HI] = "accepted_hi",
    [STAT_ACCEPTED_LO] = "accepted_lo",
    [STAT_TEMPFAIL_NEW] = "tempfailed_new",
    [STAT_TEMPFAIL_JUNK] = "tempfailed_junk",
    [STAT_TEMPFAIL_TIMING] = "tempfailed_timing",
    [STAT_TEMPFAIL_LOAD] = "tempfailed_load",
    [STAT_REFUSED_PREGREET] = "refused_pregreet",
    [STAT_REFUSED_PIPELINING] = "refused_pipelining",
    [STAT_REFUSED_PATIENCE] = "refused_patience",
    [STAT_REFUSED_NON_SMTP] = "refused_non_smtp",
    [STAT_REFUSED_BARE_LF] = "refused_bare_lf",
    [STAT_REFUSED_TIMING_OTHER] = "refused_timing_other",
    [STAT_REFUSED_JUNK] = "refused_junk",
    [STAT_VIRUS] = "viruses",
    [STAT_DELIVERED] = "delivered",
    [STAT_DEFERRED] = "deferred",
    [STAT_BOUNCED] = "bounced",
    [STAT_SCANNED] = "scanned",
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t day; /* days since the epoch of v[] */
	uint64_t v[STAT_COUNT];
	int dirty;
	/* The day before, when it ended with counts not yet written. */
	int64_t prev_day;
	uint64_t prev_v[STAT_COUNT];
	int prev_dirty;
	int dirfd; /* <spool>/stats, -1: in memory only */
	char name[32];
	pthread_t thread;
	int running, stop;
} S = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, 0, 0, {0}, 0, -1, "", 0, 0, 0};

void stats_day_name(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, size, "0000-00-00");
}

int stats_parse(const char *text, uint64_t v[STAT_COUNT], char *day, size_t daysize)
{
	size_t ml = strlen(STATS_MAGIC);
	if (strncmp(text, STATS_MAGIC, ml) != 0 || text[ml] != '\n')
		return -1;
	if (daysize > 0)
		day[0] = '\0';
	for (const char *p = text + ml + 1; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char key[64];
		unsigned long long n;
		char dbuf[16];
		if (len < sizeof(key) + 24) {
			char line[sizeof(key) + 24];
			memcpy(line, p, len);
			line[len] = '\0';
			if (sscanf(line, "day %15s", dbuf) == 1) {
				snprintf(day, daysize, "%s", dbuf);
			} else if (sscanf(line, "%63s %llu", key, &n) == 2) {
				for (int i = 0; i < STAT_COUNT; i++)
					if (strcmp(key, stats_names[i]) == 0)
						v[i] += n;
			}
		}
		p += len + (eol != NULL);
	}
	return 0;
}

/* Write the counters of day to the process's file. Only the writer
 * thread calls it, or stats_stop() once the writer is gone: never two at
 * once. */
static void write_file(int64_t day, const uint64_t *v)
{
	char dayname[16], name[96], tmp[112], buf[STATS_FILE_MAX];
	if (S.dirfd < 0)
		return;
	stats_day_name(day * 86400, dayname, sizeof(dayname));
	snprintf(name, sizeof(name), "%s.%s", dayname, S.name);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	size_t len = (size_t)snprintf(buf, sizeof(buf), "%s\nday %s\n", STATS_MAGIC, dayname);
	for (int i = 0; i < STAT_COUNT && len < sizeof(buf); i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s %llu\n", stats_names[i],
		                        (unsigned long long)v[i]);
	int fd = openat(S.dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_warn("stats: cannot write %s/%s", STATS_DIR, tmp);
		return;
	}
	ssize_t w = write(fd, buf, len);
	if (close(fd) < 0 || w != (ssize_t)len || renameat(S.dirfd, tmp, S.dirfd, name) < 0) {
		log_warn("stats: cannot write %s/%s", STATS_DIR, name);
		unlinkat(S.dirfd, tmp, 0);
	}
}

static void *writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.mu);
	while (!S.stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += STATS_FLUSH_SECONDS;
		pthread_cond_timedwait(&S.cv, &S.mu, &ts);
		uint64_t v[STAT_COUNT], pv[STAT_COUNT];
		int64_t day = S.day, pday = S.prev_day;
		int dirty = S.dirty, pdirty = S.prev_dirty;
		memcpy(v, S.v, sizeof(v));
		memcpy(pv, S.prev_v, sizeof(pv));
		S.dirty = S.prev_dirty = 0;
		pthread_mutex_unlock(&S.mu);
		if (pdirty)
			write_file(pday, pv);
		if (dirty)
			write_file(day, v);
		pthread_mutex_lock(&S.mu);
	}
	pthread_mutex_unlock(&S.mu);
	return NULL;
}

/* Read this process's file of the current day back into S.v. */
static void load_today(void)
{
	char dayname[16], name[96], day[16];
	stats_day_name(S.day * 86400, dayname, sizeof(dayname));
	snprintf(name, sizeof(name), "%s.%s", dayname, S.name);
	int fd = openat(S.dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	struct stat st;
	size_t got = 0;
	char *text = NULL;
	if (fstat(fd, &st) == 0 && st.st_size < STATS_FILE_MAX)
		text = read_fd_all(fd, (size_t)st.st_size, &got);
	close(fd);
	uint64_t v[STAT_COUNT] = {0};
	if (text == NULL || stats_parse(text, v, day, sizeof(day)) < 0 || strcmp(day, dayname) != 0)
		log_warnx("stats: %s/%s is not a stats file of %s; counting from 0", STATS_DIR,
		          name, dayname);
	else
		for (int i = 0; i < STAT_COUNT; i++)
			S.v[i] += v[i];
	free(text);
}

void stats_start(const char *spool, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", spool, STATS_DIR);
	pthread_mutex_lock(&S.mu);
	if (S.running || S.dirfd >= 0) {
		pthread_mutex_unlock(&S.mu);
		return;
	}
	snprintf(S.name, sizeof(S.name), "%s", name);
	S.day = (int64_t)time(NULL) / 86400;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		log_warn("stats: mkdir %s", path);
	S.dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (S.dirfd < 0) {
		log_warn("stats: %s; the daily counters are not kept", path);
		pthread_mutex_unlock(&S.mu);
		return;
	}
	load_today();
	S.stop = 0;
	if (threadpool_thread_create(&S.thread, writer, NULL) == 0)
		S.running = 1;
	else
		log_warnx("stats: cannot start the writer thread");
	pthread_mutex_unlock(&S.mu);
}

void stats_add(enum stats_counter c, uint64_t n)
{
	if ((unsigned)c >= STAT_COUNT)
		return;
	int64_t day = (int64_t)time(NULL) / 86400;
	pthread_mutex_lock(&S.mu);
	if (day != S.day) {
		/* A new day: the writer writes yesterday's final counts. */
		if (S.dirty) {
			S.prev_day = S.day;
			memcpy(S.prev_v, S.v, sizeof(S.v));
			S.prev_dirty = 1;
		}
		S.dirty = 0;
		memset(S.v, 0, sizeof(S.v));
		S.day = day;
	}
	S.v[c] += n;
	S.dirty = 1;
	pthread_mutex_unlock(&S.mu);
}

void stats_stop(void)
{
	pthread_mutex_lock(&S.mu);
	int running = S.running;
	S.stop = 1;
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
	if (running)
		pthread_join(S.thread, NULL);
	pthread_mutex_lock(&S.mu);
	if (S.prev_dirty)
		write_file(S.prev_day, S.prev_v);
	if (S.dirty)
		write_file(S.day, S.v);
	S.dirty = S.prev_dirty = 0;
	S.running = 0;
	if (S.dirfd >= 0)
		close(S.dirfd);
	S.dirfd = -1;
	pthread_mutex_unlock(&S.mu);
}
