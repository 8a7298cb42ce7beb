/*
 * dir_auth.c: the verified-credentials cache and the per-client failure
 * delay of the directory role (see dir_auth.h for the guarantees).
 *
 * Both tables are lib/lru.h tables: a chained hash table for lookup plus a
 * list in recency order for LRU eviction.
 * Cache keys are SHA-256(salt || user || password || stored hash), each
 * field length-prefixed so no two triples collide by concatenation; the
 * salt is 32 random bytes per process, so the keys are worthless outside
 * it.
 *
 * Must never: keep a copy of a password; grow a table past its bound; let
 * now_ms going backwards (a test or a clock step) extend a delay forever.
 */
#include "directory/dir_auth.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lru.h"
#include "lib/mem.h"
#include "store/directory/dir_password.h"

#define AUTH_KEY_LEN 32
#define AUTH_SALT_LEN 32

struct au_cache_entry {
	struct yz_lru_link link; /* first member */
	uint8_t key[AUTH_KEY_LEN];
	char *user;          /* canonical address */
	uint64_t expires_ms;
};

struct au_fail_entry {
	struct yz_lru_link link; /* first member */
	char ip[YZ_AUTH_IP_MAX + 1];
	unsigned failures;
	uint64_t last_ms;
};

struct yz_auth {
	struct yz_lru cache;
	struct yz_lru fails;
	uint64_t ttl_ms, delay_ms, delay_max_ms;
	uint8_t salt[AUTH_SALT_LEN];
	uint64_t ip_seed;
	size_t hits, verifications;
	char *dummy_hash; /* verified for unknown users */
	uint32_t dummy_t, dummy_m, dummy_p;
};

/* Free a cache entry (already unlinked). */
static void au_cache_entry_free(struct au_cache_entry *e)
{
	free(e->user);
	yz_wipe(e, sizeof *e);
	free(e);
}

/* Remove and free a cache entry. */
static void au_cache_remove(struct yz_auth *auth, struct au_cache_entry *e)
{
	yz_lru_unlink(&auth->cache, &e->link);
	au_cache_entry_free(e);
}

/* Remove and free a failure entry. */
static void au_fail_remove(struct yz_auth *auth, struct au_fail_entry *e)
{
	yz_lru_unlink(&auth->fails, &e->link);
	free(e);
}

/* Create the cache and the failure tracker. */
struct yz_auth *yz_auth_new(size_t cache_size, uint64_t cache_ttl_ms,
			    uint64_t fail_delay_ms, uint64_t fail_delay_max_ms)
{
	struct yz_auth *auth = yz_calloc(1, sizeof *auth);
	if (cache_ttl_ms == 0)
		cache_size = 0;
	yz_lru_init(&auth->cache, cache_size);
	yz_lru_init(&auth->fails, YZ_AUTH_FAIL_TABLE_MAX);
	auth->ttl_ms = cache_ttl_ms;
	auth->delay_ms = fail_delay_ms;
	auth->delay_max_ms = fail_delay_max_ms;
	yz_random(auth->salt, sizeof auth->salt);
	yz_random(&auth->ip_seed, sizeof auth->ip_seed);
	auth->dummy_t = YZ_DIR_ARGON2_T_DEFAULT;
	auth->dummy_m = YZ_DIR_ARGON2_M_KIB_DEFAULT;
	auth->dummy_p = YZ_DIR_ARGON2_P_DEFAULT;
	return auth;
}

/* Drop and wipe the dummy hash. */
static void au_dummy_clear(struct yz_auth *auth)
{
	if (auth->dummy_hash != NULL) {
		yz_wipe(auth->dummy_hash, strlen(auth->dummy_hash));
		free(auth->dummy_hash);
		auth->dummy_hash = NULL;
	}
}

