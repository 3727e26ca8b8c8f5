/*
 * tls.c: OpenSSL 3 server context and the switch of a connection to TLS
 * (STARTTLS, RFC 3207). The self-signed certificate made at first start is
 * the master's (src/common/selfsigned.c); this file only finds it.
 *
 * Owns every call into libssl/libcrypto made by smtpd. The context
 * allows TLS 1.2 and 1.3 only, without compression (CRIME) or
 * renegotiation, and releases its buffers when idle so an idle TLS session
 * stays small. The session decides when to switch (after the 220 is
 * flushed and after discarding what the client pipelined behind STARTTLS,
 * CVE-2011-0411); this file only makes the bufferevent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "conf.h"
#include "log.h"
#include "selfsigned.h"
#include "tls.h"
#include "util.h"

/* Text of the oldest error on the thread's queue, queue cleared. */
static void openssl_error(char *buf, size_t size, const char *fallback)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		snprintf(buf, size, "%s", fallback);
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
}

void tls_paths(const struct config *cf, char *cert, size_t certlen, char *key, size_t keylen)
{
	if (cf->tls_cert_file && cf->tls_cert_file[0] != '\0')
		snprintf(cert, certlen, "%s", cf->tls_cert_file);
	else
		snprintf(cert, certlen, "%s/%s/%s", cf->spool_directory, TLS_SELFSIGNED_DIR,
		         TLS_SELFSIGNED_CERT);
	if (cf->tls_key_file && cf->tls_key_file[0] != '\0')
		snprintf(key, keylen, "%s", cf->tls_key_file);
	else
		snprintf(key, keylen, "%s/%s/%s", cf->spool_directory, TLS_SELFSIGNED_DIR,
		         TLS_SELFSIGNED_KEY);
}

SSL_CTX *tls_context_new(const struct config *cf, char *err, size_t errlen)
{
	char cert[4096], key[4096], why[256];
	tls_paths(cf, cert, sizeof(cert), key, sizeof(key));

	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		openssl_error(why, sizeof(why), "SSL_CTX_new failed");
		snprintf(err, errlen, "%s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tempomx", 7);
	if (SSL_CTX_set_cipher_list(ctx, "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES") != 1)
		goto fail;
	if (access(cert, R_OK) != 0) {
		snprintf(err, errlen, "certificate %s: %s", cert, strerror(errno));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (access(key, R_OK) != 0) {
		snprintf(err, errlen, "key %s: %s", key, strerror(errno));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		openssl_error(why, sizeof(why), "unreadable");
		snprintf(err, errlen, "certificate %s: %s", cert, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		openssl_error(why, sizeof(why), "does not match the certificate");
		snprintf(err, errlen, "key %s: %s", key, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
fail:
	openssl_error(why, sizeof(why), "context set-up failed");
	snprintf(err, errlen, "%s", why);
	SSL_CTX_free(ctx);
	return NULL;
}

struct bufferevent *tls_start(struct event_base *base, SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return NULL;
	/* Without BEV_OPT_CLOSE_ON_FREE libevent leaves both the SSL and
	 * the descriptor to us (tls_free), which lets the session linger on
	 * the socket after the TLS layer is gone. */
	struct bufferevent *bev =
	    bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, 0);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* A client that closes TCP without close_notify has still said
	 * QUIT or is gone; report it as an ordinary end of file. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

void tls_free(struct bufferevent *bev, int send_close_notify)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl && send_close_notify) {
		/* Best effort on the non-blocking socket; the peer may be
		 * gone already. */
		SSL_shutdown(ssl);
	}
	bufferevent_free(bev);
	if (ssl)
		SSL_free(ssl);
	ERR_clear_error();
}

const char *tls_protocol(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl ? SSL_get_version(ssl) : "none";
}

const char *tls_cipher(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	const SSL_CIPHER *c = ssl ? SSL_get_current_cipher(ssl) : NULL;
	return c ? SSL_CIPHER_get_name(c) : "none";
}

void tls_describe(struct bufferevent *bev, char *buf, size_t size)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	const SSL_CIPHER *c = ssl ? SSL_get_current_cipher(ssl) : NULL;
	int alg = 0, bits = c ? SSL_CIPHER_get_bits(c, &alg) : 0;
	snprintf(buf, size, "%s %s %d/%d", tls_protocol(bev), tls_cipher(bev), bits, alg);
}

void tls_error(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
	if (e == 0)
		e = ERR_get_error();
	if (e != 0)
		ERR_error_string_n(e, buf, size);
	else
		snprintf(buf, size, "%s", errno ? strerror(errno) : "connection closed");
	while (bev && bufferevent_get_openssl_error(bev) != 0)
		;
	ERR_clear_error();
}
