/*
 * smtp_command.c: SMTP command line and MAIL/RCPT/BDAT/AUTH/HELO argument
 * parsers (see smtp_command.h for the standards).
 *
 * Guarantees: never read outside the slice given; every output field is
 * bounded and NUL-terminated; on failure the reply suggestion is always set.
 * Must never: let a parameter value or address that failed validation reach
 * the output structs in a way a caller could mistake for success (callers
 * must check the return value; outputs are zeroed first).
 */
#include "libsmtp/smtp_command.h"

#include <string.h>
#include <strings.h>

#include "libmail/xtext.h"

enum arg_rule { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

static const struct {
	const char *name;
	enum smtp_verb verb;
	enum arg_rule arg;
	const char *usage; /* reply text when the argument rule is broken */
} smtp_verbs[] = {
	{ "HELO", SMTP_HELO, ARG_REQUIRED, "Syntax: HELO hostname" },
	{ "EHLO", SMTP_EHLO, ARG_REQUIRED, "Syntax: EHLO hostname" },
	{ "MAIL", SMTP_MAIL, ARG_REQUIRED, "Syntax: MAIL FROM:<address>" },
	{ "RCPT", SMTP_RCPT, ARG_REQUIRED, "Syntax: RCPT TO:<address>" },
	{ "DATA", SMTP_DATA, ARG_NONE, "Syntax: DATA" },
	{ "BDAT", SMTP_BDAT, ARG_REQUIRED, "Syntax: BDAT size [LAST]" },
	{ "RSET", SMTP_RSET, ARG_NONE, "Syntax: RSET" },
	{ "NOOP", SMTP_NOOP, ARG_OPTIONAL, NULL },
	{ "QUIT", SMTP_QUIT, ARG_NONE, "Syntax: QUIT" },
	{ "HELP", SMTP_HELP, ARG_OPTIONAL, NULL },
	{ "VRFY", SMTP_VRFY, ARG_REQUIRED, "Syntax: VRFY address" },
	{ "EXPN", SMTP_EXPN, ARG_REQUIRED, "Syntax: EXPN list" },
	{ "STARTTLS", SMTP_STARTTLS, ARG_NONE, "Syntax: STARTTLS" },
	{ "AUTH", SMTP_AUTH, ARG_REQUIRED, "Syntax: AUTH mechanism [initial-response]" },
};

#define N_VERBS (sizeof smtp_verbs / sizeof smtp_verbs[0])

/* Set the reply suggestion and return -1. */
static int reply(int code, const char *enh, const char *text, int *code_r, const char **enh_r,
		 const char **error_r)
{
	*code_r = code;
	*enh_r = enh;
	*error_r = text;
	return -1;
}

/* The verb's name. */
const char *smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (smtp_verbs[i].verb == verb)
			return smtp_verbs[i].name;
	return "UNKNOWN";
}

/* Parse one command line. */
int smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd_r, int *code_r,
		       const char **enh_r, const char **error_r)
{
	size_t vlen = 0, i;

	cmd_r->verb = SMTP_UNKNOWN;
	cmd_r->arg = (struct yz_slice){ line, 0 };
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == '\0' || c == '\r' || c == '\n')
			return reply(500, "5.5.2", "Invalid character in command", code_r, enh_r,
				     error_r);
	}
	/* Trailing white space is tolerated, as every MTA does. */
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	if (vlen == 0)
		return reply(500, "5.5.2", "Syntax error, command expected", code_r, enh_r,
			     error_r);
	for (i = 0; i < N_VERBS; i++)
		if (strlen(smtp_verbs[i].name) == vlen &&
		    strncasecmp(smtp_verbs[i].name, line, vlen) == 0)
			break;
	if (i == N_VERBS)
		return reply(500, "5.5.1", "Command unrecognized", code_r, enh_r, error_r);
	cmd_r->verb = smtp_verbs[i].verb;

	/* One SP separates verb and argument; extra spaces are tolerated. */
	size_t a = vlen;
	while (a < len && line[a] == ' ')
		a++;
	cmd_r->arg = (struct yz_slice){ line + a, len - a };
	if (smtp_verbs[i].arg == ARG_NONE && cmd_r->arg.len > 0)
		return reply(501, "5.5.4", smtp_verbs[i].usage, code_r, enh_r, error_r);
	if (smtp_verbs[i].arg == ARG_REQUIRED && cmd_r->arg.len == 0)
		return reply(501, "5.5.4", smtp_verbs[i].usage, code_r, enh_r, error_r);
	return 0;
}

