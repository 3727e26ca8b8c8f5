/*
 * test_conf.c: unit tests of the configuration (src/common/conf.c) and of
 * loading and reloading it (src/common/runtime.c).
 *
 * Table-driven: good files with the "tempomxd -n" output they must give,
 * bad files with the exact error an admin must see, -o overrides, the
 * domain and network helpers. Two tests read the source tree (TMX_SRCDIR,
 * set by make check, "." otherwise): tempomx.conf(5) must document exactly
 * the keys of conf_keys[] with their defaults, and etc/tempomx.conf must
 * parse to the defaults, with and without its lines uncommented.
 */
#include "config.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tempomx.h"
#include "util.h"

static char *print_changed_str(const struct config *cf)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	cr_assert_not_null(fp);
	conf_print_changed(cf, fp);
	fclose(fp);
	return buf;
}

static char *print_all_str(const struct config *cf)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	cr_assert_not_null(fp);
	conf_print_all(cf, fp);
	fclose(fp);
	return buf;
}

static int parse(const char *text, struct config *cf, char *err, size_t errlen)
{
	return conf_parse_buffer("t.conf", text, strlen(text), cf, err, errlen);
}

static char *read_whole(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		fwrite(chunk, 1, n, out);
	fclose(fp);
	fclose(out);
	return buf;
}

static char *srcdir_path(const char *rel)
{
	const char *dir = getenv("TMX_SRCDIR");
	char *p;
	xasprintf(&p, "%s/%s", dir && *dir ? dir : ".", rel);
	return p;
}

