/*
 * bench/connections-client.c: the client side of bench/connections (not
 * part of "make check"): many concurrent SMTP connections from distinct
 * loopback source addresses, in one process with epoll, and a known-good
 * client timed in a child process beside them.
 *
 * Phases, each bounded in count and time, results printed as "key value"
 * lines for bench/connections to tabulate:
 *   1. baseline: the good client's transactions against the idle server;
 *   2. idle: -n connections, each from its own address (-n / 50 networks
 *      of 50 hosts, 127.16.0.10 upwards), each reads the whole greeting,
 *      says EHLO, reads the reply and then stays silent; the smtpd
 *      child's VmRSS and RssAnon (from /proc/PID/status, -p) are read
 *      before the first and once all are idle;
 *   3. ratware: -r connections misbehaving at once, kept at -r by
 *      opening a new one (from a new address, 127.100.0.10 upwards) for
 *      each that ends, while the good client's transactions run again;
 *      a third each of pregreet (EHLO and MAIL sent before the greeting),
 *      unauthorised pipelining (HELO, MAIL, RCPT and DATA in one write
 *      after the greeting) and garbage (an HTTP request and binary noise);
 *   4. overflow: with only the idle connections left, -m minus those plus
 *      -x more connections (127.150.0.10 upwards); the first line of each
 *      is counted as a greeting (220), a refusal (421), or a failure (a
 *      reset, end of file or no answer within 10 s);
 *   5. after: everything closed, the good client's transactions once more
 *      against the idle server, to show how much the baseline itself
 *      moves while the run lasts.
 * Throughout, an idle connection the server closes is counted.
 *
 * The good client (127.0.0.1, whitelisted by the bench's configuration)
 * runs -t transactions one after the other with blocking sockets:
 * connect, greeting, EHLO, MAIL, RCPT, DATA, a 2 KB message, QUIT; the
 * latency of one is from connect to the 250 after the message.
 *
 * usage: connections-client -P port -p smtpd-pid -n idle -r ratware
 *        -m max_connections -x extra -t transactions [-T seconds]
 *        [-w warmup-seconds] [-i interval-ms]
 * -T bounds the phases (baseline and good client runs limit/4 each, idle
 * limit/2), -w is how long the ratware runs before the good client starts
 * (5 s: past the default greet_pause, so that ratware is being refused
 * and replaced while the good client is timed), -i the pause between two
 * good transactions (100 ms, as a server sending a message now and then,
 * not a flood of its own).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { K_IDLE, K_PREGREET, K_PIPELINE, K_GARBAGE, K_OVER };

enum state {
	S_CONNECTING, /* non-blocking connect in progress */
	S_GREETING,   /* waiting for the final 220 line */
	S_EHLO,       /* idle: EHLO sent, waiting for its final line */
	S_IDLE,       /* idle: silent, holding the connection */
	S_RAT,        /* ratware: sent its junk, reading until close */
	S_HELD,       /* overflow: got its first line, holding */
	S_DONE
};

struct conn {
	int fd;
	enum kind kind;
	enum state state;
	int first_line; /* code of the first line read, 0 before */
	int last_code;
	double t_open;
	size_t in;
	char buf[512];
};

static int port;
static int epfd;
static long max_inflight = 256;
static long inflight; /* connected, no first line yet */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "connections-client: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Source address i of range base (127.base.0.10 up): 50 hosts per /24. */
static struct in_addr src_addr(int base, long i)
{
	long net = i / 50, host = 10 + i % 50;
	struct in_addr a;
	a.s_addr = htonl((127u << 24) | ((unsigned)(base + net / 256) << 16) |
	                 ((unsigned)(net % 256) << 8) | (unsigned)host);
	return a;
}

static struct conn *conn_open(enum kind kind, struct in_addr src)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		die("calloc");
	c->kind = kind;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = src};
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	c->t_open = now();
	c->state = S_CONNECTING;
	inflight++;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
		die("connect");
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
	return c;
}

static void send_all(struct conn *c, const char *s)
{
	size_t n = strlen(s), off = 0;
	while (off < n) {
		ssize_t w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* reset or full: ratware does not care */
		}
		off += (size_t)w;
	}
}

