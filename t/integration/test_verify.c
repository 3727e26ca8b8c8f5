/*
 * test_verify.c: recipient verification at RCPT against a real Dovecot
 * LMTP server (recipient_verify = lmtp:...): known users are accepted and
 * delivered, unknown ones get 550 5.1.1 at RCPT and nothing is queued,
 * pipelined replies keep their order, answers are cached, a store that
 * is down or silent gives 451 4.4.3 (or 250 with
 * recipient_verify_failure = accept) within recipient_verify_timeout, a
 * client that leaves while its question is pending does no harm, a
 * question caught by a store dropping an idle connection is asked again,
 * several sessions share a bounded pool, and SIGHUP applies a new target.
 *
 * Dovecot runs from a temporary configuration in the daemon's directory
 * with passwd-file users alice and bob of local.test (as in
 * test_outbound.c); Dovecot is a test dependency, so a missing or failing
 * Dovecot fails the tests.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

TestSuite(verify, .init = h_setup, .fini = h_teardown, .timeout = 90);

static struct h_daemon D;

#define WAIT_MS 20000

struct dovecot {
	pid_t pid;
	int port;
	char socket[H_PATH + 32]; /* its LMTP unix socket */
	char store[H_PATH + 32];  /* the mailboxes: <store>/<user>/Maildir */
};

static void base_conf(void)
{
	ob_base_conf(&D);
}

/* Dovecot is a test dependency (scripts/install-deps): its absence is a
 * failure, never a silent pass. */
static int have_dovecot(void)
{
	cr_assert(access("/usr/sbin/dovecot", X_OK) == 0 &&
	              access("/usr/lib/dovecot/lmtp", X_OK) == 0,
	          "Dovecot is not installed (scripts/install-deps installs dovecot-lmtpd)");
	return 1;
}

static int dovecot_try_start(struct dovecot *dv);

/* Start Dovecot's LMTP on a free loopback port, users alice and bob of
 * local.test. Returns 0; a Dovecot that does not come up fails the test. */
static int dovecot_start(struct dovecot *dv)
{
	int rc = dovecot_try_start(dv);
	cr_assert_eq(rc, 0, "Dovecot's LMTP did not come up");
	return rc;
}