/* Parsed path: the mailbox text inside the brackets and what follows. */
struct path_parts {
	struct yz_slice mailbox;
	struct yz_slice params;
	bool had_route;
};

/* Codes that differ between MAIL (sender) and RCPT (recipient). */
struct path_codes {
	const char *enh_addr; /* "5.1.7" sender, "5.1.3" recipient */
	const char *usage;
	const char *bad_addr;
};

static const struct path_codes mail_codes = { "5.1.7", "Syntax: MAIL FROM:<address>",
					      "Bad sender address syntax" };
static const struct path_codes rcpt_codes = { "5.1.3", "Syntax: RCPT TO:<address>",
					      "Bad recipient address syntax" };

/* Skip an at-domain list "@a,@b:" at the start of s; validates each hop. */
static int skip_route(struct yz_slice *s, unsigned aflags, const char **error_r)
{
	size_t i = 0;
	for (;;) {
		if (i >= s->len || s->p[i] != '@') {
			*error_r = "Bad source route";
			return -1;
		}
		size_t d = ++i;
		if (i < s->len && s->p[i] == '[') {
			while (i < s->len && s->p[i] != ']')
				i++;
			if (i < s->len)
				i++;
		} else {
			while (i < s->len && s->p[i] != ',' && s->p[i] != ':')
				i++;
		}
		if (i >= s->len || mail_domain_parse(s->p + d, i - d, aflags, error_r) < 0) {
			*error_r = "Bad source route";
			return -1;
		}
		if (s->p[i++] == ':')
			break;
		if (s->p[i - 1] != ',') {
			*error_r = "Bad source route";
			return -1;
		}
	}
	s->p += i;
	s->len -= i;
	return 0;
}

/* Split "PREFIX<path> params" into mailbox and params, enforcing the path
 * length limit. */
static int split_path(struct yz_slice arg, const char *prefix, unsigned flags,
		      const struct path_codes *pc, struct path_parts *pp, int *code_r,
		      const char **enh_r, const char **error_r)
{
	size_t n = strlen(prefix), i;

	memset(pp, 0, sizeof *pp);
	if (!yz_slice_has_prefix_ci(arg, prefix))
		return reply(501, "5.5.4", pc->usage, code_r, enh_r, error_r);
	i = n;
	/* "MAIL FROM: <a@b>": sloppy but common, accepted as Postfix does. */
	while (i < arg.len && arg.p[i] == ' ')
		i++;
	if (i >= arg.len)
		return reply(501, "5.5.4", pc->usage, code_r, enh_r, error_r);
	if (arg.p[i] != '<') {
		if ((flags & SMTP_PATH_LENIENT) == 0)
			return reply(501, "5.5.4", pc->usage, code_r, enh_r, error_r);
		size_t s = i;
		while (i < arg.len && arg.p[i] != ' ')
			i++;
		if (i - s > YZ_ADDR_PATH_MAX - 2)
			return reply(501, pc->enh_addr, "Path too long", code_r, enh_r, error_r);
		pp->mailbox = (struct yz_slice){ arg.p + s, i - s };
		pp->params = (struct yz_slice){ arg.p + i, arg.len - i };
		return 0;
	}
	/* Find the closing '>' outside a quoted local part. */
	size_t open = i++;
	bool quoted = false;
	for (; i < arg.len; i++) {
		char c = arg.p[i];
		if (quoted && c == '\\' && i + 1 < arg.len)
			i++;
		else if (c == '"')
			quoted = !quoted;
		else if (c == '>' && !quoted)
			break;
	}
	if (i >= arg.len)
		return reply(501, pc->enh_addr, pc->bad_addr, code_r, enh_r, error_r);
	if (i - open + 1 > YZ_ADDR_PATH_MAX)
		return reply(501, pc->enh_addr, "Path too long", code_r, enh_r, error_r);
	pp->mailbox = (struct yz_slice){ arg.p + open + 1, i - open - 1 };
	pp->params = (struct yz_slice){ arg.p + i + 1, arg.len - i - 1 };
	return 0;
}

