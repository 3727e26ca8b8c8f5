/*
 * test_maildir.c: unit tests for the Maildir writer (src/deliver/maildir.c)
 * and the path template (src/common/maildir_path.c): expansion and
 * sanitising, unique names, the tmp/ -> new/
 * hand-off, byte-exact copies and the CRLF to LF conversion.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"
#include "maildir_path.h"

struct expand_case {
	const char *tmpl;
	const char *addr;
	const char *want; /* NULL: expansion must fail */
};

static const struct expand_case expand_cases[] = {
    {"/var/mail/%d/%u/", "Alice@Example.TEST", "/var/mail/example.test/alice"},
    {"/var/mail/%d/%u", "bob@example.test", "/var/mail/example.test/bob"},
    {"/home/%u/Maildir/", "Carol.Smith@x.test", "/home/carol.smith/Maildir"},
    {"/m/%a", "Dan@X.Test", "/m/dan@x.test"},
    {"/m/100%%/%u", "eve@x.test", "/m/100%/eve"},
    {"/m/%d/%u", "a/b@x.test", "/m/x.test/a_b"},
    {"/m/%d/%u", "../../etc@x.test", "/m/x.test/_._.._etc"},
    {"/m/%d/%u", ".hidden@x.test", "/m/x.test/_hidden"},
    {"/m/%d/%u", "..@x.test", "/m/x.test/_."},
    {"/m/%d/%u", "a.b.@x.test", "/m/x.test/a.b."},
    {"/m/%u.box", ".x@x.test", "/m/_x.box"},
    {"/m/x%u", ".x@x.test", "/m/x.x"},
    {"/m/%a", "/etc/passwd@x.test", "/m/_etc_passwd@x.test"},
    {"/m/%d/%u", "\"john doe\"@x.test", "/m/x.test/\"john doe\""},
    {"/m/%d/%u", "postmaster", NULL},
    {"/m/%u", "@x.test", NULL},
    {"/m/%u", "", NULL},
    {"relative/%u", "a@x.test", NULL},
    {"/m/%x/%u", "a@x.test", NULL},
    {"/m/%u%", "a@x.test", NULL},
    {"/m/../%u", "a@x.test", NULL},
    {"/m/./%u", "a@x.test", NULL},
    {"/", "a@x.test", "/"},
    /* SMTPUTF8: the local part octet for octet (ASCII lower-cased only),
     * the domain as its A-label, whichever form the address used. */
    {"/m/%d/%u",
     "J\xc3\x96rg@B\xc3\xbc"
     "cher.example",
     "/m/xn--bcher-kva.example/j\xc3\x96rg"},
    {"/m/%d/%u", "j\xc3\xb6rg@xn--bcher-kva.example", "/m/xn--bcher-kva.example/j\xc3\xb6rg"},
    {"/m/%a",
     "\xe7\x94\xa8\xe6\x88\xb7@b\xc3\xbc"
     "cher.example",
     "/m/\xe7\x94\xa8\xe6\x88\xb7@xn--bcher-kva.example"},
    {"/m/%d/%u", ".\xc3\xa9t\xc3\xa9/x@x.test", "/m/x.test/_\xc3\xa9t\xc3\xa9_x"},
};

Test(maildir, expand_table)
{
	for (size_t i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
		const struct expand_case *c = &expand_cases[i];
		char out[PATH_MAX], err[256] = "";
		int r = maildir_expand(c->tmpl, c->addr, out, sizeof(out), err, sizeof(err));
		if (c->want == NULL) {
			cr_expect_eq(r, -1, "expand('%s', '%s') should fail, gave '%s'", c->tmpl,
			             c->addr, r == 0 ? out : "");
			if (r == -1)
				cr_expect_neq(err[0], '\0', "no reason for '%s'", c->addr);
		} else {
			cr_expect_eq(r, 0, "expand('%s', '%s') failed: %s", c->tmpl, c->addr, err);
			if (r == 0)
				cr_expect_str_eq(out, c->want, "expand('%s', '%s')", c->tmpl,
				                 c->addr);
		}
	}
}

Test(maildir, expand_too_long)
{
	char out[16], err[256];
	cr_expect_eq(maildir_expand("/var/mail/%d/%u", "someone@example.test", out, sizeof(out),
	                            err, sizeof(err)),
	             -1);
}

