/*
 * smtp_data.c: DATA decoder (dot-unstuffing, line-end normalisation, end
 * marker) and the client's dot-stuffing encoder. See smtp_data.h for the
 * smuggling-safe rules.
 *
 * Guarantees: one state per byte boundary, no lookahead beyond the bytes
 * given, so any split of the input gives the same result. Must never: write
 * to out after its cap was exceeded once (the message is being discarded),
 * or consume a byte after the end marker.
 */
#include "libsmtp/smtp_data.h"

#include <string.h>

enum data_state {
	DS_BOL,     /* line start after CRLF (or DATA start): "." is special */
	DS_DOT,     /* "." at DS_BOL */
	DS_DOT_CR,  /* ".\r" at DS_BOL: LF next ends the message */
	DS_LINE,    /* inside a line (or at a line start after a bare LF) */
	DS_CR,      /* CR inside a line, LF not yet seen */
	DS_DONE,
};

/* Start decoding. */
void smtp_data_init(struct smtp_data *d, size_t max_line)
{
	memset(d, 0, sizeof *d);
	d->max_line = max_line;
	d->state = DS_BOL;
}

/* Write n decoded bytes of the current line (or its CRLF when eol). */
static void emit(struct smtp_data *d, struct yz_buf *out, const char *p, size_t n, bool eol)
{
	d->bytes += n;
	if (!eol) {
		d->line_len += n;
		if (!d->line_long && d->line_len + 2 > d->max_line) {
			d->line_long = true;
			d->long_lines++;
		}
	} else {
		d->line_len = 0;
		d->line_long = false;
	}
	if (out != NULL && !d->overflow && yz_buf_append(out, p, n) < 0)
		d->overflow = true;
}

/* End the current line with CRLF. */
static void emit_eol(struct smtp_data *d, struct yz_buf *out)
{
	emit(d, out, "\r\n", 2, true);
}

/* Consume input. */
int smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct yz_buf *out,
		   size_t *consumed_r, enum smtp_data_status *status_r)
{
	size_t i = 0;

	while (i < len && d->state != DS_DONE) {
		char c = in[i];
		switch ((enum data_state)d->state) {
		case DS_BOL:
			if (c == '.') {
				d->state = DS_DOT;
				i++;
			} else {
				d->state = DS_LINE;
			}
			break;
		case DS_DOT:
			if (c == '\r') {
				d->state = DS_DOT_CR;
				i++;
			} else if (c == '\n') {
				/* ".\n" is not the end: a literal "." line. */
				emit(d, out, ".", 1, false);
				emit_eol(d, out);
				d->bare_lf++;
				d->state = DS_LINE;
				i++;
			} else {
				/* Dot-stuffed line: the first dot goes. */
				d->state = DS_LINE;
			}
			break;
		case DS_DOT_CR:
			if (c == '\n') {
				d->state = DS_DONE;
				i++;
				break;
			}
			/* ".\r" + not LF: a literal dot and a bare CR. */
			emit(d, out, ".", 1, false);
			emit(d, out, "\r", 1, false);
			d->bare_cr++;
			if (c == '\r') {
				/* This CR may start a CRLF. */
				d->state = DS_CR;
				i++;
			} else {
				d->state = DS_LINE;
			}
			break;
		case DS_LINE: {
			size_t s = i;
			while (i < len && in[i] != '\r' && in[i] != '\n')
				i++;
			if (i > s)
				emit(d, out, in + s, i - s, false);
			if (i == len)
				break;
			if (in[i] == '\r') {
				d->state = DS_CR;
			} else {
				/* Bare LF: a line end, written as CRLF, but
				 * the next line is literal (see header). */
				emit_eol(d, out);
				d->bare_lf++;
			}
			i++;
			break;
		}
		case DS_CR:
			if (c == '\n') {
				emit_eol(d, out);
				d->state = DS_BOL;
				i++;
			} else {
				/* A bare CR is data. */
				emit(d, out, "\r", 1, false);
				d->bare_cr++;
				if (c == '\r')
					i++; /* stay in DS_CR for this one */
				else
					d->state = DS_LINE;
			}
			break;
		case DS_DONE:
			break;
		}
	}
	*consumed_r = i;
	*status_r = d->state == DS_DONE ? SMTP_DATA_DONE : SMTP_DATA_MORE;
	return out != NULL && d->overflow ? -1 : 0;
}

/* Decoded bytes so far. */
unsigned long long smtp_data_bytes(const struct smtp_data *d)
{
	return d->bytes;
}

/* Bare LFs seen. */
unsigned long smtp_data_bare_lf(const struct smtp_data *d)
{
	return d->bare_lf;
}

/* Bare CRs seen. */
unsigned long smtp_data_bare_cr(const struct smtp_data *d)
{
	return d->bare_cr;
}

/* Lines over max_line. */
unsigned long smtp_data_long_lines(const struct smtp_data *d)
{
	return d->long_lines;
}

/* Start encoding. */
void smtp_stuff_init(struct smtp_stuff *st)
{
	st->mid_line = false;
	st->cr_pending = false;
}

/* Dot-stuff and normalise line ends. */
int smtp_data_stuff(const char *in, size_t len, struct smtp_stuff *st, struct yz_buf *out)
{
	size_t i = 0;
	while (i < len) {
		char c = in[i];
		if (st->cr_pending) {
			/* CR LF, or a bare CR that becomes CRLF; either way the
			 * line ends here and an LF right after belongs to it. */
			st->cr_pending = false;
			st->mid_line = false;
			if (yz_buf_append(out, "\r\n", 2) < 0)
				return -1;
			if (c == '\n')
				i++;
			continue;
		}
		if (c == '\r') {
			st->cr_pending = true;
			i++;
			continue;
		}
		if (c == '\n') {
			if (yz_buf_append(out, "\r\n", 2) < 0)
				return -1;
			st->mid_line = false;
			i++;
			continue;
		}
		if (!st->mid_line && c == '.' && yz_buf_append_c(out, '.') < 0)
			return -1;
		size_t s = i;
		while (i < len && in[i] != '\r' && in[i] != '\n')
			i++;
		if (yz_buf_append(out, in + s, i - s) < 0)
			return -1;
		st->mid_line = true;
	}
	return 0;
}

/* Close the last line and append the end marker. */
int smtp_data_stuff_end(struct smtp_stuff *st, struct yz_buf *out)
{
	if ((st->cr_pending || st->mid_line) && yz_buf_append(out, "\r\n", 2) < 0)
		return -1;
	st->cr_pending = false;
	st->mid_line = false;
	return yz_buf_append(out, ".\r\n", 3);
}
