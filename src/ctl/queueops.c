/*
 * queueops.c: the queue actions of tempomxctl: hold, release, requeue,
 * delete and flush.
 *
 * Each action is one spool operation on one message, done here while the
 * daemon runs or not: a move is spool_move() (rename, then fsync of the
 * destination directory), an envelope change is spool_update() (new file,
 * fsync, rename over the old one, then on into the destination), a
 * deletion is spool_purge() (unlink, fsync). So a message always has
 * exactly one name, and a crash at any point leaves it in the old queue
 * or the new one.
 *
 * When a stage works on the same message at the same moment, the rename
 * decides who wins: if the stage moved it first, our rename finds no
 * file (ENOENT) and we look for the message again in its new queue; if we
 * moved it first, the stage's own rename or update finds no file and the
 * stage leaves it alone (spool_update() never writes a message back under
 * a name that was taken away). A message in out/ is claimed by delivery
 * while it is being delivered (spool_claim): we claim it too before we
 * touch it, which waits for the end of its delivery (at most
 * CLAIM_WAIT_MS) and then finds it delivered, or deferred, or still
 * there, never half way.
 *
 * Every action is logged with the queue ID and printed as "ID: what".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "util.h"

/* An action on one message found in queue q (env read from it). Returns
 * 0 when done, 1 when the file was gone (look again), -1 on an error
 * (printed). */
typedef int (*action_fn)(struct ctl *c, const char *id, enum spool_queue q, struct envelope *env,
                         void *arg);

#define ACTION_ROUNDS 3
#define CLAIM_WAIT_MS 30000
#define CLAIM_POLL_MS 50

/* For a message in out/: claim it, waiting while delivery has it. *fd
 * gets the descriptor that holds the claim (close it after the move),
 * -1 for other queues. Returns 0, 1 when it moved meanwhile (look
 * again), -1 on an error (printed). */
