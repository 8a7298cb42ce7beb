/*
 * smtp_reply.h: SMTP replies (RFC 5321 §4.2) with enhanced status codes
 * (RFC 2034, RFC 3463): a bounded formatter for the server and a resumable
 * parser for the client.
 *
 * Guarantees: the formatter never writes a CR, LF or other control byte that
 * came from its text (so an address echoed in a reply cannot inject a line),
 * keeps every line within SMTP_REPLY_LINE_MAX and checks that the enhanced
 * code's class matches the reply code. The parser is resumable at any byte
 * boundary, bounded in line length, line count and text size, and insists on
 * one reply code across the lines of a reply. Must never: read past len or
 * accept a reply whose continuation lines disagree on the code.
 */
#ifndef YZ_LIBSMTP_SMTP_REPLY_H
#define YZ_LIBSMTP_SMTP_REPLY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
#define SMTP_REPLY_LINE_MAX 512
/* Lines of one reply we format or accept by default (EHLO lists ~20). */
#define SMTP_REPLY_LINES_MAX 100
/* Longest enhanced status code "5.123.123" plus NUL. */
#define SMTP_ENH_MAX 10

/* true if enh is a well-formed enhanced code "c.sss.ddd" whose class c
 * matches the first digit of code (2, 4 or 5). */
bool smtp_enh_valid(int code, const char *enh);
/* Append a reply: text lines are separated by '\n' in text; each becomes
 * "code-enh line" / "code enh line" + CRLF. enh may be NULL. Control bytes
 * in text become '?', over-long lines are cut, lines past
 * SMTP_REPLY_LINES_MAX are dropped. -1 if code/enh are invalid or out is
 * full (out then unchanged). */
int smtp_reply_format(struct yz_buf *out, int code, const char *enh, const char *text);
/* The same with the lines given as an array. */
int smtp_reply_format_lines(struct yz_buf *out, int code, const char *enh,
			    const char *const *lines, size_t n);
/* printf-style single- or multi-line ('\n') reply. */
int smtp_reply_printf(struct yz_buf *out, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

enum smtp_reply_status { SMTP_REPLY_OK, SMTP_REPLY_AGAIN, SMTP_REPLY_INVALID };

struct smtp_reply {
	int code;              /* 200..599 */
	bool has_enh;
	char enh[SMTP_ENH_MAX]; /* from the first line, "" if none */
	struct yz_buf text;    /* lines (enhanced code removed) joined by '\n' */
	size_t lines;
};

struct smtp_reply_parser {
	size_t max_line;  /* incl. CRLF */
	size_t max_lines;
	struct yz_buf line;      /* the current incomplete line */
	struct smtp_reply reply; /* valid after OK until the next call */
	bool done;               /* reply complete: reset on next call */
	bool failed;
	const char *error;
};

/* Set up a parser; max_text bounds the joined text. */
void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line, size_t max_lines,
			    size_t max_text);
void smtp_reply_parser_free(struct smtp_reply_parser *p);
/* Consume input until one complete reply (OK: *reply_r points into the
 * parser, *consumed_r bytes used, the rest is the next reply), or all input
 * is used (AGAIN), or the input is malformed (INVALID, *error_r; the
 * connection should be dropped: the parser stays INVALID). Line ends are CRLF;
 * a bare LF is accepted as one (replies carry no data). */
enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const char *in, size_t len,
					size_t *consumed_r, const struct smtp_reply **reply_r,
					const char **error_r);

#endif
