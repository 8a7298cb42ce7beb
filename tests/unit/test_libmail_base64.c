/*
 * test_libmail_base64.c: unit tests for strict base64 (libmail/base64.h):
 * RFC 4648 test vectors, bad characters, bad padding, non-canonical bits,
 * output cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "libmail/base64.h"

static const char *const vec[][2] = {
	{ "", "" },         { "f", "Zg==" },         { "fo", "Zm8=" },
	{ "foo", "Zm9v" },  { "foob", "Zm9vYg==" },  { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void test_vectors(void **state)
{
	struct yz_buf b;
	const char *err;
	yz_buf_init(&b, 0);
	for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		yz_buf_reset(&b);
		assert_int_equal(base64_encode(vec[i][0], strlen(vec[i][0]), &b), 0);
		assert_string_equal(yz_buf_cstr(&b), vec[i][1]);
		assert_int_equal(base64_encoded_len(strlen(vec[i][0])), strlen(vec[i][1]));
		yz_buf_reset(&b);
		assert_int_equal(base64_decode(vec[i][1], strlen(vec[i][1]), &b, &err), 0);
		assert_string_equal(yz_buf_cstr(&b), vec[i][0]);
	}
	/* all byte values round-trip */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	struct yz_buf e;
	yz_buf_init(&e, 0);
	yz_buf_reset(&b);
	assert_int_equal(base64_encode(all, sizeof all, &e), 0);
	assert_int_equal(base64_decode(yz_buf_data(&e), yz_buf_len(&e), &b, &err), 0);
	assert_int_equal(yz_buf_len(&b), 256);
	assert_memory_equal(yz_buf_data(&b), all, 256);
	yz_buf_free(&e);
	yz_buf_free(&b);
}

static void test_strict(void **state)
{
	const char *bad[] = { "Zg=", "Zg", "Z===", "====", "Zg==Zg==", "Zm9v YmFy", "Zm9\nv",
			      "Zh==", "Zm9=", "Zm!v", "=Zm9", "Zg=a", "Zm9vYg=\x80" };
	struct yz_buf b;
	const char *err;
	yz_buf_init(&b, 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		if (base64_decode(bad[i], strlen(bad[i]), &b, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(err);
		assert_int_equal(yz_buf_len(&b), 0);
	}
	yz_buf_free(&b);
}

static void test_cap(void **state)
{
	struct yz_buf b;
	const char *err;
	yz_buf_init(&b, 3);
	assert_int_equal(base64_decode("Zm9v", 4, &b, &err), 0);
	yz_buf_reset(&b);
	assert_int_equal(base64_decode("Zm9vYg==", 8, &b, &err), -1);
	assert_int_equal(base64_encode("ab", 2, &b), -1);
	assert_int_equal(yz_buf_len(&b), 0);
	yz_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
