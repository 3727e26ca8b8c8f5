/*
 * harness.c: the integration-test harness (see harness.h).
 *
 * Owns: the temporary directory of each daemon under test, its
 * configuration file and log, the daemon process itself (started with
 * fork+exec, stopped by PID), the raw SMTP client used for protocol tests,
 * and the runner for external clients (swaks, curl, msmtp, python3).
 * Called by the t/integration/test_*.c files only.
 *
 * Every wait loop here has a deadline; nothing blocks without one (sockets
 * are polled, sends carry SO_SNDTIMEO). The harness never signals a process
 * it did not start: the daemon is signalled by the PID fork() returned, and
 * only when SIGTERM does not stop it are its own direct children (found by
 * their parent PID in /proc) killed as well.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TMX_TOP_SRCDIR
#define TMX_TOP_SRCDIR "."
#endif

#define H_MAX_DAEMONS 8
#define H_MAX_TRACKED 64
#define H_CMD_TIMEOUT_MS 10000
#define H_STOP_TIMEOUT_MS 15000

static struct h_daemon *registry[H_MAX_DAEMONS];
static pid_t tracked[H_MAX_TRACKED];

/* Leak checking is for the daemon, a separate program whose log is
 * checked after every stop; a test that fails an assertion half-way
 * leaves its buffers behind by design, which is no finding. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return 1;
}

/* ---- time ---- */

long long h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- registry and suite hooks ---- */

void h_setup(void)
{
	memset(registry, 0, sizeof(registry));
	memset(tracked, 0, sizeof(tracked));
	/* A client that dies under us must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
}

void h_teardown(void)
{
	for (size_t i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked[i] > 0) {
			kill(tracked[i], SIGKILL);
			waitpid(tracked[i], NULL, 0);
			tracked[i] = 0;
		}
	}
	for (size_t i = 0; i < H_MAX_DAEMONS; i++) {
		if (registry[i]) {
			h_daemon_kill(registry[i]);
			h_daemon_free(registry[i]);
		}
	}
}

void h_track(pid_t pid)
{
	for (size_t i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked[i] == 0) {
			tracked[i] = pid;
			return;
		}
	}
}

void h_untrack(pid_t pid)
{
	for (size_t i = 0; i < H_MAX_TRACKED; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

static void registry_add(struct h_daemon *d)
{
	for (size_t i = 0; i < H_MAX_DAEMONS; i++) {
		if (registry[i] == d)
			return;
	}
	for (size_t i = 0; i < H_MAX_DAEMONS; i++) {
		if (!registry[i]) {
			registry[i] = d;
			return;
		}
	}
	cr_assert_fail("too many daemons in one test");
}

static void registry_del(struct h_daemon *d)
{
	for (size_t i = 0; i < H_MAX_DAEMONS; i++)
		if (registry[i] == d)
			registry[i] = NULL;
}

/* ---- paths ---- */

const char *h_tempomxd(void)
{
	static char path[H_PATH];
	const char *e = getenv("TEMPOMXD");

	if (e && *e)
		return e;
	e = getenv("TMX_BUILDDIR");
	snprintf(path, sizeof(path), "%s/tempomxd", e && *e ? e : ".");
	return path;
}

void h_srcpath(const char *rel, char *out, size_t size)
{
	const char *e = getenv("TMX_SRCDIR");

	snprintf(out, size, "%s/%s", e && *e ? e : TMX_TOP_SRCDIR, rel);
}

/* ---- files ---- */

char *h_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536, n = 0;
	char *buf;

	if (fd == -1)
		return NULL;
	buf = malloc(cap + 1);
	cr_assert_not_null(buf);
	for (;;) {
		ssize_t r;

		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			cr_assert_not_null(buf);
		}
		r = read(fd, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int h_write_file(const char *path, const void *buf, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const char *p = buf;

	if (fd == -1)
		return -1;
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}

int h_contains(const char *hay, size_t haylen, const char *needle)
{
	return hay && memmem(hay, haylen, needle, strlen(needle)) != NULL;
}

int h_count(const char *hay, size_t haylen, const char *needle)
{
	size_t nl = strlen(needle);
	const char *p = hay, *end = hay + haylen;
	int n = 0;

	if (!hay || nl == 0)
		return 0;
	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), needle, nl);

		if (!q)
			break;
		n++;
		p = q + nl;
	}
	return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	if (dir[0] == '\0' || strncmp(dir, "/tmp/", 5) != 0)
		return; /* only ever our own mkdtemp directories */
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- daemon configuration ---- */

