/*
 * test_libmail_date.c: unit tests for RFC 5322 dates (libmail/date.h) and
 * the Message-ID generator (libmail/msgid.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libmail/date.h"
#include "libmail/msgid.h"

static void test_date_utc(void **state)
{
	char s[MAIL_DATE_MAX];
	/* 2026-11-28 22:50:34 UTC */
	assert_int_equal(mail_date_format((time_t)1795906234, true, s, sizeof s), 0);
	assert_string_equal(s, "Sat, 28 Nov 2026 22:50:34 +0000");
	assert_int_equal(mail_date_format(0, true, s, sizeof s), 0);
	assert_string_equal(s, "Thu, 1 Jan 1970 00:00:00 +0000");
	/* too small a buffer: 31 characters need 32 bytes */
	assert_int_equal(mail_date_format((time_t)1795906234, true, s, 31), -1);
	assert_int_equal(mail_date_format((time_t)1795906234, true, s, 32), 0);
}

static void test_date_local(void **state)
{
	char s[MAIL_DATE_MAX];
	/* POSIX TZ strings: no tzdata needed. */
	setenv("TZ", "XST-5:30", 1);
	tzset();
	assert_int_equal(mail_date_format((time_t)1795906234, false, s, sizeof s), 0);
	assert_string_equal(s, "Sun, 29 Nov 2026 04:20:34 +0530");
	setenv("TZ", "YST3:30", 1);
	tzset();
	assert_int_equal(mail_date_format(0, false, s, sizeof s), 0);
	assert_string_equal(s, "Wed, 31 Dec 1969 20:30:00 -0330");
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(mail_date_now(s, sizeof s), 0);
	assert_true(strlen(s) >= 30);
	assert_string_equal(s + strlen(s) - 5, "+0000");
}

static void test_msgid(void **state)
{
	struct yz_buf b;
	const char *err;
	yz_buf_init(&b, 0);
	assert_int_equal(mail_msgid_format("20261128225034.4F2A1B", "mx.example.org", &b, &err), 0);
	assert_string_equal(yz_buf_cstr(&b), "<20261128225034.4F2A1B@mx.example.org>");
	yz_buf_reset(&b);
	assert_int_equal(mail_msgid_format("a b", "x.org", &b, &err), -1);
	assert_int_equal(mail_msgid_format("a..b", "x.org", &b, &err), -1);
	assert_int_equal(mail_msgid_format("", "x.org", &b, &err), -1);
	assert_int_equal(mail_msgid_format("a<b", "x.org", &b, &err), -1);
	assert_int_equal(mail_msgid_format("ab", "", &b, &err), -1);
	assert_int_equal(mail_msgid_format("ab", "x..org", &b, &err), -1);
	assert_int_equal(mail_msgid_format("ab", "[1.2.3.4]", &b, &err), -1);
	assert_int_equal(yz_buf_len(&b), 0);
	char big[1000];
	memset(big, 'u', 990);
	big[990] = '\0';
	assert_int_equal(mail_msgid_format(big, "x.org", &b, &err), -1);
	yz_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_date_utc),
		cmocka_unit_test(test_date_local),
		cmocka_unit_test(test_msgid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
