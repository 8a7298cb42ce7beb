/*
 * test_libmail_header.c: unit tests for the header section scanner
 * (libmail/header.h): fields and folding, the empty line (CRLF and LF),
 * a non-header line ending the section, EOF without body, limits on bytes,
 * fields and name length, and byte-at-a-time feeding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "libmail/header.h"

struct scan_result {
	char fields[32][200]; /* "name=value" */
	size_t n;
	enum mail_header_status last;
	size_t header_len;
	bool no_blank;
	size_t consumed;
};

/* Scan in with chunks of step bytes (0 = all at once); eof if at_eof. */
static void scan(const char *in, size_t len, size_t step, bool at_eof, size_t max_bytes,
		 size_t max_fields, struct scan_result *r)
{
	struct mail_header_scan s;
	struct mail_header_field f;
	const char *err;
	size_t pos = 0;
	memset(r, 0, sizeof *r);
	mail_header_scan_init(&s, max_bytes, max_fields);
	r->last = MAIL_HEADER_MORE;
	while (pos < len) {
		size_t n = step == 0 || len - pos < step ? len - pos : step;
		size_t used;
		r->last = mail_header_scan_feed(&s, in + pos, n, &used, &f, &err);
		pos += used;
		if (r->last == MAIL_HEADER_FIELD) {
			assert_true(r->n < 32);
			snprintf(r->fields[r->n++], 200, "%s=%s%s", f.name, f.value,
				 f.value_truncated ? "..." : "");
			continue;
		}
		if (r->last != MAIL_HEADER_MORE)
			break;
		assert_int_equal(used, n);
	}
	while (at_eof && r->last == MAIL_HEADER_MORE) {
		r->last = mail_header_scan_eof(&s, &f, &err);
		if (r->last == MAIL_HEADER_FIELD) {
			snprintf(r->fields[r->n++], 200, "%s=%s", f.name, f.value);
			r->last = MAIL_HEADER_MORE;
		}
	}
	r->header_len = s.header_len;
	r->no_blank = s.no_blank_line;
	r->consumed = pos;
}

/* Scan in all at once and byte-at-a-time; results must match. */
static void scan_both(const char *in, bool at_eof, struct scan_result *r)
{
	struct scan_result r1;
	scan(in, strlen(in), 0, at_eof, 64 * 1024, 1000, r);
	scan(in, strlen(in), 1, at_eof, 64 * 1024, 1000, &r1);
	assert_int_equal(r1.n, r->n);
	for (size_t i = 0; i < r->n; i++)
		assert_string_equal(r1.fields[i], r->fields[i]);
	assert_int_equal(r1.last, r->last);
	assert_int_equal(r1.header_len, r->header_len);
	assert_int_equal(r1.no_blank, r->no_blank);
}

static void test_basic(void **state)
{
	struct scan_result r;
	const char msg[] = "Received: from a\r\n\tby b; Sat, 1 Jan 2026\r\n"
			   "Received: from c\r\n"
			   "Subject:  hello  \r\n"
			   "X-Empty:\r\n"
			   "Message-ID: <1@x>\r\n"
			   "\r\n"
			   "body line\r\n";
	scan_both(msg, false, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.fields[0], "Received=from a\tby b; Sat, 1 Jan 2026");
	assert_string_equal(r.fields[1], "Received=from c");
	assert_string_equal(r.fields[2], "Subject=hello");
	assert_string_equal(r.fields[3], "X-Empty=");
	assert_string_equal(r.fields[4], "Message-ID=<1@x>");
	assert_int_equal(r.header_len, strlen(msg) - strlen("body line\r\n"));
	assert_false(r.no_blank);
}

static void test_lf_and_obs(void **state)
{
	struct scan_result r;
	scan_both("A: 1\nB : 2\n  more\n\nbody", false, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.fields[1], "B=2  more");
	assert_int_equal(r.header_len, 19);
}

static void test_no_blank_line(void **state)
{
	struct scan_result r;
	/* a line that is not a header starts the body */
	scan_both("A: 1\r\nnot a header\r\nB: 2\r\n", false, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	assert_int_equal(r.n, 1);
	assert_true(r.no_blank);
	assert_int_equal(r.header_len, 6);
	scan_both(" leading space\r\n", false, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.header_len, 0);
	scan_both(":x\r\n", false, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	/* headers only, message ends */
	scan_both("A: 1\r\nB: 2\r\n", true, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.header_len, 12);
	scan_both("A: 1\r\nB: 2", true, &r);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.fields[1], "B=2");
	scan_both("", true, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	assert_int_equal(r.n, 0);
	/* bare CR in a value is data */
	scan_both("A: x\ry\r\n\r\n", false, &r);
	assert_string_equal(r.fields[0], "A=x\ry");
}

static void test_limits(void **state)
{
	struct scan_result r;
	const char msg[] = "A: 1\r\nB: 2\r\n\r\n"; /* 14 bytes, 2 fields */
	scan(msg, 14, 0, false, 14, 2, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	scan(msg, 14, 0, false, 13, 2, &r);
	assert_int_equal(r.last, MAIL_HEADER_INVALID);
	scan(msg, 14, 1, false, 13, 2, &r);
	assert_int_equal(r.last, MAIL_HEADER_INVALID);
	scan(msg, 14, 0, false, 100, 1, &r);
	assert_int_equal(r.last, MAIL_HEADER_INVALID);
	assert_int_equal(r.n, 1);
	/* name length: 128 ok, 129 not */
	char big[400];
	memset(big, 'N', 128);
	memcpy(big + 128, ": v\r\n\r\n", 8);
	scan(big, strlen(big), 0, false, 1000, 10, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	memset(big, 'N', 129);
	memcpy(big + 129, ": v\r\n\r\n", 8);
	scan(big, strlen(big), 0, false, 1000, 10, &r);
	assert_int_equal(r.last, MAIL_HEADER_INVALID);
	/* long value is truncated, not an error */
	char val[3000];
	memcpy(val, "S: ", 3);
	memset(val + 3, 'v', 2000);
	memcpy(val + 2003, "\r\n\r\n", 5);
	scan(val, strlen(val), 0, false, 10000, 10, &r);
	assert_int_equal(r.last, MAIL_HEADER_END);
	assert_int_equal(strlen(r.fields[0]), 199); /* our snprintf cut */
}

static void test_field_is(void **state)
{
	struct mail_header_scan s;
	struct mail_header_field f;
	size_t used;
	const char *err;
	mail_header_scan_init(&s, 1000, 10);
	assert_int_equal(mail_header_scan_feed(&s, "message-id: <x@y>\r\nDate: z\r\n", 28, &used, &f,
					       &err),
			 MAIL_HEADER_FIELD);
	assert_true(mail_header_field_is(&f, "Message-ID"));
	assert_false(mail_header_field_is(&f, "Message"));
	assert_int_equal(used, 19);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),  cmocka_unit_test(test_lf_and_obs),
		cmocka_unit_test(test_no_blank_line), cmocka_unit_test(test_limits),
		cmocka_unit_test(test_field_is),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
