/*
 * fuzz_address.c: libFuzzer target for the RFC 5321 Mailbox parser
 * (libmail/address.h).
 *
 * Every input is parsed with each flag combination. An accepted address must
 * format to text that parses again to the same address (local part equal,
 * domain equal ignoring ASCII case), UTF-8 only when allowed; the suspicious
 * check and the domain parser must not crash. Aborts on any disagreement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "libmail/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse, format, reparse and compare. */
static void check(const char *p, size_t len, unsigned flags)
{
	struct mail_address a, b;
	struct yz_buf out;
	const char *err = NULL;

	if (mail_address_parse(p, len, flags, &a, &err) < 0) {
		if (err == NULL)
			abort();
		return;
	}
	if (strlen(a.local) > YZ_ADDR_LOCAL_MAX || strlen(a.domain) > YZ_ADDR_DOMAIN_MAX)
		abort();
	if (a.utf8 && (flags & MAIL_ADDR_ALLOW_UTF8) == 0)
		abort();
	(void)mail_address_is_suspicious(&a);
	yz_buf_init(&out, 1024);
	if (mail_address_format(&a, &out) < 0)
		abort();
	if (mail_address_parse(yz_buf_data(&out), yz_buf_len(&out), flags, &b, &err) < 0)
		abort();
	if (strcmp(a.local, b.local) != 0 || strcasecmp(a.domain, b.domain) != 0 ||
	    a.utf8 != b.utf8)
		abort();
	yz_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A heap copy of exactly size bytes lets ASan catch any over-read. */
	char *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	for (unsigned flags = 0; flags < 4; flags++)
		check(p, size, flags);
	const char *err;
	(void)mail_domain_parse(p, size, MAIL_ADDR_ALLOW_UTF8, &err);
	free(p);
	return 0;
}
