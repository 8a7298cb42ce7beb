/*
 * test_directory_auth.c: authentication decisions: right and wrong
 * passwords, unknown and disabled users, legacy hashes, the credentials
 * cache (hit without hashing, invalidated by a password change, TTL
 * expiry, LRU bound, flush), and the per-client failure delay (growth,
 * cap, reset on success, expiry after an hour of quiet, bounded table).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory/dir_auth.h"
#include "store/directory/directory.h"

struct fx {
	struct yz_dir *dir;
	struct yz_auth *auth;
};

static const char *err;

/* A dir with three accounts (cheap hashes) and an auth with a cache of 2. */
static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	const char *e = NULL;
	fx->dir = yz_dir_open("sqlite", ":memory:", &e);
	assert_non_null(fx->dir);
	yz_dir_set_hash_params(fx->dir, 1, 64, 1);
	assert_int_equal(yz_dir_domain_add(fx->dir, "example.test", &err), 0);
	assert_int_equal(yz_dir_user_add(fx->dir, "alice@example.test", "alice pw", NULL, NULL, 0, &err), 0);
	assert_int_equal(yz_dir_user_add(fx->dir, "bob@example.test", "bob pw", NULL, NULL, 0, &err), 0);
	assert_int_equal(yz_dir_user_add(fx->dir, "carol@example.test", "carol pw", NULL, NULL, 0, &err), 0);
	fx->auth = yz_auth_new(2, 60000, 100, 1000);
	yz_auth_set_dummy_params(fx->auth, 1, 64, 1);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	yz_auth_free(&fx->auth);
	assert_null(fx->auth);
	yz_dir_close(&fx->dir);
	free(fx);
	return 0;
}

/* Check and free the canonical name. */
static enum yz_auth_result check(struct fx *fx, const char *user,
				 const char *pw, uint64_t now)
{
	char *canon = (char *)"untouched";
	enum yz_auth_result r = yz_auth_check(fx->auth, fx->dir, user, pw, now, &canon);
	if (r == YZ_AUTH_OK) {
		assert_non_null(canon);
		assert_non_null(strstr(canon, "@example.test"));
		free(canon);
	} else {
		assert_null(canon);
	}
	return r;
}

static void test_basic(void **state)
{
	struct fx *fx = *state;
	char *canon = NULL;
	assert_int_equal(yz_auth_check(fx->auth, fx->dir, "Alice@EXAMPLE.test", "alice pw", 1, &canon),
			 YZ_AUTH_OK);
	assert_string_equal(canon, "alice@example.test");
	free(canon);
	assert_int_equal(check(fx, "alice@example.test", "Alice pw", 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, "alice@example.test", "", 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, "alice@example.test", NULL, 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, "nobody@example.test", "alice pw", 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, "nobody@else.test", "x", 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, "alice", "alice pw", 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, "a%b@example.test", "x", 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, NULL, "x", 1), YZ_AUTH_FAIL);
	/* The NULL out-parameter is allowed. */
	assert_int_equal(yz_auth_check(fx->auth, fx->dir, "bob@example.test", "bob pw", 1, NULL),
			 YZ_AUTH_OK);
	/* A password over the limit never matches. */
	char *longpw = malloc(2000);
	memset(longpw, 'p', 1999);
	longpw[1999] = '\0';
	assert_int_equal(check(fx, "alice@example.test", longpw, 1), YZ_AUTH_FAIL);
	free(longpw);
}

static void test_disabled(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(yz_dir_user_set_enabled(fx->dir, "bob@example.test", false, &err), 0);
	/* The right password learns that it is disabled; a wrong one does not. */
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 1), YZ_AUTH_DISABLED);
	assert_int_equal(check(fx, "bob@example.test", "wrong", 1), YZ_AUTH_FAIL);
	/* A cached credential does not outlive disabling. */
	assert_int_equal(yz_dir_user_set_enabled(fx->dir, "bob@example.test", true, &err), 0);
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 2), YZ_AUTH_OK);
	assert_int_equal(yz_dir_user_set_enabled(fx->dir, "bob@example.test", false, &err), 0);
	size_t hits = yz_auth_cache_hits(fx->auth);
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 3), YZ_AUTH_DISABLED);
	assert_int_equal(yz_auth_cache_hits(fx->auth), hits + 1);
}

