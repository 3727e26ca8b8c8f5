/*
 * main.c: the tempomxd master process.
 *
 * Owns start-up (options, configuration, the spool, its lock, the
 * listening sockets, the pid file), the supervision of the children and
 * the master's signals. The children (smtpd, scanner, delivery) are forked
 * and restarted by child.c; each runs its module's *_main().
 *
 * Start-up order matters: everything that needs root (spool ownership,
 * the TLS key, privileged ports) happens here before any child exists, and
 * every check that can fail does so before the daemon detaches, so the
 * admin sees the reason on the terminal. That includes the virus database
 * with scan = yes: it is test-loaded once in a short-lived process
 * (master_check_database), so a database that cannot be loaded stops the
 * daemon instead of leaving a scanner child failing in a restart loop.
 *
 * Signals: SIGTERM/SIGINT stop the children (SIGTERM, then SIGKILL after
 * shutdown_grace) and exit; SIGHUP reloads the configuration and, when it
 * is valid, forwards SIGHUP to the children; SIGUSR1 asks delivery to
 * flush its deferred queue. The control socket (control.c) is one more
 * event on the master's loop: tempomxctl asks there for the same reload
 * and flush, for the daemon's status and for a log level
 * (master_control).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "child.h"
#include "confcheck.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "maildrop.h"
#include "nofile.h"
#include "rundir.h"
#include "scan.h"
#include "selfsigned.h"
#include "spool.h"
#include "tempomx.h"
#include "util.h"

#define LISTEN_BACKLOG 1024
#define LOCK_NAME "tempomxd.lock"

struct master {
	struct runtime rt;
	struct config cf;
	struct event_base *base;
	struct child_set children;
	struct event *sig_ev[5];
	struct event *grace_ev;
	int lock_fd;
	int run_fd; /* <spool>/master, root's own directory (rundir.c) */
	int stopping;
	int pid_written;
	char *pid_file;
	struct event *hup_smtpd_ev; /* second step of a reload */
	int control_fd;             /* bound before the children exist */
	struct control *control;
	int64_t started;  /* wall clock, seconds */
	int64_t reloaded; /* last reload, seconds; 0 = never */
	char reload_ok;   /* its result */
	char reload_why[512];
};

static void usage(void)
{
	fprintf(stderr, "usage: tempomxd [-dnv] [-f file] [-o key=value] ...\n");
	exit(1);
}

/* A start-up failure: logged, and the daemon does not start. */
static void __attribute__((format(printf, 1, 2), noreturn)) startup_fail(const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s; not starting", msg);
	exit(1);
}

/* ---- start-up steps ---- */

/*
 * With scan = yes, a database that cannot be loaded must stop the daemon
 * with a clear error before it detaches, rather than leave a scanner
 * child failing in a restart loop while mail piles up in hi/ and lo/.
 * The load is tried once in a short-lived process, so that the master
 * never holds libclamav's memory (about 1 GB for the full database) or
 * its state across the forks of the children. It costs one extra load at
 * start-up: milliseconds with a small database, tens of seconds with the
 * full one. The loader runs as the children's user, so it sees the
 * database directory as the scanner will. The scanner child loads its own
 * engine after this.
 */
