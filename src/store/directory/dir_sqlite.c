/*
 * dir_sqlite.c: the SQLite directory backend (the default, one file) and,
 * with the dsn ":memory:", the in-memory twin that the unit tests use.
 *
 * Guarantees: the database runs in WAL mode with synchronous=FULL, foreign
 * keys on, a busy timeout, and SQLite's defensive mode; the schema is
 * brought up to date by numbered migrations recorded in schema_version,
 * each applied once, all in one transaction (reopening is a no-op); every
 * mutating call is one BEGIN IMMEDIATE ... COMMIT, rolled back on any
 * failure; every query is a prepared statement with bound parameters.
 *
 * Must never: build SQL from input; leave a transaction open after a call
 * returns, except the read transaction between read_begin and read_end
 * (which never writes); open a database whose schema is newer than this
 * code knows.
 *
 * Schema versions: 1 = domains, accounts, aliases. Later issues add
 * mailing lists and DKIM keys as migrations 2, 3, ... at the end of
 * sq_migrations[].
 */
#include "store/directory/directory.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

/* How long a writer waits for another one before answering TEMP. */
#define SQ_BUSY_TIMEOUT_MS 5000

/* Migration N is sq_migrations[N - 1]; never edit one that has shipped. */
static const char *const sq_migrations[] = {
	/* 1: domains, accounts, aliases */
	"CREATE TABLE domains ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE accounts ("
	"  address TEXT PRIMARY KEY NOT NULL,"
	"  domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	"  password_hash TEXT NOT NULL,"
	"  display_name TEXT NOT NULL DEFAULT '',"
	"  quota INTEGER NOT NULL DEFAULT 0 CHECK (quota >= 0),"
	"  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
	"  created INTEGER NOT NULL);"
	"CREATE INDEX accounts_domain ON accounts(domain);"
	"CREATE TABLE aliases ("
	"  id INTEGER PRIMARY KEY,"
	"  source TEXT NOT NULL,"
	"  domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	"  target TEXT NOT NULL,"
	"  target_domain TEXT NOT NULL,"
	"  UNIQUE (source, target));"
	"CREATE INDEX aliases_domain ON aliases(domain);"
	"CREATE INDEX aliases_target_domain ON aliases(target_domain);",
};
#define SQ_SCHEMA_VERSION (sizeof sq_migrations / sizeof sq_migrations[0])

enum sq_stmt_id {
	ST_DOMAIN_INSERT,
	ST_DOMAIN_DELETE,
	ST_DOMAIN_EXISTS,
	ST_DOMAIN_LIST,
	ST_DOMAIN_USAGE,
	ST_ALIAS_DELETE_INTO,
	ST_ACCOUNT_INSERT,
	ST_ACCOUNT_DELETE,
	ST_ACCOUNT_GET,
	ST_ACCOUNT_LIST,
	ST_ACCOUNT_LIST_DOMAIN,
	ST_ACCOUNT_SET_HASH,
	ST_ACCOUNT_SET_QUOTA,
	ST_ACCOUNT_SET_ENABLED,
	ST_ALIAS_INSERT,
	ST_ALIAS_DELETE_ONE,
	ST_ALIAS_DELETE_SOURCE,
	ST_ALIAS_LIST,
	ST_ALIAS_LIST_DOMAIN,
	ST_ALIAS_LIST_SOURCE,
	ST_ALIAS_TARGETS,
	ST_READ_BEGIN,
	ST_DATA_VERSION,
	ST_READ_END,
	ST_COUNT
};

#define SQ_ACCOUNT_COLS \
	"SELECT address, display_name, password_hash, quota, enabled, created FROM accounts "

