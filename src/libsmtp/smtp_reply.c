/*
 * smtp_reply.c: reply formatter and resumable reply parser (see
 * smtp_reply.h).
 *
 * Guarantees: formatted lines are bounded and free of injected control
 * bytes; the parser holds at most one line plus the reply text, each under
 * the limits given at init. Must never: accept a reply code outside 200-559,
 * mix codes within one reply, or keep reading a line past max_line.
 */
#include "libsmtp/smtp_reply.h"

#include <stdio.h>
#include <string.h>

/* Room for the printf form of a reply before it is split into lines. */
#define SMTP_REPLY_PRINTF_MAX (SMTP_REPLY_LINE_MAX * 8)

/* true if code has the RFC 5321 §4.2 shape [2-5][0-5][0-9]. */
static bool code_valid(int code)
{
	return code >= 200 && code <= 559 && (code / 10) % 10 <= 5;
}

/* Length of a well-formed enhanced code at the start of s (which has len
 * bytes), or 0. class must match cls ('2', '4' or '5'). */
static size_t enh_span(const char *s, size_t len, char cls)
{
	size_t i = 0;
	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t d = 0;
		while (i < len && d < 4 && s[i] >= '0' && s[i] <= '9') {
			i++;
			d++;
		}
		if (d == 0 || d > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	return i;
}

/* Validate an enhanced code against a reply code. */
bool smtp_enh_valid(int code, const char *enh)
{
	if (!code_valid(code) || enh == NULL)
		return false;
	size_t len = strnlen(enh, SMTP_ENH_MAX);
	if (len >= SMTP_ENH_MAX)
		return false;
	return enh_span(enh, len, (char)('0' + code / 100)) == len;
}

/* Append one reply line; text is sanitised and cut to the line limit. */
static int format_line(struct yz_buf *out, int code, const char *enh, bool last,
		       const char *text, size_t len)
{
	char line[SMTP_REPLY_LINE_MAX];
	/* No trailing space after the enhanced code of an empty line. */
	int n = snprintf(line, sizeof line, "%03d%c%s%s", code, last ? ' ' : '-',
			 enh != NULL ? enh : "", enh != NULL && len > 0 ? " " : "");
	if (n < 0 || (size_t)n >= sizeof line)
		return -1;
	size_t pos = (size_t)n;
	for (size_t i = 0; i < len && pos < SMTP_REPLY_LINE_MAX - 2; i++) {
		unsigned char c = (unsigned char)text[i];
		line[pos++] = (c < 32 && c != '\t') || c == 127 ? '?' : (char)c;
	}
	line[pos++] = '\r';
	line[pos++] = '\n';
	return yz_buf_append(out, line, pos);
}

/* Append a reply given as an array of lines. */
int smtp_reply_format_lines(struct yz_buf *out, int code, const char *enh,
			    const char *const *lines, size_t n)
{
	size_t mark = yz_buf_len(out);
	if (!code_valid(code) || (enh != NULL && !smtp_enh_valid(code, enh)))
		return -1;
	if (n > SMTP_REPLY_LINES_MAX)
		n = SMTP_REPLY_LINES_MAX;
	if (n == 0)
		return format_line(out, code, enh, true, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (format_line(out, code, enh, i + 1 == n, lines[i], strlen(lines[i])) < 0) {
			yz_buf_truncate(out, mark);
			return -1;
		}
	}
	return 0;
}

/* Append a reply whose lines are separated by '\n'. */
int smtp_reply_format(struct yz_buf *out, int code, const char *enh, const char *text)
{
	size_t mark = yz_buf_len(out), nlines = 0, len = strlen(text);
	if (!code_valid(code) || (enh != NULL && !smtp_enh_valid(code, enh)))
		return -1;
	/* A trailing '\n' does not open an empty last line. */
	if (len > 0 && text[len - 1] == '\n')
		len--;
	size_t total = 1;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n')
			total++;
	if (total > SMTP_REPLY_LINES_MAX)
		total = SMTP_REPLY_LINES_MAX;
	const char *s = text, *end = text + len;
	while (nlines < total) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t l = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);
		nlines++;
		if (format_line(out, code, enh, nlines == total, s, l) < 0) {
			yz_buf_truncate(out, mark);
			return -1;
		}
		s = nl != NULL ? nl + 1 : end;
	}
	return 0;
}

