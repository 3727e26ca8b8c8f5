/*
 * test_handoff.c: a process killed at any step of any hand-off loses no
 * mail, leaves none in no queue, and duplicates only what it explains.
 *
 * The daemon runs with scanning on, and each message has two recipients:
 * one whose Maildir works and one whose Maildir cannot be made at first
 * (a file stands where its directory would be), so every message goes
 * through every hand-off: smtpd's commit, the scanner's record and move
 * into out/, delivery's record and move into deferred/, the sweep back
 * into out/, and the removal. A build with fault injection (the test
 * build, src/common/fault.c) makes smtpd, the scanner and delivery kill
 * themselves with SIGKILL once at each of those steps, at a chosen hit;
 * the master restarts them. Afterwards every message that got a 250 must
 * be in both Maildirs, each recipient at most once more than the number
 * of times delivery was killed, with one X-Tempomx-Scan and one
 * X-Tempomx-Class field; every fault must have fired; the queues must be
 * empty and corrupt/ too.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"

TestSuite(handoff, .init = h_setup, .fini = h_teardown);

#define MESSAGES 40
#define TRIES 5
#define FAULT_WAIT_MS 120000
#define DELIVERY_WAIT_MS 90000

static struct h_daemon D;
static struct h_conn C;

/* Each step and the hit of it that kills the process. */
static const struct {
	const char *point;
	int at;
	int delivery; /* a kill of the delivery child: 1, or 2 for a step
	               * reached only once late@ can be delivered */
} faults[] = {
    {"commit-synced", 5, 0}, {"commit-renamed", 12, 0},    {"scan-noted", 8, 0},
    {"scan-passed", 20, 0},  {"deliver-noted", 4, 1},      {"deliver-deferred", 10, 1},
    {"deliver-swept", 3, 1}, {"deliver-finishing", 30, 1}, {"deliver-released", 6, 2},
};
#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

static int fired(const char *dir, size_t i)
{
	char path[H_PATH + 64];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s.%d", dir, faults[i].point, faults[i].at);
	return stat(path, &st) == 0;
}

static int fired_all(const char *dir, int delivery_only)
{
	for (size_t i = 0; i < NFAULTS; i++)
		if ((!delivery_only || faults[i].delivery == 1) && !fired(dir, i))
			return 0;
	return 1;
}

/* How many files of Maildir md carry token, and whether each has our
 * two fields once. */
static int copies(const char *md, const char *token, int *bad_fields)
{
	char **files;
	int n = h_maildir_list(md, &files), k = 0;
	char needle[128];
	snprintf(needle, sizeof(needle), "\r\nX-Token: %s\r\n", token);
	for (int i = 0; i < n; i++) {
		size_t len;
		char *f = h_read_file(files[i], &len);
		if (f && h_contains(f, len, needle)) {
			k++;
			if (h_count(f, len, "X-Tempomx-Scan: clean;") != 1 ||
			    h_count(f, len, "X-Tempomx-Class:") != 1)
				(*bad_fields)++;
		}
		free(f);
	}
	h_free_list(files, n);
	return k;
}

