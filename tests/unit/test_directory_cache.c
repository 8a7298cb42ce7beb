/*
 * test_directory_cache.c: the directory role's lookup cache and read turns:
 * answers identical to the uncached lookups (aliases, plus-addressing,
 * catch-all, loops, disabled, not local, malformed, case), hits only inside
 * a checked turn, a change committed through a second connection to the
 * same file seen by the first lookup of the next turn after the cache was
 * warm (and not inside the turn that was already reading), a write through
 * the same dir ending the turn, the bound (just under, at, and over, with
 * LRU eviction) at a small size and at DIR_CACHE_MAX, resolution parameters
 * part of the key, big results not kept, and a zero-sized cache.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "directory/dir_cache.h"
#include "store/directory/directory.h"
#include "test_util.h"

#define OK(call) do { const char *e_ = NULL; \
	if ((call) != 0) fail_msg("%s: %s", #call, e_ != NULL ? e_ : "failed"); } while (0)

static const char *err;

/* Open a dir with cheap hashes. */
static struct yz_dir *open_dir(const char *dsn)
{
	const char *e = NULL;
	struct yz_dir *d = yz_dir_open("sqlite", dsn, &e);
	if (d == NULL)
		fail_msg("open %s: %s", dsn, e);
	yz_dir_set_hash_params(d, 1, 64, 1);
	return d;
}

/* The fixture of the resolution tests in test_store_directory.c, smaller. */
static void fill(struct yz_dir *dir)
{
	OK(yz_dir_domain_add(dir, "example.test", &err));
	OK(yz_dir_domain_add(dir, "other.test", &err));
	OK(yz_dir_user_add(dir, "alice@example.test", "pw", NULL, NULL, 1000, &err));
	OK(yz_dir_user_add(dir, "bob@example.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_user_add(dir, "off@example.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_user_set_enabled(dir, "off@example.test", false, &err));
	OK(yz_dir_alias_add(dir, "team@example.test", "alice@example.test", &err));
	OK(yz_dir_alias_add(dir, "team@example.test", "bob@example.test", &err));
	OK(yz_dir_alias_add(dir, "team@example.test", "ext@elsewhere.test", &err));
	OK(yz_dir_alias_add(dir, "loop1@example.test", "loop2@example.test", &err));
	OK(yz_dir_alias_add(dir, "loop2@example.test", "loop1@example.test", &err));
	OK(yz_dir_alias_add(dir, "@other.test", "bob@example.test", &err));
}

/* Resolve through the cache with the role's defaults; the status. */
static enum yz_resolve_status cres(struct dir_cache *c, const char *addr,
				   struct yz_resolve_result *r)
{
	int ret = dir_cache_resolve(c, addr, "+", 10, 100, r);
	assert_int_equal(ret, r->status == YZ_RESOLVE_OK ? 0 : -1);
	return r->status;
}

/* Two results are the same, field by field. */
static void assert_same(const struct yz_resolve_result *a, const struct yz_resolve_result *b)
{
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->count, b->count);
	if (a->error == NULL || b->error == NULL)
		assert_ptr_equal(a->error, b->error);
	else
		assert_string_equal(a->error, b->error);
	for (size_t i = 0; i < a->count; i++) {
		assert_string_equal(a->targets[i].address, b->targets[i].address);
		assert_int_equal(a->targets[i].external, b->targets[i].external);
		assert_int_equal(a->targets[i].quota, b->targets[i].quota);
		if (a->targets[i].folder == NULL || b->targets[i].folder == NULL)
			assert_ptr_equal(a->targets[i].folder, b->targets[i].folder);
		else
			assert_string_equal(a->targets[i].folder, b->targets[i].folder);
	}
}

