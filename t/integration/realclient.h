/*
 * realclient.h: helpers for the integration tests that drive tempomxd
 * with real mail software (test_realmta.c, test_realclients.c,
 * test_netem.c).
 *
 * - Reading outcomes from the daemon log: the "classify: NAME[ADDR]:PORT:
 *   OUTCOME, ..." lines of one client address, optionally only those
 *   written after a given log offset (one batch of a longer test). NAME
 *   is "unknown" or the client's DNS name: only "[ADDR]:" is matched.
 * - A private Postfix instance (Debian's postfix package, never the
 *   system instance): its own config, queue and data directories under
 *   the test's temporary directory, an smtpd on a free loopback port for
 *   injecting mail and an smtp client that relays everything to tempomxd
 *   from a chosen source address. Started with "postfix -c DIR start",
 *   stopped with "postfix -c DIR stop", and the master killed by the PID
 *   it wrote as a last resort (only a master whose config is ours).
 * - Running the daemon under libfaketime, to give the history store a
 *   clock that is an hour (or any offset) ahead.
 */
#ifndef TMX_ITEST_REALCLIENT_H
#define TMX_ITEST_REALCLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

/* ---- the daemon log ---- */

/* Current size of the daemon's log: an offset for the *_since helpers. */
size_t rc_log_size(struct h_daemon *d);
/* The "classify:" lines of client addr written after offset since,
 * joined by newlines (malloc'd, never NULL); *n gets their number. */
char *rc_classify_lines(struct h_daemon *d, size_t since, const char *addr, int *n);
/* Cut text after its first max lines (in place), noting how many were
 * cut; returns text. For failure messages. */
char *rc_head(char *text, int max);
/* Of those, the ones whose outcome is outcome ("hi", "lo", "tempfail",
 * "reject", "tempfail (load)", "no message accepted"). */
int rc_outcomes(struct h_daemon *d, size_t since, const char *addr, const char *outcome);
/* Refusals of addr since offset: tempfail, reject and tempfail (load). */
int rc_refusals(struct h_daemon *d, size_t since, const char *addr);
/* 1 if some "N of M observations junk" with N > 0 appears in text: the
 * history holds junk for that client. */
int rc_history_has_junk(const char *text);
/* The largest messages=N on the "disconnect from ...[addr]:" lines since
 * offset: how many messages one session of addr carried at most. */
int rc_max_messages_per_session(struct h_daemon *d, size_t since, const char *addr);
/* Number of lines after offset since that contain both a and b (b may
 * be NULL). */
int rc_lines_with(const char *path, size_t since, const char *a, const char *b);

/* ---- a private Postfix instance ---- */

struct rc_postfix {
	char dir[256];      /* <test dir>/postfix */
	char etc[H_PATH];   /* config_directory: main.cf, master.cf */
	char queue[H_PATH]; /* queue_directory */
	char data[H_PATH];  /* data_directory */
	char log[H_PATH];   /* maillog_file */
	int port;           /* its smtpd, for injecting */
	int relay_port;     /* tempomxd's port (relayhost) */
	pid_t master;       /* 0 when not running */
};

/* Fill p for a Postfix that relays to 127.0.0.1:<d->port> from bind_addr,
 * with at most concurrency parallel sessions, and write its config.
 * Registers it so the suite's fini (rc_teardown) stops it. */
void rc_postfix_init(struct rc_postfix *p, struct h_daemon *d, const char *bind_addr,
                     int concurrency);
/* Start it; asserts (with its log) when it does not listen in time. */
void rc_postfix_start(struct rc_postfix *p);
/* Point the relayhost at another port and reload (after the daemon
 * under test was restarted on a new port). */
void rc_postfix_retarget(struct rc_postfix *p, int port);
/* "postfix stop", bounded; then SIGKILL to its master if still there. */
void rc_postfix_stop(struct rc_postfix *p);
/* Inject n messages through its smtpd on one connection; message i goes
 * to rcpts[0] .. rcpts[i % nrcpt] (1 to nrcpt recipients). Subjects carry
 * tag and the index. Returns the number accepted (250). */
int rc_postfix_inject(struct rc_postfix *p, int n, const char *const *rcpts, int nrcpt,
                      const char *tag);
/* Messages still in its queue (incoming, active, deferred, hold). */
int rc_postfix_queued(struct rc_postfix *p);
/* Print its last log lines through cr_log_info. */
void rc_postfix_dump_log(struct rc_postfix *p, int lines);

/* Suite fini: stop every Postfix instance started here, then h_teardown. */
void rc_teardown(void);

/* ---- libfaketime ---- */

/* Set LD_PRELOAD / FAKETIME so that a daemon started next sees the wall
 * clock moved by offset (e.g. "+1h"; the monotonic clock is left alone).
 * A sanitizer runtime the daemon links is preloaded first, as ASan
 * requires. Returns 0, or -1 with the reason in why. */
int rc_faketime_env(const char *offset, char *why, size_t size);
/* Undo rc_faketime_env. */
void rc_faketime_clear(void);

#endif
