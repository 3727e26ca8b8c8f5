/*
 * tempomx.h: the few types shared by the master and its children.
 *
 * tempomxd is one binary: the master (src/tempomxd/) reads the
 * configuration, prepares the spool, binds the listeners and forks one
 * child per stage. Each child's entry point is declared here; it receives
 * the runtime, drops privileges (child.c does that before the call) and
 * runs until SIGTERM. On SIGHUP a child re-reads the configuration with
 * runtime_reload() and applies it; an invalid file keeps the old settings.
 */
#ifndef TEMPOMX_H
#define TEMPOMX_H

#include <stddef.h>

#include <event2/event.h>

#include "conf.h"

struct runtime {
	const char *conf_path; /* NULL: built-in defaults only */
	char **overrides;      /* "key=value" from -o, applied after the file */
	size_t noverrides;
	struct config *cf; /* current settings (owned) */
	int foreground;    /* -d: log to stderr, do not detach */
	int verbose;       /* -v */
	int *listen_fds;   /* bound sockets, index i matches cf->listen.v[i] */
	size_t nlisten;
	const char *child_name; /* "smtpd", "scanner", "delivery" in a child */
};

/* Load the file (if any), then the overrides, then conf_finish(). */
int runtime_load_config(const struct runtime *rt, struct config *out, char *err, size_t errlen);
/* Re-read the configuration into rt->cf. Returns 0 when the new settings
 * took effect, -1 (logged) when the old ones stay. */
int runtime_reload(struct runtime *rt);
/* A child calls this once its event loop handles the signals it wants:
 * SIGHUP and SIGUSR1, blocked since the fork, are ignored if no handler
 * was installed for them, then unblocked in the calling thread, so one
 * that arrived during start-up is delivered now. Threads started before
 * keep them blocked. */
void runtime_signals_ready(void);
/* The signal set-up of a child's event loop: each of the n signals in sigs
 * is handled by cb(sig, EV_SIGNAL, arg) in base's loop (its event stored
 * in evs[i], for the caller to free), then runtime_signals_ready(). A
 * failure is fatal: a child that cannot hear SIGTERM must not run. */
void runtime_child_signals(struct event_base *base, const int *sigs, size_t n, event_callback_fn cb,
                           void *arg, struct event **evs);

/* Child entry points. Each returns the process exit status. */
int smtpd_main(struct runtime *rt);
int scanner_main(struct runtime *rt);
int delivery_main(struct runtime *rt);

#endif
