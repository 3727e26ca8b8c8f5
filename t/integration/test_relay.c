/*
 * test_relay.c: tempomxd is not an open relay.
 *
 * A client outside mynetworks (the harness binds to 127.0.0.2; the default
 * mynetworks is 127.0.0.1/32 ::1/128) may only send to local_domains and
 * relay_domains. The classic tricks (percent hack, quoted local part, bang
 * paths, source routes, trailing dot, address literals, look-alike
 * domains, a local sender) must never make mail leave for another domain:
 * such a recipient is refused, or treated as a local mailbox. "Leave" is
 * checked where it would show: outbound delivery is not there yet, so a
 * relayed message would sit in out/ or deferred/ with a non-local
 * recipient in its envelope. Clients in mynetworks may relay.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(relay, .init = h_setup, .fini = h_teardown, .timeout = 60);

static struct h_daemon D;
static struct h_conn C1;

static const char *const local_domains[] = {"localhost", "example.test", NULL};

static int is_local(const char *domain)
{
	for (size_t i = 0; local_domains[i]; i++)
		if (strcasecmp(domain, local_domains[i]) == 0)
			return 1;
	return 0;
}

static void unescape(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; in[i] && o + 1 < size; i++) {
		if (in[i] == '%' && isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2])) {
			char hex[3] = {in[i + 1], in[i + 2], 0};

			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
}

/* Recipients in queued envelopes whose domain is not local: each would be
 * a relayed message. Returns the count and lists them in list. */
static int nonlocal_queued(char *list, size_t size)
{
	static const char *const queues[] = {"incoming", "hi",   "lo", "out",
	                                     "deferred", "hold", NULL};
	int found = 0;

	list[0] = '\0';
	for (size_t q = 0; queues[q]; q++) {
		int n;
		char *all = h_spool_slurp(&D, queues[q], &n);
		char *line = all;

		while (line && *line) {
			char *eol = strchr(line, '\n');

			if (eol)
				*eol = '\0';
			if (strncmp(line, "rcpt ", 5) == 0) {
				char addr[1024], *last = strrchr(line, ' ');
				const char *at;

				unescape(last ? last + 1 : line, addr, sizeof(addr));
				at = strrchr(addr, '@');
				/* A bare "postmaster" is local by definition. */
				if (at && !is_local(at + 1)) {
					found++;
					snprintf(list + strlen(list), size - strlen(list), " %s/%s",
					         queues[q], addr);
				}
			}
			line = eol ? eol + 1 : NULL;
		}
		free(all);
	}
	return found;
}

