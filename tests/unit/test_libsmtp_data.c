/*
 * test_libsmtp_data.c: unit tests for the DATA decoder and the dot-stuffing
 * encoder (libsmtp/smtp_data.h): the end marker and every smuggling variant,
 * dot-unstuffing, bare CR/LF handling and counters, long lines, 8-bit and
 * UTF-8 content, byte-at-a-time equal to one-shot, pipelined input after the
 * end, output cap, and the stuff/decode round trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "libsmtp/smtp_data.h"

struct result {
	int ret;
	enum smtp_data_status status;
	size_t consumed;
	char out[4096];
	size_t out_len;
	unsigned long bare_lf, bare_cr, long_lines;
	unsigned long long bytes;
};

/* Decode in[0..len) with chunks of step bytes (0 = all at once). */
static void decode(const char *in, size_t len, size_t step, size_t max_line, struct result *r)
{
	struct smtp_data d;
	struct yz_buf out;
	memset(r, 0, sizeof *r);
	smtp_data_init(&d, max_line);
	yz_buf_init(&out, 0);
	size_t pos = 0;
	r->status = SMTP_DATA_MORE;
	while (pos < len && r->status == SMTP_DATA_MORE) {
		size_t n = step == 0 || len - pos < step ? len - pos : step;
		size_t used;
		int ret = smtp_data_feed(&d, in + pos, n, &out, &used, &r->status);
		assert_int_equal(ret, 0);
		assert_true(used <= n);
		if (r->status == SMTP_DATA_MORE)
			assert_int_equal(used, n);
		pos += used;
	}
	r->consumed = pos;
	assert_true(yz_buf_len(&out) < sizeof r->out);
	r->out_len = yz_buf_len(&out);
	memcpy(r->out, yz_buf_data(&out), r->out_len);
	r->bare_lf = smtp_data_bare_lf(&d);
	r->bare_cr = smtp_data_bare_cr(&d);
	r->long_lines = smtp_data_long_lines(&d);
	r->bytes = smtp_data_bytes(&d);
	assert_int_equal(r->bytes, r->out_len);
	yz_buf_free(&out);
}

/* Decode one-shot and byte-at-a-time and require identical results. */
static void decode_both(const char *in, size_t len, struct result *r)
{
	struct result r1;
	decode(in, len, 0, SMTP_DATA_LINE_MAX, r);
	for (size_t step = 1; step <= 3; step++) {
		decode(in, len, step, SMTP_DATA_LINE_MAX, &r1);
		assert_int_equal(r1.status, r->status);
		assert_int_equal(r1.consumed, r->consumed);
		assert_int_equal(r1.out_len, r->out_len);
		assert_memory_equal(r1.out, r->out, r->out_len);
		assert_int_equal(r1.bare_lf, r->bare_lf);
		assert_int_equal(r1.bare_cr, r->bare_cr);
	}
}

#define DEC(lit, r) decode_both(lit, sizeof(lit) - 1, r)

static void test_end_marker(void **state)
{
	struct result r;
	DEC("Subject: x\r\n\r\nbody\r\n.\r\n", &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.consumed, 23);
	assert_int_equal(r.out_len, 20);
	assert_memory_equal(r.out, "Subject: x\r\n\r\nbody\r\n", 20);
	/* The start of DATA counts as after CRLF: an empty message. */
	DEC(".\r\n", &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.out_len, 0);
	/* Pipelined input after the marker is not consumed. */
	DEC("a\r\n.\r\nQUIT\r\n", &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.consumed, 6);
	assert_memory_equal(r.out, "a\r\n", 3);
}

