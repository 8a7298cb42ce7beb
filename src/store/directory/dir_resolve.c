/*
 * dir_resolve.c: recipient resolution, in the order a Postfix admin
 * expects of virtual alias and mailbox maps.
 *
 * For the address as given: exact alias -> recursive expansion (each
 * target resolved again; a target that is an existing account is final; a
 * target equal to the alias source is that account, not a loop; duplicates
 * removed; targets outside our domains are forwards) -> exact account ->
 * plus-addressing (user+tag: alias, then account, of "user", folder "tag")
 * -> the catch-all "@domain" alias -> unknown.
 *
 * Guarantees: bounded work: at most max_depth nested alias expansions (LOOP
 * past it), at most max_expansion final targets (TOO_MANY past it), at most
 * RS_WORK_FACTOR * (max_expansion + 1) lookups, and an alias met again
 * while it is being expanded is a LOOP. Folder tags are restricted to
 * [a-z0-9._-] without leading, trailing or doubled dots (a tag outside that
 * delivers to the inbox), so a tag can never name a path.
 *
 * Must never: hang on a loop; return a partial target list with a failure
 * status; treat a malformed address as anything but UNKNOWN.
 */
#include "store/directory/directory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

/* Lookups allowed per final target allowed. */
#define RS_WORK_FACTOR 8
/* Longest folder tag passed on (the local part bounds it anyway). */
#define RS_FOLDER_MAX YZ_DIR_LOCAL_MAX

enum rs_kind { RS_NOT_LOCAL, RS_UNKNOWN, RS_ACCOUNT, RS_ALIAS, RS_ERROR };

/* What one address turned out to be. */
struct rs_match {
	enum rs_kind kind;
	char key[YZ_DIR_ADDRESS_MAX + 1]; /* alias source that matched */
	char **targets;                   /* RS_ALIAS */
	size_t count;
	struct yz_dir_account acct;       /* RS_ACCOUNT */
	char folder[RS_FOLDER_MAX + 1];   /* "" = none */
};

/* One resolution in progress. */
struct rs {
	struct yz_dir *dir;
	const char *sep;
	unsigned max_depth;
	size_t max_expansion;
	size_t work, work_max;
	struct yz_resolve_result *res;
	size_t cap;
	char **chain; /* alias keys being expanded, innermost last */
	size_t chain_len, chain_cap;
	char **done;  /* alias keys fully expanded */
	size_t done_len, done_cap;
	enum yz_resolve_status fail;    /* OK, or LOOP/TOO_MANY/TEMPFAIL */
	enum yz_resolve_status dropped; /* OK, or UNKNOWN/DISABLED of a dropped target */
	char *dropped_error;
};

