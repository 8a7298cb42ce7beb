/*
 * cli.h: the `yizhan` command line, shared by its files.
 * Every command prints one clear sentence and exits non-zero on bad input;
 * nothing half-written is left behind (each change is one transaction).
 */
#ifndef YZ_CLI_H
#define YZ_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/ipc_msg.h"

#define CLI_ARGS_MAX 64

struct cli {
	const char *state_dir;
	const char *config_arg;
	char config_path[4096];
	bool dev;
	bool json;
	bool help;
	/* command options */
	bool password_stdin;
	bool generate_password;
	bool force;
	bool only_changed;  /* config -n */
	bool doc;           /* config --doc */
	bool syslog;        /* role --syslog */
	const char *name;   /* --name */
	const char *quota;  /* --quota */
	const char *domain; /* init --domain */
	const char *user;   /* init --user */
	const char *hostname; /* init --hostname */
	/* positional words after the command */
	const char *args[CLI_ARGS_MAX];
	size_t nargs;
};

/* cli_util.c */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct yz_config *cli_config(struct cli *c, bool missing_ok);
void cli_json_str(struct yz_buf *out, const char *s);
int cli_read_password(struct cli *c, const char *prompt, char *buf, size_t size);
void cli_generate_password(char *buf, size_t size);
bool cli_is_root(void);
/* Production mode as root: become the yizhan user for file work in the state directory. */
int cli_become_yizhan(struct yz_config *cfg);

/* cli_init.c */
int cli_cmd_init(struct cli *c);
/* cli_dir.c */
int cli_cmd_domain(struct cli *c);
int cli_cmd_user(struct cli *c);
int cli_cmd_alias(struct cli *c);
/* cli_ctl.c */
int cli_cmd_run(struct cli *c, bool daemonize);
int cli_cmd_status(struct cli *c);
int cli_cmd_reload(struct cli *c);
int cli_cmd_stop(struct cli *c);
/* cli_config.c */
int cli_cmd_config(struct cli *c);
/* cli_roles.c: the roles this binary runs, in start order */
struct cli_role {
	enum yz_role role;
	int (*run)(struct yz_config *cfg);
	const char *listeners; /* the listeners it serves, space-separated */
};
const struct cli_role *cli_roles_find(int role);
size_t cli_roles_list(enum yz_role *out, size_t max);
/* Every listener name of every role this binary runs, space-separated. */
const char *cli_roles_listeners(void);
/* main.c */
int cli_role_main(struct cli *c);
void cli_usage(const char *cmd);

#endif
