/*
 * config_load.h: the one way every yizhan process finds and loads its
 * configuration, so that the CLI, the master and each role agree.
 *
 * Where the file is: --config FILE if given; else <state-dir>/yizhan.conf
 * when --state-dir is given; else /etc/yizhan/yizhan.conf (production) or
 * $HOME/.local/state/yizhan/yizhan.conf (dev mode). --state-dir overrides
 * state_directory from the file.
 */
#ifndef YZ_CONFIG_LOAD_H
#define YZ_CONFIG_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/config.h"

#define YZ_CONFIG_DEFAULT_PATH "/etc/yizhan/yizhan.conf"

/* Fill path_r with the configuration path per the rules above. */
int yz_config_path(const char *explicit_path, const char *state_dir, bool dev,
		   char *path_r, size_t size);
/* The dev-mode default state directory. */
int yz_config_dev_state_dir(char *dir_r, size_t size);
/* Defaults for the mode, then the file (missing_ok: a missing file means
 * defaults), then the --state-dir override. NULL + error_r on any error. */
struct yz_config *yz_config_load_standard(const char *path, const char *state_dir,
					  bool dev, const char **error_r);
struct yz_config *yz_config_load_opt(const char *path, const char *state_dir,
				     bool dev, bool missing_ok, const char **error_r);

/* Apply log_level and syslog_facility to the log of this process. */
void yz_config_apply_logging(const struct yz_config *cfg);

#endif
