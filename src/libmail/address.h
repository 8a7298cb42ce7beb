/*
 * address.h: RFC 5321 Mailbox syntax (local-part "@" domain), the form that
 * appears inside the angle brackets of MAIL FROM / RCPT TO.
 *
 * Guarantees: the parser reads only the len bytes it is given (no NUL
 * needed), enforces the RFC 5321 §4.5.3.1 size limits below, and stores the
 * local part decoded (quotes and quoted-pairs removed) so that "john"@x and
 * john@x compare equal. Must never: accept a byte it cannot round-trip through
 * mail_address_format(), accept non-ASCII without MAIL_ADDR_ALLOW_UTF8, or
 * accept invalid UTF-8.
 */
#ifndef YZ_LIBMAIL_ADDRESS_H
#define YZ_LIBMAIL_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* RFC 5321 §4.5.3.1.1-3: local part 64 octets, domain 255, path 256 (the
 * path limit counts the angle brackets and any source route; it is enforced
 * by the SMTP path parser, libsmtp/smtp_command.h). */
#define YZ_ADDR_LOCAL_MAX 64
#define YZ_ADDR_DOMAIN_MAX 255
#define YZ_ADDR_PATH_MAX 256
/* RFC 1035 / RFC 5321 §4.1.2: a label of a domain name. */
#define YZ_ADDR_LABEL_MAX 63

struct mail_address {
	char local[YZ_ADDR_LOCAL_MAX + 1];   /* decoded; may be "" only if quoted or null */
	char domain[YZ_ADDR_DOMAIN_MAX + 1]; /* as given: name or [literal] */
	bool quoted_local;                   /* the local part was a quoted-string */
	bool utf8;                           /* some byte >= 0x80 (SMTPUTF8) */
};

enum mail_addr_flags {
	MAIL_ADDR_ALLOW_UTF8 = 1,  /* SMTPUTF8 given: UTF-8 local part and U-labels */
	MAIL_ADDR_ALLOW_EMPTY = 2, /* an empty input is the null address */
};

/* Parse an RFC 5321 Mailbox (no angle brackets). 0, or -1 and *error_r set
 * to a static sentence. An empty input with MAIL_ADDR_ALLOW_EMPTY gives an
 * address with local and domain both "". */
int mail_address_parse(const char *p, size_t len, unsigned flags, struct mail_address *addr_r,
		       const char **error_r);
/* Parse a domain (name or address literal) alone, e.g. an EHLO argument or a
 * source-route hop. Same rules as the domain of mail_address_parse(). */
int mail_domain_parse(const char *p, size_t len, unsigned flags, const char **error_r);
/* true for relay-sneaking forms that must never be relayed nor taken as
 * local: '%' or '!' in the local part (percent hack, bang path), a quoted
 * local part holding '@', ':' or ',' (embedded address or route), or bytes
 * below 0x20 in a quoted local part. */
bool mail_address_is_suspicious(const struct mail_address *addr);
/* true if the address is the null address (both parts empty). */
bool mail_address_is_null(const struct mail_address *addr);
/* Append "local@domain" (domain lower-cased, local part as given, quoted
 * when it is not a dot-atom) to out; the null address appends nothing and
 * an address without domain ("postmaster") appends only its local part.
 * -1 if out's cap is reached. */
int mail_address_format(const struct mail_address *addr, struct yz_buf *out);

#endif
