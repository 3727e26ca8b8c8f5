/*
 * harness_conf.c: the temporary directory of each daemon under test and
 * its configuration file (h_daemon_init, h_set, h_unset, h_conf_append,
 * h_write_conf), the user the daemon runs as, and free loopback ports.
 * Part of libharness.a (see harness.c).
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

/* ---- daemon configuration ---- */

void h_run_user(uid_t *uid, gid_t *gid, char *name, size_t size)
{
	struct passwd *pw;

	if (geteuid() == 0) {
		pw = getpwnam("nobody");
		cr_assert_not_null(pw, "no user nobody");
	} else {
		pw = getpwuid(geteuid());
		cr_assert_not_null(pw, "cannot find my own user name");
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	snprintf(name, size, "%s", pw->pw_name);
}

void h_chown_run_user(const char *path)
{
	char user[64];
	uid_t uid;
	gid_t gid;

	h_run_user(&uid, &gid, user, sizeof(user));
	cr_assert_eq(chown(path, uid, gid), 0, "chown %s: %s", path, strerror(errno));
}

/* A port that was free a moment ago, outside the kernel's ephemeral range
 * so client sockets of parallel tests do not take it. */
int h_free_port(void)
{
	static unsigned seed;

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)h_now_ms();
	for (int tries = 0; tries < 200; tries++) {
		int port = 20000 + (int)(rand_r(&seed) % 12000);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		cr_assert(fd >= 0);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	cr_assert_fail("no free port found");
	return -1;
}

void h_daemon_init(struct h_daemon *d)
{
	char user[64];
	uid_t uid;
	gid_t gid;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/tmx-itest.XXXXXX");
	cr_assert_not_null(mkdtemp(d->dir), "mkdtemp: %s", strerror(errno));
	/* The children run as an unprivileged user: they must be able to
	 * walk through the directory to reach the spool and the Maildirs. */
	cr_assert_eq(chmod(d->dir, 0755), 0);
	snprintf(d->conf, sizeof(d->conf), "%s/tempomx.conf", d->dir);
	snprintf(d->spool, sizeof(d->spool), "%s/spool", d->dir);
	snprintf(d->mail, sizeof(d->mail), "%s/mail", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
	h_run_user(&uid, &gid, user, sizeof(user));
	cr_assert_eq(mkdir(d->mail, 0755), 0);
	cr_assert_eq(chown(d->mail, uid, gid), 0, "chown %s: %s", d->mail, strerror(errno));
	h_registry_add(d);

	d->port = h_free_port();
	h_set(d, "listen", "127.0.0.1:%d", d->port);
	h_set(d, "spool_directory", "%s", d->spool);
	h_set(d, "user", "%s", user);
	h_set(d, "maildir", "%s/%%d/%%u/", d->mail);
	h_set(d, "maildir_create", "yes"); /* tests send to arbitrary users */
	/* The tests compare Maildir files with the octets sent over SMTP;
	 * the LF default has its own test (test_delivery). */
	h_set(d, "maildir_crlf", "yes");
	h_set(d, "hostname", "mx.example.test");
	h_set(d, "scan", "no");
	h_set(d, "command_timeout", "30s");
	h_set(d, "data_timeout", "30s");
	h_set(d, "shutdown_grace", "2s");
	h_set(d, "queue_rescan_interval", "2s");
	/* The timing classifier's probing delays (split banner, delayed
	 * reply) would slow every test down; t/integration/test_classify.c
	 * sets its own. */
	h_set(d, "greet_pause", "0");
	h_set(d, "patience_delay", "0");
	/* The client's name would be asked of the system's DNS servers,
	 * which a test machine may not reach, before every greeting;
	 * t/integration/test_rdns.c runs its own. */
	h_set(d, "reverse_dns", "no");
}

void h_set(struct h_daemon *d, const char *key, const char *fmt, ...)
{
	char val[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < d->nkeys; i++) {
		if (strcmp(d->keys[i], key) == 0) {
			free(d->values[i]);
			d->values[i] = strdup(val);
			return;
		}
	}
	cr_assert_lt(d->nkeys, (size_t)H_MAXKEYS);
	d->keys[d->nkeys] = strdup(key);
	d->values[d->nkeys] = strdup(val);
	d->nkeys++;
}

void h_unset(struct h_daemon *d, const char *key)
{
	for (size_t i = 0; i < d->nkeys; i++) {
		if (strcmp(d->keys[i], key) == 0) {
			free(d->keys[i]);
			free(d->values[i]);
			memmove(&d->keys[i], &d->keys[i + 1], (d->nkeys - i - 1) * sizeof(char *));
			memmove(&d->values[i], &d->values[i + 1],
			        (d->nkeys - i - 1) * sizeof(char *));
			d->nkeys--;
			return;
		}
	}
}

void h_conf_append(struct h_daemon *d, const char *text)
{
	size_t old = d->extra ? strlen(d->extra) : 0;

	d->extra = realloc(d->extra, old + strlen(text) + 1);
	cr_assert_not_null(d->extra);
	memcpy(d->extra + old, text, strlen(text) + 1);
}

int h_write_conf(struct h_daemon *d)
{
	char tmp[H_PATH + 8];
	FILE *fp;
	int lines = 0;

	/* Write a new file and rename it, so a daemon re-reading it on
	 * SIGHUP never sees half of it. */
	snprintf(tmp, sizeof(tmp), "%s.new", d->conf);
	fp = fopen(tmp, "w");
	cr_assert_not_null(fp, "%s: %s", tmp, strerror(errno));
	fprintf(fp, "# written by the integration test harness\n");
	lines++;
	for (size_t i = 0; i < d->nkeys; i++) {
		fprintf(fp, "%s = %s\n", d->keys[i], d->values[i]);
		lines++;
	}
	if (d->extra) {
		fputs(d->extra, fp);
		for (const char *p = d->extra; *p; p++)
			lines += *p == '\n';
	}
	cr_assert_eq(fclose(fp), 0);
	cr_assert_eq(rename(tmp, d->conf), 0);
	return lines;
}