static void test_cache_hit_and_passwd(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(yz_auth_cache_hits(fx->auth), 0);
	assert_int_equal(check(fx, "alice@example.test", "alice pw", 10), YZ_AUTH_OK);
	assert_int_equal(yz_auth_verifications(fx->auth), 1);
	assert_int_equal(yz_auth_cache_entries(fx->auth), 1);
	assert_int_equal(check(fx, "ALICE@example.test", "alice pw", 20), YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 1);
	assert_int_equal(yz_auth_verifications(fx->auth), 1);
	/* A wrong password is never a hit, and is not cached. */
	assert_int_equal(check(fx, "alice@example.test", "alice pw2", 30), YZ_AUTH_FAIL);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 1);
	assert_int_equal(yz_auth_cache_entries(fx->auth), 1);
	/* A password change: the old password fails at once, from the cache or not. */
	assert_int_equal(yz_dir_user_passwd(fx->dir, "alice@example.test", "new pw", &err), 0);
	assert_int_equal(check(fx, "alice@example.test", "alice pw", 40), YZ_AUTH_FAIL);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 1);
	assert_int_equal(check(fx, "alice@example.test", "new pw", 50), YZ_AUTH_OK);
	assert_int_equal(check(fx, "alice@example.test", "new pw", 60), YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 2);
	/* Setting the same password again makes a new salt: a new key. */
	assert_int_equal(yz_dir_user_passwd(fx->dir, "alice@example.test", "new pw", &err), 0);
	size_t v = yz_auth_verifications(fx->auth);
	assert_int_equal(check(fx, "alice@example.test", "new pw", 70), YZ_AUTH_OK);
	assert_int_equal(yz_auth_verifications(fx->auth), v + 1);
	/* A deleted account is gone even with a cached credential. */
	assert_int_equal(yz_dir_user_del(fx->dir, "alice@example.test", &err), 0);
	assert_int_equal(check(fx, "alice@example.test", "new pw", 80), YZ_AUTH_FAIL);
}

static void test_cache_ttl(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 1000), YZ_AUTH_OK);
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 1000 + 59999), YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 1);
	/* At the TTL the entry is expired: verified again, then cached anew. */
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 1000 + 60000), YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 1);
	assert_int_equal(yz_auth_verifications(fx->auth), 2);
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 1000 + 60001), YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 2);
	assert_int_equal(yz_auth_cache_entries(fx->auth), 1);
}

static void test_cache_lru_and_flush(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(check(fx, "alice@example.test", "alice pw", 1), YZ_AUTH_OK);
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 2), YZ_AUTH_OK);
	/* Touch alice so that bob is the least recently used. */
	assert_int_equal(check(fx, "alice@example.test", "alice pw", 3), YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(fx->auth), 1);
	assert_int_equal(check(fx, "carol@example.test", "carol pw", 4), YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_entries(fx->auth), 2);
	size_t v = yz_auth_verifications(fx->auth);
	assert_int_equal(check(fx, "alice@example.test", "alice pw", 5), YZ_AUTH_OK);
	assert_int_equal(yz_auth_verifications(fx->auth), v);
	assert_int_equal(check(fx, "bob@example.test", "bob pw", 6), YZ_AUTH_OK);
	assert_int_equal(yz_auth_verifications(fx->auth), v + 1); /* bob was evicted */
	assert_int_equal(yz_auth_cache_entries(fx->auth), 2);
	/* Flush one user, then all. */
	yz_auth_cache_flush(fx->auth, "BOB@example.test");
	assert_int_equal(yz_auth_cache_entries(fx->auth), 1);
	yz_auth_cache_flush(fx->auth, "not an address");
	assert_int_equal(yz_auth_cache_entries(fx->auth), 1);
	yz_auth_cache_flush(fx->auth, NULL);
	assert_int_equal(yz_auth_cache_entries(fx->auth), 0);
}

