/*
 * directory.h: the directory store (domains, accounts, aliases) behind one
 * facade, with the backends behind a table of functions.
 *
 * Guarantees: every mutating call is one transaction (all or nothing);
 * addresses and domains are validated with a bound on every length and
 * stored lower-cased, so every lookup is case-insensitive (as Postfix
 * virtual maps are); passwords are stored only as argon2id PHC hashes (or an
 * imported legacy hash that dir_password.c can verify). Expected failures
 * return -1 with *error_r set to one sentence and *code_r (when not NULL) to
 * an enum yz_dir_err; the sentence lives until the next call on the same dir.
 *
 * Must never: log or print (library code), keep a plaintext password, accept
 * the relay-sneaking address forms (`%`, `!`, `@` in a local part, source
 * routes) as account or alias names.
 *
 * Adding a backend (PostgreSQL): write a struct yz_dir_backend_ops and list
 * it in directory.c's table; callers do not change. Backends receive inputs
 * that the facade has already validated and lower-cased.
 */
#ifndef YZ_STORE_DIRECTORY_H
#define YZ_STORE_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1 bounds. */
#define YZ_DIR_LOCAL_MAX 64
#define YZ_DIR_DOMAIN_MAX 253
#define YZ_DIR_LABEL_MAX 63
#define YZ_DIR_ADDRESS_MAX 254
/* Bounds of our own. */
#define YZ_DIR_DISPLAY_NAME_MAX 256
#define YZ_DIR_HASH_MAX 512
#define YZ_DIR_ERROR_MAX 512
/* Quotas are stored as signed 64-bit integers (SQLite INTEGER). */
#define YZ_DIR_QUOTA_MAX ((unsigned long long)INT64_MAX)
/* Default argon2id cost for new hashes (RFC 9106 second recommendation,
 * p = 1): settable per dir with yz_dir_set_hash_params(). */
#define YZ_DIR_ARGON2_T_DEFAULT 3
#define YZ_DIR_ARGON2_M_KIB_DEFAULT 65536
#define YZ_DIR_ARGON2_P_DEFAULT 1

enum yz_dir_err {
	YZ_DIR_ERR_INVALID,   /* malformed input */
	YZ_DIR_ERR_EXISTS,    /* already there */
	YZ_DIR_ERR_NOT_FOUND, /* no such domain / account / alias */
	YZ_DIR_ERR_CONFLICT,  /* refused because of other data (domain not empty) */
	YZ_DIR_ERR_TEMP,      /* database busy, I/O error, disk full: try again */
};

struct yz_dir;

struct yz_dir_account {
	char *address;       /* lower-cased local@domain */
	char *display_name;  /* "" when none */
	char *password_hash; /* PHC or Dovecot-prefixed string */
	unsigned long long quota; /* bytes; 0 = unlimited */
	bool enabled;
	long long created;   /* unix time */
};

struct yz_dir_alias {
	char *source; /* local@domain, or @domain for the catch-all */
	char *target; /* local@domain (local account, alias, or external) */
};

/* Open a directory: backend "sqlite", dsn a file path or ":memory:" (the
 * in-memory twin). Runs the versioned migrations. NULL + *error_r (static
 * or owned by a thread-local buffer until the next failed open). */
struct yz_dir *yz_dir_open(const char *backend, const char *dsn,
			   const char **error_r);
void yz_dir_close(struct yz_dir **dir);
/* Cost of the argon2id hashes made by user_add/user_passwd. */
void yz_dir_set_hash_params(struct yz_dir *dir, uint32_t t_cost,
			    uint32_t m_cost_kib, uint32_t parallelism);
/* The code of the last failure on this dir. */
enum yz_dir_err yz_dir_last_error_code(const struct yz_dir *dir);

/*
 * Read transactions: every lookup between yz_dir_read_begin() and
 * yz_dir_read_end() reads one snapshot and shares one lock (instead of one
 * autocommit transaction per statement). *generation_r is a counter of this
 * dir that changes whenever the data may have changed since the previous
 * read_begin: a commit by any connection (another process's included) or
 * a write through this dir; an unchanged value guarantees the data is the
 * same as in the previous read transaction (what a cache of lookups needs).
 * Hold one only briefly: writers never wait for a WAL reader, but the WAL
 * cannot be checkpointed past it. A mutating call made inside one ends it
 * first. read_begin inside an open one only reports the generation. 0, or
 * -1 (code TEMP) with no transaction open.
 */
int yz_dir_read_begin(struct yz_dir *dir, uint64_t *generation_r,
		      const char **error_r);
/* End the read transaction (no-op when none is open). */
void yz_dir_read_end(struct yz_dir *dir);
/* Is a read transaction open? */
bool yz_dir_in_read(const struct yz_dir *dir);

int yz_dir_domain_add(struct yz_dir *dir, const char *domain,
		      const char **error_r);
