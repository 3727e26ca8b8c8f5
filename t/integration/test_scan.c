/*
 * test_scan.c: integration tests of the scanner stage: the real tempomxd
 * with scan = yes and the hand-made signature database of t/data/clamav.
 *
 * What a user would notice: infected mail (EICAR plain, base64, zipped;
 * clamav-testfiles) ends in quarantine/ with the virus name, is logged,
 * counted in the sender history and never delivered; clean mail of many
 * shapes arrives byte-exact below the scan header fields; mail that could
 * not be fully scanned follows scan_error_action; the order in which
 * waiting mail is started follows the schedule, proved from the "order="
 * numbers of the scanner's log lines (the order in which the scheduler
 * picked messages), not from timing; reloads under load lose and
 * duplicate nothing; a SIGKILLed scanner leaves its messages in hi/ or lo/
 * and they are scanned after the restart; a database that cannot be
 * loaded stops the daemon at start-up.
 *
 * Messages for the order tests are written straight into hi/ and lo/ (as
 * smtpd would after its decision), so the test controls class and arrival
 * time through the queue ID.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

static struct h_daemon D;

TestSuite(scan, .init = h_setup, .fini = h_teardown, .timeout = 120);

static void scan_init(struct h_daemon *d)
{
	char src[H_PATH], db[H_PATH + 8], cmd[4 * H_PATH];
	h_daemon_init(d);
	/* A copy in the test's own directory: the daemon runs as an
	 * unprivileged user who may not be able to read the source tree. */
	h_srcpath("t/data/clamav", src, sizeof(src));
	snprintf(db, sizeof(db), "%s/sigdb", d->dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && chmod -R a+rX '%s'", src, db, db);
	cr_assert_eq(system(cmd), 0);
	h_set(d, "scan", "yes");
	h_set(d, "clamav_database", "%s", db);
	h_set(d, "scan_threads", "2");
}

static char *read_mail(const char *name, size_t *len)
{
	char path[H_PATH];
	snprintf(path, sizeof(path), "t/data/mail/%s", name);
	char full[H_PATH];
	h_srcpath(path, full, sizeof(full));
	char *m = h_read_file(full, len);
	cr_assert_not_null(m, "cannot read %s", full);
	return m;
}

/* A message carrying the file as a base64 attachment (CRLF lines). */
static char *attach_file(const char *file, const char *token, size_t *len)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t flen;
	unsigned char *f = (unsigned char *)h_read_file(file, &flen);
	cr_assert_not_null(f, "cannot read %s (clamav-testfiles)", file);
	size_t cap = flen * 2 + 1024, n = 0;
	char *m = malloc(cap);
	cr_assert_not_null(m);
	n += (size_t)snprintf(
	    m, cap,
	    "From: a@localhost\r\nTo: bob@localhost\r\nSubject: %s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n"
	    "\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
	    "--b\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"x.bin\"\r\n\r\n",
	    token);
	for (size_t i = 0, col = 0; i < flen; i += 3) {
		uint32_t v = (uint32_t)f[i] << 16;
		if (i + 1 < flen)
			v |= (uint32_t)f[i + 1] << 8;
		if (i + 2 < flen)
			v |= f[i + 2];
		m[n++] = b64[(v >> 18) & 63];
		m[n++] = b64[(v >> 12) & 63];
		m[n++] = i + 1 < flen ? b64[(v >> 6) & 63] : '=';
		m[n++] = i + 2 < flen ? b64[v & 63] : '=';
		if ((col += 4) >= 76 || i + 3 >= flen) {
			m[n++] = '\r';
			m[n++] = '\n';
			col = 0;
		}
	}
	n += (size_t)snprintf(m + n, cap - n, "--b--\r\n");
	free(f);
	*len = n;
	return m;
}

/* Highest virus count stored for the key in the LMDB file. The store is
 * copy-on-write, so older versions of a record may linger in free pages;
 * counts only grow, so the largest is the current one. The record layout
 * is history.h's struct history_record (virus at offset 48). */
