/*
 * tls.h: the TLS side of outbound STARTTLS (tls.c), private to src/smtp/:
 * the SSL objects that client.c runs under libevent's OpenSSL filter.
 */
#ifndef TEMPOMX_SMTP_TLS_H
#define TEMPOMX_SMTP_TLS_H

#include <stddef.h>

typedef struct ssl_st SSL;

/* A client SSL (TLS 1.2 or later) for a handshake with peer. verify:
 * check the peer's certificate chain against ca_file (or the system store
 * when ca_file is NULL or "") and its name against peer (a host name or
 * an address). Returns NULL with a reason in err. */
SSL *tls_client_new(int verify, const char *ca_file, const char *peer, char *err, size_t errlen);
/* Why the handshake on ssl failed: the certificate check, else the
 * OpenSSL error e (0: none known). */
void tls_client_failure(SSL *ssl, unsigned long e, char *err, size_t errlen);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void tls_client_describe(SSL *ssl, char *buf, size_t len);

#endif
