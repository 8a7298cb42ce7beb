/*
 * directory.c: the directory facade: validates and lower-cases every input,
 * hashes passwords, picks the backend and turns its failures into one
 * sentence plus an enum yz_dir_err.
 *
 * Guarantees: a backend is called only with normalized names; the error
 * string handed out lives in the dir until its next call; plaintext
 * passwords are never passed to a backend.
 *
 * Must never: print or log; hand a caller a backend-owned pointer.
 */
#include "store/directory/directory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/mem.h"
#include "store/directory/dir_password.h"

struct yz_dir {
	const struct yz_dir_backend_ops *ops;
	void *be;
	struct yz_dir_error err;
	uint32_t t_cost, m_cost_kib, parallelism;
	bool in_read;           /* a read transaction is open */
	bool wrote;             /* a write went through since the last read_begin */
	bool have_be_version;   /* be_version holds a value */
	uint64_t be_version;    /* the backend's version at the last read_begin */
	uint64_t generation;    /* what yz_dir_read_begin hands out */
};

/* Every backend this build knows, by name. */
static const struct yz_dir_backend_ops *const dir_backends[] = {
	&yz_dir_sqlite_ops,
};

/* Where yz_dir_open() leaves its failure sentence (there is no dir yet). */
static _Thread_local char dir_open_error[YZ_DIR_ERROR_MAX];

/* Fill a backend error with a code and a sentence. */
int yz_dir_error_set(struct yz_dir_error *err, enum yz_dir_err code,
		     const char *fmt, ...)
{
	va_list ap;
	err->code = code;
	va_start(ap, fmt);
	int n = vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(err->text, sizeof err->text, "directory error");
	return -1;
}

