/*
 * log.h: logging for every tempomx process.
 *
 * Lines go to syslog (facility from the configuration, normally mail) or,
 * with tempomxd -d, to stderr with a timestamp and the process name. One
 * event, one line, in Postfix's shape: "QUEUEID: key=value, key=value".
 * fatal() and fatalx() are for broken invariants and out-of-memory only;
 * bad input from the network or from a file never ends a process.
 */
#ifndef TEMPOMX_LOG_H
#define TEMPOMX_LOG_H

#include <stdarg.h>

/* Open the log. ident is the process name ("tempomxd/smtpd"), to_stderr
 * selects stderr instead of syslog, verbose enables log_debug(). */
void log_init(const char *ident, int to_stderr, int verbose);
/* Change the process name shown in each line (after fork). */
void log_set_ident(const char *ident);
/* Select the syslog facility by name ("mail", "local0".."local7");
 * returns -1 for an unknown name. */
int log_set_facility(const char *name);
int log_verbose(void);
/* Make the verbosity one value shared with every process forked after
 * this call (an anonymous shared page): log_set_verbose() in any of them
 * then changes it in all. Returns 0, or -1 (each keeps its own). */
int log_share_verbosity(void);
/* 0: no log_debug() lines; 1 or more: log_debug() too. */
void log_set_verbose(int verbose);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As log_warnx, with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log and exit(1); fatal() appends strerror(errno). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