static int dovecot_try_start(struct dovecot *dv)
{
	char dir[H_PATH + 16], conf[H_PATH + 32], users[H_PATH + 32];
	dv->port = h_free_port();
	snprintf(dir, sizeof(dir), "%s/dovecot", D.dir);
	snprintf(conf, sizeof(conf), "%s/dovecot.conf", dir);
	snprintf(users, sizeof(users), "%s/users", dir);
	snprintf(dv->store, sizeof(dv->store), "%s/store", dir);
	snprintf(dv->socket, sizeof(dv->socket), "%s/run/verify", dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(mkdir(dv->store, 0755), 0);
	/* The mailboxes belong to the unprivileged run user. */
	h_chown_run_user(dv->store);
	struct stat st;
	cr_assert_eq(stat(dv->store, &st), 0);
	char text[4096];
	snprintf(text, sizeof(text),
	         "alice@local.test:{PLAIN}x:%u:%u::%s/alice\n"
	         "bob@local.test:{PLAIN}x:%u:%u::%s/bob\n",
	         (unsigned)st.st_uid, (unsigned)st.st_gid, dv->store, (unsigned)st.st_uid,
	         (unsigned)st.st_gid, dv->store);
	cr_assert_eq(h_write_file(users, text, strlen(text), 0644), 0);
	snprintf(text, sizeof(text),
	         "protocols = lmtp\nbase_dir = %s/run\nstate_dir = %s/run\n"
	         "log_path = %s/dovecot.log\nlisten = 127.0.0.1\nssl = no\n"
	         "mail_location = maildir:~/Maildir\nfirst_valid_uid = 1\n"
	         "passdb {\n driver = passwd-file\n args = %s\n}\n"
	         "userdb {\n driver = passwd-file\n args = %s\n}\n"
	         "service lmtp {\n inet_listener lmtp {\n  address = 127.0.0.1\n  port = %d\n }\n"
	         " unix_listener verify {\n  mode = 0666\n }\n}\n",
	         dir, dir, dir, users, users, dv->port);
	cr_assert_eq(h_write_file(conf, text, strlen(text), 0644), 0);
	dv->pid = fork();
	cr_assert(dv->pid >= 0);
	if (dv->pid == 0) {
		execl("/usr/sbin/dovecot", "dovecot", "-F", "-c", conf, (char *)NULL);
		_exit(127);
	}
	h_track(dv->pid);
	for (int i = 0; i < 100; i++) {
		struct h_conn c;
		if (h_connect(&c, "127.0.0.1", dv->port) == 0) {
			h_close(&c);
			return 0;
		}
		h_sleep_ms(50);
	}
	return -1;
}

/* Stop Dovecot and wait until its port refuses connections. */
static void dovecot_stop(struct dovecot *dv)
{
	if (dv->pid <= 0)
		return;
	kill(dv->pid, SIGTERM);
	waitpid(dv->pid, NULL, 0);
	h_untrack(dv->pid);
	dv->pid = 0;
	for (int i = 0; i < 100; i++) {
		struct h_conn c;
		if (h_connect(&c, "127.0.0.1", dv->port) != 0)
			return;
		h_close(&c);
		h_sleep_ms(50);
	}
	cr_assert_fail("Dovecot still answers after SIGTERM");
}

/* Daemon and Dovecot with verification (and LMTP delivery) to it. */
static int start_with_dovecot(struct dovecot *dv)
{
	if (!have_dovecot())
		return -1;
	base_conf();
	if (dovecot_start(dv) != 0)
		return -1;
	h_set(&D, "transport", "local.test=lmtp:[127.0.0.1]:%d", dv->port);
	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", dv->port);
	h_daemon_start(&D);
	return 0;
}

static void finish(struct dovecot *dv)
{
	h_daemon_stop(&D);
	if (dv)
		dovecot_stop(dv);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
}

static void mailbox(const struct dovecot *dv, const char *user, char *out, size_t size)
{
	snprintf(out, size, "%s/%s/Maildir", dv->store, user);
}

Test(verify, known_user_accepted_and_delivered)
{
	struct dovecot dv = {0};
	if (start_with_dovecot(&dv) != 0)
		return;
	size_t len;
	char *msg = h_make_message("verified", "verify-known-1", &len);
	const char *rcpts[] = {"alice@local.test", NULL};
	int code = h_send_mail(D.port, "127.0.0.2", "someone@remote.test", rcpts, msg, len);
	cr_expect_eq(code, 250, "mail to a known user: %d", code);
	char md[H_PATH + 64];
	mailbox(&dv, "alice", md, sizeof(md));
	int n = h_maildir_wait(md, 1, WAIT_MS);
	if (n != 1)
		h_dump_log(&D, 30);
	cr_expect_eq(n, 1, "alice got nothing from Dovecot");
	cr_expect(!h_log_has(&D, "verify: reject"), "a known user was refused");
	free(msg);
	finish(&dv);
}

Test(verify, unknown_user_refused_at_rcpt_nothing_queued)
{
	struct dovecot dv = {0};
	if (start_with_dovecot(&dv) != 0)
		return;
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 550, "RCPT TO:<nobody@local.test>");
	cr_expect(h_last_has(&c, "550 5.1.1 <nobody@local.test>"), "reply: %s", c.last);
	h_expect(&c, 503, "DATA");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_wait(&D, "verify: reject: RCPT from unknown[127.0.0.2]", WAIT_MS),
	          "no verify log line");
	cr_expect(h_log_has(&D, "to=<nobody@local.test>: lmtp:[127.0.0.1]"),
	          "the log line does not name the recipient and the store");
	cr_expect(h_log_has(&D, "said: 550"), "the log line lacks the store's reply");
	cr_expect_eq(h_spool_total(&D), 0, "something was queued");
	cr_expect_eq(h_spool_count(&D, "incoming"), 0);
	finish(&dv);
}

/* One write: MAIL, four RCPTs (known, unknown, postmaster, known), DATA.
 * The replies come in the order of the commands. */
Test(verify, pipelined_mixed_recipients_in_order)
{
	struct dovecot dv = {0};
	if (start_with_dovecot(&dv) != 0)
		return;
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	cr_assert_eq(h_sendf(&c, "MAIL FROM:<someone@remote.test>\r\n"
	                         "RCPT TO:<alice@local.test>\r\n"
	                         "RCPT TO:<nobody@local.test>\r\n"
	                         "RCPT TO:<postmaster@local.test>\r\n"
	                         "RCPT TO:<ghost@local.test>\r\n"
	                         "RCPT TO:<bob@local.test>\r\n"
	                         "DATA\r\n"),
	             0);
	static const struct {
		int code;
		const char *text;
	} want[] = {
	    {250, "2.1.0"},
	    {250, "2.1.5"},
	    {550, "<nobody@local.test>"},
	    {250, "2.1.5"},
	    {550, "<ghost@local.test>"},
	    {250, "2.1.5"},
	    {354, ""},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int code = h_reply(&c, 15000);
		cr_assert_eq(code, want[i].code, "reply %zu: %d (%s)", i, code, c.last);
		cr_expect(h_last_has(&c, want[i].text), "reply %zu: %s", i, c.last);
	}
	size_t len, slen;
	char *msg = h_make_message("pipelined", "verify-pipe-1", &len);
	char *stuffed = h_dotstuff(msg, len, &slen);
	cr_assert_eq(h_send(&c, stuffed, slen), 0);
	h_expect_reply(&c, 250, "end of data");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	char md[H_PATH + 64];
	mailbox(&dv, "alice", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 1, WAIT_MS), 1, "alice got nothing");
	mailbox(&dv, "bob", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 1, WAIT_MS), 1, "bob got nothing");
	cr_expect(h_spool_wait_idle(&D, WAIT_MS));
	free(stuffed);
	free(msg);
	finish(&dv);
}