/* Record a failure on the dir and hand its sentence out; returns -1. */
static int dir_fail(struct yz_dir *dir, const char **error_r,
		    enum yz_dir_err code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int dir_fail(struct yz_dir *dir, const char **error_r,
		    enum yz_dir_err code, const char *fmt, ...)
{
	va_list ap;
	dir->err.code = code;
	va_start(ap, fmt);
	int n = vsnprintf(dir->err.text, sizeof dir->err.text, fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(dir->err.text, sizeof dir->err.text, "directory error");
	if (error_r != NULL)
		*error_r = dir->err.text;
	return -1;
}

/* Pass a backend result through, exposing its error sentence. */
static int dir_ret(struct yz_dir *dir, int ret, const char **error_r)
{
	if (ret < 0 && error_r != NULL)
		*error_r = dir->err.text;
	return ret;
}

/* Open a directory by backend name and dsn; migrate its schema. */
struct yz_dir *yz_dir_open(const char *backend, const char *dsn,
			   const char **error_r)
{
	const struct yz_dir_backend_ops *ops = NULL;
	for (size_t i = 0; i < sizeof dir_backends / sizeof dir_backends[0]; i++) {
		if (backend != NULL && strcmp(backend, dir_backends[i]->name) == 0)
			ops = dir_backends[i];
	}
	if (ops == NULL) {
		snprintf(dir_open_error, sizeof dir_open_error,
			 "unknown directory backend: %s",
			 backend != NULL ? backend : "(none)");
		*error_r = dir_open_error;
		return NULL;
	}
	if (dsn == NULL || dsn[0] == '\0') {
		snprintf(dir_open_error, sizeof dir_open_error,
			 "directory %s: no database given", ops->name);
		*error_r = dir_open_error;
		return NULL;
	}
	struct yz_dir *dir = yz_calloc(1, sizeof *dir);
	dir->ops = ops;
	dir->t_cost = YZ_DIR_ARGON2_T_DEFAULT;
	dir->m_cost_kib = YZ_DIR_ARGON2_M_KIB_DEFAULT;
	dir->parallelism = YZ_DIR_ARGON2_P_DEFAULT;
	if (ops->open(dsn, &dir->be, &dir->err) < 0) {
		snprintf(dir_open_error, sizeof dir_open_error, "%s", dir->err.text);
		*error_r = dir_open_error;
		free(dir);
		return NULL;
	}
	return dir;
}

/* Close a directory and set the pointer to NULL. */
void yz_dir_close(struct yz_dir **dirp)
{
	struct yz_dir *dir = *dirp;
	if (dir == NULL)
		return;
	yz_dir_read_end(dir);
	dir->ops->close(dir->be);
	free(dir);
	*dirp = NULL;
}

/* Set the argon2id cost of new password hashes. */
void yz_dir_set_hash_params(struct yz_dir *dir, uint32_t t_cost,
			    uint32_t m_cost_kib, uint32_t parallelism)
{
	dir->t_cost = t_cost;
	dir->m_cost_kib = m_cost_kib;
	dir->parallelism = parallelism;
}

/* The code of the last failure on this dir. */
enum yz_dir_err yz_dir_last_error_code(const struct yz_dir *dir)
{
	return dir->err.code;
}

/* Open a read transaction and report the data generation. */
int yz_dir_read_begin(struct yz_dir *dir, uint64_t *generation_r,
		      const char **error_r)
{
	if (!dir->in_read) {
		uint64_t v;
		if (dir->ops->read_begin(dir->be, &v, &dir->err) < 0)
			return dir_ret(dir, -1, error_r);
		dir->in_read = true;
		if (!dir->have_be_version || v != dir->be_version || dir->wrote)
			dir->generation++;
		dir->have_be_version = true;
		dir->be_version = v;
		dir->wrote = false;
	}
	*generation_r = dir->generation;
	return 0;
}

/* End the read transaction, if one is open. */
void yz_dir_read_end(struct yz_dir *dir)
{
	if (!dir->in_read)
		return;
	dir->ops->read_end(dir->be);
	dir->in_read = false;
}

/* Is a read transaction open? */
bool yz_dir_in_read(const struct yz_dir *dir)
{
	return dir->in_read;
}

/* Before a mutating backend call: leave any read transaction (a write
 * needs its own) and make the next read_begin report a new generation,
 * whatever the backend's version says. */
static void dir_write_prepare(struct yz_dir *dir)
{
	yz_dir_read_end(dir);
	dir->wrote = true;
}

/* Normalize a domain argument, failing with INVALID. */
static int dir_norm_domain(struct yz_dir *dir, const char *domain, char *out,
			   const char **error_r)
{
	const char *why;
	if (yz_dir_domain_normalize(domain, out, YZ_DIR_DOMAIN_MAX + 1, &why) < 0)
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID, "%s", why);
	return 0;
}

/* Normalize an address argument, failing with INVALID. */
static int dir_norm_addr(struct yz_dir *dir, const char *addr, bool catchall,
			 char *out, const char **domain_r, const char **error_r)
{
	const char *why;
	if (yz_dir_address_normalize(addr, catchall, out, YZ_DIR_ADDRESS_MAX + 1,
				     domain_r, &why) < 0)
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID, "%s", why);
	return 0;
}

/* Hash a new password with the dir's argon2id cost. */
static int dir_hash_password(struct yz_dir *dir, const char *password,
			     char **hash_r, const char **error_r)
{
	if (password == NULL || password[0] == '\0')
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID,
				"password must not be empty");
	if (strnlen(password, YZ_PASSWORD_MAX + 1) > YZ_PASSWORD_MAX)
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID,
				"password longer than %d bytes", YZ_PASSWORD_MAX);
	if (yz_password_hash(password, dir->t_cost, dir->m_cost_kib,
			     dir->parallelism, hash_r) < 0)
		return dir_fail(dir, error_r, YZ_DIR_ERR_TEMP,
				"could not hash the password (argon2id t=%u m=%u p=%u)",
				dir->t_cost, dir->m_cost_kib, dir->parallelism);
	return 0;
}

