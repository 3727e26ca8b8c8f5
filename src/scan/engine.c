/*
 * engine.c: the libclamav engine of the scanner child.
 *
 * Owns the process-wide libclamav set-up (cl_init once, libclamav's own
 * messages sent to our log), the compiled engines (struct scan_engine:
 * a cl_engine with its limits, scan options and a reference count) and
 * the scan of one message. Called by the scanner's worker threads
 * (engine_scan_fd) and by engine_reload.c (engine_load, engine_release).
 *
 * A message is scanned where it lies in its spool file, after the
 * envelope block: cl_scandesc() always reads a descriptor from offset 0,
 * and cl_fmap_open_handle() accepts only page-aligned offsets, so we map
 * the message through our own pread callback that adds the message's
 * offset. libclamav then sees exactly the RFC 5322 message, recognises it
 * as mail, decodes its MIME parts and opens the archives inside, and no
 * copy of the message is made.
 */
#include <clamav.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "scan.h"
#include "util.h"

struct scan_engine {
	struct cl_engine *cl;
	atomic_uint refs;
	struct cl_scan_options opts; /* copied per scan: libclamav wants it writable */
	struct engine_info info;
};

/* Per-scan state handed to libclamav's callbacks as their context. */
struct scan_ctx {
	int fd;
	off_t base; /* file offset of the first message octet */
	char found[SCAN_NAME_SIZE];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;
static char init_err[256];

/*
 * libclamav prints to stderr unless told otherwise; the children have no
 * useful stderr. Errors (a bad database, an unreadable file) matter to the
 * admin; warnings are mostly about malformed content in mail, which a
 * sender controls, so they stay below warning level to keep a hostile
 * message from flooding the log with alarms.
 */
static void engine_clamav_msg(enum cl_msg severity, const char *fullmsg, const char *msg,
                              void *context)
{
	(void)fullmsg;
	(void)context;
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		n--;
	int len = n > INT_MAX ? INT_MAX : (int)n;
	switch (severity) {
	case CL_MSG_ERROR:
		log_warnx("libclamav error: %.*s", len, msg);
		break;
	case CL_MSG_WARN:
		log_info("libclamav warning: %.*s", len, msg);
		break;
	default:
		log_debug("libclamav: %.*s", len, msg);
		break;
	}
}

static void engine_init_once(void)
{
	cl_set_clcb_msg(engine_clamav_msg);
	cl_error_t rc = cl_init(CL_INIT_DEFAULT);
	if (rc != CL_SUCCESS) {
		snprintf(init_err, sizeof(init_err), "libclamav initialisation failed: %s",
		         cl_strerror(rc));
		init_rc = -1;
	}
}

int engine_init(char *err, size_t errlen)
{
	int rc = pthread_once(&init_once, engine_init_once);
	if (rc != 0)
		fatalx("pthread_once: %s", strerror(rc));
	if (init_rc != 0) {
		snprintf(err, errlen, "%s", init_err);
		return -1;
	}
	return 0;
}

const char *engine_libclamav_version(void)
{
	return cl_retver();
}

void engine_limits_default(struct engine_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
}

/*
 * The database version an admin compares with freshclam's log: the
 * version of each official container (main, daily, bytecode; .cld after
 * an incremental update, .cvd after a full download). A directory of
 * hand-made files only is "custom".
 */
static void engine_db_version(const char *dbdir, char *buf, size_t size)
{
	static const char *const bases[] = {"main", "daily", "bytecode"};
	static const char *const exts[] = {".cld", ".cvd"};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		unsigned best = 0;
		for (size_t j = 0; j < sizeof(exts) / sizeof(exts[0]); j++) {
			char *path;
			xasprintf(&path, "%s/%s%s", dbdir, bases[i], exts[j]);
			if (access(path, R_OK) == 0) {
				struct cl_cvd *cvd = cl_cvdhead(path);
				if (cvd != NULL) {
					if (cvd->version > best)
						best = cvd->version;
					cl_cvdfree(cvd);
				}
			}
			free(path);
		}
		if (best == 0 || used >= size)
			continue;
		int n =
		    snprintf(buf + used, size - used, "%s%s:%u", used ? "," : "", bases[i], best);
		if (n > 0)
			used += (size_t)n;
	}
	if (buf[0] == '\0')
		snprintf(buf, size, "custom");
}

