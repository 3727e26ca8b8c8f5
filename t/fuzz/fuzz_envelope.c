/*
 * fuzz_envelope.c: libFuzzer target for the envelope parser
 * (src/spool/envelope.c).
 *
 * A spool file can be damaged on disk or edited by hand, so the parser
 * must survive any input. Beyond "no crash", the target checks the
 * properties the spool relies on:
 * - a block that parses re-formats to a block that parses to the same
 *   envelope, and that second rendering is stable (canonical form);
 * - reading the same bytes from a file (envelope_read_fd) gives the
 *   same result and the same body offset as parsing them in memory;
 * - escaping any byte string and unescaping it gives it back.
 * Seed corpus: t/fuzz/corpus/envelope/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_escape(const uint8_t *data, size_t size)
{
	char *e = envelope_escape(data, size);
	for (const char *p = e; *p; p++)
		check((unsigned char)*p >= 0x20 && *p != 0x7f);
	char *d;
	size_t dlen;
	check(envelope_unescape(e, strlen(e), &d, &dlen) == 0);
	check(dlen == size && memcmp(d, data, size) == 0);
	free(d);
	free(e);
}

static void check_fd(const uint8_t *data, size_t size, int want_r, size_t want_off)
{
	static int fd = -1;
	if (fd < 0)
		fd = memfd_create("fuzz-envelope", MFD_CLOEXEC);
	if (fd < 0)
		return;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return;
	struct envelope env;
	size_t off = 0;
	char err[256];
	int r = envelope_read_fd(fd, &env, &off, err, sizeof(err));
	check(r == want_r);
	if (r == 0)
		check(off == want_off);
	envelope_free(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope env, back;
	size_t off = 0, off2 = 0, len, len2;
	char err[256];

	int r = envelope_parse((const char *)data, size, &env, &off, err, sizeof(err));
	if (r < 0)
		check(err[0] != '\0');
	check_fd(data, size, r, off);
	if (r == 0) {
		check(off <= size);
		char *b = envelope_format(&env, &len, NULL);
		check(envelope_parse(b, len, &back, &off2, err, sizeof(err)) == 0);
		check(off2 == len);
		char *b2 = envelope_format(&back, &len2, NULL);
		check(len2 == len && memcmp(b, b2, len) == 0);
		free(b2);
		free(b);
		envelope_free(&back);
	}
	envelope_free(&env);
	if (size <= 4096)
		check_escape(data, size);
	return 0;
}
