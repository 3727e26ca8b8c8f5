/*
 * whitelistctl.c: tempomxctl whitelist add|remove|list: edits of the
 * file named by whitelist_file, applied at once.
 *
 * The file has one entry a line, "client CIDR", "sender ADDR" or
 * "recipient ADDR" (classify.h), with comments kept as they are. An edit
 * writes a new file next to the old one, flushes it and renames it over
 * the old one, so smtpd never reads half a file; then the master is
 * asked to reload (control socket), which makes smtpd read the
 * whitelists again without closing a connection. Entries from the whitelist_clients,
 * whitelist_senders and whitelist_recipients keys are listed too but only the file is edited.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "classify.h"
#include "ctl.h"
#include "log.h"
#include "util.h"

#define WL_FILE_MAX (16 * 1024 * 1024)

static const char *const kinds[] = {"client", "sender", "recipient"};

static int kind_of(const char *s)
{
	for (int k = 0; k < 3; k++)
		if (ascii_strcasecmp(s, kinds[k]) == 0)
			return k;
	return -1;
}

/* The entry as the file should hold it: a network in canonical form,
 * an address or domain in lower case. */
static int canonical(int kind, const char *entry, char *out, size_t size)
{
	struct whitelist wl;
	memset(&wl, 0, sizeof(wl));
	if (whitelist_add(&wl, kind, entry) != 0)
		return -1;
	if (kind == 0)
		cidr_format(&wl.clients[0], out, size);
	else
		snprintf(out, size, "%s", kind == 1 ? wl.senders[0] : wl.rcpts[0]);
	whitelist_free(&wl);
	return 0;
}

/* Whether a line of the file is the entry (kind, canon). */
static int line_is(const char *line, size_t len, int kind, const char *canon)
{
	char buf[512], word[32], val[400], c2[400];
	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, line, len);
	buf[len] = '\0';
	char *hash = strchr(buf, '#');
	if (hash != NULL)
		*hash = '\0';
	if (sscanf(buf, "%31s %399s", word, val) != 2 || kind_of(word) != kind)
		return 0;
	return canonical(kind, val, c2, sizeof(c2)) == 0 && strcmp(c2, canon) == 0;
}

static char *read_file(const char *path, size_t *len, int *missing)
{
	struct stat st;
	*missing = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*missing = errno == ENOENT;
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	if (st.st_size > WL_FILE_MAX) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	char *buf = read_fd_all(fd, (size_t)st.st_size, len);
	int e = errno;
	close(fd);
	errno = e;
	return buf;
}

/* Replace path by the given text: new file, fsync, rename, fsync dir. */
static int write_file(const char *path, const char *text, size_t len)
{
	char tmp[4096];
	struct stat st;
	mode_t mode = 0644;
	if (stat(path, &st) == 0)
		mode = st.st_mode & 0777;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tempomxctl.%ld", path, (long)getpid()) >=
	    sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		fsync_dir_path(dir[0] ? dir : "/");
	}
	free(dir);
	return 0;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

static const char *wl_file(struct ctl *c, const char *cmd)
{
	if (c->cf.whitelist_file == NULL || c->cf.whitelist_file[0] == '\0') {
		ctl_err("%s: whitelist_file is not set in %s; set it to a file such as "
		        "/etc/tempomx/whitelist",
		        cmd, c->conf_path ? c->conf_path : "the configuration");
		return NULL;
	}
	return c->cf.whitelist_file;
}

/* Tell the daemon, if it runs, to read the whitelists again. */
static int apply(struct ctl *c, const char *cmd)
{
	int rc = ctl_daemon_request(c, "reload", NULL, cmd);
	if (rc == -2) {
		printf("tempomxd is not running; the change applies when it starts\n");
		return CTL_OK;
	}
	if (rc < 0)
		return CTL_FAIL;
	printf("applied: tempomxd reads the whitelists again\n");
	return CTL_OK;
}

static int parse_entry(const char *cmd, int argc, char **argv, int *kind, char *canon, size_t size)
{
	if (argc != 3)
		return ctl_usage(cmd);
	*kind = kind_of(argv[1]);
	if (*kind < 0) {
		ctl_err("%s: %s: the kind is client, sender or recipient", cmd, argv[1]);
		return CTL_USAGE;
	}
	if (canonical(*kind, argv[2], canon, size) < 0) {
		ctl_err("%s: %s is not a valid %s entry", cmd, argv[2], kinds[*kind]);
		return CTL_USAGE;
	}
	return CTL_OK;
}

