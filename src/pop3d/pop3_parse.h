/*
 * pop3_parse.h: the POP3 command parser (RFC 1939, RFC 2449 CAPA, RFC 2595
 * STLS, RFC 5034 AUTH). Pure: no I/O, no allocation, no global state.
 *
 * Guarantees: never reads outside the len bytes it is given; every length
 * and number is bounded by a named constant or by the caller's max_line;
 * the verb is case-insensitive; slices in the result point into the caller's
 * bytes. A line ends at the first LF; a CR just before it is dropped (bare
 * LF is accepted, as most servers do). A NUL byte anywhere makes the line
 * INVALID.
 *
 * Never: accept a number with a sign, a leading blank or more than
 * POP3_NUM_DIGITS_MAX digits; accept a line longer than max_line bytes
 * (LF included).
 */
#ifndef YZ_POP3_PARSE_H
#define YZ_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define POP3_VERB_MAX 4            /* every POP3 keyword has 3-4 characters */
#define POP3_NUM_DIGITS_MAX 10     /* enough for UINT32_MAX */
#define POP3_NUM_MAX UINT32_MAX    /* message numbers and TOP line counts */
#define POP3_NAME_MAX 255          /* USER argument, AUTH mechanism name */
#define POP3_SECRET_MAX 1024       /* PASS argument (the directory's bound) */
#define POP3_MECH_MAX 20           /* SASL mechanism names (RFC 4422: 1-20) */

enum pop3_verb {
	POP3_USER,
	POP3_PASS,
	POP3_STAT,
	POP3_LIST,
	POP3_RETR,
	POP3_DELE,
	POP3_NOOP,
	POP3_RSET,
	POP3_QUIT,
	POP3_TOP,
	POP3_UIDL,
	POP3_CAPA,
	POP3_STLS,
	POP3_AUTH,
	POP3_VERB__COUNT
};

enum pop3_parse_status {
	POP3_PARSE_OK,      /* a whole, valid command line */
	POP3_PARSE_AGAIN,   /* no LF yet and at most max_line bytes: need more */
	POP3_PARSE_INVALID, /* a whole line that is not a valid command */
	POP3_PARSE_TOOLONG, /* more than max_line bytes without LF */
};

struct pop3_command {
	enum pop3_verb verb;
	/* USER: name; PASS: password (the rest of the line, spaces kept);
	 * AUTH: mechanism (may be empty: list them); else empty. */
	struct yz_slice arg;
	/* AUTH: initial response ("=" means an empty one); empty if none. */
	struct yz_slice arg2;
	unsigned nnums;      /* how many numbers were given (0..2) */
	uint32_t num[2];     /* LIST/UIDL [n], RETR/DELE n, TOP n lines */
};

/*
 * Parse the command line at the start of buf. OK and INVALID: *consumed_r
 * is the length of the line including its LF; INVALID sets *error_r to a
 * short sentence fit for "-ERR <sentence>". AGAIN and TOOLONG: *consumed_r
 * is 0 (the caller must discard through the next LF on TOOLONG).
 */
enum pop3_parse_status pop3_command_parse(const char *buf, size_t len, size_t max_line,
					  struct pop3_command *cmd_r, size_t *consumed_r,
					  const char **error_r);

/* The text of a line without its LF and the CR before it (for SASL
 * continuation lines): the slice of line.p. */
struct yz_slice pop3_line_strip(struct yz_slice line);

/* The verb's name in upper case ("USER", ...). */
const char *pop3_verb_name(enum pop3_verb verb);

#endif
