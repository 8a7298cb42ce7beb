/*
 * tls.c: OpenSSL 3 contexts with yizhan's fixed policy, and self-signed
 * certificate generation.
 *
 * Guarantees: see tls.h (TLS >= 1.2, ECDHE+AEAD for 1.2, no compression, no
 * renegotiation, tickets on, released buffers). Generated keys are written
 * atomically with mode 0600 and wiped from memory afterwards.
 *
 * Never: does any network I/O itself; never writes a key file non-atomically
 * or with group/other permissions.
 */
#include "lib/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/file.h"
#include "lib/mem.h"

/* TLS 1.2 suites of BCP 195 (RFC 9325): ECDHE key exchange, AEAD only. */
#define TLS_SERVER_CIPHERS_12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* Opportunistic client: anything strong is better than plaintext. */
#define TLS_CLIENT_CIPHERS_12 "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!DSS:!PSK:!SRP"
/* Longest error text kept. */
#define TLS_ERROR_MAX 256
/* Longest accepted hostname for a certificate (RFC 1035). */
#define TLS_HOSTNAME_MAX 253
/* Largest PEM file we generate. */
#define TLS_PEM_MAX 16384

struct yz_tls_ctx {
	SSL_CTX *ssl_ctx;
};

static char tls_error[TLS_ERROR_MAX];

/* Format an error into the static buffer and return it. */
static const char *tls_err(const char *what, const char *detail)
{
	/* Concatenate by hand: a truncated message is still the best we have,
	 * and the inputs may alias the static buffer of yz_tls_last_error(). */
	const char *parts[3] = { what, detail ? ": " : "", detail ? detail : "" };
	char tmp[TLS_ERROR_MAX];
	size_t len = 0;
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(parts[i]);
		if (n > sizeof tmp - 1 - len)
			n = sizeof tmp - 1 - len;
		memcpy(tmp + len, parts[i], n);
		len += n;
	}
	tmp[len] = '\0';
	memcpy(tls_error, tmp, len + 1);
	return tls_error;
}

/* The last OpenSSL error as text (static buffer). */
const char *yz_tls_last_error(const char *fallback)
{
	static char buf[TLS_ERROR_MAX];
	unsigned long e = ERR_get_error();
	unsigned long next;
	/* Keep the first error: it is the cause; later ones are consequences. */
	while ((next = ERR_get_error()) != 0)
		;
	if (e == 0)
		return fallback;
	ERR_error_string_n(e, buf, sizeof buf);
	return buf;
}

/* Settings shared by client and server contexts. */
static int tls_ctx_common(SSL_CTX *ctx, const char *ciphers)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return -1;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
}

/* Server context with certificate and key. */
struct yz_tls_ctx *yz_tls_server_ctx_new(const char *cert_file, const char *key_file,
					 const char **error_r)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_err("SSL_CTX_new", yz_tls_last_error(NULL));
		return NULL;
	}
	if (tls_ctx_common(ctx, TLS_SERVER_CIPHERS_12) < 0) {
		*error_r = tls_err("TLS policy", yz_tls_last_error(NULL));
		goto fail;
	}
	/* Tickets are on by default in OpenSSL; say so in case that changes. */
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_r = tls_err(cert_file, yz_tls_last_error("cannot load certificate"));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		*error_r = tls_err(key_file, yz_tls_last_error("cannot load key"));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_err(key_file, "key does not match the certificate");
		ERR_clear_error();
		goto fail;
	}
	struct yz_tls_ctx *t = yz_calloc(1, sizeof *t);
	t->ssl_ctx = ctx;
	return t;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Opportunistic client context. */
struct yz_tls_ctx *yz_tls_client_ctx_new(const char **error_r)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = tls_err("SSL_CTX_new", yz_tls_last_error(NULL));
		return NULL;
	}
	if (tls_ctx_common(ctx, TLS_CLIENT_CIPHERS_12) < 0) {
		*error_r = tls_err("TLS policy", yz_tls_last_error(NULL));
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	struct yz_tls_ctx *t = yz_calloc(1, sizeof *t);
	t->ssl_ctx = ctx;
	return t;
}

/* Free a context. */
void yz_tls_ctx_free(struct yz_tls_ctx **ctxp)
{
	if (ctxp == NULL || *ctxp == NULL)
		return;
	SSL_CTX_free((*ctxp)->ssl_ctx);
	free(*ctxp);
	*ctxp = NULL;
}

