/*
 * localuser.c: the existence of local users, and routing characters in
 * recipient local parts, for the RCPT checks of session.c.
 *
 * Without a recipients table or recipient verification, a local part of a
 * local domain exists when its Maildir exists (maildir_create = no, the
 * default): an attacker can then neither harvest addresses by dictionary
 * nor make delivery create directories without bound. The path is the one
 * delivery writes to (maildir_expand, src/common/maildir_path.c), looked at
 * with lstat(): a symbolic link is not a Maildir we made.
 *
 * Routing characters: "%" (the %-hack), "!" (UUCP bang paths) and an "@"
 * inside a quoted local part make some servers relay the mail on to the
 * host they name, so an address of our domain could relay through the
 * next hop.
 */
#include <string.h>
#include <sys/stat.h>

#include "localuser.h"
#include "maildir_path.h"

int localuser_has_maildir(const struct config *cf, const char *addr)
{
	char dir[4096], err[256];
	struct stat st;
	if (cf->maildir == NULL ||
	    maildir_expand(cf->maildir, addr, dir, sizeof(dir), err, sizeof(err)) < 0)
		return 0;
	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

int localuser_has_routing(const struct mailaddr *a)
{
	return strpbrk(a->local, "%!@") != NULL;
}
