/*
 * rtt.c: the kernel's round-trip estimates of a client's connection, for
 * the think-time test of the timing classifier.
 *
 * Linux keeps, per TCP connection, a smoothed round trip (tcpi_rtt) and
 * the smallest one it measured (tcpi_min_rtt, from the handshake on).
 * The C library's struct tcp_info stops before tcpi_min_rtt, so this one
 * file reads the kernel's own structure. Called by smtpd (screen.c) a few
 * times per connection: one getsockopt each.
 */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "classify.h"

void timing_rtt(struct timing *t, int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return;
	/* An older kernel fills less: then only the smoothed value. */
	uint32_t min_rtt = len >= offsetof(struct tcp_info, tcpi_min_rtt) + sizeof(ti.tcpi_min_rtt)
	                       ? ti.tcpi_min_rtt
	                       : 0;
	if (min_rtt == UINT32_MAX)
		min_rtt = 0; /* "no sample yet" */
	timing_note_rtt(t, ti.tcpi_rtt, min_rtt);
}
