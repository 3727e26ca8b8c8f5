/*
 * conf.h: the configuration of every tempomx process.
 *
 * One table (conf_keys[] in src/common/conf.c) lists every key: its name,
 * type, default, limits, the process that uses it and a one-line
 * description. The parser, "tempomxd -n" and the check that tempomx.conf(5)
 * documents every key all read that table. Adding a key = one field in
 * struct config + one row in the table + one entry in the man page.
 *
 * File syntax: "key = value" lines, '#' starts a comment (at line start or
 * after white space), blank lines ignored, a line that starts with white
 * space continues the previous value. List keys take white-space or comma
 * separated items; "listen" may be given on several lines (they add up).
 * An unknown key or a bad value is an error "file:line: message".
 */
#ifndef TEMPOMX_CONF_H
#define TEMPOMX_CONF_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

struct strlist {
	char **v;
	size_t n;
};

struct cidrlist {
	struct cidr *v;
	size_t n;
};

/* One "listen" line: "ADDR:PORT [option ...]". Options: "timing=off"
 * (exempt from the timing classifier, e.g. a submission port). */
struct listen_conf {
	char *text; /* as written, for logs and -n */
	struct sockaddr_storage ss;
	socklen_t sslen;
	int timing; /* 1 = classifier on (default), 0 = off */
};

struct listenlist {
	struct listen_conf *v;
	size_t n;
};

enum bare_lf_mode { BARE_LF_REJECT = 0, BARE_LF_NORMALIZE = 1 };
/* scan_error_action: what happens to a message that could not be fully
 * scanned (a limit was hit, an encrypted archive, an engine error). */
enum scan_error_action { ERROR_ACTION_DELIVER = 0, ERROR_ACTION_HOLD, ERROR_ACTION_QUARANTINE };
/* schedule: the order in which the scanner takes mail from hi/ and lo/. */
enum schedule_mode { SCHEDULE_ABSOLUTE = 0, SCHEDULE_WEIGHTED, SCHEDULE_FIFO };
/* recipient_verify_failure: the answer to a RCPT the mail store could not
 * be asked about. */
enum verify_failure_mode { VERIFY_FAILURE_TEMPFAIL = 0, VERIFY_FAILURE_ACCEPT };

struct config {
	/* general */
	char *hostname; /* default: the system's host name */
	char *user;     /* unprivileged user the children run as */
	char *spool_directory;
	char *pid_file;           /* default: <spool_directory>/tempomxd.pid */
	char *control_socket;     /* default: <spool_directory>/tempomxd.sock */
	char *control_group;      /* "" = root's group only */
	char *maildrop_directory; /* default: <spool_directory>-maildrop */
	char *syslog_facility;
	int64_t shutdown_grace; /* seconds */

	/* smtpd: listeners, domains, relay control */
	struct listenlist listen;
	char *banner; /* text after "220 hostname " */
	struct strlist local_domains;
	struct strlist relay_domains;
	struct cidrlist mynetworks;
	int allow_address_literals;
	int allow_routing_characters;

	/* smtpd: limits */
	uint64_t message_size_limit;
	int64_t line_length_limit;
	uint64_t header_size_limit;
	int64_t max_recipients;
	int64_t max_connections;
	int64_t max_connections_per_client;
	int64_t max_errors;
	int64_t junk_command_limit; /* 0 = none */
	int64_t session_time_limit; /* seconds; 0 = none */
	int64_t data_min_rate;      /* octets per second; 0 = none */
	int64_t connection_limit_v4_prefix;
	int64_t connection_limit_v6_prefix;
	int64_t stress_threshold; /* percent of max_connections; 0 = never */
	int64_t stress_timeout;   /* seconds */
	int64_t stress_max_connections_per_client;
	int64_t tls_handshake_timeout; /* seconds */
	int64_t command_timeout;       /* seconds */
	int64_t data_timeout;          /* seconds */
	int bare_lf;                   /* enum bare_lf_mode */

	/* smtpd: TLS */
	int smtp_tls;
	char *tls_cert_file; /* "" = self-signed in <spool>/tls/ */
	char *tls_key_file;

	/* smtpd: the client's name (src/smtpd/rdns.c) */
	int reverse_dns;             /* look it up, forward-confirmed */
	int64_t reverse_dns_timeout; /* seconds */

	/* spool */
	int64_t spool_writers;
	int64_t queue_rescan_interval; /* seconds */

	/* scanner */
	int scan;
	char *clamav_database; /* directory of the signature databases */
	int64_t scan_threads;  /* 0: one per core */
	uint64_t scan_max_scansize;
	uint64_t scan_max_filesize;
	int64_t scan_max_recursion;
	int64_t scan_max_files;
	int scan_error_action; /* enum scan_error_action */
	char *scan_tmpdir;     /* "" = a private directory on /dev/shm */
	int schedule;          /* enum schedule_mode */
	int64_t weight;        /* weighted: hi messages per lo message */
	int64_t lo_max_wait;   /* seconds; 0 = lo mail is never promoted */

