/*
 * test_sendmail_headers.c: unit tests for src/sendmail/headers.c, the
 * header work of tempomx-sendmail: the addresses of RFC 5322 address
 * lists (display names, quoted strings with commas, comments, groups,
 * folding) and the rewritten message (Bcc fields gone with their
 * continuation lines, From/Date/Message-ID added only when missing, the
 * body untouched).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"

struct list_case {
	const char *in;
	const char *want; /* addresses joined by "|" */
};

static const struct list_case list_cases[] = {
    {"alice@example.test", "alice@example.test"},
    {"Alice <alice@example.test>", "alice@example.test"},
    {"\"Bob, B.\" <bob@example.test>, carol@example.test", "bob@example.test|carol@example.test"},
    {"dave@example.test (Dave, the admin)", "dave@example.test"},
    {"  erin@example.test ,  , frank@example.test  ", "erin@example.test|frank@example.test"},
    {"team: gina@example.test, Hank <hank@example.test>;", "gina@example.test|hank@example.test"},
    {"undisclosed-recipients:;", ""},
    {"\"quoted local\"@example.test", "\"quoted local\"@example.test"},
    {"<ivy@example.test>", "ivy@example.test"},
    {"", ""},
};

Test(headers, address_lists)
{
	for (size_t i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
		struct strvec sv = {0};
		char got[512] = "";
		headers_addresses(list_cases[i].in, &sv);
		for (size_t k = 0; k < sv.n; k++) {
			if (k)
				strcat(got, "|");
			strcat(got, sv.v[k]);
		}
		cr_expect_str_eq(got, list_cases[i].want, "case %zu: %s", i, list_cases[i].in);
		strvec_free(&sv);
	}
}

Test(headers, bcc_removed_recipients_collected)
{
	static const char msg[] = "From: me@example.test\n"
	                          "Date: Mon, 01 Jan 2024 12:00:00 +0000\n"
	                          "Message-ID: <1@example.test>\n"
	                          "To: a@example.test\n"
	                          "Bcc: b@example.test,\n"
	                          "  c@example.test\n"
	                          "Cc: d@example.test\n"
	                          "BCC : e@example.test\n"
	                          "\n"
	                          "Bcc: not a header here\n";
	struct strvec rc = {0};
	size_t len;
	char *out = headers_rewrite(msg, strlen(msg), "me@example.test", NULL, "mx.example.test",
	                            &rc, &len);
	out = realloc(out, len + 1);
	out[len] = '\0';
	cr_expect_str_eq(out, "From: me@example.test\n"
	                      "Date: Mon, 01 Jan 2024 12:00:00 +0000\n"
	                      "Message-ID: <1@example.test>\n"
	                      "To: a@example.test\n"
	                      "Cc: d@example.test\n"
	                      "\n"
	                      "Bcc: not a header here\n");
	cr_assert_eq(rc.n, 5);
	cr_expect_str_eq(rc.v[0], "a@example.test");
	cr_expect_str_eq(rc.v[1], "b@example.test");
	cr_expect_str_eq(rc.v[2], "c@example.test");
	cr_expect_str_eq(rc.v[3], "d@example.test");
	cr_expect_str_eq(rc.v[4], "e@example.test");
	strvec_free(&rc);
	free(out);
}

Test(headers, missing_fields_added)
{
	static const char msg[] = "Subject: hi\r\n\r\nbody\r\n";
	size_t len;
	char *out = headers_rewrite(msg, strlen(msg), "me@example.test", "Me \"Q\"",
	                            "mx.example.test", NULL, &len);
	out = realloc(out, len + 1);
	out[len] = '\0';
	static const char from[] = "From: \"Me \\\"Q\\\"\" <me@example.test>\r\nDate: ";
	cr_expect(strncmp(out, from, strlen(from)) == 0, "%s", out);
	cr_expect(strstr(out, "\r\nMessage-ID: <") != NULL, "%s", out);
	cr_expect(strstr(out, "@mx.example.test>\r\nSubject: hi\r\n\r\nbody\r\n") != NULL, "%s",
	          out);
	free(out);
	/* No header section at all: ours, an empty line, the text. */
	out = headers_rewrite("just text\n", 10, "me@example.test", NULL, "mx.example.test", NULL,
	                      &len);
	out = realloc(out, len + 1);
	out[len] = '\0';
	cr_expect(strstr(out, ">\n\njust text\n") != NULL, "%s", out);
	free(out);
}