static unsigned history_virus_count(struct h_daemon *d, const unsigned char *key, size_t klen)
{
	char path[H_PATH + 16];
	size_t len;
	snprintf(path, sizeof(path), "%s/db/data.mdb", d->spool);
	unsigned char *db = (unsigned char *)h_read_file(path, &len);
	unsigned best = 0;
	/* A version 2 record (include/history.h) is 96 bytes, virus at 48. */
	for (size_t i = 0; db && i + klen + 96 <= len; i++) {
		if (memcmp(db + i, key, klen) != 0 || db[i + klen] != 2)
			continue;
		uint32_t v;
		memcpy(&v, db + i + klen + 48, 4);
		if (v > best && v < 1000)
			best = v;
	}
	free(db);
	return best;
}

static int wait_count(struct h_daemon *d, const char *queue, int n, int timeout_ms)
{
	long long end = h_now_ms() + timeout_ms;
	int c;
	while ((c = h_spool_count(d, queue)) < n && h_now_ms() < end)
		h_sleep_ms(50);
	return c;
}

Test(scan, viruses_quarantined_never_delivered)
{
	static const char *const rcpts[] = {"bob@localhost", NULL};
	static const char *const files[] = {"eicar-plain.eml", "eicar-base64.eml", "eicar-zip.eml",
	                                    "clamexe-zip.eml", "clampdf.eml"};
	static const char *const testfiles[] = {"clam.exe", "clam.7z", "clam.ole.doc"};
	const int nvirus = 5 + 3;
	char md[H_PATH];

	scan_init(&D);
	h_set(&D, "scan_error_action", "hold");
	h_daemon_start(&D);
	for (size_t i = 0; i < 5; i++) {
		size_t len;
		char *m = read_mail(files[i], &len);
		cr_expect_eq(h_send_mail(D.port, NULL, "a@localhost", rcpts, m, len), 250, "%s",
		             files[i]);
		free(m);
	}
	for (size_t i = 0; i < 3; i++) {
		char path[H_PATH];
		size_t len;
		snprintf(path, sizeof(path), "/usr/share/clamav-testfiles/%s", testfiles[i]);
		char *m = attach_file(path, testfiles[i], &len);
		cr_expect_eq(h_send_mail(D.port, NULL, "a@localhost", rcpts, m, len), 250, "%s",
		             testfiles[i]);
		free(m);
	}
	/* An encrypted archive cannot be looked into: held, not delivered. */
	size_t elen;
	char *enc = read_mail("encrypted-zip.eml", &elen);
	cr_expect_eq(h_send_mail(D.port, NULL, "a@localhost", rcpts, enc, elen), 250);
	free(enc);

	cr_expect_eq(wait_count(&D, "quarantine", nvirus, 20000), nvirus);
	cr_expect_eq(wait_count(&D, "hold", 1, 10000), 1);
	cr_expect(h_spool_wait_idle(&D, 10000));
	h_maildir(&D, "localhost", "bob", md, sizeof(md));
	cr_expect_eq(h_maildir_count(md), 0, "infected or held mail was delivered");

	int n;
	char *q = h_spool_slurp(&D, "quarantine", &n);
	cr_assert_not_null(q);
	size_t qlen = strlen(q);
	cr_expect_eq(h_count(q, qlen, "\nscan-result infected Tempomx.Test.EICAR.UNOFFICIAL\n"), 3,
	             "EICAR plain, base64 and zipped");
	cr_expect_eq(
	    h_count(q, qlen, "\nscan-result infected Tempomx.TestFile.clam.exe.UNOFFICIAL\n"), 4,
	    "clam.exe in a zip, as an attachment, inside 7z and doc");
	cr_expect_eq(
	    h_count(q, qlen, "\nscan-result infected Tempomx.TestFile.clam.pdf.UNOFFICIAL\n"), 1);
	free(q);
	char *held = h_spool_slurp(&D, "hold", &n);
	cr_expect(held &&
	              h_contains(held, strlen(held), "scan-result unscanned Heuristics.Encrypted"),
	          "hold/ file has no scan-result");
	free(held);

	/* The scanner logs a move once it is done, which may be just after
	 * the file shows up in its queue. */
	cr_expect(h_log_wait(&D, "result=virus, name=Tempomx.Test.EICAR.UNOFFICIAL", 5000));
	cr_expect(h_log_wait(&D, "moved to quarantine", 5000));
	cr_expect(h_log_wait(&D, "result=incomplete, name=Heuristics.Encrypted.Zip", 5000));
	/* No bounce was queued: nothing reached out/ or a mailbox. */
	cr_expect_eq(h_spool_count(&D, "out"), 0);
	h_daemon_stop(&D);

	/* The history of 127.0.0.1 and of 127.0.0.0/24 counts every virus. */
	static const unsigned char host[] = {4, 32, 127, 0, 0, 1};
	static const unsigned char net[] = {4, 24, 127, 0, 0, 0};
	cr_expect_eq(history_virus_count(&D, host, sizeof(host)), (unsigned)nvirus);
	cr_expect_eq(history_virus_count(&D, net, sizeof(net)), (unsigned)nvirus);
	h_daemon_free(&D);
}

