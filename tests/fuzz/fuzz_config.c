/*
 * fuzz_config.c: libFuzzer target for the yizhan.conf parser.
 *
 * Loads the input over the defaults (and in dev mode), then exercises
 * yz_config_set with the first line split at '=' and prints the result, so
 * that parsing, expansion, validation, the failure path (which must leave
 * the configuration usable) and printing all see arbitrary bytes.
 * Never: leak or touch memory out of bounds (ASan and leak checking judge).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error;
	struct yz_config *cfg = yz_config_new_defaults(size > 0 && (data[0] & 1));
	(void)yz_config_load_buf(cfg, "fuzz.conf", (const char *)data, size, &error);

	/* "name=value" from the first line, through the programmatic path. */
	const uint8_t *nl = memchr(data, '\n', size);
	size_t first = nl != NULL ? (size_t)(nl - data) : size;
	const uint8_t *eq = memchr(data, '=', first);
	if (eq != NULL && memchr(data, '\0', first) == NULL) {
		char *name = yz_strndup((const char *)data, (size_t)(eq - data));
		char *value = yz_strndup((const char *)eq + 1, first - (size_t)(eq - data) - 1);
		(void)yz_config_set(cfg, name, value, &error);
		free(name);
		free(value);
	}

	struct yz_buf out;
	yz_buf_init(&out, 0);
	if (yz_config_print(cfg, &out, size > 1 && (data[1] & 1), NULL, &error) != 0)
		__builtin_trap(); /* an unlimited buffer never fills */
	/* Each effective value must be printable after any input. */
	for (int id = 0; id < YZ_P__COUNT; id++) {
		if (yz_config_param_type((enum yz_param_id)id) == YZ_CT_LIST) {
			size_t n = yz_cfg_list_count(cfg, (enum yz_param_id)id);
			for (size_t i = 0; i < n; i++)
				if (yz_cfg_list_item(cfg, (enum yz_param_id)id, i)[0] == '\0')
					__builtin_trap(); /* words are never empty */
		}
	}
	yz_buf_free(&out);
	yz_config_free(&cfg);
	return 0;
}