static void run_user(uid_t *uid, gid_t *gid, char *name, size_t size)
{
	struct passwd *pw;

	if (geteuid() == 0) {
		pw = getpwnam("nobody");
		cr_assert_not_null(pw, "no user nobody");
	} else {
		pw = getpwuid(geteuid());
		cr_assert_not_null(pw, "cannot find my own user name");
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	snprintf(name, size, "%s", pw->pw_name);
}

void h_chown_run_user(const char *path)
{
	char user[64];
	uid_t uid;
	gid_t gid;

	run_user(&uid, &gid, user, sizeof(user));
	cr_assert_eq(chown(path, uid, gid), 0, "chown %s: %s", path, strerror(errno));
}

/* A port that was free a moment ago, outside the kernel's ephemeral range
 * so client sockets of parallel tests do not take it. */
int h_free_port(void)
{
	static unsigned seed;

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)h_now_ms();
	for (int tries = 0; tries < 200; tries++) {
		int port = 20000 + (int)(rand_r(&seed) % 12000);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		cr_assert(fd >= 0);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	cr_assert_fail("no free port found");
	return -1;
}

void h_daemon_init(struct h_daemon *d)
{
	char user[64];
	uid_t uid;
	gid_t gid;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/tmx-itest.XXXXXX");
	cr_assert_not_null(mkdtemp(d->dir), "mkdtemp: %s", strerror(errno));
	/* The children run as an unprivileged user: they must be able to
	 * walk through the directory to reach the spool and the Maildirs. */
	cr_assert_eq(chmod(d->dir, 0755), 0);
	snprintf(d->conf, sizeof(d->conf), "%s/tempomx.conf", d->dir);
	snprintf(d->spool, sizeof(d->spool), "%s/spool", d->dir);
	snprintf(d->mail, sizeof(d->mail), "%s/mail", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
	run_user(&uid, &gid, user, sizeof(user));
	cr_assert_eq(mkdir(d->mail, 0755), 0);
	cr_assert_eq(chown(d->mail, uid, gid), 0, "chown %s: %s", d->mail, strerror(errno));
	registry_add(d);

	d->port = h_free_port();
	h_set(d, "listen", "127.0.0.1:%d", d->port);
	h_set(d, "spool_directory", "%s", d->spool);
	h_set(d, "user", "%s", user);
	h_set(d, "maildir", "%s/%%d/%%u/", d->mail);
	/* The tests compare Maildir files with the octets sent over SMTP;
	 * the LF default has its own test (test_delivery). */
	h_set(d, "maildir_crlf", "yes");
	h_set(d, "hostname", "mx.example.test");
	h_set(d, "scan", "no");
	h_set(d, "command_timeout", "30s");
	h_set(d, "data_timeout", "30s");
	h_set(d, "shutdown_grace", "2s");
	h_set(d, "queue_rescan_interval", "2s");
	/* The timing classifier's probing delays (split banner, delayed
	 * reply) would slow every test down; t/integration/test_classify.c
	 * sets its own. */
	h_set(d, "greet_pause", "0");
	h_set(d, "patience_delay", "0");
	/* The client's name would be asked of the system's DNS servers,
	 * which a test machine may not reach, before every greeting;
	 * t/integration/test_rdns.c runs its own. */
	h_set(d, "reverse_dns", "no");
}

void h_set(struct h_daemon *d, const char *key, const char *fmt, ...)
{
	char val[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < d->nkeys; i++) {
		if (strcmp(d->keys[i], key) == 0) {
			free(d->values[i]);
			d->values[i] = strdup(val);
			return;
		}
	}
	cr_assert_lt(d->nkeys, (size_t)H_MAXKEYS);
	d->keys[d->nkeys] = strdup(key);
	d->values[d->nkeys] = strdup(val);
	d->nkeys++;
}

void h_unset(struct h_daemon *d, const char *key)
{
	for (size_t i = 0; i < d->nkeys; i++) {
		if (strcmp(d->keys[i], key) == 0) {
			free(d->keys[i]);
			free(d->values[i]);
			memmove(&d->keys[i], &d->keys[i + 1], (d->nkeys - i - 1) * sizeof(char *));
			memmove(&d->values[i], &d->values[i + 1],
			        (d->nkeys - i - 1) * sizeof(char *));
			d->nkeys--;
			return;
		}
	}
}

void h_conf_append(struct h_daemon *d, const char *text)
{
	size_t old = d->extra ? strlen(d->extra) : 0;

	d->extra = realloc(d->extra, old + strlen(text) + 1);
	cr_assert_not_null(d->extra);
	memcpy(d->extra + old, text, strlen(text) + 1);
}

int h_write_conf(struct h_daemon *d)
{
	char tmp[H_PATH + 8];
	FILE *fp;
	int lines = 0;

	/* Write a new file and rename it, so a daemon re-reading it on
	 * SIGHUP never sees half of it. */
	snprintf(tmp, sizeof(tmp), "%s.new", d->conf);
	fp = fopen(tmp, "w");
	cr_assert_not_null(fp, "%s: %s", tmp, strerror(errno));
	fprintf(fp, "# written by the integration test harness\n");
	lines++;
	for (size_t i = 0; i < d->nkeys; i++) {
		fprintf(fp, "%s = %s\n", d->keys[i], d->values[i]);
		lines++;
	}
	if (d->extra) {
		fputs(d->extra, fp);
		for (const char *p = d->extra; *p; p++)
			lines += *p == '\n';
	}
	cr_assert_eq(fclose(fp), 0);
	cr_assert_eq(rename(tmp, d->conf), 0);
	return lines;
}

/* ---- daemon process ---- */

/* Read the greeting of a fresh connection and say QUIT: the daemon is
 * ready only when its smtpd child answers, not when the master has bound
 * the socket (the kernel completes the handshake on its own). */
static int probe_greeting(int port, long long deadline)
{
	struct h_conn *c = malloc(sizeof(*c));
	int code, left;

	cr_assert_not_null(c);
	if (h_connect(c, NULL, port) == -1) {
		free(c);
		return -1;
	}
	left = (int)(deadline - h_now_ms());
	code = h_reply(c, left > 100 ? left : 100);
	if (code == 220) {
		h_send(c, "QUIT\r\n", 6);
		h_reply(c, 2000);
		/* Wait for the close so the session no longer counts against
		 * the connection limits when the test starts. */
		h_wait_closed(c, 2000);
	}
	h_close(c);
	free(c);
	return code == 220 ? 0 : -1;
}

/* 1 if the daemon's log holds needle after offset start (this run's part
 * of a log that several runs append to). */
static int log_has_since(struct h_daemon *d, off_t start, const char *needle)
{
	size_t len;
	char *log = h_read_file(d->log, &len);
	int found = log != NULL && (size_t)start <= len &&
	            h_contains(log + start, len - (size_t)start, needle);
	free(log);
	return found;
}

/* Fork and exec the daemon; with log_start set to where its log lines
 * begin. */
static void daemon_exec(struct h_daemon *d, off_t *log_start)
{
	pid_t parent = getpid();
	int logfd;
	pid_t pid;

	h_write_conf(d);
	logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert(logfd >= 0, "%s: %s", d->log, strerror(errno));
	off_t log_start_off = lseek(logfd, 0, SEEK_END);
	d->status = 0;
	d->killed = 0;
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDONLY);

		/* If the test process dies, the daemon must not outlive it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		signal(SIGPIPE, SIG_DFL);
		execl(h_tempomxd(), "tempomxd", "-d", "-f", d->conf, (char *)NULL);
		dprintf(2, "exec %s: %s\n", h_tempomxd(), strerror(errno));
		_exit(127);
	}
	close(logfd);
	d->pid = pid;
	*log_start = log_start_off;
}

int h_daemon_spawn(struct h_daemon *d, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	off_t log_start;
	daemon_exec(d, &log_start);
	while (h_now_ms() < deadline) {
		if (!h_daemon_alive(d))
			return -1;
		if (log_has_since(d, log_start, "daemon started"))
			return 0;
		h_sleep_ms(5);
	}
	return -1;
}

int h_daemon_try_start(struct h_daemon *d, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	off_t log_start;
	daemon_exec(d, &log_start);
	while (h_now_ms() < deadline) {
		if (!h_daemon_alive(d))
			return -1;
		/* Only probe once our master has bound its listeners: before
		 * that, a 220 on the port could come from another test's
		 * daemon that took the same port first. */
		if (!log_has_since(d, log_start, "daemon started")) {
			h_sleep_ms(20);
			continue;
		}
		if (probe_greeting(d->port, deadline) == 0)
			return 0;
		h_sleep_ms(50);
	}
	return -1;
}

