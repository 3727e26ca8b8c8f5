/*
 * test_util.c: unit tests for src/common/util.c (parsers of durations,
 * sizes, integers and booleans; string helpers; mkdir_p).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct dur_case {
	const char *in;
	int ok;
	int64_t want;
};

static const struct dur_case dur_cases[] = {
    {"0", 1, 0},       {"30", 1, 30},
    {"30s", 1, 30},    {"5m", 1, 300},
    {"4h", 1, 14400},  {"2d", 1, 172800},
    {"1w", 1, 604800}, {"12h", 1, 43200},
    {"", 0, 0},        {"s", 0, 0},
    {"-1", 0, 0},      {"5x", 0, 0},
    {"5mm", 0, 0},     {" 5", 0, 0},
    {"5 ", 0, 0},      {"99999999999999999999", 0, 0},
    {"1.5h", 0, 0},    {"9223372036854775807w", 0, 0},
};

Test(util, parse_duration_table)
{
	for (size_t i = 0; i < sizeof(dur_cases) / sizeof(dur_cases[0]); i++) {
		int64_t v = -42;
		int r = parse_duration(dur_cases[i].in, &v);
		cr_expect_eq(r == 0, dur_cases[i].ok, "parse_duration(\"%s\") returned %d",
		             dur_cases[i].in, r);
		if (dur_cases[i].ok)
			cr_expect_eq(v, dur_cases[i].want, "parse_duration(\"%s\") = %lld",
			             dur_cases[i].in, (long long)v);
	}
}

struct size_case {
	const char *in;
	int ok;
	uint64_t want;
};

static const struct size_case size_cases[] = {
    {"0", 1, 0},
    {"1024", 1, 1024},
    {"10k", 1, 10240},
    {"10K", 1, 10240},
    {"10M", 1, 10485760},
    {"1G", 1, 1073741824ULL},
    {"1T", 0, 0},
    {"k", 0, 0},
    {"", 0, 0},
    {"-5", 0, 0},
    {"5kb", 0, 0},
    {"18446744073709551615", 1, 18446744073709551615ULL},
    {"18446744073709551616", 0, 0},
    {"17179869184G", 0, 0},
};

Test(util, parse_size_table)
{
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		uint64_t v = 42;
		int r = parse_size(size_cases[i].in, &v);
		cr_expect_eq(r == 0, size_cases[i].ok, "parse_size(\"%s\") returned %d",
		             size_cases[i].in, r);
		if (size_cases[i].ok)
			cr_expect_eq(v, size_cases[i].want, "parse_size(\"%s\")", size_cases[i].in);
	}
}

Test(util, parse_int_limits)
{
	int64_t v;
	cr_expect_eq(parse_int("5", 1, 10, &v), 0);
	cr_expect_eq(v, 5);
	cr_expect_eq(parse_int("0", 1, 10, &v), -1);
	cr_expect_eq(parse_int("11", 1, 10, &v), -1);
	cr_expect_eq(parse_int("-3", -5, 5, &v), 0);
	cr_expect_eq(v, -3);
	cr_expect_eq(parse_int("3a", 0, 10, &v), -1);
	cr_expect_eq(parse_int("", 0, 10, &v), -1);
	cr_expect_eq(parse_int("-", 0, 10, &v), -1);
	cr_expect_eq(parse_int("9223372036854775808", 0, INT64_MAX, &v), -1);
}

Test(util, parse_bool_words)
{
	const char *yes[] = {"yes", "YES", "on", "true", "1"};
	const char *no[] = {"no", "Off", "false", "0"};
	int b;
	for (size_t i = 0; i < 5; i++) {
		cr_expect_eq(parse_bool(yes[i], &b), 0);
		cr_expect_eq(b, 1);
	}
	for (size_t i = 0; i < 4; i++) {
		cr_expect_eq(parse_bool(no[i], &b), 0);
		cr_expect_eq(b, 0);
	}
	cr_expect_eq(parse_bool("maybe", &b), -1);
	cr_expect_eq(parse_bool("", &b), -1);
}

Test(util, ascii_case)
{
	cr_expect_eq(ascii_strcasecmp("Example.TEST", "example.test"), 0);
	cr_expect_neq(ascii_strcasecmp("example.test", "example.tes"), 0);
	cr_expect_eq(ascii_strncasecmp("MAIL FROM:", "mail from:<x>", 10), 0);
	char s[] = "MiXeD.Org";
	ascii_lower(s);
	cr_expect_str_eq(s, "mixed.org");
	char buf[4];
	cr_expect_eq(strlcpy_tmx(buf, "abcdef", sizeof(buf)), 6);
	cr_expect_str_eq(buf, "abc");
}

Test(util, clocks_move_forward)
{
	int64_t a = mono_usec();
	usleep(2000);
	int64_t b = mono_usec();
	cr_expect_geq(b - a, 2000);
	cr_expect_gt(wall_usec(), (int64_t)1700000000 * 1000000);
}

Test(util, mkdir_p_creates_and_rejects_files)
{
	char tmpl[] = "/tmp/tmx-util-XXXXXX";
	cr_assert_not_null(mkdtemp(tmpl));
	char path[256];
	snprintf(path, sizeof(path), "%s/a/b/c/", tmpl);
	cr_expect_eq(mkdir_p(path, 0700), 0);
	struct stat st;
	cr_expect_eq(stat(path, &st), 0);
	cr_expect(S_ISDIR(st.st_mode));
	cr_expect_eq(mkdir_p(path, 0700), 0, "existing directory is fine");
	char file[256];
	snprintf(file, sizeof(file), "%s/f", tmpl);
	FILE *fp = fopen(file, "w");
	cr_assert_not_null(fp);
	fclose(fp);
	cr_expect_eq(mkdir_p(file, 0700), -1, "a file is not a directory");
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	cr_expect_eq(system(cmd), 0);
}

Test(util, rfc5322_date_shape)
{
	char buf[64];
	rfc5322_date(0, buf, sizeof(buf));
	/* "Thu, 01 Jan 1970 00:00:00 +0000" in UTC; shape only, any zone. */
	cr_expect_eq(strlen(buf), 31, "date '%s'", buf);
	cr_expect_eq(buf[3], ',');
}
