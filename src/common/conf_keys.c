/*
 * conf_keys.c: conf_keys[], the one table of every tempomx setting: name,
 * type, default (as written in the file), limits, the process that uses it
 * and a one-line description.
 *
 * The parser and printers (conf.c), tempomx.conf(5) and etc/tempomx.conf
 * all follow this table; the unit test fails when the man page or the
 * sample file drift from it. Adding a setting: a field in struct config
 * (include/conf.h), a row here, an entry in the man page and the sample.
 */
#include "config.h"

#include <stddef.h>

#include "conf.h"

#define F(field) offsetof(struct config, field)
#define KB 1024LL
#define MB (1024LL * 1024)
#define GB (1024LL * 1024 * 1024)

static const char *const bare_lf_values[] = {"reject", "normalize", NULL};
static const char *const scan_error_values[] = {"deliver", "hold", "quarantine", NULL};
static const char *const schedule_values[] = {"absolute", "weighted", "fifo", NULL};
static const char *const test_action_values[] = {"enforce", "log", "off", NULL};
static const char *const patience_reply_values[] = {"rcpt", "mail", "helo", NULL};
static const char *const new_action_values[] = {"accept", "tempfail", "log", NULL};
static const char *const junk_action_values[] = {"tempfail", "reject", "accept", "log", NULL};
static const char *const timing_junk_values[] = {"reject", "tempfail", "log", NULL};
static const char *const verify_failure_values[] = {"tempfail", "accept", NULL};