void h_daemon_start(struct h_daemon *d)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		if (h_daemon_try_start(d, 20000) == 0)
			return;
		if (d->pid == 0 && h_log_has(d, "in use")) {
			/* Someone took the port between our check and the
			 * daemon's bind: try another one. */
			d->port = h_free_port();
			h_set(d, "listen", "127.0.0.1:%d", d->port);
			continue;
		}
		break;
	}
	h_dump_log(d, 40);
	if (d->pid == 0)
		cr_assert_fail("tempomxd (%s) exited at start-up, status 0x%x; log %s",
		               h_tempomxd(), d->status, d->log);
	h_daemon_kill(d);
	cr_assert_fail("tempomxd did not greet on port %d within 20 s; log %s", d->port, d->log);
}

int h_daemon_alive(struct h_daemon *d)
{
	int st;
	pid_t r;

	if (d->pid <= 0)
		return 0;
	r = waitpid(d->pid, &st, WNOHANG);
	if (r == d->pid) {
		d->status = st;
		d->pid = 0;
		return 0;
	}
	return 1;
}

static int wait_exit(struct h_daemon *d, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	while (h_daemon_alive(d)) {
		if (h_now_ms() >= deadline)
			return -1;
		h_sleep_ms(20);
	}
	return 0;
}

static int proc_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Stop d->pid; returns 1 if it had to be killed. kids receives the
 * children seen before the SIGTERM (for the orphan check). */
