/*
 * test_engine.c: unit tests for the libclamav engine (src/scan/engine.c,
 * src/scan/engine_reload.c).
 *
 * Uses the hand-made database in t/data/clamav/ and the messages in
 * t/data/mail/ (scripts/make-test-sigdb, scripts/make-test-mail), found
 * under $TMX_SRCDIR (default "."), and the files of Debian's
 * clamav-testfiles package for the hash signatures.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scan.h"
#include "util.h"

#define TESTFILES "/usr/share/clamav-testfiles"
#define NAME_EICAR "Tempomx.Test.EICAR.UNOFFICIAL"
#define NAME_CLAMEXE "Tempomx.TestFile.clam.exe.UNOFFICIAL"
#define NAME_CLAMPDF "Tempomx.TestFile.clam.pdf.UNOFFICIAL"

struct msg_case {
	const char *file;
	enum scan_status want;
	const char *name; /* expected signature name, NULL when clean */
};

static const struct msg_case msg_cases[] = {
    {"clean-plain.eml", SCAN_CLEAN, NULL},
    {"clean-multipart.eml", SCAN_CLEAN, NULL},
    {"eicar-plain.eml", SCAN_VIRUS, NAME_EICAR},
    {"eicar-base64.eml", SCAN_VIRUS, NAME_EICAR},
    {"eicar-zip.eml", SCAN_VIRUS, NAME_EICAR},
    {"clamexe-zip.eml", SCAN_VIRUS, NAME_CLAMEXE},
    {"clampdf.eml", SCAN_VIRUS, NAME_CLAMPDF},
    /* Encrypted archives are reported only when asked (alert_encrypted). */
    {"encrypted-zip.eml", SCAN_CLEAN, NULL},
};
#define NCASES (sizeof(msg_cases) / sizeof(msg_cases[0]))

/* $TMX_SRCDIR/t/data/ followed by the formatted name. */
static char *data_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *data_path(const char *fmt, ...)
{
	const char *top = getenv("TMX_SRCDIR");
	char rel[512], *p;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	xasprintf(&p, "%s/t/data/%s", top != NULL && *top ? top : ".", rel);
	return p;
}

#define mail_path(file) data_path("mail/%s", (file))

static struct scan_engine *load_db(const char *dir, const struct engine_limits *lim)
{
	char err[512] = "";
	struct scan_engine *e = engine_load(dir, lim, err, sizeof(err));
	cr_assert_not_null(e, "engine_load(%s): %s", dir, err);
	return e;
}

/* The test database, with lim (NULL: libclamav's default limits). */
static struct scan_engine *load_test_db(const struct engine_limits *lim)
{
	struct engine_limits def;
	engine_limits_default(&def);
	char *dir = data_path("clamav");
	struct scan_engine *e = load_db(dir, lim != NULL ? lim : &def);
	free(dir);
	return e;
}

static enum scan_status scan_path(struct scan_engine *e, const char *path, struct scan_result *res)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	enum scan_status st = engine_scan_fd(e, fd, 0, res);
	close(fd);
	return st;
}

/* Scan t/data/mail/<file>. */
static enum scan_status scan_mail(struct scan_engine *e, const char *file, struct scan_result *res)
{
	char *path = mail_path(file);
	enum scan_status st = scan_path(e, path, res);
	free(path);
	return st;
}

static void expect_result(const struct scan_result *res, const struct msg_case *c, const char *what)
{
	cr_expect_eq(res->status, c->want, "%s (%s): status %s, want %s, name '%s'", c->file, what,
	             scan_status_name(res->status), scan_status_name(c->want), res->name);
	if (c->name != NULL)
		cr_expect_str_eq(res->name, c->name, "%s (%s): name", c->file, what);
}

static char *read_file(const char *path, size_t *lenp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	char *buf = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		cr_assert_gt(n, 0, "read %s", path);
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*lenp = got;
	return buf;
}

