/*
 * test_spool.c: unit tests for src/spool/spool.c, commit.c and watch.c.
 *
 * Each test gets a fresh spool in a temporary directory. What is checked
 * is what an admin or a client would notice: which files exist in which
 * queue, that the message octets come back byte for byte, that damaged
 * files end up in corrupt/ with a log line, that every submitted commit
 * lands exactly once, that the watcher reports arrivals, and that a
 * writer killed with SIGKILL at random moments never leaves a partial
 * file in a queue nor loses a message it acknowledged.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "util.h"

static char tmpdir[64];
static char spooldir[128];
static struct spool sp;

static void setup(void)
{
	log_init("test_spool", 1, 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tmx-spool-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
	char err[256];
	cr_assert_eq(spool_prepare(spooldir, getuid(), getgid(), err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(spool_open(&sp, spooldir), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	spool_close(&sp);
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(spool, .init = setup, .fini = teardown);

/* ---- helpers ---- */

/* Deterministic message octets for an ID, so any file can be checked. */
static void fill_body(char *buf, size_t len, const char *id)
{
	uint32_t h = 2166136261u;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (size_t i = 0; i < len; i++) {
		h = h * 1103515245u + 12345u;
		buf[i] = (char)(h >> 16);
	}
}

static void make_env(struct envelope *env, const char *helo)
{
	envelope_init(env);
	env->arrival_usec = wall_usec();
	env->client_addr = xstrdup("192.0.2.7");
	env->client_port = 40000;
	env->client_name = xstrdup("unknown");
	env->helo = xstrdup(helo);
	env->protocol = xstrdup("ESMTP");
	env->sender = xstrdup("sender@example.test");
	envelope_add_rcpt(env, "rcpt@example.test", NULL);
}

/* Create and write a message of len octets; leaves it uncommitted. */
static void start_message(struct spool_file *sf, size_t len, char *id_out)
{
	struct envelope env;
	make_env(&env, "writer.example.test");
	cr_assert_eq(spool_create(&sp, &env, sf), 0, "spool_create: %s", strerror(errno));
	cr_assert_str_eq(sf->id, env.id);
	char *body = xmalloc(len ? len : 1);
	fill_body(body, len, sf->id);
	/* In pieces, as smtpd does. */
	for (size_t off = 0; off < len; off += 1000) {
		size_t n = len - off < 1000 ? len - off : 1000;
		cr_assert_eq(spool_write(sf, body + off, n), 0);
	}
	free(body);
	if (id_out)
		memcpy(id_out, sf->id, QUEUEID_SIZE);
	envelope_free(&env);
}

static void commit_message(size_t len, enum spool_queue q, char *id_out)
{
	struct spool_file sf;
	start_message(&sf, len, id_out);
	cr_assert_eq(spool_commit(&sp, &sf, len, q), 0, "spool_commit: %s", strerror(errno));
	cr_assert_eq(sf.fd, -1);
}

