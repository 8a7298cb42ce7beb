/*
 * msgid.c: Message-ID generator.
 * Guarantees: output is "<dot-atom-text@domain>" within MAIL_MSGID_MAX.
 * Must never emit an id that a strict RFC 5322 parser would reject.
 */
#include "libmail/msgid.h"

#include <string.h>

#include "libmail/address.h"

/* true if s is RFC 5322 dot-atom-text (ASCII). */
static bool is_dot_atom_text(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && (c == '\0' || strchr("!#$%&'*+-/=?^_`{|}~", c) == NULL))
			return false;
	}
	return true;
}

/* Append "<unique@hostname>". */
int mail_msgid_format(const char *unique, const char *hostname, struct yz_buf *out,
		      const char **error_r)
{
	size_t ul = strlen(unique), hl = strlen(hostname);
	if (!is_dot_atom_text(unique, ul)) {
		*error_r = "Message-ID unique part is not dot-atom-text";
		return -1;
	}
	if (hostname[0] == '[' || mail_domain_parse(hostname, hl, 0, error_r) < 0) {
		*error_r = "Message-ID host name is not a domain name";
		return -1;
	}
	if (ul + hl + 3 > MAIL_MSGID_MAX) {
		*error_r = "Message-ID too long";
		return -1;
	}
	if (yz_buf_printf(out, "<%s@%s>", unique, hostname) < 0) {
		*error_r = "Message-ID does not fit";
		return -1;
	}
	return 0;
}
