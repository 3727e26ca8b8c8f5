/*
 * fuzz_records.c: libFuzzer target for the update records that follow the
 * message in a version 2 spool file (src/spool/records.c).
 *
 * The input is the octets after a message whose envelope is fixed (ID
 * 06B07CF6A1E2400012F000, size 0): what a crash, a damaged disk or a
 * hand edit could leave there. Beyond "no crash" the target checks:
 * - a failure is EBADMSG with a message, and leaves the envelope as it
 *   was;
 * - on success the octets used are a prefix of the input, and reading
 *   just that prefix gives the same envelope (what follows was ignored);
 * - the envelope read renders to a record that reads back to the same
 *   rendering (canonical form).
 * Seed corpus: t/fuzz/corpus/records/.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void base(struct envelope *env)
{
	envelope_init(env);
	memcpy(env->id, "06B07CF6A1E2400012F000", QUEUEID_SIZE);
	env->sender = strdup("a@b");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope env, again;
	size_t valid = 0, valid2 = 0, len, len2;
	char err[256];

	base(&env);
	int r = envelope_apply_records((const char *)data, size, &env, &valid, err, sizeof(err));
	if (r < 0) {
		check(errno == EBADMSG && err[0] != '\0');
		check(env.nrecords == 0 && strcmp(env.sender, "a@b") == 0);
		envelope_free(&env);
		return 0;
	}
	check(valid <= size);
	base(&again);
	check(envelope_apply_records((const char *)data, valid, &again, &valid2, err,
	                             sizeof(err)) == 0);
	check(valid2 == valid && again.nrecords == env.nrecords);
	char *a = envelope_record(&env, &len);
	char *b = envelope_record(&again, &len2);
	check(len == len2 && memcmp(a, b, len) == 0);
	envelope_free(&again);
	base(&again);
	check(envelope_apply_records(a, len, &again, &valid2, err, sizeof(err)) == 0);
	check(valid2 == len && again.nrecords == 1);
	free(b);
	b = envelope_record(&again, &len2);
	check(len == len2 && memcmp(a, b, len) == 0);
	free(a);
	free(b);
	envelope_free(&again);
	envelope_free(&env);
	return 0;
}
