/*
 * buf.c: growable capped buffers and slices.
 * Guarantees: never writes past cap; an append that fails leaves the buffer
 * as it was; data is always followed by a NUL byte once allocated.
 */
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

void yz_buf_init(struct yz_buf *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max ? max : YZ_BUF_MAX_DEFAULT;
}

void yz_buf_free(struct yz_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = b->off = 0;
}

void yz_buf_reset(struct yz_buf *b)
{
	b->len = b->off = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void yz_buf_wipe(struct yz_buf *b)
{
	if (b->data != NULL)
		yz_wipe(b->data, b->cap + 1);
	yz_buf_reset(b);
}

/* Move the unconsumed bytes to the front when that frees enough room. */
static void buf_compact(struct yz_buf *b)
{
	if (b->off == 0)
		return;
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
	b->data[b->len] = '\0';
}

char *yz_buf_reserve(struct yz_buf *b, size_t n)
{
	if (b->max == 0)
		b->max = YZ_BUF_MAX_DEFAULT;
	if (n > b->max || yz_buf_len(b) > b->max - n)
		return NULL;
	if (b->len + n > b->cap && b->off > 0)
		buf_compact(b);
	if (b->len + n > b->cap || b->data == NULL) {
		size_t want = b->cap ? b->cap : 64;
		while (want < b->len + n)
			want = want * 2;
		if (want > b->max)
			want = b->max;
		b->data = yz_realloc(b->data, want + 1);
		b->cap = want;
	}
	return b->data + b->len;
}

void yz_buf_commit(struct yz_buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

int yz_buf_append(struct yz_buf *b, const void *p, size_t n)
{
	char *dst = yz_buf_reserve(b, n);
	if (dst == NULL)
		return -1;
	if (n > 0)
		memcpy(dst, p, n);
	yz_buf_commit(b, n);
	return 0;
}

int yz_buf_append_str(struct yz_buf *b, const char *s)
{
	return yz_buf_append(b, s, strlen(s));
}

int yz_buf_append_slice(struct yz_buf *b, struct yz_slice s)
{
	return yz_buf_append(b, s.p, s.len);
}

int yz_buf_append_c(struct yz_buf *b, char c)
{
	return yz_buf_append(b, &c, 1);
}

int yz_buf_vprintf(struct yz_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	char small[256];
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof small, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof small)
		return yz_buf_append(b, small, (size_t)n);
	char *dst = yz_buf_reserve(b, (size_t)n + 1);
	if (dst == NULL)
		return -1;
	vsnprintf(dst, (size_t)n + 1, fmt, ap);
	yz_buf_commit(b, (size_t)n);
	return 0;
}

int yz_buf_printf(struct yz_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = yz_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

const char *yz_buf_cstr(struct yz_buf *b)
{
	if (b->data == NULL)
		return "";
	return b->data + b->off;
}

void yz_buf_consume(struct yz_buf *b, size_t n)
{
	size_t have = yz_buf_len(b);
	if (n >= have) {
		yz_buf_reset(b);
		return;
	}
	b->off += n;
	/* Compact once the dead prefix dominates, so memory stays bounded. */
	if (b->off > 4096 && b->off > have)
		buf_compact(b);
}

void yz_buf_truncate(struct yz_buf *b, size_t n)
{
	if (n >= yz_buf_len(b))
		return;
	b->len = b->off + n;
	b->data[b->len] = '\0';
}

struct yz_slice yz_slice_from_str(const char *s)
{
	return (struct yz_slice){ s, strlen(s) };
}

bool yz_slice_eq(struct yz_slice a, struct yz_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool yz_slice_eq_str(struct yz_slice a, const char *s)
{
	return yz_slice_eq(a, yz_slice_from_str(s));
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

bool yz_slice_casecmp_str(struct yz_slice a, const char *s)
{
	size_t n = strlen(s);
	if (n != a.len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a.p[i]) != lower((unsigned char)s[i]))
			return false;
	return true;
}

bool yz_slice_has_prefix_ci(struct yz_slice a, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n > a.len)
		return false;
	return yz_slice_casecmp_str((struct yz_slice){ a.p, n }, prefix);
}

struct yz_slice yz_slice_trim(struct yz_slice s)
{
	while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

char *yz_slice_strdup(struct yz_slice s)
{
	if (s.len > 0 && memchr(s.p, '\0', s.len) != NULL)
		return NULL;
	return yz_strndup(s.len ? s.p : "", s.len);
}

long yz_slice_find(struct yz_slice s, char c)
{
	const char *q = s.len ? memchr(s.p, c, s.len) : NULL;
	return q ? (long)(q - s.p) : -1;
}
