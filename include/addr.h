/*
 * addr.h: RFC 5321 mailbox and path parsing, domain comparison, and
 * network address helpers (CIDR lists, sockaddr formatting).
 *
 * Called by the SMTP session (MAIL FROM / RCPT TO arguments), by the
 * configuration parser (domain and network lists) and by delivery (routing
 * by recipient domain). Nothing here treats '%' or '!' as routing syntax.
 */
#ifndef TEMPOMX_ADDR_H
#define TEMPOMX_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* RFC 5321 4.5.3.1: local part 64 octets, domain 255, path 256. */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256

struct mailaddr {
	/* Local part as it must be written back on the wire: dot-string as
	 * received, or a quoted string in canonical quoted form. Empty for
	 * the null reverse-path <> and for <postmaster>. */
	char local[ADDR_LOCAL_MAX * 2 + 3];
	/* Domain in lower case without a trailing dot, or an address
	 * literal "[192.0.2.1]" / "[IPv6:...]" exactly as given. Empty for
	 * <> and <postmaster>. */
	char domain[ADDR_DOMAIN_MAX + 1];
	int is_null;       /* <> */
	int is_literal;    /* domain is an address literal */
	int is_postmaster; /* the bare <postmaster> form (RCPT only) */
	int had_route;     /* an RFC 5321 source route was given and stripped */
	int is_utf8;       /* contains octets >= 0x80 (SMTPUTF8) */
};

/* Flags for addr_parse_path(). */
#define ADDR_ALLOW_NULL 0x01       /* <> is valid (MAIL FROM) */
#define ADDR_ALLOW_POSTMASTER 0x02 /* <postmaster> without domain (RCPT) */
#define ADDR_ALLOW_LITERAL 0x04    /* address literals as domain */
#define ADDR_ALLOW_UTF8 0x08       /* octets >= 0x80 (SMTPUTF8 given) */
#define ADDR_ALLOW_ROUTE 0x10      /* accept and strip a source route */
#define ADDR_ALLOW_NOBRACKETS 0x20 /* tolerate a path without <> */

enum addr_error {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,    /* generic malformed path */
	ADDR_ERR_NOBRACKET, /* missing < or > */
	ADDR_ERR_LOCAL,     /* malformed local part */
	ADDR_ERR_DOMAIN,    /* malformed domain */
	ADDR_ERR_TOOLONG,   /* a length limit of RFC 5321 4.5.3.1 */
	ADDR_ERR_NULL,      /* <> where not allowed */
	ADDR_ERR_LITERAL,   /* address literal where not allowed */
	ADDR_ERR_ROUTE,     /* source route where not allowed */
	ADDR_ERR_8BIT,      /* 8-bit octets without SMTPUTF8 */
};

/* Parse a Reverse-path or Forward-path that starts at s (after "FROM:" or
 * "TO:", leading spaces already skipped). On success fill *out, set *end to
 * the first octet after the closing '>' (ESMTP parameters follow) and return
 * ADDR_OK. On failure return the error; *out is undefined. */
enum addr_error addr_parse_path(const char *s, size_t len, int flags, struct mailaddr *out,
                                const char **end);
/* Short text for an error, for SMTP replies and logs. */
const char *addr_strerror(enum addr_error e);

/* Format as "local@domain" (no brackets); "" for <>, "postmaster" for
 * <postmaster>. Returns the length; out should hold ADDR_PATH_MAX*2+8. */
size_t addr_format(const struct mailaddr *a, char *out, size_t size);

/* Validate a domain name (LDH labels, or an address literal when
 * allow_literal). Used for config values and HELO checks. */
int addr_domain_valid(const char *d, int allow_literal);
/* Case-insensitive domain equality ignoring one trailing dot. */
int addr_domain_eq(const char *a, const char *b);

/*
 * What a table key that starts with a dot (".example.com") means; each
 * kind of table has one rule, documented in tempomx.conf(5):
 * - ADDR_MATCH_WITH_SUBDOMAINS: example.com and every name below it
 *   (local_domains, relay_domains, the whitelists);
 * - ADDR_MATCH_SUBDOMAINS: only the names below example.com, as in
 *   Postfix's transport(5) (the transport table);
 * - ADDR_MATCH_EXACT: nothing special, the key is one name (tls_policy).
 * A key without the leading dot names one domain under every rule.
 */
enum addr_match_rule {
	ADDR_MATCH_EXACT,
	ADDR_MATCH_WITH_SUBDOMAINS,
	ADDR_MATCH_SUBDOMAINS,
};
/* How key matches domain: ADDR_MATCH_SAME when it names the domain
 * itself, ADDR_MATCH_PARENT when it covers it as a ".parent" key, 0 when
 * not at all (a table that picks one entry prefers SAME, then the longest
 * parent). ASCII case is ignored, and one trailing dot on either side. */
#define ADDR_MATCH_PARENT 1
#define ADDR_MATCH_SAME 2
int addr_domain_match(const char *key, const char *domain, enum addr_match_rule rule);

/* Split a "local@domain" string (as stored in an envelope) at its last '@'
 * outside quotes. Returns 0 and fills local/domain (domain lower-cased), or
 * -1 when there is no domain. */
int addr_split(const char *addr, char *local, size_t lsize, char *domain, size_t dsize);

/* A network in CIDR notation. family is AF_INET or AF_INET6; IPv4-mapped
 * IPv6 client addresses match IPv4 networks. */
struct cidr {
	int family;
	uint8_t addr[16];
	int bits;
};

/* Parse "192.0.2.0/24", "192.0.2.1" (a /32), "2001:db8::/32", "::1".
 * Returns 0, or -1 with nothing written. */
int cidr_parse(const char *s, struct cidr *out);
int cidr_match(const struct cidr *c, const struct sockaddr *sa);
int cidr_match_list(const struct cidr *list, size_t n, const struct sockaddr *sa);
/* Format back as text (for tempomxd -n). */
void cidr_format(const struct cidr *c, char *out, size_t size);

/* Numeric host of a socket address ("192.0.2.1", "2001:db8::1"); IPv4-mapped
 * IPv6 addresses are shown as IPv4. Returns out. out >= 64 bytes. */
const char *sockaddr_host(const struct sockaddr *sa, char *out, size_t size);
unsigned sockaddr_port(const struct sockaddr *sa);
/* Parse a listen address "127.0.0.1:2525", "[::1]:2525", "*:25", "[::]:25".
 * Returns 0 and fills ss/len, or -1. */
int sockaddr_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
