/*
 * runtime.c: loading the configuration at start and reloading it on SIGHUP.
 *
 * The master calls runtime_load_config() once before it binds anything;
 * every process (master and children) calls runtime_reload() on SIGHUP.
 * A reload is all or nothing: a file that does not parse, or fails the
 * cross-key checks, leaves the running settings untouched and is logged.
 * A few settings are fixed for the life of the daemon because they were
 * used before the children started (sockets bound, privileges dropped,
 * spool opened, thread pools sized): a new value for one of those is
 * logged and ignored until tempomxd is restarted.
 *
 * It also sets up the signals of each child's event loop the same way
 * (runtime_child_signals): the child's handlers run in its loop, never in
 * a signal handler, and SIGHUP and SIGUSR1, blocked across the fork, are
 * let through only once the loop can take them.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "tempomx.h"
#include "util.h"

/* Keys whose value is used once, before or while the children start. */
static const char *const restart_keys[] = {
    "listen",             /* sockets are bound by the master, fds match cf->listen */
    "user",               /* privileges are already dropped */
    "spool_directory",    /* the spool is opened and watched */
    "pid_file",           /* written once by the master */
    "control_socket",     /* bound once by the master */
    "control_group",      /* owner of the socket, set when it is bound */
    "maildrop_directory", /* prepared by the master, opened by smtpd */
    "spool_writers",      /* writer thread pool is sized at start */
    /* live sessions are counted under keys made with these */
    "connection_limit_v4_prefix",
    "connection_limit_v6_prefix",
    "delivery_threads", /* delivery thread pool is sized at start */
    /* the shared history's connection is made, and its password read,
     * at start */
    "history_store",
    "history_redis_password_file",
    "history_redis_timeout",
};

static int needs_restart(const struct conf_key *k)
{
	for (size_t i = 0; i < sizeof(restart_keys) / sizeof(restart_keys[0]); i++)
		if (strcmp(k->name, restart_keys[i]) == 0)
			return 1;
	return 0;
}

int runtime_load_config(const struct runtime *rt, struct config *out, char *err, size_t errlen)
{
	if (rt->conf_path != NULL) {
		if (conf_load(rt->conf_path, out, err, errlen) == -1)
			return -1;
	} else {
		conf_defaults(out);
	}
	for (size_t i = 0; i < rt->noverrides; i++)
		if (conf_set(out, rt->overrides[i], err, errlen) == -1)
			return -1;
	return conf_finish(out, err, errlen);
}

int runtime_reload(struct runtime *rt)
{
	char err[1024];
	struct config ncf;
	const char *src = rt->conf_path ? rt->conf_path : "built-in defaults";
	size_t changed = 0;

	if (runtime_load_config(rt, &ncf, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the current configuration", err);
		return -1;
	}
	if (rt->cf == NULL) {
		rt->cf = xmalloc(sizeof(*rt->cf));
		*rt->cf = ncf;
		log_info("reload: %s: configuration loaded", src);
		return 0;
	}
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		char *was = conf_value_string(rt->cf, k);
		char *now = conf_value_string(&ncf, k);
		if (strcmp(was, now) != 0 && needs_restart(k)) {
			log_warnx("reload: %s cannot change without a restart; keeping %s = %s",
			          k->name, k->name, was);
			char *assign;
			xasprintf(&assign, "%s=%s", k->name, was);
			int rc = conf_set(&ncf, assign, err, sizeof(err));
			free(assign);
			if (rc == -1) {
				/* The running value came from a valid file, so this
				 * cannot happen; if it does, change nothing. */
				log_warnx("reload: %s; keeping the current configuration", err);
				free(was);
				free(now);
				return -1;
			}
		} else if (strcmp(was, now) != 0) {
			log_info("reload: %s = %s (was %s)", k->name, now, was);
			changed++;
		}
		free(was);
		free(now);
	}
	if (strcmp(rt->cf->syslog_facility, ncf.syslog_facility) != 0 &&
	    log_set_facility(ncf.syslog_facility) == -1)
		log_warnx("reload: syslog facility %s not supported by the logger",
		          ncf.syslog_facility);
	/* Swap the contents, not the pointer: callers keep rt->cf. */
	conf_free(rt->cf);
	*rt->cf = ncf;
	log_info("reload: %s: configuration reloaded, %zu setting%s changed", src, changed,
	         changed == 1 ? "" : "s");
	return 0;
}

void runtime_signals_ready(void)
{
	static const int sigs[] = {SIGHUP, SIGUSR1};
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;
		if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
			signal(sigs[i], SIG_IGN);
		sigaddset(&set, sigs[i]);
	}
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void runtime_child_signals(struct event_base *base, const int *sigs, size_t n, event_callback_fn cb,
                           void *arg, struct event **evs)
{
	for (size_t i = 0; i < n; i++) {
		evs[i] = evsignal_new(base, sigs[i], cb, arg);
		if (evs[i] == NULL || evsignal_add(evs[i], NULL) != 0)
			fatalx("cannot handle signal %d", sigs[i]);
	}
	runtime_signals_ready();
}
