/*
 * fuzz_smtp_command.c: libFuzzer target for the SMTP command parser and the
 * MAIL/RCPT/BDAT/AUTH/HELO argument parsers (libsmtp/smtp_command.h), plus
 * the SASL PLAIN and xtext decoders reached from them.
 *
 * The input is one command line. Every failure must carry a reply code of
 * the documented set and an enhanced code whose class matches; an accepted
 * MAIL or RCPT address must round-trip through mail_address_format().
 * Aborts on any violation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "libmail/sasl.h"
#include "libmail/xtext.h"
#include "libsmtp/smtp_command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failure's suggestion must be complete and consistent. */
static void check_reply(int code, const char *enh, const char *err)
{
	if (enh == NULL || err == NULL)
		abort();
	if (code != 500 && code != 501 && code != 553 && code != 555)
		abort();
	if (enh[0] != '0' + code / 100 || enh[1] != '.')
		abort();
}

/* An accepted address formats to text that parses back the same. */
static void check_addr(const struct mail_address *a, bool utf8)
{
	struct mail_address b;
	struct yz_buf out;
	const char *err;
	if (a->domain[0] == '\0')
		return; /* null sender or <postmaster> */
	yz_buf_init(&out, 1024);
	if (mail_address_format(a, &out) < 0)
		abort();
	if (mail_address_parse(yz_buf_data(&out), yz_buf_len(&out),
			       utf8 ? MAIL_ADDR_ALLOW_UTF8 : 0, &b, &err) < 0)
		abort();
	if (strcmp(a->local, b.local) != 0 || strcasecmp(a->domain, b.domain) != 0)
		abort();
	yz_buf_free(&out);
}

/* Run the argument parsers on arg. */
static void parse_args(struct yz_slice arg, bool flag)
{
	struct mail_address a;
	bool is_null, route, last, valid;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	int code;
	const char *enh, *err;
	unsigned long long size;
	struct yz_slice mech, ir, dom;

	for (unsigned flags = 0; flags < 2; flags++) {
		if (smtp_parse_mail_ex(arg, flags, flag, &a, &is_null, &route, &mp, &code, &enh,
				       &err) < 0)
			check_reply(code, enh, err);
		else {
			if (strlen(mp.envid) > SMTP_ENVID_MAX || strlen(mp.auth) > SMTP_AUTH_PARAM_MAX)
				abort();
			if (is_null != (a.local[0] == '\0' && a.domain[0] == '\0'))
				abort();
			check_addr(&a, mp.smtputf8);
		}
		if (smtp_parse_rcpt_ex(arg, flags, flag, &a, &route, &rp, &code, &enh, &err) < 0)
			check_reply(code, enh, err);
		else {
			if ((rp.notify & SMTP_NOTIFY_NEVER) && rp.notify != SMTP_NOTIFY_NEVER)
				abort();
			if (strlen(rp.orcpt) > SMTP_ORCPT_MAX)
				abort();
			check_addr(&a, flag);
		}
	}
	(void)smtp_parse_bdat(arg, &size, &last, &err);
	if (smtp_parse_auth(arg, &mech, &ir, &err) == 0) {
		if (mech.len == 0 || mech.len > SMTP_SASL_MECH_MAX)
			abort();
		struct sasl_plain sp;
		if (sasl_plain_decode_b64(ir.p, ir.len, &sp, &err) == 0 &&
		    (sp.authcid[0] == '\0' || sp.passwd[0] == '\0'))
			abort();
		sasl_plain_wipe(&sp);
		char login[SASL_FIELD_MAX + 1];
		(void)sasl_login_decode(ir.p, ir.len, login, &err);
	}
	(void)smtp_parse_helo(arg, &dom, &valid, &err);
	char x[SMTP_ORCPT_MAX + 1];
	size_t xl;
	(void)xtext_decode(arg.p, arg.len, x, sizeof x, &xl, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command cmd;
	int code;
	const char *enh, *err;
	char *p = malloc(size ? size : 1);
	memcpy(p, data, size);

	if (smtp_command_parse(p, size, &cmd, &code, &enh, &err) < 0) {
		if (code != 500 && code != 501)
			abort();
		check_reply(code, enh, err);
	} else {
		if (cmd.verb == SMTP_UNKNOWN)
			abort();
		if (cmd.arg.p < p || cmd.arg.p + cmd.arg.len > p + size)
			abort();
	}
	/* The argument parsers also get the raw input, first byte as flag. */
	struct yz_slice arg = { p, size };
	parse_args(size > 0 ? (struct yz_slice){ p + 1, size - 1 } : arg,
		   size > 0 && (data[0] & 1));
	if (cmd.verb != SMTP_UNKNOWN)
		parse_args(cmd.arg, true);
	free(p);
	return 0;
}
