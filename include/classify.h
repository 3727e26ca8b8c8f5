/*
 * classify.h: the timing classifier and the pre-acceptance policy.
 *
 *   src/classify/timing.c     per-connection evidence (struct timing): what
 *                             the client did in time, noted by smtpd as the
 *                             dialogue goes
 *   src/classify/verdict.c    evidence -> verdict (good / suspect / junk),
 *                             score and reasons in plain words
 *   src/classify/policy.c     verdict + history + whitelists -> accept into
 *                             hi/ or lo/, tempfail or reject
 *   src/classify/whitelist.c  whitelists (client CIDR, sender, recipient)
 *                             from the configuration or a file
 *
 * Callers: smtpd (src/smtpd/screen.c) for every connection that is not
 * exempt; the unit tests and the benchmark. Nothing here does I/O except
 * timing_rtt() (getsockopt TCP_INFO) and whitelist_load() (one file read).
 */
#ifndef TEMPOMX_CLASSIFY_H
#define TEMPOMX_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

/* The action of one timing test (config values "enforce", "log", "off"):
 * log records and logs the finding but the verdict ignores it. */
enum test_action { TEST_ENFORCE = 0, TEST_LOG = 1, TEST_OFF = 2 };

enum timing_test {
	TT_PREGREET = 0,
	TT_PIPELINING,
	TT_PATIENCE,
	TT_THINK,
	TT_NON_SMTP, /* HTTP, header lines, TLS on the plain port, NUL, bare LF */
	TT_HELO,
	TT_NTESTS
};

/* Weights: one strong finding alone makes junk. */
#define VERDICT_JUNK_SCORE 100
#define VERDICT_SUSPECT_SCORE 20
#define WEIGHT_PREGREET 100
#define WEIGHT_PIPELINING 100
#define WEIGHT_IMPATIENT 100
#define WEIGHT_NON_SMTP 100
#define WEIGHT_BARE_LF 100
#define WEIGHT_HELO 10
/* Answers sooner than the network allows: suspect (into lo), never junk
 * alone. */
#define WEIGHT_THINK 30
/* Reverse DNS: weak evidence only, below the suspect score even together. */
#define WEIGHT_RDNS_FAIL 5
#define WEIGHT_RDNS_GENERIC 5

/* Think time is only judged on links whose round trip is at least this
 * (usec): below it, scheduling noise on both hosts is as large as the
 * round trip itself. A sample is too fast when it is under half the
 * connection's minimum round trip; the finding needs THINK_FAST_MIN such
 * samples that are also at least half of all samples. */
#define THINK_MIN_RTT_USEC 2000
#define THINK_FAST_MIN 2

enum verdict_class { VERDICT_GOOD = 0, VERDICT_SUSPECT = 1, VERDICT_JUNK = 2 };

/* HELO/EHLO form findings (bits). */
#define HELO_BARE_IP 0x01       /* an IP address without brackets */
#define HELO_LITERAL_OTHER 0x02 /* an address literal that is not the client */
#define HELO_OURS 0x04          /* our own name or address */
#define HELO_INVALID 0x08       /* not a syntactically valid name */

/* Per-connection evidence. Small and fixed-size: no allocation while the
 * dialogue runs. All times are mono_usec() values. */
struct timing {
	int64_t connect_usec;
	int64_t final_greet_usec; /* 0 until the final "220 " line was queued */
	int64_t last_reply_usec;  /* the last reply was queued */
	int64_t last_flush_usec;  /* every queued reply had left for the kernel */
	uint32_t rtt_usec;        /* kernel smoothed RTT, latest, 0 if unknown */
	uint32_t rtt_min_usec;    /* the smallest RTT the kernel saw, 0 if unknown */

	/* pregreet */
	uint32_t pregreet_octets;
	int64_t pregreet_first_usec;
	uint8_t greet_split; /* the banner was sent in two parts */

	/* pipelining (RFC 2920 command groups) */
	uint8_t unauth_pipelining;
	char pipe_verbs[40]; /* "MAIL RCPT DATA" as seen in the first burst */
	char pipe_after[16]; /* what they followed ("EHLO", "end of data", ...) */
	uint8_t body_before_354;
	uint8_t after_quit; /* input followed QUIT */
	char prev_verb[16];
	uint8_t group_open; /* a pipelined command may follow now */
	uint8_t after_data; /* the end of data was the last thing received */
	uint8_t tls_fresh;  /* the TLS handshake just completed: a new start */
	uint8_t burst_open;