/* Counters. */
static long idle_ready, idle_closed, idle_failed;
static long rat_opened, rat_done, rat_pregreet, rat_pipeline, rat_garbage;
static long rat_codes[6]; /* by first digit of last reply */
static long over_220, over_421, over_other, over_fail;
static long live_rat, rat_given_up, rat_refused;

/* A ratware connection still open after this long is closed by us. */
#define RAT_MAX_AGE 30.0

static void conn_close(struct conn *c)
{
	if (c->state == S_DONE)
		return;
	if (c->state == S_CONNECTING || (c->first_line == 0 && c->state == S_GREETING))
		inflight--;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->state = S_DONE;
}

/* The server ended connection c (end of file or reset). */
static void ended(struct conn *c)
{
	switch (c->kind) {
	case K_IDLE:
		if (c->state == S_IDLE) {
			idle_closed++;
			idle_ready--;
		} else {
			idle_failed++;
		}
		break;
	case K_OVER:
		if (c->first_line == 0)
			over_fail++;
		break;
	default:
		rat_done++;
		live_rat--;
		if (c->last_code >= 100 && c->last_code < 600)
			rat_codes[c->last_code / 100]++;
		else
			rat_codes[0]++;
		break;
	}
	conn_close(c);
}

/* One complete reply line of connection c. */
static void on_line(struct conn *c, const char *line)
{
	int code = 0;
	if (line[0] >= '1' && line[0] <= '5' && line[1] && line[2])
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	int final = line[3] != '-';
	if (c->first_line == 0) {
		c->first_line = code ? code : -1;
		inflight--;
		if (code == 421 && c->kind != K_IDLE && c->kind != K_OVER)
			rat_refused++;
		if (c->kind == K_OVER) {
			if (code == 220)
				over_220++;
			else if (code == 421)
				over_421++;
			else
				over_other++;
			c->state = S_HELD;
			if (code != 220) {
				conn_close(c);
				return;
			}
		}
	}
	c->last_code = code;
	switch (c->state) {
	case S_GREETING:
		if (!final)
			break;
		if (code != 220) {
			/* refused: ratware sees this too */
			c->state = c->kind == K_IDLE ? S_GREETING : S_RAT;
			break;
		}
		switch (c->kind) {
		case K_IDLE:
			send_all(c, "EHLO idle.example.test\r\n");
			c->state = S_EHLO;
			break;
		case K_PIPELINE:
			send_all(c, "HELO pipeline.example.test\r\n"
			            "MAIL FROM:<r@pipeline.example.test>\r\n"
			            "RCPT TO:<someone@bench.example.test>\r\n"
			            "DATA\r\n"
			            "QUIT\r\n");
			c->state = S_RAT;
			break;
		case K_GARBAGE:
			send_all(c, "GET / HTTP/1.0\r\nHost: bench.example.test\r\n\r\n"
			            "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n"
			            "QUIT\r\n");
			c->state = S_RAT;
			break;
		case K_PREGREET:
			send_all(c, "RCPT TO:<someone@bench.example.test>\r\nDATA\r\nQUIT\r\n");
			c->state = S_RAT;
			break;
		default:
			break;
		}
		break;
	case S_EHLO:
		if (final) {
			c->state = S_IDLE;
			idle_ready++;
		}
		break;
	case S_RAT:
		/* Its junk ended with QUIT; a 354 (the DATA got through) gets
		 * a short body and QUIT again. Then it reads until the server
		 * closes, or bench gives up on it after RAT_MAX_AGE. */
		if (code == 354)
			send_all(c, "Subject: junk\r\n\r\njunk\r\n.\r\nQUIT\r\n");
		break;
	default:
		break;
	}
}

