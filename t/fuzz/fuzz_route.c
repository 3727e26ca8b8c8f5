/*
 * fuzz_route.c: libFuzzer target for the delivery routing parsers
 * (src/deliver/route.c): one transport ("mx", "smtp:[host]:port",
 * "lmtp:unix:/path" ...), the tls_policy setting, and address-literal
 * domains. Any input must parse or fail with a reason, a parsed route
 * must format back, and a literal's canonical form must parse to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
	char host[ROUTE_LITERAL_MAX], lit[ROUTE_LITERAL_MAX + 8], again_host[ROUTE_LITERAL_MAX];
	int v6, v6again;
	if (route_literal(text, host, sizeof(host), &v6) == 1) {
		snprintf(lit, sizeof(lit), "[%s%s]", v6 ? "IPv6:" : "", host);
		if (route_literal(lit, again_host, sizeof(again_host), &v6again) != 1 ||
		    v6again != v6 || strcmp(host, again_host) != 0)
			abort();
	}
	(void)route_tls_policy(text, "example.org", "mx1.example.org", err, sizeof(err));
	(void)route_tls_policy(text, "sub.example.test", "192.0.2.7", err, sizeof(err));
	free(text);
	return 0;
}
