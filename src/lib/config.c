/*
 * config.c: the yizhan.conf parser, $name expansion, typed validation,
 * `yizhan config` output and the Markdown reference, all driven by the one
 * table in lib/config_params.h.
 *
 * How a load works: the current raw values are copied to a staging array,
 * the file's lines are parsed into it (literal values are validated on their
 * own line at once), then every parameter is expanded and validated again
 * (a $name reference sees the last value of the parameter it names), then a
 * few cross-parameter rules are checked. Only when all of that succeeded is
 * the staging array copied back; on any error the configuration is as it was.
 * Each load or set allocates its strings from a new pool ("generation");
 * older generations stay alive until yz_config_free(), so a string that an
 * accessor returned is never freed under its user.
 *
 * Guarantees: every length is bounded by a YZ_CONFIG_* limit checked before
 * the data is used; every error names file:line and the parameter.
 * Never: accept an unknown name, a value outside its type or bounds, or
 * an expansion loop; write to stdout/stderr; do I/O besides reading the file.
 */
#include "lib/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"

/* Pool block size of one generation: a few KiB hold a whole configuration. */
#define CFG_POOL_BLOCK 8192
/* Bytes of a value quoted in an error message before it is cut with "...". */
#define CFG_SHOW_MAX 64

/* One row of the table, indexed by enum yz_param_id. */
struct param_def {
	const char *name;
	enum yz_param_type type;
	const char *def;
	const char *dev_def; /* NULL: same as def */
	long long min, max;
	const char *extra; /* TIME: plain unit; ENUM: "a|b|c" */
	const char *doc;
};

