/*
 * xtext.c: RFC 3461 xtext encoder and strict decoder.
 * Guarantees: bounded output, no NUL in decoded text. Must never read past
 * the input length nor write past dst_size.
 */
#include "libmail/xtext.h"

/* Value of a hex digit, -1 if c is not one. */
static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode xtext into a bounded C string. */
int xtext_decode(const char *in, size_t len, char *dst, size_t dst_size, size_t *len_r,
		 const char **error_r)
{
	size_t out = 0;
	if (dst_size == 0) {
		*error_r = "No room for xtext";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			int hi = i + 1 < len ? hexval((unsigned char)in[i + 1]) : -1;
			int lo = i + 2 < len ? hexval((unsigned char)in[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*error_r = "Invalid xtext hex escape";
				return -1;
			}
			c = (unsigned char)(hi * 16 + lo);
			if (c == 0) {
				*error_r = "NUL in xtext";
				return -1;
			}
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			*error_r = "Invalid character in xtext";
			return -1;
		}
		if (out + 1 >= dst_size) {
			*error_r = "xtext value too long";
			return -1;
		}
		dst[out++] = (char)c;
	}
	dst[out] = '\0';
	*len_r = out;
	return 0;
}

/* Encode bytes as xtext. */
int xtext_encode(const char *in, size_t len, struct yz_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t mark = yz_buf_len(out);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int r;
		if (c >= 33 && c <= 126 && c != '+' && c != '=') {
			r = yz_buf_append_c(out, (char)c);
		} else {
			char e[3] = { '+', hex[c >> 4], hex[c & 15] };
			r = yz_buf_append(out, e, sizeof e);
		}
		if (r < 0) {
			yz_buf_truncate(out, mark);
			return -1;
		}
	}
	return 0;
}