static void test_cache_disabled(void **state)
{
	struct fx *fx = *state;
	struct yz_auth *a = yz_auth_new(0, 60000, 0, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(yz_auth_check(a, fx->dir, "bob@example.test", "bob pw", 1, NULL),
				 YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(a), 0);
	assert_int_equal(yz_auth_verifications(a), 2);
	yz_auth_free(&a);
	a = yz_auth_new(10, 0, 0, 0); /* TTL 0 disables too */
	for (int i = 0; i < 2; i++)
		assert_int_equal(yz_auth_check(a, fx->dir, "bob@example.test", "bob pw", 1, NULL),
				 YZ_AUTH_OK);
	assert_int_equal(yz_auth_cache_hits(a), 0);
	assert_int_equal(yz_auth_cache_entries(a), 0);
	yz_auth_free(&a);
	yz_auth_free(&a); /* freeing NULL is harmless */
}

static void test_legacy_hash_and_unknown_timing_path(void **state)
{
	struct fx *fx = *state;
	static const char sha512[] =
		"{SHA512-CRYPT}$6$saltsaltsalt$6RPBRqqXcegoJGiWE5syf3lm3eOCK2r4.V89uuw3uHPRClYr0wPLMSvbuOWthyuJ1OMEf01UFkoDcSXJvofgE/";
	assert_int_equal(yz_dir_user_add(fx->dir, "old@example.test", NULL, sha512, NULL, 0, &err), 0);
	/* Unknown user before any real hash: the dummy hash is made. */
	assert_int_equal(check(fx, "ghost@example.test", "x", 1), YZ_AUTH_FAIL);
	assert_int_equal(check(fx, "old@example.test", "Secret pass!", 1), YZ_AUTH_OK);
	assert_int_equal(check(fx, "old@example.test", "secret pass!", 1), YZ_AUTH_FAIL);
	/* ... and after one (the last real hash is mimicked). */
	assert_int_equal(check(fx, "ghost@example.test", "x", 1), YZ_AUTH_FAIL);
	assert_int_equal(yz_auth_verifications(fx->auth), 2);
}

static void test_fail_delay(void **state)
{
	struct fx *fx = *state;
	struct yz_auth *a = fx->auth; /* delay 100, max 1000 */
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 0), 0);
	yz_auth_record(a, "192.0.2.1", false, 10);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 10), 100);
	yz_auth_record(a, "192.0.2.1", false, 20);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 20), 200);
	yz_auth_record(a, "192.0.2.1", false, 30);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 30), 400);
	yz_auth_record(a, "192.0.2.1", false, 40);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 40), 800);
	yz_auth_record(a, "192.0.2.1", false, 50);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 50), 1000);
	for (int i = 0; i < 200; i++)
		yz_auth_record(a, "192.0.2.1", false, 60);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 60), 1000);
	/* Other clients are not affected. */
	assert_int_equal(yz_auth_delay_ms(a, "2001:db8::1", 60), 0);
	assert_int_equal(yz_auth_delay_ms(a, NULL, 60), 0);
	/* Success resets. */
	yz_auth_record(a, "192.0.2.1", true, 70);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.1", 70), 0);
	assert_int_equal(yz_auth_fail_entries(a), 0);
	/* An hour of quiet forgets; just under it does not. */
	yz_auth_record(a, "192.0.2.2", false, 1000);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.2", 1000 + YZ_AUTH_FAIL_QUIET_MS), 100);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.2", 1000 + YZ_AUTH_FAIL_QUIET_MS + 1), 0);
	assert_int_equal(yz_auth_fail_entries(a), 0);
	yz_auth_record(a, "192.0.2.2", false, 1000 + YZ_AUTH_FAIL_QUIET_MS + 2);
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.2", 1000 + YZ_AUTH_FAIL_QUIET_MS + 2), 100);
	/* A clock that goes back does not crash or forget. */
	assert_int_equal(yz_auth_delay_ms(a, "192.0.2.2", 0), 100);
	/* Over-long keys are cut, not overflowed. */
	char longip[300];
	memset(longip, '1', sizeof longip - 1);
	longip[sizeof longip - 1] = '\0';
	yz_auth_record(a, longip, false, 5);
	assert_int_equal(yz_auth_delay_ms(a, longip, 5), 100);
	/* No delay configured: none given. */
	struct yz_auth *z = yz_auth_new(1, 1, 0, 0);
	yz_auth_record(z, "192.0.2.3", false, 1);
	assert_int_equal(yz_auth_delay_ms(z, "192.0.2.3", 1), 0);
	yz_auth_free(&z);
}

