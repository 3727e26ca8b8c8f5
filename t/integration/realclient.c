/*
 * realclient.c: log readers, a private Postfix instance and libfaketime
 * set-up for the real-client integration tests (see realclient.h).
 *
 * The Postfix instance never touches /etc/postfix or the system's queue:
 * main.cf sets config, queue and data directories under the test's
 * temporary directory, master.cf holds only the services a relay needs,
 * and its only listener is an smtpd on a free loopback port. Postfix
 * refuses a data_directory it does not own and a maillog_file outside
 * maillog_file_prefixes; as root, "postfix -c DIR" needs no
 * alternate_config_directories entry. Every wait is bounded.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "realclient.h"

/* ---- the daemon log ---- */

size_t rc_log_size(struct h_daemon *d)
{
	struct stat st;
	return stat(d->log, &st) == 0 ? (size_t)st.st_size : 0;
}

/* The log from offset since, NUL-terminated (malloc'd, never NULL). */
static char *log_since(const char *path, size_t since)
{
	size_t len = 0;
	char *log = h_read_file(path, &len);
	if (log == NULL)
		return strdup("");
	if (since > len)
		since = len;
	memmove(log, log + since, len - since + 1);
	return log;
}

char *rc_classify_lines(struct h_daemon *d, size_t since, const char *addr, int *n)
{
	char *log = log_since(d->log, since);
	char needle[96];
	size_t cap = 4096, used = 0;
	char *out = malloc(cap);
	cr_assert_not_null(out);
	out[0] = '\0';
	*n = 0;
	snprintf(needle, sizeof(needle), "[%s]:", addr);
	for (char *line = log; *line;) {
		char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *c = strstr(line, "classify: ");
		char *a = c ? strstr(c, needle) : NULL;
		/* The address comes right after the client's name. */
		if (c && a && a < line + len && memchr(c + 10, ' ', (size_t)(a - c - 10)) == NULL) {
			while (used + len + 2 > cap) {
				cap *= 2;
				out = realloc(out, cap);
				cr_assert_not_null(out);
			}
			memcpy(out + used, line, len);
			used += len;
			out[used++] = '\n';
			out[used] = '\0';
			(*n)++;
		}
		line += len + (end != NULL);
	}
	free(log);
	return out;
}

char *rc_head(char *text, int max)
{
	char *p = text;
	int n = 0;
	for (; *p && n < max; p++)
		n += *p == '\n';
	if (*p) {
		int rest = 0;
		for (char *q = p; *q; q++)
			rest += *q == '\n';
		/* Room for the note: the cut keeps at least one line out. */
		snprintf(p, strlen(p) + 1, "[%d more lines]\n", rest);
	}
	return text;
}

int rc_outcomes(struct h_daemon *d, size_t since, const char *addr, const char *outcome)
{
	int n, count = 0;
	char *lines = rc_classify_lines(d, since, addr, &n);
	char needle[96];
	snprintf(needle, sizeof(needle), "[%s]:", addr);
	for (char *p = lines; (p = strstr(p, needle)) != NULL; p++) {
		char *q = strstr(p + strlen(needle), ": ");
		if (q && strncmp(q + 2, outcome, strlen(outcome)) == 0 &&
		    q[2 + strlen(outcome)] == ',')
			count++;
	}
	free(lines);
	return count;
}

int rc_refusals(struct h_daemon *d, size_t since, const char *addr)
{
	return rc_outcomes(d, since, addr, "tempfail") + rc_outcomes(d, since, addr, "reject") +
	       rc_outcomes(d, since, addr, "tempfail (load)");
}

int rc_history_has_junk(const char *text)
{
	const char *tail = " observations junk";
	for (const char *p = text; (p = strstr(p, tail)) != NULL; p++) {
		/* Back up over "N of M" to the number N. */
		const char *q = p;
		while (q > text && q[-1] != ':' && q[-1] != '(' && q[-1] != ',')
			q--;
		while (*q == ' ')
			q++;
		if (atoi(q) > 0)
			return 1;
	}
	return 0;
}

int rc_max_messages_per_session(struct h_daemon *d, size_t since, const char *addr)
{
	char *log = log_since(d->log, since);
	char needle[96];
	int best = 0;
	snprintf(needle, sizeof(needle), "[%s]:", addr);
	for (char *p = log; (p = strstr(p, "disconnect from ")) != NULL; p++) {
		char *end = strchr(p, '\n');
		char *a = strstr(p, needle);
		char *m = strstr(p, " messages=");
		if (a && m && (end == NULL || (a < end && m < end)) && atoi(m + 10) > best)
			best = atoi(m + 10);
	}
	free(log);
	return best;
}

