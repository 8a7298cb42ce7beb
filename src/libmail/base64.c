/*
 * base64.c: strict base64 encode/decode (RFC 4648 §4, canonical form only).
 * Guarantees: a failed call leaves out as it was. Must never accept
 * non-canonical encodings (non-zero pad bits) or characters outside the
 * alphabet.
 */
#include "libmail/base64.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 character, -1 otherwise. */
static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Encoded length of n bytes. */
size_t base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* Largest decoded length of n characters. */
size_t base64_decoded_max(size_t n)
{
	return n / 4 * 3;
}

/* Append the base64 encoding of in. */
int base64_encode(const void *in, size_t len, struct yz_buf *out)
{
	const unsigned char *s = in;
	/* yz_buf_reserve(b, 0) on a never-used buffer gives NULL: skip it. */
	if (len == 0)
		return 0;
	if (len > ((size_t)-1 - 2) / 4 * 3)
		return -1;
	char *d = yz_buf_reserve(out, base64_encoded_len(len));
	if (d == NULL)
		return -1;
	size_t o = 0, i = 0;
	for (; i + 3 <= len; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		d[o++] = b64_alphabet[v >> 18];
		d[o++] = b64_alphabet[(v >> 12) & 63];
		d[o++] = b64_alphabet[(v >> 6) & 63];
		d[o++] = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		unsigned v = (unsigned)s[i] << 16;
		d[o++] = b64_alphabet[v >> 18];
		d[o++] = b64_alphabet[(v >> 12) & 63];
		d[o++] = '=';
		d[o++] = '=';
	} else if (len - i == 2) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
		d[o++] = b64_alphabet[v >> 18];
		d[o++] = b64_alphabet[(v >> 12) & 63];
		d[o++] = b64_alphabet[(v >> 6) & 63];
		d[o++] = '=';
	}
	yz_buf_commit(out, o);
	return 0;
}

/* Strict base64 decode appended to out. */
int base64_decode(const char *in, size_t len, struct yz_buf *out, const char **error_r)
{
	if (len % 4 != 0) {
		*error_r = "Invalid base64 length";
		return -1;
	}
	if (len == 0)
		return 0;
	size_t pad = 0;
	if (len > 0 && in[len - 1] == '=')
		pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;
	char *d = yz_buf_reserve(out, base64_decoded_max(len));
	if (d == NULL) {
		*error_r = "Decoded base64 too long";
		return -1;
	}
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + (size_t)k];
			if (last && c == '=' && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			v[k] = b64_val(c);
			if (v[k] < 0) {
				*error_r = c == '=' ? "Misplaced base64 padding"
						    : "Invalid base64 character";
				return -1;
			}
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
			     (unsigned)v[3];
		d[o++] = (char)(w >> 16);
		if (!last || pad < 2)
			d[o++] = (char)(w >> 8);
		if (!last || pad < 1)
			d[o++] = (char)w;
		/* Canonical form only: the bits under the padding must be zero. */
		if (last && ((pad == 2 && (v[1] & 15) != 0) || (pad == 1 && (v[2] & 3) != 0))) {
			*error_r = "Non-canonical base64 padding";
			return -1;
		}
	}
	yz_buf_commit(out, o);
	return 0;
}