/* Parse the mailbox of a path (route dropped); 8-bit needs allow_utf8. */
static int parse_mailbox(struct path_parts *pp, bool allow_utf8, bool allow_null,
			 const struct path_codes *pc, struct mail_address *addr_r, int *code_r,
			 const char **enh_r, const char **error_r)
{
	unsigned aflags = allow_utf8 ? MAIL_ADDR_ALLOW_UTF8 : 0;
	const char *why;

	if (pp->mailbox.len > 0 && pp->mailbox.p[0] == '@') {
		if (skip_route(&pp->mailbox, aflags, &why) < 0)
			return reply(501, pc->enh_addr, why, code_r, enh_r, error_r);
		pp->had_route = true;
		if (pp->mailbox.len == 0)
			return reply(501, pc->enh_addr, pc->bad_addr, code_r, enh_r, error_r);
	}
	if (!allow_utf8)
		for (size_t i = 0; i < pp->mailbox.len; i++)
			if ((unsigned char)pp->mailbox.p[i] >= 0x80)
				return reply(553, "5.6.7",
					     "Non-ASCII address not permitted without SMTPUTF8",
					     code_r, enh_r, error_r);
	if (allow_null)
		aflags |= MAIL_ADDR_ALLOW_EMPTY;
	if (mail_address_parse(pp->mailbox.p, pp->mailbox.len, aflags, addr_r, &why) < 0)
		return reply(501, pc->enh_addr, why, code_r, enh_r, error_r);
	return 0;
}

/* One esmtp-param split into keyword and optional value. */
struct esmtp_param {
	struct yz_slice key;
	struct yz_slice value;
	bool has_value;
};

/* Take the next parameter from *rest. 1 = got one, 0 = none left, -1 = bad
 * syntax. */
static int next_param(struct yz_slice *rest, struct esmtp_param *pr)
{
	size_t i = 0;
	while (i < rest->len && rest->p[i] == ' ')
		i++;
	if (i == rest->len)
		return 0;
	size_t s = i;
	while (i < rest->len && rest->p[i] != ' ')
		i++;
	struct yz_slice tok = { rest->p + s, i - s };
	rest->p += i;
	rest->len -= i;

	long eq = yz_slice_find(tok, '=');
	pr->key = (struct yz_slice){ tok.p, eq < 0 ? tok.len : (size_t)eq };
	pr->has_value = eq >= 0;
	pr->value = eq < 0 ? (struct yz_slice){ tok.p + tok.len, 0 }
			   : (struct yz_slice){ tok.p + eq + 1, tok.len - (size_t)eq - 1 };
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	if (pr->key.len == 0 || pr->key.len > SMTP_PARAM_KEYWORD_MAX || pr->key.p[0] == '-')
		return -1;
	for (size_t k = 0; k < pr->key.len; k++) {
		unsigned char c = (unsigned char)pr->key.p[k];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return -1;
	}
	/* esmtp-value = 1*(%d33-60 / %d62-126) */
	if (pr->has_value && pr->value.len == 0)
		return -1;
	for (size_t k = 0; k < pr->value.len; k++) {
		unsigned char c = (unsigned char)pr->value.p[k];
		if (c < 33 || c > 126 || c == '=')
			return -1;
	}
	return 1;
}

/* Parse an unsigned decimal of at most max_digits without overflow. */
static int parse_decimal(struct yz_slice s, size_t max_digits, unsigned long long *r)
{
	unsigned long long v = 0;
	if (s.len == 0 || s.len > max_digits)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c < '0' || c > '9')
			return -1;
		unsigned d = c - '0';
		if (v > (~0ULL - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*r = v;
	return 0;
}

/* Decode an xtext value into dst, which must stay printable ASCII. */
static int decode_printable_xtext(struct yz_slice v, char *dst, size_t dst_size)
{
	size_t n;
	const char *why;
	if (xtext_decode(v.p, v.len, dst, dst_size, &n, &why) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)dst[i] < 32 || (unsigned char)dst[i] > 126)
			return -1;
	return 0;
}

enum mail_param_bit { MP_SIZE = 1, MP_BODY = 2, MP_UTF8 = 4, MP_RET = 8, MP_ENVID = 16, MP_AUTH = 32 };

