/*
 * utf8.c: strict UTF-8 validation (RFC 3629 §4 table of well-formed byte
 * sequences). Guarantees: never reads past len. Must never accept overlong
 * encodings or surrogates, which would let two spellings of one address pass
 * different checks.
 */
#include "libmail/utf8.h"

/* true if b is a continuation byte in [lo, hi]. */
static bool in_range(unsigned char b, unsigned char lo, unsigned char hi)
{
	return b >= lo && b <= hi;
}

/* Length of the valid UTF-8 sequence starting at p, 0 if invalid. */
size_t mail_utf8_seq_len(const unsigned char *p, size_t len)
{
	if (len == 0)
		return 0;
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return len >= 2 && in_range(p[1], 0x80, 0xBF) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		unsigned char lo = 0x80, hi = 0xBF;
		if (c == 0xE0)
			lo = 0xA0; /* no overlongs */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
		return len >= 3 && in_range(p[1], lo, hi) && in_range(p[2], 0x80, 0xBF) ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		unsigned char lo = 0x80, hi = 0xBF;
		if (c == 0xF0)
			lo = 0x90; /* no overlongs */
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
		return len >= 4 && in_range(p[1], lo, hi) && in_range(p[2], 0x80, 0xBF) &&
			       in_range(p[3], 0x80, 0xBF)
			       ? 4
			       : 0;
	}
	return 0;
}

/* true if all len bytes at p are valid UTF-8. */
bool mail_utf8_valid(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < len) {
		size_t n = mail_utf8_seq_len(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}
