/*
 * smtp_client.c: one outbound SMTP (RFC 5321) or LMTP (RFC 2033)
 * transaction on a connected socket.
 *
 * EHLO with a HELO fallback, STARTTLS per tls_policy (tls_client.c),
 * SIZE and BODY=8BITMIME when offered, PIPELINING (RFC 2920: MAIL, every
 * RCPT and DATA go in one write when the server offers it), several
 * recipients per transaction, dot-stuffing of the body. The socket is
 * blocking with SO_RCVTIMEO/SO_SNDTIMEO set per step to the RFC 5321
 * section 4.5.3.2 timeouts, so this runs in a delivery worker thread.
 * Called by remote.c; the caller decides what each reply means for the
 * queue.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "smtp_client.h"
#include "tls_client.h"
#include "util.h"

#define SMTP_LINE_MAX 2048
#define SMTP_CHUNK 65536

struct conn {
	int fd;
	SSL *ssl;
	char in[8192];
	size_t inlen, inpos;
	char *out; /* pending output, sent by conn_flush() */
	size_t outlen, outcap;
	int dead; /* read or write failed */
	char why[160];
};

/* Server capabilities from the EHLO reply. */
struct caps {
	int esmtp, pipelining, size, eightbit, starttls;
	uint64_t size_max;
};

struct reply {
	int code;
	char text[512]; /* every line, joined with "; "... kept short */
	char first[512];
	char ext[2048]; /* EHLO keywords, one per line */
};