/* Parse the parameters of MAIL. */
static int parse_mail_params(struct yz_slice rest, struct smtp_mail_params *mp, int *code_r,
			     const char **enh_r, const char **error_r)
{
	struct esmtp_param pr;
	unsigned seen = 0;
	int r;

	while ((r = next_param(&rest, &pr)) > 0) {
		unsigned bit;
		const char *bad = NULL;
		struct yz_slice key = pr.key;
		if (yz_slice_casecmp_str(key, "SIZE")) {
			bit = MP_SIZE;
			if (parse_decimal(pr.value, SMTP_SIZE_DIGITS_MAX, &mp->size) < 0)
				bad = "Bad SIZE parameter";
			mp->has_size = true;
		} else if (yz_slice_casecmp_str(key, "BODY")) {
			bit = MP_BODY;
			if (yz_slice_casecmp_str(pr.value, "7BIT"))
				mp->body = SMTP_BODY_7BIT;
			else if (yz_slice_casecmp_str(pr.value, "8BITMIME"))
				mp->body = SMTP_BODY_8BITMIME;
			else if (yz_slice_casecmp_str(pr.value, "BINARYMIME"))
				mp->body = SMTP_BODY_BINARYMIME;
			else
				bad = "Bad BODY parameter";
		} else if (yz_slice_casecmp_str(key, "SMTPUTF8")) {
			bit = MP_UTF8;
			if (pr.has_value)
				bad = "SMTPUTF8 takes no value";
			mp->smtputf8 = true;
		} else if (yz_slice_casecmp_str(key, "RET")) {
			bit = MP_RET;
			if (yz_slice_casecmp_str(pr.value, "FULL"))
				mp->ret = SMTP_RET_FULL;
			else if (yz_slice_casecmp_str(pr.value, "HDRS"))
				mp->ret = SMTP_RET_HDRS;
			else
				bad = "Bad RET parameter";
		} else if (yz_slice_casecmp_str(key, "ENVID")) {
			bit = MP_ENVID;
			if (!pr.has_value ||
			    decode_printable_xtext(pr.value, mp->envid, sizeof mp->envid) < 0)
				bad = "Bad ENVID parameter";
		} else if (yz_slice_casecmp_str(key, "AUTH")) {
			bit = MP_AUTH;
			if (!pr.has_value ||
			    decode_printable_xtext(pr.value, mp->auth, sizeof mp->auth) < 0)
				bad = "Bad AUTH parameter";
			mp->has_auth = true;
		} else {
			return reply(555, "5.5.4", "Unsupported MAIL parameter", code_r, enh_r,
				     error_r);
		}
		if (seen & bit)
			return reply(555, "5.5.4", "Duplicate MAIL parameter", code_r, enh_r,
				     error_r);
		seen |= bit;
		if (bad != NULL)
			return reply(501, "5.5.4", bad, code_r, enh_r, error_r);
	}
	if (r < 0)
		return reply(501, "5.5.4", "Bad parameter syntax", code_r, enh_r, error_r);
	return 0;
}

