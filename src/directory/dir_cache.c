/*
 * dir_cache.c: the directory role's cache of resolutions and domain
 * lookups, valid for one data generation, and the read turns that check
 * that generation (see dir_cache.h for the guarantees).
 *
 * One chained hash table (seeded FNV-1a, so nobody can aim addresses at
 * one bucket) plus a doubly-linked list in recency order (head = newest)
 * for LRU eviction. Each entry owns a deep copy of what the lookup
 * returned; a hit hands the caller another copy, so callers never hold a
 * pointer into the cache.
 *
 * Must never: hand out a cached answer when the generation has not been
 * checked in the current turn; grow past max entries.
 */
#include "directory/dir_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/log.h"
#include "lib/mem.h"

/* Smallest hash table. */
#define DC_BUCKETS_MIN 16

enum dc_kind { DC_RESOLVE = 'R', DC_DOMAIN = 'D' };

struct dc_entry {
	struct dc_entry *prev, *next; /* recency list */
	struct dc_entry *hnext;       /* hash chain */
	uint64_t hash;
	enum dc_kind kind;
	char key[YZ_DIR_ADDRESS_MAX + 1]; /* normalized address or domain */
	/* DC_RESOLVE: the parameters and the answer. */
	char *sep;
	unsigned depth, expansion;
	struct yz_resolve_result res;
	/* DC_DOMAIN: 1 or 0. */
	int exists;
};

struct dir_cache {
	struct yz_dir *dir;
	struct dc_entry **buckets;
	size_t nbuckets; /* power of two */
	struct dc_entry head; /* circular recency list sentinel */
	size_t count, max;
	uint64_t seed;
	bool in_turn;
	bool have_gen;
	uint64_t gen; /* generation the entries were made under */
	size_t hits, misses, flushes;
};

/* A random hash seed; fatal without randomness. */
static uint64_t dc_seed(void)
{
	uint64_t seed;
	size_t got = 0;
	while (got < sizeof seed) {
		ssize_t n = getrandom((char *)&seed + got, sizeof seed - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			yz_fatal("getrandom: %s", strerror(errno));
		}
		got += (size_t)n;
	}
	return seed;
}

/* Create an empty cache of at most max entries in front of dir. */
struct dir_cache *dir_cache_new(struct yz_dir *dir, size_t max)
{
	struct dir_cache *c = yz_calloc(1, sizeof *c);
	size_t n = DC_BUCKETS_MIN;
	while (n < max * 2 && n < ((size_t)1 << 30))
		n *= 2;
	c->dir = dir;
	c->nbuckets = n;
	c->buckets = yz_calloc(n, sizeof *c->buckets);
	c->head.prev = c->head.next = &c->head;
	c->max = max;
	c->seed = dc_seed();
	return c;
}

/* Free an entry (already unlinked). */
static void dc_entry_free(struct dc_entry *e)
{
	free(e->sep);
	yz_resolve_result_clear(&e->res);
	free(e);
}

/* Unlink an entry from its bucket and the recency list, and free it. */
static void dc_remove(struct dir_cache *c, struct dc_entry *e)
{
	struct dc_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	c->count--;
	dc_entry_free(e);
}

/* Drop every entry. */
void dir_cache_clear(struct dir_cache *c)
{
	struct dc_entry *e = c->head.next;
	while (e != &c->head) {
		struct dc_entry *next = e->next;
		c->buckets[e->hash & (c->nbuckets - 1)] = NULL;
		dc_entry_free(e);
		e = next;
	}
	c->head.prev = c->head.next = &c->head;
	c->count = 0;
}

/* Free the cache, ending any turn. */
void dir_cache_free(struct dir_cache **cp)
{
	struct dir_cache *c = *cp;
	if (c == NULL)
		return;
	dir_cache_turn_end(c);
	dir_cache_clear(c);
	free(c->buckets);
	free(c);
	*cp = NULL;
}

/* Start a turn: one read transaction, and a cache true to its snapshot. */
int dir_cache_turn_begin(struct dir_cache *c)
{
	if (dir_cache_in_turn(c))
		return 0;
	uint64_t gen;
	const char *why;
	if (yz_dir_read_begin(c->dir, &gen, &why) < 0) {
		/* Nothing can be checked: keep nothing that might be stale. */
		if (c->count > 0)
			c->flushes++;
		dir_cache_clear(c);
		c->have_gen = false;
		return -1;
	}
	if (!c->have_gen || gen != c->gen) {
		if (c->count > 0)
			c->flushes++;
		dir_cache_clear(c);
		c->gen = gen;
		c->have_gen = true;
	}
	c->in_turn = true;
	return 0;
}

/* End the turn and its read transaction. */
void dir_cache_turn_end(struct dir_cache *c)
{
	c->in_turn = false;
	yz_dir_read_end(c->dir);
}

/* Is a checked turn open? A write through the same dir ends the read
 * transaction behind our back, and with it the turn. */
bool dir_cache_in_turn(const struct dir_cache *c)
{
	return c->in_turn && yz_dir_in_read(c->dir);
}

