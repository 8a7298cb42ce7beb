/*
 * test_store_password.c: password hashes: argon2id creation and round trip,
 * verification of every accepted stored form against known vectors
 * (argon2 reference KATs, `openssl passwd -6/-5`, bcrypt and yescrypt
 * from libxcrypt's crypt_r), wrong passwords, malformed and out-of-bounds
 * hashes, and the length limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/directory/dir_password.h"

/* Reference KATs of libargon2 (password "password", salt "somesalt"). */
static const char ARGON2ID_KAT[] =
	"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
static const char ARGON2ID_P2_KAT[] =
	"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc";
static const char ARGON2I_KAT[] =
	"$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8";

/* `openssl passwd -6 -salt saltsaltsalt 'Secret pass!'` (and -5). */
static const char PASS[] = "Secret pass!";
static const char SHA512_VEC[] =
	"$6$saltsaltsalt$6RPBRqqXcegoJGiWE5syf3lm3eOCK2r4.V89uuw3uHPRClYr0wPLMSvbuOWthyuJ1OMEf01UFkoDcSXJvofgE/";
static const char SHA256_VEC[] =
	"$5$saltsaltsalt$2e.P0IaVs8G52XGVuMHIcm0Mn3mFwZQ6XahnGU7UK6A";
static const char SHA512_ROUNDS_VEC[] =
	"$6$rounds=5001$abcdefgh$X.iBYKuCsXoQ9ciy9wvJtdNjQMJdl33.tRp.0D8rr2o1/gSq1vKr46bK8DuCDi5lkchKl3zeKUQjTIm4VlyMw0";
/* crypt_r with crypt_gensalt_rn("$2b$", 5, ...) and ("$y$", 0, ...). */
static const char BCRYPT_VEC[] =
	"$2b$05$KBCwKxOzLha2MUDgW0PjXeeDLVZKrCKRp1D/g1azOutf67bCS1czC";
static const char YESCRYPT_VEC[] =
	"$y$j9T$k2XAnEHBqQ1Ct2aMXFKNa/$Qg33fqiGgRMoQag61iOLOq7NtBcDGkoj4/q9jtZMWC5";

/* Verify and expect a result. */
static void expect_verify(const char *pw, const char *hash, int want)
{
	const char *err = NULL;
	int r = yz_password_verify(pw, hash, &err);
	if (r != want)
		fail_msg("verify(%s, %s) = %d (%s), want %d", pw, hash, r,
			 err != NULL ? err : "-", want);
}

/* "{SCHEME}" + hash into buf. */
static const char *with_prefix(char *buf, size_t size, const char *scheme,
			       const char *hash)
{
	int n = snprintf(buf, size, "{%s}%s", scheme, hash);
	assert_true(n > 0 && (size_t)n < size);
	return buf;
}

static void test_argon2_kats(void **state)
{
	(void)state;
	expect_verify("password", ARGON2ID_KAT, 1);
	expect_verify("password", ARGON2ID_P2_KAT, 1);
	expect_verify("password", ARGON2I_KAT, 1);
	expect_verify("Password", ARGON2ID_KAT, 0);
	expect_verify("password ", ARGON2I_KAT, 0);
	expect_verify("", ARGON2ID_KAT, 0);
	char buf[256];
	expect_verify("password", with_prefix(buf, sizeof buf, "ARGON2ID", ARGON2ID_KAT), 1);
	expect_verify("password", with_prefix(buf, sizeof buf, "argon2id", ARGON2ID_KAT), 1);
	expect_verify("wrong", with_prefix(buf, sizeof buf, "ARGON2ID", ARGON2ID_KAT), 0);
	expect_verify("password", with_prefix(buf, sizeof buf, "ARGON2I", ARGON2I_KAT), 1);
	expect_verify("password", with_prefix(buf, sizeof buf, "CRYPT", ARGON2ID_KAT), 1);
	/* A scheme that disagrees with the hash is malformed. */
	expect_verify("password", with_prefix(buf, sizeof buf, "ARGON2I", ARGON2ID_KAT), -1);
	/* A flipped digest bit is a mismatch, not an error. */
	char flipped[sizeof ARGON2ID_KAT];
	memcpy(flipped, ARGON2ID_KAT, sizeof flipped);
	flipped[sizeof flipped - 2] = flipped[sizeof flipped - 2] == 'A' ? 'B' : 'A';
	expect_verify("password", flipped, 0);
}