static char *read_mail(const char *file, size_t *lenp)
{
	char *path = mail_path(file);
	char *buf = read_file(path, lenp);
	free(path);
	return buf;
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		cr_assert_gt(n, 0, "write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static char *make_tmpdir(void)
{
	char *dir = xstrdup("/tmp/test_engine.XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	return dir;
}

/* Remove the files we put in dir, then dir itself. */
static void remove_tmpdir(char *dir)
{
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char *p;
			xasprintf(&p, "%s/%s", dir, de->d_name);
			unlink(p);
			free(p);
		}
		closedir(d);
	}
	rmdir(dir);
	free(dir);
}

static void put_file(const char *dir, const char *name, const void *data, size_t len)
{
	char *p;
	xasprintf(&p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "create %s: %s", p, strerror(errno));
	write_all(fd, data, len);
	close(fd);
	free(p);
}

/* Copy t/data/clamav/<name> into dir. */
static void copy_db_file(const char *dir, const char *name)
{
	size_t len;
	char *src = data_path("clamav/%s", name);
	char *buf = read_file(src, &len);
	put_file(dir, name, buf, len);
	free(buf);
	free(src);
}

static unsigned count_lines(const char *path)
{
	size_t len;
	char *buf = read_file(path, &len);
	unsigned n = 0;
	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	free(buf);
	return n;
}

/* ---- loading ---------------------------------------------------------- */

Test(engine, load_counts_signatures)
{
	char *hdb = data_path("clamav/test.hdb");
	char *ndb = data_path("clamav/test.ndb");
	unsigned want = count_lines(hdb) + count_lines(ndb);
	free(hdb);
	free(ndb);

	struct scan_engine *e = load_test_db(NULL);
	const struct engine_info *in = engine_info(e);
	cr_expect_gt(in->signatures, 0);
	cr_expect_eq(in->signatures, want, "signatures %u, want %u (one per line)", in->signatures,
	             want);
	cr_expect_str_eq(in->db_version, "custom");
	cr_expect_gt(in->max_filesize, 0, "effective limits are read back");
	cr_expect_gt(in->max_recursion, 0);

	char desc[1024];
	engine_describe(e, desc, sizeof(desc));
	char want_sigs[64];
	snprintf(want_sigs, sizeof(want_sigs), "signatures=%u, db=custom, ", want);
	cr_expect_not_null(strstr(desc, want_sigs), "describe: %s", desc);
	cr_expect_not_null(strstr(desc, engine_libclamav_version()), "describe: %s", desc);
	engine_release(e);
}

static void expect_load_error(const char *dir, const char *want1, const char *want2)
{
	struct engine_limits lim;
	engine_limits_default(&lim);
	char err[512] = "";
	cr_expect_null(engine_load(dir, &lim, err, sizeof(err)), "%s loads", dir);
	cr_expect_not_null(strstr(err, want1), "%s: '%s' lacks '%s'", dir, err, want1);
	cr_expect_not_null(strstr(err, want2), "%s: '%s' lacks '%s'", dir, err, want2);
}

/* Each failure names the directory and says what is wrong with it. */
Test(engine, load_errors_are_clear)
{
	char err[256] = "";
	cr_expect_eq(engine_init(err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(engine_init(err, sizeof(err)), 0, "init is idempotent: %s", err);

	expect_load_error("/nonexistent/tempomx-db", "/nonexistent/tempomx-db", strerror(ENOENT));
	char *dir = make_tmpdir();
	expect_load_error(dir, dir, "holds no database files");
	put_file(dir, "x", "x\n", 2);
	char *file;
	xasprintf(&file, "%s/x", dir);
	expect_load_error(file, file, "not a directory");
	free(file);
	/* Only files libclamav does not know. */
	expect_load_error(dir, dir, "no readable database file");
	put_file(dir, "bad.ndb", "this is not a signature\n", 24);
	expect_load_error(dir, dir, "failed: Malformed database");
	remove_tmpdir(dir);
}

Test(engine, load_applies_limits)
{
	struct engine_limits lim;
	engine_limits_default(&lim);
	lim.max_scansize = 5 * 1024 * 1024;
	lim.max_filesize = 3 * 1024 * 1024;
	lim.max_recursion = 7;
	lim.max_files = 99;
	lim.max_scantime = 20000;
	struct scan_engine *e = load_test_db(&lim);
	const struct engine_info *in = engine_info(e);
	cr_expect_eq(in->max_scansize, lim.max_scansize);
	cr_expect_eq(in->max_filesize, lim.max_filesize);
	cr_expect_eq(in->max_recursion, 7);
	cr_expect_eq(in->max_files, 99);
	cr_expect_eq(in->max_scantime, 20000);
	engine_release(e);
}

/* ---- scanning ----------------------------------------------------------- */

Test(engine, scan_test_messages)
{
	struct scan_engine *e = load_test_db(NULL);
	for (size_t i = 0; i < NCASES; i++) {
		struct scan_result res;
		cr_expect_eq(scan_mail(e, msg_cases[i].file, &res), res.status);
		expect_result(&res, &msg_cases[i], "whole file");
		cr_expect_gt(res.size, 0);
		if (msg_cases[i].want == SCAN_CLEAN)
			cr_expect_str_empty(res.name, "%s", msg_cases[i].file);
	}
	engine_release(e);
}

/* The message after an envelope block, at offsets below and above one page
 * and never page-aligned: the same verdicts as the bare message. */
Test(engine, scan_from_offset)
{
	static const size_t prefix_sizes[] = {333, 5000};
	struct scan_engine *e = load_test_db(NULL);
	char *dir = make_tmpdir();

	for (size_t p = 0; p < sizeof(prefix_sizes) / sizeof(prefix_sizes[0]); p++) {
		size_t plen = prefix_sizes[p];
		char *prefix = xmalloc(plen);
		/* Text lines like an envelope block, ending with "end". */
		memset(prefix, 'x', plen);
		for (size_t k = 63; k < plen; k += 64)
			prefix[k] = '\n';
		memcpy(prefix, "tempomx-envelope 1\n", 19);
		memcpy(prefix + plen - 4, "end\n", 4);

		char *spath;
		xasprintf(&spath, "%s/spoolfile", dir);
		for (size_t i = 0; i < NCASES; i++) {
			size_t mlen;
			char *msg = read_mail(msg_cases[i].file, &mlen);
			int fd = open(spath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			cr_assert_geq(fd, 0, "%s: %s", spath, strerror(errno));
			write_all(fd, prefix, plen);
			write_all(fd, msg, mlen);
			cr_assert_eq(lseek(fd, 17, SEEK_SET), 17);

			struct scan_result res;
			engine_scan_fd(e, fd, (off_t)plen, &res);
			char what[64];
			snprintf(what, sizeof(what), "after a %zu-octet envelope", plen);
			expect_result(&res, &msg_cases[i], what);
			cr_expect_eq(res.size, mlen, "only the message is scanned");
			cr_expect_eq(lseek(fd, 0, SEEK_CUR), 17, "file position untouched");
			close(fd);
			free(msg);
		}
		free(spath);
		free(prefix);
	}
	remove_tmpdir(dir);
	engine_release(e);
}

/* What lies before the offset is not scanned: an envelope that carries the
 * test string (a client can put anything in HELO) does not taint a clean
 * message, while the same file scanned whole does. */
Test(engine, scan_skips_envelope)
{
	struct scan_engine *e = load_test_db(NULL);
	size_t elen, mlen;
	char *eicar_msg = read_mail("eicar-plain.eml", &elen);
	char *clean = read_mail("clean-plain.eml", &mlen);

	int fd = memfd_create("spoolfile", MFD_CLOEXEC);
	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	const char *h1 = "tempomx-envelope 1\nhelo ";
	write_all(fd, h1, strlen(h1));
	write_all(fd, eicar_msg, elen);
	write_all(fd, "\nend\n", 5);
	off_t off = lseek(fd, 0, SEEK_CUR);
	write_all(fd, clean, mlen);

	struct scan_result res;
	cr_expect_eq(engine_scan_fd(e, fd, off, &res), SCAN_CLEAN, "message only: %s", res.name);
	cr_expect_eq(engine_scan_fd(e, fd, 0, &res), SCAN_VIRUS, "whole file");
	cr_expect_str_eq(res.name, NAME_EICAR);
	close(fd);
	free(eicar_msg);
	free(clean);
	engine_release(e);
}

Test(engine, scan_bad_offsets_and_descriptors)
{
	struct scan_engine *e = load_test_db(NULL);
	char *path = mail_path("clean-plain.eml");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	struct scan_result res;

	cr_expect_eq(engine_scan_fd(e, fd, st.st_size + 1, &res), SCAN_ERROR);
	cr_expect_not_null(strstr(res.name, "outside the file"), "%s", res.name);
	cr_expect_eq(engine_scan_fd(e, fd, -1, &res), SCAN_ERROR);
	/* An empty message (offset at the end) has nothing to find. */
	cr_expect_eq(engine_scan_fd(e, fd, st.st_size, &res), SCAN_CLEAN);
	cr_expect_eq(res.size, 0);
	close(fd);

	cr_expect_eq(engine_scan_fd(e, fd, 0, &res), SCAN_ERROR, "closed descriptor");
	cr_expect_not_null(strstr(res.name, "fstat"), "%s", res.name);
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	cr_expect_eq(engine_scan_fd(e, pfd[0], 0, &res), SCAN_ERROR, "pipe");
	close(pfd[0]);
	close(pfd[1]);
	free(path);
	engine_release(e);
}

/* Every file of clamav-testfiles holds clam.exe in some form (packed,
 * archived, embedded, encoded); the hash database names clam.exe itself
 * and a few containers. */
Test(engine, scan_clamav_testfiles)
{
	DIR *d = opendir(TESTFILES);
	if (d == NULL)
		cr_skip_test("%s not installed (apt-get install clamav-testfiles)", TESTFILES);
	struct scan_engine *e = load_test_db(NULL);
	struct dirent *de;
	unsigned nfiles = 0;
	while ((de = readdir(d)) != NULL && nfiles < 1000) {
		if (de->d_name[0] == '.')
			continue;
		char *p;
		xasprintf(&p, "%s/%s", TESTFILES, de->d_name);
		struct scan_result res;
		scan_path(e, p, &res);
		cr_expect_eq(res.status, SCAN_VIRUS, "%s: %s %s", de->d_name,
		             scan_status_name(res.status), res.name);
		cr_expect_eq(strncmp(res.name, "Tempomx.TestFile.", 17), 0, "%s: %s", de->d_name,
		             res.name);
		size_t n = strlen(res.name);
		cr_expect(n > 11 && strcmp(res.name + n - 11, ".UNOFFICIAL") == 0, "%s: %s",
		          de->d_name, res.name);
		if (strcmp(de->d_name, "clam.exe") == 0)
			cr_expect_str_eq(res.name, NAME_CLAMEXE);
		if (strcmp(de->d_name, "clam.pdf") == 0)
			cr_expect_str_eq(res.name, NAME_CLAMPDF);
		free(p);
		nfiles++;
	}
	closedir(d);
	cr_expect_gt(nfiles, 10, "only %u test files", nfiles);
	engine_release(e);
}

Test(engine, limits_exceeded_reported_when_asked)
{
	const char *pdf = "clampdf.eml"; /* about 10 KB, a hit near the end */
	struct engine_limits lim;
	struct scan_result res;

	/* Quietly: what does not fit is not scanned, so the hit is missed. */
	engine_limits_default(&lim);
	lim.max_filesize = 2000;
	struct scan_engine *e = load_test_db(&lim);
	cr_expect_eq(scan_mail(e, pdf, &res), SCAN_CLEAN, "%s", res.name);
	engine_release(e);

	/* With alerts on, the hit limit is named. */
	lim.alert_exceeds_max = 1;
	e = load_test_db(&lim);
	cr_expect_eq(scan_mail(e, pdf, &res), SCAN_EXCEEDED, "%s %s", scan_status_name(res.status),
	             res.name);
	cr_expect_str_eq(res.name, "Heuristics.Limits.Exceeded.MaxFileSize");
	engine_release(e);

	/* A signature inside the limits still wins. */
	lim.max_filesize = 0;
	lim.max_scansize = 2000;
	e = load_test_db(&lim);
	cr_expect_eq(scan_mail(e, "eicar-plain.eml", &res), SCAN_VIRUS, "%s", res.name);
	cr_expect_str_eq(res.name, NAME_EICAR);
	cr_expect_eq(scan_mail(e, pdf, &res), SCAN_EXCEEDED, "%s", res.name);
	cr_expect_str_eq(res.name, "Heuristics.Limits.Exceeded.MaxScanSize");
	engine_release(e);
}

Test(engine, encrypted_archive_reported_when_asked)
{
	struct engine_limits lim;
	struct scan_result res;
	engine_limits_default(&lim);
	lim.alert_encrypted = 1;
	struct scan_engine *e = load_test_db(&lim);
	cr_expect_eq(scan_mail(e, "encrypted-zip.eml", &res), SCAN_VIRUS, "%s", res.name);
	cr_expect_str_eq(res.name, "Heuristics.Encrypted.Zip");
	/* Clean unencrypted archives are not affected. */
	cr_expect_eq(scan_mail(e, "clean-multipart.eml", &res), SCAN_CLEAN, "%s", res.name);
	engine_release(e);
}

/* ---- threads ----------------------------------------------------------- */

#define NTHREADS 4
#define ROUNDS 15

struct worker {
	struct scan_engine *e;
	int id;
	unsigned scans;
	unsigned failures;
	char first_failure[512];
};

/* Scan fd (closed here; -1: it could not be made) and compare. */
static void worker_check(struct worker *w, int fd, const char *what, enum scan_status want,
                         const char *name)
{
	struct scan_result res;
	if (fd < 0) {
		res.status = SCAN_ERROR;
		snprintf(res.name, sizeof(res.name), "%s", strerror(errno));
	} else {
		engine_scan_fd(w->e, fd, 0, &res);
		close(fd);
		w->scans++;
	}
	if ((res.status != want || (name != NULL && strcmp(res.name, name) != 0)) &&
	    w->failures++ == 0)
		snprintf(w->first_failure, sizeof(w->first_failure), "%s: %s '%s'", what,
		         scan_status_name(res.status), res.name);
}

/* A message no other scan has seen, so libclamav's clean cache cannot
 * answer for it; odd rounds carry the test string in the body. */
static int unique_message(int id, int round)
{
	int fd = memfd_create("unique", MFD_CLOEXEC);
	if (fd >= 0 &&
	    dprintf(fd,
	            "From: <w%d@example.test>\r\nTo: <bob@example.net>\r\n"
	            "Subject: thread %d round %d\r\n\r\nbody %d/%d %ld\r\n%s%s\r\n",
	            id, id, round, id, round, (long)mono_usec(),
	            (round % 2) ? "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" : "",
	            (round % 2) ? "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*" : "plain text") < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < NCASES; i++) {
			const struct msg_case *c = &msg_cases[(i + (size_t)w->id) % NCASES];
			char *path = mail_path(c->file); /* threads out of step */
			worker_check(w, open(path, O_RDONLY | O_CLOEXEC), c->file, c->want,
			             c->name);
			free(path);
		}
		worker_check(w, unique_message(w->id, round), "unique message",
		             (round % 2) ? SCAN_VIRUS : SCAN_CLEAN,
		             (round % 2) ? NAME_EICAR : NULL);
	}
	return NULL;
}

Test(engine, concurrent_scans_share_one_engine)
{
	struct scan_engine *e = load_test_db(NULL);
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].e = engine_acquire(e);
		w[i].id = i;
		cr_assert_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	engine_release(e); /* the workers' references keep it alive */
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(w[i].failures, 0, "thread %d: %u failures, first: %s", i,
		             w[i].failures, w[i].first_failure);
		cr_expect_eq(w[i].scans, ROUNDS * (NCASES + 1));
		engine_release(w[i].e);
	}
}

/* ---- holder and reload -------------------------------------------------- */

/* sem_wait with a 30 s limit, so a broken test ends instead of hanging. */
static int sem_wait_30s(sem_t *s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	int rc;
	do
		rc = sem_timedwait(s, &ts);
	while (rc < 0 && errno == EINTR);
	return rc;
}

static void sem_wait_bounded(sem_t *s)
{
	cr_assert_eq(sem_wait_30s(s), 0, "sem_timedwait: %s", strerror(errno));
}

/* Records what the reload hook saw. engine_reload_wait() returning
 * orders the hook's writes before the test's reads (holder mutex). With
 * block_first, the first call waits inside the hook, so a reload is known
 * to be running while the test makes more requests. */
struct hook_log {
	int block_first;
	sem_t in_hook, release;
	unsigned calls;
	int ok[4];
	unsigned sigs[4];
	struct engine_reload_report last;
};

static void hook_fn(void *arg, const struct engine_reload_report *r)
{
	struct hook_log *hl = arg;
	unsigned n = hl->calls++;
	if (n < 4) {
		hl->ok[n] = r->ok;
		hl->sigs[n] = r->info.signatures;
	}
	hl->last = *r;
	if (n == 0 && hl->block_first) {
		sem_post(&hl->in_hook);
		sem_wait_30s(&hl->release);
	}
}

static void holder_start(struct engine_holder *h, struct scan_engine *e, struct hook_log *hl,
                         int block_first)
{
	memset(hl, 0, sizeof(*hl));
	hl->block_first = block_first;
	sem_init(&hl->in_hook, 0, 0);
	sem_init(&hl->release, 0, 0);
	engine_holder_init(h, e);
	engine_holder_set_hook(h, hook_fn, hl);
}

static void holder_end(struct engine_holder *h, struct hook_log *hl)
{
	engine_holder_destroy(h);
	sem_destroy(&hl->in_hook);
	sem_destroy(&hl->release);
}

struct holder_user {
	struct engine_holder *h;
	sem_t got, go;
	struct scan_result res;
	unsigned sigs_seen;
};

/* Takes the current engine, waits while the main thread swaps in another,
 * then scans with the engine it holds and lets go of it. */
static void *holder_user_main(void *arg)
{
	struct holder_user *u = arg;
	struct scan_engine *e = engine_holder_get(u->h);
	sem_post(&u->got);
	sem_wait_30s(&u->go);
	if (e == NULL)
		return NULL;
	u->sigs_seen = engine_info(e)->signatures;
	char *path = mail_path("clamexe-zip.eml");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		engine_scan_fd(e, fd, 0, &u->res);
		close(fd);
	}
	free(path);
	engine_release(e); /* the last reference: frees the old engine */
	return NULL;
}

