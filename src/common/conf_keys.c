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
     "directory for parts extracted while scanning; empty: $TMPDIR or /tmp"},
    {"schedule", CONF_ENUM, F(schedule), "absolute", 0, 0, schedule_values, "scanner",
     "order of scanning: absolute (hi first), weighted or fifo"},
    {"weight", CONF_INT, F(weight), "4", 1, 1000, NULL, "scanner",
     "schedule = weighted: hi messages scanned per lo message"},
    {"lo_max_wait", CONF_DURATION, F(lo_max_wait), "3600s", 0, 7 * 86400, NULL, "scanner",
     "a lo message waiting longer is scanned as hi; 0: never"},

    /* delivery */
    {"maildir", CONF_STRING, F(maildir), "/var/mail/%d/%u/", 0, 0, NULL, "delivery",
     "Maildir of a local recipient: %u local part, %d domain, %a address, %% a %"},
    {"maildir_crlf", CONF_BOOL, F(maildir_crlf), "yes", 0, 0, NULL, "delivery",
     "keep CRLF line ends in Maildir files"},
    {"retry_min", CONF_DURATION, F(retry_min), "300s", 1, 86400, NULL, "delivery",
     "delay before the first retry after a temporary failure, doubled on each retry"},
    {"delivery_threads", CONF_INT, F(delivery_threads), "4", 1, 256, NULL, "delivery",
     "parallel deliveries"},
};

const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);
