/*
 * admission.c: admission control of smtpd. When more than queue_max
 * messages wait for the scanner (hi/ and lo/ together) or the spool's file
 * system has less than spool_min_free free, new transactions are
 * tempfailed at DATA with 452 4.3.1, in class order: lo-bound ones above
 * queue_max, hi-bound ones only above twice queue_max or when the disk is
 * low. Nothing already accepted is ever dropped: this only refuses mail
 * the client still holds.
 *
 * Counting is cheap: a timer counts the directory entries once a second
 * (and statvfs()s the spool), never per message. Called by server.c (init,
 * free) and screen.c (the check at DATA).
 *
 * Test hook, only in builds configured with --enable-test-hooks: the
 * environment variable TEMPOMX_TEST_SPOOL_FREE, when set, replaces the
 * measured free space (octets), so the low-disk path can be tested without
 * filling a disk. Release builds never read it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "config.h"
#include "log.h"
#include "admission.h"
#include "util.h"

struct admission {
	struct event *tick;
	int64_t waiting;   /* entries in hi/ + lo/, at the last tick */
	int64_t free_oct;  /* free octets in the spool, -1 unknown */
	int64_t test_free; /* TEMPOMX_TEST_SPOOL_FREE, -1 unset */
	int shedding;      /* for logging the change once */
};

static int64_t count_entries(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return 0;
	}
	int64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void admission_measure(struct smtpd *srv)
{
	struct admission *a = srv->adm;
	const struct config *cf = srv->rt->cf;
	a->waiting = cf->queue_max > 0 ? count_entries(srv->spool.dirfd[Q_HI]) +
	                                     count_entries(srv->spool.dirfd[Q_LO])
	                               : 0;
	a->free_oct = -1;
	if (a->test_free >= 0) {
		a->free_oct = a->test_free;
	} else if (cf->spool_min_free > 0) {
		struct statvfs st;
		if (fstatvfs(srv->spool.rootfd, &st) == 0)
			a->free_oct = (int64_t)((uint64_t)st.f_bavail * st.f_frsize);
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	admission_measure(arg);
}

void admission_init(struct smtpd *srv)
{
	struct admission *a = xcalloc(1, sizeof(*a));
	srv->adm = a;
	a->test_free = -1;
#ifdef TEMPOMX_TEST_HOOKS
	const char *t = getenv("TEMPOMX_TEST_SPOOL_FREE");
	if (t && *t) {
		char *end;
		errno = 0;
		long long v = strtoll(t, &end, 10);
		if (errno == 0 && *end == '\0' && v >= 0)
			a->test_free = v;
	}
#endif
	admission_measure(srv);
	a->tick = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
	struct timeval tv = {1, 0};
	if (a->tick == NULL || event_add(a->tick, &tv) != 0)
		fatalx("smtpd: cannot add the admission timer");
}

void admission_free(struct smtpd *srv)
{
	if (srv->adm == NULL)
		return;
	if (srv->adm->tick)
		event_free(srv->adm->tick);
	free(srv->adm);
	srv->adm = NULL;
}

enum reply_id admission_check(struct smtpd *srv, int hi)
{
	struct admission *a = srv->adm;
	const struct config *cf = srv->rt->cf;
	if (a == NULL)
		return RPL_NONE;
	enum reply_id r = RPL_NONE;
	if (cf->spool_min_free > 0 && a->free_oct >= 0 &&
	    (uint64_t)a->free_oct < cf->spool_min_free)
		r = RPL_DISK_LOW;
	else if (cf->queue_max > 0 && a->waiting > (hi ? 2 * cf->queue_max : cf->queue_max))
		r = RPL_QUEUE_FULL;
	if ((r != RPL_NONE) != a->shedding) {
		a->shedding = r != RPL_NONE;
		if (a->shedding)
			log_warnx("admission: shedding load: %" PRId64
			          " messages wait for the scanner "
			          "(queue_max %" PRId64 "), %" PRId64 " octets free",
			          a->waiting, cf->queue_max, a->free_oct);
		else
			log_info("admission: accepting again (%" PRId64 " waiting)", a->waiting);
	}
	return r;
}