static const char *const sq_sql[ST_COUNT] = {
	[ST_DOMAIN_INSERT] = "INSERT INTO domains(name, created) VALUES(?1, ?2)",
	[ST_DOMAIN_DELETE] = "DELETE FROM domains WHERE name = ?1",
	[ST_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
	[ST_DOMAIN_LIST] = "SELECT name FROM domains ORDER BY name",
	[ST_DOMAIN_USAGE] =
		"SELECT (SELECT count(*) FROM accounts WHERE domain = ?1),"
		" (SELECT count(*) FROM aliases WHERE domain = ?1)",
	[ST_ALIAS_DELETE_INTO] = "DELETE FROM aliases WHERE target_domain = ?1",
	[ST_ACCOUNT_INSERT] =
		"INSERT INTO accounts(address, domain, password_hash,"
		" display_name, quota, enabled, created)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_ACCOUNT_DELETE] = "DELETE FROM accounts WHERE address = ?1",
	[ST_ACCOUNT_GET] = SQ_ACCOUNT_COLS "WHERE address = ?1",
	[ST_ACCOUNT_LIST] = SQ_ACCOUNT_COLS "ORDER BY address",
	[ST_ACCOUNT_LIST_DOMAIN] = SQ_ACCOUNT_COLS "WHERE domain = ?1 ORDER BY address",
	[ST_ACCOUNT_SET_HASH] = "UPDATE accounts SET password_hash = ?2 WHERE address = ?1",
	[ST_ACCOUNT_SET_QUOTA] = "UPDATE accounts SET quota = ?2 WHERE address = ?1",
	[ST_ACCOUNT_SET_ENABLED] = "UPDATE accounts SET enabled = ?2 WHERE address = ?1",
	[ST_ALIAS_INSERT] =
		"INSERT INTO aliases(source, domain, target, target_domain)"
		" VALUES(?1, ?2, ?3, ?4)",
	[ST_ALIAS_DELETE_ONE] = "DELETE FROM aliases WHERE source = ?1 AND target = ?2",
	[ST_ALIAS_DELETE_SOURCE] = "DELETE FROM aliases WHERE source = ?1",
	[ST_ALIAS_LIST] = "SELECT source, target FROM aliases ORDER BY source, target",
	[ST_ALIAS_LIST_DOMAIN] =
		"SELECT source, target FROM aliases WHERE domain = ?1"
		" ORDER BY source, target",
	[ST_ALIAS_LIST_SOURCE] =
		"SELECT source, target FROM aliases WHERE source = ?1 ORDER BY target",
	[ST_ALIAS_TARGETS] =
		"SELECT target FROM aliases WHERE source = ?1 ORDER BY id LIMIT ?2",
	/* A deferred BEGIN takes no lock; the PRAGMA that follows reads the
	 * database header and so opens the snapshot. */
	[ST_READ_BEGIN] = "BEGIN",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_READ_END] = "COMMIT",
};

struct sq {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
};

/* Report a database failure: busy, I/O, full and the like are TEMP. */
static int sq_fail(struct sq *sq, struct yz_dir_error *err, int rc,
		   const char *what)
{
	enum yz_dir_err code = YZ_DIR_ERR_TEMP;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		code = YZ_DIR_ERR_CONFLICT;
	return yz_dir_error_set(err, code, "directory database: %s: %s", what,
				sq->db != NULL ? sqlite3_errmsg(sq->db)
					       : sqlite3_errstr(rc));
}

