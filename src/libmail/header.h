/*
 * header.h: streaming scanner over the header section of a message (RFC
 * 5322 §2.2, §3.6) as smtpd receives it, e.g. to count Received: fields (hop
 * count) and to see whether Message-ID: and Date: exist.
 *
 * Feed the message bytes in chunks of any size (CRLF or bare LF line ends);
 * the scanner reports each complete field (name, and its unfolded value up to
 * MAIL_HEADER_VALUE_MAX bytes) once the next line shows that it is not
 * folded, and the end of the header section: the empty line, or (as Postfix
 * does) the first line that is not a header field, which then belongs to the
 * body. Guarantees: bounded by max_bytes and max_fields given at init;
 * resumable at any byte boundary (byte-at-a-time gives the same events).
 * Must never: allocate, read past len, or report a field twice.
 */
#ifndef YZ_LIBMAIL_HEADER_H
#define YZ_LIBMAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* Longest field name kept (RFC 5322 lets a name fill a 998-byte line; real
 * names are short, a longer one is an attack or garbage). */
#define MAIL_HEADER_NAME_MAX 128
/* Bytes of unfolded value kept; the rest is counted but dropped. */
#define MAIL_HEADER_VALUE_MAX 998

enum mail_header_status {
	MAIL_HEADER_MORE,    /* all input consumed, need more */
	MAIL_HEADER_FIELD,   /* *field_r holds a complete field */
	MAIL_HEADER_END,     /* header section over; see header_len */
	MAIL_HEADER_INVALID, /* a limit was passed; *error_r says which */
};

struct mail_header_field {
	const char *name; /* NUL-terminated, as written (compare case-insensitively) */
	size_t name_len;
	const char *value; /* unfolded, leading and trailing white space removed */
	size_t value_len;
	bool value_truncated; /* longer than MAIL_HEADER_VALUE_MAX */
};

struct mail_header_scan {
	size_t max_bytes, max_fields;
	size_t bytes;      /* bytes of header section consumed */
	size_t fields;     /* complete fields reported */
	size_t line_start; /* offset of the current line */
	size_t header_len; /* after END: offset where the body starts */
	bool no_blank_line; /* after END: no empty line ended the section */
	bool field_open;   /* a field is being collected */
	int state;
	const char *error;
	size_t name_len, value_len;
	bool truncated;
	char name[MAIL_HEADER_NAME_MAX + 1];
	char value[MAIL_HEADER_VALUE_MAX + 1];
};

/* Start scanning a message; limits on header bytes and field count. */
void mail_header_scan_init(struct mail_header_scan *s, size_t max_bytes, size_t max_fields);
/* Consume input up to the next event. *consumed_r is the number of bytes of
 * in that were used; call again with the rest. After END the scanner uses no
 * more input (consumed 0); after INVALID it stays INVALID. The field is
 * valid until the next call. */
enum mail_header_status mail_header_scan_feed(struct mail_header_scan *s, const char *in,
					      size_t len, size_t *consumed_r,
					      struct mail_header_field *field_r,
					      const char **error_r);
/* The message ended: report a pending field (FIELD), then END. */
enum mail_header_status mail_header_scan_eof(struct mail_header_scan *s,
					     struct mail_header_field *field_r,
					     const char **error_r);
/* true if the field's name is name (ASCII case-insensitive). */
bool mail_header_field_is(const struct mail_header_field *f, const char *name);

#endif
