/*
 * test_libsmtp_command.c: unit tests for the SMTP command parser
 * (libsmtp/smtp_command.h): every verb, case, argument rules, MAIL/RCPT
 * paths and parameters with their reply codes, path limits, source routes,
 * BDAT, AUTH and HELO arguments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "libsmtp/smtp_command.h"

static int code;
static const char *enh, *err;

/* Parse a command line; returns the result and leaves code/enh/err set. */
static int cmd(const char *line, struct smtp_command *c)
{
	code = 0;
	enh = err = NULL;
	int r = smtp_command_parse(line, strlen(line), c, &code, &enh, &err);
	if (r < 0) {
		assert_non_null(enh);
		assert_non_null(err);
	}
	return r;
}

static struct mail_address addr;
static bool is_null, had_route;
static struct smtp_mail_params mp;
static struct smtp_rcpt_params rp;

/* Parse a MAIL argument. */
static int mail(const char *arg)
{
	code = 0;
	enh = err = NULL;
	return smtp_parse_mail(yz_slice_from_str(arg), true, &addr, &is_null, &had_route, &mp,
			       &code, &enh, &err);
}

/* Parse a RCPT argument. */
static int rcpt(const char *arg, bool utf8)
{
	code = 0;
	enh = err = NULL;
	return smtp_parse_rcpt(yz_slice_from_str(arg), utf8, &addr, &had_route, &rp, &code,
			       &enh, &err);
}

/* Assert the last failure's codes. */
static void expect(int c, const char *e)
{
	assert_int_equal(code, c);
	assert_string_equal(enh, e);
}

static void test_verbs(void **state)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
		const char *arg;
	} ok[] = {
		{ "HELO mx.example", SMTP_HELO, "mx.example" },
		{ "ehlo mx.example", SMTP_EHLO, "mx.example" },
		{ "MAIL FROM:<a@b>", SMTP_MAIL, "FROM:<a@b>" },
		{ "rcpt TO:<a@b>", SMTP_RCPT, "TO:<a@b>" },
		{ "DATA", SMTP_DATA, "" },
		{ "BDAT 10 LAST", SMTP_BDAT, "10 LAST" },
		{ "RsEt", SMTP_RSET, "" },
		{ "NOOP", SMTP_NOOP, "" },
		{ "NOOP anything at all", SMTP_NOOP, "anything at all" },
		{ "QUIT", SMTP_QUIT, "" },
		{ "QUIT  ", SMTP_QUIT, "" },
		{ "HELP", SMTP_HELP, "" },
		{ "HELP MAIL", SMTP_HELP, "MAIL" },
		{ "VRFY user", SMTP_VRFY, "user" },
		{ "EXPN list", SMTP_EXPN, "list" },
		{ "starttls", SMTP_STARTTLS, "" },
		{ "AUTH PLAIN", SMTP_AUTH, "PLAIN" },
		{ "MAIL  FROM:<a@b>", SMTP_MAIL, "FROM:<a@b>" },
	};
	struct smtp_command c;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (cmd(ok[i].line, &c) != 0)
			fail_msg("rejected: %s (%s)", ok[i].line, err);
		assert_int_equal(c.verb, ok[i].verb);
		assert_int_equal(c.arg.len, strlen(ok[i].arg));
		assert_memory_equal(c.arg.p, ok[i].arg, c.arg.len);
	}
	assert_string_equal(smtp_verb_name(SMTP_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_UNKNOWN), "UNKNOWN");
}

static void test_verb_errors(void **state)
{
	struct smtp_command c;
	assert_int_equal(cmd("", &c), -1);
	expect(500, "5.5.2");
	assert_int_equal(cmd("   ", &c), -1);
	expect(500, "5.5.2");
	assert_int_equal(cmd("FOO bar", &c), -1);
	expect(500, "5.5.1");
	assert_int_equal(c.verb, SMTP_UNKNOWN);
	assert_int_equal(cmd("MAILFROM:<a@b>", &c), -1);
	expect(500, "5.5.1");
	assert_int_equal(cmd("STARTTLSX", &c), -1);
	expect(500, "5.5.1");
	/* Arguments where none are allowed, and missing required ones. */
	const char *noarg[] = { "DATA x", "RSET x", "QUIT now", "STARTTLS x" };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(cmd(noarg[i], &c), -1);
		expect(501, "5.5.4");
	}
	const char *needarg[] = { "HELO", "EHLO ", "MAIL", "RCPT", "BDAT", "VRFY", "EXPN", "AUTH" };
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(cmd(needarg[i], &c), -1);
		expect(501, "5.5.4");
	}
	/* NUL, CR or LF inside the line. */
	assert_int_equal(smtp_command_parse("NOOP\0x", 6, &c, &code, &enh, &err), -1);
	expect(500, "5.5.2");
	assert_int_equal(cmd("NOOP\rx", &c), -1);
	assert_int_equal(cmd("NOOP\nQUIT", &c), -1);
	/* Nothing past len is read. */
	assert_int_equal(smtp_command_parse("QUITTER", 4, &c, &code, &enh, &err), 0);
	assert_int_equal(c.verb, SMTP_QUIT);
}