/* The underlying SSL_CTX. */
struct ssl_ctx_st *yz_tls_ctx_ssl(struct yz_tls_ctx *ctx)
{
	return ctx->ssl_ctx;
}

/* Add one X509v3 extension given in OpenSSL's config syntax. */
static int tls_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* Is hostname a plausible DNS name (letters, digits, '-', '.')? */
static int tls_hostname_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > TLS_HOSTNAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* Build the certificate for key; NULL on failure. */
static X509 *tls_build_cert(EVP_PKEY *key, const char *hostname)
{
	X509 *x = X509_new();
	if (x == NULL)
		return NULL;
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof serial) != 1)
		goto fail;
	serial[0] &= 0x7f; /* positive */
	BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (bn == NULL)
		goto fail;
	ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (sn == NULL)
		goto fail;
	int ok = X509_set_serialNumber(x, sn);
	ASN1_INTEGER_free(sn);
	if (ok != 1 || X509_set_version(x, 2) != 1)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)YZ_TLS_SELFSIGNED_DAYS * 86400) == NULL)
		goto fail;
	if (X509_set_pubkey(x, key) != 1)
		goto fail;
	X509_NAME *name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)hostname, -1, -1, 0) != 1)
		goto fail;
	if (X509_set_issuer_name(x, name) != 1)
		goto fail;
	char san[TLS_HOSTNAME_MAX + 8];
	if (snprintf(san, sizeof san, "DNS:%s", hostname) >= (int)sizeof san)
		goto fail;
	if (tls_add_ext(x, NID_subject_alt_name, san) < 0 ||
	    tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    tls_add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    tls_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    tls_add_ext(x, NID_subject_key_identifier, "hash") < 0)
		goto fail;
	if (X509_sign(x, key, EVP_sha256()) == 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* Copy a memory BIO's content out; -1 if too large. */
static int tls_bio_take(BIO *bio, char **data_r, size_t *len_r)
{
	char *p = NULL;
	long n = BIO_get_mem_data(bio, &p);
	if (n <= 0 || n > TLS_PEM_MAX)
		return -1;
	*data_r = yz_memdup(p, (size_t)n);
	*len_r = (size_t)n;
	return 0;
}

/* Generate and write a self-signed certificate and its key. */
int yz_tls_make_selfsigned(const char *cert_file, const char *key_file, const char *hostname,
			   const char **error_r)
{
	if (!tls_hostname_ok(hostname)) {
		*error_r = tls_err("invalid hostname for certificate", hostname);
		return -1;
	}
	ERR_clear_error();
	int ret = -1;
	char *key_pem = NULL, *cert_pem = NULL;
	size_t key_len = 0, cert_len = 0;
	X509 *x = NULL;
	BIO *kb = NULL, *cb = NULL;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	if (key == NULL) {
		*error_r = tls_err("key generation", yz_tls_last_error(NULL));
		goto out;
	}
	x = tls_build_cert(key, hostname);
	if (x == NULL) {
		*error_r = tls_err("certificate", yz_tls_last_error("cannot build"));
		goto out;
	}
	kb = BIO_new(BIO_s_mem());
	cb = BIO_new(BIO_s_mem());
	if (kb == NULL || cb == NULL ||
	    PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cb, x) != 1 ||
	    tls_bio_take(kb, &key_pem, &key_len) < 0 ||
	    tls_bio_take(cb, &cert_pem, &cert_len) < 0) {
		*error_r = tls_err("PEM encoding", yz_tls_last_error(NULL));
		goto out;
	}
	if (yz_file_write_atomic(key_file, key_pem, key_len, 0600) < 0) {
		*error_r = tls_err(key_file, strerror(errno));
		goto out;
	}
	if (yz_file_write_atomic(cert_file, cert_pem, cert_len, 0644) < 0) {
		*error_r = tls_err(cert_file, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (key_pem != NULL) {
		yz_wipe(key_pem, key_len);
		free(key_pem);
	}
	free(cert_pem);
	if (kb != NULL) {
		/* The memory BIO held the private key in clear. */
		char *p = NULL;
		long n = BIO_get_mem_data(kb, &p);
		if (n > 0)
			yz_wipe(p, (size_t)n);
		BIO_free(kb);
	}
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}
