/*
 * ctl.h: what the files of tempomxctl (src/ctl/) share.
 *
 *   tempomxctl.c   main: global options, the command table, help, config
 *   privs.c        running as the spool owner for spool and history work
 *   err.c          error lines on stderr (ctl_err)
 *   daemon.c       the running master: its control socket (reload, flush,
 *                  status)
 *   status.c       status: the daemon, its children, the queues
 *   stats.c        stats: the daily counters as tables
 *   svg.c          stats --svg: the same as a stacked bar chart
 *   monitor.c      monitor: queues and rates, a line a second
 *   spoolview.c    finding messages in the spool, filters, the walk
 *   mailq.c        the queue listing (Postfix's mailq layout, JSON lines)
 *   json.c         JSON string output
 *   show.c         show ID: envelope, verdict, recipients, headers, body
 *   queueops.c     hold, release, requeue, delete, flush
 *   daemonctl.c    reload, log-level
 *   historyctl.c   history show, good, junk, forget, list
 *   why.c          why ADDR|ID: what the policy would decide now
 *   whitelistctl.c whitelist add, remove, list
 *
 * Every file prints its errors with err.c, which calls none of the
 * others: privs.c calls only err.c, and main (tempomxctl.c) calls
 * privs.c (ctl_close), never the other way.
 *
 * Listings read the spool directly, so they work while the daemon is
 * down. Queue actions move files with the spool library (src/spool/):
 * every move is a rename followed by an fsync of the directories, so a
 * message always has exactly one name. Actions that need the daemon go
 * to the master over its control socket (reload, flush, status).
 *
 * Every command returns an exit status: CTL_OK, CTL_FAIL (something asked
 * for could not be done; one line on stderr for each) or CTL_USAGE (bad
 * arguments: one line on stderr).
 */
#ifndef TEMPOMX_CTL_H
#define TEMPOMX_CTL_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "conf.h"
#include "envelope.h"
#include "spool.h"
#include "stats.h"

#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2

struct history_store;

struct ctl {
	const char *conf_path; /* NULL: built-in defaults */
	struct config cf;
	struct spool sp;
	int spool_open;
	struct history_store *hist;
	/* The spool owner, whose identity spool and history work takes
	 * when tempomxctl runs as root (privs.c). */
	int switched;
	uid_t invoker_uid;
	gid_t invoker_gid;
};

struct ctl_command {
	const char *name; /* "queue", "history show" */
	const char *args; /* synopsis of the arguments, for help and usage */
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *summary;
};

extern const struct ctl_command ctl_commands[];
extern const size_t ctl_ncommands;

/* err.c: one line "tempomxctl: message" on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* tempomxctl.c: "tempomxctl: usage: tempomxctl NAME ARGS" for a command;
 * CTL_USAGE. */
int ctl_usage(const char *name);
/* "tempomxctl: NAME: why; usage: tempomxctl NAME ARGS", one line;
 * CTL_USAGE. */
