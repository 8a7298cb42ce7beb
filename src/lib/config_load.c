/*
 * config_load.c: locate and load yizhan.conf the same way in every process.
 */
#include "lib/config_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "lib/log.h"

static char load_err[1024];

int yz_config_dev_state_dir(char *dir_r, size_t size)
{
	const char *home = getenv("HOME");
	int n = snprintf(dir_r, size, "%s/.local/state/yizhan", home ? home : "/tmp");
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

int yz_config_path(const char *explicit_path, const char *state_dir, bool dev,
		   char *path_r, size_t size)
{
	int n;
	char dir[4096];
	if (explicit_path != NULL) {
		n = snprintf(path_r, size, "%s", explicit_path);
	} else if (state_dir != NULL) {
		n = snprintf(path_r, size, "%s/yizhan.conf", state_dir);
	} else if (dev) {
		if (yz_config_dev_state_dir(dir, sizeof dir) < 0)
			return -1;
		n = snprintf(path_r, size, "%s/yizhan.conf", dir);
	} else {
		n = snprintf(path_r, size, "%s", YZ_CONFIG_DEFAULT_PATH);
	}
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

struct yz_config *yz_config_load_opt(const char *path, const char *state_dir,
				     bool dev, bool missing_ok, const char **error_r)
{
	struct yz_config *cfg = yz_config_new_defaults(dev);
	const char *err;
	if (path != NULL && yz_config_load(cfg, path, missing_ok, &err) < 0) {
		snprintf(load_err, sizeof load_err, "%s", err);
		*error_r = load_err;
		yz_config_free(&cfg);
		return NULL;
	}
	if (state_dir != NULL && yz_config_set(cfg, "state_directory", state_dir, &err) < 0) {
		snprintf(load_err, sizeof load_err, "--state-dir: %s", err);
		*error_r = load_err;
		yz_config_free(&cfg);
		return NULL;
	}
	/* An empty myhostname means the system's name; setting it here makes
	 * $myhostname (smtpd_banner, ...) expand to it everywhere. */
	if (yz_cfg_str(cfg, YZ_P_MYHOSTNAME)[0] == '\0') {
		char host[256];
		if (gethostname(host, sizeof host - 1) < 0 || host[0] == '\0')
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		(void)yz_config_set(cfg, "myhostname", host, &err);
	}
	return cfg;
}

struct yz_config *yz_config_load_standard(const char *path, const char *state_dir,
					  bool dev, const char **error_r)
{
	return yz_config_load_opt(path, state_dir, dev, false, error_r);
}

void yz_config_apply_logging(const struct yz_config *cfg)
{
	static const struct {
		const char *name;
		int facility;
	} facilities[] = {
		{ "mail", LOG_MAIL },     { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
		{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	const char *level = yz_cfg_str(cfg, YZ_P_LOG_LEVEL);
	if (strcmp(level, "debug") == 0)
		yz_log_set_level(YZ_LOG_DEBUG);
	else if (strcmp(level, "warning") == 0)
		yz_log_set_level(YZ_LOG_WARN);
	else if (strcmp(level, "error") == 0)
		yz_log_set_level(YZ_LOG_ERR);
	else
		yz_log_set_level(YZ_LOG_INFO);
	const char *fac = yz_cfg_str(cfg, YZ_P_SYSLOG_FACILITY);
	for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
		if (strcmp(fac, facilities[i].name) == 0)
			yz_log_set_facility(facilities[i].facility);
}
