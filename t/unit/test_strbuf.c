/*
 * test_strbuf.c: unit tests for src/common/strbuf.c, the growable string
 * buffer: appends of every kind, growth across many sizes, detach and
 * reset, and the text always NUL-terminated.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

Test(strbuf, empty_add_gives_an_empty_string)
{
	struct strbuf b = STRBUF_INIT;

	cr_expect_null(b.s);
	strbuf_add(&b, "", 0);
	cr_assert_not_null(b.s);
	cr_expect_str_eq(b.s, "");
	cr_expect_eq(b.len, 0);
	strbuf_free(&b);
	cr_expect_null(b.s);
}

Test(strbuf, appends_of_every_kind)
{
	struct strbuf b = STRBUF_INIT;

	strbuf_str(&b, "From: ");
	strbuf_lit(&b, "<a@b>");
	strbuf_printf(&b, " %d%s", 42, "\r\n");
	strbuf_add(&b, "xyz", 2);
	cr_expect_str_eq(b.s, "From: <a@b> 42\r\nxy");
	cr_expect_eq(b.len, strlen(b.s));
	strbuf_reset(&b);
	cr_expect_str_eq(b.s, "");
	cr_expect_eq(b.len, 0);
	strbuf_free(&b);
}

Test(strbuf, grows_by_any_amount)
{
	struct strbuf b = STRBUF_INIT;
	char chunk[300];
	size_t want = 0;

	memset(chunk, 'x', sizeof(chunk));
	for (size_t n = 0; n < sizeof(chunk); n += 7) {
		strbuf_add(&b, chunk, n);
		want += n;
		cr_assert_eq(b.len, want);
		cr_assert_eq(b.s[b.len], '\0');
		cr_assert_geq(b.cap, b.len + 1);
	}
	for (size_t i = 0; i < b.len; i++)
		cr_assert_eq(b.s[i], 'x');
	strbuf_free(&b);
}

Test(strbuf, printf_longer_than_the_room_left)
{
	struct strbuf b = STRBUF_INIT;
	char big[5000];

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	strbuf_lit(&b, "a");
	strbuf_printf(&b, "[%s]", big);
	cr_expect_eq(b.len, 1 + 2 + strlen(big));
	cr_expect_eq(b.s[1], '[');
	cr_expect_eq(b.s[b.len - 1], ']');
	cr_expect_eq(b.s[b.len], '\0');
	strbuf_free(&b);
}

Test(strbuf, detach_hands_over_the_text)
{
	struct strbuf b = STRBUF_INIT;
	size_t len = 99;
	char *s = strbuf_detach(&b, &len);

	cr_assert_not_null(s);
	cr_expect_str_eq(s, "");
	cr_expect_eq(len, 0);
	free(s);
	strbuf_str(&b, "bounce");
	s = strbuf_detach(&b, &len);
	cr_expect_str_eq(s, "bounce");
	cr_expect_eq(len, 6);
	cr_expect_null(b.s);
	cr_expect_eq(b.len, 0);
	free(s);
}
