/*
 * cli_dir.c: `yizhan domain|user|alias`: the directory as the admin sees
 * it. Each change is one transaction in the directory store, so a refused
 * or failed command leaves nothing half-written. As root in production the
 * command becomes the yizhan user first, so that the database files stay
 * owned by the role that serves them.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/mem.h"
#include "store/directory/directory.h"

#define CLI_PASSWORD_MAX 1024

static struct yz_dir *cli_dir_open(struct cli *c, struct yz_config **cfg_r)
{
	struct yz_config *cfg = cli_config(c, false);
	if (cfg == NULL)
		return NULL;
	if (cli_become_yizhan(cfg) != 0) {
		yz_config_free(&cfg);
		return NULL;
	}
	const char *err;
	struct yz_dir *dir = yz_dir_open(yz_cfg_str(cfg, YZ_P_DIRECTORY_BACKEND),
					 yz_cfg_str(cfg, YZ_P_DIRECTORY_SQLITE_PATH), &err);
	if (dir == NULL) {
		cli_fail("directory: %s", err);
		yz_config_free(&cfg);
		return NULL;
	}
	yz_dir_set_hash_params(dir, (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_T_COST),
			       (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_M_COST),
			       (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_PARALLELISM));
	*cfg_r = cfg;
	return dir;
}

static void cli_dir_close(struct yz_dir **dir, struct yz_config **cfg)
{
	yz_dir_close(dir);
	yz_config_free(cfg);
}

static void cli_print(struct yz_buf *out)
{
	fwrite(yz_buf_data(out), 1, yz_buf_len(out), stdout);
	yz_buf_free(out);
}

int cli_cmd_domain(struct cli *c)
{
	const char *sub = c->nargs > 0 ? c->args[0] : "";
	bool list = strcmp(sub, "list") == 0;
	if (!(list && c->nargs == 1) &&
	    !((strcmp(sub, "add") == 0 || strcmp(sub, "del") == 0) && c->nargs == 2)) {
		cli_usage("domain");
		return 2;
	}
	struct yz_config *cfg;
	struct yz_dir *dir = cli_dir_open(c, &cfg);
	if (dir == NULL)
		return 1;
	const char *err;
	int rc = 0;
	if (strcmp(sub, "add") == 0) {
		if (yz_dir_domain_add(dir, c->args[1], &err) < 0)
			rc = cli_fail("%s", err);
		else if (!c->json)
			printf("domain %s added\n", c->args[1]);
	} else if (strcmp(sub, "del") == 0) {
		if (yz_dir_domain_del(dir, c->args[1], c->force, &err) < 0)
			rc = cli_fail("%s", err);
		else if (!c->json)
			printf("domain %s deleted\n", c->args[1]);
	} else {
		char **domains;
		size_t n;
		if (yz_dir_domain_list(dir, &domains, &n, &err) < 0) {
			rc = cli_fail("%s", err);
		} else {
			struct yz_buf out;
			yz_buf_init(&out, 0);
			if (c->json)
				yz_buf_append_c(&out, '[');
			for (size_t i = 0; i < n; i++) {
				if (c->json) {
					if (i)
						yz_buf_append_c(&out, ',');
					cli_json_str(&out, domains[i]);
				} else {
					yz_buf_printf(&out, "%s\n", domains[i]);
				}
			}
			if (c->json)
				yz_buf_append_str(&out, "]\n");
			cli_print(&out);
			yz_dir_strv_free(&domains, n);
		}
	}
	if (rc == 0 && c->json && !list)
		printf("{\"ok\":true}\n");
	cli_dir_close(&dir, &cfg);
	return rc;
}

/* The password for add/passwd: generated (printed once), stdin or prompt. */
static int cli_user_password(struct cli *c, char *pw, size_t size, bool *generated_r)
{
	*generated_r = false;
	if (c->generate_password) {
		cli_generate_password(pw, size);
		*generated_r = true;
		return 0;
	}
	if (cli_read_password(c, "Password: ", pw, size) != 0)
		return -1;
	if (!c->password_stdin && isatty(0)) {
		char again[CLI_PASSWORD_MAX];
		if (cli_read_password(c, "Again: ", again, sizeof again) != 0)
			return -1;
		bool same = strcmp(pw, again) == 0;
		yz_wipe(again, sizeof again);
		if (!same)
			return cli_fail("the passwords differ"), -1;
	}
	return 0;
}

