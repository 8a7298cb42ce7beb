/*
 * pop3_parse.c: the POP3 command parser (see pop3_parse.h).
 *
 * Guarantees: pure and bounded; every byte read is inside buf[0..len) and
 * inside the first max_line bytes; the result's slices point into buf.
 * Never: allocate, print, or accept a command the table does not list.
 */
#include "pop3d/pop3_parse.h"

#include <stdbool.h>
#include <string.h>

/* What a verb takes after it. */
enum pop3_args {
	ARGS_NONE,    /* nothing (trailing blanks tolerated) */
	ARGS_NAME,    /* one word, required (USER) */
	ARGS_SECRET,  /* the rest of the line, required (PASS) */
	ARGS_OPTNUM,  /* an optional message number (LIST, UIDL) */
	ARGS_NUM,     /* one message number (RETR, DELE) */
	ARGS_NUM2,    /* message number and line count (TOP) */
	ARGS_AUTH,    /* [mechanism [initial-response]] */
};

static const struct {
	const char *name;
	enum pop3_args args;
} verbs[POP3_VERB__COUNT] = {
	[POP3_USER] = { "USER", ARGS_NAME },
	[POP3_PASS] = { "PASS", ARGS_SECRET },
	[POP3_STAT] = { "STAT", ARGS_NONE },
	[POP3_LIST] = { "LIST", ARGS_OPTNUM },
	[POP3_RETR] = { "RETR", ARGS_NUM },
	[POP3_DELE] = { "DELE", ARGS_NUM },
	[POP3_NOOP] = { "NOOP", ARGS_NONE },
	[POP3_RSET] = { "RSET", ARGS_NONE },
	[POP3_QUIT] = { "QUIT", ARGS_NONE },
	[POP3_TOP] = { "TOP", ARGS_NUM2 },
	[POP3_UIDL] = { "UIDL", ARGS_OPTNUM },
	[POP3_CAPA] = { "CAPA", ARGS_NONE },
	[POP3_STLS] = { "STLS", ARGS_NONE },
	[POP3_AUTH] = { "AUTH", ARGS_AUTH },
};

/* The verb's upper-case name. */
const char *pop3_verb_name(enum pop3_verb verb)
{
	return (unsigned)verb < POP3_VERB__COUNT ? verbs[verb].name : "?";
}

/* Strip the LF and a CR before it. */
struct yz_slice pop3_line_strip(struct yz_slice line)
{
	if (line.len > 0 && line.p[line.len - 1] == '\n')
		line.len--;
	if (line.len > 0 && line.p[line.len - 1] == '\r')
		line.len--;
	return line;
}

/* Is c a blank separating arguments? */
static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Skip blanks from *pos; true if at least one was skipped. */
static bool skip_blanks(const char *p, size_t len, size_t *pos)
{
	size_t start = *pos;
	while (*pos < len && is_blank(p[*pos]))
		(*pos)++;
	return *pos > start;
}

/* The word at *pos (up to a blank or the end); advances *pos. */
static struct yz_slice take_word(const char *p, size_t len, size_t *pos)
{
	size_t start = *pos;
	while (*pos < len && !is_blank(p[*pos]))
		(*pos)++;
	return (struct yz_slice){ p + start, *pos - start };
}

/* A decimal number without sign, at most POP3_NUM_DIGITS_MAX digits, at
 * most POP3_NUM_MAX. 0 or -1. */
