/*
 * test_libmail_xtext.c: unit tests for RFC 3461 xtext (libmail/xtext.h):
 * decode, encode, round trip, bad escapes, forbidden characters, bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "libmail/xtext.h"

static void test_decode(void **state)
{
	char dst[16];
	size_t n;
	const char *err;
	assert_int_equal(xtext_decode("a+2Bb+3Dc", 9, dst, sizeof dst, &n, &err), 0);
	assert_string_equal(dst, "a+b=c");
	assert_int_equal(n, 5);
	assert_int_equal(xtext_decode("+2b", 3, dst, sizeof dst, &n, &err), 0);
	assert_string_equal(dst, "+");
	assert_int_equal(xtext_decode("", 0, dst, sizeof dst, &n, &err), 0);
	assert_string_equal(dst, "");
	const char *bad[] = { "a+", "a+2", "a+2G", "a=b", "a b", "+00", "a\x80", "a\x7f" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (xtext_decode(bad[i], strlen(bad[i]), dst, sizeof dst, &n, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
	/* bound: 15 characters fit a 16-byte buffer, 16 do not */
	assert_int_equal(xtext_decode("123456789012345", 15, dst, sizeof dst, &n, &err), 0);
	assert_int_equal(xtext_decode("1234567890123456", 16, dst, sizeof dst, &n, &err), -1);
	assert_int_equal(xtext_decode("12345678901234+41", 17, dst, sizeof dst, &n, &err), 0);
	/* nothing past len */
	assert_int_equal(xtext_decode("ab+4", 2, dst, sizeof dst, &n, &err), 0);
	assert_string_equal(dst, "ab");
}

static void test_encode(void **state)
{
	struct yz_buf b;
	char dst[64];
	size_t n;
	const char *err;
	yz_buf_init(&b, 0);
	assert_int_equal(xtext_encode("a+b=c d\x01\xff", 9, &b), 0);
	assert_string_equal(yz_buf_cstr(&b), "a+2Bb+3Dc+20d+01+FF");
	assert_int_equal(xtext_decode(yz_buf_data(&b), yz_buf_len(&b), dst, sizeof dst, &n, &err),
			 0);
	assert_int_equal(n, 9);
	assert_memory_equal(dst, "a+b=c d\x01\xff", 9);
	yz_buf_free(&b);
	yz_buf_init(&b, 4);
	assert_int_equal(xtext_encode("ab+", 3, &b), -1);
	assert_int_equal(yz_buf_len(&b), 0);
	yz_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