Test(engine, reload_swaps_while_old_engine_in_use)
{
	struct scan_engine *old = load_test_db(NULL);
	unsigned old_sigs = engine_info(old)->signatures;
	struct engine_holder h;
	struct hook_log hl;
	holder_start(&h, old, &hl, 0);

	struct holder_user u;
	memset(&u, 0, sizeof(u));
	u.h = &h;
	sem_init(&u.got, 0, 0);
	sem_init(&u.go, 0, 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, holder_user_main, &u), 0);
	sem_wait_bounded(&u.got);

	/* The new database has the body signature only. */
	char *dir = make_tmpdir();
	copy_db_file(dir, "test.ndb");
	struct engine_limits lim;
	engine_limits_default(&lim);
	cr_expect_eq(engine_reload_start(&h, dir, &lim), 0);
	cr_assert_eq(engine_reload_wait(&h, 30 * 1000000LL), 0, "reload did not finish");
	cr_expect_eq(engine_holder_generation(&h), 1);
	cr_expect_eq(hl.calls, 1, "hook called once");
	cr_expect_eq(hl.last.ok, 1, "%s", hl.last.err);
	cr_expect_eq(hl.last.info.signatures, 1);
	cr_expect_str_eq(hl.last.info.dbdir, dir);

	struct scan_engine *cur = engine_holder_get(&h);
	cr_assert_not_null(cur);
	cr_expect_eq(engine_info(cur)->signatures, 1);
	struct scan_result res;
	cr_expect_eq(scan_mail(cur, "clamexe-zip.eml", &res), SCAN_CLEAN, "new engine: no hdb");
	cr_expect_eq(scan_mail(cur, "eicar-zip.eml", &res), SCAN_VIRUS);
	cr_expect_str_eq(res.name, NAME_EICAR);
	engine_release(cur);

	/* Only now the other thread scans with the engine it took before the
	 * swap, and drops the last reference to it. */
	sem_post(&u.go);
	pthread_join(th, NULL);
	cr_expect_eq(u.sigs_seen, old_sigs);
	cr_expect_eq(u.res.status, SCAN_VIRUS, "old engine still works: %s", u.res.name);
	cr_expect_str_eq(u.res.name, NAME_CLAMEXE);

	holder_end(&h, &hl);
	sem_destroy(&u.got);
	sem_destroy(&u.go);
	remove_tmpdir(dir);
}