static int stop_process(struct h_daemon *d, pid_t *kids, int *nkids, int timeout_ms)
{
	*nkids = h_children(d->pid, kids, 64);
	kill(d->pid, SIGTERM);
	if (wait_exit(d, timeout_ms) == 0)
		return 0;
	/* SIGTERM was not enough: kill the children we know of, then it. */
	int n = h_children(d->pid, kids + *nkids, 64 - *nkids);
	*nkids += n;
	for (int i = 0; i < *nkids; i++)
		kill(kids[i], SIGKILL);
	kill(d->pid, SIGKILL);
	wait_exit(d, 5000);
	return 1;
}

int h_daemon_stop(struct h_daemon *d)
{
	pid_t kids[128];
	int nkids = 0, left = 0;
	long long deadline;

	if (d->pid <= 0) {
		h_check_sanitizers(d);
		return d->status;
	}
	d->killed = stop_process(d, kids, &nkids, H_STOP_TIMEOUT_MS);
	/* The master waits for its children before it exits; none may be
	 * left behind. Give the kernel a moment to reap re-parented ones. */
	deadline = h_now_ms() + 3000;
	for (int i = 0; i < nkids; i++) {
		while (proc_alive(kids[i]) && h_now_ms() < deadline)
			h_sleep_ms(20);
		if (proc_alive(kids[i])) {
			left++;
			kill(kids[i], SIGKILL);
		}
	}
	h_check_sanitizers(d);
	if (d->killed || left || !WIFEXITED(d->status) || WEXITSTATUS(d->status) != 0)
		h_dump_log(d, 30);
	cr_expect(!d->killed, "tempomxd did not stop within %d ms of SIGTERM", H_STOP_TIMEOUT_MS);
	cr_expect_eq(left, 0, "%d child process(es) still running after the master exited", left);
	if (!d->killed) {
		cr_expect(WIFEXITED(d->status) && WEXITSTATUS(d->status) == 0,
		          "tempomxd exit status after SIGTERM: %s %d",
		          WIFEXITED(d->status) ? "exit" : "signal",
		          WIFEXITED(d->status) ? WEXITSTATUS(d->status) : WTERMSIG(d->status));
	}
	return d->status;
}

void h_daemon_kill(struct h_daemon *d)
{
	pid_t kids[128];
	int nkids;

	if (d->pid <= 0)
		return;
	stop_process(d, kids, &nkids, 5000);
	for (int i = 0; i < nkids; i++)
		if (proc_alive(kids[i]))
			kill(kids[i], SIGKILL);
}

void h_daemon_free(struct h_daemon *d)
{
	if (d->pid > 0)
		h_daemon_kill(d);
	if (d->dir[0]) {
		if (getenv("TMX_ITEST_KEEP"))
			cr_log_info("kept %s", d->dir);
		else
			rm_tree(d->dir);
		d->dir[0] = '\0';
	}
	for (size_t i = 0; i < d->nkeys; i++) {
		free(d->keys[i]);
		free(d->values[i]);
	}
	d->nkeys = 0;
	free(d->extra);
	d->extra = NULL;
	registry_del(d);
}

void h_check_sanitizers(struct h_daemon *d)
{
	static const char *const bad[] = {"AddressSanitizer", "runtime error:", "LeakSanitizer"};
	size_t len;
	char *log = h_read_file(d->log, &len);

	if (!log)
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = memmem(log, len, bad[i], strlen(bad[i]));

		if (p) {
			const char *s = p;
			int lines = 0;

			/* Show the report from the line before it. */
			while (s > log && lines < 2) {
				s--;
				lines += *s == '\n';
			}
			cr_log_error("sanitizer report in %s:\n%.3000s", d->log, s);
			cr_expect_fail("the daemon log holds a sanitizer report (%s)", bad[i]);
			break;
		}
	}
	free(log);
}

