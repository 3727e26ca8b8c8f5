/*
 * queueid.c: queue identifiers (see include/queueid.h for the format).
 *
 * Owns the per-process ID state. Called by spool_create() for every new
 * message and by anything that must check or date a name found in the
 * spool (listings, the directory watch, tempomxctl).
 *
 * The state is one 64-bit word: microseconds since the epoch shifted left
 * by 12 bits, plus a 12-bit counter in the low bits. A new ID takes
 * max(now << 12, previous + 1) with a compare-and-swap, so IDs are
 * strictly increasing within the process without a lock: when the clock
 * stands still or steps back the counter advances, and when 4096 IDs fall
 * into one microsecond the counter carries into the time, which then runs
 * slightly ahead of the clock until the clock catches up. A lock-free word
 * also stays consistent in a child forked while another thread was inside
 * queueid_new(), which a mutex would not.
 *
 * Uniqueness across processes comes from the process ID field. It holds
 * 5 hex digits, so with a pid_max above 2^20 two live processes could
 * share a field value; spool_create() opens with O_EXCL and the commit
 * renames with RENAME_NOREPLACE, so such a collision can never overwrite
 * a message, only cost a retry.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "queueid.h"
#include "util.h"

#define QID_SEC_DIGITS 9
#define QID_USEC_DIGITS 5
#define QID_PID_DIGITS 5
#define QID_COUNTER_DIGITS 3
#define QID_COUNTER_BITS 12

static _Atomic uint64_t qid_last;

static const char qid_hex[] = "0123456789ABCDEF";

static void put_hex(char *dst, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--) {
		dst[i] = qid_hex[v & 0xf];
		v >>= 4;
	}
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void queueid_new(char *buf)
{
	int64_t now = wall_usec();
	uint64_t want = now > 0 ? (uint64_t)now << QID_COUNTER_BITS : 0;
	uint64_t prev = atomic_load(&qid_last);
	uint64_t next;

	do {
		next = want > prev ? want : prev + 1;
	} while (!atomic_compare_exchange_weak(&qid_last, &prev, next));

	uint64_t t = next >> QID_COUNTER_BITS;
	uint64_t counter = next & ((1u << QID_COUNTER_BITS) - 1);
	uint64_t pid = (uint64_t)getpid() & 0xfffff;

	put_hex(buf, t / 1000000, QID_SEC_DIGITS);
	put_hex(buf + 9, t % 1000000, QID_USEC_DIGITS);
	put_hex(buf + 14, pid, QID_PID_DIGITS);
	put_hex(buf + 19, counter, QID_COUNTER_DIGITS);
	buf[QUEUEID_LEN] = '\0';
}

int queueid_valid(const char *s)
{
	if (s == NULL)
		return 0;
	for (size_t i = 0; i < QUEUEID_LEN; i++) {
		if (hex_value(s[i]) < 0)
			return 0;
	}
	return s[QUEUEID_LEN] == '\0';
}

int64_t queueid_time(const char *id)
{
	if (!queueid_valid(id))
		return -1;
	uint64_t sec = 0, usec = 0;
	for (size_t i = 0; i < 9; i++)
		sec = sec << 4 | (uint64_t)hex_value(id[i]);
	for (size_t i = 9; i < 14; i++)
		usec = usec << 4 | (uint64_t)hex_value(id[i]);
	return (int64_t)(sec * 1000000 + usec);
}
