/* test_smtpd_cmd.c: the smtpd command table and state rules, the Received
 * field, connection accounting and the error rule (no sockets). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "smtpd/smtpd_private.h"

static void test_table_complete(void **state)
{
	static const enum smtp_verb verbs[] = {
		SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BDAT, SMTP_RSET,
		SMTP_NOOP, SMTP_QUIT, SMTP_HELP, SMTP_VRFY, SMTP_EXPN, SMTP_STARTTLS, SMTP_AUTH,
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		const struct smtpd_cmd *c = smtpd_cmd_find(verbs[i]);

		assert_non_null(c);
		assert_int_equal(c->verb, verbs[i]);
		assert_non_null(c->run);
		assert_true(c->counter < SMTPD_C__COUNT);
	}
	assert_null(smtpd_cmd_find(SMTP_UNKNOWN));
}

/* Expect cmd in st to be allowed (code 0) or refused with 503 and text. */
static void expect(enum smtp_verb verb, enum smtpd_state st, bool authed, int want_code,
		   const char *want_text)
{
	const struct smtpd_cmd *c = smtpd_cmd_find(verb);
	const char *enh = NULL, *text = NULL;
	int code = 0;
	int r = smtpd_cmd_check(c, st, authed, &code, &enh, &text);

	if (want_code == 0) {
		if (r != 0)
			fail_msg("%s in state %d refused: %s", c->name, st, text);
		return;
	}
	assert_int_equal(r, -1);
	assert_int_equal(code, want_code);
	assert_string_equal(enh, "5.5.1");
	if (want_text != NULL && strstr(text, want_text) == NULL)
		fail_msg("%s in state %d: '%s' lacks '%s'", c->name, st, text, want_text);
}

static void test_sequencing(void **state)
{
	(void)state;
	/* Always allowed. */
	for (int st = 0; st < SMTPD_S__COUNT; st++) {
		expect(SMTP_HELO, st, false, 0, NULL);
		expect(SMTP_EHLO, st, false, 0, NULL);
		expect(SMTP_RSET, st, false, 0, NULL);
		expect(SMTP_NOOP, st, false, 0, NULL);
		expect(SMTP_QUIT, st, false, 0, NULL);
		expect(SMTP_HELP, st, false, 0, NULL);
		expect(SMTP_VRFY, st, false, 0, NULL);
		expect(SMTP_EXPN, st, false, 0, NULL);
		/* BDAT is checked by its handler, which must swallow the chunk. */
		expect(SMTP_BDAT, st, false, 0, NULL);
	}
	/* MAIL */
	expect(SMTP_MAIL, SMTPD_S_INIT, false, 503, "HELO/EHLO first");
	expect(SMTP_MAIL, SMTPD_S_READY, false, 0, NULL);
	expect(SMTP_MAIL, SMTPD_S_MAIL, false, 503, "nested MAIL");
	expect(SMTP_MAIL, SMTPD_S_RCPT, false, 503, "nested MAIL");
	expect(SMTP_MAIL, SMTPD_S_BDAT, false, 503, "nested MAIL");
	/* RCPT */
	expect(SMTP_RCPT, SMTPD_S_INIT, false, 503, "need MAIL");
	expect(SMTP_RCPT, SMTPD_S_READY, false, 503, "need MAIL");
	expect(SMTP_RCPT, SMTPD_S_MAIL, false, 0, NULL);
	expect(SMTP_RCPT, SMTPD_S_RCPT, false, 0, NULL);
	expect(SMTP_RCPT, SMTPD_S_BDAT, false, 503, "need MAIL");
	/* DATA */
	expect(SMTP_DATA, SMTPD_S_INIT, false, 503, "need MAIL");
	expect(SMTP_DATA, SMTPD_S_READY, false, 503, "need MAIL");
	expect(SMTP_DATA, SMTPD_S_MAIL, false, 503, "need RCPT");
	expect(SMTP_DATA, SMTPD_S_RCPT, false, 0, NULL);
	expect(SMTP_DATA, SMTPD_S_BDAT, false, 503, "DATA after BDAT");
	/* STARTTLS: not inside a transaction. */
	expect(SMTP_STARTTLS, SMTPD_S_INIT, false, 0, NULL);
	expect(SMTP_STARTTLS, SMTPD_S_READY, false, 0, NULL);
	expect(SMTP_STARTTLS, SMTPD_S_MAIL, false, 503, "transaction");
	expect(SMTP_STARTTLS, SMTPD_S_RCPT, false, 503, "transaction");
	/* AUTH: after EHLO, not in a transaction, not twice. */
	expect(SMTP_AUTH, SMTPD_S_INIT, false, 503, "EHLO first");
	expect(SMTP_AUTH, SMTPD_S_READY, false, 0, NULL);
	expect(SMTP_AUTH, SMTPD_S_READY, true, 503, "already authenticated");
	expect(SMTP_AUTH, SMTPD_S_MAIL, false, 503, "transaction");
	expect(SMTP_AUTH, SMTPD_S_RCPT, false, 503, "transaction");
}

static void received(const struct smtpd_received_info *ri, char *out, size_t size)
{
	struct yz_buf b;

	yz_buf_init(&b, 0);
	assert_int_equal(smtpd_received_format(&b, ri), 0);
	snprintf(out, size, "%s", yz_buf_cstr(&b));
	yz_buf_free(&b);
}

