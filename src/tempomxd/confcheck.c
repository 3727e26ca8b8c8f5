/*
 * confcheck.c: warnings about settings that work but do harm, given at
 * start-up, on reload and by "tempomxd -n" (the log goes to the terminal
 * there).
 *
 * Backscatter: a backup MX (relay_domains) that cannot tell which
 * recipients exist accepts mail for any of them; the primary refuses the
 * unknown ones later, and the bounces go to senders that were forged.
 * Called by the master (main.c).
 */
#include <string.h>

#include "confcheck.h"
#include "log.h"

void confcheck_warn(const struct config *cf)
{
	/* An smtp: target (the primary MX) answers for the relay domains. */
	int verify = cf->recipient_verify && strncmp(cf->recipient_verify, "smtp:", 5) == 0;
	if (cf->relay_domains.n > 0 && (cf->relay_recipients == NULL || !*cf->relay_recipients) &&
	    !verify)
		log_warnx("WARNING: relay_domains is set but no recipient check is: mail for "
		          "unknown users of those domains is accepted and bounced later to "
		          "forged senders (backscatter); set relay_recipients or "
		          "recipient_verify = smtp:[primary]:25");
}
