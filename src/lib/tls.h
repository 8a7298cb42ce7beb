/*
 * tls.h: TLS contexts (OpenSSL 3) for every protocol, and the self-signed
 * certificate that `yizhan init` makes so that TLS works out of the box.
 *
 * Guarantees: server contexts speak TLS 1.2 at least, with BCP 195 ciphers
 * only (ECDHE key exchange + AEAD for TLS 1.2; TLS 1.3's suites are all
 * AEAD), no compression, no renegotiation, session tickets on, and
 * SSL_MODE_RELEASE_BUFFERS so an idle session holds no record buffers.
 * A peer closing without close_notify is a plain EOF (mail protocols have
 * their own end markers).
 *
 * Never: client contexts do not verify the peer by default (opportunistic
 * TLS for outbound SMTP, RFC 7435); callers that need verification (DANE,
 * MTA-STS) must add it. The key file is never written with a mode wider
 * than 0600.
 *
 * Error strings (error_r) point into a static buffer of this module that the
 * next failing call overwrites: copy them if they must live longer.
 */
#ifndef YZ_TLS_H
#define YZ_TLS_H

struct yz_tls_ctx;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* A server context with the certificate chain and key (PEM files). */
struct yz_tls_ctx *yz_tls_server_ctx_new(const char *cert_file, const char *key_file,
					 const char **error_r);
/* A client context: opportunistic, no verification by default. */
struct yz_tls_ctx *yz_tls_client_ctx_new(const char **error_r);
/* Free a context (sessions made from it keep their own reference); NULL-safe,
 * sets *ctx = NULL. */
void yz_tls_ctx_free(struct yz_tls_ctx **ctx);
/* The OpenSSL context, for io.c and for callers that add settings. */
struct ssl_ctx_st *yz_tls_ctx_ssl(struct yz_tls_ctx *ctx);

/* Lifetime of a generated self-signed certificate. */
#define YZ_TLS_SELFSIGNED_DAYS 3650

/* Generate a self-signed EC P-256 certificate for hostname (CN and DNS
 * subjectAltName), written atomically: key_file with mode 0600 first, then
 * cert_file with mode 0644. 0, or -1 + error_r. */
int yz_tls_make_selfsigned(const char *cert_file, const char *key_file, const char *hostname,
			   const char **error_r);

/* The last OpenSSL error as text, or fallback when the queue is empty; the
 * queue is cleared. Points into a static buffer. */
const char *yz_tls_last_error(const char *fallback);

#endif