static void test_fail_table_bound(void **state)
{
	struct fx *fx = *state;
	struct yz_auth *a = fx->auth;
	char ip[64];
	for (unsigned i = 0; i < YZ_AUTH_FAIL_TABLE_MAX + 10; i++) {
		snprintf(ip, sizeof ip, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		yz_auth_record(a, ip, false, i);
	}
	assert_int_equal(yz_auth_fail_entries(a), YZ_AUTH_FAIL_TABLE_MAX);
	/* The oldest went; the newest stayed. */
	assert_int_equal(yz_auth_delay_ms(a, "10.0.0.0", YZ_AUTH_FAIL_TABLE_MAX + 10), 0);
	snprintf(ip, sizeof ip, "10.%u.%u.%u", 0u, ((YZ_AUTH_FAIL_TABLE_MAX + 9) >> 8) & 255,
		 (YZ_AUTH_FAIL_TABLE_MAX + 9) & 255);
	assert_int_equal(yz_auth_delay_ms(a, ip, YZ_AUTH_FAIL_TABLE_MAX + 10), 100);
}

/* Thread body: run one job. */
static void *run_job(void *arg)
{
	yz_auth_job_run(arg);
	return NULL;
}

/* begin / run (in threads, in parallel) / finish: the same answers as
 * yz_auth_check, a cache hit decided at once, unknown users verified
 * against the dummy and answered FAIL even with a known user's password. */
static void test_split_steps_in_threads(void **state)
{
	struct fx *fx = *state;
	const char *users[] = { "alice@example.test", "bob@example.test", "nobody@example.test",
				"carol@example.test" };
	const char *pws[] = { "alice pw", "bob pw", "alice pw", "wrong" };
	const enum yz_auth_result want[] = { YZ_AUTH_OK, YZ_AUTH_OK, YZ_AUTH_FAIL, YZ_AUTH_FAIL };
	struct yz_auth_job *jobs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		enum yz_auth_result res;
		char *canon = NULL;
		assert_false(yz_auth_begin(fx->auth, fx->dir, users[i], pws[i], 1, &res, &canon,
					   &jobs[i]));
		assert_non_null(jobs[i]);
		assert_null(canon);
		assert_int_equal(pthread_create(&th[i], NULL, run_job, jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < 4; i++) {
		char *canon = NULL;
		assert_int_equal(yz_auth_finish(fx->auth, &jobs[i], 1, &canon), want[i]);
		assert_null(jobs[i]);
		if (want[i] == YZ_AUTH_OK)
			assert_string_equal(canon, users[i]);
		else
			assert_null(canon);
		free(canon);
	}
	assert_int_equal(yz_auth_verifications(fx->auth), 3); /* the dummy is not counted */
	/* Cached now: decided in begin, no job. */
	enum yz_auth_result res;
	char *canon = NULL;
	struct yz_auth_job *job = (struct yz_auth_job *)&res;
	assert_true(yz_auth_begin(fx->auth, fx->dir, "alice@example.test", "alice pw", 2, &res,
				  &canon, &job));
	assert_null(job);
	assert_int_equal(res, YZ_AUTH_OK);
	assert_string_equal(canon, "alice@example.test");
	free(canon);
	/* Bad input is decided at once; a job dropped unfinished is freed. */
	assert_true(yz_auth_begin(fx->auth, fx->dir, "alice@example.test", "", 2, &res, NULL, &job));
	assert_int_equal(res, YZ_AUTH_FAIL);
	assert_false(yz_auth_begin(fx->auth, fx->dir, "bob@example.test", "x", 2, &res, NULL, &job));
	yz_auth_job_free(&job);
	assert_null(job);
	yz_auth_job_free(&job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_steps_in_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_hit_and_passwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_lru_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_hash_and_unknown_timing_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_table_bound, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