Test(relay, untrusted_client_cannot_relay)
{
	char list[2048];

	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<spammer@example.net>");
	h_expect(&C1, 554, "RCPT TO:<user@other.org>");
	cr_expect(h_last_has(&C1, "5.7.1"), "relay refusal: %s", C1.last);
	int code = h_cmd(&C1, "DATA");
	cr_expect(code >= 500, "DATA without a valid recipient: %d %s", code, C1.last);
	h_expect(&C1, 250, "RSET");
	/* A local sender address from outside gives no right to relay. */
	h_expect(&C1, 250, "MAIL FROM:<bob@localhost>");
	h_expect(&C1, 554, "RCPT TO:<user@other.org>");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	h_sleep_ms(300);
	cr_expect_eq(h_spool_total(&D) + h_spool_count(&D, "incoming"), 0,
	             "a refused relay attempt left a spool file");
	cr_expect_eq(nonlocal_queued(list, sizeof(list)), 0, "queued for other domains:%s", list);
	/* The admin sees the refusal and whom it was for. */
	cr_expect(h_log_has(&D, "user@other.org"), "the refused relay attempt is not logged");
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Each must get a 5xx: the mail would be for another domain. */
static const char *const must_refuse[] = {
    "user@other.org.",               /* trailing dot */
    "@route.example:user@other.org", /* RFC 5321 source route */
    "@localhost:user@other.org",     /* route through us to elsewhere */
    "user@[192.0.2.1]",              /* address literal, not ours */
    "user@localhost.other.org",      /* look-alike suffixes */
    "user@example.test.evil.example",
    "user@xexample.test",
    "user@other.org",
    NULL,
};

/* Each may be refused, or accepted as a local mailbox, never relayed. */
static const char *const local_or_refused[] = {
    "user%other.org@localhost",     /* the percent hack */
    "\"user@other.org\"@localhost", /* quoted local part */
    "user!other.org@localhost",     /* bang path */
    "other.org!user@localhost",     "user@other.org@localhost", "user%other.org@example.test", NULL,
};

/* Each must be accepted. */
static const char *const must_accept[] = {
    "bob@localhost", "bob@LocalHost", "carol@EXAMPLE.TEST", "postmaster", NULL,
};

Test(relay, address_tricks_never_relay)
{
	char list[4096];
	size_t mlen, slen;
	char *msg = h_make_message("relay tricks", "tricks-1", &mlen), *stuffed;
	int accepted = 0;

	h_daemon_init(&D);
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	for (size_t i = 0; must_refuse[i]; i++) {
		int code = h_cmd(&C1, "RCPT TO:<%s>", must_refuse[i]);

		cr_expect(code >= 500 && code < 600, "RCPT TO:<%s> from outside: %d %s",
		          must_refuse[i], code, C1.last);
	}
	for (size_t i = 0; local_or_refused[i]; i++) {
		int code = h_cmd(&C1, "RCPT TO:<%s>", local_or_refused[i]);

		cr_expect(code == 250 || (code >= 500 && code < 600), "RCPT TO:<%s>: %d %s",
		          local_or_refused[i], code, C1.last);
		if (code == 250) {
			accepted++;
			cr_log_info("accepted as local: <%s>", local_or_refused[i]);
		}
	}
	for (size_t i = 0; must_accept[i]; i++)
		h_expect(&C1, 250, "RCPT TO:<%s>", must_accept[i]);
	h_expect(&C1, 354, "DATA");
	stuffed = h_dotstuff(msg, mlen, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);

	/* Let delivery work through the queue, then look at what is left:
	 * nothing may be waiting for another domain. */
	char bob[H_PATH];
	h_maildir(&D, "localhost", "bob", bob, sizeof(bob));
	cr_expect_geq(h_maildir_wait(bob, 1, 15000), 1, "bob@localhost got nothing");
	h_spool_wait_idle(&D, 10000);
	cr_expect_eq(nonlocal_queued(list, sizeof(list)), 0,
	             "recipients of other domains queued from an untrusted client:%s", list);
	cr_log_info("%d tricky local parts were accepted as local mailboxes", accepted);
	free(stuffed);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

/* Wait until a queue file mentioning needle is in out/ or deferred/. */
static int queued_for(const char *needle, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	for (;;) {
		static const char *const queues[] = {"out", "deferred", NULL};

		for (size_t q = 0; queues[q]; q++) {
			int n;
			char *all = h_spool_slurp(&D, queues[q], &n);
			int hit = strstr(all, needle) != NULL;

			free(all);
			if (hit)
				return 1;
		}
		if (h_now_ms() >= deadline)
			return 0;
		h_sleep_ms(100);
	}
}

Test(relay, mynetworks_may_relay)
{
	static const char *const rcpts[] = {"friend@other.org", NULL};
	size_t mlen;
	char *msg = h_make_message("outbound", "outbound-1", &mlen);
	int code;

	h_daemon_init(&D);
	/* No DNS answer here: relayed mail must wait in the queue. */
	h_set(&D, "dns_servers", "127.0.0.1:9");
	h_daemon_start(&D);
	code = h_send_mail(D.port, "127.0.0.1", "user@localhost", rcpts, msg, mlen);
	cr_assert_eq(code, 250, "relay from 127.0.0.1 (mynetworks): %d", code);
	/* Without a DNS answer the message waits in the queue. */
	cr_expect(queued_for("friend@other.org", 15000),
	          "the relayed message is neither in out/ nor in deferred/");
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(relay, mynetworks_setting_is_used)
{
	static const char *const rcpts[] = {"friend@other.org", NULL};
	size_t mlen;
	char *msg = h_make_message("outbound", "outbound-2", &mlen);
	int code;

	h_daemon_init(&D);
	/* No DNS answer here: relayed mail must wait in the queue. */
	h_set(&D, "dns_servers", "127.0.0.1:9");
	h_set(&D, "mynetworks", "127.0.0.2/32");
	h_daemon_start(&D);
	/* 127.0.0.1 is no longer trusted, 127.0.0.2 is. */
	code = h_send_mail(D.port, "127.0.0.1", "user@localhost", rcpts, msg, mlen);
	cr_expect_eq(code, 554, "relay from 127.0.0.1 outside mynetworks: %d", code);
	code = h_send_mail(D.port, "127.0.0.2", "user@localhost", rcpts, msg, mlen);
	cr_expect_eq(code, 250, "relay from 127.0.0.2 inside mynetworks: %d", code);
	cr_expect(queued_for("friend@other.org", 15000), "the relayed message is not queued");
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}

Test(relay, relay_domains_from_anyone)
{
	size_t mlen, slen;
	char *msg = h_make_message("backup mx", "backup-1", &mlen), *stuffed;

	h_daemon_init(&D);
	/* No DNS answer here: relayed mail must wait in the queue. */
	h_set(&D, "dns_servers", "127.0.0.1:9");
	h_set(&D, "relay_domains", "relay.test");
	h_daemon_start(&D);
	h_open(&C1, "127.0.0.2", D.port);
	h_expect(&C1, 250, "EHLO mta.example.net");
	h_expect(&C1, 250, "MAIL FROM:<sender@example.net>");
	h_expect(&C1, 250, "RCPT TO:<someone@relay.test>");
	h_expect(&C1, 250, "RCPT TO:<other@RELAY.TEST>");
	h_expect(&C1, 554, "RCPT TO:<someone@other.org>");
	h_expect(&C1, 554, "RCPT TO:<someone@notrelay.test>");
	h_expect(&C1, 354, "DATA");
	stuffed = h_dotstuff(msg, mlen, &slen);
	cr_assert_eq(h_send(&C1, stuffed, slen), 0);
	h_expect_reply(&C1, 250, "end of data");
	h_expect(&C1, 221, "QUIT");
	h_close(&C1);
	cr_expect(queued_for("someone@relay.test", 15000),
	          "the message for the relay domain is not queued");
	int n;
	char *all = h_spool_slurp(&D, "deferred", &n);
	cr_expect(strstr(all, "someone@other.org") == NULL, "a refused recipient was queued");
	free(all);
	all = h_spool_slurp(&D, "out", &n);
	cr_expect(strstr(all, "someone@other.org") == NULL, "a refused recipient was queued");
	free(all);
	free(stuffed);
	free(msg);
	h_daemon_stop(&D);
	h_daemon_free(&D);
}
