/*
 * test_bounce.c: the delivery status notification (bounce.c): status
 * codes taken from replies and the RFC 3464 report layout.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "bounce.h"
#include "util.h"

Test(bounce, status_from_reply)
{
	static const struct {
		const char *reply;
		int code;
		const char *want;
	} cases[] = {
	    {"550 5.1.1 <x@y>: no such user", 550, "5.1.1"},
	    {"550-5.7.1 refused", 550, "5.7.1"},
	    {"452 4.2.2 mailbox full", 452, "4.2.2"},
	    {"550 no such user", 550, "5.0.0"},
	    {"554 5.4.6 too many hops", 554, "5.4.6"},
	    {"550 5.1234.1 bad", 550, "5.0.0"},
	    {"550 6.1.1 bad class", 550, "5.0.0"},
	    {"connect: timed out", 451, "4.0.0"},
	    {NULL, 500, "5.0.0"},
	    {"5.2.2 bare", 500, "5.2.2"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char st[16];
		bounce_status(cases[i].reply, cases[i].code, st, sizeof(st));
		cr_expect_str_eq(st, cases[i].want, "'%s'",
		                 cases[i].reply ? cases[i].reply : "(null)");
	}
}

/* The reporting host, the message and the times every report below shares. */
#define REPORT_ORIGIN                                                                              \
	.hostname = "mx.local.test", .id = "06B07CF6A1E2400012F000", .arrival = 1795673962,        \
	.now = 1795674000

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

Test(bounce, report_layout)
{
	struct bounce_rcpt r[2] = {
	    {.addr = "a@remote.test", .orcpt = "rfc822;A@remote.test", .diag = "550 5.1.1 no user"},
	    {.addr = "b@remote.test", .diag = "550 5.2.2 full\x01"},
	};
	strcpy(r[0].status, "5.1.1");
	strcpy(r[1].status, "5.2.2");
	const char hdrs[] = "Received: from x\r\nSubject: hello\r\n";
	struct bounce_report b = {
	    REPORT_ORIGIN,
	    .sender = "alice@local.test",
	    .envid = "ENV1",
	    .rcpts = r,
	    .nrcpt = 2,
	    .headers = hdrs,
	    .headers_len = sizeof(hdrs) - 1,
	};
	size_t len;
	char *m = bounce_format(&b, &len);
	cr_assert_eq(strlen(m), len);
	cr_expect(strstr(m, "Content-Type: multipart/report; report-type=delivery-status;") !=
	          NULL);
	cr_expect(strstr(m, "To: <alice@local.test>\r\n") != NULL);
	cr_expect(strstr(m, "Auto-Submitted: auto-replied\r\n") != NULL);
	cr_expect(strstr(m, "Content-Type: message/delivery-status\r\n") != NULL);
	cr_expect(strstr(m, "Content-Type: text/rfc822-headers\r\n\r\nReceived: from x\r\n"
	                    "Subject: hello\r\n") != NULL);
	cr_expect(strstr(m, "Reporting-MTA: dns; mx.local.test\r\n") != NULL);
	cr_expect(strstr(m, "Original-Envelope-Id: ENV1\r\n") != NULL);
	cr_expect(strstr(m, "Final-Recipient: rfc822; a@remote.test\r\n"
	                    "Original-Recipient: rfc822;A@remote.test\r\n"
	                    "Action: failed\r\nStatus: 5.1.1\r\n"
	                    "Diagnostic-Code: smtp; 550 5.1.1 no user\r\n") != NULL);
	cr_expect(strstr(m, "Status: 5.2.2\r\nDiagnostic-Code: smtp; 550 5.2.2 full?\r\n") != NULL,
	          "a control octet in a reply must not reach the report");
	cr_expect_eq(count(m, "Final-Recipient:"), 2);
	/* Three parts and the closing boundary, every line CRLF. */
	cr_expect_eq(count(m, "\r\n--06B07CF6A1E2400012F000."), 4);
	cr_expect(strstr(m, "--\r\n") == m + len - 4);
	for (size_t i = 0; i < len; i++)
		if (m[i] == '\n')
			cr_assert(i > 0 && m[i - 1] == '\r', "bare LF at %zu", i);
	free(m);

	b.delayed = 1;
	m = bounce_format(&b, &len);
	cr_expect(strstr(m, "Action: delayed\r\n") != NULL);
	cr_expect(strstr(m, "Subject: Delayed Mail") != NULL);
	free(m);
}

