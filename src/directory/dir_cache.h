/*
 * dir_cache.h: the directory role's lookup cache and its read "turns".
 *
 * A turn is what the role does between two waits of its event loop: the
 * first lookup of a turn opens one read transaction on the directory
 * (yz_dir_read_begin), every lookup of the turn shares it, and the role
 * ends it from a deferred call once the turn's events are handled. At the
 * start of each turn the directory's data generation is compared with the
 * one the cached answers were made under; any change (a `yizhan user add`
 * from another process, or any commit) drops the whole cache, so the very
 * next request after a commit is answered from the new data.
 *
 * Guarantees: an answer comes from the cache only inside a turn whose read
 * transaction has checked the generation; answers are cached under the
 * same normalisation the lookups use (lower-cased address or domain), with
 * the resolution parameters checked too, so a cached answer is exactly
 * what the lookup would give; temporary failures are never cached (and end
 * the turn, so the next request starts afresh); the cache holds at most
 * max entries (least recently used evicted) and no result with more than
 * DIR_CACHE_TARGETS_MAX targets.
 *
 * Must never: answer from the cache outside a checked turn; keep a read
 * transaction open after dir_cache_turn_end(); cache a password or a hash
 * (authentication does not go through here).
 */
#ifndef YZ_DIRECTORY_DIR_CACHE_H
#define YZ_DIRECTORY_DIR_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/directory/directory.h"

/* Entries the directory role keeps (resolutions and domains together). */
#define DIR_CACHE_MAX 4096
/* Larger resolutions (big alias lists) are answered but not kept, so the
 * cache's memory stays bounded by entries x targets. */
#define DIR_CACHE_TARGETS_MAX 32

struct dir_cache;

/* A cache of at most max entries in front of dir (0 = keep nothing, but
 * turns still share one read transaction). Never NULL. */
struct dir_cache *dir_cache_new(struct yz_dir *dir, size_t max);
/* Free (ending any turn) and set the pointer to NULL; NULL-safe. */
void dir_cache_free(struct dir_cache **cache);

/* Start a turn if none is open: open the read transaction and drop the
 * cache if the data changed. 0; -1 when the transaction could not be
 * opened (the cache is dropped and lookups go straight to the directory
 * until the next turn). */
int dir_cache_turn_begin(struct dir_cache *cache);
/* End the turn and its read transaction; no-op without one. */
void dir_cache_turn_end(struct dir_cache *cache);
/* Is a checked turn open? */
bool dir_cache_in_turn(const struct dir_cache *cache);

/* yz_dir_resolve() through the cache (same arguments, same result, which
 * the caller clears with yz_resolve_result_clear()). */
int dir_cache_resolve(struct dir_cache *cache, const char *address,
		      const char *plus_separator, unsigned max_depth,
		      unsigned max_expansion, struct yz_resolve_result *result_r);
/* yz_dir_domain_exists() through the cache: 1 / 0 / -1. */
int dir_cache_domain_exists(struct dir_cache *cache, const char *domain);

/* Drop every entry. */
void dir_cache_clear(struct dir_cache *cache);
/* Counters for tests and /metrics. */
size_t dir_cache_entries(const struct dir_cache *cache);
size_t dir_cache_hits(const struct dir_cache *cache);
size_t dir_cache_misses(const struct dir_cache *cache);
size_t dir_cache_flushes(const struct dir_cache *cache);

#endif