Test(handoff, kill_at_every_step, .timeout = 400)
{
#ifndef TEMPOMX_FAULTS
	cr_skip_test("built without fault injection (configure --enable-fault-injection)");
#else
	char src[H_PATH], db[H_PATH + 8], cmd[4 * H_PATH], fdir[H_PATH + 8], spec[1024] = "";
	char block[H_PATH + 32], now_md[H_PATH], late_md[H_PATH];
	static const char *const rcpts[] = {"now@localhost", "late@localhost", NULL};
	char tokens[MESSAGES][64];
	int naccepted = 0;

	h_daemon_init(&D);
	h_srcpath("t/data/clamav", src, sizeof(src));
	snprintf(db, sizeof(db), "%s/sigdb", D.dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && chmod -R a+rX '%s'", src, db, db);
	cr_assert_eq(system(cmd), 0);
	h_set(&D, "scan", "yes");
	h_set(&D, "clamav_database", "%s", db);
	h_set(&D, "scan_threads", "2");
	h_set(&D, "delivery_threads", "2");
	h_set(&D, "queue_rescan_interval", "1s");
	h_set(&D, "retry_min", "1s");
	h_set(&D, "retry_max", "2s");

	/* Where the daemon's user marks the faults that fired. */
	snprintf(fdir, sizeof(fdir), "%s/faults", D.dir);
	cr_assert_eq(mkdir(fdir, 0777), 0);
	cr_assert_eq(chmod(fdir, 0777), 0);
	for (size_t i = 0; i < NFAULTS; i++)
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "%s%s:%d", i ? "," : "",
		         faults[i].point, faults[i].at);
	cr_assert_eq(setenv("TEMPOMX_FAULT", spec, 1), 0);
	cr_assert_eq(setenv("TEMPOMX_FAULT_DIR", fdir, 1), 0);

	/* late@localhost cannot be delivered until this file goes. */
	h_maildir(&D, "localhost", "late", late_md, sizeof(late_md));
	h_maildir(&D, "localhost", "now", now_md, sizeof(now_md));
	snprintf(block, sizeof(block), "%s", late_md);
	char *slash = strrchr(block, '/');
	while (slash && slash[1] == '\0') {
		*slash = '\0';
		slash = strrchr(block, '/');
	}
	char parent[H_PATH + 32];
	snprintf(parent, sizeof(parent), "%s", block);
	*strrchr(parent, '/') = '\0';
	cr_assert_eq(mkdir(parent, 0777), 0, "mkdir %s: %s", parent, strerror(errno));
	cr_assert_eq(chmod(parent, 0777), 0);
	cr_assert_eq(h_write_file(block, "x", 1, 0644), 0);

	h_daemon_start(&D);
	unsetenv("TEMPOMX_FAULT");
	unsetenv("TEMPOMX_FAULT_DIR");

	int connected = 0;
	for (int i = 0; i < MESSAGES; i++) {
		for (int t = 0; t < TRIES; t++) {
			size_t mlen;
			if (!connected) {
				if (h_connect(&C, "127.0.0.1", D.port) == -1 ||
				    h_reply(&C, 10000) != 220 ||
				    h_cmd(&C, "EHLO client.example.test") != 250) {
					h_close(&C);
					h_sleep_ms(300);
					continue;
				}
				connected = 1;
			}
			snprintf(tokens[naccepted], sizeof(tokens[naccepted]), "handoff-%03d-%d", i,
			         t);
			char *msg = h_make_message("handoff", tokens[naccepted], &mlen);
			int code = h_transaction(&C, NULL, "sender@localhost", rcpts, msg, mlen);
			free(msg);
			if (code == 250) {
				naccepted++;
				break;
			}
			h_close(&C);
			connected = 0;
		}
	}
	if (connected) {
		h_cmd(&C, "QUIT");
		h_close(&C);
	}
	cr_expect_geq(naccepted, MESSAGES * 9 / 10, "only %d of %d accepted", naccepted, MESSAGES);

	/* Let the deferral steps fire, then let late@ be delivered. */
	long long until = h_now_ms() + FAULT_WAIT_MS;
	while (!fired_all(fdir, 1) && h_now_ms() < until)
		h_sleep_ms(200);
	cr_assert_eq(unlink(block), 0);

	int missing = 0, dups = 0, too_many = 0, bad_fields = 0, kills = 0;
	/* Every delivery kill may make each recipient get one more copy. */
	for (size_t i = 0; i < NFAULTS; i++)
		kills += faults[i].delivery != 0;
	until = h_now_ms() + DELIVERY_WAIT_MS;
	for (;;) {
		missing = dups = too_many = bad_fields = 0;
		for (int i = 0; i < naccepted; i++) {
			int a = copies(now_md, tokens[i], &bad_fields);
			int b = copies(late_md, tokens[i], &bad_fields);
			missing += (a == 0) + (b == 0);
			dups += (a > 1 ? a - 1 : 0) + (b > 1 ? b - 1 : 0);
			too_many += (a > 1 + kills) + (b > 1 + kills);
		}
		if (missing == 0 || h_now_ms() >= until)
			break;
		h_sleep_ms(500);
	}
	for (size_t i = 0; i < NFAULTS; i++)
		cr_expect(fired(fdir, i), "fault %s:%d never fired", faults[i].point, faults[i].at);
	cr_log_info("accepted %d, missing %d, duplicates %d, delivery killed %d times", naccepted,
	            missing, dups, kills);
	if (missing > 0)
		h_dump_log(&D, 60);
	cr_expect_eq(missing, 0, "%d deliveries of accepted messages lost", missing);
	cr_expect_eq(too_many, 0, "%d recipients got more copies than the kills explain", too_many);
	cr_expect_eq(bad_fields, 0, "%d files without exactly one X-Tempomx-Scan and -Class",
	             bad_fields);

	static const char *const queues[] = {"incoming", "hi", "lo", "out", "deferred", "corrupt"};
	until = h_now_ms() + 20000;
	int left;
	do {
		left = 0;
		for (size_t q = 0; q < sizeof(queues) / sizeof(queues[0]); q++)
			left += h_spool_count(&D, queues[q]);
		if (left)
			h_sleep_ms(200);
	} while (left && h_now_ms() < until);
	for (size_t q = 0; q < sizeof(queues) / sizeof(queues[0]); q++)
		cr_expect_eq(h_spool_count(&D, queues[q]), 0, "%s/ is not empty", queues[q]);
	h_daemon_stop(&D);
	h_check_sanitizers(&D);
	h_daemon_free(&D);
#endif
}