static void cli_user_json(struct yz_buf *out, const struct yz_dir_account *a)
{
	yz_buf_append_str(out, "{\"address\":");
	cli_json_str(out, a->address);
	yz_buf_append_str(out, ",\"name\":");
	cli_json_str(out, a->display_name ? a->display_name : "");
	yz_buf_printf(out, ",\"quota\":%llu,\"enabled\":%s,\"created\":%lld}", a->quota,
		      a->enabled ? "true" : "false", a->created);
}

static int cli_user_list(struct cli *c, struct yz_dir *dir)
{
	struct yz_dir_account *accts;
	size_t n;
	const char *err;
	if (yz_dir_user_list(dir, c->nargs > 1 ? c->args[1] : NULL, &accts, &n, &err) < 0)
		return cli_fail("%s", err);
	struct yz_buf out;
	yz_buf_init(&out, 0);
	if (c->json)
		yz_buf_append_c(&out, '[');
	for (size_t i = 0; i < n; i++) {
		if (c->json) {
			if (i)
				yz_buf_append_c(&out, ',');
			cli_user_json(&out, &accts[i]);
		} else {
			char q[32];
			if (accts[i].quota == 0)
				snprintf(q, sizeof q, "unlimited");
			else
				snprintf(q, sizeof q, "%llu", accts[i].quota);
			yz_buf_printf(&out, "%-40s %-12s %-8s %s\n", accts[i].address, q,
				      accts[i].enabled ? "enabled" : "disabled",
				      accts[i].display_name ? accts[i].display_name : "");
		}
	}
	if (c->json)
		yz_buf_append_str(&out, "]\n");
	cli_print(&out);
	yz_dir_account_list_free(&accts, n);
	return 0;
}

int cli_cmd_user(struct cli *c)
{
	const char *sub = c->nargs > 0 ? c->args[0] : "";
	bool ok = (strcmp(sub, "add") == 0 && c->nargs == 2) ||
		  (strcmp(sub, "del") == 0 && c->nargs == 2) ||
		  (strcmp(sub, "list") == 0 && c->nargs <= 2) ||
		  (strcmp(sub, "passwd") == 0 && c->nargs == 2) ||
		  (strcmp(sub, "quota") == 0 && c->nargs == 3);
	if (!ok) {
		cli_usage("user");
		return 2;
	}
	const char *err;
	unsigned long long quota = 0;
	const char *qtext = strcmp(sub, "quota") == 0 ? c->args[2] : c->quota;
	if (qtext != NULL && yz_dir_parse_quota(qtext, &quota, &err) < 0)
		return cli_fail("%s", err);
	struct yz_config *cfg;
	struct yz_dir *dir = cli_dir_open(c, &cfg);
	if (dir == NULL)
		return 1;
	if (qtext == NULL && strcmp(sub, "add") == 0)
		quota = yz_cfg_size(cfg, YZ_P_DEFAULT_QUOTA);
	int rc = 0;
	char pw[CLI_PASSWORD_MAX];
	bool generated = false;
	if (strcmp(sub, "list") == 0) {
		rc = cli_user_list(c, dir);
	} else if (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0) {
		bool add = strcmp(sub, "add") == 0;
		/* Validate the address before asking for a password. */
		struct yz_dir_account a;
		if (!add && yz_dir_user_get(dir, c->args[1], &a, &err) < 0) {
			rc = cli_fail("%s", err);
		} else {
			if (!add)
				yz_dir_account_clear(&a);
			if (cli_user_password(c, pw, sizeof pw, &generated) < 0)
				rc = 1;
			else if ((add ? yz_dir_user_add(dir, c->args[1], pw, NULL, c->name, quota, &err)
				      : yz_dir_user_passwd(dir, c->args[1], pw, &err)) < 0)
				rc = cli_fail("%s", err);
		}
		if (rc == 0) {
			if (c->json) {
				struct yz_buf out;
				yz_buf_init(&out, 0);
				yz_buf_append_str(&out, "{\"ok\":true,\"address\":");
				cli_json_str(&out, c->args[1]);
				if (generated) {
					yz_buf_append_str(&out, ",\"password\":");
					cli_json_str(&out, pw);
				}
				yz_buf_append_str(&out, "}\n");
				cli_print(&out);
			} else {
				printf("%s %s\n", c->args[1], add ? "added" : "password changed");
				if (generated)
					printf("password: %s\n", pw);
			}
		}
		yz_wipe(pw, sizeof pw);
	} else if (strcmp(sub, "del") == 0) {
		if (yz_dir_user_del(dir, c->args[1], &err) < 0)
			rc = cli_fail("%s", err);
		else
			printf(c->json ? "{\"ok\":true}\n" : "%s deleted\n", c->args[1]);
	} else {
		if (yz_dir_user_set_quota(dir, c->args[1], quota, &err) < 0)
			rc = cli_fail("%s", err);
		else if (c->json)
			printf("{\"ok\":true,\"quota\":%llu}\n", quota);
		else
			printf("%s quota %s\n", c->args[1], quota ? c->args[2] : "unlimited");
	}
	cli_dir_close(&dir, &cfg);
	return rc;
}

