/*
 * test_history_store.c: unit tests for the history store's settings
 * (src/history/redis_proto.c, backend.c): every form of history_store,
 * the refusals with their reasons, the AUTH password file and its
 * permissions, and a store without Redis answering as LMDB does.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "history_store.h"

static char tmpdir[64];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_history_store.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		cr_log_warn("cannot remove %s", tmpdir);
}

TestSuite(history_store, .init = setup, .fini = teardown, .timeout = 30);

Test(history_store, remote_forms)
{
	struct history_remote r;
	int remote = -1;
	char err[256];

	cr_assert_eq(history_remote_parse("lmdb", &r, &remote, err, sizeof(err)), 0);
	cr_expect_eq(remote, 0);
	cr_assert_eq(history_remote_parse("", &r, &remote, err, sizeof(err)), 0);
	cr_expect_eq(remote, 0);

	cr_assert_eq(history_remote_parse("redis://127.0.0.1:6379", &r, &remote, err, sizeof(err)),
	             0, "%s", err);
	cr_expect_eq(remote, 1);
	cr_expect_str_eq(r.host, "127.0.0.1");
	cr_expect_eq(r.port, 6379);
	cr_expect_eq(r.db, 0);
	cr_expect_eq(r.unix_socket, 0);

	cr_assert_eq(history_remote_parse("redis://[::1]:6380/2", &r, &remote, err, sizeof(err)), 0,
	             "%s", err);
	cr_expect_str_eq(r.host, "::1");
	cr_expect_eq(r.port, 6380);
	cr_expect_eq(r.db, 2);

	cr_assert_eq(history_remote_parse("redis://mx-store.example.org:7000/15", &r, &remote, err,
	                                  sizeof(err)),
	             0, "%s", err);
	cr_expect_str_eq(r.host, "mx-store.example.org");
	cr_expect_eq(r.db, 15);

	cr_assert_eq(
	    history_remote_parse("unix:/run/redis/redis.sock?db=4", &r, &remote, err, sizeof(err)),
	    0, "%s", err);
	cr_expect_eq(r.unix_socket, 1);
	cr_expect_str_eq(r.path, "/run/redis/redis.sock");
	cr_expect_eq(r.db, 4);
	cr_expect_str_eq(r.text, "unix:/run/redis/redis.sock?db=4");

	cr_assert_eq(history_remote_parse("unix:/run/redis.sock", &r, &remote, err, sizeof(err)),
	             0);
	cr_expect_eq(r.db, 0);
}

Test(history_store, remote_refusals)
{
	static const struct {
		const char *spec, *why;
	} bad[] = {
	    {"redis://127.0.0.1", "port is missing"},
	    {"redis://127.0.0.1:", "bad port"},
	    {"redis://127.0.0.1:0", "bad port"},
	    {"redis://127.0.0.1:70000", "bad port"},
	    {"redis://127.0.0.1:6379/x", "database number"},
	    {"redis://user:pw@127.0.0.1:6379", "the password goes in history_redis_password_file"},
	    {"redis://[::1:6379", "[addr]:port"},
	    {"redis://:6379", "bad host"},
	    {"unix:run/redis.sock", "absolute path"},
	    {"unix:", "absolute path"},
	    {"unix:/run/redis.sock?db=x", "?db=N"},
	    {"unix:/run/redis.sock?database=1", "?db=N"},
	    {"memcache://127.0.0.1:11211", "expected lmdb, redis://"},
	    {"LMDB", "expected lmdb, redis://"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct history_remote r;
		int remote = -1;
		char err[256] = "";
		cr_expect_eq(history_remote_parse(bad[i].spec, &r, &remote, err, sizeof(err)), -1,
		             "%s accepted", bad[i].spec);
		cr_expect(strstr(err, bad[i].why) != NULL && strstr(err, bad[i].spec) != NULL,
		          "%s: '%s' does not say '%s'", bad[i].spec, err, bad[i].why);
	}
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(history_store, password_file)
{
	struct history_remote r;
	char err[512], path[128];
	memset(&r, 0, sizeof(r));
	snprintf(path, sizeof(path), "%s/pass", tmpdir);

	cr_expect_eq(history_remote_password("", &r, err, sizeof(err)), 0, "no file, no AUTH");
	cr_expect_str_eq(r.password, "");
	cr_expect_eq(history_remote_password(path, &r, err, sizeof(err)), -1);
	cr_expect(strstr(err, "No such file") != NULL, "%s", err);

	write_file(path, "s3cret\nignored second line\n", 0600);
	cr_assert_eq(history_remote_password(path, &r, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(r.password, "s3cret");
	write_file(path, "s3cret\r\n", 0640);
	cr_assert_eq(history_remote_password(path, &r, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(r.password, "s3cret");

	static const mode_t open_modes[] = {0644, 0604, 0660, 0602, 0606};
	for (size_t i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++) {
		write_file(path, "s3cret\n", open_modes[i]);
		cr_expect_eq(history_remote_password(path, &r, err, sizeof(err)), -1, "mode %03o",
		             (unsigned)open_modes[i]);
		cr_expect(strstr(err, "gives others access") != NULL, "%s", err);
	}
	write_file(path, "\n", 0600);
	cr_expect_eq(history_remote_password(path, &r, err, sizeof(err)), -1);
	cr_expect(strstr(err, "empty") != NULL, "%s", err);
	cr_expect_eq(history_remote_password(tmpdir, &r, err, sizeof(err)), -1, "a directory");
}

/* Without history_store, the store is the LMDB store behind history.h. */
Test(history_store, lmdb_only_answers_as_lmdb)
{
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/db", tmpdir);
	struct history_store_settings st = {.path = path,
	                                    .v4_prefix = 24,
	                                    .v6_prefix = 64,
	                                    .max_age = HISTORY_DEFAULT_MAX_AGE,
	                                    .remote = "lmdb"};
	struct history_store *s = history_store_open(&st, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_expect_str_eq(history_store_name(s), "lmdb");
	cr_expect_eq(history_store_remote_up(s), -1);

	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
	struct history_event ev = {.addr = (struct sockaddr *)&a,
	                           .flags = HISTORY_EV_SESSION | HISTORY_EV_LO | HISTORY_EV_JUNK,
	                           .now = 1000000};
	cr_assert_eq(history_store_record(s, &ev, 1), 0);
	struct history_entry h1, a1, h2, a2;
	cr_assert_eq(history_store_lookup(s, (struct sockaddr *)&a, 1000001, &h1, &a1), 0);
	cr_assert_eq(
	    history_lookup(history_store_local(s), (struct sockaddr *)&a, 1000001, &h2, &a2), 0);
	cr_expect(h1.present && a1.present);
	cr_expect_eq(h1.rec.junk, 1);
	cr_expect_eq(a1.rec.junk_hosts, 1);
	cr_expect_eq(memcmp(&h1, &h2, sizeof(h1)), 0);
	cr_expect_eq(memcmp(&a1, &a2, sizeof(a1)), 0);
	size_t removed = 0;
	cr_assert_eq(history_store_forget(s, &h1.net, &removed), 0);
	cr_expect_eq(removed, 1);
	history_store_close(s);

	/* A bad remote setting: logged, and the store works from LMDB. */
	st.remote = "redis://nowhere";
	s = history_store_open(&st, err, sizeof(err));
	cr_assert_not_null(s);
	cr_expect_str_eq(history_store_name(s), "lmdb");
	history_store_close(s);
}