/* A large text message with unique content, CRLF lines. */
static char *big_message(size_t size, const char *token, size_t *len)
{
	char *m = malloc(size + 256);
	cr_assert_not_null(m);
	size_t n = (size_t)snprintf(
	    m, 256, "From: a@localhost\r\nTo: bob@localhost\r\nSubject: %s\r\n\r\n", token);
	unsigned x = 12345;
	while (n + 80 < size) {
		for (int i = 0; i < 76; i++) {
			x = x * 1103515245u + 12345u;
			m[n++] = (char)('a' + (x >> 16) % 26);
		}
		m[n++] = '\r';
		m[n++] = '\n';
	}
	*len = n;
	return m;
}

Test(scan, clean_mail_delivered_byte_exact_with_headers)
{
	static const char *const rcpts[] = {"bob@localhost", NULL};
	char *msgs[6];
	size_t lens[6];
	const char *names[6] = {"plain", "multipart", "8bit", "large", "encrypted", "small"};
	char md[H_PATH];

	scan_init(&D);
	h_daemon_start(&D);
	msgs[0] = read_mail("clean-plain.eml", &lens[0]);
	msgs[1] = read_mail("clean-multipart.eml", &lens[1]);
	static const char eight[] = "From: a@localhost\r\nTo: bob@localhost\r\nSubject: 8bit\r\n"
	                            "Content-Type: text/plain; charset=utf-8\r\n"
	                            "Content-Transfer-Encoding: 8bit\r\n\r\n"
	                            "Gr\xc3\xbc\xc3\x9f"
	                            "e aus K\xc3\xb6ln, \xe2\x82\xac 5\r\n.dot line\r\n";
	msgs[2] = strdup(eight);
	lens[2] = strlen(eight);
	msgs[3] = big_message(3 * 1024 * 1024, "large-1", &lens[3]);
	msgs[4] = read_mail("encrypted-zip.eml", &lens[4]);
	msgs[5] = h_make_message("small", "small-token-1", &lens[5]);
	for (int i = 0; i < 6; i++)
		cr_expect_eq(h_send_mail(D.port, NULL, "a@localhost", rcpts, msgs[i], lens[i]), 250,
		             "%s", names[i]);
	h_maildir(&D, "localhost", "bob", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 6, 30000), 6);

	char **files;
	int n = h_maildir_list(md, &files);
	for (int i = 0; i < 6; i++) {
		int found = 0;
		for (int k = 0; k < n && !found; k++) {
			if (h_check_delivered(files[k], msgs[i], lens[i]) != NULL)
				continue;
			found = 1;
			size_t flen;
			char *f = h_read_file(files[k], &flen);
			size_t hdr = flen - lens[i];
			if (i == 4)
				cr_expect(h_contains(f, hdr,
				                     "X-Tempomx-Scan: not fully scanned "
				                     "(Heuristics.Encrypted.Zip)"),
				          "encrypted: %.400s", f);
			else
				cr_expect(
				    h_contains(f, hdr, "X-Tempomx-Scan: clean; engine=libclamav "),
				    "%s: %.400s", names[i], f);
			cr_expect(h_contains(f, hdr, "; db=custom; signatures="), "%.400s", f);
			cr_expect(h_contains(f, hdr, "\r\nX-Tempomx-Class: hi; verdict="), "%.400s",
			          f);
			cr_expect_eq(h_count(f, hdr, "X-Tempomx-Scan:"), 1);
			free(f);
		}
		cr_expect(found, "%s: not delivered byte-exact below the header fields", names[i]);
	}
	h_free_list(files, n);
	for (int i = 0; i < 6; i++)
		free(msgs[i]);
	cr_expect(h_log_has(&D, "result=clean"));
	cr_expect_eq(h_spool_count(&D, "quarantine"), 0);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(scan, unloadable_database_stops_the_daemon)
{
	scan_init(&D);
	h_set(&D, "clamav_database", "%s/no-such-db", D.dir);
	cr_expect_eq(h_daemon_try_start(&D, 10000), -1, "started without a database");
	cr_expect(h_log_wait(&D, "cannot load the virus database", 2000));
	cr_expect(h_log_has(&D, "not starting"));
	cr_expect_eq(h_daemon_alive(&D), 0);
	h_daemon_kill(&D);
	h_daemon_free(&D);
}

