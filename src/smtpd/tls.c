/*
 * tls.c: OpenSSL 3 server context, the switch of a connection to TLS
 * (STARTTLS, RFC 3207), and the self-signed certificate made at first
 * start.
 *
 * Owns every call into libssl/libcrypto made by smtpd. The context
 * allows TLS 1.2 and 1.3 only, without compression (CRIME) or
 * renegotiation, and releases its buffers when idle so an idle TLS session
 * stays small. The session decides when to switch (after the 220 is
 * flushed and after discarding what the client pipelined behind STARTTLS,
 * CVE-2011-0411); this file only makes the bufferevent.
 *
 * The self-signed pair is written like a spool file: temporary name,
 * fsync, rename, fsync of the directory, so a crash never leaves half a
 * key that would disable STARTTLS at the next start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "log.h"
#include "tls.h"
#include "util.h"

/* Ten years and two leap days. */
#define TLS_SELFSIGNED_DAYS 3652
/* RFC 5280 ub-common-name. */
#define TLS_CN_MAX 64

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

/* Self-signed certificate generation. */

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *pkey, const char *hostname)
{
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	unsigned char serial[16];
	char cn[TLS_CN_MAX + 1], san[300];

	if (x == NULL)
		return NULL;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f; /* RFC 5280 4.1.2.2: positive */
	serial[0] |= 0x01;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto fail;
	snprintf(cn, sizeof(cn), "%s", hostname);
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	X509_NAME *name = X509_get_subject_name(x);
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), TLS_SELFSIGNED_DAYS, 0, NULL) == NULL ||
	    X509_set_pubkey(x, pkey) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto fail;
	if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, NID_subject_alt_name, san) < 0)
		goto fail;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto fail;
	BN_free(bn);
	return x;
fail:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

/* Write the PEM text held by mem to dir/name durably, mode 0600. */
static int write_pem(const char *dir, const char *name, BIO *mem, uid_t uid, gid_t gid, char *err,
                     size_t errlen)
{
	char tmp[4096], dst[4096];
	char *data = NULL;
	long len = BIO_get_mem_data(mem, &data);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	size_t off = 0;
	while (len > 0 && off < (size_t)len) {
		ssize_t w = write(fd, data + off, (size_t)len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)w;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) != 0)
		goto fail;
	if (fchmod(fd, 0600) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

static int file_present(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

int tls_ensure_selfsigned(const char *dir, const char *hostname, uid_t uid, gid_t gid, char *err,
                          size_t errlen)
{
	char why[256];
	int rc = -1;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *kmem = NULL, *cmem = NULL;

	if (file_present(dir, TLS_SELFSIGNED_CERT) && file_present(dir, TLS_SELFSIGNED_KEY))
		return 0;
	if (mkdir_p(dir, 0700) != 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	pkey = EVP_EC_gen("P-256");
	if (pkey == NULL) {
		openssl_error(why, sizeof(why), "key generation failed");
		snprintf(err, errlen, "EC P-256 key: %s", why);
		goto out;
	}
	x = make_cert(pkey, hostname);
	if (x == NULL) {
		openssl_error(why, sizeof(why), "certificate generation failed");
		snprintf(err, errlen, "self-signed certificate: %s", why);
		goto out;
	}
	kmem = BIO_new(BIO_s_mem());
	cmem = BIO_new(BIO_s_mem());
	if (kmem == NULL || cmem == NULL ||
	    PEM_write_bio_PrivateKey(kmem, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cmem, x) != 1) {
		openssl_error(why, sizeof(why), "PEM encoding failed");
		snprintf(err, errlen, "%s", why);
		goto out;
	}
	/* Key first: a certificate without its key is the state to avoid;
	 * a lone key is replaced at the next start. */
	if (write_pem(dir, TLS_SELFSIGNED_KEY, kmem, uid, gid, err, errlen) != 0 ||
	    write_pem(dir, TLS_SELFSIGNED_CERT, cmem, uid, gid, err, errlen) != 0)
		goto out;
	if (fsync_dir_path(dir) != 0) {
		snprintf(err, errlen, "fsync %s: %s", dir, strerror(errno));
		goto out;
	}
	log_info("created a self-signed certificate for %s in %s", hostname, dir);
	rc = 0;
out:
	BIO_free(kmem);
	BIO_free(cmem);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}
