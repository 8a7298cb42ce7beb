/*
 * test_lib_lru.c: the bounded recency-ordered hash table: lookup through
 * the chains (collisions included), recency order under touch, eviction
 * order, unlink, reset, the walk; the seeded hash (deterministic, seed
 * matters, bytes and strings agree); random bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/lru.h"

struct ent {
	struct yz_lru_link link; /* first member */
	int key;
};

/* The entry with key, found through its chain. */
static struct ent *find(const struct yz_lru *t, int key, uint64_t hash)
{
	for (struct yz_lru_link *l = yz_lru_chain(t, hash); l != NULL; l = l->hnext) {
		struct ent *e = (struct ent *)l;
		if (l->hash == hash && e->key == key)
			return e;
	}
	return NULL;
}

static void test_table(void **state)
{
	(void)state;
	struct yz_lru t;
	yz_lru_init(&t, 4);
	struct ent e[6];
	for (int i = 0; i < 6; i++) {
		e[i].key = i;
		e[i].link.hash = (uint64_t)(i % 2); /* two chains: collisions */
	}
	assert_null(yz_lru_oldest(&t));
	assert_null(yz_lru_first(&t));
	for (int i = 0; i < 4; i++) {
		assert_false(yz_lru_full(&t));
		yz_lru_insert(&t, &e[i].link);
	}
	assert_true(yz_lru_full(&t));
	assert_int_equal(t.count, 4);
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(find(&t, i, e[i].link.hash), &e[i]);
	assert_null(find(&t, 5, 1));
	/* Oldest first out; a touch makes an entry the newest. */
	assert_ptr_equal(yz_lru_oldest(&t), &e[0].link);
	yz_lru_touch(&t, &e[0].link);
	assert_ptr_equal(yz_lru_oldest(&t), &e[1].link);
	assert_ptr_equal(yz_lru_first(&t), &e[0].link);
	yz_lru_unlink(&t, yz_lru_oldest(&t));
	assert_int_equal(t.count, 3);
	assert_null(find(&t, 1, 1));
	assert_ptr_equal(find(&t, 3, 1), &e[3]); /* its chain is intact */
	yz_lru_insert(&t, &e[4].link);
	/* Newest-first walk: 4, 0, 3, 2. */
	int want[] = { 4, 0, 3, 2 };
	int n = 0;
	for (struct yz_lru_link *l = yz_lru_first(&t); l != NULL; l = yz_lru_next(&t, l))
		assert_int_equal(((struct ent *)l)->key, want[n++]);
	assert_int_equal(n, 4);
	yz_lru_reset(&t);
	assert_int_equal(t.count, 0);
	assert_null(yz_lru_first(&t));
	assert_null(find(&t, 4, 0));
	yz_lru_insert(&t, &e[5].link);
	assert_ptr_equal(find(&t, 5, 1), &e[5]);
	yz_lru_fini(&t);
	/* A table of 0 is always full. */
	yz_lru_init(&t, 0);
	assert_true(yz_lru_full(&t));
	yz_lru_fini(&t);
}

static void test_hash_and_random(void **state)
{
	(void)state;
	/* FNV-1a 64 of "a" with no seed. */
	assert_true(yz_hash_str(yz_hash_init(0), "a") == 0xaf63dc4c8601ec8cULL);
	assert_true(yz_hash_str(yz_hash_init(0), "abc") ==
		    yz_hash_bytes(yz_hash_init(0), "abc", 3));
	assert_true(yz_hash_str(yz_hash_init(1), "abc") != yz_hash_str(yz_hash_init(2), "abc"));
	assert_true(yz_hash_str(yz_hash_init(7), "") == yz_hash_init(7));
	unsigned char a[32], b[32];
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	yz_random(a, sizeof a);
	yz_random(b, sizeof b);
	assert_memory_not_equal(a, b, sizeof a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_hash_and_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
