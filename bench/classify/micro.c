/*
 * bench/classify/micro.c: CPU time of the timing classifier for one SMTP
 * session (evidence notes for a whole dialogue, HELO form, verdict and
 * policy decision), and the memory of its per-connection state. Run by
 * bench/classifier; built by "make bench/classifier-micro".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "classify.h"

static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	static const char *const verbs[] = {"EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"};
	const enum test_action act[TT_NTESTS] = {TEST_ENFORCE, TEST_ENFORCE, TEST_ENFORCE,
	                                         TEST_LOG,     TEST_ENFORCE, TEST_ENFORCE};
	const struct policy_params pp = {.new_action = NEW_ACCEPT,
	                                 .new_delay = 14400,
	                                 .junk_action = JUNK_TEMPFAIL,
	                                 .junk_delay = 43200,
	                                 .timing_junk_action = TJ_REJECT};
	unsigned sink = 0;
	double t0 = cpu_ns();
	for (long i = 0; i < n; i++) {
		struct timing t;
		struct verdict v;
		struct policy_result pr;
		int64_t u = 1000000;
		timing_init(&t, 0);
		timing_note_greeting(&t, 1, u);
		for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++) {
			u += 2000 + (i & 7);
			timing_note_command(&t, verbs[k], 0, 0, k > 0, u);
			u += 100;
			timing_note_reply(&t, u);
		}
		timing_note_helo(&t, timing_helo_form("mail.example.org", "192.0.2.1", "192.0.2.9",
		                                      "mx.example.test"));
		verdict_compute(&t, act, &v);
		struct policy_input in = {
		    .history = POLICY_GOOD, .first_seen = 1, .now = 100000, .verdict = v.cls};
		policy_decide(&pp, &in, &pr);
		sink += (unsigned)pr.decision + (unsigned)v.score;
	}
	double per = (cpu_ns() - t0) / (double)n;
	printf("classifier_ns_per_session %.0f\n", per);
	printf("timing_state_bytes %zu\n", sizeof(struct timing));
	printf("verdict_bytes %zu\n", sizeof(struct verdict) + sizeof(struct policy_result));
	return sink == 0xffffffffu;
}
