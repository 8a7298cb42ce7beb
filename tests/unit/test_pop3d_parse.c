/*
 * test_pop3d_parse.c: the POP3 command parser: every command, case
 * insensitivity, arguments and numbers at and over their bounds, line
 * length at and over max_line, byte-at-a-time input, malformed lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d/pop3_parse.h"

#define MAX 512

/* Parse s (a whole line) and return the status. */
static enum pop3_parse_status parse(const char *s, struct pop3_command *cmd, const char **err)
{
	size_t used = 0;
	enum pop3_parse_status st = pop3_command_parse(s, strlen(s), MAX, cmd, &used, err);
	if (st == POP3_PARSE_OK || st == POP3_PARSE_INVALID)
		assert_int_equal(used, strlen(s));
	else
		assert_int_equal(used, 0);
	return st;
}

static void assert_ok(const char *s, enum pop3_verb verb, struct pop3_command *cmd)
{
	const char *err;
	enum pop3_parse_status st = parse(s, cmd, &err);
	if (st != POP3_PARSE_OK)
		fail_msg("'%s' not OK: %s", s, err ? err : "?");
	assert_int_equal(cmd->verb, verb);
}

static void assert_invalid(const char *s)
{
	struct pop3_command cmd;
	const char *err = NULL;
	if (parse(s, &cmd, &err) != POP3_PARSE_INVALID)
		fail_msg("'%s' not INVALID", s);
	assert_non_null(err);
}

static void test_every_command(void **state)
{
	struct pop3_command c;
	assert_ok("USER alice@example.test\r\n", POP3_USER, &c);
	assert_int_equal(c.arg.len, strlen("alice@example.test"));
	assert_memory_equal(c.arg.p, "alice@example.test", c.arg.len);
	assert_ok("PASS secret with spaces \r\n", POP3_PASS, &c);
	assert_int_equal(c.arg.len, strlen("secret with spaces "));
	assert_ok("STAT\r\n", POP3_STAT, &c);
	assert_ok("LIST\r\n", POP3_LIST, &c);
	assert_int_equal(c.nnums, 0);
	assert_ok("LIST 3\r\n", POP3_LIST, &c);
	assert_int_equal(c.nnums, 1);
	assert_int_equal(c.num[0], 3);
	assert_ok("RETR 12\r\n", POP3_RETR, &c);
	assert_int_equal(c.num[0], 12);
	assert_ok("DELE 1\r\n", POP3_DELE, &c);
	assert_ok("NOOP\r\n", POP3_NOOP, &c);
	assert_ok("RSET\r\n", POP3_RSET, &c);
	assert_ok("QUIT\r\n", POP3_QUIT, &c);
	assert_ok("TOP 2 0\r\n", POP3_TOP, &c);
	assert_int_equal(c.nnums, 2);
	assert_int_equal(c.num[0], 2);
	assert_int_equal(c.num[1], 0);
	assert_ok("UIDL\r\n", POP3_UIDL, &c);
	assert_ok("UIDL 7\r\n", POP3_UIDL, &c);
	assert_int_equal(c.num[0], 7);
	assert_ok("CAPA\r\n", POP3_CAPA, &c);
	assert_ok("STLS\r\n", POP3_STLS, &c);
	assert_ok("AUTH\r\n", POP3_AUTH, &c);
	assert_int_equal(c.arg.len, 0);
	assert_ok("AUTH PLAIN\r\n", POP3_AUTH, &c);
	assert_memory_equal(c.arg.p, "PLAIN", 5);
	assert_int_equal(c.arg2.len, 0);
	assert_ok("AUTH PLAIN AGFsaWNlAHB3\r\n", POP3_AUTH, &c);
	assert_int_equal(c.arg2.len, 12);
	assert_ok("AUTH PLAIN =\r\n", POP3_AUTH, &c);
	assert_int_equal(c.arg2.len, 1);
	assert_string_equal(pop3_verb_name(POP3_TOP), "TOP");
}

