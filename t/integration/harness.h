/*
 * harness.h: shared helpers for the integration tests in t/integration/.
 *
 * The tests run the real tempomxd (path from $TEMPOMXD, set by make check)
 * on a free loopback port with a fresh temporary directory holding the
 * configuration file, the spool, the Maildirs and the daemon's log
 * (its stderr in -d mode). They talk to it with raw sockets bound to a
 * chosen source address (127.0.0.2 is outside the default mynetworks) and
 * with real clients run as external commands, then look at what a user
 * would see: reply codes, Maildir files, spool files, log lines.
 *
 * Plain C, libc and Criterion only: the suite must not depend on the code
 * it tests. Every wait is bounded in time; the harness only ever signals
 * processes it started (the daemon by PID, and that daemon's children when
 * it has to be killed).
 *
 * Criterion runs each test in its own process: call h_setup() from the
 * suite's .init and h_teardown() from its .fini so that a test that fails
 * half-way still stops its daemons and removes its directories.
 */
#ifndef TMX_ITEST_HARNESS_H
#define TMX_ITEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#define H_PATH 512
#define H_MAXKEYS 64
#define H_REPLY 65536

/* One daemon under test, with its own directory, config and port. */
struct h_daemon {
	char dir[128];      /* temporary directory, removed by h_daemon_free */
	char conf[H_PATH];  /* configuration file */
	char spool[H_PATH]; /* spool_directory */
	char mail[H_PATH];  /* root of the Maildirs (template <mail>/%d/%u/) */
	char log[H_PATH];   /* the daemon's stderr */
	int port;
	pid_t pid;    /* 0 when not running */
	int status;   /* waitpid status after stop */
	int killed;   /* SIGTERM was not enough */
	size_t nkeys; /* settings written to conf, in order */
	char *keys[H_MAXKEYS];
	char *values[H_MAXKEYS];
	char *extra; /* raw text appended to the file (malformed lines etc.) */
};

/* Suite hooks: reset the registry / stop everything still running. */
void h_setup(void);
void h_teardown(void);

/* Path of the daemon binary ($TEMPOMXD, else $TMX_BUILDDIR/tempomxd,
 * else ./tempomxd). */
const char *h_tempomxd(void);
/* Path of a file of the source tree ($TMX_SRCDIR or the configured
 * top_srcdir), e.g. "t/integration/starttls_inject.py". */
void h_srcpath(const char *rel, char *out, size_t size);

/* Make a fresh daemon description: temp dir, free port, default settings
 * (listen, spool_directory, user, maildir, hostname, scan = no, short
 * timeouts). Asserts on failure. */