int rc_lines_with(const char *path, size_t since, const char *a, const char *b)
{
	char *log = log_since(path, since);
	int n = 0;
	for (char *line = log; *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		if (strstr(line, a) && (b == NULL || strstr(line, b)))
			n++;
		if (end == NULL)
			break;
		line = end + 1;
	}
	free(log);
	return n;
}

/* ---- a private Postfix instance ---- */

#define RC_MAXPF 4
static struct rc_postfix *registry[RC_MAXPF];

static void write_text(const char *path, const char *text)
{
	cr_assert_eq(h_write_file(path, text, strlen(text), 0644), 0, "cannot write %s", path);
}

static void write_main_cf(struct rc_postfix *p, const char *bind_addr, int concurrency)
{
	char path[H_PATH + 16], text[4096];
	/* Everything in our own directories; relay all mail to tempomxd.
	 * Connection caching is on for the relayhost and, since Postfix
	 * does not reuse TLS sessions by default, TLS connection reuse
	 * too (through tlsproxy). Retries come quickly, so a tempfail
	 * shows as a deferral within the test's time. */
	snprintf(text, sizeof(text),
	         "compatibility_level = 3.6\n"
	         "queue_directory = %s\n"
	         "data_directory = %s\n"
	         "mail_owner = postfix\n"
	         "setgid_group = postdrop\n"
	         "maillog_file = %s\n"
	         "maillog_file_prefixes = %s\n"
	         "myhostname = postfix.example.test\n"
	         "mydomain = example.test\n"
	         "myorigin = $myhostname\n"
	         "mydestination =\n"
	         "local_recipient_maps =\n"
	         "alias_maps =\n"
	         "alias_database =\n"
	         "inet_interfaces = 127.0.0.1\n"
	         "inet_protocols = ipv4\n"
	         "mynetworks = 127.0.0.1/32\n"
	         "relay_domains = localhost\n"
	         "smtpd_relay_restrictions = permit_mynetworks, reject\n"
	         "relayhost = [127.0.0.1]:%d\n"
	         "smtp_bind_address = %s\n"
	         "smtp_tls_security_level = may\n"
	         "smtp_tls_connection_reuse = yes\n"
	         "smtp_connection_cache_on_demand = yes\n"
	         "smtp_connection_cache_destinations = [127.0.0.1]:%d\n"
	         "smtp_destination_concurrency_limit = %d\n"
	         "minimal_backoff_time = 10s\n"
	         "maximal_backoff_time = 20s\n"
	         "queue_run_delay = 5s\n"
	         "smtputf8_enable = no\n"
	         "biff = no\n",
	         p->queue, p->data, p->log, p->dir, p->relay_port, bind_addr, p->relay_port,
	         concurrency);
	snprintf(path, sizeof(path), "%s/main.cf", p->etc);
	write_text(path, text);
}

void rc_postfix_init(struct rc_postfix *p, struct h_daemon *d, const char *bind_addr,
                     int concurrency)
{
	char path[H_PATH + 16], text[2048];
	struct passwd *pw = getpwnam("postfix");

	cr_assert(access("/usr/sbin/postfix", X_OK) == 0 && pw != NULL,
	          "Postfix is not installed (scripts/install-deps installs the postfix package)");
	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s/postfix", d->dir);
	snprintf(p->etc, sizeof(p->etc), "%s/etc", p->dir);
	snprintf(p->queue, sizeof(p->queue), "%s/queue", p->dir);
	snprintf(p->data, sizeof(p->data), "%s/data", p->dir);
	snprintf(p->log, sizeof(p->log), "%s/postfix.log", p->dir);
	cr_assert_eq(mkdir(p->dir, 0755), 0, "mkdir %s: %s", p->dir, strerror(errno));
	cr_assert_eq(mkdir(p->etc, 0755), 0);
	cr_assert_eq(mkdir(p->queue, 0755), 0);
	cr_assert_eq(mkdir(p->data, 0700), 0);
	cr_assert_eq(chown(p->data, pw->pw_uid, pw->pw_gid), 0, "chown %s: %s", p->data,
	             strerror(errno));
	p->port = h_free_port();
	p->relay_port = d->port;
	write_main_cf(p, bind_addr, concurrency);
	/* Only what a relay needs; nothing chrooted, one listener. */
	snprintf(text, sizeof(text),
	         "127.0.0.1:%d inet n - n - - smtpd\n"
	         "pickup    unix  n - n 60 1 pickup\n"
	         "cleanup   unix  n - n -  0 cleanup\n"
	         "qmgr      unix  n - n 300 1 qmgr\n"
	         "tlsmgr    unix  - - n 1000? 1 tlsmgr\n"
	         "tlsproxy  unix  - - n -  0 tlsproxy\n"
	         "rewrite   unix  - - n -  - trivial-rewrite\n"
	         "bounce    unix  - - n -  0 bounce\n"
	         "defer     unix  - - n -  0 bounce\n"
	         "trace     unix  - - n -  0 bounce\n"
	         "verify    unix  - - n -  1 verify\n"
	         "flush     unix  n - n 1000? 0 flush\n"
	         "proxymap  unix  - - n -  - proxymap\n"
	         "smtp      unix  - - n -  - smtp\n"
	         "relay     unix  - - n -  - smtp\n"
	         "showq     unix  n - n -  - showq\n"
	         "error     unix  - - n -  - error\n"
	         "retry     unix  - - n -  - error\n"
	         "discard   unix  - - n -  - discard\n"
	         "anvil     unix  - - n -  1 anvil\n"
	         "scache    unix  - - n -  1 scache\n"
	         "postlog   unix-dgram n - n - 1 postlogd\n",
	         p->port);
	snprintf(path, sizeof(path), "%s/master.cf", p->etc);
	write_text(path, text);
	for (int i = 0; i < RC_MAXPF; i++)
		if (registry[i] == NULL) {
			registry[i] = p;
			break;
		}
}