static int parse_num(struct yz_slice w, uint32_t *v_r)
{
	if (w.len == 0 || w.len > POP3_NUM_DIGITS_MAX)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < w.len; i++) {
		if (w.p[i] < '0' || w.p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(w.p[i] - '0');
	}
	if (v > POP3_NUM_MAX)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

/* Is the mechanism name made of RFC 4422 characters? */
static bool mech_valid(struct yz_slice w)
{
	if (w.len == 0 || w.len > POP3_MECH_MAX)
		return false;
	for (size_t i = 0; i < w.len; i++) {
		char c = w.p[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

/* Parse the arguments after the verb: p[0..len) is the rest of the line
 * starting at the first byte after the verb. 0 or -1 with *error_r. */
static int parse_args(enum pop3_args kind, const char *p, size_t len,
		      struct pop3_command *cmd, const char **error_r)
{
	size_t pos = 0;
	bool sep = skip_blanks(p, len, &pos);
	bool have = pos < len;

	if (have && !sep) {
		*error_r = "Unknown command";
		return -1;
	}
	switch (kind) {
	case ARGS_NONE:
		if (have) {
			*error_r = "Too many arguments";
			return -1;
		}
		return 0;
	case ARGS_NAME: {
		if (!have) {
			*error_r = "Missing argument";
			return -1;
		}
		/* The name is the rest of the line without trailing blanks. */
		size_t end = len;
		while (end > pos && is_blank(p[end - 1]))
			end--;
		if (end - pos > POP3_NAME_MAX) {
			*error_r = "Argument too long";
			return -1;
		}
		for (size_t i = pos; i < end; i++) {
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
				*error_r = "Invalid characters in argument";
				return -1;
			}
		}
		cmd->arg = (struct yz_slice){ p + pos, end - pos };
		return 0;
	}
	case ARGS_SECRET:
		/* Exactly one SP separates; the rest, blanks included, is the
		 * password (RFC 1939 allows spaces in it in practice). */
		if (len < 2 || p[0] != ' ') {
			*error_r = "Missing argument";
			return -1;
		}
		if (len - 1 > POP3_SECRET_MAX) {
			*error_r = "Argument too long";
			return -1;
		}
		cmd->arg = (struct yz_slice){ p + 1, len - 1 };
		return 0;
	case ARGS_OPTNUM:
	case ARGS_NUM:
	case ARGS_NUM2: {
		unsigned want_min = kind == ARGS_OPTNUM ? 0 : kind == ARGS_NUM ? 1 : 2;
		unsigned want_max = kind == ARGS_NUM2 ? 2 : 1;
		while (pos < len) {
			if (cmd->nnums == want_max) {
				*error_r = "Too many arguments";
				return -1;
			}
			struct yz_slice w = take_word(p, len, &pos);
			if (parse_num(w, &cmd->num[cmd->nnums]) < 0) {
				*error_r = "Invalid number";
				return -1;
			}
			cmd->nnums++;
			skip_blanks(p, len, &pos);
		}
		if (cmd->nnums < want_min) {
			*error_r = "Missing argument";
			return -1;
		}
		if (cmd->nnums > 0 && cmd->num[0] == 0) {
			*error_r = "Invalid message number";
			return -1;
		}
		return 0;
	}
	case ARGS_AUTH: {
		if (!have)
			return 0;
		struct yz_slice mech = take_word(p, len, &pos);
		if (!mech_valid(mech)) {
			*error_r = "Invalid mechanism name";
			return -1;
		}
		cmd->arg = mech;
		skip_blanks(p, len, &pos);
		if (pos < len) {
			cmd->arg2 = take_word(p, len, &pos);
			skip_blanks(p, len, &pos);
			if (pos < len) {
				*error_r = "Too many arguments";
				return -1;
			}
		}
		return 0;
	}
	}
	*error_r = "Unknown command";
	return -1;
}

/* Parse one command line at the start of buf. */
enum pop3_parse_status pop3_command_parse(const char *buf, size_t len, size_t max_line,
					  struct pop3_command *cmd_r, size_t *consumed_r,
					  const char **error_r)
{
	memset(cmd_r, 0, sizeof *cmd_r);
	cmd_r->arg = (struct yz_slice){ buf, 0 };
	cmd_r->arg2 = (struct yz_slice){ buf, 0 };
	*consumed_r = 0;
	*error_r = NULL;

	size_t scan = len < max_line ? len : max_line;
	const char *lf = scan > 0 ? memchr(buf, '\n', scan) : NULL;
	if (lf == NULL)
		return len > max_line || (len == max_line && max_line > 0) ?
			       POP3_PARSE_TOOLONG : POP3_PARSE_AGAIN;
	size_t linelen = (size_t)(lf - buf) + 1;
	*consumed_r = linelen;

	struct yz_slice line = pop3_line_strip((struct yz_slice){ buf, linelen });
	if (memchr(line.p, '\0', line.len) != NULL || memchr(line.p, '\r', line.len) != NULL) {
		*error_r = "Invalid characters in command";
		return POP3_PARSE_INVALID;
	}
	size_t vlen = 0;
	while (vlen < line.len && !is_blank(line.p[vlen]))
		vlen++;
	if (vlen == 0) {
		*error_r = "Empty command";
		return POP3_PARSE_INVALID;
	}
	if (vlen <= POP3_VERB_MAX) {
		for (unsigned v = 0; v < POP3_VERB__COUNT; v++) {
			if (strlen(verbs[v].name) == vlen &&
			    yz_slice_casecmp_str((struct yz_slice){ line.p, vlen }, verbs[v].name)) {
				cmd_r->verb = (enum pop3_verb)v;
				if (parse_args(verbs[v].args, line.p + vlen, line.len - vlen, cmd_r,
					       error_r) < 0)
					return POP3_PARSE_INVALID;
				return POP3_PARSE_OK;
			}
		}
	}
	*error_r = "Unknown command";
	return POP3_PARSE_INVALID;
}