/* Free everything (wiped) and set the pointer to NULL. */
void yz_auth_free(struct yz_auth **authp)
{
	struct yz_auth *auth = *authp;
	if (auth == NULL)
		return;
	yz_auth_cache_flush(auth, NULL);
	struct yz_lru_link *l;
	while ((l = yz_lru_oldest(&auth->fails)) != NULL)
		au_fail_remove(auth, (struct au_fail_entry *)l);
	yz_lru_fini(&auth->cache);
	yz_lru_fini(&auth->fails);
	au_dummy_clear(auth);
	yz_wipe(auth, sizeof *auth);
	free(auth);
	*authp = NULL;
}

/* Set the argon2id cost of the dummy hash for unknown users. */
void yz_auth_set_dummy_params(struct yz_auth *auth, uint32_t t_cost,
			      uint32_t m_cost_kib, uint32_t parallelism)
{
	auth->dummy_t = t_cost;
	auth->dummy_m = m_cost_kib;
	auth->dummy_p = parallelism;
	au_dummy_clear(auth);
}

/* Feed one length-prefixed field to the digest. */
static int au_digest_field(EVP_MD_CTX *ctx, const char *s)
{
	uint32_t len = (uint32_t)strlen(s);
	uint8_t lenbuf[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
			      (uint8_t)(len >> 8), (uint8_t)len };
	return EVP_DigestUpdate(ctx, lenbuf, sizeof lenbuf) == 1 &&
	       EVP_DigestUpdate(ctx, s, len) == 1 ? 0 : -1;
}

/* key = SHA-256(salt || user || password || hash). */
static int au_cache_key(const struct yz_auth *auth, const char *user,
			const char *password, const char *hash,
			uint8_t key[AUTH_KEY_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok = ctx != NULL &&
		 EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, auth->salt, sizeof auth->salt) == 1 &&
		 au_digest_field(ctx, user) == 0 &&
		 au_digest_field(ctx, password) == 0 &&
		 au_digest_field(ctx, hash) == 0 &&
		 EVP_DigestFinal_ex(ctx, key, &len) == 1 && len == AUTH_KEY_LEN;
	EVP_MD_CTX_free(ctx); /* cleanses the internal state */
	return ok ? 0 : -1;
}

/* The first 8 bytes of a (random-looking) key as its hash. */
static uint64_t au_key_hash(const uint8_t key[AUTH_KEY_LEN])
{
	uint64_t h;
	memcpy(&h, key, sizeof h);
	return h;
}

/* Find a cache entry by key. */
static struct au_cache_entry *au_cache_find(struct yz_auth *auth,
					    const uint8_t key[AUTH_KEY_LEN])
{
	uint64_t h = au_key_hash(key);
	for (struct yz_lru_link *l = yz_lru_chain(&auth->cache, h); l != NULL; l = l->hnext) {
		struct au_cache_entry *e = (struct au_cache_entry *)l;
		if (l->hash == h && memcmp(e->key, key, AUTH_KEY_LEN) == 0)
			return e;
	}
	return NULL;
}

/* Cache a verified credential, evicting the least recently used. */
static void au_cache_add(struct yz_auth *auth, const uint8_t key[AUTH_KEY_LEN],
			 const char *user, uint64_t now_ms)
{
	if (auth->cache.max == 0)
		return;
	struct au_cache_entry *old = au_cache_find(auth, key);
	if (old != NULL)
		au_cache_remove(auth, old);
	while (yz_lru_full(&auth->cache))
		au_cache_remove(auth, (struct au_cache_entry *)
				yz_lru_oldest(&auth->cache));
	struct au_cache_entry *e = yz_calloc(1, sizeof *e);
	memcpy(e->key, key, AUTH_KEY_LEN);
	e->link.hash = au_key_hash(key);
	e->user = yz_strdup(user);
	e->expires_ms = now_ms + auth->ttl_ms < now_ms ? UINT64_MAX
						       : now_ms + auth->ttl_ms;
	yz_lru_insert(&auth->cache, &e->link);
}

