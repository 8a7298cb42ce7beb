/*
 * dir_password.c: make argon2id hashes; verify argon2 PHC strings, their
 * Dovecot-prefixed forms and the crypt(3) forms of legacy installs.
 *
 * Guarantees: argon2 strings are decoded here (not by libargon2's parser)
 * so that every cost, salt and digest length is checked against the bounds
 * of dir_password.h before any work, and the recomputed digest is compared
 * with CRYPTO_memcmp; crypt(3) results are compared the same way. Buffers
 * that held derived secrets are wiped.
 *
 * Must never: accept a plain-text, DES or MD5 "hash"; spend unbounded time
 * or memory on a stored hash; log.
 */
#include "store/directory/dir_password.h"

#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "lib/mem.h"

/* Salt and digest length bounds of stored argon2 hashes (bytes). */
#define PW_ARGON2_SALT_MIN 8
#define PW_ARGON2_SALT_MAX 64
#define PW_ARGON2_HASH_MIN 16
#define PW_ARGON2_HASH_MAX 64
/* Longest "{SCHEME}" prefix name. */
#define PW_SCHEME_NAME_MAX 32

enum pw_kind { PW_ARGON2ID, PW_ARGON2I, PW_SHACRYPT, PW_BCRYPT, PW_YESCRYPT };

/* A decoded stored argon2 hash. */
struct pw_argon2 {
	argon2_type type;
	uint32_t version, m, t, p;
	uint8_t salt[PW_ARGON2_SALT_MAX];
	size_t salt_len;
	uint8_t hash[PW_ARGON2_HASH_MAX];
	size_t hash_len;
};

/* Value of one base64 character (standard alphabet), -1 if none. */
static int pw_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Decode unpadded base64 of len chars into out (at most max bytes). */
static int pw_b64_decode(const char *s, size_t len, uint8_t *out, size_t max,
			 size_t *out_len_r)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = pw_b64_value(s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= max)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	if ((acc & ((1U << bits) - 1)) != 0)
		return -1;
	*out_len_r = n;
	return 0;
}

/* Parse a decimal uint32 at *pp up to a non-digit; advance *pp. */
static int pw_parse_u32(const char **pp, uint32_t *v_r)
{
	const char *p = *pp;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
		p++;
	}
	*pp = p;
	*v_r = (uint32_t)v;
	return 0;
}

/* Expect the literal lit at *pp; advance past it. */
static bool pw_expect(const char **pp, const char *lit)
{
	size_t n = strlen(lit);
	if (strncmp(*pp, lit, n) != 0)
		return false;
	*pp += n;
	return true;
}

/* Decode "$argon2id$v=19$m=..,t=..,p=..$salt$hash" with every bound checked. */
static int pw_argon2_decode(const char *s, struct pw_argon2 *a,
			    const char **error_r)
{
	const char *p = s;
	if (pw_expect(&p, "$argon2id$"))
		a->type = Argon2_id;
	else if (pw_expect(&p, "$argon2i$"))
		a->type = Argon2_i;
	else {
		*error_r = "malformed argon2 hash: only argon2id and argon2i are accepted";
		return -1;
	}
	a->version = ARGON2_VERSION_10;
	if (pw_expect(&p, "v=")) {
		if (pw_parse_u32(&p, &a->version) < 0 || !pw_expect(&p, "$") ||
		    (a->version != ARGON2_VERSION_10 &&
		     a->version != ARGON2_VERSION_13)) {
			*error_r = "malformed argon2 hash: bad version";
			return -1;
		}
	}
	if (!pw_expect(&p, "m=") || pw_parse_u32(&p, &a->m) < 0 ||
	    !pw_expect(&p, ",t=") || pw_parse_u32(&p, &a->t) < 0 ||
	    !pw_expect(&p, ",p=") || pw_parse_u32(&p, &a->p) < 0 ||
	    !pw_expect(&p, "$")) {
		*error_r = "malformed argon2 hash: expected m=,t=,p= parameters";
		return -1;
	}
	if (a->t < 1 || a->t > YZ_PASSWORD_ARGON2_T_MAX ||
	    a->p < 1 || a->p > YZ_PASSWORD_ARGON2_P_MAX ||
	    a->m < YZ_PASSWORD_ARGON2_M_KIB_MIN || a->m < 8 * a->p ||
	    a->m > YZ_PASSWORD_ARGON2_M_KIB_MAX) {
		*error_r = "argon2 hash: cost parameters out of bounds";
		return -1;
	}
	const char *dollar = strchr(p, '$');
	if (dollar == NULL ||
	    pw_b64_decode(p, (size_t)(dollar - p), a->salt, sizeof a->salt,
			  &a->salt_len) < 0 ||
	    a->salt_len < PW_ARGON2_SALT_MIN) {
		*error_r = "malformed argon2 hash: bad salt";
		return -1;
	}
	p = dollar + 1;
	if (pw_b64_decode(p, strlen(p), a->hash, sizeof a->hash,
			  &a->hash_len) < 0 ||
	    a->hash_len < PW_ARGON2_HASH_MIN) {
		*error_r = "malformed argon2 hash: bad digest";
		return -1;
	}
	return 0;
}

