/*
 * fuzz_conf.c: libFuzzer target for the configuration parser
 * (src/common/conf.c).
 *
 * The input is taken as a whole tempomx.conf file. Whatever it holds, the
 * parser must return 0 or -1 with a message, never crash, leak or read out
 * of bounds; an accepted file must also print (tempomxd -nn) and free
 * cleanly. Seeds are in t/fuzz/corpus/conf/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct config cf;
	char err[512];

	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");
	if (conf_parse_buffer("fuzz.conf", (const char *)data, size, &cf, err, sizeof(err)) == 0) {
		if (devnull != NULL) {
			conf_print_all(&cf, devnull);
			conf_print_changed(&cf, devnull);
		}
		conf_free(&cf);
	} else if (memchr(err, '\0', sizeof(err)) == NULL) {
		__builtin_trap(); /* the message must be a terminated string */
	}
	return 0;
}
