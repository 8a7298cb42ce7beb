/*
 * fuzz_smtp_reply.c: libFuzzer target for the SMTP reply parser and
 * formatter (libsmtp/smtp_reply.h).
 *
 * The input is a server's byte stream. Parsing it one-shot and
 * byte-at-a-time must give the same replies (code, enhanced code, text) and
 * the same final status; every reply must have a valid code; formatting a
 * parsed reply and parsing the result must give it back when its text has
 * no control bytes. Aborts on any disagreement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libsmtp/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_TEXT 8192

/* A running checksum of the replies seen. */
struct digest {
	unsigned long h;
	size_t n;
	enum smtp_reply_status last;
};

/* Mix bytes into the digest. */
static void mix(struct digest *d, const void *p, size_t len)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < len; i++)
		d->h = d->h * 131 + s[i];
}

/* Format r and parse it back: it must match. */
static void round_trip(const struct smtp_reply *r)
{
	struct yz_buf b;
	struct smtp_reply_parser p;
	const struct smtp_reply *r2;
	const char *err;
	size_t used;
	struct yz_buf *text = (struct yz_buf *)&r->text;
	const char *t = yz_buf_cstr(text);

	/* Lines longer than a formatted line may hold are cut: skip those. */
	size_t line = 0;
	for (size_t i = 0; i < yz_buf_len(text); i++) {
		line = t[i] == '\n' ? 0 : line + 1;
		if (line > SMTP_REPLY_LINE_MAX - 20 || t[i] == '\0')
			return;
	}
	if (r->lines > SMTP_REPLY_LINES_MAX)
		return;
	yz_buf_init(&b, 0);
	if (smtp_reply_format(&b, r->code, r->has_enh ? r->enh : NULL, t) < 0)
		abort();
	smtp_reply_parser_init(&p, SMTP_REPLY_LINE_MAX, SMTP_REPLY_LINES_MAX, FUZZ_MAX_TEXT);
	if (smtp_reply_parse(&p, yz_buf_data(&b), yz_buf_len(&b), &used, &r2, &err) !=
		    SMTP_REPLY_OK ||
	    used != yz_buf_len(&b) || r2->code != r->code)
		abort();
	smtp_reply_parser_free(&p);
	yz_buf_free(&b);
}

/* Parse in with chunks of step (0 = all at once). */
static void run(const char *in, size_t len, size_t step, struct digest *d, bool check)
{
	struct smtp_reply_parser p;
	const char *err;
	size_t pos = 0, end = 0;
	memset(d, 0, sizeof *d);
	smtp_reply_parser_init(&p, SMTP_REPLY_LINE_MAX, SMTP_REPLY_LINES_MAX, FUZZ_MAX_TEXT);
	d->last = SMTP_REPLY_AGAIN;
	while (pos < len) {
		if (end <= pos)
			end = step == 0 || len - pos < step ? len : pos + step;
		size_t used;
		const struct smtp_reply *r;
		d->last = smtp_reply_parse(&p, in + pos, end - pos, &used, &r, &err);
		if (used > end - pos)
			abort();
		pos += used;
		if (d->last == SMTP_REPLY_INVALID)
			break;
		if (d->last == SMTP_REPLY_OK) {
			if (r->code < 200 || r->code > 559 || r->lines == 0)
				abort();
			d->n++;
			mix(d, &r->code, sizeof r->code);
			mix(d, r->enh, strlen(r->enh));
			mix(d, yz_buf_data(&r->text), yz_buf_len(&r->text));
			if (check)
				round_trip(r);
		}
	}
	smtp_reply_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);
	memcpy(in, data, size);
	struct digest a, b;
	run(in, size, 0, &a, true);
	run(in, size, 1, &b, false);
	if (a.h != b.h || a.n != b.n || a.last != b.last)
		abort();
	free(in);
	return 0;
}
