/*
 * remote.c: deliver a group of recipients (one message, one route) to the
 * next hop: resolve, connect, transact, fall back.
 *
 * RFC 5321 section 5.1: for "mx" (or "smtp:host") the MX records are
 * tried from the lowest preference, random among equal ones; a domain
 * without MX records is its own mail host (address records); a list that
 * names us stops before our own preference, so two MXes never bounce mail
 * between each other. A host that cannot be reached, or that fails as a
 * whole (greeting, EHLO), hands over to the next host or address; only
 * when all have failed is the recipient deferred (or bounced, if every
 * failure was permanent). Runs in a delivery worker thread; called by
 * delivery.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dns.h"
#include "remote.h"
#include "util.h"

/* Addresses tried per destination: bounded, as Postfix does, so a domain
 * with dozens of dead MX hosts does not hold a worker for an hour. */
#define REMOTE_MAX_ADDRS 10

static int connect_timed(const struct sockaddr *sa, socklen_t len, int secs, char *err,
                         size_t errlen)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int r;
	do
		r = poll(&p, 1, secs * 1000);
	while (r < 0 && errno == EINTR);
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (r == 0) {
		snprintf(err, errlen, "connect: timed out");
		close(fd);
		return -1;
	}
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
		snprintf(err, errlen, "connect: %s", strerror(soerr ? soerr : errno));
		close(fd);
		return -1;
	}
	/* Blocking from here; smtp_client.c sets the socket timeouts. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* ---- sessions kept open between messages ----
 *
 * After a transaction, a healthy session is parked here under its
 * destination key for smtp_connection_reuse_time; the next message to the
 * same destination takes it and skips connect, greeting, EHLO and TLS.
 * Shared by the worker threads, hence the mutex; sessions are closed
 * (QUIT) outside it. */
#define REMOTE_IDLE_MAX 32

struct idle {
	char key[300];
	char relay[300];
	struct smtp_session *s;
	int64_t since; /* monotonic usec */
};

static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static struct idle idle_v[REMOTE_IDLE_MAX];

/* Take the expired sessions (all with max_age < 0) out of the cache into
 * out[]; returns their count. Caller holds idle_mu. */
static size_t idle_collect(int64_t max_age, struct smtp_session **out)
{
	size_t n = 0;
	int64_t now = mono_usec();
	for (size_t i = 0; i < REMOTE_IDLE_MAX; i++) {
		if (idle_v[i].s && (max_age < 0 || now - idle_v[i].since >= max_age * 1000000)) {
			out[n++] = idle_v[i].s;
			idle_v[i].s = NULL;
		}
	}
	return n;
}

void remote_idle_expire(int64_t max_age)
{
	struct smtp_session *old[REMOTE_IDLE_MAX];
	pthread_mutex_lock(&idle_mu);
	size_t n = idle_collect(max_age, old);
	pthread_mutex_unlock(&idle_mu);
	for (size_t i = 0; i < n; i++)
		smtp_session_close(old[i]);
}

static struct smtp_session *idle_take(const char *key, int64_t max_age, char *relay, size_t rlen)
{
	struct smtp_session *s = NULL, *old[REMOTE_IDLE_MAX];
	pthread_mutex_lock(&idle_mu);
	size_t n = idle_collect(max_age, old);
	for (size_t i = 0; i < REMOTE_IDLE_MAX && s == NULL; i++) {
		if (idle_v[i].s && strcmp(idle_v[i].key, key) == 0) {
			s = idle_v[i].s;
			strlcpy_tmx(relay, idle_v[i].relay, rlen);
			idle_v[i].s = NULL;
		}
	}
	pthread_mutex_unlock(&idle_mu);
	for (size_t i = 0; i < n; i++)
		smtp_session_close(old[i]);
	return s;
}

static void idle_put(const char *key, const char *relay, struct smtp_session *s)
{
	struct smtp_session *evict = NULL;
	pthread_mutex_lock(&idle_mu);
	size_t slot = 0;
	for (size_t i = 0; i < REMOTE_IDLE_MAX; i++) {
		if (idle_v[i].s == NULL) {
			slot = i;
			break;
		}
		if (idle_v[i].since < idle_v[slot].since)
			slot = i; /* full: the oldest goes */
	}
	evict = idle_v[slot].s;
	strlcpy_tmx(idle_v[slot].key, key, sizeof(idle_v[slot].key));
	strlcpy_tmx(idle_v[slot].relay, relay, sizeof(idle_v[slot].relay));
	idle_v[slot].s = s;
	idle_v[slot].since = mono_usec();
	pthread_mutex_unlock(&idle_mu);
	smtp_session_close(evict);
}

/* ---- connection limits ----
 *
 * max_connections_per_destination and max_outbound_connections bound the
 * transactions running at once (a parked session is idle and does not
 * count). A job over a limit waits for another to finish: every holder
 * finishes within its timeouts, so the wait is bounded. */
#define REMOTE_DEST_SLOTS 256

