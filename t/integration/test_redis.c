/*
 * test_redis.c: the sender history shared through Redis (history_store =
 * redis://... or unix:...) by two real tempomxd, a primary and a backup
 * MX with their own ports and spools, and a private redis-server this
 * test starts (loopback port or unix socket in a directory of its own,
 * no persistence) and stops by PID.
 *
 * What is checked: junk learnt by one MX is predicted by the other, and
 * the records Redis holds equal those of the MX's own LMDB store after
 * the same sessions; an admin's feedback through tempomxctl on one is
 * seen by the other, also by a session already open (smtpd asks again
 * at MAIL); the scanner's virus records reach Redis;
 * sessions of both at the same moment lose no count (Redis' counts
 * checked exactly with redis-cli); with Redis killed both keep deciding
 * from their local history, no greeting waits longer than the lookup
 * timeout (also with a Redis that accepts and does not answer), each logs
 * one line when Redis goes away and one when it is back; a wrong
 * password, a password file others can read and an address where nothing
 * listens are each one clear log line and the daemon serves from LMDB.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(redis, .init = h_setup, .fini = h_teardown, .timeout = 240);

#define LOOKUP_TIMEOUT_MS 200
/* Scheduling slack on a shared machine with sanitizers. */
#define SLACK_MS 400

struct redis {
	char dir[64];
	char sock[100];
	int port;
	pid_t pid;
	char pass[64];
	int db; /* the database the MXes SELECT */
};

static struct redis R;
static struct h_daemon A, B;

static int redis_ping(const struct redis *r)
{
	char out[64] = "";
	int fd;
	if (r->sock[0] && r->port == 0) {
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		if (strlen(r->sock) >= sizeof(un.sun_path))
			return -1;
		memcpy(un.sun_path, r->sock, strlen(r->sock) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0)
			goto fail;
	} else {
		struct sockaddr_in in = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)r->port)};
		in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0)
			goto fail;
	}
	struct timeval tv = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, "PING\r\n", 6) != 6)
		goto fail;
	ssize_t n = read(fd, out, sizeof(out) - 1);
	close(fd);
	/* Any answer (PONG, or NOAUTH with a password) means it is up. */
	return n > 0 && (out[0] == '+' || out[0] == '-') ? 0 : -1;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Start redis-server: on a free loopback port (unix_only = 0) or only on
 * a unix socket in its own directory; pass: requirepass or NULL. */
static void redis_start(struct redis *r, int unix_only, const char *pass)
{
	if (r->dir[0] == '\0') {
		snprintf(r->dir, sizeof(r->dir), "/tmp/test_redis.XXXXXX");
		cr_assert_not_null(mkdtemp(r->dir));
		chmod(r->dir, 0755); /* the daemon's user reaches the socket */
		snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
		r->port = unix_only ? 0 : h_free_port();
	}
	snprintf(r->pass, sizeof(r->pass), "%s", pass ? pass : "");
	char port[16], logf[H_PATH];
	snprintf(port, sizeof(port), "%d", r->port);
	snprintf(logf, sizeof(logf), "%s/redis.log", r->dir);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char *argv[32];
		int n = 0;
		argv[n++] = "redis-server";
		argv[n++] = "--port";
		argv[n++] = port;
		argv[n++] = "--bind";
		argv[n++] = "127.0.0.1";
		argv[n++] = "--save";
		argv[n++] = "";
		argv[n++] = "--appendonly";
		argv[n++] = "no";
		argv[n++] = "--dir";
		argv[n++] = r->dir;
		argv[n++] = "--unixsocket";
		argv[n++] = r->sock;
		argv[n++] = "--unixsocketperm";
		argv[n++] = "777";
		argv[n++] = "--logfile";
		argv[n++] = logf;
		argv[n++] = "--daemonize";
		argv[n++] = "no";
		if (pass) {
			argv[n++] = "--requirepass";
			argv[n++] = (char *)pass;
		}
		argv[n] = NULL;
		execvp("redis-server", argv);
		_exit(127);
	}
	r->pid = pid;
	h_track(pid);
	for (int i = 0; i < 100; i++) {
		if (redis_ping(r) == 0)
			return;
		h_sleep_ms(50);
	}
	cr_assert_fail("redis-server did not come up (see %s)", logf);
}