static int claim(struct ctl *c, const char *id, enum spool_queue q, int *fd)
{
	*fd = -1;
	if (q != Q_OUT)
		return 0;
	int f = openat(c->sp.dirfd[Q_OUT], id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (f < 0) {
		if (errno == ENOENT)
			return 1;
		ctl_err("%s: cannot open out/%s: %s", id, id, strerror(errno));
		return -1;
	}
	int said = 0;
	for (int waited = 0;; waited += CLAIM_POLL_MS) {
		if (spool_claim(&c->sp, Q_OUT, id, f) == 0) {
			*fd = f;
			return 0;
		}
		if (errno == ENOENT) {
			close(f);
			return 1;
		}
		if (errno != EWOULDBLOCK || waited >= CLAIM_WAIT_MS) {
			ctl_err("%s: %s", id,
			        errno == EWOULDBLOCK ? "still being delivered; try again later"
			                             : strerror(errno));
			close(f);
			return -1;
		}
		if (!said++) {
			printf("%s: being delivered; waiting for the delivery to end\n", id);
			fflush(stdout);
		}
		struct timespec ts = {0, CLAIM_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static void unclaim(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int one_id(struct ctl *c, const char *id, int with_corrupt, action_fn fn, void *arg)
{
	for (int round = 0; round < ACTION_ROUNDS; round++) {
		struct envelope env;
		int q = ctl_find(c, id, &env, with_corrupt, 0);
		if (q < 0)
			return -1;
		int r = fn(c, id, (enum spool_queue)q, &env, arg);
		envelope_free(&env);
		if (r <= 0)
			return r;
	}
	ctl_err("%s: the message keeps moving between queues; try again", id);
	return -1;
}

/* Run fn on every ID in argv[first..]; CTL_OK when all succeeded. */
static int each_id(struct ctl *c, const char *cmd, int argc, char **argv, int first,
                   int with_corrupt, action_fn fn, void *arg)
{
	int failed = 0, any = 0;
	for (int i = first; i < argc; i++) {
		if (argv[i][0] == '-') {
			return ctl_usage_why(cmd, "unknown option %s", argv[i]);
		}
		if (!ctl_check_id(argv[i]))
			return CTL_USAGE;
		any = 1;
	}
	if (!any)
		return ctl_usage(cmd);
	if (ctl_open_spool(c) < 0)
		return CTL_FAIL;
	for (int i = first; i < argc; i++)
		if (one_id(c, argv[i], with_corrupt, fn, arg) < 0)
			failed = 1;
	return failed ? CTL_FAIL : CTL_OK;
}

/* Move id from q to dest and report it. */
static int move_to(struct ctl *c, const char *id, enum spool_queue q, enum spool_queue dest,
                   const char *what)
{
	int fd, r = claim(c, id, q, &fd);
	if (r != 0)
		return r;
	r = spool_move(&c->sp, id, q, dest);
	unclaim(fd);
	if (r < 0) {
		if (errno == ENOENT)
			return 1;
		ctl_err("%s: cannot move %s/%s to %s/: %s", id, spool_queue_name(q), id,
		        spool_queue_name(dest), strerror(errno));
		return -1;
	}
	log_info("%s: %s by the admin, from %s/ to %s/", id, what, spool_queue_name(q),
	         spool_queue_name(dest));
	printf("%s: %s, moved from %s/ to %s/\n", id, what, spool_queue_name(q),
	       spool_queue_name(dest));
	return 0;
}

static enum spool_queue class_queue(const struct envelope *env)
{
	return env->class == CLASS_LO ? Q_LO : Q_HI;
}

/* ---- hold ---- */

static int hold_one(struct ctl *c, const char *id, enum spool_queue q, struct envelope *env,
                    void *arg)
{
	(void)env;
	(void)arg;
	if (q == Q_HOLD) {
		printf("%s: already on hold\n", id);
		return 0;
	}
	if (q == Q_QUARANTINE) {
		ctl_err("%s: in quarantine/, which is never delivered; not moved", id);
		return -1;
	}
	return move_to(c, id, q, Q_HOLD, "held");
}

int cmd_hold(struct ctl *c, int argc, char **argv)
{
	return each_id(c, "hold", argc, argv, 1, 0, hold_one, NULL);
}

/* ---- release ---- */

/* Where a released message goes: one never scanned back to its class's
 * queue for the scanner; one scanned (including what scan_error_action
 * = hold put aside, and a quarantined virus) to out/ for delivery. */
static enum spool_queue release_dest(const struct envelope *env)
{
	return env->scan_result == NULL ? class_queue(env) : Q_OUT;
}

static int release_one(struct ctl *c, const char *id, enum spool_queue q, struct envelope *env,
                       void *arg)
{
	int force = *(int *)arg;
	if (q == Q_QUARANTINE && !force) {
		char *why = ctl_printable(env->scan_result ? env->scan_result : "virus");
		ctl_err("%s: in quarantine (%s); add --force to deliver it anyway", id, why);
		free(why);
		return -1;
	}
	if (q != Q_HOLD && q != Q_QUARANTINE) {
		ctl_err("%s: not held (it is in %s/)", id, spool_queue_name(q));
		return -1;
	}
	return move_to(c, id, q, release_dest(env), "released");
}

int cmd_release(struct ctl *c, int argc, char **argv)
{
	int force = 0, first = 1;
	if (argc > 1 && strcmp(argv[1], "--force") == 0) {
		force = 1;
		first = 2;
	}
	return each_id(c, "release", argc, argv, first, 0, release_one, &force);
}

/* ---- requeue ---- */

static int requeue_one(struct ctl *c, const char *id, enum spool_queue q, struct envelope *env,
                       void *arg)
{
	(void)arg;
	enum spool_queue dest = class_queue(env);
	if (env->scan_result == NULL) {
		if (q == dest) {
			printf("%s: already waiting in %s/ for the scanner\n", id,
			       spool_queue_name(q));
			return 0;
		}
		return move_to(c, id, q, dest, "requeued");
	}
	/* Forget the scan result, or the scanner would pass the file on as
	 * already scanned. Recipients keep their status: those delivered
	 * are not delivered again. */
	free(env->scan_result);
	env->scan_result = NULL;
	int fd, r = claim(c, id, q, &fd);
	if (r != 0)
		return r;
	/* What delivery recorded before we got the claim is in the file,
	 * not in our copy of the envelope: read it again. */
	if (fd >= 0) {
		struct envelope now;
		if (spool_read(&c->sp, q, id, &now, NULL) != 0) {
			unclaim(fd);
			return 1;
		}
		free(now.scan_result);
		now.scan_result = NULL;
		envelope_free(env);
		*env = now;
	}
	r = spool_update(&c->sp, q, id, env, NULL, dest);
	unclaim(fd);
	if (r < 0) {
		if (errno == ENOENT)
			return 1;
		ctl_err("%s: cannot requeue %s/%s: %s", id, spool_queue_name(q), id,
		        strerror(errno));
		return -1;
	}
	log_info("%s: requeued by the admin for a new scan, from %s/ to %s/", id,
	         spool_queue_name(q), spool_queue_name(dest));
	printf("%s: requeued, moved from %s/ to %s/\n", id, spool_queue_name(q),
	       spool_queue_name(dest));
	return 0;
}

int cmd_requeue(struct ctl *c, int argc, char **argv)
{
	return each_id(c, "requeue", argc, argv, 1, 0, requeue_one, NULL);
}

/* ---- delete ---- */

static int purge(struct ctl *c, const char *id, enum spool_queue q)
{
	int fd, r = claim(c, id, q, &fd);
	if (r != 0)
		return r;
	r = spool_purge(&c->sp, q, id);
	unclaim(fd);
	if (r < 0) {
		if (errno == ENOENT)
			return 1;
		ctl_err("%s: cannot delete %s/%s: %s", id, spool_queue_name(q), id,
		        strerror(errno));
		return -1;
	}
	log_info("%s: deleted by the admin from %s/", id, spool_queue_name(q));
	printf("%s: deleted from %s/\n", id, spool_queue_name(q));
	return 0;
}

static int delete_one(struct ctl *c, const char *id, enum spool_queue q, struct envelope *env,
                      void *arg)
{
	(void)env;
	(void)arg;
	return purge(c, id, q);
}

/* delete ALL, or every message that matches the filters. */
static int delete_matching(struct ctl *c, const struct ctl_filter *f)
{
	struct ctl_msg *v;
	int failed = 0;
	if (ctl_open_spool(c) < 0)
		return CTL_FAIL;
	size_t n = ctl_collect(c, f, &v);
	for (size_t i = 0; i < n; i++) {
		/* Gone meanwhile: delivered (nothing to do) or moved on to
		 * another queue, where it goes from too unless --queue
		 * named the one it was in. */
		int r = purge(c, v[i].env.id, v[i].q);
		for (int round = 0; r == 1 && f->queue < 0 && round < ACTION_ROUNDS; round++) {
			int q = ctl_find(c, v[i].env.id, NULL, 0, 1);
			r = q < 0 ? 0 : purge(c, v[i].env.id, (enum spool_queue)q);
		}
		if (r < 0)
			failed = 1;
	}
	ctl_msgs_free(v, n);
	if (n == 0)
		printf("no message matched\n");
	return failed ? CTL_FAIL : CTL_OK;
}

int cmd_delete(struct ctl *c, int argc, char **argv)
{
	struct ctl_filter f;
	int all = 0, filtered = 0, ids = 0;
	ctl_filter_init(&f);
	for (int i = 1; i < argc; i++) {
		int r = ctl_filter_option(&f, argc, argv, &i);
		if (r < 0)
			return CTL_USAGE;
		if (r > 0)
			filtered = 1;
		else if (strcmp(argv[i], "ALL") == 0)
			all = 1;
		else
			ids++;
	}
	if ((all || filtered) && ids > 0) {
		return ctl_usage_why("delete", "give queue IDs, or ALL, or filters, not both");
	}
	if (all || filtered)
		return delete_matching(c, &f);
	return each_id(c, "delete", argc, argv, 1, 1, delete_one, NULL);
}

/* ---- flush ---- */

static int flush_one(struct ctl *c, const char *id, enum spool_queue q, struct envelope *env,
                     void *arg)
{
	(void)env;
	(void)arg;
	if (q != Q_DEFERRED) {
		printf("%s: not deferred (it is in %s/); nothing to flush\n", id,
		       spool_queue_name(q));
		return 0;
	}
	return move_to(c, id, q, Q_OUT, "flushed");
}

int cmd_flush(struct ctl *c, int argc, char **argv)
{
	if (argc > 1)
		return each_id(c, "flush", argc, argv, 1, 0, flush_one, NULL);
	if (ctl_daemon_action(c, "flush", "flush") < 0)
		return CTL_FAIL;
	printf("flush requested: every deferred message is retried now\n");
	return CTL_OK;
}