static void set_timeout(struct conn *c, int secs)
{
	struct timeval tv = {secs, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void conn_fail(struct conn *c, const char *what, int e)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (e == EAGAIN || e == EWOULDBLOCK)
		snprintf(c->why, sizeof(c->why), "timeout %s", what);
	else if (e == 0)
		snprintf(c->why, sizeof(c->why), "connection closed %s", what);
	else
		snprintf(c->why, sizeof(c->why), "%s %s", strerror(e), what);
}

static int conn_write_raw(struct conn *c, const char *p, size_t n, const char *what)
{
	while (n > 0 && !c->dead) {
		ssize_t w;
		if (c->ssl) {
			int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
			w = r > 0 ? r : -1;
			if (r <= 0 && errno == 0)
				errno = EPIPE;
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			conn_fail(c, what, errno);
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return c->dead ? -1 : 0;
}

static void conn_queue(struct conn *c, const char *s, size_t n)
{
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_printf(struct conn *c, const char *fmt, ...)
{
	char buf[SMTP_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	conn_queue(c, buf, (size_t)n);
}

static int conn_flush(struct conn *c, const char *what)
{
	int r = conn_write_raw(c, c->out, c->outlen, what);
	c->outlen = 0;
	return r;
}

/* One line without its CRLF; -1 on error or timeout. */
static int conn_line(struct conn *c, char *line, size_t size, const char *what)
{
	size_t n = 0;
	for (;;) {
		while (c->inpos < c->inlen) {
			char ch = c->in[c->inpos++];
			if (ch == '\n') {
				if (n > 0 && line[n - 1] == '\r')
					n--;
				line[n] = '\0';
				return 0;
			}
			if (n + 1 < size)
				line[n++] = ch;
		}
		if (c->dead)
			return -1;
		ssize_t r;
		if (c->ssl) {
			int k = SSL_read(c->ssl, c->in, sizeof(c->in));
			r = k > 0 ? k : (errno == EAGAIN ? -1 : 0);
		} else {
			r = recv(c->fd, c->in, sizeof(c->in), 0);
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			conn_fail(c, what, r == 0 ? 0 : errno);
			return -1;
		}
		c->inlen = (size_t)r;
		c->inpos = 0;
	}
}

/* Read a whole (possibly multi-line) reply. -1: network failure. */
static int read_reply(struct conn *c, struct reply *rp, const char *what)
{
	char line[SMTP_LINE_MAX];
	rp->code = 0;
	rp->text[0] = rp->first[0] = rp->ext[0] = '\0';
	for (int lines = 0; lines < 1000; lines++) {
		if (conn_line(c, line, sizeof(line), what) < 0)
			return -1;
		int ok = strlen(line) >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' &&
		         line[1] <= '9' && line[2] >= '0' && line[2] <= '9' &&
		         (line[3] == ' ' || line[3] == '-' || line[3] == '\0');
		if (!ok) {
			c->dead = 1;
			snprintf(c->why, sizeof(c->why), "malformed reply %s", what);
			return -1;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (lines == 0) {
			rp->code = code;
			strlcpy_tmx(rp->first, line, sizeof(rp->first));
			strlcpy_tmx(rp->text, line, sizeof(rp->text));
		} else {
			size_t l = strlen(rp->ext);
			if (l + strlen(line) + 2 < sizeof(rp->ext))
				snprintf(rp->ext + l, sizeof(rp->ext) - l, "%s\n", line + 4);
		}
		if (lines == 0 && line[3] == '-' && strlen(line) > 4) {
			/* The first EHLO line is the greeting name, not a keyword. */
		}
		if (line[3] != '-') {
			/* RFC 5321 3.8: after a 421 the server closes; never
			 * send it anything more. */
			if (code == 421 && !c->dead) {
				c->dead = 1;
				snprintf(c->why, sizeof(c->why), "server closing (421) %s", what);
			}
			return 0;
		}
	}
	c->dead = 1;
	snprintf(c->why, sizeof(c->why), "reply too long %s", what);
	return -1;
}

static void parse_caps(const struct reply *rp, struct caps *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->esmtp = 1;
	const char *p = rp->ext;
	while (*p) {
		size_t n = strcspn(p, "\n");
		char kw[64];
		size_t k = strcspn(p, " \n");
		if (k < sizeof(kw)) {
			memcpy(kw, p, k);
			kw[k] = '\0';
			if (ascii_strcasecmp(kw, "PIPELINING") == 0)
				cp->pipelining = 1;
			else if (ascii_strcasecmp(kw, "8BITMIME") == 0)
				cp->eightbit = 1;
			else if (ascii_strcasecmp(kw, "STARTTLS") == 0)
				cp->starttls = 1;
			else if (ascii_strcasecmp(kw, "SIZE") == 0) {
				cp->size = 1;
				cp->size_max = p[k] == ' ' ? strtoull(p + k + 1, NULL, 10) : 0;
			}
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}

size_t smtp_dotstuff(const char *in, size_t len, char *out, int *bol)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (*bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		*bol = in[i] == '\n';
	}
	return o;
}

/* Send the message body, dot-stuffed, then the final dot. */
static int send_body(struct conn *c, const struct smtp_message *m)
{
	char *buf = xmalloc(SMTP_CHUNK), *st = xmalloc(2 * SMTP_CHUNK + 8);
	off_t off = m->body_off;
	uint64_t left = m->size;
	int bol = 1, rc = 0;
	char last = '\n';
	while (left > 0) {
		size_t want = left < SMTP_CHUNK ? (size_t)left : SMTP_CHUNK;
		ssize_t r = pread(m->fd, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(c->why, sizeof(c->why), "cannot read the queue file: %s",
			         r == 0 ? "short file" : strerror(errno));
			c->dead = 1;
			rc = -1;
			break;
		}
		size_t n = smtp_dotstuff(buf, (size_t)r, st, &bol);
		last = buf[r - 1];
		if (conn_write_raw(c, st, n, "sending message body") < 0) {
			rc = -1;
			break;
		}
		off += r;
		left -= (uint64_t)r;
	}
	if (rc == 0) {
		/* The message must end with CRLF before the terminating dot. */
		const char *end = last == '\n' ? ".\r\n" : "\r\n.\r\n";
		rc = conn_write_raw(c, end, strlen(end), "sending end of data");
	}
	free(buf);
	free(st);
	return rc;
}

static void fill_undecided(const struct smtp_message *m, struct smtp_result *res, int code,
                           const char *text)
{
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (res[i].code != 0)
			continue;
		res[i].code = code;
		strlcpy_tmx(res[i].reply, text, sizeof(res[i].reply));
	}
}

/* Greeting, EHLO/LHLO/HELO. Returns 0, or SMTP_NEXT_HOST-style failure
 * with *code and err. */
static int hello(struct conn *c, const struct smtp_opts *o, struct caps *cp, int *code, char *err,
                 size_t errlen)
{
	struct reply rp;
	conn_printf(c, "%s %s\r\n", o->lmtp ? "LHLO" : "EHLO", o->helo);
	if (conn_flush(c, "sending EHLO") < 0 || read_reply(c, &rp, "after EHLO") < 0) {
		*code = 451;
		snprintf(err, errlen, "%s", c->why);
		return -1;
	}
	if (rp.code == 250) {
		parse_caps(&rp, cp);
		return 0;
	}
	if (o->lmtp || rp.code == 421) {
		*code = rp.code;
		snprintf(err, errlen, "%s", rp.text);
		return -1;
	}
	/* RFC 5321 3.2: a server that does not know EHLO gets HELO. */
	conn_printf(c, "HELO %s\r\n", o->helo);
	if (conn_flush(c, "sending HELO") < 0 || read_reply(c, &rp, "after HELO") < 0) {
		*code = 451;
		snprintf(err, errlen, "%s", c->why);
		return -1;
	}
	if (rp.code != 250) {
		*code = rp.code;
		snprintf(err, errlen, "%s", rp.text);
		return -1;
	}
	memset(cp, 0, sizeof(*cp));
	return 0;
}

/* An open session: the connection and what the server offered. */
struct smtp_session {
	struct conn c;
	struct caps cp;
	char tls[128];
};

void smtp_session_close(struct smtp_session *s)
{
	if (s == NULL)
		return;
	if (!s->c.dead) {
		struct reply rp;
		set_timeout(&s->c, 2);
		conn_printf(&s->c, "QUIT\r\n");
		if (conn_flush(&s->c, "sending QUIT") == 0)
			read_reply(&s->c, &rp, "after QUIT");
	}
	if (s->c.ssl)
		tls_client_close(s->c.ssl);
	close(s->c.fd);
	free(s->c.out);
	free(s);
}

int smtp_transaction(struct smtp_session **sessp, int fd, int keep, const struct smtp_opts *o,
                     const struct smtp_message *m, struct smtp_result *res, int *code, char *err,
                     size_t errlen, char *tls, size_t tlslen)
{
	struct reply rp;
	int rc = SMTP_NEXT_HOST;
	int *rcpt_ok = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(int));
	struct smtp_session *s = *sessp;

	*code = 451;
	for (size_t i = 0; i < m->nrcpt; i++)
		res[i].code = 0;
	if (s != NULL) {
		/* A session kept from the last message to this destination:
		 * straight to MAIL FROM (RFC 5321 3.3: a new transaction may
		 * follow a completed one). */
		strlcpy_tmx(tls, s->tls, tlslen);
		set_timeout(&s->c, o->command_timeout);
		goto transaction;
	}
	s = xcalloc(1, sizeof(*s));
	s->c.fd = fd;
	tls[0] = '\0';

	set_timeout(&s->c, o->command_timeout);
	if (read_reply(&s->c, &rp, "waiting for the greeting") < 0) {
		snprintf(err, errlen, "%s", s->c.why);
		goto out;
	}
	if (rp.code != 220) {
		*code = rp.code >= 500 ? rp.code : 451;
		snprintf(err, errlen, "greeting: %s", rp.text);
		goto out;
	}
	if (hello(&s->c, o, &s->cp, code, err, errlen) < 0)
		goto out;

	if (o->tls_policy != TLS_POLICY_NONE && s->cp.starttls) {
		conn_printf(&s->c, "STARTTLS\r\n");
		if (conn_flush(&s->c, "sending STARTTLS") < 0 ||
		    read_reply(&s->c, &rp, "after STARTTLS") < 0) {
			snprintf(err, errlen, "%s", s->c.why);
			goto out;
		}
		if (rp.code == 220) {
			s->c.inlen = s->c.inpos = 0; /* RFC 3207: discard anything before TLS */
			s->c.ssl = tls_client_start(fd, o->tls_policy == TLS_POLICY_VERIFY,
			                            o->tls_ca_file, o->peer_name, err, errlen);
			if (s->c.ssl == NULL) {
				*code = 451;
				goto out;
			}
			tls_client_describe(s->c.ssl, s->tls, sizeof(s->tls));
			strlcpy_tmx(tls, s->tls, tlslen);
			/* RFC 3207 4.2: forget what we knew and greet again. */
			if (hello(&s->c, o, &s->cp, code, err, errlen) < 0)
				goto out;
		} else if (o->tls_policy >= TLS_POLICY_ENCRYPT) {
			*code = 451;
			snprintf(err, errlen, "STARTTLS refused: %s", rp.text);
			goto out;
		}
	} else if (o->tls_policy >= TLS_POLICY_ENCRYPT) {
		*code = 451;
		snprintf(err, errlen, "TLS is required but the server does not offer STARTTLS");
		goto out;
	}

transaction:
	if (s->cp.size && s->cp.size_max > 0 && m->size > s->cp.size_max) {
		*code = 552;
		snprintf(err, errlen, "message size %llu exceeds the server's limit %llu",
		         (unsigned long long)m->size, (unsigned long long)s->cp.size_max);
		goto out;
	}

	/* The envelope: in one write with PIPELINING (RFC 2920), else one
	 * command at a time. */
	char params[128] = "";
	if (s->cp.size)
		snprintf(params, sizeof(params), " SIZE=%llu", (unsigned long long)m->size);
	if (s->cp.eightbit && m->eightbit)
		strncat(params, " BODY=8BITMIME", sizeof(params) - strlen(params) - 1);
	int pipe = s->cp.pipelining;
	conn_printf(&s->c, "MAIL FROM:<%s>%s\r\n", m->sender, params);
	if (!pipe && conn_flush(&s->c, "sending MAIL FROM") < 0)
		goto neterr;
	size_t sent_rcpt = 0;
	if (pipe) {
		for (size_t i = 0; i < m->nrcpt; i++)
			conn_printf(&s->c, "RCPT TO:<%s>\r\n", m->rcpts[i]);
		conn_printf(&s->c, "DATA\r\n");
		if (conn_flush(&s->c, "sending the envelope") < 0)
			goto neterr;
		sent_rcpt = m->nrcpt;
	}
	if (read_reply(&s->c, &rp, "after MAIL FROM") < 0)
		goto neterr;
	int mail_code = rp.code;
	if (mail_code != 250) {
		/* Every recipient shares the sender's fate. With pipelining the
		 * RCPT and DATA replies still come; read and ignore them. */
		*code = rp.code;
		snprintf(err, errlen, "MAIL FROM: %s", rp.text);
		fill_undecided(m, res, rp.code < 400 ? 451 : rp.code, rp.text);
		if (pipe)
			for (size_t i = 0; i <= m->nrcpt; i++)
				if (read_reply(&s->c, &rp, "after RCPT TO") < 0)
					break;
		rc = SMTP_DONE;
		goto quit;
	}
	size_t accepted = 0;
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (!pipe) {
			conn_printf(&s->c, "RCPT TO:<%s>\r\n", m->rcpts[i]);
			if (conn_flush(&s->c, "sending RCPT TO") < 0)
				goto neterr;
		}
		if (read_reply(&s->c, &rp, "after RCPT TO") < 0)
			goto neterr;
		if (rp.code / 100 == 2) {
			rcpt_ok[i] = 1;
			accepted++;
		} else {
			res[i].code = rp.code < 400 ? 451 : rp.code;
			strlcpy_tmx(res[i].reply, rp.text, sizeof(res[i].reply));
		}
	}
	(void)sent_rcpt;
	if (!pipe) {
		if (accepted == 0) {
			rc = SMTP_DONE;
			goto quit;
		}
		conn_printf(&s->c, "DATA\r\n");
		if (conn_flush(&s->c, "sending DATA") < 0)
			goto neterr;
	}
	if (read_reply(&s->c, &rp, "after DATA") < 0)
		goto neterr;
	if (rp.code != 354) {
		if (accepted > 0)
			fill_undecided(m, res, rp.code < 400 ? 451 : rp.code, rp.text);
		rc = SMTP_DONE;
		if (accepted > 0 && rp.code >= 400 && rp.code < 500)
			goto quit;
		/* With pipelining, DATA may be refused because no RCPT passed. */
		goto quit;
	}
	if (accepted == 0) {
		/* Pipelined DATA was accepted though no recipient was: send an
		 * empty message's end and let the server refuse it. */
		conn_write_raw(&s->c, ".\r\n", 3, "ending empty data");
		read_reply(&s->c, &rp, "after the final dot");
		rc = SMTP_DONE;
		goto quit;
	}
	if (send_body(&s->c, m) < 0)
		goto neterr;
	set_timeout(&s->c, o->data_timeout);
	if (o->lmtp) {
		/* RFC 2033 4.2: one reply per accepted recipient, in order. */
		for (size_t i = 0; i < m->nrcpt; i++) {
			if (!rcpt_ok[i])
				continue;
			if (read_reply(&s->c, &rp, "after the final dot") < 0)
				goto neterr;
			res[i].code = rp.code < 400 && rp.code / 100 != 2 ? 451 : rp.code;
			strlcpy_tmx(res[i].reply, rp.text, sizeof(res[i].reply));
		}
	} else {
		if (read_reply(&s->c, &rp, "after the final dot") < 0)
			goto neterr;
		for (size_t i = 0; i < m->nrcpt; i++) {
			if (!rcpt_ok[i])
				continue;
			res[i].code = rp.code < 400 && rp.code / 100 != 2 ? 451 : rp.code;
			strlcpy_tmx(res[i].reply, rp.text, sizeof(res[i].reply));
		}
	}
	rc = SMTP_DONE;
	set_timeout(&s->c, o->command_timeout);
quit:
	/* Keep a healthy session for the next message to this destination;
	 * otherwise QUIT and close. */
	if (keep && !s->c.dead) {
		*sessp = s;
		free(rcpt_ok);
		return rc;
	}
	goto out;
neterr:
	/* A network failure in the transaction: the recipients not yet
	 * answered are deferred, never assumed delivered. After the final
	 * dot was sent without a reply, the message may have arrived: a
	 * retry may duplicate it (RFC 1047), which is the safe side. */
	*code = 451;
	snprintf(err, errlen, "%s", s->c.why);
	{
		int any = 0;
		for (size_t i = 0; i < m->nrcpt; i++)
			any |= res[i].code != 0;
		if (any) {
			fill_undecided(m, res, 451, s->c.why);
			rc = SMTP_DONE;
		}
	}
out:
	smtp_session_close(s);
	*sessp = NULL;
	free(rcpt_ok);
	return rc;
}