static void test_received_plain(void **state)
{
	struct smtpd_received_info ri;
	char out[2048];

	(void)state;
	memset(&ri, 0, sizeof(ri));
	ri.helo = "client.example";
	ri.ip = "192.0.2.1";
	ri.hostname = "mx.example.test";
	ri.protocol = "ESMTP";
	ri.qid = "0123456789AB";
	ri.rcpt = "alice@example.test";
	ri.date = "Sat, 28 Nov 2026 22:50:34 +0000";
	received(&ri, out, sizeof(out));
	assert_string_equal(out,
			    "Received: from client.example (unknown [192.0.2.1])\r\n"
			    "\tby mx.example.test (yizhan) with ESMTP id 0123456789AB\r\n"
			    "\tfor <alice@example.test>; Sat, 28 Nov 2026 22:50:34 +0000\r\n");
}

static void test_received_tls_many(void **state)
{
	struct smtpd_received_info ri;
	char out[2048];

	(void)state;
	memset(&ri, 0, sizeof(ri));
	ri.helo = "";
	ri.ip = "::1";
	ri.hostname = "mx.example.test";
	ri.protocol = "ESMTPSA";
	ri.tls_version = "TLSv1.3";
	ri.tls_cipher = "TLS_AES_256_GCM_SHA384";
	ri.tls_bits = 256;
	ri.qid = "0123456789AB";
	ri.rcpt = NULL;
	ri.date = "Sat, 28 Nov 2026 22:50:34 +0000";
	received(&ri, out, sizeof(out));
	assert_string_equal(out,
			    "Received: from unknown (unknown [::1])\r\n"
			    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
			    "\tby mx.example.test (yizhan) with ESMTPSA id 0123456789AB; "
			    "Sat, 28 Nov 2026 22:50:34 +0000\r\n");
}

static void test_received_injection(void **state)
{
	struct smtpd_received_info ri;
	char out[2048];

	(void)state;
	memset(&ri, 0, sizeof(ri));
	ri.helo = "evil\r\nX-Injected: yes";
	ri.ip = "192.0.2.1";
	ri.hostname = "mx";
	ri.protocol = "SMTP";
	ri.qid = "Q";
	ri.rcpt = "a\r\nB: c@d";
	ri.date = "D";
	received(&ri, out, sizeof(out));
	assert_null(strstr(out, "\r\nX-Injected"));
	assert_null(strstr(out, "\r\nB:"));
	assert_non_null(strstr(out, "from evil??X-Injected:?yes "));
}

static void test_sanitize(void **state)
{
	char out[8];

	(void)state;
	smtpd_sanitize("abc\x01\x80", 5, out, sizeof(out));
	assert_string_equal(out, "abc??");
	smtpd_sanitize("0123456789", 10, out, sizeof(out));
	assert_string_equal(out, "0123456"); /* bounded */
	smtpd_sanitize("x", 0, out, sizeof(out));
	assert_string_equal(out, "");
}

static void test_limits(void **state)
{
	struct smtpd_limits *lim = smtpd_limits_new(3, 2);

	(void)state;
	assert_int_equal(smtpd_limits_connect(lim, "192.0.2.1"), SMTPD_LIMIT_OK);
	assert_int_equal(smtpd_limits_connect(lim, "192.0.2.1"), SMTPD_LIMIT_OK);
	/* per IP: at the limit, refused */
	assert_int_equal(smtpd_limits_connect(lim, "192.0.2.1"), SMTPD_LIMIT_PER_IP);
	assert_int_equal(smtpd_limits_of_ip(lim, "192.0.2.1"), 2);
	assert_int_equal(smtpd_limits_connect(lim, "::1"), SMTPD_LIMIT_OK);
	/* total: 3 open */
	assert_int_equal(smtpd_limits_total(lim), 3);
	assert_int_equal(smtpd_limits_connect(lim, "198.51.100.1"), SMTPD_LIMIT_TOTAL);
	smtpd_limits_disconnect(lim, "192.0.2.1");
	assert_int_equal(smtpd_limits_total(lim), 2);
	assert_int_equal(smtpd_limits_connect(lim, "198.51.100.1"), SMTPD_LIMIT_OK);
	smtpd_limits_disconnect(lim, "::1");
	smtpd_limits_disconnect(lim, "::1"); /* unknown now: ignored */
	assert_int_equal(smtpd_limits_of_ip(lim, "::1"), 0);
	assert_int_equal(smtpd_limits_total(lim), 2);
	smtpd_limits_free(&lim);
	assert_null(lim);

	/* 0 = unlimited */
	lim = smtpd_limits_new(0, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(smtpd_limits_connect(lim, "192.0.2.9"), SMTPD_LIMIT_OK);
	assert_int_equal(smtpd_limits_of_ip(lim, "192.0.2.9"), 1000);
	smtpd_limits_free(&lim);
}

static void test_error_rule(void **state)
{
	(void)state;
	assert_int_equal(smtpd_limits_error_action(1, 10, 20), SMTPD_ERR_NONE);
	assert_int_equal(smtpd_limits_error_action(10, 10, 20), SMTPD_ERR_NONE);
	assert_int_equal(smtpd_limits_error_action(11, 10, 20), SMTPD_ERR_SLEEP);
	assert_int_equal(smtpd_limits_error_action(19, 10, 20), SMTPD_ERR_SLEEP);
	assert_int_equal(smtpd_limits_error_action(20, 10, 20), SMTPD_ERR_DISCONNECT);
	assert_int_equal(smtpd_limits_error_action(21, 10, 20), SMTPD_ERR_DISCONNECT);
	assert_int_equal(smtpd_limits_error_action(100, 0, 0), SMTPD_ERR_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_sequencing),
		cmocka_unit_test(test_received_plain),
		cmocka_unit_test(test_received_tls_many),
		cmocka_unit_test(test_received_injection),
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_error_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