Test(maildir, unique_names)
{
	char a[512], b[512];
	regex_t re;
	cr_assert_eq(
	    regcomp(&re, "^[0-9]+\\.M[0-9]{6}P[0-9]+Q[0-9]+\\.[^/:]+$", REG_EXTENDED | REG_NOSUB),
	    0);
	maildir_unique("mx.example.test", a, sizeof(a));
	maildir_unique("mx.example.test", b, sizeof(b));
	cr_expect_eq(regexec(&re, a, 0, NULL, 0), 0, "bad unique name '%s'", a);
	cr_expect_neq(strcmp(a, b), 0, "two unique names are equal: %s", a);
	maildir_unique("we/ird:host", a, sizeof(a));
	cr_expect_eq(regexec(&re, a, 0, NULL, 0), 0, "bad unique name '%s'", a);
	cr_expect(strstr(a, ".we\\057ird\\072host") != NULL, "host not escaped: %s", a);
	regfree(&re);
}

/* A fake spool file: an envelope-like prefix, then the message. */
struct fixture {
	char root[64];
	char dir[PATH_MAX];
	int fd;
	off_t body_off;
	uint64_t size;
};

static void fixture_make(struct fixture *fx, const char *body, size_t len)
{
	static const char prefix[] = "tempomx-envelope 1\nsender x@y\nend\n";
	snprintf(fx->root, sizeof(fx->root), "/tmp/test_maildir.XXXXXX");
	cr_assert_not_null(mkdtemp(fx->root));
	char spool[PATH_MAX];
	snprintf(spool, sizeof(spool), "%s/spoolfile", fx->root);
	fx->fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fx->fd, 0);
	cr_assert_eq(write(fx->fd, prefix, sizeof(prefix) - 1), (ssize_t)(sizeof(prefix) - 1));
	cr_assert_eq(write(fx->fd, body, len), (ssize_t)len);
	fx->body_off = sizeof(prefix) - 1;
	fx->size = len;
	snprintf(fx->dir, sizeof(fx->dir), "%s/mail/example.test/alice", fx->root);
}

