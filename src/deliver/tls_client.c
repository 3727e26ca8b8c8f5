/*
 * tls_client.c: the client side of STARTTLS (RFC 3207) for outbound SMTP.
 *
 * One SSL_CTX per verification setting, built on first use and shared by
 * the worker threads (OpenSSL 3 contexts are thread-safe once set up).
 * Opportunistic TLS (tls_policy may/encrypt) does not check the
 * certificate: a passive eavesdropper is defeated, which is the point of
 * opportunistic encryption (RFC 7435); "verify" checks the chain and name.
 * Called by smtp_client.c.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_client.h"

static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_ctx_plain;

static void tls_error(const char *what, char *err, size_t errlen)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s: %s", what, buf);
}

static SSL_CTX *tls_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
	return ctx;
}

SSL *tls_client_start(int fd, int verify, const char *ca_file, const char *peer, char *err,
                      size_t errlen)
{
	SSL_CTX *ctx, *own = NULL;
	if (verify) {
		/* Built per session: the CA file may change on reload, and
		 * verified sessions are rare enough for the cost. */
		own = ctx = tls_ctx_new();
		if (ctx == NULL) {
			tls_error("SSL_CTX_new", err, errlen);
			return NULL;
		}
		int ok = (ca_file && *ca_file) ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
		                               : SSL_CTX_set_default_verify_paths(ctx);
		if (!ok) {
			tls_error("cannot load the CA file", err, errlen);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		pthread_mutex_lock(&tls_mu);
		if (tls_ctx_plain == NULL)
			tls_ctx_plain = tls_ctx_new();
		ctx = tls_ctx_plain;
		pthread_mutex_unlock(&tls_mu);
		if (ctx == NULL) {
			tls_error("SSL_CTX_new", err, errlen);
			return NULL;
		}
	}
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(own); /* the session holds its own reference */
	if (ssl == NULL) {
		tls_error("SSL_new", err, errlen);
		return NULL;
	}
	if (peer && *peer) {
		unsigned char ip[16];
		int is_ip = inet_pton(AF_INET, peer, ip) == 1 || inet_pton(AF_INET6, peer, ip) == 1;
		if (!is_ip)
			SSL_set_tlsext_host_name(ssl, peer);
		/* An address route is checked against the certificate's IP
		 * names, a host name against its DNS names (RFC 6125). */
		if (verify && is_ip)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), peer);
		else if (verify)
			SSL_set1_host(ssl, peer);
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		if (verify && v != X509_V_OK)
			snprintf(err, errlen, "certificate not verified: %s",
			         X509_verify_cert_error_string(v));
		else
			tls_error("TLS handshake failed", err, errlen);
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

void tls_client_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

void tls_client_close(SSL *ssl)
{
	if (ssl == NULL)
		return;
	SSL_shutdown(ssl);
	SSL_free(ssl);
}
