/*
 * fuzz_pop3_command.c: libFuzzer target for the POP3 command parser. The
 * first byte picks max_line; the rest is parsed line after line as the
 * server does, and every line is also fed byte by byte, which must give
 * AGAIN until the line is complete and then the same result as at once.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t max_line = (size_t)data[0] * 4 + 1;
	const char *p = (const char *)data + 1;
	size_t len = size - 1;
	size_t pos = 0;
	while (pos < len) {
		struct pop3_command cmd;
		size_t used;
		const char *err;
		enum pop3_parse_status st =
			pop3_command_parse(p + pos, len - pos, max_line, &cmd, &used, &err);
		if (st == POP3_PARSE_AGAIN)
			break;
		if (st == POP3_PARSE_TOOLONG) {
			const char *lf = memchr(p + pos, '\n', len - pos);
			if (lf == NULL)
				break;
			pos = (size_t)(lf - p) + 1;
			continue;
		}
		assert(used > 0 && used <= len - pos && used <= max_line);
		assert(p[pos + used - 1] == '\n');
		if (st == POP3_PARSE_OK) {
			assert(cmd.verb < POP3_VERB__COUNT);
			assert(cmd.arg.len == 0 ||
			       (cmd.arg.p >= p + pos && cmd.arg.p + cmd.arg.len <= p + pos + used));
			assert(cmd.arg2.len == 0 ||
			       (cmd.arg2.p >= p + pos && cmd.arg2.p + cmd.arg2.len <= p + pos + used));
			assert(cmd.nnums <= 2);
		} else {
			assert(err != NULL);
		}
		/* Byte at a time: AGAIN for every strict prefix. */
		char *copy = malloc(used);
		memcpy(copy, p + pos, used);
		for (size_t k = 1; k < used; k++) {
			struct pop3_command c2;
			size_t u2;
			const char *e2;
			assert(pop3_command_parse(copy, k, max_line, &c2, &u2, &e2) ==
			       POP3_PARSE_AGAIN);
		}
		struct pop3_command c3;
		size_t u3;
		const char *e3;
		assert(pop3_command_parse(copy, used, max_line, &c3, &u3, &e3) == st);
		assert(u3 == used && c3.verb == cmd.verb && c3.nnums == cmd.nnums);
		free(copy);
		pos += used;
	}
	return 0;
}