/* Cached answers (a miss, then a hit in a later turn) equal the lookups. */
static void test_same_answers(void **state)
{
	(void)state;
	struct yz_dir *dir = open_dir(":memory:");
	fill(dir);
	struct dir_cache *c = dir_cache_new(dir, DIR_CACHE_MAX);
	static const char *const addrs[] = {
		"alice@example.test", "ALICE@Example.Test", "alice+Work@example.test",
		"alice+box@example.test", "alice+../x@example.test", "team@example.test",
		"team+tag@example.test", "off@example.test", "nobody@example.test",
		"anyone@other.test", "x@elsewhere.test", "loop1@example.test",
		"", "no-at-sign", "a%b@example.test", "a@b@example.test",
	};
	size_t n = sizeof addrs / sizeof addrs[0];
	for (int pass = 0; pass < 3; pass++) {
		OK(dir_cache_turn_begin(c));
		for (size_t i = 0; i < n; i++) {
			struct yz_resolve_result want, got;
			yz_dir_resolve(dir, addrs[i], "+", 10, 100, &want);
			cres(c, addrs[i], &got);
			assert_same(&want, &got);
			yz_resolve_result_clear(&want);
			yz_resolve_result_clear(&got);
		}
		dir_cache_turn_end(c);
		assert_false(yz_dir_in_read(dir));
	}
	/* 11 well-formed addresses, of which two differ only by case (one
	 * key): the first pass hits once, every later pass is all hits;
	 * malformed ones are never kept. */
	assert_int_equal(dir_cache_entries(c), 10);
	assert_int_equal(dir_cache_misses(c), 10);
	assert_int_equal(dir_cache_hits(c), 2 * 11 + 1);
	/* Domains. */
	OK(dir_cache_turn_begin(c));
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(dir_cache_domain_exists(c, "Example.TEST"), 1);
		assert_int_equal(dir_cache_domain_exists(c, "nowhere.test"), 0);
		assert_int_equal(dir_cache_domain_exists(c, "bad..domain"), 0);
		assert_int_equal(dir_cache_domain_exists(c, ""), 0);
	}
	assert_int_equal(dir_cache_entries(c), 12);
	dir_cache_turn_end(c);
	dir_cache_free(&c);
	assert_null(c);
	yz_dir_close(&dir);
}

