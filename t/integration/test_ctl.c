/*
 * test_ctl.c: tempomxctl (and mailq) as an admin uses them.
 *
 * The listing is checked against golden text in Postfix's mailq layout
 * (empty queue; messages of both classes in every listed directory, one
 * held, one being delivered, one deferred with the last replies of its
 * recipients) from spool files written here while the daemon is stopped;
 * the JSON listing is parsed by python3. Against a running daemon: hold,
 * release, requeue, delete and flush of a deferred message; holds racing
 * the scanner lose and duplicate nothing; history feedback changes what
 * "why" says; a whitelist entry applies without a restart. Bad arguments
 * give one line on stderr and a non-zero exit, and every command the
 * binary knows is documented in tempomxctl(8).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "outbound.h"

TestSuite(ctl, .init = h_setup, .fini = h_teardown, .timeout = 90);

static struct h_daemon D;

#define CTL_TIMEOUT_MS 20000

static const char *ctl_path(void)
{
	static char path[H_PATH];
	const char *e = getenv("TEMPOMXCTL");
	if (e && *e)
		return e;
	e = getenv("TMX_BUILDDIR");
	snprintf(path, sizeof(path), "%s/tempomxctl", e && *e ? e : ".");
	return path;
}

/* Run "tempomxctl -f conf ARGS..." (NULL-terminated); stdout and stderr
 * in *out. Returns the exit status. */
static int ctl_run(const char *prog, char **out, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	argv[argc++] = (char *)prog;
	argv[argc++] = "-f";
	argv[argc++] = D.conf;
	va_start(ap, out);
	for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	char *o = NULL;
	int rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &o, NULL);
	if (out)
		*out = o;
	else
		free(o);
	return rc;
}

#define CTL(out, ...) ctl_run(ctl_path(), out, __VA_ARGS__, (char *)NULL)

/* The one queue ID in a queue directory ("" when none). */
static void only_id(const char *queue, char *id, size_t size)
{
	char path[H_PATH + 32];
	struct dirent *de;
	snprintf(path, sizeof(path), "%s/%s", D.spool, queue);
	DIR *d = opendir(path);
	id[0] = '\0';
	if (!d)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			snprintf(id, size, "%.40s", de->d_name);
	closedir(d);
}

static int wait_count(const char *queue, int n, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	while (h_spool_count(&D, queue) != n) {
		if (h_now_ms() >= deadline)
			return 0;
		h_sleep_ms(20);
	}
	return 1;
}

/* ---- spool files written by hand (daemon stopped) ---- */

#define ARRIVAL 1795673962 /* Thu Nov 26 06:19:22 2026 UTC */

/* Write <spool>/<queue>/<id>: the envelope block in the documented
 * format (spool/README) and a message of bodylen octets. */
static void put_msg(const char *queue, const char *id, int minute, const char *cls,
                    const char *sender, const char *extra, const char *rcpts, size_t bodylen)
{
	char path[H_PATH + 64], block[4096];
	int n = snprintf(block, sizeof(block),
	                 "tempomx-envelope 1\n"
	                 "id %s\n"
	                 "arrival %d.000000\n"
	                 "client-addr 192.0.2.7\n"
	                 "client-port 52311\n"
	                 "client-name mx.example.test\n"
	                 "helo mx.example.test\n"
	                 "protocol ESMTP\n"
	                 "sender%s%s\n"
	                 "smtputf8 0\n"
	                 "class %s\n"
	                 "verdict good\n"
	                 "score 0\n"
	                 "attempts 0\n"
	                 "next-retry 0\n"
	                 "%s"
	                 "%s"
	                 "size %020zu\n"
	                 "end\n",
	                 id, ARRIVAL + 60 * minute, sender[0] ? " " : "", sender, cls, extra, rcpts,
	                 bodylen);
	cr_assert(n > 0 && (size_t)n < sizeof(block));
	char *file = malloc((size_t)n + bodylen);
	cr_assert_not_null(file);
	memcpy(file, block, (size_t)n);
	memset(file + n, 'x', bodylen);
	if (bodylen >= 2) {
		file[(size_t)n + bodylen - 2] = '\r';
		file[(size_t)n + bodylen - 1] = '\n';
	}
	snprintf(path, sizeof(path), "%s/%s/%s", D.spool, queue, id);
	cr_assert_eq(h_write_file(path, file, (size_t)n + bodylen, 0600), 0, "%s", path);
	h_chown_run_user(path);
	free(file);
}

#define R1 "451 4.4.1 connect to mx.remote.test: Connection refused"

static void put_golden_queue(void)
{
	put_msg("lo", "06B0000010000000000001", 0, "lo", "bob@example.test", "",
	        "rcpt pending 0 0 0 alice@example.test\n", 1000);
	put_msg("deferred", "06B0000010000000000002", 1, "hi", "", "",
	        "rcpt deferred 2 1795674000 1795675000 carol@remote.test\n"
	        "rcpt-reply " R1 "\n"
	        "rcpt deferred 2 1795674000 1795675000 dave@remote.test\n"
	        "rcpt-reply " R1 "\n"
	        "rcpt sent 1 1795674000 0 erin@remote.test\n"
	        "rcpt-reply 250 2.0.0 ok\n"
	        "rcpt deferred 2 1795674000 1795675000 frank@other.test\n"
	        "rcpt-reply 450 4.2.0 mailbox busy\n",
	        2048);
	put_msg("hold", "06B0000010000000000003", 2, "hi", "carol@example.test", "",
	        "rcpt pending 0 0 0 gina@example.test\n", 3000);
	put_msg("out", "06B0000010000000000004", 3, "hi", "dan@example.test", "",
	        "rcpt pending 0 0 0 hank@example.test\n", 500);
	put_msg("quarantine", "06B0000010000000000005", 4, "lo", "evil@spam.test",
	        "scan-result infected Eicar-Signature\n", "rcpt pending 0 0 0 ivy@example.test\n",
	        68);
}

/* Postfix's layout: ID, size and arrival columns of 11, 7 and 20, the
 * recipients indented by 41, each reason right-aligned to column 78. */
