/*
 * fuzz_dir_address.c: the directory's parsers on arbitrary bytes: address
 * and domain syntax (checked to be idempotent, lower-case and within the
 * RFC 5321 bounds when accepted), quota sizes, stored-hash classification
 * (no hashing), and recipient resolution over a small in-memory directory
 * with aliases, a loop and a catch-all.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/directory/dir_password.h"
#include "store/directory/directory.h"

/* Input cut at the first NUL, bounded, as the callers pass C strings. */
#define FUZZ_MAX 1024

static struct yz_dir *fuzz_dir;

/* Build the fixture directory once. */
static void fuzz_setup(void)
{
	const char *e;
	fuzz_dir = yz_dir_open("sqlite", ":memory:", &e);
	assert(fuzz_dir != NULL);
	yz_dir_set_hash_params(fuzz_dir, 1, 8, 1);
	yz_dir_domain_add(fuzz_dir, "example.test", &e);
	yz_dir_domain_add(fuzz_dir, "c.test", &e);
	yz_dir_user_add(fuzz_dir, "a@example.test", "pw", NULL, NULL, 0, &e);
	yz_dir_user_add(fuzz_dir, "b@c.test", "pw", NULL, NULL, 5, &e);
	yz_dir_alias_add(fuzz_dir, "l@example.test", "a@example.test", &e);
	yz_dir_alias_add(fuzz_dir, "l@example.test", "x@far.test", &e);
	yz_dir_alias_add(fuzz_dir, "p@example.test", "q@example.test", &e);
	yz_dir_alias_add(fuzz_dir, "q@example.test", "p@example.test", &e);
	yz_dir_alias_add(fuzz_dir, "@c.test", "b@c.test", &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_dir == NULL)
		fuzz_setup();
	char in[FUZZ_MAX + 1];
	size_t n = size < FUZZ_MAX ? size : FUZZ_MAX;
	memcpy(in, data, n);
	in[n] = '\0';

	char out[YZ_DIR_ADDRESS_MAX + 1], again[YZ_DIR_ADDRESS_MAX + 1];
	const char *dom, *err;
	if (yz_dir_address_normalize(in, true, out, sizeof out, &dom, &err) == 0) {
		assert(strlen(out) <= YZ_DIR_ADDRESS_MAX);
		assert(strlen(dom) <= YZ_DIR_DOMAIN_MAX);
		assert(strpbrk(out, "%!ABCDEFGHIJKLMNOPQRSTUVWXYZ\"\\ ,:[]<>") == NULL);
		assert(yz_dir_address_normalize(out, true, again, sizeof again, NULL, &err) == 0);
		assert(strcmp(out, again) == 0);
	}
	char d[YZ_DIR_DOMAIN_MAX + 1];
	if (yz_dir_domain_normalize(in, d, sizeof d, &err) == 0)
		assert(strlen(d) <= YZ_DIR_DOMAIN_MAX && strchr(d, '@') == NULL);
	unsigned long long q;
	if (yz_dir_parse_quota(in, &q, &err) == 0)
		assert(q <= YZ_DIR_QUOTA_MAX);
	(void)yz_password_hash_check(in, &err);

	struct yz_resolve_result r;
	int rc = yz_dir_resolve(fuzz_dir, in, "+-", 5, 4, &r);
	assert((rc == 0) == (r.status == YZ_RESOLVE_OK));
	assert(r.status == YZ_RESOLVE_OK ? r.count > 0 && r.count <= 4 : r.count == 0);
	yz_resolve_result_clear(&r);
	return 0;
}
