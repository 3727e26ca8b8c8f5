/*
 * log.c: one-line-per-event logging to syslog or stderr.
 *
 * Every process logs through these functions. With -d (foreground) lines
 * go to stderr as "Nov 25 06:19:22 tempomxd/smtpd[123]: text"; otherwise
 * to syslog with the configured facility. Lines are written with a single
 * write() so that lines of several processes sharing stderr do not mix.
 * The master shares its verbosity with its children through one shared
 * page (log_share_verbosity), so tempomxctl log-level changes what every
 * process logs at once, without a restart.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char log_ident[64] = "tempomxd";
static int log_stderr = 1;
static int log_verbosity;
static int log_facility = LOG_MAIL;
static int log_opened;
/* The verbosity shared with the children (log_share_verbosity), or NULL. */
static _Atomic int *log_shared;

void log_init(const char *ident, int to_stderr, int verbose)
{
	log_stderr = to_stderr;
	log_verbosity = verbose;
	log_set_ident(ident);
}

int log_share_verbosity(void)
{
	if (log_shared != NULL)
		return 0;
	void *p = mmap(NULL, sizeof(*log_shared), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	log_shared = p;
	atomic_store(log_shared, log_verbosity);
	return 0;
}

void log_set_verbose(int verbose)
{
	log_verbosity = verbose;
	if (log_shared != NULL)
		atomic_store(log_shared, verbose);
}

void log_set_ident(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	if (!log_stderr) {
		if (log_opened)
			closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, log_facility);
		log_opened = 1;
	}
}

int log_set_facility(const char *name)
{
	static const struct {
		const char *name;
		int fac;
	} facs[] = {
	    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"local0", LOG_LOCAL0},
	    {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
	    {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
	    {"local7", LOG_LOCAL7},
	};
	for (size_t i = 0; i < sizeof(facs) / sizeof(facs[0]); i++) {
		if (strcmp(facs[i].name, name) == 0) {
			if (facs[i].fac != log_facility) {
				log_facility = facs[i].fac;
				if (!log_stderr)
					log_set_ident(log_ident);
			}
			return 0;
		}
	}
	return -1;
}

int log_verbose(void)
{
	return log_shared != NULL ? atomic_load(log_shared) : log_verbosity;
}

static void log_emit(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char msg[4096];
	const char *prefix = pri == LOG_WARNING ? "warning: " : pri == LOG_CRIT ? "fatal: " : "";
	size_t plen = strlen(prefix);
	memcpy(msg, prefix, plen);
	int n = vsnprintf(msg + plen, sizeof(msg) - plen, fmt, ap);
	if (n < 0)
		return;
	/* Never let a control octet from the network reach the log raw. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (!log_stderr) {
		if (suffix)
			syslog(pri, "%s: %s", msg, suffix);
		else
			syslog(pri, "%s", msg);
		return;
	}
	char line[4400];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	int len =
	    snprintf(line, sizeof(line), "%s.%03ld %s[%ld]: %s%s%s\n", stamp, ts.tv_nsec / 1000000,
	             log_ident, (long)getpid(), msg, suffix ? ": " : "", suffix ? suffix : "");
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line)) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}
	ssize_t off = 0;
	while (off < len) {
		ssize_t w = write(STDERR_FILENO, line + off, (size_t)(len - off));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		off += w;
	}
}

#define LOG_FN(fname, pri, cond)                                                                   \
	void fname(const char *fmt, ...)                                                           \
	{                                                                                          \
		if (!(cond))                                                                       \
			return;                                                                    \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_emit(pri, fmt, ap, NULL);                                                      \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOG_FN(log_info, LOG_INFO, 1)
LOG_FN(log_notice, LOG_NOTICE, 1)
LOG_FN(log_warnx, LOG_WARNING, 1)
LOG_FN(log_debug, LOG_DEBUG, log_verbose() > 0)

void log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_WARNING, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_CRIT, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
