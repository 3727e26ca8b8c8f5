/*
 * child.c: forking, supervising and restarting the master's children.
 *
 * Owns the child processes' lives: fork, the clean-up that turns a copy of
 * the master into a child (signal handlers reset, the master's event loop
 * let go, listening sockets closed where not needed), the privilege drop,
 * and the restart with back-off of a child that died. Called by the master
 * (main.c): at start-up, on SIGCHLD, and on shutdown.
 *
 * Why the details matter:
 * - All signals are blocked across fork(), so a signal meant for the child
 *   can never run the master's libevent handler inside the child (it would
 *   write into the master's signal pipe, shared after fork).
 * - The child re-initialises, then frees, the master's event_base: the
 *   epoll instance is shared after fork, and changing it from the child
 *   would remove the master's registrations.
 * - The children ignore SIGINT: Ctrl-C in the foreground reaches the whole
 *   process group, and the master turns it into an orderly SIGTERM.
 *   SIGHUP and SIGUSR1 stay blocked until the child's own event loop
 *   handles them (runtime_signals_ready()): one that arrives during the
 *   child's start-up waits instead of killing it or being lost, so a
 *   reload right after a (re)start still reaches every child.
 * - PR_SET_PDEATHSIG: a child never outlives the master (the master is the
 *   one that restarts and stops things, and holds the spool lock).
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "child.h"
#include "log.h"
#include "tempomx.h"
#include "util.h"

static int child_start(struct child *c);

void child_set_init(struct child_set *cs, struct runtime *rt, struct event_base *base, int drop,
                    uid_t uid, gid_t gid)
{
	memset(cs, 0, sizeof(*cs));
	cs->rt = rt;
	cs->base = base;
	cs->drop = drop;
	cs->uid = uid;
	cs->gid = gid;
	cs->master = getpid();
	cs->master_fd = -1;
}

void child_add(struct child_set *cs, const char *name, int (*entry)(struct runtime *),
               int listeners)
{
	if (cs->n >= CHILD_MAX)
		fatalx("too many children");
	struct child *c = &cs->v[cs->n++];
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->entry = entry;
	c->listeners = listeners;
	c->backoff = CHILD_BACKOFF_MIN;
	c->set = cs;
}

/* Give up root for good: supplementary groups, group, user; then check
 * that none of it can be undone. */
static void child_drop_privileges(const struct child_set *cs)
{
	if (!cs->drop)
		return;
	if (setgroups(1, &cs->gid) < 0)
		fatal("setgroups");
	if (setresgid(cs->gid, cs->gid, cs->gid) < 0)
		fatal("setresgid %ld", (long)cs->gid);
	if (setresuid(cs->uid, cs->uid, cs->uid) < 0)
		fatal("setresuid %ld", (long)cs->uid);
	if (getuid() != cs->uid || geteuid() != cs->uid || getgid() != cs->gid ||
	    getegid() != cs->gid)
		fatalx("privileges were not dropped");
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1)
		fatalx("could regain root after dropping privileges");
}

/* In the new process: become the child, run it, never return. */
static void child_run(struct child *c, const sigset_t *oldmask)
{
	static const int defaults[] = {SIGTERM, SIGUSR2, SIGCHLD, SIGQUIT, SIGHUP, SIGUSR1};
	static const int ignored[] = {SIGINT, SIGPIPE};
	struct child_set *cs = c->set;
	struct runtime *rt = cs->rt;
	char ident[64];

	/* Let go of the master's loop without touching its epoll set. */
	if (event_reinit(cs->base) < 0)
		fatalx("event_reinit failed in child %s", c->name);
	event_base_free(cs->base);
	cs->base = NULL;

	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		signal(defaults[i], SIG_DFL);
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);

	snprintf(ident, sizeof(ident), "tempomxd/%s", c->name);
	log_set_ident(ident);
	rt->child_name = c->name;

	if (cs->master_fd >= 0)
		close(cs->master_fd);
	if (!c->listeners) {
		for (size_t i = 0; i < rt->nlisten; i++)
			if (rt->listen_fds[i] >= 0)
				close(rt->listen_fds[i]);
		free(rt->listen_fds);
		rt->listen_fds = NULL;
		rt->nlisten = 0;
	}

	child_drop_privileges(cs);
	/* Set after the drop: a credential change clears it. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		log_warn("prctl(PR_SET_PDEATHSIG)");
	if (getppid() != cs->master)
		_exit(0); /* the master is already gone */
	/* SIGHUP and SIGUSR1 are forwarded by the master at any time; their
	 * default action would end the child, and ignoring them would lose a
	 * reload. Blocked, they wait for runtime_signals_ready(). */
	sigset_t mask = *oldmask;
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_SETMASK, &mask, NULL);

	int status = c->entry(rt);
	_exit(status & 0xff);
}