/* A prepared statement, reset and with its bindings cleared. */
static sqlite3_stmt *sq_stmt(struct sq *sq, enum sq_stmt_id id)
{
	sqlite3_stmt *st = sq->st[id];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Bind a C string (copied by SQLite). */
static int sq_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

/* Run a statement that returns no rows; SQLITE_DONE on success. */
static int sq_run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

/* Run one SQL text without results. */
static int sq_exec(struct sq *sq, const char *sql, struct yz_dir_error *err,
		   const char *what)
{
	int rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(sq, err, rc, what);
	return 0;
}

/* Start a write transaction (takes the write lock now, not on first write). */
static int sq_begin(struct sq *sq, struct yz_dir_error *err)
{
	return sq_exec(sq, "BEGIN IMMEDIATE", err, "begin");
}

/* Commit, or roll back and report. */
static int sq_commit(struct sq *sq, struct yz_dir_error *err)
{
	int rc = sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sq_fail(sq, err, rc, "commit");
		sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/* Roll back after a failure already reported in err; returns -1. */
static int sq_rollback(struct sq *sq)
{
	if (!sqlite3_get_autocommit(sq->db))
		sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Column as heap string ("" for NULL). */
static char *sq_col_str(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	return yz_strdup(s != NULL ? (const char *)s : "");
}

/* Current schema version: max(version) of schema_version, 0 when empty. */
static int sq_schema_version(struct sq *sq, long long *version_r,
			     struct yz_dir_error *err)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(sq->db,
				    "SELECT coalesce(max(version), 0) FROM schema_version",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(sq, err, rc, "read schema version");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return sq_fail(sq, err, rc, "read schema version");
	}
	*version_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Apply every migration the database has not seen, in one transaction. */
static int sq_migrate(struct sq *sq, struct yz_dir_error *err)
{
	if (sq_begin(sq, err) < 0)
		return -1;
	long long version = 0;
	if (sq_exec(sq, "CREATE TABLE IF NOT EXISTS schema_version ("
			" version INTEGER PRIMARY KEY NOT NULL,"
			" applied INTEGER NOT NULL DEFAULT (strftime('%s', 'now')))",
		    err, "create schema_version") < 0 ||
	    sq_schema_version(sq, &version, err) < 0)
		return sq_rollback(sq);
	if (version < 0 || version > (long long)SQ_SCHEMA_VERSION) {
		yz_dir_error_set(err, YZ_DIR_ERR_INVALID,
				 "directory database has schema version %lld, "
				 "newer than this yizhan knows (%zu)",
				 version, SQ_SCHEMA_VERSION);
		return sq_rollback(sq);
	}
	for (size_t v = (size_t)version + 1; v <= SQ_SCHEMA_VERSION; v++) {
		char insert[96];
		snprintf(insert, sizeof insert,
			 "INSERT INTO schema_version(version) VALUES(%zu)", v);
		if (sq_exec(sq, sq_migrations[v - 1], err, "migrate") < 0 ||
		    sq_exec(sq, insert, err, "record migration") < 0)
			return sq_rollback(sq);
	}
	return sq_commit(sq, err);
}

/* Close the database and free every statement. */
static void sq_close(void *be)
{
	struct sq *sq = be;
	if (sq == NULL)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(sq->st[i]);
	sqlite3_close(sq->db);
	free(sq);
}

/* Open, configure, migrate and prepare. */
static int sq_open(const char *dsn, void **be_r, struct yz_dir_error *err)
{
	struct sq *sq = yz_calloc(1, sizeof *sq);
	int rc = sqlite3_open_v2(dsn, &sq->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		yz_dir_error_set(err, YZ_DIR_ERR_TEMP, "directory database %s: %s",
				 dsn, sq->db != NULL ? sqlite3_errmsg(sq->db)
						     : sqlite3_errstr(rc));
		sq_close(sq);
		return -1;
	}
	sqlite3_extended_result_codes(sq->db, 1);
	sqlite3_busy_timeout(sq->db, SQ_BUSY_TIMEOUT_MS);
	sqlite3_db_config(sq->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(sq->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	/* journal_mode answers "memory" for ":memory:", which is what we want. */
	if (sq_exec(sq, "PRAGMA foreign_keys = ON", err, "foreign keys") < 0 ||
	    sq_exec(sq, "PRAGMA journal_mode = WAL", err, "WAL") < 0 ||
	    sq_exec(sq, "PRAGMA synchronous = FULL", err, "synchronous") < 0 ||
	    sq_migrate(sq, err) < 0) {
		sq_close(sq);
		return -1;
	}
	for (size_t i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(sq->db, sq_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT, &sq->st[i], NULL);
		if (rc != SQLITE_OK) {
			sq_fail(sq, err, rc, "prepare");
			sq_close(sq);
			return -1;
		}
	}
	*be_r = sq;
	return 0;
}

/* 1 if the domain row exists, 0 if not, -1 on error. */
static int sq_domain_exists(void *be, const char *domain,
			    struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, ST_DOMAIN_EXISTS);
	sq_bind_text(st, 1, domain);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sq_fail(sq, err, rc, "look up domain");
}

/* Inside a transaction: NOT_FOUND unless the domain exists. */
static int sq_require_domain(struct sq *sq, const char *domain,
			     struct yz_dir_error *err)
{
	int r = sq_domain_exists(sq, domain, err);
	if (r == 0)
		return yz_dir_error_set(err, YZ_DIR_ERR_NOT_FOUND,
					"no such domain: %s", domain);
	return r < 0 ? -1 : 0;
}

/* Add a domain row. */
static int sq_domain_add(void *be, const char *domain, long long now,
			 struct yz_dir_error *err)
{
	struct sq *sq = be;
	if (sq_begin(sq, err) < 0)
		return -1;
	sqlite3_stmt *st = sq_stmt(sq, ST_DOMAIN_INSERT);
	sq_bind_text(st, 1, domain);
	sqlite3_bind_int64(st, 2, now);
	int rc = sq_run(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		yz_dir_error_set(err, YZ_DIR_ERR_EXISTS,
				 "domain %s already exists", domain);
		return sq_rollback(sq);
	}
	if (rc != SQLITE_DONE) {
		sq_fail(sq, err, rc, "add domain");
		return sq_rollback(sq);
	}
	return sq_commit(sq, err);
}

/* Delete a domain; refuse while it has accounts or aliases unless forced. */
static int sq_domain_del(void *be, const char *domain, bool force,
			 struct yz_dir_error *err)
{
	struct sq *sq = be;
	if (sq_begin(sq, err) < 0)
		return -1;
	if (sq_require_domain(sq, domain, err) < 0)
		return sq_rollback(sq);
	sqlite3_stmt *st = sq_stmt(sq, ST_DOMAIN_USAGE);
	sq_bind_text(st, 1, domain);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sq_fail(sq, err, rc, "count domain users");
		sqlite3_reset(st);
		return sq_rollback(sq);
	}
	long long accounts = sqlite3_column_int64(st, 0);
	long long aliases = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (!force && (accounts > 0 || aliases > 0)) {
		yz_dir_error_set(err, YZ_DIR_ERR_CONFLICT,
				 "domain %s still has %lld account(s) and %lld alias(es); "
				 "delete them first or force",
				 domain, accounts, aliases);
		return sq_rollback(sq);
	}
	/* Aliases elsewhere that point into the domain would silently turn
	 * into external forwards once it is gone: they go with it. Its own
	 * accounts and aliases go by ON DELETE CASCADE. */
	st = sq_stmt(sq, ST_ALIAS_DELETE_INTO);
	sq_bind_text(st, 1, domain);
	if ((rc = sq_run(st)) != SQLITE_DONE) {
		sq_fail(sq, err, rc, "delete aliases into domain");
		return sq_rollback(sq);
	}
	st = sq_stmt(sq, ST_DOMAIN_DELETE);
	sq_bind_text(st, 1, domain);
	if ((rc = sq_run(st)) != SQLITE_DONE) {
		sq_fail(sq, err, rc, "delete domain");
		return sq_rollback(sq);
	}
	return sq_commit(sq, err);
}

/* Append a heap string to a growing vector. */
static void sq_strv_push(char ***v, size_t *count, size_t *cap, char *s)
{
	if (*count == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*v = yz_realloc(*v, *cap * sizeof **v);
	}
	(*v)[(*count)++] = s;
}

/* Free a vector built by sq_strv_push. */
static void sq_strv_free(char **v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(v[i]);
	free(v);
}

/* Step st to its end, collecting column 0 of every row into a string
 * vector; reset st. 0, or -1 through sq_fail naming what failed. */
static int sq_collect_strv(struct sq *sq, sqlite3_stmt *st, const char *what, char ***v_r,
			   size_t *n_r, struct yz_dir_error *err)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		sq_strv_push(&v, &n, &cap, sq_col_str(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		sq_strv_free(v, n);
		return sq_fail(sq, err, rc, what);
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

/* Every domain, sorted. */
static int sq_domain_list(void *be, char ***domains_r, size_t *count_r,
			  struct yz_dir_error *err)
{
	struct sq *sq = be;
	return sq_collect_strv(sq, sq_stmt(sq, ST_DOMAIN_LIST), "list domains", domains_r, count_r,
			       err);
}

/* Insert an account whose domain must exist. */
static int sq_user_add(void *be, const struct yz_dir_account *a,
		       const char *domain, struct yz_dir_error *err)
{
	struct sq *sq = be;
	if (sq_begin(sq, err) < 0)
		return -1;
	if (sq_require_domain(sq, domain, err) < 0)
		return sq_rollback(sq);
	sqlite3_stmt *st = sq_stmt(sq, ST_ACCOUNT_INSERT);
	sq_bind_text(st, 1, a->address);
	sq_bind_text(st, 2, domain);
	sq_bind_text(st, 3, a->password_hash);
	sq_bind_text(st, 4, a->display_name != NULL ? a->display_name : "");
	sqlite3_bind_int64(st, 5, (sqlite3_int64)a->quota);
	sqlite3_bind_int(st, 6, a->enabled ? 1 : 0);
	sqlite3_bind_int64(st, 7, a->created);
	int rc = sq_run(st);
	sqlite3_clear_bindings(st); /* drop SQLite's copy of the hash */
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		yz_dir_error_set(err, YZ_DIR_ERR_EXISTS,
				 "account %s already exists", a->address);
		return sq_rollback(sq);
	}
	if (rc != SQLITE_DONE) {
		sq_fail(sq, err, rc, "add account");
		return sq_rollback(sq);
	}
	return sq_commit(sq, err);
}

/* Run a one-row UPDATE/DELETE by address; NOT_FOUND when nothing changed. */
static int sq_change_account(struct sq *sq, sqlite3_stmt *st,
			     const char *address, const char *what,
			     struct yz_dir_error *err)
{
	if (sq_begin(sq, err) < 0) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return -1;
	}
	int rc = sq_run(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		sq_fail(sq, err, rc, what);
		return sq_rollback(sq);
	}
	if (sqlite3_changes(sq->db) == 0) {
		yz_dir_error_set(err, YZ_DIR_ERR_NOT_FOUND,
				 "no such account: %s", address);
		return sq_rollback(sq);
	}
	return sq_commit(sq, err);
}

/* Delete an account (aliases naming it stay: they are the admin's). */
static int sq_user_del(void *be, const char *address, struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, ST_ACCOUNT_DELETE);
	sq_bind_text(st, 1, address);
	return sq_change_account(sq, st, address, "delete account", err);
}

/* Fill an account from the current row of an SQ_ACCOUNT_COLS query. */
static void sq_row_account(sqlite3_stmt *st, struct yz_dir_account *a)
{
	a->address = sq_col_str(st, 0);
	a->display_name = sq_col_str(st, 1);
	a->password_hash = sq_col_str(st, 2);
	sqlite3_int64 q = sqlite3_column_int64(st, 3);
	a->quota = q > 0 ? (unsigned long long)q : 0;
	a->enabled = sqlite3_column_int(st, 4) != 0;
	a->created = sqlite3_column_int64(st, 5);
}

/* One account by address: 1 found, 0 not, -1 error. */
static int sq_user_get(void *be, const char *address,
		       struct yz_dir_account *acct_r, struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, ST_ACCOUNT_GET);
	sq_bind_text(st, 1, address);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sq_row_account(st, acct_r);
		sqlite3_reset(st);
		return 1;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	return sq_fail(sq, err, rc, "look up account");
}

/* Accounts of a domain (NULL = all), sorted by address. */
static int sq_user_list(void *be, const char *domain,
			struct yz_dir_account **accts_r, size_t *count_r,
			struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, domain != NULL ? ST_ACCOUNT_LIST_DOMAIN
							: ST_ACCOUNT_LIST);
	if (domain != NULL)
		sq_bind_text(st, 1, domain);
	struct yz_dir_account *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = yz_realloc(v, cap * sizeof *v);
		}
		sq_row_account(st, &v[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < n; i++)
			yz_dir_account_clear(&v[i]);
		free(v);
		return sq_fail(sq, err, rc, "list accounts");
	}
	*accts_r = v;
	*count_r = n;
	return 0;
}

