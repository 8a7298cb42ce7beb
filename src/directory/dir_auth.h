/*
 * dir_auth.h: authentication decisions of the directory role: a cache of
 * verified credentials and a per-client failure delay. No I/O: the IPC
 * server (dir_server.c) asks, waits the delay, and answers.
 *
 * Guarantees: the cache never holds a plaintext password, only a salted
 * SHA-256 of user, password and the stored hash string (so a password
 * change can never be answered from the cache); entries expire after the
 * TTL and the cache is LRU-bounded; unknown users cost about as much as
 * known ones (a dummy verification), so timing does not reveal which
 * accounts exist; the failure table is bounded (oldest evicted) and quiet
 * clients are forgotten after YZ_AUTH_FAIL_QUIET_MS.
 *
 * Must never: log a password; answer OK for a disabled account; tell a
 * disabled account from a wrong password unless the password was right.
 */
#ifndef YZ_DIRECTORY_DIR_AUTH_H
#define YZ_DIRECTORY_DIR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/directory/directory.h"

/* Clients remembered by the failure tracker (oldest evicted past it). */
#define YZ_AUTH_FAIL_TABLE_MAX 4096
/* A client quiet this long starts again from no delay. */
#define YZ_AUTH_FAIL_QUIET_MS (60ULL * 60 * 1000)
/* Longest client key (an IPv6 address with zone fits). */
#define YZ_AUTH_IP_MAX 64

struct yz_auth;

enum yz_auth_result { YZ_AUTH_OK, YZ_AUTH_FAIL, YZ_AUTH_DISABLED, YZ_AUTH_TEMPFAIL };

/* cache_size 0 or cache_ttl_ms 0 disables the cache. */
struct yz_auth *yz_auth_new(size_t cache_size, uint64_t cache_ttl_ms,
			    uint64_t fail_delay_ms, uint64_t fail_delay_max_ms);
void yz_auth_free(struct yz_auth **auth);
/* argon2id cost of the dummy hash used for unknown users until a real hash
 * has been seen (then that one's cost is mimicked). Defaults to the
 * directory's defaults; tests lower it. */
void yz_auth_set_dummy_params(struct yz_auth *auth, uint32_t t_cost,
			      uint32_t m_cost_kib, uint32_t parallelism);

/* Look up the account (one indexed query); a cache hit answers without
 * hashing, otherwise the hash is verified and a success cached. On OK,
 * *canonical_user_r (if not NULL) is the account's stored address (heap);
 * otherwise it is set to NULL. */
enum yz_auth_result yz_auth_check(struct yz_auth *auth, struct yz_dir *dir,
				  const char *user, const char *password,
				  uint64_t now_ms, char **canonical_user_r);

/* The same in three steps, so that the hashing can run off the event loop
 * (dir_server.c hands it to worker threads):
 * - yz_auth_begin decides what needs no hash (bad input, a database error,
 *   a cache hit): true with *res_r (and *canonical_user_r on OK). Otherwise
 *   it returns false with *job_r: a verification against the account's hash,
 *   or against the dummy hash for an unknown user (then the answer is FAIL
 *   whatever the password).
 * - yz_auth_job_run does the hashing; it touches only the job, so it may
 *   run in any thread, and several jobs in parallel.
 * - yz_auth_finish (the auth's thread) gives the answer, caches a success
 *   and frees the job; yz_auth_job_free drops one that will not finish.
 * A job holds a copy of the password, wiped when it is freed. */
struct yz_auth_job;
bool yz_auth_begin(struct yz_auth *auth, struct yz_dir *dir, const char *user,
		   const char *password, uint64_t now_ms, enum yz_auth_result *res_r,
		   char **canonical_user_r, struct yz_auth_job **job_r);
void yz_auth_job_run(struct yz_auth_job *job);
enum yz_auth_result yz_auth_finish(struct yz_auth *auth, struct yz_auth_job **job,
				   uint64_t now_ms, char **canonical_user_r);
void yz_auth_job_free(struct yz_auth_job **job);

/* Delay before the next answer to this client: fail_delay * 2^(n-1) after
 * n failures, at most fail_delay_max; 0 with no recent failure. */
uint64_t yz_auth_delay_ms(struct yz_auth *auth, const char *client_ip,
			  uint64_t now_ms);
/* A success forgets the client; a failure counts one more. */
void yz_auth_record(struct yz_auth *auth, const char *client_ip, bool success,
		    uint64_t now_ms);

/* Forget cached credentials of one user (NULL = all). */
void yz_auth_cache_flush(struct yz_auth *auth, const char *user);
/* Counters for tests and /metrics. */
size_t yz_auth_cache_hits(const struct yz_auth *auth);
size_t yz_auth_cache_entries(const struct yz_auth *auth);
size_t yz_auth_verifications(const struct yz_auth *auth);
size_t yz_auth_fail_entries(const struct yz_auth *auth);

#endif
