/*
 * cli_config.c: `yizhan config`, like postconf: print effective values,
 * check the file, or print the parameter reference.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cli_cmd_config(struct cli *c)
{
	struct yz_buf out;
	yz_buf_init(&out, 0);
	if (c->doc) {
		yz_config_doc_markdown(&out);
		fwrite(yz_buf_data(&out), 1, yz_buf_len(&out), stdout);
		yz_buf_free(&out);
		return 0;
	}
	bool check = c->nargs == 1 && strcmp(c->args[0], "check") == 0;
	struct yz_config *cfg = cli_config(c, !check);
	if (cfg == NULL)
		return 1;
	int rc = 0;
	if (check) {
		if (!c->json)
			printf("%s: ok\n", c->config_path);
		else
			printf("{\"ok\":true,\"file\":\"%s\"}\n", c->config_path);
	} else {
		const char *names[CLI_ARGS_MAX + 1];
		for (size_t i = 0; i < c->nargs; i++)
			names[i] = c->args[i];
		names[c->nargs] = NULL;
		const char *err;
		if (yz_config_print(cfg, &out, c->only_changed, c->nargs ? names : NULL, &err) < 0)
			rc = cli_fail("%s", err);
		else
			fwrite(yz_buf_data(&out), 1, yz_buf_len(&out), stdout);
	}
	yz_buf_free(&out);
	yz_config_free(&cfg);
	return rc;
}
