/*
 * retry.c: when deferred mail is tried again.
 *
 * Exponential back-off between retry_min and retry_max (the usual MTA
 * practice RFC 5321 section 4.5.4.1 asks for: at least 30 minutes apart
 * in production, a give-up time of 4-5 days), and the queue lifetime past
 * which the recipients bounce. Pure functions; called by delivery.c.
 */
#include "retry.h"

int64_t retry_delay(int64_t retry_min, int64_t retry_max, int attempts)
{
	int64_t d = retry_min > 0 ? retry_min : 1;
	for (int i = 1; i < attempts && d < retry_max; i++)
		d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
	return d < retry_max ? d : (retry_max > 0 ? retry_max : d);
}

int retry_expired(int64_t arrival_usec, int64_t lifetime, int64_t now)
{
	return now - arrival_usec / 1000000 >= lifetime;
}

int64_t retry_next(int64_t retry_min, int64_t retry_max, int attempts, int64_t arrival_usec,
                   int64_t lifetime, int64_t now)
{
	int64_t next = now + retry_delay(retry_min, retry_max, attempts);
	int64_t expiry = arrival_usec / 1000000 + lifetime;
	if (next > expiry && expiry > now)
		next = expiry;
	return next;
}
