/*
 * test_libsmtp_reply.c: unit tests for the reply formatter and the
 * resumable reply parser (libsmtp/smtp_reply.h): single and multi-line
 * replies, enhanced codes, injection of CR/LF, bounds, byte-at-a-time
 * parsing, pipelined replies, and malformed input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "libsmtp/smtp_reply.h"

static void test_format(void **state)
{
	struct yz_buf b;
	yz_buf_init(&b, 0);
	assert_int_equal(smtp_reply_format(&b, 250, "2.1.0", "Ok"), 0);
	assert_string_equal(yz_buf_cstr(&b), "250 2.1.0 Ok\r\n");
	yz_buf_reset(&b);
	assert_int_equal(smtp_reply_format(&b, 250, NULL, "mx.example\nPIPELINING\nSIZE 10240000\n"),
			 0);
	assert_string_equal(yz_buf_cstr(&b), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n");
	yz_buf_reset(&b);
	assert_int_equal(smtp_reply_format(&b, 550, "5.1.1", "a\nb"), 0);
	assert_string_equal(yz_buf_cstr(&b), "550-5.1.1 a\r\n550 5.1.1 b\r\n");
	yz_buf_reset(&b);
	/* Control bytes in text (e.g. an echoed address) cannot inject lines. */
	assert_int_equal(smtp_reply_format(&b, 501, "5.1.3", "bad <a\rb\x01>"), 0);
	assert_string_equal(yz_buf_cstr(&b), "501 5.1.3 bad <a?b?>\r\n");
	yz_buf_reset(&b);
	assert_int_equal(smtp_reply_printf(&b, 452, "4.5.3", "Too many recipients (%d)", 100), 0);
	assert_string_equal(yz_buf_cstr(&b), "452 4.5.3 Too many recipients (100)\r\n");
	yz_buf_reset(&b);
	const char *lines[] = { "one", "two" };
	assert_int_equal(smtp_reply_format_lines(&b, 214, "2.0.0", lines, 2), 0);
	assert_string_equal(yz_buf_cstr(&b), "214-2.0.0 one\r\n214 2.0.0 two\r\n");
	yz_buf_reset(&b);
	assert_int_equal(smtp_reply_format(&b, 354, NULL, "End data with <CR><LF>.<CR><LF>"), 0);
	yz_buf_reset(&b);
	/* Invalid codes and mismatched enhanced codes. */
	assert_int_equal(smtp_reply_format(&b, 199, NULL, "x"), -1);
	assert_int_equal(smtp_reply_format(&b, 600, NULL, "x"), -1);
	assert_int_equal(smtp_reply_format(&b, 260, NULL, "x"), -1);
	assert_int_equal(smtp_reply_format(&b, 550, "4.1.1", "x"), -1);
	assert_int_equal(smtp_reply_format(&b, 550, "5.1", "x"), -1);
	assert_int_equal(smtp_reply_format(&b, 550, "5.1.1234", "x"), -1);
	assert_int_equal(yz_buf_len(&b), 0);
	assert_true(smtp_enh_valid(550, "5.7.1"));
	assert_true(smtp_enh_valid(421, "4.3.2"));
	assert_false(smtp_enh_valid(250, "5.0.0"));
	yz_buf_free(&b);
}

static void test_format_bounds(void **state)
{
	struct yz_buf b;
	char text[2000];
	yz_buf_init(&b, 0);
	memset(text, 'x', sizeof text - 1);
	text[sizeof text - 1] = '\0';
	assert_int_equal(smtp_reply_format(&b, 250, "2.0.0", text), 0);
	assert_int_equal(yz_buf_len(&b), SMTP_REPLY_LINE_MAX);
	assert_memory_equal(yz_buf_data(&b) + SMTP_REPLY_LINE_MAX - 2, "\r\n", 2);
	yz_buf_reset(&b);
	/* too many lines are dropped; the last kept one ends the reply */
	char many[SMTP_REPLY_LINES_MAX * 2 + 20];
	size_t n = 0;
	for (int i = 0; i < SMTP_REPLY_LINES_MAX + 5; i++) {
		many[n++] = 'l';
		many[n++] = '\n';
	}
	many[n] = '\0';
	assert_int_equal(smtp_reply_format(&b, 250, NULL, many), 0);
	assert_int_equal(yz_buf_len(&b), SMTP_REPLY_LINES_MAX * 7);
	assert_memory_equal(yz_buf_data(&b) + yz_buf_len(&b) - 7, "250 l\r\n", 7);
	yz_buf_free(&b);
	/* out's cap: unchanged on failure */
	yz_buf_init(&b, 10);
	assert_int_equal(smtp_reply_format(&b, 250, NULL, "a\nbbbbbbbb"), -1);
	assert_int_equal(yz_buf_len(&b), 0);
	yz_buf_free(&b);
}

/* Feed input in chunks of step; collect the replies' codes and texts. */
static size_t parse_all(const char *in, size_t len, size_t step, int *codes, char texts[][256],
			enum smtp_reply_status *last)
{
	struct smtp_reply_parser p;
	size_t n = 0, pos = 0, chunk_end = 0;
	const char *err;
	smtp_reply_parser_init(&p, SMTP_REPLY_LINE_MAX, SMTP_REPLY_LINES_MAX, 4096);
	*last = SMTP_REPLY_AGAIN;
	while (pos < len) {
		if (chunk_end <= pos)
			chunk_end = step == 0 || len - pos < step ? len : pos + step;
		size_t used;
		const struct smtp_reply *r;
		*last = smtp_reply_parse(&p, in + pos, chunk_end - pos, &used, &r, &err);
		pos += used;
		if (*last == SMTP_REPLY_INVALID)
			break;
		if (*last == SMTP_REPLY_OK) {
			codes[n] = r->code;
			snprintf(texts[n], 256, "%s|%s", r->enh, yz_buf_cstr((struct yz_buf *)&r->text));
			n++;
		}
	}
	smtp_reply_parser_free(&p);
	return n;
}

