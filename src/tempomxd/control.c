/*
 * control.c: the master's control socket: binding it with its owner and
 * mode, accepting connections in the master's event loop, reading one
 * request line, handing it to the master's handler (main.c, which owns
 * reload, flush and status) and writing the reply. The protocol is in
 * control.h; tempomxctl (src/ctl/daemon.c) is the client.
 *
 * The master must never wait for a client: connections are non-blocking,
 * a request longer than CONTROL_LINE_MAX or not complete within
 * CONTROL_TIMEOUT seconds is dropped, and a reply that does not fit in
 * the socket buffer at once (never the case for the few lines of a
 * reply) is cut rather than waited for.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "control.h"
#include "log.h"
#include "util.h"

struct control {
	int fd;
	char *path;
	struct event *ev;
	struct event_base *base;
	control_fn fn;
	void *arg;
	struct control_conn *conns; /* open connections, freed with the socket */
};

struct control_conn {
	struct control *ctl;
	struct control_conn *prev, *next;
	int fd;
	struct event *ev;
	char line[CONTROL_LINE_MAX + 1];
	size_t len;
};

static void reply_vadd(struct control_reply *r, const char *fmt, va_list ap)
{
	char *s;
	int n = vasprintf(&s, fmt, ap);
	if (n < 0)
		fatalx("out of memory");
	if (r->len + (size_t)n + 2 > r->cap) {
		r->cap = (r->len + (size_t)n + 2) * 2;
		r->buf = xrealloc(r->buf, r->cap);
	}
	/* One line each: no line end inside a value. */
	for (int i = 0; i < n; i++)
		r->buf[r->len++] = s[i] == '\n' || s[i] == '\r' ? ' ' : s[i];
	r->buf[r->len++] = '\n';
	free(s);
}

void control_reply_line(struct control_reply *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_vadd(r, fmt, ap);
	va_end(ap);
}

void control_reply_fail(struct control_reply *r, const char *fmt, ...)
{
	char msg[CONTROL_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!r->failed)
		control_reply_line(r, "error %s", msg);
	r->failed = 1;
}

int control_listen(const char *path, gid_t gid, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control_socket %s: path too long (at most %zu octets)", path,
		         sizeof(sun.sun_path) - 1);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* A socket left by a daemon that was killed; the spool lock says
	 * none runs now. Anything else is not ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control_socket %s: exists and is not a socket",
			         path);
			return -1;
		}
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control_socket: socket: %s", strerror(errno));
		return -1;
	}
	/* Created with no access at all, then opened up to 0660: nobody
	 * else can connect in between. */
	mode_t old = umask(0777);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "control_socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((geteuid() == 0 && chown(path, 0, gid) < 0) || chmod(path, 0660) < 0 ||
	    listen(fd, 16) < 0) {
		snprintf(err, errlen, "control_socket %s: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	return fd;
}

static void conn_free(struct control_conn *cc)
{
	if (cc->prev != NULL)
		cc->prev->next = cc->next;
	else
		cc->ctl->conns = cc->next;
	if (cc->next != NULL)
		cc->next->prev = cc->prev;
	event_free(cc->ev);
	close(cc->fd);
	free(cc);
}

static void conn_reply(struct control_conn *cc, struct control_reply *r)
{
	if (!r->failed)
		control_reply_line(r, "ok");
	size_t off = 0;
	while (off < r->len) {
		ssize_t n = send(cc->fd, r->buf + off, r->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warnx("control: reply cut after %zu of %zu octets", off, r->len);
			break;
		}
		off += (size_t)n;
	}
}

static void conn_request(struct control_conn *cc)
{
	struct control_reply r = {0};
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	uid_t uid = (uid_t)-1;
	if (getsockopt(cc->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		uid = cred.uid;

	char *line = cc->line;
	size_t plen = strlen(CONTROL_PROTOCOL);
	if (strncmp(line, CONTROL_PROTOCOL " ", plen + 1) != 0) {
		control_reply_fail(&r, "not a %s request", CONTROL_PROTOCOL);
	} else {
		char *p = line + plen + 1, *end;
		long version = strtol(p, &end, 10);
		if (end == p || (*end != ' ' && *end != '\0')) {
			control_reply_fail(&r, "no protocol version");
		} else if (version != CONTROL_VERSION) {
			control_reply_fail(&r,
			                   "protocol version %ld not supported (this daemon "
			                   "speaks %d)",
			                   version, CONTROL_VERSION);
		} else {
			while (*end == ' ')
				end++;
			char *cmd = end;
			char *args = cmd + strcspn(cmd, " ");
			if (*args == ' ')
				*args++ = '\0';
			if (*cmd == '\0')
				control_reply_fail(&r, "no command");
			else
				cc->ctl->fn(cc->ctl->arg, uid, cmd, args, &r);
		}
	}
	conn_reply(cc, &r);
	free(r.buf);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_conn *cc = arg;
	if (what & EV_TIMEOUT) {
		conn_free(cc);
		return;
	}
	ssize_t n = recv(fd, cc->line + cc->len, CONTROL_LINE_MAX - cc->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(cc);
		return;
	}
	cc->len += (size_t)n;
	cc->line[cc->len] = '\0';
	char *nl = strchr(cc->line, '\n');
	if (nl == NULL) {
		if (cc->len >= CONTROL_LINE_MAX) {
			struct control_reply r = {0};
			control_reply_fail(&r, "request longer than %d octets", CONTROL_LINE_MAX);
			conn_reply(cc, &r);
			free(r.buf);
			conn_free(cc);
		}
		return;
	}
	*nl = '\0';
	if (nl > cc->line && nl[-1] == '\r')
		nl[-1] = '\0';
	conn_request(cc);
	conn_free(cc);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	(void)what;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control: accept");
			return;
		}
		struct control_conn *cc = xcalloc(1, sizeof(*cc));
		cc->ctl = c;
		cc->fd = cfd;
		cc->next = c->conns;
		if (c->conns != NULL)
			c->conns->prev = cc;
		c->conns = cc;
		cc->ev = event_new(c->base, cfd, EV_READ | EV_PERSIST, conn_cb, cc);
		struct timeval tv = {CONTROL_TIMEOUT, 0};
		if (cc->ev == NULL || event_add(cc->ev, &tv) < 0)
			fatalx("control: cannot add a connection event");
	}
}

struct control *control_start(struct event_base *base, int fd, const char *path, control_fn fn,
                              void *arg)
{
	struct control *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->path = xstrdup(path);
	c->base = base;
	c->fn = fn;
	c->arg = arg;
	c->ev = event_new(base, fd, EV_READ | EV_PERSIST, accept_cb, c);
	if (c->ev == NULL || event_add(c->ev, NULL) < 0)
		fatalx("control: cannot add the socket event");
	return c;
}

void control_free(struct control *c)
{
	if (c == NULL)
		return;
	while (c->conns != NULL)
		conn_free(c->conns);
	event_free(c->ev);
	close(c->fd);
	if (unlink(c->path) < 0 && errno != ENOENT)
		log_warn("control: remove %s", c->path);
	free(c->path);
	free(c);
}