/* Answers are remembered: with Dovecot stopped, alice (known) and nobody
 * (unknown) are still answered from the cache; bob, never asked, cannot
 * be verified and gets 451 4.4.3. */
Test(verify, cache_answers_while_the_store_is_down)
{
	struct dovecot dv = {0};
	if (start_with_dovecot(&dv) != 0)
		return;
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 250, "RCPT TO:<alice@local.test>");
	h_expect(&c, 550, "RCPT TO:<nobody@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);

	dovecot_stop(&dv);
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	long long t0 = h_now_ms();
	h_expect(&c, 250, "RCPT TO:<alice@local.test>");
	h_expect(&c, 550, "RCPT TO:<nobody@local.test>");
	cr_expect(h_log_has(&D, "unknown to lmtp:[127.0.0.1]"), "the cached refusal is not logged");
	h_expect(&c, 451, "RCPT TO:<bob@local.test>");
	cr_expect(h_last_has(&c, "451 4.4.3"), "reply: %s", c.last);
	cr_expect_lt(h_now_ms() - t0, 5000, "a refused connection took the whole timeout");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_wait(&D, "cannot verify <bob@local.test>", WAIT_MS));
	finish(NULL);
}

/* Several sessions at once, each pipelining known and unknown users,
 * nothing cached: questions share the connection pool, and every session
 * gets its own answers in its own order. */
Test(verify, sessions_share_the_pool)
{
	struct dovecot dv = {0};
	if (!have_dovecot())
		return;
	base_conf();
	if (dovecot_start(&dv) != 0)
		return;
	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", dv.port);
	h_set(&D, "recipient_verify_positive_ttl", "0");
	h_set(&D, "recipient_verify_negative_ttl", "0");
	h_daemon_start(&D);
	enum { N = 8 };
	static struct h_conn c[N];
	for (int i = 0; i < N; i++) {
		h_open(&c[i], "127.0.0.2", D.port);
		h_expect(&c[i], 250, "EHLO mta.remote.test");
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(h_sendf(&c[i],
		                     "MAIL FROM:<s%d@remote.test>\r\n"
		                     "RCPT TO:<ghost%d@local.test>\r\n"
		                     "RCPT TO:<alice@local.test>\r\n"
		                     "RCPT TO:<phantom%d@local.test>\r\n"
		                     "RCPT TO:<bob@local.test>\r\n"
		                     "RSET\r\n",
		                     i, i, i),
		             0);
	static const int want[] = {250, 550, 250, 550, 250, 250};
	for (int i = 0; i < N; i++) {
		for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
			int code = h_reply(&c[i], 15000);
			cr_expect_eq(code, want[k], "session %d, reply %zu: %d (%s)", i, k, code,
			             c[i].last);
		}
		cr_expect(h_last_has(&c[i], "2.0.0"), "session %d: the last reply is not RSET's",
		          i);
		h_expect(&c[i], 221, "QUIT");
		h_close(&c[i]);
	}
	/* 40 questions over at most 4 connections (plus the test's own
	 * connection that saw Dovecot come up). */
	char path[H_PATH + 32];
	snprintf(path, sizeof(path), "%s/dovecot/dovecot.log", D.dir);
	size_t len;
	char *log = h_read_file(path, &len);
	cr_assert_not_null(log);
	int conns = h_count(log, len, "Connect from");
	cr_expect(conns >= 2 && conns <= 5, "%d connections to Dovecot", conns);
	free(log);
	finish(&dv);
}

