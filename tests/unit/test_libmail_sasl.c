/*
 * test_libmail_sasl.c: unit tests for SASL PLAIN and LOGIN message decoding
 * (libmail/sasl.h): RFC 4616 examples, NUL rules, empty fields, 255/256
 * limits, UTF-8, base64 errors, client encoding round trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "libmail/base64.h"
#include "libmail/sasl.h"

static void test_plain(void **state)
{
	struct sasl_plain p;
	const char *err;
	assert_int_equal(sasl_plain_decode("\0tim\0tanstaaftanstaaf", 21, &p, &err), 0);
	assert_string_equal(p.authzid, "");
	assert_string_equal(p.authcid, "tim");
	assert_string_equal(p.passwd, "tanstaaftanstaaf");
	assert_int_equal(sasl_plain_decode("Ursel\0Kurt\0xipj3plmq", 20, &p, &err), 0);
	assert_string_equal(p.authzid, "Ursel");
	assert_string_equal(p.authcid, "Kurt");
	assert_int_equal(sasl_plain_decode("\0\xc3\xa9\0p", 5, &p, &err), 0);
	const struct {
		const char *m;
		size_t len;
	} bad[] = {
		{ "tim", 3 },          { "\0tim", 4 },         { "\0tim\0", 5 },
		{ "\0\0pw", 4 },       { "a\0b\0c\0d", 7 },    { "", 0 },
		{ "\0tim\0p\0", 7 },   { "\0\xc3\0pw", 5 },    { "\0u\0\xff", 4 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (sasl_plain_decode(bad[i].m, bad[i].len, &p, &err) != -1)
			fail_msg("accepted case %zu", i);
		assert_string_equal(p.passwd, "");
	}
	sasl_plain_wipe(&p);
}

static void test_plain_limits(void **state)
{
	char msg[1000];
	struct sasl_plain p;
	const char *err;
	for (size_t field = 0; field < 3; field++) {
		for (size_t n = 255; n <= 256; n++) {
			size_t len = 0;
			for (size_t f = 0; f < 3; f++) {
				size_t l = f == field ? n : 3;
				memset(msg + len, 'a' + (int)f, l);
				len += l;
				if (f < 2)
					msg[len++] = '\0';
			}
			assert_int_equal(sasl_plain_decode(msg, len, &p, &err), n == 255 ? 0 : -1);
		}
	}
	sasl_plain_wipe(&p);
}

static void test_plain_b64(void **state)
{
	struct sasl_plain p;
	struct yz_buf b;
	const char *err;
	yz_buf_init(&b, 0);
	assert_int_equal(sasl_plain_encode(NULL, "user@example.org", "s3cret", &b), 0);
	assert_int_equal(sasl_plain_decode_b64(yz_buf_data(&b), yz_buf_len(&b), &p, &err), 0);
	assert_string_equal(p.authcid, "user@example.org");
	assert_string_equal(p.passwd, "s3cret");
	yz_buf_reset(&b);
	assert_int_equal(sasl_plain_encode("admin", "u", "p", &b), 0);
	assert_int_equal(sasl_plain_decode_b64(yz_buf_data(&b), yz_buf_len(&b), &p, &err), 0);
	assert_string_equal(p.authzid, "admin");
	assert_int_equal(sasl_plain_decode_b64("=", 1, &p, &err), -1);
	assert_int_equal(sasl_plain_decode_b64("AHRpbQB0YW5zdGFhZg", 18, &p, &err), -1);
	assert_int_equal(sasl_plain_decode_b64("AHRpbQB0YW5zdGFhZg==", 20, &p, &err), 0);
	assert_int_equal(sasl_plain_encode(NULL, "", "p", &b), -1);
	assert_int_equal(sasl_plain_encode(NULL, "u", "", &b), -1);
	/* three fields of 255: the longest valid message */
	char f[256];
	memset(f, 'x', 255);
	f[255] = '\0';
	yz_buf_reset(&b);
	assert_int_equal(sasl_plain_encode(f, f, f, &b), 0);
	assert_int_equal(sasl_plain_decode_b64(yz_buf_data(&b), yz_buf_len(&b), &p, &err), 0);
	assert_int_equal(strlen(p.passwd), 255);
	sasl_plain_wipe(&p);
	yz_buf_free(&b);
}

static void test_login(void **state)
{
	char out[SASL_FIELD_MAX + 1];
	struct yz_buf b;
	const char *err;
	assert_int_equal(sasl_login_decode("dXNlcg==", 8, out, &err), 0);
	assert_string_equal(out, "user");
	assert_int_equal(sasl_login_decode("", 0, out, &err), -1);
	assert_int_equal(sasl_login_decode("dQB4", 4, out, &err), -1); /* "u\0x" */
	assert_int_equal(sasl_login_decode("dXNlcg", 6, out, &err), -1);
	char f[300];
	yz_buf_init(&b, 0);
	memset(f, 'u', 255);
	assert_int_equal(base64_encode(f, 255, &b), 0);
	assert_int_equal(sasl_login_decode(yz_buf_data(&b), yz_buf_len(&b), out, &err), 0);
	yz_buf_reset(&b);
	memset(f, 'u', 256);
	assert_int_equal(base64_encode(f, 256, &b), 0);
	assert_int_equal(sasl_login_decode(yz_buf_data(&b), yz_buf_len(&b), out, &err), -1);
	yz_buf_free(&b);
	assert_string_equal(SASL_LOGIN_USERNAME_CHALLENGE, "VXNlcm5hbWU6");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_plain_limits),
		cmocka_unit_test(test_plain_b64),
		cmocka_unit_test(test_login),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
