/*
 * timing.c: the evidence of one connection for the timing classifier.
 *
 * smtpd (src/smtpd/screen.c) notes here what the client does and when:
 * octets before the banner, commands sent ahead of our reply, how long it
 * waits for a delayed reply, how quickly it answers, input that is not
 * SMTP, the form of its HELO. Nothing is judged here: verdict.c turns the
 * evidence into a verdict. The state is one fixed-size struct per
 * connection so the classifier never allocates on the event loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "classify.h"
#include "util.h"

void timing_init(struct timing *t, int64_t connect_usec)
{
	memset(t, 0, sizeof(*t));
	t->connect_usec = connect_usec;
	t->think_min = -1;
	/* The greeting is what the first command answers: nothing may be
	 * sent before it, so no group is open. */
	t->group_open = 0;
	snprintf(t->prev_verb, sizeof(t->prev_verb), "banner");
}

void timing_note_rtt(struct timing *t, uint32_t srtt, uint32_t min_rtt)
{
	if (srtt > 0)
		t->rtt_usec = srtt;
	uint32_t m = min_rtt > 0 ? min_rtt : srtt;
	if (m > 0 && (t->rtt_min_usec == 0 || m < t->rtt_min_usec))
		t->rtt_min_usec = m;
}

void timing_note_pregreet(struct timing *t, size_t octets, int64_t usec)
{
	if (t->pregreet_octets == 0)
		t->pregreet_first_usec = usec;
	uint64_t n = (uint64_t)t->pregreet_octets + octets;
	t->pregreet_octets = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

void timing_note_greeting(struct timing *t, int split, int64_t usec)
{
	t->greet_split = split;
	t->final_greet_usec = usec;
	t->last_reply_usec = usec;
}

void timing_note_reply(struct timing *t, int64_t usec)
{
	t->last_reply_usec = usec;
}

void timing_note_flushed(struct timing *t, int64_t usec)
{
	t->last_flush_usec = usec;
}

/* RFC 2920 3.1: RSET, MAIL and RCPT "can all appear anywhere in a
 * pipelined command group"; EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP
 * "can only appear as the last command in a group"; commands of other
 * extensions are last unless their extension says otherwise (STARTTLS,
 * RFC 3207 4.2, and AUTH, RFC 4954 4, wait for their reply; ETRN, HELP
 * and unknown verbs are given no leave). HELO offers no pipelining at
 * all. BDAT carries its chunk and waits for nothing (RFC 3030 4.2: BDAT
 * commands may be pipelined), so it may sit anywhere too; the end of the
 * message it ends (BDAT LAST) is noted as the end of data, as after the
 * dot of DATA. */
static int verb_ends_group(const char *verb)
{
	static const char *const anywhere[] = {"RSET", "MAIL", "RCPT", "BDAT"};
	if (verb == NULL)
		return 1;
	for (size_t i = 0; i < sizeof(anywhere) / sizeof(anywhere[0]); i++)
		if (strcmp(verb, anywhere[i]) == 0)
			return 0;
	return 1;
}

static void append_verb(struct timing *t, const char *verb)
{
	size_t have = strlen(t->pipe_verbs);
	size_t need = strlen(verb) + (have ? 1 : 0);
	if (have + need + 1 > sizeof(t->pipe_verbs))
		return;
	snprintf(t->pipe_verbs + have, sizeof(t->pipe_verbs) - have, "%s%s", have ? " " : "", verb);
}

/* May a command that arrived before the previous reply went out come
 * here? Inside an open group, yes. Right after the end of data, QUIT is
 * let through even without PIPELINING: clients commonly send the final
 * dot and QUIT together, and nothing depends on the order. */
static int early_allowed(const struct timing *t, const char *verb)
{
	if (t->group_open)
		return 1;
	return t->after_data && verb != NULL && strcmp(verb, "QUIT") == 0;
}

static void think_sample(struct timing *t, int64_t usec)
{
	/* From our reply leaving (the flush) when we know it, else from
	 * when it was queued. */
	int64_t base =
	    t->last_flush_usec >= t->last_reply_usec ? t->last_flush_usec : t->last_reply_usec;
	if (base <= 0 || usec < base)
		return;
	int64_t think = usec - base;
	t->think_n++;
	t->think_sum += think;
	if (t->think_min < 0 || think < t->think_min)
		t->think_min = think;
	/* An answer under half the minimum round trip cannot have waited
	 * for our reply to reach the client; on short links the scheduling
	 * of both hosts is noise of that size, so only longer ones count. */
	uint32_t rtt = t->rtt_min_usec;
	if (rtt >= THINK_MIN_RTT_USEC && think * 2 < (int64_t)rtt) {
		t->think_fast++;
		if (think > t->think_fast_max)
			t->think_fast_max = think;
		t->think_rtt = rtt;
	}
}

void timing_note_command(struct timing *t, const char *verb, int early, int bare_lf, int pipelining,
                         int64_t usec)
{
	t->commands++;
	if (bare_lf && t->bare_lf < UINT32_MAX)
		t->bare_lf++;
	if (t->tls_fresh) {
		/* The first command on a fresh TLS session owes nothing to a
		 * reply of ours: when it was read is not evidence. */
		early = 0;
		t->tls_fresh = 0;
	}
	if (early && !early_allowed(t, verb)) {
		if (!t->unauth_pipelining) {
			t->unauth_pipelining = 1;
			t->burst_open = 1;
			snprintf(t->pipe_after, sizeof(t->pipe_after), "%s", t->prev_verb);
		}
		if (t->burst_open)
			append_verb(t, verb ? verb : "?");
		/* It was sent while we held a reply back: talking during the
		 * delay, whatever the extensions offered. */
		if (t->hold_input && !t->impatient) {
			t->impatient = 2;
			t->impatient_usec = t->hold_input_usec;
		}
	} else if (!early) {
		t->burst_open = 0;
		think_sample(t, usec);
	} else if (t->burst_open) {
		append_verb(t, verb ? verb : "?");
	}
	snprintf(t->prev_verb, sizeof(t->prev_verb), "%s", verb ? verb : "?");
	t->group_open = pipelining && !verb_ends_group(verb);
	t->after_data = 0;
}

void timing_note_end_of_data(struct timing *t, int pipelining)
{
	/* RFC 2920 3.1: "The actual transfer of message content is
	 * explicitly allowed to be the first command in a group", so RSET,
	 * MAIL, RCPT and a final DATA or QUIT may follow the dot at once. */
	snprintf(t->prev_verb, sizeof(t->prev_verb), "end of data");
	t->group_open = pipelining;
	t->after_data = 1;
	t->burst_open = 0;
}

void timing_note_tls(struct timing *t)
{
	snprintf(t->prev_verb, sizeof(t->prev_verb), "TLS handshake");
	t->group_open = 0;
	t->after_data = 0;
	t->burst_open = 0;
	t->tls_fresh = 1;
}

void timing_note_early_body(struct timing *t)
{
	t->body_before_354 = 1;
}

void timing_note_after_quit(struct timing *t)
{
	t->after_quit = 1;
}

void timing_patience_input(struct timing *t, int pipelining, int64_t usec)
{
	if (t->patience_len == 0 || t->patience_start < 0 || t->impatient)
		return;
	if (!pipelining || !t->group_open) {
		timing_patience_break(t, 0, usec);
		return;
	}
	if (!t->hold_input) {
		t->hold_input = 1;
		t->hold_input_usec = usec > t->patience_start ? usec - t->patience_start : 0;
	}
}

void timing_note_rdns(struct timing *t, int fail, int generic, const char *what)
{
	t->rdns_fail = fail;
	t->rdns_generic = generic;
	snprintf(t->rdns_what, sizeof(t->rdns_what), "%s", what ? what : "");
}

void timing_note_non_smtp(struct timing *t, const char *what)
{
	if (t->non_smtp++ == 0)
		snprintf(t->non_smtp_what, sizeof(t->non_smtp_what), "%s", what ? what : "?");
}

void timing_note_helo(struct timing *t, unsigned helo_flags)
{
	t->helo_flags |= helo_flags;
}

void timing_patience_start(struct timing *t, int64_t start, int64_t len)
{
	t->patience_start = start;
	t->patience_len = len;
	t->hold_input = 0;
}

void timing_patience_break(struct timing *t, int closed, int64_t usec)
{
	if (t->patience_len == 0 || t->impatient)
		return;
	t->impatient = closed ? 1 : 2;
	t->impatient_usec = usec > t->patience_start ? usec - t->patience_start : 0;
}

void timing_patience_end(struct timing *t)
{
	/* Waited it out: keep the length so the verdict can say so. The
	 * commands sent meanwhile are judged as they are taken. */
	t->patience_start = -1;
}

void timing_note_close(struct timing *t, int quit)
{
	t->quit = quit;
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A name per RFC 5321 4.1.2 Domain: dot-separated labels of letters,
 * digits and hyphens, not starting or ending with a hyphen. */
static int helo_name_valid(const char *h)
{
	size_t label = 0;
	if (*h == '\0' || *h == '.')
		return 0;
	for (const char *p = h; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!is_alnum(*p) && *p != '-' && *p != '_')
			return 0;
		if (label == 0 && *p == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 || h[strlen(h) - 1] == '.';
}

static int same_address(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int fa = strchr(a, ':') ? AF_INET6 : AF_INET;
	int fb = strchr(b, ':') ? AF_INET6 : AF_INET;
	if (fa != fb || inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
		return 0;
	return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

unsigned timing_helo_form(const char *helo, const char *client, const char *ours,
                          const char *hostname)
{
	unsigned f = 0;
	unsigned char buf[16];
	if (helo == NULL || *helo == '\0')
		return HELO_INVALID;
	if (hostname && ascii_strcasecmp(helo, hostname) == 0)
		f |= HELO_OURS;
	size_t len = strlen(helo);
	if (helo[0] == '[') {
		char lit[80];
		if (len < 3 || helo[len - 1] != ']' || len - 2 >= sizeof(lit))
			return f | HELO_INVALID;
		snprintf(lit, sizeof(lit), "%.*s", (int)(len - 2), helo + 1);
		const char *a = ascii_strncasecmp(lit, "IPv6:", 5) == 0 ? lit + 5 : lit;
		if (inet_pton(a == lit ? AF_INET : AF_INET6, a, buf) != 1)
			return f | HELO_INVALID;
		if (ours && same_address(a, ours))
			f |= HELO_OURS;
		else if (client && !same_address(a, client))
			f |= HELO_LITERAL_OTHER;
		return f;
	}
	if (inet_pton(AF_INET, helo, buf) == 1 || inet_pton(AF_INET6, helo, buf) == 1) {
		f |= HELO_BARE_IP;
		if (ours && same_address(helo, ours))
			f |= HELO_OURS;
		return f;
	}
	if (!helo_name_valid(helo))
		f |= HELO_INVALID;
	return f;
}