static void master_check_database(struct master *m, int drop, uid_t uid, gid_t gid)
{
	char err[512] = "";
	int fds[2];

	if (!m->cf.scan)
		return;
	if (pipe(fds) < 0)
		startup_fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		startup_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		struct engine_limits lim;
		struct scan_engine *e = NULL;
		engine_limits_default(&lim);
		if (drop && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
			snprintf(err, sizeof(err), "cannot become user %s: %s", m->cf.user,
			         strerror(errno));
		else if (engine_init(err, sizeof(err)) == 0)
			e = engine_load(m->cf.clamav_database, &lim, err, sizeof(err));
		if (e == NULL && write(fds[1], err, strlen(err)) < 0)
			_exit(2);
		_exit(e == NULL ? 1 : 0);
	}
	close(fds[1]);
	size_t len = 0;
	ssize_t n;
	while (len + 1 < sizeof(err) && ((n = read(fds[0], err + len, sizeof(err) - 1 - len)) > 0 ||
	                                 (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	err[len] = '\0';
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		startup_fail("scan = yes: cannot load the virus database in %s: %s",
		             m->cf.clamav_database, err[0] ? err : "the loader failed");
}

static void master_resolve_user(struct master *m, int *drop, uid_t *uid, gid_t *gid)
{
	if (geteuid() != 0) {
		struct passwd *me = getpwuid(geteuid());
		log_warnx("not running as root: ignoring user = %s, the children run as %s",
		          m->cf.user, me ? me->pw_name : "the current user");
		*drop = 0;
		*uid = geteuid();
		*gid = getegid();
		return;
	}
	errno = 0;
	struct passwd *pw = getpwnam(m->cf.user);
	if (pw == NULL)
		startup_fail("user = %s: %s", m->cf.user, errno ? strerror(errno) : "no such user");
	if (pw->pw_uid == 0)
		startup_fail("user = %s: refusing to run the children as root", m->cf.user);
	*drop = 1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

/* One daemon per spool: an exclusive lock on <spool>/master/tempomxd.lock,
 * held for the life of the master (and of its children, which inherit
 * it). In root's own directory, never one the spool's user can write. */
static void master_lock(struct master *m)
{
	char path[PATH_MAX], buf[32];
	snprintf(path, sizeof(path), "%s/%s/%s", m->cf.spool_directory, RUNDIR_NAME, LOCK_NAME);
	m->lock_fd = openat(m->run_fd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (m->lock_fd < 0)
		startup_fail("%s: %s", path, strerror(errno));
	if (flock(m->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			startup_fail("%s: lock: %s", path, strerror(errno));
		ssize_t n = pread(m->lock_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		startup_fail("another tempomxd%s%s%s is already running on spool %s",
		             buf[0] ? " (pid " : "", buf, buf[0] ? ")" : "", m->cf.spool_directory);
	}
}

static void master_write_lock_pid(struct master *m)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(m->lock_fd, 0) < 0 || pwrite(m->lock_fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write the pid into the lock file");
}

static void master_clean_spool(struct master *m)
{
	struct spool sp;
	if (spool_open(&sp, m->cf.spool_directory) < 0)
		startup_fail("cannot open spool %s: %s", m->cf.spool_directory, strerror(errno));
	int n = spool_clean_incoming(&sp);
	log_info("spool %s: %d unfinished file%s removed from incoming/", m->cf.spool_directory, n,
	         n == 1 ? "" : "s");
	spool_close(&sp);
}

/* A child died: what it was receiving or rewriting in incoming/ was never
 * acknowledged, so remove it now rather than at the next start. */
static void master_child_exited(pid_t pid, void *arg)
{
	struct master *m = arg;
	struct spool sp;
	if (spool_open(&sp, m->cf.spool_directory) < 0) {
		log_warn("spool %s", m->cf.spool_directory);
		return;
	}
	spool_clean_incoming_pid(&sp, pid);
	spool_close(&sp);
}

static void master_tls(struct master *m, int drop, uid_t uid, gid_t gid)
{
	char dir[PATH_MAX], err[512];
	if (!m->cf.smtp_tls || m->cf.tls_cert_file[0] != '\0')
		return;
	snprintf(dir, sizeof(dir), "%s/%s", m->cf.spool_directory, TLS_SELFSIGNED_DIR);
	if (selfsigned_ensure(dir, m->cf.hostname, drop ? uid : (uid_t)-1, drop ? gid : (gid_t)-1,
	                      err, sizeof(err)) < 0) {
		/* Mail still flows without STARTTLS; say so and go on. */
		log_warnx("TLS: %s; STARTTLS will not be offered", err);
		m->cf.smtp_tls = 0;
	}
}

static void master_listen(struct master *m)
{
	struct runtime *rt = &m->rt;
	rt->nlisten = m->cf.listen.n;
	rt->listen_fds = xcalloc(rt->nlisten ? rt->nlisten : 1, sizeof(int));
	for (size_t i = 0; i < rt->nlisten; i++) {
		const struct listen_conf *l = &m->cf.listen.v[i];
		int one = 1;
		int fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			startup_fail("cannot listen on %s: socket: %s", l->text, strerror(errno));
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
			startup_fail("cannot listen on %s: SO_REUSEADDR: %s", l->text,
			             strerror(errno));
		/* A v6 wildcard must not take the v4 port too: "*:25" and
		 * "[::]:25" are separate lines. */
		if (l->ss.ss_family == AF_INET6 &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			startup_fail("cannot listen on %s: IPV6_V6ONLY: %s", l->text,
			             strerror(errno));
		if (bind(fd, (const struct sockaddr *)&l->ss, l->sslen) < 0)
			startup_fail("cannot listen on %s: %s", l->text, strerror(errno));
		if (listen(fd, LISTEN_BACKLOG) < 0)
			startup_fail("cannot listen on %s: %s", l->text, strerror(errno));
		rt->listen_fds[i] = fd;
		log_debug("listening on %s", l->text);
	}
}

static void master_detach(struct master *m)
{
	pid_t pid = fork();
	if (pid < 0)
		startup_fail("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		fatal("setsid");
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		fatal("/dev/null");
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	/* From here on the log goes to syslog. */
	log_init("tempomxd", 0, m->rt.verbose);
	log_set_facility(m->cf.syslog_facility);
}

static void master_write_pid(struct master *m)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	int fd = open(m->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	/* Readable by all, whatever the umask: scripts send signals by it. */
	if (fd < 0 || fchmod(fd, 0644) < 0 || write(fd, buf, (size_t)n) != n) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		startup_fail("pid file %s: %s", m->pid_file, strerror(e));
	}
	close(fd);
	m->pid_written = 1;
}

/* ---- running ---- */

static void master_finish(struct master *m)
{
	if (m->pid_written && unlink(m->pid_file) < 0 && errno != ENOENT)
		log_warn("cannot remove %s", m->pid_file);
	m->pid_written = 0;
	log_info("daemon stopped");
	event_base_loopexit(m->base, NULL);
}

static void master_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	for (size_t i = 0; i < m->children.n; i++) {
		struct child *c = &m->children.v[i];
		if (c->pid > 0) {
			log_warnx("child %s pid %ld did not stop within %llds: killing it", c->name,
			          (long)c->pid, (long long)m->cf.shutdown_grace);
			kill(c->pid, SIGKILL);
		}
	}
}

static void master_stop(struct master *m, int sig)
{
	if (m->stopping) {
		/* A second request (Ctrl-C again): do not wait any longer. */
		log_notice("received signal %d again: killing the children now", sig);
		child_kill_all(&m->children, SIGKILL);
		return;
	}
	m->stopping = 1;
	log_info("received %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	child_set_stop(&m->children);
	child_kill_all(&m->children, SIGTERM);
	if (child_running(&m->children) == 0) {
		master_finish(m);
		return;
	}
	struct timeval tv = {(time_t)m->cf.shutdown_grace, 0};
	m->grace_ev = evtimer_new(m->base, master_grace_cb, m);
	if (m->grace_ev == NULL || evtimer_add(m->grace_ev, &tv) < 0)
		fatalx("cannot add the shutdown timer");
}

/* SIGHUP: the new file must be valid for the master too before the
 * children are told to read it; otherwise everyone keeps the old one. */
/* How long smtpd's reload waits for the other stages' (they reload in a
 * few milliseconds; this only orders the two steps). */
#define RELOAD_SMTPD_DELAY_USEC 300000

static void master_reload_smtpd(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	child_kill(&m->children, "smtpd", SIGHUP);
}

static int master_reload(struct master *m, const char *why)
{
	struct config ncf;
	char err[1024];

	log_info("%s: reloading the configuration", why);
	m->reloaded = wall_usec() / 1000000;
	m->reload_ok = 0;
	if (runtime_load_config(&m->rt, &ncf, err, sizeof(err)) < 0) {
		log_warnx("reload: %s; keeping the current configuration", err);
		snprintf(m->reload_why, sizeof(m->reload_why), "%.500s", err);
		return -1;
	}
	conf_free(&ncf);
	int tls_off = !m->cf.smtp_tls;
	if (runtime_reload(&m->rt) < 0) {
		snprintf(m->reload_why, sizeof(m->reload_why), "not applied (see the log)");
		return -1;
	}
	m->reload_ok = 1;
	m->reload_why[0] = '\0';
	confcheck_warn(&m->cf);
	nofile_raise(&m->cf);
	if (tls_off && m->cf.smtp_tls)
		log_info("reload: smtp_tls = yes takes effect in smtpd if its certificate loads");
	/* The stages that act on accepted mail reload first, smtpd a moment
	 * later: otherwise smtpd could accept mail for a newly added local
	 * domain that delivery, still on the old settings, would route out. */
	child_kill(&m->children, "scanner", SIGHUP);
	child_kill(&m->children, "delivery", SIGHUP);
	if (m->hup_smtpd_ev == NULL)
		m->hup_smtpd_ev = evtimer_new(m->base, master_reload_smtpd, m);
	struct timeval tv = {0, RELOAD_SMTPD_DELAY_USEC};
	evtimer_add(m->hup_smtpd_ev, &tv);
	return 0;
}

/* ---- the control socket ---- */

static int master_flush(struct master *m)
{
	return child_kill(&m->children, "delivery", SIGUSR1);
}

static void master_status(struct master *m, struct control_reply *r)
{
	int64_t now = wall_usec() / 1000000;
	control_reply_line(r, "pid %ld", (long)getpid());
	control_reply_line(r, "version %s", PACKAGE_VERSION);
	control_reply_line(r, "started %lld", (long long)m->started);
	control_reply_line(r, "uptime %lld", (long long)(now - m->started));
	control_reply_line(r, "config %s",
	                   m->rt.conf_path ? m->rt.conf_path : "(built-in defaults)");
	for (size_t i = 0; i < m->children.n; i++) {
		const struct child *c = &m->children.v[i];
		control_reply_line(r, "child %s pid %ld restarts %u", c->name, (long)c->pid,
		                   c->restarts);
	}
	for (size_t i = 0; i < m->cf.listen.n; i++)
		control_reply_line(r, "listen %s", m->cf.listen.v[i].text);
	if (m->reloaded == 0)
		control_reply_line(r, "reload never");
	else if (m->reload_ok)
		control_reply_line(r, "reload %lld ok", (long long)m->reloaded);
	else
		control_reply_line(r, "reload %lld failed: %s", (long long)m->reloaded,
		                   m->reload_why);
}

static void master_control(void *arg, uid_t uid, const char *cmd, const char *args,
                           struct control_reply *r)
{
	struct master *m = arg;
	if (args[0] != '\0' && strcmp(cmd, "ping") != 0 && strcmp(cmd, "log-level") != 0) {
		control_reply_fail(r, "%s takes no argument", cmd);
	} else if (strcmp(cmd, "log-level") == 0) {
		/* Shared with the children (log_share_verbosity): at once. */
		if (strcmp(args, "debug") == 0 || strcmp(args, "info") == 0) {
			log_info("log level %s, requested by uid %ld", args, (long)uid);
			log_set_verbose(strcmp(args, "debug") == 0);
		} else if (args[0] == '\0') {
			control_reply_line(r, "level %s", log_verbose() > 0 ? "debug" : "info");
		} else {
			control_reply_fail(r, "log-level %s: the level is debug or info", args);
		}
	} else if (strcmp(cmd, "ping") == 0) {
		control_reply_line(r, "version %s", PACKAGE_VERSION);
	} else if (strcmp(cmd, "status") == 0) {
		master_status(m, r);
	} else if (m->stopping) {
		control_reply_fail(r, "the daemon is stopping");
	} else if (strcmp(cmd, "reload") == 0) {
		char why[64];
		snprintf(why, sizeof(why), "reload requested by uid %ld", (long)uid);
		if (master_reload(m, why) < 0)
			control_reply_fail(r, "reload: %s; keeping the current configuration",
			                   m->reload_why);
	} else if (strcmp(cmd, "flush") == 0) {
		if (master_flush(m) == 0) {
			log_info("flush requested by uid %ld", (long)uid);
		} else {
			log_warnx(
			    "flush requested by uid %ld, but the delivery child is not running",
			    (long)uid);
			control_reply_fail(r, "the delivery child is not running");
		}
	} else {
		control_reply_fail(r, "unknown command %s", cmd);
	}
}

static void master_control_bind(struct master *m)
{
	char err[1024];
	gid_t gid = 0;
	if (m->cf.control_group[0] != '\0') {
		errno = 0;
		struct group *gr = getgrnam(m->cf.control_group);
		if (gr == NULL)
			startup_fail("control_group = %s: %s", m->cf.control_group,
			             errno ? strerror(errno) : "no such group");
		gid = gr->gr_gid;
	}
	m->control_fd = control_listen(m->cf.control_socket, gid, err, sizeof(err));
	if (m->control_fd < 0)
		startup_fail("%s", err);
}

static void master_signal(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;

	switch (sig) {
	case SIGCHLD:
		if (child_reap(&m->children) == 0 && m->stopping)
			master_finish(m);
		break;
	case SIGTERM:
	case SIGINT:
		master_stop(m, (int)sig);
		break;
	case SIGHUP:
		if (!m->stopping)
			master_reload(m, "received SIGHUP");
		break;
	case SIGUSR1:
		if (master_flush(m) == 0)
			log_info("received SIGUSR1: flush requested");
		else
			log_warnx("received SIGUSR1, but the delivery child is not running");
		break;
	}
}

/* ---- options and configuration ---- */

static void master_config(struct master *m, const char *file, int check)
{
	char err[1024], abspath[PATH_MAX];

	if (file != NULL) {
		/* Absolute, so SIGHUP finds it after the chdir("/"). */
		m->rt.conf_path = realpath(file, abspath) ? xstrdup(abspath) : xstrdup(file);
	} else if (access(DEFAULT_CONFIG_FILE, F_OK) == 0) {
		m->rt.conf_path = xstrdup(DEFAULT_CONFIG_FILE);
	} else {
		m->rt.conf_path = NULL;
	}
	if (runtime_load_config(&m->rt, &m->cf, err, sizeof(err)) < 0) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			log_warnx("%s", err);
		exit(1);
	}
	m->rt.cf = &m->cf;
	if (confcheck_errors(&m->cf, err, sizeof(err)) < 0) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			log_warnx("%s", err);
		exit(1);
	}
	confcheck_warn(&m->cf);
	if (check)
		return;
	if (m->rt.conf_path)
		log_info("configuration: %s", m->rt.conf_path);
	else
		log_info("configuration: built-in defaults (%s not found)", DEFAULT_CONFIG_FILE);
}

int main(int argc, char **argv)
{
	static struct master m;
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1};
	const char *file = NULL;
	int check = 0, ch, drop;
	uid_t uid;
	gid_t gid;

	m.lock_fd = -1;
	m.run_fd = -1;
	m.control_fd = -1;
	while ((ch = getopt(argc, argv, "f:o:dnv")) != -1) {
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		case 'o':
			m.rt.overrides =
			    xreallocarray(m.rt.overrides, m.rt.noverrides + 1, sizeof(char *));
			m.rt.overrides[m.rt.noverrides++] = optarg;
			break;
		case 'd':
			m.rt.foreground = 1;
			break;
		case 'n':
			check++;
			break;
		case 'v':
			m.rt.verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	/* Until the daemon detaches, everything goes to the terminal. */
	log_init("tempomxd", 1, m.rt.verbose);
	umask(077);
	master_config(&m, file, check);
	if (check) {
		if (check == 1)
			conf_print_changed(&m.cf, stdout);
		else
			conf_print_all(&m.cf, stdout);
		return 0;
	}
	if (log_set_facility(m.cf.syslog_facility) < 0)
		log_warnx("syslog facility %s not supported", m.cf.syslog_facility);
	m.pid_file = xstrdup(m.cf.pid_file);

	master_resolve_user(&m, &drop, &uid, &gid);
	master_check_database(&m, drop, uid, gid);
	char err[1024];
	if (rundir_check_spool(m.cf.spool_directory, uid, err, sizeof(err)) < 0)
		startup_fail("%s", err);
	if (spool_prepare(m.cf.spool_directory, uid, gid, err, sizeof(err)) < 0)
		startup_fail("%s", err);
	if (maildrop_prepare(m.cf.maildrop_directory, uid, gid, err, sizeof(err)) < 0)
		startup_fail("%s", err);
	m.run_fd = rundir_prepare(m.cf.spool_directory, uid, gid, err, sizeof(err));
	if (m.run_fd < 0)
		startup_fail("%s", err);
	nofile_raise(&m.cf);
	master_lock(&m);
	master_clean_spool(&m);
	master_tls(&m, drop, uid, gid);
	master_listen(&m);
	master_control_bind(&m);
	if (chdir("/") < 0)
		startup_fail("chdir /: %s", strerror(errno));
	if (!m.rt.foreground)
		master_detach(&m);
	master_write_lock_pid(&m);
	master_write_pid(&m);
	signal(SIGPIPE, SIG_IGN);

	m.base = event_base_new();
	if (m.base == NULL)
		fatalx("event_base_new failed");
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		m.sig_ev[i] = evsignal_new(m.base, sigs[i], master_signal, &m);
		if (m.sig_ev[i] == NULL || evsignal_add(m.sig_ev[i], NULL) < 0)
			fatalx("cannot handle signal %d", sigs[i]);
	}
	m.started = wall_usec() / 1000000;
	m.control = control_start(m.base, m.control_fd, m.cf.control_socket, master_control, &m);
	log_info("daemon started: version %s, %zu listener%s", PACKAGE_VERSION, m.rt.nlisten,
	         m.rt.nlisten == 1 ? "" : "s");

	/* One verbosity for the master and every child it forks, so that
	 * log-level changes them all. */
	if (log_share_verbosity() < 0)
		log_warn("log level: not shared with the children");
	/* Signal handlers first: a child that dies at once is still seen. */
	child_set_init(&m.children, &m.rt, m.base, drop, uid, gid);
	m.children.master_fd = m.control_fd;
	m.children.on_exit = master_child_exited;
	m.children.on_exit_arg = &m;
	child_add(&m.children, "smtpd", smtpd_main, 1);
	child_add(&m.children, "scanner", scanner_main, 0);
	child_add(&m.children, "delivery", delivery_main, 0);
	child_start_all(&m.children);

	int rc = event_base_dispatch(m.base) < 0 ? 1 : 0;

	if (m.pid_written)
		unlink(m.pid_file);
	control_free(m.control);
	child_set_free(&m.children);
	if (m.grace_ev)
		event_free(m.grace_ev);
	if (m.hup_smtpd_ev)
		event_free(m.hup_smtpd_ev);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(m.sig_ev[i]);
	event_base_free(m.base);
	for (size_t i = 0; i < m.rt.nlisten; i++)
		close(m.rt.listen_fds[i]);
	free(m.rt.listen_fds);
	free(m.rt.overrides);
	free((char *)m.rt.conf_path);
	free(m.pid_file);
	conf_free(&m.cf);
	close(m.lock_fd);
	close(m.run_fd);
	return rc;
}
