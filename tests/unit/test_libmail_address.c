/*
 * test_libmail_address.c: unit tests for the RFC 5321 Mailbox parser and
 * formatter (libmail/address.h): dot-atom and quoted local parts, domains
 * and address literals, UTF-8, limits at and over, relay-sneaking forms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "libmail/address.h"

/* Parse s with flags; returns the parser's result. */
static int parse(const char *s, unsigned flags, struct mail_address *a)
{
	const char *err = NULL;
	int r = mail_address_parse(s, strlen(s), flags, a, &err);
	if (r < 0)
		assert_non_null(err);
	return r;
}

/* Format a into a static string. */
static const char *fmt(const struct mail_address *a)
{
	static char s[400];
	struct yz_buf b;
	yz_buf_init(&b, 0);
	assert_int_equal(mail_address_format(a, &b), 0);
	snprintf(s, sizeof s, "%s", yz_buf_cstr(&b));
	yz_buf_free(&b);
	return s;
}

/* String of n copies of c. */
static char *rep(char *dst, char c, size_t n)
{
	memset(dst, c, n);
	dst[n] = '\0';
	return dst;
}

static void test_simple(void **state)
{
	struct mail_address a;
	assert_int_equal(parse("john.doe@Example.COM", 0, &a), 0);
	assert_string_equal(a.local, "john.doe");
	assert_string_equal(a.domain, "Example.COM");
	assert_false(a.quoted_local);
	assert_false(a.utf8);
	assert_string_equal(fmt(&a), "john.doe@example.com");
	assert_int_equal(parse("a+tag!#$%&'*/=?^_`{|}~-@x.y", 0, &a), 0);
	assert_int_equal(parse("x@a-b.c1", 0, &a), 0);
}

static void test_bad_syntax(void **state)
{
	struct mail_address a;
	const char *bad[] = { "", "@x.y", "a@", "a", "a..b@x", ".a@x", "a.@x", "a b@x",
			      "a@x..y", "a@.x", "a@x.", "a@-x.y", "a@x-.y", "a@x_y.z", "a@@x",
			      "a(b)@x", "a@x y", "a,b@x", "\"a@x", "\"a\"b@x", "a@[1.2.3]",
			      "a@[1.2.3.4", "a@[300.1.1.1]", "a@[IPv6:zz::1]", "a@[tag:x]",
			      "a@[]", "\"a\x01\"@x", "\"a\\\x01\"@x", "a\x7f@x", "a@x\x7f" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (parse(bad[i], 0, &a) == 0)
			fail_msg("accepted: %s", bad[i]);
	}
	/* Embedded NUL is rejected, and nothing past len is read. */
	const char *err;
	assert_int_equal(mail_address_parse("a\0b@x", 5, 0, &a, &err), -1);
	assert_int_equal(mail_address_parse("a@xyz", 3, 0, &a, &err), 0);
	assert_string_equal(a.domain, "x");
}

static void test_quoted(void **state)
{
	struct mail_address a;
	assert_int_equal(parse("\"john doe\"@x.org", 0, &a), 0);
	assert_true(a.quoted_local);
	assert_string_equal(a.local, "john doe");
	assert_string_equal(fmt(&a), "\"john doe\"@x.org");
	assert_int_equal(parse("\"a\\\"b\\\\c\"@x", 0, &a), 0);
	assert_string_equal(a.local, "a\"b\\c");
	assert_string_equal(fmt(&a), "\"a\\\"b\\\\c\"@x");
	/* A quoted local part that is a dot-atom comes back unquoted. */
	assert_int_equal(parse("\"john\"@x", 0, &a), 0);
	assert_string_equal(fmt(&a), "john@x");
	assert_int_equal(parse("\"\"@x", 0, &a), 0);
	assert_string_equal(a.local, "");
	assert_string_equal(fmt(&a), "\"\"@x");
	assert_int_equal(parse("\"a..b\"@x", 0, &a), 0);
	assert_string_equal(fmt(&a), "\"a..b\"@x");
}

static void test_literals(void **state)
{
	struct mail_address a;
	assert_int_equal(parse("a@[192.0.2.1]", 0, &a), 0);
	assert_string_equal(a.domain, "[192.0.2.1]");
	assert_int_equal(parse("a@[IPv6:2001:DB8::1]", 0, &a), 0);
	assert_string_equal(fmt(&a), "a@[IPv6:2001:db8::1]");
	assert_int_equal(parse("a@[ipv6:::1]", 0, &a), 0);
	assert_int_equal(parse("a@[IPv6:::ffff:1.2.3.4]", 0, &a), 0);
	assert_int_equal(parse("a@[01.2.3.4]", 0, &a), -1);
	const char *err;
	assert_int_equal(mail_domain_parse("[IPv6:1::2:3]", 13, 0, &err), 0);
	assert_int_equal(mail_domain_parse("mx.example", 10, 0, &err), 0);
	assert_int_equal(mail_domain_parse("", 0, 0, &err), -1);
}

