/*
 * test_json.c: unit tests for src/ctl/json.c, the JSON strings of
 * tempomxctl queue -j: quotes and backslashes escaped, control octets as
 * \u00XX, valid UTF-8 kept, every other octet (bad sequences, overlong
 * forms, surrogates) as \u00XX so that the line stays valid JSON.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct json_case {
	const char *in;
	const char *want;
};

static const struct json_case json_cases[] = {
    {"", "\"\""},
    {"bob@example.test", "\"bob@example.test\""},
    {"say \"hi\"", "\"say \\\"hi\\\"\""},
    {"a\\b", "\"a\\\\b\""},
    {"line\r\nnext\t", "\"line\\u000d\\u000anext\\u0009\""},
    {"\x7f", "\"\\u007f\""},
    {"j\xc3\xb6rg@b\xc3\xbc\x63her.example", "\"j\xc3\xb6rg@b\xc3\xbc\x63her.example\""},
    {"\xe2\x82\xac \xf0\x9f\x93\xa7", "\"\xe2\x82\xac \xf0\x9f\x93\xa7\""},
    {"\xff", "\"\\u00ff\""},
    {"\xc3", "\"\\u00c3\""},                                  /* truncated sequence */
    {"\xc0\xaf", "\"\\u00c0\\u00af\""},                       /* overlong '/' */
    {"\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""},            /* a surrogate */
    {"\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\""}, /* past U+10FFFF */
};

Test(json, strings)
{
	for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *fp = open_memstream(&buf, &len);
		cr_assert_not_null(fp);
		json_string(fp, json_cases[i].in);
		fclose(fp);
		cr_expect_str_eq(buf, json_cases[i].want, "case %zu", i);
		free(buf);
	}
}

Test(json, keys)
{
	char *buf = NULL;
	size_t len = 0;
	int first = 1;
	FILE *fp = open_memstream(&buf, &len);
	cr_assert_not_null(fp);
	json_key_str(fp, &first, "a", "x");
	json_key_str(fp, &first, "b", NULL);
	json_key_int(fp, &first, "c", -12);
	fclose(fp);
	cr_expect_str_eq(buf, "\"a\":\"x\",\"b\":null,\"c\":-12");
	free(buf);
}