static void on_readable(struct conn *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->buf + c->in, sizeof c->buf - 1 - c->in, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			ended(c);
			return;
		}
		if (r < 0)
			return;
		c->in += (size_t)r;
		c->buf[c->in] = '\0';
		char *p = c->buf, *nl;
		while ((nl = memchr(p, '\n', c->in - (size_t)(p - c->buf)))) {
			*nl = '\0';
			on_line(c, p);
			if (c->state == S_DONE)
				return;
			p = nl + 1;
		}
		size_t rest = c->in - (size_t)(p - c->buf);
		if (rest == sizeof c->buf - 1)
			rest = 0; /* a line too long: drop it */
		memmove(c->buf, p, rest);
		c->in = rest;
	}
}

static void on_event(struct conn *c, uint32_t ev)
{
	if (c->state == S_DONE)
		return;
	if (c->state == S_CONNECTING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			ended(c);
			return;
		}
		c->state = S_GREETING;
		struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
		if (c->kind == K_PREGREET)
			send_all(c, "EHLO pregreet.example.test\r\n"
			            "MAIL FROM:<r@pregreet.example.test>\r\n");
	}
	if (c->state != S_DONE && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		on_readable(c);
}

static void loop_once(int ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(epfd, evs, 256, ms);
	if (n < 0 && errno != EINTR)
		die("epoll_wait");
	for (int i = 0; i < n; i++)
		on_event(evs[i].data.ptr, evs[i].events);
}

static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			v = strtol(line + fl + 1, NULL, 10);
	fclose(f);
	return v;
}