/* Add a local domain. */
int yz_dir_domain_add(struct yz_dir *dir, const char *domain,
		      const char **error_r)
{
	char d[YZ_DIR_DOMAIN_MAX + 1];
	if (dir_norm_domain(dir, domain, d, error_r) < 0)
		return -1;
	dir_write_prepare(dir);
	return dir_ret(dir, dir->ops->domain_add(dir->be, d, (long long)time(NULL),
						 &dir->err), error_r);
}

/* Delete a local domain (and, forced, all that is in it). */
int yz_dir_domain_del(struct yz_dir *dir, const char *domain, bool force,
		      const char **error_r)
{
	char d[YZ_DIR_DOMAIN_MAX + 1];
	if (dir_norm_domain(dir, domain, d, error_r) < 0)
		return -1;
	dir_write_prepare(dir);
	return dir_ret(dir, dir->ops->domain_del(dir->be, d, force, &dir->err),
		       error_r);
}

/* Is the domain local? 1 / 0 / -1. */
int yz_dir_domain_exists(struct yz_dir *dir, const char *domain)
{
	char d[YZ_DIR_DOMAIN_MAX + 1];
	const char *why;
	if (yz_dir_domain_normalize(domain, d, sizeof d, &why) < 0)
		return 0;
	return dir->ops->domain_exists(dir->be, d, &dir->err);
}

/* Every local domain, sorted. */
int yz_dir_domain_list(struct yz_dir *dir, char ***domains_r, size_t *count_r,
		       const char **error_r)
{
	*domains_r = NULL;
	*count_r = 0;
	return dir_ret(dir, dir->ops->domain_list(dir->be, domains_r, count_r,
						  &dir->err), error_r);
}

/* Free a string vector returned by a list call. */
void yz_dir_strv_free(char ***v, size_t count)
{
	if (*v == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
}

/* Free an account's strings (wiping the hash) and zero it. */
void yz_dir_account_clear(struct yz_dir_account *a)
{
	free(a->address);
	free(a->display_name);
	if (a->password_hash != NULL) {
		yz_wipe(a->password_hash, strlen(a->password_hash));
		free(a->password_hash);
	}
	memset(a, 0, sizeof *a);
}

/* Display names: bounded, no control characters (they end up in headers). */
static int dir_check_display_name(struct yz_dir *dir, const char *name,
				  const char **error_r)
{
	size_t len = strnlen(name, YZ_DIR_DISPLAY_NAME_MAX + 1);
	if (len > YZ_DIR_DISPLAY_NAME_MAX)
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID,
				"display name longer than %d bytes",
				YZ_DIR_DISPLAY_NAME_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID,
					"display name contains a control character");
	}
	return 0;
}

/* Add an account with a new or an imported password hash. */
int yz_dir_user_add(struct yz_dir *dir, const char *address,
		    const char *password, const char *hash,
		    const char *display_name, unsigned long long quota,
		    const char **error_r)
{
	char a[YZ_DIR_ADDRESS_MAX + 1];
	const char *domain;
	if (dir_norm_addr(dir, address, false, a, &domain, error_r) < 0)
		return -1;
	if (display_name == NULL)
		display_name = "";
	if (dir_check_display_name(dir, display_name, error_r) < 0)
		return -1;
	if (quota > YZ_DIR_QUOTA_MAX)
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID, "quota: too large");
	if ((password == NULL) == (hash == NULL))
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID,
				"give either a password or a hash to import");
	char *h;
	if (password != NULL) {
		if (dir_hash_password(dir, password, &h, error_r) < 0)
			return -1;
	} else {
		const char *why;
		if (yz_password_hash_check(hash, &why) < 0)
			return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID,
					"cannot import hash: %s", why);
		h = yz_strdup(hash);
	}
	struct yz_dir_account acct = {
		.address = a,
		.display_name = (char *)(uintptr_t)display_name,
		.password_hash = h,
		.quota = quota,
		.enabled = true,
		.created = (long long)time(NULL),
	};
	dir_write_prepare(dir);
	int ret = dir->ops->user_add(dir->be, &acct, domain, &dir->err);
	free(h);
	return dir_ret(dir, ret, error_r);
}