/* Check a "$6$[rounds=N$]salt$hash" or "$5$..." hash's rounds bound. */
static int pw_shacrypt_check(const char *s, const char **error_r)
{
	const char *p = s + 3;
	if (pw_expect(&p, "rounds=")) {
		uint32_t rounds;
		if (pw_parse_u32(&p, &rounds) < 0 || *p != '$') {
			*error_r = "malformed sha-crypt hash: bad rounds";
			return -1;
		}
		if (rounds > YZ_PASSWORD_SHACRYPT_ROUNDS_MAX) {
			*error_r = "sha-crypt hash: rounds out of bounds";
			return -1;
		}
	}
	if (strchr(p, '$') == NULL) {
		*error_r = "malformed sha-crypt hash: no digest";
		return -1;
	}
	return 0;
}

/* Check a "$2b$NN$<53 chars>" hash's shape and cost bound. */
static int pw_bcrypt_check(const char *s, const char **error_r)
{
	const char *p = s + 4;
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' ||
	    p[2] != '$' || strlen(p + 3) != 53) {
		*error_r = "malformed bcrypt hash";
		return -1;
	}
	int cost = (p[0] - '0') * 10 + (p[1] - '0');
	if (cost < 4 || cost > YZ_PASSWORD_BCRYPT_COST_MAX) {
		*error_r = "bcrypt hash: cost out of bounds";
		return -1;
	}
	return 0;
}

/* Classify a hash without prefix; check its bounds. */
static int pw_classify(const char *s, enum pw_kind *kind_r,
		       const char **error_r)
{
	if (strncmp(s, "$argon2id$", 10) == 0 || strncmp(s, "$argon2i$", 9) == 0) {
		struct pw_argon2 a;
		*kind_r = s[8] == 'd' ? PW_ARGON2ID : PW_ARGON2I;
		return pw_argon2_decode(s, &a, error_r);
	}
	if (strncmp(s, "$6$", 3) == 0 || strncmp(s, "$5$", 3) == 0) {
		*kind_r = PW_SHACRYPT;
		return pw_shacrypt_check(s, error_r);
	}
	if (strncmp(s, "$2b$", 4) == 0 || strncmp(s, "$2y$", 4) == 0 ||
	    strncmp(s, "$2a$", 4) == 0) {
		*kind_r = PW_BCRYPT;
		return pw_bcrypt_check(s, error_r);
	}
	if (strncmp(s, "$y$", 3) == 0 && strchr(s + 3, '$') != NULL) {
		*kind_r = PW_YESCRYPT;
		return 0;
	}
	*error_r = "unsupported password hash scheme";
	return -1;
}

/* Strip a Dovecot "{SCHEME}" prefix, checking it agrees with the hash. */
static int pw_strip_scheme(const char *stored, const char **hash_r,
			   const char **error_r)
{
	if (stored[0] != '{') {
		*hash_r = stored;
		return 0;
	}
	const char *end = strchr(stored, '}');
	if (end == NULL || end - stored - 1 > PW_SCHEME_NAME_MAX) {
		*error_r = "malformed password hash: unterminated {SCHEME}";
		return -1;
	}
	char name[PW_SCHEME_NAME_MAX + 1];
	size_t n = (size_t)(end - stored - 1);
	memcpy(name, stored + 1, n);
	name[n] = '\0';
	const char *h = end + 1;
	static const struct {
		const char *scheme;
		const char *prefixes[3];
	} schemes[] = {
		{ "ARGON2ID", { "$argon2id$", NULL, NULL } },
		{ "ARGON2I", { "$argon2i$", NULL, NULL } },
		{ "SHA512-CRYPT", { "$6$", NULL, NULL } },
		{ "SHA256-CRYPT", { "$5$", NULL, NULL } },
		{ "BLF-CRYPT", { "$2y$", "$2b$", "$2a$" } },
	};
	if (strcasecmp(name, "CRYPT") == 0) {
		*hash_r = h;
		return 0;
	}
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		if (strcasecmp(name, schemes[i].scheme) != 0)
			continue;
		for (size_t j = 0; j < 3 && schemes[i].prefixes[j] != NULL; j++) {
			const char *pre = schemes[i].prefixes[j];
			if (strncmp(h, pre, strlen(pre)) == 0) {
				*hash_r = h;
				return 0;
			}
		}
		*error_r = "malformed password hash: {SCHEME} does not match the hash";
		return -1;
	}
	*error_r = "unsupported password hash scheme";
	return -1;
}