static char *write_temp(const char *text)
{
	char *path = xstrdup("/tmp/test_conf.XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	size_t n = strlen(text);
	cr_assert_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

/* Good files and the settings that differ from the defaults afterwards,
 * as tempomxd -n prints them. */
struct good_case {
	const char *text;
	const char *changed;
};

static const struct good_case good_cases[] = {
    {"", ""},
    {"# only comments\n\n   \n\t# indented comment\n", ""},
    {"max_errors = 5 # trailing comment\n", "max_errors = 5\n"},
    {"max_errors=7", "max_errors = 7\n"},
    {"\xef\xbb\xbfmax_errors = 8\n", "max_errors = 8\n"},
    {"max_errors = 7\r\nmax_recipients = 50\r\n", "max_recipients = 50\nmax_errors = 7\n"},
    {"max_errors\t=\t9\t\n", "max_errors = 9\n"},
    {"banner = ESMTP#1 ready\n", "banner = ESMTP#1 ready\n"},
    {"banner = \"  # spaced\"  # comment\n", "banner = \"  # spaced\"\n"},
    {"banner = \"say \\\"hi\\\" \\\\o/\"\n", "banner = say \"hi\" \\o/\n"},
    {"banner = said \"hi\"\n", "banner = said \"hi\"\n"},
    {"local_domains = a.example,\n  b.example\n\tc.example # more below\n"
     "# a comment inside the value\n  d.example\n",
     "local_domains = a.example b.example c.example d.example\n"},
    {"mynetworks = 10.0.0.0/8,192.0.2.1 , 2001:db8::/32,,\n",
     "mynetworks = 10.0.0.0/8 192.0.2.1/32 2001:db8::/32\n"},
    {"mynetworks = 10.1.2.3/8\n", "mynetworks = 10.0.0.0/8\n"},
    {"local_domains = Example.ORG. .Sub.Example.net\n",
     "local_domains = example.org .sub.example.net\n"},
    {"local_domains =\n", "local_domains = \"\"\n"},
    {"relay_domains = backup.example\n", "relay_domains = backup.example\n"},
    /* U-labels are kept (and shown) as A-labels (RFC 5890) */
    {"local_domains = B\xc3\xbc"
     "cher.example .\xe4\xbe\x8b\xe5\xad\x90.example\n",
     "local_domains = xn--bcher-kva.example .xn--fsqu00a.example\n"},
    {"listen = 127.0.0.1:25\nlisten = [::1]:25 timing=off\nlisten = 127.0.0.1:587, "
     "timing=no\n",
     "listen = 127.0.0.1:25 [::1]:25 timing=off 127.0.0.1:587 timing=off\n"},
    {"listen = 127.0.0.1:2525\nlisten = [::1]:2525 timing=on\n", ""},
    {"listen = 127.0.0.1:25\n", "listen = 127.0.0.1:25\n"},
    {"listen = 127.0.0.1:25\n  [::1]:25\n", "listen = 127.0.0.1:25 [::1]:25\n"},
    {"command_timeout = 5m\ndata_timeout = 1h\nretry_min = 1d\nshutdown_grace = 0\n"
     "queue_rescan_interval = 30\n",
     "shutdown_grace = 0s\ndata_timeout = 3600s\nqueue_rescan_interval = 30s\n"
     "retry_min = 86400s\n"},
    {"message_size_limit = 20M\nheader_size_limit = 64k\n",
     "message_size_limit = 20971520\nheader_size_limit = 65536\n"},
    {"message_size_limit = 10240000\nheader_size_limit = 100K\n", ""},
    {"scan = off\nsmtp_tls = false\nbare_lf = Normalize\nallow_address_literals = yes\n",
     "allow_address_literals = yes\nbare_lf = normalize\nsmtp_tls = no\nscan = no\n"},
    {"schedule = Weighted\nweight = 3\nlo_max_wait = 10m\nscan_error_action = hold\n"
     "scan_threads = 2\nscan_max_filesize = 1M\nclamav_database = /srv/clamav\n",
     "clamav_database = /srv/clamav\nscan_threads = 2\nscan_max_filesize = 1048576\n"
     "scan_error_action = hold\nschedule = weighted\nweight = 3\nlo_max_wait = 600s\n"},
    {"hostname = mx.Example.org\nuser = _tempomx\nsyslog_facility = local3\n",
     "hostname = mx.Example.org\nuser = _tempomx\nsyslog_facility = local3\n"},
    {"spool_directory = /srv/spool\npid_file = /run/tempomxd.pid\n",
     "spool_directory = /srv/spool\npid_file = /run/tempomxd.pid\n"},
    {"maildir = /home/%u/Maildir/\nmaildir_crlf = yes\n",
     "maildir = /home/%u/Maildir/\nmaildir_crlf = yes\n"},
    {"maildir = /var/vmail/%d/%a/100%%/\n", "maildir = /var/vmail/%d/%a/100%%/\n"},
    {"tls_cert_file = /etc/ssl/mx.pem\ntls_key_file = /etc/ssl/mx.key\n",
     "tls_cert_file = /etc/ssl/mx.pem\ntls_key_file = /etc/ssl/mx.key\n"},
    {"spool_writers = 64\ndelivery_threads = 1\nline_length_limit = 1000\n",
     "spool_writers = 64\ndelivery_threads = 1\n"},
    {"max_connections = 10\nmax_connections_per_client = 2", "max_connections = 10\n"
                                                             "max_connections_per_client = 2\n"},
};

Test(conf, good_files)
{
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct good_case *c = &good_cases[i];
		struct config cf;
		char err[512] = "";
		int rc = parse(c->text, &cf, err, sizeof(err));
		cr_assert_eq(rc, 0, "case %zu: %s", i, err);
		char *out = print_changed_str(&cf);
		cr_expect_str_eq(out, c->changed, "case %zu", i);
		free(out);
		/* What -n prints reads back to the same settings. */
		out = print_all_str(&cf);
		struct config again;
		cr_assert_eq(parse(out, &again, err, sizeof(err)), 0, "case %zu: %s", i, err);
		char *out2 = print_all_str(&again);
		cr_expect_str_eq(out2, out, "case %zu", i);
		free(out);
		free(out2);
		conf_free(&again);
		conf_free(&cf);
	}
}

Test(conf, values_land_in_fields)
{
	struct config cf;
	char err[512];
	const char *text = "listen = 127.0.0.1:25\nlisten = [::1]:587 timing=off\n"
	                   "message_size_limit = 1G\ncommand_timeout = 2m\nbare_lf = normalize\n"
	                   "local_domains = Mail.Example.\n";
	cr_assert_eq(parse(text, &cf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cf.listen.n, 2);
	cr_expect_str_eq(cf.listen.v[0].text, "127.0.0.1:25");
	cr_expect_eq(cf.listen.v[0].timing, 1);
	cr_expect_eq(cf.listen.v[0].ss.ss_family, AF_INET);
	cr_expect_eq(sockaddr_port((struct sockaddr *)&cf.listen.v[0].ss), 25u);
	cr_expect_eq(cf.listen.v[1].timing, 0);
	cr_expect_eq(cf.listen.v[1].ss.ss_family, AF_INET6);
	cr_expect_eq(sockaddr_port((struct sockaddr *)&cf.listen.v[1].ss), 587u);
	cr_expect_eq(cf.message_size_limit, 1024ULL * 1024 * 1024);
	cr_expect_eq(cf.command_timeout, 120);
	cr_expect_eq(cf.bare_lf, BARE_LF_NORMALIZE);
	cr_assert_eq(cf.local_domains.n, 1);
	cr_expect_str_eq(cf.local_domains.v[0], "mail.example");
	/* untouched keys keep the built-in defaults */
	cr_expect_eq(cf.max_errors, 20);
	cr_expect_eq(cf.line_length_limit, 1000);
	cr_expect_eq(cf.spool_writers, 8);
	cr_expect_eq(cf.smtp_tls, 1);
	cr_expect_eq(cf.maildir_crlf, 0); /* LF, as Maildir readers expect */
	cr_expect_eq(cf.scan, 1);
	cr_expect_eq(cf.schedule, SCHEDULE_ABSOLUTE);
	cr_expect_eq(cf.lo_max_wait, 3600);
	cr_expect_str_eq(cf.banner, "ESMTP tempomx");
	conf_free(&cf);
}

struct bad_case {
	const char *text;
	const char *error;
};

static const struct bad_case bad_cases[] = {
    {"foo = 1\n", "t.conf:1: unknown key 'foo'"},
    {"Max_Errors = 1\n", "t.conf:1: unknown key 'Max_Errors'"},
    {"max_errors = x\n", "t.conf:1: bad value 'x' for max_errors: not a number"},
    {"max_errors =\n", "t.conf:1: bad value '' for max_errors: not a number"},
    {"max_errors = 5 apples\n", "t.conf:1: bad value '5 apples' for max_errors: not a number"},
    {"max_errors = 0\n", "t.conf:1: max_errors must be between 1 and 1000"},
    {"max_errors = 1001\n", "t.conf:1: max_errors must be between 1 and 1000"},
    {"max_errors = -5\n", "t.conf:1: max_errors must be between 1 and 1000"},
    {"spool_writers = 65\n", "t.conf:1: spool_writers must be between 1 and 64"},
    {"line_length_limit = 999\n", "t.conf:1: line_length_limit must be between 1000 and 65536"},
    {"# c\n\nmynetworks = 10.0.0.0/33\n", "t.conf:3: bad network '10.0.0.0/33' in mynetworks"},
    {"mynetworks = 127.0.0.1/32 localhost\n", "t.conf:1: bad network 'localhost' in mynetworks"},
    {"max_errors 5\n", "t.conf:1: missing '='"},
    {"max_errors\n", "t.conf:1: missing '='"},
    {"= 5\n", "t.conf:1: missing key before '='"},
    {"max_errors = 5\nmax_errors = 6\n",
     "t.conf:2: key 'max_errors' given twice (first on line 1)"},
    {"  max_errors = 5\n", "t.conf:1: continuation line without a key before it"},
    {"banner = \"abc\n", "t.conf:1: missing closing quote"},
    {"banner = \"abc\" def\n", "t.conf:1: unexpected text after the closing quote"},
    {"command_timeout = 5x\n", "t.conf:1: bad value '5x' for command_timeout: not a duration "
                               "(seconds, or with an s, m, h, d or w suffix)"},
    {"command_timeout = 0\n", "t.conf:1: command_timeout must be between 1s and 3600s"},
    {"data_timeout = 2h\n", "t.conf:1: data_timeout must be between 1s and 3600s"},
    {"retry_min = 1w\n", "t.conf:1: retry_min must be between 1s and 86400s"},
    {"message_size_limit = lots\n", "t.conf:1: bad value 'lots' for message_size_limit: not a "
                                    "size (bytes, or with a k, M or G suffix)"},
    {"message_size_limit = 1k\n",
     "t.conf:1: message_size_limit must be between 65536 and 4294967296 bytes"},
    {"scan = maybe\n", "t.conf:1: bad value 'maybe' for scan: expected yes or no"},
    {"bare_lf = fix\n", "t.conf:1: bad value 'fix' for bare_lf: expected reject or normalize"},
    {"local_domains = ok.example bad..example\n",
     "t.conf:1: bad domain 'bad..example' in local_domains"},
    {"relay_domains = .\n", "t.conf:1: bad domain '.' in relay_domains"},
    {"local_domains = b\xc3\xbc\xc3.example\n",
     "t.conf:1: bad domain 'b\xc3\xbc\xc3.example' in local_domains"},
    {"listen = 127.0.0.1\n", "t.conf:1: bad listen address '127.0.0.1' (expected ADDR:PORT "
                             "such as 127.0.0.1:25 or [::1]:25)"},
    {"listen = ::1:25\n", "t.conf:1: bad listen address '::1:25' (expected ADDR:PORT such as "
                          "127.0.0.1:25 or [::1]:25)"},
    {"listen = timing=off 127.0.0.1:25\n",
     "t.conf:1: listen option 'timing=off' must follow an address"},
    {"listen = 127.0.0.1:25 foo=bar\n", "t.conf:1: unknown listen option 'foo=bar'"},
    {"listen = 127.0.0.1:25 timing=maybe\n",
     "t.conf:1: bad value 'maybe' for listen option timing"},
    {"spool_directory = var/spool\n",
     "t.conf:1: bad value 'var/spool' for spool_directory: not an absolute path"},
    {"maildir = /var/mail/%d/\n",
     "t.conf:1: bad value '/var/mail/%d/' for maildir: must contain %u or %a"},
    {"maildir = /m/%x/%u\n", "t.conf:1: bad value '/m/%x/%u' for maildir: unknown escape '%x' "
                             "(use %u, %d, %a or %%)"},
    {"maildir = /m/%u/%\n", "t.conf:1: bad value '/m/%u/%' for maildir: '%' at the end"},
    {"maildir = mail/%u\n", "t.conf:1: bad value 'mail/%u' for maildir: not an absolute path"},
    {"hostname = -bad-\n", "t.conf:1: bad value '-bad-' for hostname: not a valid domain name"},
    {"user = root:0\n", "t.conf:1: bad value 'root:0' for user: not a valid user name"},
    {"user =\n", "t.conf:1: bad value '' for user: not a valid user name"},
    {"syslog_facility = local9\n",
     "t.conf:1: bad value 'local9' for syslog_facility: expected mail, daemon or local0 to "
     "local7"},
    {"banner = caf\xc3\xa9\n", "t.conf:1: bad value 'caf\xc3\xa9' for banner: not printable ASCII"},
    {"max_errors = 5\x01\n", "t.conf:1: control character 0x01 in line"},
    {"max_errors = 5\n\x1b[31m\n", "t.conf:2: control character 0x1b in line"},
    {"local_domains = a.org\n  bad_domain!\n",
     "t.conf:1: bad domain 'bad_domain!' in local_domains"},
    {"relay_domains = a.org\n  b.org\nfoo = 1\n", "t.conf:3: unknown key 'foo'"},
    {"relay_domains = a.org\n  \"b.org\nfoo = 1\n", "t.conf:2: missing closing quote"},
};

Test(conf, bad_files)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct config cf;
		char err[512] = "";
		cr_expect_eq(parse(c->text, &cf, err, sizeof(err)), -1, "case %zu", i);
		cr_expect_str_eq(err, c->error, "case %zu", i);
		/* The contract: on error the config is freed and zeroed. */
		cr_expect_null(cf.hostname, "case %zu", i);
		cr_expect_eq(cf.listen.n, 0, "case %zu", i);
		conf_free(&cf);
	}
}