static void fixture_free(struct fixture *fx)
{
	char cmd[PATH_MAX + 16];
	close(fx->fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
	cr_expect_eq(system(cmd), 0);
}

/* Names of the files in dir/sub; returns the count, the first in first. */
static int list_dir(const char *dir, const char *sub, char *first, size_t size)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	DIR *d = opendir(p);
	cr_assert_not_null(d, "opendir %s: %s", p, strerror(errno));
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0 && first)
			snprintf(first, size, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static char *read_file(const char *path, size_t *lenp)
{
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s", path);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	char *buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*lenp = (size_t)st.st_size;
	return buf;
}

static void deliver_ok(struct fixture *fx, const char *sender, int crlf, char *path, size_t size)
{
	struct maildir_delivery md = {
	    .dir = fx->dir,
	    .sender = sender,
	    .rcpt = "alice@example.test",
	    .hostname = "mx.example.test",
	    .fd = fx->fd,
	    .body_off = fx->body_off,
	    .size = fx->size,
	    .crlf = crlf,
	};
	char err[512] = "";
	cr_assert_eq(maildir_deliver(&md, path, size, err, sizeof(err)), 0, "deliver: %s", err);
}

static void expect_file(const char *path, const char *want, size_t wlen)
{
	size_t len;
	char *got = read_file(path, &len);
	cr_expect_eq(len, wlen, "%s: %zu octets, expected %zu", path, len, wlen);
	if (len == wlen)
		cr_expect_eq(memcmp(got, want, len), 0, "%s: content differs", path);
	free(got);
}

Test(maildir, creates_maildir_and_moves_to_new)
{
	static const char body[] = "Subject: hi\r\n\r\nhello\r\n";
	struct fixture fx;
	char path[PATH_MAX], name[512];
	struct stat st;

	fixture_make(&fx, body, sizeof(body) - 1);
	deliver_ok(&fx, "bob@example.org", 1, path, sizeof(path));
	static const char *const subs[] = {"", "/tmp", "/new", "/cur"};
	for (size_t i = 0; i < 4; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s%s", fx.dir, subs[i]);
		cr_assert_eq(stat(p, &st), 0, "%s missing", p);
		cr_expect(S_ISDIR(st.st_mode));
		cr_expect_eq(st.st_mode & 0777, 0700, "%s mode %o", p, st.st_mode & 0777);
	}
	cr_expect_eq(list_dir(fx.dir, "tmp", NULL, 0), 0, "tmp/ not empty");
	cr_expect_eq(list_dir(fx.dir, "cur", NULL, 0), 0, "cur/ not empty");
	cr_assert_eq(list_dir(fx.dir, "new", name, sizeof(name)), 1);
	char want_path[PATH_MAX + 600];
	snprintf(want_path, sizeof(want_path), "%s/new/%s", fx.dir, name);
	cr_expect_str_eq(path, want_path);
	cr_expect_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	fixture_free(&fx);
}

Test(maildir, byte_exact_with_crlf)
{
	/* Every octet value, with CR LF, bare CR and bare LF mixed in. */
	char body[600];
	size_t n = 0;
	n += (size_t)snprintf(body, sizeof(body), "Subject: all octets\r\n\r\n");
	for (int c = 0; c < 256; c++)
		body[n++] = (char)c;
	memcpy(body + n, "\r\nbare\rcr\nlf\r\n", 14);
	n += 14;
	struct fixture fx;
	char path[PATH_MAX];
	fixture_make(&fx, body, n);
	deliver_ok(&fx, "bob@example.org", 1, path, sizeof(path));

	char want[1000];
	static const char head[] = "Return-Path: <bob@example.org>\r\n"
	                           "Delivered-To: alice@example.test\r\n";
	memcpy(want, head, sizeof(head) - 1);
	memcpy(want + sizeof(head) - 1, body, n);
	expect_file(path, want, sizeof(head) - 1 + n);
	fixture_free(&fx);
}

Test(maildir, crlf_to_lf)
{
	static const char body[] = "Subject: x\r\n\r\nline 1\r\nbare\rcr\nand lf\r\r\nend\r";
	static const char want[] = "Return-Path: <>\nDelivered-To: alice@example.test\n"
	                           "Subject: x\n\nline 1\nbare\rcr\nand lf\r\nend\r";
	struct fixture fx;
	char path[PATH_MAX];
	fixture_make(&fx, body, sizeof(body) - 1);
	deliver_ok(&fx, "", 0, path, sizeof(path));
	expect_file(path, want, sizeof(want) - 1);
	fixture_free(&fx);
}

Test(maildir, crlf_to_lf_across_chunks)
{
	/* Lines of varying length so CR LF pairs fall on every alignment,
	 * including split across the writer's 64 KB reads. */
	size_t cap = 300 * 1024;
	char *body = malloc(cap), *want = malloc(cap);
	cr_assert(body && want);
	size_t n = 0, w = 0;
	static const char head[] = "Return-Path: <s@x.test>\nDelivered-To: alice@example.test\n";
	memcpy(want, head, sizeof(head) - 1);
	w = sizeof(head) - 1;
	/* The writer reads 64 KB at a time from the message start: make
	 * some CRs the last octet of a read, their LF the first of the next. */
	size_t boundary = 64 * 1024 - 1, splits = 0;
	for (unsigned line = 0; n + 200 < cap; line++) {
		size_t len = (line * 7919u) % 150;
		if (n <= boundary && n + len >= boundary) {
			len = boundary - n;
			boundary += 64 * 1024;
			splits++;
		}
		for (size_t i = 0; i < len; i++) {
			char c = (char)('a' + (line + i) % 26);
			body[n++] = c;
			want[w++] = c;
		}
		body[n++] = '\r';
		body[n++] = '\n';
		want[w++] = '\n';
	}
	cr_assert_geq(splits, 4);
	struct fixture fx;
	char path[PATH_MAX];
	fixture_make(&fx, body, n);
	deliver_ok(&fx, "s@x.test", 0, path, sizeof(path));
	expect_file(path, want, w);

	/* The same message with CRLF kept is byte-exact. */
	char path2[PATH_MAX];
	deliver_ok(&fx, "s@x.test", 1, path2, sizeof(path2));
	size_t len;
	char *got = read_file(path2, &len);
	static const char head2[] =
	    "Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\n";
	cr_expect_eq(len, sizeof(head2) - 1 + n);
	cr_expect_eq(memcmp(got, head2, sizeof(head2) - 1), 0);
	cr_expect_eq(memcmp(got + sizeof(head2) - 1, body, n), 0);
	free(got);
	free(body);
	free(want);
	fixture_free(&fx);
}

Test(maildir, unique_files_for_each_delivery)
{
	static const char body[] = "Subject: x\r\n\r\nx\r\n";
	struct fixture fx;
	char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
	fixture_make(&fx, body, sizeof(body) - 1);
	deliver_ok(&fx, "a@b.test", 1, p1, sizeof(p1));
	deliver_ok(&fx, "a@b.test", 1, p2, sizeof(p2));
	deliver_ok(&fx, "a@b.test", 1, p3, sizeof(p3));
	cr_expect_str_neq(p1, p2);
	cr_expect_str_neq(p2, p3);
	cr_expect_eq(list_dir(fx.dir, "new", NULL, 0), 3);
	cr_expect_eq(list_dir(fx.dir, "tmp", NULL, 0), 0);
	fixture_free(&fx);
}

Test(maildir, header_injection_is_dropped)
{
	static const char body[] = "\r\n";
	struct fixture fx;
	char path[PATH_MAX];
	fixture_make(&fx, body, sizeof(body) - 1);
	struct maildir_delivery md = {
	    .dir = fx.dir,
	    .sender = "a@b\r\nX-Evil: 1",
	    .rcpt = "alice@example.test",
	    .hostname = "h",
	    .fd = fx.fd,
	    .body_off = fx.body_off,
	    .size = fx.size,
	    .crlf = 1,
	};
	char err[256];
	cr_assert_eq(maildir_deliver(&md, path, sizeof(path), err, sizeof(err)), 0, "%s", err);
	static const char want[] = "Return-Path: <a@bX-Evil: 1>\r\n"
	                           "Delivered-To: alice@example.test\r\n\r\n";
	expect_file(path, want, sizeof(want) - 1);
	fixture_free(&fx);
}

Test(maildir, error_when_maildir_cannot_be_made)
{
	static const char body[] = "x\r\n";
	struct fixture fx;
	fixture_make(&fx, body, sizeof(body) - 1);
	/* A regular file where a directory should be: mkdir fails. */
	char blocker[PATH_MAX];
	snprintf(blocker, sizeof(blocker), "%s/mail", fx.root);
	int bfd = open(blocker, O_WRONLY | O_CREAT, 0600);
	cr_assert_geq(bfd, 0);
	close(bfd);
	struct maildir_delivery md = {
	    .dir = fx.dir,
	    .sender = "",
	    .rcpt = "alice@example.test",
	    .hostname = "h",
	    .fd = fx.fd,
	    .body_off = fx.body_off,
	    .size = fx.size,
	    .crlf = 1,
	};
	char err[512] = "", path[PATH_MAX] = "";
	errno = 0;
	cr_expect_eq(maildir_deliver(&md, path, sizeof(path), err, sizeof(err)), -1);
	cr_expect_eq(errno, ENOTDIR, "errno %d (%s)", errno, strerror(errno));
	cr_expect(strstr(err, "mkdir") != NULL, "reason: %s", err);
	fixture_free(&fx);
}

Test(maildir, error_on_unreadable_spool_file)
{
	static const char body[] = "x\r\n";
	struct fixture fx;
	fixture_make(&fx, body, sizeof(body) - 1);
	struct maildir_delivery md = {
	    .dir = fx.dir,
	    .sender = "",
	    .rcpt = "alice@example.test",
	    .hostname = "h",
	    .fd = -1, /* a read error in the middle of the copy */
	    .body_off = fx.body_off,
	    .size = fx.size,
	    .crlf = 1,
	};
	char err[512] = "", path[PATH_MAX];
	cr_expect_eq(maildir_deliver(&md, path, sizeof(path), err, sizeof(err)), -1);
	cr_expect(strstr(err, "read") != NULL, "reason: %s", err);
	/* Nothing half-written is left behind, and nothing reached new/. */
	cr_expect_eq(list_dir(fx.dir, "tmp", NULL, 0), 0);
	cr_expect_eq(list_dir(fx.dir, "new", NULL, 0), 0);
	fixture_free(&fx);
}
