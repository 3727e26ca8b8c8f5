/*
 * test_recycle.c: unit tests for src/spool/recycle.c through the spool
 * API: released and aborted files wait in spare/, the next message reuses
 * one (same inode, old octets gone), large files and a full pool are
 * unlinked instead, strange files left in spare/ are never reused, and an
 * envelope update keeps the replaced file for reuse.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "util.h"

static char tmpdir[64];
static char spooldir[128];
static struct spool sp;

static void setup(void)
{
	log_init("test_recycle", 1, 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tmx-recycle-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
	char err[256];
	cr_assert_eq(spool_prepare(spooldir, getuid(), getgid(), err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(spool_open(&sp, spooldir), 0);
	cr_assert_geq(sp.sparefd, 0, "spool_open did not open spare/");
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

TestSuite(recycle, .init = setup, .fini = teardown);

static void make_env(struct envelope *env)
{
	envelope_init(env);
	env->arrival_usec = wall_usec();
	env->client_addr = xstrdup("192.0.2.7");
	env->client_port = 40000;
	env->client_name = xstrdup("unknown");
	env->helo = xstrdup("writer.example.test");
	env->protocol = xstrdup("ESMTP");
	env->sender = xstrdup("sender@example.test");
	envelope_add_rcpt(env, "rcpt@example.test", NULL);
}

/* Receive a message of len octets, all of them `fill`, into queue q. */
static void commit_message(size_t len, char fill, enum spool_queue q, char *id_out)
{
	struct envelope env;
	struct spool_file sf;
	make_env(&env);
	cr_assert_eq(spool_create(&sp, &env, &sf), 0, "spool_create: %s", strerror(errno));
	char *body = xmalloc(len);
	memset(body, fill, len);
	cr_assert_eq(spool_write(&sf, body, len), 0);
	free(body);
	cr_assert_eq(spool_commit(&sp, &sf, len, q), 0, "spool_commit: %s", strerror(errno));
	memcpy(id_out, sf.id, QUEUEID_SIZE);
	envelope_free(&env);
}

static size_t spare_count(void)
{
	int fd = openat(sp.sparefd, ".", O_RDONLY | O_DIRECTORY);
	DIR *d = fdopendir(fd);
	cr_assert_not_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static ino_t inode_of(int dirfd, const char *name)
{
	struct stat st;
	cr_assert_eq(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW), 0, "%s: %s", name,
	             strerror(errno));
	return st.st_ino;
}

