/*
 * cli_init.c: `yizhan init`: everything a first start needs, idempotent.
 * Writes yizhan.conf only if it does not exist; creates the state
 * directories with their owners (as root: the users yizhan and vmail); a
 * self-signed certificate when the configured one is missing; the directory
 * database; optionally a first domain and account with a generated password.
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/config_load.h"
#include "lib/file.h"
#include "lib/mem.h"
#include "lib/priv.h"
#include "lib/tls.h"
#include "store/directory/directory.h"
#include "store/queue/queue_store.h"

#define CLI_PASSWORD_MAX 1024

static int init_write_config(struct cli *c)
{
	if (access(c->config_path, F_OK) == 0)
		return 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", c->config_path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (yz_mkdir_p(dir, 0755) < 0)
			return cli_fail("cannot create %s: %s", dir, strerror(errno));
	}
	struct yz_buf b;
	yz_buf_init(&b, 0);
	time_t now = time(NULL);
	char stamp[64];
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	yz_buf_printf(&b,
		      "# yizhan.conf, written by `yizhan init` on %s.\n"
		      "# Postfix-style: name = value; `yizhan config` prints every effective\n"
		      "# parameter, docs/configuration.md describes each one.\n\n",
		      stamp);
	if (c->state_dir != NULL)
		yz_buf_printf(&b, "state_directory = %s\n", c->state_dir);
	if (c->hostname != NULL)
		yz_buf_printf(&b, "myhostname = %s\n", c->hostname);
	if (c->dev)
		yz_buf_printf(&b, "\n# Dev mode: unprivileged ports on loopback (see yizhan config).\n");
	int r = yz_file_write_atomic(c->config_path, yz_buf_data(&b), yz_buf_len(&b), 0644);
	yz_buf_free(&b);
	if (r < 0)
		return cli_fail("cannot write %s: %s", c->config_path, strerror(errno));
	printf("wrote %s\n", c->config_path);
	return 0;
}

/* mkdir -p, then (as root in production) hand it to its owner. */
static int init_dir(const char *path, mode_t mode, const char *owner, bool production)
{
	if (yz_mkdir_p(path, mode) < 0)
		return cli_fail("cannot create %s: %s", path, strerror(errno));
	if (chmod(path, mode) < 0)
		return cli_fail("cannot chmod %s: %s", path, strerror(errno));
	if (production && owner != NULL) {
		uid_t uid;
		gid_t gid;
		const char *err;
		if (yz_priv_lookup(owner, &uid, &gid, &err) < 0)
			return cli_fail("user %s: %s", owner, err);
		if (chown(path, uid, gid) < 0)
			return cli_fail("cannot chown %s: %s", path, strerror(errno));
	}
	return 0;
}

static int init_parent_dir(const char *file, mode_t mode, const char *owner, bool production)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", file);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	return init_dir(dir, mode, owner, production);
}

/* The directory database is created by the yizhan user itself, in a child
 * that drops privileges, so every file SQLite makes belongs to it. */
static int init_directory(struct cli *c, struct yz_config *cfg, bool production)
{
	pid_t pid = production ? fork() : 0;
	if (pid < 0)
		return cli_fail("fork: %s", strerror(errno));
	if (pid > 0) {
		int st;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
			return cli_fail("database setup failed");
		return WEXITSTATUS(st);
	}
	int rc = 0;
	if (production && cli_become_yizhan(cfg) != 0)
		_exit(1);
	const char *err;
	/* The queue's own layout (incoming/, active/, ...) belongs to yizhan too. */
	struct queue_store *qs;
	if (queue_store_open(yz_cfg_str(cfg, YZ_P_QUEUE_DIRECTORY), &qs, &err) < 0) {
		cli_fail("queue directory: %s", err);
		if (production)
			_exit(1);
		return 1;
	}
	queue_store_close(&qs);
	struct yz_dir *dir = yz_dir_open(yz_cfg_str(cfg, YZ_P_DIRECTORY_BACKEND),
					 yz_cfg_str(cfg, YZ_P_DIRECTORY_SQLITE_PATH), &err);
	if (dir == NULL) {
		rc = cli_fail("directory: %s", err);
		goto out;
	}
	yz_dir_set_hash_params(dir, (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_T_COST),
			       (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_M_COST),
			       (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_PARALLELISM));
	if (c->domain != NULL) {
		int exists = yz_dir_domain_exists(dir, c->domain);
		if (exists == 0 && yz_dir_domain_add(dir, c->domain, &err) < 0) {
			rc = cli_fail("%s", err);
			goto out;
		}
		if (exists == 0)
			printf("domain %s added\n", c->domain);
	}
	if (c->domain != NULL && c->user != NULL) {
		char addr[600];
		snprintf(addr, sizeof addr, "%s@%s", c->user, c->domain);
		struct yz_dir_account a;
		if (yz_dir_user_get(dir, addr, &a, &err) == 0) {
			yz_dir_account_clear(&a);
			printf("account %s exists already (its password is unchanged)\n", addr);
		} else {
			char pw[CLI_PASSWORD_MAX];
			cli_generate_password(pw, sizeof pw);
			if (yz_dir_user_add(dir, addr, pw, NULL, NULL,
					    yz_cfg_size(cfg, YZ_P_DEFAULT_QUOTA), &err) < 0)
				rc = cli_fail("%s", err);
			else
				printf("account %s added, password: %s\n", addr, pw);
			yz_wipe(pw, sizeof pw);
		}
	}
out:
	yz_dir_close(&dir);
	fflush(stdout);
	if (production)
		_exit(rc);
	return rc;
}