void h_dump_log(struct h_daemon *d, int lines)
{
	size_t len;
	char *log = h_read_file(d->log, &len);
	const char *p;
	int n = 0;

	if (!log) {
		cr_log_info("(no daemon log at %s)", d->log);
		return;
	}
	p = log + len;
	while (p > log && n <= lines) {
		p--;
		n += *p == '\n';
	}
	cr_log_info("last lines of %s:\n%s", d->log, p);
	free(log);
}

/* ---- /proc ---- */

static pid_t stat_ppid(const char *pidstr)
{
	char path[64], buf[512], *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/stat", pidstr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The name may hold spaces and parentheses: parse after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return -1;
	return (pid_t)strtol(p + 4, NULL, 10);
}

int h_children(pid_t pid, pid_t *out, int max)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL && n < max) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (stat_ppid(de->d_name) == pid)
			out[n++] = (pid_t)strtol(de->d_name, NULL, 10);
	}
	closedir(dir);
	return n;
}

void h_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	size_t len;
	char *s;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	s = h_read_file(path, &len);
	if (!s) {
		buf[0] = '\0';
		return;
	}
	while (len > 0 && (s[len - 1] == '\n'))
		s[--len] = '\0';
	snprintf(buf, size, "%s", s);
	free(s);
}

/* ---- log ---- */

int h_log_has(struct h_daemon *d, const char *needle)
{
	size_t len;
	char *log = h_read_file(d->log, &len);
	int found = h_contains(log, len, needle);

	free(log);
	return found;
}

int h_log_wait(struct h_daemon *d, const char *needle, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	for (;;) {
		if (h_log_has(d, needle))
			return 1;
		if (h_now_ms() >= deadline)
			return 0;
		h_sleep_ms(50);
	}
}

/* ---- spool ---- */

