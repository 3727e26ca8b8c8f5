/*
 * tls.c: the client side of STARTTLS (RFC 3207) for the outbound
 * SMTP/LMTP client.
 *
 * Builds the SSL objects; the handshake and the encrypted stream run in
 * the owner's event loop under libevent's OpenSSL filter (client.c).
 * One shared SSL_CTX for opportunistic TLS, built on first use; a context
 * of its own for each verified session, so a changed tls_ca_file applies
 * at once. Opportunistic TLS (tls_policy may/encrypt) does not check the
 * certificate: a passive eavesdropper is defeated, which is the point of
 * opportunistic encryption (RFC 7435); "verify" checks the chain and the
 * name (RFC 6125). Loop thread only.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

static SSL_CTX *tls_ctx_plain;

static void tls_error(const char *what, unsigned long e, char *err, size_t errlen)
{
	char buf[256] = "unknown error";
	if (e == 0)
		e = ERR_get_error();
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
	return ctx;
}

SSL *tls_client_new(int verify, const char *ca_file, const char *peer, char *err, size_t errlen)
{
	SSL_CTX *ctx, *own = NULL;
	if (verify) {
		own = ctx = tls_ctx_new();
		if (ctx == NULL) {
			tls_error("SSL_CTX_new", 0, err, errlen);
			return NULL;
		}
		int ok = (ca_file && *ca_file) ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
		                               : SSL_CTX_set_default_verify_paths(ctx);
		if (!ok) {
			tls_error("cannot load the CA file", 0, err, errlen);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		if (tls_ctx_plain == NULL)
			tls_ctx_plain = tls_ctx_new();
		ctx = tls_ctx_plain;
		if (ctx == NULL) {
			tls_error("SSL_CTX_new", 0, err, errlen);
			return NULL;
		}
	}
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(own); /* the session holds its own reference */
	if (ssl == NULL) {
		tls_error("SSL_new", 0, err, errlen);
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
	return ssl;
}

void tls_client_failure(SSL *ssl, unsigned long e, char *err, size_t errlen)
{
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (ssl && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE && v != X509_V_OK) {
		ERR_clear_error();
		snprintf(err, errlen, "certificate not verified: %s",
		         X509_verify_cert_error_string(v));
		return;
	}
	tls_error("TLS handshake failed", e, err, errlen);
}

void tls_client_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