static const char golden[] =
    "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
    "06B0000010000000000001    1000 Thu Nov 26 06:19:22  bob@example.test  class=LO queue=lo\n"
    "                                         alice@example.test\n"
    "\n"
    "06B0000010000000000002    2048 Thu Nov 26 06:20:22  MAILER-DAEMON  class=HI queue=deferred\n"
    "                     (451 4.4.1 connect to mx.remote.test: Connection refused)\n"
    "                                         carol@remote.test\n"
    "                                         dave@remote.test\n"
    "                                                      (450 4.2.0 mailbox busy)\n"
    "                                         frank@other.test\n"
    "\n"
    "06B0000010000000000003!    3000 Thu Nov 26 06:21:22  carol@example.test  class=HI "
    "queue=hold\n"
    "                                         gina@example.test\n"
    "\n"
    "06B0000010000000000004*     500 Thu Nov 26 06:22:22  dan@example.test  class=HI queue=out\n"
    "                                         hank@example.test\n"
    "\n"
    "06B0000010000000000005!      68 Thu Nov 26 06:23:22  evil@spam.test  class=LO "
    "queue=quarantine\n"
    "                                         ivy@example.test\n"
    "\n"
    "-- 6 Kbytes in 5 Requests.\n";

/* A spool prepared by the daemon (owner, directories), daemon stopped. */
static void prepared_spool(void)
{
	setenv("TZ", "UTC", 1);
	h_daemon_init(&D);
	h_daemon_start(&D);
	h_daemon_stop(&D);
}

Test(ctl, empty_queue)
{
	char *out;
	h_daemon_init(&D);
	h_daemon_start(&D);
	int rc = CTL(&out, "queue");
	cr_expect_eq(rc, 0, "exit %d: %s", rc, out);
	cr_expect_str_eq(out, "Mail queue is empty\n");
	free(out);
	rc = CTL(&out, "queue", "--json");
	cr_expect_eq(rc, 0);
	cr_expect_str_eq(out, "", "JSON listing of an empty queue: %s", out);
	free(out);
	h_daemon_stop(&D);
	/* With the daemon stopped too. */
	rc = CTL(&out, "queue");
	cr_expect_eq(rc, 0);
	cr_expect_str_eq(out, "Mail queue is empty\n");
	free(out);
	h_daemon_free(&D);
}

Test(ctl, golden_listing_daemon_stopped)
{
	char *out, link[H_PATH + 16];
	prepared_spool();
	put_golden_queue();
	int rc = CTL(&out, "queue");
	cr_expect_eq(rc, 0, "exit %d", rc);
	cr_expect_str_eq(out, golden, "mailq layout differs; got:\n%s", out);
	cr_log_info("tempomxctl queue:\n%s", out);
	free(out);

	/* mailq is the same program under another name. */
	snprintf(link, sizeof(link), "%s/mailq", D.dir);
	char target[PATH_MAX];
	cr_assert_not_null(realpath(ctl_path(), target), "%s: %s", ctl_path(), strerror(errno));
	cr_assert_eq(symlink(target, link), 0, "symlink: %s", strerror(errno));
	rc = ctl_run(link, &out, (char *)NULL);
	cr_expect_eq(rc, 0);
	cr_expect_str_eq(out, golden, "mailq output differs:\n%s", out);
	free(out);
	h_daemon_free(&D);
}

static void expect_ids(const char *what, const char *out, const char *want)
{
	/* want: the last digit of each ID expected, e.g. "15". */
	for (char d = '1'; d <= '5'; d++) {
		char id[32];
		snprintf(id, sizeof(id), "06B000001000000000000%c", d);
		int has = strstr(out, id) != NULL;
		cr_expect_eq(has, strchr(want, d) != NULL, "%s: %s %s listed:\n%s", what, id,
		             has ? "is" : "is not", out);
	}
}