/* ---- order ------------------------------------------------------------- */

/* Queue ID (queueid.h: 9 hex digits of seconds, 5 of microseconds, 5 of
 * a process ID, 3 of a counter) for an arrival at sec + usec. */
static void make_id(char *out, long long sec, unsigned usec, unsigned n)
{
	snprintf(out, 23, "%09llX%05X%05X%03X", sec, usec % 1000000, 0xABCDEu, n & 0xfff);
}

/* Write q/id as smtpd would: envelope block, message, made outside the
 * queue and renamed in. */
static void put_message_with(struct h_daemon *d, const char *queue, const char *id,
                             long long arrival, const char *token, const char *scan_result,
                             const char *headers)
{
	char msg[1024], env[1024], tmp[H_PATH + 32], dst[H_PATH + 64], sr[256] = "";
	int mlen = snprintf(msg, sizeof(msg),
	                    "%sFrom: a@localhost\r\nTo: bob@localhost\r\nSubject: %s\r\n\r\n"
	                    "body of %s\r\n",
	                    headers, token, token);
	if (scan_result)
		snprintf(sr, sizeof(sr), "scan-result %s\n", scan_result);
	int elen =
	    snprintf(env, sizeof(env),
	             "tempomx-envelope 1\nid %s\narrival %lld.000000\nclient-addr 127.0.0.1\n"
	             "client-port 25\nsender a@localhost\nsmtputf8 0\nclass %s\n"
	             "verdict good\nscore 0\nattempts 0\nnext-retry 0\n%s"
	             "rcpt pending 0 0 0 bob@localhost\nsize %020d\nend\n",
	             id, arrival, queue, sr, mlen);
	snprintf(tmp, sizeof(tmp), "%s/incoming/%s", d->spool, id);
	snprintf(dst, sizeof(dst), "%s/%s/%s", d->spool, queue, id);
	FILE *fp = fopen(tmp, "w");
	cr_assert_not_null(fp, "%s: %s", tmp, strerror(errno));
	fwrite(env, 1, (size_t)elen, fp);
	fwrite(msg, 1, (size_t)mlen, fp);
	cr_assert_eq(fclose(fp), 0);
	h_chown_run_user(tmp);
	cr_assert_eq(rename(tmp, dst), 0, "rename %s: %s", dst, strerror(errno));
}

static void put_message(struct h_daemon *d, const char *queue, const char *id, long long arrival,
                        const char *token)
{
	put_message_with(d, queue, id, arrival, token, NULL, "");
}

struct picked {
	char id[23];
	char cls; /* 'h', 'l', 'p' (lo promoted) */
	unsigned order;
};