/* Parse a NOTIFY value: "NEVER" or a list of SUCCESS, FAILURE, DELAY. */
static int parse_notify(struct yz_slice v, unsigned *notify_r)
{
	unsigned n = 0;
	size_t i = 0;
	if (v.len == 0)
		return -1;
	while (i <= v.len) {
		size_t s = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		struct yz_slice item = { v.p + s, i - s };
		unsigned bit;
		if (yz_slice_casecmp_str(item, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (yz_slice_casecmp_str(item, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (yz_slice_casecmp_str(item, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (yz_slice_casecmp_str(item, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if (n & bit)
			return -1;
		n |= bit;
		i++;
	}
	if ((n & SMTP_NOTIFY_NEVER) && n != SMTP_NOTIFY_NEVER)
		return -1;
	*notify_r = n;
	return 0;
}

/* Parse an ORCPT value "addr-type;xtext" into dst. */
static int parse_orcpt(struct yz_slice v, char *dst, size_t dst_size)
{
	long semi = yz_slice_find(v, ';');
	if (semi <= 0)
		return -1;
	struct yz_slice type = { v.p, (size_t)semi };
	struct yz_slice addr = { v.p + semi + 1, v.len - (size_t)semi - 1 };
	/* addr-type is an atom; we check the atom characters we can route. */
	for (size_t i = 0; i < type.len; i++) {
		unsigned char c = (unsigned char)type.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return -1;
	}
	if (addr.len == 0 || type.len + 1 >= dst_size)
		return -1;
	memcpy(dst, type.p, type.len);
	dst[type.len] = ';';
	if (yz_slice_casecmp_str(type, "utf-8")) {
		/* RFC 6533 utf-8-addr-xtext: kept as sent, already checked
		 * to be printable ASCII without SP or '='. */
		if (type.len + 1 + addr.len >= dst_size)
			return -1;
		memcpy(dst + type.len + 1, addr.p, addr.len);
		dst[type.len + 1 + addr.len] = '\0';
		return 0;
	}
	return decode_printable_xtext(addr, dst + type.len + 1, dst_size - type.len - 1);
}

/* Parse the parameters of RCPT. */
static int parse_rcpt_params(struct yz_slice rest, struct smtp_rcpt_params *rp, int *code_r,
			     const char **enh_r, const char **error_r)
{
	struct esmtp_param pr;
	bool seen_notify = false, seen_orcpt = false;
	int r;

	while ((r = next_param(&rest, &pr)) > 0) {
		if (yz_slice_casecmp_str(pr.key, "NOTIFY")) {
			if (seen_notify)
				return reply(555, "5.5.4", "Duplicate RCPT parameter", code_r,
					     enh_r, error_r);
			seen_notify = true;
			if (parse_notify(pr.value, &rp->notify) < 0)
				return reply(501, "5.5.4", "Bad NOTIFY parameter", code_r, enh_r,
					     error_r);
		} else if (yz_slice_casecmp_str(pr.key, "ORCPT")) {
			if (seen_orcpt)
				return reply(555, "5.5.4", "Duplicate RCPT parameter", code_r,
					     enh_r, error_r);
			seen_orcpt = true;
			if (parse_orcpt(pr.value, rp->orcpt, sizeof rp->orcpt) < 0)
				return reply(501, "5.5.4", "Bad ORCPT parameter", code_r, enh_r,
					     error_r);
		} else {
			return reply(555, "5.5.4", "Unsupported RCPT parameter", code_r, enh_r,
				     error_r);
		}
	}
	if (r < 0)
		return reply(501, "5.5.4", "Bad parameter syntax", code_r, enh_r, error_r);
	return 0;
}

/* The parameter list must start with SP (or be empty). */
static int params_start_ok(struct yz_slice params)
{
	return params.len == 0 || params.p[0] == ' ';
}

/* Parse MAIL FROM with flags. */
int smtp_parse_mail_ex(struct yz_slice arg, unsigned flags, bool null_ok,
		       struct mail_address *addr_r, bool *is_null_r, bool *had_route_r,
		       struct smtp_mail_params *params_r, int *code_r, const char **enh_r,
		       const char **error_r)
{
	struct path_parts pp;

	memset(addr_r, 0, sizeof *addr_r);
	memset(params_r, 0, sizeof *params_r);
	*is_null_r = false;
	*had_route_r = false;
	if (split_path(arg, "FROM:", flags, &mail_codes, &pp, code_r, enh_r, error_r) < 0)
		return -1;
	if (!params_start_ok(pp.params))
		return reply(501, "5.5.4", "Syntax error after address", code_r, enh_r,
			     error_r);
	/* Parameters first: SMTPUTF8 decides whether the address may be UTF-8. */
	if (parse_mail_params(pp.params, params_r, code_r, enh_r, error_r) < 0)
		return -1;
	if (parse_mailbox(&pp, params_r->smtputf8, true, &mail_codes, addr_r, code_r, enh_r,
			  error_r) < 0)
		return -1;
	*had_route_r = pp.had_route;
	if (mail_address_is_null(addr_r)) {
		if (pp.had_route)
			return reply(501, "5.1.7", "Bad sender address syntax", code_r, enh_r,
				     error_r);
		if (!null_ok)
			return reply(553, "5.1.7", "Null sender not allowed", code_r, enh_r,
				     error_r);
		*is_null_r = true;
	}
	return 0;
}

/* Parse MAIL FROM, strict path form. */
int smtp_parse_mail(struct yz_slice arg, bool null_ok, struct mail_address *addr_r,
		    bool *is_null_r, bool *had_route_r, struct smtp_mail_params *params_r,
		    int *code_r, const char **enh_r, const char **error_r)
{
	return smtp_parse_mail_ex(arg, 0, null_ok, addr_r, is_null_r, had_route_r, params_r,
				  code_r, enh_r, error_r);
}

/* Parse RCPT TO with flags. */
int smtp_parse_rcpt_ex(struct yz_slice arg, unsigned flags, bool utf8,
		       struct mail_address *addr_r, bool *had_route_r,
		       struct smtp_rcpt_params *params_r, int *code_r, const char **enh_r,
		       const char **error_r)
{
	struct path_parts pp;

	memset(addr_r, 0, sizeof *addr_r);
	memset(params_r, 0, sizeof *params_r);
	*had_route_r = false;
	if (split_path(arg, "TO:", flags, &rcpt_codes, &pp, code_r, enh_r, error_r) < 0)
		return -1;
	if (!params_start_ok(pp.params))
		return reply(501, "5.5.4", "Syntax error after address", code_r, enh_r,
			     error_r);
	if (pp.mailbox.len == 0)
		return reply(501, "5.1.3", "Null recipient not allowed", code_r, enh_r, error_r);
	if (yz_slice_casecmp_str(pp.mailbox, "postmaster")) {
		/* RFC 5321 §4.1.1.3: <Postmaster> without a domain. */
		memcpy(addr_r->local, "postmaster", sizeof "postmaster");
	} else if (parse_mailbox(&pp, utf8, false, &rcpt_codes, addr_r, code_r, enh_r,
				 error_r) < 0) {
		return -1;
	}
	*had_route_r = pp.had_route;
	return parse_rcpt_params(pp.params, params_r, code_r, enh_r, error_r);
}

/* Parse RCPT TO, strict path form. */
int smtp_parse_rcpt(struct yz_slice arg, bool utf8, struct mail_address *addr_r,
		    bool *had_route_r, struct smtp_rcpt_params *params_r, int *code_r,
		    const char **enh_r, const char **error_r)
{
	return smtp_parse_rcpt_ex(arg, 0, utf8, addr_r, had_route_r, params_r, code_r, enh_r,
				  error_r);
}

/* Parse the BDAT argument. */
int smtp_parse_bdat(struct yz_slice arg, unsigned long long *size_r, bool *last_r,
		    const char **error_r)
{
	size_t i = 0;
	*size_r = 0;
	*last_r = false;
	while (i < arg.len && arg.p[i] != ' ')
		i++;
	if (parse_decimal((struct yz_slice){ arg.p, i }, SMTP_SIZE_DIGITS_MAX, size_r) < 0) {
		*error_r = "Syntax: BDAT size [LAST]";
		return -1;
	}
	if (i == arg.len)
		return 0;
	struct yz_slice rest = { arg.p + i + 1, arg.len - i - 1 };
	if (!yz_slice_casecmp_str(rest, "LAST")) {
		*error_r = "Syntax: BDAT size [LAST]";
		return -1;
	}
	*last_r = true;
	return 0;
}

/* Parse the AUTH argument. */
int smtp_parse_auth(struct yz_slice arg, struct yz_slice *mech_r, struct yz_slice *initial_r,
		    const char **error_r)
{
	size_t i = 0;
	*mech_r = (struct yz_slice){ arg.p, 0 };
	*initial_r = (struct yz_slice){ arg.p + arg.len, 0 };
	while (i < arg.len && arg.p[i] != ' ') {
		unsigned char c = (unsigned char)arg.p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_')) {
			*error_r = "Invalid SASL mechanism name";
			return -1;
		}
		i++;
	}
	if (i == 0 || i > SMTP_SASL_MECH_MAX) {
		*error_r = "Invalid SASL mechanism name";
		return -1;
	}
	*mech_r = (struct yz_slice){ arg.p, i };
	if (i == arg.len)
		return 0;
	struct yz_slice ir = { arg.p + i + 1, arg.len - i - 1 };
	if (ir.len == 0) {
		*error_r = "Syntax: AUTH mechanism [initial-response]";
		return -1;
	}
	if (!(ir.len == 1 && ir.p[0] == '=')) {
		for (size_t k = 0; k < ir.len; k++) {
			unsigned char c = (unsigned char)ir.p[k];
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			      (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=')) {
				*error_r = "Invalid initial response";
				return -1;
			}
		}
	}
	*initial_r = ir;
	return 0;
}

/* Parse the HELO/EHLO argument. */
int smtp_parse_helo(struct yz_slice arg, struct yz_slice *domain_r, bool *valid_r,
		    const char **error_r)
{
	size_t i = 0;
	const char *why;
	while (i < arg.len && arg.p[i] != ' ')
		i++;
	*domain_r = (struct yz_slice){ arg.p, i };
	*valid_r = false;
	if (i == 0) {
		*error_r = "Syntax: EHLO hostname";
		return -1;
	}
	*valid_r = mail_domain_parse(arg.p, i, MAIL_ADDR_ALLOW_UTF8, &why) == 0;
	return 0;
}