static void test_mail_basic(void **state)
{
	assert_int_equal(mail("FROM:<john@example.org>"), 0);
	assert_string_equal(addr.local, "john");
	assert_string_equal(addr.domain, "example.org");
	assert_false(is_null);
	assert_false(had_route);
	assert_false(mp.has_size);
	assert_int_equal(mp.body, SMTP_BODY_NONE);
	assert_int_equal(mail("from:<john@example.org>"), 0);
	/* "MAIL FROM: <a@b>" is accepted, as Postfix does. */
	assert_int_equal(mail("FROM: <john@example.org>"), 0);
	assert_int_equal(mail("FROM:<>"), 0);
	assert_true(is_null);
	/* The null sender when not allowed. */
	assert_int_equal(smtp_parse_mail(yz_slice_from_str("FROM:<>"), false, &addr, &is_null,
					 &had_route, &mp, &code, &enh, &err),
			 -1);
	expect(553, "5.1.7");
	/* Missing angle brackets: strict rejects, lenient accepts. */
	assert_int_equal(mail("FROM:john@example.org"), -1);
	expect(501, "5.5.4");
	assert_int_equal(smtp_parse_mail_ex(yz_slice_from_str("FROM:john@example.org SIZE=5"),
					    SMTP_PATH_LENIENT, true, &addr, &is_null, &had_route,
					    &mp, &code, &enh, &err),
			 0);
	assert_string_equal(addr.domain, "example.org");
	assert_int_equal(mp.size, 5);
	assert_int_equal(mail("FROM<a@b>"), -1);
	expect(501, "5.5.4");
	assert_int_equal(mail("TO:<a@b>"), -1);
	expect(501, "5.5.4");
	assert_int_equal(mail("FROM:"), -1);
	expect(501, "5.5.4");
	assert_int_equal(mail("FROM:<a@b"), -1);
	expect(501, "5.1.7");
	assert_int_equal(mail("FROM:<a@@b>"), -1);
	expect(501, "5.1.7");
	assert_int_equal(mail("FROM:<a@b>x"), -1);
	expect(501, "5.5.4");
	assert_int_equal(mail("FROM:<\"a>b\"@x.y>"), 0);
	assert_string_equal(addr.local, "a>b");
}

static void test_mail_route(void **state)
{
	assert_int_equal(mail("FROM:<@x,@y:a@b>"), 0);
	assert_true(had_route);
	assert_string_equal(addr.local, "a");
	assert_string_equal(addr.domain, "b");
	assert_int_equal(mail("FROM:<@[1.2.3.4],@[IPv6:::1]:a@b>"), 0);
	assert_true(had_route);
	assert_int_equal(mail("FROM:<@x:>"), -1);
	expect(501, "5.1.7");
	assert_int_equal(mail("FROM:<@x;a@b>"), -1);
	assert_int_equal(mail("FROM:<@x,y:a@b>"), -1);
	assert_int_equal(mail("FROM:<@:a@b>"), -1);
	assert_int_equal(rcpt("TO:<@x:a@b>", false), 0);
	assert_true(had_route);
}

static void test_path_limit(void **state)
{
	char line[600], dom[300];
	/* "<" + 64 + "@" + domain + ">" = 256, then 257 */
	for (size_t total = 256; total <= 257; total++) {
		size_t dlen = total - 2 - 64 - 1;
		size_t n = 0;
		while (n < dlen) {
			size_t l = dlen - n > 60 ? 60 : dlen - n;
			memset(dom + n, 'd', l);
			n += l;
			if (n < dlen) {
				dom[n - 1] = '.';
			}
		}
		dom[n] = '\0';
		snprintf(line, sizeof line, "FROM:<%.*s@%s>", 64,
			 "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll", dom);
		assert_int_equal(strlen(line) - 5, total);
		assert_int_equal(mail(line), total == 256 ? 0 : -1);
		if (total == 257)
			expect(501, "5.1.7");
		snprintf(line, sizeof line, "TO:<%.*s@%s>", 64,
			 "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll", dom);
		assert_int_equal(rcpt(line, false), total == 256 ? 0 : -1);
		if (total == 257)
			expect(501, "5.1.3");
	}
	/* 65-character local part in a path */
	assert_int_equal(
		mail("FROM:<lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll@x>"),
		-1);
	expect(501, "5.1.7");
}

