/*
 * stats.h: the daily counters of tempomx (src/common/stats.c): what
 * happened to connections and mail, per day, kept durably so that they
 * survive restarts and a kill -9.
 *
 * Each child counts its own events (smtpd the connections and the
 * decisions before DATA, the scanner the viruses, delivery the recipients
 * delivered, deferred and bounced) into today's counters in memory; a
 * thread writes them every STATS_FLUSH_SECONDS, when they changed, to
 * <spool_directory>/stats/YYYY-MM-DD.<process> (a new file renamed over
 * the old one, so a reader never sees half of it; a kill -9 loses at
 * most the last second). At start a process reads its file of the day
 * back and goes on counting from there. Days are UTC days. tempomxctl
 * stats adds up the files of each day.
 *
 * A file is text: "tempomx-stats 1", "day YYYY-MM-DD", then one
 * "name value" line per counter (names in stats_names[]); readers skip
 * names they do not know.
 */
#ifndef TEMPOMX_STATS_H
#define TEMPOMX_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_DIR "stats"
/* Not a counter but a gauge: the SMTP sessions open now and their
 * states, in <spool_directory>/SMTPD_GAUGES_FILE, rewritten by smtpd
 * every second while it runs (src/smtpd/gauges.c). */
#define SMTPD_GAUGES_FILE "smtpd.status"
/* A gauges file older than this is a dead smtpd's. */
#define SMTPD_GAUGES_STALE 5
#define STATS_FLUSH_SECONDS 1

enum stats_counter {
	STAT_CONNECTIONS = 0,      /* SMTP connections accepted */
	STAT_ACCEPTED_HI,          /* messages accepted into hi/ */
	STAT_ACCEPTED_LO,          /* messages accepted into lo/ */
	STAT_TEMPFAIL_NEW,         /* tempfailed as a new client */
	STAT_TEMPFAIL_JUNK,        /* tempfailed as predicted junk */
	STAT_TEMPFAIL_TIMING,      /* timing junk, timing_junk_action = tempfail */
	STAT_TEMPFAIL_LOAD,        /* tempfailed by admission control */
	STAT_REFUSED_PREGREET,     /* refused by timing: talked before the banner */
	STAT_REFUSED_PIPELINING,   /* refused by timing: unauthorised pipelining */
	STAT_REFUSED_PATIENCE,     /* refused by timing: impatient */
	STAT_REFUSED_NON_SMTP,     /* refused by timing: non-SMTP input */
	STAT_REFUSED_BARE_LF,      /* refused by timing: bare LF line ends */
	STAT_REFUSED_TIMING_OTHER, /* refused by timing: weaker evidence together */
	STAT_REFUSED_JUNK,         /* refused as predicted junk */
	STAT_VIRUS,                /* messages quarantined with a virus */
	STAT_DELIVERED,            /* recipients delivered */
	STAT_DEFERRED,             /* recipient delivery attempts deferred */
	STAT_BOUNCED,              /* recipients bounced */
	STAT_SCANNED,              /* messages passed on by the scanner (or with scan = no) */
	STAT_COUNT
};

extern const char *const stats_names[STAT_COUNT];

/* Start counting for process name ("smtpd") in <spool>/stats: read
 * today's file back and start the writer thread. Call after the fork,
 * once. Failures are logged; counting then only stays in memory. */
void stats_start(const char *spool, const char *name);
/* Count n events of one kind today. Thread-safe, never blocks on I/O. */
void stats_add(enum stats_counter c, uint64_t n);
/* Write the counters now and stop the thread (at exit). */
void stats_stop(void);

/* The day of t (seconds) as "YYYY-MM-DD", UTC; buf >= 11 octets. */
void stats_day_name(int64_t t, char *buf, size_t size);
/* Parse one stats file's text: adds each known counter to v[]; returns 0,
 * or -1 when it is not a stats file. day (>= 11 octets) gets its day. */
int stats_parse(const char *text, uint64_t v[STAT_COUNT], char *day, size_t daysize);

#endif