static void test_crypt_vectors(void **state)
{
	(void)state;
	char buf[256];
	expect_verify(PASS, SHA512_VEC, 1);
	expect_verify("secret pass!", SHA512_VEC, 0);
	expect_verify(PASS, with_prefix(buf, sizeof buf, "SHA512-CRYPT", SHA512_VEC), 1);
	expect_verify("nope", with_prefix(buf, sizeof buf, "SHA512-CRYPT", SHA512_VEC), 0);
	expect_verify(PASS, with_prefix(buf, sizeof buf, "CRYPT", SHA512_VEC), 1);
	expect_verify(PASS, SHA512_ROUNDS_VEC, 1);
	expect_verify(PASS, SHA256_VEC, 1);
	expect_verify(PASS, with_prefix(buf, sizeof buf, "SHA256-CRYPT", SHA256_VEC), 1);
	expect_verify("x", SHA256_VEC, 0);
	expect_verify(PASS, BCRYPT_VEC, 1);
	expect_verify("Secret pass", BCRYPT_VEC, 0);
	expect_verify(PASS, with_prefix(buf, sizeof buf, "BLF-CRYPT", BCRYPT_VEC), 1);
	/* $2y$ is the same algorithm as $2b$ (Dovecot writes $2y$). */
	char y[sizeof BCRYPT_VEC];
	memcpy(y, BCRYPT_VEC, sizeof y);
	y[2] = 'y';
	expect_verify(PASS, with_prefix(buf, sizeof buf, "BLF-CRYPT", y), 1);
	expect_verify(PASS, y, 1);
	expect_verify(PASS, YESCRYPT_VEC, 1);
	expect_verify("wrong", YESCRYPT_VEC, 0);
	expect_verify(PASS, with_prefix(buf, sizeof buf, "CRYPT", YESCRYPT_VEC), 1);
	/* {SHA512-CRYPT} in front of a bcrypt hash is inconsistent. */
	expect_verify(PASS, with_prefix(buf, sizeof buf, "SHA512-CRYPT", BCRYPT_VEC), -1);
	/* A tampered sha-crypt digest mismatches. */
	char t[sizeof SHA512_VEC];
	memcpy(t, SHA512_VEC, sizeof t);
	t[20] = t[20] == 'a' ? 'b' : 'a';
	expect_verify(PASS, t, 0);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"plaintext",
		"{PLAIN}secret",
		"{CLEARTEXT}secret",
		"{MD5-CRYPT}$1$abc$def",
		"$1$abcdefgh$abcdefghijklmnopqrstuv", /* MD5-crypt refused */
		"abJnggxhB/yWI",                      /* DES refused */
		"{SHA512-CRYPT",                      /* unterminated */
		"{AVERYLONGSCHEMENAMETHATGOESONANDONANDON}x",
		"$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ",
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$",
		"$argon2id$v=19$m=256,t=2,p=1$$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=18$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=65,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=4194305,t=1,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=99999999999,t=1,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=2,p=1$c29t*XNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR",
		"$6$rounds=2000000$abc$JHm4bCbMqFD4upIgV4ehgWZ2JjjI9yAAAtoWE6BfRbWCed0FJ5v2Lt/XP0E13wVMnXNF0VFaXI7dYZz2xymA5/",
		"$6$rounds=$abc$x",
		"$6$nodigest",
		"$2b$31$KBCwKxOzLha2MUDgW0PjXeeDLVZKrCKRp1D/g1azOutf67bCS1czC",
		"$2b$05$short",
		"$2b$5$KBCwKxOzLha2MUDgW0PjXeeDLVZKrCKRp1D/g1azOutf67bCS1czC",
		"$y$nodollar",
		"$7$whatever$x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *err = NULL;
		int r = yz_password_verify("password", bad[i], &err);
		if (r != -1 || err == NULL)
			fail_msg("hash %zu (%s): got %d", i, bad[i], r);
		err = NULL;
		assert_int_equal(yz_password_hash_check(bad[i], &err), -1);
		assert_non_null(err);
	}
	const char *err = NULL;
	assert_int_equal(yz_password_verify("x", NULL, &err), -1);
	/* A hash at the length limit is examined; one byte over is refused. */
	char longhash[YZ_PASSWORD_HASH_MAX + 2];
	memset(longhash, 'a', sizeof longhash);
	memcpy(longhash, "$6$", 3);
	longhash[YZ_PASSWORD_HASH_MAX + 1] = '\0';
	assert_int_equal(yz_password_verify("x", longhash, &err), -1);
	assert_non_null(strstr(err, "longer"));
	longhash[YZ_PASSWORD_HASH_MAX] = '\0';
	longhash[10] = '$';
	err = NULL;
	assert_int_equal(yz_password_hash_check(longhash, &err), 0);
}

