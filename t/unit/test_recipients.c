/*
 * test_recipients.c: the recipient validation tables (recipients.c):
 * syntax, case, domain wildcards, and re-reading a changed file.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recipients.h"

Test(recipients, lookup_table)
{
	static const char text[] = "# users\n"
	                           "Alice@Local.test\n"
	                           "  bob@local.test   # trailing comment\r\n"
	                           "\n"
	                           "@catchall.test\n";
	char err[200];
	struct recipients_table *t = recipients_parse(text, sizeof(text) - 1, err, sizeof(err));
	cr_assert_not_null(t, "%s", err);
	static const struct {
		const char *addr;
		int known;
	} cases[] = {
	    {"alice@local.test", 1},    {"ALICE@LOCAL.TEST", 1}, {"bob@local.test", 1},
	    {"carol@local.test", 0},    {"alice@other.test", 0}, {"anyone@catchall.test", 1},
	    {"x@sub.catchall.test", 0}, {"local.test", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(recipients_lookup(t, cases[i].addr), cases[i].known, "%s",
		             cases[i].addr);
	recipients_free(t);

	static const char *const bad[] = {"alice\n", "a@\n", "a b@c\n", "ok@x\nno-at\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = recipients_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		cr_expect_null(t, "'%s' was accepted", bad[i]);
		recipients_free(t);
	}
	t = recipients_parse("ok@x\nno-at\n", 11, err, sizeof(err));
	cr_expect(strstr(err, "line 2") != NULL, "%s", err);
}

Test(recipients, file_is_reread_when_it_changes)
{
	char path[] = "/tmp/test_recipients.XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "a@l.test\n", 9), 9);
	close(fd);
	cr_expect_eq(recipients_check("", "a@l.test"), RECIPIENTS_NO_TABLE);
	cr_expect_eq(recipients_check(path, "a@l.test"), RECIPIENTS_KNOWN);
	cr_expect_eq(recipients_check(path, "b@l.test"), RECIPIENTS_UNKNOWN);
	/* A new file (new inode) with b added. */
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs("a@l.test\nb@l.test\n", f);
	fclose(f);
	cr_assert_eq(rename(tmp, path), 0);
	cr_expect_eq(recipients_check(path, "b@l.test"), RECIPIENTS_KNOWN);
	unlink(path);
	cr_expect_eq(recipients_check(path, "a@l.test"), RECIPIENTS_ERROR,
	             "a missing table must tempfail, not accept");
	recipients_flush();
}

/* SMTPUTF8: the domain of an entry and of an address is compared as its
 * A-label, whichever form each is written in; UTF-8 local parts octet for
 * octet, only ASCII case ignored. */
Test(recipients, idn_domains)
{
	static const char text[] = "j\xc3\xb6rg@b\xc3\xbc"
	                           "cher.example\n"
	                           "Anna@xn--bcher-kva.example\n"
	                           "@\xe4\xbe\x8b\xe5\xad\x90.test\n";
	char err[200];
	struct recipients_table *t = recipients_parse(text, sizeof(text) - 1, err, sizeof(err));
	cr_assert_not_null(t, "%s", err);
	static const struct {
		const char *addr;
		int known;
	} cases[] = {
	    {"j\xc3\xb6rg@b\xc3\xbc"
	     "cher.example",
	     1},
	    {"j\xc3\xb6rg@xn--bcher-kva.example", 1},
	    {"J\xc3\xb6RG@B\xc3\x9c"
	     "CHER.example",
	     1},
	    {"anna@b\xc3\xbc"
	     "cher.example",
	     1},
	    {"j\xc3\x96rg@b\xc3\xbc"
	     "cher.example",
	     0}, /* no Unicode case folding of local parts */
	    {"jorg@b\xc3\xbc"
	     "cher.example",
	     0},
	    {"anyone@xn--fsqu00a.test", 1},
	    {"anyone@\xe4\xbe\x8b\xe5\xad\x90.test", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(recipients_lookup(t, cases[i].addr), cases[i].known, "%s",
		             cases[i].addr);
	recipients_free(t);
}
