/*
 * sendmail.c: tempomx-sendmail, the sendmail(1) interface of tempomx for
 * local programs and cron: reads a message on the standard input and
 * leaves it in the maildrop (maildrop_directory), from which smtpd takes
 * it into the queue (src/smtpd/pickup.c, whose header has the file
 * format), so it is spooled durably, scanned and delivered like mail
 * received by SMTP; a message given while the daemon is down waits there
 * and is taken when it starts.
 *
 * The file is written under a name starting with "." and flushed, then
 * renamed to its final name: pickup never sees half a message, and once
 * tempomx-sendmail exits 0 the message survives a crash. The options are
 * sendmail's: -t, -f/-r, -F, -i/-oi, -bm (the default), -bp (mailq),
 * -q (flush), -bs (SMTP on the standard input and output, relayed to the
 * local listener), -C file; the other usual ones are accepted and
 * ignored. Exit statuses are those of sysexits.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "maildrop.h"
#include "headers.h"
#include "util.h"

#define PROG "tempomx-sendmail"

struct options {
	const char *conf;
	const char *sender;
	const char *fullname;
	int extract;    /* -t */
	int ignore_dot; /* -i, -oi */
	int mode;       /* 'm' deliver, 'p' list, 'q' flush, 's' SMTP */
	struct strvec rcpts;
};

static void __attribute__((format(printf, 2, 3), noreturn)) die(int status, const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* Options that take a value, as sendmail has them; their values are
 * not used. */
static int ignored_with_value(char c)
{
	return strchr("BhLNOpRVX", c) != NULL;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	int i;
	memset(o, 0, sizeof(*o));
	o->mode = 'm';
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		char c = a[1];
		/* The value of -f, -F, -r, -C and the ignored ones may be
		 * attached ("-fbob") or the next argument. */
		const char *val = a[2] ? a + 2 : NULL;
		int takes = strchr("fFrC", c) != NULL || ignored_with_value(c);
		if (takes && val == NULL) {
			if (i + 1 >= argc)
				die(EX_USAGE, "option -%c needs a value", c);
			val = argv[++i];
		}
		switch (c) {
		case 'f':
		case 'r':
			o->sender = val;
			break;
		case 'F':
			o->fullname = val;
			break;
		case 'C':
			o->conf = val;
			break;
		case 't':
			o->extract = 1;
			break;
		case 'i':
			o->ignore_dot = 1;
			break;
		case 'o':
			/* -oi is -i; -oem, -odb, -oXn ... are other MTAs' tuning. */
			if (a[2] == 'i' && a[3] == '\0')
				o->ignore_dot = 1;
			break;
		case 'b':
			if (strcmp(a, "-bm") == 0)
				o->mode = 'm';
			else if (strcmp(a, "-bp") == 0)
				o->mode = 'p';
			else if (strcmp(a, "-bs") == 0)
				o->mode = 's';
			else
				die(EX_USAGE, "%s: mode not supported (only -bm, -bp, -bs)", a);
			break;
		case 'q':
			/* -q, -q30m: run the queue now (intervals are ours). */
			o->mode = 'q';
			break;
		case 'v':
		case 'n':
		case 'G':
		case 'U':
		case 'm':
		case 'e':
			break;
		default:
			if (ignored_with_value(c))
				break;
			die(EX_USAGE, "unknown option %s", a);
		}
	}
	for (; i < argc; i++) {
		/* "a@x, b@y" as one argument is a list, as sendmail takes it. */
		headers_addresses(argv[i], &o->rcpts);
	}
}

static void load_config(const struct options *o, struct config *cf)
{
	char err[1024];
	const char *file = o->conf;
	if (file == NULL && access(DEFAULT_CONFIG_FILE, F_OK) == 0)
		file = DEFAULT_CONFIG_FILE;
	if (file == NULL)
		conf_defaults(cf);
	else if (conf_load(file, cf, err, sizeof(err)) < 0)
		die(EX_CONFIG, "%s", err);
	if (conf_finish(cf, err, sizeof(err)) < 0)
		die(EX_CONFIG, "%s", err);
}

/* -bp and -q are tempomxctl's: the one next to this program, else the
 * installed one. */
