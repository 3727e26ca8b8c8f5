/*
 * fault.c: fault injection for the crash tests (test builds only).
 *
 * A test sets TEMPOMX_FAULT to a list "point:N,point:N..." and
 * TEMPOMX_FAULT_DIR to a directory the daemon's user can write. The N-th
 * time a process reaches fault_point("point"), it kills itself with
 * SIGKILL, as kill -9 would, exactly there, unless a marker file
 * "DIR/point.N" already exists: the marker is created first (O_EXCL), so
 * each listed fault fires once in the whole run, whichever process or
 * restart of it gets there, and the master's back-off after restarts
 * stays short. Called from the hand-offs of src/spool/, src/scan/ and
 * src/deliver/ through fault.h; compiled to nothing unless configure
 * defined TEMPOMX_FAULTS.
 */
#include "fault.h"

#ifdef TEMPOMX_FAULTS

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define FAULT_MAX 32
#define FAULT_NAME_MAX 48

struct fault {
	char name[FAULT_NAME_MAX];
	unsigned long at;
};

static struct fault faults[FAULT_MAX];
static atomic_ulong hits[FAULT_MAX];
static size_t nfaults;
static const char *fault_dir;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;

static void fault_init(void)
{
	const char *spec = getenv("TEMPOMX_FAULT");
	fault_dir = getenv("TEMPOMX_FAULT_DIR");
	if (spec == NULL || fault_dir == NULL)
		return;
	while (*spec && nfaults < FAULT_MAX) {
		size_t n = strcspn(spec, ",");
		const char *colon = memchr(spec, ':', n);
		if (colon != NULL && (size_t)(colon - spec) < FAULT_NAME_MAX) {
			struct fault *f = &faults[nfaults];
			memcpy(f->name, spec, (size_t)(colon - spec));
			f->name[colon - spec] = '\0';
			f->at = strtoul(colon + 1, NULL, 10);
			if (f->at > 0)
				nfaults++;
		}
		spec += n;
		if (*spec == ',')
			spec++;
	}
}

void fault_point(const char *name)
{
	pthread_once(&fault_once, fault_init);
	for (size_t i = 0; i < nfaults; i++) {
		if (strcmp(faults[i].name, name) != 0)
			continue;
		unsigned long hit = atomic_fetch_add(&hits[i], 1) + 1;
		if (hit != faults[i].at)
			continue;
		char marker[4096];
		snprintf(marker, sizeof(marker), "%s/%s.%lu", fault_dir, name, hit);
		int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			continue; /* fired already, in this run */
		close(fd);
		log_warnx("fault injection: killed at %s (hit %lu)", name, hit);
		raise(SIGKILL);
	}
}

#endif