/* Shared front of check and verify: bounds, prefix, classification. */
static int pw_prepare(const char *stored, const char **hash_r,
		      enum pw_kind *kind_r, const char **error_r)
{
	if (stored == NULL || stored[0] == '\0') {
		*error_r = "no password hash";
		return -1;
	}
	if (strnlen(stored, YZ_PASSWORD_HASH_MAX + 1) > YZ_PASSWORD_HASH_MAX) {
		*error_r = "password hash longer than 512 characters";
		return -1;
	}
	if (pw_strip_scheme(stored, hash_r, error_r) < 0)
		return -1;
	return pw_classify(*hash_r, kind_r, error_r);
}

/* Would verify() accept this stored hash? (nothing is hashed) */
int yz_password_hash_check(const char *stored_hash, const char **error_r)
{
	const char *h;
	enum pw_kind kind;
	return pw_prepare(stored_hash, &h, &kind, error_r);
}

/* Recompute an argon2 digest and compare it in constant time. */
static int pw_argon2_verify(const char *password, size_t pwlen, const char *h,
			    const char **error_r)
{
	struct pw_argon2 a;
	if (pw_argon2_decode(h, &a, error_r) < 0)
		return -1;
	uint8_t out[PW_ARGON2_HASH_MAX];
	argon2_context ctx = {
		.out = out,
		.outlen = (uint32_t)a.hash_len,
		.pwd = (uint8_t *)(uintptr_t)password,
		.pwdlen = (uint32_t)pwlen,
		.salt = a.salt,
		.saltlen = (uint32_t)a.salt_len,
		.t_cost = a.t,
		.m_cost = a.m,
		.lanes = a.p,
		.threads = 1, /* lanes computed in turn: same digest, no threads */
		.version = a.version,
		.flags = ARGON2_DEFAULT_FLAGS,
	};
	int rc = argon2_ctx(&ctx, a.type);
	if (rc != ARGON2_OK) {
		yz_wipe(out, sizeof out);
		*error_r = argon2_error_message(rc);
		return -1;
	}
	int match = CRYPTO_memcmp(out, a.hash, a.hash_len) == 0;
	yz_wipe(out, sizeof out);
	return match;
}

/* Run crypt_r and compare its result in constant time. */
static int pw_crypt_verify(const char *password, const char *h,
			   const char **error_r)
{
	struct crypt_data *cd = yz_calloc(1, sizeof *cd);
	const char *res = crypt_r(password, h, cd);
	int ret;
	size_t hlen = strlen(h);
	if (res == NULL || res[0] == '*') {
		*error_r = "malformed password hash: crypt(3) refused it";
		ret = -1;
	} else if (strlen(res) != hlen) {
		ret = 0;
	} else {
		ret = CRYPTO_memcmp(res, h, hlen) == 0;
	}
	yz_wipe(cd, sizeof *cd);
	free(cd);
	return ret;
}

/* Verify a password against a stored hash of any accepted form. */
int yz_password_verify(const char *password, const char *stored_hash,
		       const char **error_r)
{
	const char *h;
	enum pw_kind kind;
	if (pw_prepare(stored_hash, &h, &kind, error_r) < 0)
		return -1;
	if (password == NULL)
		return 0;
	size_t pwlen = strnlen(password, YZ_PASSWORD_MAX + 1);
	if (pwlen > YZ_PASSWORD_MAX)
		return 0;
	if (kind == PW_ARGON2ID || kind == PW_ARGON2I)
		return pw_argon2_verify(password, pwlen, h, error_r);
	return pw_crypt_verify(password, h, error_r);
}

/* Make a new argon2id PHC hash with a random salt. */
int yz_password_hash(const char *password, uint32_t t_cost,
		     uint32_t m_cost_kib, uint32_t parallelism, char **hash_r)
{
	if (password == NULL ||
	    strnlen(password, YZ_PASSWORD_MAX + 1) > YZ_PASSWORD_MAX)
		return -1;
	if (t_cost < 1 || t_cost > YZ_PASSWORD_ARGON2_T_MAX ||
	    parallelism < 1 || parallelism > YZ_PASSWORD_ARGON2_P_MAX ||
	    m_cost_kib < YZ_PASSWORD_ARGON2_M_KIB_MIN ||
	    m_cost_kib < 8 * parallelism ||
	    m_cost_kib > YZ_PASSWORD_ARGON2_M_KIB_MAX)
		return -1;
	uint8_t salt[YZ_PASSWORD_ARGON2_SALT_LEN];
	size_t got = 0;
	while (got < sizeof salt) {
		ssize_t n = getrandom(salt + got, sizeof salt - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	size_t enclen = argon2_encodedlen(t_cost, m_cost_kib, parallelism,
					  sizeof salt,
					  YZ_PASSWORD_ARGON2_HASH_LEN, Argon2_id);
	char *enc = yz_malloc(enclen);
	int rc = argon2id_hash_encoded(t_cost, m_cost_kib, parallelism,
				       password, strlen(password), salt,
				       sizeof salt, YZ_PASSWORD_ARGON2_HASH_LEN,
				       enc, enclen);
	if (rc != ARGON2_OK) {
		free(enc);
		return -1;
	}
	*hash_r = enc;
	return 0;
}
