/*
 * harness_daemon.c: the daemon process under test: start (fork+exec of
 * tempomxd -d, waiting for its greeting), stop by PID with a deadline,
 * kill, the sanitizer check of its log, its children found in /proc, and
 * waits on log lines. Part of libharness.a (see harness.c).
 */
#include "harness.h"
#include "harness_int.h"

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
			h_rm_tree(d->dir);
		d->dir[0] = '\0';
	}
	for (size_t i = 0; i < d->nkeys; i++) {
		free(d->keys[i]);
		free(d->values[i]);
	}
	d->nkeys = 0;
	free(d->extra);
	d->extra = NULL;
	h_registry_del(d);
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
