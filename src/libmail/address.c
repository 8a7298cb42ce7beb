/*
 * address.c: RFC 5321 §4.1.2 Mailbox parser and formatter (RFC 6531 for
 * UTF-8).
 *
 * Guarantees: never reads outside [p, p + len); every accepted address fits
 * struct mail_address and is written back by mail_address_format() in a form
 * that parses to the same address. Must never: accept control bytes, NUL,
 * invalid UTF-8, empty labels, over-long parts, or general address literals
 * (we cannot route to them).
 */
#include "libmail/address.h"

#include <arpa/inet.h>
#include <string.h>

#include "libmail/utf8.h"

/* Room for the text of an IPv6 literal and its terminating NUL. */
#define ADDR_IP_TEXT_MAX 64

/* RFC 5322 atext, ASCII part. */
static bool is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Letter or digit (RFC 5321 Let-dig). */
static bool is_let_dig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Validate the UTF-8 of [p, p+len) if it has 8-bit bytes; sets *utf8_r. */
static int check_8bit(const char *p, size_t len, unsigned flags, bool *utf8_r,
		      const char **error_r)
{
	bool any = false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80) {
			any = true;
			break;
		}
	if (!any)
		return 0;
	if ((flags & MAIL_ADDR_ALLOW_UTF8) == 0) {
		*error_r = "Non-ASCII address without SMTPUTF8";
		return -1;
	}
	if (!mail_utf8_valid(p, len)) {
		*error_r = "Invalid UTF-8 in address";
		return -1;
	}
	*utf8_r = true;
	return 0;
}

/* Validate an address literal "[...]" (IPv4 or IPv6 only). */
static int parse_literal(const char *p, size_t len, const char **error_r)
{
	char text[ADDR_IP_TEXT_MAX];
	unsigned char bin[16];
	int af = AF_INET;

	if (len < 3 || p[len - 1] != ']') {
		*error_r = "Malformed address literal";
		return -1;
	}
	p++;
	len -= 2;
	if (len >= 5 && strncasecmp(p, "IPv6:", 5) == 0) {
		af = AF_INET6;
		p += 5;
		len -= 5;
	} else {
		for (size_t i = 0; i < len; i++)
			if (p[i] == ':') {
				*error_r = "Unsupported address literal";
				return -1;
			}
	}
	if (len == 0 || len >= sizeof text) {
		*error_r = "Malformed address literal";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!(is_let_dig(c) || c == '.' || c == ':')) {
			*error_r = "Malformed address literal";
			return -1;
		}
	}
	memcpy(text, p, len);
	text[len] = '\0';
	if (inet_pton(af, text, bin) != 1) {
		*error_r = af == AF_INET ? "Malformed IPv4 address literal"
					 : "Malformed IPv6 address literal";
		return -1;
	}
	return 0;
}

/* Validate a domain name: dot-separated labels of Let-dig [Ldh-str], or
 * U-labels when UTF-8 is allowed. */
static int parse_domain_name(const char *p, size_t len, const char **error_r)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '.')
			continue;
		size_t n = i - start;
		if (n == 0) {
			*error_r = "Empty label in domain";
			return -1;
		}
		if (n > YZ_ADDR_LABEL_MAX) {
			*error_r = "Domain label too long";
			return -1;
		}
		const unsigned char *l = (const unsigned char *)p + start;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = l[k];
			if (c >= 0x80 || is_let_dig(c))
				continue;
			if (c == '-' && k != 0 && k != n - 1)
				continue;
			*error_r = "Invalid character in domain";
			return -1;
		}
		start = i + 1;
	}
	return 0;
}

/* Parse a domain name or address literal. */
int mail_domain_parse(const char *p, size_t len, unsigned flags, const char **error_r)
{
	bool utf8 = false;
	if (len == 0) {
		*error_r = "Missing domain";
		return -1;
	}
	if (len > YZ_ADDR_DOMAIN_MAX) {
		*error_r = "Domain too long";
		return -1;
	}
	if (p[0] == '[')
		return parse_literal(p, len, error_r);
	if (check_8bit(p, len, flags, &utf8, error_r) < 0)
		return -1;
	return parse_domain_name(p, len, error_r);
}

/* Parse a dot-atom local part [p, p+len); stores it in addr. */
static int parse_dot_atom(const char *p, size_t len, struct mail_address *addr,
			  const char **error_r)
{
	if (len == 0) {
		*error_r = "Empty local part";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (i == 0 || i == len - 1 || p[i - 1] == '.') {
				*error_r = "Misplaced dot in local part";
				return -1;
			}
		} else if (!is_atext(c) && c < 0x80) {
			*error_r = "Invalid character in local part";
			return -1;
		}
	}
	memcpy(addr->local, p, len);
	addr->local[len] = '\0';
	return 0;
}

/* Parse a quoted-string local part; *end_r is the index after the closing
 * DQUOTE. The decoded text goes to addr->local. */
