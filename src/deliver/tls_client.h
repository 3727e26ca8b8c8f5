/*
 * tls_client.h: outbound STARTTLS for the SMTP client (tls_client.c).
 */
#ifndef TEMPOMX_TLS_CLIENT_H
#define TEMPOMX_TLS_CLIENT_H

#include <stddef.h>

typedef struct ssl_st SSL;

/* Handshake on the blocking socket fd (its timeouts apply). verify: check
 * the peer's certificate chain against ca_file (or the system store when
 * ca_file is NULL or "") and its name against peer. Returns the session,
 * or NULL with a reason in err. */
SSL *tls_client_start(int fd, int verify, const char *ca_file, const char *peer, char *err,
                      size_t errlen);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void tls_client_describe(SSL *ssl, char *buf, size_t len);
void tls_client_close(SSL *ssl);

#endif
