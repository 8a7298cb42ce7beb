/*
 * sasl.h: the message syntax of the SASL PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login) mechanisms, after base64 decoding. The
 * exchange itself (challenges, attempts) belongs to the server role.
 *
 * Guarantees: every field is bounded by SASL_FIELD_MAX, is valid UTF-8 and
 * holds no NUL; the caller wipes the result with sasl_plain_wipe(). Must
 * never: keep a copy of a password anywhere but the caller's struct, or
 * accept an empty authcid or password.
 */
#ifndef YZ_LIBMAIL_SASL_H
#define YZ_LIBMAIL_SASL_H

#include <stddef.h>

#include "lib/buf.h"

/* RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets. */
#define SASL_FIELD_MAX 255

/* The LOGIN mechanism's challenges: base64 of "Username:" and "Password:". */
#define SASL_LOGIN_USERNAME_CHALLENGE "VXNlcm5hbWU6"
#define SASL_LOGIN_PASSWORD_CHALLENGE "UGFzc3dvcmQ6"

struct sasl_plain {
	char authzid[SASL_FIELD_MAX + 1]; /* "" when absent: act as authcid */
	char authcid[SASL_FIELD_MAX + 1];
	char passwd[SASL_FIELD_MAX + 1];
};

/* Split a decoded PLAIN message "[authzid] NUL authcid NUL passwd". 0, or -1
 * with *error_r (result wiped). */
int sasl_plain_decode(const char *msg, size_t len, struct sasl_plain *r,
		      const char **error_r);
/* Base64 PLAIN response: decode b64 (as sent by the client; "=" is the
 * empty response) then split it. */
int sasl_plain_decode_b64(const char *b64, size_t len, struct sasl_plain *r,
			  const char **error_r);
/* Client side: append base64("authzid\0authcid\0passwd") to out (authzid may
 * be NULL or ""). -1 if a field is too long, has a NUL, or out is full. */
int sasl_plain_encode(const char *authzid, const char *authcid, const char *passwd,
		      struct yz_buf *out);
/* Wipe a decoded PLAIN message. */
void sasl_plain_wipe(struct sasl_plain *r);
/* LOGIN: decode one base64 response (user name or password) into dst
 * (SASL_FIELD_MAX + 1 bytes), rejecting empty, NUL, invalid UTF-8 and
 * over-long values. */
int sasl_login_decode(const char *b64, size_t len, char dst[SASL_FIELD_MAX + 1],
		      const char **error_r);

#endif
