/*
 * fuzz_recipients.c: libFuzzer target for the recipients table parser
 * (src/deliver/recipients.c, the "recipients" and "relay_recipients"
 * files): any input must parse or fail cleanly, and look-ups on what was
 * parsed must not crash.
 */
#include <stddef.h>
#include <stdint.h>

#include "recipients.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct recipients_table *t = recipients_parse((const char *)data, size, err, sizeof(err));
	if (t == NULL)
		return 0;
	static const char *const probes[] = {"alice@example.test",
	                                     "ALICE@Example.Test",
	                                     "postmaster@example.test",
	                                     "@example.test",
	                                     "x@sub.example.org",
	                                     "",
	                                     "nobody"};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		(void)recipients_lookup(t, probes[i]);
	recipients_free(t);
	return 0;
}