/* RFC 3461 NOTIFY=SUCCESS: Action delivered or relayed per recipient,
 * a 2.X.X status, only server replies as Diagnostic-Code. */
Test(bounce, success_report)
{
	struct bounce_rcpt r[2] = {
	    {.addr = "a@local.test", .action = "delivered"},
	    {.addr = "b@remote.test", .action = "relayed", .diag = "250 2.0.0 queued as 7"},
	};
	strcpy(r[0].status, "2.0.0");
	strcpy(r[1].status, "2.0.0");
	const char hdrs[] = "Subject: hello\r\n";
	struct bounce_report b = {
	    REPORT_ORIGIN,   .sender = "alice@local.test",    .success = 1, .rcpts = r, .nrcpt = 2,
	    .headers = hdrs, .headers_len = sizeof(hdrs) - 1,
	};
	size_t len;
	char *m = bounce_format(&b, &len);
	cr_expect(strstr(m, "Subject: Successful Mail Delivery Report\r\n") != NULL);
	cr_expect(strstr(m, "Final-Recipient: rfc822; a@local.test\r\nAction: delivered\r\n"
	                    "Status: 2.0.0\r\nLast-Attempt-Date: ") != NULL,
	          "%s", m);
	cr_expect(strstr(m, "Action: relayed\r\nStatus: 2.0.0\r\n"
	                    "Diagnostic-Code: smtp; 250 2.0.0 queued as 7\r\n") != NULL,
	          "%s", m);
	cr_expect(strstr(m, "Original-Envelope-Id:") == NULL, "no ENVID was given");
	cr_expect(strstr(m, "Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\n") != NULL);
	cr_expect(strstr(m, "Action: failed") == NULL);
	free(m);
}

/* RET=FULL: the whole message as message/rfc822, 8bit when it was. */
Test(bounce, full_message_returned)
{
	struct bounce_rcpt r = {.addr = "a@remote.test", .diag = "550 5.1.1 no user"};
	strcpy(r.status, "5.1.1");
	const char msg[] = "Subject: hello\r\n\r\nbody line\r\n";
	struct bounce_report b = {
	    REPORT_ORIGIN,  .sender = "alice@local.test",   .rcpts = &r, .nrcpt = 1,
	    .headers = msg, .headers_len = sizeof(msg) - 1, .full = 1,   .eightbit = 1,
	};
	size_t len;
	char *m = bounce_format(&b, &len);
	cr_expect(strstr(m, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n"
	                    "\r\nSubject: hello\r\n\r\nbody line\r\n\r\n--") != NULL,
	          "%s", m);
	cr_expect(strstr(m, "text/rfc822-headers") == NULL);
	free(m);
	b.full = 0;
	b.full_cut = 1;
	b.headers_len = 16;
	m = bounce_format(&b, &len);
	cr_expect(strstr(m, "too large to be returned whole") != NULL);
	cr_expect(strstr(m, "Content-Type: text/rfc822-headers\r\n") != NULL);
	free(m);
}

/* RFC 6533: a report about a message that came with SMTPUTF8 is a
 * global-delivery-status report that keeps UTF-8 addresses and headers
 * (well-formed UTF-8 only). */
