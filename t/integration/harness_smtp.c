/*
 * harness_smtp.c: the raw SMTP client of the protocol tests: connect from
 * a chosen source address, send bytes or commands, read (multi-line)
 * replies with a deadline, whole transactions with dot-stuffing, and test
 * messages carrying a token. Part of libharness.a (see harness.c).
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

/* ---- raw SMTP client ---- */

int h_connect(struct h_conn *c, const char *src, int port)
{
	struct sockaddr_storage me = {0}, to = {0};
	struct timeval tv = {20, 0};
	socklen_t len;
	int v6 = src != NULL && strchr(src, ':') != NULL;
	int fd;

	memset(c, 0, offsetof(struct h_conn, buf));
	c->last[0] = '\0';
	c->fd = -1;
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&me,
		                    *b = (struct sockaddr_in6 *)&to;
		a->sin6_family = b->sin6_family = AF_INET6;
		b->sin6_addr = in6addr_loopback;
		b->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, src, &a->sin6_addr) != 1) {
			errno = EINVAL;
			return -1;
		}
		len = sizeof(struct sockaddr_in6);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&me, *b = (struct sockaddr_in *)&to;
		a->sin_family = b->sin_family = AF_INET;
		b->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		b->sin_port = htons((uint16_t)port);
		if (src && inet_pton(AF_INET, src, &a->sin_addr) != 1) {
			errno = EINVAL;
			return -1;
		}
		len = sizeof(struct sockaddr_in);
	}
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (src && bind(fd, (struct sockaddr *)&me, len) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	/* A bounded send: a server that stops reading cannot hang a test. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&to, len) == -1) {
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
