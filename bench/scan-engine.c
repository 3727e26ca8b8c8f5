/*
 * bench/scan-engine.c: scan throughput of the scanner's engine, run by
 * bench/scan (not part of "make check").
 *
 * Writes n messages of about the given size into a directory (each with
 * unique content, since libclamav caches clean results by content hash),
 * loads the database once and scans every message with t threads sharing
 * the engine, exactly as the scanner's workers do (engine_scan_fd on the
 * whole RFC 5322 message, mail parsing on). Prints one line:
 *   size threads messages seconds msg/s
 *
 * A message is text headers, a text part and a base64 attachment of
 * pseudo-random octets making up the rest of the size, so the MIME
 * decoder and the attachment scan both do their work.
 *
 * usage: scan-engine -d dbdir -w workdir -s size -t threads -n count
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "scan.h"
#include "util.h"

static struct scan_engine *bench_engine;
static const char *bench_dir;
static unsigned bench_n;
static atomic_uint bench_next;
static atomic_uint bench_bad;

static void bench_write(const char *path, size_t size, unsigned seed)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	FILE *fp = fopen(path, "w");
	if (fp == NULL)
		fatal("%s", path);
	size_t n = (size_t)fprintf(fp,
	                           "From: bench@example.test\r\nTo: user@example.test\r\n"
	                           "Subject: bench %u\r\nMIME-Version: 1.0\r\n"
	                           "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	                           "--b\r\nContent-Type: text/plain\r\n\r\nmessage %u\r\n"
	                           "--b\r\nContent-Type: application/octet-stream\r\n"
	                           "Content-Transfer-Encoding: base64\r\n\r\n",
	                           seed, seed);
	unsigned x = seed * 2654435761u + 1;
	while (n + 90 < size) {
		char line[80];
		for (int i = 0; i < 76; i++) {
			x = x * 1103515245u + 12345u;
			line[i] = b64[(x >> 16) & 63];
		}
		line[76] = '\r';
		line[77] = '\n';
		fwrite(line, 1, 78, fp);
		n += 78;
	}
	fputs("--b--\r\n", fp);
	if (fclose(fp) != 0)
		fatal("%s", path);
}

static void *bench_thread(void *arg)
{
	char path[4096];
	struct scan_result res;
	(void)arg;
	for (;;) {
		unsigned i = atomic_fetch_add(&bench_next, 1);
		if (i >= bench_n)
			break;
		snprintf(path, sizeof(path), "%s/m%u.eml", bench_dir, i);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			fatal("%s", path);
		if (engine_scan_fd(bench_engine, fd, 0, &res) != SCAN_CLEAN)
			atomic_fetch_add(&bench_bad, 1);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *db = NULL;
	size_t size = 2048;
	unsigned threads = 1;
	char err[512];
	int ch;

	log_init("scan-engine", 1, 0);
	while ((ch = getopt(argc, argv, "d:w:s:t:n:")) != -1) {
		switch (ch) {
		case 'd':
			db = optarg;
			break;
		case 'w':
			bench_dir = optarg;
			break;
		case 's':
			size = strtoul(optarg, NULL, 10);
			break;
		case 't':
			threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			bench_n = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr,
			        "usage: scan-engine -d dbdir -w dir -s size -t threads -n count\n");
			return 1;
		}
	}
	if (db == NULL || bench_dir == NULL || threads < 1 || threads > 64 || bench_n < 1) {
		fprintf(stderr, "usage: scan-engine -d dbdir -w dir -s size -t threads -n count\n");
		return 1;
	}
	/* Unique content per size, thread count and message. */
	for (unsigned i = 0; i < bench_n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/m%u.eml", bench_dir, i);
		bench_write(path, size, (unsigned)(size * 131 + threads * 7919 + i));
	}
	struct engine_limits lim;
	engine_limits_default(&lim);
	bench_engine = engine_load(db, &lim, err, sizeof(err));
	if (bench_engine == NULL) {
		fprintf(stderr, "scan-engine: %s\n", err);
		return 1;
	}
	pthread_t tids[64];
	int64_t t0 = mono_usec();
	for (unsigned i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, bench_thread, NULL) != 0)
			fatalx("pthread_create");
	for (unsigned i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	double secs = (double)(mono_usec() - t0) / 1e6;
	engine_release(bench_engine);
	if (atomic_load(&bench_bad) > 0)
		fprintf(stderr, "scan-engine: %u messages not reported clean\n",
		        atomic_load(&bench_bad));
	printf("%zu %u %u %.3f %.1f\n", size, threads, bench_n, secs, bench_n / secs);
	return 0;
}
