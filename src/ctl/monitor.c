/*
 * monitor.c: tempomxctl monitor: a live view in the manner of vmstat(8),
 * one line per interval (a second by default): the messages in each
 * queue directory, and the rates since the line before of connections,
 * messages accepted into hi and lo, tempfails, refusals, messages
 * scanned, viruses and recipients delivered, deferred and bounced; then
 * the SMTP sessions open and their states (smtpd's gauges). The queues are counted in the
 * spool; the rates come from the daily counters (include/stats.h), which each process writes once a
 * second, so a rate is exact over a few lines and may jump by a second's worth from one line to the
 * next. A heading is repeated every MONITOR_HEADING lines. It ends after --count lines, on Ctrl-C,
 * or when its output is closed (monitor | head), exiting 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

#define MONITOR_HEADING 20

static volatile sig_atomic_t monitor_stop;

static void on_signal(int sig)
{
	(void)sig;
	monitor_stop = 1;
}

static double rate(uint64_t now, uint64_t before, double secs)
{
	return now >= before && secs > 0 ? (double)(now - before) / secs : 0.0;
}

static void heading(void)
{
	printf("%-8s %5s %5s %5s %5s %5s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %5s %s\n", "time",
	       "hi", "lo", "out", "defer", "hold", "conn/s", "hi/s", "lo/s", "tf/s", "ref/s",
	       "scan/s", "vir/s", "dlv/s", "dfr/s", "bnc/s", "open", "sessions by state");
}

int cmd_monitor(struct ctl *c, int argc, char **argv)
{
	int64_t interval = 1, count = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			if (parse_int(argv[++i], 1, 3600, &interval) != 0)
				return ctl_usage_why("monitor",
				                     "--interval %s: not a number of seconds "
				                     "from 1 to 3600",
				                     argv[i]);
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			if (parse_int(argv[++i], 1, 100000000, &count) != 0)
				return ctl_usage_why("monitor", "--count %s: not a positive number",
				                     argv[i]);
		} else {
			return ctl_usage_why("monitor", "unknown argument %s", argv[i]);
		}
	}
	if (ctl_open_spool(c) < 0)
		return CTL_FAIL;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed output is the end, not a crash. */
	signal(SIGPIPE, SIG_IGN);

	struct ctl_day prev, cur;
	if (ctl_stats_read(c, &prev, 1) < 0)
		return CTL_FAIL;
	int64_t prev_usec = mono_usec();
	for (int64_t line = 0; !monitor_stop && (count == 0 || line < count); line++) {
		struct timespec ts = {(time_t)interval, 0};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !monitor_stop)
			;
		if (monitor_stop)
			break;
		if (ctl_stats_read(c, &cur, 1) < 0)
			return CTL_FAIL;
		int64_t now_usec = mono_usec();
		double secs = (double)(now_usec - prev_usec) / 1e6;
		if (strcmp(cur.day, prev.day) != 0)
			memset(prev.v, 0, sizeof(prev.v)); /* midnight (UTC) */
		const uint64_t *a = cur.v, *b = prev.v;
		uint64_t tf_now = a[STAT_TEMPFAIL_NEW] + a[STAT_TEMPFAIL_JUNK] +
		                  a[STAT_TEMPFAIL_TIMING] + a[STAT_TEMPFAIL_LOAD];
		uint64_t tf_before = b[STAT_TEMPFAIL_NEW] + b[STAT_TEMPFAIL_JUNK] +
		                     b[STAT_TEMPFAIL_TIMING] + b[STAT_TEMPFAIL_LOAD];
		uint64_t ref_now = 0, ref_before = 0;
		for (int k = STAT_REFUSED_PREGREET; k <= STAT_REFUSED_JUNK; k++) {
			ref_now += a[k];
			ref_before += b[k];
		}
		char when[16];
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		if (line % MONITOR_HEADING == 0)
			heading();
		printf(
		    "%-8s %5zu %5zu %5zu %5zu %5zu %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f "
		    "%6.1f %6.1f ",
		    when, spool_count(&c->sp, Q_HI), spool_count(&c->sp, Q_LO),
		    spool_count(&c->sp, Q_OUT), spool_count(&c->sp, Q_DEFERRED),
		    spool_count(&c->sp, Q_HOLD),
		    rate(a[STAT_CONNECTIONS], b[STAT_CONNECTIONS], secs),
		    rate(a[STAT_ACCEPTED_HI], b[STAT_ACCEPTED_HI], secs),
		    rate(a[STAT_ACCEPTED_LO], b[STAT_ACCEPTED_LO], secs),
		    rate(tf_now, tf_before, secs), rate(ref_now, ref_before, secs),
		    rate(a[STAT_SCANNED], b[STAT_SCANNED], secs),
		    rate(a[STAT_VIRUS], b[STAT_VIRUS], secs),
		    rate(a[STAT_DELIVERED], b[STAT_DELIVERED], secs),
		    rate(a[STAT_DEFERRED], b[STAT_DEFERRED], secs),
		    rate(a[STAT_BOUNCED], b[STAT_BOUNCED], secs));
		/* The open sessions, "-" while smtpd does not run. */
		unsigned open_n;
		char states[512];
		if (ctl_gauges(c, &open_n, states, sizeof(states)) == 0)
			printf("%5u %s\n", open_n, states);
		else
			printf("%5s\n", "-");
		if (fflush(stdout) != 0 || ferror(stdout)) {
			/* The reader went away (monitor | head): done. What
			 * stdio still holds cannot be written anywhere, so
			 * leave without flushing it. */
			ctl_close(c);
			_exit(CTL_OK);
		}
		prev = cur;
		prev_usec = now_usec;
	}
	return CTL_OK;
}
