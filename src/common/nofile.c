/*
 * nofile.c: the descriptor limit. With the usual soft limit of 1024 the
 * smtpd child would run out of descriptors long before max_connections;
 * the master raises the soft limit to what the busiest child needs (its
 * connections plus NOFILE_RESERVE), never above the hard limit, and the
 * children inherit it. When the hard limit is too low, the effective
 * max_connections is lowered (smtpd asks nofile_max_connections() at each
 * accept) and a warning says so, so that an exhausted table never makes
 * accept() fail in a loop or a spool file impossible to open.
 * Called by the master (src/tempomxd/main.c) and smtpd (server.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "nofile.h"

int64_t nofile_needed(const struct config *cf)
{
	int64_t out = cf->max_outbound_connections > 0 ? cf->max_outbound_connections : 1000;
	int64_t most = cf->max_connections > out ? cf->max_connections : out;
	return most + NOFILE_RESERVE;
}

static int64_t cap_for(rlim_t soft, const struct config *cf)
{
	if (soft == RLIM_INFINITY || (int64_t)soft >= cf->max_connections + NOFILE_RESERVE)
		return cf->max_connections;
	int64_t cap = (int64_t)soft - NOFILE_RESERVE;
	return cap < 1 ? 1 : cap;
}

int64_t nofile_max_connections(const struct config *cf)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return cf->max_connections;
	return cap_for(rl.rlim_cur, cf);
}

int64_t nofile_raise(const struct config *cf)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit RLIMIT_NOFILE");
		return cf->max_connections;
	}
	rlim_t need = (rlim_t)nofile_needed(cf);
	rlim_t want = need;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) {
		want = rl.rlim_cur;
	} else {
		struct rlimit nrl = {.rlim_cur = want, .rlim_max = rl.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &nrl) < 0) {
			log_warn("setrlimit RLIMIT_NOFILE to %llu", (unsigned long long)want);
			want = rl.rlim_cur;
		}
	}
	log_info("descriptor limit: %llu (hard limit %llu, %llu wanted)", (unsigned long long)want,
	         (unsigned long long)rl.rlim_max, (unsigned long long)need);
	int64_t eff = cap_for(want, cf);
	if (eff < cf->max_connections)
		log_warnx(
		    "descriptor limit %llu is too low for max_connections = %lld: at most %lld "
		    "connections will be accepted; raise the hard limit (ulimit -Hn, "
		    "LimitNOFILE=)",
		    (unsigned long long)want, (long long)cf->max_connections, (long long)eff);
	return eff;
}
