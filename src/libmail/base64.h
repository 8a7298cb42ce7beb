/*
 * base64.h: RFC 4648 §4 base64 with padding, as used by SMTP AUTH (RFC 4954)
 * and SASL.
 *
 * Guarantees: the decoder is strict (only the alphabet, length a multiple of
 * 4, "=" only as the final one or two characters, unused bits zero), so one
 * value has exactly one encoding; output is bounded by out's cap. Must never:
 * skip white space or other junk silently, or read past len.
 */
#ifndef YZ_LIBMAIL_BASE64_H
#define YZ_LIBMAIL_BASE64_H

#include <stddef.h>

#include "lib/buf.h"

/* Encoded length of n bytes (without NUL). */
size_t base64_encoded_len(size_t n);
/* Largest decoded length of an n-character encoding. */
size_t base64_decoded_max(size_t n);
/* Append the encoding of len bytes to out; -1 if out's cap is reached
 * (out is then unchanged). */
int base64_encode(const void *in, size_t len, struct yz_buf *out);
/* Append the decoding of in to out; -1 with *error_r on bad input or if
 * out's cap is reached (out is then unchanged). */
int base64_decode(const char *in, size_t len, struct yz_buf *out, const char **error_r);

#endif