Test(ctl, filters)
{
	char *out;
	prepared_spool();
	put_golden_queue();
	cr_expect_eq(CTL(&out, "queue", "--class", "lo"), 0);
	expect_ids("--class lo", out, "15");
	cr_expect(strstr(out, "-- 1 Kbytes in 2 Requests.\n") != NULL, "%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "queue", "--queue", "deferred"), 0);
	expect_ids("--queue deferred", out, "2");
	free(out);
	cr_expect_eq(CTL(&out, "queue", "--from", "<>"), 0);
	expect_ids("--from <>", out, "2");
	free(out);
	cr_expect_eq(CTL(&out, "queue", "--from", "CAROL@example.test"), 0);
	expect_ids("--from CAROL@example.test", out, "3");
	free(out);
	/* erin@remote.test was delivered: not a recipient still to do. */
	cr_expect_eq(CTL(&out, "queue", "--to", "erin@remote.test"), 0);
	cr_expect_str_eq(out, "Mail queue is empty\n");
	free(out);
	cr_expect_eq(CTL(&out, "queue", "--to", "frank@other.test", "--class", "hi"), 0);
	expect_ids("--to frank", out, "2");
	free(out);
	h_daemon_free(&D);
}

Test(ctl, json_parsed_by_python)
{
	char *out;
	size_t len;
	prepared_spool();
	put_golden_queue();
	int rc = CTL(&out, "queue", "-j");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	len = strlen(out);
	static const char script[] =
	    "import json, sys\n"
	    "objs = [json.loads(l) for l in sys.stdin.read().splitlines()]\n"
	    "assert len(objs) == 5, len(objs)\n"
	    "byid = {o['queue_id'][-1]: o for o in objs}\n"
	    "assert [o['queue_name'] for o in objs] == "
	    "['lo', 'deferred', 'hold', 'out', 'quarantine'], objs\n"
	    "assert byid['1']['class'] == 'lo' and byid['1']['sender'] == 'bob@example.test'\n"
	    "assert byid['1']['message_size'] == 1000\n"
	    "assert byid['1']['arrival_time'] == 1795673962\n"
	    "assert byid['2']['sender'] == ''\n"
	    "r = byid['2']['recipients']\n"
	    "assert [x['address'] for x in r] == "
	    "['carol@remote.test', 'dave@remote.test', 'erin@remote.test', 'frank@other.test']\n"
	    "assert r[0]['status'] == 'deferred' and r[2]['status'] == 'sent'\n"
	    "assert r[0]['delay_reason'].startswith('451 4.4.1 connect'), r[0]\n"
	    "assert r[3]['attempts'] == 2 and r[3]['next_retry'] == 1795675000\n"
	    "assert byid['5']['scan_result'] == 'infected Eicar-Signature'\n"
	    "assert byid['3']['scan_result'] is None\n"
	    "assert byid['4']['client_address'] == '192.0.2.7'\n"
	    "print('json ok')\n";
	char *argv[] = {"python3", "-c", (char *)script, NULL};
	char *py;
	rc = h_run(argv, out, len, CTL_TIMEOUT_MS, &py, NULL);
	cr_expect_eq(rc, 0, "python3 rejected the JSON (%d):\n%s\ninput:\n%s", rc, py, out);
	cr_expect(strstr(py, "json ok") != NULL, "%s", py);
	free(py);
	free(out);
	h_daemon_free(&D);
}

/* Quarantine is left only with --force, to out/ for delivery; a held
 * message never scanned goes back to its class's queue; requeue forgets
 * the scan result; a file in corrupt/ can be deleted by its name. */
Test(ctl, release_quarantine_requeue_corrupt)
{
	char *out, path[H_PATH + 64];
	prepared_spool();
	put_golden_queue();
	int rc = CTL(&out, "release", "06B0000010000000000005");
	cr_expect_eq(rc, 1, "%s", out);
	cr_expect(strstr(out, "in quarantine (infected Eicar-Signature); add --force") != NULL,
	          "%s", out);
	free(out);
	cr_expect_eq(h_spool_count(&D, "quarantine"), 1);
	rc = CTL(&out, "release", "--force", "06B0000010000000000005");
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "released, moved from quarantine/ to out/") != NULL, "%s", out);
	free(out);
	/* Held, never scanned, class hi: back to hi/. */
	rc = CTL(&out, "release", "06B0000010000000000003");
	cr_expect(rc == 0 && strstr(out, "moved from hold/ to hi/"), "%s", out);
	free(out);
	/* The released virus, requeued: to lo/ (its class), scan result gone. */
	rc = CTL(&out, "requeue", "06B0000010000000000005");
	cr_expect(rc == 0 && strstr(out, "moved from out/ to lo/"), "%s", out);
	free(out);
	snprintf(path, sizeof(path), "%s/lo/06B0000010000000000005", D.spool);
	char *file = h_read_file(path, NULL);
	cr_expect(file && !strstr(file, "scan-result"), "requeued file:\n%s", file);
	free(file);
	/* An unreadable file goes to corrupt/ when read, then by name. */
	snprintf(path, sizeof(path), "%s/deferred/06B0000010000000000007", D.spool);
	cr_assert_eq(h_write_file(path, "garbage\n", 8, 0600), 0);
	h_chown_run_user(path);
	rc = CTL(&out, "queue", "--queue", "deferred");
	cr_expect(rc == 0 && !strstr(out, "06B0000010000000000007"), "%s", out);
	free(out);
	cr_expect_eq(h_spool_count(&D, "corrupt"), 1);
	rc = CTL(&out, "delete", "06B0000010000000000007");
	cr_expect(rc == 0 && strstr(out, "deleted from corrupt/"), "%d %s", rc, out);
	free(out);
	cr_expect_eq(h_spool_count(&D, "corrupt"), 0);
	h_daemon_free(&D);
}

/* ---- bad arguments ---- */

struct bad_case {
	const char *args[6];
	int status;
	const char *needle; /* in the one line of stderr */
};

static const struct bad_case bad_cases[] = {
    {{"frobnicate"}, 2, "unknown command"},
    {{"queue", "--class", "mid"}, 2, "--class mid"},
    {{"queue", "--queue", "incoming"}, 2, "--queue incoming"},
    {{"queue", "--from"}, 2, "--from needs a value"},
    {{"queue", "--bogus"}, 2, "unknown argument --bogus; usage: tempomxctl queue"},
    {{"show"}, 2, "usage: tempomxctl show"},
    {{"show", "not-an-id"}, 2, "not a queue ID"},
    {{"hold"}, 2, "usage: tempomxctl hold"},
    {{"hold", "06B00000100000000000ZZ"}, 2, "not a queue ID"},
    {{"hold", "06B0000010000000000099"}, 1, "no such message"},
    {{"release", "06B0000010000000000099"}, 1, "no such message"},
    {{"delete", "ALL", "06B0000010000000000001"}, 2, "not both"},
    {{"history"}, 2, "sub-command"},
    {{"history", "show", "example.org"}, 2, "not an IP address"},
    {{"history", "junk", "192.0.2.0/99"}, 2, "not an address or network"},
    {{"history", "list", "--limit", "0"}, 2, "--limit 0"},
    {{"whitelist", "add", "client"}, 2, "usage: tempomxctl whitelist add"},
    {{"whitelist", "add", "server", "192.0.2.1"}, 2, "client, sender or recipient"},
    {{"whitelist", "add", "client", "192.0.2.300"}, 2, "not a valid client entry"},
    {{"why"}, 2, "usage: tempomxctl why"},
    {{"why", "nowhere"}, 2, "neither a queue ID nor an IP address"},
    {{"reload", "now"}, 2, "usage: tempomxctl reload"},
};

Test(ctl, bad_arguments)
{
	prepared_spool();
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *b = &bad_cases[i];
		char *argv[12], *out;
		int argc = 0;
		argv[argc++] = (char *)ctl_path();
		argv[argc++] = "-f";
		argv[argc++] = D.conf;
		for (size_t k = 0; k < 6 && b->args[k]; k++)
			argv[argc++] = (char *)b->args[k];
		argv[argc] = NULL;
		int rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
		cr_expect_eq(rc, b->status, "%s %s: exit %d, want %d:\n%s", b->args[0],
		             b->args[1] ? b->args[1] : "", rc, b->status, out);
		cr_expect(strncmp(out, "tempomxctl: ", 12) == 0, "%s: not one error line:\n%s",
		          b->args[0], out);
		cr_expect_eq(h_count(out, strlen(out), "\n"), 1, "%s %s: not one line:\n%s",
		             b->args[0], b->args[1] ? b->args[1] : "", out);
		cr_expect(strstr(out, b->needle) != NULL, "%s: no \"%s\" in:\n%s", b->args[0],
		          b->needle, out);
		free(out);
	}
	/* The daemon is stopped: what needs it says so. */
	char *out;
	cr_expect_eq(CTL(&out, "flush"), 1);
	cr_expect(strstr(out, "not running") != NULL && h_count(out, strlen(out), "\n") == 1, "%s",
	          out);
	free(out);
	h_daemon_free(&D);
}

