/*
 * test_crash.c: no accepted mail is lost when processes die.
 *
 * Several client processes send 500 messages in all, each with a unique
 * token, while the test SIGKILLs the daemon's children (smtpd, scanner,
 * delivery: the direct children of the master, found in /proc) at random
 * moments; the master restarts them. A message counts as accepted only
 * when the client saw the 250 after its data. Afterwards every accepted
 * token must be in the Maildir at least once, and incoming/ must be empty
 * both at the end and after a fresh start. Delivery is at-least-once, so a
 * token may be delivered twice, but only a message the delivery child had
 * open when it was killed: the duplicates are bounded by the delivery
 * kills times the messages it keeps open at once.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(crash, .init = h_setup, .fini = h_teardown);

#define NCLIENTS 5
#define PER_CLIENT 100
#define TRIES_PER_MESSAGE 5
#define SEND_DEADLINE_MS 150000
#define DELIVERY_DEADLINE_MS 90000
#define MAX_KILLS 12 /* 4 per stage */
/* Messages the delivery child has open at once: 4 per delivery thread
 * (delivery.c's DELIVERY_ACTIVE_PER_THREAD, default delivery_threads 4)
 * plus one per outbound connection allowed, whatever the destination
 * (the test sets max_outbound_connections to 1; the default 100 would
 * allow 116). A kill can repeat at most these. */
#define DELIVERY_OUTBOUND 1
#define DELIVERY_OPEN_MAX (4 * 4 + DELIVERY_OUTBOUND)

static struct h_daemon D;
static struct h_conn CC;

/* One client process: send PER_CLIENT messages, retrying each (with a
 * fresh token) until it gets a 250; write each accepted token to its
 * result file. Runs in a forked child, so it leaves with _exit(). */
