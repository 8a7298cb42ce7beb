/*
 * xtext.h: RFC 3461 §4 xtext, the encoding of the DSN ENVID and ORCPT values
 * and of the RFC 4954 AUTH= parameter.
 *
 *   xtext   = *( xchar / hexchar )
 *   xchar   = any ASCII from "!" (33) to "~" (126) except "+" and "="
 *   hexchar = "+" 2HEXDIG   (RFC: upper case; lower case accepted on input)
 *
 * Guarantees: decoding never writes more than the bound it is given and
 * never reads past len. Must never: produce a NUL byte (it would truncate a
 * C string later) or accept SP, controls or 8-bit bytes.
 */
#ifndef YZ_LIBMAIL_XTEXT_H
#define YZ_LIBMAIL_XTEXT_H

#include <stddef.h>

#include "lib/buf.h"

/* Decode xtext into dst (dst_size bytes, always NUL-terminated on success);
 * *len_r gets the decoded length. -1 with *error_r on bad syntax, a decoded
 * NUL, or a result longer than dst_size - 1. */
int xtext_decode(const char *in, size_t len, char *dst, size_t dst_size, size_t *len_r,
		 const char **error_r);
/* Encode len bytes as xtext, appended to out. -1 if out's cap is reached. */
int xtext_encode(const char *in, size_t len, struct yz_buf *out);

#endif
