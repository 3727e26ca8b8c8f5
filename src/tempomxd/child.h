/*
 * child.h: the master's children (src/tempomxd/child.c).
 *
 * The master (main.c) registers one child per stage (smtpd, scanner,
 * delivery), starts them, and calls child_reap() on SIGCHLD. child.c forks,
 * makes the new process a clean child (signals reset, master state
 * dropped, privileges dropped), runs its entry point, and restarts a child
 * that died after a back-off: 1 s, doubling up to 60 s, back to 1 s once a
 * child has run for 60 s.
 */
#ifndef TEMPOMX_CHILD_H
#define TEMPOMX_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event;
struct event_base;
struct runtime;

#define CHILD_MAX 8
#define CHILD_BACKOFF_MIN 1  /* seconds */
#define CHILD_BACKOFF_MAX 60 /* seconds */
/* A child that ran this long before dying starts again at the minimum. */
#define CHILD_STABLE_AFTER 60 /* seconds */

struct child_set;

struct child {
	const char *name;                 /* "smtpd", "scanner", "delivery" */
	int (*entry)(struct runtime *rt); /* returns the exit status */
	int listeners;                    /* keeps the listening sockets */
	pid_t pid;                        /* 0: not running */
	int64_t started;                  /* monotonic usec of the last start */
	int64_t backoff;                  /* seconds before the next restart */
	unsigned restarts;                /* starts after the first one */
	struct event *restart_ev;
	struct child_set *set;
};

struct child_set {
	struct runtime *rt;
	struct event_base *base; /* the master's loop */
	int drop;                /* drop privileges to uid/gid in the child */
	uid_t uid;
	gid_t gid;
	pid_t master;
	int stopping; /* no more restarts */
	/* Called for every child that died, before it is restarted. */
	void (*on_exit)(pid_t pid, void *arg);
	void *on_exit_arg;
	/* A descriptor of the master's own (the control socket) that no
	 * child keeps; -1 for none. */
	int master_fd;
	struct child v[CHILD_MAX];
	size_t n;
};

/* Prepare an empty set. drop: the master runs as root and the children
 * must become uid/gid. */
void child_set_init(struct child_set *cs, struct runtime *rt, struct event_base *base, int drop,
                    uid_t uid, gid_t gid);
/* Register a child; listeners says whether it keeps the bound sockets. */
void child_add(struct child_set *cs, const char *name, int (*entry)(struct runtime *),
               int listeners);
/* Fork every registered child that is not running. */
void child_start_all(struct child_set *cs);
/* Collect every child that has exited (call on SIGCHLD), log how it ended
 * and, unless the set is stopping, schedule its restart. Returns the
 * number of children still running. */
size_t child_reap(struct child_set *cs);
/* Stop restarting children (shutdown). */
void child_set_stop(struct child_set *cs);
/* Send sig to every running child; returns how many were signalled. */
size_t child_kill_all(struct child_set *cs, int sig);
/* Send sig to the child called name; returns 0, or -1 if not running. */
int child_kill(struct child_set *cs, const char *name, int sig);
size_t child_running(const struct child_set *cs);
/* Free the restart timers (the children must have been reaped). */
void child_set_free(struct child_set *cs);

#endif
