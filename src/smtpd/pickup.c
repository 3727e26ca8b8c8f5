/*
 * pickup.c: smtpd's pickup of local submissions from the maildrop
 * (pickup.h has the directory's rules and the file format).
 *
 * A timer of smtpd's loop reads the directory every PICKUP_INTERVAL_MS.
 * Each complete file is checked (a regular file with one link, not larger
 * than message_size_limit allows, the format strict, every address valid)
 * and copied into a new queue file exactly as smtpd writes one for SMTP:
 * spool_create() with a local envelope, our Received: line, the message
 * with CR LF line ends and without X-Tempomx-* header fields (the header
 * filter of SMTP mail), then spool_commit() into hi/ through the commit
 * pool, off the loop. Only once the commit is durable is the maildrop
 * file removed: a crash in between queues the message twice at worst
 * (at least once), never loses it. Local mail is not judged by the
 * timing classifier (there is no SMTP dialogue) and goes to hi/; the
 * scanner scans it like any other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "hdrfilter.h"
#include "log.h"
#include "pickup.h"
#include "smtpd.h"
#include "spool.h"
#include "stats.h"
#include "tempomx.h"
#include "util.h"

/* Files being committed, skipped by the next passes. */
#define PICKUP_INFLIGHT_MAX 64
#define PICKUP_NAME_MAX 128
/* Room for the maildrop header above message_size_limit. */
#define PICKUP_HEADER_MAX (64 * 1024)

struct pickup_item {
	struct pickup *p;
	int used;
	char name[PICKUP_NAME_MAX];
	char id[QUEUEID_SIZE];
	char *sender;
	size_t nrcpt;
	uint64_t size;
	uid_t uid;
};

struct pickup {
	struct smtpd *srv;
	int dirfd;
	char *dir;
	struct event *timer;
	struct pickup_item inflight[PICKUP_INFLIGHT_MAX];
};