	/* delivery */
	char *maildir;      /* template: %u local part, %d domain, %a address, %% */
	int maildir_create; /* smtpd: accept local users without a Maildir yet */
	int maildir_crlf;   /* keep CRLF line ends in Maildir files */
	int64_t retry_min;  /* seconds */
	int64_t delivery_threads;
	int64_t retry_max;             /* seconds */
	int64_t queue_lifetime;        /* seconds */
	int64_t bounce_queue_lifetime; /* seconds: for delivery reports */
	int64_t max_hops;
	char *default_transport; /* see src/deliver/route.c */
	char *transport;         /* "domain=transport" items */
	char *dns_servers;       /* c-ares CSV, "" = resolv.conf */
	int64_t smtp_connect_timeout;
	int64_t smtp_command_timeout;
	int64_t smtp_data_timeout;
	int64_t max_connections_per_destination; /* 0 = no limit */
	int64_t max_outbound_connections;        /* 0 = no limit */
	int64_t delay_warning_time;              /* seconds, 0 = off */
	int64_t smtp_connection_reuse_time;      /* seconds, 0 = off */
	char *tls_policy;       /* "may [domain=policy ...]" (src/deliver/route.c) */
	char *tls_ca_file;      /* "" = system store */
	char *recipients;       /* "" = no check */
	char *relay_recipients; /* "" = no check */
	/* smtpd: recipient verification against the mail store (src/smtpd/verify.c) */
	char *recipient_verify;                /* "none" or an lmtp: transport */
	int64_t recipient_verify_timeout;      /* seconds */
	int64_t recipient_verify_positive_ttl; /* seconds, 0 = not cached */
	int64_t recipient_verify_negative_ttl; /* seconds, 0 = not cached */
	int64_t recipient_verify_cache_size;   /* entries, 0 = no cache */
	int recipient_verify_failure;          /* enum verify_failure_mode */

	/* smtpd: timing classifier, history, policy, admission (src/classify) */
	int64_t greet_pause;
	int pregreet_action;
	int pipelining_action;
	int64_t patience_delay;
	int patience_action;
	int patience_reply;
	int think_time_action;
	int non_smtp_action;
	int helo_action;
	int new_action;
	int64_t new_delay;
	int predicted_junk_action;
	int64_t junk_delay;
	int timing_junk_action;
	int64_t junk_threshold;
	int64_t min_history;
	int64_t network_junk_hosts;
	int64_t network_good_hosts;
	int64_t network_overwhelming_hosts;
	int64_t history_max_age;
	int64_t history_v4_prefix;
	int64_t history_v6_prefix;
	uint64_t history_map_size;
	char *history_store;               /* "lmdb", redis://..., unix:... */
	char *history_redis_password_file; /* "" = no AUTH */
	int64_t history_redis_timeout;     /* milliseconds */
	struct cidrlist whitelist_clients;
	char *whitelist_senders;
	char *whitelist_recipients;
	char *whitelist_file;
	int64_t queue_max;
	uint64_t spool_min_free;
};

enum conf_type {
	CONF_STRING,
	CONF_PATH,     /* string; must be absolute when non-empty */
	CONF_INT,      /* int64_t within [min, max] */
	CONF_SIZE,     /* uint64_t bytes, k/M/G suffixes */
	CONF_DURATION, /* int64_t seconds, s/m/h/d/w suffixes */
	CONF_BOOL,     /* int */
	CONF_ENUM,     /* int, index into enum_values */
	CONF_DOMAINS,  /* struct strlist of valid domains, lower-cased */
	CONF_CIDRS,    /* struct cidrlist */
	CONF_LISTEN,   /* struct listenlist; repeated lines add up */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;                  /* offsetof(struct config, field) */
	const char *def;                /* default, as it would be written in the file */
	int64_t min, max;               /* CONF_INT, CONF_DURATION, CONF_SIZE limits */
	const char *const *enum_values; /* CONF_ENUM, NULL-terminated */
	const char *process;            /* "all", "smtpd", "scanner", "delivery", "master" */
	const char *description;
};

extern const struct conf_key conf_keys[];
extern const size_t conf_nkeys;

/* Fill *cf with the built-in defaults (*cf need not be initialised). */
void conf_defaults(struct config *cf);
/* Read path over the defaults: *cf need not be initialised, it is filled
 * with the defaults first. Returns 0, or -1 with "path:line: message"
 * (or "path: strerror") in err. On error *cf is freed and zeroed.
 * The first "listen" line of the file replaces the built-in listeners. */
int conf_load(const char *path, struct config *cf, char *err, size_t errlen);
/* Parse configuration text (for tests and fuzzing); name is used in
 * messages. Same contract as conf_load(). */
int conf_parse_buffer(const char *name, const char *text, size_t len, struct config *cf, char *err,
                      size_t errlen);
/* Apply one "key=value" override (tempomxd -o). Same error contract; the
 * error names "-o". Call after conf_load(). The value is taken as is (no
 * comments), unless it is one double-quoted string; it replaces the old
 * value, for listen too. */
int conf_set(struct config *cf, const char *assignment, char *err, size_t errlen);
/* Checks across keys (e.g. listen must not be empty) after all overrides;
 * fills in the derived defaults (hostname, pid_file, control_socket,
 * maildrop_directory). Same error contract:
 * on error *cf is freed and zeroed. */
int conf_finish(struct config *cf, char *err, size_t errlen);
/* Write "key = value" for every key whose value differs from its default. */
void conf_print_changed(const struct config *cf, FILE *fp);
/* Write every key with its current value (tempomxd -nn). */
void conf_print_all(const struct config *cf, FILE *fp);
/* Free everything *cf holds and zero it; safe on a zeroed config. */
void conf_free(struct config *cf);
/* The key named name, or NULL. */
const struct conf_key *conf_find_key(const char *name);
/* The value of one key as it would be written in the file, unquoted
 * (allocated; the caller frees it). Two configs hold the same value for a
 * key when these strings are equal. */
char *conf_value_string(const struct config *cf, const struct conf_key *k);

/* Helpers used by every process. */
int conf_is_local_domain(const struct config *cf, const char *domain);
int conf_is_relay_domain(const struct config *cf, const char *domain);
int conf_in_mynetworks(const struct config *cf, const struct sockaddr *sa);

#endif