/* Delete an account. */
int yz_dir_user_del(struct yz_dir *dir, const char *address,
		    const char **error_r)
{
	char a[YZ_DIR_ADDRESS_MAX + 1];
	if (dir_norm_addr(dir, address, false, a, NULL, error_r) < 0)
		return -1;
	dir_write_prepare(dir);
	return dir_ret(dir, dir->ops->user_del(dir->be, a, &dir->err), error_r);
}

/* Fetch one account by address. */
int yz_dir_user_get(struct yz_dir *dir, const char *address,
		    struct yz_dir_account *acct_r, const char **error_r)
{
	char a[YZ_DIR_ADDRESS_MAX + 1];
	memset(acct_r, 0, sizeof *acct_r);
	if (dir_norm_addr(dir, address, false, a, NULL, error_r) < 0)
		return -1;
	return yz_dir_lookup_account(dir, a, acct_r, error_r) > 0 ? 0 : -1;
}

/* Backend account lookup for normalized input: 1 / 0 / -1. */
int yz_dir_lookup_account(struct yz_dir *dir, const char *address,
			  struct yz_dir_account *acct_r, const char **error_r)
{
	int r = dir->ops->user_get(dir->be, address, acct_r, &dir->err);
	if (r == 0)
		return dir_fail(dir, error_r, YZ_DIR_ERR_NOT_FOUND,
				"no such account: %s", address) + 1;
	return dir_ret(dir, r, error_r);
}

/* Backend alias targets lookup for normalized input. */
int yz_dir_lookup_alias(struct yz_dir *dir, const char *source, size_t limit,
			char ***targets_r, size_t *count_r, const char **error_r)
{
	*targets_r = NULL;
	*count_r = 0;
	return dir_ret(dir, dir->ops->alias_targets(dir->be, source, limit,
						    targets_r, count_r,
						    &dir->err), error_r);
}

/* Backend domain lookup for normalized input: 1 / 0 / -1. */
int yz_dir_lookup_domain(struct yz_dir *dir, const char *domain,
			 const char **error_r)
{
	return dir_ret(dir, dir->ops->domain_exists(dir->be, domain, &dir->err),
		       error_r);
}

/* Accounts of one domain or of all, sorted. */
int yz_dir_user_list(struct yz_dir *dir, const char *domain,
		     struct yz_dir_account **accts_r, size_t *count_r,
		     const char **error_r)
{
	char d[YZ_DIR_DOMAIN_MAX + 1];
	*accts_r = NULL;
	*count_r = 0;
	if (domain != NULL && dir_norm_domain(dir, domain, d, error_r) < 0)
		return -1;
	return dir_ret(dir, dir->ops->user_list(dir->be, domain != NULL ? d : NULL,
						accts_r, count_r, &dir->err),
		       error_r);
}

