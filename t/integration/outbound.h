/*
 * outbound.h: helpers shared by the outbound delivery tests
 * (outbound.c): the capture sink (outbound_sink.py) and other Python
 * helpers, free ports, RFC 3464 checks.
 */
#ifndef TMX_ITEST_OUTBOUND_H
#define TMX_ITEST_OUTBOUND_H

#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

#define WAIT_MS 20000

struct sink {
	char dir[H_PATH];
	int port;
	pid_t pid;
};

/* Start "python3 script args..." (script relative to the source tree)
 * and wait for its ready file. */
pid_t ob_start_py(const char *script, const char *ready, char *const args[]);
void ob_stop_py(pid_t pid);
/* A sink in parent/name listening on addr:port; extra: further switches
 * of outbound_sink.py, NULL-terminated. */
void ob_sink_start(struct sink *s, const char *parent, const char *name, const char *addr, int port,
                   const char *const *extra);
/* Transaction n (1-based) of the sink, once it is there: env and data. */
int ob_sink_wait(struct sink *s, int n, int timeout_ms, char **env, char **data, size_t *dlen);
/* Transactions recorded so far. */
int ob_sink_count(struct sink *s);
/* The number after "key " in transaction n's env (-1: none). */
int ob_sink_field(struct sink *s, int n, const char *key);
/* The connection number (as the sink counts them) of transaction n. */
int ob_sink_conn_of(struct sink *s, int n);
/* The most connections the sink saw at once, up to transaction n. */
int ob_sink_maxconc(struct sink *s, int n);
/* A free loopback port: the kernel picks one, we close it again. */
/* A daemon set up for the delivery tests: local.test is local, 127.0.0.1
 * may relay, retries every second or two, rescans every second. */
void ob_base_conf(struct h_daemon *d);
/* Check a Maildir file is an RFC 3464 report about rcpt with status. */
void ob_check_dsn_action(const char *path, const char *rcpt, const char *status,
                         const char *subject, const char *action);
void ob_check_dsn(const char *path, const char *rcpt, const char *status, const char *subject);

#endif