struct dest_count {
	char key[300];
	int n;
};

static pthread_mutex_t lim_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lim_cv = PTHREAD_COND_INITIALIZER;
static struct dest_count dest_v[REMOTE_DEST_SLOTS];
static int lim_total;

static struct dest_count *dest_find(const char *key)
{
	struct dest_count *free_slot = NULL;
	for (size_t i = 0; i < REMOTE_DEST_SLOTS; i++) {
		if (dest_v[i].n > 0 && strcmp(dest_v[i].key, key) == 0)
			return &dest_v[i];
		if (dest_v[i].n == 0 && free_slot == NULL)
			free_slot = &dest_v[i];
	}
	return free_slot; /* NULL: more destinations at once than slots */
}

static void limit_acquire(const char *key, int64_t per_dest, int64_t total)
{
	pthread_mutex_lock(&lim_mu);
	for (;;) {
		struct dest_count *dc = dest_find(key);
		if (dc && (per_dest <= 0 || dc->n < per_dest) &&
		    (total <= 0 || lim_total < total)) {
			if (dc->n == 0)
				strlcpy_tmx(dc->key, key, sizeof(dc->key));
			dc->n++;
			lim_total++;
			break;
		}
		pthread_cond_wait(&lim_cv, &lim_mu);
	}
	pthread_mutex_unlock(&lim_mu);
}

static void limit_release(const char *key)
{
	pthread_mutex_lock(&lim_mu);
	struct dest_count *dc = dest_find(key);
	if (dc && dc->n > 0 && strcmp(dc->key, key) == 0)
		dc->n--;
	lim_total--;
	pthread_cond_broadcast(&lim_cv);
	pthread_mutex_unlock(&lim_mu);
}

static void fill_all(struct remote_job *j, int code, const char *text)
{
	for (size_t i = 0; i < j->msg.nrcpt; i++) {
		if (j->res[i].code != 0)
			continue;
		j->res[i].code = code;
		strlcpy_tmx(j->res[i].reply, text, sizeof(j->res[i].reply));
	}
}

/* One transaction with one connected socket. 1: done, 0: try the next. */
static int try_fd(struct remote_job *j, int fd, const char *relay, int *code, char *err,
                  size_t errlen)
{
	struct smtp_session *s = NULL;
	int r = smtp_transaction(&s, fd, j->reuse_time > 0, &j->opts, &j->msg, j->res, code, err,
	                         errlen, j->tls, sizeof(j->tls));
	strlcpy_tmx(j->relay, relay, sizeof(j->relay));
	if (s)
		idle_put(j->key, relay, s);
	return r == SMTP_DONE;
}

/* The destination: the route, plus the domain for MX routes, plus the
 * TLS policy (a session opened under "may" must not serve a domain that
 * wants "verify"). */
static void remote_key(struct remote_job *j)
{
	route_format(&j->route, j->key, sizeof(j->key));
	if (j->route.kind == ROUTE_MX) {
		size_t kl = strlen(j->key);
		snprintf(j->key + kl, sizeof(j->key) - kl, " %.200s", j->domain);
	}
	size_t kl = strlen(j->key);
	snprintf(j->key + kl, sizeof(j->key) - kl, " tls=%d", j->opts.tls_policy);
}

/* Deliver over a parked session to this destination, if there is one.
 * 1: done. A session the server has closed meanwhile fails as a whole
 * and the caller opens a new one. */
static int try_idle(struct remote_job *j)
{
	char relay[300], err[600];
	int code;
	if (j->reuse_time <= 0)
		return 0;
	struct smtp_session *s = idle_take(j->key, j->reuse_time, relay, sizeof(relay));
	if (s == NULL)
		return 0;
	int r = smtp_transaction(&s, -1, 1, &j->opts, &j->msg, j->res, &code, err, sizeof(err),
	                         j->tls, sizeof(j->tls));
	if (s)
		idle_put(j->key, relay, s);
	if (r == SMTP_DONE) {
		strlcpy_tmx(j->relay, relay, sizeof(j->relay));
		return 1;
	}
	for (size_t i = 0; i < j->msg.nrcpt; i++)
		j->res[i].code = 0;
	j->tls[0] = '\0';
	return 0;
}