/* Outside a turn nothing is kept nor answered from the cache. */
static void test_no_turn_no_cache(void **state)
{
	(void)state;
	struct yz_dir *dir = open_dir(":memory:");
	fill(dir);
	struct dir_cache *c = dir_cache_new(dir, 8);
	struct yz_resolve_result r;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cres(c, "alice@example.test", &r), YZ_RESOLVE_OK);
		yz_resolve_result_clear(&r);
		assert_int_equal(dir_cache_domain_exists(c, "example.test"), 1);
	}
	assert_int_equal(dir_cache_entries(c), 0);
	assert_int_equal(dir_cache_hits(c), 0);
	assert_false(dir_cache_in_turn(c));
	/* A turn ended, then a lookup: uncached again. */
	OK(dir_cache_turn_begin(c));
	assert_true(dir_cache_in_turn(c));
	assert_true(yz_dir_in_read(dir));
	OK(dir_cache_turn_begin(c)); /* nested: the same turn */
	assert_int_equal(cres(c, "alice@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	dir_cache_turn_end(c);
	dir_cache_turn_end(c); /* twice is harmless */
	assert_int_equal(cres(c, "alice@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_hits(c), 0);
	assert_int_equal(dir_cache_entries(c), 1);
	dir_cache_free(&c);
	dir_cache_free(&c); /* NULL-safe */
	yz_dir_close(&dir);
}

/* The daemon's cache is warm; the CLI (another connection to the same
 * file) adds, changes and deletes; the next turn sees all of it. */
static void test_second_connection(void **state)
{
	(void)state;
	char path[256];
	tmp_db(path, sizeof path, "dircache");
	rm_db(path);
	struct yz_dir *cli = open_dir(path);
	fill(cli);
	struct yz_dir *daemon = open_dir(path);
	struct dir_cache *c = dir_cache_new(daemon, DIR_CACHE_MAX);
	struct yz_resolve_result r;

	/* Warm: a negative, a positive, a domain, twice (second turn hits). */
	for (int turn = 0; turn < 2; turn++) {
		OK(dir_cache_turn_begin(c));
		assert_int_equal(cres(c, "new@example.test", &r), YZ_RESOLVE_UNKNOWN);
		yz_resolve_result_clear(&r);
		assert_int_equal(cres(c, "alice@example.test", &r), YZ_RESOLVE_OK);
		assert_int_equal(r.targets[0].quota, 1000);
		yz_resolve_result_clear(&r);
		assert_int_equal(dir_cache_domain_exists(c, "new.test"), 0);
		assert_int_equal(cres(c, "x@new.test", &r), YZ_RESOLVE_NOT_LOCAL);
		yz_resolve_result_clear(&r);
		dir_cache_turn_end(c);
	}
	assert_int_equal(dir_cache_hits(c), 4);
	assert_int_equal(dir_cache_flushes(c), 0);

	/* The CLI adds a user: the very next lookup sees it. */
	OK(yz_dir_user_add(cli, "new@example.test", "pw", NULL, NULL, 0, &err));
	OK(dir_cache_turn_begin(c));
	assert_int_equal(cres(c, "new@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	dir_cache_turn_end(c);
	assert_int_equal(dir_cache_flushes(c), 1);

	/* A domain, a quota, a disabled account, a deleted alias. */
	OK(yz_dir_domain_add(cli, "new.test", &err));
	OK(yz_dir_user_add(cli, "x@new.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_user_set_quota(cli, "alice@example.test", 5000, &err));
	OK(dir_cache_turn_begin(c));
	assert_int_equal(dir_cache_domain_exists(c, "new.test"), 1);
	assert_int_equal(cres(c, "x@new.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	assert_int_equal(cres(c, "alice@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.targets[0].quota, 5000);
	yz_resolve_result_clear(&r);
	assert_int_equal(cres(c, "team@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 3);
	yz_resolve_result_clear(&r);
	dir_cache_turn_end(c);

	/* A commit during a turn is not seen by that turn (one snapshot),
	 * and is seen by the next one. */
	OK(dir_cache_turn_begin(c));
	assert_int_equal(cres(c, "new@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	OK(yz_dir_user_set_enabled(cli, "new@example.test", false, &err));
	OK(yz_dir_alias_del(cli, "team@example.test", "bob@example.test", &err));
	assert_int_equal(cres(c, "new@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	dir_cache_turn_end(c);
	OK(dir_cache_turn_begin(c));
	assert_int_equal(cres(c, "new@example.test", &r), YZ_RESOLVE_DISABLED);
	yz_resolve_result_clear(&r);
	assert_int_equal(cres(c, "team@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 2);
	yz_resolve_result_clear(&r);
	dir_cache_turn_end(c);

	/* Deletions: the account and the domain. */
	OK(yz_dir_user_del(cli, "new@example.test", &err));
	OK(yz_dir_domain_del(cli, "new.test", true, &err));
	OK(dir_cache_turn_begin(c));
	assert_int_equal(cres(c, "new@example.test", &r), YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_domain_exists(c, "new.test"), 0);
	assert_int_equal(cres(c, "x@new.test", &r), YZ_RESOLVE_NOT_LOCAL);
	yz_resolve_result_clear(&r);
	dir_cache_turn_end(c);

	/* No change: no flush, all hits. */
	size_t flushes = dir_cache_flushes(c), hits = dir_cache_hits(c);
	OK(dir_cache_turn_begin(c));
	assert_int_equal(cres(c, "new@example.test", &r), YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_domain_exists(c, "new.test"), 0);
	dir_cache_turn_end(c);
	assert_int_equal(dir_cache_flushes(c), flushes);
	assert_int_equal(dir_cache_hits(c), hits + 2);

	dir_cache_free(&c);
	yz_dir_close(&daemon);
	yz_dir_close(&cli);
	rm_db(path);
}

/* A write through the cache's own dir ends the turn; the next turn sees
 * the change (the in-memory twin has only this one connection). */
static void test_own_write(void **state)
{
	(void)state;
	struct yz_dir *dir = open_dir(":memory:");
	fill(dir);
	struct dir_cache *c = dir_cache_new(dir, 16);
	struct yz_resolve_result r;
	OK(dir_cache_turn_begin(c));
	assert_int_equal(cres(c, "carol@example.test", &r), YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
	OK(yz_dir_user_add(dir, "carol@example.test", "pw", NULL, NULL, 0, &err));
	assert_false(dir_cache_in_turn(c));
	assert_false(yz_dir_in_read(dir));
	/* Outside a turn: not answered from the stale entry. */
	assert_int_equal(cres(c, "carol@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	OK(dir_cache_turn_begin(c));
	assert_int_equal(dir_cache_entries(c), 0);
	assert_int_equal(cres(c, "carol@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	dir_cache_turn_end(c);
	dir_cache_free(&c);
	yz_dir_close(&dir);
}

/* Fill n distinct unknown addresses in one turn. */
static void fill_unknown(struct dir_cache *c, size_t from, size_t n)
{
	for (size_t i = from; i < from + n; i++) {
		char a[64];
		snprintf(a, sizeof a, "u%zu@example.test", i);
		struct yz_resolve_result r;
		assert_int_equal(cres(c, a, &r), YZ_RESOLVE_UNKNOWN);
		yz_resolve_result_clear(&r);
	}
}

/* Is u<i> answered from the cache? (It is cached afterwards either way.) */
static bool is_hit(struct dir_cache *c, size_t i)
{
	size_t before = dir_cache_hits(c);
	fill_unknown(c, i, 1);
	return dir_cache_hits(c) == before + 1;
}

/* Just under, at and over a small bound: the oldest goes first. */
static void test_bound_small(void **state)
{
	(void)state;
	struct yz_dir *dir = open_dir(":memory:");
	fill(dir);
	struct dir_cache *c = dir_cache_new(dir, 4);
	OK(dir_cache_turn_begin(c));
	fill_unknown(c, 0, 3);
	assert_int_equal(dir_cache_entries(c), 3);
	fill_unknown(c, 3, 1);
	assert_int_equal(dir_cache_entries(c), 4);
	/* Use u0 so that u1 is the least recently used. */
	assert_true(is_hit(c, 0));
	fill_unknown(c, 4, 1);
	assert_int_equal(dir_cache_entries(c), 4);
	assert_true(is_hit(c, 0));
	assert_true(is_hit(c, 2));
	assert_true(is_hit(c, 3));
	assert_true(is_hit(c, 4));
	assert_false(is_hit(c, 1)); /* evicted; now back, evicting u0 */
	assert_int_equal(dir_cache_entries(c), 4);
	assert_false(is_hit(c, 0));
	/* Domains share the bound. */
	assert_int_equal(dir_cache_domain_exists(c, "example.test"), 1);
	assert_int_equal(dir_cache_entries(c), 4);
	dir_cache_turn_end(c);
	dir_cache_free(&c);
	yz_dir_close(&dir);
}

/* DIR_CACHE_MAX entries all stay; one more evicts exactly one. */
static void test_bound_max(void **state)
{
	(void)state;
	struct yz_dir *dir = open_dir(":memory:");
	fill(dir);
	struct dir_cache *c = dir_cache_new(dir, DIR_CACHE_MAX);
	OK(dir_cache_turn_begin(c));
	fill_unknown(c, 0, DIR_CACHE_MAX - 1);
	assert_int_equal(dir_cache_entries(c), DIR_CACHE_MAX - 1);
	fill_unknown(c, DIR_CACHE_MAX - 1, 1);
	assert_int_equal(dir_cache_entries(c), DIR_CACHE_MAX);
	size_t hits = dir_cache_hits(c);
	fill_unknown(c, 0, DIR_CACHE_MAX);
	assert_int_equal(dir_cache_hits(c), hits + DIR_CACHE_MAX);
	fill_unknown(c, DIR_CACHE_MAX, 1);
	assert_int_equal(dir_cache_entries(c), DIR_CACHE_MAX);
	assert_false(is_hit(c, 0));
	assert_true(is_hit(c, DIR_CACHE_MAX));
	dir_cache_turn_end(c);
	dir_cache_free(&c);
	yz_dir_close(&dir);
}

/* Resolution parameters are part of the key; big results are not kept. */
static void test_params_and_big(void **state)
{
	(void)state;
	struct yz_dir *dir = open_dir(":memory:");
	fill(dir);
	for (int i = 0; i <= DIR_CACHE_TARGETS_MAX; i++) {
		char t[64];
		snprintf(t, sizeof t, "f%d@elsewhere.test", i);
		OK(yz_dir_alias_add(dir, "big@example.test", t, &err));
		if (i < DIR_CACHE_TARGETS_MAX)
			OK(yz_dir_alias_add(dir, "fits@example.test", t, &err));
	}
	struct dir_cache *c = dir_cache_new(dir, 16);
	struct yz_resolve_result r;
	OK(dir_cache_turn_begin(c));
	assert_int_equal(cres(c, "alice+box@example.test", &r), YZ_RESOLVE_OK);
	assert_string_equal(r.targets[0].folder, "box");
	yz_resolve_result_clear(&r);
	/* Another separator set: not the cached answer. */
	assert_int_equal(dir_cache_resolve(c, "alice+box@example.test", "-", 10, 100, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_resolve(c, "alice+box@example.test", NULL, 10, 100, &r), -1);
	yz_resolve_result_clear(&r);
	/* Another depth: team needs one level. */
	assert_int_equal(dir_cache_resolve(c, "team@example.test", "+", 0, 100, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_LOOP);
	yz_resolve_result_clear(&r);
	assert_int_equal(cres(c, "team@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	/* Another expansion limit. */
	assert_int_equal(dir_cache_resolve(c, "team@example.test", "+", 10, 2, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_TOO_MANY);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_hits(c), 0);
	assert_int_equal(dir_cache_entries(c), 2); /* the last of each key */
	/* DIR_CACHE_TARGETS_MAX targets are kept, one more is not. */
	assert_int_equal(cres(c, "fits@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, DIR_CACHE_TARGETS_MAX);
	yz_resolve_result_clear(&r);
	assert_int_equal(cres(c, "big@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, DIR_CACHE_TARGETS_MAX + 1);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_entries(c), 3);
	assert_int_equal(cres(c, "big@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, DIR_CACHE_TARGETS_MAX + 1);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_hits(c), 0);
	assert_int_equal(cres(c, "fits@example.test", &r), YZ_RESOLVE_OK);
	yz_resolve_result_clear(&r);
	assert_int_equal(dir_cache_hits(c), 1);
	dir_cache_turn_end(c);
	dir_cache_free(&c);
	yz_dir_close(&dir);
}

/* A zero-sized cache keeps nothing but turns still work. */
static void test_zero_size(void **state)
{
	(void)state;
	struct yz_dir *dir = open_dir(":memory:");
	fill(dir);
	struct dir_cache *c = dir_cache_new(dir, 0);
	struct yz_resolve_result r;
	for (int i = 0; i < 2; i++) {
		OK(dir_cache_turn_begin(c));
		assert_true(yz_dir_in_read(dir));
		assert_int_equal(cres(c, "alice@example.test", &r), YZ_RESOLVE_OK);
		yz_resolve_result_clear(&r);
		assert_int_equal(dir_cache_domain_exists(c, "example.test"), 1);
		dir_cache_turn_end(c);
	}
	assert_int_equal(dir_cache_entries(c), 0);
	assert_int_equal(dir_cache_hits(c), 0);
	dir_cache_free(&c);
	yz_dir_close(&dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_answers),
		cmocka_unit_test(test_no_turn_no_cache),
		cmocka_unit_test(test_second_connection),
		cmocka_unit_test(test_own_write),
		cmocka_unit_test(test_bound_small),
		cmocka_unit_test(test_bound_max),
		cmocka_unit_test(test_params_and_big),
		cmocka_unit_test(test_zero_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