/* Free an account list. */
void yz_dir_account_list_free(struct yz_dir_account **accts, size_t count)
{
	if (*accts == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		yz_dir_account_clear(&(*accts)[i]);
	free(*accts);
	*accts = NULL;
}

/* Set a new password (hashed here). */
int yz_dir_user_passwd(struct yz_dir *dir, const char *address,
		       const char *password, const char **error_r)
{
	char a[YZ_DIR_ADDRESS_MAX + 1];
	char *h;
	if (dir_norm_addr(dir, address, false, a, NULL, error_r) < 0)
		return -1;
	if (dir_hash_password(dir, password, &h, error_r) < 0)
		return -1;
	dir_write_prepare(dir);
	int ret = dir->ops->user_set_hash(dir->be, a, h, &dir->err);
	free(h);
	return dir_ret(dir, ret, error_r);
}

/* Set an account's quota in bytes (0 = unlimited). */
int yz_dir_user_set_quota(struct yz_dir *dir, const char *address,
			  unsigned long long quota, const char **error_r)
{
	char a[YZ_DIR_ADDRESS_MAX + 1];
	if (dir_norm_addr(dir, address, false, a, NULL, error_r) < 0)
		return -1;
	if (quota > YZ_DIR_QUOTA_MAX)
		return dir_fail(dir, error_r, YZ_DIR_ERR_INVALID, "quota: too large");
	dir_write_prepare(dir);
	return dir_ret(dir, dir->ops->user_set_quota(dir->be, a, quota, &dir->err),
		       error_r);
}

/* Enable or disable an account. */
int yz_dir_user_set_enabled(struct yz_dir *dir, const char *address,
			    bool enabled, const char **error_r)
{
	char a[YZ_DIR_ADDRESS_MAX + 1];
	if (dir_norm_addr(dir, address, false, a, NULL, error_r) < 0)
		return -1;
	dir_write_prepare(dir);
	return dir_ret(dir, dir->ops->user_set_enabled(dir->be, a, enabled,
						       &dir->err), error_r);
}

/* Add one alias source -> target pair. */
int yz_dir_alias_add(struct yz_dir *dir, const char *source,
		     const char *target, const char **error_r)
{
	char s[YZ_DIR_ADDRESS_MAX + 1], t[YZ_DIR_ADDRESS_MAX + 1];
	const char *sdom, *tdom;
	if (dir_norm_addr(dir, source, true, s, &sdom, error_r) < 0)
		return -1;
	if (dir_norm_addr(dir, target, false, t, &tdom, error_r) < 0)
		return -1;
	dir_write_prepare(dir);
	return dir_ret(dir, dir->ops->alias_add(dir->be, s, sdom, t, tdom,
						&dir->err), error_r);
}

/* Delete one alias pair, or every target of a source. */
int yz_dir_alias_del(struct yz_dir *dir, const char *source,
		     const char *target, const char **error_r)
{
	char s[YZ_DIR_ADDRESS_MAX + 1], t[YZ_DIR_ADDRESS_MAX + 1];
	if (dir_norm_addr(dir, source, true, s, NULL, error_r) < 0)
		return -1;
	if (target != NULL && dir_norm_addr(dir, target, false, t, NULL, error_r) < 0)
		return -1;
	dir_write_prepare(dir);
	return dir_ret(dir, dir->ops->alias_del(dir->be, s,
						target != NULL ? t : NULL,
						&dir->err), error_r);
}

/* Aliases: all, of a domain, or of one source. */
int yz_dir_alias_list(struct yz_dir *dir, const char *domain_or_source,
		      struct yz_dir_alias **aliases_r, size_t *count_r,
		      const char **error_r)
{
	char buf[YZ_DIR_ADDRESS_MAX + 1];
	const char *domain = NULL, *source = NULL;
	*aliases_r = NULL;
	*count_r = 0;
	if (domain_or_source != NULL) {
		if (strchr(domain_or_source, '@') != NULL) {
			if (dir_norm_addr(dir, domain_or_source, true, buf, NULL,
					  error_r) < 0)
				return -1;
			source = buf;
		} else {
			if (dir_norm_domain(dir, domain_or_source, buf, error_r) < 0)
				return -1;
			domain = buf;
		}
	}
	return dir_ret(dir, dir->ops->alias_list(dir->be, domain, source,
						 aliases_r, count_r, &dir->err),
		       error_r);
}

/* Free an alias list. */
void yz_dir_alias_list_free(struct yz_dir_alias **aliases, size_t count)
{
	if (*aliases == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*aliases)[i].source);
		free((*aliases)[i].target);
	}
	free(*aliases);
	*aliases = NULL;
}