/* 1 when dir holds at least one entry that is not hidden, 0 when none,
 * -1 when it cannot be read (errno set). */
static int engine_dir_has_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int found = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.') {
			found = 1;
			break;
		}
	}
	closedir(d);
	return found;
}

static int engine_set_limit(struct cl_engine *cl, enum cl_engine_field field, uint64_t value,
                            const char *what, char *err, size_t errlen)
{
	if (value == 0)
		return 0;
	if (value > (uint64_t)LLONG_MAX) {
		snprintf(err, errlen, "%s: value %llu too large", what, (unsigned long long)value);
		return -1;
	}
	cl_error_t rc = cl_engine_set_num(cl, field, (long long)value);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "%s: %s", what, cl_strerror(rc));
		return -1;
	}
	return 0;
}

static int engine_apply_limits(struct cl_engine *cl, const struct engine_limits *lim, char *err,
                               size_t errlen)
{
	if (engine_set_limit(cl, CL_ENGINE_MAX_SCANSIZE, lim->max_scansize, "max_scansize", err,
	                     errlen) < 0 ||
	    engine_set_limit(cl, CL_ENGINE_MAX_FILESIZE, lim->max_filesize, "max_filesize", err,
	                     errlen) < 0 ||
	    engine_set_limit(cl, CL_ENGINE_MAX_RECURSION, lim->max_recursion, "max_recursion", err,
	                     errlen) < 0 ||
	    engine_set_limit(cl, CL_ENGINE_MAX_FILES, lim->max_files, "max_files", err, errlen) <
	        0 ||
	    engine_set_limit(cl, CL_ENGINE_MAX_SCANTIME, lim->max_scantime, "max_scantime", err,
	                     errlen) < 0)
		return -1;
	if (lim->tmpdir != NULL && lim->tmpdir[0] != '\0') {
		cl_error_t rc = cl_engine_set_str(cl, CL_ENGINE_TMPDIR, lim->tmpdir);
		if (rc != CL_SUCCESS) {
			snprintf(err, errlen, "tmpdir %s: %s", lim->tmpdir, cl_strerror(rc));
			return -1;
		}
	}
	return 0;
}

static uint64_t engine_get_num(const struct cl_engine *cl, enum cl_engine_field field)
{
	int rc = 0;
	long long v = cl_engine_get_num(cl, field, &rc);
	return (rc != CL_SUCCESS || v < 0) ? 0 : (uint64_t)v;
}

/*
 * libclamav reports a signature hit through the virname out-parameter,
 * but in 1.4 a heuristic alert that does not take precedence (such as
 * Heuristics.Limits.Exceeded.*) can come back as CL_VIRUS with virname
 * left NULL. This callback sees every alert, so the name is never lost.
 */
static void engine_virus_found(int fd, const char *virname, void *context)
{
	(void)fd; /* not a descriptor of ours for a mapped scan */
	struct scan_ctx *ctx = context;
	if (ctx != NULL && virname != NULL && ctx->found[0] == '\0')
		snprintf(ctx->found, sizeof(ctx->found), "%s", virname);
}

