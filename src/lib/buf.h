/*
 * buf.h: byte buffers and slices; lengths always travel with the bytes.
 *
 * struct yz_slice is a read-only view (pointer + length) into bytes owned by
 * someone else. struct yz_buf is a growable buffer with a hard cap: an append
 * that would pass the cap fails (returns -1) and leaves the buffer unchanged,
 * so a peer can never make a buffer grow without bound. The buffer always
 * keeps a NUL after its last byte so that yz_buf_cstr() is free, but the
 * length, not the NUL, is the truth: data may contain NUL bytes.
 */
#ifndef YZ_BUF_H
#define YZ_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct yz_slice {
	const char *p;
	size_t len;
};

#define YZ_SLICE_LIT(s) ((struct yz_slice){ (s), sizeof(s) - 1 })

struct yz_buf {
	char *data;  /* NULL until first append */
	size_t len;  /* bytes used */
	size_t cap;  /* bytes allocated, excluding the trailing NUL */
	size_t max;  /* hard cap on len; 0 means YZ_BUF_MAX_DEFAULT */
	size_t off;  /* consumed prefix (yz_buf_consume), compacted lazily */
};

/* A cap that no protocol buffer should need to exceed (1 GiB). */
#define YZ_BUF_MAX_DEFAULT ((size_t)1 << 30)

void yz_buf_init(struct yz_buf *b, size_t max);
void yz_buf_free(struct yz_buf *b);
/* Empty the buffer, keep its memory. */
void yz_buf_reset(struct yz_buf *b);
/* Empty and wipe the memory (for buffers that held secrets). */
void yz_buf_wipe(struct yz_buf *b);

/* Bytes not yet consumed. */
static inline const char *yz_buf_data(const struct yz_buf *b)
{
	return b->data != NULL ? b->data + b->off : "";
}
static inline size_t yz_buf_len(const struct yz_buf *b)
{
	return b->len - b->off;
}
static inline struct yz_slice yz_buf_slice(const struct yz_buf *b)
{
	return (struct yz_slice){ yz_buf_data(b), yz_buf_len(b) };
}
/* The unconsumed bytes as a NUL-terminated string (may contain NULs). */
const char *yz_buf_cstr(struct yz_buf *b);

/* Appends: 0 on success, -1 if the result would exceed the cap. */
int yz_buf_append(struct yz_buf *b, const void *p, size_t n);
int yz_buf_append_str(struct yz_buf *b, const char *s);
int yz_buf_append_slice(struct yz_buf *b, struct yz_slice s);
int yz_buf_append_c(struct yz_buf *b, char c);
int yz_buf_printf(struct yz_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int yz_buf_vprintf(struct yz_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Make room for n more bytes and return where to write them; commit with
 * yz_buf_commit(). NULL if n more bytes would exceed the cap. */
char *yz_buf_reserve(struct yz_buf *b, size_t n);
void yz_buf_commit(struct yz_buf *b, size_t n);

/* Drop n bytes from the front (n <= yz_buf_len). */
void yz_buf_consume(struct yz_buf *b, size_t n);
/* Drop bytes from the end, keeping the first n unconsumed bytes. */
void yz_buf_truncate(struct yz_buf *b, size_t n);

/* Slice helpers. */
struct yz_slice yz_slice_from_str(const char *s);
bool yz_slice_eq(struct yz_slice a, struct yz_slice b);
bool yz_slice_eq_str(struct yz_slice a, const char *s);
bool yz_slice_casecmp_str(struct yz_slice a, const char *s); /* true if equal ignoring ASCII case */
bool yz_slice_has_prefix_ci(struct yz_slice a, const char *prefix);
struct yz_slice yz_slice_trim(struct yz_slice s); /* SP and HTAB both ends */
/* Heap copy as C string; NULL if the slice contains a NUL byte. */
char *yz_slice_strdup(struct yz_slice s);
/* Find byte c; returns index or -1. */
long yz_slice_find(struct yz_slice s, char c);

#endif