static void test_parse(void **state)
{
	const char in[] = "220 mx.example ESMTP\r\n"
			  "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
			  "250 2.1.0 Ok\r\n"
			  "550-5.1.1 no such\r\n550 5.1.1 user\r\n"
			  "354\r\n"
			  "421 4.3.2 bye\n"
			  "250-\r\n250 last\r\n";
	for (size_t step = 0; step <= 3; step++) {
		int codes[10];
		char texts[10][256];
		enum smtp_reply_status last;
		size_t n = parse_all(in, sizeof in - 1, step, codes, texts, &last);
		assert_int_equal(n, 7);
		assert_int_equal(codes[0], 220);
		assert_string_equal(texts[0], "|mx.example ESMTP");
		assert_int_equal(codes[1], 250);
		assert_string_equal(texts[1], "|mx.example\nPIPELINING\n8BITMIME");
		assert_string_equal(texts[2], "2.1.0|Ok");
		assert_int_equal(codes[3], 550);
		assert_string_equal(texts[3], "5.1.1|no such\nuser");
		assert_int_equal(codes[4], 354);
		assert_string_equal(texts[4], "|");
		assert_string_equal(texts[5], "4.3.2|bye");
		assert_string_equal(texts[6], "|\nlast");
	}
}

static void test_parse_invalid(void **state)
{
	const char *bad[] = {
		"25 x\r\n",        "2500 x\r\n",        "abc x\r\n",      "199 x\r\n",
		"600 x\r\n",       "260 x\r\n",         "250x\r\n",       "250-a\r\n251 b\r\n",
		"250 a\x01\r\n",   "250 a\0b\r\n",      "\r\n",           "250-a\r\n550 b\r\n",
	};
	const size_t lens[] = { 6, 8, 7, 7, 7, 7, 6, 16, 8, 9, 2, 16 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int codes[4];
		char texts[4][256];
		enum smtp_reply_status last;
		parse_all(bad[i], lens[i], 0, codes, texts, &last);
		if (last != SMTP_REPLY_INVALID)
			fail_msg("accepted case %zu", i);
	}
}

static void test_parse_limits(void **state)
{
	struct smtp_reply_parser p;
	const struct smtp_reply *r;
	const char *err;
	size_t used;
	char line[40];

	/* line length: 20 incl. CRLF ok, 21 not */
	smtp_reply_parser_init(&p, 20, 3, 100);
	memcpy(line, "250 xxxxxxxxxxxxxx\r\n", 20);
	assert_int_equal(smtp_reply_parse(&p, line, 20, &used, &r, &err), SMTP_REPLY_OK);
	memcpy(line, "250 xxxxxxxxxxxxxxx\r\n", 21);
	assert_int_equal(smtp_reply_parse(&p, line, 21, &used, &r, &err), SMTP_REPLY_INVALID);
	/* stays invalid */
	assert_int_equal(smtp_reply_parse(&p, "250 ok\r\n", 8, &used, &r, &err),
			 SMTP_REPLY_INVALID);
	smtp_reply_parser_free(&p);

	/* line count: 3 ok, 4 not */
	smtp_reply_parser_init(&p, 20, 3, 100);
	assert_int_equal(smtp_reply_parse(&p, "250-a\r\n250-b\r\n250 c\r\n", 21, &used, &r, &err),
			 SMTP_REPLY_OK);
	assert_int_equal(r->lines, 3);
	assert_int_equal(smtp_reply_parse(&p, "250-a\r\n250-b\r\n250-c\r\n250 d\r\n", 28, &used,
					  &r, &err),
			 SMTP_REPLY_INVALID);
	smtp_reply_parser_free(&p);

	/* text size */
	smtp_reply_parser_init(&p, 100, 10, 5);
	assert_int_equal(smtp_reply_parse(&p, "250 12345\r\n", 11, &used, &r, &err), SMTP_REPLY_OK);
	assert_int_equal(smtp_reply_parse(&p, "250 123456\r\n", 12, &used, &r, &err),
			 SMTP_REPLY_INVALID);
	smtp_reply_parser_free(&p);

	/* AGAIN on a partial line, then OK */
	smtp_reply_parser_init(&p, 100, 10, 100);
	assert_int_equal(smtp_reply_parse(&p, "250 o", 5, &used, &r, &err), SMTP_REPLY_AGAIN);
	assert_int_equal(used, 5);
	assert_int_equal(smtp_reply_parse(&p, "k\r\n220", 6, &used, &r, &err), SMTP_REPLY_OK);
	assert_int_equal(used, 3);
	assert_string_equal(yz_buf_cstr((struct yz_buf *)&r->text), "ok");
	smtp_reply_parser_free(&p);
}

/* Formatter output parses back to the same reply. */
static void test_round_trip(void **state)
{
	struct yz_buf b;
	int codes[2];
	char texts[2][256];
	enum smtp_reply_status last;
	yz_buf_init(&b, 0);
	assert_int_equal(smtp_reply_format(&b, 451, "4.7.1", "try\nlater"), 0);
	assert_int_equal(parse_all(yz_buf_data(&b), yz_buf_len(&b), 1, codes, texts, &last), 1);
	assert_int_equal(codes[0], 451);
	assert_string_equal(texts[0], "4.7.1|try\nlater");
	yz_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),        cmocka_unit_test(test_format_bounds),
		cmocka_unit_test(test_parse),         cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_parse_limits),  cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
