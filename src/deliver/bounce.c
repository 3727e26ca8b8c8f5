/*
 * bounce.c: delivery status notifications (RFC 3464 inside an RFC 6522
 * multipart/report), one per message and kind for all its recipients
 * concerned: failures, delay warnings, and the success reports RFC 3461
 * NOTIFY=SUCCESS asks for (Action: delivered, or relayed to a next hop
 * that does not offer DSN). A failure returns the original's header
 * section, or with RET=FULL the whole message when it is at most
 * BOUNCE_RETURN_MAX; ENVID and ORCPT come back as Original-Envelope-Id
 * and Original-Recipient.
 *
 * A message that came with SMTPUTF8 gets the internationalised form of RFC
 * 6533: report-type global-delivery-status, a message/global-delivery-status
 * part whose UTF-8 addresses are "utf-8;" addresses written as they are, and
 * the header section as message/global-headers (under RET=FULL the whole
 * message as message/global, RFC 6532 3.7); the report itself is then
 * an SMTPUTF8 message (its envelope says so). Without SMTPUTF8 every value
 * is printable ASCII, as before.
 *
 * The report goes from the null sender (RFC 5321 section 4.5.5) to the
 * original sender and is queued in out/ like any other mail, with
 * bounce_of naming the original; delivery.c never bounces a message from
 * the null sender, so a failing report is logged and dropped, never
 * bounced again. It is created durably (spool_commit) before the original
 * is updated: a crash in between sends the report twice, never zero times.
 * Called by delivery.c from a worker thread.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "log.h"
#include "spool.h"
#include "strbuf.h"
#include "utf8.h"
#include "util.h"

const char *bounce_suppressed(const struct envelope *orig)
{
	if (orig->sender == NULL || orig->sender[0] == '\0')
		return "null sender";
	if (orig->verdict != NULL && strcmp(orig->verdict, "junk") == 0)
		return "junk";
	return NULL;
}

void bounce_status(const char *reply, int code, char *out, size_t size)
{
	const char *p = reply ? reply : "";
	/* Skip the reply code ("550 " or "550-"). */
	if (strlen(p) >= 4 && isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && (p[3] == ' ' || p[3] == '-'))
		p += 4;
	/* RFC 3463: class "." subject "." detail, 1-3 digits each. */
	if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.') {
		const char *q = p + 2;
		size_t a = 0, b = 0;
		while (isdigit((unsigned char)q[a]) && a < 4)
			a++;
		if (a >= 1 && a <= 3 && q[a] == '.') {
			const char *r = q + a + 1;
			while (isdigit((unsigned char)r[b]) && b < 4)
				b++;
			if (b >= 1 && b <= 3 && (r[b] == '\0' || r[b] == ' ')) {
				snprintf(out, size, "%.*s", (int)(r + b - p), p);
				return;
			}
		}
	}
	int cls = code / 100;
	snprintf(out, size, "%d.0.0", cls == 2 || cls == 4 || cls == 5 ? cls : 5);
}

/* A value from the envelope or the network is put in a header only as
 * printable ASCII, so the report is always well-formed. */
static void add_printable(struct strbuf *b, const char *s, size_t max)
{
	for (size_t i = 0; s && s[i] && i < max; i++) {
		char c = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
		strbuf_add(b, &c, 1);
	}
}

/* In an RFC 6533 report: well-formed UTF-8 characters are kept, anything
 * else that is not printable ASCII becomes '?'. */
static void add_text(struct strbuf *b, const char *s, size_t max, int utf8)
{
	if (!utf8) {
		add_printable(b, s, max);
		return;
	}
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	const unsigned char *e = p + strnlen((const char *)p, max);
	while (p < e) {
		size_t n = *p >= 0x80 ? utf8_seq(p, e) : 0;
		if (n > 0) {
			strbuf_add(b, (const char *)p, n);
			p += n;
			continue;
		}
		char c = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
		strbuf_add(b, &c, 1);
		p++;
	}
}

