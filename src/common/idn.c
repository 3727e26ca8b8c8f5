/*
 * idn.c: the A-label form of internationalised domain names (IDNA, RFC
 * 5890), with libidn2; the contract is include/utf8.h.
 *
 * Called wherever a domain is compared with configured names
 * (local_domains, relay_domains, the transport table: conf.c, route.c),
 * when configured names are read (they are kept as A-labels, so either
 * form may be written), for DNS lookups (deliver/remote.c: RFC 6531 3.2)
 * and for the %d of the Maildir template, so that one domain written both
 * ways is one directory. The U-label form is what travels in SMTPUTF8
 * envelopes; it is never rewritten in the message or the envelope.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "utf8.h"

int idn_to_ascii(const char *domain, char *out, size_t size)
{
	size_t n = strlen(domain);
	char *in, *ace = NULL;

	if (size == 0)
		return -1;
	out[0] = '\0';
	if (n > 1 && domain[n - 1] == '.')
		n--;
	if (domain[0] == '[' || !utf8_has_8bit(domain)) {
		if (n >= size)
			return -1;
		for (size_t i = 0; i < n; i++) {
			char c = domain[i];
			out[i] =
			    domain[0] != '[' && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		out[n] = '\0';
		return 0;
	}
	in = malloc(n + 1);
	if (in == NULL)
		return -1;
	memcpy(in, domain, n);
	in[n] = '\0';
	/* UTS 46 non-transitional processing (IDNA2008 with the mapping
	 * that browsers and mail clients apply: case folding, NFC). */
	int rc = idn2_to_ascii_8z(in, &ace, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	free(in);
	if (rc != IDN2_OK || ace == NULL) {
		idn2_free(ace);
		return -1;
	}
	size_t al = strlen(ace);
	if (al >= size) {
		idn2_free(ace);
		return -1;
	}
	memcpy(out, ace, al + 1);
	idn2_free(ace);
	return 0;
}
