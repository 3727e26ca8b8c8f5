/*
 * daemon.c: tempomxctl's way to the running daemon: one request on the
 * master's control socket (control_socket; protocol in
 * src/tempomxd/control.h): reload, flush, status.
 *
 * The socket belongs to root and control_group with mode 0660, so the
 * request is made with the invoker's identity, not the spool owner's
 * (ctl_as_invoker). A missing socket, or one nobody listens on, means
 * the daemon is not running.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "util.h"

#define CTL_PROTOCOL "tempomx-control 1"
#define CTL_REPLY_MAX (256 * 1024)
#define CTL_REPLY_TIMEOUT 30 /* seconds: a reload may take a moment */

static int connect_socket(struct ctl *c, const char *what)
{
	struct sockaddr_un sun;
	const char *path = c->cf.control_socket;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		ctl_err("%s: control_socket %s: path too long", what, path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ctl_err("%s: socket: %s", what, strerror(errno));
		return -1;
	}
	struct timeval tv = {CTL_REPLY_TIMEOUT, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	int e = errno;
	close(fd);
	if (e == ENOENT || e == ECONNREFUSED) {
		errno = e;
		return -2;
	}
	if (e == EACCES || e == EPERM)
		ctl_err("%s: %s: permission denied (root or control_group only)", what, path);
	else
		ctl_err("%s: cannot reach tempomxd at %s: %s", what, path, strerror(e));
	return -1;
}

int ctl_daemon_request(struct ctl *c, const char *cmd, char **lines, const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = -1;
	if (lines != NULL)
		*lines = NULL;
	ctl_as_invoker(c);
	int fd = connect_socket(c, what);
	if (fd == -2) {
		ctl_as_owner(c);
		return -2;
	}
	if (fd < 0)
		goto out;
	char req[256];
	int n = snprintf(req, sizeof(req), "%s %s\n", CTL_PROTOCOL, cmd);
	if (n < 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		ctl_err("%s: cannot send the request to tempomxd: %s", what, strerror(errno));
		goto out;
	}
	buf = xmalloc(CTL_REPLY_MAX + 1);
	for (;;) {
		ssize_t r = recv(fd, buf + len, CTL_REPLY_MAX - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ctl_err("%s: no reply from tempomxd: %s", what,
			        errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		if (r == 0 || (len += (size_t)r) >= CTL_REPLY_MAX)
			break;
	}
	buf[len] = '\0';
	/* The last line is "ok" or "error TEXT"; the lines before it are
	 * the data. */
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	char *last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	if (strcmp(last, "ok") == 0) {
		*last = '\0';
		if (last > buf && last[-1] == '\n')
			last[-1] = '\0';
		rc = 0;
	} else if (strncmp(last, "error ", 6) == 0) {
		ctl_err("%s: %s", what, last + 6);
	} else {
		ctl_err("%s: tempomxd sent no complete reply", what);
	}
	if (rc == 0 && lines != NULL) {
		*lines = buf;
		buf = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	ctl_as_owner(c);
	return rc;
}

int ctl_daemon_action(struct ctl *c, const char *cmd, const char *what)
{
	int rc = ctl_daemon_request(c, cmd, NULL, what);
	if (rc == -2)
		ctl_err("%s: tempomxd is not running (no control socket at %s)", what,
		        c->cf.control_socket);
	if (rc == 0)
		log_info("%s: requested from tempomxd", what);
	return rc == 0 ? 0 : -1;
}