/* Each smuggling variant must leave the message open and be kept as data. */
static void test_smuggling(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "a\n.\nb", "a\r\n.\r\nb" },       /* \n.\n */
		{ "a\r\n.\nb", "a\r\n.\r\nb" },     /* \r\n.\n */
		{ "a\n.\r\nb", "a\r\n.\r\nb" },     /* \n.\r\n */
		{ "a\r.\rb", "a\r.\rb" },           /* \r.\r */
		{ "a\r.\r\nb", "a\r.\r\nb" },       /* \r.\r\n */
		{ "a\r\n.\rb", "a\r\n.\rb" },       /* \r\n.\r + other */
		{ "a\r\n.\r\r\nb", "a\r\n.\r\r\nb" }, /* \r\n.\r\r\n */
		{ "a\r\n.\r", "a\r\n" },            /* \r\n.\r at end: pending */
		{ "a\r\n. \r\nb", "a\r\n \r\nb" },  /* ". " is a stuffed line */
		{ "\n.\n", "\r\n.\r\n" },
		{ "a\r\n\r.\r\n", "a\r\n\r.\r\n" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct result r;
		decode_both(cases[i].in, strlen(cases[i].in), &r);
		if (r.status != SMTP_DATA_MORE)
			fail_msg("case %zu ended the message", i);
		assert_int_equal(r.consumed, strlen(cases[i].in));
		if (r.out_len != strlen(cases[i].out) ||
		    memcmp(r.out, cases[i].out, r.out_len) != 0)
			fail_msg("case %zu: got %zu bytes", i, r.out_len);
	}
	/* And the real marker after each of them still works. */
	struct result r;
	DEC("a\n.\n\r\n.\r\n", &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_memory_equal(r.out, "a\r\n.\r\n", 6);
	assert_int_equal(r.bare_lf, 2);
	DEC("a\r\n.\r\n.\r\n", &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.consumed, 6);
	/* "\r\n.\r" split from its "\n" across feeds still ends. */
	struct smtp_data d;
	size_t used;
	enum smtp_data_status st;
	smtp_data_init(&d, SMTP_DATA_LINE_MAX);
	assert_int_equal(smtp_data_feed(&d, "x\r\n.\r", 5, NULL, &used, &st), 0);
	assert_int_equal(st, SMTP_DATA_MORE);
	assert_int_equal(smtp_data_feed(&d, "\nNEXT", 5, NULL, &used, &st), 0);
	assert_int_equal(st, SMTP_DATA_DONE);
	assert_int_equal(used, 1);
}

static void test_unstuff(void **state)
{
	struct result r;
	DEC("..\r\n..x\r\n...\r\n.y\r\n.\r\n", &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.out_len, 14);
	assert_memory_equal(r.out, ".\r\n.x\r\n..\r\ny\r\n", 14);
	/* Only at line start. */
	DEC("a.b\r\na..\r\n.\r\n", &r);
	assert_memory_equal(r.out, "a.b\r\na..\r\n", 10);
	/* After a bare LF the line is literal. */
	DEC("a\n..b\r\n.\r\n", &r);
	assert_memory_equal(r.out, "a\r\n..b\r\n", 8);
}