/* Fork c. Returns 0, or -1 when fork failed (logged). */
static int child_start(struct child *c)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		child_run(c, &old);
	int saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		errno = saved;
		log_warn("cannot start child %s: fork", c->name);
		return -1;
	}
	c->pid = pid;
	c->started = mono_usec();
	log_info("child %s started, pid %ld", c->name, (long)pid);
	return 0;
}

static void child_restart_cb(evutil_socket_t fd, short what, void *arg);

/* Schedule c's next start after its back-off, and double the back-off. */
static void child_schedule(struct child *c)
{
	struct timeval tv = {(time_t)c->backoff, 0};
	if (c->restart_ev == NULL)
		c->restart_ev = evtimer_new(c->set->base, child_restart_cb, c);
	if (c->restart_ev == NULL || evtimer_add(c->restart_ev, &tv) < 0)
		fatalx("cannot add a restart timer");
	log_info("restarting child %s in %llds", c->name, (long long)c->backoff);
	c->backoff *= 2;
	if (c->backoff > CHILD_BACKOFF_MAX)
		c->backoff = CHILD_BACKOFF_MAX;
}

static void child_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	if (c->set->stopping || c->pid != 0)
		return;
	c->restarts++;
	if (child_start(c) < 0)
		child_schedule(c);
}

void child_start_all(struct child_set *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct child *c = &cs->v[i];
		if (c->pid == 0 && child_start(c) < 0)
			child_schedule(c);
	}
}

static struct child *child_by_pid(struct child_set *cs, pid_t pid)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i].pid == pid)
			return &cs->v[i];
	return NULL;
}

size_t child_reap(struct child_set *cs)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = child_by_pid(cs, pid);
		if (c == NULL)
			continue;
		c->pid = 0;
		int64_t ran = (mono_usec() - c->started) / 1000000;
		if (WIFSIGNALED(status)) {
			if (cs->stopping && WTERMSIG(status) == SIGTERM)
				log_info("child %s pid %ld stopped by signal %d", c->name,
				         (long)pid, WTERMSIG(status));
			else
				log_warnx("child %s pid %ld killed by signal %d%s", c->name,
				          (long)pid, WTERMSIG(status),
				          WCOREDUMP(status) ? " (core dumped)" : "");
		} else if (cs->stopping && WEXITSTATUS(status) == 0) {
			log_info("child %s pid %ld exited with status 0", c->name, (long)pid);
		} else {
			log_warnx("child %s pid %ld exited with status %d after %llds", c->name,
			          (long)pid, WEXITSTATUS(status), (long long)ran);
		}
		if (cs->on_exit != NULL)
			cs->on_exit(pid, cs->on_exit_arg);
		if (cs->stopping)
			continue;
		/* A child that ran a while was healthy: start over at the
		 * minimum. One that keeps dying waits longer each time. */
		if (ran >= CHILD_STABLE_AFTER)
			c->backoff = CHILD_BACKOFF_MIN;
		child_schedule(c);
	}
	if (pid < 0 && errno != ECHILD)
		log_warn("waitpid");
	return child_running(cs);
}

void child_set_stop(struct child_set *cs)
{
	cs->stopping = 1;
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i].restart_ev)
			evtimer_del(cs->v[i].restart_ev);
}

size_t child_kill_all(struct child_set *cs, int sig)
{
	size_t n = 0;
	for (size_t i = 0; i < cs->n; i++) {
		if (cs->v[i].pid > 0 && kill(cs->v[i].pid, sig) == 0)
			n++;
	}
	return n;
}

int child_kill(struct child_set *cs, const char *name, int sig)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct child *c = &cs->v[i];
		if (strcmp(c->name, name) == 0 && c->pid > 0)
			return kill(c->pid, sig);
	}
	errno = ESRCH;
	return -1;
}

size_t child_running(const struct child_set *cs)
{
	size_t n = 0;
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i].pid > 0)
			n++;
	return n;
}

void child_set_free(struct child_set *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		if (cs->v[i].restart_ev)
			event_free(cs->v[i].restart_ev);
		cs->v[i].restart_ev = NULL;
	}
	cs->n = 0;
}