/* Replace an account's password hash. */
static int sq_user_set_hash(void *be, const char *address, const char *hash,
			    struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, ST_ACCOUNT_SET_HASH);
	sq_bind_text(st, 1, address);
	sq_bind_text(st, 2, hash);
	return sq_change_account(sq, st, address, "set password", err);
}

/* Set an account's quota. */
static int sq_user_set_quota(void *be, const char *address,
			     unsigned long long quota, struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, ST_ACCOUNT_SET_QUOTA);
	sq_bind_text(st, 1, address);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)quota);
	return sq_change_account(sq, st, address, "set quota", err);
}

/* Enable or disable an account. */
static int sq_user_set_enabled(void *be, const char *address, bool enabled,
			       struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, ST_ACCOUNT_SET_ENABLED);
	sq_bind_text(st, 1, address);
	sqlite3_bind_int(st, 2, enabled ? 1 : 0);
	return sq_change_account(sq, st, address, "set enabled", err);
}

/* Add one source -> target pair; the source's domain must be local. */
static int sq_alias_add(void *be, const char *source, const char *source_domain,
			const char *target, const char *target_domain,
			struct yz_dir_error *err)
{
	struct sq *sq = be;
	if (sq_begin(sq, err) < 0)
		return -1;
	if (sq_require_domain(sq, source_domain, err) < 0)
		return sq_rollback(sq);
	sqlite3_stmt *st = sq_stmt(sq, ST_ALIAS_INSERT);
	sq_bind_text(st, 1, source);
	sq_bind_text(st, 2, source_domain);
	sq_bind_text(st, 3, target);
	sq_bind_text(st, 4, target_domain);
	int rc = sq_run(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		yz_dir_error_set(err, YZ_DIR_ERR_EXISTS,
				 "alias %s -> %s already exists", source, target);
		return sq_rollback(sq);
	}
	if (rc != SQLITE_DONE) {
		sq_fail(sq, err, rc, "add alias");
		return sq_rollback(sq);
	}
	return sq_commit(sq, err);
}