static void redis_stop(struct redis *r, int sig)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, sig);
	waitpid(r->pid, NULL, 0);
	h_untrack(r->pid);
	r->pid = 0;
	unlink(r->sock);
}

static void redis_cleanup(struct redis *r)
{
	char path[H_PATH];
	redis_stop(r, SIGTERM);
	if (r->dir[0]) {
		snprintf(path, sizeof(path), "%s/redis.log", r->dir);
		unlink(path);
		rmdir(r->dir);
	}
	memset(r, 0, sizeof(*r));
}

/* redis-cli ARGS... (NULL-terminated); the first line of its output. */
static void redis_cli(const struct redis *r, char *line, size_t size, ...)
{
	char *argv[24], port[16];
	int n = 0;
	va_list ap;
	argv[n++] = "redis-cli";
	if (r->port) {
		snprintf(port, sizeof(port), "%d", r->port);
		argv[n++] = "-h";
		argv[n++] = "127.0.0.1";
		argv[n++] = "-p";
		argv[n++] = port;
	} else {
		argv[n++] = "-s";
		argv[n++] = (char *)r->sock;
	}
	char db[16];
	if (r->db) {
		snprintf(db, sizeof(db), "%d", r->db);
		argv[n++] = "-n";
		argv[n++] = db;
	}
	if (r->pass[0]) {
		argv[n++] = "--no-auth-warning";
		argv[n++] = "-a";
		argv[n++] = (char *)r->pass;
	}
	va_start(ap, size);
	for (char *a; n < 23 && (a = va_arg(ap, char *)) != NULL;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	char *out = NULL;
	int rc = h_run(argv, NULL, 0, 10000, &out, NULL);
	cr_assert_eq(rc, 0, "redis-cli failed: %s", out ? out : "");
	snprintf(line, size, "%s", out ? out : "");
	line[strcspn(line, "\n")] = '\0';
	free(out);
}

static long redis_field(const struct redis *r, const char *key, const char *field)
{
	char line[128];
	redis_cli(r, line, sizeof(line), "HGET", key, field, (char *)NULL);
	return line[0] ? strtol(line, NULL, 10) : 0;
}

/* One MX sharing the history through spec. */
static void mx_start(struct h_daemon *d, const char *spec, const char *extra_key,
                     const char *extra_value)
{
	h_daemon_init(d);
	h_set(d, "greet_pause", "0");
	h_set(d, "patience_delay", "0");
	h_set(d, "predicted_junk_action", "reject");
	h_set(d, "history_store", "%s", spec);
	h_set(d, "history_redis_timeout", "%d", LOOKUP_TIMEOUT_MS);
	if (extra_key)
		h_set(d, extra_key, "%s", extra_value);
	h_daemon_start(d);
}

static void mx_stop(struct h_daemon *d)
{
	h_daemon_stop(d);
	h_check_sanitizers(d);
	h_daemon_free(d);
}

static void tcp_spec(char *out, size_t size)
{
	snprintf(out, size, "redis://127.0.0.1:%d", R.port);
}

/* Pipelining without PIPELINING: timing junk, refused with 554 at DATA,
 * and recorded as junk. Returns the reply to DATA. */
static int ratware(int port, const char *src)
{
	struct h_conn c;
	const char burst[] = "HELO rat.example.test\r\nMAIL FROM:<rat@example.test>\r\n"
	                     "RCPT TO:<u@localhost>\r\nDATA\r\n";
	h_open(&c, src, port);
	h_send(&c, burst, sizeof(burst) - 1);
	int code = 0;
	for (int i = 0; i < 4 && code >= 0 && code < 354; i++)
		code = h_reply(&c, 5000);
	if (code == 354)
		h_cmd(&c, "Subject: r\r\n\r\nr\r\n.");
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

/* A polite transaction. Returns the reply to DATA, or to the dot when the
 * body was taken; *greet_ms: how long the greeting took. */
static int polite(int port, const char *src, long long *greet_ms)
{
	struct h_conn c;
	long long t0 = h_now_ms();
	h_open(&c, src, port); /* reads the 220 */
	if (greet_ms)
		*greet_ms = h_now_ms() - t0;
	h_expect(&c, 250, "EHLO good.example.test");
	h_expect(&c, 250, "MAIL FROM:<a@localhost>");
	h_expect(&c, 250, "RCPT TO:<u@localhost>");
	int code = h_cmd(&c, "DATA");
	if (code == 354)
		code = h_cmd(&c, "Subject: p\r\n\r\np\r\n.");
	h_cmd(&c, "QUIT");
	h_close(&c);
	return code;
}

/* The daemon's lines about Redis, for a failure's report. */
static void redis_lines(struct h_daemon *d, const char *name)
{
	size_t len = 0;
	char *text = h_read_file(d->log, &len);
	for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
		if (strstr(line, "Redis"))
			cr_log_info("%s: %s", name, line);
	free(text);
}

static int log_count(struct h_daemon *d, const char *needle)
{
	size_t len = 0;
	char *text = h_read_file(d->log, &len);
	int n = text ? h_count(text, len, needle) : 0;
	free(text);
	return n;
}

static int wait_count(struct h_daemon *d, const char *needle, int n, int timeout_ms)
{
	long long end = h_now_ms() + timeout_ms;
	while (log_count(d, needle) < n && h_now_ms() < end)
		h_sleep_ms(50);
	return log_count(d, needle) >= n;
}

/* Wait until Redis' field reaches want (records are sent at close). */
static long wait_field(const char *key, const char *field, long want, int timeout_ms)
{
	long long end = h_now_ms() + timeout_ms;
	long v;
	while ((v = redis_field(&R, key, field)) < want && h_now_ms() < end)
		h_sleep_ms(100);
	return v;
}

static char *ctl_path(char *buf, size_t size)
{
	const char *e = getenv("TEMPOMXCTL");
	if (e && *e)
		snprintf(buf, size, "%s", e);
	else
		snprintf(buf, size, "%s/tempomxctl",
		         getenv("TMX_BUILDDIR") ? getenv("TMX_BUILDDIR") : ".");
	return buf;
}

static int ctl(struct h_daemon *d, const char *a1, const char *a2, const char *a3, char **out)
{
	char prog[H_PATH];
	char *argv[] = {
	    ctl_path(prog, sizeof(prog)), "-f", d->conf, (char *)a1, (char *)a2, (char *)a3, NULL};
	return h_run(argv, NULL, 0, 20000, out, NULL);
}

Test(redis, junk_and_feedback_shared_between_mxes)
{
	char spec[64];
	redis_start(&R, 0, NULL);
	tcp_spec(spec, sizeof(spec));
	mx_start(&A, spec, NULL, NULL);
	mx_start(&B, spec, NULL, NULL);
	cr_assert(h_log_wait(&A, "sharing the history through Redis", 10000));
	cr_assert(h_log_wait(&B, "sharing the history through Redis", 10000));

	/* The primary learns that 127.0.71.2 sends junk... */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ratware(A.port, "127.0.71.2"), 554, "building the history on A");
	cr_assert_eq(wait_field("tmx:r:127.0.71.2/32", "junk", 3, 5000), 3);
	/* The same sessions make the same records in Redis and in A's own
	 * store (record.c's rules and redis_proto.c's scripts agree). */
	char *shared = NULL, *local = NULL;
	cr_assert_eq(ctl(&A, "history", "show", "127.0.71.2", &shared), 0, "%s", shared);
	h_set(&A, "history_store", "lmdb");
	cr_assert_gt(h_write_conf(&A), 0);
	long long end = h_now_ms() + 5000;
	do {
		free(local);
		local = NULL;
		cr_assert_eq(ctl(&A, "history", "show", "127.0.71.2", &local), 0, "%s", local);
	} while (strcmp(local, shared) != 0 && h_now_ms() < end && (h_sleep_ms(200), 1));
	cr_expect_str_eq(local, shared, "LMDB and Redis differ");
	free(local);
	free(shared);
	h_set(&A, "history_store", "%s", spec);
	cr_assert_gt(h_write_conf(&A), 0);
	/* ...and the backup, whose own store never saw it, refuses it. */
	cr_expect_eq(polite(B.port, "127.0.71.2", NULL), 554, "B did not predict junk");
	cr_expect(h_log_has(&B, "history=junk (host 127.0.71.2/32: 3 of 3 observations junk"),
	          "B's log does not say why");
	/* A client neither saw is new on both. */
	cr_expect_eq(polite(B.port, "127.0.72.2", NULL), 250);

	/* The admin vouches for it on the backup; the primary follows. */
	char *out = NULL;
	cr_assert_eq(ctl(&B, "history", "good", "127.0.71.2", &out), 0, "%s", out);
	free(out);
	cr_expect_eq(redis_field(&R, "tmx:r:127.0.71.2/32", "admin"), 1);
	cr_expect_eq(polite(A.port, "127.0.71.2", NULL), 250, "A ignored the feedback given on B");
	/* And the other way: junk on the primary for a network B knows only
	 * as new. */
	cr_assert_eq(ctl(&A, "history", "junk", "127.0.73.0/24", &out), 0, "%s", out);
	free(out);
	cr_expect_eq(polite(B.port, "127.0.73.9", NULL), 554, "B ignored the feedback given on A");
	/* tempomxctl reads the shared store: B's show knows what only A saw. */
	mx_stop(&A);
	cr_assert_eq(ctl(&B, "history", "show", "127.0.73.9", &out), 0, "%s", out);
	cr_expect(strstr(out, "predicted junk") != NULL, "show on B:\n%s", out);
	free(out);
	cr_assert_eq(ctl(&B, "history", "list", "--junk", &out), 0, "%s", out);
	cr_expect(strstr(out, "127.0.73.0/24") != NULL, "list on B:\n%s", out);
	free(out);
	/* forget removes the shared records too. */
	cr_assert_eq(ctl(&B, "history", "forget", "127.0.73.0/24", &out), 0, "%s", out);
	free(out);
	char exists[16];
	redis_cli(&R, exists, sizeof(exists), "EXISTS", "tmx:r:127.0.73.0/24", (char *)NULL);
	cr_expect_str_eq(exists, "0", "the network's record is still in Redis");
	cr_assert_eq(ctl(&B, "history", "show", "127.0.73.9", &out), 0, "%s", out);
	cr_expect(strstr(out, "predicted new") != NULL, "show on B after forget:\n%s", out);
	free(out);
	mx_stop(&B);
	redis_cleanup(&R);
}

/* A connection kept open is judged at DATA by what the other MX learnt
 * since it connected: smtpd asks Redis again at MAIL, when its answer is
 * more than a second old. */
Test(redis, open_session_learns_at_mail)
{
	char spec[64];
	struct h_conn c;
	redis_start(&R, 0, NULL);
	tcp_spec(spec, sizeof(spec));
	mx_start(&A, spec, NULL, NULL);
	mx_start(&B, spec, NULL, NULL);
	cr_assert(h_log_wait(&A, "sharing the history through Redis", 10000));
	cr_assert(h_log_wait(&B, "sharing the history through Redis", 10000));
	h_open(&c, "127.0.121.2", B.port);
	h_expect(&c, 250, "EHLO slow.example.test");
	char *out = NULL;
	cr_assert_eq(ctl(&A, "history", "junk", "127.0.121.2", &out), 0, "%s", out);
	free(out);
	h_sleep_ms(1300); /* older than what a MAIL looks up again */
	h_expect(&c, 250, "MAIL FROM:<a@localhost>");
	/* The answer to the lookup made at MAIL counts at DATA once it has
	 * come; a client faster than Redis is judged by the previous one. */
	h_sleep_ms(300);
	h_expect(&c, 250, "RCPT TO:<u@localhost>");
	cr_expect_eq(h_cmd(&c, "DATA"), 554, "B judged the open session by its connect: %s",
	             c.last);
	h_cmd(&c, "QUIT");
	h_close(&c);
	cr_expect(h_log_has(&B, "history=junk (host 127.0.121.2/32: admin feedback junk)"));
	mx_stop(&A);
	mx_stop(&B);
	redis_cleanup(&R);
}

/* Sessions in a child: n polite ones from src; the number that worked. */
static int burst(int port, const char *src, int n)
{
	int ok = 0;
	for (int i = 0; i < n; i++) {
		struct sockaddr_in me = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		char buf[4096];
		inet_pton(AF_INET, src, &me.sin_addr);
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		to.sin_port = htons((uint16_t)port);
		struct timeval tv = {10, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
		    connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		const char *steps[] = {NULL, "EHLO c.example.test\r\n", "QUIT\r\n"};
		int good = 1;
		for (int s = 0; s < 3 && good; s++) {
			if (steps[s] && write(fd, steps[s], strlen(steps[s])) < 0)
				good = 0;
			/* Each reply ends with a line "NNN " (a final line). */
			size_t have = 0;
			for (;;) {
				ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
				if (r <= 0) {
					good = 0;
					break;
				}
				have += (size_t)r;
				buf[have] = '\0';
				char *last = buf;
				for (char *p = strstr(buf, "\r\n"); p && p[2];
				     p = strstr(p + 2, "\r\n"))
					last = p + 2;
				if (have >= 6 && strcmp(buf + have - 2, "\r\n") == 0 &&
				    last[3] == ' ')
					break;
			}
		}
		close(fd);
		ok += good;
	}
	return ok;
}

Test(redis, concurrent_updates_lose_nothing_unix_socket)
{
	enum { PER = 30 };
	char spec[H_PATH + 8];
	redis_start(&R, 1, NULL);
	R.db = 3; /* unix:/path?db=N: everything lands in database 3 */
	snprintf(spec, sizeof(spec), "unix:%s?db=%d", R.sock, R.db);
	mx_start(&A, spec, NULL, NULL);
	mx_start(&B, spec, NULL, NULL);
	cr_assert(h_log_wait(&A, "sharing the history through Redis", 10000));
	cr_assert(h_log_wait(&B, "sharing the history through Redis", 10000));

	/* Two clients of one network, each hitting both MXes at once. */
	const char *srcs[2] = {"127.0.81.2", "127.0.81.3"};
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		cr_assert(kids[i] >= 0);
		if (kids[i] == 0)
			_exit(burst(i % 2 ? B.port : A.port, srcs[i / 2], PER));
		h_track(kids[i]);
	}
	int done = 0;
	for (int i = 0; i < 4; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		h_untrack(kids[i]);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == PER, "client %d: %d of %d sessions",
		          i, WIFEXITED(st) ? WEXITSTATUS(st) : -1, PER);
		done += WIFEXITED(st) ? WEXITSTATUS(st) : 0;
	}
	/* Every session counted once, on its host and on its network. */
	long h1 = wait_field("tmx:r:127.0.81.2/32", "sessions", 2 * PER, 10000);
	long h2 = wait_field("tmx:r:127.0.81.3/32", "sessions", 2 * PER, 10000);
	long net = wait_field("tmx:r:127.0.81.0/24", "sessions", 4 * PER, 10000);
	h_sleep_ms(500); /* nothing more may arrive */
	cr_expect_eq(done, 4 * PER);
	cr_expect_eq(redis_field(&R, "tmx:r:127.0.81.2/32", "sessions"), 2 * PER, "host 1: %ld",
	             h1);
	cr_expect_eq(redis_field(&R, "tmx:r:127.0.81.3/32", "sessions"), 2 * PER, "host 2: %ld",
	             h2);
	cr_expect_eq(redis_field(&R, "tmx:r:127.0.81.0/24", "sessions"), 4 * PER, "network: %ld",
	             net);
	/* The keys expire history_max_age after the last update. */
	char ttl[32];
	redis_cli(&R, ttl, sizeof(ttl), "TTL", "tmx:r:127.0.81.0/24", (char *)NULL);
	long t = strtol(ttl, NULL, 10);
	cr_expect(t > 2592000 - 60 && t <= 2592000, "TTL %s", ttl);
	mx_stop(&A);
	mx_stop(&B);
	redis_cleanup(&R);
}

