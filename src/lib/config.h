/*
 * config.h: yizhan.conf, the one configuration file (Postfix style).
 *
 * Syntax: "name = value" lines; a line that starts with white space
 * continues the previous logical line (joined with one space); a line whose
 * first non-blank character is '#' is a comment; blank lines are ignored.
 * $name and ${name} expand to the effective value of another parameter,
 * recursively (at most YZ_CONFIG_EXPAND_DEPTH_MAX levels; a loop is an
 * error); $$ is a literal '$'. Expansion happens after the whole file is
 * read, so a reference sees the last value of the parameter it names.
 *
 * Every parameter, its type, default, dev-mode default and bounds comes from
 * the table in lib/config_params.h; the ids are YZ_P_<NAME>.
 *
 * Guarantees: a load or set either succeeds completely or leaves the
 * configuration as it was. Every error message names "file:line: name: "
 * (or "name: " for yz_config_set). An unknown name, a malformed line and a
 * bad value are errors; a name given twice takes the last value. Strings
 * returned by the accessors stay valid until yz_config_free(), even across
 * later loads and sets. Error strings live in a per-thread buffer valid until
 * the next call into the configuration system (so they survive
 * yz_config_free()).
 * Never: accept a value that fails its type or bounds; read past a limit;
 * print anything (the caller reports errors).
 *
 * myhostname: an empty value means "the system host name"; the caller
 * resolves it and sets it with yz_config_set() after loading, so that
 * $myhostname in smtpd_banner and elsewhere expands to it.
 */
#ifndef YZ_CONFIG_H
#define YZ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Limits of the configuration file. */
#define YZ_CONFIG_FILE_MAX ((size_t)1024 * 1024)      /* bytes in one file */
#define YZ_CONFIG_LINE_MAX ((size_t)64 * 1024)        /* bytes in one (logical) line */
#define YZ_CONFIG_VALUE_MAX ((size_t)64 * 1024)       /* bytes of a value after expansion */
#define YZ_CONFIG_EXPAND_DEPTH_MAX 16                 /* nested $name references */
#define YZ_CONFIG_LIST_WORDS_MAX 4096                 /* words in one LIST value */
#define YZ_CONFIG_ERROR_MAX 512                       /* bytes of one error message */

enum yz_param_type {
	YZ_CT_STR,
	YZ_CT_INT,
	YZ_CT_SIZE,
	YZ_CT_TIME,
	YZ_CT_BOOL,
	YZ_CT_LIST,
	YZ_CT_ENUM,
};

enum yz_param_id {
#define YZ_PARAM(id, name, type, def, dev, min, max, extra, doc) YZ_P_##id,
#include "lib/config_params.h"
	YZ_P__COUNT
};

struct yz_config;

/* A configuration with every parameter at its (dev-mode) default. */
struct yz_config *yz_config_new_defaults(bool dev_mode);
/* Parse a file over the current values; -1 + *error_r naming file:line.
 * A missing file is an error unless missing_ok (then 0, nothing changes). */
int yz_config_load(struct yz_config *cfg, const char *path, bool missing_ok,
		   const char **error_r);
/* Parse from memory; name stands for the file name in messages. */
int yz_config_load_buf(struct yz_config *cfg, const char *name,
		       const char *data, size_t len, const char **error_r);
/* Set one parameter ("name", "value") with the same validation; -1 + error_r. */
int yz_config_set(struct yz_config *cfg, const char *name, const char *value,
		  const char **error_r);
/* Free the configuration and every string it handed out; sets *cfg NULL. */
void yz_config_free(struct yz_config **cfg);
/* Was the configuration created for dev mode? */
bool yz_config_dev_mode(const struct yz_config *cfg);

/* Typed accessors of effective values; the wrong type is a yz_panic().
 * yz_cfg_str accepts STR and ENUM parameters (ENUM: the canonical spelling
 * from the table). */
const char *yz_cfg_str(const struct yz_config *cfg, enum yz_param_id id);
long long yz_cfg_int(const struct yz_config *cfg, enum yz_param_id id);
unsigned long long yz_cfg_size(const struct yz_config *cfg, enum yz_param_id id);
unsigned long long yz_cfg_time_ms(const struct yz_config *cfg, enum yz_param_id id);
bool yz_cfg_bool(const struct yz_config *cfg, enum yz_param_id id);
/* ENUM: the index of the value in the table's '|' list (0 = first). */
unsigned yz_cfg_enum(const struct yz_config *cfg, enum yz_param_id id);
/* LIST: number of words and the i-th word (i < count, else panic). */
size_t yz_cfg_list_count(const struct yz_config *cfg, enum yz_param_id id);
const char *yz_cfg_list_item(const struct yz_config *cfg, enum yz_param_id id, size_t i);
/* Was the parameter set explicitly (file or yz_config_set)? */
bool yz_config_is_set(const struct yz_config *cfg, enum yz_param_id id);

/* Look up by name: the id, or -1 if unknown. */
int yz_config_param_id(const char *name);
const char *yz_config_param_name(enum yz_param_id id);
enum yz_param_type yz_config_param_type(enum yz_param_id id);

/* `yizhan config`: "name = value\n" per parameter (effective, expanded),
 * sorted by name; only_changed: only those set to something other than their
 * default (postconf -n); names: optional NULL-terminated list to print only
 * those, in the order given (unknown name: -1 + error_r, out unchanged).
 * -1 + error_r also when out's cap is reached. */
int yz_config_print(const struct yz_config *cfg, struct yz_buf *out,
		    bool only_changed, const char *const *names,
		    const char **error_r);
/* The Markdown reference of every parameter (docs/configuration.md). */
void yz_config_doc_markdown(struct yz_buf *out);

#endif