const struct conf_key conf_keys[] = {
    /* general */
    {"hostname", CONF_STRING, F(hostname), "", 0, 0, NULL, "all",
     "host name used in the greeting, Received: headers and bounces; empty: the system's"},
    {"user", CONF_STRING, F(user), "tempomx", 0, 0, NULL, "master",
     "unprivileged user the child processes run as"},
    {"spool_directory", CONF_PATH, F(spool_directory), DEFAULT_SPOOL_DIRECTORY, 0, 0, NULL, "all",
     "directory holding the queues and the sender history"},
    {"pid_file", CONF_PATH, F(pid_file), "", 0, 0, NULL, "master",
     "file holding the master's process ID; empty: <spool_directory>/tempomxd.pid"},
    {"control_socket", CONF_PATH, F(control_socket), "", 0, 0, NULL, "master",
     "unix socket of tempomxctl; empty: <spool_directory>/tempomxd.sock"},
    {"control_group", CONF_STRING, F(control_group), "", 0, 0, NULL, "master",
     "group that may use the control socket besides root; empty: none"},
    {"maildrop_directory", CONF_PATH, F(maildrop_directory), "", 0, 0, NULL, "smtpd",
     "where tempomx-sendmail leaves local mail for smtpd; empty: <spool_directory>-maildrop"},
    {"syslog_facility", CONF_STRING, F(syslog_facility), "mail", 0, 0, NULL, "all",
     "syslog facility: mail, daemon or local0 to local7"},
    {"shutdown_grace", CONF_DURATION, F(shutdown_grace), "10s", 0, 3600, NULL, "master",
     "time the children get to finish their work after SIGTERM"},

    /* smtpd: listeners, domains, relay control */
    {"listen", CONF_LISTEN, F(listen), "127.0.0.1:2525 [::1]:2525", 0, 0, NULL, "master",
     "addresses the SMTP server listens on, ADDR:PORT [timing=off]; lines add up"},
    {"banner", CONF_STRING, F(banner), "ESMTP tempomx", 0, 0, NULL, "smtpd",
     "text of the 220 greeting after the host name"},
    {"local_domains", CONF_DOMAINS, F(local_domains), "localhost example.test", 0, 0, NULL, "all",
     "domains delivered on this host; .example.com also matches subdomains"},
    {"relay_domains", CONF_DOMAINS, F(relay_domains), "", 0, 0, NULL, "smtpd",
     "domains accepted from anyone and relayed (backup MX); .example.com also matches subdomains"},
    {"mynetworks", CONF_CIDRS, F(mynetworks), "127.0.0.1/32 ::1/128", 0, 0, NULL, "smtpd",
     "client networks allowed to relay to any domain"},
    {"allow_address_literals", CONF_BOOL, F(allow_address_literals), "no", 0, 0, NULL, "smtpd",
     "accept recipients at address literals such as user@[192.0.2.1]"},

    /* smtpd: limits */
    {"message_size_limit", CONF_SIZE, F(message_size_limit), "10240000", 64 * KB, 4 * GB, NULL,
     "smtpd", "largest message accepted, in bytes (announced with SIZE)"},
    {"line_length_limit", CONF_INT, F(line_length_limit), "1000", 1000, 65536, NULL, "smtpd",
     "longest line accepted in DATA, in octets including CRLF"},
    {"header_size_limit", CONF_SIZE, F(header_size_limit), "102400", 1 * KB, 64 * MB, NULL, "smtpd",
     "largest header section accepted, in bytes"},
    {"max_recipients", CONF_INT, F(max_recipients), "1000", 1, 100000, NULL, "smtpd",
     "recipients accepted per message"},
    {"max_connections", CONF_INT, F(max_connections), "1000", 1, 100000, NULL, "smtpd",
     "simultaneous SMTP connections"},
    {"max_connections_per_client", CONF_INT, F(max_connections_per_client), "50", 1, 100000, NULL,
     "smtpd", "simultaneous SMTP connections from one client address"},
    {"max_errors", CONF_INT, F(max_errors), "20", 1, 1000, NULL, "smtpd",
     "errors a client may make before it is disconnected"},
    {"command_timeout", CONF_DURATION, F(command_timeout), "300s", 1, 3600, NULL, "smtpd",
     "time allowed for the next SMTP command"},
    {"data_timeout", CONF_DURATION, F(data_timeout), "300s", 1, 3600, NULL, "smtpd",
     "time allowed for the next piece of message data"},
    {"bare_lf", CONF_ENUM, F(bare_lf), "reject", 0, 0, bare_lf_values, "smtpd",
     "what to do with a bare LF in DATA: reject or normalize"},

    /* smtpd: TLS */
    {"smtp_tls", CONF_BOOL, F(smtp_tls), "yes", 0, 0, NULL, "smtpd", "offer STARTTLS"},
    {"tls_cert_file", CONF_PATH, F(tls_cert_file), "", 0, 0, NULL, "smtpd",
     "PEM certificate chain; empty: a self-signed one in <spool_directory>/tls/"},
    {"tls_key_file", CONF_PATH, F(tls_key_file), "", 0, 0, NULL, "smtpd",
     "PEM private key of tls_cert_file"},

    /* smtpd: the client's name */
    {"reverse_dns", CONF_BOOL, F(reverse_dns), "yes", 0, 0, NULL, "smtpd",
     "look up the client's name (PTR, forward-confirmed) for logs and the classifier"},
    {"reverse_dns_timeout", CONF_DURATION, F(reverse_dns_timeout), "2s", 1, 60, NULL, "smtpd",
     "time the name lookup may hold the greeting; the client is unknown after it"},

    /* spool */
    {"spool_writers", CONF_INT, F(spool_writers), "8", 1, 64, NULL, "smtpd",
     "threads that write and fsync received messages"},
    {"queue_rescan_interval", CONF_DURATION, F(queue_rescan_interval), "60s", 1, 86400, NULL, "all",
     "period of the queue directory rescan that backs up inotify"},

    /* scanner */
    {"scan", CONF_BOOL, F(scan), "yes", 0, 0, NULL, "scanner", "scan messages with libclamav"},
    {"clamav_database", CONF_PATH, F(clamav_database), "/var/lib/clamav", 0, 0, NULL, "scanner",
     "directory of the libclamav signature databases"},
    {"scan_threads", CONF_INT, F(scan_threads), "0", 0, 256, NULL, "scanner",
     "scanner worker threads; 0: one per core"},
    {"scan_max_scansize", CONF_SIZE, F(scan_max_scansize), "104857600", 1 * KB, 4 * GB, NULL,
     "scanner", "octets scanned per message, all parts and archive members together"},
    {"scan_max_filesize", CONF_SIZE, F(scan_max_filesize), "26214400", 1 * KB, 4 * GB - 1, NULL,
     "scanner", "largest single part or archive member scanned"},
    {"scan_max_recursion", CONF_INT, F(scan_max_recursion), "16", 1, 100, NULL, "scanner",
     "deepest nesting of parts and archives scanned"},
    {"scan_max_files", CONF_INT, F(scan_max_files), "10000", 1, 1000000, NULL, "scanner",
     "most parts and archive members scanned per message"},
    {"scan_error_action", CONF_ENUM, F(scan_error_action), "deliver", 0, 0, scan_error_values,
     "scanner", "message not fully scanned: deliver (with a header), hold or quarantine"},
    {"scan_tmpdir", CONF_PATH, F(scan_tmpdir), "", 0, 0, NULL, "scanner",
     "directory for parts extracted while scanning; empty: private one on /dev/shm"},
    {"schedule", CONF_ENUM, F(schedule), "absolute", 0, 0, schedule_values, "scanner",
     "order of scanning: absolute (hi first), weighted or fifo"},
    {"weight", CONF_INT, F(weight), "4", 1, 1000, NULL, "scanner",
     "schedule = weighted: hi messages scanned per lo message"},
    {"lo_max_wait", CONF_DURATION, F(lo_max_wait), "3600s", 0, 7 * 86400, NULL, "scanner",
     "a lo message waiting longer is scanned as hi; 0: never"},

    /* delivery */
    {"maildir", CONF_STRING, F(maildir), "/var/mail/%d/%u/", 0, 0, NULL, "delivery",
     "Maildir of a local recipient: %u local part, %d domain, %a address, %% a %"},
    {"maildir_crlf", CONF_BOOL, F(maildir_crlf), "no", 0, 0, NULL, "delivery",
     "keep CRLF line ends in Maildir files (no: LF, as Maildir readers expect)"},
    {"retry_min", CONF_DURATION, F(retry_min), "300s", 1, 86400, NULL, "delivery",
     "delay before the first retry after a temporary failure, doubled on each retry"},
    {"delivery_threads", CONF_INT, F(delivery_threads), "4", 1, 256, NULL, "delivery",
     "threads for Maildir writes and queue file updates (not SMTP/LMTP)"},
    {"retry_max", CONF_DURATION, F(retry_max), "3600s", 1, 7 * 86400, NULL, "delivery",
     "longest delay between two retries"},
    {"queue_lifetime", CONF_DURATION, F(queue_lifetime), "432000s", 1, 60 * 86400, NULL, "delivery",
     "a recipient still undelivered after this long bounces"},
    {"bounce_queue_lifetime", CONF_DURATION, F(bounce_queue_lifetime), "432000s", 1, 60 * 86400,
     NULL, "delivery", "a delivery report still undelivered after this long is dropped"},
    {"max_hops", CONF_INT, F(max_hops), "50", 1, 1000, NULL, "all",
     "mail with more Received: headers is refused or bounced as a mail loop"},
    {"default_transport", CONF_STRING, F(default_transport), "mx", 0, 0, NULL, "delivery",
     "transport of a domain not in the transport table"},
    {"transport", CONF_STRING, F(transport), "", 0, 0, NULL, "delivery",
     "transport table: items domain=transport; repeated lines add up"},
    {"dns_servers", CONF_STRING, F(dns_servers), "", 0, 0, NULL, "all",
     "DNS servers for MX and reverse lookups (addr or [addr]:port, comma separated); empty: "
     "resolv.conf"},
    {"smtp_connect_timeout", CONF_DURATION, F(smtp_connect_timeout), "30s", 1, 3600, NULL,
     "delivery", "outbound SMTP/LMTP: time allowed to connect"},
    {"smtp_command_timeout", CONF_DURATION, F(smtp_command_timeout), "300s", 1, 3600, NULL,
     "delivery", "outbound SMTP/LMTP: wait for the greeting or a command reply"},
    {"smtp_data_timeout", CONF_DURATION, F(smtp_data_timeout), "600s", 1, 3600, NULL, "delivery",
     "outbound SMTP/LMTP: wait for the reply to the final dot"},
    {"max_connections_per_destination", CONF_INT, F(max_connections_per_destination), "20", 0,
     10000, NULL, "delivery",
     "outbound SMTP/LMTP connections open at once to one destination; 0: no limit"},
    {"max_outbound_connections", CONF_INT, F(max_outbound_connections), "100", 0, 10000, NULL,
     "delivery", "outbound SMTP/LMTP connections open at once in all; 0: no limit"},
    {"delay_warning_time", CONF_DURATION, F(delay_warning_time), "0s", 0, 30 * 86400, NULL,
     "delivery", "warn the sender once when mail is still undelivered after this long; 0: never"},
    {"smtp_connection_reuse_time", CONF_DURATION, F(smtp_connection_reuse_time), "5s", 0, 300, NULL,
     "delivery", "outbound SMTP/LMTP: keep a session this long for the next message; 0: off"},
    {"tls_policy", CONF_STRING, F(tls_policy), "may", 0, 0, NULL, "delivery",
     "outbound STARTTLS: none, may, encrypt or verify, then domain=policy exceptions"},
    {"tls_ca_file", CONF_PATH, F(tls_ca_file), "", 0, 0, NULL, "delivery",
     "CA certificates for tls_policy verify; empty: the system store"},
    {"recipients", CONF_PATH, F(recipients), "", 0, 0, NULL, "smtpd",
     "file of valid addresses in the local domains; others get 550 5.1.1 at RCPT"},
    {"relay_recipients", CONF_PATH, F(relay_recipients), "", 0, 0, NULL, "smtpd",
     "file of valid addresses in the relay domains; others get 550 5.1.1 at RCPT"},
    {"recipient_verify", CONF_STRING, F(recipient_verify), "none", 0, 0, NULL, "smtpd",
     "ask the mail store (local domains) or the primary MX (relay domains) about each "
     "recipient at RCPT: none, lmtp:[addr]:port, lmtp:unix:/path or smtp:[addr]:port"},
    {"recipient_verify_timeout", CONF_DURATION, F(recipient_verify_timeout), "10s", 1, 300, NULL,
     "smtpd", "time the mail store has to answer a recipient verification"},
    {"recipient_verify_positive_ttl", CONF_DURATION, F(recipient_verify_positive_ttl), "3600s", 0,
     7 * 86400, NULL, "smtpd", "how long an address the store knows is remembered; 0: not at all"},
    {"recipient_verify_negative_ttl", CONF_DURATION, F(recipient_verify_negative_ttl), "300s", 0,
     7 * 86400, NULL, "smtpd",
     "how long an address the store refused is remembered; 0: not at all"},
    {"recipient_verify_cache_size", CONF_INT, F(recipient_verify_cache_size), "10000", 0, 10000000,
     NULL, "smtpd", "addresses remembered at most (least recently used forgotten first)"},
    {"recipient_verify_failure", CONF_ENUM, F(recipient_verify_failure), "tempfail", 0, 0,
     verify_failure_values, "smtpd",
     "when the store cannot be asked: tempfail (451 4.4.3) or accept the recipient"},
    /* smtpd: timing classifier, sender history, policy, admission control */
    {"greet_pause", CONF_DURATION, F(greet_pause), "3s", 0, 60, NULL, "smtpd",
     "pause inside the split banner for clients without a good history; 0: whole banner at once"},
    {"pregreet_action", CONF_ENUM, F(pregreet_action), "enforce", 0, 0, test_action_values, "smtpd",
     "pregreet test: enforce, log or off"},
    {"pipelining_action", CONF_ENUM, F(pipelining_action), "enforce", 0, 0, test_action_values,
     "smtpd", "unauthorised pipelining test: enforce, log or off"},
    {"patience_delay", CONF_DURATION, F(patience_delay), "5s", 0, 20, NULL, "smtpd",
     "delay of one reply for clients without a good history; 0: no delay"},
    {"patience_action", CONF_ENUM, F(patience_action), "enforce", 0, 0, test_action_values, "smtpd",
     "patience test: enforce, log or off"},
    {"patience_reply", CONF_ENUM, F(patience_reply), "rcpt", 0, 0, patience_reply_values, "smtpd",
     "the reply delayed by the patience test: helo, mail or rcpt (the first of the session)"},
    {"think_time_action", CONF_ENUM, F(think_time_action), "enforce", 0, 0, test_action_values,
     "smtpd", "think-time test (answers faster than the round trip): enforce, log or off"},
    {"non_smtp_action", CONF_ENUM, F(non_smtp_action), "enforce", 0, 0, test_action_values, "smtpd",
     "non-SMTP input and bare LF test: enforce, log or off"},
    {"helo_action", CONF_ENUM, F(helo_action), "enforce", 0, 0, test_action_values, "smtpd",
     "HELO/EHLO form test (weak evidence): enforce, log or off"},
    {"new_action", CONF_ENUM, F(new_action), "accept", 0, 0, new_action_values, "smtpd",
     "client without history: accept (into lo), tempfail until new_delay, or log"},
    {"new_delay", CONF_DURATION, F(new_delay), "14400s", 0, 30 * 86400, NULL, "smtpd",
     "new_action = tempfail: how long after first seen a new client is tempfailed"},
    {"predicted_junk_action", CONF_ENUM, F(predicted_junk_action), "tempfail", 0, 0,
     junk_action_values, "smtpd",
     "predicted junk: tempfail until junk_delay, reject, accept (into lo) or log"},
    {"junk_delay", CONF_DURATION, F(junk_delay), "43200s", 0, 30 * 86400, NULL, "smtpd",
     "predicted_junk_action = tempfail: how long after first seen"},
    {"timing_junk_action", CONF_ENUM, F(timing_junk_action), "reject", 0, 0, timing_junk_values,
     "smtpd", "timing verdict junk: reject (554 5.7.1), tempfail (451 4.7.1) or log"},
    {"junk_threshold", CONF_INT, F(junk_threshold), "50", 0, 100, NULL, "smtpd",
     "percent of junk observations above which a client is predicted junk"},
    {"min_history", CONF_INT, F(min_history), "3", 1, 1000000, NULL, "smtpd",
     "observations needed before the junk share is trusted"},
    {"network_junk_hosts", CONF_INT, F(network_junk_hosts), "3", 1, 1000000, NULL, "smtpd",
     "distinct junk hosts of a network before it predicts junk for its new hosts"},
    {"network_good_hosts", CONF_INT, F(network_good_hosts), "3", 1, 1000000, NULL, "smtpd",
     "distinct good hosts of a network before it vouches for its new hosts"},
    {"network_overwhelming_hosts", CONF_INT, F(network_overwhelming_hosts), "10", 1, 1000000, NULL,
     "smtpd",
     "junk hosts (90% or more of its hosts) for a network to outweigh a host's own "
     "young history"},
    {"history_max_age", CONF_DURATION, F(history_max_age), "2592000s", 0, 3650 * 86400LL, NULL,
     "smtpd", "history records unseen this long are ignored and expire; 0: never"},
    {"history_v4_prefix", CONF_INT, F(history_v4_prefix), "24", 8, 32, NULL, "smtpd",
     "IPv4 prefix length of the history aggregate (32: none)"},
    {"history_v6_prefix", CONF_INT, F(history_v6_prefix), "64", 16, 128, NULL, "smtpd",
     "IPv6 prefix length of the history aggregate (128: none)"},
    {"history_map_size", CONF_SIZE, F(history_map_size), "67108864", 1 * MB, 64 * GB, NULL, "smtpd",
     "initial size of the history store map (it grows by itself)"},
    {"whitelist_clients", CONF_CIDRS, F(whitelist_clients), "", 0, 0, NULL, "smtpd",
     "client addresses/networks exempt from every test, delay and policy refusal"},
    {"whitelist_senders", CONF_STRING, F(whitelist_senders), "", 0, 0, NULL, "smtpd",
     "sender addresses or domains that skip the tests and policy (can be forged)"},
    {"whitelist_recipients", CONF_STRING, F(whitelist_recipients), "", 0, 0, NULL, "smtpd",
     "recipient addresses or domains whose mail skips the policy (e.g. postmaster)"},
    {"whitelist_file", CONF_PATH, F(whitelist_file), "", 0, 0, NULL, "smtpd",
     "file of whitelist entries, reloaded on SIGHUP"},
    {"queue_max", CONF_INT, F(queue_max), "10000", 0, 100000000, NULL, "smtpd",
     "messages waiting for the scanner above which lo-bound clients are tempfailed (hi-bound above "
     "twice this); 0: no limit"},
    {"spool_min_free", CONF_SIZE, F(spool_min_free), "52428800", 0, 1024 * GB, NULL, "smtpd",
     "free disk in the spool below which every new transaction is tempfailed"},
};

const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);