Test(redis, redis_down_local_history_decides_then_reconnects)
{
	char spec[64];
	long long ms;
	redis_start(&R, 0, NULL);
	tcp_spec(spec, sizeof(spec));
	mx_start(&A, spec, NULL, NULL);
	mx_start(&B, spec, NULL, NULL);
	cr_assert(h_log_wait(&A, "sharing the history through Redis", 10000));
	cr_assert(h_log_wait(&B, "sharing the history through Redis", 10000));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ratware(A.port, "127.0.91.2"), 554);
	cr_assert_eq(wait_field("tmx:r:127.0.91.2/32", "junk", 3, 5000), 3);
	h_sleep_ms(1500); /* A's local writer has it too */

	/* A Redis that accepts and never answers: each greeting waits at
	 * most the lookup timeout. */
	kill(R.pid, SIGSTOP);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(polite(B.port, "127.0.92.2", &ms), 250);
		cr_expect_leq(ms, LOOKUP_TIMEOUT_MS + SLACK_MS, "greeting after %lld ms", ms);
	}
	kill(R.pid, SIGCONT);

	/* Three lookups without an answer: B gave up on that connection
	 * and is connected again once Redis answers. */
	cr_expect(wait_count(&B, "answers again", 1, 10000), "B did not reconnect after the stall");
	int downA = log_count(&A, "not usable"), downB = log_count(&B, "not usable");
	int backA = log_count(&A, "answers again"), backB = log_count(&B, "answers again");

	redis_stop(&R, SIGKILL);
	int noticed = wait_count(&A, "not usable", downA + 1, 5000) &&
	              wait_count(&B, "not usable", downB + 1, 5000);
	if (!noticed) {
		redis_lines(&A, "A");
		redis_lines(&B, "B");
	}
	cr_assert(noticed, "A or B did not notice that Redis went away");
	for (int i = 0; i < 3; i++) {
		/* A refuses by its own history, B accepts a client it knows. */
		cr_expect_eq(polite(A.port, "127.0.91.2", &ms), 554, "A forgot its local history");
		cr_expect_leq(ms, LOOKUP_TIMEOUT_MS + SLACK_MS, "A: greeting after %lld ms", ms);
		cr_expect_eq(polite(B.port, "127.0.92.2", &ms), 250);
		cr_expect_leq(ms, LOOKUP_TIMEOUT_MS + SLACK_MS, "B: greeting after %lld ms", ms);
	}
	/* One line for the outage, whatever the number of sessions. */
	cr_expect_eq(log_count(&A, "not usable"), downA + 1);
	cr_expect_eq(log_count(&B, "not usable"), downB + 1);

	redis_start(&R, 0, NULL); /* same port, empty */
	cr_expect(wait_count(&A, "answers again", backA + 1, 15000), "A did not reconnect");
	cr_expect(wait_count(&B, "answers again", backB + 1, 15000), "B did not reconnect");
	h_sleep_ms(500);
	cr_expect_eq(log_count(&A, "answers again"), backA + 1,
	             "A: %d lines 'answers again', %d before", log_count(&A, "answers again"),
	             backA);
	cr_expect_eq(log_count(&B, "answers again"), backB + 1,
	             "B: %d lines 'answers again', %d before", log_count(&B, "answers again"),
	             backB);
	cr_expect_eq(polite(B.port, "127.0.93.2", NULL), 250);
	cr_expect_eq(wait_field("tmx:r:127.0.93.2/32", "sessions", 1, 5000), 1,
	             "B's records do not reach Redis again");
	redis_lines(&A, "A");
	redis_lines(&B, "B");
	mx_stop(&A);
	mx_stop(&B);
	redis_cleanup(&R);
}

