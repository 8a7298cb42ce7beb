/*
 * lru.c: bounded hash tables in recency order, the seeded FNV-1a hash they
 * use, and random bytes for seeds (see lru.h).
 */
#include "lib/lru.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/log.h"
#include "lib/mem.h"

/* Smallest hash table. */
#define YZ_LRU_BUCKETS_MIN 16

/* Size a table for max entries. */
void yz_lru_init(struct yz_lru *t, size_t max)
{
	size_t n = YZ_LRU_BUCKETS_MIN;
	while (n < max * 2 && n < ((size_t)1 << 30))
		n *= 2;
	t->nbuckets = n;
	t->buckets = yz_calloc(n, sizeof *t->buckets);
	t->head.prev = t->head.next = &t->head;
	t->count = 0;
	t->max = max;
}

/* Free the buckets. */
void yz_lru_fini(struct yz_lru *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
}

/* The chain for hash. */
struct yz_lru_link *yz_lru_chain(const struct yz_lru *t, uint64_t hash)
{
	return t->buckets[hash & (t->nbuckets - 1)];
}

/* Put an entry at the head of the recency list. */
static void lru_front(struct yz_lru *t, struct yz_lru_link *l)
{
	l->next = t->head.next;
	l->prev = &t->head;
	t->head.next->prev = l;
	t->head.next = l;
}

/* Link a new entry as the newest. */
void yz_lru_insert(struct yz_lru *t, struct yz_lru_link *l)
{
	struct yz_lru_link **b = &t->buckets[l->hash & (t->nbuckets - 1)];
	l->hnext = *b;
	*b = l;
	lru_front(t, l);
	t->count++;
}

/* Unlink an entry from its bucket and the recency list. */
void yz_lru_unlink(struct yz_lru *t, struct yz_lru_link *l)
{
	struct yz_lru_link **pp = &t->buckets[l->hash & (t->nbuckets - 1)];
	while (*pp != l)
		pp = &(*pp)->hnext;
	*pp = l->hnext;
	l->prev->next = l->next;
	l->next->prev = l->prev;
	t->count--;
}

/* Mark an entry as just used. */
void yz_lru_touch(struct yz_lru *t, struct yz_lru_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	lru_front(t, l);
}

/* The least recently used entry, or NULL. */
struct yz_lru_link *yz_lru_oldest(const struct yz_lru *t)
{
	return t->head.prev != &t->head ? t->head.prev : NULL;
}

/* The newest entry, or NULL. */
struct yz_lru_link *yz_lru_first(const struct yz_lru *t)
{
	return t->head.next != &t->head ? t->head.next : NULL;
}

/* The entry after l in recency order, or NULL. */
struct yz_lru_link *yz_lru_next(const struct yz_lru *t, const struct yz_lru_link *l)
{
	return l->next != &t->head ? l->next : NULL;
}

/* Forget every entry. */
void yz_lru_reset(struct yz_lru *t)
{
	memset(t->buckets, 0, t->nbuckets * sizeof *t->buckets);
	t->head.prev = t->head.next = &t->head;
	t->count = 0;
}

/* Is the table at its bound? */
bool yz_lru_full(const struct yz_lru *t)
{
	return t->count >= t->max;
}

/* FNV-1a offset basis mixed with a seed. */
uint64_t yz_hash_init(uint64_t seed)
{
	return 0xcbf29ce484222325ULL ^ seed;
}

/* FNV-1a over n bytes. */
uint64_t yz_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* FNV-1a over a string. */
uint64_t yz_hash_str(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Random bytes or the end of the process (no randomness = broken). */
void yz_random(void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom((char *)buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			yz_fatal("getrandom: %s", strerror(errno));
		}
		got += (size_t)n;
	}
}