static void test_case_and_line_ends(void **state)
{
	struct pop3_command c;
	assert_ok("stat\r\n", POP3_STAT, &c);
	assert_ok("StAt\r\n", POP3_STAT, &c);
	assert_ok("uidl 1\n", POP3_UIDL, &c); /* bare LF accepted */
	assert_ok("top 1 5\r\n", POP3_TOP, &c);
	assert_ok("QUIT  \r\n", POP3_QUIT, &c); /* trailing blanks */
	assert_ok("LIST  2 \r\n", POP3_LIST, &c);
	assert_ok("USER bob  \r\n", POP3_USER, &c);
	assert_int_equal(c.arg.len, 3);
}

static void test_malformed(void **state)
{
	assert_invalid("\r\n");
	assert_invalid(" STAT\r\n");
	assert_invalid("STATX\r\n");
	assert_invalid("STA\r\n");
	assert_invalid("APOP a b\r\n");
	assert_invalid("XTND\r\n");
	assert_invalid("STAT 1\r\n");
	assert_invalid("QUIT now\r\n");
	assert_invalid("USER\r\n");
	assert_invalid("USER \r\n");
	assert_invalid("PASS\r\n");
	assert_invalid("PASS \r\n");
	assert_invalid("RETR\r\n");
	assert_invalid("DELE\r\n");
	assert_invalid("TOP 1\r\n");
	assert_invalid("TOP 1 2 3\r\n");
	assert_invalid("LIST 1 2\r\n");
	assert_invalid("AUTH PLAIN a b\r\n");
	assert_invalid("AUTH PL@IN\r\n");
	assert_invalid("AUTH ABCDEFGHIJKLMNOPQRSTU\r\n"); /* 21 characters */
	assert_invalid("STAT\rX\r\n");                  /* bare CR inside */
	assert_invalid("USER a\x01" "b\r\n");
	struct pop3_command c;
	const char *err;
	size_t used;
	const char nul[] = "USER a\0b\r\n";
	assert_int_equal(pop3_command_parse(nul, sizeof nul - 1, MAX, &c, &used, &err),
			 POP3_PARSE_INVALID);
	assert_int_equal(used, sizeof nul - 1);
}

static void test_numbers(void **state)
{
	struct pop3_command c;
	assert_ok("RETR 4294967295\r\n", POP3_RETR, &c);
	assert_int_equal(c.num[0], 4294967295u);
	assert_ok("RETR 0000000001\r\n", POP3_RETR, &c); /* 10 digits */
	assert_int_equal(c.num[0], 1);
	assert_invalid("RETR 4294967296\r\n");
	assert_invalid("RETR 00000000001\r\n"); /* 11 digits */
	assert_invalid("RETR 0\r\n");
	assert_invalid("RETR -1\r\n");
	assert_invalid("RETR +1\r\n");
	assert_invalid("RETR 1a\r\n");
	assert_invalid("RETR 0x1\r\n");
	assert_invalid("TOP 1 -1\r\n");
	assert_invalid("LIST 99999999999999999999\r\n");
	assert_ok("TOP 1 4294967295\r\n", POP3_TOP, &c);
	assert_invalid("TOP 1 4294967296\r\n");
}

static void test_arg_limits(void **state)
{
	char line[2 * POP3_SECRET_MAX];
	struct pop3_command c;
	const char *err;
	size_t used;
	/* USER name of exactly POP3_NAME_MAX, and one more. */
	int n = snprintf(line, sizeof line, "USER %0*d\r\n", POP3_NAME_MAX, 0);
	assert_int_equal(pop3_command_parse(line, (size_t)n, sizeof line, &c, &used, &err),
			 POP3_PARSE_OK);
	assert_int_equal(c.arg.len, POP3_NAME_MAX);
	n = snprintf(line, sizeof line, "USER %0*d\r\n", POP3_NAME_MAX + 1, 0);
	assert_int_equal(pop3_command_parse(line, (size_t)n, sizeof line, &c, &used, &err),
			 POP3_PARSE_INVALID);
	n = snprintf(line, sizeof line, "PASS %0*d\r\n", POP3_SECRET_MAX, 0);
	assert_int_equal(pop3_command_parse(line, (size_t)n, sizeof line, &c, &used, &err),
			 POP3_PARSE_OK);
	n = snprintf(line, sizeof line, "PASS %0*d\r\n", POP3_SECRET_MAX + 1, 0);
	assert_int_equal(pop3_command_parse(line, (size_t)n, sizeof line, &c, &used, &err),
			 POP3_PARSE_INVALID);
	assert_ok("AUTH ABCDEFGHIJKLMNOPQRST\r\n", POP3_AUTH, &c); /* 20 characters */
}