void h_daemon_init(struct h_daemon *d);
/* Set (or replace) one setting; value is printf-formatted. */
void h_set(struct h_daemon *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Drop a setting so the daemon's built-in default applies. */
void h_unset(struct h_daemon *d, const char *key);
/* Append raw text to the end of the configuration file. */
void h_conf_append(struct h_daemon *d, const char *text);
/* Write d->conf from the settings. Returns the number of lines written. */
int h_write_conf(struct h_daemon *d);

/* Write the config, start "tempomxd -d -f conf" with stderr to d->log and
 * wait (bounded) until it sends a 220 greeting. Retries with another port
 * if the port was taken meanwhile. Asserts on failure, with the log. */
void h_daemon_start(struct h_daemon *d);
/* Like h_daemon_start without the assertions: returns 0 when it greets,
 * or -1 when it exited (status in d->status) or did not greet in time. */
int h_daemon_try_start(struct h_daemon *d, int timeout_ms);
/* Start it and return as soon as the master logged "daemon started"
 * (listeners bound, children being forked, none ready yet): 0, or -1
 * when it exited or did not get that far in time. */
int h_daemon_spawn(struct h_daemon *d, int timeout_ms);
/* A loopback port that was free a moment ago, outside the kernel's
 * ephemeral range so client sockets of parallel tests do not take it. */
int h_free_port(void);
/* SIGTERM, wait up to timeout_ms, then SIGKILL the daemon and its
 * children. Returns the waitpid status. Then fails the test (cr_expect)
 * when the log holds a sanitizer report or when the daemon did not exit
 * with status 0 after SIGTERM. */
int h_daemon_stop(struct h_daemon *d);
/* Stop without any assertion (cleanup paths). */
void h_daemon_kill(struct h_daemon *d);
/* Remove the temporary directory (unless $TMX_ITEST_KEEP is set) and free
 * the settings. Safe to call twice. */
void h_daemon_free(struct h_daemon *d);
/* 1 if the daemon process is still alive (reaps it when it exited). */
int h_daemon_alive(struct h_daemon *d);
/* Fail the test if the log holds "AddressSanitizer", "runtime error:" or
 * "LeakSanitizer". */
void h_check_sanitizers(struct h_daemon *d);
/* Print the last lines of the daemon log through cr_log_info. */
void h_dump_log(struct h_daemon *d, int lines);

/* Remember a process the test started (e.g. a forked client) so that
 * h_teardown() kills and reaps it if the test ends early. */
void h_track(pid_t pid);
void h_untrack(pid_t pid);

/* Direct children of pid (from /proc/<n>/stat ppid). Returns the count. */
int h_children(pid_t pid, pid_t *out, int max);
/* Process name of pid (/proc/<pid>/comm) into buf; "" when gone. */
void h_comm(pid_t pid, char *buf, size_t size);

/* Log file helpers. */
int h_log_has(struct h_daemon *d, const char *needle);
/* Wait (bounded) until the log contains needle; returns 1 if found. */
int h_log_wait(struct h_daemon *d, const char *needle, int timeout_ms);

/* Spool helpers: number of message files in a queue directory ("incoming",
 * "hi", "lo", "out", "deferred", "hold", "quarantine", "corrupt"). */
int h_spool_count(struct h_daemon *d, const char *queue);
/* Files in all queues that hold accepted mail (not incoming, not corrupt). */
int h_spool_total(struct h_daemon *d);
/* Wait until incoming, hi, lo and out are empty. Returns 1 when idle. */
int h_spool_wait_idle(struct h_daemon *d, int timeout_ms);
/* Concatenate every file of a queue into a malloc'd string (envelopes and
 * messages), for searching. *count receives the number of files. */
char *h_spool_slurp(struct h_daemon *d, const char *queue, int *count);

/* Maildir helpers. h_maildir() builds "<mail>/<domain>/<user>". */
void h_maildir(struct h_daemon *d, const char *domain, const char *user, char *out, size_t size);
/* Number of messages in new/ and cur/ (0 if the Maildir does not exist). */
int h_maildir_count(const char *maildir);
/* Wait (bounded) until at least n messages are there; returns the count. */
int h_maildir_wait(const char *maildir, int n, int timeout_ms);
/* Paths of the messages (new/ then cur/), malloc'd array of malloc'd
 * strings, sorted; returns the count. Free with h_free_list(). */
int h_maildir_list(const char *maildir, char ***paths);
void h_free_list(char **list, int n);

/* Give path to the user the daemon's children run as (nobody as root), as
 * files the daemon made would be. */
void h_chown_run_user(const char *path);

/* Read a whole file (NUL-terminated too); NULL on error. */
char *h_read_file(const char *path, size_t *len);
/* Write a whole file; returns 0 or -1. */
int h_write_file(const char *path, const void *buf, size_t len, int mode);
/* memmem-style search; 1 if found. */
int h_contains(const char *hay, size_t haylen, const char *needle);
/* Count non-overlapping occurrences of needle. */
int h_count(const char *hay, size_t haylen, const char *needle);
/* Check that the Maildir file at path is: one or more header lines added
 * by the server (at least one "Received:"), then exactly the octets of
 * msg. Returns NULL when it is, else a static description of the
 * mismatch. */
const char *h_check_delivered(const char *path, const char *msg, size_t len);

/* Raw SMTP client. */
struct h_conn {
	int fd;
	int eof;
	size_t len;
	char buf[H_REPLY];  /* received, not yet consumed */
	char last[H_REPLY]; /* text of the last complete reply (all lines) */
};
/* Connect from source address src (NULL = kernel's choice) to
 * 127.0.0.1:port, or from an IPv6 source (src holds a ':') to [::1]:port.
 * Returns 0 or -1 (errno set). */
int h_connect(struct h_conn *c, const char *src, int port);
/* Connect and read the greeting; asserts that it is a 220. */
void h_open(struct h_conn *c, const char *src, int port);
void h_close(struct h_conn *c);
/* Send octets as given; returns 0 or -1. */
int h_send(struct h_conn *c, const void *buf, size_t len);
int h_sendf(struct h_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Read one complete (possibly multi-line) reply within timeout_ms. Returns
 * the code (100-599), 0 when the connection was closed before a complete
 * reply, -1 on timeout, -2 on a line that is not a reply. c->last holds
 * the text. */
int h_reply(struct h_conn *c, int timeout_ms);
/* Send the formatted line plus CR LF and return the reply code (10 s). */
int h_cmd(struct h_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, asserting the code; the message names the command and reply. */
void h_expect(struct h_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read a reply and assert its code. */
void h_expect_reply(struct h_conn *c, int code, const char *what);
/* 1 if c->last contains s. */
int h_last_has(struct h_conn *c, const char *s);
/* Wait until the peer closes (EOF or reset); 1 if it did within timeout.
 * Data received meanwhile is kept in c->buf. */
int h_wait_closed(struct h_conn *c, int timeout_ms);

/* Dot-stuff a CRLF message and append the end-of-data marker. */
char *h_dotstuff(const char *msg, size_t len, size_t *outlen);
/* One whole transaction on an open, greeted connection (EHLO first when
 * helo is not NULL). Returns the reply code to the end of data, or the
 * first failing reply code before it (negative on I/O trouble). */
int h_transaction(struct h_conn *c, const char *helo, const char *from, const char *const *rcpts,
                  const char *msg, size_t len);
/* Connect from src, EHLO, send, QUIT. Same return as h_transaction. */
int h_send_mail(int port, const char *src, const char *from, const char *const *rcpts,
                const char *msg, size_t len);
/* A small test message with CRLF line ends: headers, a unique token, a few
 * lines (one starting with a dot). malloc'd. */
char *h_make_message(const char *subject, const char *token, size_t *len);

/* Run an external command. stdout and stderr go to *out (malloc'd,
 * NUL-terminated; may be NULL). Returns the exit status, 128+signal when
 * killed by a signal, -1 when it did not finish in timeout_ms (it is then
 * killed) or could not be started. */
int h_run(char *const argv[], const void *in, size_t inlen, int timeout_ms, char **out,
          size_t *outlen);

/* Move the calling test process into a network namespace of its own with
 * lo up and the given IPv6 addresses on it (each "addr/len", added with
 * nodad), so that IPv6 clients other than ::1 can connect to a daemon
 * started afterwards on [::1]. Needs root and iproute2: returns -1 (errno
 * set) without them, 0 on success. */
int h_netns_ipv6(const char *const *cidrs, size_t n);

/* Milliseconds on the monotonic clock. */
long long h_now_ms(void);
void h_sleep_ms(int ms);

#endif