/* The same over Dovecot's unix socket (lmtp:unix:/path). */
Test(verify, unix_socket_target)
{
	struct dovecot dv = {0};
	if (!have_dovecot())
		return;
	base_conf();
	if (dovecot_start(&dv) != 0)
		return;
	h_set(&D, "recipient_verify", "lmtp:unix:%s", dv.socket);
	h_daemon_start(&D);
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 250, "RCPT TO:<bob@local.test>");
	h_expect(&c, 550, "RCPT TO:<nobody@local.test>");
	cr_expect(h_last_has(&c, "5.1.1"), "reply: %s", c.last);
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	finish(&dv);
}

/* Nothing listens on the target: tempfail by default, 250 with
 * recipient_verify_failure = accept. */
static void store_down(const char *failure, int want)
{
	base_conf();
	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", h_free_port());
	if (failure)
		h_set(&D, "recipient_verify_failure", "%s", failure);
	h_daemon_start(&D);
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	for (int i = 0; i < 3; i++)
		h_expect(&c, want, "RCPT TO:<user%d@local.test>", i);
	/* Other domains and postmaster are never asked. */
	h_expect(&c, 250, "RCPT TO:<postmaster@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_has(&D, want == 250 ? "accepted unverified" : "tempfailed"));
	finish(NULL);
}

Test(verify, store_down_tempfails)
{
	store_down(NULL, 451);
}

Test(verify, store_down_accepts_when_configured)
{
	store_down("accept", 250);
}

Test(verify, unix_socket_missing_tempfails)
{
	base_conf();
	h_set(&D, "recipient_verify", "lmtp:unix:%s/no-such-socket", D.dir);
	h_daemon_start(&D);
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 451, "RCPT TO:<alice@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	finish(NULL);
}

/* A scripted LMTP store in a child process: on its first connection it
 * answers one question, then drops the connection when the next MAIL
 * comes (as a store that timed the idle connection out would); later
 * connections answer normally. Users known: alice, bob. */
static void fake_store_conn(int fd, int drop_second_mail)
{
	char buf[4096];
	size_t len = 0;
	int mails = 0;
	const char greet[] = "220 fake LMTP\r\n";
	if (write(fd, greet, sizeof(greet) - 1) < 0)
		return;
	for (;;) {
		char *nl = memchr(buf, '\n', len);
		if (nl == NULL) {
			if (len == sizeof(buf))
				return;
			ssize_t n = read(fd, buf + len, sizeof(buf) - len);
			if (n <= 0)
				return;
			len += (size_t)n;
			continue;
		}
		*nl = '\0';
		const char *r = "250 2.0.0 ok\r\n";
		if (strncmp(buf, "MAIL", 4) == 0 && ++mails == 2 && drop_second_mail)
			return;
		if (strncmp(buf, "RCPT", 4) == 0 && strstr(buf, "<alice@") == NULL &&
		    strstr(buf, "<bob@") == NULL)
			r = "550 5.1.1 no such user\r\n";
		if (strncmp(buf, "QUIT", 4) == 0)
			r = "221 2.0.0 bye\r\n";
		if (write(fd, r, strlen(r)) < 0)
			return;
		size_t used = (size_t)(nl - buf) + 1;
		memmove(buf, buf + used, len - used);
		len -= used;
	}
}

static pid_t fake_store_start(int *port)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(lfd, 16), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		alarm(60);
		for (int n = 0; n < 16; n++) {
			int fd = accept(lfd, NULL, NULL);
			if (fd < 0)
				_exit(1);
			fake_store_conn(fd, n == 0);
			close(fd);
		}
		_exit(0);
	}
	close(lfd);
	h_track(pid);
	return pid;
}

Test(verify, dropped_idle_connection_is_asked_again)
{
	int port;
	pid_t store = fake_store_start(&port);
	base_conf();
	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", port);
	h_daemon_start(&D);
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 250, "RCPT TO:<alice@local.test>");
	/* Asked on the same connection, which the store drops: asked again
	 * on a new one, and answered. */
	h_expect(&c, 250, "RCPT TO:<bob@local.test>");
	h_expect(&c, 550, "RCPT TO:<carol@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(!h_log_has(&D, "cannot verify"), "a question was given up");
	finish(NULL);
	kill(store, SIGTERM);
	waitpid(store, NULL, 0);
	h_untrack(store);
}

/* smtpd resolves no names: a host name as target is logged at start and
 * its recipients are tempfailed, never accepted unverified by mistake. */
Test(verify, host_name_target_tempfails_with_a_warning)
{
	base_conf();
	h_set(&D, "recipient_verify", "lmtp:[store.local.test]:24");
	h_daemon_start(&D);
	cr_expect(h_log_wait(&D, "the LMTP host must be an IP address", WAIT_MS));
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 451, "RCPT TO:<alice@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	finish(NULL);
}

/* A listening socket nobody accepts from: the connection completes in
 * the kernel and no greeting ever comes. */