int pickup_prepare(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct stat st;
	if (mkdir(dir, 01733) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "maildrop_directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "maildrop_directory %s: %s", dir,
		         errno ? strerror(errno) : "not a directory");
		return -1;
	}
	/* mkdir's mode passes through the umask; the sticky bit and the
	 * write bits for all are the point of this directory. */
	if ((geteuid() == 0 && (st.st_uid != uid || st.st_gid != gid) &&
	     chown(dir, uid, gid) < 0) ||
	    chmod(dir, 01733) < 0) {
		snprintf(err, errlen, "maildrop_directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* A message line end as the spool keeps it: CR LF. */
static int feed_crlf(struct hdr_filter *f, const char *buf, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		size_t end = i > start && buf[i - 1] == '\r' ? i - 1 : i;
		if (hdr_filter_feed(f, buf + start, end - start) < 0 ||
		    hdr_filter_feed(f, "\r\n", 2) < 0)
			return -1;
		start = i + 1;
	}
	if (start < len &&
	    (hdr_filter_feed(f, buf + start, len - start) < 0 || hdr_filter_feed(f, "\r\n", 2) < 0))
		return -1;
	return 0;
}

static int sink_spool(void *arg, const char *buf, size_t len)
{
	return spool_write(arg, buf, len);
}

/* An address of the file as the envelope stores it, or -1. */
static int parse_addr(const struct config *cf, const char *in, int sender, char *out, size_t size)
{
	char buf[ADDR_PATH_MAX * 2 + 8];
	struct mailaddr a;
	const char *end;
	if (sender && in[0] == '\0') {
		out[0] = '\0';
		return 0;
	}
	if (strchr(in, '@') == NULL) {
		/* A bare user name: ours. */
		const char *dom = cf->local_domains.n > 0 ? cf->local_domains.v[0] : cf->hostname;
		snprintf(buf, sizeof(buf), "%s@%s", in, dom);
		in = buf;
	}
	if (addr_parse_path(in, strlen(in), ADDR_ALLOW_NOBRACKETS | ADDR_ALLOW_LITERAL, &a, &end) !=
	        ADDR_OK ||
	    *end != '\0')
		return -1;
	addr_format(&a, out, size);
	return 0;
}

/* Parse the maildrop header of text into env (sender, recipients).
 * Returns the offset of the message, or 0 with why set. */
static size_t parse_header(const struct config *cf, const char *text, size_t len,
                           struct envelope *env, const char **why)
{
	char addr[ADDR_PATH_MAX * 2 + 8];
	size_t ml = strlen(PICKUP_MAGIC), off;
	int have_sender = 0;
	if (len < ml + 1 || memcmp(text, PICKUP_MAGIC, ml) != 0 || text[ml] != '\n') {
		*why = "not a maildrop file";
		return 0;
	}
	for (off = ml + 1; off < len && off < PICKUP_HEADER_MAX;) {
		const char *nl = memchr(text + off, '\n', len - off);
		if (nl == NULL)
			break;
		size_t l = (size_t)(nl - (text + off));
		char line[ADDR_PATH_MAX * 2 + 16];
		if (l >= sizeof(line)) {
			*why = "line too long";
			return 0;
		}
		memcpy(line, text + off, l);
		line[l] = '\0';
		off += l + 1;
		if (strcmp(line, "end") == 0) {
			if (!have_sender || env->nrcpt == 0) {
				*why = "no sender or no recipient";
				return 0;
			}
			return off;
		}
		if (strncmp(line, "sender", 6) == 0 && (line[6] == ' ' || line[6] == '\0') &&
		    !have_sender) {
			if (parse_addr(cf, line[6] ? line + 7 : "", 1, addr, sizeof(addr)) < 0) {
				*why = "bad sender address";
				return 0;
			}
			free(env->sender);
			env->sender = xstrdup(addr);
			have_sender = 1;
		} else if (strncmp(line, "rcpt ", 5) == 0) {
			if (parse_addr(cf, line + 5, 0, addr, sizeof(addr)) < 0) {
				*why = "bad recipient address";
				return 0;
			}
			if (env->nrcpt >= (size_t)cf->max_recipients) {
				*why = "more than max_recipients recipients";
				return 0;
			}
			envelope_add_rcpt(env, addr, NULL);
		} else {
			*why = "unknown line";
			return 0;
		}
	}
	*why = "no end line";
	return 0;
}

static void put_aside(struct pickup *p, const char *name, uid_t uid, const char *why)
{
	char bad[PICKUP_NAME_MAX + 8];
	snprintf(bad, sizeof(bad), ".bad.%s", name);
	log_warnx("pickup: %s/%s from uid %ld not queued: %s; renamed to %s", p->dir, name,
	          (long)uid, why, bad);
	if (renameat(p->dirfd, name, p->dirfd, bad) < 0)
		unlinkat(p->dirfd, name, 0);
}

static void commit_done(void *arg, int error)
{
	struct pickup_item *it = arg;
	struct pickup *p = it->p;
	if (error != 0) {
		log_warnx("pickup: %s/%s: queue file not written (%s); tried again later", p->dir,
		          it->name, strerror(error));
	} else {
		/* Durable in hi/: the maildrop copy may go. */
		if (unlinkat(p->dirfd, it->name, 0) < 0)
			log_warn("pickup: cannot remove %s/%s", p->dir, it->name);
		/* Postfix's pickup line; the from= line is the scanner's. */
		log_info("%s: uid=%ld from=<%s>, accepted into hi, size=%" PRIu64
		         ", nrcpt=%zu (local submission)",
		         it->id, (long)it->uid, it->sender, it->size, it->nrcpt);
		stats_add(STAT_ACCEPTED_HI, 1);
	}
	free(it->sender);
	it->sender = NULL;
	it->used = 0;
}

static int inflight(const struct pickup *p, const char *name)
{
	for (size_t i = 0; i < PICKUP_INFLIGHT_MAX; i++)
		if (p->inflight[i].used && strcmp(p->inflight[i].name, name) == 0)
			return 1;
	return 0;
}

/* Take one file into the queue (the commit completes later). */
static void pick_one(struct pickup *p, const char *name, struct pickup_item *it)
{
	const struct config *cf = p->srv->rt->cf;
	struct stat st;
	struct envelope env;
	struct spool_file sf;
	const char *why = NULL;
	memset(&st, 0, sizeof(st));
	int fd = openat(p->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		/* A symbolic link (or anything else we may not open) would be
		 * tried again twice a second: put it aside once. */
		if (errno == ELOOP || errno == EACCES || errno == ENXIO) {
			const char *reason =
			    errno == ELOOP ? "a symbolic link" : "cannot be opened";
			struct stat lst;
			if (fstatat(p->dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
				lst.st_uid = (uid_t)-1;
			put_aside(p, name, lst.st_uid, reason);
		} else if (errno != ENOENT)
			log_warn("pickup: cannot open %s/%s", p->dir, name);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		put_aside(p, name, st.st_uid, "not a regular file");
		return;
	}
	if ((uint64_t)st.st_size > cf->message_size_limit + PICKUP_HEADER_MAX) {
		close(fd);
		put_aside(p, name, st.st_uid, "larger than message_size_limit");
		return;
	}
	size_t len = 0;
	char *text = read_fd_all(fd, (size_t)st.st_size, &len);
	close(fd);
	if (text == NULL) {
		log_warn("pickup: cannot read %s/%s", p->dir, name);
		return;
	}
	envelope_init(&env);
	size_t off = parse_header(cf, text, len, &env, &why);
	if (off == 0) {
		put_aside(p, name, st.st_uid, why);
		goto out;
	}
	/* Arrival is when the user handed the message over (the file was
	 * written), not when the daemon came to take it. */
	env.arrival_usec = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
	if (env.arrival_usec <= 0 || env.arrival_usec > wall_usec())
		env.arrival_usec = wall_usec();
	free(env.protocol);
	env.protocol = xstrdup("LOCAL");
	env.client_addr = xstrdup("");
	env.client_name = xstrdup("localhost");
	env.class = CLASS_HI;
	free(env.verdict);
	env.verdict = xstrdup("good");
	xasprintf(&env.reasons, "local submission by uid %ld", (long)st.st_uid);
	for (size_t i = off; i < len; i++)
		if ((unsigned char)text[i] >= 0x80) {
			env.body_type = xstrdup("8BITMIME");
			break;
		}
	if (spool_create(&p->srv->spool, &env, &sf) < 0) {
		log_warn("pickup: %s/%s: cannot create a queue file; tried again later", p->dir,
		         name);
		goto out;
	}
	char date[64], *received;
	rfc5322_date(wall_usec() / 1000000, date, sizeof(date));
	int rn =
	    xasprintf(&received, "Received: by %s (tempomx, from userid %ld)\r\n\tid %s; %s\r\n",
	              cf->hostname, (long)st.st_uid, env.id, date);
	struct hdr_filter hf;
	hdr_filter_init(&hf, sink_spool, &sf);
	if (spool_write(&sf, received, (size_t)rn) < 0 ||
	    feed_crlf(&hf, text + off, len - off) < 0) {
		free(received);
		log_warn("pickup: %s/%s: cannot write the queue file; tried again later", p->dir,
		         name);
		spool_abort(&p->srv->spool, &sf);
		goto out;
	}
	free(received);
	if (hf.removed > 0)
		log_info("%s: %u X-Tempomx-* header field%s of the local submission removed",
		         env.id, hf.removed, hf.removed == 1 ? "" : "s");
	it->used = 1;
	it->p = p;
	snprintf(it->name, sizeof(it->name), "%s", name);
	memcpy(it->id, env.id, QUEUEID_SIZE);
	it->sender = xstrdup(env.sender);
	it->nrcpt = env.nrcpt;
	it->size = (uint64_t)rn + hf.written;
	it->uid = st.st_uid;
	commit_pool_submit(p->srv->commits, &sf, it->size, Q_HI, commit_done, it);
out:
	envelope_free(&env);
	free(text);
}

static void pickup_scan(evutil_socket_t fd, short what, void *arg)
{
	struct pickup *p = arg;
	(void)fd;
	(void)what;
	if (p->srv->stopping)
		return;
	int dfd = openat(p->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		log_warn("pickup: cannot read %s", p->dir);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		/* Dot names are files being written or put aside. */
		if (de->d_name[0] == '.' || strlen(de->d_name) >= PICKUP_NAME_MAX ||
		    inflight(p, de->d_name))
			continue;
		struct pickup_item *it = NULL;
		for (size_t i = 0; i < PICKUP_INFLIGHT_MAX && it == NULL; i++)
			if (!p->inflight[i].used)
				it = &p->inflight[i];
		if (it == NULL)
			break; /* the rest next time */
		pick_one(p, de->d_name, it);
	}
	closedir(d);
}

struct pickup *pickup_new(struct smtpd *srv)
{
	const struct config *cf = srv->rt->cf;
	struct pickup *p = xcalloc(1, sizeof(*p));
	p->srv = srv;
	p->dir = xstrdup(cf->maildrop_directory);
	p->dirfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (p->dirfd < 0) {
		log_warn("pickup: %s; local submissions are not picked up", p->dir);
		free(p->dir);
		free(p);
		return NULL;
	}
	p->timer = event_new(srv->base, -1, EV_PERSIST, pickup_scan, p);
	struct timeval tv = {0, PICKUP_INTERVAL_MS * 1000};
	if (p->timer == NULL || event_add(p->timer, &tv) < 0)
		fatalx("pickup: cannot add the timer");
	/* What waited while the daemon was down goes first. */
	pickup_scan(-1, 0, p);
	return p;
}

void pickup_free(struct pickup *p)
{
	if (p == NULL)
		return;
	event_free(p->timer);
	close(p->dirfd);
	for (size_t i = 0; i < PICKUP_INFLIGHT_MAX; i++)
		free(p->inflight[i].sender);
	free(p->dir);
	free(p);
}