/* Try the addresses of one host. 1: done. */
static int try_host(struct remote_job *j, const char *host, unsigned port, int *tries, int *code,
                    char *err, size_t errlen)
{
	struct dns_addr *a;
	size_t n;
	char derr[300];
	int st = dns_addr_lookup(j->dns_servers, host, port, &a, &n, derr, sizeof(derr));
	if (st != DNS_OK) {
		/* A missing host is a DNS problem of that MX, not of the mail. */
		*code = st == DNS_TEMP ? 451 : (*code >= 500 ? *code : 451);
		snprintf(err, errlen, "%s", derr);
		return 0;
	}
	int done = 0;
	for (size_t i = 0; i < n && !done && *tries < REMOTE_MAX_ADDRS; i++) {
		char hostbuf[NI_MAXHOST] = "?", relay[300];
		getnameinfo((struct sockaddr *)&a[i].ss, a[i].len, hostbuf, sizeof(hostbuf), NULL,
		            0, NI_NUMERICHOST);
		snprintf(relay, sizeof(relay), "%s[%s]:%u", host, hostbuf, port);
		(*tries)++;
		char cerr[300];
		int fd = connect_timed((struct sockaddr *)&a[i].ss, a[i].len, j->connect_timeout,
		                       cerr, sizeof(cerr));
		if (fd < 0) {
			*code = 451;
			snprintf(err, errlen, "%s: %s", relay, cerr);
			continue;
		}
		j->opts.peer_name = host;
		char terr[600];
		int c = 451;
		done = try_fd(j, fd, relay, &c, terr, sizeof(terr));
		if (!done) {
			*code = c;
			snprintf(err, errlen, "%.200s: %.400s", relay, terr);
		}
	}
	free(a);
	return done;
}

static void deliver_unix(struct remote_job *j)
{
	struct sockaddr_un sun;
	char err[700];
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(j->route.host) >= sizeof(sun.sun_path)) {
		fill_all(j, 451, "451 4.3.5 LMTP socket path too long");
		return;
	}
	strlcpy_tmx(sun.sun_path, j->route.host, sizeof(sun.sun_path));
	char cerr[300];
	int fd = connect_timed((struct sockaddr *)&sun, sizeof(sun), j->connect_timeout, cerr,
	                       sizeof(cerr));
	snprintf(j->relay, sizeof(j->relay), "%s", j->route.host);
	if (fd < 0) {
		snprintf(err, sizeof(err), "%s: %s", j->route.host, cerr);
		fill_all(j, 451, err);
		return;
	}
	int code = 451;
	char terr[600];
	j->opts.peer_name = "localhost";
	if (!try_fd(j, fd, j->route.host, &code, terr, sizeof(terr))) {
		snprintf(err, sizeof(err), "%.200s: %.400s", j->route.host, terr);
		fill_all(j, code, err);
	}
}

static void remote_deliver_limited(struct remote_job *j);

void remote_deliver(struct remote_job *j)
{
	remote_key(j);
	limit_acquire(j->key, j->max_per_destination, j->max_total);
	remote_deliver_limited(j);
	limit_release(j->key);
}

static void remote_deliver_limited(struct remote_job *j)
{
	char err[700] = "no host to deliver to";
	int code = 451, tries = 0;

	for (size_t i = 0; i < j->msg.nrcpt; i++)
		j->res[i].code = 0;
	j->relay[0] = j->tls[0] = '\0';
	j->opts.lmtp = j->route.kind == ROUTE_LMTP || j->route.kind == ROUTE_LMTP_UNIX;
	if (try_idle(j))
		return;
	if (j->route.kind == ROUTE_LMTP_UNIX) {
		deliver_unix(j);
		return;
	}
	if (j->route.kind == ROUTE_SMTP || j->route.kind == ROUTE_LMTP) {
		if (!try_host(j, j->route.host, j->route.port, &tries, &code, err, sizeof(err)))
			fill_all(j, code >= 500 ? code : 451, err);
		return;
	}

	/* MX routing. */
	const char *name = j->route.kind == ROUTE_SMTP_MX ? j->route.host : j->domain;
	unsigned port = j->route.kind == ROUTE_SMTP_MX ? j->route.port : 25;
	struct dns_mx *mx = NULL;
	size_t n = 0;
	char derr[300];
	int st = dns_mx_lookup(j->dns_servers, name, &mx, &n, derr, sizeof(derr));
	if (st == DNS_NXDOMAIN) {
		snprintf(err, sizeof(err), "550 5.1.2 Host or domain name not found (%s)", derr);
		fill_all(j, 550, err);
		return;
	}
	if (st == DNS_TEMP) {
		snprintf(err, sizeof(err), "451 4.4.3 %s", derr);
		fill_all(j, 451, err);
		return;
	}
	if (st == DNS_NODATA) {
		/* RFC 5321 5.1: no MX, the domain itself is the host. */
		mx = xcalloc(1, sizeof(*mx));
		mx[0].host = xstrdup(name);
		n = 1;
	}
	n = dns_mx_prune_self(mx, n, j->self);
	if (n == 0) {
		snprintf(err, sizeof(err),
		         "554 5.4.6 mail for %s loops back to myself (lowest MX is %s)", name,
		         j->self);
		fill_all(j, 554, err);
		free(mx); /* the hosts were freed by the prune */
		return;
	}
	int done = 0;
	for (size_t i = 0; i < n && !done && tries < REMOTE_MAX_ADDRS; i++)
		done = try_host(j, mx[i].host, port, &tries, &code, err, sizeof(err));
	dns_mx_free(mx, n);
	if (!done)
		fill_all(j, code >= 500 ? code : 451, err);
}