int ctl_usage_why(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* privs.c: open the spool (as its owner when root); 0, or -1 with the
 * error printed. */
int ctl_open_spool(struct ctl *c);
/* Open the history store in <spool>/db; 0, or -1 with the error printed. */
int ctl_open_history(struct ctl *c);
/* Back to the invoking user (root), e.g. to signal the master. */
void ctl_as_invoker(struct ctl *c);
/* Back to the spool owner after ctl_as_invoker(). */
void ctl_as_owner(struct ctl *c);
void ctl_close(struct ctl *c);

/* daemon.c: send one request (cmd: "reload", "flush", "status") to the
 * master's control socket. Returns 0 when it answered "ok", with the
 * data lines in *lines (malloc'd, if lines is not NULL); -2 when the
 * daemon is not running (nothing printed); -1 on any other failure,
 * printed with what ("flush: ...") in front. */
int ctl_daemon_request(struct ctl *c, const char *cmd, char **lines, const char *what);
/* The same for an action: "not running" is printed too; 0 or -1. */
int ctl_daemon_action(struct ctl *c, const char *cmd, const char *what);

/* spoolview.c */
/* Queues that hold mail an admin lists (hi, lo, out, deferred, hold,
 * quarantine), in listing order. */
extern const enum spool_queue ctl_listed_queues[];
extern const size_t ctl_nlisted;

struct ctl_filter {
	int cls;          /* -1: any, else enum msg_class */
	int queue;        /* -1: any listed queue, else enum spool_queue */
	const char *from; /* sender address (case-insensitive), "" = null sender */
	const char *to;   /* a recipient still to be delivered */
};

/* One message found in the spool. */
struct ctl_msg {
	enum spool_queue q;
	struct envelope env;
};

void ctl_filter_init(struct ctl_filter *f);
/* Parse one filter option at argv[*i] (--class, --queue, --from, --to,
 * with its value in the next argument). Returns 1 when it was one (and
 * *i moved past its value), 0 when it is not a filter, -1 on a bad value
 * (printed). */
int ctl_filter_option(struct ctl_filter *f, int argc, char **argv, int *i);
int ctl_filter_match(const struct ctl_filter *f, const struct ctl_msg *m);
/* Every readable message of the listed queues (or f->queue) that
 * matches f, sorted by queue ID (arrival). Returns the count; *out is
 * malloc'd (free with ctl_msgs_free). */
size_t ctl_collect(struct ctl *c, const struct ctl_filter *f, struct ctl_msg **out);
void ctl_msgs_free(struct ctl_msg *v, size_t n);
/* Find id in the listed queues (and, when with_corrupt, corrupt/).
 * Returns the queue, or -1 when it is in none (the error is printed
 * unless quiet). With env not NULL the envelope is read into it (a
 * corrupt/ file is found by name only). */
int ctl_find(struct ctl *c, const char *id, struct envelope *env, int with_corrupt, int quiet);
/* 1 if s is a queue ID; otherwise prints "ID: not a queue ID". */
int ctl_check_id(const char *s);

/* A printable form of an octet string from the envelope (control octets
 * as %XX, see envelope_escape); malloc'd. */
char *ctl_printable(const char *s);
/* An address as an admin reads it: "<>" for the null sender. */
const char *ctl_addr_or_null(const char *s);

/* json.c: write s as a JSON string (quotes included). Valid UTF-8 is
 * kept, other octets become \u00XX. */
void json_string(FILE *fp, const char *s);
/* "key": value pairs, with a leading comma unless first. */
void json_key_str(FILE *fp, int *first, const char *key, const char *value);
void json_key_int(FILE *fp, int *first, const char *key, long long value);

/* historyctl.c, for why.c too */
struct history_params;
struct history_entry;
struct sockaddr_storage;
/* The prediction settings of the configuration. */
void ctl_history_params(const struct ctl *c, struct history_params *p);
/* A client address ("192.0.2.7", "2001:db8::1", "[...]"): 0 or -1. */
int ctl_parse_client(const char *s, struct sockaddr_storage *ss);
/* A record as a few lines: label ("host", "network"), key, counters. */
void ctl_history_print_record(const char *label, const struct history_entry *e);

/* status.c: smtpd's live gauges (stats.h, SMTPD_GAUGES_FILE): the open
 * sessions into *sessions and "HELO 2, DATA 1" into states. 0, or -1
 * when there is no fresh file (smtpd not running). */
int ctl_gauges(struct ctl *c, unsigned *sessions, char *states, size_t size);

/* stats.c, svg.c: the counters of one day (all processes added up). */
struct ctl_day {
	char day[16]; /* YYYY-MM-DD */
	uint64_t v[STAT_COUNT];
};
/* The counters of the last n days, oldest first, today last. 0, or -1
 * (printed). */
int ctl_stats_read(struct ctl *c, struct ctl_day *days, size_t n);
/* Write the chart of days[0..n) (oldest first) as SVG to fp. */
void svg_chart(FILE *fp, const struct ctl_day *days, size_t n);

/* The commands, one function each. */
int cmd_queue(struct ctl *c, int argc, char **argv);
int cmd_show(struct ctl *c, int argc, char **argv);
int cmd_delete(struct ctl *c, int argc, char **argv);
int cmd_hold(struct ctl *c, int argc, char **argv);
int cmd_release(struct ctl *c, int argc, char **argv);
int cmd_requeue(struct ctl *c, int argc, char **argv);
int cmd_flush(struct ctl *c, int argc, char **argv);
int cmd_reload(struct ctl *c, int argc, char **argv);
int cmd_log_level(struct ctl *c, int argc, char **argv);
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);
int cmd_monitor(struct ctl *c, int argc, char **argv);
int cmd_why(struct ctl *c, int argc, char **argv);
int cmd_history_show(struct ctl *c, int argc, char **argv);
int cmd_history_good(struct ctl *c, int argc, char **argv);
int cmd_history_junk(struct ctl *c, int argc, char **argv);
int cmd_history_forget(struct ctl *c, int argc, char **argv);
int cmd_history_list(struct ctl *c, int argc, char **argv);
int cmd_whitelist_add(struct ctl *c, int argc, char **argv);
int cmd_whitelist_remove(struct ctl *c, int argc, char **argv);
int cmd_whitelist_list(struct ctl *c, int argc, char **argv);

#endif
