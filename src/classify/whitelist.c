/*
 * whitelist.c: whitelists of the pre-acceptance policy: client addresses
 * or networks, sender addresses or domains, recipient addresses or
 * domains. Filled from the configuration (whitelist_clients,
 * whitelist_senders, whitelist_recipients) and from whitelist_file, whose
 * parser is here too (it reads untrusted text: every line is checked,
 * nothing in it can crash us). Called by smtpd (src/smtpd/screen.c) at
 * start and on SIGHUP, by tempomxctl (why, whitelist) and by the fuzz
 * target.
 *
 * Matching: an entry with '@' matches that address (case-insensitive
 * domain and, to be lenient, local part); an entry without matches the
 * domain; a leading dot matches the domain and every sub-domain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#define WHITELIST_FILE_MAX (16 * 1024 * 1024)
#define WHITELIST_ENTRY_MAX 320

static int entry_valid(const char *e, size_t len)
{
	if (len == 0 || len > WHITELIST_ENTRY_MAX)
		return 0;
	size_t at = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)e[i];
		if (c <= 0x20 || c >= 0x7f)
			return 0;
		if (c == '@')
			at++;
	}
	if (at > 1 || e[len - 1] == '@' || e[len - 1] == '.')
		return 0;
	if (at == 1 && e[0] == '.')
		return 0;
	return 1;
}

static void push(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	char *c = xstrdup(s);
	ascii_lower(c);
	(*v)[(*n)++] = c;
}

int whitelist_add(struct whitelist *wl, int kind, const char *entry)
{
	size_t len = strlen(entry);
	if (kind == 0) {
		struct cidr c;
		if (len == 0 || len > 64 || cidr_parse(entry, &c) != 0)
			return -1;
		wl->clients = xreallocarray(wl->clients, wl->nclients + 1, sizeof(*wl->clients));
		wl->clients[wl->nclients++] = c;
		return 0;
	}
	if (!entry_valid(entry, len))
		return -1;
	if (kind == 1)
		push(&wl->senders, &wl->nsenders, entry);
	else if (kind == 2)
		push(&wl->rcpts, &wl->nrcpts, entry);
	else
		return -1;
	return 0;
}

static int kind_of(const char *w, size_t n)
{
	if (n == 6 && ascii_strncasecmp(w, "client", 6) == 0)
		return 0;
	if (n == 6 && ascii_strncasecmp(w, "sender", 6) == 0)
		return 1;
	if (n == 9 && ascii_strncasecmp(w, "recipient", 9) == 0)
		return 2;
	return -1;
}

int whitelist_parse(struct whitelist *wl, const char *buf, size_t len, char *err, size_t errlen)
{
	size_t lineno = 0;
	for (size_t off = 0; off < len;) {
		const char *p = buf + off;
		const char *nl = memchr(p, '\n', len - off);
		size_t n = nl ? (size_t)(nl - p) : len - off;
		off += n + (nl ? 1 : 0);
		lineno++;
		const char *hash = memchr(p, '#', n);
		if (hash)
			n = (size_t)(hash - p);
		/* words: kind, entry */
		size_t i = 0;
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
			i++;
		if (i == n)
			continue;
		size_t ks = i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		int kind = kind_of(p + ks, i - ks);
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		size_t es = i;
		while (i < n && p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			i++;
		size_t ee = i;
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
			i++;
		if (kind < 0) {
			snprintf(err, errlen, "line %zu: expected client, sender or recipient",
			         lineno);
			return -1;
		}
		if (ee == es || i != n || ee - es > WHITELIST_ENTRY_MAX) {
			snprintf(err, errlen, "line %zu: expected one entry", lineno);
			return -1;
		}
		char entry[WHITELIST_ENTRY_MAX + 1];
		memcpy(entry, p + es, ee - es);
		entry[ee - es] = '\0';
		if (memchr(p + es, '\0', ee - es) != NULL || whitelist_add(wl, kind, entry) != 0) {
			snprintf(err, errlen, "line %zu: bad entry", lineno);
			return -1;
		}
	}
	return 0;
}

int whitelist_load(struct whitelist *wl, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size > WHITELIST_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "too large");
		close(fd);
		return -1;
	}
	size_t got;
	char *buf = read_fd_all(fd, (size_t)st.st_size, &got);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	char e[200];
	int rc = whitelist_parse(wl, buf, got, e, sizeof(e));
	free(buf);
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, e);
	return rc;
}

void whitelist_free(struct whitelist *wl)
{
	free(wl->clients);
	for (size_t i = 0; i < wl->nsenders; i++)
		free(wl->senders[i]);
	free(wl->senders);
	for (size_t i = 0; i < wl->nrcpts; i++)
		free(wl->rcpts[i]);
	free(wl->rcpts);
	memset(wl, 0, sizeof(*wl));
}

int whitelist_client(const struct whitelist *wl, const struct sockaddr *sa)
{
	return wl->nclients > 0 && cidr_match_list(wl->clients, wl->nclients, sa);
}

static int addr_matches(char *const *v, size_t n, const char *addr)
{
	if (addr == NULL || *addr == '\0')
		return 0;
	const char *at = strrchr(addr, '@');
	const char *dom = at ? at + 1 : addr;
	size_t dlen = strlen(dom);
	for (size_t i = 0; i < n; i++) {
		const char *e = v[i];
		if (strchr(e, '@')) {
			if (ascii_strcasecmp(e, addr) == 0)
				return 1;
		} else if (e[0] == '.') {
			size_t elen = strlen(e);
			if (ascii_strcasecmp(e + 1, dom) == 0 ||
			    (dlen > elen && ascii_strcasecmp(dom + dlen - elen, e) == 0))
				return 1;
		} else if (ascii_strcasecmp(e, dom) == 0) {
			return 1;
		}
	}
	return 0;
}

int whitelist_sender(const struct whitelist *wl, const char *addr)
{
	return addr_matches(wl->senders, wl->nsenders, addr);
}

int whitelist_recipient(const struct whitelist *wl, const char *addr)
{
	return addr_matches(wl->rcpts, wl->nrcpts, addr);
}

/* The whitelists a configuration names: its whitelist_* keys and the
 * whitelist_file. Bad entries are logged and skipped. */
void whitelist_from_config(const struct config *cf, struct whitelist *wl)
{
	memset(wl, 0, sizeof(*wl));
	for (size_t i = 0; i < cf->whitelist_clients.n; i++) {
		wl->clients = xreallocarray(wl->clients, wl->nclients + 1, sizeof(*wl->clients));
		wl->clients[wl->nclients++] = cf->whitelist_clients.v[i];
	}
	const char *lists[2] = {cf->whitelist_senders, cf->whitelist_recipients};
	for (int k = 0; k < 2; k++) {
		char *copy = xstrdup(lists[k] ? lists[k] : "");
		char *save = NULL;
		for (char *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save))
			if (whitelist_add(wl, k + 1, w) != 0)
				log_warnx("whitelist_%s: bad entry '%s' ignored",
				          k == 0 ? "senders" : "recipients", w);
		free(copy);
	}
	if (cf->whitelist_file && cf->whitelist_file[0]) {
		char err[512];
		if (whitelist_load(wl, cf->whitelist_file, err, sizeof(err)) != 0)
			log_warnx("whitelist_file: %s (the entries before it are used)", err);
	}
}
