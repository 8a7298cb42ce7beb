/*
 * utf8.h: strict UTF-8 validation (RFC 3629) for the mail syntax parsers.
 * Guarantees: reads exactly len bytes, never more; rejects overlong forms,
 * surrogates, code points above U+10FFFF and truncated sequences.
 * Must never: allocate, or accept NUL as part of a multi-byte sequence.
 */
#ifndef YZ_LIBMAIL_UTF8_H
#define YZ_LIBMAIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at p (1..4), or 0 if p[0..len)
 * does not start with one. */
size_t mail_utf8_seq_len(const unsigned char *p, size_t len);
/* true if all len bytes at p are valid UTF-8. */
bool mail_utf8_valid(const char *p, size_t len);

#endif