/* A verification handed out by yz_auth_begin (see dir_auth.h). */
struct yz_auth_job {
	bool dummy;            /* unknown user: verify against the dummy, then FAIL */
	bool enabled;          /* the account's flag */
	bool have_key;         /* key is valid: cache a success */
	int verdict;           /* yz_password_verify: 1 match, 0 no, -1 error */
	uint8_t key[AUTH_KEY_LEN];
	char *address;         /* canonical account address (NULL for dummy) */
	char *hash;            /* the stored hash to verify against */
	char *password;        /* a copy, wiped when the job is freed */
};

/* The dummy hash for unknown users, made once per process (the first time
 * costs one hash; later unknown users cost one verification, as known
 * ones do). NULL if it cannot be made. */
static const char *au_dummy_hash(struct yz_auth *auth)
{
	if (auth->dummy_hash == NULL) {
		char pw[AUTH_SALT_LEN * 2 + 1];
		uint8_t raw[AUTH_SALT_LEN];
		yz_random(raw, sizeof raw);
		for (size_t i = 0; i < sizeof raw; i++)
			pw[i] = (char)('a' + raw[i] % 26);
		pw[sizeof raw] = '\0';
		if (yz_password_hash(pw, auth->dummy_t, auth->dummy_m,
				     auth->dummy_p, &auth->dummy_hash) < 0)
			auth->dummy_hash = NULL;
		yz_wipe(pw, sizeof pw);
		yz_wipe(raw, sizeof raw);
	}
	return auth->dummy_hash;
}

/* Mimic the cost of real hashes: remember the last valid one seen. */
static void au_dummy_learn(struct yz_auth *auth, const char *hash)
{
	const char *why;
	if (auth->dummy_hash != NULL && strcmp(auth->dummy_hash, hash) == 0)
		return;
	if (yz_password_hash_check(hash, &why) < 0)
		return;
	au_dummy_clear(auth);
	auth->dummy_hash = yz_strdup(hash);
}

/* A job verifying password against hash. */
static struct yz_auth_job *au_job_new(const char *hash, const char *password)
{
	struct yz_auth_job *job = yz_calloc(1, sizeof *job);
	job->hash = yz_strdup(hash);
	job->password = yz_strdup(password != NULL ? password : "");
	job->verdict = -1;
	return job;
}

/* Free a job, wiping what it held. */
void yz_auth_job_free(struct yz_auth_job **jobp)
{
	struct yz_auth_job *job = *jobp;
	if (job == NULL)
		return;
	*jobp = NULL;
	yz_wipe(job->password, strlen(job->password));
	free(job->password);
	yz_wipe(job->hash, strlen(job->hash));
	free(job->hash);
	free(job->address);
	yz_wipe(job, sizeof *job);
	free(job);
}

/* The hash work (any thread): touches only the job. */
void yz_auth_job_run(struct yz_auth_job *job)
{
	const char *why;
	job->verdict = yz_password_verify(job->password, job->hash, &why);
}

