/*
 * bench/history/lookup.c: latency of the sender-history store with a
 * large history. Fills a store with N records (default 1,000,000: IPv4
 * hosts four to a /24, plus their /24 records), then prints a table of
 * lookup, lookup+predict, record and sweep latencies (p50, p99, p99.9).
 *
 * Built by "make bench/history-lookup" (src/history/Makefile.inc), not
 * part of "make check". Usage:
 *     bench/history-lookup [-n records] [-d directory] [-k]
 * Without -d the store goes in a fresh directory under /tmp, removed at
 * the end unless -k is given.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "log.h"
#include "util.h"

#define HOSTS_PER_NET 4
#define FILL_BATCH 10000
#define LOOKUPS 200000
#define SINGLE_UPDATES 2000
#define BATCHES 200
#define BATCH_EVENTS 100
#define SWEEPS 50
#define SWEEP_RECORDS 10000

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A bijection on 24 bits (odd multiplier), so /24 networks are distinct
 * but spread over the address space like real senders. */
static uint32_t net_base(uint32_t j)
{
	return ((j * 2654435761u) & 0xffffffu) << 8;
}

static void host_addr(uint32_t i, struct sockaddr_in *s4)
{
	memset(s4, 0, sizeof(*s4));
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(net_base(i / HOSTS_PER_NET) | (i % HOSTS_PER_NET + 1));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void fmt_ns(int64_t ns, char *out, size_t size)
{
	if (ns < 10000)
		snprintf(out, size, "%.2f us", ns / 1e3);
	else if (ns < 10000000)
		snprintf(out, size, "%.1f us", ns / 1e3);
	else
		snprintf(out, size, "%.1f ms", ns / 1e6);
}

/* Nearest-rank percentile of sorted samples. */
static int64_t pct(const int64_t *v, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void row(const char *what, int64_t *v, size_t n)
{
	char p50[32], p99[32], p999[32], mean[32];
	int64_t sum = 0;
	qsort(v, n, sizeof(*v), cmp_i64);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	fmt_ns(pct(v, n, 0.50), p50, sizeof(p50));
	fmt_ns(pct(v, n, 0.99), p99, sizeof(p99));
	fmt_ns(pct(v, n, 0.999), p999, sizeof(p999));
	fmt_ns(sum / (int64_t)n, mean, sizeof(mean));
	printf("%-32s %8zu %11s %11s %11s %11s\n", what, n, p50, p99, p999, mean);
}

struct reader {
	struct history *h;
	uint32_t hosts;
	unsigned seed;
	size_t found;
	int64_t elapsed;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	int64_t t0 = now_ns();
	for (int i = 0; i < LOOKUPS; i++) {
		struct sockaddr_in s4;
		struct history_entry host, agg;
		host_addr((uint32_t)rand_r(&r->seed) % r->hosts, &s4);
		if (history_lookup(r->h, (struct sockaddr *)&s4, time(NULL), &host, &agg) == 0 &&
		    host.present)
			r->found++;
	}
	r->elapsed = now_ns() - t0;
	return NULL;
}

static void print_load(const char *when)
{
	char buf[128] = "?";
	FILE *fp = fopen("/proc/loadavg", "r");
	if (fp != NULL) {
		if (fgets(buf, sizeof(buf), fp) == NULL)
			snprintf(buf, sizeof(buf), "?\n");
		fclose(fp);
	}
	printf("load average %s: %s", when, buf);
}

static void usage(void)
{
	fprintf(stderr, "usage: history-lookup [-n records] [-d directory] [-k]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long records = 1000000;
	const char *dir = NULL;
	char tmp[64], path[512];
	int keep = 0, c;
	while ((c = getopt(argc, argv, "n:d:k")) != -1) {
		switch (c) {
		case 'n':
			records = strtol(optarg, NULL, 10);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'k':
			keep = 1;
			break;
		default:
			usage();
		}
	}
	if (records < HOSTS_PER_NET + 1 || records > 100000000)
		usage();
	log_init("history-lookup", 1, 0);
	if (dir == NULL) {
		snprintf(tmp, sizeof(tmp), "/tmp/history-bench.XXXXXX");
		if (mkdtemp(tmp) == NULL)
			fatal("mkdtemp");
		dir = tmp;
	}
	snprintf(path, sizeof(path), "%s/db", dir);

	char err[512];
	struct history *h = history_open(path, 0, err, sizeof(err));
	if (h == NULL)
		fatalx("%s", err);
	int64_t now = time(NULL);
	print_load("before");

	/* Fill: records = hosts + nets, four hosts per net. */
	uint32_t nets = (uint32_t)(records / (HOSTS_PER_NET + 1));
	uint32_t hosts = nets * HOSTS_PER_NET;
	struct history_event *ev = xcalloc(FILL_BATCH, sizeof(*ev));
	struct sockaddr_in *sa = xcalloc(FILL_BATCH, sizeof(*sa));
	int64_t t0 = now_ns();
	for (uint32_t base = 0; base < hosts; base += FILL_BATCH) {
		uint32_t m = hosts - base < FILL_BATCH ? hosts - base : FILL_BATCH;
		for (uint32_t i = 0; i < m; i++) {
			host_addr(base + i, &sa[i]);
			ev[i].addr = (struct sockaddr *)&sa[i];
			ev[i].flags = HISTORY_EV_SESSION | HISTORY_EV_HI | HISTORY_EV_SCORE;
			ev[i].score = 0.1;
			ev[i].now = now;
		}
		if (history_record_many(h, ev, m) != 0)
			fatalx("fill failed");
	}
	int64_t fill_ns = now_ns() - t0;
	size_t nrec = 0, map = 0;
	struct stat st;
	char data[600];
	snprintf(data, sizeof(data), "%s/data.mdb", path);
	if (history_stat(h, &nrec, &map) != 0 || stat(data, &st) != 0)
		fatalx("stat failed");
	printf("history store: %zu records (%u hosts, %u /24 networks), data.mdb %lld MiB, "
	       "map %zu MiB\n",
	       nrec, hosts, nets, (long long)(st.st_size >> 20), map >> 20);
	printf("fill: %.1f s, %.0f events/s in transactions of %d events\n\n", fill_ns / 1e9,
	       hosts / (fill_ns / 1e9), FILL_BATCH);
	printf("%-32s %8s %11s %11s %11s %11s\n", "operation", "count", "p50", "p99", "p99.9",
	       "mean");

	int64_t *lat = xcalloc(LOOKUPS, sizeof(*lat));
	unsigned seed = 12345;
	struct history_params params = {.junk_threshold = HISTORY_DEFAULT_JUNK_THRESHOLD,
	                                .min_history = HISTORY_DEFAULT_MIN_HISTORY,
	                                .max_age = HISTORY_DEFAULT_MAX_AGE,
	                                .net_junk_hosts = HISTORY_DEFAULT_NET_JUNK_HOSTS,
	                                .net_good_hosts = HISTORY_DEFAULT_NET_GOOD_HOSTS,
	                                .net_overwhelming = HISTORY_DEFAULT_NET_OVERWHELMING};
	size_t found = 0;
	/* 90% known hosts, 10% addresses never seen (a random /24 offset
	 * that the fill did not use: host part .200). */
	static const char *const pass_name[] = {"lookup, first touch of the map",
	                                        "lookup (host + /24)", "lookup + predict"};
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < LOOKUPS; i++) {
			struct sockaddr_in s4;
			struct history_entry host, agg;
			struct history_prediction pr;
			uint32_t r = (uint32_t)rand_r(&seed);
			host_addr(r % hosts, &s4);
			if (r % 10 == 0)
				s4.sin_addr.s_addr = htonl(net_base(r % (nets * 2)) | 200);
			int64_t a = now_ns();
			if (history_lookup(h, (struct sockaddr *)&s4, now, &host, &agg) != 0)
				fatalx("lookup failed");
			if (pass == 2)
				history_predict(&host, &agg, &params, now, &pr);
			lat[i] = now_ns() - a;
			found += pass == 0 && host.present;
		}
		row(pass_name[pass], lat, LOOKUPS);
	}

	for (int i = 0; i < SINGLE_UPDATES; i++) {
		struct sockaddr_in s4;
		host_addr((uint32_t)rand_r(&seed) % hosts, &s4);
		struct history_event e = {(struct sockaddr *)&s4,
		                          HISTORY_EV_SESSION | HISTORY_EV_HI, 0.0, now};
		int64_t a = now_ns();
		if (history_record(h, &e) != 0)
			fatalx("record failed");
		lat[i] = now_ns() - a;
	}
	row("record, 1 event/transaction", lat, SINGLE_UPDATES);

	for (int b = 0; b < BATCHES; b++) {
		for (int i = 0; i < BATCH_EVENTS; i++) {
			host_addr((uint32_t)rand_r(&seed) % hosts, &sa[i]);
			ev[i].addr = (struct sockaddr *)&sa[i];
			ev[i].flags = HISTORY_EV_SESSION | HISTORY_EV_LO;
			ev[i].now = now;
		}
		int64_t a = now_ns();
		if (history_record_many(h, ev, BATCH_EVENTS) != 0)
			fatalx("record_many failed");
		lat[b] = now_ns() - a;
	}
	row("record_many, 100 events/txn", lat, BATCHES);

	for (int i = 0; i < SWEEPS; i++) {
		int64_t a = now_ns();
		if (history_sweep(h, now, HISTORY_DEFAULT_MAX_AGE, SWEEP_RECORDS, NULL) < 0)
			fatalx("sweep failed");
		lat[i] = now_ns() - a;
	}
	row("sweep, 10000 records examined", lat, SWEEPS);

	/* Two threads sharing one handle (MDB_NOTLS read transactions). */
	struct reader rd[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct reader){h, hosts, 777u + (unsigned)i, 0, 0};
		pthread_create(&th[i], NULL, reader_main, &rd[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	double secs = (rd[0].elapsed > rd[1].elapsed ? rd[0].elapsed : rd[1].elapsed) / 1e9;
	printf("\n2 threads, one handle: %.0f lookups/s in total (%zu of %d found)\n",
	       2 * LOOKUPS / secs, rd[0].found + rd[1].found, 2 * LOOKUPS);
	printf("single thread: %zu of %d lookups found a host record (~90%% expected)\n", found,
	       LOOKUPS);

	print_load("after");
	history_close(h);
	free(lat);
	free(ev);
	free(sa);
	if (!keep && dir == tmp) {
		unlink(data);
		snprintf(data, sizeof(data), "%s/lock.mdb", path);
		unlink(data);
		rmdir(path);
		rmdir(tmp);
	}
	return 0;
}