static void client_main(int idx, const char *result_path)
{
	static const char *const rcpts[] = {"crash@localhost", NULL};
	long long deadline = h_now_ms() + SEND_DEADLINE_MS - 10000;
	FILE *out = fopen(result_path, "w");
	int connected = 0;

	if (!out)
		_exit(2);
	for (int i = 0; i < PER_CLIENT && h_now_ms() < deadline; i++) {
		for (int attempt = 0; attempt < TRIES_PER_MESSAGE && h_now_ms() < deadline;
		     attempt++) {
			char token[64];
			size_t mlen;
			char *msg;
			int code;

			if (!connected) {
				if (h_connect(&CC, "127.0.0.1", D.port) == -1 ||
				    h_reply(&CC, 10000) != 220 ||
				    h_cmd(&CC, "EHLO client%d.example.test", idx) != 250) {
					h_close(&CC);
					h_sleep_ms(100);
					continue;
				}
				connected = 1;
			}
			snprintf(token, sizeof(token), "crash-%d-%03d-%d", idx, i, attempt);
			msg = h_make_message("crash test", token, &mlen);
			code = h_transaction(&CC, NULL, "sender@localhost", rcpts, msg, mlen);
			free(msg);
			if (code == 250) {
				fprintf(out, "%s\n", token);
				fflush(out);
				break;
			}
			/* A dead smtpd or a tempfail: start a new session. */
			h_close(&CC);
			connected = 0;
		}
	}
	if (connected) {
		h_cmd(&CC, "QUIT");
		h_close(&CC);
	}
	fclose(out);
	_exit(0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tokens of every message in the Maildir (one per file), sorted. */
static int delivered_tokens(const char *md, char ***tokens)
{
	char **files;
	int n = h_maildir_list(md, &files), k = 0;
	char **v = calloc((size_t)n + 1, sizeof(*v));

	cr_assert_not_null(v);
	for (int i = 0; i < n; i++) {
		size_t len;
		char *f = h_read_file(files[i], &len);
		const char *t = f ? strstr(f, "\r\nX-Token: ") : NULL;

		if (t) {
			t += 11;
			v[k++] = strndup(t, strcspn(t, "\r\n"));
		}
		free(f);
	}
	h_free_list(files, n);
	qsort(v, (size_t)k, sizeof(*v), cmp_str);
	*tokens = v;
	return k;
}

/* How often token occurs in the sorted list. */
static int occurrences(char **v, int n, const char *token)
{
	int lo = 0, hi = n, c = 0;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (strcmp(v[mid], token) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo < n && strcmp(v[lo], token) == 0) {
		c++;
		lo++;
	}
	return c;
}

/* The stage a child of the master runs, from the master's log line
 * "child NAME started, pid N"; "" when the log does not say. */
static void child_name(pid_t pid, char *name, size_t size)
{
	char needle[64];
	size_t len;
	char *log = h_read_file(D.log, &len);
	const char *p;

	name[0] = '\0';
	snprintf(needle, sizeof(needle), " started, pid %d\n", (int)pid);
	p = log ? memmem(log, len, needle, strlen(needle)) : NULL;
	if (p) {
		const char *start = p;

		while (start > log && start[-1] != ' ')
			start--;
		if (start - 6 >= log && memcmp(start - 6, "child ", 6) == 0)
			snprintf(name, size, "%.*s", (int)(p - start), start);
	}
	free(log);
}

/* Seconds a process has been running, from /proc/<pid>/stat starttime. */
static double age_seconds(pid_t pid)
{
	char path[64], buf[1024];
	FILE *fp;
	double uptime = 0;
	unsigned long long start = 0;
	const char *p;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* Field 22 (starttime); after ')' come fields 3 onwards. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -1;
	start = strtoull(p + 1, NULL, 10);
	fp = fopen("/proc/uptime", "r");
	if (!fp)
		return -1;
	if (fscanf(fp, "%lf", &uptime) != 1)
		uptime = 0;
	fclose(fp);
	return uptime - (double)start / (double)sysconf(_SC_CLK_TCK);
}

Test(crash, kill_children_under_load, .timeout = 280)
{
	char results[NCLIENTS][H_PATH + 32], md[H_PATH];
	pid_t clients[NCLIENTS];
	int running = NCLIENTS, kills = 0, delivery_kills = 0, stale = 0;
	char killed_names[1024] = "";
	unsigned seed = (unsigned)getpid();
	long long deadline;

	h_daemon_init(&D);
	h_set(&D, "queue_rescan_interval", "1s");
	h_set(&D, "max_connections_per_client", "100");
	h_set(&D, "max_outbound_connections", "%d", DELIVERY_OUTBOUND);
	h_daemon_start(&D);
	h_maildir(&D, "localhost", "crash", md, sizeof(md));

	for (int c = 0; c < NCLIENTS; c++) {
		snprintf(results[c], sizeof(results[c]), "%s/client%d.txt", D.dir, c);
		clients[c] = fork();
		cr_assert(clients[c] >= 0, "fork: %s", strerror(errno));
		if (clients[c] == 0)
			client_main(c, results[c]);
		h_track(clients[c]);
	}

	/* The killer: every 150-600 ms, SIGKILL one child of the master
	 * that has run for at least 300 ms (so a restarted child does some
	 * work before it dies again). */
	deadline = h_now_ms() + SEND_DEADLINE_MS;
	while (running > 0 && h_now_ms() < deadline) {
		pid_t kids[32];
		int n;

		h_sleep_ms(150 + (int)(rand_r(&seed) % 450));
		for (int c = 0; c < NCLIENTS; c++) {
			if (clients[c] > 0 && waitpid(clients[c], NULL, WNOHANG) == clients[c]) {
				h_untrack(clients[c]);
				clients[c] = 0;
				running--;
			}
		}
		if (running == 0 || kills >= MAX_KILLS)
			continue;
		cr_assert(h_daemon_alive(&D), "the master died");
		n = h_children(D.pid, kids, 32);
		if (n == 0)
			continue;
		/* Take the stages in turn so each one dies several times, at
		 * a random moment of its work. The master restarts a child
		 * that keeps dying with a doubling back-off (1, 2, 4 ... s), so
		 * a few kills per stage are what fits in the time. */
		static const char *const stages[] = {"smtpd", "scanner", "delivery"};
		const char *want = stages[kills % 3];
		pid_t victim = kids[rand_r(&seed) % (unsigned)n];
		char name[64];
		for (int k = 0; k < n; k++) {
			child_name(kids[k], name, sizeof(name));
			if (strcmp(name, want) == 0)
				victim = kids[k];
		}
		if (age_seconds(victim) < 0.3)
			continue;
		child_name(victim, name, sizeof(name));
		if (!name[0])
			h_comm(victim, name, sizeof(name));
		if (kill(victim, SIGKILL) == 0) {
			kills++;
			delivery_kills += strcmp(name, "delivery") == 0;
			snprintf(killed_names + strlen(killed_names),
			         sizeof(killed_names) - strlen(killed_names), " %s", name);
		}
	}
	for (int c = 0; c < NCLIENTS; c++) {
		if (clients[c] > 0) {
			kill(clients[c], SIGKILL);
			waitpid(clients[c], NULL, 0);
			h_untrack(clients[c]);
		}
	}
	cr_expect(running == 0, "%d clients did not finish in time", running);
	cr_log_info("killed %d children:%s", kills, killed_names);

	/* Which tokens got a 250. */
	char **accepted = NULL;
	int naccepted = 0, cap = 0;
	for (int c = 0; c < NCLIENTS; c++) {
		FILE *fp = fopen(results[c], "r");
		char line[128];

		while (fp && fgets(line, sizeof(line), fp)) {
			line[strcspn(line, "\n")] = '\0';
			if (naccepted == cap) {
				cap = cap ? cap * 2 : 512;
				accepted = realloc(accepted, (size_t)cap * sizeof(*accepted));
				cr_assert_not_null(accepted);
			}
			accepted[naccepted++] = strdup(line);
		}
		if (fp)
			fclose(fp);
	}
	cr_expect_geq(naccepted, NCLIENTS * PER_CLIENT * 9 / 10,
	              "only %d of %d messages were accepted", naccepted, NCLIENTS * PER_CLIENT);

	/* Wait for delivery of everything that was accepted. */
	int missing = naccepted, dups = 0, extra, ndel = 0;
	char **del = NULL;
	deadline = h_now_ms() + DELIVERY_DEADLINE_MS;
	for (;;) {
		ndel = delivered_tokens(md, &del);
		missing = 0;
		dups = 0;
		for (int i = 0; i < naccepted; i++) {
			int k = occurrences(del, ndel, accepted[i]);

			missing += k == 0;
			dups += k > 1 ? k - 1 : 0;
		}
		if (missing == 0 || h_now_ms() >= deadline)
			break;
		h_free_list(del, ndel);
		del = NULL;
		h_sleep_ms(500);
	}
	extra = ndel - (naccepted - missing) - dups;
	cr_log_info("accepted %d, delivered files %d, missing %d, duplicates %d, "
	            "delivered without a 250 seen %d",
	            naccepted, ndel, missing, dups, extra);
	if (missing > 0) {
		int shown = 0;

		for (int i = 0; i < naccepted && shown < 10; i++) {
			if (occurrences(del, ndel, accepted[i]) == 0) {
				cr_log_error("accepted but not delivered: %s", accepted[i]);
				shown++;
			}
		}
		h_dump_log(&D, 40);
	}
	cr_expect_eq(missing, 0, "%d accepted messages were lost", missing);
	cr_expect_leq(dups, delivery_kills * DELIVERY_OPEN_MAX,
	              "%d duplicates after %d kills of delivery (at most %d each)", dups,
	              delivery_kills, DELIVERY_OPEN_MAX);
	h_free_list(del, ndel);
	h_free_list(accepted, naccepted);

	/* Everything that was committed gets delivered: the queues drain. */
	long long until = h_now_ms() + 30000;
	while (h_spool_count(&D, "hi") + h_spool_count(&D, "lo") + h_spool_count(&D, "out") > 0 &&
	       h_now_ms() < until)
		h_sleep_ms(100);
	cr_expect_eq(h_spool_count(&D, "hi") + h_spool_count(&D, "lo") + h_spool_count(&D, "out"),
	             0, "queues not empty: hi %d lo %d out %d", h_spool_count(&D, "hi"),
	             h_spool_count(&D, "lo"), h_spool_count(&D, "out"));
	/* The master removes what a killed receiver left in incoming/ before
	 * it restarts it. */
	stale = h_spool_count(&D, "incoming");
	cr_expect_eq(stale, 0, "%d files left in incoming/ by killed processes", stale);
	h_daemon_stop(&D);
	/* A start clears incoming/ as well. */
	h_daemon_start(&D);
	cr_expect_eq(h_spool_count(&D, "incoming"), 0, "incoming/ not empty after a restart");
	cr_expect_eq(h_spool_count(&D, "corrupt"), 0, "files in corrupt/ after the crashes");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}