/* Delete one pair, or every target of source (target NULL). */
static int sq_alias_del(void *be, const char *source, const char *target,
			struct yz_dir_error *err)
{
	struct sq *sq = be;
	if (sq_begin(sq, err) < 0)
		return -1;
	sqlite3_stmt *st = sq_stmt(sq, target != NULL ? ST_ALIAS_DELETE_ONE
						      : ST_ALIAS_DELETE_SOURCE);
	sq_bind_text(st, 1, source);
	if (target != NULL)
		sq_bind_text(st, 2, target);
	int rc = sq_run(st);
	if (rc != SQLITE_DONE) {
		sq_fail(sq, err, rc, "delete alias");
		return sq_rollback(sq);
	}
	if (sqlite3_changes(sq->db) == 0) {
		if (target != NULL)
			yz_dir_error_set(err, YZ_DIR_ERR_NOT_FOUND,
					 "no such alias: %s -> %s", source, target);
		else
			yz_dir_error_set(err, YZ_DIR_ERR_NOT_FOUND,
					 "no such alias: %s", source);
		return sq_rollback(sq);
	}
	return sq_commit(sq, err);
}

/* Aliases: all, of a domain, or of one source. */
static int sq_alias_list(void *be, const char *domain, const char *source,
			 struct yz_dir_alias **aliases_r, size_t *count_r,
			 struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st;
	if (source != NULL) {
		st = sq_stmt(sq, ST_ALIAS_LIST_SOURCE);
		sq_bind_text(st, 1, source);
	} else if (domain != NULL) {
		st = sq_stmt(sq, ST_ALIAS_LIST_DOMAIN);
		sq_bind_text(st, 1, domain);
	} else {
		st = sq_stmt(sq, ST_ALIAS_LIST);
	}
	struct yz_dir_alias *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = yz_realloc(v, cap * sizeof *v);
		}
		v[n].source = sq_col_str(st, 0);
		v[n].target = sq_col_str(st, 1);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		yz_dir_alias_list_free(&v, n);
		return sq_fail(sq, err, rc, "list aliases");
	}
	*aliases_r = v;
	*count_r = n;
	return 0;
}

