/*
 * harness.c: the core of the integration-test harness (see harness.h):
 * clock and sleeps, the suite hooks with the registry of daemons and
 * processes each test started, source and binary paths, small file
 * helpers. The other topics live beside it: harness_conf.c (a daemon's
 * directory and configuration), harness_daemon.c (the daemon process, its
 * children and log), harness_spool.c (spool and Maildir checks),
 * harness_smtp.c (the raw SMTP client) and harness_run.c (external
 * commands). They are built once into libharness.a, which every program in
 * t/integration/ links.
 *
 * Every wait loop of the harness has a deadline; nothing blocks without
 * one (sockets are polled, sends carry SO_SNDTIMEO). The harness never
 * signals a process it did not start: the daemon is signalled by the PID
 * fork() returned, and only when SIGTERM does not stop it are its own
 * direct children (found by their parent PID in /proc) killed as well.
 */
#include "harness.h"
#include "harness_int.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TMX_TOP_SRCDIR
#define TMX_TOP_SRCDIR "."
#endif

#define H_MAX_DAEMONS 8
#define H_MAX_TRACKED 64

static struct h_daemon *registry[H_MAX_DAEMONS];
static pid_t tracked[H_MAX_TRACKED];

/* Leak checking is for the daemon, a separate program whose log is
 * checked after every stop; a test that fails an assertion half-way
 * leaves its buffers behind by design, which is no finding. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return 1;
}

/* ---- time ---- */

long long h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- registry and suite hooks ---- */

void h_setup(void)
{
	memset(registry, 0, sizeof(registry));
	memset(tracked, 0, sizeof(tracked));
	/* A client that dies under us must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
}

void h_teardown(void)
{
	for (size_t i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked[i] > 0) {
			kill(tracked[i], SIGKILL);
			waitpid(tracked[i], NULL, 0);
			tracked[i] = 0;
		}
	}
	for (size_t i = 0; i < H_MAX_DAEMONS; i++) {
		if (registry[i]) {
			h_daemon_kill(registry[i]);
			h_daemon_free(registry[i]);
		}
	}
}

void h_track(pid_t pid)
{
	for (size_t i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked[i] == 0) {
			tracked[i] = pid;
			return;
		}
	}
}

void h_untrack(pid_t pid)
{
	for (size_t i = 0; i < H_MAX_TRACKED; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

void h_registry_add(struct h_daemon *d)
{
	for (size_t i = 0; i < H_MAX_DAEMONS; i++) {
		if (registry[i] == d)
			return;
	}
	for (size_t i = 0; i < H_MAX_DAEMONS; i++) {
		if (!registry[i]) {
			registry[i] = d;
			return;
		}
	}
	cr_assert_fail("too many daemons in one test");
}

void h_registry_del(struct h_daemon *d)
{
	for (size_t i = 0; i < H_MAX_DAEMONS; i++)
		if (registry[i] == d)
			registry[i] = NULL;
}

/* ---- paths ---- */

const char *h_tempomxd(void)
{
	static char path[H_PATH];
	const char *e = getenv("TEMPOMXD");

	if (e && *e)
		return e;
	e = getenv("TMX_BUILDDIR");
	snprintf(path, sizeof(path), "%s/tempomxd", e && *e ? e : ".");
	return path;
}

void h_srcpath(const char *rel, char *out, size_t size)
{
	const char *e = getenv("TMX_SRCDIR");

	snprintf(out, size, "%s/%s", e && *e ? e : TMX_TOP_SRCDIR, rel);
}

/* ---- files ---- */

char *h_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536, n = 0;
	char *buf;

	if (fd == -1)
		return NULL;
	buf = malloc(cap + 1);
	cr_assert_not_null(buf);
	for (;;) {
		ssize_t r;

		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			cr_assert_not_null(buf);
		}
		r = read(fd, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int h_write_file(const char *path, const void *buf, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const char *p = buf;

	if (fd == -1)
		return -1;
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}

int h_contains(const char *hay, size_t haylen, const char *needle)
{
	return hay && memmem(hay, haylen, needle, strlen(needle)) != NULL;
}

int h_count(const char *hay, size_t haylen, const char *needle)
{
	size_t nl = strlen(needle);
	const char *p = hay, *end = hay + haylen;
	int n = 0;

	if (!hay || nl == 0)
		return 0;
	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), needle, nl);

		if (!q)
			break;
		n++;
		p = q + nl;
	}
	return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void h_rm_tree(const char *dir)
{
	if (dir[0] == '\0' || strncmp(dir, "/tmp/", 5) != 0)
		return; /* only ever our own mkdtemp directories */
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