/* The message in q/id has exactly len octets of `fill` after its envelope. */
static void expect_body(enum spool_queue q, const char *id, size_t len, char fill)
{
	struct envelope env;
	int fd = -1;
	size_t off;
	cr_assert_eq(spool_open_message(&sp, q, id, &env, &off, &fd), 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq((size_t)st.st_size, off + len, "file has %lld octets, want %zu",
	             (long long)st.st_size, off + len);
	char *buf = xmalloc(len + 1);
	cr_assert_eq(pread(fd, buf, len + 1, (off_t)off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(buf[i], fill, "octet %zu is %02x", i, (unsigned char)buf[i]);
	free(buf);
	close(fd);
	envelope_free(&env);
}

Test(recycle, released_file_is_reused_without_old_octets)
{
	char a[QUEUEID_SIZE], b[QUEUEID_SIZE];
	commit_message(8000, 'a', Q_OUT, a);
	ino_t ino = inode_of(sp.dirfd[Q_OUT], a);
	cr_assert_eq(spool_release(&sp, Q_OUT, a), 0);
	cr_expect_eq(spare_count(), 1);
	cr_expect_eq(inode_of(sp.sparefd, a), ino);

	/* A shorter message in the same inode: nothing of the old one may
	 * survive past its end. */
	commit_message(100, 'b', Q_HI, b);
	cr_expect_eq(spare_count(), 0);
	cr_expect_eq(inode_of(sp.dirfd[Q_HI], b), ino, "the spare file was not reused");
	expect_body(Q_HI, b, 100, 'b');
	struct stat st;
	cr_assert_eq(fstatat(sp.dirfd[Q_HI], b, &st, 0), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
}

Test(recycle, large_files_are_unlinked)
{
	char a[QUEUEID_SIZE];
	commit_message(200 * 1024, 'x', Q_OUT, a);
	cr_assert_eq(spool_release(&sp, Q_OUT, a), 0);
	cr_expect_eq(spare_count(), 0);
	cr_expect_eq(spool_release(&sp, Q_OUT, a), -1);
	cr_expect_eq(errno, ENOENT);
}

Test(recycle, aborted_message_is_kept_for_reuse)
{
	struct envelope env;
	struct spool_file sf;
	make_env(&env);
	cr_assert_eq(spool_create(&sp, &env, &sf), 0);
	cr_assert_eq(spool_write(&sf, "partial\r\n", 9), 0);
	spool_abort(&sp, &sf);
	envelope_free(&env);
	cr_expect_eq(spare_count(), 1);
	char b[QUEUEID_SIZE];
	commit_message(50, 'c', Q_LO, b);
	cr_expect_eq(spare_count(), 0);
	expect_body(Q_LO, b, 50, 'c');
}

Test(recycle, remove_is_durable_and_recycles)
{
	char a[QUEUEID_SIZE];
	commit_message(500, 'r', Q_DEFERRED, a);
	cr_assert_eq(spool_remove(&sp, Q_DEFERRED, a), 0);
	struct stat st;
	cr_expect_eq(fstatat(sp.dirfd[Q_DEFERRED], a, &st, 0), -1);
	cr_expect_eq(spare_count(), 1);
}

Test(recycle, update_keeps_the_replaced_file)
{
	char a[QUEUEID_SIZE];
	commit_message(300, 'u', Q_OUT, a);
	ino_t old = inode_of(sp.dirfd[Q_OUT], a);
	struct envelope env;
	cr_assert_eq(spool_read(&sp, Q_OUT, a, &env, NULL), 0);
	env.attempts = 3;
	cr_assert_eq(spool_update(&sp, Q_OUT, a, &env, NULL, Q_DEFERRED), 0);
	envelope_free(&env);
	cr_expect_neq(inode_of(sp.dirfd[Q_DEFERRED], a), old);
	cr_expect_eq(spare_count(), 1, "the replaced file is not in spare/");
	expect_body(Q_DEFERRED, a, 300, 'u');
	/* A second update reuses the file the first one set aside. */
	cr_assert_eq(spool_read(&sp, Q_DEFERRED, a, &env, NULL), 0);
	cr_assert_eq(spool_update(&sp, Q_DEFERRED, a, &env, NULL, Q_DEFERRED), 0);
	envelope_free(&env);
	cr_expect_eq(inode_of(sp.dirfd[Q_DEFERRED], a), old);
	cr_expect_eq(spare_count(), 1);
	expect_body(Q_DEFERRED, a, 300, 'u');
	cr_expect_eq(spool_count(&sp, Q_INCOMING), 0);
}

Test(recycle, strange_spare_files_are_not_reused)
{
	/* A symbolic link, a directory and a file with two links: none is
	 * ours to reuse; the message gets a fresh file. */
	cr_assert_eq(symlinkat("/etc/passwd", sp.sparefd, "link"), 0);
	cr_assert_eq(mkdirat(sp.sparefd, "dir", 0700), 0);
	int fd = openat(sp.sparefd, "two", O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(linkat(sp.sparefd, "two", sp.rootfd, "other-name", 0), 0);
	char b[QUEUEID_SIZE];
	for (int i = 0; i < 4; i++) {
		commit_message(10, 'z', Q_HI, b);
		expect_body(Q_HI, b, 10, 'z');
	}
	struct stat st;
	cr_expect_eq(fstatat(sp.sparefd, "dir", &st, 0), 0, "the directory was moved");
	cr_expect_eq(spool_count(&sp, Q_INCOMING), 0);
	cr_assert_eq(stat("/etc/passwd", &st), 0);
	cr_expect_gt(st.st_size, 10, "/etc/passwd was truncated");
}

Test(recycle, pool_is_bounded)
{
	/* At most RECYCLE_MAX_FILES (2048) spare files, give or take the
	 * RECYCLE_RECOUNT (256) puts between two counts of spare/: releasing
	 * 300 messages into a pool that someone else already filled to 2600
	 * must unlink most of them. */
	enum { N = 300 };
	static char ids[N][QUEUEID_SIZE];
	for (int i = 0; i < N; i++)
		commit_message(10, 'p', Q_OUT, ids[i]);
	cr_assert_eq(spare_count(), 0);
	for (int i = 0; i < 2600; i++) {
		char name[64];
		snprintf(name, sizeof(name), "filler-%d", i);
		int fd = openat(sp.sparefd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
		cr_assert_geq(fd, 0);
		close(fd);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(spool_release(&sp, Q_OUT, ids[i]), 0);
	size_t n = spare_count();
	cr_expect_leq(n, 2600 + 256, "spare/ grew to %zu files", n);
	cr_expect_eq(spool_count(&sp, Q_OUT), 0);
}