int cli_cmd_alias(struct cli *c)
{
	const char *sub = c->nargs > 0 ? c->args[0] : "";
	bool ok = (strcmp(sub, "add") == 0 && c->nargs >= 3) ||
		  (strcmp(sub, "del") == 0 && (c->nargs == 2 || c->nargs == 3)) ||
		  (strcmp(sub, "list") == 0 && c->nargs <= 2);
	if (!ok) {
		cli_usage("alias");
		return 2;
	}
	struct yz_config *cfg;
	struct yz_dir *dir = cli_dir_open(c, &cfg);
	if (dir == NULL)
		return 1;
	const char *err;
	int rc = 0;
	if (strcmp(sub, "add") == 0) {
		for (size_t i = 2; i < c->nargs && rc == 0; i++)
			if (yz_dir_alias_add(dir, c->args[1], c->args[i], &err) < 0)
				rc = cli_fail("%s", err);
		if (rc == 0)
			printf(c->json ? "{\"ok\":true}\n" : "alias %s added\n", c->args[1]);
	} else if (strcmp(sub, "del") == 0) {
		if (yz_dir_alias_del(dir, c->args[1], c->nargs == 3 ? c->args[2] : NULL, &err) < 0)
			rc = cli_fail("%s", err);
		else
			printf(c->json ? "{\"ok\":true}\n" : "alias %s deleted\n", c->args[1]);
	} else {
		struct yz_dir_alias *al;
		size_t n;
		if (yz_dir_alias_list(dir, c->nargs == 2 ? c->args[1] : NULL, &al, &n, &err) < 0) {
			rc = cli_fail("%s", err);
		} else {
			struct yz_buf out;
			yz_buf_init(&out, 0);
			if (c->json)
				yz_buf_append_c(&out, '[');
			for (size_t i = 0; i < n; i++) {
				if (c->json) {
					yz_buf_append_str(&out, i ? ",{\"source\":" : "{\"source\":");
					cli_json_str(&out, al[i].source);
					yz_buf_append_str(&out, ",\"target\":");
					cli_json_str(&out, al[i].target);
					yz_buf_append_c(&out, '}');
				} else {
					yz_buf_printf(&out, "%-40s %s\n", al[i].source, al[i].target);
				}
			}
			if (c->json)
				yz_buf_append_str(&out, "]\n");
			cli_print(&out);
			yz_dir_alias_list_free(&al, n);
		}
	}
	cli_dir_close(&dir, &cfg);
	return rc;
}
