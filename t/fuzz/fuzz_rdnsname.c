/*
 * fuzz_rdnsname.c: libFuzzer target for the checks of reverse DNS names
 * (src/classify/rdnsname.c): any PTR answer, however long or odd, must be
 * judged valid or not, and generic or not, without reading out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdnsname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = malloc(size + 1);
	if (name == NULL)
		return 0;
	memcpy(name, data, size);
	name[size] = '\0';
	(void)rdnsname_valid(name);
	(void)rdnsname_generic(name, "192.0.2.1");
	(void)rdnsname_generic(name, "2001:db8::1:2:3:4");
	(void)rdnsname_generic(name, "::ffff:203.0.113.45");
	free(name);
	return 0;
}