static void test_hash_roundtrip(void **state)
{
	(void)state;
	char *h = NULL, *h2 = NULL;
	assert_int_equal(yz_password_hash("correct horse", 1, 1024, 1, &h), 0);
	assert_non_null(strstr(h, "$argon2id$v=19$m=1024,t=1,p=1$"));
	expect_verify("correct horse", h, 1);
	expect_verify("correct horsE", h, 0);
	const char *err;
	assert_int_equal(yz_password_hash_check(h, &err), 0);
	/* Two hashes of one password differ (random salt). */
	assert_int_equal(yz_password_hash("correct horse", 1, 1024, 1, &h2), 0);
	assert_string_not_equal(h, h2);
	expect_verify("correct horse", h2, 1);
	free(h);
	free(h2);
	/* Parallelism 2. */
	assert_int_equal(yz_password_hash("p", 1, 64, 2, &h), 0);
	expect_verify("p", h, 1);
	free(h);
	h = NULL;
	/* Out-of-bounds costs are refused. */
	assert_int_equal(yz_password_hash("p", 0, 1024, 1, &h), -1);
	assert_int_equal(yz_password_hash("p", 1, 4, 1, &h), -1);
	assert_int_equal(yz_password_hash("p", 1, 1024, 0, &h), -1);
	assert_int_equal(yz_password_hash("p", YZ_PASSWORD_ARGON2_T_MAX + 1, 1024, 1, &h), -1);
	assert_int_equal(yz_password_hash("p", 1, YZ_PASSWORD_ARGON2_M_KIB_MAX + 1, 1, &h), -1);
	assert_int_equal(yz_password_hash(NULL, 1, 1024, 1, &h), -1);
	assert_null(h);
}

static void test_password_length(void **state)
{
	(void)state;
	char pw[YZ_PASSWORD_MAX + 2];
	memset(pw, 'p', sizeof pw);
	pw[YZ_PASSWORD_MAX] = '\0'; /* at the limit */
	char *h = NULL;
	assert_int_equal(yz_password_hash(pw, 1, 64, 1, &h), 0);
	expect_verify(pw, h, 1);
	pw[YZ_PASSWORD_MAX] = 'p'; /* one over */
	pw[YZ_PASSWORD_MAX + 1] = '\0';
	expect_verify(pw, h, 0);
	char *h2 = NULL;
	assert_int_equal(yz_password_hash(pw, 1, 64, 1, &h2), -1);
	assert_null(h2);
	free(h);
	/* A NULL password never matches. */
	expect_verify(NULL, ARGON2ID_KAT, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argon2_kats),
		cmocka_unit_test(test_crypt_vectors),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_hash_roundtrip),
		cmocka_unit_test(test_password_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
