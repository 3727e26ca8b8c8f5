/*
 * confcheck.c: warnings about settings that work but do harm, given at
 * start-up, on reload and by "tempomxd -n" (the log goes to the terminal
 * there).
 *
 * Backscatter: a backup MX (relay_domains) that cannot tell which
 * recipients exist accepts mail for any of them; the primary refuses the
 * unknown ones later, and the bounces go to senders that were forged.
 * Errors: history_store's syntax belongs to the history module
 * (history_remote_parse()); a value it cannot read would otherwise only
 * be logged by each child as it starts, with the daemon running on its
 * local store, so the master checks it before it starts anything.
 * Called by the master (main.c).
 */
#include <stdio.h>
#include <string.h>

#include "confcheck.h"
#include "history_store.h"
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

int confcheck_errors(const struct config *cf, char *err, size_t errlen)
{
	struct history_remote r;
	char why[256];
	int is_remote = 0;

	if (history_remote_parse(cf->history_store, &r, &is_remote, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}
