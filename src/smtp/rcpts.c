/*
 * rcpts.c: the recipients' answers in one outbound SMTP/LMTP
 * transaction, for client.c. Replies come in the order of the commands
 * (RFC 2920 keeps that order under PIPELINING): one per RCPT, then for
 * SMTP one to the dot for every accepted recipient, for LMTP one per
 * accepted recipient in RCPT order (RFC 2033 4.2). A code outside 2xx,
 * 4xx and 5xx is no answer a recipient can keep: it becomes 451.
 */
#include <stdlib.h>
#include <string.h>

#include "rcpts.h"
#include "smtp.h"
#include "util.h"

static void set_result(struct smtp_result *res, int code, const char *text)
{
	res->code = code / 100 == 2 || code >= 400 ? code : 451;
	strlcpy_tmx(res->reply, text, sizeof(res->reply));
}

void rcpts_begin(struct smtp_rcpts *r, struct smtp_result *res, size_t n)
{
	free(r->accepted_v);
	r->res = res;
	r->n = n;
	r->accepted_v = xcalloc(n ? n : 1, 1);
	r->accepted = 0;
	r->next = 0;
	for (size_t i = 0; i < n; i++)
		res[i].code = 0;
}

void rcpts_free(struct smtp_rcpts *r)
{
	free(r->accepted_v);
	r->accepted_v = NULL;
}

int rcpts_rcpt_reply(struct smtp_rcpts *r, int code, const char *text, int keep_2xx, int record)
{
	size_t k = r->next++;
	if (record && k < r->n) {
		if (code / 100 == 2) {
			r->accepted_v[k] = 1;
			r->accepted++;
		}
		if (code / 100 != 2 || keep_2xx)
			set_result(&r->res[k], code, text);
	}
	return r->next >= r->n;
}

void rcpts_fill(struct smtp_rcpts *r, int code, const char *text)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->res[i].code == 0)
			set_result(&r->res[i], code, text);
}

int rcpts_any_decided(const struct smtp_rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->res[i].code != 0)
			return 1;
	return 0;
}

void rcpts_dot_begin(struct smtp_rcpts *r)
{
	r->next = 0;
}

static void skip_refused(struct smtp_rcpts *r)
{
	while (r->next < r->n && !r->accepted_v[r->next])
		r->next++;
}

int rcpts_dot_reply(struct smtp_rcpts *r, int lmtp, int code, const char *text)
{
	if (!lmtp) {
		for (size_t i = 0; i < r->n; i++)
			if (r->accepted_v[i])
				set_result(&r->res[i], code, text);
		return 1;
	}
	skip_refused(r);
	if (r->next < r->n)
		set_result(&r->res[r->next++], code, text);
	skip_refused(r);
	return r->next >= r->n;
}