/* Heap copy of a formatted sentence. */
static char *rs_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *rs_fmt(const char *fmt, ...)
{
	char buf[YZ_DIR_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return yz_strdup(n >= 0 ? buf : "resolution failed");
}

/* Record a hard failure (first one wins); returns -1. */
static int rs_fail(struct rs *rs, enum yz_resolve_status st, char *error)
{
	if (rs->fail == YZ_RESOLVE_OK) {
		rs->fail = st;
		free(rs->res->error);
		rs->res->error = error;
	} else {
		free(error);
	}
	return -1;
}

/* Remember why a target was dropped, in case nothing else is left. */
static void rs_drop(struct rs *rs, enum yz_resolve_status st, char *error)
{
	/* DISABLED is the more useful answer when both happen. */
	if (rs->dropped == YZ_RESOLVE_OK || st == YZ_RESOLVE_DISABLED) {
		rs->dropped = st;
		free(rs->dropped_error);
		rs->dropped_error = error;
	} else {
		free(error);
	}
}

/* Count one lookup against the work bound. */
static int rs_work(struct rs *rs)
{
	if (++rs->work > rs->work_max)
		return rs_fail(rs, YZ_RESOLVE_TOO_MANY,
			       rs_fmt("alias expansion needs more than %zu lookups",
				      rs->work_max));
	return 0;
}

/* Keep a folder tag only if it is a safe folder name. */
static void rs_set_folder(char *out, const char *tag, size_t len)
{
	out[0] = '\0';
	if (len == 0 || len > RS_FOLDER_MAX || tag[0] == '.' || tag[len - 1] == '.')
		return;
	for (size_t i = 0; i < len; i++) {
		char c = tag[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || (c == '.' && tag[i + 1] != '.');
		if (!ok)
			return;
	}
	memcpy(out, tag, len);
	out[len] = '\0';
}

/* Free what a match holds. */
static void rs_match_clear(struct rs_match *m)
{
	yz_dir_strv_free(&m->targets, m->count);
	m->count = 0;
	yz_dir_account_clear(&m->acct);
}

/* Try addr as an alias source: 1 matched (m filled), 0 not, -1 error. */
static int rs_try_alias(struct rs *rs, const char *addr, struct rs_match *m)
{
	const char *why;
	if (rs_work(rs) < 0)
		return -1;
	if (yz_dir_lookup_alias(rs->dir, addr, rs->max_expansion + 1,
				&m->targets, &m->count, &why) < 0)
		return rs_fail(rs, YZ_RESOLVE_TEMPFAIL, yz_strdup(why));
	if (m->count == 0) {
		yz_dir_strv_free(&m->targets, 0);
		return 0;
	}
	m->kind = RS_ALIAS;
	snprintf(m->key, sizeof m->key, "%s", addr);
	return 1;
}

/* Try addr as an account: 1 found (m filled), 0 not, -1 error. */
static int rs_try_account(struct rs *rs, const char *addr, struct rs_match *m)
{
	const char *why;
	if (rs_work(rs) < 0)
		return -1;
	int r = yz_dir_lookup_account(rs->dir, addr, &m->acct, &why);
	if (r < 0)
		return rs_fail(rs, YZ_RESOLVE_TEMPFAIL, yz_strdup(why));
	if (r > 0)
		m->kind = RS_ACCOUNT;
	return r;
}

/* Alias then account (or account then alias) for one address. */
static int rs_try_both(struct rs *rs, const char *addr, bool account_first,
		       struct rs_match *m)
{
	int r = account_first ? rs_try_account(rs, addr, m)
			      : rs_try_alias(rs, addr, m);
	if (r != 0)
		return r;
	return account_first ? rs_try_alias(rs, addr, m)
			     : rs_try_account(rs, addr, m);
}

/* What a normalized address is, in resolution order. */
static void rs_lookup(struct rs *rs, const char *addr, bool account_first,
		      struct rs_match *m)
{
	memset(m, 0, sizeof *m);
	m->kind = RS_ERROR;
	const char *at = strchr(addr, '@');
	const char *why;
	if (rs_work(rs) < 0)
		return;
	int local = yz_dir_lookup_domain(rs->dir, at + 1, &why);
	if (local < 0) {
		rs_fail(rs, YZ_RESOLVE_TEMPFAIL, yz_strdup(why));
		return;
	}
	if (local == 0) {
		m->kind = RS_NOT_LOCAL;
		return;
	}
	int r = rs_try_both(rs, addr, account_first, m);
	if (r < 0)
		return;
	if (r > 0)
		return;
	/* Plus-addressing: split at the first delimiter, not at the start. */
	size_t llen = (size_t)(at - addr);
	size_t i = rs->sep[0] != '\0' ? strcspn(addr, rs->sep) : llen;
	if (i > 0 && i < llen) {
		char base[YZ_DIR_ADDRESS_MAX + 1];
		snprintf(base, sizeof base, "%.*s%s", (int)i, addr, at);
		r = rs_try_both(rs, base, account_first, m);
		if (r < 0)
			return;
		if (r > 0) {
			rs_set_folder(m->folder, addr + i + 1, llen - i - 1);
			return;
		}
	}
	char catchall[YZ_DIR_ADDRESS_MAX + 1];
	snprintf(catchall, sizeof catchall, "%s", at);
	r = rs_try_alias(rs, catchall, m);
	if (r < 0)
		return;
	if (r == 0)
		m->kind = RS_UNKNOWN;
}

/* Add a final target unless already there; TOO_MANY past the limit. */
static int rs_add(struct rs *rs, const char *address, bool external,
		  const char *folder, unsigned long long quota)
{
	struct yz_resolve_result *res = rs->res;
	for (size_t i = 0; i < res->count; i++) {
		if (strcmp(res->targets[i].address, address) == 0)
			return 0;
	}
	if (res->count >= rs->max_expansion)
		return rs_fail(rs, YZ_RESOLVE_TOO_MANY,
			       rs_fmt("alias expansion exceeds %zu recipients",
				      rs->max_expansion));
	if (res->count == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 4;
		res->targets = yz_realloc(res->targets, rs->cap * sizeof *res->targets);
	}
	struct yz_resolve_target *t = &res->targets[res->count++];
	t->address = yz_strdup(address);
	t->external = external;
	t->folder = folder != NULL && folder[0] != '\0' ? yz_strdup(folder) : NULL;
	t->quota = external ? 0 : quota;
	return 0;
}

/* Deliver to an account found by lookup, or drop it if disabled. */
static int rs_add_account(struct rs *rs, const struct yz_dir_account *a,
			  const char *folder)
{
	if (!a->enabled) {
		rs_drop(rs, YZ_RESOLVE_DISABLED,
			rs_fmt("account disabled: %s", a->address));
		return 0;
	}
	return rs_add(rs, a->address, false, folder, a->quota);
}

/* Is s in the vector? */
static bool rs_in(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i], s) == 0)
			return true;
	}
	return false;
}

