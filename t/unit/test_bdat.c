/*
 * test_bdat.c: unit tests for the BDAT argument parser (src/smtpd/bdat.c):
 * which arguments give a size and LAST, which give a size but are wrong
 * (the chunk is skipped), and which give no size at all (the session must
 * end, since the chunk cannot be found).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "bdat.h"

struct row {
	const char *arg;
	enum reply_id want;
	uint64_t size;
	int last;
};

static const struct row rows[] = {
    {"0", RPL_NONE, 0, 0},
    {"0 LAST", RPL_NONE, 0, 1},
    {"1000", RPL_NONE, 1000, 0},
    {"1000 LAST", RPL_NONE, 1000, 1},
    {"1000 last", RPL_NONE, 1000, 1},
    {"1000 LaSt", RPL_NONE, 1000, 1},
    {"1000   LAST", RPL_NONE, 1000, 1},
    {"007", RPL_NONE, 7, 0},
    {"9223372036854775807", RPL_NONE, INT64_MAX, 0},
    /* A size, then something else: skip the chunk, 501. */
    {"10 LASTLY", RPL_BDAT_SYNTAX, 10, 0},
    {"10 LAS", RPL_BDAT_SYNTAX, 10, 0},
    {"10 LAST now", RPL_BDAT_SYNTAX, 10, 0},
    {"10 20", RPL_BDAT_SYNTAX, 10, 0},
    {"10 L@ST", RPL_BDAT_SYNTAX, 10, 0},
    {"10 \x8c"
     "AST",
     RPL_BDAT_SYNTAX, 10, 0},
    /* No size: the session cannot stay in step. */
    {"", RPL_BDAT_SIZE, 0, 0},
    {"LAST", RPL_BDAT_SIZE, 0, 0},
    {"x10", RPL_BDAT_SIZE, 0, 0},
    {"10x", RPL_BDAT_SIZE, 0, 0},
    {"10\tLAST", RPL_BDAT_SIZE, 0, 0},
    {"-1", RPL_BDAT_SIZE, 0, 0},
    {"+1", RPL_BDAT_SIZE, 0, 0},
    {"0x10", RPL_BDAT_SIZE, 0, 0},
    {"1e3", RPL_BDAT_SIZE, 0, 0},
    {"9223372036854775808", RPL_BDAT_SIZE, 0, 0},
    {"18446744073709551616 LAST", RPL_BDAT_SIZE, 0, 0},
    {"99999999999999999999999999999", RPL_BDAT_SIZE, 0, 0},
};

Test(bdat, table)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct bdat_cmd b;
		enum reply_id r = bdat_parse(rows[i].arg, strlen(rows[i].arg), &b);

		cr_expect_eq(r, rows[i].want, "\"%s\": reply %d, want %d", rows[i].arg, (int)r,
		             (int)rows[i].want);
		if (r == RPL_BDAT_SIZE)
			continue;
		cr_expect_eq(b.size, rows[i].size, "\"%s\": size %llu", rows[i].arg,
		             (unsigned long long)b.size);
		cr_expect_eq(b.last, rows[i].last, "\"%s\": last %d", rows[i].arg, b.last);
	}
}

/* The length is what counts, not a NUL: "5 LAST" cut to "5 LA" is no
 * LAST, and octets after the length are never read. */
Test(bdat, length_bounded)
{
	struct bdat_cmd b;

	cr_expect_eq(bdat_parse("5 LAST", 4, &b), RPL_BDAT_SYNTAX);
	cr_expect_eq(bdat_parse("5 LAST", 1, &b), RPL_NONE);
	cr_expect_eq(b.size, 5);
	cr_expect_eq(b.last, 0);
	cr_expect_eq(bdat_parse("12345", 2, &b), RPL_NONE);
	cr_expect_eq(b.size, 12);
}
