/*
 * dir_cache.c: the directory role's cache of resolutions and domain
 * lookups, valid for one data generation, and the read turns that check
 * that generation (see dir_cache.h for the guarantees).
 *
 * One lib/lru.h table (seeded FNV-1a, so nobody can aim addresses at one
 * bucket; recency order for LRU eviction). Each entry owns a deep copy of what the lookup
 * returned; a hit hands the caller another copy, so callers never hold a
 * pointer into the cache.
 *
 * Must never: hand out a cached answer when the generation has not been
 * checked in the current turn; grow past max entries.
 */
#include "directory/dir_cache.h"

#include <stdlib.h>
#include <string.h>

#include "lib/lru.h"
#include "lib/mem.h"

enum dc_kind { DC_RESOLVE = 'R', DC_DOMAIN = 'D' };

struct dc_entry {
	struct yz_lru_link link;      /* first member */
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
	struct yz_lru table;
	uint64_t seed;
	bool in_turn;
	bool have_gen;
	uint64_t gen; /* generation the entries were made under */
	size_t hits, misses, flushes;
};

/* Create an empty cache of at most max entries in front of dir. */
struct dir_cache *dir_cache_new(struct yz_dir *dir, size_t max)
{
	struct dir_cache *c = yz_calloc(1, sizeof *c);
	c->dir = dir;
	yz_lru_init(&c->table, max);
	yz_random(&c->seed, sizeof c->seed);
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
	yz_lru_unlink(&c->table, &e->link);
	dc_entry_free(e);
}

/* Drop every entry. */
void dir_cache_clear(struct dir_cache *c)
{
	struct yz_lru_link *l = yz_lru_first(&c->table);
	while (l != NULL) {
		struct yz_lru_link *next = yz_lru_next(&c->table, l);
		dc_entry_free((struct dc_entry *)l);
		l = next;
	}
	yz_lru_reset(&c->table);
}

/* Free the cache, ending any turn. */
void dir_cache_free(struct dir_cache **cp)
{
	struct dir_cache *c = *cp;
	if (c == NULL)
		return;
	dir_cache_turn_end(c);
	dir_cache_clear(c);
	yz_lru_fini(&c->table);
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
		if (c->table.count > 0)
			c->flushes++;
		dir_cache_clear(c);
		c->have_gen = false;
		return -1;
	}
	if (!c->have_gen || gen != c->gen) {
		if (c->table.count > 0)
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
	unsigned char k = (unsigned char)kind;
	return yz_hash_str(yz_hash_bytes(yz_hash_init(c->seed), &k, 1), key);
}

/* The entry of kind for key, or NULL. */
static struct dc_entry *dc_find(struct dir_cache *c, enum dc_kind kind, const char *key, uint64_t h)
{
	for (struct yz_lru_link *l = yz_lru_chain(&c->table, h); l != NULL; l = l->hnext) {
		struct dc_entry *e = (struct dc_entry *)l;
		if (l->hash == h && e->kind == kind && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

/* A new entry for kind/key, linked in (the least recently used one goes
 * when the cache is full). */
static struct dc_entry *dc_add(struct dir_cache *c, enum dc_kind kind, const char *key, uint64_t h)
{
	if (yz_lru_full(&c->table))
		dc_remove(c, (struct dc_entry *)yz_lru_oldest(&c->table));
	struct dc_entry *e = yz_calloc(1, sizeof *e);
	e->link.hash = h;
	e->kind = kind;
	size_t len = strnlen(key, sizeof e->key - 1);
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	yz_lru_insert(&c->table, &e->link);
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
	if (c->table.max == 0 || !dir_cache_in_turn(c) ||
	    yz_dir_address_normalize(address, false, key, sizeof key, NULL, &why) < 0)
		return yz_dir_resolve(c->dir, address, plus_separator, max_depth, max_expansion,
				      result_r);
	uint64_t h = dc_hash(c, DC_RESOLVE, key);
	struct dc_entry *e = dc_find(c, DC_RESOLVE, key, h);
	if (e != NULL && e->depth == max_depth && e->expansion == max_expansion &&
	    strcmp(e->sep, sep) == 0) {
		yz_lru_touch(&c->table, &e->link);
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
	if (c->table.max == 0 || !dir_cache_in_turn(c) ||
	    yz_dir_domain_normalize(domain, key, sizeof key, &why) < 0)
		return yz_dir_domain_exists(c->dir, domain);
	uint64_t h = dc_hash(c, DC_DOMAIN, key);
	struct dc_entry *e = dc_find(c, DC_DOMAIN, key, h);
	if (e != NULL) {
		yz_lru_touch(&c->table, &e->link);
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
	return c->table.count;
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