static int rs_expand_alias(struct rs *rs, const char *key, char **targets,
			   size_t count, unsigned depth, const char *folder);

/* Resolve one alias target (normalized when it was stored). */
static int rs_expand_target(struct rs *rs, const char *t, unsigned depth,
			    const char *folder)
{
	struct rs_match m;
	int ret = 0;
	rs_lookup(rs, t, true, &m);
	const char *f = m.folder[0] != '\0' ? m.folder : folder;
	switch (m.kind) {
	case RS_ERROR:
		ret = -1;
		break;
	case RS_NOT_LOCAL:
		ret = rs_add(rs, t, true, NULL, 0);
		break;
	case RS_UNKNOWN:
		rs_drop(rs, YZ_RESOLVE_UNKNOWN,
			rs_fmt("alias target %s: no such user", t));
		break;
	case RS_ACCOUNT:
		ret = rs_add_account(rs, &m.acct, f);
		break;
	case RS_ALIAS:
		ret = rs_expand_alias(rs, m.key, m.targets, m.count, depth + 1, f);
		break;
	}
	rs_match_clear(&m);
	return ret;
}

/* A target equal to its own alias source: that account, never a loop. */
static int rs_expand_self(struct rs *rs, const char *t, const char *folder)
{
	struct rs_match m;
	memset(&m, 0, sizeof m);
	int r = rs_try_account(rs, t, &m);
	if (r > 0)
		r = rs_add_account(rs, &m.acct, folder);
	else if (r == 0)
		rs_drop(rs, YZ_RESOLVE_UNKNOWN,
			rs_fmt("alias %s lists itself but is no account", t));
	rs_match_clear(&m);
	return r < 0 ? -1 : 0;
}

/* Expand the targets of one alias at nesting level depth. */
static int rs_expand_alias(struct rs *rs, const char *key, char **targets,
			   size_t count, unsigned depth, const char *folder)
{
	if (depth > rs->max_depth)
		return rs_fail(rs, YZ_RESOLVE_LOOP,
			       rs_fmt("alias expansion deeper than %u levels at %s",
				      rs->max_depth, key));
	if (rs_in(rs->chain, rs->chain_len, key))
		return rs_fail(rs, YZ_RESOLVE_LOOP, rs_fmt("alias loop at %s", key));
	if (rs_in(rs->done, rs->done_len, key))
		return 0;
	if (count > rs->max_expansion)
		return rs_fail(rs, YZ_RESOLVE_TOO_MANY,
			       rs_fmt("alias %s has more than %zu targets", key,
				      rs->max_expansion));
	if (rs->chain_len == rs->chain_cap) {
		rs->chain_cap = rs->chain_cap ? rs->chain_cap * 2 : 8;
		rs->chain = yz_realloc(rs->chain, rs->chain_cap * sizeof *rs->chain);
	}
	rs->chain[rs->chain_len++] = yz_strdup(key);
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		if (strcmp(targets[i], key) == 0)
			ret = rs_expand_self(rs, targets[i], folder);
		else
			ret = rs_expand_target(rs, targets[i], depth, folder);
	}
	char *k = rs->chain[--rs->chain_len];
	if (ret < 0) {
		free(k);
		return -1;
	}
	if (rs->done_len == rs->done_cap) {
		rs->done_cap = rs->done_cap ? rs->done_cap * 2 : 8;
		rs->done = yz_realloc(rs->done, rs->done_cap * sizeof *rs->done);
	}
	rs->done[rs->done_len++] = k;
	return 0;
}

/* Drop every target (a failed resolution returns none). */
static void rs_clear_targets(struct yz_resolve_result *r)
{
	for (size_t i = 0; i < r->count; i++) {
		free(r->targets[i].address);
		free(r->targets[i].folder);
	}
	free(r->targets);
	r->targets = NULL;
	r->count = 0;
}

