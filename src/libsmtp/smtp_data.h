/*
 * smtp_data.h: the DATA phase byte stream (RFC 5321 §4.1.1.4, §4.5.2):
 * decoder for the server, dot-stuffing encoder for the client.
 *
 * Decoder guarantees (SMTP smuggling, CVE-2023-51764 family): ONLY
 * CR LF "." CR LF ends the message, where the start of DATA counts as after
 * CR LF. "\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r" + anything but LF
 * are data. A bare LF is taken as a line end and written as CRLF (Postfix's
 * "normalize"); a bare CR not followed by LF is kept as data. A leading dot
 * is removed from a line that starts after CR LF and has more on it
 * (dot-unstuffing); a line that starts after a bare LF is taken literally, so
 * the decoder's notion of "line start" is the same for unstuffing and for
 * the end marker. Streaming and resumable at any byte boundary: feeding byte
 * by byte gives the same output and counters as feeding all at once.
 * Must never: end the message on anything but CRLF.CRLF, or use input after
 * the end marker (it belongs to the next pipelined command).
 */
#ifndef YZ_LIBSMTP_SMTP_DATA_H
#define YZ_LIBSMTP_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with its CRLF. */
#define SMTP_DATA_LINE_MAX 1000

struct smtp_data {
	size_t max_line;          /* text line limit incl. CRLF */
	int state;                /* enum data_state in smtp_data.c */
	size_t line_len;          /* decoded bytes of the current line so far */
	bool line_long;           /* current line already counted as long */
	unsigned long long bytes; /* decoded bytes (written or skipped) */
	unsigned long bare_lf;
	unsigned long bare_cr;
	unsigned long long_lines;
	bool overflow;            /* out's cap was reached at least once */
};

enum smtp_data_status { SMTP_DATA_MORE, SMTP_DATA_DONE };

/* Start decoding a message (just after the 354 reply). */
void smtp_data_init(struct smtp_data *d, size_t max_line);
/* Consume input, appending the decoded message to out (NULL: decode, count
 * and discard). Returns 0 with *status_r MORE (all of in consumed) or DONE
 * (*consumed_r bytes used, the end marker included but not written; the rest
 * is the next command). -1 if out's cap was exceeded: the bytes that did not
 * fit are dropped, *consumed_r is set as for 0, and the caller answers 552
 * after feeding the rest with out == NULL. */
int smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct yz_buf *out,
		   size_t *consumed_r, enum smtp_data_status *status_r);
/* Decoded bytes so far. */
unsigned long long smtp_data_bytes(const struct smtp_data *d);
/* Bare LFs seen (each written as CRLF). */
unsigned long smtp_data_bare_lf(const struct smtp_data *d);
/* Bare CRs seen (kept as data). */
unsigned long smtp_data_bare_cr(const struct smtp_data *d);
/* Lines longer than max_line (incl. CRLF). */
unsigned long smtp_data_long_lines(const struct smtp_data *d);

/* Encoder state for the outbound client; zero it with smtp_stuff_init(). */
struct smtp_stuff {
	bool mid_line;   /* some bytes of the current line have been written */
	bool cr_pending; /* a CR was read and not yet written */
};

/* Start encoding a message. */
void smtp_stuff_init(struct smtp_stuff *st);
/* Dot-stuff in and guarantee CRLF line ends (bare LF and bare CR both become
 * CRLF, so no receiver can see a line end we did not mean), appending to
 * out. Chunks may split anywhere, CRLF included. -1 if out's cap is reached
 * (out then holds a prefix; the message must be abandoned). */
int smtp_data_stuff(const char *in, size_t len, struct smtp_stuff *st, struct yz_buf *out);
/* Finish: close an unterminated last line with CRLF and append ".\r\n". */
int smtp_data_stuff_end(struct smtp_stuff *st, struct yz_buf *out);

#endif