static void test_limits(void **state)
{
	struct mail_address a;
	char local[100], dom[300], s[400];

	/* local part: 64 ok, 65 not */
	snprintf(s, sizeof s, "%s@x", rep(local, 'l', 64));
	assert_int_equal(parse(s, 0, &a), 0);
	assert_int_equal(strlen(a.local), 64);
	snprintf(s, sizeof s, "%s@x", rep(local, 'l', 65));
	assert_int_equal(parse(s, 0, &a), -1);
	/* quoted local part: 64 on the wire including quotes */
	snprintf(s, sizeof s, "\"%s\"@x", rep(local, 'q', 62));
	assert_int_equal(parse(s, 0, &a), 0);
	snprintf(s, sizeof s, "\"%s\"@x", rep(local, 'q', 63));
	assert_int_equal(parse(s, 0, &a), -1);

	/* domain: 255 ok, 256 not (labels of 63 + dots) */
	for (int total = 255; total <= 256; total++) {
		size_t n = 0;
		while (n < (size_t)total) {
			size_t l = (size_t)total - n;
			if (n > 0) {
				dom[n++] = '.';
				l--;
			}
			if (l > 63)
				l = 63;
			if (l == 0) { /* avoid ending on a dot */
				dom[n - 2] = '.';
				dom[n - 1] = 'd';
				break;
			}
			memset(dom + n, 'd', l);
			n += l;
		}
		dom[n] = '\0';
		assert_int_equal(strlen(dom), (size_t)total);
		snprintf(s, sizeof s, "a@%s", dom);
		assert_int_equal(parse(s, 0, &a), total == 255 ? 0 : -1);
	}
	/* label: 63 ok, 64 not */
	snprintf(s, sizeof s, "a@%s.com", rep(dom, 'd', 63));
	assert_int_equal(parse(s, 0, &a), 0);
	snprintf(s, sizeof s, "a@%s.com", rep(dom, 'd', 64));
	assert_int_equal(parse(s, 0, &a), -1);
}

static void test_utf8(void **state)
{
	struct mail_address a;
	const char *u = "J\xc3\xb6rg@m\xc3\xbcller.example";
	assert_int_equal(parse(u, 0, &a), -1);
	assert_int_equal(parse(u, MAIL_ADDR_ALLOW_UTF8, &a), 0);
	assert_true(a.utf8);
	assert_string_equal(fmt(&a), "J\xc3\xb6rg@m\xc3\xbcller.example");
	/* invalid UTF-8: lone continuation, overlong, surrogate, truncated */
	assert_int_equal(parse("a\x80@x", MAIL_ADDR_ALLOW_UTF8, &a), -1);
	assert_int_equal(parse("a\xc0\xaf@x", MAIL_ADDR_ALLOW_UTF8, &a), -1);
	assert_int_equal(parse("a\xed\xa0\x80@x", MAIL_ADDR_ALLOW_UTF8, &a), -1);
	assert_int_equal(parse("a\xe2\x82@x", MAIL_ADDR_ALLOW_UTF8, &a), -1);
	assert_int_equal(parse("a@x\xf4\x90\x80\x80", MAIL_ADDR_ALLOW_UTF8, &a), -1);
	assert_int_equal(parse("\"\xe2\x82\xac\"@x", MAIL_ADDR_ALLOW_UTF8, &a), 0);
	assert_int_equal(parse("\"\xe2\x82\xac\"@x", 0, &a), -1);
}

static void test_empty(void **state)
{
	struct mail_address a;
	assert_int_equal(parse("", 0, &a), -1);
	assert_int_equal(parse("", MAIL_ADDR_ALLOW_EMPTY, &a), 0);
	assert_true(mail_address_is_null(&a));
	assert_string_equal(fmt(&a), "");
	assert_int_equal(parse("a@x", MAIL_ADDR_ALLOW_EMPTY, &a), 0);
	assert_false(mail_address_is_null(&a));
}

static void test_suspicious(void **state)
{
	struct mail_address a;
	assert_int_equal(parse("a%b@local", 0, &a), 0);
	assert_true(mail_address_is_suspicious(&a));
	assert_int_equal(parse("b!a@local", 0, &a), 0);
	assert_true(mail_address_is_suspicious(&a));
	assert_int_equal(parse("\"a@b\"@local", 0, &a), 0);
	assert_true(mail_address_is_suspicious(&a));
	assert_int_equal(parse("\"@x:a@b\"@local", 0, &a), 0);
	assert_true(mail_address_is_suspicious(&a));
	assert_int_equal(parse("\"a%b\"@local", 0, &a), 0);
	assert_true(mail_address_is_suspicious(&a));
	assert_int_equal(parse("\"a,b\"@local", 0, &a), 0);
	assert_true(mail_address_is_suspicious(&a));
	assert_int_equal(parse("plain.user+tag@local", 0, &a), 0);
	assert_false(mail_address_is_suspicious(&a));
	assert_int_equal(parse("\"john doe\"@local", 0, &a), 0);
	assert_false(mail_address_is_suspicious(&a));
}

static void test_format_cap(void **state)
{
	struct mail_address a;
	struct yz_buf b;
	assert_int_equal(parse("abc@example.org", 0, &a), 0);
	yz_buf_init(&b, 10);
	assert_int_equal(yz_buf_append_str(&b, "xy"), 0);
	assert_int_equal(mail_address_format(&a, &b), -1);
	assert_string_equal(yz_buf_cstr(&b), "xy");
	yz_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),   cmocka_unit_test(test_bad_syntax),
		cmocka_unit_test(test_quoted),   cmocka_unit_test(test_literals),
		cmocka_unit_test(test_limits),   cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_empty),    cmocka_unit_test(test_suspicious),
		cmocka_unit_test(test_format_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
