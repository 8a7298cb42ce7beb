/*
 * test_store_directory.c: the directory store on its in-memory twin and on
 * a temporary file: every operation and every error (duplicates, unknown
 * domain, malformed names at and over each length limit, deleting a
 * non-empty domain with and without force), quota syntax, migrations
 * idempotent on reopen, and recipient resolution (aliases, catch-all,
 * loops, depth and expansion limits, plus-addressing, case-insensitivity,
 * disabled accounts), read transactions and the data generation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/directory/dir_password.h"
#include "store/directory/directory.h"
#include "test_util.h"

#define OK(call) do { const char *e_ = NULL; (void)e_; \
	if ((call) != 0) fail_msg("%s: %s", #call, yz_dir_last_error_code(dir) == YZ_DIR_ERR_TEMP ? "temp" : "failed"); } while (0)

/* Run a call that must fail with code; check the sentence is there. */
#define FAILS(call, code) do { \
	assert_int_equal((call), -1); \
	assert_int_equal(yz_dir_last_error_code(dir), (code)); } while (0)

static const char *err;

/* Open an in-memory dir with cheap hashes. */
static struct yz_dir *mem_dir(void)
{
	const char *e = NULL;
	struct yz_dir *d = yz_dir_open("sqlite", ":memory:", &e);
	if (d == NULL)
		fail_msg("open: %s", e);
	yz_dir_set_hash_params(d, 1, 64, 1);
	return d;
}

static int setup(void **state)
{
	*state = mem_dir();
	return 0;
}

static int teardown(void **state)
{
	struct yz_dir *d = *state;
	yz_dir_close(&d);
	assert_null(d);
	return 0;
}