char *bounce_format(const struct bounce_report *b, size_t *len)
{
	struct strbuf o = STRBUF_INIT;
	char date[64], arr[64], boundary[128];
	rfc5322_date(b->now, date, sizeof(date));
	rfc5322_date(b->arrival, arr, sizeof(arr));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", b->id, (long long)b->now, b->hostname);

	strbuf_printf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", b->hostname);
	strbuf_lit(&o, "To: <");
	add_text(&o, b->sender, 512, b->utf8);
	strbuf_lit(&o, ">\r\n");
	strbuf_printf(&o, "Subject: %s\r\n",
	              b->success   ? "Successful Mail Delivery Report"
	              : b->delayed ? "Delayed Mail (still being retried)"
	                           : "Undelivered Mail Returned to Sender");
	strbuf_printf(&o, "Date: %s\r\n", date);
	strbuf_printf(&o, "Message-ID: <%s.%lld.dsn@%s>\r\n", b->id, (long long)b->now,
	              b->hostname);
	/* RFC 3834: an automatic reply; nothing should answer it. */
	strbuf_lit(&o, "Auto-Submitted: auto-replied\r\n");
	strbuf_lit(&o, "MIME-Version: 1.0\r\n");
	strbuf_printf(&o,
	              "Content-Type: multipart/report; report-type=%s;\r\n"
	              "\tboundary=\"%s\"\r\n\r\n",
	              b->utf8 ? "global-delivery-status" : "delivery-status", boundary);
	strbuf_lit(&o, "This is a MIME-encapsulated message.\r\n\r\n");

	/* Part 1: for a human. */
	strbuf_printf(&o,
	              "--%s\r\nContent-Description: Notification\r\n"
	              "Content-Type: text/plain; charset=%s\r\n%s\r\n",
	              boundary, b->utf8 ? "utf-8" : "us-ascii",
	              b->utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	strbuf_printf(&o, "This is the mail system at host %s.\r\n\r\n", b->hostname);
	int relayed = 0;
	for (size_t i = 0; i < b->nrcpt; i++)
		relayed |= b->rcpts[i].action && strcmp(b->rcpts[i].action, "relayed") == 0;
	if (b->success) {
		strbuf_lit(&o, "You asked to be told when your message was delivered. It was\r\n"
		               "delivered to the recipients below.\r\n\r\n");
		if (relayed)
			strbuf_lit(
			    &o, "A recipient marked \"relayed\" was handed on to a mail system\r\n"
			        "that does not send such reports: you will hear nothing more\r\n"
			        "about it from there, not even if it fails.\r\n\r\n");
	} else if (b->delayed)
		strbuf_lit(&o,
		           "Your message could not be delivered yet. It will be retried; you\r\n"
		           "do not need to send it again.\r\n\r\n");
	else if (b->full)
		strbuf_lit(&o, "Your message could not be delivered to one or more recipients.\r\n"
		               "It is attached below.\r\n\r\n");
	else if (b->full_cut)
		strbuf_lit(&o, "Your message could not be delivered to one or more recipients.\r\n"
		               "It is too large to be returned whole; its header section is\r\n"
		               "attached below.\r\n\r\n");
	else
		strbuf_lit(&o, "Your message could not be delivered to one or more recipients.\r\n"
		               "Its header section is attached below.\r\n\r\n");
	for (size_t i = 0; i < b->nrcpt; i++) {
		const struct bounce_rcpt *r = &b->rcpts[i];
		strbuf_lit(&o, "<");
		add_text(&o, r->addr, 512, b->utf8);
		strbuf_lit(&o, ">: ");
		if (b->success)
			add_printable(&o, r->action ? r->action : "delivered", 16);
		if (b->success && r->diag)
			strbuf_lit(&o, " (");
		if (!b->success || r->diag)
			add_printable(&o, r->diag ? r->diag : "delivery failed", 900);
		if (b->success && r->diag)
			strbuf_lit(&o, ")");
		strbuf_lit(&o, "\r\n");
	}
	strbuf_lit(&o, "\r\n");

	/* Part 2: RFC 3464 section 2, per-message then per-recipient fields. */
	strbuf_printf(&o,
	              "--%s\r\nContent-Description: Delivery report\r\n"
	              "Content-Type: message/%sdelivery-status\r\n%s\r\n",
	              boundary, b->utf8 ? "global-" : "",
	              b->utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	strbuf_printf(&o, "Reporting-MTA: dns; %s\r\n", b->hostname);
	if (b->envid && *b->envid) {
		strbuf_lit(&o, "Original-Envelope-Id: ");
		add_printable(&o, b->envid, 100);
		strbuf_lit(&o, "\r\n");
	}
	strbuf_printf(&o, "X-Tempomx-Queue-ID: %s\r\n", b->id);
	strbuf_printf(&o, "Arrival-Date: %s\r\n", arr);
	for (size_t i = 0; i < b->nrcpt; i++) {
		const struct bounce_rcpt *r = &b->rcpts[i];
		/* RFC 6533 3: a non-ASCII address is of type utf-8. */
		int u = b->utf8 && r->addr && utf8_has_8bit(r->addr);
		strbuf_printf(&o, "\r\nFinal-Recipient: %s; ", u ? "utf-8" : "rfc822");
		add_text(&o, r->addr, 512, u);
		strbuf_lit(&o, "\r\n");
		if (r->orcpt && strchr(r->orcpt, ';')) {
			strbuf_lit(&o, "Original-Recipient: ");
			add_printable(&o, r->orcpt, 512);
			strbuf_lit(&o, "\r\n");
		}
		strbuf_printf(&o, "Action: %s\r\n",
		              r->action    ? r->action
		              : b->delayed ? "delayed"
		                           : "failed");
		strbuf_printf(&o, "Status: %s\r\n", r->status);
		if (r->diag && *r->diag) {
			strbuf_lit(&o, "Diagnostic-Code: smtp; ");
			add_printable(&o, r->diag, 900);
			strbuf_lit(&o, "\r\n");
		}
		strbuf_printf(&o, "Last-Attempt-Date: %s\r\n", date);
	}
	strbuf_lit(&o, "\r\n");

	/* Part 3: the original headers (RFC 6522 text/rfc822-headers), or
	 * the whole message (message/rfc822) under RET=FULL; for an SMTPUTF8
	 * original their RFC 6533 and RFC 6532 3.7 forms, message/global-headers
	 * and message/global, 8bit as their UTF-8 may be. */
	if (b->full)
		strbuf_printf(&o,
		              "--%s\r\nContent-Description: Undelivered message\r\n"
		              "Content-Type: %s\r\n%s\r\n",
		              boundary, b->utf8 ? "message/global" : "message/rfc822",
		              b->eightbit || b->utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	else
		strbuf_printf(&o,
		              "--%s\r\nContent-Description: %s\r\n"
		              "Content-Type: %s\r\n%s\r\n",
		              boundary,
		              b->success ? "Message headers" : "Undelivered message headers",
		              b->utf8 ? "message/global-headers" : "text/rfc822-headers",
		              b->utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	strbuf_add(&o, b->headers ? b->headers : "", b->headers ? b->headers_len : 0);
	if (b->headers_len > 0 && b->headers[b->headers_len - 1] != '\n')
		strbuf_lit(&o, "\r\n");
	strbuf_printf(&o, "\r\n--%s--\r\n", boundary);
	return strbuf_detach(&o, len);
}

/* The header section of the original (up to the empty line), or with
 * whole set the whole message (size is at most BOUNCE_RETURN_MAX). */
static char *read_headers(int fd, size_t body_off, uint64_t size, int whole, size_t *len)
{
	size_t want = size < BOUNCE_RETURN_MAX ? (size_t)size : BOUNCE_RETURN_MAX;
	char *h = xmalloc(want + 1);
	ssize_t r;
	do
		r = pread(fd, h, want, (off_t)body_off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		r = 0;
	h[r] = '\0';
	size_t n = (size_t)r;
	if (whole) {
		*len = n;
		return h;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		if (h[i] == '\n' &&
		    (h[i + 1] == '\n' || (h[i + 1] == '\r' && i + 2 < n && h[i + 2] == '\n'))) {
			n = i + 1;
			break;
		}
	}
	if (n == (size_t)r && n > 0) {
		/* Cut at the last whole line. */
		while (n > 0 && h[n - 1] != '\n')
			n--;
	}
	*len = n;
	return h;
}

/* A reply from a server ("250 2.0.0 ok"), as opposed to our own words
 * ("delivered to maildir"): only that is a Diagnostic-Code "smtp;". */
static int is_smtp_reply(const char *s)
{
	return s && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
	       isdigit((unsigned char)s[2]) && (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

int bounce_queue(struct spool *sp, const struct envelope *orig, int fd, size_t body_off,
                 const char *hostname, const size_t *idx, size_t n, int kind, int expired,
                 const char *const *action)
{
	int delayed = kind == BOUNCE_DELAYED;
	struct bounce_rcpt *br = xcalloc(n ? n : 1, sizeof(*br));
	for (size_t i = 0; i < n; i++) {
		const struct rcpt *r = &orig->rcpts[idx[i]];
		br[i].addr = r->addr;
		br[i].orcpt = r->orcpt;
		br[i].diag = r->last_reply;
		if (kind == BOUNCE_SUCCESS) {
			br[i].action = action && action[i] ? action[i] : "delivered";
			br[i].diag = is_smtp_reply(r->last_reply) ? r->last_reply : NULL;
			bounce_status(br[i].diag, 250, br[i].status, sizeof(br[i].status));
			if (br[i].status[0] != '2')
				snprintf(br[i].status, sizeof(br[i].status), "2.0.0");
			continue;
		}
		if (delayed)
			bounce_status(r->last_reply, 400, br[i].status, sizeof(br[i].status));
		else if (expired)
			/* RFC 3463 X.4.7: delivery time expired. */
			snprintf(br[i].status, sizeof(br[i].status), "5.4.7");
		else
			bounce_status(r->last_reply, 500, br[i].status, sizeof(br[i].status));
		if (!delayed && br[i].status[0] != '5')
			br[i].status[0] = '5';
	}
	/* RFC 3461 4.3: RET=FULL asks for the whole message in a failure
	 * report; other reports, and RET=HDRS or none, get the headers. */
	int want_full =
	    kind == BOUNCE_FAILED && orig->ret && ascii_strcasecmp(orig->ret, "FULL") == 0;
	int full = want_full && orig->size <= BOUNCE_RETURN_MAX;
	int eightbit = full && orig->body_type && strcmp(orig->body_type, "8BITMIME") == 0;
	size_t hlen;
	char *hdrs = read_headers(fd, body_off, orig->size, full, &hlen);
	struct bounce_report rep = {
	    .hostname = hostname,
	    .id = orig->id,
	    .sender = orig->sender,
	    .envid = orig->envid,
	    .arrival = orig->arrival_usec / 1000000,
	    .now = wall_usec() / 1000000,
	    .delayed = delayed,
	    .success = kind == BOUNCE_SUCCESS,
	    .rcpts = br,
	    .nrcpt = n,
	    .headers = hdrs,
	    .headers_len = hlen,
	    .full = full,
	    .full_cut = want_full && !full,
	    .eightbit = eightbit,
	    .utf8 = orig->smtputf8,
	};
	size_t len;
	char *text = bounce_format(&rep, &len);
	free(hdrs);
	free(br);

	struct envelope env;
	struct spool_file sf;
	envelope_init(&env);
	env.arrival_usec = wall_usec();
	env.client_addr = xstrdup("");
	env.client_name = xstrdup("localhost");
	env.helo = xstrdup(hostname);
	env.protocol = xstrdup("LOCAL");
	env.sender = xstrdup("");
	env.bounce_of = xstrdup(orig->id);
	free(env.verdict);
	env.verdict = xstrdup("good");
	env.class = CLASS_HI;
	if (eightbit)
		env.body_type = xstrdup("8BITMIME");
	env.size = len;
	env.hops = 0; /* the report's header has no Received: field */
	env.smtputf8 = orig->smtputf8;
	envelope_add_rcpt(&env, orig->sender, NULL);
	int rc = -1;
	if (spool_create(sp, &env, &sf) == 0) {
		if (spool_write(&sf, text, len) == 0)
			rc = spool_commit(sp, &sf, len, Q_OUT);
		else
			spool_abort(sp, &sf);
	}
	int e = errno;
	envelope_free(&env);
	free(text);
	errno = e;
	return rc;
}
