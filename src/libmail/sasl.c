/*
 * sasl.c: PLAIN and LOGIN message decoding (RFC 4616, LOGIN draft).
 * Guarantees: intermediate decoded copies are wiped before return; results
 * are bounded, NUL-free UTF-8. Must never log or keep credentials.
 */
#include "libmail/sasl.h"

#include <string.h>

#include "lib/mem.h"
#include "libmail/base64.h"
#include "libmail/utf8.h"

/* Longest PLAIN message: three fields and two NULs. */
#define SASL_PLAIN_MSG_MAX (3 * SASL_FIELD_MAX + 2)

/* Copy a field after checking its bounds; empty allowed only if may_empty. */
static int copy_field(const char *p, size_t len, bool may_empty, char *dst,
		      const char **error_r)
{
	if (len == 0 && !may_empty) {
		*error_r = "Empty SASL field";
		return -1;
	}
	if (len > SASL_FIELD_MAX) {
		*error_r = "SASL field too long";
		return -1;
	}
	if (!mail_utf8_valid(p, len)) {
		*error_r = "SASL field is not UTF-8";
		return -1;
	}
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

/* Split a decoded PLAIN message. */
int sasl_plain_decode(const char *msg, size_t len, struct sasl_plain *r,
		      const char **error_r)
{
	memset(r, 0, sizeof *r);
	const char *n1 = memchr(msg, '\0', len);
	if (n1 == NULL) {
		*error_r = "Malformed PLAIN message";
		return -1;
	}
	size_t rest = len - (size_t)(n1 + 1 - msg);
	const char *n2 = memchr(n1 + 1, '\0', rest);
	if (n2 == NULL) {
		*error_r = "Malformed PLAIN message";
		return -1;
	}
	const char *pw = n2 + 1;
	size_t pwlen = len - (size_t)(pw - msg);
	if (memchr(pw, '\0', pwlen) != NULL) {
		*error_r = "Malformed PLAIN message";
		return -1;
	}
	if (copy_field(msg, (size_t)(n1 - msg), true, r->authzid, error_r) < 0 ||
	    copy_field(n1 + 1, (size_t)(n2 - n1 - 1), false, r->authcid, error_r) < 0 ||
	    copy_field(pw, pwlen, false, r->passwd, error_r) < 0) {
		sasl_plain_wipe(r);
		return -1;
	}
	return 0;
}

/* Decode base64 then split. */
int sasl_plain_decode_b64(const char *b64, size_t len, struct sasl_plain *r,
			  const char **error_r)
{
	struct yz_buf b;
	int ret;

	memset(r, 0, sizeof *r);
	if (len == 1 && b64[0] == '=') {
		*error_r = "Malformed PLAIN message";
		return -1;
	}
	/* +2: base64_decode reserves for the unpadded maximum. */
	yz_buf_init(&b, SASL_PLAIN_MSG_MAX + 2);
	if (base64_decode(b64, len, &b, error_r) < 0)
		ret = -1;
	else
		ret = sasl_plain_decode(yz_buf_data(&b), yz_buf_len(&b), r, error_r);
	yz_buf_wipe(&b);
	yz_buf_free(&b);
	return ret;
}

/* Client-side PLAIN response. */
int sasl_plain_encode(const char *authzid, const char *authcid, const char *passwd,
		      struct yz_buf *out)
{
	char msg[SASL_PLAIN_MSG_MAX];
	size_t zl = authzid != NULL ? strlen(authzid) : 0;
	size_t cl = strlen(authcid), pl = strlen(passwd);
	int ret;

	if (zl > SASL_FIELD_MAX || cl == 0 || cl > SASL_FIELD_MAX || pl == 0 ||
	    pl > SASL_FIELD_MAX)
		return -1;
	if (zl > 0)
		memcpy(msg, authzid, zl);
	msg[zl] = '\0';
	memcpy(msg + zl + 1, authcid, cl);
	msg[zl + 1 + cl] = '\0';
	memcpy(msg + zl + 2 + cl, passwd, pl);
	ret = base64_encode(msg, zl + cl + pl + 2, out);
	yz_wipe(msg, sizeof msg);
	return ret;
}

/* Wipe a decoded PLAIN message. */
void sasl_plain_wipe(struct sasl_plain *r)
{
	yz_wipe(r, sizeof *r);
}

/* LOGIN: one base64 field. */
int sasl_login_decode(const char *b64, size_t len, char dst[SASL_FIELD_MAX + 1],
		      const char **error_r)
{
	struct yz_buf b;
	int ret = -1;

	dst[0] = '\0';
	yz_buf_init(&b, SASL_FIELD_MAX);
	if (base64_decode(b64, len, &b, error_r) < 0) {
		if (base64_decoded_max(len) > SASL_FIELD_MAX)
			*error_r = "SASL field too long";
	} else if (memchr(yz_buf_data(&b), '\0', yz_buf_len(&b)) != NULL) {
		*error_r = "NUL in SASL field";
	} else {
		ret = copy_field(yz_buf_data(&b), yz_buf_len(&b), false, dst, error_r);
	}
	yz_buf_wipe(&b);
	yz_buf_free(&b);
	return ret;
}