Test(engine, failed_reload_keeps_old_engine)
{
	struct scan_engine *old = load_test_db(NULL);
	struct engine_holder h;
	struct hook_log hl;
	holder_start(&h, old, &hl, 0);
	struct engine_limits lim;
	engine_limits_default(&lim);

	char *bad = make_tmpdir();
	put_file(bad, "broken.ndb", "Broken:0:*:zz\n", 14);
	const char *dirs[] = {"/nonexistent/tempomx-db", bad};
	for (size_t i = 0; i < 2; i++) {
		cr_expect_eq(engine_reload_start(&h, dirs[i], &lim), 0);
		cr_assert_eq(engine_reload_wait(&h, 30 * 1000000LL), 0);
		cr_expect_eq(hl.calls, i + 1);
		cr_expect_eq(hl.last.ok, 0, "%s should fail", dirs[i]);
		cr_expect_not_null(strstr(hl.last.err, dirs[i]), "%s", hl.last.err);
		cr_expect_eq(hl.last.info.signatures, engine_info(old)->signatures,
		             "report names the engine kept");
		cr_expect_eq(engine_holder_generation(&h), 0);
		struct scan_engine *cur = engine_holder_get(&h);
		cr_expect_eq(cur, old, "the old engine stays current");
		struct scan_result res;
		cr_expect_eq(scan_mail(cur, "clamexe-zip.eml", &res), SCAN_VIRUS);
		engine_release(cur);
	}
	holder_end(&h, &hl);
	remove_tmpdir(bad);
}