static void test_mail_params(void **state)
{
	assert_int_equal(mail("FROM:<a@b> SIZE=12345 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 "
			      "AUTH=<> SMTPUTF8"),
			 0);
	assert_true(mp.has_size);
	assert_int_equal(mp.size, 12345);
	assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
	assert_int_equal(mp.ret, SMTP_RET_HDRS);
	assert_string_equal(mp.envid, "QQ+1");
	assert_true(mp.has_auth);
	assert_string_equal(mp.auth, "<>");
	assert_true(mp.smtputf8);
	assert_int_equal(mail("FROM:<a@b> size=1 body=7bit ret=full auth=u+2Bx@y"), 0);
	assert_int_equal(mp.body, SMTP_BODY_7BIT);
	assert_int_equal(mp.ret, SMTP_RET_FULL);
	assert_string_equal(mp.auth, "u+x@y");
	assert_int_equal(mail("FROM:<a@b>  BODY=BINARYMIME  "), 0);
	assert_int_equal(mp.body, SMTP_BODY_BINARYMIME);
	/* SIZE: 20 digits max, no overflow */
	assert_int_equal(mail("FROM:<a@b> SIZE=18446744073709551615"), 0);
	assert_int_equal(mp.size, 18446744073709551615ULL);
	assert_int_equal(mail("FROM:<a@b> SIZE=18446744073709551616"), -1);
	expect(501, "5.5.4");
	assert_int_equal(mail("FROM:<a@b> SIZE=000000000000000000001"), -1);
	assert_int_equal(mail("FROM:<a@b> SIZE=00000000000000000001"), 0);
	const char *bad501[] = {
		"FROM:<a@b> SIZE", "FROM:<a@b> SIZE=", "FROM:<a@b> SIZE=12a", "FROM:<a@b> SIZE=-1",
		"FROM:<a@b> BODY=9BIT", "FROM:<a@b> BODY", "FROM:<a@b> RET=ALL",
		"FROM:<a@b> SMTPUTF8=yes", "FROM:<a@b> ENVID=a+2", "FROM:<a@b> ENVID=a+00",
		"FROM:<a@b> ENVID=a+0A", "FROM:<a@b> ENVID", "FROM:<a@b> AUTH=", "FROM:<a@b> =x",
		"FROM:<a@b> -X=1", "FROM:<a@b> X_Y=1", "FROM:<a@b> SIZE=1=2",
		"FROM:<a@b> AUTH=a\x01",
	};
	for (size_t i = 0; i < sizeof bad501 / sizeof bad501[0]; i++) {
		if (mail(bad501[i]) != -1)
			fail_msg("accepted: %s", bad501[i]);
		if (code != 501 || strcmp(enh, "5.5.4") != 0)
			fail_msg("%s: got %d %s", bad501[i], code, enh);
	}
	/* Unknown and duplicate parameters: 555 5.5.4 */
	assert_int_equal(mail("FROM:<a@b> FOO=bar"), -1);
	expect(555, "5.5.4");
	assert_int_equal(mail("FROM:<a@b> NOTIFY=NEVER"), -1);
	expect(555, "5.5.4");
	assert_int_equal(mail("FROM:<a@b> SIZE=1 size=2"), -1);
	expect(555, "5.5.4");
	assert_int_equal(mail("FROM:<a@b> SMTPUTF8 SMTPUTF8"), -1);
	expect(555, "5.5.4");
	/* ENVID: 100 decoded characters ok, 101 not */
	char line[400];
	char v[120];
	memset(v, 'e', 100);
	v[100] = '\0';
	snprintf(line, sizeof line, "FROM:<a@b> ENVID=%s", v);
	assert_int_equal(mail(line), 0);
	assert_int_equal(strlen(mp.envid), 100);
	snprintf(line, sizeof line, "FROM:<a@b> ENVID=%se", v);
	assert_int_equal(mail(line), -1);
	expect(501, "5.5.4");
}