static void __attribute__((noreturn)) run_ctl(const struct options *o, const char *cmd)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	snprintf(path, sizeof(path), "%s/tempomxctl", SBINDIR);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			char near[PATH_MAX + 16];
			snprintf(near, sizeof(near), "%s/tempomxctl", self);
			if (access(near, X_OK) == 0)
				snprintf(path, sizeof(path), "%s", near);
		}
	}
	char *argv[6];
	int argc = 0;
	argv[argc++] = path;
	if (o->conf != NULL) {
		argv[argc++] = "-f";
		argv[argc++] = (char *)o->conf;
	}
	argv[argc++] = (char *)cmd;
	argv[argc] = NULL;
	execv(path, argv);
	die(EX_UNAVAILABLE, "cannot run %s: %s", path, strerror(errno));
}

/* -bs: the SMTP dialogue on stdin/stdout, relayed to the first listener
 * (a wildcard one reached on loopback). */
static int run_smtp(const struct config *cf)
{
	if (cf->listen.n == 0)
		die(EX_CONFIG, "no listen address in the configuration");
	struct sockaddr_storage ss = cf->listen.v[0].ss;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			sin6->sin6_addr = in6addr_loopback;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, cf->listen.v[0].sslen) < 0)
		die(EX_TEMPFAIL, "cannot reach tempomxd at %s: %s", cf->listen.v[0].text,
		    strerror(errno));
	struct pollfd pfd[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	char buf[16384];
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0 || write(1, buf, (size_t)n) != n)
				break; /* the server closed (after QUIT) */
		}
		if (pfd[0].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				shutdown(fd, SHUT_WR);
				pfd[0].fd = -1;
			} else if (write(fd, buf, (size_t)n) != n) {
				break;
			}
		}
	}
	close(fd);
	return EX_OK;
}

/* The message on stdin; without -i a line "." ends it. */
static char *read_message(const struct options *o, uint64_t limit, size_t *lenp)
{
	size_t cap = 65536, len = 0, line = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(0, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EX_IOERR, "cannot read the message: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > limit)
			die(EX_DATAERR, "message larger than message_size_limit (%llu octets)",
			    (unsigned long long)limit);
		if (o->ignore_dot)
			continue;
		/* Look for a line of one dot among the complete lines. */
		for (size_t i = line; i < len; i++) {
			if (buf[i] != '\n')
				continue;
			size_t l = i - line;
			if ((l == 1 && buf[line] == '.') ||
			    (l == 2 && buf[line] == '.' && buf[line + 1] == '\r')) {
				*lenp = line;
				return buf;
			}
			line = i + 1;
		}
	}
	if (!o->ignore_dot && len - line == 1 && buf[line] == '.')
		len = line;
	*lenp = len;
	return buf;
}

/* A user name alone gets the domain the pickup would give it, so that
 * the From: line says the same as the envelope. malloc'd. */
static char *qualify(const struct config *cf, const char *a)
{
	char *q;
	if (a[0] == '\0' || strchr(a, '@') != NULL)
		return xstrdup(a);
	xasprintf(&q, "%s@%s", a, cf->local_domains.n > 0 ? cf->local_domains.v[0] : cf->hostname);
	return q;
}