static void test_line_limit(void **state)
{
	/* A line of exactly max bytes (LF included) is fine; max+1 is not. */
	char line[64];
	struct pop3_command c;
	const char *err;
	size_t used;
	memset(line, 'a', sizeof line);
	memcpy(line, "USER ", 5);
	line[30] = '\r';
	line[31] = '\n';
	assert_int_equal(pop3_command_parse(line, 32, 32, &c, &used, &err), POP3_PARSE_OK);
	assert_int_equal(used, 32);
	assert_int_equal(pop3_command_parse(line, 32, 31, &c, &used, &err), POP3_PARSE_TOOLONG);
	assert_int_equal(used, 0);
	/* Without LF: AGAIN below max, TOOLONG at max (the line cannot fit). */
	assert_int_equal(pop3_command_parse(line, 30, 32, &c, &used, &err), POP3_PARSE_AGAIN);
	assert_int_equal(pop3_command_parse(line, 31, 32, &c, &used, &err), POP3_PARSE_AGAIN);
	assert_int_equal(pop3_command_parse(line, 32, 31, &c, &used, &err), POP3_PARSE_TOOLONG);
	assert_int_equal(pop3_command_parse(line, 0, 32, &c, &used, &err), POP3_PARSE_AGAIN);
	assert_int_equal(pop3_command_parse(line, 5, 0, &c, &used, &err), POP3_PARSE_TOOLONG);
}

static void test_pipelined(void **state)
{
	const char *in = "USER a\r\nPASS b\r\nSTAT\r\n";
	size_t len = strlen(in), pos = 0, used;
	struct pop3_command c;
	const char *err;
	enum pop3_verb want[] = { POP3_USER, POP3_PASS, POP3_STAT };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pop3_command_parse(in + pos, len - pos, MAX, &c, &used, &err),
				 POP3_PARSE_OK);
		assert_int_equal(c.verb, want[i]);
		pos += used;
	}
	assert_int_equal(pos, len);
	assert_int_equal(pop3_command_parse(in + pos, 0, MAX, &c, &used, &err), POP3_PARSE_AGAIN);
}

static void test_byte_at_a_time(void **state)
{
	static const char *lines[] = {
		"USER alice@example.test\r\n", "PASS p w\r\n", "TOP 1 10\r\n", "uidl\n",
		"AUTH PLAIN AGEAYg==\r\n",    "RETR x\r\n",   "bogus\r\n",
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		const char *s = lines[i];
		size_t len = strlen(s), used;
		struct pop3_command whole, part;
		const char *e1, *e2;
		enum pop3_parse_status st_whole =
			pop3_command_parse(s, len, MAX, &whole, &used, &e1);
		char *buf = malloc(len);
		for (size_t k = 1; k <= len; k++) {
			memcpy(buf, s, k);
			enum pop3_parse_status st = pop3_command_parse(buf, k, MAX, &part, &used, &e2);
			if (k < len) {
				assert_int_equal(st, POP3_PARSE_AGAIN);
			} else {
				assert_int_equal(st, st_whole);
				assert_int_equal(used, len);
				assert_int_equal(part.verb, whole.verb);
				assert_int_equal(part.nnums, whole.nnums);
				assert_int_equal(part.arg.len, whole.arg.len);
				assert_int_equal(part.arg2.len, whole.arg2.len);
			}
		}
		free(buf);
	}
}

static void test_strip(void **state)
{
	struct yz_slice s = pop3_line_strip((struct yz_slice){ "abc\r\n", 5 });
	assert_int_equal(s.len, 3);
	s = pop3_line_strip((struct yz_slice){ "abc\n", 4 });
	assert_int_equal(s.len, 3);
	s = pop3_line_strip((struct yz_slice){ "*", 1 });
	assert_int_equal(s.len, 1);
	s = pop3_line_strip((struct yz_slice){ "", 0 });
	assert_int_equal(s.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_command), cmocka_unit_test(test_case_and_line_ends),
		cmocka_unit_test(test_malformed),     cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_arg_limits),    cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_pipelined),     cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_strip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