/* The scanner's log lines "<id>: class=..., order=N, ..." in log order. */
static int read_picks(struct h_daemon *d, struct picked *out, int max)
{
	size_t len;
	char *log = h_read_file(d->log, &len);
	int n = 0;
	for (char *p = log; p && n < max && (p = strstr(p, ": class=")) != NULL; p++) {
		char *s = p;
		while (s > log && s[-1] != ' ')
			s--;
		if (p - s != 22)
			continue;
		memcpy(out[n].id, s, 22);
		out[n].id[22] = '\0';
		out[n].cls = p[8] == 'h'                                ? 'h'
		             : strncmp(p + 8, "lo (promoted)", 13) == 0 ? 'p'
		                                                        : 'l';
		char *o = strstr(p, "order=");
		char *eol = strchr(p, '\n');
		if (!o || (eol && o > eol))
			continue;
		out[n].order = (unsigned)strtoul(o + 6, NULL, 10);
		n++;
	}
	free(log);
	return n;
}

/* The scanner child's pid, from the master's last complete "child scanner
 * started, pid N" line (a line still being written when the log is read
 * would give a truncated pid: wait, bounded, for its end). */
static pid_t scanner_pid(struct h_daemon *d)
{
	const char *needle = "child scanner started, pid ";
	long long end = h_now_ms() + 10000;
	pid_t pid = 0;
	do {
		size_t len;
		char *log = h_read_file(d->log, &len);
		for (char *p = log; p && (p = strstr(p, needle)) != NULL; p++) {
			char *q = p + strlen(needle), *e;
			long v = strtol(q, &e, 10);
			if (e > q && *e == '\n')
				pid = (pid_t)v;
		}
		free(log);
		if (pid > 0)
			break;
		h_sleep_ms(20);
	} while (h_now_ms() < end);
	return pid;
}

static long long now_sec(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return tv.tv_sec;
}

/* A daemon whose spool exists, stopped, ready for files. */
static void order_daemon(const char *schedule, const char *weight, const char *lo_max_wait)
{
	scan_init(&D);
	h_set(&D, "scan_threads", "1");
	h_set(&D, "schedule", "%s", schedule);
	h_set(&D, "weight", "%s", weight);
	h_set(&D, "lo_max_wait", "%s", lo_max_wait);
	h_daemon_start(&D);
	h_daemon_stop(&D);
}

/* The classes in pick order ("hhhl..."), after all n were scanned. */
static void picked_classes(int n, char *out)
{
	struct picked *pk = calloc((size_t)n + 8, sizeof(*pk));
	long long end = h_now_ms() + 60000;
	int got;
	while ((got = read_picks(&D, pk, n + 8)) < n && h_now_ms() < end)
		h_sleep_ms(100);
	cr_assert_eq(got, n, "%d of %d messages scanned", got, n);
	memset(out, '?', (size_t)n);
	out[n] = '\0';
	for (int i = 0; i < n; i++) {
		cr_assert(pk[i].order >= 1 && pk[i].order <= (unsigned)n, "order %u", pk[i].order);
		out[pk[i].order - 1] = pk[i].cls;
	}
	free(pk);
}