Test(conf, nul_byte_and_missing_file)
{
	struct config cf;
	char err[512];
	const char text[] = "max_errors = 5\nbanner = a\0b\n";
	cr_expect_eq(conf_parse_buffer("n.conf", text, sizeof(text) - 1, &cf, err, sizeof(err)),
	             -1);
	cr_expect_str_eq(err, "n.conf:2: NUL byte in line");
	conf_free(&cf);

	cr_expect_eq(conf_load("/nonexistent/tempomx.conf", &cf, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "/nonexistent/tempomx.conf: No such file or directory");
	cr_expect_eq(conf_load("/tmp", &cf, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "/tmp: not a regular file");
	conf_free(&cf);
}

Test(conf, load_file)
{
	char *path = write_temp("max_errors = 3\nlisten = 127.0.0.1:2600\nbogus\n");
	struct config cf;
	char err[512], want[600];
	cr_expect_eq(conf_load(path, &cf, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: missing '='", path);
	cr_expect_str_eq(err, want);
	unlink(path);
	free(path);

	path = write_temp("max_errors = 3\nlisten = 127.0.0.1:2600\n");
	cr_assert_eq(conf_load(path, &cf, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cf.max_errors, 3);
	cr_expect_eq(cf.listen.n, 1);
	conf_free(&cf);
	unlink(path);
	free(path);
}

struct set_case {
	const char *assign;
	int ok;
	const char *result; /* the key's value afterwards, or the error */
	const char *key;
};

static const struct set_case set_cases[] = {
    {"max_errors=7", 1, "7", "max_errors"},
    {" max_errors = 8 ", 1, "8", "max_errors"},
    {"listen=127.0.0.1:2626", 1, "127.0.0.1:2626", "listen"},
    {"listen=127.0.0.1:2626 [::1]:2626 timing=off", 1, "127.0.0.1:2626 [::1]:2626 timing=off",
     "listen"},
    {"banner=\"  spaced\"", 1, "  spaced", "banner"},
    {"banner=a # b", 1, "a # b", "banner"},
    {"relay_domains=a.example,b.example", 1, "a.example b.example", "relay_domains"},
    {"command_timeout=10m", 1, "600s", "command_timeout"},
    {"nokey", 0, "-o: missing '=' in 'nokey'", NULL},
    {"foo=1", 0, "-o: unknown key 'foo'", NULL},
    {"=1", 0, "-o: unknown key ''", NULL},
    {"max_errors=abc", 0, "-o: bad value 'abc' for max_errors: not a number", NULL},
    {"max_errors=0", 0, "-o: max_errors must be between 1 and 1000", NULL},
    {"banner=\"abc", 0, "-o: banner: missing closing quote", NULL},
    {"banner=\"abc\" x", 0, "-o: banner: unexpected text after the closing quote", NULL},
    {"banner=a\nb", 0, "-o: banner: control character 0x0a in line", NULL},
};

Test(conf, overrides)
{
	for (size_t i = 0; i < sizeof(set_cases) / sizeof(set_cases[0]); i++) {
		const struct set_case *c = &set_cases[i];
		struct config cf;
		char err[512] = "";
		conf_defaults(&cf);
		int rc = conf_set(&cf, c->assign, err, sizeof(err));
		if (c->ok) {
			cr_assert_eq(rc, 0, "case %zu: %s", i, err);
			char *v = conf_value_string(&cf, conf_find_key(c->key));
			cr_expect_str_eq(v, c->result, "case %zu", i);
			free(v);
		} else {
			cr_expect_eq(rc, -1, "case %zu", i);
			cr_expect_str_eq(err, c->result, "case %zu", i);
			cr_expect_null(cf.banner, "case %zu: freed on error", i);
		}
		conf_free(&cf);
	}
}

Test(conf, finish_checks)
{
	static const struct bad_case cases[] = {
	    {"listen =\n", "no listen address: at least one listen line is needed"},
	    {"listen = 127.0.0.1:25 [::1]:26 127.0.0.1:25\n",
	     "listen address '127.0.0.1:25' given twice"},
	    {"listen = 127.0.0.1:25\nlisten = 127.0.0.1:25 timing=off\n",
	     "listen address '127.0.0.1:25 timing=off' given twice"},
	    {"tls_cert_file = /etc/ssl/c.pem\n",
	     "tls_cert_file and tls_key_file must be set together"},
	    {"tls_key_file = /etc/ssl/k.pem\n",
	     "tls_cert_file and tls_key_file must be set together"},
	    {"spool_directory =\n", "spool_directory must be an absolute path"},
	    {"recipient_verify = lmpt:[127.0.0.1]:24\n",
	     "recipient_verify must be none, lmtp:[address]:port, lmtp:unix:/path or "
	     "smtp:[address]:port"},
	    {"recipient_verify = smtp:mx.example.org\n",
	     "recipient_verify must be none, lmtp:[address]:port, lmtp:unix:/path or "
	     "smtp:[address]:port"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cf;
		char err[512] = "";
		cr_assert_eq(parse(cases[i].text, &cf, err, sizeof(err)), 0, "case %zu: %s", i,
		             err);
		cr_expect_eq(conf_finish(&cf, err, sizeof(err)), -1, "case %zu", i);
		cr_expect_str_eq(err, cases[i].error, "case %zu", i);
		cr_expect_null(cf.banner, "case %zu", i);
		conf_free(&cf);
	}
}

Test(conf, finish_derives_defaults)
{
	struct config cf;
	char err[512], host[300];
	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	cr_assert_eq(parse("spool_directory = /tmp/sp/\n", &cf, err, sizeof(err)), 0);
	int rc = conf_finish(&cf, err, sizeof(err));
	if (!addr_domain_valid(host, 0)) {
		char want[600];
		snprintf(want, sizeof(want),
		         "the system host name '%s' is not a valid domain name: set hostname",
		         host);
		cr_expect_eq(rc, -1);
		cr_expect_str_eq(err, want);
		return;
	}
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_str_eq(cf.hostname, host);
	cr_expect_str_eq(cf.pid_file, "/tmp/sp/master/tempomxd.pid");
	/* Derived values are still defaults for tempomxd -n. */
	char *out = print_changed_str(&cf);
	cr_expect_str_eq(out, "spool_directory = /tmp/sp/\n");
	free(out);
	conf_free(&cf);

	cr_assert_eq(
	    parse("hostname = mx.example.org\npid_file = /run/t.pid\n", &cf, err, sizeof(err)), 0);
	cr_assert_eq(conf_finish(&cf, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cf.hostname, "mx.example.org");
	cr_expect_str_eq(cf.pid_file, "/run/t.pid");
	conf_free(&cf);
}

Test(conf, print_changed_small_file)
{
	const char *text = "# a small primary MX\n"
	                   "hostname = mx.example.org\n"
	                   "listen = 0.0.0.0:25\n"
	                   "listen = [::]:25\n"
	                   "local_domains = example.org, .example.org\n"
	                   "mynetworks = 127.0.0.1/32 ::1/128 192.0.2.0/24\n"
	                   "max_errors = 20   # the default, so not printed\n"
	                   "message_size_limit = 25M\n"
	                   "scan = no\n";
	struct config cf;
	char err[512];
	cr_assert_eq(parse(text, &cf, err, sizeof(err)), 0, "%s", err);
	char *out = print_changed_str(&cf);
	cr_expect_str_eq(out, "hostname = mx.example.org\n"
	                      "listen = 0.0.0.0:25 [::]:25\n"
	                      "local_domains = example.org .example.org\n"
	                      "mynetworks = 127.0.0.1/32 ::1/128 192.0.2.0/24\n"
	                      "message_size_limit = 26214400\n"
	                      "scan = no\n");
	free(out);
	conf_free(&cf);
}

/* The table itself: every row complete, the defaults print back as the
 * table writes them, and nothing differs from the defaults by default. */
Test(conf, key_table)
{
	static const char *const procs[] = {"all", "smtpd", "scanner", "delivery", "master"};
	struct config cf;
	conf_defaults(&cf);
	char *all = print_all_str(&cf);
	char *changed = print_changed_str(&cf);
	cr_expect_str_eq(changed, "");
	char *want = xstrdup("");
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		cr_expect(k->description && strlen(k->description) > 5, "%s", k->name);
		cr_expect(k->def != NULL, "%s", k->name);
		int ok = 0;
		for (size_t j = 0; j < 5; j++)
			ok |= strcmp(k->process, procs[j]) == 0;
		cr_expect(ok, "%s: process %s", k->name, k->process);
		cr_expect_eq(conf_find_key(k->name), k);
		for (size_t j = 0; j < i; j++)
			cr_expect_str_neq(conf_keys[j].name, k->name);
		char *line;
		xasprintf(&line, "%s%s = %s%s%s\n", want, k->name, *k->def ? "" : "\"", k->def,
		          *k->def ? "" : "\"");
		free(want);
		want = line;
	}
	cr_expect_str_eq(all, want);
	cr_expect_null(conf_find_key("nonexistent"));
	free(all);
	free(changed);
	free(want);
	conf_free(&cf);
	conf_free(&cf); /* safe on a zeroed config */
}

struct domain_case {
	const char *domain;
	int local, relay;
};

Test(conf, domain_helpers)
{
	static const struct domain_case cases[] = {
	    {"example.org", 1, 0},
	    {"EXAMPLE.ORG", 1, 0},
	    {"example.org.", 1, 0},
	    {"mail.example.org", 0, 0},
	    {"example.net", 1, 0},
	    {"a.b.example.net", 1, 0},
	    {"A.Example.Net.", 1, 0},
	    {"badexample.net", 0, 0},
	    {"xample.net", 0, 0},
	    {"backup.example", 0, 1},
	    {"sub.backup.example", 0, 0},
	    {"deep.relay.example", 0, 1},
	    {"relay.example", 0, 1},
	    {"elay.example", 0, 0},
	    {"", 0, 0},
	    {".", 0, 0},
	    {"example.org..", 0, 0},
	};
	struct config cf;
	char err[512];
	cr_assert_eq(parse("local_domains = example.org .example.net\n"
	                   "relay_domains = Backup.Example. .relay.example\n",
	                   &cf, err, sizeof(err)),
	             0, "%s", err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(conf_is_local_domain(&cf, cases[i].domain), cases[i].local, "%s",
		             cases[i].domain);
		cr_expect_eq(conf_is_relay_domain(&cf, cases[i].domain), cases[i].relay, "%s",
		             cases[i].domain);
	}
	cr_expect_eq(conf_is_local_domain(&cf, NULL), 0);
	conf_free(&cf);
}

static struct sockaddr_storage mkaddr(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, s, &s6->sin6_addr), 1, "%s", s);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, s, &s4->sin_addr), 1, "%s", s);
	}
	return ss;
}

Test(conf, network_helper)
{
	static const struct {
		const char *addr;
		int in_default, in_custom;
	} cases[] = {
	    {"127.0.0.1", 1, 0},     {"127.0.0.2", 0, 0},       {"::1", 1, 0},
	    {"10.1.2.3", 0, 1},      {"::ffff:10.1.2.3", 0, 1}, {"11.0.0.1", 0, 0},
	    {"2001:db8:1::5", 0, 1}, {"2001:db9::1", 0, 0},     {"192.0.2.77", 0, 1},
	    {"192.0.2.78", 0, 0},
	};
	struct config def, cf;
	char err[512];
	conf_defaults(&def);
	cr_assert_eq(
	    parse("mynetworks = 10.0.0.0/8, 2001:db8::/32 192.0.2.77\n", &cf, err, sizeof(err)), 0,
	    "%s", err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss = mkaddr(cases[i].addr);
		cr_expect_eq(conf_in_mynetworks(&def, (struct sockaddr *)&ss), cases[i].in_default,
		             "%s", cases[i].addr);
		cr_expect_eq(conf_in_mynetworks(&cf, (struct sockaddr *)&ss), cases[i].in_custom,
		             "%s", cases[i].addr);
	}
	cr_expect_eq(conf_in_mynetworks(&cf, NULL), 0);
	conf_free(&cf);
	conf_free(&def);
}

/* The lines of the man page's item for key: from ".It Cm key" to the next
 * ".It" or ".El". */
static char *man_item(const char *page, const char *key)
{
	char *start;
	xasprintf(&start, "\n.It Cm %s\n", key);
	const char *p = strstr(page, start);
	size_t skip = strlen(start);
	free(start);
	if (p == NULL)
		return NULL;
	p += skip;
	const char *e1 = strstr(p, "\n.It "), *e2 = strstr(p, "\n.El");
	const char *e = e1 && (!e2 || e1 < e2) ? e1 : e2;
	return xstrndup(p, e ? (size_t)(e - p) : strlen(p));
}

Test(conf, man_page_documents_every_key)
{
	char *path = srcdir_path("man/tempomx.conf.5");
	char *page = read_whole(path);
	cr_assert_not_null(page, "cannot read %s (set TMX_SRCDIR)", path);
	/* every key, with its default */
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		char *item = man_item(page, k->name);
		cr_expect_not_null(item, "%s does not document %s as .It Cm %s", path, k->name,
		                   k->name);
		if (item == NULL)
			continue;
		char *ql;
		if (*k->def)
			xasprintf(&ql, strchr(k->def, ' ') ? ".Ql \"%s\"" : ".Ql %s", k->def);
		else
			ql = xstrdup("empty");
		cr_expect_not_null(strstr(item, ql), "%s: the item of %s lacks '%s'", path, k->name,
		                   ql);
		free(ql);
		free(item);
	}
	/* and no key that does not exist */
	size_t documented = 0;
	for (const char *p = page; (p = strstr(p, "\n.It Cm ")) != NULL;) {
		p += strlen("\n.It Cm ");
		size_t n = strcspn(p, " \n");
		char *name = xstrndup(p, n);
		cr_expect_not_null(conf_find_key(name), "%s documents unknown key '%s'", path,
		                   name);
		documented++;
		free(name);
	}
	cr_expect_eq(documented, conf_nkeys, "%s documents %zu keys, the table has %zu", path,
	             documented, conf_nkeys);
	free(page);
	free(path);
}