static int count_files(const char *dirpath)
{
	DIR *dir = opendir(dirpath);
	struct dirent *de;
	int n = 0;

	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

int h_spool_count(struct h_daemon *d, const char *queue)
{
	char path[H_PATH + 32];

	snprintf(path, sizeof(path), "%s/%s", d->spool, queue);
	return count_files(path);
}

int h_spool_total(struct h_daemon *d)
{
	static const char *const q[] = {"hi", "lo", "out", "deferred", "hold", "quarantine"};
	int n = 0;

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		n += h_spool_count(d, q[i]);
	return n;
}

int h_spool_wait_idle(struct h_daemon *d, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	for (;;) {
		if (h_spool_count(d, "incoming") + h_spool_count(d, "hi") + h_spool_count(d, "lo") +
		        h_spool_count(d, "out") ==
		    0)
			return 1;
		if (h_now_ms() >= deadline)
			return 0;
		h_sleep_ms(50);
	}
}

char *h_spool_slurp(struct h_daemon *d, const char *queue, int *count)
{
	char path[H_PATH + 32], file[H_PATH + 32 + 260];
	DIR *dir;
	struct dirent *de;
	char *all = calloc(1, 1);
	size_t len = 0;

	cr_assert_not_null(all);
	*count = 0;
	snprintf(path, sizeof(path), "%s/%s", d->spool, queue);
	dir = opendir(path);
	if (!dir)
		return all;
	while ((de = readdir(dir)) != NULL) {
		size_t flen;
		char *s;

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		s = h_read_file(file, &flen);
		if (!s)
			continue; /* moved on meanwhile */
		all = realloc(all, len + flen + 2);
		cr_assert_not_null(all);
		memcpy(all + len, s, flen);
		len += flen;
		all[len++] = '\n';
		all[len] = '\0';
		free(s);
		(*count)++;
	}
	closedir(dir);
	return all;
}

/* ---- Maildir ---- */

void h_maildir(struct h_daemon *d, const char *domain, const char *user, char *out, size_t size)
{
	snprintf(out, size, "%s/%s/%s", d->mail, domain, user);
}

int h_maildir_count(const char *maildir)
{
	char path[H_PATH + 16];
	int n;

	snprintf(path, sizeof(path), "%s/new", maildir);
	n = count_files(path);
	snprintf(path, sizeof(path), "%s/cur", maildir);
	return n + count_files(path);
}

int h_maildir_wait(const char *maildir, int n, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int have;

	for (;;) {
		have = h_maildir_count(maildir);
		if (have >= n || h_now_ms() >= deadline)
			return have;
		h_sleep_ms(50);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int h_maildir_list(const char *maildir, char ***paths)
{
	static const char *const sub[] = {"new", "cur"};
	char **v = NULL;
	int n = 0, cap = 0;

	for (size_t i = 0; i < 2; i++) {
		char path[H_PATH + 16];
		DIR *dir;
		struct dirent *de;
		int first = n;

		snprintf(path, sizeof(path), "%s/%s", maildir, sub[i]);
		dir = opendir(path);
		if (!dir)
			continue;
		while ((de = readdir(dir)) != NULL) {
			size_t l;

			if (de->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = realloc(v, (size_t)cap * sizeof(*v));
				cr_assert_not_null(v);
			}
			l = strlen(path) + strlen(de->d_name) + 2;
			v[n] = malloc(l);
			cr_assert_not_null(v[n]);
			snprintf(v[n], l, "%s/%s", path, de->d_name);
			n++;
		}
		closedir(dir);
		qsort(v + first, (size_t)(n - first), sizeof(*v), cmp_str);
	}
	*paths = v;
	return n;
}

void h_free_list(char **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int header_line_ok(const char *s, size_t len, int first)
{
	size_t i = 0;

	if (len == 0)
		return 0;
	if (s[0] == ' ' || s[0] == '\t')
		return !first; /* a folded continuation */
	/* field-name = 1*(%d33-57 / %d59-126), RFC 5322 3.6.8 */
	while (i < len && s[i] != ':') {
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			return 0;
		i++;
	}
	return i > 0 && i < len;
}

const char *h_check_delivered(const char *path, const char *msg, size_t len)
{
	static char why[512];
	size_t flen, plen, off = 0;
	char *f = h_read_file(path, &flen);
	int received = 0, first = 1;

	if (!f) {
		snprintf(why, sizeof(why), "cannot read %s: %s", path, strerror(errno));
		return why;
	}
	if (flen < len || memcmp(f + flen - len, msg, len) != 0) {
		/* Explain where it differs, starting from where the message
		 * seems to begin. */
		size_t probe = len < 32 ? len : 32;
		const char *start = memmem(f, flen, msg, probe);

		if (!start) {
			snprintf(why, sizeof(why),
			         "%s (%zu octets) does not contain the start of the message", path,
			         flen);
		} else {
			size_t o = (size_t)(start - f), i = 0;

			while (o + i < flen && i < len && f[o + i] == msg[i])
				i++;
			snprintf(why, sizeof(why),
			         "%s: message differs at octet %zu of %zu (file has %zu octets "
			         "after the headers); sent 0x%02x, file 0x%02x",
			         path, i, len, flen - o, i < len ? (unsigned char)msg[i] : 0,
			         o + i < flen ? (unsigned char)f[o + i] : 0);
		}
		free(f);
		return why;
	}
	plen = flen - len;
	while (off < plen) {
		const char *eol = memchr(f + off, '\n', plen - off);
		size_t llen;

		if (!eol || eol == f + off || eol[-1] != '\r') {
			snprintf(why, sizeof(why),
			         "%s: added header text is not CRLF-terminated lines (offset %zu)",
			         path, off);
			free(f);
			return why;
		}
		llen = (size_t)(eol - 1 - (f + off));
		if (!header_line_ok(f + off, llen, first)) {
			snprintf(why, sizeof(why), "%s: added text is not a header line: %.*s",
			         path, (int)(llen > 200 ? 200 : llen), f + off);
			free(f);
			return why;
		}
		if (llen >= 9 && strncasecmp(f + off, "Received:", 9) == 0)
			received++;
		first = 0;
		off = (size_t)(eol - f) + 1;
	}
	free(f);
	if (received == 0) {
		snprintf(why, sizeof(why), "%s: no Received: header was added", path);
		return why;
	}
	return NULL;
}

/* ---- raw SMTP client ---- */

int h_connect(struct h_conn *c, const char *src, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {20, 0};
	int fd;

	memset(c, 0, offsetof(struct h_conn, buf));
	c->last[0] = '\0';
	c->fd = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (src) {
		struct sockaddr_in me = {.sin_family = AF_INET};

		if (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
		    bind(fd, (struct sockaddr *)&me, sizeof(me)) == -1) {
			close(fd);
			return -1;
		}
	}
	/* A bounded send: a server that stops reading cannot hang a test. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	c->fd = fd;
	return 0;
}

void h_open(struct h_conn *c, const char *src, int port)
{
	int code;

	cr_assert_eq(h_connect(c, src, port), 0, "connect from %s to port %d: %s",
	             src ? src : "any", port, strerror(errno));
	code = h_reply(c, H_CMD_TIMEOUT_MS);
	cr_assert_eq(code, 220, "greeting: expected 220, got %d: %s", code, c->last);
}

void h_close(struct h_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int h_send(struct h_conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int h_sendf(struct h_conn *c, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(buf));
	return h_send(c, buf, (size_t)n);
}

/* Read more octets into c->buf; 1 = got some, 0 = EOF/reset, -1 = timeout. */
static int fill(struct h_conn *c, long long deadline)
{
	for (;;) {
		long long left = deadline - h_now_ms();
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		ssize_t r;
		int pr;

		if (left <= 0)
			return -1;
		pr = poll(&pfd, 1, (int)left);
		if (pr == -1 && errno == EINTR)
			continue;
		if (pr == 0)
			return -1;
		if (c->len == sizeof(c->buf)) {
			/* Nobody consumes this: drop the oldest half. */
			memmove(c->buf, c->buf + sizeof(c->buf) / 2, sizeof(c->buf) / 2);
			c->len = sizeof(c->buf) / 2;
		}
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			c->eof = 1;
			return 0;
		}
		c->len += (size_t)r;
		return 1;
	}
}

int h_reply(struct h_conn *c, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	size_t lastlen = 0;

	c->last[0] = '\0';
	if (c->fd < 0)
		return 0;
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl) {
			size_t ll = (size_t)(nl - c->buf) + 1;
			int code, ok;
			char sep;

			if (lastlen + ll < sizeof(c->last)) {
				memcpy(c->last + lastlen, c->buf, ll);
				lastlen += ll;
				c->last[lastlen] = '\0';
			}
			ok = ll >= 5 && isdigit((unsigned char)c->buf[0]) &&
			     isdigit((unsigned char)c->buf[1]) && isdigit((unsigned char)c->buf[2]);
			sep = ll >= 5 ? c->buf[3] : 0;
			code = ok ? (c->buf[0] - '0') * 100 + (c->buf[1] - '0') * 10 +
			                (c->buf[2] - '0')
			          : 0;
			memmove(c->buf, c->buf + ll, c->len - ll);
			c->len -= ll;
			/* "250\r\n" (no text) is a valid last line as well. */
			if (ok && sep == '-')
				continue;
			if (ok && (sep == ' ' || sep == '\r'))
				return code;
			return -2;
		}
		if (c->eof)
			return 0;
		if (c->len == sizeof(c->buf))
			return -2; /* a "line" of 64 KB is not a reply */
		if (fill(c, deadline) == -1)
			return -1;
	}
}

static int vcmd(struct h_conn *c, char *line, size_t size, const char *fmt, va_list ap)
{
	char buf[8192];
	int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);

	cr_assert(n >= 0 && (size_t)n < sizeof(buf) - 2, "command too long for h_cmd");
	/* Keep the start of the command for assertion messages. */
	memcpy(line, buf, (size_t)n < size ? (size_t)n + 1 : size);
	line[size - 1] = '\0';
	memcpy(buf + n, "\r\n", 2);
	if (h_send(c, buf, (size_t)n + 2) == -1) {
		snprintf(c->last, sizeof(c->last), "(send failed: %s)", strerror(errno));
		return -3;
	}
	return h_reply(c, H_CMD_TIMEOUT_MS);
}

int h_cmd(struct h_conn *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = vcmd(c, line, sizeof(line), fmt, ap);
	va_end(ap);
	return code;
}

void h_expect(struct h_conn *c, int code, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int got;

	va_start(ap, fmt);
	got = vcmd(c, line, sizeof(line), fmt, ap);
	va_end(ap);
	cr_assert_eq(got, code, "\"%s\": expected %d, got %d: %s", line, code, got, c->last);
}

void h_expect_reply(struct h_conn *c, int code, const char *what)
{
	int got = h_reply(c, H_CMD_TIMEOUT_MS);

	cr_assert_eq(got, code, "%s: expected %d, got %d: %s", what, code, got, c->last);
}

int h_last_has(struct h_conn *c, const char *s)
{
	return strstr(c->last, s) != NULL;
}

int h_wait_closed(struct h_conn *c, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	if (c->fd < 0)
		return 1;
	while (!c->eof) {
		if (fill(c, deadline) == -1)
			return 0;
	}
	return 1;
}

char *h_dotstuff(const char *msg, size_t len, size_t *outlen)
{
	char *out = malloc(len * 2 + 8);
	size_t o = 0;
	int bol = 1;

	cr_assert_not_null(out);
	for (size_t i = 0; i < len; i++) {
		if (bol && msg[i] == '.')
			out[o++] = '.';
		out[o++] = msg[i];
		bol = msg[i] == '\n' && i > 0 && msg[i - 1] == '\r';
	}
	if (len > 0 && !(len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n')) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	o += 3;
	*outlen = o;
	return out;
}

int h_transaction(struct h_conn *c, const char *helo, const char *from, const char *const *rcpts,
                  const char *msg, size_t len)
{
	size_t slen;
	char *stuffed;
	int code;

	if (helo && (code = h_cmd(c, "EHLO %s", helo)) != 250)
		return code;
	if ((code = h_cmd(c, "MAIL FROM:<%s>", from)) != 250)
		return code;
	for (size_t i = 0; rcpts[i]; i++)
		if ((code = h_cmd(c, "RCPT TO:<%s>", rcpts[i])) != 250)
			return code;
	if ((code = h_cmd(c, "DATA")) != 354)
		return code;
	stuffed = h_dotstuff(msg, len, &slen);
	if (h_send(c, stuffed, slen) == -1) {
		free(stuffed);
		return -3;
	}
	free(stuffed);
	return h_reply(c, 30000);
}

int h_send_mail(int port, const char *src, const char *from, const char *const *rcpts,
                const char *msg, size_t len)
{
	struct h_conn *c = malloc(sizeof(*c));
	int code;

	cr_assert_not_null(c);
	if (h_connect(c, src, port) == -1) {
		free(c);
		return -4;
	}
	code = h_reply(c, H_CMD_TIMEOUT_MS);
	if (code == 220) {
		code = h_transaction(c, "client.example.test", from, rcpts, msg, len);
		if (code > 0)
			h_cmd(c, "QUIT");
	}
	h_close(c);
	free(c);
	return code;
}

char *h_make_message(const char *subject, const char *token, size_t *len)
{
	char *m = NULL;
	int n = asprintf(&m,
	                 "From: Test Sender <sender@example.test>\r\n"
	                 "To: Test Recipient <rcpt@example.test>\r\n"
	                 "Subject: %s\r\n"
	                 "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
	                 "Message-ID: <%s@client.example.test>\r\n"
	                 "X-Token: %s\r\n"
	                 "\r\n"
	                 "First line of the body, token %s.\r\n"
	                 ".A line that starts with a dot.\r\n"
	                 "..Two dots.\r\n"
	                 ".\r\n"
	                 "Tab\there, trailing space \r\n"
	                 "\r\n"
	                 "Last line.\r\n",
	                 subject, token, token, token);

	cr_assert(n > 0 && m);
	*len = (size_t)n;
	return m;
}

/* ---- external commands ---- */

int h_run(char *const argv[], const void *in, size_t inlen, int timeout_ms, char **out,
          size_t *outlen)
{
	long long deadline = h_now_ms() + timeout_ms;
	int inpipe[2], outpipe[2], st = 0, timed_out = 0;
	size_t cap = 65536, n = 0, sent = 0;
	char *buf = malloc(cap + 1);
	pid_t pid;

	cr_assert_not_null(buf);
	cr_assert_eq(pipe2(inpipe, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(outpipe, O_CLOEXEC), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		dup2(inpipe[0], 0);
		dup2(outpipe[1], 1);
		dup2(outpipe[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	h_track(pid);
	close(inpipe[0]);
	close(outpipe[1]);
	fcntl(inpipe[1], F_SETFL, O_NONBLOCK);
	if (!in || inlen == 0) {
		close(inpipe[1]);
		inpipe[1] = -1;
	}
	for (;;) {
		struct pollfd pfd[2] = {{.fd = outpipe[0], .events = POLLIN},
		                        {.fd = inpipe[1], .events = POLLOUT}};
		long long left = deadline - h_now_ms();
		int pr;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		pr = poll(pfd, inpipe[1] >= 0 ? 2 : 1, (int)left);
		if (pr == -1 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		if (inpipe[1] >= 0 && (pfd[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(inpipe[1], (const char *)in + sent, inlen - sent);

			if (w > 0)
				sent += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				sent = inlen;
			if (sent >= inlen) {
				close(inpipe[1]);
				inpipe[1] = -1;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r;

			if (n == cap) {
				cap *= 2;
				buf = realloc(buf, cap + 1);
				cr_assert_not_null(buf);
			}
			r = read(outpipe[0], buf + n, cap - n);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			n += (size_t)r;
		}
	}
	if (inpipe[1] >= 0)
		close(inpipe[1]);
	close(outpipe[0]);
	/* Output closed: the process is ending; still bound the wait. */
	while (!timed_out && waitpid(pid, &st, WNOHANG) == 0) {
		if (h_now_ms() >= deadline)
			timed_out = 1;
		else
			h_sleep_ms(10);
	}
	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	h_untrack(pid);
	buf[n] = '\0';
	if (out)
		*out = buf;
	else
		free(buf);
	if (outlen)
		*outlen = n;
	if (timed_out)
		return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