/* Decide what needs no hashing; hand out the rest as a job. */
bool yz_auth_begin(struct yz_auth *auth, struct yz_dir *dir, const char *user,
		   const char *password, uint64_t now_ms, enum yz_auth_result *res_r,
		   char **canonical_user_r, struct yz_auth_job **job_r)
{
	char addr[YZ_DIR_ADDRESS_MAX + 1];
	const char *why;
	*job_r = NULL;
	*res_r = YZ_AUTH_FAIL;
	if (canonical_user_r != NULL)
		*canonical_user_r = NULL;
	if (password == NULL || password[0] == '\0' ||
	    strnlen(password, YZ_PASSWORD_MAX + 1) > YZ_PASSWORD_MAX)
		return true;
	struct yz_dir_account a;
	memset(&a, 0, sizeof a);
	int found = 0;
	if (yz_dir_address_normalize(user, false, addr, sizeof addr, NULL, &why) == 0) {
		found = yz_dir_lookup_account(dir, addr, &a, &why);
		if (found < 0) {
			*res_r = YZ_AUTH_TEMPFAIL;
			return true;
		}
	}
	if (found == 0 || a.password_hash == NULL) {
		/* Unknown (or malformed) user: as costly as a known one. */
		yz_dir_account_clear(&a);
		const char *dummy = au_dummy_hash(auth);
		if (dummy == NULL)
			return true;
		*job_r = au_job_new(dummy, password);
		(*job_r)->dummy = true;
		return false;
	}
	uint8_t key[AUTH_KEY_LEN];
	bool have_key = auth->cache.max > 0 &&
			au_cache_key(auth, a.address, password, a.password_hash, key) == 0;
	if (have_key) {
		struct au_cache_entry *e = au_cache_find(auth, key);
		if (e != NULL && now_ms < e->expires_ms) {
			yz_lru_touch(&auth->cache, &e->link);
			auth->hits++;
			yz_wipe(key, sizeof key);
			*res_r = a.enabled ? YZ_AUTH_OK : YZ_AUTH_DISABLED;
			if (*res_r == YZ_AUTH_OK && canonical_user_r != NULL)
				*canonical_user_r = yz_strdup(a.address);
			yz_dir_account_clear(&a);
			return true;
		}
		if (e != NULL)
			au_cache_remove(auth, e);
	}
	struct yz_auth_job *job = au_job_new(a.password_hash, password);
	job->enabled = a.enabled;
	job->have_key = have_key;
	if (have_key)
		memcpy(job->key, key, sizeof key);
	yz_wipe(key, sizeof key);
	job->address = yz_strdup(a.address);
	yz_dir_account_clear(&a);
	*job_r = job;
	return false;
}

/* Apply a verified job: the answer, a success cached; frees the job. */
enum yz_auth_result yz_auth_finish(struct yz_auth *auth, struct yz_auth_job **jobp,
				   uint64_t now_ms, char **canonical_user_r)
{
	struct yz_auth_job *job = *jobp;
	enum yz_auth_result res = YZ_AUTH_FAIL;
	if (canonical_user_r != NULL)
		*canonical_user_r = NULL;
	if (!job->dummy) {
		auth->verifications++;
		au_dummy_learn(auth, job->hash);
		if (job->verdict == 1 && !job->enabled) {
			res = YZ_AUTH_DISABLED;
		} else if (job->verdict == 1) {
			res = YZ_AUTH_OK;
			if (job->have_key)
				au_cache_add(auth, job->key, job->address, now_ms);
			if (canonical_user_r != NULL)
				*canonical_user_r = yz_strdup(job->address);
		}
	}
	yz_auth_job_free(jobp);
	return res;
}

/* Decide one authentication attempt, hashing in the caller's thread. */
enum yz_auth_result yz_auth_check(struct yz_auth *auth, struct yz_dir *dir,
				  const char *user, const char *password,
				  uint64_t now_ms, char **canonical_user_r)
{
	enum yz_auth_result res;
	struct yz_auth_job *job;
	if (yz_auth_begin(auth, dir, user, password, now_ms, &res, canonical_user_r, &job))
		return res;
	yz_auth_job_run(job);
	return yz_auth_finish(auth, &job, now_ms, canonical_user_r);
}

/* Seeded FNV-1a of a client key (seeded so that nobody can aim at one
 * bucket). */
static uint64_t au_ip_hash(const struct yz_auth *auth, const char *ip)
{
	return yz_hash_str(yz_hash_init(auth->ip_seed), ip);
}