Test(redis, bad_password_or_address_serves_from_lmdb)
{
	char spec[64], pwfile[H_PATH];
	redis_start(&R, 0, "s3cret-word");
	tcp_spec(spec, sizeof(spec));

	/* A wrong password. */
	h_daemon_init(&A);
	snprintf(pwfile, sizeof(pwfile), "%s/redis.pass", A.dir);
	cr_assert_eq(h_write_file(pwfile, "wrong\n", 6, 0600), 0);
	h_chown_run_user(pwfile);
	h_set(&A, "greet_pause", "0");
	h_set(&A, "patience_delay", "0");
	h_set(&A, "history_store", "%s", spec);
	h_set(&A, "history_redis_password_file", "%s", pwfile);
	h_daemon_start(&A);
	cr_expect(h_log_wait(&A, "AUTH refused", 10000), "no clear line for a wrong password");
	cr_expect_eq(polite(A.port, "127.0.101.2", NULL), 250);
	cr_expect_eq(log_count(&A, "not usable"), 1);
	mx_stop(&A);

	/* The right password in a file others may read: refused. */
	h_daemon_init(&A);
	snprintf(pwfile, sizeof(pwfile), "%s/redis.pass", A.dir);
	cr_assert_eq(h_write_file(pwfile, "s3cret-word\n", 12, 0644), 0);
	chmod(pwfile, 0644);
	h_chown_run_user(pwfile);
	h_set(&A, "greet_pause", "0");
	h_set(&A, "patience_delay", "0");
	h_set(&A, "history_store", "%s", spec);
	h_set(&A, "history_redis_password_file", "%s", pwfile);
	h_daemon_start(&A);
	cr_expect(h_log_wait(&A, "gives others access", 10000), "a readable password file");
	cr_expect_eq(polite(A.port, "127.0.101.3", NULL), 250);
	mx_stop(&A);

	/* The right one, mode 0600: shared. */
	h_daemon_init(&A);
	snprintf(pwfile, sizeof(pwfile), "%s/redis.pass", A.dir);
	cr_assert_eq(h_write_file(pwfile, "s3cret-word\n", 12, 0600), 0);
	h_chown_run_user(pwfile);
	h_set(&A, "greet_pause", "0");
	h_set(&A, "patience_delay", "0");
	h_set(&A, "history_store", "%s", spec);
	h_set(&A, "history_redis_password_file", "%s", pwfile);
	h_daemon_start(&A);
	cr_expect(h_log_wait(&A, "sharing the history through Redis", 10000));
	cr_expect_eq(polite(A.port, "127.0.101.4", NULL), 250);
	cr_expect_eq(wait_field("tmx:r:127.0.101.4/32", "sessions", 1, 5000), 1);
	mx_stop(&A);

	/* Nothing listens there. */
	char nowhere[64];
	snprintf(nowhere, sizeof(nowhere), "redis://127.0.0.1:%d", h_free_port());
	mx_start(&B, nowhere, NULL, NULL);
	cr_expect(h_log_wait(&B, "not usable (Connection refused)", 10000),
	          "no clear line for an unreachable Redis");
	long long ms;
	cr_expect_eq(polite(B.port, "127.0.101.5", &ms), 250);
	cr_expect_leq(ms, SLACK_MS, "greeting after %lld ms", ms);
	h_sleep_ms(1200); /* a few reconnect attempts */
	cr_expect_eq(log_count(&B, "not usable"), 1);
	mx_stop(&B);
	redis_cleanup(&R);
}