static int parse_quoted(const char *p, size_t len, struct mail_address *addr, size_t *end_r,
			const char **error_r)
{
	size_t out = 0;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"') {
			addr->local[out] = '\0';
			*end_r = i + 1;
			return 0;
		}
		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (i + 1 >= len || (unsigned char)p[i + 1] < 32 ||
			    (unsigned char)p[i + 1] > 126) {
				*error_r = "Invalid quoted pair in local part";
				return -1;
			}
			c = (unsigned char)p[++i];
		} else if (c < 32 || c == 127) {
			/* qtextSMTP = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii */
			*error_r = "Invalid character in quoted local part";
			return -1;
		}
		if (out >= YZ_ADDR_LOCAL_MAX) {
			*error_r = "Local part too long";
			return -1;
		}
		addr->local[out++] = (char)c;
	}
	*error_r = "Unterminated quoted local part";
	return -1;
}

/* Parse an RFC 5321 Mailbox. */
int mail_address_parse(const char *p, size_t len, unsigned flags, struct mail_address *addr_r,
		       const char **error_r)
{
	size_t at;

	memset(addr_r, 0, sizeof *addr_r);
	if (len == 0) {
		if (flags & MAIL_ADDR_ALLOW_EMPTY)
			return 0;
		*error_r = "Empty address";
		return -1;
	}
	if (memchr(p, '\0', len) != NULL) {
		*error_r = "NUL byte in address";
		return -1;
	}
	if (p[0] == '"') {
		if (parse_quoted(p, len, addr_r, &at, error_r) < 0)
			return -1;
		addr_r->quoted_local = true;
		if (at >= len || p[at] != '@') {
			*error_r = at >= len ? "Missing domain" : "Garbage after quoted local part";
			return -1;
		}
	} else {
		const char *q = memchr(p, '@', len);
		if (q == NULL) {
			*error_r = "Missing domain";
			return -1;
		}
		at = (size_t)(q - p);
	}
	if (at > YZ_ADDR_LOCAL_MAX) {
		*error_r = "Local part too long";
		return -1;
	}
	if (check_8bit(p, at, flags, &addr_r->utf8, error_r) < 0)
		return -1;
	if (!addr_r->quoted_local && parse_dot_atom(p, at, addr_r, error_r) < 0)
		return -1;

	const char *d = p + at + 1;
	size_t dlen = len - at - 1;
	bool dutf8 = false;
	if (dlen > 0 && d[0] != '[' && check_8bit(d, dlen, flags, &dutf8, error_r) < 0)
		return -1;
	if (mail_domain_parse(d, dlen, flags, error_r) < 0)
		return -1;
	memcpy(addr_r->domain, d, dlen);
	addr_r->domain[dlen] = '\0';
	addr_r->utf8 = addr_r->utf8 || dutf8;
	return 0;
}

/* Relay-sneaking forms (see the header). */
bool mail_address_is_suspicious(const struct mail_address *addr)
{
	for (const char *s = addr->local; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '%' || c == '!')
			return true;
		if (addr->quoted_local && (c == '@' || c == ':' || c == ',' || c < 0x20))
			return true;
	}
	return false;
}

/* true if both parts are empty. */
bool mail_address_is_null(const struct mail_address *addr)
{
	return addr->local[0] == '\0' && addr->domain[0] == '\0' && !addr->quoted_local;
}

/* true if the local part must be quoted to be written back. */
static bool local_needs_quotes(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' && s[i + 1] == '.')
			return true;
		if (c != '.' && c < 0x80 && !is_atext(c))
			return true;
	}
	return false;
}

/* Append the canonical text of addr. */
int mail_address_format(const struct mail_address *addr, struct yz_buf *out)
{
	size_t mark = yz_buf_len(out);
	const char *l = addr->local;

	if (mail_address_is_null(addr))
		return 0;
	if (local_needs_quotes(l)) {
		if (yz_buf_append_c(out, '"') < 0)
			goto full;
		for (; *l != '\0'; l++) {
			if ((*l == '"' || *l == '\\') && yz_buf_append_c(out, '\\') < 0)
				goto full;
			if (yz_buf_append_c(out, *l) < 0)
				goto full;
		}
		if (yz_buf_append_c(out, '"') < 0)
			goto full;
	} else if (yz_buf_append_str(out, l) < 0) {
		goto full;
	}
	if (addr->domain[0] == '\0')
		return 0;
	if (yz_buf_append_c(out, '@') < 0)
		goto full;
	const char *d = addr->domain;
	if (strncasecmp(d, "[IPv6:", 6) == 0) {
		if (yz_buf_append_str(out, "[IPv6:") < 0)
			goto full;
		d += 6;
	}
	for (; *d != '\0'; d++) {
		char c = *d;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (yz_buf_append_c(out, c) < 0)
			goto full;
	}
	return 0;
full:
	yz_buf_truncate(out, mark);
	return -1;
}
