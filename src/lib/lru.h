/*
 * lru.h: a bounded hash table in recency order, for caches and trackers
 * (the directory's credentials cache, failure tracker and lookup cache):
 * a chained hash table for lookup plus a circular doubly-linked list,
 * newest first, for least-recently-used eviction. Intrusive: an entry
 * embeds a struct yz_lru_link and sets its hash; the caller owns the
 * entries, compares keys, and decides when to evict (yz_lru_full,
 * yz_lru_oldest). Also the seeded string hash such tables use, and the
 * random bytes for their seeds.
 *
 * Guarantees: insert, unlink and touch are O(1) apart from the walk of one
 * hash chain in unlink; the bucket count is a power of two sized for max.
 * Must never: free or compare entries (the caller does); hold an entry
 * twice.
 */
#ifndef YZ_LRU_H
#define YZ_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct yz_lru_link {
	struct yz_lru_link *prev, *next; /* recency list */
	struct yz_lru_link *hnext;       /* hash chain */
	uint64_t hash;
};

struct yz_lru {
	struct yz_lru_link **buckets;
	size_t nbuckets;         /* power of two */
	struct yz_lru_link head; /* circular list sentinel */
	size_t count, max;
};

/* An empty table sized for max entries (max may be 0). */
void yz_lru_init(struct yz_lru *t, size_t max);
/* Free the buckets (the caller has removed and freed the entries). */
void yz_lru_fini(struct yz_lru *t);
/* The first link of hash's chain (walk it with ->hnext, compare ->hash and
 * the key), or NULL. */
struct yz_lru_link *yz_lru_chain(const struct yz_lru *t, uint64_t hash);
/* Link a new entry (its hash set) as the newest. */
void yz_lru_insert(struct yz_lru *t, struct yz_lru_link *l);
/* Unlink an entry from its chain and the recency list. */
void yz_lru_unlink(struct yz_lru *t, struct yz_lru_link *l);
/* Mark an entry as just used. */
void yz_lru_touch(struct yz_lru *t, struct yz_lru_link *l);
/* The least recently used entry, or NULL when empty. */
struct yz_lru_link *yz_lru_oldest(const struct yz_lru *t);
/* Newest-first walk: yz_lru_first, then yz_lru_next until NULL (an entry
 * may be unlinked once the next one was taken). */
struct yz_lru_link *yz_lru_first(const struct yz_lru *t);
struct yz_lru_link *yz_lru_next(const struct yz_lru *t, const struct yz_lru_link *l);
/* Forget every entry at once (the caller frees them, before or after). */
void yz_lru_reset(struct yz_lru *t);
/* count >= max: inserting needs an eviction first. */
bool yz_lru_full(const struct yz_lru *t);

/* FNV-1a, seeded: start from yz_hash_init(seed), add bytes or strings. A
 * random seed (yz_random) keeps anyone from aiming keys at one bucket. */
uint64_t yz_hash_init(uint64_t seed);
uint64_t yz_hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t yz_hash_str(uint64_t h, const char *s);
/* len random bytes (getrandom); the process ends without randomness. */
void yz_random(void *buf, size_t len);

#endif