/* A string of n copies of c. */
static char *rep(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_open_errors(void **state)
{
	(void)state;
	const char *e = NULL;
	assert_null(yz_dir_open("postgresql-not-here", ":memory:", &e));
	assert_non_null(strstr(e, "unknown directory backend"));
	e = NULL;
	assert_null(yz_dir_open("sqlite", "", &e));
	assert_non_null(e);
	e = NULL;
	assert_null(yz_dir_open("sqlite", "/nonexistent-dir/x/y.db", &e));
	assert_non_null(e);
	struct yz_dir *d = NULL;
	yz_dir_close(&d); /* closing NULL is harmless */
}

static void test_domains(void **state)
{
	struct yz_dir *dir = *state;
	OK(yz_dir_domain_add(dir, "Example.TEST", &err));
	FAILS(yz_dir_domain_add(dir, "example.test", &err), YZ_DIR_ERR_EXISTS);
	assert_string_equal(err, "domain example.test already exists");
	OK(yz_dir_domain_add(dir, "b.test", &err));
	OK(yz_dir_domain_add(dir, "localhost", &err));
	OK(yz_dir_domain_add(dir, "xn--bcher-kva.test", &err));
	assert_int_equal(yz_dir_domain_exists(dir, "EXAMPLE.test"), 1);
	assert_int_equal(yz_dir_domain_exists(dir, "other.test"), 0);
	assert_int_equal(yz_dir_domain_exists(dir, "bad..name"), 0);
	assert_int_equal(yz_dir_domain_exists(dir, NULL), 0);
	char **v;
	size_t n;
	OK(yz_dir_domain_list(dir, &v, &n, &err));
	assert_int_equal(n, 4);
	assert_string_equal(v[0], "b.test");
	assert_string_equal(v[1], "example.test");
	assert_string_equal(v[2], "localhost");
	yz_dir_strv_free(&v, n);
	assert_null(v);
	FAILS(yz_dir_domain_del(dir, "nothere.test", false, &err), YZ_DIR_ERR_NOT_FOUND);
	assert_string_equal(err, "no such domain: nothere.test");
	OK(yz_dir_domain_del(dir, "B.TEST", false, &err));
	assert_int_equal(yz_dir_domain_exists(dir, "b.test"), 0);

	static const char *const bad[] = {
		"", "-a.test", "a-.test", "a..test", ".a.test", "a.test.",
		"ex_ample.test", "a b.test", "[127.0.0.1]", "a@b.test", "b\xc3\xbc.test",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		FAILS(yz_dir_domain_add(dir, bad[i], &err), YZ_DIR_ERR_INVALID);
		assert_non_null(strstr(err, "malformed domain"));
	}
	FAILS(yz_dir_domain_add(dir, NULL, &err), YZ_DIR_ERR_INVALID);
}

static void test_domain_limits(void **state)
{
	struct yz_dir *dir = *state;
	char buf[300];
	char *l63 = rep('a', 63), *l64 = rep('a', 64);
	snprintf(buf, sizeof buf, "%s.test", l63);
	OK(yz_dir_domain_add(dir, buf, &err));
	snprintf(buf, sizeof buf, "%s.test", l64);
	FAILS(yz_dir_domain_add(dir, buf, &err), YZ_DIR_ERR_INVALID);
	assert_non_null(strstr(err, "label longer than 63"));
	/* 4 labels of 63 = 255 with dots; trim to exactly 253 and 254. */
	snprintf(buf, sizeof buf, "%s.%s.%s.%s", l63, l63, l63, l63);
	buf[253] = '\0';
	assert_int_equal(strlen(buf), 253);
	OK(yz_dir_domain_add(dir, buf, &err));
	snprintf(buf, sizeof buf, "%s.%s.%s.%s", l63, l63, l63, l63);
	buf[254] = '\0';
	FAILS(yz_dir_domain_add(dir, buf, &err), YZ_DIR_ERR_INVALID);
	assert_non_null(strstr(err, "longer than 253"));
	free(l63);
	free(l64);
}

static void test_address_limits(void **state)
{
	struct yz_dir *dir = *state;
	char buf[400];
	char *l64 = rep('u', 64), *l65 = rep('u', 65);
	char *l63 = rep('d', 63);
	OK(yz_dir_domain_add(dir, "x.test", &err));
	snprintf(buf, sizeof buf, "%s@x.test", l64);
	OK(yz_dir_user_add(dir, buf, "pw", NULL, NULL, 0, &err));
	snprintf(buf, sizeof buf, "%s@x.test", l65);
	FAILS(yz_dir_user_add(dir, buf, "pw", NULL, NULL, 0, &err), YZ_DIR_ERR_INVALID);
	assert_non_null(strstr(err, "local part longer than 64"));
	/* 254 in total: 64 + 1 + 189 (a domain of three 63-byte labels - 2). */
	char dom[256];
	snprintf(dom, sizeof dom, "%s.%s.%s", l63, l63, l63);
	dom[189] = '\0';
	assert_true(dom[188] != '.' && dom[188] != '-');
	OK(yz_dir_domain_add(dir, dom, &err));
	snprintf(buf, sizeof buf, "%s@%s", l64, dom);
	assert_int_equal(strlen(buf), 254);
	OK(yz_dir_user_add(dir, buf, "pw", NULL, NULL, 0, &err));
	snprintf(dom, sizeof dom, "%s.%s.%s", l63, l63, l63);
	dom[190] = '\0';
	OK(yz_dir_domain_add(dir, dom, &err));
	snprintf(buf, sizeof buf, "%s@%s", l64, dom);
	assert_int_equal(strlen(buf), 255);
	FAILS(yz_dir_user_add(dir, buf, "pw", NULL, NULL, 0, &err), YZ_DIR_ERR_INVALID);
	assert_non_null(strstr(err, "longer than 254"));

	static const char *const bad[] = {
		"", "nobody", "@x.test", "a%b@x.test", "a!b@x.test", "b!a@x.test",
		"@a,@b:u@x.test", "a@b@x.test", "\"q\"@x.test", "a..b@x.test",
		".a@x.test", "a.@x.test", "a b@x.test", "a(b)@x.test", "a@",
		"a@x..test", "a@-x.test", "<a@x.test>", "a,b@x.test", "a:b@x.test",
		"u\xc3\xa9@x.test",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		assert_int_equal(yz_dir_user_add(dir, bad[i], "pw", NULL, NULL, 0, &err), -1);
		if (yz_dir_last_error_code(dir) != YZ_DIR_ERR_INVALID ||
		    strstr(err, "malformed") == NULL)
			fail_msg("%s: %s", bad[i], err);
		if (strcmp(bad[i], "@x.test") != 0) /* a fine catch-all source */
			assert_int_equal(yz_dir_alias_add(dir, bad[i], "t@x.test", &err), -1);
		assert_int_equal(yz_dir_alias_add(dir, "s@x.test", bad[i], &err), -1);
	}
	FAILS(yz_dir_user_add(dir, NULL, "pw", NULL, NULL, 0, &err), YZ_DIR_ERR_INVALID);
	/* Every atext character except % and ! is fine. */
	OK(yz_dir_user_add(dir, "a.b#c$d&e'f*g+h-i/j=k?l^m_n`o{p|q}r~s@x.test", "pw",
			   NULL, NULL, 0, &err));
	free(l64);
	free(l65);
	free(l63);
}

/* Every prefix of an address, fed as it would grow byte by byte: no crash,
 * and whatever is accepted is stable under a second normalization. */
static void test_address_prefixes(void **state)
{
	(void)state;
	static const char full[] = "First.Last+Tag@Sub-Domain.Example.TEST";
	char in[sizeof full], out[YZ_DIR_ADDRESS_MAX + 1], again[YZ_DIR_ADDRESS_MAX + 1];
	const char *dom, *e;
	int accepted = 0;
	for (size_t n = 0; n < sizeof full; n++) {
		memcpy(in, full, n);
		in[n] = '\0';
		if (yz_dir_address_normalize(in, true, out, sizeof out, &dom, &e) == 0) {
			accepted++;
			assert_int_equal(yz_dir_address_normalize(out, true, again, sizeof again,
								   NULL, &e), 0);
			assert_string_equal(out, again);
			assert_ptr_equal(dom, strchr(out, '@') + 1);
		} else {
			assert_non_null(e);
		}
	}
	/* "...@S" up to the end, less the prefixes ending in '.' or '-'. */
	assert_int_equal(accepted, 20);
	assert_string_equal(out, "first.last+tag@sub-domain.example.test");
	/* A buffer too small is an error, not an overflow. */
	char small[8];
	assert_int_equal(yz_dir_address_normalize("abc@example.test", false, small, sizeof small,
						  NULL, &e), -1);
	assert_int_equal(yz_dir_domain_normalize("example.test", small, sizeof small, &e), -1);
}

static void test_users(void **state)
{
	struct yz_dir *dir = *state;
	OK(yz_dir_domain_add(dir, "example.test", &err));
	OK(yz_dir_domain_add(dir, "other.test", &err));
	FAILS(yz_dir_user_add(dir, "a@nowhere.test", "pw", NULL, NULL, 0, &err),
	      YZ_DIR_ERR_NOT_FOUND);
	assert_string_equal(err, "no such domain: nowhere.test");
	OK(yz_dir_user_add(dir, "Alice@Example.Test", "s3cret", NULL, "Alice A.", 500ULL << 20, &err));
	FAILS(yz_dir_user_add(dir, "alice@example.test", "x", NULL, NULL, 0, &err),
	      YZ_DIR_ERR_EXISTS);
	assert_string_equal(err, "account alice@example.test already exists");
	OK(yz_dir_user_add(dir, "bob@example.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_user_add(dir, "carol@other.test", "pw", NULL, NULL, 0, &err));

	struct yz_dir_account a;
	OK(yz_dir_user_get(dir, "ALICE@example.TEST", &a, &err));
	assert_string_equal(a.address, "alice@example.test");
	assert_string_equal(a.display_name, "Alice A.");
	assert_int_equal(a.quota, 500ULL << 20);
	assert_true(a.enabled);
	assert_true(a.created > 1600000000LL);
	assert_int_equal(yz_password_verify("s3cret", a.password_hash, &err), 1);
	assert_int_equal(yz_password_verify("S3cret", a.password_hash, &err), 0);
	assert_non_null(strstr(a.password_hash, "$argon2id$"));
	yz_dir_account_clear(&a);
	assert_null(a.address);
	FAILS(yz_dir_user_get(dir, "zed@example.test", &a, &err), YZ_DIR_ERR_NOT_FOUND);
	assert_string_equal(err, "no such account: zed@example.test");

	struct yz_dir_account *v;
	size_t n;
	OK(yz_dir_user_list(dir, NULL, &v, &n, &err));
	assert_int_equal(n, 3);
	assert_string_equal(v[0].address, "alice@example.test");
	assert_string_equal(v[1].address, "bob@example.test");
	assert_string_equal(v[2].address, "carol@other.test");
	assert_string_equal(v[1].display_name, "");
	yz_dir_account_list_free(&v, n);
	OK(yz_dir_user_list(dir, "OTHER.test", &v, &n, &err));
	assert_int_equal(n, 1);
	yz_dir_account_list_free(&v, n);
	OK(yz_dir_user_list(dir, "nowhere.test", &v, &n, &err));
	assert_int_equal(n, 0);
	yz_dir_account_list_free(&v, n);
	FAILS(yz_dir_user_list(dir, "bad..domain", &v, &n, &err), YZ_DIR_ERR_INVALID);

	/* passwd */
	OK(yz_dir_user_passwd(dir, "alice@example.test", "new pw", &err));
	OK(yz_dir_user_get(dir, "alice@example.test", &a, &err));
	assert_int_equal(yz_password_verify("new pw", a.password_hash, &err), 1);
	assert_int_equal(yz_password_verify("s3cret", a.password_hash, &err), 0);
	yz_dir_account_clear(&a);
	FAILS(yz_dir_user_passwd(dir, "zed@example.test", "x", &err), YZ_DIR_ERR_NOT_FOUND);
	FAILS(yz_dir_user_passwd(dir, "alice@example.test", "", &err), YZ_DIR_ERR_INVALID);
	FAILS(yz_dir_user_passwd(dir, "alice@example.test", NULL, &err), YZ_DIR_ERR_INVALID);

	/* quota and enabled */
	OK(yz_dir_user_set_quota(dir, "bob@example.test", 12345, &err));
	OK(yz_dir_user_set_enabled(dir, "bob@example.test", false, &err));
	OK(yz_dir_user_get(dir, "bob@example.test", &a, &err));
	assert_int_equal(a.quota, 12345);
	assert_false(a.enabled);
	yz_dir_account_clear(&a);
	OK(yz_dir_user_set_enabled(dir, "bob@example.test", true, &err));
	FAILS(yz_dir_user_set_quota(dir, "zed@example.test", 1, &err), YZ_DIR_ERR_NOT_FOUND);
	FAILS(yz_dir_user_set_enabled(dir, "zed@example.test", true, &err), YZ_DIR_ERR_NOT_FOUND);
	FAILS(yz_dir_user_set_quota(dir, "bob@example.test", YZ_DIR_QUOTA_MAX + 1, &err),
	      YZ_DIR_ERR_INVALID);
	OK(yz_dir_user_set_quota(dir, "bob@example.test", YZ_DIR_QUOTA_MAX, &err));
	OK(yz_dir_user_get(dir, "bob@example.test", &a, &err));
	assert_true(a.quota == YZ_DIR_QUOTA_MAX);
	yz_dir_account_clear(&a);

	/* argument errors */
	FAILS(yz_dir_user_add(dir, "d@example.test", NULL, NULL, NULL, 0, &err), YZ_DIR_ERR_INVALID);
	FAILS(yz_dir_user_add(dir, "d@example.test", "pw", "$6$x$y", NULL, 0, &err), YZ_DIR_ERR_INVALID);
	FAILS(yz_dir_user_add(dir, "d@example.test", "", NULL, NULL, 0, &err), YZ_DIR_ERR_INVALID);
	FAILS(yz_dir_user_add(dir, "d@example.test", "pw", NULL, "bad\nname", 0, &err), YZ_DIR_ERR_INVALID);
	char *longname = rep('n', YZ_DIR_DISPLAY_NAME_MAX + 1);
	FAILS(yz_dir_user_add(dir, "d@example.test", "pw", NULL, longname, 0, &err), YZ_DIR_ERR_INVALID);
	longname[YZ_DIR_DISPLAY_NAME_MAX] = '\0';
	OK(yz_dir_user_add(dir, "d@example.test", "pw", NULL, longname, 0, &err));
	free(longname);
	FAILS(yz_dir_user_add(dir, "e@example.test", "pw", NULL, NULL, YZ_DIR_QUOTA_MAX + 1, &err),
	      YZ_DIR_ERR_INVALID);
	char *longpw = rep('p', YZ_PASSWORD_MAX + 1);
	FAILS(yz_dir_user_add(dir, "e@example.test", longpw, NULL, NULL, 0, &err), YZ_DIR_ERR_INVALID);
	free(longpw);

	/* import an existing hash */
	static const char sha512[] =
		"{SHA512-CRYPT}$6$saltsaltsalt$6RPBRqqXcegoJGiWE5syf3lm3eOCK2r4.V89uuw3uHPRClYr0wPLMSvbuOWthyuJ1OMEf01UFkoDcSXJvofgE/";
	OK(yz_dir_user_add(dir, "legacy@example.test", NULL, sha512, NULL, 0, &err));
	OK(yz_dir_user_get(dir, "legacy@example.test", &a, &err));
	assert_string_equal(a.password_hash, sha512);
	assert_int_equal(yz_password_verify("Secret pass!", a.password_hash, &err), 1);
	yz_dir_account_clear(&a);
	FAILS(yz_dir_user_add(dir, "plain@example.test", NULL, "{PLAIN}secret", NULL, 0, &err),
	      YZ_DIR_ERR_INVALID);
	assert_non_null(strstr(err, "cannot import hash"));

	/* delete */
	OK(yz_dir_user_del(dir, "BOB@example.test", &err));
	FAILS(yz_dir_user_del(dir, "bob@example.test", &err), YZ_DIR_ERR_NOT_FOUND);
	FAILS(yz_dir_user_get(dir, "bob@example.test", &a, &err), YZ_DIR_ERR_NOT_FOUND);
}

static void test_aliases(void **state)
{
	struct yz_dir *dir = *state;
	OK(yz_dir_domain_add(dir, "example.test", &err));
	OK(yz_dir_domain_add(dir, "other.test", &err));
	OK(yz_dir_user_add(dir, "alice@example.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_alias_add(dir, "Info@Example.test", "alice@example.test", &err));
	OK(yz_dir_alias_add(dir, "info@example.test", "someone@elsewhere.test", &err));
	FAILS(yz_dir_alias_add(dir, "info@example.test", "ALICE@example.test", &err),
	      YZ_DIR_ERR_EXISTS);
	assert_string_equal(err, "alias info@example.test -> alice@example.test already exists");
	OK(yz_dir_alias_add(dir, "@example.test", "alice@example.test", &err));
	OK(yz_dir_alias_add(dir, "alice@example.test", "alice@example.test", &err));
	OK(yz_dir_alias_add(dir, "x@other.test", "alice@example.test", &err));
	FAILS(yz_dir_alias_add(dir, "a@nowhere.test", "alice@example.test", &err),
	      YZ_DIR_ERR_NOT_FOUND);
	FAILS(yz_dir_alias_add(dir, "@nowhere.test", "alice@example.test", &err),
	      YZ_DIR_ERR_NOT_FOUND);
	FAILS(yz_dir_alias_add(dir, "a@example.test", "@example.test", &err),
	      YZ_DIR_ERR_INVALID);
	FAILS(yz_dir_alias_add(dir, "a@example.test", NULL, &err), YZ_DIR_ERR_INVALID);

	struct yz_dir_alias *v;
	size_t n;
	OK(yz_dir_alias_list(dir, NULL, &v, &n, &err));
	assert_int_equal(n, 5);
	assert_string_equal(v[0].source, "@example.test");
	yz_dir_alias_list_free(&v, n);
	assert_null(v);
	OK(yz_dir_alias_list(dir, "EXAMPLE.test", &v, &n, &err));
	assert_int_equal(n, 4);
	yz_dir_alias_list_free(&v, n);
	OK(yz_dir_alias_list(dir, "info@example.test", &v, &n, &err));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].target, "alice@example.test");
	assert_string_equal(v[1].target, "someone@elsewhere.test");
	yz_dir_alias_list_free(&v, n);
	OK(yz_dir_alias_list(dir, "@example.test", &v, &n, &err));
	assert_int_equal(n, 1);
	yz_dir_alias_list_free(&v, n);
	FAILS(yz_dir_alias_list(dir, "a%b@example.test", &v, &n, &err), YZ_DIR_ERR_INVALID);
	FAILS(yz_dir_alias_list(dir, "bad..dom", &v, &n, &err), YZ_DIR_ERR_INVALID);

	OK(yz_dir_alias_del(dir, "info@example.test", "SOMEONE@elsewhere.test", &err));
	FAILS(yz_dir_alias_del(dir, "info@example.test", "someone@elsewhere.test", &err),
	      YZ_DIR_ERR_NOT_FOUND);
	OK(yz_dir_alias_add(dir, "info@example.test", "b@elsewhere.test", &err));
	OK(yz_dir_alias_del(dir, "info@example.test", NULL, &err));
	FAILS(yz_dir_alias_del(dir, "info@example.test", NULL, &err), YZ_DIR_ERR_NOT_FOUND);
	assert_string_equal(err, "no such alias: info@example.test");
	OK(yz_dir_alias_del(dir, "@example.test", NULL, &err));
	OK(yz_dir_alias_list(dir, "example.test", &v, &n, &err));
	assert_int_equal(n, 1);
	yz_dir_alias_list_free(&v, n);
}

static void test_domain_del_force(void **state)
{
	struct yz_dir *dir = *state;
	OK(yz_dir_domain_add(dir, "gone.test", &err));
	OK(yz_dir_domain_add(dir, "stay.test", &err));
	OK(yz_dir_user_add(dir, "u@gone.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_user_add(dir, "s@stay.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_alias_add(dir, "a@gone.test", "u@gone.test", &err));
	OK(yz_dir_alias_add(dir, "@gone.test", "s@stay.test", &err));
	OK(yz_dir_alias_add(dir, "b@stay.test", "u@gone.test", &err));
	OK(yz_dir_alias_add(dir, "b@stay.test", "s@stay.test", &err));
	FAILS(yz_dir_domain_del(dir, "gone.test", false, &err), YZ_DIR_ERR_CONFLICT);
	assert_non_null(strstr(err, "1 account(s) and 2 alias(es)"));
	/* Refused means untouched. */
	assert_int_equal(yz_dir_domain_exists(dir, "gone.test"), 1);
	struct yz_dir_account a;
	OK(yz_dir_user_get(dir, "u@gone.test", &a, &err));
	yz_dir_account_clear(&a);
	OK(yz_dir_domain_del(dir, "gone.test", true, &err));
	assert_int_equal(yz_dir_domain_exists(dir, "gone.test"), 0);
	FAILS(yz_dir_user_get(dir, "u@gone.test", &a, &err), YZ_DIR_ERR_NOT_FOUND);
	struct yz_dir_alias *v;
	size_t n;
	OK(yz_dir_alias_list(dir, NULL, &v, &n, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].source, "b@stay.test");
	assert_string_equal(v[0].target, "s@stay.test");
	yz_dir_alias_list_free(&v, n);
	/* The survivor is whole; an empty domain goes without force. */
	OK(yz_dir_user_get(dir, "s@stay.test", &a, &err));
	yz_dir_account_clear(&a);
	OK(yz_dir_domain_add(dir, "empty.test", &err));
	OK(yz_dir_domain_del(dir, "empty.test", false, &err));
	/* Re-adding a deleted domain starts empty. */
	OK(yz_dir_domain_add(dir, "gone.test", &err));
	OK(yz_dir_user_list(dir, "gone.test", &(struct yz_dir_account *){ NULL }, &n, &err));
	assert_int_equal(n, 0);
}

static void test_parse_quota(void **state)
{
	(void)state;
	static const struct { const char *in; unsigned long long want; } good[] = {
		{ "0", 0 }, { "unlimited", 0 }, { "UNLIMITED", 0 }, { "none", 0 },
		{ "1048576", 1048576 }, { "500M", 500ULL << 20 }, { "500m", 500ULL << 20 },
		{ "2G", 2ULL << 30 }, { "10k", 10240 }, { "1T", 1ULL << 40 },
		{ "500MB", 500ULL << 20 }, { "3GiB", 3ULL << 30 },
		{ "9223372036854775807", 9223372036854775807ULL },
		{ "8388607T", 8388607ULL << 40 },
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		unsigned long long q = 1;
		const char *e = NULL;
		if (yz_dir_parse_quota(good[i].in, &q, &e) != 0 || q != good[i].want)
			fail_msg("%s: %llu %s", good[i].in, q, e != NULL ? e : "");
	}
	static const char *const bad[] = {
		"", "-1", "M", "5X", "5MM", "1.5G", " 5", "5 ", "0x10", "unlimitedx",
		"9223372036854775808", "99999999999999999999999", "8388608T",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		unsigned long long q = 0;
		const char *e = NULL;
		if (yz_dir_parse_quota(bad[i], &q, &e) != -1 || e == NULL ||
		    strncmp(e, "quota:", 6) != 0)
			fail_msg("%s accepted", bad[i]);
	}
	const char *e = NULL;
	unsigned long long q;
	assert_int_equal(yz_dir_parse_quota(NULL, &q, &e), -1);
	assert_string_equal(e, "quota: expected a size like 500M, 2G, 1048576, or 0/unlimited");
}

/* One integer from a raw SQLite query on path. */
static long long raw_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Read transactions and the data generation: unchanged data keeps it;
 * a commit by another connection, a write through this dir, or a raw
 * write by SQLite itself moves it; inside a read transaction the snapshot
 * does not move; a write inside a read ends it. */
static void test_read_generation(void **state)
{
	(void)state;
	char path[256];
	tmp_db(path, sizeof path, "dir");
	rm_db(path);
	const char *e = NULL;
	struct yz_dir *dir = yz_dir_open("sqlite", path, &e);
	struct yz_dir *other = yz_dir_open("sqlite", path, &e);
	assert_non_null(dir);
	assert_non_null(other);
	yz_dir_set_hash_params(other, 1, 64, 1);
	uint64_t g0, g1, g2;
	assert_false(yz_dir_in_read(dir));
	assert_int_equal(yz_dir_read_begin(dir, &g0, &err), 0);
	assert_true(yz_dir_in_read(dir));
	/* Nested: the same transaction, the same generation. */
	assert_int_equal(yz_dir_read_begin(dir, &g1, &err), 0);
	assert_true(g1 == g0);
	yz_dir_read_end(dir);
	assert_false(yz_dir_in_read(dir));
	yz_dir_read_end(dir);
	/* Nothing changed. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(yz_dir_read_begin(dir, &g1, &err), 0);
		assert_true(g1 == g0);
		assert_int_equal(yz_dir_domain_exists(dir, "example.test"), 0);
		yz_dir_read_end(dir);
	}
	/* Another connection commits. */
	assert_int_equal(yz_dir_domain_add(other, "example.test", &err), 0);
	assert_int_equal(yz_dir_read_begin(dir, &g1, &err), 0);
	assert_true(g1 != g0);
	assert_int_equal(yz_dir_domain_exists(dir, "example.test"), 1);
	/* Inside the snapshot, a later commit is not seen... */
	assert_int_equal(yz_dir_user_add(other, "a@example.test", "pw", NULL, NULL, 0, &err), 0);
	struct yz_dir_account a;
	assert_int_equal(yz_dir_user_get(dir, "a@example.test", &a, &err), -1);
	assert_int_equal(yz_dir_last_error_code(dir), YZ_DIR_ERR_NOT_FOUND);
	yz_dir_read_end(dir);
	/* ...until the next read transaction. */
	assert_int_equal(yz_dir_read_begin(dir, &g2, &err), 0);
	assert_true(g2 != g1);
	assert_int_equal(yz_dir_user_get(dir, "a@example.test", &a, &err), 0);
	yz_dir_account_clear(&a);
	yz_dir_read_end(dir);
	/* A write through this dir inside a read ends the read and moves the
	 * generation. */
	assert_int_equal(yz_dir_read_begin(dir, &g1, &err), 0);
	assert_int_equal(yz_dir_domain_add(dir, "second.test", &err), 0);
	assert_false(yz_dir_in_read(dir));
	assert_int_equal(yz_dir_read_begin(dir, &g2, &err), 0);
	assert_true(g2 != g1);
	assert_int_equal(yz_dir_domain_exists(dir, "second.test"), 1);
	yz_dir_read_end(dir);
	/* A commit straight through SQLite (no yizhan code involved). */
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "UPDATE accounts SET quota = 7", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(raw);
	assert_int_equal(yz_dir_read_begin(dir, &g1, &err), 0);
	assert_true(g1 != g2);
	assert_int_equal(yz_dir_user_get(dir, "a@example.test", &a, &err), 0);
	assert_int_equal(a.quota, 7);
	yz_dir_account_clear(&a);
	/* Closing with a read transaction open is clean. */
	yz_dir_close(&dir);
	yz_dir_close(&other);
	rm_db(path);

	/* The in-memory twin: the same calls, its own writes move it. */
	struct yz_dir *mem = mem_dir();
	dir = mem;
	assert_int_equal(yz_dir_read_begin(mem, &g0, &err), 0);
	yz_dir_read_end(mem);
	assert_int_equal(yz_dir_read_begin(mem, &g1, &err), 0);
	assert_true(g1 == g0);
	OK(yz_dir_domain_add(mem, "example.test", &err));
	assert_false(yz_dir_in_read(mem));
	assert_int_equal(yz_dir_read_begin(mem, &g2, &err), 0);
	assert_true(g2 != g1);
	assert_int_equal(yz_dir_domain_exists(mem, "example.test"), 1);
	yz_dir_read_end(mem);
	yz_dir_close(&mem);
}

static void test_file_db_migrations(void **state)
{
	(void)state;
	char path[256];
	tmp_db(path, sizeof path, "dir");
	rm_db(path);
	const char *e = NULL;
	struct yz_dir *dir = yz_dir_open("sqlite", path, &e);
	assert_non_null(dir);
	yz_dir_set_hash_params(dir, 1, 64, 1);
	OK(yz_dir_domain_add(dir, "file.test", &err));
	OK(yz_dir_user_add(dir, "u@file.test", "pw", NULL, NULL, 7, &err));
	OK(yz_dir_alias_add(dir, "a@file.test", "u@file.test", &err));
	yz_dir_close(&dir);
	/* WAL is persistent in the file. */
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (int i = 0; i < 2; i++) {
		dir = yz_dir_open("sqlite", path, &e);
		assert_non_null(dir);
		struct yz_dir_account a;
		OK(yz_dir_user_get(dir, "u@file.test", &a, &err));
		assert_int_equal(a.quota, 7);
		yz_dir_account_clear(&a);
		FAILS(yz_dir_domain_add(dir, "file.test", &err), YZ_DIR_ERR_EXISTS);
		yz_dir_close(&dir);
	}
	assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_version"), 1);
	assert_int_equal(raw_int(path, "SELECT max(version) FROM schema_version"), 1);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM aliases"), 1);
	/* A schema newer than this code is refused, not guessed at. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version(version) VALUES(99)",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	e = NULL;
	assert_null(yz_dir_open("sqlite", path, &e));
	assert_non_null(strstr(e, "schema version 99"));
	rm_db(path);
	/* A file that is not a database is refused. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not an SQLite database, not even close, no sir.\n", f);
	fclose(f);
	e = NULL;
	assert_null(yz_dir_open("sqlite", path, &e));
	assert_non_null(e);
	rm_db(path);
}

/* ---------------- resolution ---------------- */

/* Populate the resolution fixture. */
static int setup_resolve(void **state)
{
	struct yz_dir *dir = mem_dir();
	*state = dir;
	OK(yz_dir_domain_add(dir, "example.test", &err));
	OK(yz_dir_domain_add(dir, "catch.test", &err));
	OK(yz_dir_user_add(dir, "alice@example.test", "pw", NULL, NULL, 1000, &err));
	OK(yz_dir_user_add(dir, "bob@example.test", "pw", NULL, NULL, 2000, &err));
	OK(yz_dir_user_add(dir, "off@example.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_user_set_enabled(dir, "off@example.test", false, &err));
	OK(yz_dir_user_add(dir, "carl@catch.test", "pw", NULL, NULL, 0, &err));
	OK(yz_dir_alias_add(dir, "@catch.test", "carl@catch.test", &err));
	return 0;
}

/* Resolve with the usual limits; return the status. */
static enum yz_resolve_status res(struct yz_dir *dir, const char *addr,
				  struct yz_resolve_result *r)
{
	int rc = yz_dir_resolve(dir, addr, "+", 10, 100, r);
	assert_int_equal(rc, r->status == YZ_RESOLVE_OK ? 0 : -1);
	if (r->status != YZ_RESOLVE_OK) {
		assert_int_equal(r->count, 0);
		assert_non_null(r->error);
	}
	return r->status;
}

/* Is addr among the targets (with folder, NULL = none)? */
static bool has_target(const struct yz_resolve_result *r, const char *addr,
		       bool external, const char *folder)
{
	for (size_t i = 0; i < r->count; i++) {
		const struct yz_resolve_target *t = &r->targets[i];
		if (strcmp(t->address, addr) != 0 || t->external != external)
			continue;
		if ((folder == NULL) != (t->folder == NULL))
			return false;
		return folder == NULL || strcmp(folder, t->folder) == 0;
	}
	return false;
}

static void test_resolve_basic(void **state)
{
	struct yz_dir *dir = *state;
	struct yz_resolve_result r;
	assert_int_equal(res(dir, "Alice@EXAMPLE.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 1);
	assert_string_equal(r.targets[0].address, "alice@example.test");
	assert_false(r.targets[0].external);
	assert_null(r.targets[0].folder);
	assert_int_equal(r.targets[0].quota, 1000);
	assert_null(r.error);
	yz_resolve_result_clear(&r);
	assert_int_equal(res(dir, "someone@elsewhere.test", &r), YZ_RESOLVE_NOT_LOCAL);
	yz_resolve_result_clear(&r);
	assert_int_equal(res(dir, "nobody@example.test", &r), YZ_RESOLVE_UNKNOWN);
	assert_string_equal(r.error, "no such user: nobody@example.test");
	yz_resolve_result_clear(&r);
	assert_int_equal(res(dir, "off@example.test", &r), YZ_RESOLVE_DISABLED);
	yz_resolve_result_clear(&r);
	static const char *const bad[] = { "", "a%b@example.test", "@a,@b:x@example.test",
					   "no-at-sign", "a@b@example.test" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(res(dir, bad[i], &r), YZ_RESOLVE_UNKNOWN);
		yz_resolve_result_clear(&r);
	}
	assert_int_equal(yz_dir_resolve(dir, NULL, "+", 10, 100, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_UNKNOWN);
	assert_non_null(r.error);
	yz_resolve_result_clear(&r);
	assert_int_equal(r.status, YZ_RESOLVE_OK);
	assert_null(r.error);
	assert_string_equal(yz_resolve_status_str(YZ_RESOLVE_LOOP), "loop");
}

static void test_resolve_aliases(void **state)
{
	struct yz_dir *dir = *state;
	struct yz_resolve_result r;
	/* To an account, an external address, and duplicates. */
	OK(yz_dir_alias_add(dir, "team@example.test", "alice@example.test", &err));
	OK(yz_dir_alias_add(dir, "team@example.test", "Friend@Far.test", &err));
	OK(yz_dir_alias_add(dir, "team@example.test", "sales@example.test", &err));
	OK(yz_dir_alias_add(dir, "sales@example.test", "alice@example.test", &err));
	OK(yz_dir_alias_add(dir, "sales@example.test", "bob@example.test", &err));
	assert_int_equal(res(dir, "TEAM@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 3);
	assert_true(has_target(&r, "alice@example.test", false, NULL));
	assert_true(has_target(&r, "friend@far.test", true, NULL));
	assert_true(has_target(&r, "bob@example.test", false, NULL));
	for (size_t i = 0; i < r.count; i++)
		if (r.targets[i].external)
			assert_int_equal(r.targets[i].quota, 0);
	yz_resolve_result_clear(&r);

	/* The alias wins over the account of the same name... */
	OK(yz_dir_alias_add(dir, "bob@example.test", "far@away.test", &err));
	assert_int_equal(res(dir, "bob@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 1);
	assert_true(has_target(&r, "far@away.test", true, NULL));
	yz_resolve_result_clear(&r);
	/* ...but a target that is an account is final (not re-aliased). */
	assert_int_equal(res(dir, "sales@example.test", &r), YZ_RESOLVE_OK);
	assert_true(has_target(&r, "bob@example.test", false, NULL));
	assert_false(has_target(&r, "far@away.test", true, NULL));
	yz_resolve_result_clear(&r);
	/* ...and listing itself keeps a copy: not a loop. */
	OK(yz_dir_alias_add(dir, "bob@example.test", "bob@example.test", &err));
	assert_int_equal(res(dir, "bob@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 2);
	assert_true(has_target(&r, "bob@example.test", false, NULL));
	assert_int_equal(r.targets[1].quota, 2000);
	yz_resolve_result_clear(&r);

	/* Diamond: a -> b, c; b -> d; c -> d: d once, no loop. */
	OK(yz_dir_alias_add(dir, "a@example.test", "b@example.test", &err));
	OK(yz_dir_alias_add(dir, "a@example.test", "c@example.test", &err));
	OK(yz_dir_alias_add(dir, "b@example.test", "d@example.test", &err));
	OK(yz_dir_alias_add(dir, "c@example.test", "d@example.test", &err));
	OK(yz_dir_alias_add(dir, "d@example.test", "alice@example.test", &err));
	assert_int_equal(res(dir, "a@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 1);
	yz_resolve_result_clear(&r);

	/* Dropped targets: disabled and unknown go, the rest stays. */
	OK(yz_dir_alias_add(dir, "mixed@example.test", "off@example.test", &err));
	OK(yz_dir_alias_add(dir, "mixed@example.test", "ghost@example.test", &err));
	OK(yz_dir_alias_add(dir, "mixed@example.test", "alice@example.test", &err));
	assert_int_equal(res(dir, "mixed@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 1);
	yz_resolve_result_clear(&r);
	OK(yz_dir_alias_add(dir, "offonly@example.test", "off@example.test", &err));
	assert_int_equal(res(dir, "offonly@example.test", &r), YZ_RESOLVE_DISABLED);
	yz_resolve_result_clear(&r);
	OK(yz_dir_alias_add(dir, "ghostonly@example.test", "ghost@example.test", &err));
	assert_int_equal(res(dir, "ghostonly@example.test", &r), YZ_RESOLVE_UNKNOWN);
	assert_non_null(strstr(r.error, "ghost@example.test"));
	yz_resolve_result_clear(&r);
	/* An alias that lists itself but is no account. */
	OK(yz_dir_alias_add(dir, "selfish@example.test", "selfish@example.test", &err));
	assert_int_equal(res(dir, "selfish@example.test", &r), YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
}

static void test_resolve_loops_and_limits(void **state)
{
	struct yz_dir *dir = *state;
	struct yz_resolve_result r;
	OK(yz_dir_alias_add(dir, "l1@example.test", "l2@example.test", &err));
	OK(yz_dir_alias_add(dir, "l2@example.test", "l1@example.test", &err));
	assert_int_equal(res(dir, "l1@example.test", &r), YZ_RESOLVE_LOOP);
	assert_non_null(strstr(r.error, "loop"));
	yz_resolve_result_clear(&r);
	/* Through the catch-all: x@catch -> y@catch -> @catch -> z@catch... */
	OK(yz_dir_alias_add(dir, "x@catch.test", "y@catch.test", &err));
	OK(yz_dir_alias_add(dir, "@catch.test", "x@catch.test", &err));
	assert_int_equal(res(dir, "x@catch.test", &r), YZ_RESOLVE_LOOP);
	yz_resolve_result_clear(&r);
	OK(yz_dir_alias_del(dir, "@catch.test", "x@catch.test", &err));

	/* Chain of 4 aliases: depth 4 passes, 3 fails. */
	OK(yz_dir_alias_add(dir, "c1@example.test", "c2@example.test", &err));
	OK(yz_dir_alias_add(dir, "c2@example.test", "c3@example.test", &err));
	OK(yz_dir_alias_add(dir, "c3@example.test", "c4@example.test", &err));
	OK(yz_dir_alias_add(dir, "c4@example.test", "alice@example.test", &err));
	assert_int_equal(yz_dir_resolve(dir, "c1@example.test", "+", 4, 100, &r), 0);
	assert_int_equal(r.count, 1);
	yz_resolve_result_clear(&r);
	assert_int_equal(yz_dir_resolve(dir, "c1@example.test", "+", 3, 100, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_LOOP);
	assert_non_null(strstr(r.error, "deeper than 3"));
	yz_resolve_result_clear(&r);
	assert_int_equal(yz_dir_resolve(dir, "c4@example.test", "+", 0, 100, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_LOOP);
	yz_resolve_result_clear(&r);
	/* Accounts need no alias depth. */
	assert_int_equal(yz_dir_resolve(dir, "alice@example.test", "+", 0, 0, &r), 0);
	yz_resolve_result_clear(&r);

	/* Expansion: 4 targets pass a limit of 4, not of 3. */
	for (int i = 0; i < 4; i++) {
		char t[64];
		snprintf(t, sizeof t, "ext%d@far.test", i);
		OK(yz_dir_alias_add(dir, "list@example.test", t, &err));
	}
	assert_int_equal(yz_dir_resolve(dir, "list@example.test", "+", 10, 4, &r), 0);
	assert_int_equal(r.count, 4);
	yz_resolve_result_clear(&r);
	assert_int_equal(yz_dir_resolve(dir, "list@example.test", "+", 10, 3, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_TOO_MANY);
	assert_null(r.targets);
	yz_resolve_result_clear(&r);
	/* Spread over nested aliases, the total counts. */
	OK(yz_dir_alias_add(dir, "big@example.test", "list@example.test", &err));
	OK(yz_dir_alias_add(dir, "big@example.test", "alice@example.test", &err));
	assert_int_equal(yz_dir_resolve(dir, "big@example.test", "+", 10, 4, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_TOO_MANY);
	yz_resolve_result_clear(&r);
	assert_int_equal(yz_dir_resolve(dir, "big@example.test", "+", 10, 5, &r), 0);
	yz_resolve_result_clear(&r);

	/* A wide self-similar tree is bounded by the lookup budget. */
	for (int i = 0; i < 30; i++) {
		char s[64], t[64];
		snprintf(s, sizeof s, "w%d@example.test", i);
		snprintf(t, sizeof t, "w%d@example.test", i + 1);
		OK(yz_dir_alias_add(dir, s, t, &err));
		OK(yz_dir_alias_add(dir, s, "alice@example.test", &err));
	}
	assert_int_equal(yz_dir_resolve(dir, "w0@example.test", "+", 100, 2, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_TOO_MANY);
	yz_resolve_result_clear(&r);
}

static void test_resolve_plus_and_catchall(void **state)
{
	struct yz_dir *dir = *state;
	struct yz_resolve_result r;
	assert_int_equal(res(dir, "alice+Lists@example.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 1);
	assert_true(has_target(&r, "alice@example.test", false, "lists"));
	yz_resolve_result_clear(&r);
	/* Only the first separator splits. */
	assert_int_equal(res(dir, "alice+a+b@example.test", &r), YZ_RESOLVE_OK);
	assert_null(r.targets[0].folder); /* "a+b" is no safe folder name */
	yz_resolve_result_clear(&r);
	/* Unsafe tags deliver to the inbox. */
	assert_int_equal(res(dir, "alice+a/b@example.test", &r), YZ_RESOLVE_OK);
	assert_null(r.targets[0].folder);
	yz_resolve_result_clear(&r);
	assert_int_equal(res(dir, "alice+..@example.test", &r), YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
	assert_int_equal(res(dir, "alice+@example.test", &r), YZ_RESOLVE_OK);
	assert_null(r.targets[0].folder);
	yz_resolve_result_clear(&r);
	assert_int_equal(res(dir, "alice+x.y@example.test", &r), YZ_RESOLVE_OK);
	assert_string_equal(r.targets[0].folder, "x.y");
	yz_resolve_result_clear(&r);
	/* Disabled separator. */
	assert_int_equal(yz_dir_resolve(dir, "alice+tag@example.test", "", 10, 100, &r), -1);
	assert_int_equal(r.status, YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
	assert_int_equal(yz_dir_resolve(dir, "alice+tag@example.test", NULL, 10, 100, &r), -1);
	yz_resolve_result_clear(&r);
	/* Another separator set, as Postfix's recipient_delimiter = +- */
	assert_int_equal(yz_dir_resolve(dir, "alice-news@example.test", "+-", 10, 100, &r), 0);
	assert_string_equal(r.targets[0].folder, "news");
	yz_resolve_result_clear(&r);
	/* A separator at the start does not split. */
	assert_int_equal(res(dir, "+alice@example.test", &r), YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
	/* Plus on a disabled account. */
	assert_int_equal(res(dir, "off+x@example.test", &r), YZ_RESOLVE_DISABLED);
	yz_resolve_result_clear(&r);

	/* Plus with an alias: the alias of the base, folder passed down. */
	OK(yz_dir_alias_add(dir, "sales@example.test", "bob@example.test", &err));
	OK(yz_dir_alias_add(dir, "sales@example.test", "out@far.test", &err));
	assert_int_equal(res(dir, "sales+q3@example.test", &r), YZ_RESOLVE_OK);
	assert_true(has_target(&r, "bob@example.test", false, "q3"));
	assert_true(has_target(&r, "out@far.test", true, NULL));
	yz_resolve_result_clear(&r);
	/* An exact alias for the full address wins over plus-stripping. */
	OK(yz_dir_alias_add(dir, "alice+spam@example.test", "bob@example.test", &err));
	assert_int_equal(res(dir, "alice+spam@example.test", &r), YZ_RESOLVE_OK);
	assert_true(has_target(&r, "bob@example.test", false, NULL));
	yz_resolve_result_clear(&r);

	/* Catch-all: unknown users of catch.test go to carl; known ones not. */
	OK(yz_dir_user_add(dir, "dora@catch.test", "pw", NULL, NULL, 0, &err));
	assert_int_equal(res(dir, "whoever@CATCH.test", &r), YZ_RESOLVE_OK);
	assert_int_equal(r.count, 1);
	assert_true(has_target(&r, "carl@catch.test", false, NULL));
	yz_resolve_result_clear(&r);
	assert_int_equal(res(dir, "dora@catch.test", &r), YZ_RESOLVE_OK);
	assert_true(has_target(&r, "dora@catch.test", false, NULL));
	yz_resolve_result_clear(&r);
	/* Plus-addressing comes before the catch-all. */
	assert_int_equal(res(dir, "dora+x@catch.test", &r), YZ_RESOLVE_OK);
	assert_true(has_target(&r, "dora@catch.test", false, "x"));
	yz_resolve_result_clear(&r);
	/* Without a catch-all, an unknown user is unknown. */
	OK(yz_dir_alias_del(dir, "@catch.test", NULL, &err));
	assert_int_equal(res(dir, "whoever@catch.test", &r), YZ_RESOLVE_UNKNOWN);
	yz_resolve_result_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_limits, setup, teardown),
		cmocka_unit_test(test_address_prefixes),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_del_force, setup, teardown),
		cmocka_unit_test(test_parse_quota),
		cmocka_unit_test(test_file_db_migrations),
		cmocka_unit_test(test_read_generation),
		cmocka_unit_test_setup_teardown(test_resolve_basic, setup_resolve, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_aliases, setup_resolve, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_loops_and_limits, setup_resolve, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_plus_and_catchall, setup_resolve, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
