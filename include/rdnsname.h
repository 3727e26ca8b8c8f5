/*
 * rdnsname.h: what a client's reverse DNS name says about it
 * (src/classify/rdnsname.c). Pure functions of their arguments.
 *
 * rdnsname_valid() decides whether a PTR answer can be used as a host
 * name at all (smtpd's reverse DNS, src/smtpd/rdns.c, calls it before the
 * forward lookup). rdnsname_generic() says whether a name looks like the
 * name an access provider gives every address of a pool (dynamic, DSL,
 * cable ...): weak evidence for the classifier, never enough to refuse.
 */
#ifndef TEMPOMX_RDNSNAME_H
#define TEMPOMX_RDNSNAME_H

#include <stddef.h>

/* The longest host name (RFC 1035 section 2.3.4), without a trailing dot. */
#define RDNSNAME_MAX 253

/* 1 when name is a syntactically valid host name: labels of letters,
 * digits, '-' and '_' (1 to 63 octets, no '-' at either end), at most
 * RDNSNAME_MAX octets, one trailing dot allowed, and a last label that
 * is not all digits (a name that reads as an address is no name). */
int rdnsname_valid(const char *name);

/* NULL when name does not look generic for the client address addr
 * (numeric IPv4 or IPv6 text); else a short static reason for logs:
 * "address in name" when the name spells the address (its octets in
 * either order, dashed, dotted, zero-padded or in hex), or the word that
 * gave it away ("dynamic", "dsl", "pool" ...). */
const char *rdnsname_generic(const char *name, const char *addr);

#endif
