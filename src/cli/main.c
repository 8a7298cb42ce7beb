/*
 * main.c: the `yizhan` program: admin commands and, re-executed by the
 * master, every role process (`yizhan role <name>`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/config_load.h"
#include "lib/ipc_msg.h"
#include "lib/log.h"
#include "lib/version.h"
#include "master/master.h"

struct cli_help {
	const char *cmd;
	const char *text;
};

static const struct cli_help helps[] = {
	{ NULL,
	  "usage: yizhan [--state-dir DIR] [--config FILE] [--dev] [--json] COMMAND ...\n"
	  "\n"
	  "commands:\n"
	  "  init       create configuration, state directories, certificate, database\n"
	  "  run        run in the foreground            start   run as a daemon\n"
	  "  status     list the running roles           reload  re-read the configuration\n"
	  "  stop       stop gracefully\n"
	  "  domain     add|del|list domains             user    add|del|list|passwd|quota accounts\n"
	  "  alias      add|del|list aliases             config  print or check the configuration\n"
	  "\n"
	  "global options (accepted anywhere on the line):\n"
	  "  --state-dir DIR  everything lives under DIR (config DIR/yizhan.conf)\n"
	  "  --config FILE    the configuration file (default /etc/yizhan/yizhan.conf)\n"
	  "  --dev            dev mode: run as the invoking user on unprivileged ports\n"
	  "  --json           machine-readable output\n"
	  "'yizhan COMMAND --help' tells more.\n" },
	{ "init",
	  "usage: yizhan init [--dev] [--state-dir DIR] [--hostname NAME] [--domain DOMAIN [--user LOCALPART]]\n"
	  "Writes yizhan.conf if missing, creates the state directories (and, as root,\n"
	  "the users yizhan and vmail), a self-signed certificate when none is configured,\n"
	  "and the directory database. With --domain it adds that domain; with --user too\n"
	  "an account LOCALPART@DOMAIN whose generated password is printed once.\n" },
	{ "run", "usage: yizhan run [--dev] [--state-dir DIR]\nRuns the master and every role in the foreground; logs go to stderr.\n" },
	{ "start", "usage: yizhan start [--dev] [--state-dir DIR]\nRuns as a daemon (pid file in run_directory); logs go to syslog.\n" },
	{ "status", "usage: yizhan status [--json]\nLists the master and each role with pid, uptime, restarts and state.\n" },
	{ "reload", "usage: yizhan reload\nRe-reads the configuration and replaces the roles gracefully; open sessions finish.\n" },
	{ "stop", "usage: yizhan stop\nStops gracefully: open sessions get master_shutdown_timeout to finish.\n" },
	{ "domain",
	  "usage: yizhan domain add DOMAIN\n"
	  "       yizhan domain del DOMAIN [--force]   (--force also deletes its accounts and aliases)\n"
	  "       yizhan domain list [--json]\n" },
	{ "user",
	  "usage: yizhan user add ADDRESS [--password-stdin | --generate-password] [--name NAME] [--quota SIZE]\n"
	  "       yizhan user del ADDRESS\n"
	  "       yizhan user list [DOMAIN] [--json]\n"
	  "       yizhan user passwd ADDRESS [--password-stdin | --generate-password]\n"
	  "       yizhan user quota ADDRESS SIZE      (SIZE like 500M, 2G, 0 = unlimited)\n"
	  "Without --password-stdin the password is asked for on the terminal.\n" },
	{ "alias",
	  "usage: yizhan alias add SOURCE TARGET...   (SOURCE @domain is the catch-all)\n"
	  "       yizhan alias del SOURCE [TARGET]\n"
	  "       yizhan alias list [DOMAIN] [--json]\n" },
	{ "config",
	  "usage: yizhan config [-n] [NAME...]   print effective parameters (-n: only those changed)\n"
	  "       yizhan config check            validate the configuration file\n"
	  "       yizhan config --doc            the parameter reference in Markdown\n" },
};

void cli_usage(const char *cmd)
{
	for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
		if ((cmd == NULL && helps[i].cmd == NULL) ||
		    (cmd != NULL && helps[i].cmd != NULL && strcmp(cmd, helps[i].cmd) == 0)) {
			fputs(helps[i].text, stdout);
			return;
		}
	}
	fputs(helps[0].text, stdout);
}

/* `yizhan role NAME`: the entry of a role process started by the master. */
int cli_role_main(struct cli *c)
{
	if (c->nargs != 1)
		return cli_fail("usage: yizhan role NAME (started by the master)");
	int role = yz_role_from_name(c->args[0]);
	const struct cli_role *e = cli_roles_find(role);
	if (e == NULL)
		return cli_fail("unknown role: %s", c->args[0]);
	yz_log_init(c->args[0], c->syslog);
	struct yz_config *cfg = cli_config(c, false);
	if (cfg == NULL)
		return 1;
	yz_config_apply_logging(cfg);
	/* The role borrows the configuration; it is freed here, after it ran. */
	int rc = e->run(cfg);
	yz_config_free(&cfg);
	return rc;
}