static void test_bare(void **state)
{
	struct result r;
	DEC("a\nb\rc\r\r\nd\r\n.\r\n", &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_memory_equal(r.out, "a\r\nb\rc\r\r\nd\r\n", 13);
	assert_int_equal(r.bare_lf, 1);
	assert_int_equal(r.bare_cr, 2);
}

static void test_8bit(void **state)
{
	struct result r;
	const char msg[] = "Subject: \xe2\x82\xac \xff\x00\x80\r\n\r\n\xc3\xa9t\xc3\xa9\x01\x7f\r\n.\r\n";
	decode_both(msg, sizeof msg - 1, &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.out_len, sizeof msg - 1 - 3);
	assert_memory_equal(r.out, msg, r.out_len);
}

static void test_long_lines(void **state)
{
	char in[2200];
	struct result r;
	/* 998 + CRLF = 1000: fine; 999 + CRLF: long */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n", 2);
	memset(in + 1000, 'y', 999);
	memcpy(in + 1999, "\r\n.\r\n", 5);
	decode(in, 2004, 0, SMTP_DATA_LINE_MAX, &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.long_lines, 1);
	decode(in, 2004, 7, SMTP_DATA_LINE_MAX, &r);
	assert_int_equal(r.long_lines, 1);
	decode(in, 2004, 0, 10, &r);
	assert_int_equal(r.long_lines, 2);
}

static void test_cap_and_discard(void **state)
{
	struct smtp_data d;
	struct yz_buf out;
	size_t used;
	enum smtp_data_status st;
	smtp_data_init(&d, SMTP_DATA_LINE_MAX);
	yz_buf_init(&out, 8);
	assert_int_equal(smtp_data_feed(&d, "12345\r\n", 7, &out, &used, &st), 0);
	assert_int_equal(smtp_data_feed(&d, "67890\r\n", 7, &out, &used, &st), -1);
	assert_int_equal(used, 7);
	assert_int_equal(st, SMTP_DATA_MORE);
	/* The caller keeps discarding with out == NULL until the end. */
	assert_int_equal(smtp_data_feed(&d, "more\r\n.\r\nQUIT", 13, NULL, &used, &st), 0);
	assert_int_equal(st, SMTP_DATA_DONE);
	assert_int_equal(used, 9);
	assert_int_equal(smtp_data_bytes(&d), 20);
	yz_buf_free(&out);
}

/* Stuff a message in chunks of step bytes and end it. */
static void stuff(const char *in, size_t len, size_t step, struct yz_buf *out)
{
	struct smtp_stuff st;
	smtp_stuff_init(&st);
	for (size_t pos = 0; pos < len;) {
		size_t n = step == 0 || len - pos < step ? len - pos : step;
		assert_int_equal(smtp_data_stuff(in + pos, n, &st, out), 0);
		pos += n;
	}
	assert_int_equal(smtp_data_stuff_end(&st, out), 0);
}

static void test_stuff(void **state)
{
	struct yz_buf out;
	yz_buf_init(&out, 0);
	stuff(".a\r\n.\r\nb.\n..\rc", 14, 0, &out);
	assert_string_equal(yz_buf_cstr(&out), "..a\r\n..\r\nb.\r\n...\r\nc\r\n.\r\n");
	for (size_t step = 1; step < 5; step++) {
		yz_buf_reset(&out);
		stuff(".a\r\n.\r\nb.\n..\rc", 14, step, &out);
		assert_string_equal(yz_buf_cstr(&out), "..a\r\n..\r\nb.\r\n...\r\nc\r\n.\r\n");
	}
	yz_buf_reset(&out);
	stuff("", 0, 0, &out);
	assert_string_equal(yz_buf_cstr(&out), ".\r\n");
	yz_buf_reset(&out);
	stuff("x\r\n", 3, 0, &out);
	assert_string_equal(yz_buf_cstr(&out), "x\r\n.\r\n");
	/* Smuggling input never reaches the wire as a line end we did not mean. */
	yz_buf_reset(&out);
	stuff("a\r.\rb\n.\nc", 9, 0, &out);
	assert_string_equal(yz_buf_cstr(&out), "a\r\n..\r\nb\r\n..\r\nc\r\n.\r\n");
	struct yz_buf small;
	yz_buf_init(&small, 4);
	struct smtp_stuff st;
	smtp_stuff_init(&st);
	assert_int_equal(smtp_data_stuff("hello", 5, &st, &small), -1);
	yz_buf_free(&small);
	yz_buf_free(&out);
}

static void test_round_trip(void **state)
{
	const char msg[] = "From: a\r\n\r\n.\r\n..\r\n.x\r\nmid.dle\r\n\xc3\xa9\r\n.";
	struct yz_buf wire;
	struct result r;
	yz_buf_init(&wire, 0);
	stuff(msg, sizeof msg - 1, 0, &wire);
	decode_both(yz_buf_data(&wire), yz_buf_len(&wire), &r);
	assert_int_equal(r.status, SMTP_DATA_DONE);
	assert_int_equal(r.consumed, yz_buf_len(&wire));
	/* the unterminated last line came back with its CRLF */
	assert_int_equal(r.out_len, sizeof msg - 1 + 2);
	assert_memory_equal(r.out, msg, sizeof msg - 1);
	assert_memory_equal(r.out + sizeof msg - 1, "\r\n", 2);
	yz_buf_free(&wire);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_end_marker), cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_unstuff),    cmocka_unit_test(test_bare),
		cmocka_unit_test(test_8bit),       cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_cap_and_discard), cmocka_unit_test(test_stuff),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