/* The EXAMPLES of tempomx.conf(5) are valid files. */
Test(conf, man_page_examples_parse)
{
	char *path = srcdir_path("man/tempomx.conf.5");
	char *page = read_whole(path);
	cr_assert_not_null(page, "cannot read %s (set TMX_SRCDIR)", path);
	size_t examples = 0;
	for (const char *p = page; (p = strstr(p, "\n.Bd -literal")) != NULL;) {
		p = strchr(p + 1, '\n');
		cr_assert_not_null(p);
		const char *e = strstr(p, "\n.Ed");
		cr_assert_not_null(e);
		struct config cf;
		char err[512];
		char *name;
		xasprintf(&name, "%s example %zu", path, ++examples);
		cr_expect_eq(conf_parse_buffer(name, p + 1, (size_t)(e - p), &cf, err, sizeof(err)),
		             0, "%s", err);
		conf_free(&cf);
		free(name);
		p = e;
	}
	cr_expect_geq(examples, 2);
	free(page);
	free(path);
}

/* etc/tempomx.conf must parse to the defaults as shipped, and still when
 * an admin uncomments every "# key = value" line. */
Test(conf, sample_file)
{
	char *path = srcdir_path("etc/tempomx.conf");
	char *text = read_whole(path);
	cr_assert_not_null(text, "cannot read %s (set TMX_SRCDIR)", path);
	struct config cf;
	char err[512];
	cr_assert_eq(conf_load(path, &cf, err, sizeof(err)), 0, "%s", err);
	char *out = print_changed_str(&cf);
	cr_expect_str_eq(out, "");
	free(out);
	conf_free(&cf);

	/* Each key once, commented out, with its default as -nn prints it. */
	conf_defaults(&cf);
	char *all = print_all_str(&cf);
	conf_free(&cf);
	for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
		char *want;
		xasprintf(&want, "\n#%s\n", line);
		char *hit = strstr(text, want);
		cr_expect_not_null(hit, "%s lacks the line '#%s'", path, line);
		if (hit)
			cr_expect_null(strstr(hit + 1, want), "%s has '#%s' twice", path, line);
		free(want);
	}
	free(all);

	/* Uncommented: "#key = value" lines become settings. */
	char *un = xstrdup(text);
	size_t settings = 0;
	for (char *p = un; (p = strstr(p, "\n#")) != NULL; p++) {
		size_t n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz_0123456789");
		if (n > 0 && strncmp(p + 2 + n, " = ", 3) == 0) {
			memmove(p + 1, p + 2, strlen(p + 2) + 1);
			settings++;
		}
	}
	cr_expect_eq(settings, conf_nkeys);
	cr_assert_eq(conf_parse_buffer(path, un, strlen(un), &cf, err, sizeof(err)), 0, "%s", err);
	out = print_changed_str(&cf);
	cr_expect_str_eq(out, "");
	free(out);
	conf_free(&cf);
	free(un);
	free(text);
	free(path);
}