struct scan_engine *engine_load(const char *dbdir, const struct engine_limits *lim, char *err,
                                size_t errlen)
{
	struct stat st;
	if (engine_init(err, errlen) < 0)
		return NULL;
	if (stat(dbdir, &st) < 0) {
		snprintf(err, errlen, "database directory %s: %s", dbdir, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "database directory %s: not a directory", dbdir);
		return NULL;
	}
	int has = engine_dir_has_files(dbdir);
	if (has < 0) {
		snprintf(err, errlen, "database directory %s: %s", dbdir, strerror(errno));
		return NULL;
	}
	if (has == 0) {
		snprintf(err, errlen, "database directory %s holds no database files", dbdir);
		return NULL;
	}

	int64_t t0 = mono_usec();
	struct cl_engine *cl = cl_engine_new();
	if (cl == NULL)
		fatalx("cl_engine_new: out of memory");
	if (engine_apply_limits(cl, lim, err, errlen) < 0) {
		cl_engine_free(cl);
		return NULL;
	}
	unsigned sigs = 0;
	cl_error_t rc = cl_load(dbdir, cl, &sigs, CL_DB_STDOPT);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "loading databases from %s failed: %s", dbdir,
		         rc == CL_EOPEN ? "no readable database file" : cl_strerror(rc));
		cl_engine_free(cl);
		return NULL;
	}
	if (sigs == 0) {
		snprintf(err, errlen, "no signatures loaded from %s", dbdir);
		cl_engine_free(cl);
		return NULL;
	}
	cl_engine_set_clcb_virus_found(cl, engine_virus_found);
	rc = cl_engine_compile(cl);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "compiling databases from %s failed: %s", dbdir,
		         cl_strerror(rc));
		cl_engine_free(cl);
		return NULL;
	}

	struct scan_engine *e = xcalloc(1, sizeof(*e));
	e->cl = cl;
	atomic_init(&e->refs, 1);
	/*
	 * Heuristic alerts on, as clamd does by default (they include the
	 * phishing checks of the official database); ALLMATCHES off: the
	 * first hit decides, the rest of the message is not read. Every
	 * parser on, mail first among them, so attachments are decoded and
	 * archives and documents opened. message/partial reassembly stays
	 * off (clamd's default too): it keeps fragments of other messages
	 * around and is a memory hazard.
	 */
	e->opts.general = CL_SCAN_GENERAL_HEURISTICS;
	e->opts.parse = ~0u;
	e->opts.heuristic = 0;
	if (lim->alert_exceeds_max)
		e->opts.heuristic |= CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	if (lim->alert_encrypted)
		e->opts.heuristic |=
		    CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE | CL_SCAN_HEURISTIC_ENCRYPTED_DOC;
	e->opts.mail = 0;
	e->opts.dev = 0;

	struct engine_info *in = &e->info;
	in->signatures = sigs;
	engine_db_version(dbdir, in->db_version, sizeof(in->db_version));
	snprintf(in->dbdir, sizeof(in->dbdir), "%s", dbdir);
	in->load_usec = mono_usec() - t0;
	in->loaded_at = (int64_t)time(NULL);
	in->max_scansize = engine_get_num(cl, CL_ENGINE_MAX_SCANSIZE);
	in->max_filesize = engine_get_num(cl, CL_ENGINE_MAX_FILESIZE);
	in->max_recursion = (uint32_t)engine_get_num(cl, CL_ENGINE_MAX_RECURSION);
	in->max_files = (uint32_t)engine_get_num(cl, CL_ENGINE_MAX_FILES);
	in->max_scantime = (uint32_t)engine_get_num(cl, CL_ENGINE_MAX_SCANTIME);
	return e;
}

struct scan_engine *engine_acquire(struct scan_engine *e)
{
	unsigned old = atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	if (old == 0)
		fatalx("engine_acquire: engine already freed");
	return e;
}

void engine_release(struct scan_engine *e)
{
	if (e == NULL)
		return;
	/* acq_rel: every scan's reads of the engine happen before the free. */
	unsigned old = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
	if (old == 0)
		fatalx("engine_release: reference count underflow");
	if (old > 1)
		return;
	cl_engine_free(e->cl);
	free(e);
}

const struct engine_info *engine_info(const struct scan_engine *e)
{
	return &e->info;
}

void engine_describe(const struct scan_engine *e, char *buf, size_t size)
{
	const struct engine_info *in = &e->info;
	snprintf(buf, size, "signatures=%u, db=%s, libclamav=%s, load=%.1fms, dir=%s",
	         in->signatures, in->db_version, cl_retver(), (double)in->load_usec / 1000.0,
	         in->dbdir);
}

