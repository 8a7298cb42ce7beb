/*
 * pool.h: memory pools (arenas) whose lifetime follows the protocol: one per
 * session, one per transaction. Everything allocated from a pool is freed at
 * once by yz_pool_free(); nothing is freed individually.
 */
#ifndef YZ_POOL_H
#define YZ_POOL_H

#include <stddef.h>

#include "lib/buf.h"

struct yz_pool;

struct yz_pool *yz_pool_new(size_t block_size);
/* Free every allocation and the pool; sets *pp to NULL. */
void yz_pool_free(struct yz_pool **pp);
/* Forget every allocation but keep the first block for reuse. */
void yz_pool_clear(struct yz_pool *pool);
/* Zeroed, 16-byte aligned memory; never NULL. */
void *yz_pool_alloc(struct yz_pool *pool, size_t size);
char *yz_pool_strdup(struct yz_pool *pool, const char *s);
char *yz_pool_strndup(struct yz_pool *pool, const char *s, size_t n);
char *yz_pool_slice_dup(struct yz_pool *pool, struct yz_slice s);
char *yz_pool_printf(struct yz_pool *pool, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
