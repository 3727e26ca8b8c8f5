/*
 * history.h: the sender-history store (LMDB in <spool>/db/) and the
 * prediction made from it: new, good or predicted junk.
 *
 *   src/history/store.c    environment, transactions, lookup, record
 *   src/history/record.c   key and record format, event application
 *   src/history/admin.c    admin feedback, forgetting, listing, expiry sweep
 *   src/history/predict.c  new / good / junk from a host record and its
 *                          network (aggregate) record
 *
 * Callers: smtpd (lookup + predict before accepting, record after each
 * decision, from a worker thread because a commit fsyncs), the scanner
 * (record a virus hit), tempomxctl (lookup, feedback, listing) and whoever
 * runs the periodic sweep (one process is enough).
 *
 * Keys. Every client address is kept twice: once for the host (IPv4 /32,
 * IPv6 /128) and once for its network, the aggregate (IPv4 /24 and IPv6
 * /64 by default; history_v4_prefix and history_v6_prefix). A key is
 * binary: one family byte (4 or 6), one prefix-length byte, then the 4 or
 * 16 address bytes with the bits past the prefix cleared, so each lookup is
 * one mdb_get per key. IPv4-mapped IPv6 clients (::ffff:a.b.c.d) are IPv4.
 *
 * Records are struct history_record stored as is, in host byte order: a
 * store is not portable between machines of different endianness. The
 * version byte comes first; a value of another size or version is treated
 * as absent (and removed by the sweep), never trusted, except version 1
 * (80 bytes, before the network's host counts), which is read as version 2
 * with no host counted and its last junk at its last_seen.
 *
 * Networks count hosts, not only mail: each host counts in its network's
 * record as a good host or a junk host (history_rec_vote()), and the
 * counts change in the same transaction as the host's record. The
 * prediction for a host without mail of its own rests on how many
 * distinct hosts of its network were good or junk, so one host's
 * repeated sessions never speak for its neighbours.
 *
 * Processes and threads. Open the store with history_open() in each
 * process AFTER fork(): an LMDB environment must never be used across a
 * fork. A child that inherited a handle must not use it; history_close()
 * on such a handle only frees memory. Several processes may open the same
 * store at once; LMDB serialises writers (one write transaction at a time
 * across all of them) and readers never block. Within a process one handle
 * may be shared by any number of threads: the environment is opened with
 * MDB_NOTLS and every call runs its own short transaction, so no
 * transaction is ever held between calls or handed between threads.
 *
 * Errors. Every function returns a status and logs the cause; none aborts
 * on a bad or unreadable store (only out of memory is fatal). A failed history write must never
 * lose mail: callers log and carry on with the message.
 */
#ifndef TEMPOMX_HISTORY_H
#define TEMPOMX_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

#define HISTORY_RECORD_VERSION 2

/* Suggested defaults for the configuration keys of the same names. */
#define HISTORY_DEFAULT_V4_PREFIX 24
#define HISTORY_DEFAULT_V6_PREFIX 64
#define HISTORY_DEFAULT_MAX_AGE (30 * 86400) /* history_max_age, seconds */
#define HISTORY_DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define HISTORY_DEFAULT_JUNK_THRESHOLD 0.5  /* junk_threshold */
#define HISTORY_DEFAULT_MIN_HISTORY 3       /* min_history */
#define HISTORY_DEFAULT_NET_JUNK_HOSTS 3    /* network_junk_hosts */
#define HISTORY_DEFAULT_NET_GOOD_HOSTS 3    /* network_good_hosts */
#define HISTORY_DEFAULT_NET_OVERWHELMING 10 /* network_overwhelming_hosts */

/* Weight of a new timing-score sample in the smoothed score. */
#define HISTORY_SCORE_ALPHA 0.2

/* history_feedback() creates at most this many records for one network. */
#define HISTORY_FEEDBACK_MAX_CREATE 65536

/* Admin feedback, also stored in history_record.admin (0 = none). */
enum history_feedback {
	HISTORY_FEEDBACK_NONE = 0,
	HISTORY_FEEDBACK_GOOD = 1,
	HISTORY_FEEDBACK_JUNK = 2,
};

/*
 * One record, 96 bytes, host byte order. Counters saturate at UINT32_MAX.
 * "Observations" for the junk share (see predict.c): good = clean - virus
 * + admin_good, junk = junk + virus + admin_junk.
 */