static const struct param_def param_defs[YZ_P__COUNT] = {
#define YZ_PARAM(id, pname, ptype, pdef, pdev, pmin, pmax, pextra, pdoc) \
	[YZ_P_##id] = { #pname, YZ_CT_##ptype, pdef, pdev, pmin, pmax, pextra, pdoc },
#include "lib/config_params.h"
};

/* The table in its written order, with the group headings, for the docs. */
struct param_row {
	const char *group; /* non-NULL: a heading row */
	int id;
};

static const struct param_row param_rows[] = {
#define YZ_GROUP(title) { title, -1 },
#define YZ_PARAM(id, pname, ptype, pdef, pdev, pmin, pmax, pextra, pdoc) { NULL, YZ_P_##id },
#include "lib/config_params.h"
};

/* The state of one parameter: its raw text and its effective value. */
struct cfg_val {
	const char *raw;   /* explicitly set text (unexpanded), NULL: default */
	const char *src;   /* file name of raw, NULL when set by yz_config_set */
	unsigned line;     /* line of raw in src */
	const char *text;  /* effective text after expansion */
	long long num;     /* INT, SIZE, TIME (ms), BOOL (0/1), ENUM (index) */
	const char **words; /* LIST words */
	size_t nwords;
};

struct yz_config {
	bool dev_mode;
	struct cfg_val vals[YZ_P__COUNT];
	struct yz_pool **pools; /* every generation, oldest first */
	size_t npools;
};

/* Where a message points: "src:line: name: " (parts may be absent). */
struct cfg_where {
	const char *src;
	unsigned line;
	const char *name;
	bool is_default; /* the value is the parameter's default */
};

static _Thread_local char cfg_errbuf[YZ_CONFIG_ERROR_MAX];

/* Format an error with its location prefix into the error buffer; -1. */
static int cfg_fail(const struct cfg_where *w, const char **error_r,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cfg_fail(const struct cfg_where *w, const char **error_r,
		    const char *fmt, ...)
{
	size_t o = 0;
	int n = 0;
	if (w != NULL && w->src != NULL && w->line > 0)
		n = snprintf(cfg_errbuf, sizeof cfg_errbuf, "%s:%u: ", w->src, w->line);
	else if (w != NULL && w->src != NULL)
		n = snprintf(cfg_errbuf, sizeof cfg_errbuf, "%s: ", w->src);
	if (n > 0)
		o = (size_t)n < sizeof cfg_errbuf ? (size_t)n : sizeof cfg_errbuf - 1;
	if (w != NULL && w->name != NULL && o < sizeof cfg_errbuf) {
		n = snprintf(cfg_errbuf + o, sizeof cfg_errbuf - o, "%s%s: ", w->name,
			     w->is_default ? " (default value)" : "");
		if (n > 0)
			o += (size_t)n < sizeof cfg_errbuf - o ? (size_t)n : sizeof cfg_errbuf - o - 1;
	}
	va_list ap;
	va_start(ap, fmt);
	if (o < sizeof cfg_errbuf)
		vsnprintf(cfg_errbuf + o, sizeof cfg_errbuf - o, fmt, ap);
	va_end(ap);
	*error_r = cfg_errbuf;
	return -1;
}

/* Copy a value into out for a message: cut, control bytes as '?'. */
static const char *cfg_show(const char *s, size_t len, char out[CFG_SHOW_MAX + 4])
{
	size_t n = len > CFG_SHOW_MAX ? CFG_SHOW_MAX : len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

/* SP or HTAB: the white space of yizhan.conf. */
static bool cfg_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* May c appear in a parameter name? */
static bool cfg_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* The default text of a parameter in the given mode. */
static const char *cfg_default(int id, bool dev_mode)
{
	const struct param_def *d = &param_defs[id];
	return dev_mode && d->dev_def != NULL ? d->dev_def : d->def;
}

/* Look up a parameter by name and length; -1 if unknown. */
static int cfg_lookup(const char *name, size_t len)
{
	for (int i = 0; i < YZ_P__COUNT; i++) {
		if (strlen(param_defs[i].name) == len &&
		    memcmp(param_defs[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

/* The id of a parameter name, or -1. */
int yz_config_param_id(const char *name)
{
	return name == NULL ? -1 : cfg_lookup(name, strlen(name));
}

/* The name of a parameter id. */
const char *yz_config_param_name(enum yz_param_id id)
{
	if ((unsigned)id >= YZ_P__COUNT)
		yz_panic("config: parameter id %d out of range", (int)id);
	return param_defs[id].name;
}

/* The type of a parameter id. */
enum yz_param_type yz_config_param_type(enum yz_param_id id)
{
	if ((unsigned)id >= YZ_P__COUNT)
		yz_panic("config: parameter id %d out of range", (int)id);
	return param_defs[id].type;
}

/* --- units ------------------------------------------------------------- */

struct cfg_unit {
	const char *suffix;
	unsigned long long mult;
};

/* Time units in milliseconds, longest suffix first where they share a letter. */
static const struct cfg_unit time_units[] = {
	{ "ms", 1ULL },
	{ "s", 1000ULL },
	{ "m", 60ULL * 1000 },
	{ "h", 3600ULL * 1000 },
	{ "d", 86400ULL * 1000 },
	{ "w", 7ULL * 86400 * 1000 },
};

static const struct cfg_unit size_units[] = {
	{ "k", 1024ULL }, { "K", 1024ULL },
	{ "m", 1024ULL * 1024 }, { "M", 1024ULL * 1024 },
	{ "g", 1024ULL * 1024 * 1024 }, { "G", 1024ULL * 1024 * 1024 },
};

/* Time in ms as the shortest exact text: "90s", "2h", "0", "1500ms". */
static void cfg_fmt_time(unsigned long long ms, char *out, size_t outsz)
{
	if (ms == 0) {
		snprintf(out, outsz, "0");
		return;
	}
	for (size_t i = sizeof time_units / sizeof time_units[0]; i-- > 0;) {
		if (ms % time_units[i].mult == 0) {
			snprintf(out, outsz, "%llu%s", ms / time_units[i].mult,
				 time_units[i].suffix);
			return;
		}
	}
	snprintf(out, outsz, "%llums", ms); /* unreachable: ms divides all */
}

/* Size in bytes as the shortest exact text: "50M", "1000", "4G". */
static void cfg_fmt_size(unsigned long long n, char *out, size_t outsz)
{
	static const char suffix[] = { 'G', 'M', 'K' };
	unsigned long long mult = 1024ULL * 1024 * 1024;
	for (size_t i = 0; i < sizeof suffix; i++, mult /= 1024) {
		if (n != 0 && n % mult == 0) {
			snprintf(out, outsz, "%llu%c", n / mult, suffix[i]);
			return;
		}
	}
	snprintf(out, outsz, "%llu", n);
}

/* A bound in the parameter's natural notation. */
static void cfg_fmt_bound(const struct param_def *d, long long v, char *out, size_t outsz)
{
	if (d->type == YZ_CT_TIME && v >= 0)
		cfg_fmt_time((unsigned long long)v, out, outsz);
	else if (d->type == YZ_CT_SIZE && v >= 0)
		cfg_fmt_size((unsigned long long)v, out, outsz);
	else
		snprintf(out, outsz, "%lld", v);
}

/* Parse leading decimal digits; 0 on success, -1 if none, -2 on overflow. */
static int cfg_parse_digits(const char *s, size_t len, size_t *used_r,
			    unsigned long long *v_r)
{
	unsigned long long v = 0;
	size_t i = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
		i++;
	}
	if (i == 0)
		return -1;
	*used_r = i;
	*v_r = v;
	return 0;
}

/* --- typed validation -------------------------------------------------- */

/* inet_interfaces: "all", "loopback-only", or IP address literals. */
static int cfg_check_interfaces(const struct cfg_val *v, const struct cfg_where *w,
				const char **error_r)
{
	char show[CFG_SHOW_MAX + 4];
	for (size_t i = 0; i < v->nwords; i++) {
		const char *word = v->words[i];
		if (strcmp(word, "all") == 0 || strcmp(word, "loopback-only") == 0) {
			if (v->nwords != 1)
				return cfg_fail(w, error_r, "\"%s\" must be the only word", word);
			continue;
		}
		char addr[INET6_ADDRSTRLEN + 2];
		size_t len = strlen(word);
		if (len >= 2 && word[0] == '[' && word[len - 1] == ']') {
			word++;
			len -= 2;
		}
		unsigned char bin[16];
		if (len >= sizeof addr)
			len = sizeof addr - 1; /* too long for an address: fails below */
		memcpy(addr, word, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)
			return cfg_fail(w, error_r,
					"\"%s\" is not all, loopback-only or an IP address",
					cfg_show(v->words[i], strlen(v->words[i]), show));
	}
	return 0;
}

/* Parse text (len bytes, no NUL inside) as parameter id's type into out,
 * allocating from pool; -1 + error_r (prefixed by w) if invalid. */
static int cfg_parse_value(int id, const char *text, size_t len, struct yz_pool *pool,
			   struct cfg_val *out, const struct cfg_where *w,
			   const char **error_r)
{
	const struct param_def *d = &param_defs[id];
	char show[CFG_SHOW_MAX + 4];
	char bound[32];
	unsigned long long u = 0;
	size_t used = 0;
	long long num = 0;
	int r;

	if (len > YZ_CONFIG_VALUE_MAX)
		return cfg_fail(w, error_r, "value is longer than %zu bytes", YZ_CONFIG_VALUE_MAX);
	out->text = yz_pool_strndup(pool, text, len);
	out->num = 0;
	out->words = NULL;
	out->nwords = 0;

	switch (d->type) {
	case YZ_CT_STR:
		return 0;
	case YZ_CT_BOOL: {
		static const char *const yes[] = { "yes", "true", "on", "1" };
		static const char *const no[] = { "no", "false", "off", "0" };
		for (size_t i = 0; i < 4; i++) {
			if (strlen(yes[i]) == len && strncasecmp(text, yes[i], len) == 0) {
				out->num = 1;
				return 0;
			}
			if (strlen(no[i]) == len && strncasecmp(text, no[i], len) == 0)
				return 0;
		}
		return cfg_fail(w, error_r,
				"value \"%s\" is not a boolean (yes/no, true/false, on/off, 1/0)",
				cfg_show(text, len, show));
	}
	case YZ_CT_ENUM: {
		const char *p = d->extra;
		unsigned idx = 0;
		for (;;) {
			const char *bar = strchr(p, '|');
			size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
			if (n == len && strncasecmp(p, text, len) == 0) {
				out->num = idx;
				out->text = yz_pool_strndup(pool, p, n); /* canonical spelling */
				return 0;
			}
			if (bar == NULL)
				break;
			p = bar + 1;
			idx++;
		}
		return cfg_fail(w, error_r, "value \"%s\" is not one of %s",
				cfg_show(text, len, show), d->extra);
	}
	case YZ_CT_LIST: {
		size_t count = 0;
		for (size_t i = 0; i < len;) {
			while (i < len && (cfg_is_space(text[i]) || text[i] == ','))
				i++;
			if (i == len)
				break;
			while (i < len && !cfg_is_space(text[i]) && text[i] != ',')
				i++;
			count++;
		}
		if (count > YZ_CONFIG_LIST_WORDS_MAX)
			return cfg_fail(w, error_r, "more than %d words in the list",
					YZ_CONFIG_LIST_WORDS_MAX);
		out->words = yz_pool_alloc(pool, (count ? count : 1) * sizeof *out->words);
		for (size_t i = 0; i < len;) {
			while (i < len && (cfg_is_space(text[i]) || text[i] == ','))
				i++;
			if (i == len)
				break;
			size_t start = i;
			while (i < len && !cfg_is_space(text[i]) && text[i] != ',')
				i++;
			out->words[out->nwords++] = yz_pool_strndup(pool, text + start, i - start);
		}
		if (id == YZ_P_INET_INTERFACES)
			return cfg_check_interfaces(out, w, error_r);
		return 0;
	}
	case YZ_CT_INT: {
		bool neg = len > 0 && text[0] == '-';
		r = cfg_parse_digits(text + neg, len - neg, &used, &u);
		if (r == 0 && used != len - neg)
			r = -1; /* trailing garbage */
		if (r == -1)
			return cfg_fail(w, error_r, "value \"%s\" is not a number",
					cfg_show(text, len, show));
		if (r == -2 || u > (unsigned long long)LLONG_MAX)
			return cfg_fail(w, error_r, "value %s is too large",
					cfg_show(text, len, show));
		num = neg ? -(long long)u : (long long)u;
		break;
	}
	case YZ_CT_SIZE:
	case YZ_CT_TIME: {
		const bool is_time = d->type == YZ_CT_TIME;
		r = cfg_parse_digits(text, len, &used, &u);
		if (r == -1)
			return cfg_fail(w, error_r, "value \"%s\" is not a %s",
					cfg_show(text, len, show), is_time ? "time" : "size");
		if (r == -2)
			return cfg_fail(w, error_r, "value %s is too large",
					cfg_show(text, len, show));
		const char *unit = text + used;
		size_t ulen = len - used;
		unsigned long long mult = 0;
		const struct cfg_unit *units = is_time ? time_units : size_units;
		size_t nunits = is_time ? sizeof time_units / sizeof time_units[0]
					: sizeof size_units / sizeof size_units[0];
		if (ulen == 0) {
			mult = 1;
			if (is_time) {
				for (size_t i = 0; i < nunits; i++)
					if (strcmp(units[i].suffix, d->extra) == 0)
						mult = units[i].mult;
			}
		} else {
			for (size_t i = 0; i < nunits; i++) {
				if (strlen(units[i].suffix) == ulen &&
				    memcmp(units[i].suffix, unit, ulen) == 0)
					mult = units[i].mult;
			}
		}
		if (mult == 0)
			return cfg_fail(w, error_r, "value \"%s\" has a bad %s unit (use %s)",
					cfg_show(text, len, show), is_time ? "time" : "size",
					is_time ? "ms, s, m, h, d or w" : "k, m or g");
		if (u > (unsigned long long)LLONG_MAX / mult)
			return cfg_fail(w, error_r, "value %s is too large",
					cfg_show(text, len, show));
		num = (long long)(u * mult);
		break;
	}
	default:
		yz_panic("config: %s has a bad type %d", d->name, (int)d->type);
	}

	if (num < d->min) {
		cfg_fmt_bound(d, d->min, bound, sizeof bound);
		return cfg_fail(w, error_r, "value %s is below the minimum %s",
				cfg_show(text, len, show), bound);
	}
	if (num > d->max) {
		cfg_fmt_bound(d, d->max, bound, sizeof bound);
		return cfg_fail(w, error_r, "value %s is above the maximum %s",
				cfg_show(text, len, show), bound);
	}
	out->num = num;
	return 0;
}

/* --- expansion --------------------------------------------------------- */

enum { RES_TODO, RES_ACTIVE, RES_DONE };

struct cfg_resolver {
	struct cfg_val *vals; /* staging values, effective fields are filled in */
	bool dev_mode;
	struct yz_pool *pool;
	const char *load_src; /* file being loaded: context for default values */
	unsigned char state[YZ_P__COUNT];
	unsigned char height[YZ_P__COUNT]; /* nesting depth of $name references */
	int stack[YZ_P__COUNT];            /* parameters being expanded, outermost first */
	size_t depth;
};


/* Where errors about parameter id point. */
static struct cfg_where cfg_where_of(const struct cfg_resolver *r, int id)
{
	const struct cfg_val *v = &r->vals[id];
	struct cfg_where w = { v->src, v->line, param_defs[id].name, false };
	if (v->raw == NULL) {
		w.src = r->load_src;
		w.line = 0;
		w.is_default = true;
	}
	return w;
}

/* Report the loop that closes at ref, at ref's location: "a -> b -> a". */
static int cfg_fail_loop(struct cfg_resolver *r, int ref, const char **error_r)
{
	char path[YZ_CONFIG_ERROR_MAX];
	size_t o = 0, k = 0;
	while (k < r->depth && r->stack[k] != ref)
		k++;
	path[0] = '\0';
	for (; k < r->depth && o < sizeof path; k++) {
		int n = snprintf(path + o, sizeof path - o, "%s -> ", param_defs[r->stack[k]].name);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	struct cfg_where w = cfg_where_of(r, ref);
	return cfg_fail(&w, error_r, "expansion loop %s%s", path, param_defs[ref].name);
}

static int cfg_resolve(struct cfg_resolver *r, int id, const char **error_r);

/* Append n bytes; an empty append always succeeds (yz_buf_reserve(b, 0) on a
 * never-used buffer answers NULL, which yz_buf_append takes for "full"). */
static int cfg_buf_add(struct yz_buf *b, const char *p, size_t n)
{
	return n == 0 ? 0 : yz_buf_append(b, p, n);
}

/* Expand parameter id's raw text and parse it into its effective value. */
static int cfg_resolve(struct cfg_resolver *r, int id, const char **error_r)
{
	if (r->state[id] == RES_DONE)
		return 0;
	struct cfg_val *v = &r->vals[id];
	struct cfg_where w = cfg_where_of(r, id);
	const char *raw = v->raw != NULL ? v->raw : cfg_default(id, r->dev_mode);
	size_t len = strlen(raw);
	char show[CFG_SHOW_MAX + 4];
	struct yz_buf out;
	unsigned height = 0;

	r->state[id] = RES_ACTIVE;
	r->stack[r->depth++] = id; /* each id at most once: bounded by the count */
	yz_buf_init(&out, YZ_CONFIG_VALUE_MAX);
	for (size_t i = 0; i < len;) {
		const char *dollar = memchr(raw + i, '$', len - i);
		size_t lit = dollar != NULL ? (size_t)(dollar - (raw + i)) : len - i;
		if (cfg_buf_add(&out, raw + i, lit) < 0)
			goto too_long;
		i += lit;
		if (i == len)
			break;
		i++; /* the '$' */
		const char *name;
		size_t nlen;
		if (i < len && raw[i] == '$') {
			if (yz_buf_append_c(&out, '$') < 0)
				goto too_long;
			i++;
			continue;
		} else if (i < len && raw[i] == '{') {
			const char *close = memchr(raw + i, '}', len - i);
			if (close == NULL) {
				yz_buf_free(&out);
				return cfg_fail(&w, error_r, "\"${\" without a closing \"}\"");
			}
			name = raw + i + 1;
			nlen = (size_t)(close - name);
			i = (size_t)(close - raw) + 1;
			for (size_t k = 0; k < nlen; k++) {
				if (!cfg_is_name_char(name[k]))
					nlen = 0;
			}
		} else {
			name = raw + i;
			nlen = 0;
			while (i < len && cfg_is_name_char(raw[i])) {
				i++;
				nlen++;
			}
		}
		if (nlen == 0) {
			yz_buf_free(&out);
			return cfg_fail(&w, error_r,
					"\"$\" must be followed by a parameter name, {name} or $");
		}
		int ref = cfg_lookup(name, nlen);
		if (ref < 0) {
			yz_buf_free(&out);
			return cfg_fail(&w, error_r, "$%s: unknown parameter",
					cfg_show(name, nlen, show));
		}
		if (r->state[ref] == RES_ACTIVE) {
			yz_buf_free(&out);
			return cfg_fail_loop(r, ref, error_r);
		}
		if (cfg_resolve(r, ref, error_r) < 0) {
			yz_buf_free(&out);
			return -1;
		}
		if (r->height[ref] + 1u > height)
			height = r->height[ref] + 1u;
		if (height > YZ_CONFIG_EXPAND_DEPTH_MAX) {
			yz_buf_free(&out);
			return cfg_fail(&w, error_r, "$name expansion nested deeper than %d levels",
					YZ_CONFIG_EXPAND_DEPTH_MAX);
		}
		if (cfg_buf_add(&out, r->vals[ref].text, strlen(r->vals[ref].text)) < 0)
			goto too_long;
	}
	r->height[id] = (unsigned char)height;
	int ret = cfg_parse_value(id, yz_buf_data(&out), yz_buf_len(&out), r->pool, v,
				  &w, error_r);
	yz_buf_free(&out);
	if (ret < 0)
		return -1;
	r->state[id] = RES_DONE;
	r->depth--;
	return 0;

too_long:
	yz_buf_free(&out);
	return cfg_fail(&w, error_r, "value after expansion is longer than %zu bytes",
			YZ_CONFIG_VALUE_MAX);
}

/* Pairs of parameters where the first must not exceed the second. */
static const struct {
	enum yz_param_id lo, hi;
} cfg_order_rules[] = {
	{ YZ_P_MASTER_RESTART_DELAY_MIN, YZ_P_MASTER_RESTART_DELAY_MAX },
	{ YZ_P_AUTH_FAILURE_DELAY, YZ_P_AUTH_FAILURE_DELAY_MAX },
	{ YZ_P_MINIMAL_BACKOFF_TIME, YZ_P_MAXIMAL_BACKOFF_TIME },
	{ YZ_P_SMTPD_SOFT_ERROR_LIMIT, YZ_P_SMTPD_HARD_ERROR_LIMIT },
};

/* Resolve every parameter of vals and check the cross-parameter rules. */
static int cfg_resolve_all(struct cfg_val *vals, bool dev_mode, struct yz_pool *pool,
			   const char *load_src, const char **error_r)
{
	struct cfg_resolver *r = yz_calloc(1, sizeof *r);
	r->vals = vals;
	r->dev_mode = dev_mode;
	r->pool = pool;
	r->load_src = load_src;
	int ret = 0;
	for (int id = 0; id < YZ_P__COUNT && ret == 0; id++)
		ret = cfg_resolve(r, id, error_r);
	for (size_t i = 0; ret == 0 && i < sizeof cfg_order_rules / sizeof cfg_order_rules[0]; i++) {
		int lo = (int)cfg_order_rules[i].lo, hi = (int)cfg_order_rules[i].hi;
		if (vals[lo].num <= vals[hi].num)
			continue;
		/* Blame the one that was set explicitly, the later one if both. */
		bool blame_hi = vals[hi].raw != NULL &&
				(vals[lo].raw == NULL ||
				 (vals[lo].src == vals[hi].src && vals[hi].line > vals[lo].line));
		int who = blame_hi ? hi : lo, other = blame_hi ? lo : hi;
		struct cfg_where w = cfg_where_of(r, who);
		ret = cfg_fail(&w, error_r, "value %s is %s %s (%s)", vals[who].text,
			       blame_hi ? "below" : "above", param_defs[other].name,
			       vals[other].text);
	}
	free(r);
	return ret;
}

/* --- configurations ---------------------------------------------------- */

/* Append a pool to the configuration's generations. */
static void cfg_add_pool(struct yz_config *cfg, struct yz_pool *pool)
{
	cfg->pools = yz_realloc(cfg->pools, (cfg->npools + 1) * sizeof *cfg->pools);
	cfg->pools[cfg->npools++] = pool;
}

/* A configuration at the defaults; a default that fails is a table bug. */
struct yz_config *yz_config_new_defaults(bool dev_mode)
{
	struct yz_config *cfg = yz_calloc(1, sizeof *cfg);
	cfg->dev_mode = dev_mode;
	struct yz_pool *pool = yz_pool_new(CFG_POOL_BLOCK);
	const char *error;
	if (cfg_resolve_all(cfg->vals, dev_mode, pool, "defaults", &error) < 0)
		yz_panic("config: the parameter table is inconsistent: %s", error);
	cfg_add_pool(cfg, pool);
	return cfg;
}

/* Free every generation and the configuration. */
void yz_config_free(struct yz_config **cfgp)
{
	struct yz_config *cfg = *cfgp;
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->npools; i++)
		yz_pool_free(&cfg->pools[i]);
	free(cfg->pools);
	free(cfg);
	*cfgp = NULL;
}

/* Was cfg made for dev mode? */
bool yz_config_dev_mode(const struct yz_config *cfg)
{
	return cfg->dev_mode;
}

/* Resolve staging values; on success make them current, else drop them. */
static int cfg_commit(struct yz_config *cfg, struct cfg_val *stage, struct yz_pool *pool,
		      const char *load_src, const char **error_r)
{
	if (cfg_resolve_all(stage, cfg->dev_mode, pool, load_src, error_r) < 0) {
		yz_pool_free(&pool);
		return -1;
	}
	memcpy(cfg->vals, stage, sizeof cfg->vals);
	cfg_add_pool(cfg, pool);
	return 0;
}

/* Record "name = value" (a logical line) into stage; -1 + error_r. */
static int cfg_parse_assignment(struct cfg_val *stage, struct yz_pool *pool,
				const char *src, unsigned line, struct yz_slice text,
				const char **error_r)
{
	struct cfg_where w = { src, line, NULL, false };
	char show[CFG_SHOW_MAX + 4];
	size_t n = 0;
	while (n < text.len && cfg_is_name_char(text.p[n]))
		n++;
	size_t eq = n;
	while (eq < text.len && cfg_is_space(text.p[eq]))
		eq++;
	if (n == 0 || eq == text.len || text.p[eq] != '=')
		return cfg_fail(&w, error_r, "malformed line \"%s\": expected \"name = value\"",
				cfg_show(text.p, text.len, show));
	int id = cfg_lookup(text.p, n);
	if (id < 0) {
		w.name = cfg_show(text.p, n, show);
		return cfg_fail(&w, error_r, "unknown parameter");
	}
	w.name = param_defs[id].name;
	struct yz_slice value = yz_slice_trim((struct yz_slice){ text.p + eq + 1,
								  text.len - eq - 1 });
	/* A value without $ can be checked on its own line now, which also
	 * catches a bad value that a later line overrides. */
	if (memchr(value.p, '$', value.len) == NULL) {
		struct cfg_val scratch;
		if (cfg_parse_value(id, value.p, value.len, pool, &scratch, &w, error_r) < 0)
			return -1;
	}
	struct cfg_val *v = &stage[id];
	v->raw = yz_pool_slice_dup(pool, value);
	v->src = src;
	v->line = line;
	return 0;
}

/* Parse the lines of data into stage; -1 + error_r naming the line. */
static int cfg_parse_lines(struct cfg_val *stage, struct yz_pool *pool, const char *src,
			   const char *data, size_t len, const char **error_r)
{
	struct yz_buf logical;
	unsigned lineno = 0, logical_line = 0;
	bool have_logical = false;
	int ret = 0;

	yz_buf_init(&logical, YZ_CONFIG_LINE_MAX);
	for (size_t pos = 0; pos < len && ret == 0;) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		struct yz_slice line = { data + pos, end - pos };
		struct cfg_where w = { src, ++lineno, NULL, false };
		pos = nl != NULL ? end + 1 : len;

		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		if (line.len > YZ_CONFIG_LINE_MAX) {
			ret = cfg_fail(&w, error_r, "line is longer than %zu bytes",
				       YZ_CONFIG_LINE_MAX);
			break;
		}
		for (size_t i = 0; i < line.len; i++) {
			unsigned char c = (unsigned char)line.p[i];
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				ret = cfg_fail(&w, error_r, "control character 0x%02x in line", c);
				break;
			}
		}
		if (ret < 0)
			break;
		struct yz_slice trimmed = yz_slice_trim(line);
		if (trimmed.len == 0 || trimmed.p[0] == '#')
			continue; /* blank or comment: does not end a logical line */
		if (cfg_is_space(line.p[0])) {
			if (!have_logical) {
				ret = cfg_fail(&w, error_r,
					       "continuation line (starts with white space) without a parameter before it");
				break;
			}
			if (yz_buf_append_c(&logical, ' ') < 0 ||
			    yz_buf_append_slice(&logical, trimmed) < 0) {
				w.line = logical_line;
				ret = cfg_fail(&w, error_r,
					       "line with its continuations is longer than %zu bytes",
					       YZ_CONFIG_LINE_MAX);
			}
			continue;
		}
		if (have_logical)
			ret = cfg_parse_assignment(stage, pool, src, logical_line,
						   yz_buf_slice(&logical), error_r);
		yz_buf_reset(&logical);
		(void)yz_buf_append_slice(&logical, trimmed); /* fits: checked above */
		have_logical = true;
		logical_line = lineno;
	}
	if (ret == 0 && have_logical)
		ret = cfg_parse_assignment(stage, pool, src, logical_line,
					   yz_buf_slice(&logical), error_r);
	yz_buf_free(&logical);
	return ret;
}

/* Parse data over cfg, all or nothing. */
int yz_config_load_buf(struct yz_config *cfg, const char *name, const char *data,
		       size_t len, const char **error_r)
{
	struct cfg_where w = { name, 0, NULL, false };
	if (len > YZ_CONFIG_FILE_MAX)
		return cfg_fail(&w, error_r, "file is larger than %zu bytes", YZ_CONFIG_FILE_MAX);
	struct yz_pool *pool = yz_pool_new(CFG_POOL_BLOCK);
	struct cfg_val *stage = yz_malloc(sizeof cfg->vals);
	memcpy(stage, cfg->vals, sizeof cfg->vals);
	const char *src = yz_pool_strdup(pool, name);
	int ret;
	if (cfg_parse_lines(stage, pool, src, data, len, error_r) < 0) {
		yz_pool_free(&pool);
		ret = -1;
	} else {
		ret = cfg_commit(cfg, stage, pool, src, error_r);
	}
	free(stage);
	return ret;
}

/* Read path (bounded by YZ_CONFIG_FILE_MAX) and parse it over cfg. */
int yz_config_load(struct yz_config *cfg, const char *path, bool missing_ok,
		   const char **error_r)
{
	struct cfg_where w = { path, 0, NULL, false };
	char *data;
	size_t len;
	if (yz_file_read_all(path, YZ_CONFIG_FILE_MAX, &data, &len) < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		if (errno == EFBIG)
			return cfg_fail(&w, error_r, "file is larger than %zu bytes",
					YZ_CONFIG_FILE_MAX);
		return cfg_fail(&w, error_r, "%s", strerror(errno));
	}
	int ret = yz_config_load_buf(cfg, path, data, len, error_r);
	free(data);
	return ret;
}

/* Set one parameter as if from a file line, all or nothing. */
int yz_config_set(struct yz_config *cfg, const char *name, const char *value,
		  const char **error_r)
{
	struct cfg_where w = { NULL, 0, NULL, false };
	char show[CFG_SHOW_MAX + 4];
	int id = yz_config_param_id(name);
	if (id < 0) {
		w.name = cfg_show(name, strlen(name), show);
		return cfg_fail(&w, error_r, "unknown parameter");
	}
	w.name = param_defs[id].name;
	size_t len = strlen(value);
	if (len > YZ_CONFIG_VALUE_MAX)
		return cfg_fail(&w, error_r, "value is longer than %zu bytes",
				YZ_CONFIG_VALUE_MAX);
	struct yz_pool *pool = yz_pool_new(CFG_POOL_BLOCK);
	struct cfg_val *stage = yz_malloc(sizeof cfg->vals);
	memcpy(stage, cfg->vals, sizeof cfg->vals);
	stage[id].raw = yz_pool_strndup(pool, value, len);
	stage[id].src = NULL;
	stage[id].line = 0;
	int ret = cfg_commit(cfg, stage, pool, NULL, error_r);
	free(stage);
	return ret;
}

/* --- accessors --------------------------------------------------------- */

/* The value of id, after checking that its type is one of the two given. */
static const struct cfg_val *cfg_get(const struct yz_config *cfg, enum yz_param_id id,
				     enum yz_param_type t1, enum yz_param_type t2,
				     const char *accessor)
{
	if ((unsigned)id >= YZ_P__COUNT)
		yz_panic("config: %s: parameter id %d out of range", accessor, (int)id);
	if (param_defs[id].type != t1 && param_defs[id].type != t2)
		yz_panic("config: %s called for %s of another type", accessor,
			 param_defs[id].name);
	return &cfg->vals[id];
}

/* Effective text of a STR or ENUM parameter. */
const char *yz_cfg_str(const struct yz_config *cfg, enum yz_param_id id)
{
	return cfg_get(cfg, id, YZ_CT_STR, YZ_CT_ENUM, "yz_cfg_str")->text;
}

/* Effective value of an INT parameter. */
long long yz_cfg_int(const struct yz_config *cfg, enum yz_param_id id)
{
	return cfg_get(cfg, id, YZ_CT_INT, YZ_CT_INT, "yz_cfg_int")->num;
}

/* Effective value of a SIZE parameter, in bytes. */
unsigned long long yz_cfg_size(const struct yz_config *cfg, enum yz_param_id id)
{
	return (unsigned long long)cfg_get(cfg, id, YZ_CT_SIZE, YZ_CT_SIZE, "yz_cfg_size")->num;
}

/* Effective value of a TIME parameter, in milliseconds. */
unsigned long long yz_cfg_time_ms(const struct yz_config *cfg, enum yz_param_id id)
{
	return (unsigned long long)cfg_get(cfg, id, YZ_CT_TIME, YZ_CT_TIME, "yz_cfg_time_ms")->num;
}

/* Effective value of a BOOL parameter. */
bool yz_cfg_bool(const struct yz_config *cfg, enum yz_param_id id)
{
	return cfg_get(cfg, id, YZ_CT_BOOL, YZ_CT_BOOL, "yz_cfg_bool")->num != 0;
}

/* Index of an ENUM parameter's value in its table list. */
unsigned yz_cfg_enum(const struct yz_config *cfg, enum yz_param_id id)
{
	return (unsigned)cfg_get(cfg, id, YZ_CT_ENUM, YZ_CT_ENUM, "yz_cfg_enum")->num;
}

/* Number of words of a LIST parameter. */
size_t yz_cfg_list_count(const struct yz_config *cfg, enum yz_param_id id)
{
	return cfg_get(cfg, id, YZ_CT_LIST, YZ_CT_LIST, "yz_cfg_list_count")->nwords;
}

/* Word i of a LIST parameter. */
const char *yz_cfg_list_item(const struct yz_config *cfg, enum yz_param_id id, size_t i)
{
	const struct cfg_val *v = cfg_get(cfg, id, YZ_CT_LIST, YZ_CT_LIST, "yz_cfg_list_item");
	if (i >= v->nwords)
		yz_panic("config: %s has %zu words, item %zu asked", param_defs[id].name,
			 v->nwords, i);
	return v->words[i];
}

/* Was the parameter given explicitly? */
bool yz_config_is_set(const struct yz_config *cfg, enum yz_param_id id)
{
	if ((unsigned)id >= YZ_P__COUNT)
		yz_panic("config: parameter id %d out of range", (int)id);
	return cfg->vals[id].raw != NULL;
}

/* --- output ------------------------------------------------------------ */

/* qsort order of parameter ids by name. */
static int cfg_cmp_names(const void *a, const void *b)
{
	return strcmp(param_defs[*(const int *)a].name, param_defs[*(const int *)b].name);
}

/* Was id set to something other than its default text? */
static bool cfg_changed(const struct yz_config *cfg, int id)
{
	const char *raw = cfg->vals[id].raw;
	return raw != NULL && strcmp(raw, cfg_default(id, cfg->dev_mode)) != 0;
}

/* Append "name = value\n" for id; -1 if out is full. */
static int cfg_print_one(const struct yz_config *cfg, int id, struct yz_buf *out)
{
	const char *text = cfg->vals[id].text;
	return yz_buf_printf(out, "%s =%s%s\n", param_defs[id].name,
			     text[0] != '\0' ? " " : "", text);
}

/* `yizhan config [-n] [NAME...]` output into out. */
int yz_config_print(const struct yz_config *cfg, struct yz_buf *out, bool only_changed,
		    const char *const *names, const char **error_r)
{
	size_t start = yz_buf_len(out);
	int order[YZ_P__COUNT];
	char show[CFG_SHOW_MAX + 4];
	int ret = 0;

	if (names != NULL) {
		for (size_t i = 0; names[i] != NULL; i++) {
			if (yz_config_param_id(names[i]) < 0) {
				struct cfg_where w = { NULL, 0, cfg_show(names[i], strlen(names[i]), show), false };
				return cfg_fail(&w, error_r, "unknown parameter");
			}
		}
		for (size_t i = 0; names[i] != NULL && ret == 0; i++) {
			int id = yz_config_param_id(names[i]);
			if (!only_changed || cfg_changed(cfg, id))
				ret = cfg_print_one(cfg, id, out);
		}
	} else {
		for (int i = 0; i < YZ_P__COUNT; i++)
			order[i] = i;
		qsort(order, YZ_P__COUNT, sizeof order[0], cfg_cmp_names);
		for (int i = 0; i < YZ_P__COUNT && ret == 0; i++) {
			if (!only_changed || cfg_changed(cfg, order[i]))
				ret = cfg_print_one(cfg, order[i], out);
		}
	}
	if (ret < 0) {
		yz_buf_truncate(out, start);
		return cfg_fail(NULL, error_r, "output is larger than its buffer");
	}
	return 0;
}

/* The introduction of docs/configuration.md. */
static const char cfg_doc_intro[] =
	"# yizhan configuration reference\n"
	"\n"
	"<!-- Generated by `yizhan config --doc` from src/lib/config_params.h; do not edit. -->\n"
	"\n"
	"yizhan reads one file, `yizhan.conf` (by default `/etc/yizhan/yizhan.conf`,\n"
	"or `DIR/yizhan.conf` with `--state-dir DIR`). Its syntax is Postfix's\n"
	"`main.cf`:\n"
	"\n"
	"- Each setting is a line `name = value`. White space around `=` and at the\n"
	"  ends of the value is ignored.\n"
	"- A line that starts with white space continues the previous one; the\n"
	"  pieces are joined with one space.\n"
	"- A line whose first non-blank character is `#` is a comment; `#` later on a\n"
	"  line is part of the value. Blank lines are ignored.\n"
	"- `$name` and `${name}` stand for the value of another parameter, expanded\n"
	"  recursively (at most 16 levels; a loop is an error); `$$` is a literal `$`.\n"
	"  Expansion happens after the whole file is read, so `$state_directory`\n"
	"  means the last value given to `state_directory`, wherever it is set.\n"
	"- A name given twice takes its last value.\n"
	"- An unknown name, a malformed line or a bad value is an error naming\n"
	"  `file:line` and the parameter; a file with an error is refused as a\n"
	"  whole (on `yizhan reload` the running configuration stays).\n"
	"- Limits: the file at most 1 MiB, a line (with its continuations) at most\n"
	"  64 KiB, a value after expansion at most 64 KiB.\n"
	"\n"
	"Value types:\n"
	"\n"
	"- **string**: any text.\n"
	"- **integer**: a decimal number within the bounds shown.\n"
	"- **size**: bytes, or a number with `k`, `m` or `g` (powers of 1024): `50M`.\n"
	"- **time**: a number with `ms`, `s`, `m`, `h`, `d` or `w`: `300s`, `5d`;\n"
	"  a plain number is in the unit shown for the parameter.\n"
	"- **boolean**: `yes`/`no`, `true`/`false`, `on`/`off`, `1`/`0`.\n"
	"- **list**: words separated by commas and/or white space.\n"
	"- **one of**: one of the words shown (case does not matter).\n"
	"\n"
	"**Dev mode** (`yizhan run --dev`, implied when not root) uses the dev\n"
	"default where one is shown: unprivileged ports and loopback-only\n"
	"listeners, so a developer's instance never collides with a real server.\n"
	"\n"
	"`yizhan config` prints the effective value of every parameter (like\n"
	"`postconf`), `yizhan config -n` only those set to something other than\n"
	"their default, `yizhan config NAME...` only those named.\n"
	"`yizhan config check` validates the file and reports the first error.\n";

/* Append text as Markdown inline code (backticks chosen to fit). */
static void cfg_doc_code(struct yz_buf *out, const char *text)
{
	if (text[0] == '\0') {
		(void)yz_buf_append_str(out, "(empty)");
		return;
	}
	const char *fence = strchr(text, '`') != NULL ? "`` " : "`";
	const char *close = strchr(text, '`') != NULL ? " ``" : "`";
	(void)yz_buf_printf(out, "%s%s%s", fence, text, close);
}

/* The Markdown reference: introduction, then every parameter by group. */
void yz_config_doc_markdown(struct yz_buf *out)
{
	static const char *const type_names[] = {
		[YZ_CT_STR] = "string", [YZ_CT_INT] = "integer", [YZ_CT_SIZE] = "size",
		[YZ_CT_TIME] = "time", [YZ_CT_BOOL] = "boolean", [YZ_CT_LIST] = "list",
		[YZ_CT_ENUM] = "one of",
	};
	static const struct { const char *unit, *word; } unit_words[] = {
		{ "ms", "milliseconds" }, { "s", "seconds" }, { "m", "minutes" },
		{ "h", "hours" }, { "d", "days" }, { "w", "weeks" },
	};
	char lo[32], hi[32];

	(void)yz_buf_append_str(out, cfg_doc_intro);
	for (size_t r = 0; r < sizeof param_rows / sizeof param_rows[0]; r++) {
		if (param_rows[r].group != NULL) {
			(void)yz_buf_printf(out, "\n## %s\n", param_rows[r].group);
			continue;
		}
		const struct param_def *d = &param_defs[param_rows[r].id];
		(void)yz_buf_printf(out, "\n### `%s`\n\n", d->name);
		(void)yz_buf_printf(out, "%s", d->doc);
		(void)yz_buf_printf(out, "\n\n- type: %s", type_names[d->type]);
		if (d->type == YZ_CT_ENUM) {
			(void)yz_buf_append_c(out, ' ');
			for (const char *p = d->extra; *p != '\0';) {
				const char *bar = strchr(p, '|');
				size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
				(void)yz_buf_printf(out, "`%.*s`%s", (int)n, p, bar != NULL ? ", " : "");
				p += n + (bar != NULL);
			}
		}
		if (d->type == YZ_CT_TIME) {
			for (size_t u = 0; u < sizeof unit_words / sizeof unit_words[0]; u++)
				if (strcmp(unit_words[u].unit, d->extra) == 0)
					(void)yz_buf_printf(out, " (a plain number is in %s)",
							    unit_words[u].word);
		}
		(void)yz_buf_append_str(out, "\n- default: ");
		cfg_doc_code(out, d->def);
		if (d->dev_def != NULL && strcmp(d->dev_def, d->def) != 0) {
			(void)yz_buf_append_str(out, "; dev mode: ");
			cfg_doc_code(out, d->dev_def);
		}
		if (d->type == YZ_CT_INT || d->type == YZ_CT_SIZE || d->type == YZ_CT_TIME) {
			cfg_fmt_bound(d, d->min, lo, sizeof lo);
			cfg_fmt_bound(d, d->max, hi, sizeof hi);
			(void)yz_buf_printf(out, "\n- range: `%s` to `%s`", lo, hi);
		}
		(void)yz_buf_append_c(out, '\n');
	}
}