static void test_mail_utf8(void **state)
{
	assert_int_equal(mail("FROM:<j\xc3\xb6rg@example.org>"), -1);
	expect(553, "5.6.7");
	assert_int_equal(mail("FROM:<j\xc3\xb6rg@example.org> SMTPUTF8"), 0);
	assert_true(addr.utf8);
	assert_int_equal(mail("FROM:<j\xc3@example.org> SMTPUTF8"), -1);
	expect(501, "5.1.7");
	assert_int_equal(rcpt("TO:<j\xc3\xb6rg@example.org>", false), -1);
	expect(553, "5.6.7");
	assert_int_equal(rcpt("TO:<j\xc3\xb6rg@b\xc3\xbc.example>", true), 0);
}

static void test_rcpt(void **state)
{
	assert_int_equal(rcpt("TO:<user@example.org>", false), 0);
	assert_string_equal(addr.local, "user");
	assert_int_equal(rp.notify, 0);
	assert_string_equal(rp.orcpt, "");
	assert_int_equal(rcpt("to: <user@example.org>", false), 0);
	assert_int_equal(rcpt("TO:<Postmaster>", false), 0);
	assert_string_equal(addr.local, "postmaster");
	assert_string_equal(addr.domain, "");
	assert_int_equal(rcpt("TO:<user>", false), -1);
	expect(501, "5.1.3");
	assert_int_equal(rcpt("TO:<>", false), -1);
	expect(501, "5.1.3");
	assert_int_equal(rcpt("TO:user@example.org", false), -1);
	expect(501, "5.5.4");
	assert_int_equal(rcpt("FROM:<user@example.org>", false), -1);
	expect(501, "5.5.4");
	/* Relay-sneak forms parse but are flagged for policy. */
	assert_int_equal(rcpt("TO:<a%b@local>", false), 0);
	assert_true(mail_address_is_suspicious(&addr));
	assert_int_equal(rcpt("TO:<b!a@local>", false), 0);
	assert_true(mail_address_is_suspicious(&addr));
	assert_int_equal(rcpt("TO:<\"a@b\"@local>", false), 0);
	assert_true(mail_address_is_suspicious(&addr));
	assert_int_equal(rcpt("TO:<@x:a@b>", false), 0);
	assert_true(had_route);
}