/* Take a global or command option; returns 1 if consumed (and *i advanced),
 * 0 if not an option, -1 on a bad one. */
static int cli_take_option(struct cli *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	struct {
		const char *name;
		const char **val;
	} valued[] = {
		{ "--state-dir", &c->state_dir }, { "--config", &c->config_arg },
		{ "--name", &c->name },           { "--quota", &c->quota },
		{ "--domain", &c->domain },       { "--user", &c->user },
		{ "--hostname", &c->hostname },
	};
	struct {
		const char *name;
		bool *flag;
	} flags[] = {
		{ "--dev", &c->dev },
		{ "--json", &c->json },
		{ "--help", &c->help },
		{ "-h", &c->help },
		{ "--password-stdin", &c->password_stdin },
		{ "--generate-password", &c->generate_password },
		{ "--force", &c->force },
		{ "-n", &c->only_changed },
		{ "--doc", &c->doc },
		{ "--syslog", &c->syslog },
	};
	for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
		size_t n = strlen(valued[k].name);
		if (strncmp(a, valued[k].name, n) != 0)
			continue;
		if (a[n] == '=') {
			*valued[k].val = a + n + 1;
			return 1;
		}
		if (a[n] != '\0')
			continue;
		if (*i + 1 >= argc) {
			cli_fail("%s needs a value", valued[k].name);
			return -1;
		}
		*valued[k].val = argv[++*i];
		return 1;
	}
	for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
		if (strcmp(a, flags[k].name) == 0) {
			*flags[k].flag = true;
			return 1;
		}
	}
	if (a[0] == '-' && a[1] != '\0') {
		cli_fail("unknown option: %s (see yizhan --help)", a);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c;
	memset(&c, 0, sizeof c);
	const char *cmd = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("yizhan %s\n", YZ_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--") == 0) {
			for (i++; i < argc; i++) {
				if (c.nargs >= CLI_ARGS_MAX)
					return cli_fail("too many arguments");
				c.args[c.nargs++] = argv[i];
			}
			break;
		}
		int r = cli_take_option(&c, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		if (cmd == NULL) {
			cmd = argv[i];
		} else {
			if (c.nargs >= CLI_ARGS_MAX)
				return cli_fail("too many arguments");
			c.args[c.nargs++] = argv[i];
		}
	}
	/* Not root: dev mode, always (ARCHITECTURE.md). */
	if (geteuid() != 0)
		c.dev = true;
	if (cmd == NULL || strcmp(cmd, "help") == 0) {
		cli_usage(c.nargs > 0 ? c.args[0] : NULL);
		return cmd == NULL && !c.help ? 2 : 0;
	}
	if (c.help) {
		cli_usage(cmd);
		return 0;
	}
	if (strcmp(cmd, "role") == 0)
		return cli_role_main(&c);
	yz_log_init("cli", false);
	yz_log_set_level(YZ_LOG_WARN);
	if (strcmp(cmd, "init") == 0)
		return cli_cmd_init(&c);
	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "start") == 0) {
		yz_log_set_level(YZ_LOG_INFO);
		return cli_cmd_run(&c, strcmp(cmd, "start") == 0);
	}
	if (strcmp(cmd, "status") == 0)
		return cli_cmd_status(&c);
	if (strcmp(cmd, "reload") == 0)
		return cli_cmd_reload(&c);
	if (strcmp(cmd, "stop") == 0)
		return cli_cmd_stop(&c);
	if (strcmp(cmd, "domain") == 0)
		return cli_cmd_domain(&c);
	if (strcmp(cmd, "user") == 0)
		return cli_cmd_user(&c);
	if (strcmp(cmd, "alias") == 0)
		return cli_cmd_alias(&c);
	if (strcmp(cmd, "config") == 0)
		return cli_cmd_config(&c);
	cli_fail("unknown command: %s (see yizhan --help)", cmd);
	return 2;
}