int cli_cmd_init(struct cli *c)
{
	if (c->nargs != 0 || (c->user != NULL && c->domain == NULL)) {
		cli_usage("init");
		return 2;
	}
	if (yz_config_path(c->config_arg, c->state_dir, c->dev, c->config_path,
			   sizeof c->config_path) < 0)
		return cli_fail("configuration path too long");
	if (init_write_config(c) != 0)
		return 1;
	struct yz_config *cfg = cli_config(c, false);
	if (cfg == NULL)
		return 1;
	bool production = !c->dev && cli_is_root();
	const char *err;
	int rc = 1;
	const char *yz_user = yz_cfg_str(cfg, YZ_P_YIZHAN_USER);
	const char *vmail = yz_cfg_str(cfg, YZ_P_VMAIL_USER);
	if (production) {
		if (yz_priv_ensure_user(yz_user, "/nonexistent", &err) < 0 ||
		    yz_priv_ensure_user(vmail, "/nonexistent", &err) < 0) {
			cli_fail("%s", err);
			goto out;
		}
	}
	if (init_dir(yz_cfg_str(cfg, YZ_P_STATE_DIRECTORY), 0755, NULL, production) != 0 ||
	    init_dir(yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY), 0755, NULL, production) != 0 ||
	    init_dir(yz_cfg_str(cfg, YZ_P_QUEUE_DIRECTORY), 0700, yz_user, production) != 0 ||
	    init_dir(yz_cfg_str(cfg, YZ_P_MAILDIR_ROOT), 0700, vmail, production) != 0 ||
	    init_parent_dir(yz_cfg_str(cfg, YZ_P_DIRECTORY_SQLITE_PATH), 0700, yz_user, production) != 0)
		goto out;
	const char *cert = yz_cfg_str(cfg, YZ_P_TLS_CERT_FILE);
	const char *key = yz_cfg_str(cfg, YZ_P_TLS_KEY_FILE);
	if (access(cert, F_OK) < 0 || access(key, F_OK) < 0) {
		if (init_parent_dir(cert, 0755, NULL, production) != 0 ||
		    init_parent_dir(key, 0700, NULL, production) != 0)
			goto out;
		char host[256];
		const char *hn = yz_cfg_str(cfg, YZ_P_MYHOSTNAME);
		if (hn[0] == '\0') {
			if (gethostname(host, sizeof host) < 0)
				snprintf(host, sizeof host, "localhost");
			host[sizeof host - 1] = '\0';
			hn = host;
		}
		if (yz_tls_make_selfsigned(cert, key, hn, &err) < 0) {
			cli_fail("certificate: %s", err);
			goto out;
		}
		printf("made a self-signed certificate for %s: %s\n", hn, cert);
	}
	fflush(stdout);
	if (init_directory(c, cfg, production) != 0)
		goto out;
	printf("ready: start with `yizhan run%s%s%s`\n", c->dev ? " --dev" : "",
	       c->state_dir ? " --state-dir " : "", c->state_dir ? c->state_dir : "");
	rc = 0;
out:
	yz_config_free(&cfg);
	return rc;
}