static int silent_listener(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

Test(verify, silent_store_answers_after_the_timeout)
{
	int port, lfd = silent_listener(&port);
	base_conf();
	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", port);
	h_set(&D, "recipient_verify_timeout", "2s");
	h_daemon_start(&D);
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	long long t0 = h_now_ms();
	/* Pipelined behind it: answered after it, not before. */
	cr_assert_eq(h_sendf(&c, "RCPT TO:<alice@local.test>\r\nNOOP\r\n"), 0);
	int code = h_reply(&c, 10000);
	long long took = h_now_ms() - t0;
	cr_expect_eq(code, 451, "RCPT: %d (%s)", code, c.last);
	cr_expect(h_last_has(&c, "4.4.3"), "reply: %s", c.last);
	cr_expect_geq(took, 1500, "answered after %lld ms, before the timeout", took);
	cr_expect_lt(took, 6000, "answered after %lld ms", took);
	h_expect_reply(&c, 250, "NOOP after the pending RCPT");
	/* The session goes on. */
	h_expect(&c, 250, "RCPT TO:<postmaster@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_log_has(&D, "no answer within 2s"));
	finish(NULL);
	close(lfd);
}

/* Clients that leave while their question is pending: nothing crashes
 * or leaks (the sanitizers watch the daemon), and the next client is
 * served. */
Test(verify, client_leaves_while_pending)
{
	int port, lfd = silent_listener(&port);
	base_conf();
	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", port);
	h_set(&D, "recipient_verify_timeout", "2s");
	h_daemon_start(&D);
	for (int i = 0; i < 6; i++) {
		struct h_conn c;
		h_open(&c, "127.0.0.2", D.port);
		h_expect(&c, 250, "EHLO mta.remote.test");
		h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
		cr_assert_eq(h_sendf(&c, "RCPT TO:<user%d@local.test>\r\n", i), 0);
		h_close(&c);
	}
	cr_expect(h_log_wait(&D, "lost connection after RCPT", WAIT_MS));
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 451, "RCPT TO:<alice@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);
	cr_expect(h_daemon_alive(&D));

	/* SIGTERM while a question is pending: 421, and a clean exit
	 * (finish() checks the exit status and the sanitizers). */
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	/* Earlier questions timed out and their connections are closed. */
	int fd;
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	for (int i = 0; i < 64 && poll(&pfd, 1, 0) == 1; i++)
		if ((fd = accept(lfd, NULL, NULL)) >= 0)
			close(fd);
	cr_assert_eq(h_sendf(&c, "RCPT TO:<bob@local.test>\r\n"), 0);
	/* The question is under way once smtpd connects to the store. */
	cr_assert_eq(poll(&pfd, 1, 5000), 1, "smtpd did not connect to the store");
	fd = accept(lfd, NULL, NULL);
	cr_assert_geq(fd, 0);
	cr_assert_eq(kill(D.pid, SIGTERM), 0);
	int code = h_reply(&c, 5000);
	cr_expect_eq(code, 421, "on shutdown: %d (%s)", code, c.last);
	h_close(&c);
	finish(NULL);
	close(fd);
	close(lfd);
}

/* SIGHUP: a new target takes effect (none -> Dovecot), and the cache is
 * flushed. */
Test(verify, sighup_applies_a_new_target)
{
	struct dovecot dv = {0};
	if (!have_dovecot())
		return;
	base_conf();
	if (dovecot_start(&dv) != 0)
		return;
	h_daemon_start(&D);
	struct h_conn c;
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 250, "RCPT TO:<nobody@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);

	h_set(&D, "recipient_verify", "lmtp:[127.0.0.1]:%d", dv.port);
	h_write_conf(&D);
	cr_assert_eq(kill(D.pid, SIGHUP), 0);
	cr_assert(h_log_wait(&D, "recipients of the local domains are verified with", WAIT_MS),
	          "smtpd did not apply the new target");
	h_open(&c, "127.0.0.2", D.port);
	h_expect(&c, 250, "EHLO mta.remote.test");
	h_expect(&c, 250, "MAIL FROM:<someone@remote.test>");
	h_expect(&c, 550, "RCPT TO:<nobody@local.test>");
	h_expect(&c, 250, "RCPT TO:<alice@local.test>");
	h_expect(&c, 221, "QUIT");
	h_close(&c);

	/* A second reload flushes what was learnt. */
	cr_assert_eq(kill(D.pid, SIGHUP), 0);
	cr_expect(h_log_wait(&D, "verify: cache flushed (2 addresses)", WAIT_MS),
	          "the cache was not flushed");
	finish(&dv);
}
