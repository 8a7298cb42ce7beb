/*
 * smtp_command.h: SMTP command syntax (RFC 5321 §4.1) and the ESMTP
 * parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030),
 * SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT (RFC 3461), AUTH= (RFC 4954);
 * plus the arguments of BDAT (RFC 3030), AUTH and HELO/EHLO.
 *
 * Shared by the server, the outbound client, tests and fuzzers. Guarantees:
 * pure functions, no allocation, never read past the length given; every
 * failure comes with a reply suggestion (code, enhanced code per RFC 3463,
 * static text) that the server can send as is. Must never: accept a command
 * line holding NUL, CR or LF (the line reader strips the CRLF and polices
 * bare LF), or store a value longer than its field.
 *
 * Line length is the line reader's limit, not ours: RFC 4954 §4 requires
 * 12288 octets for AUTH, RFC 5321 only 512 for the rest.
 */
#ifndef YZ_LIBSMTP_SMTP_COMMAND_H
#define YZ_LIBSMTP_SMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "libmail/address.h"

/* RFC 3461 §4.4: ENVID at most 100 characters. */
#define SMTP_ENVID_MAX 100
/* RFC 3461 §4.2: ORCPT at most 500 characters. */
#define SMTP_ORCPT_MAX 500
/* RFC 4954 §5: the AUTH= mailbox; bounded like a path. */
#define SMTP_AUTH_PARAM_MAX YZ_ADDR_PATH_MAX
/* RFC 1870: size-value = 1*20DIGIT. */
#define SMTP_SIZE_DIGITS_MAX 20
/* RFC 4422 §3.1: a SASL mechanism name is 1 to 20 characters. */
#define SMTP_SASL_MECH_MAX 20
/* Longest esmtp-keyword we look at (no registered one comes close). */
#define SMTP_PARAM_KEYWORD_MAX 64

enum smtp_verb {
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_HELP,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_STARTTLS,
	SMTP_AUTH,
	SMTP_UNKNOWN,
};

struct smtp_command {
	enum smtp_verb verb;
	struct yz_slice arg; /* rest after the verb and its SP; trailing white space removed */
};

/* Parse one command line WITHOUT its CRLF. Verbs are case-insensitive; the
 * argument is checked only for presence (required/forbidden per verb). 0, or
 * -1 with a reply suggestion in *code_r (500/501), *enh_r ("5.5.2") and
 * *error_r; an unknown verb gives SMTP_UNKNOWN with 500 5.5.1. */
int smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd_r, int *code_r,
		       const char **enh_r, const char **error_r);
/* The verb's name in upper case ("MAIL"); "UNKNOWN" for SMTP_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb);

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_params {
	bool has_size;
	unsigned long long size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* decoded xtext, "" if not given */
	bool has_auth;
	char auth[SMTP_AUTH_PARAM_MAX + 1]; /* decoded AUTH= mailbox or "<>" */
};

#define SMTP_NOTIFY_NEVER 1
#define SMTP_NOTIFY_SUCCESS 2
#define SMTP_NOTIFY_FAILURE 4
#define SMTP_NOTIFY_DELAY 8

struct smtp_rcpt_params {
	unsigned notify; /* SMTP_NOTIFY_* bits; 0 = not given */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "rfc822;addr" decoded, "" if not given;
					 * a "utf-8;" value is kept as sent (RFC 6533) */
};

enum smtp_path_flags {
	/* Accept "MAIL FROM:a@b" without angle brackets (old clients, as
	 * Postfix's strict_rfc821_envelopes=no). */
	SMTP_PATH_LENIENT = 1,
};

/* Parse the argument of MAIL: "FROM:<path> [params]" (also "FROM: <path>").
 * null_ok: accept "<>" (*is_null_r set). A source route is dropped and
 * *had_route_r set. A UTF-8 address needs the SMTPUTF8 parameter. */
int smtp_parse_mail(struct yz_slice arg, bool null_ok, struct mail_address *addr_r,
		    bool *is_null_r, bool *had_route_r, struct smtp_mail_params *params_r,
		    int *code_r, const char **enh_r, const char **error_r);
/* The same with smtp_path_flags. */
int smtp_parse_mail_ex(struct yz_slice arg, unsigned flags, bool null_ok,
		       struct mail_address *addr_r, bool *is_null_r, bool *had_route_r,
		       struct smtp_mail_params *params_r, int *code_r, const char **enh_r,
		       const char **error_r);
/* Parse the argument of RCPT: "TO:<path> [params]". utf8: the transaction
 * had SMTPUTF8. "<Postmaster>" without a domain is accepted (RFC 5321
 * §4.1.1.3) as local "postmaster", domain "". */
int smtp_parse_rcpt(struct yz_slice arg, bool utf8, struct mail_address *addr_r,
		    bool *had_route_r, struct smtp_rcpt_params *params_r, int *code_r,
		    const char **enh_r, const char **error_r);
/* The same with smtp_path_flags. */
int smtp_parse_rcpt_ex(struct yz_slice arg, unsigned flags, bool utf8,
		       struct mail_address *addr_r, bool *had_route_r,
		       struct smtp_rcpt_params *params_r, int *code_r, const char **enh_r,
		       const char **error_r);
/* "BDAT <size> [LAST]": size is 1*20 digits without overflow. */
int smtp_parse_bdat(struct yz_slice arg, unsigned long long *size_r, bool *last_r,
		    const char **error_r);
/* "AUTH <mech> [initial-response]": mech 1-20 of A-Z a-z 0-9 - _; the
 * response, if any, is base64 characters or the single "=". */
int smtp_parse_auth(struct yz_slice arg, struct yz_slice *mech_r, struct yz_slice *initial_r,
		    const char **error_r);
/* "HELO/EHLO <domain>": *domain_r is the first word; *valid_r tells whether
 * it is a syntactically valid domain or address literal (policy decides
 * what to do with an invalid one). -1 if the argument is empty. */
int smtp_parse_helo(struct yz_slice arg, struct yz_slice *domain_r, bool *valid_r,
		    const char **error_r);

#endif