Test(engine, reload_requests_during_a_reload_are_queued)
{
	struct engine_holder h;
	struct hook_log b;
	holder_start(&h, NULL, &b, 1);
	cr_expect_null(engine_holder_get(&h), "no engine yet");

	char *ndb_only = make_tmpdir();
	copy_db_file(ndb_only, "test.ndb");
	char *full = data_path("clamav");
	struct engine_limits lim;
	engine_limits_default(&lim);

	cr_expect_eq(engine_reload_start(&h, ndb_only, &lim), 0);
	sem_wait_bounded(&b.in_hook);
	/* The first reload is done but its thread is still busy. */
	cr_expect_eq(engine_reload_wait(&h, 10000), -1, "wait times out while it runs");
	cr_expect_eq(engine_reload_start(&h, "/nonexistent/tempomx-db", &lim), 1);
	cr_expect_eq(engine_reload_start(&h, full, &lim), 1, "the latest request wins");
	sem_post(&b.release);
	cr_assert_eq(engine_reload_wait(&h, 30 * 1000000LL), 0);

	cr_expect_eq(b.calls, 2, "two runs: the first and the merged one (%u)", b.calls);
	cr_expect_eq(b.ok[0], 1);
	cr_expect_eq(b.sigs[0], 1);
	cr_expect_eq(b.ok[1], 1);
	struct scan_engine *cur = engine_holder_get(&h);
	cr_assert_not_null(cur);
	cr_expect_str_eq(engine_info(cur)->dbdir, full);
	cr_expect_eq(b.sigs[1], engine_info(cur)->signatures);
	engine_release(cur);
	cr_expect_eq(engine_holder_generation(&h), 2);

	holder_end(&h, &b);
	remove_tmpdir(ndb_only);
	free(full);
}
