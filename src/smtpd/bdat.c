/*
 * bdat.c: parsing of the BDAT command's argument (RFC 3030); the contract
 * is bdat.h. The session's side of BDAT (chunks into the spool file, the
 * replies) is in receive.c.
 *
 * Strict about the size, as the size frames the octets that follow: only
 * decimal digits, at most BDAT_SIZE_MAX. "LAST" is matched without regard
 * to case (RFC 5234 strings are case-insensitive); blanks between the two
 * are tolerated as they are between verb and argument (command.c).
 */
#include <string.h>

#include "bdat.h"

enum reply_id bdat_parse(const char *arg, size_t len, struct bdat_cmd *out)
{
	size_t i = 0;
	uint64_t n = 0;

	memset(out, 0, sizeof(*out));
	while (i < len && arg[i] >= '0' && arg[i] <= '9') {
		unsigned d = (unsigned)(arg[i] - '0');

		if (n > (BDAT_SIZE_MAX - d) / 10)
			return RPL_BDAT_SIZE;
		n = n * 10 + d;
		i++;
	}
	/* The size must be a whole word of digits. */
	if (i == 0 || (i < len && arg[i] != ' '))
		return RPL_BDAT_SIZE;
	out->size = n;
	while (i < len && arg[i] == ' ')
		i++;
	if (i == len)
		return RPL_NONE;
	if (len - i == 4) {
		static const char last[] = "LAST";
		size_t k;

		for (k = 0; k < 4; k++)
			if ((arg[i + k] & ~0x20) != last[k])
				break;
		if (k == 4) {
			out->last = 1;
			return RPL_NONE;
		}
	}
	return RPL_BDAT_SYNTAX;
}
