/*
 * fuzz_maildir.c: libFuzzer target for the pure parsers of the Maildir++
 * store: message file names (S=, flags), maildirsize contents, and the
 * validation of account, folder and unique names. The first input byte
 * selects the parser; the rest is the input. Invariants checked: parsed
 * fields stay inside the input, flags are sorted standard letters, an
 * accepted account path stays below the root.
 */
#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/mailbox/maildir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	/* A private exact-size copy so that ASan sees any over-read. */
	char *buf = malloc(len + 1);
	memcpy(buf, in, len);
	buf[len] = '\0';
	switch (sel % 3) {
	case 0: {
		struct maildir_name_info info;
		if (maildir_name_parse(buf, len, &info) == 0) {
			assert(info.unique_len > 0 && info.unique_len <= len);
			assert(strlen(info.flags) <= strlen(MAILDIR_STD_FLAGS));
			for (size_t i = 0; info.flags[i] != '\0'; i++) {
				assert(strchr(MAILDIR_STD_FLAGS, info.flags[i]) != NULL);
				assert(i == 0 || info.flags[i - 1] < info.flags[i]);
			}
			if (info.info != NULL)
				assert(info.info >= buf && info.info <= buf + len);
		}
		break;
	}
	case 1: {
		char limit[32];
		long long bytes, count;
		if (maildir_quota_parse(buf, len, limit, sizeof limit, &bytes, &count) == 0)
			assert(strlen(limit) < sizeof limit);
		break;
	}
	default: {
		char out[PATH_MAX];
		if (memchr(buf, '\0', len) != NULL)
			break;
		if (maildir_account_path("/r", buf, out, sizeof out) == 0) {
			assert(strncmp(out, "/r/", 3) == 0);
			assert(strstr(out, "/.") == NULL);
			size_t slashes = 0;
			for (const char *p = out; *p != '\0'; p++)
				slashes += *p == '/';
			assert(slashes == 3);
		}
		if (maildir_folder_name_valid(buf))
			assert(strchr(buf, '/') == NULL && buf[0] != '.' && strstr(buf, "..") == NULL);
		if (maildir_unique_valid(buf))
			assert(strpbrk(buf, "/:,") == NULL && buf[0] != '.');
		break;
	}
	}
	free(buf);
	return 0;
}