static void test_rcpt_params(void **state)
{
	assert_int_equal(rcpt("TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a+2Bb@c", false),
			 0);
	assert_int_equal(rp.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	assert_string_equal(rp.orcpt, "rfc822;a+b@c");
	assert_int_equal(rcpt("TO:<a@b> notify=never", false), 0);
	assert_int_equal(rp.notify, SMTP_NOTIFY_NEVER);
	assert_int_equal(rcpt("TO:<a@b> NOTIFY=delay", false), 0);
	assert_int_equal(rp.notify, SMTP_NOTIFY_DELAY);
	assert_int_equal(rcpt("TO:<a@b> ORCPT=utf-8;j\\x{00F6}rg@x", true), 0);
	assert_string_equal(rp.orcpt, "utf-8;j\\x{00F6}rg@x");
	const char *bad501[] = {
		"TO:<a@b> NOTIFY=NEVER,SUCCESS", "TO:<a@b> NOTIFY=", "TO:<a@b> NOTIFY",
		"TO:<a@b> NOTIFY=SUCCESS,", "TO:<a@b> NOTIFY=,SUCCESS", "TO:<a@b> NOTIFY=SOMETIMES",
		"TO:<a@b> NOTIFY=SUCCESS,SUCCESS", "TO:<a@b> ORCPT=rfc822", "TO:<a@b> ORCPT=;a@b",
		"TO:<a@b> ORCPT=rfc822;", "TO:<a@b> ORCPT=rfc822;a+0Db", "TO:<a@b> ORCPT=rf.c;a",
	};
	for (size_t i = 0; i < sizeof bad501 / sizeof bad501[0]; i++) {
		if (rcpt(bad501[i], false) != -1)
			fail_msg("accepted: %s", bad501[i]);
		if (code != 501 || strcmp(enh, "5.5.4") != 0)
			fail_msg("%s: got %d %s", bad501[i], code, enh);
	}
	assert_int_equal(rcpt("TO:<a@b> SIZE=10", false), -1);
	expect(555, "5.5.4");
	assert_int_equal(rcpt("TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", false), -1);
	expect(555, "5.5.4");
	assert_int_equal(rcpt("TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;a", false), -1);
	expect(555, "5.5.4");
	/* ORCPT: 500 characters ok, 501 not */
	char line[700], v[520];
	memset(v, 'o', 493);
	v[493] = '\0';
	snprintf(line, sizeof line, "TO:<a@b> ORCPT=rfc822;%s", v);
	assert_int_equal(rcpt(line, false), 0);
	assert_int_equal(strlen(rp.orcpt), 500);
	snprintf(line, sizeof line, "TO:<a@b> ORCPT=rfc822;%so", v);
	assert_int_equal(rcpt(line, false), -1);
}

static void test_bdat(void **state)
{
	unsigned long long size;
	bool last;
	assert_int_equal(smtp_parse_bdat(yz_slice_from_str("0"), &size, &last, &err), 0);
	assert_int_equal(size, 0);
	assert_false(last);
	assert_int_equal(smtp_parse_bdat(yz_slice_from_str("1000 LAST"), &size, &last, &err), 0);
	assert_int_equal(size, 1000);
	assert_true(last);
	assert_int_equal(smtp_parse_bdat(yz_slice_from_str("7 last"), &size, &last, &err), 0);
	assert_true(last);
	const char *bad[] = { "", "x", "-1", "10 FIRST", "10 LAST x", "10  LAST", "1e3",
			      "99999999999999999999", "18446744073709551616", "10 " };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (smtp_parse_bdat(yz_slice_from_str(bad[i]), &size, &last, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
}

static void test_auth(void **state)
{
	struct yz_slice mech, ir;
	assert_int_equal(smtp_parse_auth(yz_slice_from_str("PLAIN"), &mech, &ir, &err), 0);
	assert_true(yz_slice_eq_str(mech, "PLAIN"));
	assert_int_equal(ir.len, 0);
	assert_int_equal(smtp_parse_auth(yz_slice_from_str("plain AGEAYg=="), &mech, &ir, &err),
			 0);
	assert_true(yz_slice_eq_str(ir, "AGEAYg=="));
	assert_int_equal(smtp_parse_auth(yz_slice_from_str("PLAIN ="), &mech, &ir, &err), 0);
	assert_true(yz_slice_eq_str(ir, "="));
	assert_int_equal(smtp_parse_auth(yz_slice_from_str("SCRAM-SHA-256"), &mech, &ir, &err),
			 0);
	assert_int_equal(
		smtp_parse_auth(yz_slice_from_str("ABCDEFGHIJKLMNOPQRST"), &mech, &ir, &err), 0);
	const char *bad[] = { "", "ABCDEFGHIJKLMNOPQRSTU", "PL@IN", "PLAIN a b", "PLAIN *",
			      "PLAIN " };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (smtp_parse_auth(yz_slice_from_str(bad[i]), &mech, &ir, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
}

static void test_helo(void **state)
{
	struct yz_slice d;
	bool valid;
	assert_int_equal(smtp_parse_helo(yz_slice_from_str("mx.example.org"), &d, &valid, &err), 0);
	assert_true(valid);
	assert_int_equal(smtp_parse_helo(yz_slice_from_str("[192.0.2.1] extra"), &d, &valid, &err),
			 0);
	assert_true(valid);
	assert_true(yz_slice_eq_str(d, "[192.0.2.1]"));
	assert_int_equal(smtp_parse_helo(yz_slice_from_str("bad_name!"), &d, &valid, &err), 0);
	assert_false(valid);
	assert_int_equal(smtp_parse_helo(yz_slice_from_str(""), &d, &valid, &err), -1);
}

/* A full line through both parsers, as smtpd will do. */
static void test_line_to_mail(void **state)
{
	struct smtp_command c;
	assert_int_equal(cmd("mail from:<a@b> size=100", &c), 0);
	assert_int_equal(c.verb, SMTP_MAIL);
	assert_int_equal(smtp_parse_mail(c.arg, true, &addr, &is_null, &had_route, &mp, &code,
					 &enh, &err),
			 0);
	assert_int_equal(mp.size, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),      cmocka_unit_test(test_verb_errors),
		cmocka_unit_test(test_mail_basic), cmocka_unit_test(test_mail_route),
		cmocka_unit_test(test_path_limit), cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_mail_utf8),  cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_rcpt_params), cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_auth),       cmocka_unit_test(test_helo),
		cmocka_unit_test(test_line_to_mail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