Test(bounce, report_layout_utf8)
{
	struct bounce_rcpt r[2] = {
	    {.addr = "j\xc3\xb6rg@remote.test", .diag = "550 5.6.7 needs SMTPUTF8"},
	    {.addr = "plain@remote.test", .diag = "550 5.6.7 bad \xc3 octet"},
	};
	strcpy(r[0].status, "5.6.7");
	strcpy(r[1].status, "5.6.7");
	const char hdrs[] = "Subject: Gr\xc3\xbc\xc3\x9f"
	                    "e\r\n";
	struct bounce_report b = {
	    REPORT_ORIGIN,
	    .sender = "\xe7\x94\xa8\xe6\x88\xb7@b\xc3\xbc"
	              "cher.example",
	    .rcpts = r,
	    .nrcpt = 2,
	    .headers = hdrs,
	    .headers_len = sizeof(hdrs) - 1,
	    .utf8 = 1,
	};
	size_t len;
	char *m = bounce_format(&b, &len);
	cr_expect(strstr(m, "report-type=global-delivery-status;") != NULL);
	cr_expect(strstr(m, "To: <\xe7\x94\xa8\xe6\x88\xb7@b\xc3\xbc"
	                    "cher.example>\r\n") != NULL);
	cr_expect(strstr(m, "Content-Type: message/global-delivery-status\r\n") != NULL);
	cr_expect(strstr(m, "Final-Recipient: utf-8; j\xc3\xb6rg@remote.test\r\n") != NULL, "%s",
	          m);
	cr_expect(strstr(m, "Final-Recipient: rfc822; plain@remote.test\r\n") != NULL);
	cr_expect(strstr(m, "Diagnostic-Code: smtp; 550 5.6.7 bad ? octet\r\n") != NULL,
	          "malformed UTF-8 reached the report");
	cr_expect(strstr(m, "Content-Type: message/global-headers\r\n"
	                    "Content-Transfer-Encoding: 8bit\r\n\r\nSubject: Gr\xc3\xbc\xc3\x9f"
	                    "e\r\n") != NULL);
	cr_expect(strstr(m, "charset=utf-8") != NULL);
	free(m);

	/* The same without SMTPUTF8: printable ASCII only. */
	b.utf8 = 0;
	m = bounce_format(&b, &len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)m[i] >= 0x80)
			cr_assert(strstr(m, "Content-Type: text/rfc822-headers") < m + i,
			          "8-bit octet outside the returned headers at %zu", i);
	cr_expect(strstr(m, "Final-Recipient: rfc822; j??rg@remote.test\r\n") != NULL);
	free(m);
}

/* Both at once: a failure report about an SMTPUTF8 message with RET=FULL
 * and ENVID/ORCPT is a global-delivery-status report that returns the
 * message as message/global (RFC 6532 3.7), 8bit, with the DSN fields. */
Test(bounce, full_message_returned_utf8)
{
	struct bounce_rcpt r = {.addr = "j\xc3\xb6rg@remote.test",
	                        .orcpt = "rfc822;joerg@remote.test",
	                        .diag = "550 5.1.1 no user"};
	strcpy(r.status, "5.1.1");
	const char msg[] = "Subject: Gr\xc3\xbc\xc3\x9f"
	                   "e\r\n\r\nbody line\r\n";
	struct bounce_report b = {
	    REPORT_ORIGIN,
	    .sender = "alice@local.test",
	    .envid = "env-42",
	    .rcpts = &r,
	    .nrcpt = 1,
	    .headers = msg,
	    .headers_len = sizeof(msg) - 1,
	    .full = 1,
	    .utf8 = 1,
	};
	size_t len;
	char *m = bounce_format(&b, &len);
	cr_expect(strstr(m, "report-type=global-delivery-status;") != NULL);
	cr_expect(strstr(m, "Original-Envelope-Id: env-42\r\n") != NULL, "%s", m);
	cr_expect(strstr(m, "Final-Recipient: utf-8; j\xc3\xb6rg@remote.test\r\n"
	                    "Original-Recipient: rfc822;joerg@remote.test\r\n") != NULL,
	          "%s", m);
	cr_expect(strstr(m, "Content-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n"
	                    "\r\nSubject: Gr\xc3\xbc\xc3\x9f"
	                    "e\r\n\r\nbody line\r\n\r\n--") != NULL,
	          "%s", m);
	cr_expect(strstr(m, "message/rfc822") == NULL);
	cr_expect(strstr(m, "message/global-headers") == NULL);
	free(m);
	/* Too large for RET=FULL: the header section as message/global-headers. */
	b.full = 0;
	b.full_cut = 1;
	b.headers_len = 18;
	m = bounce_format(&b, &len);
	cr_expect(strstr(m, "too large to be returned whole") != NULL);
	cr_expect(strstr(m, "Content-Type: message/global-headers\r\n"
	                    "Content-Transfer-Encoding: 8bit\r\n\r\n") != NULL,
	          "%s", m);
	free(m);
}