	/* patience */
	int64_t patience_start, patience_len; /* usec; len 0 = no delay armed */
	uint8_t impatient;                    /* 1 closed, 2 sent a command */
	int64_t impatient_usec;               /* into the delay */
	uint8_t hold_input;                   /* input arrived during the delay */
	int64_t hold_input_usec;              /* how far into the delay */

	/* think time, in usec, from our reply leaving to the next command */
	uint32_t think_n;
	int64_t think_min, think_sum;
	uint32_t think_fast;    /* samples under half the minimum round trip */
	int64_t think_fast_max; /* the slowest of those */
	uint32_t think_rtt;     /* the round trip they were judged against */

	/* reverse DNS (weak evidence) */
	uint8_t rdns_fail;    /* a name that does not confirm, or no name at all */
	uint8_t rdns_generic; /* the name looks like a dynamic or generic pool */
	char rdns_what[40];

	/* non-SMTP input */
	int non_smtp;
	char non_smtp_what[32];
	uint32_t bare_lf;

	unsigned helo_flags;
	uint8_t quit;
	uint32_t commands;
};

/* Start the evidence of a connection. */
void timing_init(struct timing *t, int64_t connect_usec);
/* Read the kernel's round-trip estimates for fd (TCP_INFO: smoothed and
 * minimum) into t (src/classify/rtt.c). */
void timing_rtt(struct timing *t, int fd);
/* The same from given values (usec, 0 = unknown): keeps the latest
 * smoothed RTT and the smallest RTT seen. */
void timing_note_rtt(struct timing *t, uint32_t srtt, uint32_t min_rtt);
void timing_note_pregreet(struct timing *t, size_t octets, int64_t usec);
void timing_note_greeting(struct timing *t, int split, int64_t usec);
void timing_note_reply(struct timing *t, int64_t usec);
/* Every queued reply has been handed to the kernel (usec): think time
 * counts from here. */
void timing_note_flushed(struct timing *t, int64_t usec);
/* A command line arrived at usec. verb: its upper-case name ("MAIL"),
 * NULL when it is not a command; early: read before the previous reply
 * went out; pipelining: our EHLO reply offered PIPELINING. Whether an
 * early command was allowed follows RFC 2920 3.1 (see timing.c). */
void timing_note_command(struct timing *t, const char *verb, int early, int bare_lf, int pipelining,
                         int64_t usec);
/* The end of data was received: the message content starts a new group
 * of commands (RFC 2920 3.1). */
void timing_note_end_of_data(struct timing *t, int pipelining);
/* The TLS handshake completed: nothing is owed to the client, the
 * dialogue starts again with EHLO (RFC 3207 4.2). */
void timing_note_tls(struct timing *t);
/* The message body was already waiting when the 354 was due. */
void timing_note_early_body(struct timing *t);
/* More input was waiting after QUIT, which must end a group. */
void timing_note_after_quit(struct timing *t);
/* Input arrived while a reply was held back (patience test). Without
 * PIPELINING, or where RFC 2920 lets no command follow, it is talking
 * during the delay; otherwise it is noted, and a command of it that turns
 * out not to be allowed there counts as talking during the delay too. */
void timing_patience_input(struct timing *t, int pipelining, int64_t usec);
/* Reverse DNS of the client: fail = no forward-confirmed name; generic =
 * the name looks like a dynamic pool; what = the name or the failure. */
void timing_note_rdns(struct timing *t, int fail, int generic, const char *what);
void timing_note_non_smtp(struct timing *t, const char *what);
void timing_note_helo(struct timing *t, unsigned helo_flags);
/* A reply is being delayed by len usec from start (patience test). */
void timing_patience_start(struct timing *t, int64_t start, int64_t len);
/* During that delay the client closed (closed=1) or sent something. */
void timing_patience_break(struct timing *t, int closed, int64_t usec);
void timing_patience_end(struct timing *t);
void timing_note_close(struct timing *t, int quit);

/* Classify a HELO/EHLO argument. client and ours are numeric addresses
 * (ours may be NULL); hostname is our name. Returns HELO_* bits. */
unsigned timing_helo_form(const char *helo, const char *client, const char *ours,
                          const char *hostname);

struct verdict {
	enum verdict_class cls;
	int score;         /* from the enforced tests */
	int logged_score;  /* what the tests in log mode would have added */
	char reasons[512]; /* "; " separated, "" when none */
};