/* utime + stime of process pid, in clock ticks (-1 if unknown). */
static long proc_ticks(pid_t pid)
{
	char path[64], line[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char *ok = fgets(line, sizeof line, f);
	fclose(f);
	char *p = ok ? strrchr(line, ')') : NULL;
	unsigned long ut, st;
	/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

/* The good client. */

static int good_read_reply(int fd, char *buf, size_t cap, size_t *have)
{
	for (;;) {
		/* a complete final line in buf? */
		char *p = buf;
		buf[*have] = '\0';
		char *nl;
		while ((nl = strchr(p, '\n'))) {
			if (nl - p >= 4 && p[3] == ' ') {
				int code = atoi(p);
				size_t used = (size_t)(nl + 1 - buf);
				memmove(buf, nl + 1, *have - used);
				*have -= used;
				return code;
			}
			p = nl + 1;
		}
		if (*have >= cap - 1)
			return -1;
		ssize_t r = recv(fd, buf + *have, cap - 1 - *have, 0);
		if (r <= 0)
			return -1;
		*have += (size_t)r;
	}
}

/* The reply code of the good client's latest failed step (-1: no reply). */
static int good_fail_code;

static int good_cmd(int fd, const char *cmd, int want, char *buf, size_t cap, size_t *have)
{
	size_t n = strlen(cmd);
	if (n && send(fd, cmd, n, MSG_NOSIGNAL) != (ssize_t)n) {
		good_fail_code = -1;
		return -1;
	}
	int code = good_read_reply(fd, buf, cap, have);
	if (code != want) {
		good_fail_code = code;
		return -1;
	}
	return 0;
}

/* One transaction; its latency in ms, or -1. */
static double good_transaction(int i)
{
	static char body[2400];
	if (!body[0]) {
		size_t off = (size_t)snprintf(body, sizeof body,
		                              "From: good@client.example.test\r\n"
		                              "To: rcpt@remote.example.test\r\n"
		                              "Subject: latency probe\r\n\r\n");
		static const char line[] = "The quick brown fox jumps over the lazy dog, "
		                           "again and again and again.\r\n";
		while (off + sizeof line < 2048) {
			memcpy(body + off, line, sizeof line - 1);
			off += sizeof line - 1;
		}
		memcpy(body + off, ".\r\n", 4);
	}
	char buf[4096];
	size_t have = 0;
	double t0 = now();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	double ms = -1;
	char mail[128];
	snprintf(mail, sizeof mail, "MAIL FROM:<good%d@client.example.test>\r\n", i);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    good_cmd(fd, "", 220, buf, sizeof buf, &have) == 0 &&
	    good_cmd(fd, "EHLO good.example.test\r\n", 250, buf, sizeof buf, &have) == 0 &&
	    good_cmd(fd, mail, 250, buf, sizeof buf, &have) == 0 &&
	    good_cmd(fd, "RCPT TO:<rcpt@remote.example.test>\r\n", 250, buf, sizeof buf, &have) ==
	        0 &&
	    good_cmd(fd, "DATA\r\n", 354, buf, sizeof buf, &have) == 0 &&
	    good_cmd(fd, body, 250, buf, sizeof buf, &have) == 0) {
		ms = (now() - t0) * 1000;
		good_cmd(fd, "QUIT\r\n", 221, buf, sizeof buf, &have);
	}
	close(fd);
	return ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Fork the good client; it writes "ok p50 p95 max failures" to a pipe.
 * Returns the read end; *pid is the child. */
static int good_interval_ms = 100;

static int good_start(int transactions, double limit, pid_t *pid)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	*pid = fork();
	if (*pid < 0)
		die("fork");
	if (*pid == 0) {
		close(p[0]);
		double *lat = calloc((size_t)transactions, sizeof *lat);
		int ok = 0, fail = 0;
		double t0 = now();
		for (int i = 0; i < transactions && now() - t0 < limit; i++) {
			if (i > 0)
				usleep((useconds_t)good_interval_ms * 1000);
			double ms = good_transaction(i);
			if (ms < 0)
				fail++;
			else
				lat[ok++] = ms;
		}
		qsort(lat, (size_t)ok, sizeof *lat, cmp_double);
		char out[256];
		int n;
		if (ok == 0)
			n = snprintf(out, sizeof out, "0 - - - %d %d\n", fail, good_fail_code);
		else
			n = snprintf(out, sizeof out, "%d %.2f %.2f %.2f %d %d\n", ok,
			             lat[(ok - 1) / 2], lat[(int)((ok - 1) * 0.95 + 0.5)],
			             lat[ok - 1], fail, good_fail_code);
		if (write(p[1], out, (size_t)n) != n)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

static void good_finish(int rfd, pid_t pid, const char *label)
{
	char out[256] = "";
	ssize_t r = read(rfd, out, sizeof out - 1);
	close(rfd);
	waitpid(pid, NULL, 0);
	if (r <= 0) {
		printf("%s_ok 0\n", label);
		return;
	}
	out[r] = '\0';
	int ok = 0, fail = 0;
	char p50[32], p95[32], mx[32];
	int code = 0;
	if (sscanf(out, "%d %31s %31s %31s %d %d", &ok, p50, p95, mx, &fail, &code) != 6)
		return;
	printf("%s_ok %d\n%s_fail %d\n%s_p50_ms %s\n%s_p95_ms %s\n%s_max_ms %s\n", label, ok, label,
	       fail, label, p50, label, p95, label, mx);
	if (fail)
		printf("%s_last_fail_code %d\n", label, code);
}

/* Whether the good client has written its result (poll, not select: the
 * pipe's descriptor is above FD_SETSIZE once the connections are open). */
static int child_done(int rfd)
{
	struct pollfd p = {.fd = rfd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: connections-client -P port -p smtpd-pid -n idle -r ratware "
	                "-m max_connections -x extra -t transactions [-T seconds] "
	                "[-w warmup-seconds] [-i interval-ms]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long nidle = 10000, nrat = 500, maxconn = 0, extra = 200;
	int transactions = 50, opt;
	double warmup = 5;
	double limit = 240; /* bounds the phases: see each loop */
	pid_t smtpd = 0;
	while ((opt = getopt(argc, argv, "P:p:n:r:m:x:t:T:w:i:")) != -1) {
		switch (opt) {
		case 'P':
			port = atoi(optarg);
			break;
		case 'p':
			smtpd = (pid_t)atol(optarg);
			break;
		case 'n':
			nidle = atol(optarg);
			break;
		case 'r':
			nrat = atol(optarg);
			break;
		case 'm':
			maxconn = atol(optarg);
			break;
		case 'x':
			extra = atol(optarg);
			break;
		case 't':
			transactions = atoi(optarg);
			break;
		case 'T':
			limit = atof(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		case 'i':
			good_interval_ms = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (!port || !smtpd || !maxconn || nidle < 1 || nidle > 200000 || nrat < 0 ||
	    transactions < 1)
		usage();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Our own descriptors: every connection at once, plus a few. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	rlim_t need = (rlim_t)(nidle + nrat + (maxconn - nidle) + extra + 64);
	if (rl.rlim_cur < need) {
		rl.rlim_cur =
		    rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			die("setrlimit");
	}
	printf("client_nofile %llu\n", (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur < need) {
		fprintf(stderr, "connections-client: need %llu descriptors, hard limit %llu\n",
		        (unsigned long long)need, (unsigned long long)rl.rlim_cur);
		return 2;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	double t_start = now();

	/* 1. baseline */
	pid_t gp;
	int gfd = good_start(transactions, limit / 4, &gp);
	while (!child_done(gfd) && now() - t_start < limit)
		loop_once(50);
	good_finish(gfd, gp, "baseline");

	/* 2. idle connections */
	long rss0 = proc_kb(smtpd, "VmRSS"), anon0 = proc_kb(smtpd, "RssAnon");
	printf("rss_before_kb %ld\nanon_before_kb %ld\n", rss0, anon0);
	struct conn **idle = calloc((size_t)nidle, sizeof *idle);
	double t_idle = now();
	long opened = 0;
	while (now() - t_idle < limit / 2) {
		while (opened < nidle && inflight < max_inflight)
			idle[opened] = conn_open(K_IDLE, src_addr(16, opened)), opened++;
		if (opened == nidle && idle_ready + idle_failed + idle_closed >= nidle)
			break;
		loop_once(20);
	}
	printf("idle_open_seconds %.2f\nidle_ready %ld\nidle_failed %ld\n", now() - t_idle,
	       idle_ready, idle_failed);
	/* let the server settle, keep serving events */
	for (double t = now(); now() - t < 1.0;)
		loop_once(50);
	long rss1 = proc_kb(smtpd, "VmRSS"), anon1 = proc_kb(smtpd, "RssAnon");
	printf("rss_idle_kb %ld\nanon_idle_kb %ld\n", rss1, anon1);
	if (idle_ready > 0)
		printf("rss_per_conn_bytes %.0f\nanon_per_conn_bytes %.0f\n",
		       (double)(rss1 - rss0) * 1024 / (double)idle_ready,
		       (double)(anon1 - anon0) * 1024 / (double)idle_ready);

	/* 3. ratware while the good client runs again */
	long rat_next = 0, rat_max_rss = 0;
	struct conn **rats = NULL;
	size_t nrats = 0, caprats = 0;
	double t_rat = now(), t_good = 0;
	long cpu_good0 = 0;
	gfd = -1;
	long rat_cap = nrat * 40; /* count bound */
	double t_scan = now();
	while (now() - t_rat < warmup + limit / 4 + 10) {
		while (live_rat < nrat && rat_next < rat_cap) {
			enum kind k = rat_next % 3 == 0   ? K_PREGREET
			              : rat_next % 3 == 1 ? K_PIPELINE
			                                  : K_GARBAGE;
			if (k == K_PREGREET)
				rat_pregreet++;
			else if (k == K_PIPELINE)
				rat_pipeline++;
			else
				rat_garbage++;
			if (nrats == caprats) {
				caprats = caprats ? caprats * 2 : 1024;
				rats = realloc(rats, caprats * sizeof *rats);
				if (!rats)
					die("realloc");
			}
			rats[nrats++] = conn_open(k, src_addr(100, rat_next++));
			rat_opened++;
			live_rat++;
		}
		/* start the good client once the first nrat are open and have
		 * had warmup seconds (past the greet_pause) to get going */
		if (gfd < 0 && rat_opened >= nrat && now() - t_rat > warmup) {
			gfd = good_start(transactions, limit / 4, &gp);
			t_good = now();
			cpu_good0 = proc_ticks(smtpd);
		}
		if (now() - t_scan > 0.5) {
			t_scan = now();
			for (size_t i = 0; i < nrats; i++)
				if (rats[i]->state != S_DONE &&
				    t_scan - rats[i]->t_open > RAT_MAX_AGE) {
					conn_close(rats[i]);
					live_rat--;
					rat_given_up++;
				}
		}
		long r = proc_kb(smtpd, "VmRSS");
		if (r > rat_max_rss)
			rat_max_rss = r;
		if (gfd >= 0 && child_done(gfd))
			break;
		loop_once(20);
	}
	if (gfd >= 0) {
		long cpu_good1 = proc_ticks(smtpd);
		double secs = now() - t_good;
		if (cpu_good0 >= 0 && cpu_good1 >= 0 && secs > 0)
			printf("smtpd_cpu_percent_load %.1f\n",
			       (double)(cpu_good1 - cpu_good0) * 100 /
			           (double)sysconf(_SC_CLK_TCK) / secs);
		good_finish(gfd, gp, "load");
	}
	printf("ratware_seconds %.2f\nratware_opened %ld\nratware_pregreet %ld\n"
	       "ratware_pipelining %ld\nratware_garbage %ld\nratware_ended_by_server %ld\n"
	       "ratware_given_up %ld\nratware_refused_421 %ld\nrss_load_max_kb %ld\n",
	       now() - t_rat, rat_opened, rat_pregreet, rat_pipeline, rat_garbage, rat_done,
	       rat_given_up, rat_refused, rat_max_rss);
	printf("ratware_last_reply_2xx %ld\nratware_last_reply_4xx %ld\n"
	       "ratware_last_reply_5xx %ld\nratware_last_reply_none %ld\n",
	       rat_codes[2], rat_codes[4], rat_codes[5],
	       rat_codes[0] + rat_codes[1] + rat_codes[3]);
	for (size_t i = 0; i < nrats; i++) {
		conn_close(rats[i]);
		free(rats[i]);
	}
	free(rats);
	live_rat = 0;
	/* the server notices the closes; idle ones keep being watched */
	for (double t = now(); now() - t < 2.0;)
		loop_once(50);
	printf("idle_after_load %ld\nidle_closed_by_server %ld\n", idle_ready, idle_closed);

	/* 4. overflow */
	long nover = maxconn - idle_ready + extra;
	if (nover < 0)
		nover = extra;
	struct conn **over = calloc((size_t)nover, sizeof *over);
	long oopen = 0;
	double t_over = now();
	double t_over_end = now() + 60;
	while (now() < t_over_end) {
		while (oopen < nover && inflight < max_inflight)
			over[oopen] = conn_open(K_OVER, src_addr(150, oopen)), oopen++;
		/* a connection without a first line after 10 s is a failure */
		if (oopen == nover) {
			long pending = 0;
			for (long i = 0; i < nover; i++)
				if (over[i]->state != S_DONE && over[i]->first_line == 0) {
					if (now() - over[i]->t_open > 10) {
						over_fail++;
						conn_close(over[i]);
					} else {
						pending++;
					}
				}
			if (!pending)
				break;
		}
		loop_once(20);
	}
	printf("overflow_opened %ld\noverflow_expected_220 %ld\noverflow_220 %ld\n"
	       "overflow_421 %ld\noverflow_other %ld\noverflow_failed %ld\n"
	       "overflow_seconds %.2f\n",
	       nover, maxconn - idle_ready, over_220, over_421, over_other, over_fail,
	       now() - t_over);
	printf("idle_at_end %ld\nidle_closed_by_server_at_end %ld\n", idle_ready, idle_closed);
	printf("rss_end_kb %ld\n", proc_kb(smtpd, "VmRSS"));
	for (long i = 0; i < oopen; i++) {
		conn_close(over[i]);
		free(over[i]);
	}
	for (long i = 0; i < opened; i++) {
		conn_close(idle[i]);
		free(idle[i]);
	}
	free(over);
	free(idle);

	/* 5. the idle server again, to show how far the baseline drifts
	 * during the run on a shared machine */
	for (double t = now(); now() - t < 2.0;)
		loop_once(50);
	double t_after = now();
	gfd = good_start(transactions, limit / 4, &gp);
	while (!child_done(gfd) && now() - t_after < limit / 4 + 10)
		loop_once(50);
	good_finish(gfd, gp, "after");
	printf("total_seconds %.2f\n", now() - t_start);
	return 0;
}