/* A user who is neither root nor the spool owner gets one clear line. */
Test(ctl, permission_denied_is_one_line)
{
	char *out;
	prepared_spool();
	h_daemon_start(&D);
	char *argv[] = {"setpriv",
	                "--reuid=54321",
	                "--regid=54321",
	                "--clear-groups",
	                (char *)ctl_path(),
	                "-f",
	                D.conf,
	                "queue",
	                NULL};
	int rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
	cr_expect_eq(rc, 1, "queue as another user: %d\n%s", rc, out);
	cr_expect(strstr(out, "permission denied") && h_count(out, strlen(out), "\n") == 1, "%s",
	          out);
	free(out);
	argv[7] = "reload";
	rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
	cr_expect_eq(rc, 1, "reload as another user: %d\n%s", rc, out);
	cr_expect(strstr(out, "reload: ") && strstr(out, "permission denied") &&
	              h_count(out, strlen(out), "\n") == 1,
	          "%s", out);
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* ---- against a running daemon ---- */

/* A daemon that defers mail for remote.test (nothing listens on port 1)
 * and delivers example.test locally. */
static void start_deferring_daemon(void)
{
	h_daemon_init(&D);
	h_set(&D, "local_domains", "example.test");
	h_set(&D, "relay_domains", "remote.test");
	h_set(&D, "transport", "remote.test=smtp:[127.0.0.1]:1");
	h_set(&D, "retry_min", "1h");
	h_daemon_start(&D);
}

static void send_one(const char *rcpt, const char *token)
{
	const char *rcpts[] = {rcpt, NULL};
	size_t len;
	char *msg = h_make_message("ctl test", token, &len);
	int code = h_send_mail(D.port, "127.0.0.1", "bob@example.test", rcpts, msg, len);
	cr_assert_eq(code, 250, "sending to %s: %d", rcpt, code);
	free(msg);
}

Test(ctl, hold_release_requeue_delete_running)
{
	char id[64], *out;
	start_deferring_daemon();
	send_one("carol@remote.test", "ctl-hold-token");
	cr_assert(wait_count("deferred", 1, 15000), "the message was not deferred");
	only_id("deferred", id, sizeof(id));

	cr_expect_eq(CTL(&out, "show", id), 0, "%s", out);
	cr_expect(strstr(out, "queue         deferred/") &&
	              strstr(out, "<carol@remote.test> deferred") && strstr(out, "last reply  4") &&
	              strstr(out, "Subject: ctl test"),
	          "show:\n%s", out);
	cr_expect(strstr(out, "First line of the body") == NULL, "show printed the body:\n%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "show", id, "--body"), 0);
	cr_expect(strstr(out, "First line of the body, token ctl-hold-token.\n"
	                      ".A line that starts with a dot.\n..Two dots.\n") != NULL,
	          "show --body:\n%s", out);
	free(out);

	cr_expect_eq(CTL(&out, "hold", id), 0, "%s", out);
	free(out);
	cr_expect_eq(h_spool_count(&D, "hold"), 1);
	cr_expect_eq(h_spool_count(&D, "deferred"), 0);
	cr_expect_eq(CTL(&out, "queue"), 0);
	char mark[80];
	snprintf(mark, sizeof(mark), "%.60s!", id);
	cr_expect(strstr(out, mark) && strstr(out, "queue=hold") && strstr(out, "(451 4.4.1"),
	          "held message in mailq:\n%s", out);
	free(out);
	/* Held again: nothing to do, no error. */
	cr_expect_eq(CTL(&out, "hold", id), 0);
	cr_expect(strstr(out, "already on hold") != NULL, "%s", out);
	free(out);

	/* Released: never scanned (scan = no), so back to hi, then
	 * delivery tries it and defers it again. */
	cr_expect_eq(CTL(&out, "release", id), 0, "%s", out);
	free(out);
	cr_expect_eq(h_spool_count(&D, "hold"), 0);
	cr_expect(wait_count("deferred", 1, 15000), "released message not deferred again");
	cr_expect(h_log_wait(&D, "to=<carol@remote.test>", 5000));

	/* Release of a message that is not held is an error. */
	cr_expect_eq(CTL(&out, "release", id), 1);
	cr_expect(strstr(out, "not held") != NULL, "%s", out);
	free(out);

	cr_expect_eq(CTL(&out, "requeue", id), 0, "%s", out);
	cr_expect(strstr(out, "requeued") != NULL, "%s", out);
	free(out);
	cr_expect(wait_count("deferred", 1, 15000), "requeued message not deferred again");

	cr_expect_eq(CTL(&out, "flush", id), 0, "%s", out);
	cr_expect(strstr(out, "flushed") != NULL, "%s", out);
	free(out);
	cr_expect(wait_count("deferred", 1, 15000), "flushed message not deferred again");
	cr_expect_eq(CTL(&out, "flush"), 0, "%s", out);
	free(out);
	cr_expect(h_log_wait(&D, "flush: ", 10000), "the daemon did not flush");

	cr_expect(wait_count("deferred", 1, 15000));
	cr_expect_eq(CTL(&out, "delete", id), 0, "%s", out);
	free(out);
	cr_expect_eq(h_spool_total(&D), 0, "the message is still in the spool");
	cr_expect_eq(CTL(&out, "queue"), 0);
	cr_expect_str_eq(out, "Mail queue is empty\n");
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(ctl, delete_by_sender_and_all)
{
	char *out;
	start_deferring_daemon();
	send_one("carol@remote.test", "ctl-del-1");
	send_one("dave@remote.test", "ctl-del-2");
	cr_assert(wait_count("deferred", 2, 15000));
	cr_expect_eq(CTL(&out, "delete", "--to", "dave@remote.test"), 0, "%s", out);
	cr_expect_eq(h_count(out, strlen(out), "deleted"), 1, "%s", out);
	free(out);
	cr_expect_eq(h_spool_count(&D, "deferred"), 1);
	cr_expect_eq(CTL(&out, "delete", "ALL"), 0, "%s", out);
	free(out);
	cr_expect_eq(h_spool_total(&D), 0);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Holds that race the scanner (which is taking messages from hi/ at the
 * same moment) lose nothing and duplicate nothing: every message ends up
 * delivered exactly once after the held ones are released. The scanner
 * is stopped while the messages arrive, so a backlog waits in hi/; it
 * goes on at the moment tempomxctl holds that whole backlog, some of it
 * already in out/ by then (being delivered: the hold waits for that). */
static pid_t scanner_pid(void)
{
	size_t len;
	char *log = h_read_file(D.log, &len);
	pid_t pid = 0;
	for (char *p = log; p && (p = strstr(p, "child scanner started, pid ")) != NULL; p++)
		pid = (pid_t)atoi(p + 27);
	free(log);
	return pid;
}

#define RACE_N 40

Test(ctl, holds_race_the_scanner)
{
	char *out, maildir[H_PATH + 64], src[H_PATH], db[H_PATH + 8], cmd[4 * H_PATH];
	char ids[RACE_N][32], fromout[RACE_N][32];
	int n = 0, nfromout = 0;

	h_daemon_init(&D);
	h_srcpath("t/data/clamav", src, sizeof(src));
	snprintf(db, sizeof(db), "%s/sigdb", D.dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && chmod -R a+rX '%s'", src, db, db);
	cr_assert_eq(system(cmd), 0);
	h_set(&D, "scan", "yes");
	h_set(&D, "clamav_database", "%s", db);
	h_set(&D, "scan_threads", "1");
	h_set(&D, "local_domains", "example.test");
	h_daemon_start(&D);
	h_maildir(&D, "example.test", "race", maildir, sizeof(maildir));
	pid_t sc = scanner_pid();
	cr_assert_gt(sc, 0);
	/* The scanner's database as status shows it, once it is loaded. */
	char stfile[H_PATH + 32];
	snprintf(stfile, sizeof(stfile), "%s/scanner.status", D.spool);
	for (int i = 0; i < 500 && access(stfile, F_OK) != 0; i++)
		h_sleep_ms(20);
	cr_expect_eq(CTL(&out, "status"), 0);
	cr_expect(strstr(out, "virus database: signatures=") && strstr(out, ", loaded "), "%s",
	          out);
	free(out);

	cr_assert_eq(kill(sc, SIGSTOP), 0);
	for (int i = 0; i < RACE_N; i++) {
		char token[32];
		snprintf(token, sizeof(token), "race-token-%03d", i);
		send_one("race@example.test", token);
	}
	char path[H_PATH + 16];
	snprintf(path, sizeof(path), "%s/hi", D.spool);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL && n < RACE_N)
		if (de->d_name[0] != '.')
			snprintf(ids[n++], sizeof(ids[0]), "%.31s", de->d_name);
	if (d)
		closedir(d);
	cr_assert_eq(n, RACE_N, "%d of %d messages wait in hi/", n, RACE_N);

	char *argv[RACE_N + 8];
	int argc = 0;
	argv[argc++] = (char *)ctl_path();
	argv[argc++] = "-f";
	argv[argc++] = D.conf;
	argv[argc++] = "hold";
	for (int i = 0; i < n; i++)
		argv[argc++] = ids[i];
	argv[argc] = NULL;
	cr_assert_eq(kill(sc, SIGCONT), 0);
	/* Those the scanner took first are gone from hi/: status 1. */
	int rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
	cr_expect(rc == 0 || rc == 1, "hold: %d %s", rc, out);
	for (char *p = out; (p = strstr(p, ", moved from out/")) != NULL; p++) {
		char *bol = p;
		while (bol > out && bol[-1] != '\n')
			bol--;
		if (nfromout < RACE_N && p - bol >= 22 + 6)
			snprintf(fromout[nfromout++], sizeof(fromout[0]), "%.22s", bol);
	}
	int held = h_count(out, strlen(out), ": held,");
	free(out);
	cr_log_info("%d of %d held (%d of them from out/), the rest taken by the scanner first",
	            held, RACE_N, nfromout);

	/* Let go of everything on hold. */
	snprintf(path, sizeof(path), "%s/hold", D.spool);
	d = opendir(path);
	argc = 4;
	argv[3] = "release";
	while (d && (de = readdir(d)) != NULL && argc < RACE_N + 4) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(ids[argc - 4], sizeof(ids[0]), "%.31s", de->d_name);
		argv[argc] = ids[argc - 4];
		argc++;
	}
	if (d)
		closedir(d);
	argv[argc] = NULL;
	cr_expect_eq(argc - 4, held, "%d on hold after %d holds", argc - 4, held);
	if (argc > 4) {
		rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
		cr_expect_eq(rc, 0, "release: %s", out);
		free(out);
	}
	h_maildir_wait(maildir, RACE_N, 30000);
	cr_expect(h_spool_wait_idle(&D, 10000));
	h_sleep_ms(300);

	char **paths;
	int nm = h_maildir_list(maildir, &paths);
	int seen[RACE_N] = {0};
	for (int i = 0; i < nm; i++) {
		size_t len;
		char *m = h_read_file(paths[i], &len);
		const char *t = m ? strstr(m, "race-token-") : NULL;
		if (t)
			seen[atoi(t + 11) % RACE_N]++;
		free(m);
	}
	for (int i = 0; i < RACE_N; i++)
		cr_expect_eq(seen[i], 1, "race-token-%03d delivered %d times", i, seen[i]);
	h_free_list(paths, nm);
	cr_expect_eq(h_spool_total(&D), 0, "mail left in the spool");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A hold of a message that delivery is sending waits for the end of the
 * delivery instead of taking the file from under it: the message is
 * delivered once and not held (there is nothing left to hold). */
Test(ctl, hold_waits_for_a_delivery_in_progress)
{
	struct sink s;
	char id[64], *out;
	static const char *const stall[] = {"--stall", "2", NULL};
	h_daemon_init(&D);
	ob_sink_start(&s, D.dir, "sink", "127.0.0.1", h_free_port(), stall);
	h_set(&D, "relay_domains", "remote.test");
	h_set(&D, "transport", "remote.test=smtp:[127.0.0.1]:%d", s.port);
	h_daemon_start(&D);
	send_one("carol@remote.test", "ctl-claim-token");
	/* In out/ and being sent: the sink holds back its reply to the dot. */
	cr_assert(h_log_wait(&D, "class=hi", 10000));
	cr_assert(wait_count("out", 1, 10000));
	only_id("out", id, sizeof(id));
	/* Until delivery has it: its claim is an flock on the file. */
	char path[H_PATH + 96];
	snprintf(path, sizeof(path), "%s/out/%s", D.spool, id);
	int claimed = 0;
	for (int i = 0; i < 200 && !claimed; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			claimed = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
			close(fd);
		}
		if (!claimed)
			h_sleep_ms(50);
	}
	cr_assert(claimed, "delivery never took the message");
	long long t0 = h_now_ms();
	int rc = CTL(&out, "hold", id);
	long long took = h_now_ms() - t0;
	cr_expect(strstr(out, "being delivered; waiting") != NULL, "hold did not wait:\n%s", out);
	cr_expect_eq(rc, 1, "hold of a delivered message: %d\n%s", rc, out);
	cr_expect(strstr(out, "no such message") != NULL, "%s", out);
	cr_expect_geq(took, 500, "hold returned after %lld ms", took);
	free(out);
	cr_expect_eq(ob_sink_wait(&s, 1, 10000, NULL, NULL, NULL), 1);
	h_sleep_ms(500);
	cr_expect_eq(ob_sink_count(&s), 1, "delivered %d times", ob_sink_count(&s));
	cr_expect_eq(h_spool_total(&D), 0, "left in the spool");
	h_daemon_stop(&D);
	ob_stop_py(s.pid);
	h_daemon_free(&D);
}

/* ---- history, why, whitelist ---- */

Test(ctl, history_feedback_changes_why)
{
	char *out;
	h_daemon_init(&D);
	h_set(&D, "predicted_junk_action", "tempfail");
	h_daemon_start(&D);
	cr_expect_eq(CTL(&out, "why", "192.0.2.9"), 0, "%s", out);
	cr_expect(strstr(out, "predicted new") && strstr(out, "accepted into lo"), "%s", out);
	free(out);

	cr_expect_eq(CTL(&out, "history", "junk", "192.0.2.0/24"), 0, "%s", out);
	cr_expect(strstr(out, "192.0.2.0/24: marked junk") != NULL, "%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "why", "192.0.2.9"), 0, "%s", out);
	cr_expect(strstr(out, "predicted junk") && strstr(out, "tempfailed with 451 4.7.1") &&
	              strstr(out, "the delay"),
	          "why after history junk:\n%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "history", "show", "192.0.2.9"), 0, "%s", out);
	cr_expect(strstr(out, "network 192.0.2.0/24: first seen") &&
	              strstr(out, "admin feedback: junk"),
	          "%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "history", "list", "--junk"), 0, "%s", out);
	cr_expect(strstr(out, "192.0.2.0/24") != NULL, "%s", out);
	free(out);

	cr_expect_eq(CTL(&out, "history", "good", "192.0.2.9"), 0, "%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "why", "192.0.2.9"), 0, "%s", out);
	cr_expect(strstr(out, "predicted good") && strstr(out, "accepted into hi"), "%s", out);
	free(out);

	cr_expect_eq(CTL(&out, "history", "forget", "192.0.2.0/24"), 0, "%s", out);
	cr_expect(strstr(out, "2 records removed") != NULL, "%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "history", "list"), 0, "%s", out);
	cr_expect(strstr(out, "192.0.2.") == NULL, "%s", out);
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(ctl, whitelist_applies_without_restart)
{
	char *out, wl[H_PATH + 16];
	const char *rcpts[] = {"alice@example.test", NULL};
	size_t len;
	h_daemon_init(&D);
	snprintf(wl, sizeof(wl), "%s/whitelist", D.dir);
	h_set(&D, "local_domains", "example.test");
	h_set(&D, "new_action", "tempfail");
	h_set(&D, "whitelist_file", "%s", wl);
	cr_assert_eq(h_write_file(wl, "# whitelist\n", 12, 0644), 0);
	h_daemon_start(&D);
	char *msg = h_make_message("wl", "ctl-wl-token", &len);
	/* 127.0.0.2 is outside mynetworks and new: tempfailed. */
	int code = h_send_mail(D.port, "127.0.0.2", "bob@remote.test", rcpts, msg, len);
	cr_expect_eq(code, 451, "a new client was not tempfailed: %d", code);
	cr_expect_eq(CTL(&out, "why", "127.0.0.2"), 0);
	cr_expect(strstr(out, "tempfailed") != NULL, "%s", out);
	free(out);

	cr_expect_eq(CTL(&out, "whitelist", "add", "client", "127.0.0.2"), 0, "%s", out);
	cr_expect(strstr(out, "added") && strstr(out, "applied"), "%s", out);
	free(out);
	cr_expect(h_log_wait(&D, "whitelists: 1 clients", 10000), "smtpd did not reload");
	code = h_send_mail(D.port, "127.0.0.2", "bob@remote.test", rcpts, msg, len);
	cr_expect_eq(code, 250, "the whitelisted client was refused: %d", code);
	cr_expect_eq(CTL(&out, "whitelist", "list"), 0);
	cr_expect(strstr(out, "client 127.0.0.2/32 (") != NULL, "%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "whitelist", "add", "client", "127.0.0.2/32"), 0);
	cr_expect(strstr(out, "already in") != NULL, "%s", out);
	free(out);
	cr_expect_eq(CTL(&out, "whitelist", "remove", "client", "127.0.0.2"), 0, "%s", out);
	free(out);
	char *file = h_read_file(wl, NULL);
	cr_expect_str_eq(file, "# whitelist\n");
	free(file);
	cr_expect_eq(CTL(&out, "whitelist", "remove", "client", "127.0.0.2"), 1);
	free(out);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* ---- the control socket: status, reload ---- */

Test(ctl, status_running_and_stopped)
{
	char *out;
	start_deferring_daemon();
	send_one("carol@remote.test", "ctl-status-token");
	cr_assert(wait_count("deferred", 1, 15000));
	int rc = CTL(&out, "status");
	cr_expect_eq(rc, 0, "status: %d\n%s", rc, out);
	char want[64];
	snprintf(want, sizeof(want), "tempomxd: running, pid %ld,", (long)D.pid);
	cr_expect(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
	cr_expect(strstr(out, "  smtpd     pid ") && strstr(out, "  scanner   pid ") &&
	              strstr(out, "  delivery  pid ") && strstr(out, ", 0 restarts"),
	          "children:\n%s", out);
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d", D.port);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	cr_expect(strstr(out, "  deferred    1\n") && strstr(out, "oldest hi message: ") &&
	              strstr(out, "oldest lo message: none"),
	          "queues:\n%s", out);
	cr_expect(strstr(out, "last reload: none") != NULL, "%s", out);
	cr_expect(strstr(out, "virus database: none loaded (scan = no") != NULL, "%s", out);
	free(out);
	h_daemon_stop(&D);
	rc = CTL(&out, "status");
	cr_expect_eq(rc, 1, "status of a stopped daemon: %d", rc);
	cr_expect(strstr(out, "tempomxd: not running") && strstr(out, "  deferred    1\n"), "%s",
	          out);
	free(out);
	h_daemon_free(&D);
}

/* A reload goes through the control socket and its result comes back:
 * a bad file is named with its line, and the daemon keeps running. */
Test(ctl, reload_reports_the_result)
{
	char *out, good[H_PATH + 16];
	h_daemon_init(&D);
	h_daemon_start(&D);
	/* tempomxctl reads its own copy, the daemon re-reads D.conf. */
	snprintf(good, sizeof(good), "%s/ctl.conf", D.dir);
	char *text = h_read_file(D.conf, NULL);
	cr_assert_not_null(text);
	cr_assert_eq(h_write_file(good, text, strlen(text), 0644), 0);
	free(text);
	char *argv[] = {(char *)ctl_path(), "-f", good, "reload", NULL};
	int rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
	cr_expect_eq(rc, 0, "reload: %d %s", rc, out);
	cr_expect(strstr(out, "reloaded") != NULL, "%s", out);
	free(out);

	h_conf_append(&D, "no_such_key = 1\n");
	int line = h_write_conf(&D);
	rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
	char want[H_PATH + 32];
	snprintf(want, sizeof(want), "%s:%d: unknown key", D.conf, line);
	cr_expect_eq(rc, 1, "a bad reload succeeded: %s", out);
	cr_expect(strstr(out, want) && strstr(out, "keeping the current configuration") &&
	              h_count(out, strlen(out), "\n") == 1,
	          "no \"%s\" in one line:\n%s", want, out);
	free(out);
	char *st[] = {(char *)ctl_path(), "-f", good, "status", NULL};
	rc = h_run(st, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
	cr_expect_eq(rc, 0);
	cr_expect(strstr(out, "last reload: ") && strstr(out, "failed: "), "%s", out);
	free(out);
	cr_expect(h_daemon_alive(&D), "the daemon died of a bad reload");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* ---- daily counters ---- */

static void today(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d", &tm);
}

/* Mail accepted, tempfailed and deferred is counted; the counts survive
 * a kill -9 of every process of the daemon; tempomxctl stats shows them
 * and draws them as an SVG chart that python's XML parser reads, with
 * one bar group per day whose numbers are the counters. */
Test(ctl, stats_survive_kill9_and_chart)
{
	char *out, day[16], svg[H_PATH + 16];
	const char *rcpts[] = {"alice@example.test", NULL};
	size_t len;
	h_daemon_init(&D);
	h_set(&D, "local_domains", "example.test");
	h_set(&D, "relay_domains", "remote.test");
	h_set(&D, "transport", "remote.test=smtp:[127.0.0.1]:1");
	h_set(&D, "new_action", "tempfail");
	h_daemon_start(&D);
	char *msg = h_make_message("stats", "ctl-stats-token", &len);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@example.test", rcpts, msg, len),
		             250);
	/* 127.0.0.2 is outside mynetworks and new: tempfailed. */
	cr_assert_eq(h_send_mail(D.port, "127.0.0.2", "bob@remote.test", rcpts, msg, len), 451);
	send_one("carol@remote.test", "ctl-stats-deferred");
	cr_assert(wait_count("deferred", 1, 15000));
	char maildir[H_PATH + 64];
	h_maildir(&D, "example.test", "alice", maildir, sizeof(maildir));
	cr_assert_eq(h_maildir_wait(maildir, 3, 15000), 3);
	/* The writer thread runs every second. */
	h_sleep_ms(2500);

	/* kill -9 of the master and every child, nothing shut down. */
	pid_t kids[16];
	int nk = h_children(D.pid, kids, 16);
	cr_assert_geq(nk, 3, "only %d children", nk);
	kill(D.pid, SIGKILL);
	for (int i = 0; i < nk; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < 200 && h_daemon_alive(&D); i++)
		h_sleep_ms(10);
	cr_assert(!h_daemon_alive(&D), "the master survived SIGKILL");
	h_sleep_ms(200);

	h_daemon_start(&D);
	cr_assert_eq(h_send_mail(D.port, "127.0.0.1", "bob@example.test", rcpts, msg, len), 250);
	cr_assert_eq(h_maildir_wait(maildir, 4, 15000), 4);
	h_daemon_stop(&D); /* a clean stop writes the last counts */
	free(msg);

	snprintf(svg, sizeof(svg), "%s/chart.svg", D.dir);
	int rc = CTL(&out, "stats", "--days", "2", "--svg", svg);
	cr_assert_eq(rc, 0, "stats: %d\n%s", rc, out);
	cr_log_info("tempomxctl stats:\n%s", out);
	today(day, sizeof(day));
	char needle[32];
	snprintf(needle, sizeof(needle), "\n%s ", day);
	const char *row = strstr(out, needle);
	cr_assert_not_null(row, "no row for %s:\n%s", day, out);
	unsigned long long v[9];
	int got = sscanf(row + 12, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	                 &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]);
	cr_assert_eq(got, 9, "%s", row);
	/* Connections: 3 + 1 + 1 + 1 and the daemon's own greeting probes. */
	cr_expect_geq(v[0], 6, "connections %llu", v[0]);
	cr_expect_eq(v[1], 5, "accepted hi %llu:\n%s", v[1], out);
	cr_expect_eq(v[2], 0, "accepted lo %llu", v[2]);
	cr_expect_eq(v[3], 1, "tempfailed new %llu:\n%s", v[3], out);
	const char *rrow = strstr(row + 1, needle);
	cr_assert_not_null(rrow, "%s", out);
	unsigned long long dl, df, bo;
	cr_assert_eq(sscanf(rrow + 12, "%llu %llu %llu", &dl, &df, &bo), 3, "%s", rrow);
	cr_expect_eq(dl, 4, "delivered %llu", dl);
	cr_expect_geq(df, 1, "deferred %llu", df);
	cr_expect_eq(bo, 0);
	free(out);

	char script[2 * H_PATH + 1024];
	snprintf(script, sizeof(script),
	         "import xml.etree.ElementTree as ET\n"
	         "ns = {'s': 'http://www.w3.org/2000/svg'}\n"
	         "root = ET.parse('%s').getroot()\n"
	         "days = [g for g in root.iter('{http://www.w3.org/2000/svg}g')"
	         " if g.get('class') == 'day']\n"
	         "assert len(days) == 2, len(days)\n"
	         "d = days[-1]\n"
	         "assert d.get('data-day') == '%s', d.get('data-day')\n"
	         "segs = {r.get('data-type'): int(r.get('data-count'))"
	         " for r in d.findall('s:rect', ns)}\n"
	         "assert segs['accepted_hi'] == 5 and segs['tempfailed'] == 1, segs\n"
	         "assert int(d.get('data-total')) == sum(segs.values()) == 6, segs\n"
	         "assert days[0].get('data-total') == '0'\n"
	         "assert root.find('s:g[@class=\"legend\"]', ns) is not None\n"
	         "print('svg ok')\n",
	         svg, day);
	char *argv[] = {"python3", "-c", script, NULL};
	rc = h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL);
	cr_expect_eq(rc, 0, "the SVG did not pass:\n%s", out);
	free(out);
	cr_log_info("chart: %s", svg);
	h_daemon_free(&D);
}

/* monitor: a heading and one line per interval, bounded by --count,
 * with the queue sizes of the spool and the SMTP sessions open by state;
 * status shows the sessions too. */
static struct h_conn MC;

Test(ctl, monitor_lines)
{
	char *out;
	start_deferring_daemon();
	send_one("carol@remote.test", "ctl-monitor-token");
	cr_assert(wait_count("deferred", 1, 15000));
	/* One session open, after EHLO, while monitor looks. */
	h_open(&MC, "127.0.0.1", D.port);
	h_expect(&MC, 250, "EHLO watcher.example");
	h_sleep_ms(1300);
	cr_expect_eq(CTL(&out, "status"), 0);
	cr_expect(strstr(out, "smtp sessions open: 1 (HELO 1)\n") != NULL, "%s", out);
	free(out);
	int rc = CTL(&out, "monitor", "--count", "2");
	cr_expect_eq(rc, 0, "monitor: %d\n%s", rc, out);
	cr_expect(strncmp(out, "time        hi    lo   out defer  hold conn/s", 45) == 0, "%s",
	          out);
	cr_expect_eq(h_count(out, strlen(out), "\n"), 3, "%s", out);
	/* time, hi, lo, out, then 1 in deferred. */
	const char *l2 = strchr(out, '\n') + 1;
	unsigned hi, lo, o, df;
	cr_expect(sscanf(l2, "%*s %u %u %u %u", &hi, &lo, &o, &df) == 4 && df == 1, "%s", l2);
	cr_expect(strstr(l2, "     1 HELO 1\n") != NULL, "no open session in:\n%s", out);
	free(out);
	h_close(&MC);
	cr_expect_eq(CTL(&out, "monitor", "--interval", "0"), 2);
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* log-level changes what the children log, at once. */
Test(ctl, log_level_reaches_the_children)
{
	char *out, md[H_PATH + 64];
	h_daemon_init(&D);
	h_set(&D, "local_domains", "example.test");
	h_daemon_start(&D);
	cr_expect_eq(CTL(&out, "log-level"), 0);
	cr_expect_str_eq(out, "info\n");
	free(out);
	cr_expect_eq(CTL(&out, "log-level", "debug"), 0, "%s", out);
	free(out);
	send_one("alice@example.test", "ctl-debug-1");
	h_maildir(&D, "example.test", "alice", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, 15000), 1);
	/* A debug line of the delivery child. */
	cr_expect(h_log_wait(&D, ": to=<alice@example.test>, file ", 5000),
	          "no debug line from delivery");
	cr_expect_eq(CTL(&out, "log-level", "info"), 0, "%s", out);
	free(out);
	send_one("bob@example.test", "ctl-debug-2");
	h_maildir(&D, "example.test", "bob", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, 15000), 1);
	h_sleep_ms(200);
	cr_expect(!h_log_has(&D, ": to=<bob@example.test>, file "), "debug line after info");
	cr_expect_eq(CTL(&out, "log-level", "loud"), 2);
	free(out);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* ---- the manual ---- */

/* The command names of tempomxctl(8): the ".It Cm" items of COMMANDS,
 * the words up to the first other macro. */
Test(ctl, man_page_lists_every_command)
{
	char page[H_PATH], *out;
	h_srcpath("man/tempomxctl.8", page, sizeof(page));
	char *man = h_read_file(page, NULL);
	cr_assert_not_null(man, "%s", page);
	char *argv[] = {(char *)ctl_path(), "help", "--names", NULL};
	cr_assert_eq(h_run(argv, NULL, 0, CTL_TIMEOUT_MS, &out, NULL), 0);

	char documented[4096] = "\n";
	int in_commands = 0;
	for (char *line = strtok(man, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, ".Sh ", 4) == 0)
			in_commands = strcmp(line, ".Sh COMMANDS") == 0;
		if (!in_commands || strncmp(line, ".It Cm ", 7) != 0)
			continue;
		char name[128] = "";
		char *save, *w = strtok_r(line + 7, " ", &save);
		for (; w; w = strtok_r(NULL, " ", &save)) {
			if (strlen(w) == 2 && w[0] >= 'A' && w[0] <= 'Z' && w[1] >= 'a' &&
			    w[1] <= 'z')
				break; /* Ar, Op, Oo, Fl ... */
			if (name[0])
				strcat(name, " ");
			strncat(name, w, sizeof(name) - strlen(name) - 2);
		}
		strncat(documented, name, sizeof(documented) - strlen(documented) - 2);
		strcat(documented, "\n");
	}
	/* Every command the binary knows is documented ... */
	int known = 0;
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		char want[140];
		snprintf(want, sizeof(want), "\n%s\n", l);
		cr_expect(strstr(documented, want) != NULL, "command \"%s\" not in %s", l, page);
		known++;
	}
	/* ... and nothing else is. */
	cr_expect_eq(h_count(documented, strlen(documented), "\n") - 1, known,
	             "tempomxctl(8) documents %d commands, the binary knows %d:\n%s",
	             h_count(documented, strlen(documented), "\n") - 1, known, documented);
	free(out);
	free(man);
}
