/*
 * selfsigned.c: the self-signed certificate the master makes at first
 * start when STARTTLS is on and no tls_cert_file is configured, so that
 * a new site offers STARTTLS at once (opportunistic TLS needs no trusted
 * certificate). smtpd finds the pair by the names in selfsigned.h.
 *
 * The pair is written like a spool file: temporary name, fsync, rename,
 * fsync of the directory, the key before the certificate, so a crash
 * never leaves half a key that would disable STARTTLS at the next start.
 * Called by the master (src/tempomxd/main.c) as root, before the children
 * start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "selfsigned.h"
#include "util.h"

/* Ten years and two leap days. */
#define SELFSIGNED_DAYS 3652
/* RFC 5280 ub-common-name. */
#define SELFSIGNED_CN_MAX 64

/* The reason OpenSSL gives for the failure just seen (its oldest queued
 * error), or fallback; the thread's error queue is left empty. */
static void openssl_error(char *buf, size_t size, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, buf, size);
	else
		snprintf(buf, size, "%s", fallback);
	ERR_clear_error();
}

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
	char cn[SELFSIGNED_CN_MAX + 1], san[300];

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
	    X509_time_adj_ex(X509_getm_notAfter(x), SELFSIGNED_DAYS, 0, NULL) == NULL ||
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

int selfsigned_ensure(const char *dir, const char *hostname, uid_t uid, gid_t gid, char *err,
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
