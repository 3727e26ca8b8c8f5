/*
 * test_table.c: unit tests for src/common/table.c, the reader of the
 * admin's table files: whole-file reads with their limits and errors, and
 * the line cursor (comments, blanks, CR, line numbers).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "table.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tmx-table.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/t", dir);
	unlink(path);
	rmdir(dir);
}

TestSuite(table, .init = setup, .fini = teardown);

static void write_table(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	cr_assert_not_null(fp);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

Test(table, load_reads_the_whole_file)
{
	char path[128], err[256];
	struct stat st;
	size_t len;

	snprintf(path, sizeof(path), "%s/t", dir);
	write_table(path, "a@b\n@c\n");
	char *text = table_load(path, 1024, &len, &st, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	cr_expect_eq(len, 7);
	cr_expect_str_eq(text, "a@b\n@c\n");
	cr_expect_eq(st.st_size, 7);
	free(text);
}

Test(table, load_refuses_what_it_must_not_read)
{
	char path[128], err[256];
	size_t len;

	snprintf(path, sizeof(path), "%s/t", dir);
	write_table(path, "0123456789");
	cr_expect_null(table_load(path, 9, &len, NULL, err, sizeof(err)));
	cr_expect(strstr(err, "file too large") != NULL, "%s", err);
	cr_expect_null(table_load(dir, 1024, &len, NULL, err, sizeof(err)));
	cr_expect(strstr(err, "not a regular file") != NULL, "%s", err);
	snprintf(path, sizeof(path), "%s/missing", dir);
	errno = 0;
	cr_expect_null(table_load(path, 1024, &len, NULL, err, sizeof(err)));
	cr_expect_eq(errno, ENOENT);
	cr_expect(strncmp(err, path, strlen(path)) == 0, "%s", err);
}

Test(table, lines_without_comments_and_blanks)
{
	static const char text[] = "# header\n"
	                           "\n"
	                           "  first  \r\n"
	                           "second # comment\n"
	                           "\t \t\n"
	                           "#\n"
	                           "last";
	static const struct {
		const char *line;
		size_t lineno;
	} want[] = {{"first", 3}, {"second", 4}, {"last", 7}};
	struct table_cursor c;
	const char *line;
	size_t n, i = 0;

	table_cursor_init(&c, text, sizeof(text) - 1);
	while (table_next_line(&c, &line, &n)) {
		cr_assert_lt(i, sizeof(want) / sizeof(want[0]));
		cr_expect_eq(n, strlen(want[i].line));
		cr_expect(strncmp(line, want[i].line, n) == 0, "line %zu: '%.*s'", i, (int)n, line);
		cr_expect_eq(c.lineno, want[i].lineno);
		i++;
	}
	cr_expect_eq(i, sizeof(want) / sizeof(want[0]));
	cr_expect_eq(table_next_line(&c, &line, &n), 0);
}