Test(redis, virus_found_by_the_scanner_reaches_redis)
{
	char spec[64], src[H_PATH], db[H_PATH + 8], cmd[4 * H_PATH], path[H_PATH];
	static const char *const rcpts[] = {"bob@localhost", NULL};
	redis_start(&R, 0, NULL);
	tcp_spec(spec, sizeof(spec));
	h_daemon_init(&A);
	h_srcpath("t/data/clamav", src, sizeof(src));
	snprintf(db, sizeof(db), "%s/sigdb", A.dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && chmod -R a+rX '%s'", src, db, db);
	cr_assert_eq(system(cmd), 0);
	h_set(&A, "scan", "yes");
	h_set(&A, "clamav_database", "%s", db);
	h_set(&A, "scan_threads", "1");
	h_set(&A, "greet_pause", "0");
	h_set(&A, "patience_delay", "0");
	h_set(&A, "history_store", "%s", spec);
	h_daemon_start(&A);
	cr_assert(h_log_wait(&A, "sharing the history through Redis", 10000));
	h_srcpath("t/data/mail/eicar-plain.eml", path, sizeof(path));
	size_t len;
	char *m = h_read_file(path, &len);
	cr_assert_not_null(m);
	cr_expect_eq(h_send_mail(A.port, "127.0.111.2", "a@localhost", rcpts, m, len), 250);
	free(m);
	cr_expect_eq(wait_field("tmx:r:127.0.111.2/32", "virus", 1, 20000), 1,
	             "the scanner's virus record is not in Redis");
	cr_expect_eq(redis_field(&R, "tmx:r:127.0.111.0/24", "virus"), 1);
	mx_stop(&A);
	redis_cleanup(&R);
}