/* Targets of one source, in insertion order, at most limit. */
static int sq_alias_targets(void *be, const char *source, size_t limit,
			    char ***targets_r, size_t *count_r,
			    struct yz_dir_error *err)
{
	struct sq *sq = be;
	sqlite3_stmt *st = sq_stmt(sq, ST_ALIAS_TARGETS);
	sq_bind_text(st, 1, source);
	sqlite3_bind_int64(st, 2, limit > (size_t)INT64_MAX ? INT64_MAX
							    : (sqlite3_int64)limit);
	return sq_collect_strv(sq, st, "look up alias", targets_r, count_r, err);
}

/* Open a read transaction: BEGIN, then a read of the header that takes the
 * WAL read lock and fixes the snapshot. The version is the pager's data
 * version (SQLITE_FCNTL_DATA_VERSION), which changes with every commit,
 * by this connection or any other, once a read transaction has started;
 * PRAGMA data_version (other connections only) is folded in as well so
 * that the answer does not rest on one mechanism alone. */
static int sq_read_begin(void *be, uint64_t *version_r, struct yz_dir_error *err)
{
	struct sq *sq = be;
	int rc = sq_run(sq_stmt(sq, ST_READ_BEGIN));
	if (rc != SQLITE_DONE)
		return sq_fail(sq, err, rc, "begin read");
	sqlite3_stmt *st = sq_stmt(sq, ST_DATA_VERSION);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		sq_fail(sq, err, rc, "read data version");
		return sq_rollback(sq);
	}
	uint64_t pragma = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	unsigned int pager = 0;
	rc = sqlite3_file_control(sq->db, "main", SQLITE_FCNTL_DATA_VERSION, &pager);
	if (rc != SQLITE_OK) {
		sq_fail(sq, err, rc, "read data version");
		return sq_rollback(sq);
	}
	*version_r = (pragma << 32) ^ (uint64_t)pager;
	return 0;
}

/* End a read transaction (it wrote nothing: COMMIT only drops the lock). */
static void sq_read_end(void *be)
{
	struct sq *sq = be;
	if (sqlite3_get_autocommit(sq->db))
		return; /* an error already ended it */
	if (sq_run(sq_stmt(sq, ST_READ_END)) != SQLITE_DONE)
		sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
}

const struct yz_dir_backend_ops yz_dir_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.domain_add = sq_domain_add,
	.domain_del = sq_domain_del,
	.domain_exists = sq_domain_exists,
	.domain_list = sq_domain_list,
	.user_add = sq_user_add,
	.user_del = sq_user_del,
	.user_get = sq_user_get,
	.user_list = sq_user_list,
	.user_set_hash = sq_user_set_hash,
	.user_set_quota = sq_user_set_quota,
	.user_set_enabled = sq_user_set_enabled,
	.alias_add = sq_alias_add,
	.alias_del = sq_alias_del,
	.alias_list = sq_alias_list,
	.alias_targets = sq_alias_targets,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
};