int cmd_whitelist_add(struct ctl *c, int argc, char **argv)
{
	char canon[400];
	int kind, missing;
	size_t len = 0;
	int rc = parse_entry("whitelist add", argc, argv, &kind, canon, sizeof(canon));
	if (rc != CTL_OK)
		return rc;
	const char *path = wl_file(c, "whitelist add");
	if (path == NULL)
		return CTL_FAIL;
	char *old = read_file(path, &len, &missing);
	if (old == NULL && !missing) {
		ctl_err("whitelist add: %s: %s", path, strerror(errno));
		return CTL_FAIL;
	}
	for (size_t i = 0; old != NULL && i < len;) {
		size_t e = i;
		while (e < len && old[e] != '\n')
			e++;
		if (line_is(old + i, e - i, kind, canon)) {
			printf("%s %s: already in %s\n", kinds[kind], canon, path);
			free(old);
			return CTL_OK;
		}
		i = e + 1;
	}
	char *text;
	int n = xasprintf(&text, "%.*s%s%s %s\n", (int)len, old ? old : "",
	                  len > 0 && old[len - 1] != '\n' ? "\n" : "", kinds[kind], canon);
	free(old);
	if (write_file(path, text, (size_t)n) < 0) {
		ctl_err("whitelist add: cannot write %s: %s", path, strerror(errno));
		free(text);
		return CTL_FAIL;
	}
	free(text);
	log_info("whitelist: %s %s added to %s by the admin", kinds[kind], canon, path);
	printf("%s %s: added to %s\n", kinds[kind], canon, path);
	return apply(c, "whitelist add");
}

int cmd_whitelist_remove(struct ctl *c, int argc, char **argv)
{
	char canon[400];
	int kind, missing, found = 0;
	size_t len = 0, outlen = 0;
	int rc = parse_entry("whitelist remove", argc, argv, &kind, canon, sizeof(canon));
	if (rc != CTL_OK)
		return rc;
	const char *path = wl_file(c, "whitelist remove");
	if (path == NULL)
		return CTL_FAIL;
	char *old = read_file(path, &len, &missing);
	if (old == NULL) {
		ctl_err("whitelist remove: %s: %s", path,
		        missing ? "no such file, so no such entry" : strerror(errno));
		return CTL_FAIL;
	}
	char *out = xmalloc(len + 1);
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && old[e] != '\n')
			e++;
		size_t next = e < len ? e + 1 : e;
		if (line_is(old + i, e - i, kind, canon)) {
			found = 1;
		} else {
			memcpy(out + outlen, old + i, next - i);
			outlen += next - i;
		}
		i = next;
	}
	free(old);
	if (!found) {
		free(out);
		ctl_err("whitelist remove: %s %s is not in %s", kinds[kind], canon, path);
		return CTL_FAIL;
	}
	if (write_file(path, out, outlen) < 0) {
		ctl_err("whitelist remove: cannot write %s: %s", path, strerror(errno));
		free(out);
		return CTL_FAIL;
	}
	free(out);
	log_info("whitelist: %s %s removed from %s by the admin", kinds[kind], canon, path);
	printf("%s %s: removed from %s\n", kinds[kind], canon, path);
	return apply(c, "whitelist remove");
}

int cmd_whitelist_list(struct ctl *c, int argc, char **argv)
{
	(void)argv;
	char text[128];
	int missing;
	size_t len = 0;
	if (argc != 1)
		return ctl_usage("whitelist list");
	for (size_t i = 0; i < c->cf.whitelist_clients.n; i++) {
		cidr_format(&c->cf.whitelist_clients.v[i], text, sizeof(text));
		printf("client %s (whitelist_clients)\n", text);
	}
	const char *lists[2] = {c->cf.whitelist_senders, c->cf.whitelist_recipients};
	for (int k = 0; k < 2; k++) {
		char *copy = xstrdup(lists[k] ? lists[k] : "");
		char *save = NULL;
		for (char *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save))
			printf("%s %s (whitelist_%s)\n", kinds[k + 1], w,
			       k == 0 ? "senders" : "recipients");
		free(copy);
	}
	const char *path = c->cf.whitelist_file;
	if (path == NULL || path[0] == '\0')
		return CTL_OK;
	char *buf = read_file(path, &len, &missing);
	if (buf == NULL) {
		if (missing)
			return CTL_OK;
		ctl_err("whitelist list: %s: %s", path, strerror(errno));
		return CTL_FAIL;
	}
	int lineno = 0;
	for (size_t i = 0; i < len;) {
		size_t e = i;
		char line[512], word[32], val[400];
		while (e < len && buf[e] != '\n')
			e++;
		lineno++;
		size_t l = e - i < sizeof(line) - 1 ? e - i : sizeof(line) - 1;
		memcpy(line, buf + i, l);
		line[l] = '\0';
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		if (sscanf(line, "%31s %399s", word, val) == 2 && kind_of(word) >= 0)
			printf("%s %s (%s:%d)\n", kinds[kind_of(word)], val, path, lineno);
		i = e + 1;
	}
	free(buf);
	return CTL_OK;
}
