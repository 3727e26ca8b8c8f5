/*
 * tls.h: STARTTLS for smtpd (RFC 3207) with OpenSSL 3, and the
 * self-signed certificate the master creates at first start.
 *
 * server.c builds the context at start and on SIGHUP (tls_context_new);
 * session.c switches a connection to TLS with tls_start() once the "220
 * Ready to start TLS" reply is on the wire, and describes the result with
 * tls_describe(). The master (src/tempomxd/) calls tls_ensure_selfsigned()
 * as root before the children start when no certificate is configured.
 */
#ifndef TEMPOMX_SMTPD_TLS_H
#define TEMPOMX_SMTPD_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

struct config;
struct event_base;
struct bufferevent;

/* File names of the self-signed pair inside <spool_directory>/master/tls/. */
#define TLS_SELFSIGNED_DIR "master/tls" /* root's directory (tempomxd/rundir.h) */
#define TLS_SELFSIGNED_CERT "cert.pem"
#define TLS_SELFSIGNED_KEY "key.pem"

/* Make sure dir holds cert.pem and key.pem: when either is missing,
 * generate an EC P-256 key and a self-signed X.509 certificate for
 * hostname valid ten years, write both with mode 0600 owned by uid/gid
 * (each written to a temporary name, fsync'd, renamed), fsync dir.
 * Pass (uid_t)-1 / (gid_t)-1 to keep the owner. Returns 0 when both
 * exist afterwards, -1 with a message in err. */
int tls_ensure_selfsigned(const char *dir, const char *hostname, uid_t uid, gid_t gid, char *err,
                          size_t errlen);

/* The certificate and key smtpd uses: tls_cert_file/tls_key_file, or the
 * self-signed pair under the spool when those are empty. */
void tls_paths(const struct config *cf, char *cert, size_t certlen, char *key, size_t keylen);

/* Build the server context (TLS 1.2 minimum, no compression, no
 * renegotiation) from tls_paths(). Returns NULL with the reason in err
 * when the files are missing or do not match. */
SSL_CTX *tls_context_new(const struct config *cf, char *err, size_t errlen);

/* Wrap the connected socket fd in a TLS bufferevent in the accepting
 * state. The bufferevent neither closes fd nor frees the SSL when it is
 * freed: call tls_free() for that. Returns NULL on failure. */
struct bufferevent *tls_start(struct event_base *base, SSL_CTX *ctx, int fd);
/* Free a bufferevent made by tls_start(), sending close_notify first
 * when the handshake had completed. fd stays open. */
void tls_free(struct bufferevent *bev, int send_close_notify);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384 256/256" for the envelope. */
void tls_describe(struct bufferevent *bev, char *buf, size_t size);
/* "TLSv1.3" and "TLS_AES_256_GCM_SHA384", for logs and Received:. */
const char *tls_protocol(struct bufferevent *bev);
const char *tls_cipher(struct bufferevent *bev);
/* The first OpenSSL error of this connection (or the thread's error
 * queue), as text, for a log line; the queues are cleared. */
void tls_error(struct bufferevent *bev, char *buf, size_t size);

#endif
