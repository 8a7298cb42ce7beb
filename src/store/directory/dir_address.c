/*
 * dir_address.c: syntax of the names the directory stores: domains,
 * addresses (local@domain, @domain catch-alls) and quota sizes.
 *
 * Guarantees: pure functions, no I/O, no allocation; every length is
 * checked against the named bounds of directory.h before a byte is copied;
 * output is lower-cased and NUL-terminated, and untouched on failure except
 * for its first byte.
 *
 * Must never: accept a local part with '%', '!' or '@', a quoted local
 * part, a source route ("@a,@b:user@c") or a domain literal ("[1.2.3.4]"),
 * because those are the forms that sneak relaying through a naive MTA.
 */
#include "store/directory/directory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ASCII lower-case without the locale. */
static char addr_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Letter, digit or hyphen. */
static bool addr_is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

/* RFC 5322 atext, less '%' and '!' (relay forms) and less '@'. */
static bool addr_is_atext(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("#$&'*+-/=?^_`{|}~", c) != NULL;
}

/* Validate a domain of len bytes, lower-case it into out. */
static int addr_domain_check(const char *d, size_t len, char *out,
			     size_t outsize, const char **error_r)
{
	if (len == 0) {
		*error_r = "malformed domain: empty";
		return -1;
	}
	if (len > YZ_DIR_DOMAIN_MAX) {
		*error_r = "malformed domain: longer than 253 characters";
		return -1;
	}
	if (len + 1 > outsize) {
		*error_r = "malformed domain: does not fit the output buffer";
		return -1;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = d[i];
		if (c == '.') {
			if (label == 0) {
				*error_r = "malformed domain: empty label";
				return -1;
			}
			if (d[i - 1] == '-') {
				*error_r = "malformed domain: label ends with '-'";
				return -1;
			}
			label = 0;
			continue;
		}
		if (!addr_is_ldh(c)) {
			*error_r = "malformed domain: only letters, digits, '-' and '.' are allowed";
			return -1;
		}
		if (c == '-' && label == 0) {
			*error_r = "malformed domain: label starts with '-'";
			return -1;
		}
		if (++label > YZ_DIR_LABEL_MAX) {
			*error_r = "malformed domain: label longer than 63 characters";
			return -1;
		}
	}
	if (label == 0) {
		*error_r = "malformed domain: empty label";
		return -1;
	}
	if (d[len - 1] == '-') {
		*error_r = "malformed domain: label ends with '-'";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = addr_lower(d[i]);
	out[len] = '\0';
	return 0;
}

/* Validate a dot-atom local part of len bytes. */
static int addr_local_check(const char *l, size_t len, const char **error_r)
{
	if (len == 0) {
		*error_r = "malformed address: empty local part";
		return -1;
	}
	if (len > YZ_DIR_LOCAL_MAX) {
		*error_r = "malformed address: local part longer than 64 characters";
		return -1;
	}
	if (l[0] == '.' || l[len - 1] == '.') {
		*error_r = "malformed address: local part starts or ends with '.'";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = l[i];
		if (c == '.') {
			if (l[i + 1] == '.') {
				*error_r = "malformed address: '..' in local part";
				return -1;
			}
			continue;
		}
		if (c == '%' || c == '!') {
			*error_r = "malformed address: '%' and '!' are not allowed in a local part";
			return -1;
		}
		if (!addr_is_atext(c)) {
			*error_r = "malformed address: invalid character in local part";
			return -1;
		}
	}
	return 0;
}

/* Validate and lower-case a domain name. */
int yz_dir_domain_normalize(const char *domain, char *out, size_t outsize,
			    const char **error_r)
{
	if (domain == NULL) {
		*error_r = "malformed domain: empty";
		return -1;
	}
	/* strnlen bounds the scan: a huge string costs no more than a long one. */
	size_t len = strnlen(domain, YZ_DIR_DOMAIN_MAX + 1);
	return addr_domain_check(domain, len, out, outsize, error_r);
}

/* Validate and lower-case local@domain (or @domain when allowed). */
int yz_dir_address_normalize(const char *address, bool allow_catchall,
			     char *out, size_t outsize, const char **domain_r,
			     const char **error_r)
{
	if (address == NULL || address[0] == '\0') {
		*error_r = "malformed address: empty";
		return -1;
	}
	size_t len = strnlen(address, YZ_DIR_ADDRESS_MAX + 1);
	if (len > YZ_DIR_ADDRESS_MAX) {
		*error_r = "malformed address: longer than 254 characters";
		return -1;
	}
	if (len + 1 > outsize) {
		*error_r = "malformed address: does not fit the output buffer";
		return -1;
	}
	const char *at = memchr(address, '@', len);
	if (at == NULL) {
		*error_r = "malformed address: no '@domain'";
		return -1;
	}
	size_t llen = (size_t)(at - address);
	const char *dom = at + 1;
	size_t dlen = len - llen - 1;
	if (memchr(dom, '@', dlen) != NULL) {
		*error_r = "malformed address: more than one '@' (source routes are not accepted)";
		return -1;
	}
	if (llen == 0 && !allow_catchall) {
		*error_r = "malformed address: empty local part";
		return -1;
	}
	if (llen > 0 && addr_local_check(address, llen, error_r) < 0)
		return -1;
	if (addr_domain_check(dom, dlen, out + llen + 1, outsize - llen - 1,
			      error_r) < 0)
		return -1;
	for (size_t i = 0; i < llen; i++)
		out[i] = addr_lower(address[i]);
	out[llen] = '@';
	if (domain_r != NULL)
		*domain_r = out + llen + 1;
	return 0;
}

/* Parse a quota size with an optional binary unit. */
int yz_dir_parse_quota(const char *s, unsigned long long *bytes_r,
		       const char **error_r)
{
	static const char expected[] =
		"quota: expected a size like 500M, 2G, 1048576, or 0/unlimited";
	if (s == NULL || s[0] == '\0') {
		*error_r = expected;
		return -1;
	}
	if (strcasecmp(s, "unlimited") == 0 || strcasecmp(s, "none") == 0) {
		*bytes_r = 0;
		return 0;
	}
	if (s[0] < '0' || s[0] > '9') {
		*error_r = expected;
		return -1;
	}
	errno = 0;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno == ERANGE) {
		*error_r = "quota: too large";
		return -1;
	}
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default:
		*error_r = expected;
		return -1;
	}
	/* Accept "500MB" / "500MiB" as admins write them. */
	if (shift > 0 && (strcasecmp(end, "b") == 0 || strcasecmp(end, "ib") == 0))
		end += strlen(end);
	if (*end != '\0') {
		*error_r = expected;
		return -1;
	}
	if (shift > 0 && n > (YZ_DIR_QUOTA_MAX >> shift)) {
		*error_r = "quota: too large";
		return -1;
	}
	n <<= shift;
	if (n > YZ_DIR_QUOTA_MAX) {
		*error_r = "quota: too large";
		return -1;
	}
	*bytes_r = n;
	return 0;
}
