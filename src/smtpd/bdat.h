/*
 * bdat.h: the argument of the BDAT command (RFC 3030 CHUNKING), parsed
 * by src/smtpd/bdat.c.
 *
 *   bdat-cmd   = "BDAT" SP chunk-size [ SP end-marker ] CR LF
 *   chunk-size = 1*DIGIT
 *   end-marker = "LAST"
 *
 * A pure function of its input, unit-tested and fuzzed. What it returns
 * decides whether the session can stay in step with the client: once the
 * size is known, the chunk's octets are read (kept or discarded) whatever
 * else is wrong; when it is not, nothing tells where the chunk ends and
 * its octets must never be read as commands, so the session ends.
 */
#ifndef TEMPOMX_SMTPD_BDAT_H
#define TEMPOMX_SMTPD_BDAT_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"

/* Larger chunk sizes are not taken as sizes: no one sends them, and
 * counting octets in a signed 64-bit off_t-like range keeps every sum
 * below UINT64_MAX. */
#define BDAT_SIZE_MAX ((uint64_t)INT64_MAX)

struct bdat_cmd {
	uint64_t size; /* octets of the chunk that follows the command line */
	int last;      /* LAST: the chunk ends the message */
};

/* Parse the argument of BDAT (the text after the verb and its blanks,
 * trailing blanks removed, as cmd_parse() gives it). Returns RPL_NONE;
 * RPL_BDAT_SYNTAX when the size was read but what follows it is not
 * " LAST" (out->size is valid: the chunk is to be discarded); or
 * RPL_BDAT_SIZE when there is no valid size (not 1*DIGIT, or above
 * BDAT_SIZE_MAX): the session cannot find the end of the chunk. */
enum reply_id bdat_parse(const char *arg, size_t len, struct bdat_cmd *out);

#endif