const char *scan_status_name(enum scan_status s)
{
	switch (s) {
	case SCAN_CLEAN:
		return "clean";
	case SCAN_VIRUS:
		return "virus";
	case SCAN_EXCEEDED:
		return "exceeded";
	case SCAN_ERROR:
		return "error";
	}
	return "error";
}

/* libclamav's reader for the mapped message: offsets are relative to the
 * message, so add the message's offset in the spool file. */
static off_t engine_pread(void *handle, void *buf, size_t count, off_t offset)
{
	const struct scan_ctx *ctx = handle;
	ssize_t n;
	do
		n = pread(ctx->fd, buf, count, ctx->base + offset);
	while (n < 0 && errno == EINTR);
	return (off_t)n;
}

static int engine_is_limit_name(const char *name)
{
	static const char prefix[] = "Heuristics.Limits.Exceeded";
	return strncmp(name, prefix, sizeof(prefix) - 1) == 0;
}

static enum scan_status engine_finish(struct scan_result *res, enum scan_status st, int64_t t0)
{
	res->status = st;
	res->usec = mono_usec() - t0;
	return st;
}

enum scan_status engine_scan_fd(struct scan_engine *e, int fd, off_t offset,
                                struct scan_result *res)
{
	int64_t t0 = mono_usec();
	struct stat st;

	memset(res, 0, sizeof(*res));
	if (fstat(fd, &st) < 0) {
		snprintf(res->name, sizeof(res->name), "fstat: %s", strerror(errno));
		return engine_finish(res, SCAN_ERROR, t0);
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(res->name, sizeof(res->name), "not a regular file");
		return engine_finish(res, SCAN_ERROR, t0);
	}
	if (offset < 0 || offset > st.st_size) {
		snprintf(res->name, sizeof(res->name),
		         "message offset %lld outside the file (%lld octets)", (long long)offset,
		         (long long)st.st_size);
		return engine_finish(res, SCAN_ERROR, t0);
	}
	return engine_scan_range(e, fd, offset, (uint64_t)(st.st_size - offset), res);
}

enum scan_status engine_scan_range(struct scan_engine *e, int fd, off_t offset, uint64_t len,
                                   struct scan_result *res)
{
	int64_t t0 = mono_usec();

	memset(res, 0, sizeof(*res));
	if (len == 0) /* an empty message holds nothing to find */
		return engine_finish(res, SCAN_CLEAN, t0);
	if (len > SIZE_MAX) {
		snprintf(res->name, sizeof(res->name), "message too large to map");
		return engine_finish(res, SCAN_ERROR, t0);
	}
	res->size = len;

	struct scan_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.fd = fd;
	ctx.base = offset;
	cl_fmap_t *map = cl_fmap_open_handle(&ctx, 0, (size_t)len, engine_pread, 1);
	if (map == NULL) {
		snprintf(res->name, sizeof(res->name), "cannot map the message");
		return engine_finish(res, SCAN_ERROR, t0);
	}
	struct cl_scan_options opts = e->opts;
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_error_t rc = cl_scanmap_callback(map, NULL, &virname, &scanned, e->cl, &opts, &ctx);
	cl_fmap_close(map);

	switch (rc) {
	case CL_CLEAN:
		return engine_finish(res, SCAN_CLEAN, t0);
	case CL_VIRUS: {
		const char *name = virname != NULL ? virname : ctx.found[0] ? ctx.found : "unknown";
		snprintf(res->name, sizeof(res->name), "%s", name);
		return engine_finish(res, engine_is_limit_name(name) ? SCAN_EXCEEDED : SCAN_VIRUS,
		                     t0);
	}
	case CL_EMAXREC:
	case CL_EMAXSIZE:
	case CL_EMAXFILES:
	case CL_ETIMEOUT:
		/* A limit stopped the scan and libclamav said so as an error. */
		snprintf(res->name, sizeof(res->name), "%s", cl_strerror(rc));
		return engine_finish(res, SCAN_EXCEEDED, t0);
	default:
		snprintf(res->name, sizeof(res->name), "libclamav: %s", cl_strerror(rc));
		return engine_finish(res, SCAN_ERROR, t0);
	}
}