static int exists_in(enum spool_queue q, const char *name)
{
	struct stat st;
	return fstatat(sp.dirfd[q], name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Names in a directory, "." and ".." excepted. */
static size_t entries(enum spool_queue q)
{
	int fd = openat(sp.dirfd[q], ".", O_RDONLY | O_DIRECTORY);
	DIR *d = fdopendir(fd);
	cr_assert_not_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static char *read_all(int fd, off_t off, size_t *lenp)
{
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	size_t len = (size_t)(st.st_size - off);
	char *buf = xmalloc(len + 1);
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
		cr_assert(n > 0);
		got += (size_t)n;
	}
	*lenp = len;
	return buf;
}

/* The message octets of q/id. */
static char *read_body(enum spool_queue q, const char *id, struct envelope *env, size_t *lenp)
{
	int fd;
	size_t off;
	cr_assert_eq(spool_open_message(&sp, q, id, env, &off, &fd), 0, "open %s/%s",
	             spool_queue_name(q), id);
	char *b = read_all(fd, (off_t)off, lenp);
	close(fd);
	return b;
}

static void write_raw(enum spool_queue q, const char *name, const char *data, size_t len)
{
	int fd = openat(sp.dirfd[q], name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Run the loop until *done or the deadline; bounded in time. */
static void run_until(struct event_base *base, const int *done, int seconds)
{
	int64_t end = mono_usec() + (int64_t)seconds * 1000000;
	struct timeval tick = {0, 20000};
	while (!*done && mono_usec() < end) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
}

static void run_for(struct event_base *base, int msec)
{
	struct timeval tv = {msec / 1000, (msec % 1000) * 1000};
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* ---- layout ---- */

Test(spool, prepare_creates_private_dirs)
{
	static const char *const dirs[] = {"incoming", "hi",         "lo",      "out", "deferred",
	                                   "hold",     "quarantine", "corrupt", "db",  "tls"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct stat st;
		cr_assert_eq(fstatat(sp.rootfd, dirs[i], &st, AT_SYMLINK_NOFOLLOW), 0, "%s",
		             dirs[i]);
		cr_expect(S_ISDIR(st.st_mode));
		cr_expect_eq(st.st_mode & 07777, 0700, "%s has mode %o", dirs[i],
		             st.st_mode & 07777);
		cr_expect_eq(st.st_uid, getuid());
	}
	struct stat st;
	cr_assert_eq(stat(spooldir, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0700);
	char err[256];
	/* Idempotent. */
	cr_expect_eq(spool_prepare(spooldir, getuid(), getgid(), err, sizeof(err)), 0, "%s", err);
}

Test(spool, prepare_refuses_writable_dirs)
{
	char err[256] = "";
	cr_assert_eq(fchmodat(sp.rootfd, "hi", 0770, 0), 0);
	cr_expect_eq(spool_prepare(spooldir, getuid(), getgid(), err, sizeof(err)), -1);
	cr_expect(strstr(err, "/hi: group or world writable") != NULL, "%s", err);
	cr_assert_eq(fchmodat(sp.rootfd, "hi", 0700, 0), 0);

	cr_assert_eq(chmod(spooldir, 0707), 0);
	cr_expect_eq(spool_prepare(spooldir, getuid(), getgid(), err, sizeof(err)), -1);
	cr_expect(strstr(err, "group or world writable") != NULL, "%s", err);
	cr_assert_eq(chmod(spooldir, 0700), 0);

	/* A queue replaced by a symbolic link is refused. */
	cr_assert_eq(renameat(sp.rootfd, "hold", sp.rootfd, "hold.real"), 0);
	cr_assert_eq(symlinkat("hold.real", sp.rootfd, "hold"), 0);
	cr_expect_eq(spool_prepare(spooldir, getuid(), getgid(), err, sizeof(err)), -1);
	cr_expect(strstr(err, "symbolic link") != NULL, "%s", err);
}

Test(spool, prepare_chowns_when_root)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
	char path[200], err[256];
	snprintf(path, sizeof(path), "%s/other/spool", tmpdir);
	cr_assert_eq(spool_prepare(path, 65534, 65534, err, sizeof(err)), 0, "%s", err);
	static const char *const dirs[] = {"", "/incoming", "/hi", "/corrupt", "/db", "/tls"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char p[300];
		struct stat st;
		snprintf(p, sizeof(p), "%s%s", path, dirs[i]);
		cr_assert_eq(stat(p, &st), 0, "%s", p);
		cr_expect(st.st_uid == 65534 && st.st_gid == 65534, "%s owned by %d:%d", p,
		          (int)st.st_uid, (int)st.st_gid);
		cr_expect_eq(st.st_mode & 07777, 0700, "%s", p);
	}
	/* Parents created on the way stay root's. */
	struct stat st;
	snprintf(path, sizeof(path), "%s/other", tmpdir);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_uid, 0);
}

Test(spool, queue_names)
{
	for (int q = 0; q < Q_COUNT; q++)
		cr_expect_eq(spool_queue_from_name(spool_queue_name(q)), q);
	cr_expect_str_eq(spool_queue_name(Q_DEFERRED), "deferred");
	cr_expect_eq(spool_queue_from_name("db"), -1);
	cr_expect_eq(spool_queue_from_name("../hi"), -1);
}

/* ---- receiving ---- */

Test(spool, create_write_commit)
{
	char id[QUEUEID_SIZE];
	struct spool_file sf;
	start_message(&sf, 2048, id);
	/* Not visible to other stages until committed. */
	cr_expect(exists_in(Q_INCOMING, id));
	cr_expect_eq(spool_count(&sp, Q_HI), 0);
	cr_assert_eq(spool_commit(&sp, &sf, 2048, Q_HI), 0);
	cr_expect(!exists_in(Q_INCOMING, id));
	cr_expect(exists_in(Q_HI, id));

	struct envelope env;
	size_t len;
	char *body = read_body(Q_HI, id, &env, &len);
	cr_expect_str_eq(env.id, id);
	cr_expect_eq(env.size, 2048);
	cr_expect_eq(len, 2048);
	cr_expect_str_eq(env.helo, "writer.example.test");
	cr_expect_str_eq(env.rcpts[0].addr, "rcpt@example.test");
	char *want = xmalloc(2048);
	fill_body(want, 2048, id);
	cr_expect(memcmp(body, want, 2048) == 0);
	free(want);
	free(body);
	envelope_free(&env);

	struct stat st;
	cr_assert_eq(fstatat(sp.dirfd[Q_HI], id, &st, 0), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
}

/* The whole file q/id. */
static char *read_file(enum spool_queue q, const char *id, size_t *lenp)
{
	int fd = openat(sp.dirfd[q], id, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s/%s", spool_queue_name(q), id);
	char *text = read_all(fd, 0, lenp);
	close(fd);
	return text;
}

/* The Received: count: reserved at create, written by the commit with the
 * size, carried by the update records; absent when the creator did not
 * count. */
Test(spool, hops_written_at_commit)
{
	struct envelope env;
	struct spool_file sf;
	make_env(&env, "hops.example.test");
	env.hops = 0;
	cr_assert_eq(spool_create(&sp, &env, &sf), 0);
	char body[300];
	fill_body(body, sizeof(body), sf.id);
	cr_assert_eq(spool_write(&sf, body, sizeof(body)), 0);
	char id[QUEUEID_SIZE];
	memcpy(id, sf.id, QUEUEID_SIZE);
	sf.hops = 7;
	cr_assert_eq(spool_commit(&sp, &sf, sizeof(body), Q_HI), 0);
	envelope_free(&env);

	size_t flen;
	char *text = read_file(Q_HI, id, &flen);
	cr_expect_not_null(memmem(text, flen, "\nhops 00007\nsize 00000000000000000300\n", 38),
	                   "hops and size not patched together");
	free(text);

	int fd;
	size_t off;
	cr_assert_eq(spool_take(&sp, Q_HI, id, &env, &off, &fd), 0);
	cr_expect_eq(env.hops, 7);
	/* An update record keeps it. */
	env.attempts = 3;
	cr_assert_eq(spool_note(fd, &env, 0), 0);
	close(fd);
	envelope_free(&env);
	cr_assert_eq(spool_read(&sp, Q_HI, id, &env, NULL), 0);
	cr_expect_eq(env.attempts, 3);
	cr_expect_eq(env.hops, 7);
	envelope_free(&env);

	/* Not counted: no line, read back as -1, the commit patches the size. */
	commit_message(100, Q_LO, id);
	text = read_file(Q_LO, id, &flen);
	cr_expect_null(memmem(text, flen, "\nhops ", 6));
	free(text);
	cr_assert_eq(spool_read(&sp, Q_LO, id, &env, NULL), 0);
	cr_expect_eq(env.hops, -1);
	cr_expect_eq(env.size, 100);
	envelope_free(&env);
}

Test(spool, commit_refuses_wrong_size)
{
	char id[QUEUEID_SIZE];
	struct spool_file sf;
	start_message(&sf, 100, id);
	cr_expect_eq(spool_commit(&sp, &sf, 99, Q_HI), -1);
	cr_expect_eq(errno, EIO);
	cr_expect(!exists_in(Q_HI, id));
	cr_expect(!exists_in(Q_INCOMING, id), "incoming file left behind");
}

Test(spool, commit_never_overwrites)
{
	char id[QUEUEID_SIZE];
	struct spool_file sf;
	start_message(&sf, 10, id);
	write_raw(Q_HI, id, "precious", 8);
	cr_expect_eq(spool_commit(&sp, &sf, 10, Q_HI), -1);
	cr_expect_eq(errno, EEXIST);
	int fd = openat(sp.dirfd[Q_HI], id, O_RDONLY);
	char buf[16];
	cr_expect_eq(read(fd, buf, sizeof(buf)), 8);
	close(fd);
	cr_expect(!exists_in(Q_INCOMING, id));
}

Test(spool, abort_removes)
{
	char id[QUEUEID_SIZE];
	struct spool_file sf;
	start_message(&sf, 500, id);
	spool_abort(&sp, &sf);
	cr_expect_eq(sf.fd, -1);
	cr_expect_eq(entries(Q_INCOMING), 0);
	cr_expect_eq(entries(Q_HI), 0);
}

Test(spool, clean_incoming)
{
	struct spool_file sf[3];
	for (int i = 0; i < 3; i++) {
		start_message(&sf[i], 10, NULL);
		close(sf[i].fd);
	}
	write_raw(Q_INCOMING, "06B07CF6A1E2400012F000.u1.2", "x", 1);
	char id[QUEUEID_SIZE];
	commit_message(10, Q_LO, id);
	cr_expect_eq(spool_clean_incoming(&sp), 4);
	cr_expect_eq(entries(Q_INCOMING), 0);
	cr_expect(exists_in(Q_LO, id), "committed mail removed");
	cr_expect_eq(spool_clean_incoming(&sp), 0);
}

Test(spool, clean_incoming_of_one_process)
{
	struct spool_file sf;
	char mine[QUEUEID_SIZE];
	start_message(&sf, 10, mine);
	close(sf.fd);
	/* Another process's message: same ID with other pid digits. */
	char other[QUEUEID_SIZE];
	memcpy(other, mine, QUEUEID_SIZE);
	other[18] = other[18] == '0' ? '1' : '0';
	write_raw(Q_INCOMING, other, "x", 1);
	char upd_mine[64], upd_other[64];
	snprintf(upd_mine, sizeof(upd_mine), "%s.u%ld.7", mine, (long)getpid());
	snprintf(upd_other, sizeof(upd_other), "%s.u%ld.7", mine, (long)getpid() + 1);
	write_raw(Q_INCOMING, upd_mine, "x", 1);
	write_raw(Q_INCOMING, upd_other, "x", 1);
	write_raw(Q_INCOMING, "README", "x", 1);
	cr_expect_eq(spool_clean_incoming_pid(&sp, getpid()), 2);
	cr_expect(!exists_in(Q_INCOMING, mine));
	cr_expect(!exists_in(Q_INCOMING, upd_mine));
	cr_expect(exists_in(Q_INCOMING, other), "another process's message kept");
	cr_expect(exists_in(Q_INCOMING, upd_other), "another process's update kept");
	cr_expect(exists_in(Q_INCOMING, "README"));
}

/* ---- moving, updating, removing ---- */

Test(spool, move_and_remove)
{
	char id[QUEUEID_SIZE];
	commit_message(300, Q_HI, id);
	cr_assert_eq(spool_move(&sp, id, Q_HI, Q_OUT), 0);
	cr_expect(!exists_in(Q_HI, id));
	cr_expect(exists_in(Q_OUT, id));
	cr_expect_eq(spool_move(&sp, id, Q_HI, Q_OUT), -1);
	cr_expect_eq(errno, ENOENT);
	cr_expect_eq(spool_move(&sp, "../hi/x", Q_OUT, Q_HOLD), -1);
	cr_expect_eq(errno, EINVAL);
	cr_assert_eq(spool_move(&sp, id, Q_OUT, Q_HOLD), 0);
	cr_assert_eq(spool_remove(&sp, Q_HOLD, id), 0);
	cr_expect(!exists_in(Q_HOLD, id));
	cr_expect_eq(spool_remove(&sp, Q_HOLD, id), -1);
	cr_expect_eq(errno, ENOENT);
	struct envelope env;
	cr_expect_eq(spool_read(&sp, Q_HOLD, id, &env, NULL), -1);
	cr_expect_eq(errno, ENOENT);
	envelope_free(&env);
}

Test(spool, handoff_and_release)
{
	char id[QUEUEID_SIZE];
	commit_message(300, Q_HI, id);
	cr_assert_eq(spool_handoff(&sp, id, Q_HI, Q_OUT), 0);
	cr_expect(!exists_in(Q_HI, id));
	cr_expect(exists_in(Q_OUT, id));
	cr_expect_eq(spool_handoff(&sp, id, Q_HI, Q_OUT), -1);
	cr_expect_eq(errno, ENOENT);
	cr_expect_eq(spool_handoff(&sp, "../x", Q_OUT, Q_HOLD), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect_eq(spool_release(&sp, Q_OUT, "not-an-id"), -1);
	cr_expect_eq(errno, EINVAL);
	cr_assert_eq(spool_release(&sp, Q_OUT, id), 0);
	cr_expect(!exists_in(Q_OUT, id));
	cr_expect_eq(spool_release(&sp, Q_OUT, id), -1);
	cr_expect_eq(errno, ENOENT);
}

Test(spool, update_in_place_and_to_other_queue)
{
	char id[QUEUEID_SIZE];
	commit_message(4000, Q_HI, id);
	struct envelope env;
	cr_assert_eq(spool_read(&sp, Q_HI, id, &env, NULL), 0);
	env.rcpts[0].status = RCPT_DEFERRED;
	env.rcpts[0].attempts = 1;
	env.next_retry = 1795677599;
	free(env.scan_result);
	env.scan_result = xstrdup("clean");
	cr_assert_eq(spool_update(&sp, Q_HI, id, &env, NULL, Q_HI), 0);
	envelope_free(&env);

	size_t len;
	char *body = read_body(Q_HI, id, &env, &len);
	cr_expect_eq(env.rcpts[0].status, RCPT_DEFERRED);
	cr_expect_eq(env.next_retry, 1795677599);
	cr_expect_str_eq(env.scan_result, "clean");
	cr_expect_eq(len, 4000);
	free(body);

	static const char hdr[] = "X-Tempomx-Class: hi\r\nX-Tempomx-Scan: clean\r\n";
	/* A stale size and a different id in the caller's copy do not
	 * matter: the file describes itself. */
	env.size = 1;
	memcpy(env.id, "0000000000000000000000", QUEUEID_SIZE);
	cr_assert_eq(spool_update(&sp, Q_HI, id, &env, hdr, Q_DEFERRED), 0);
	envelope_free(&env);
	cr_expect(!exists_in(Q_HI, id));
	cr_expect_eq(entries(Q_INCOMING), 0);

	body = read_body(Q_DEFERRED, id, &env, &len);
	cr_expect_str_eq(env.id, id);
	cr_assert_eq(len, strlen(hdr) + 4000);
	cr_expect_eq(env.size, len);
	cr_expect(memcmp(body, hdr, strlen(hdr)) == 0);
	char *want = xmalloc(4000);
	fill_body(want, 4000, id);
	cr_expect(memcmp(body + strlen(hdr), want, 4000) == 0);
	free(want);
	free(body);
	envelope_free(&env);

	cr_expect_eq(spool_update(&sp, Q_HI, id, &env, NULL, Q_OUT), -1);
	cr_expect_eq(errno, ENOENT);
}

Test(spool, update_is_byte_exact_for_5mb)
{
	size_t n = 5u * 1024 * 1024 + 17;
	char id[QUEUEID_SIZE];
	commit_message(n, Q_LO, id);
	struct envelope env;
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(spool_read(&sp, Q_LO, id, &env, NULL), 0);
		env.attempts = round + 1;
		cr_assert_eq(spool_update(&sp, Q_LO, id, &env, NULL, Q_LO), 0);
		envelope_free(&env);
	}
	size_t len;
	char *body = read_body(Q_LO, id, &env, &len);
	cr_expect_eq(env.attempts, 3);
	cr_assert_eq(len, n);
	char *want = xmalloc(n);
	fill_body(want, n, id);
	cr_expect(memcmp(body, want, n) == 0, "message octets changed");
	free(want);
	free(body);
	envelope_free(&env);
}

Test(spool, update_of_corrupt_file_fails_cleanly)
{
	static const char junk[] = "not an envelope\n";
	const char *id = "06B07CF6A1E2400012F000";
	write_raw(Q_HI, id, junk, sizeof(junk) - 1);
	struct envelope env;
	make_env(&env, "x");
	cr_expect_eq(spool_update(&sp, Q_HI, id, &env, NULL, Q_OUT), -1);
	cr_expect_eq(errno, EBADMSG);
	cr_expect(exists_in(Q_HI, id), "old file must stay");
	cr_expect_eq(entries(Q_INCOMING), 0);
	envelope_free(&env);
}

/* ---- corrupt files ---- */

/* Run fn with stderr captured; returns what was logged. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	int saved = dup(2);
	dup2(fd, 2);
	fn(arg);
	dup2(saved, 2);
	close(saved);
	size_t len;
	char *s = read_all(fd, 0, &len);
	s[len] = '\0';
	close(fd);
	return s;
}

struct read_call {
	enum spool_queue q;
	const char *id;
	int result;
};

static void do_read(void *arg)
{
	struct read_call *c = arg;
	struct envelope env;
	c->result = spool_read(&sp, c->q, c->id, &env, NULL);
	envelope_free(&env);
}

Test(spool, corrupt_file_moves_to_corrupt)
{
	const char *id = "06B07CF6A1E2400012F000";
	write_raw(Q_LO, id, "tempomx-envelope 1\nbogus line\n", 30);
	struct read_call c = {Q_LO, id, 0};
	char *log = capture_stderr(do_read, &c);
	cr_expect_eq(c.result, -2);
	cr_expect(!exists_in(Q_LO, id));
	cr_expect(exists_in(Q_CORRUPT, id));
	cr_expect(strstr(log, "06B07CF6A1E2400012F000: moved to corrupt/: line 2: unknown key "
	                      "'bogus'") != NULL,
	          "log: %s", log);
	free(log);

	/* Same name again: kept under a suffix, the first one untouched. */
	write_raw(Q_LO, id, "garbage", 7);
	log = capture_stderr(do_read, &c);
	cr_expect_eq(c.result, -2);
	cr_expect(exists_in(Q_CORRUPT, id));
	cr_expect(exists_in(Q_CORRUPT, "06B07CF6A1E2400012F000.1"));
	cr_expect(strstr(log, "moved to corrupt/ as 06B07CF6A1E2400012F000.1") != NULL, "log: %s",
	          log);
	free(log);
	/* Suffixed names are not queue IDs: listings skip them. */
	char(*ids)[QUEUEID_SIZE];
	cr_expect_eq(spool_list(&sp, Q_CORRUPT, &ids), 1);
	free(ids);
}

Test(spool, truncated_or_mismatched_files_are_corrupt)
{
	char id[QUEUEID_SIZE], id2[QUEUEID_SIZE];
	commit_message(1000, Q_HI, id);
	commit_message(1000, Q_HI, id2);
	/* A message shorter than its envelope says. */
	int fd = openat(sp.dirfd[Q_HI], id, O_WRONLY);
	struct stat st;
	fstat(fd, &st);
	cr_assert_eq(ftruncate(fd, st.st_size - 1), 0);
	close(fd);
	struct read_call c = {Q_HI, id, 0};
	char *log = capture_stderr(do_read, &c);
	cr_expect_eq(c.result, -2);
	cr_expect(strstr(log, "size mismatch: envelope says 1000 octets, file has 999") != NULL,
	          "log: %s", log);
	free(log);
	cr_expect(exists_in(Q_CORRUPT, id));

	/* A file whose envelope names another message. */
	cr_assert_eq(renameat(sp.dirfd[Q_HI], id2, sp.dirfd[Q_HI], "06B07CF6A1E2400012F000"), 0);
	c.id = "06B07CF6A1E2400012F000";
	log = capture_stderr(do_read, &c);
	cr_expect_eq(c.result, -2);
	cr_expect(strstr(log, "does not match the file name") != NULL, "log: %s", log);
	free(log);

	/* Not a regular file. */
	cr_assert_eq(mkfifoat(sp.dirfd[Q_HI], "06B07CF6A1E2400012F001", 0600), 0);
	c.id = "06B07CF6A1E2400012F001";
	log = capture_stderr(do_read, &c);
	cr_expect_eq(c.result, -2);
	free(log);
	cr_expect_eq(entries(Q_HI), 0);
	cr_expect_eq(entries(Q_CORRUPT), 3);
}

/* ---- update records (version 2) ---- */

/* A note is appended, not copied: the message octets stay where they
 * were (same inode), and every reader sees the last note. */
Test(spool, note_appends_and_reads_back)
{
	char id[QUEUEID_SIZE];
	struct envelope env, back;
	size_t off;
	int fd;
	struct stat before, after;
	commit_message(3000, Q_HI, id);
	cr_assert_eq(fstatat(sp.dirfd[Q_HI], id, &before, 0), 0);
	cr_assert_eq(spool_take(&sp, Q_HI, id, &env, &off, &fd), 0);
	cr_expect_eq(env.version, 2);
	cr_expect_eq(env.log_end, off + 3000);
	free(env.scan_result);
	env.scan_result = xstrdup("clean");
	cr_assert_eq(spool_note(fd, &env, 0), 0, "%s", strerror(errno));
	env.rcpts[0].status = RCPT_DEFERRED;
	env.attempts = 1;
	cr_assert_eq(spool_note(fd, &env, SPOOL_NOTE_SYNC), 0);
	close(fd);
	cr_assert_eq(spool_handoff(&sp, id, Q_HI, Q_DEFERRED), 0);
	envelope_free(&env);
	cr_assert_eq(fstatat(sp.dirfd[Q_DEFERRED], id, &after, 0), 0);
	cr_expect_eq(before.st_ino, after.st_ino, "the file was rewritten");

	cr_assert_eq(spool_read(&sp, Q_DEFERRED, id, &back, &off), 0);
	cr_expect_eq(back.nrecords, 2);
	cr_expect_str_eq(back.scan_result, "clean");
	cr_expect_eq(back.rcpts[0].status, RCPT_DEFERRED);
	cr_expect_eq(back.attempts, 1);
	cr_expect_eq(back.size, 3000);
	cr_expect_eq(back.log_end, (uint64_t)after.st_size);
	envelope_free(&back);

	/* An update rewrites the file without its records, same message. */
	cr_assert_eq(spool_read(&sp, Q_DEFERRED, id, &back, NULL), 0);
	cr_assert_eq(spool_update(&sp, Q_DEFERRED, id, &back, NULL, Q_OUT), 0);
	envelope_free(&back);
	size_t len;
	char *body = read_body(Q_OUT, id, &back, &len);
	cr_expect_eq(back.nrecords, 0);
	cr_expect_eq(back.attempts, 1);
	cr_expect_eq(len, 3000);
	char *want = xmalloc(3000);
	fill_body(want, 3000, id);
	cr_expect(memcmp(body, want, 3000) == 0);
	free(want);
	free(body);
	envelope_free(&back);
}

/* A crash in the middle of a note leaves part of it: the file reads as
 * it was before, and the next note replaces the unfinished one. */
Test(spool, unfinished_note_is_ignored_then_replaced)
{
	char id[QUEUEID_SIZE];
	struct envelope env;
	size_t off;
	int fd;
	struct stat st;
	commit_message(500, Q_OUT, id);
	cr_assert_eq(spool_take(&sp, Q_OUT, id, &env, &off, &fd), 0);
	uint64_t end = env.log_end;
	env.rcpts[0].status = RCPT_SENT;
	cr_assert_eq(spool_note(fd, &env, 0), 0);
	close(fd);
	envelope_free(&env);
	/* Keep 40 octets of the record, then junk as a crash could leave. */
	fd = openat(sp.dirfd[Q_OUT], id, O_RDWR);
	cr_assert_eq(ftruncate(fd, (off_t)end + 40), 0);
	cr_assert_eq(pwrite(fd, "\0\0\0garbage", 10, (off_t)end + 40), 10);
	close(fd);

	cr_assert_eq(spool_take(&sp, Q_OUT, id, &env, &off, &fd), 0);
	cr_expect_eq(env.rcpts[0].status, RCPT_PENDING);
	cr_expect_eq(env.log_end, end);
	cr_expect_eq(env.file_len, end + 50);
	env.rcpts[0].status = RCPT_DEFERRED;
	cr_assert_eq(spool_note(fd, &env, 0), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq((uint64_t)st.st_size, env.log_end, "the unfinished tail is still there");
	close(fd);
	envelope_free(&env);
	cr_assert_eq(spool_read(&sp, Q_OUT, id, &env, NULL), 0);
	cr_expect_eq(env.rcpts[0].status, RCPT_DEFERRED);
	cr_expect_eq(env.nrecords, 1);
	envelope_free(&env);
	cr_expect_eq(entries(Q_CORRUPT), 0);
}

/* A record with a good frame and CRC but wrong content was not left by a
 * crash: the file goes to corrupt/, the reader gets -2. */
Test(spool, bad_record_moves_file_to_corrupt)
{
	char id[QUEUEID_SIZE];
	struct envelope env;
	size_t off;
	int fd;
	commit_message(100, Q_OUT, id);
	cr_assert_eq(spool_take(&sp, Q_OUT, id, &env, &off, &fd), 0);
	static const char block[] = "not an envelope\n";
	char frame[64];
	int n = snprintf(frame, sizeof(frame), "tempomx-update %zu %08x\n", sizeof(block) - 1,
	                 (unsigned)envelope_crc32(block, sizeof(block) - 1));
	cr_assert_eq(pwrite(fd, frame, (size_t)n, (off_t)env.log_end), n);
	cr_assert_eq(pwrite(fd, block, sizeof(block) - 1, (off_t)env.log_end + n),
	             (ssize_t)sizeof(block) - 1);
	close(fd);
	envelope_free(&env);
	struct read_call c = {Q_OUT, id, 0};
	char *log = capture_stderr(do_read, &c);
	cr_expect_eq(c.result, -2);
	cr_expect(strstr(log, "update record 1:") != NULL, "log: %s", log);
	free(log);
	cr_expect(exists_in(Q_CORRUPT, id));
}

/* A spool written by version 1 (the message fills the file, the scanner's
 * fields already in it) is read as it is, and updated as version 1 was:
 * a whole new file, still version 1, with no note appended. */
Test(spool, version_1_file_is_read_and_updated)
{
	static const char v1[] = "tempomx-envelope 1\n"
	                         "id 06B07CF6A1E2400012F000\n"
	                         "arrival 1795673962.123456\n"
	                         "client-addr 192.0.2.7\n"
	                         "client-port 52311\n"
	                         "sender bob@example.test\n"
	                         "smtputf8 0\n"
	                         "class hi\n"
	                         "verdict good\n"
	                         "score 0\n"
	                         "attempts 0\n"
	                         "next-retry 0\n"
	                         "scan-result clean\n"
	                         "rcpt pending 0 0 0 alice@example.test\n"
	                         "size 00000000000000000031\n"
	                         "end\n"
	                         "X-Tempomx-Scan: clean\r\n\r\nbody\r\n";
	const char *id = "06B07CF6A1E2400012F000";
	struct envelope env;
	size_t off, len;
	int fd;
	write_raw(Q_OUT, id, v1, sizeof(v1) - 1);
	cr_assert_eq(spool_take(&sp, Q_OUT, id, &env, &off, &fd), 0);
	cr_expect_eq(env.version, 1);
	cr_expect_str_eq(env.scan_result, "clean");
	cr_expect_eq(env.size, 31);
	errno = 0;
	cr_expect_eq(spool_note(fd, &env, 0), -1, "a note appended to a version 1 file");
	cr_expect_eq(errno, EINVAL);
	close(fd);
	env.rcpts[0].status = RCPT_DEFERRED;
	cr_assert_eq(spool_update(&sp, Q_OUT, id, &env, NULL, Q_DEFERRED), 0);
	envelope_free(&env);
	char *body = read_body(Q_DEFERRED, id, &env, &len);
	cr_expect_eq(env.version, 1);
	cr_expect_eq(env.rcpts[0].status, RCPT_DEFERRED);
	cr_expect_eq(len, 31);
	cr_expect(memcmp(body, "X-Tempomx-Scan: clean\r\n\r\nbody\r\n", 31) == 0);
	free(body);
	envelope_free(&env);
	/* Octets after the message are not allowed in version 1. */
	char *v1x = xmalloc(sizeof(v1) + 8);
	memcpy(v1x, v1, sizeof(v1) - 1);
	memcpy(v1x + sizeof(v1) - 1, "trailer\n", 8);
	write_raw(Q_HI, id, v1x, sizeof(v1) - 1 + 8);
	free(v1x);
	struct read_call c = {Q_HI, id, 0};
	char *log = capture_stderr(do_read, &c);
	cr_expect_eq(c.result, -2);
	free(log);
}

/* ---- listing ---- */

Test(spool, list_sorted_and_filtered)
{
	char ids[60][QUEUEID_SIZE];
	for (int i = 0; i < 60; i++)
		commit_message(10, Q_OUT, ids[i]);
	write_raw(Q_OUT, "README", "x", 1);
	write_raw(Q_OUT, "06b07cf6a1e2400012f000", "x", 1);
	write_raw(Q_OUT, ".06B07CF6A1E2400012F000", "x", 1);
	char(*got)[QUEUEID_SIZE];
	size_t n = spool_list(&sp, Q_OUT, &got);
	cr_assert_eq(n, 60);
	cr_expect_eq(spool_count(&sp, Q_OUT), 60);
	for (size_t i = 0; i < n; i++) {
		cr_expect_str_eq(got[i], ids[i]); /* created in order = arrival order */
		if (i > 0)
			cr_expect(strcmp(got[i - 1], got[i]) < 0);
	}
	free(got);
	cr_expect_eq(spool_list(&sp, Q_HOLD, &got), 0);
	free(got);
}

/* ---- commit pool ---- */

#define POOL_N 500

struct pool_test {
	int calls[POOL_N];
	int errors;
	int ncalls;
	int done;
};

struct pool_ref {
	struct pool_test *t;
	int index;
};

static void pool_done(void *arg, int error)
{
	struct pool_ref *r = arg;
	r->t->calls[r->index]++;
	r->t->ncalls++;
	if (error)
		r->t->errors++;
}

Test(spool, commit_pool_lands_each_exactly_once)
{
	struct event_base *base = event_base_new();
	struct commit_pool *pool = commit_pool_new(base, &sp, 8);
	static struct pool_test t;
	static struct pool_ref refs[POOL_N];
	static char ids[POOL_N][QUEUEID_SIZE];
	for (int i = 0; i < POOL_N; i++) {
		struct spool_file sf;
		start_message(&sf, 2048, ids[i]);
		refs[i].t = &t;
		refs[i].index = i;
		commit_pool_submit(pool, &sf, 2048, i % 2 ? Q_LO : Q_HI, pool_done, &refs[i]);
		cr_assert_eq(sf.fd, -1, "the pool takes the descriptor");
	}
	int64_t end = mono_usec() + 60 * 1000000LL;
	while (commit_pool_pending(pool) > 0 && mono_usec() < end)
		run_for(base, 20);
	cr_assert_eq(commit_pool_pending(pool), 0);
	cr_expect_eq(t.ncalls, POOL_N);
	cr_expect_eq(t.errors, 0);
	for (int i = 0; i < POOL_N; i++)
		cr_expect_eq(t.calls[i], 1, "callback %d ran %d times", i, t.calls[i]);
	cr_expect_eq(spool_count(&sp, Q_HI), POOL_N / 2);
	cr_expect_eq(spool_count(&sp, Q_LO), POOL_N / 2);
	cr_expect_eq(entries(Q_INCOMING), 0);
	for (int i = 0; i < POOL_N; i++) {
		struct envelope env;
		cr_expect_eq(spool_read(&sp, i % 2 ? Q_LO : Q_HI, ids[i], &env, NULL), 0);
		cr_expect_eq(env.size, 2048);
		envelope_free(&env);
	}
	commit_pool_free(pool);
	cr_expect_eq(t.ncalls, POOL_N);
	event_base_free(base);
}

Test(spool, commit_pool_reports_errors)
{
	struct event_base *base = event_base_new();
	struct commit_pool *pool = commit_pool_new(base, &sp, 2);
	static struct pool_test t;
	struct pool_ref ref = {&t, 0};
	struct spool_file sf;
	start_message(&sf, 100, NULL);
	commit_pool_submit(pool, &sf, 50, Q_HI, pool_done, &ref); /* wrong size */
	run_until(base, &t.ncalls, 10);
	cr_expect_eq(t.ncalls, 1);
	cr_expect_eq(t.errors, 1);
	cr_expect_eq(entries(Q_HI), 0);
	cr_expect_eq(entries(Q_INCOMING), 0);
	commit_pool_free(pool);
	event_base_free(base);
}

Test(spool, commit_pool_forget)
{
	struct event_base *base = event_base_new();
	struct commit_pool *pool = commit_pool_new(base, &sp, 4);
	static struct pool_test t;
	static struct pool_ref gone[50], stays[50];
	for (int i = 0; i < 50; i++) {
		struct spool_file sf;
		start_message(&sf, 512, NULL);
		gone[i] = (struct pool_ref){&t, i};
		commit_pool_submit(pool, &sf, 512, Q_HI, pool_done, &gone[0]);
		start_message(&sf, 512, NULL);
		stays[i] = (struct pool_ref){&t, 100 + i};
		commit_pool_submit(pool, &sf, 512, Q_HI, pool_done, &stays[i]);
	}
	/* The session behind gone[0] went away: some of its commits are
	 * queued, some running, some finished. */
	commit_pool_forget(pool, &gone[0]);
	int64_t end = mono_usec() + 30 * 1000000LL;
	while (commit_pool_pending(pool) > 0 && mono_usec() < end)
		run_for(base, 20);
	cr_expect_eq(commit_pool_pending(pool), 0);
	cr_expect_eq(t.calls[0], 0, "forgotten callback ran");
	for (int i = 0; i < 50; i++)
		cr_expect_eq(t.calls[100 + i], 1);
	cr_expect_eq(t.ncalls, 50);
	/* The forgotten mail is still committed. */
	cr_expect_eq(spool_count(&sp, Q_HI), 100);
	commit_pool_free(pool);
	event_base_free(base);
}

Test(spool, commit_pool_free_drains)
{
	struct event_base *base = event_base_new();
	struct commit_pool *pool = commit_pool_new(base, &sp, 3);
	static struct pool_test t;
	static struct pool_ref refs[100];
	for (int i = 0; i < 100; i++) {
		struct spool_file sf;
		start_message(&sf, 256, NULL);
		refs[i] = (struct pool_ref){&t, i};
		commit_pool_submit(pool, &sf, 256, Q_LO, pool_done, &refs[i]);
	}
	commit_pool_free(pool); /* without ever running the loop */
	cr_expect_eq(t.ncalls, 100);
	cr_expect_eq(spool_count(&sp, Q_LO), 100);
	cr_expect_eq(entries(Q_INCOMING), 0);
	event_base_free(base);
}

/* ---- watch ---- */

#define WATCH_MAX 20000

struct seen {
	int n;
	int found; /* the ID we wait for was reported */
	char want[QUEUEID_SIZE];
	enum spool_queue want_q;
	enum spool_queue last_q;
	int bad_name;
};

static void on_seen(void *arg, enum spool_queue q, const char *id)
{
	struct seen *s = arg;
	s->n++;
	s->last_q = q;
	if (!queueid_valid(id))
		s->bad_name = 1;
	if (strcmp(id, s->want) == 0 && q == s->want_q)
		s->found = 1;
}

Test(spool, watch_initial_scan_and_inotify)
{
	char old[QUEUEID_SIZE];
	commit_message(10, Q_HI, old);
	write_raw(Q_HI, "not-a-queue-id", "x", 1);
	struct event_base *base = event_base_new();
	static struct seen s;
	memcpy(s.want, old, QUEUEID_SIZE);
	s.want_q = Q_HI;
	/* A long interval: anything seen below comes from the start-up scan
	 * or from inotify, not from the timer. */
	struct spool_watch *w =
	    spool_watch_new(base, &sp, 1u << Q_HI | 1u << Q_LO, 3600, on_seen, &s);
	cr_expect_eq(s.n, 0, "callback outside the loop");
	run_until(base, &s.found, 5);
	cr_expect(s.found, "start-up scan missed an existing file");
	cr_expect_eq(s.n, 1);

	/* A commit renames into lo/: inotify reports it. */
	memset(&s, 0, sizeof(s));
	commit_message(10, Q_LO, s.want);
	s.want_q = Q_LO;
	run_until(base, &s.found, 5);
	cr_expect(s.found, "inotify missed a renamed-in file");

	/* Unwatched queues and names that are not IDs are ignored. */
	memset(&s, 0, sizeof(s));
	char other[QUEUEID_SIZE];
	commit_message(10, Q_OUT, other);
	write_raw(Q_LO, "junk-name", "x", 1);
	cr_assert_eq(renameat(sp.dirfd[Q_LO], "junk-name", sp.dirfd[Q_HI], "junk-name2"), 0);
	run_for(base, 300);
	cr_expect_eq(s.n, 0, "reported %d files", s.n);
	cr_expect_eq(s.bad_name, 0);

	/* A forced rescan reports everything present again. */
	spool_watch_rescan(w);
	spool_watch_rescan(w); /* merged with the first */
	s.want_q = Q_HI;
	memcpy(s.want, old, QUEUEID_SIZE);
	run_until(base, &s.found, 5);
	run_for(base, 100);
	cr_expect(s.found);
	cr_expect_eq(s.n, 2, "rescan reported %d files, want 2", s.n);
	cr_expect_eq(s.bad_name, 0);
	spool_watch_free(w);
	event_base_free(base);
}

Test(spool, watch_timer_rescans)
{
	struct event_base *base = event_base_new();
	static struct seen s;
	struct spool_watch *w = spool_watch_new(base, &sp, 1u << Q_DEFERRED, 1, on_seen, &s);
	run_for(base, 100);
	cr_expect_eq(s.n, 0);
	/* Placed by a link, which raises no IN_MOVED_TO or IN_CLOSE_WRITE:
	 * only the periodic rescan can find it. */
	char id[QUEUEID_SIZE];
	commit_message(10, Q_HOLD, id);
	cr_assert_eq(linkat(sp.dirfd[Q_HOLD], id, sp.dirfd[Q_DEFERRED], id, 0), 0);
	memcpy(s.want, id, QUEUEID_SIZE);
	s.want_q = Q_DEFERRED;
	int64_t t0 = mono_usec();
	run_until(base, &s.found, 5);
	cr_expect(s.found, "timer rescan missed a file");
	cr_expect(mono_usec() - t0 < 2500000);
	spool_watch_free(w);
	event_base_free(base);
}

/* A reload moves the periodic rescan in place (the watch stays), and
 * rescans at once either way. */
Test(spool, watch_reload_moves_the_interval)
{
	struct event_base *base = event_base_new();
	static struct seen s;
	struct spool_watch *w = spool_watch_new(base, &sp, 1u << Q_DEFERRED, 3600, on_seen, &s);
	run_for(base, 100);
	char id[QUEUEID_SIZE];
	commit_message(10, Q_HOLD, id);
	memcpy(s.want, id, QUEUEID_SIZE);
	s.want_q = Q_DEFERRED;

	/* Same interval: only the rescan it asks for, which finds the file
	 * linked in (no inotify event). */
	cr_expect_eq(spool_watch_reload(w, 3600), 0);
	cr_assert_eq(linkat(sp.dirfd[Q_HOLD], id, sp.dirfd[Q_DEFERRED], id, 0), 0);
	run_until(base, &s.found, 5);
	cr_expect(s.found, "the reload did not rescan");

	/* 3600 s -> 1 s: a file linked in after the reload's own rescan is
	 * found by the new timer within about a second. */
	cr_expect_eq(spool_watch_reload(w, 1), 1);
	run_for(base, 200);
	char id2[QUEUEID_SIZE];
	commit_message(10, Q_HOLD, id2);
	memset(&s, 0, sizeof(s));
	memcpy(s.want, id2, QUEUEID_SIZE);
	s.want_q = Q_DEFERRED;
	cr_assert_eq(linkat(sp.dirfd[Q_HOLD], id2, sp.dirfd[Q_DEFERRED], id2, 0), 0);
	int64_t t0 = mono_usec();
	run_until(base, &s.found, 5);
	cr_expect(s.found, "the new interval did not take");
	cr_expect(mono_usec() - t0 < 2500000);

	/* 1 s -> 0: no periodic rescan any more. */
	cr_expect_eq(spool_watch_reload(w, 0), 1);
	run_for(base, 200);
	char id3[QUEUEID_SIZE];
	commit_message(10, Q_HOLD, id3);
	memset(&s, 0, sizeof(s));
	memcpy(s.want, id3, QUEUEID_SIZE);
	s.want_q = Q_DEFERRED;
	cr_assert_eq(linkat(sp.dirfd[Q_HOLD], id3, sp.dirfd[Q_DEFERRED], id3, 0), 0);
	run_for(base, 2500);
	cr_expect(!s.found, "a rescan ran with the interval at 0");
	spool_watch_free(w);
	event_base_free(base);
}

static void free_from_callback(void *arg, enum spool_queue q, const char *id)
{
	struct spool_watch **w = arg;
	spool_watch_free(*w);
	*w = NULL;
}

Test(spool, watch_free_inside_callback)
{
	commit_message(10, Q_OUT, NULL);
	commit_message(10, Q_OUT, NULL);
	struct event_base *base = event_base_new();
	static struct spool_watch *w;
	w = spool_watch_new(base, &sp, 1u << Q_OUT, 3600, free_from_callback, &w);
	run_for(base, 200);
	cr_expect_null(w);
	event_base_free(base);
}

Test(spool, watch_overflow_triggers_rescan)
{
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	int max = 16384;
	if (f) {
		if (fscanf(f, "%d", &max) != 1)
			max = 16384;
		fclose(f);
	}
	cr_assert(max < 200000, "max_queued_events too large for this test");
	struct event_base *base = event_base_new();
	static struct seen s;
	struct spool_watch *w = spool_watch_new(base, &sp, 1u << Q_HI, 3600, on_seen, &s);
	run_for(base, 50);
	cr_assert_eq(s.n, 0);
	/* Fill the kernel's event queue without running the loop. Each name
	 * differs, or the kernel would merge the repeated events. */
	write_raw(Q_LO, "flood", "x", 1);
	for (int i = 0; i <= max; i++) {
		char name[32];
		snprintf(name, sizeof(name), "flood%d", i);
		cr_assert_eq(renameat(sp.dirfd[Q_LO], "flood", sp.dirfd[Q_HI], name), 0);
		cr_assert_eq(renameat(sp.dirfd[Q_HI], name, sp.dirfd[Q_LO], "flood"), 0);
	}
	/* This arrival's event is dropped: only the rescan can report it. */
	char id[QUEUEID_SIZE];
	commit_message(10, Q_LO, id);
	cr_assert_eq(spool_move(&sp, id, Q_LO, Q_HI), 0);
	memcpy(s.want, id, QUEUEID_SIZE);
	s.want_q = Q_HI;
	run_until(base, &s.found, 10);
	cr_expect(s.found, "no rescan after IN_Q_OVERFLOW");
	cr_expect_eq(s.bad_name, 0);
	spool_watch_free(w);
	event_base_free(base);
}

/* ---- crash safety ---- */

static const char crash_hdr[] = "X-Crash-Test: updated\r\n";

struct crash_ack {
	int fd;
	char id[QUEUEID_SIZE];
};

/* One acknowledgement record: 'H' (committed to hi/) or 'O' (updated
 * into out/) and the ID; 23 octets, so each write is atomic. */
static void crash_ack(int fd, char kind, const char *id)
{
	char rec[QUEUEID_LEN + 1];
	rec[0] = kind;
	memcpy(rec + 1, id, QUEUEID_LEN);
	if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		_exit(6);
}

static void crash_committed(void *arg, int error)
{
	struct crash_ack *a = arg;
	if (error)
		_exit(5);
	crash_ack(a->fd, 'H', a->id);
}

/* The writer: commit batches of messages of varying size into hi/ (one
 * by one, or four at a time through a commit pool), then move the first
 * of each batch on to out/ with spool_update. After each durable step it
 * writes an acknowledgement, as smtpd sends its 250. Runs until killed. */
static void crash_writer(int ackfd, unsigned seed, int use_pool)
{
	struct spool wsp;
	if (spool_open(&wsp, spooldir) < 0)
		_exit(2);
	struct event_base *base = use_pool ? event_base_new() : NULL;
	struct commit_pool *pool = use_pool ? commit_pool_new(base, &wsp, 4) : NULL;
	int batch = use_pool ? 4 : 1;
	struct crash_ack acks[4];
	char *body = xmalloc(200000);
	int64_t end = mono_usec() + 20 * 1000000LL; /* bounded even if never killed */
	for (int i = 0; i < 100000 && mono_usec() < end; i++) {
		for (int k = 0; k < batch; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t len = (seed >> 8) % 150000;
			struct envelope env;
			make_env(&env, "crash.example.test");
			struct spool_file sf;
			if (spool_create(&wsp, &env, &sf) < 0)
				_exit(3);
			envelope_free(&env);
			fill_body(body, len, sf.id);
			if (spool_write(&sf, body, len) < 0)
				_exit(4);
			acks[k].fd = ackfd;
			memcpy(acks[k].id, sf.id, QUEUEID_SIZE);
			if (pool)
				commit_pool_submit(pool, &sf, len, Q_HI, crash_committed, &acks[k]);
			else if (spool_commit(&wsp, &sf, len, Q_HI) < 0)
				_exit(5);
			else
				crash_ack(ackfd, 'H', sf.id);
		}
		while (pool && commit_pool_pending(pool) > 0)
			event_base_loop(base, EVLOOP_ONCE);
		struct envelope env;
		if (spool_read(&wsp, Q_HI, acks[0].id, &env, NULL) != 0)
			_exit(7);
		env.rcpts[0].status = RCPT_SENT;
		if (spool_update(&wsp, Q_HI, acks[0].id, &env, crash_hdr, Q_OUT) < 0)
			_exit(8);
		envelope_free(&env);
		crash_ack(ackfd, 'O', acks[0].id);
	}
	_exit(0);
}

/* Check every file in q: parses, size right, octets right. A file the
 * writer updated carries the header and says so in its envelope; an
 * update killed between its two renames legitimately leaves one in hi/.
 * Returns the number of updated files seen. */
static size_t check_queue(enum spool_queue q, int must_be_updated)
{
	char(*ids)[QUEUEID_SIZE];
	size_t n = spool_list(&sp, q, &ids), nupdated = 0;
	for (size_t i = 0; i < n; i++) {
		struct envelope env;
		size_t len;
		char *body = read_body(q, ids[i], &env, &len);
		int updated = env.rcpts[0].status == RCPT_SENT;
		if (must_be_updated)
			cr_expect(updated, "%s: not updated", ids[i]);
		size_t hl = updated ? strlen(crash_hdr) : 0;
		cr_assert(len >= hl);
		cr_expect(memcmp(body, crash_hdr, hl) == 0, "%s: header", ids[i]);
		char *want = xmalloc(len - hl + 1);
		fill_body(want, len - hl, ids[i]);
		cr_expect(memcmp(body + hl, want, len - hl) == 0, "%s: octets differ", ids[i]);
		free(want);
		free(body);
		envelope_free(&env);
		nupdated += (size_t)updated;
	}
	free(ids);
	return nupdated;
}

Test(spool, crash_loses_nothing, .timeout = 120)
{
	srand((unsigned)getpid());
	size_t total_acked = 0, updated_in_hi = 0;
	for (int round = 0; round < 20; round++) {
		int p[2];
		cr_assert_eq(pipe(p), 0);
		pid_t pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			close(p[0]);
			crash_writer(p[1], (unsigned)rand(), round % 2);
		}
		close(p[1]);
		/* Wait for its first acknowledgement (so it is past start-up),
		 * let it run 0-60 ms more, then kill it mid-write, mid-fsync
		 * or mid-rename. */
		char first[QUEUEID_LEN + 1];
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int have_first = poll(&pfd, 1, 20000) == 1 &&
		                 read(p[0], first, sizeof(first)) == (ssize_t)sizeof(first);
		struct timespec ts = {0, (rand() % 60) * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_expect(WIFSIGNALED(status), "writer exited early: %d", WEXITSTATUS(status));

		/* Every acknowledged message is in exactly one queue. */
		cr_expect(have_first, "writer never acknowledged anything");
		char ack[QUEUEID_LEN + 1];
		ssize_t r = 0;
		int use_first = have_first;
		while (use_first || (r = read(p[0], ack, sizeof(ack))) == (ssize_t)sizeof(ack)) {
			if (use_first) {
				memcpy(ack, first, sizeof(ack));
				use_first = 0;
			}
			char id[QUEUEID_SIZE];
			memcpy(id, ack + 1, QUEUEID_LEN);
			id[QUEUEID_LEN] = '\0';
			int in_hi = exists_in(Q_HI, id), in_out = exists_in(Q_OUT, id);
			cr_expect(in_hi + in_out == 1, "%s acknowledged (%c) but hi=%d out=%d", id,
			          ack[0], in_hi, in_out);
			if (ack[0] == 'O')
				cr_expect(in_out, "%s: acknowledged update lost", id);
			total_acked++;
		}
		cr_expect_eq(r, 0, "partial ack record");
		close(p[0]);

		/* Nothing half-written is visible, and nothing went corrupt. */
		updated_in_hi = check_queue(Q_HI, 0);
		check_queue(Q_OUT, 1);
		cr_expect_eq(entries(Q_CORRUPT), 0);
		cr_expect_eq(entries(Q_HI), spool_count(&sp, Q_HI), "stray names in hi/");
		cr_expect_eq(entries(Q_OUT), spool_count(&sp, Q_OUT), "stray names in out/");
		/* What the writer left in incoming/ is what start-up removes. */
		spool_clean_incoming(&sp);
		cr_expect_eq(entries(Q_INCOMING), 0);
	}
	cr_expect(total_acked > 20, "writer acknowledged only %zu messages", total_acked);
	cr_log_info("crash test: %zu acknowledgements checked; %zu updated files left in hi/ by "
	            "a kill between the two renames of an update",
	            total_acked, updated_in_hi);
}