/* printf-style reply. */
int smtp_reply_printf(struct yz_buf *out, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_PRINTF_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	/* A truncated text is still a valid reply; the limit is documented. */
	return smtp_reply_format(out, code, enh, text);
}

/* Set up a parser. */
void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line, size_t max_lines,
			    size_t max_text)
{
	memset(p, 0, sizeof *p);
	p->max_line = max_line;
	p->max_lines = max_lines;
	yz_buf_init(&p->line, max_line);
	yz_buf_init(&p->reply.text, max_text);
}

/* Free a parser's buffers. */
void smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	yz_buf_free(&p->line);
	yz_buf_free(&p->reply.text);
}

/* Mark the parser failed. */
static enum smtp_reply_status parse_fail(struct smtp_reply_parser *p, const char *why,
					 const char **error_r)
{
	p->failed = true;
	p->error = why;
	*error_r = why;
	return SMTP_REPLY_INVALID;
}

/* Parse one complete line (without its line end). 1 = last line of the
 * reply, 0 = more lines follow, -1 = malformed. */
static int parse_line(struct smtp_reply_parser *p, const char *s, size_t len,
		      const char **error_r)
{
	struct smtp_reply *r = &p->reply;
	if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || s[2] < '0' ||
	    s[2] > '9') {
		*error_r = "Malformed reply code";
		return -1;
	}
	int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (r->lines > 0 && code != r->code) {
		*error_r = "Reply code changed within a multi-line reply";
		return -1;
	}
	bool last;
	if (len == 3)
		last = true;
	else if (s[3] == ' ')
		last = true;
	else if (s[3] == '-')
		last = false;
	else {
		*error_r = "Malformed reply separator";
		return -1;
	}
	const char *t = len > 3 ? s + 4 : s + len;
	size_t tl = len > 3 ? len - 4 : 0;
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)t[i];
		if ((c < 32 && c != '\t') || c == 127) {
			*error_r = "Control character in reply";
			return -1;
		}
	}
	if (r->lines >= p->max_lines) {
		*error_r = "Too many reply lines";
		return -1;
	}
	size_t el = enh_span(t, tl, s[0]);
	if (el > 0 && (el == tl || t[el] == ' ')) {
		if (r->lines == 0 && el < SMTP_ENH_MAX) {
			memcpy(r->enh, t, el);
			r->enh[el] = '\0';
			r->has_enh = true;
		}
		if (r->has_enh && strlen(r->enh) == el && memcmp(r->enh, t, el) == 0) {
			t += el;
			tl -= el;
			if (tl > 0) {
				t++;
				tl--;
			}
		}
	}
	if ((r->lines > 0 && yz_buf_append_c(&r->text, '\n') < 0) ||
	    yz_buf_append(&r->text, t, tl) < 0) {
		*error_r = "Reply text too long";
		return -1;
	}
	r->code = code;
	r->lines++;
	return last ? 1 : 0;
}

/* Consume input until one complete reply. */
enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const char *in, size_t len,
					size_t *consumed_r, const struct smtp_reply **reply_r,
					const char **error_r)
{
	size_t i = 0;
	*consumed_r = 0;
	*reply_r = NULL;
	if (p->failed) {
		*error_r = p->error;
		return SMTP_REPLY_INVALID;
	}
	if (p->done) {
		yz_buf_reset(&p->reply.text);
		p->reply.code = 0;
		p->reply.lines = 0;
		p->reply.has_enh = false;
		p->reply.enh[0] = '\0';
		p->done = false;
	}
	while (i < len) {
		const char *nl = memchr(in + i, '\n', len - i);
		size_t take = nl != NULL ? (size_t)(nl - (in + i)) + 1 : len - i;
		if (yz_buf_len(&p->line) + take > p->max_line ||
		    yz_buf_append(&p->line, in + i, take) < 0)
			return parse_fail(p, "Reply line too long", error_r);
		i += take;
		*consumed_r = i;
		if (nl == NULL)
			return SMTP_REPLY_AGAIN;
		const char *s = yz_buf_data(&p->line);
		size_t l = yz_buf_len(&p->line) - 1;
		if (l > 0 && s[l - 1] == '\r')
			l--;
		const char *why;
		int r = parse_line(p, s, l, &why);
		yz_buf_reset(&p->line);
		if (r < 0)
			return parse_fail(p, why, error_r);
		if (r == 1) {
			p->done = true;
			*reply_r = &p->reply;
			return SMTP_REPLY_OK;
		}
	}
	return SMTP_REPLY_AGAIN;
}
