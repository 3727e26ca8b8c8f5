/*
 * outbound.c: helpers for the outbound delivery tests (test_outbound.c,
 * test_client.c): Python helpers started and stopped (the capture sink
 * outbound_sink.py, the DNS responder), what the sink recorded, free
 * loopback ports, and RFC 3464 reports checked with Python's email
 * package.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "outbound.h"

/* Start "python3 script args..." and wait for its ready file. */
pid_t ob_start_py(const char *script, const char *ready, char *const args[])
{
	char path[H_PATH];
	char *argv[24];
	int n = 0;
	h_srcpath(script, path, sizeof(path));
	argv[n++] = "/usr/bin/python3";
	argv[n++] = path;
	for (int i = 0; args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	unlink(ready);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	h_track(pid);
	for (int i = 0; i < 200; i++) {
		if (access(ready, F_OK) == 0)
			return pid;
		h_sleep_ms(25);
	}
	cr_assert_fail("%s did not start", script);
	return -1;
}

void ob_stop_py(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	h_untrack(pid);
}

/* A sink in D's directory; extra: further switches. */
void ob_sink_start(struct sink *s, const char *parent, const char *name, const char *addr, int port,
                   const char *const *extra)
{
	char ready[H_PATH + 16], portbuf[16];
	snprintf(s->dir, sizeof(s->dir), "%s/%s", parent, name);
	mkdir(s->dir, 0755);
	snprintf(ready, sizeof(ready), "%s/ready", s->dir);
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	s->port = port;
	char *args[16] = {"--addr", (char *)addr, "--port", portbuf, "--dir", s->dir};
	int n = 6;
	for (int i = 0; extra && extra[i] && n < 15; i++)
		args[n++] = (char *)extra[i];
	args[n] = NULL;
	s->pid = ob_start_py("t/integration/outbound_sink.py", ready, args);
}

/* Transaction n (1-based) of the sink, once it is there: env and data. */
int ob_sink_wait(struct sink *s, int n, int timeout_ms, char **env, char **data, size_t *dlen)
{
	char p[H_PATH + 32];
	long long end = h_now_ms() + timeout_ms;
	snprintf(p, sizeof(p), "%s/%d.env", s->dir, n);
	while (access(p, F_OK) != 0) {
		if (h_now_ms() > end)
			return 0;
		h_sleep_ms(50);
	}
	size_t elen;
	if (env)
		*env = h_read_file(p, &elen);
	snprintf(p, sizeof(p), "%s/%d.data", s->dir, n);
	if (data)
		*data = h_read_file(p, dlen);
	return 1;
}

int ob_sink_count(struct sink *s)
{
	int n = 0;
	char p[H_PATH + 32];
	for (;;) {
		snprintf(p, sizeof(p), "%s/%d.env", s->dir, n + 1);
		if (access(p, F_OK) != 0)
			return n;
		n++;
	}
}

/* Check a Maildir file is an RFC 3464 report about rcpt with status. */
void ob_check_dsn_action(const char *path, const char *rcpt, const char *status,
                         const char *subject, const char *action)
{
	char script[2048];
	snprintf(script, sizeof(script),
	         "import email, sys\n"
	         "m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n"
	         "assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
	         "assert m.get_param('report-type') == 'delivery-status'\n"
	         "p = m.get_payload()\n"
	         "assert len(p) == 3, len(p)\n"
	         "assert p[0].get_content_type() == 'text/plain'\n"
	         "assert p[1].get_content_type() == 'message/delivery-status'\n"
	         "blocks = p[1].get_payload()\n"
	         "assert blocks[0]['Reporting-MTA'] == 'dns; mx.example.test', blocks[0].items()\n"
	         "r = [b for b in blocks[1:] if '%s' in b['Final-Recipient']]\n"
	         "assert len(r) == 1, [b.items() for b in blocks]\n"
	         "assert r[0]['Action'] == '%s', r[0].items()\n"
	         "assert r[0]['Status'] == '%s', r[0].items()\n"
	         "assert p[2].get_content_type() == 'text/rfc822-headers'\n"
	         "assert 'Subject: %s' in p[2].get_payload(), p[2].get_payload()\n"
	         "assert m['Auto-Submitted'] == 'auto-replied'\n",
	         rcpt, action, status, subject);
	char *argv[] = {"/usr/bin/python3", "-c", script, (char *)path, NULL};
	char *out = NULL;
	size_t olen;
	int rc = h_run(argv, NULL, 0, 20000, &out, &olen);
	cr_expect_eq(rc, 0, "not a valid report: %s", out ? out : "");
	free(out);
}

void ob_check_dsn(const char *path, const char *rcpt, const char *status, const char *subject)
{
	ob_check_dsn_action(path, rcpt, status, subject, "failed");
}

int ob_sink_field(struct sink *s, int n, const char *key)
{
	char *env, needle[64];
	if (!ob_sink_wait(s, n, WAIT_MS, &env, NULL, NULL))
		return -1;
	/* Fields are at line starts: "\nkey N". */
	snprintf(needle, sizeof(needle), "\n%s ", key);
	const char *p = strstr(env, needle);
	int c = p ? atoi(p + strlen(needle)) : -1;
	free(env);
	return c;
}

int ob_sink_conn_of(struct sink *s, int n)
{
	return ob_sink_field(s, n, "conn");
}

int ob_sink_maxconc(struct sink *s, int n)
{
	return ob_sink_field(s, n, "maxconc");
}

void ob_base_conf(struct h_daemon *d)
{
	h_daemon_init(d);
	h_set(d, "local_domains", "local.test");
	h_set(d, "mynetworks", "127.0.0.1/32");
	h_set(d, "retry_min", "1s");
	h_set(d, "retry_max", "2s");
	h_set(d, "queue_rescan_interval", "1s");
}
