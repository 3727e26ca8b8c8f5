/*
 * selfsigned.h: the self-signed certificate of a new site: where it lives
 * under the spool (smtpd's tls.c reads it from there) and its creation by
 * the master at first start (src/common/selfsigned.c).
 */
#ifndef TEMPOMX_SELFSIGNED_H
#define TEMPOMX_SELFSIGNED_H

#include <stddef.h>
#include <sys/types.h>

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
int selfsigned_ensure(const char *dir, const char *hostname, uid_t uid, gid_t gid, char *err,
                      size_t errlen);

#endif
