/*
 * header.c: the header section scanner (see header.h).
 * Guarantees: O(1) work per byte, fixed memory, limits checked before data is
 * stored. Must never treat a folded line as a new field or a field as
 * complete before the next line's first byte is seen.
 */
#include "libmail/header.h"

#include <string.h>
#include <strings.h>

enum hdr_state {
	HDR_LINE_START, /* at the first byte of a line */
	HDR_NAME,       /* inside a field name */
	HDR_NAME_WSP,   /* obsolete white space between name and colon */
	HDR_VALUE,      /* inside a value */
	HDR_VALUE_CR,   /* CR seen inside a value */
	HDR_EMPTY_CR,   /* CR at the start of a line */
	HDR_END,
	HDR_INVALID,
};

/* RFC 5322 ftext: printable ASCII except ':'. */
static bool is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* Start scanning. */
void mail_header_scan_init(struct mail_header_scan *s, size_t max_bytes, size_t max_fields)
{
	memset(s, 0, sizeof *s);
	s->max_bytes = max_bytes;
	s->max_fields = max_fields;
	s->state = HDR_LINE_START;
}

/* Fill *f from the pending field and close it. */
static void emit_field(struct mail_header_scan *s, struct mail_header_field *f)
{
	while (s->value_len > 0 &&
	       (s->value[s->value_len - 1] == ' ' || s->value[s->value_len - 1] == '\t'))
		s->value_len--;
	s->name[s->name_len] = '\0';
	s->value[s->value_len] = '\0';
	f->name = s->name;
	f->name_len = s->name_len;
	f->value = s->value;
	f->value_len = s->value_len;
	f->value_truncated = s->truncated;
	s->field_open = false;
	s->fields++;
}

/* Append a value byte, dropping leading white space and overflow. */
static void value_add(struct mail_header_scan *s, char c)
{
	if (s->value_len == 0 && (c == ' ' || c == '\t'))
		return;
	if (s->value_len >= MAIL_HEADER_VALUE_MAX) {
		s->truncated = true;
		return;
	}
	s->value[s->value_len++] = c;
}

/* End the section; body_at is where the body starts. */
static enum mail_header_status end_section(struct mail_header_scan *s, size_t body_at,
					   bool blank)
{
	s->state = HDR_END;
	s->header_len = body_at;
	s->no_blank_line = !blank;
	return MAIL_HEADER_END;
}

/* Enter the INVALID state with a reason. */
static enum mail_header_status fail(struct mail_header_scan *s, const char *why,
				    const char **error_r)
{
	s->state = HDR_INVALID;
	s->error = why;
	*error_r = why;
	return MAIL_HEADER_INVALID;
}

/* Consume input up to the next event. */
enum mail_header_status mail_header_scan_feed(struct mail_header_scan *s, const char *in,
					      size_t len, size_t *consumed_r,
					      struct mail_header_field *field_r,
					      const char **error_r)
{
	size_t i = 0;
	enum mail_header_status ret = MAIL_HEADER_MORE;

	*consumed_r = 0;
	if (s->state == HDR_END)
		return MAIL_HEADER_END;
	if (s->state == HDR_INVALID) {
		*error_r = s->error;
		return MAIL_HEADER_INVALID;
	}
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (s->state == HDR_LINE_START && s->field_open && c != ' ' && c != '\t') {
			/* Not a continuation: the pending field is complete. */
			emit_field(s, field_r);
			ret = MAIL_HEADER_FIELD;
			break;
		}
		if (s->bytes >= s->max_bytes) {
			ret = fail(s, "Header section too large", error_r);
			break;
		}
		s->bytes++;
		i++;
		switch ((enum hdr_state)s->state) {
		case HDR_LINE_START:
			if (s->field_open) {
				/* Folded line: unfolding removes only the CRLF. */
				value_add(s, (char)c);
				s->state = HDR_VALUE;
			} else if (c == '\r') {
				s->state = HDR_EMPTY_CR;
			} else if (c == '\n') {
				ret = end_section(s, s->bytes, true);
			} else if (is_ftext(c)) {
				if (s->fields >= s->max_fields) {
					ret = fail(s, "Too many header fields", error_r);
					break;
				}
				s->name[0] = (char)c;
				s->name_len = 1;
				s->state = HDR_NAME;
			} else {
				ret = end_section(s, s->line_start, false);
			}
			break;
		case HDR_NAME:
			if (is_ftext(c)) {
				if (s->name_len >= MAIL_HEADER_NAME_MAX) {
					ret = fail(s, "Header field name too long", error_r);
					break;
				}
				s->name[s->name_len++] = (char)c;
				break;
			}
			if (c == ' ' || c == '\t') {
				s->state = HDR_NAME_WSP;
				break;
			}
			/* ':' or a non-header line: */
			/* fall through */
		case HDR_NAME_WSP:
			if (c == ':') {
				s->field_open = true;
				s->value_len = 0;
				s->truncated = false;
				s->state = HDR_VALUE;
			} else if (c != ' ' && c != '\t') {
				ret = end_section(s, s->line_start, false);
			}
			break;
		case HDR_VALUE_CR:
			if (c == '\n') {
				s->state = HDR_LINE_START;
				s->line_start = s->bytes;
				break;
			}
			/* A bare CR is data inside the value. */
			value_add(s, '\r');
			s->state = HDR_VALUE;
			/* fall through */
		case HDR_VALUE:
			if (c == '\r') {
				s->state = HDR_VALUE_CR;
			} else if (c == '\n') {
				s->state = HDR_LINE_START;
				s->line_start = s->bytes;
			} else {
				value_add(s, (char)c);
			}
			break;
		case HDR_EMPTY_CR:
			if (c == '\n')
				ret = end_section(s, s->bytes, true);
			else
				ret = end_section(s, s->line_start, false);
			break;
		case HDR_END:
		case HDR_INVALID:
			break;
		}
		if (ret != MAIL_HEADER_MORE)
			break;
	}
	*consumed_r = i;
	return ret;
}

/* The message ended without an empty line. */
enum mail_header_status mail_header_scan_eof(struct mail_header_scan *s,
					     struct mail_header_field *field_r,
					     const char **error_r)
{
	if (s->state == HDR_INVALID) {
		*error_r = s->error;
		return MAIL_HEADER_INVALID;
	}
	if (s->state == HDR_END)
		return MAIL_HEADER_END;
	if (s->field_open) {
		emit_field(s, field_r);
		s->line_start = s->bytes;
		return MAIL_HEADER_FIELD;
	}
	return end_section(s, s->line_start, false);
}

/* Case-insensitive name comparison. */
bool mail_header_field_is(const struct mail_header_field *f, const char *name)
{
	return strlen(name) == f->name_len && strncasecmp(f->name, name, f->name_len) == 0;
}
