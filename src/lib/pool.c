/*
 * pool.c: a bump allocator over a chain of blocks. Large requests get a block
 * of their own. Never returns NULL (see mem.h).
 */
#include "lib/pool.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

struct pool_block {
	struct pool_block *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

struct yz_pool {
	struct pool_block *head;
	size_t block_size;
};

static struct pool_block *pool_block_new(size_t size)
{
	struct pool_block *blk = yz_malloc(sizeof *blk + size);
	blk->next = NULL;
	blk->size = size;
	blk->used = 0;
	return blk;
}

struct yz_pool *yz_pool_new(size_t block_size)
{
	struct yz_pool *pool = yz_malloc(sizeof *pool);
	pool->block_size = block_size < 256 ? 256 : block_size;
	pool->head = pool_block_new(pool->block_size);
	return pool;
}

void yz_pool_free(struct yz_pool **pp)
{
	struct yz_pool *pool = *pp;
	if (pool == NULL)
		return;
	struct pool_block *blk = pool->head;
	while (blk != NULL) {
		struct pool_block *next = blk->next;
		free(blk);
		blk = next;
	}
	free(pool);
	*pp = NULL;
}

void yz_pool_clear(struct yz_pool *pool)
{
	struct pool_block *blk = pool->head;
	/* Keep the last (first allocated) block, free the rest. */
	while (blk->next != NULL) {
		struct pool_block *next = blk->next;
		free(blk);
		blk = next;
	}
	blk->used = 0;
	pool->head = blk;
}

void *yz_pool_alloc(struct yz_pool *pool, size_t size)
{
	size_t need = (size + 15) & ~(size_t)15;
	if (need < size)
		need = size; /* overflow: let the block allocation fail loudly */
	struct pool_block *blk = pool->head;
	if (blk->size - blk->used < need) {
		size_t bs = need > pool->block_size ? need : pool->block_size;
		struct pool_block *nb = pool_block_new(bs);
		if (need > pool->block_size && blk->used < blk->size / 2) {
			/* A big one-off: chain it behind the current block. */
			nb->next = blk->next;
			blk->next = nb;
		} else {
			nb->next = blk;
			pool->head = nb;
		}
		blk = nb;
	}
	void *p = blk->data + blk->used;
	blk->used += need;
	memset(p, 0, size);
	return p;
}

char *yz_pool_strndup(struct yz_pool *pool, const char *s, size_t n)
{
	char *p = yz_pool_alloc(pool, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *yz_pool_strdup(struct yz_pool *pool, const char *s)
{
	return yz_pool_strndup(pool, s, strlen(s));
}

char *yz_pool_slice_dup(struct yz_pool *pool, struct yz_slice s)
{
	return yz_pool_strndup(pool, s.len ? s.p : "", s.len);
}

char *yz_pool_printf(struct yz_pool *pool, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return yz_pool_strdup(pool, "");
	char *p = yz_pool_alloc(pool, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
