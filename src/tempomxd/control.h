/*
 * control.h: the master's control socket (src/tempomxd/control.c), the
 * way tempomxctl asks the running daemon to act.
 *
 * A unix stream socket at control_socket, owned by root and
 * control_group, mode 0660. One request per connection, one line:
 *
 *   tempomx-control 1 COMMAND [ARGUMENT]
 *
 * ("1" is the protocol version). The reply is zero or more data lines,
 * then one final line, "ok" or "error TEXT", and the daemon closes the
 * connection. A request of another version gets "error" naming the
 * version the daemon speaks. Requests and replies are short (a request
 * at most CONTROL_LINE_MAX octets), so neither side needs more than one
 * read and one write in practice; the daemon still never blocks on a
 * client, and drops one that says nothing for CONTROL_TIMEOUT seconds.
 */
#ifndef TEMPOMX_CONTROL_H
#define TEMPOMX_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

#define CONTROL_PROTOCOL "tempomx-control"
#define CONTROL_VERSION 1
#define CONTROL_LINE_MAX 1024
#define CONTROL_TIMEOUT 5

struct event_base;
struct control;

/* The reply being built by a command handler. */
struct control_reply {
	char *buf;
	size_t len, cap;
	int failed;
};

/* Append one data line. */
void control_reply_line(struct control_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* End with "error TEXT" instead of "ok". */
void control_reply_fail(struct control_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Handles one request: cmd is the command word, args the rest of the
 * line ("" when none), uid the client's user (SO_PEERCRED). */
typedef void (*control_fn)(void *arg, uid_t uid, const char *cmd, const char *args,
                           struct control_reply *r);

/* Bind and listen at path (a stale socket there is replaced, anything
 * else is an error), mode 0660, group gid when run as root. Returns the
 * descriptor, or -1 with the reason in err. */
int control_listen(const char *path, gid_t gid, char *err, size_t errlen);
/* Serve requests on fd in base's loop. */
struct control *control_start(struct event_base *base, int fd, const char *path, control_fn fn,
                              void *arg);
/* Stop serving, close the socket and remove its name. */
void control_free(struct control *c);

#endif