static void quiet_log(void)
{
	log_init("test_conf", 1, 0);
}

Test(runtime, load_with_overrides, .init = quiet_log)
{
	char *path = write_temp("max_errors = 3\nbanner = from file\nlisten = 127.0.0.1:2700\n"
	                        "hostname = mx.example.org\n");
	char *ovr[] = {"max_errors=4", "listen=127.0.0.1:2701"};
	struct runtime rt;
	memset(&rt, 0, sizeof(rt));
	rt.conf_path = path;
	rt.overrides = ovr;
	rt.noverrides = 2;
	struct config cf;
	char err[512];
	cr_assert_eq(runtime_load_config(&rt, &cf, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cf.max_errors, 4);
	cr_expect_str_eq(cf.banner, "from file");
	cr_assert_eq(cf.listen.n, 1);
	cr_expect_str_eq(cf.listen.v[0].text, "127.0.0.1:2701");
	cr_expect_str_eq(cf.pid_file, DEFAULT_SPOOL_DIRECTORY "/master/tempomxd.pid");
	conf_free(&cf);

	char *bad[] = {"max_errors=many"};
	rt.overrides = bad;
	rt.noverrides = 1;
	cr_expect_eq(runtime_load_config(&rt, &cf, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "-o: bad value 'many' for max_errors: not a number");

	/* No file: the built-in defaults, which need a usable system name. */
	char host[300];
	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	rt.conf_path = NULL;
	rt.noverrides = 0;
	if (addr_domain_valid(host, 0)) {
		cr_assert_eq(runtime_load_config(&rt, &cf, err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(cf.max_errors, 20);
		cr_expect_eq(cf.listen.n, 2);
		conf_free(&cf);
	}
	unlink(path);
	free(path);
}

static void rewrite(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs(text, fp);
	fclose(fp);
}

Test(runtime, reload, .init = quiet_log)
{
	char *path = write_temp("hostname = mx.example.org\nmax_errors = 3\n"
	                        "listen = 127.0.0.1:2700\nspool_writers = 2\n");
	struct runtime rt;
	memset(&rt, 0, sizeof(rt));
	rt.conf_path = path;
	struct config *cf = xcalloc(1, sizeof(*cf));
	char err[512];
	cr_assert_eq(runtime_load_config(&rt, cf, err, sizeof(err)), 0, "%s", err);
	rt.cf = cf;

	/* Reloadable keys change; restart-only keys keep their value. */
	rewrite(path, "hostname = mx.example.org\nmax_errors = 9\nlisten = 127.0.0.1:2799\n"
	              "spool_writers = 5\nbanner = reloaded\n");
	cr_assert_eq(runtime_reload(&rt), 0);
	cr_expect_eq(rt.cf, cf, "the config is updated in place");
	cr_expect_eq(rt.cf->max_errors, 9);
	cr_expect_str_eq(rt.cf->banner, "reloaded");
	cr_assert_eq(rt.cf->listen.n, 1);
	cr_expect_str_eq(rt.cf->listen.v[0].text, "127.0.0.1:2700");
	cr_expect_eq(rt.cf->spool_writers, 2);

	/* A broken file keeps every old setting. */
	rewrite(path, "hostname = mx.example.org\nmax_errors = 0\n");
	cr_expect_eq(runtime_reload(&rt), -1);
	cr_expect_eq(rt.cf->max_errors, 9);
	cr_expect_str_eq(rt.cf->banner, "reloaded");
	rewrite(path, "hostname = mx.example.org\ntls_cert_file = /x.pem\n");
	cr_expect_eq(runtime_reload(&rt), -1);
	cr_expect_str_eq(rt.cf->tls_cert_file, "");

	conf_free(rt.cf);
	free(rt.cf);
	unlink(path);
	free(path);
}

/* SMTPUTF8: a configured domain matches its U-label and A-label forms,
 * whichever way it was written. */
Test(conf, idn_local_domains)
{
	struct config cf;
	char err[512];
	const char *text = "local_domains = b\xc3\xbc"
	                   "cher.example xn--fsqu00a.example\n"
	                   "relay_domains = .r\xc3\xa9seau.example\n";
	cr_assert_eq(parse(text, &cf, err, sizeof(err)), 0, "%s", err);
	cr_expect(conf_is_local_domain(&cf, "b\xc3\xbc"
	                                    "cher.example"));
	cr_expect(conf_is_local_domain(&cf, "xn--bcher-kva.example"));
	cr_expect(conf_is_local_domain(&cf, "B\xc3\x9c"
	                                    "CHER.example"));
	cr_expect(conf_is_local_domain(&cf, "\xe4\xbe\x8b\xe5\xad\x90.example"));
	cr_expect(conf_is_local_domain(&cf, "xn--fsqu00a.example"));
	cr_expect(!conf_is_local_domain(&cf, "bucher.example"));
	cr_expect(!conf_is_local_domain(&cf, "b\xc3\xbc\xc3.example"));
	cr_expect(conf_is_relay_domain(&cf, "mx.r\xc3\xa9seau.example"));
	cr_expect(conf_is_relay_domain(&cf, "xn--rseau-bsa.example"));
	conf_free(&cf);
}