/* force: also delete its accounts and aliases (and aliases elsewhere that
 * point into it); otherwise refuse (CONFLICT) while it has any. */
int yz_dir_domain_del(struct yz_dir *dir, const char *domain, bool force,
		      const char **error_r);
/* 1 local, 0 not (also for a malformed name), -1 database error. */
int yz_dir_domain_exists(struct yz_dir *dir, const char *domain);
int yz_dir_domain_list(struct yz_dir *dir, char ***domains_r, size_t *count_r,
		       const char **error_r);
void yz_dir_strv_free(char ***v, size_t count);

void yz_dir_account_clear(struct yz_dir_account *a);
/* password: plaintext, hashed here; or NULL with hash != NULL to import a
 * hash that yz_password_verify() understands. display_name may be NULL. */
int yz_dir_user_add(struct yz_dir *dir, const char *address,
		    const char *password, const char *hash,
		    const char *display_name, unsigned long long quota,
		    const char **error_r);
int yz_dir_user_del(struct yz_dir *dir, const char *address,
		    const char **error_r);
/* -1 with code NOT_FOUND if there is no such account. */
int yz_dir_user_get(struct yz_dir *dir, const char *address,
		    struct yz_dir_account *acct_r, const char **error_r);
/* domain NULL = every account; sorted by address. */
int yz_dir_user_list(struct yz_dir *dir, const char *domain,
		     struct yz_dir_account **accts_r, size_t *count_r,
		     const char **error_r);
void yz_dir_account_list_free(struct yz_dir_account **accts, size_t count);
int yz_dir_user_passwd(struct yz_dir *dir, const char *address,
		       const char *password, const char **error_r);
int yz_dir_user_set_quota(struct yz_dir *dir, const char *address,
			  unsigned long long quota, const char **error_r);
int yz_dir_user_set_enabled(struct yz_dir *dir, const char *address,
			    bool enabled, const char **error_r);

/* The source's domain must be local; a source that is also an account is
 * allowed (the alias wins; list the account as a target to keep a copy). */
int yz_dir_alias_add(struct yz_dir *dir, const char *source,
		     const char *target, const char **error_r);
/* target NULL = every target of source. NOT_FOUND if nothing matched. */
int yz_dir_alias_del(struct yz_dir *dir, const char *source,
		     const char *target, const char **error_r);
/* domain_or_source: NULL = all; "example.test" = every alias whose source
 * is in that domain (catch-all included); "a@example.test" or
 * "@example.test" = that source exactly. Sorted by source, then target. */
int yz_dir_alias_list(struct yz_dir *dir, const char *domain_or_source,
		      struct yz_dir_alias **aliases_r, size_t *count_r,
		      const char **error_r);
void yz_dir_alias_list_free(struct yz_dir_alias **aliases, size_t count);

/* "500M", "2G", "1048576", "10k", "1T", "0" / "unlimited" (= 0). Binary
 * multiples (K = 1024). At most YZ_DIR_QUOTA_MAX. */
int yz_dir_parse_quota(const char *s, unsigned long long *bytes_r,
		       const char **error_r);

/* ------------------------------------------------------------------ */
/* Address syntax (dir_address.c): pure functions, no I/O.            */

/* Validate and lower-case a domain into out (YZ_DIR_DOMAIN_MAX + 1 bytes):
 * LDH labels of 1..63 bytes, not starting or ending with '-', no trailing
 * dot, total <= 253. */
int yz_dir_domain_normalize(const char *domain, char *out, size_t outsize,
			    const char **error_r);
/* Validate and lower-case local@domain into out (YZ_DIR_ADDRESS_MAX + 1
 * bytes). allow_catchall accepts "@domain". *domain_r points into out at
 * the domain part. The local part is a dot-atom without '%' and '!'. */
int yz_dir_address_normalize(const char *address, bool allow_catchall,
			     char *out, size_t outsize, const char **domain_r,
			     const char **error_r);

/* ------------------------------------------------------------------ */
/* Recipient resolution (dir_resolve.c).                              */

enum yz_resolve_status {
	YZ_RESOLVE_OK,
	YZ_RESOLVE_NOT_LOCAL, /* domain isn't ours: a relay question for the caller */
	YZ_RESOLVE_UNKNOWN,   /* local domain, no such user (or malformed address) */
	YZ_RESOLVE_DISABLED,
	YZ_RESOLVE_LOOP,      /* alias loop or depth exceeded */
	YZ_RESOLVE_TOO_MANY,  /* expansion limit */
	YZ_RESOLVE_TEMPFAIL,
};

struct yz_resolve_target {
	char *address; /* final local account, or external address */
	bool external;
	char *folder;  /* plus-address tag when delivering to user+tag, else NULL */
	unsigned long long quota; /* of the local account; 0 for external */
};

struct yz_resolve_result {
	enum yz_resolve_status status;
	struct yz_resolve_target *targets;
	size_t count;
	char *error; /* NULL on OK */
};