/* Set a final status with an error sentence (heap, owned by the result). */
static int rs_finish(struct yz_resolve_result *r, enum yz_resolve_status st,
		     char *error)
{
	r->status = st;
	if (r->error != error) {
		free(r->error);
		r->error = error;
	}
	if (st != YZ_RESOLVE_OK)
		rs_clear_targets(r);
	return st == YZ_RESOLVE_OK ? 0 : -1;
}

/* Resolve the top-level address: alias wins over an account of that name. */
static int rs_top(struct rs *rs, const char *addr)
{
	struct yz_resolve_result *res = rs->res;
	struct rs_match m;
	int ret;
	rs_lookup(rs, addr, false, &m);
	switch (m.kind) {
	case RS_ERROR:
		ret = rs_finish(res, rs->fail, res->error);
		break;
	case RS_NOT_LOCAL:
		ret = rs_finish(res, YZ_RESOLVE_NOT_LOCAL,
				rs_fmt("not a local domain: %s", strchr(addr, '@') + 1));
		break;
	case RS_UNKNOWN:
		ret = rs_finish(res, YZ_RESOLVE_UNKNOWN,
				rs_fmt("no such user: %s", addr));
		break;
	case RS_ACCOUNT:
		if (!m.acct.enabled) {
			ret = rs_finish(res, YZ_RESOLVE_DISABLED,
					rs_fmt("account disabled: %s", m.acct.address));
			break;
		}
		ret = rs_add(rs, m.acct.address, false, m.folder, m.acct.quota);
		ret = ret < 0 ? rs_finish(res, rs->fail, res->error)
			      : rs_finish(res, YZ_RESOLVE_OK, NULL);
		break;
	case RS_ALIAS:
	default:
		ret = rs_expand_alias(rs, m.key, m.targets, m.count, 1, m.folder);
		if (ret < 0)
			ret = rs_finish(res, rs->fail, res->error);
		else if (res->count == 0) {
			ret = rs_finish(res, rs->dropped != YZ_RESOLVE_OK
					     ? rs->dropped : YZ_RESOLVE_UNKNOWN,
					rs->dropped_error);
			rs->dropped_error = NULL;
		} else
			ret = rs_finish(res, YZ_RESOLVE_OK, NULL);
		break;
	}
	rs_match_clear(&m);
	return ret;
}

/* Resolve one recipient address into final targets. */
int yz_dir_resolve(struct yz_dir *dir, const char *address,
		   const char *plus_separator, unsigned max_depth,
		   unsigned max_expansion, struct yz_resolve_result *result_r)
{
	memset(result_r, 0, sizeof *result_r);
	char addr[YZ_DIR_ADDRESS_MAX + 1];
	const char *why;
	if (yz_dir_address_normalize(address, false, addr, sizeof addr, NULL,
				     &why) < 0)
		return rs_finish(result_r, YZ_RESOLVE_UNKNOWN, yz_strdup(why));
	struct rs rs = {
		.dir = dir,
		.sep = plus_separator != NULL ? plus_separator : "",
		.max_depth = max_depth,
		/* The address itself is one recipient: 0 would refuse all. */
		.max_expansion = max_expansion > 0 ? max_expansion : 1,
		.work_max = RS_WORK_FACTOR * ((size_t)max_expansion + 1),
		.res = result_r,
	};
	/* The separator may not be '@' or '.', which would split the domain or
	 * every dotted local part. */
	if (strpbrk(rs.sep, "@.") != NULL)
		rs.sep = "";
	int ret = rs_top(&rs, addr);
	for (size_t i = 0; i < rs.chain_len; i++)
		free(rs.chain[i]);
	free(rs.chain);
	yz_dir_strv_free(&rs.done, rs.done_len);
	free(rs.dropped_error);
	return ret;
}

/* Free a resolution result and zero it. */
void yz_resolve_result_clear(struct yz_resolve_result *r)
{
	rs_clear_targets(r);
	free(r->error);
	memset(r, 0, sizeof *r);
}

/* A resolution status as a word for logs. */
const char *yz_resolve_status_str(enum yz_resolve_status status)
{
	switch (status) {
	case YZ_RESOLVE_OK: return "ok";
	case YZ_RESOLVE_NOT_LOCAL: return "not local";
	case YZ_RESOLVE_UNKNOWN: return "unknown";
	case YZ_RESOLVE_DISABLED: return "disabled";
	case YZ_RESOLVE_LOOP: return "loop";
	case YZ_RESOLVE_TOO_MANY: return "too many";
	case YZ_RESOLVE_TEMPFAIL: return "tempfail";
	}
	return "invalid";
}
