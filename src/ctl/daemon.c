/*
 * daemon.c: tempomxctl's way to the running daemon: the master's pid from
 * pid_file, and the signals tempomxd(8) documents (SIGHUP: reload the
 * configuration and the whitelist file; SIGUSR1: retry the deferred
 * queue now).
 *
 * A pid file can outlive its daemon (kill -9) and its number be reused,
 * so a pid counts only when that process exists and is named tempomxd.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"

static int is_tempomxd(pid_t pid)
{
	char path[64], comm[64];
	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT; /* no /proc to ask: trust kill(0) */
	ssize_t n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strncmp(comm, "tempomxd", 8) == 0;
}

pid_t ctl_daemon_pid(const struct ctl *c)
{
	char buf[32];
	int fd = open(c->cf.pid_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end;
	long pid = strtol(buf, &end, 10);
	if (end == buf || pid <= 1 || (*end != '\n' && *end != '\0'))
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		return 0;
	return is_tempomxd((pid_t)pid) ? (pid_t)pid : 0;
}

int ctl_daemon_signal(struct ctl *c, int sig, const char *what)
{
	/* The master runs as root: signal it with the invoker's rights. */
	ctl_as_invoker(c);
	pid_t pid = ctl_daemon_pid(c);
	int rc = 0;
	if (pid == 0) {
		ctl_err("%s: tempomxd is not running (no live process in %s)", what,
		        c->cf.pid_file);
		rc = -1;
	} else if (kill(pid, sig) < 0) {
		ctl_err("%s: cannot signal tempomxd (pid %ld): %s", what, (long)pid,
		        errno == EPERM ? "permission denied" : strerror(errno));
		rc = -1;
	} else {
		log_info("%s: signal %d sent to tempomxd pid %ld", what, sig, (long)pid);
	}
	ctl_as_owner(c);
	return rc;
}