/* Resolve a recipient. plus_separator: a set of delimiter characters (as
 * Postfix's recipient_delimiter; "+" by default, "" disables). max_depth:
 * nested alias expansions allowed (0 = no alias may be used); max_expansion:
 * final targets allowed (at least 1 whatever is passed).
 * Returns 0 when status is OK, -1 otherwise; *result_r is always filled
 * and must be cleared with yz_resolve_result_clear(). */
int yz_dir_resolve(struct yz_dir *dir, const char *address,
		   const char *plus_separator, unsigned max_depth,
		   unsigned max_expansion, struct yz_resolve_result *result_r);
void yz_resolve_result_clear(struct yz_resolve_result *r);
const char *yz_resolve_status_str(enum yz_resolve_status status);

/* ------------------------------------------------------------------ */
/* Backend interface: for backend writers only.                       */

/* Where a backend reports a failure. */
struct yz_dir_error {
	enum yz_dir_err code;
	char text[YZ_DIR_ERROR_MAX];
};
/* Fill err with a code and a sentence; returns -1 for `return` chaining. */
int yz_dir_error_set(struct yz_dir_error *err, enum yz_dir_err code,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Every input is validated and lower-cased; every function returns 0 or -1
 * with err set, and every mutating one is one transaction. Results are heap
 * memory (mem.h) that the facade hands to the caller.
 */
struct yz_dir_backend_ops {
	const char *name;
	int (*open)(const char *dsn, void **be_r, struct yz_dir_error *err);
	void (*close)(void *be);

	int (*domain_add)(void *be, const char *domain, long long now,
			  struct yz_dir_error *err);
	int (*domain_del)(void *be, const char *domain, bool force,
			  struct yz_dir_error *err);
	/* 1 / 0 / -1 */
	int (*domain_exists)(void *be, const char *domain,
			     struct yz_dir_error *err);
	int (*domain_list)(void *be, char ***domains_r, size_t *count_r,
			   struct yz_dir_error *err);

	int (*user_add)(void *be, const struct yz_dir_account *acct,
			const char *domain, struct yz_dir_error *err);
	int (*user_del)(void *be, const char *address, struct yz_dir_error *err);
	/* 1 found, 0 not found, -1 error */
	int (*user_get)(void *be, const char *address,
			struct yz_dir_account *acct_r, struct yz_dir_error *err);
	int (*user_list)(void *be, const char *domain /* NULL = all */,
			 struct yz_dir_account **accts_r, size_t *count_r,
			 struct yz_dir_error *err);
	int (*user_set_hash)(void *be, const char *address, const char *hash,
			     struct yz_dir_error *err);
	int (*user_set_quota)(void *be, const char *address,
			      unsigned long long quota, struct yz_dir_error *err);
	int (*user_set_enabled)(void *be, const char *address, bool enabled,
				struct yz_dir_error *err);

	int (*alias_add)(void *be, const char *source, const char *source_domain,
			 const char *target, const char *target_domain,
			 struct yz_dir_error *err);
	int (*alias_del)(void *be, const char *source, const char *target,
			 struct yz_dir_error *err);
	/* domain and source: at most one is non-NULL */
	int (*alias_list)(void *be, const char *domain, const char *source,
			  struct yz_dir_alias **aliases_r, size_t *count_r,
			  struct yz_dir_error *err);
	/* Targets of one source, at most limit of them (so a caller can tell
	 * "more than it allows" from limit + 1 answers). */
	int (*alias_targets)(void *be, const char *source, size_t limit,
			     char ***targets_r, size_t *count_r,
			     struct yz_dir_error *err);
	/* Open a read transaction on one snapshot; *version_r differs from
	 * the previous read_begin's whenever any connection (this one
	 * included) committed a change in between. Never called while one
	 * is open, nor a mutating function while one is open. */
	int (*read_begin)(void *be, uint64_t *version_r,
			  struct yz_dir_error *err);
	/* End it (it made no change). */
	void (*read_end)(void *be);
};

extern const struct yz_dir_backend_ops yz_dir_sqlite_ops;

/* For dir_resolve.c and dir_auth.c: direct backend lookups, inputs already
 * normalized (yz_dir_address_normalize). lookup_account: 1 found, 0 none
 * (code NOT_FOUND), -1 error. lookup_alias: 0 (count may be 0) or -1.
 * lookup_domain: 1 / 0 / -1. */
int yz_dir_lookup_account(struct yz_dir *dir, const char *address,
			  struct yz_dir_account *acct_r, const char **error_r);
int yz_dir_lookup_alias(struct yz_dir *dir, const char *source, size_t limit,
			char ***targets_r, size_t *count_r, const char **error_r);
int yz_dir_lookup_domain(struct yz_dir *dir, const char *domain,
			 const char **error_r);

#endif