struct history_record {
	uint8_t version;        /* HISTORY_RECORD_VERSION */
	uint8_t admin;          /* latest admin verdict aimed at this key */
	uint16_t reserved;      /* 0 */
	uint32_t sessions;      /* SMTP sessions seen */
	int64_t first_seen;     /* seconds since the epoch */
	int64_t last_seen;      /* seconds; expiry counts from here */
	int64_t admin_at;       /* when .admin was set, 0 = never */
	uint32_t accepted_good; /* messages accepted into hi/ */
	uint32_t accepted_lo;   /* messages accepted into lo/ */
	uint32_t clean;         /* accepted without a junk timing verdict */
	uint32_t junk;          /* timing verdict junk */
	uint32_t virus;         /* the scanner found a virus */
	uint32_t tempfails;     /* refused with 4xx by the policy */
	uint32_t rejects;       /* refused with 5xx by the policy */
	uint32_t admin_good;    /* admin feedback "good" (this key or a host in it) */
	uint32_t admin_junk;    /* admin feedback "junk" */
	uint32_t score_n;       /* timing-score samples */
	float score;            /* smoothed timing score (EWMA) */
	/* version 2 */
	uint32_t good_hosts; /* network records: hosts counted good */
	uint32_t junk_hosts; /* network records: hosts counted junk */
	uint32_t reserved2;  /* 0 */
	int64_t last_junk;   /* seconds: the latest junk observation, 0 = none */
};

/* How a host counts in its network: by its admin verdict if it has one,
 * else junk while more than half of its judged mail was junk, good while
 * it has judged mail and at most half was junk, not at all without. */
enum history_vote { HISTORY_VOTE_NONE = 0, HISTORY_VOTE_GOOD = 1, HISTORY_VOTE_JUNK = 2 };
enum history_vote history_rec_vote(const struct history_record *r);

/* A record as found by a lookup or the listing. */
struct history_entry {
	int present;     /* 0: no record, or expired, or unreadable */
	struct cidr net; /* the key: host or aggregate network */
	struct history_record rec;
};

/* What happened, for history_record(): set the bits of the counters to
 * bump. One event per decision: smtpd records a session with its outcome
 * (HI or LO per accepted message, TEMPFAIL or REJECT per refusal, JUNK
 * when the timing verdict was junk, SCORE with the timing score); the
 * scanner records VIRUS alone for a message already counted as accepted.
 * HI or LO without JUNK and VIRUS also counts the message as clean. */
#define HISTORY_EV_SESSION 0x01
#define HISTORY_EV_HI 0x02
#define HISTORY_EV_LO 0x04
#define HISTORY_EV_TEMPFAIL 0x08
#define HISTORY_EV_REJECT 0x10
#define HISTORY_EV_JUNK 0x20
#define HISTORY_EV_VIRUS 0x40
#define HISTORY_EV_SCORE 0x80 /* .score is a sample to smooth in */

struct history_event {
	const struct sockaddr *addr; /* the client */
	unsigned flags;              /* HISTORY_EV_* */
	double score;                /* timing score sample (non-finite: ignored) */
	int64_t now;                 /* seconds since the epoch */
};

enum history_class {
	HISTORY_NEW = 0,  /* nothing (usable) known */
	HISTORY_GOOD = 1, /* history says good, or too little to say junk */
	HISTORY_JUNK = 2, /* predicted junk */
};

struct history_params {
	double junk_threshold; /* junk share strictly above this: junk (0..1) */
	uint32_t min_history;  /* observations before the share is trusted */
	int64_t max_age;       /* ignore records unseen this long (0: never) */
	/* A network predicts junk from at least this many distinct junk
	 * hosts, good from at least this many good ones (0: the defaults),
	 * and overrides a host's own young history only from this many junk
	 * hosts making at least 90% of its hosts. */
	uint32_t net_junk_hosts;
	uint32_t net_good_hosts;
	uint32_t net_overwhelming;
};

struct history_prediction {
	enum history_class cls;
	int from_aggregate;    /* the decision rests on the network record */
	int64_t first_seen;    /* earliest first_seen of host/network, 0 if none */
	int64_t junk_since;    /* junk: the latest junk evidence (junk mail or an
	                          admin verdict) of the record it rests on */
	uint64_t observations; /* of the record the decision rests on */
	double junk_share;     /* of that record, 0 when no observations */
	char reason[160];      /* for the log line and the Received/X- header */
};

