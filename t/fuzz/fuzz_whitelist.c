/*
 * fuzz_whitelist.c: libFuzzer target for the whitelist file parser
 * (src/classify/whitelist.c): any input must parse or fail cleanly, and
 * every entry it keeps must be usable by the matchers.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct whitelist wl;
	char err[256];
	memset(&wl, 0, sizeof(wl));
	(void)whitelist_parse(&wl, (const char *)data, size, err, sizeof(err));
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xc0000201);
	(void)whitelist_client(&wl, (struct sockaddr *)&sin);
	(void)whitelist_sender(&wl, "user@example.org");
	(void)whitelist_recipient(&wl, "postmaster@sub.example.test");
	whitelist_free(&wl);
	return 0;
}
