/*
 * spoolview.c: how tempomxctl reads the spool: which queue directories
 * hold mail an admin lists, the filters of the listing and of delete,
 * the walk over every message, and finding one message by its ID.
 *
 * Reading needs no cooperation from the daemon: a name in a queue always
 * points at a complete file (spool.c, rule 1). A file may move on between
 * the directory read and the open (the stages keep working); it is then
 * skipped, so a listing is a snapshot that may miss a message in flight,
 * never a half-written one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

const enum spool_queue ctl_listed_queues[] = {Q_HI, Q_LO, Q_OUT, Q_DEFERRED, Q_HOLD, Q_QUARANTINE};
const size_t ctl_nlisted = sizeof(ctl_listed_queues) / sizeof(ctl_listed_queues[0]);

void ctl_filter_init(struct ctl_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->cls = -1;
	f->queue = -1;
}

static int listed(int q)
{
	for (size_t i = 0; i < ctl_nlisted; i++)
		if ((int)ctl_listed_queues[i] == q)
			return 1;
	return 0;
}

int ctl_filter_option(struct ctl_filter *f, int argc, char **argv, int *i)
{
	const char *opt = argv[*i];
	if (strcmp(opt, "--class") != 0 && strcmp(opt, "--queue") != 0 &&
	    strcmp(opt, "--from") != 0 && strcmp(opt, "--to") != 0)
		return 0;
	if (*i + 1 >= argc) {
		ctl_err("%s needs a value", opt);
		return -1;
	}
	const char *v = argv[++*i];
	if (strcmp(opt, "--class") == 0) {
		if (ascii_strcasecmp(v, "hi") == 0)
			f->cls = CLASS_HI;
		else if (ascii_strcasecmp(v, "lo") == 0)
			f->cls = CLASS_LO;
		else {
			ctl_err("--class %s: the class is hi or lo", v);
			return -1;
		}
	} else if (strcmp(opt, "--queue") == 0) {
		int q = spool_queue_from_name(v);
		if (q < 0 || !listed(q)) {
			ctl_err(
			    "--queue %s: the queue is hi, lo, out, deferred, hold or quarantine",
			    v);
			return -1;
		}
		f->queue = q;
	} else if (strcmp(opt, "--from") == 0) {
		/* "<>" and "" both name the null sender. */
		f->from = strcmp(v, "<>") == 0 ? "" : v;
	} else {
		if (v[0] == '\0') {
			ctl_err("--to needs an address");
			return -1;
		}
		f->to = v;
	}
	return 1;
}

int ctl_filter_match(const struct ctl_filter *f, const struct ctl_msg *m)
{
	if (f->cls >= 0 && (int)m->env.class != f->cls)
		return 0;
	if (f->queue >= 0 && (int)m->q != f->queue)
		return 0;
	if (f->from != NULL && ascii_strcasecmp(m->env.sender ? m->env.sender : "", f->from) != 0)
		return 0;
	if (f->to != NULL) {
		int hit = 0;
		for (size_t i = 0; i < m->env.nrcpt && !hit; i++) {
			const struct rcpt *r = &m->env.rcpts[i];
			hit = (r->status == RCPT_PENDING || r->status == RCPT_DEFERRED) &&
			      ascii_strcasecmp(r->addr, f->to) == 0;
		}
		if (!hit)
			return 0;
	}
	return 1;
}

static int cmp_msg(const void *a, const void *b)
{
	const struct ctl_msg *x = a, *y = b;
	return strcmp(x->env.id, y->env.id);
}

size_t ctl_collect(struct ctl *c, const struct ctl_filter *f, struct ctl_msg **out)
{
	struct ctl_msg *v = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	for (size_t qi = 0; qi < ctl_nlisted; qi++) {
		enum spool_queue q = ctl_listed_queues[qi];
		char(*ids)[QUEUEID_SIZE];
		if (f->queue >= 0 && (int)q != f->queue)
			continue;
		size_t nid = spool_list(&c->sp, q, &ids);
		for (size_t i = 0; i < nid; i++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xreallocarray(v, cap, sizeof(*v));
			}
			v[n].q = q;
			/* Gone meanwhile (moved on by a stage) or unreadable
			 * (spool_read has moved it to corrupt/): not listed. */
			if (spool_read(&c->sp, q, ids[i], &v[n].env, NULL) != 0)
				continue;
			if (!ctl_filter_match(f, &v[n])) {
				envelope_free(&v[n].env);
				continue;
			}
			n++;
		}
		free(ids);
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_msg);
	*out = v;
	return n;
}

void ctl_msgs_free(struct ctl_msg *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		envelope_free(&v[i].env);
	free(v);
}

int ctl_check_id(const char *s)
{
	if (queueid_valid(s))
		return 1;
	ctl_err("%s: not a queue ID (22 hex digits, as mailq shows them)", s);
	return 0;
}

int ctl_find(struct ctl *c, const char *id, struct envelope *env, int with_corrupt, int quiet)
{
	struct envelope scratch;
	struct envelope *e = env ? env : &scratch;
	/* A stage may move the message between two queues while we look:
	 * a second round finds it in its new place. */
	for (int round = 0; round < 2; round++) {
		for (size_t qi = 0; qi < ctl_nlisted; qi++) {
			enum spool_queue q = ctl_listed_queues[qi];
			int r = spool_read(&c->sp, q, id, e, NULL);
			if (r == 0) {
				if (env == NULL)
					envelope_free(e);
				return (int)q;
			}
			if (r == -2) {
				/* Unreadable: spool_read() moved it to corrupt/. */
				if (with_corrupt)
					return Q_CORRUPT;
				if (!quiet)
					ctl_err("%s: unreadable, moved to corrupt/", id);
				return -1;
			}
			if (errno != ENOENT) {
				if (!quiet)
					ctl_err("%s: cannot read %s/%s: %s", id,
					        spool_queue_name(q), id, strerror(errno));
				return -1;
			}
		}
	}
	if (with_corrupt && faccessat(c->sp.dirfd[Q_CORRUPT], id, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		if (env != NULL)
			memset(env, 0, sizeof(*env));
		return Q_CORRUPT;
	}
	if (!quiet)
		ctl_err("%s: no such message in the queue", id);
	return -1;
}

char *ctl_printable(const char *s)
{
	return envelope_escape(s ? s : "", s ? strlen(s) : 0);
}

const char *ctl_addr_or_null(const char *s)
{
	return s == NULL || s[0] == '\0' ? "<>" : s;
}
