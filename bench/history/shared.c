/*
 * bench/history/shared.c: how long smtpd's history lookup at connect
 * takes with each store: LMDB (history_lookup(), what smtpd does without
 * Redis), and Redis on a unix socket and on loopback TCP through the code
 * smtpd runs (history_async_lookup() in a libevent loop, from the call to
 * the callback). The store is filled with the same N records everywhere
 * (IPv4 hosts four to a /24, recorded through the backends), then the
 * stores take turns: R rounds of L lookups of random known hosts each,
 * lmdb, unix, tcp, lmdb, ... so a machine that gets busier affects all
 * three alike. Prints p50, p99 and p99.9 per store over all its rounds.
 *
 * Built by "make bench/history-shared" (src/history/Makefile.inc), run
 * by bench/history/smtpd, which starts the private redis-server:
 *     bench/history-shared -u SOCKET -p PORT [-n records] [-l lookups]
 *                          [-r rounds] [-d directory]
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history_store.h"
#include "log.h"
#include "util.h"

#define HOSTS_PER_NET 4
#define FILL_BATCH 1000

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void host_addr(uint32_t i, struct sockaddr_in *s4)
{
	uint32_t net = ((i / HOSTS_PER_NET) * 2654435761u & 0xffffffu) << 8;
	memset(s4, 0, sizeof(*s4));
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(net | (i % HOSTS_PER_NET + 1));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *v, size_t n, double q)
{
	size_t rank = (size_t)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	return v[(rank > n ? n : rank) - 1];
}

struct run {
	struct event_base *base;
	struct history_async *a;
	uint32_t nrec;
	size_t want, done, failed;
	int64_t t0;
	int64_t *lat;
	struct sockaddr_in s4;
};

static void next(struct run *r);

static void answered(void *arg, int ok, const struct history_entry *host,
                     const struct history_entry *agg)
{
	struct run *r = arg;
	(void)agg;
	r->lat[r->done++] = now_ns() - r->t0;
	if (!ok || host == NULL || !host->present)
		r->failed++;
	if (r->done < r->want)
		next(r);
	else
		event_base_loopbreak(r->base);
}

static void next(struct run *r)
{
	host_addr((uint32_t)random() % r->nrec, &r->s4);
	r->t0 = now_ns();
	if (history_async_lookup(r->a, (struct sockaddr *)&r->s4, time(NULL), answered, r) ==
	    NULL) {
		fprintf(stderr, "history-shared: Redis not connected\n");
		exit(1);
	}
}

static void wait_up(struct event_base *base, struct history_async *a)
{
	for (int i = 0; i < 100 && !history_async_up(a); i++) {
		struct timeval tv = {0, 50000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	if (!history_async_up(a)) {
		fprintf(stderr, "history-shared: cannot reach Redis\n");
		exit(1);
	}
}

static void report(const char *name, int64_t *v, size_t n, size_t failed)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	printf("%-10s %8zu %10.1f %10.1f %10.1f %8zu\n", name, n, pct(v, n, 0.5) / 1e3,
	       pct(v, n, 0.99) / 1e3, pct(v, n, 0.999) / 1e3, failed);
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *dir = NULL;
	int port = 0, opt;
	uint32_t nrec = 100000;
	size_t lookups = 5000, rounds = 6;
	while ((opt = getopt(argc, argv, "u:p:n:l:r:d:")) != -1) {
		switch (opt) {
		case 'u':
			sock = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			nrec = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'l':
			lookups = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: history-shared -u socket -p port [-n records] "
			                "[-l lookups] [-r rounds] [-d dir]\n");
			return 2;
		}
	}
	if (sock == NULL || port == 0 || nrec < HOSTS_PER_NET || lookups == 0) {
		fprintf(stderr, "history-shared: -u and -p are needed\n");
		return 2;
	}
	log_init("history-shared", 1, 0);
	char tmpl[] = "/tmp/history-shared.XXXXXX";
	if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL)
		fatal("mkdtemp");
	char err[512], spec[300];
	struct history *h = history_open(dir, 0, err, sizeof(err));
	if (h == NULL)
		fatalx("%s", err);
	struct history_remote ru, rt;
	int is_remote;
	snprintf(spec, sizeof(spec), "unix:%s", sock);
	if (history_remote_parse(spec, &ru, &is_remote, err, sizeof(err)) != 0)
		fatalx("%s", err);
	snprintf(spec, sizeof(spec), "redis://127.0.0.1:%d", port);
	if (history_remote_parse(spec, &rt, &is_remote, err, sizeof(err)) != 0)
		fatalx("%s", err);
	ru.timeout_ms = rt.timeout_ms = 200;

	/* The same records in both stores (one Redis serves both sockets). */
	struct history_backend rb = history_redis_backend(&ru, 24, 64, HISTORY_DEFAULT_MAX_AGE);
	struct history_event *ev = xcalloc(FILL_BATCH, sizeof(*ev));
	struct sockaddr_in *sa = xcalloc(FILL_BATCH, sizeof(*sa));
	int64_t t = time(NULL);
	int64_t fill0 = now_ns();
	for (uint32_t i = 0; i < nrec; i += FILL_BATCH) {
		size_t n = nrec - i < FILL_BATCH ? nrec - i : FILL_BATCH;
		for (size_t j = 0; j < n; j++) {
			host_addr(i + (uint32_t)j, &sa[j]);
			ev[j].addr = (struct sockaddr *)&sa[j];
			ev[j].flags = HISTORY_EV_SESSION | HISTORY_EV_LO | HISTORY_EV_SCORE;
			ev[j].score = 0.1;
			ev[j].now = t;
		}
		if (history_record_many(h, ev, n) != 0 || rb.ops->record(rb.impl, ev, n) != 0)
			fatalx("cannot fill the stores");
	}
	fprintf(stderr, "history-shared: %u hosts in LMDB and Redis (%.1f s)\n", nrec,
	        (now_ns() - fill0) / 1e9);
	rb.ops->close(rb.impl);

	struct event_base *base = event_base_new();
	struct history_async *au = history_async_new(base, &ru, 24, 64, HISTORY_DEFAULT_MAX_AGE);
	struct history_async *at = history_async_new(base, &rt, 24, 64, HISTORY_DEFAULT_MAX_AGE);
	wait_up(base, au);
	wait_up(base, at);

	size_t total = lookups * rounds;
	int64_t *lat[3];
	size_t nlat[3] = {0, 0, 0}, failed[3] = {0, 0, 0};
	for (int k = 0; k < 3; k++)
		lat[k] = xcalloc(total, sizeof(int64_t));
	srandom(1);
	for (size_t round = 0; round < rounds; round++) {
		for (size_t i = 0; i < lookups; i++) {
			struct sockaddr_in s4;
			struct history_entry host, agg;
			host_addr((uint32_t)random() % nrec, &s4);
			int64_t t0 = now_ns();
			int rc = history_lookup(h, (struct sockaddr *)&s4, time(NULL), &host, &agg);
			lat[0][nlat[0]++] = now_ns() - t0;
			if (rc != 0 || !host.present)
				failed[0]++;
		}
		for (int k = 1; k < 3; k++) {
			struct run r = {.base = base,
			                .a = k == 1 ? au : at,
			                .nrec = nrec,
			                .want = lookups,
			                .lat = lat[k] + nlat[k]};
			next(&r);
			event_base_dispatch(base);
			nlat[k] += r.done;
			failed[k] += r.failed;
		}
	}
	printf("lookup latency at connect, %u hosts, %zu rounds of %zu lookups per store, "
	       "alternating\n",
	       nrec, rounds, lookups);
	printf("%-10s %8s %10s %10s %10s %8s\n", "store", "lookups", "p50 us", "p99 us", "p99.9 us",
	       "missing");
	report("lmdb", lat[0], nlat[0], failed[0]);
	report("redis-unix", lat[1], nlat[1], failed[1]);
	report("redis-tcp", lat[2], nlat[2], failed[2]);
	history_async_free(au);
	history_async_free(at);
	event_base_free(base);
	history_close(h);
	for (int k = 0; k < 3; k++)
		free(lat[k]);
	free(ev);
	free(sa);
	return 0;
}