struct history;

/* Open (creating it and the directory if needed) the store in directory
 * path, normally <spool_directory>/db. map_size is the initial map size in
 * bytes (0: HISTORY_DEFAULT_MAP_SIZE, at least 1 MiB); the map doubles by
 * itself when full. Returns NULL on failure (unreadable, truncated or
 * corrupt store, permissions) with the message in err, or logged when err
 * is NULL. The environment uses MDB_NOMETASYNC (see store.c): a system
 * crash may undo the last transaction, never corrupt the store. */
struct history *history_open(const char *path, size_t map_size, char *err, size_t errlen);
void history_close(struct history *h);

/* Aggregate prefix lengths (IPv4 8..32, IPv6 16..128; the full length
 * turns aggregation off) and the expiry age (0: never expire). Call once
 * after opening; the defaults are the HISTORY_DEFAULT_* values. Returns -1
 * for a value out of range (nothing changed). */
int history_configure(struct history *h, int v4_prefix, int v6_prefix, int64_t max_age);

/* Read the host record and the aggregate record of addr. Expired or
 * unreadable records come back with present = 0. Returns 0, or -1 (both
 * absent) on an error or an unsupported address family. */
int history_lookup(struct history *h, const struct sockaddr *addr, int64_t now,
                   struct history_entry *host, struct history_entry *agg);

/* Apply one event to the host and the aggregate record in one write
 * transaction (an expired record starts afresh). Returns 0 or -1. */
int history_record(struct history *h, const struct history_event *ev);
/* The same for n events in one transaction (one fsync for all). */
int history_record_many(struct history *h, const struct history_event *ev, size_t n);

/* Admin feedback on a host or a network, in one write transaction: every
 * unexpired record inside net gets the verdict; when net is a host, its
 * aggregate counts the feedback too (without taking the verdict); when
 * none exists yet, the records that lookups will consult are created (the
 * aggregates inside net, or its hosts when net is narrower than an
 * aggregate), at most HISTORY_FEEDBACK_MAX_CREATE of them. *updated (if
 * not NULL) is the number of records written. Returns 0 or -1. */
int history_feedback(struct history *h, const struct cidr *net, enum history_feedback fb,
                     int64_t now, size_t *updated);

/* Delete every record inside net (the host itself, or every host and
 * network key inside a network; a host's aggregate is left alone), in one
 * write transaction. *removed (if not NULL) is the count. Returns 0 or -1. */
int history_forget(struct history *h, const struct cidr *net, size_t *removed);

/* Remove records unseen for max_age seconds (and unreadable ones),
 * examining at most max_records records per call and resuming where the
 * previous call of this process stopped. Returns 1 when the pass reached
 * the end of the store (the next call starts again at the beginning), 0
 * when more remains, -1 on error. *removed (if not NULL) is the count. */
int history_sweep(struct history *h, int64_t now, int64_t max_age, size_t max_records,
                  size_t *removed);

/* Call fn for every unexpired record (inside within, unless NULL), in key
 * order (IPv4 before IPv6, then by prefix length, then by address). text
 * is the key as CIDR ("192.0.2.0/24", "2001:db8::1/128"). No transaction
 * is open during fn, so it may call any history function. fn returns
 * nonzero to stop. Returns the number of records passed to fn, or -1. */
long history_iterate(struct history *h, const struct cidr *within, int64_t now,
                     int (*fn)(const char *text, const struct history_entry *e, void *arg),
                     void *arg);

/* Number of records and current map size (for the admin and benchmarks). */
int history_stat(struct history *h, size_t *records, size_t *map_size);

/* Format a key network as CIDR text; size >= HISTORY_NET_TEXT. */
#define HISTORY_NET_TEXT 64
void history_net_format(const struct cidr *net, char *out, size_t size);

/* Predict the class of a client from its host and aggregate entries (as
 * filled by history_lookup(); either may be absent). See predict.c for
 * the rules. Fills *out (if not NULL) and returns the class. */
enum history_class history_predict(const struct history_entry *host,
                                   const struct history_entry *agg, const struct history_params *p,
                                   int64_t now, struct history_prediction *out);
const char *history_class_name(enum history_class c);

#endif