/* Find a client's failure entry; a quiet one is forgotten. */
static struct au_fail_entry *au_fail_find(struct yz_auth *auth, const char *ip,
					  uint64_t h, uint64_t now_ms)
{
	for (struct yz_lru_link *l = yz_lru_chain(&auth->fails, h); l != NULL; l = l->hnext) {
		struct au_fail_entry *e = (struct au_fail_entry *)l;
		if (l->hash != h || strcmp(e->ip, ip) != 0)
			continue;
		if (now_ms >= e->last_ms &&
		    now_ms - e->last_ms > YZ_AUTH_FAIL_QUIET_MS) {
			au_fail_remove(auth, e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Bounded copy of a client key. */
static void au_ip_key(const char *client_ip, char out[YZ_AUTH_IP_MAX + 1])
{
	const char *ip = client_ip != NULL ? client_ip : "";
	size_t n = strnlen(ip, YZ_AUTH_IP_MAX);
	memcpy(out, ip, n);
	out[n] = '\0';
}

/* How long to wait before answering this client. */
uint64_t yz_auth_delay_ms(struct yz_auth *auth, const char *client_ip,
			  uint64_t now_ms)
{
	char ip[YZ_AUTH_IP_MAX + 1];
	au_ip_key(client_ip, ip);
	struct au_fail_entry *e = au_fail_find(auth, ip, au_ip_hash(auth, ip),
					       now_ms);
	if (e == NULL || e->failures == 0)
		return 0;
	unsigned shift = e->failures - 1;
	uint64_t d = auth->delay_ms;
	if (shift >= 64 || (d != 0 && d > (UINT64_MAX >> shift)))
		return auth->delay_max_ms;
	d <<= shift;
	return d < auth->delay_max_ms ? d : auth->delay_max_ms;
}

/* Count a failure for a client, or forget it on success. */
void yz_auth_record(struct yz_auth *auth, const char *client_ip, bool success,
		    uint64_t now_ms)
{
	char ip[YZ_AUTH_IP_MAX + 1];
	au_ip_key(client_ip, ip);
	uint64_t h = au_ip_hash(auth, ip);
	struct au_fail_entry *e = au_fail_find(auth, ip, h, now_ms);
	if (success) {
		if (e != NULL)
			au_fail_remove(auth, e);
		return;
	}
	if (e == NULL) {
		while (yz_lru_full(&auth->fails))
			au_fail_remove(auth, (struct au_fail_entry *)
				       yz_lru_oldest(&auth->fails));
		e = yz_calloc(1, sizeof *e);
		memcpy(e->ip, ip, sizeof e->ip);
		e->link.hash = h;
		yz_lru_insert(&auth->fails, &e->link);
	} else {
		yz_lru_touch(&auth->fails, &e->link);
	}
	if (e->failures < 64)
		e->failures++;
	e->last_ms = now_ms;
}

/* Drop cached credentials of one user, or all. */
void yz_auth_cache_flush(struct yz_auth *auth, const char *user)
{
	char addr[YZ_DIR_ADDRESS_MAX + 1];
	const char *why;
	if (user != NULL &&
	    yz_dir_address_normalize(user, false, addr, sizeof addr, NULL,
				     &why) < 0)
		return;
	struct yz_lru_link *l = yz_lru_first(&auth->cache);
	while (l != NULL) {
		struct yz_lru_link *next = yz_lru_next(&auth->cache, l);
		struct au_cache_entry *e = (struct au_cache_entry *)l;
		if (user == NULL || strcmp(e->user, addr) == 0)
			au_cache_remove(auth, e);
		l = next;
	}
}

/* Answers given from the cache. */
size_t yz_auth_cache_hits(const struct yz_auth *auth)
{
	return auth->hits;
}

/* Credentials in the cache now. */
size_t yz_auth_cache_entries(const struct yz_auth *auth)
{
	return auth->cache.count;
}

/* Real hash verifications done (cache misses). */
size_t yz_auth_verifications(const struct yz_auth *auth)
{
	return auth->verifications;
}

/* Clients in the failure table now. */
size_t yz_auth_fail_entries(const struct yz_auth *auth)
{
	return auth->fails.count;
}