/* An address as the maildrop file holds it, or die. */
static void check_address(const char *a, int sender)
{
	struct mailaddr m;
	const char *end;
	char buf[ADDR_PATH_MAX * 2 + 16];
	if (sender && a[0] == '\0')
		return;
	if (strlen(a) > ADDR_PATH_MAX || strchr(a, '\n') || strchr(a, '\r'))
		die(EX_DATAERR, "bad address: %s", a);
	snprintf(buf, sizeof(buf), strchr(a, '@') ? "%s" : "%s@localhost", a);
	if (addr_parse_path(buf, strlen(buf), ADDR_ALLOW_NOBRACKETS | ADDR_ALLOW_LITERAL, &m,
	                    &end) != ADDR_OK ||
	    *end != '\0')
		die(EX_DATAERR, "bad address: %s", a);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void drop(const struct config *cf, const char *sender, const struct strvec *rcpts,
                 const char *msg, size_t len)
{
	uint8_t rnd[8];
	char tmp[112], name[96], hex[17];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		die(EX_OSERR, "getrandom: %s", strerror(errno));
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	/* Unguessable names: the directory cannot be listed by users, and
	 * a name known is a file others could read (mode 0644, for smtpd). */
	snprintf(name, sizeof(name), "%lld.%ld.%s", (long long)wall_usec(), (long)getpid(), hex);
	snprintf(tmp, sizeof(tmp), ".%s", name);
	/* Users may not read the directory (mode 1733), only write into
	 * it: then it is reached by path, and its flush left to the file
	 * system (the file's own data is flushed all the same). */
	int dfd = open(cf->maildrop_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int can_sync = dfd >= 0;
	if (dfd < 0 && errno == EACCES)
		dfd = open(cf->maildrop_directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		die(EX_TEMPFAIL, "maildrop %s: %s (is tempomxd installed and started once?)",
		    cf->maildrop_directory, strerror(errno));
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		die(EX_TEMPFAIL, "maildrop %s: %s", cf->maildrop_directory, strerror(errno));
	char *head;
	xasprintf(&head, "%s\nsender %s\n", MAILDROP_MAGIC, sender);
	int bad = fchmod(fd, 0644) < 0 || write_all(fd, head, strlen(head)) < 0;
	free(head);
	for (size_t i = 0; i < rcpts->n && !bad; i++) {
		char *line;
		xasprintf(&line, "rcpt %s\n", rcpts->v[i]);
		bad = write_all(fd, line, strlen(line)) < 0;
		free(line);
	}
	bad = bad || write_all(fd, "end\n", 4) < 0 || write_all(fd, msg, len) < 0 || fsync(fd) < 0;
	if (close(fd) < 0)
		bad = 1;
	if (bad || renameat(dfd, tmp, dfd, name) < 0 || (can_sync && fsync_dirfd(dfd) < 0)) {
		int e = errno;
		unlinkat(dfd, tmp, 0);
		die(EX_TEMPFAIL, "cannot write the message into %s: %s", cf->maildrop_directory,
		    strerror(e));
	}
	close(dfd);
	log_info("uid %ld: from=<%s>, size=%zu, nrcpt=%zu (left in the maildrop as %s)",
	         (long)getuid(), sender, len, rcpts->n, name);
}

int main(int argc, char **argv)
{
	struct options o;
	struct config cf;
	log_init(PROG, 0, 0);
	parse_options(argc, argv, &o);
	if (o.mode == 'p')
		run_ctl(&o, "queue");
	if (o.mode == 'q')
		run_ctl(&o, "flush");
	load_config(&o, &cf);
	log_set_facility(cf.syslog_facility);
	if (o.mode == 's') {
		int rc = run_smtp(&cf);
		conf_free(&cf);
		strvec_free(&o.rcpts);
		return rc;
	}

	/* The sender: -f, else who runs us. */
	char login[256];
	const char *sender = o.sender;
	if (sender == NULL) {
		struct passwd *pw = getpwuid(getuid());
		if (pw == NULL)
			die(EX_NOUSER, "no user name for uid %ld; give the sender with -f",
			    (long)getuid());
		snprintf(login, sizeof(login), "%s", pw->pw_name);
		sender = login;
	} else if (strcmp(sender, "<>") == 0) {
		sender = "";
	}
	check_address(sender, 1);
	char *qsender = qualify(&cf, sender);
	size_t len, outlen;
	char *msg = read_message(&o, cf.message_size_limit, &len);
	char *out = headers_rewrite(msg, len, qsender, o.fullname, cf.hostname,
	                            o.extract ? &o.rcpts : NULL, &outlen);
	free(msg);
	if (o.rcpts.n == 0)
		die(EX_USAGE, "no recipients (give them as arguments, or -t to read them from the "
		              "message)");
	for (size_t i = 0; i < o.rcpts.n; i++)
		check_address(o.rcpts.v[i], 0);
	drop(&cf, qsender, &o.rcpts, out, outlen);
	free(out);
	free(qsender);
	strvec_free(&o.rcpts);
	conf_free(&cf);
	return EX_OK;
}