/* Run "postfix -c etc VERB"; returns its status, output in *out. */
static int postfix_cmd(struct rc_postfix *p, const char *verb, char **out)
{
	char *argv[] = {"/usr/sbin/postfix", "-c", p->etc, (char *)verb, NULL};
	return h_run(argv, NULL, 0, 30000, out, NULL);
}

/* The master's PID from queue/pid/master.pid, if that process is a
 * running Postfix master; else 0. */
static pid_t read_master_pid(struct rc_postfix *p)
{
	char path[H_PATH + 32], comm[64];
	snprintf(path, sizeof(path), "%s/pid/master.pid", p->queue);
	char *s = h_read_file(path, NULL);
	pid_t pid = s ? (pid_t)atoi(s + strspn(s, " ")) : 0;
	free(s);
	if (pid <= 0 || kill(pid, 0) != 0)
		return 0;
	h_comm(pid, comm, sizeof(comm));
	return strcmp(comm, "master") == 0 ? pid : 0;
}

void rc_postfix_dump_log(struct rc_postfix *p, int lines)
{
	size_t len;
	char *log = h_read_file(p->log, &len);
	if (log == NULL) {
		cr_log_info("postfix: no log at %s", p->log);
		return;
	}
	char *start = log + len;
	for (int n = 0; start > log && n <= lines; start--)
		if (start[-1] == '\n')
			n++;
	cr_log_info("postfix log (last %d lines):\n%s", lines, start);
	free(log);
}

void rc_postfix_start(struct rc_postfix *p)
{
	char *out = NULL;
	int st = postfix_cmd(p, "start", &out);
	if (st != 0)
		rc_postfix_dump_log(p, 30);
	cr_assert_eq(st, 0, "postfix -c %s start: %d\n%s", p->etc, st, out ? out : "");
	free(out);
	long long deadline = h_now_ms() + 15000;
	int up = 0;
	while (h_now_ms() < deadline && !up) {
		struct h_conn *c = malloc(sizeof(*c));
		cr_assert_not_null(c);
		if (p->master == 0)
			p->master = read_master_pid(p);
		if (p->master && h_connect(c, "127.0.0.1", p->port) == 0) {
			up = h_reply(c, 5000) == 220;
			h_send(c, "QUIT\r\n", 6);
			h_reply(c, 2000);
			h_close(c);
		}
		free(c);
		if (!up)
			h_sleep_ms(100);
	}
	if (!up)
		rc_postfix_dump_log(p, 30);
	cr_assert(up, "the private Postfix does not greet on 127.0.0.1:%d", p->port);
}

void rc_postfix_retarget(struct rc_postfix *p, int port)
{
	char arg[2][128], *out = NULL;
	if (port == p->relay_port)
		return;
	p->relay_port = port;
	snprintf(arg[0], sizeof(arg[0]), "relayhost=[127.0.0.1]:%d", port);
	snprintf(arg[1], sizeof(arg[1]), "smtp_connection_cache_destinations=[127.0.0.1]:%d", port);
	char *argv[] = {"/usr/sbin/postconf", "-c", p->etc, "-e", arg[0], arg[1], NULL};
	cr_assert_eq(h_run(argv, NULL, 0, 10000, &out, NULL), 0, "postconf: %s", out ? out : "");
	free(out);
	out = NULL;
	cr_assert_eq(postfix_cmd(p, "reload", &out), 0, "postfix reload: %s", out ? out : "");
	free(out);
}