/* Evidence -> verdict; actions[] is indexed by enum timing_test. */
void verdict_compute(const struct timing *t, const enum test_action actions[TT_NTESTS],
                     struct verdict *v);
const char *verdict_class_name(enum verdict_class c);
/* The score as a number in [0, 1] for the history's smoothed score. */
double verdict_score_sample(const struct verdict *v);

/* Whitelists. Entries: client addresses/CIDRs, sender and recipient
 * addresses ("user@example.org") or domains ("example.org", matches the
 * domain itself; ".example.org" matches sub-domains too). */
struct whitelist {
	struct cidr *clients;
	size_t nclients;
	char **senders;
	size_t nsenders;
	char **rcpts;
	size_t nrcpts;
};

/* Parse a whitelist file: one entry a line, "client 192.0.2.0/24",
 * "sender user@example.org", "recipient example.org"; '#' comments and
 * blank lines ignored. Appends to *wl. Returns 0, or -1 with "line N:
 * message" in err (entries before the bad line are kept). */
int whitelist_parse(struct whitelist *wl, const char *buf, size_t len, char *err, size_t errlen);
/* Read path and parse it. Same contract; a missing file is an error. */
int whitelist_load(struct whitelist *wl, const char *path, char *err, size_t errlen);
/* Add one entry of a kind (0 client, 1 sender, 2 recipient); -1 if bad. */
int whitelist_add(struct whitelist *wl, int kind, const char *entry);
void whitelist_free(struct whitelist *wl);
struct config;
/* Fill *wl (not initialised) from a configuration: whitelist_clients,
 * whitelist_senders, whitelist_recipients and whitelist_file. Bad
 * entries and an unreadable file are logged; the rest is used. */
void whitelist_from_config(const struct config *cf, struct whitelist *wl);
int whitelist_client(const struct whitelist *wl, const struct sockaddr *sa);
/* addr is "local@domain" (or "" for the null sender: never matches). */
int whitelist_sender(const struct whitelist *wl, const char *addr);
int whitelist_recipient(const struct whitelist *wl, const char *addr);

/* Pre-acceptance policy. */
enum new_action { NEW_ACCEPT = 0, NEW_TEMPFAIL = 1 };
enum junk_action { JUNK_TEMPFAIL = 0, JUNK_REJECT = 1, JUNK_ACCEPT = 2 };
enum timing_junk_action { TJ_REJECT = 0, TJ_TEMPFAIL = 1 };

/* History class as the policy sees it (same values as enum history_class). */
enum policy_history { POLICY_NEW = 0, POLICY_GOOD = 1, POLICY_JUNK = 2 };

struct policy_params {
	int new_action;    /* enum new_action */
	int new_log_only;  /* decide, log, accept anyway */
	int64_t new_delay; /* seconds after first seen */
	int junk_action;   /* enum junk_action */
	int junk_log_only;
	int64_t junk_delay;     /* seconds after the latest junk evidence */
	int timing_junk_action; /* enum timing_junk_action */
	int timing_log_only;
};

struct policy_input {
	enum policy_history history;
	int64_t first_seen; /* seconds, 0 = unknown */
	int64_t now;        /* seconds */
	enum verdict_class verdict;
	int whitelisted;    /* client, sender or every recipient */
	int exempt;         /* mynetworks, timing = off listener */
	int64_t junk_since; /* predicted junk: its latest junk evidence (0: first_seen) */
};

enum policy_decision { POLICY_HI = 0, POLICY_LO, POLICY_TEMPFAIL, POLICY_REJECT };

struct policy_result {
	enum policy_decision decision;
	/* What the policy would have done when a log-only mode let it pass. */
	enum policy_decision would;
	char why[160];
};

struct config;
/* The policy settings of a configuration (new_action, new_delay,
 * predicted_junk_action, junk_delay, timing_junk_action). */
void policy_params_from_config(const struct config *cf, struct policy_params *p);
struct history_params;
/* The history's prediction settings of a configuration (junk_threshold,
 * min_history, history_max_age, network_*_hosts), for smtpd and
 * tempomxctl alike. */
void history_params_from_config(const struct config *cf, struct history_params *p);
void policy_decide(const struct policy_params *p, const struct policy_input *in,
                   struct policy_result *out);
const char *policy_decision_name(enum policy_decision d);

#endif