/* Seeded FNV-1a of kind and key. */
static uint64_t dc_hash(const struct dir_cache *c, enum dc_kind kind, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ c->seed;
	h ^= (unsigned char)kind;
	h *= 0x100000001b3ULL;
	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The entry of kind for key, or NULL. */
static struct dc_entry *dc_find(struct dir_cache *c, enum dc_kind kind, const char *key, uint64_t h)
{
	for (struct dc_entry *e = c->buckets[h & (c->nbuckets - 1)]; e != NULL; e = e->hnext) {
		if (e->hash == h && e->kind == kind && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

/* Put an entry at the head of the recency list. */
static void dc_front(struct dir_cache *c, struct dc_entry *e)
{
	e->next = c->head.next;
	e->prev = &c->head;
	c->head.next->prev = e;
	c->head.next = e;
}

/* Mark an entry as just used. */
static void dc_touch(struct dir_cache *c, struct dc_entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	dc_front(c, e);
}

/* A new entry for kind/key, linked in (the least recently used one goes
 * when the cache is full). */
static struct dc_entry *dc_add(struct dir_cache *c, enum dc_kind kind, const char *key, uint64_t h)
{
	if (c->count >= c->max)
		dc_remove(c, c->head.prev);
	struct dc_entry *e = yz_calloc(1, sizeof *e);
	e->hash = h;
	e->kind = kind;
	size_t len = strnlen(key, sizeof e->key - 1);
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	struct dc_entry **b = &c->buckets[h & (c->nbuckets - 1)];
	e->hnext = *b;
	*b = e;
	dc_front(c, e);
	c->count++;
	return e;
}

/* Deep copy of a resolution result into dst (zeroed first). */
static void dc_result_copy(struct yz_resolve_result *dst, const struct yz_resolve_result *src)
{
	memset(dst, 0, sizeof *dst);
	dst->status = src->status;
	dst->error = src->error != NULL ? yz_strdup(src->error) : NULL;
	if (src->count == 0)
		return;
	dst->targets = yz_calloc(src->count, sizeof *dst->targets);
	for (size_t i = 0; i < src->count; i++) {
		const struct yz_resolve_target *s = &src->targets[i];
		struct yz_resolve_target *d = &dst->targets[i];
		d->address = yz_strdup(s->address);
		d->external = s->external;
		d->folder = s->folder != NULL ? yz_strdup(s->folder) : NULL;
		d->quota = s->quota;
	}
	dst->count = src->count;
}

/* Resolve through the cache. */
int dir_cache_resolve(struct dir_cache *c, const char *address,
		      const char *plus_separator, unsigned max_depth,
		      unsigned max_expansion, struct yz_resolve_result *result_r)
{
	char key[YZ_DIR_ADDRESS_MAX + 1];
	const char *why;
	const char *sep = plus_separator != NULL ? plus_separator : "";
	/* A malformed address costs no lookup: it is answered, not kept. */
	if (c->max == 0 || !dir_cache_in_turn(c) ||
	    yz_dir_address_normalize(address, false, key, sizeof key, NULL, &why) < 0)
		return yz_dir_resolve(c->dir, address, plus_separator, max_depth, max_expansion,
				      result_r);
	uint64_t h = dc_hash(c, DC_RESOLVE, key);
	struct dc_entry *e = dc_find(c, DC_RESOLVE, key, h);
	if (e != NULL && e->depth == max_depth && e->expansion == max_expansion &&
	    strcmp(e->sep, sep) == 0) {
		dc_touch(c, e);
		c->hits++;
		dc_result_copy(result_r, &e->res);
		return result_r->status == YZ_RESOLVE_OK ? 0 : -1;
	}
	c->misses++;
	/* The resolution normalizes the address itself: what it answers for
	 * `address` is what it answers for `key`. */
	int ret = yz_dir_resolve(c->dir, address, plus_separator, max_depth, max_expansion, result_r);
	if (result_r->status == YZ_RESOLVE_TEMPFAIL) {
		/* The transaction may be gone with the error: start afresh. */
		dir_cache_turn_end(c);
		return ret;
	}
	if (e != NULL)
		dc_remove(c, e);
	if (result_r->count > DIR_CACHE_TARGETS_MAX)
		return ret;
	e = dc_add(c, DC_RESOLVE, key, h);
	e->sep = yz_strdup(sep);
	e->depth = max_depth;
	e->expansion = max_expansion;
	dc_result_copy(&e->res, result_r);
	return ret;
}

/* Is the domain local, through the cache? 1 / 0 / -1. */
int dir_cache_domain_exists(struct dir_cache *c, const char *domain)
{
	char key[YZ_DIR_DOMAIN_MAX + 1];
	const char *why;
	if (c->max == 0 || !dir_cache_in_turn(c) ||
	    yz_dir_domain_normalize(domain, key, sizeof key, &why) < 0)
		return yz_dir_domain_exists(c->dir, domain);
	uint64_t h = dc_hash(c, DC_DOMAIN, key);
	struct dc_entry *e = dc_find(c, DC_DOMAIN, key, h);
	if (e != NULL) {
		dc_touch(c, e);
		c->hits++;
		return e->exists;
	}
	c->misses++;
	int r = yz_dir_domain_exists(c->dir, domain);
	if (r < 0) {
		dir_cache_turn_end(c);
		return r;
	}
	e = dc_add(c, DC_DOMAIN, key, h);
	e->exists = r;
	return r;
}

/* Entries held. */
size_t dir_cache_entries(const struct dir_cache *c)
{
	return c->count;
}

/* Answers given from the cache. */
size_t dir_cache_hits(const struct dir_cache *c)
{
	return c->hits;
}

/* Cacheable lookups that went to the directory. */
size_t dir_cache_misses(const struct dir_cache *c)
{
	return c->misses;
}

/* Times the cache was dropped because the data changed (or could not be
 * checked). */
size_t dir_cache_flushes(const struct dir_cache *c)
{
	return c->flushes;
}