void rc_postfix_stop(struct rc_postfix *p)
{
	if (p->master == 0)
		p->master = read_master_pid(p);
	if (p->master == 0)
		return;
	postfix_cmd(p, "stop", NULL);
	for (int i = 0; i < 100 && read_master_pid(p) == p->master; i++)
		h_sleep_ms(100);
	/* The same PID, still a master: ours, and stuck. Its children
	 * leave when their master is gone. */
	if (read_master_pid(p) == p->master)
		kill(p->master, SIGKILL);
	p->master = 0;
}

int rc_postfix_inject(struct rc_postfix *p, int n, const char *const *rcpts, int nrcpt,
                      const char *tag)
{
	struct h_conn *c = malloc(sizeof(*c));
	int ok = 0;
	cr_assert_not_null(c);
	h_open(c, "127.0.0.1", p->port);
	for (int i = 0; i < n; i++) {
		const char *to[8] = {NULL};
		char subject[64], token[64];
		size_t len;
		for (int k = 0; k <= i % nrcpt && k < 7; k++)
			to[k] = rcpts[k];
		snprintf(subject, sizeof(subject), "%s message %d", tag, i);
		snprintf(token, sizeof(token), "%s-%d", tag, i);
		char *msg = h_make_message(subject, token, &len);
		int code = h_transaction(c, i == 0 ? "inject.example.test" : NULL,
		                         "sender@postfix.example.test", to, msg, len);
		free(msg);
		if (code == 250)
			ok++;
		else
			cr_log_warn("postfix refused injected message %d: %d %s", i, code, c->last);
	}
	h_cmd(c, "QUIT");
	h_close(c);
	free(c);
	return ok;
}

int rc_postfix_queued(struct rc_postfix *p)
{
	char *out = NULL;
	char dirs[4][H_PATH + 16];
	const char *names[] = {"incoming", "active", "deferred", "hold"};
	for (int i = 0; i < 4; i++)
		snprintf(dirs[i], sizeof(dirs[i]), "%s/%s", p->queue, names[i]);
	char *argv[] = {"/usr/bin/find", dirs[0], dirs[1], dirs[2], dirs[3], "-type", "f", NULL};
	if (h_run(argv, NULL, 0, 10000, &out, NULL) != 0) {
		free(out);
		return -1;
	}
	int n = 0;
	for (char *s = out; s && *s; s++)
		n += *s == '\n';
	free(out);
	return n;
}

void rc_teardown(void)
{
	for (int i = 0; i < RC_MAXPF; i++)
		if (registry[i]) {
			rc_postfix_stop(registry[i]);
			registry[i] = NULL;
		}
	h_teardown();
}

/* ---- libfaketime ---- */

int rc_faketime_env(const char *offset, char *why, size_t size)
{
	glob_t g;
	char lib[H_PATH], preload[2 * H_PATH + 2], *out = NULL;

	if (glob("/usr/lib/*/faketime/libfaketimeMT.so.1", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		snprintf(why, size, "libfaketime is not installed (Debian package faketime)");
		return -1;
	}
	snprintf(lib, sizeof(lib), "%s", g.gl_pathv[0]);
	globfree(&g);
	/* ASan insists on coming first in the library list: preload the
	 * runtime the daemon was linked with before libfaketime. */
	char *argv[] = {"/usr/bin/ldd", (char *)h_tempomxd(), NULL};
	preload[0] = '\0';
	if (h_run(argv, NULL, 0, 10000, &out, NULL) == 0 && out) {
		char *a = strstr(out, "libasan.so");
		char *arrow = a ? strstr(a, "=> ") : NULL;
		if (arrow) {
			char *path = arrow + 3, *end = path + strcspn(path, " \n");
			snprintf(preload, sizeof(preload), "%.*s ", (int)(end - path), path);
		}
	}
	free(out);
	strncat(preload, lib, sizeof(preload) - strlen(preload) - 1);
	setenv("LD_PRELOAD", preload, 1);
	setenv("FAKETIME", offset, 1);
	setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
	return 0;
}

void rc_faketime_clear(void)
{
	unsetenv("LD_PRELOAD");
	unsetenv("FAKETIME");
	unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
}