Test(scan, weighted_fifo_and_promotion_order)
{
	char got[64];
	long long t = now_sec() - 30;

	/* weighted, weight 3: 5 hi and 6 lo waiting at start-up. */
	order_daemon("weighted", "3", "0");
	for (unsigned i = 0; i < 6; i++) {
		char id[23];
		make_id(id, t, i * 10, i);
		put_message(&D, "lo", id, t, id);
	}
	for (unsigned i = 0; i < 5; i++) {
		char id[23];
		make_id(id, t + 1, i * 10, 100 + i);
		put_message(&D, "hi", id, t + 1, id);
	}
	h_daemon_start(&D);
	picked_classes(11, got);
	cr_expect_str_eq(got,
	                 "hhhlhhllll"
	                 "l",
	                 "weighted 3");
	h_daemon_stop(&D);
	h_daemon_free(&D);

	/* fifo: hi and lo alternate by arrival; the order is arrival. */
	order_daemon("fifo", "4", "0");
	for (unsigned i = 0; i < 8; i++) {
		char id[23];
		make_id(id, t, i * 1000, i);
		put_message(&D, i % 2 ? "hi" : "lo", id, t, id);
	}
	h_daemon_start(&D);
	picked_classes(8, got);
	cr_expect_str_eq(got, "lhlhlhlh", "fifo");
	h_daemon_stop(&D);
	h_daemon_free(&D);

	/* absolute with lo_max_wait 60s: lo mail that arrived 2 minutes
	 * ago goes before the newer hi mail; young lo mail waits. */
	order_daemon("absolute", "4", "60s");
	for (unsigned i = 0; i < 3; i++) {
		char id[23];
		make_id(id, t - 120, i, i);
		put_message(&D, "lo", id, t - 120, id);
		make_id(id, t + 5, i, 10 + i);
		put_message(&D, "lo", id, t + 5, id);
		make_id(id, t, i, 20 + i);
		put_message(&D, "hi", id, t, id);
	}
	h_daemon_start(&D);
	picked_classes(9, got);
	cr_expect_str_eq(got, "ppphhhlll", "absolute with lo_max_wait");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/*
 * 200 messages wait in lo/ and one arrives in hi/ while they are being
 * scanned (one thread): it must be the next message started. The scanner
 * is stopped (SIGSTOP) while the hi message is renamed in, so the test
 * knows how far the lo queue had got: L lines logged, at most one more
 * message in flight. The hi message's pick number must be L+1 or L+2.
 */
Test(scan, absolute_hi_overtakes_200_lo)
{
	long long t = now_sec() - 10;
	char hid[23];

	order_daemon("absolute", "4", "0");
	for (unsigned i = 0; i < 200; i++) {
		char id[23];
		make_id(id, t, i, i);
		put_message(&D, "lo", id, t, id);
	}
	h_daemon_start(&D);
	pid_t sc = scanner_pid(&D);
	cr_assert_gt(sc, 0);
	struct picked pk[256];
	long long end = h_now_ms() + 20000;
	while (read_picks(&D, pk, 256) < 5 && h_now_ms() < end)
		h_sleep_ms(2);
	cr_assert_eq(kill(sc, SIGSTOP), 0);
	h_sleep_ms(100); /* a stop is delivered at once; a line being written completes */
	int before = read_picks(&D, pk, 256);
	make_id(hid, now_sec(), 0, 999);
	put_message(&D, "hi", hid, now_sec(), hid);
	cr_assert_eq(kill(sc, SIGCONT), 0);
	cr_assert_lt(before, 190, "the lo queue was nearly done before the test could stop it");

	end = h_now_ms() + 60000;
	int n;
	while ((n = read_picks(&D, pk, 256)) < 201 && h_now_ms() < end)
		h_sleep_ms(100);
	cr_assert_eq(n, 201);
	unsigned hi_order = 0;
	for (int i = 0; i < n; i++)
		if (strcmp(pk[i].id, hid) == 0)
			hi_order = pk[i].order;
	cr_expect(hi_order == (unsigned)before + 1 || hi_order == (unsigned)before + 2,
	          "hi message picked %u-th; %d lo messages were done when it arrived", hi_order,
	          before);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Reloads (SIGHUP, a changed database directory, a broken database) while
 * 200 messages are scanned: each is delivered exactly once. */
Test(scan, reload_under_load_loses_nothing)
{
	char src[H_PATH], db[H_PATH + 8], cmd[4 * H_PATH];
	long long t = now_sec() - 5;

	order_daemon("absolute", "4", "0");
	h_srcpath("t/data/clamav", src, sizeof(src));
	snprintf(db, sizeof(db), "%s/db", D.dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && chmod -R a+rX '%s'", src, db, db);
	cr_assert_eq(system(cmd), 0);
	h_set(&D, "clamav_database", "%s", db);
	h_set(&D, "scan_threads", "2");
	for (unsigned i = 0; i < 200; i++) {
		char id[23];
		make_id(id, t, i, i);
		put_message(&D, i % 3 ? "lo" : "hi", id, t, id);
	}
	h_daemon_start(&D);
	for (int k = 0; k < 3; k++) {
		h_sleep_ms(150);
		kill(D.pid, SIGHUP);
	}
	/* The directory changes: a new signature file appears. */
	char extra[H_PATH + 32];
	snprintf(extra, sizeof(extra), "%s/extra.ndb", db);
	static const char sig[] = "Tempomx.Test.Extra:0:*:74656d706f6d782d657874726173696700\n";
	cr_assert_eq(h_write_file(extra, sig, strlen(sig), 0644), 0);
	cr_expect(h_log_wait(&D, "engine reloaded", 15000), "no reload logged");
	/* A broken database: the reload fails, the old engine stays. */
	static const char bad[] = "this is not a signature\n";
	cr_assert_eq(h_write_file(extra, bad, strlen(bad), 0644), 0);
	cr_expect(h_log_wait(&D, "keeping the current engine", 15000), "no failed reload logged");

	char md[H_PATH];
	h_maildir(&D, "localhost", "bob", md, sizeof(md));
	cr_expect_eq(h_maildir_wait(md, 200, 60000), 200);
	cr_expect(h_spool_wait_idle(&D, 10000));
	h_sleep_ms(500);
	char **files;
	int n = h_maildir_list(md, &files);
	cr_expect_eq(n, 200, "duplicates or losses");
	/* Every message once: its ID is in its Subject. */
	char *seen = calloc(200, 1);
	for (int i = 0; i < n; i++) {
		size_t flen;
		char *f = h_read_file(files[i], &flen);
		char *s = f ? strstr(f, "Subject: ") : NULL;
		if (s) {
			unsigned k = (unsigned)strtoul(s + 9 + 19, NULL, 16);
			if (k < 200)
				seen[k]++;
		}
		free(f);
	}
	for (unsigned k = 0; k < 200; k++)
		cr_expect_eq(seen[k], 1, "message %u delivered %d times", k, seen[k]);
	free(seen);
	h_free_list(files, n);
	/* Scanning still works on the engine kept. */
	static const char *const rcpts[] = {"carol@localhost", NULL};
	size_t elen;
	char *e = read_mail("eicar-plain.eml", &elen);
	cr_expect_eq(h_send_mail(D.port, NULL, "a@localhost", rcpts, e, elen), 250);
	free(e);
	cr_expect_eq(wait_count(&D, "quarantine", 1, 10000), 1);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* SIGKILL the scanner while it works through large messages: what it was
 * scanning stays in lo/, is scanned after the restart, and every message
 * is delivered once. */
Test(scan, sigkill_mid_scan_rescans_after_restart)
{
	long long t = now_sec() - 5;
	char md[H_PATH];

	order_daemon("absolute", "4", "0");
	h_set(&D, "scan_threads", "1");
	for (unsigned i = 0; i < 40; i++) {
		char id[23];
		make_id(id, t, i, i);
		put_message(&D, "lo", id, t, id);
	}
	h_daemon_start(&D);
	pid_t sc = scanner_pid(&D);
	cr_assert_gt(sc, 0);
	struct picked pk[64];
	long long end = h_now_ms() + 20000;
	while (read_picks(&D, pk, 64) < 3 && h_now_ms() < end)
		h_sleep_ms(1);
	cr_assert_eq(kill(sc, SIGKILL), 0);
	h_sleep_ms(200);
	int done = read_picks(&D, pk, 64);
	/* Nothing is lost while no scanner runs. */
	int waiting = h_spool_count(&D, "lo");
	h_maildir(&D, "localhost", "bob", md, sizeof(md));
	cr_expect_eq(waiting + h_spool_count(&D, "out") + h_maildir_count(md), 40,
	             "lo %d + out + delivered != 40", waiting);
	cr_expect_gt(waiting, 0);
	cr_expect_lt(done, 40);
	/* The master restarts it (back-off 1 s). */
	cr_expect_eq(h_maildir_wait(md, 40, 30000), 40);
	cr_expect(h_spool_wait_idle(&D, 10000));
	h_sleep_ms(300);
	cr_expect_eq(h_maildir_count(md), 40, "a message was delivered twice");
	cr_expect(h_log_has(&D, "child scanner pid"));
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A crash between the two renames of an update leaves a scanned file in
 * hi/ or lo/ with scan-result set: it is moved on as it is, without a
 * second set of header fields, and an infected one still goes to
 * quarantine/. */
Test(scan, scanned_file_left_by_a_crash_is_moved_as_is)
{
	static const char hdr[] = "X-Tempomx-Scan: clean; engine=libclamav 1; db=custom; "
	                          "signatures=12; host=mx.example.test\r\n"
	                          "X-Tempomx-Class: hi; verdict=good; score=0\r\n";
	long long t = now_sec() - 5;
	char a[23], b[23], md[H_PATH];

	order_daemon("absolute", "4", "0");
	make_id(a, t, 1, 1);
	make_id(b, t, 2, 2);
	put_message_with(&D, "hi", a, t, a, "clean", hdr);
	put_message_with(&D, "lo", b, t, b, "infected Tempomx.Test.EICAR.UNOFFICIAL", "");
	h_daemon_start(&D);
	h_maildir(&D, "localhost", "bob", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 1, 15000), 1);
	cr_expect_eq(wait_count(&D, "quarantine", 1, 10000), 1);
	char **files;
	int n = h_maildir_list(md, &files);
	cr_assert_eq(n, 1);
	size_t flen;
	char *f = h_read_file(files[0], &flen);
	cr_expect_eq(h_count(f, flen, "X-Tempomx-Scan:"), 1, "header fields added twice:\n%s", f);
	free(f);
	h_free_list(files, n);
	cr_expect(h_log_has(&D, "scan=done before restart (clean), moved to out"));
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* A spool written by version 1 of the format is delivered after an
 * upgrade: an unscanned file in hi/ (its class field already under its
 * Received:, as that version's smtpd wrote it), a scanned one in out/ and
 * a deferred one due now. Each arrives with one X-Tempomx-Scan and one
 * X-Tempomx-Class field, and nothing goes to corrupt/. */
Test(scan, version_1_spool_is_delivered)
{
	static const char rcv[] = "Received: from old (old [127.0.0.1])\r\n\tby mx (tempomx)\r\n"
	                          "X-Tempomx-Class: hi; verdict=good; score=0; history=good\r\n";
	static const char done[] = "X-Tempomx-Scan: clean; engine=libclamav 1; db=custom; "
	                           "signatures=12; host=mx.example.test\r\n"
	                           "X-Tempomx-Class: hi; verdict=good; score=0\r\n"
	                           "Received: from old (old [127.0.0.1])\r\n\tby mx (tempomx)\r\n";
	long long t = now_sec() - 5;
	char a[23], b[23], c[23], md[H_PATH];

	order_daemon("absolute", "4", "0");
	make_id(a, t, 1, 1);
	make_id(b, t, 2, 2);
	make_id(c, t, 3, 3);
	put_message_with(&D, "hi", a, t, a, NULL, rcv);
	put_message_with(&D, "hi", b, t, b, "clean", done);
	put_message_with(&D, "hi", c, t, c, "clean", done);
	char from[H_PATH + 64], to[H_PATH + 64];
	snprintf(from, sizeof(from), "%s/hi/%s", D.spool, b);
	snprintf(to, sizeof(to), "%s/out/%s", D.spool, b);
	cr_assert_eq(rename(from, to), 0);
	snprintf(from, sizeof(from), "%s/hi/%s", D.spool, c);
	snprintf(to, sizeof(to), "%s/deferred/%s", D.spool, c);
	cr_assert_eq(rename(from, to), 0);
	h_daemon_start(&D);
	h_maildir(&D, "localhost", "bob", md, sizeof(md));
	cr_assert_eq(h_maildir_wait(md, 3, 20000), 3);
	cr_expect(h_spool_wait_idle(&D, 10000));
	char **files;
	int n = h_maildir_list(md, &files);
	cr_assert_eq(n, 3);
	for (int i = 0; i < n; i++) {
		size_t flen;
		char *f = h_read_file(files[i], &flen);
		cr_expect_eq(h_count(f, flen, "X-Tempomx-Scan: clean;"), 1, "%s", f);
		cr_expect_eq(h_count(f, flen, "X-Tempomx-Class:"), 1, "%s", f);
		free(f);
	}
	h_free_list(files, n);
	cr_expect_eq(h_spool_count(&D, "corrupt"), 0);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}
