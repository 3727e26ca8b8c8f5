/*
 * fuzz_route.c: libFuzzer target for the delivery routing parsers
 * (src/deliver/route.c): one transport ("mx", "smtp:[host]:port",
 * "lmtp:unix:/path" ...) and the tls_policy setting. Any input must parse
 * or fail with a reason, and a parsed route must format back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct route r, again;
	char err[256], buf[512];
	if (route_parse(text, &r, err, sizeof(err)) == 0) {
		route_format(&r, buf, sizeof(buf));
		/* What we print for logs must name the same destination. */
		if (route_parse(buf, &again, err, sizeof(err)) == 0 && !route_equal(&r, &again))
			abort();
	} else if (err[0] == '\0') {
		abort(); /* a failure always says why */
	}
	(void)route_tls_policy(text, "example.org", "mx1.example.org", err, sizeof(err));
	(void)route_tls_policy(text, "sub.example.test", "192.0.2.7", err, sizeof(err));
	free(text);
	return 0;
}
