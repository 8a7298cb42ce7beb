/*
 * fuzz_smtp_data.c: libFuzzer target for the DATA decoder and encoder
 * (libsmtp/smtp_data.h), and the header scanner (libmail/header.h) run on
 * the decoded message.
 *
 * The decoder must give the same status, consumed count, output and
 * counters one-shot, byte-at-a-time and in input-chosen chunks; DONE only
 * right after CRLF.CRLF (or ".\r\n" at the start); and a decoded message
 * without bare CRs must survive stuff + decode unchanged. The header
 * scanner must report the same fields one-shot and byte-at-a-time. Aborts
 * on any disagreement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libmail/header.h"
#include "libsmtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	enum smtp_data_status status;
	size_t consumed;
	struct yz_buf out;
	unsigned long lf, cr, longl;
	unsigned long long bytes;
};

/* Decode in with a chunk schedule: step 0 = all, else chunk sizes from
 * seed bytes (1..8) or constant step. */
static void decode(const char *in, size_t len, size_t step, const uint8_t *seed,
		   size_t seedlen, size_t max_line, struct run *r)
{
	struct smtp_data d;
	size_t pos = 0, k = 0;
	smtp_data_init(&d, max_line);
	yz_buf_init(&r->out, 0);
	r->status = SMTP_DATA_MORE;
	while (pos < len && r->status == SMTP_DATA_MORE) {
		size_t n = len - pos;
		if (seed != NULL && seedlen > 0)
			n = (size_t)(seed[k++ % seedlen] % 8) + 1;
		else if (step > 0)
			n = step;
		if (n > len - pos)
			n = len - pos;
		size_t used;
		if (smtp_data_feed(&d, in + pos, n, &r->out, &used, &r->status) < 0)
			abort();
		if (used > n || (r->status == SMTP_DATA_MORE && used != n))
			abort();
		pos += used;
	}
	r->consumed = pos;
	r->lf = smtp_data_bare_lf(&d);
	r->cr = smtp_data_bare_cr(&d);
	r->longl = smtp_data_long_lines(&d);
	r->bytes = smtp_data_bytes(&d);
	if (r->bytes != yz_buf_len(&r->out))
		abort();
}

/* Two runs must agree on everything. */
static void same(const struct run *a, const struct run *b)
{
	if (a->status != b->status || a->consumed != b->consumed || a->lf != b->lf ||
	    a->cr != b->cr || a->longl != b->longl || !yz_slice_eq(yz_buf_slice(&a->out),
								     yz_buf_slice(&b->out)))
		abort();
}

/* Scan headers with a given step; returns fields seen and the end offset. */
static size_t scan(const char *p, size_t len, size_t step, size_t *end_r, unsigned long *sum_r)
{
	struct mail_header_scan s;
	struct mail_header_field f;
	const char *err;
	size_t pos = 0, n = 0;
	unsigned long sum = 0;
	enum mail_header_status st = MAIL_HEADER_MORE;
	mail_header_scan_init(&s, 4096, 50);
	while (pos < len) {
		size_t c = step == 0 || len - pos < step ? len - pos : step;
		size_t used;
		st = mail_header_scan_feed(&s, p + pos, c, &used, &f, &err);
		pos += used;
		if (st == MAIL_HEADER_FIELD) {
			n++;
			sum = sum * 31 + f.name_len * 7 + f.value_len;
			continue;
		}
		if (st != MAIL_HEADER_MORE)
			break;
	}
	while (st == MAIL_HEADER_MORE || st == MAIL_HEADER_FIELD) {
		st = mail_header_scan_eof(&s, &f, &err);
		if (st == MAIL_HEADER_FIELD) {
			n++;
			sum = sum * 31 + f.name_len * 7 + f.value_len;
		}
	}
	*end_r = st == MAIL_HEADER_END ? s.header_len : (size_t)-1;
	*sum_r = sum;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	/* First byte: line limit; second: chunk seed length. */
	size_t max_line = (size_t)data[0] * 8 + 3;
	size_t seedlen = data[1] % 16;
	if (size < 2 + seedlen)
		return 0;
	const uint8_t *seed = data + 2;
	size_t len = size - 2 - seedlen;
	char *in = malloc(len ? len : 1);
	memcpy(in, data + 2 + seedlen, len);

	struct run all, one, chunked;
	decode(in, len, 0, NULL, 0, max_line, &all);
	decode(in, len, 1, NULL, 0, max_line, &one);
	decode(in, len, 0, seed, seedlen, max_line, &chunked);
	same(&all, &one);
	same(&all, &chunked);

	if (all.status == SMTP_DATA_DONE) {
		size_t c = all.consumed;
		bool ok = (c == 3 && memcmp(in, ".\r\n", 3) == 0) ||
			  (c >= 5 && memcmp(in + c - 5, "\r\n.\r\n", 5) == 0);
		if (!ok)
			abort();
		/* Stuff the decoded message and decode it again. */
		if (all.cr == 0) {
			struct yz_buf wire;
			struct smtp_stuff st;
			struct run again;
			yz_buf_init(&wire, 0);
			smtp_stuff_init(&st);
			if (smtp_data_stuff(yz_buf_data(&all.out), yz_buf_len(&all.out), &st,
					    &wire) < 0 ||
			    smtp_data_stuff_end(&st, &wire) < 0)
				abort();
			decode(yz_buf_data(&wire), yz_buf_len(&wire), 0, NULL, 0, max_line,
			       &again);
			if (again.status != SMTP_DATA_DONE || again.consumed != yz_buf_len(&wire) ||
			    !yz_slice_eq(yz_buf_slice(&again.out), yz_buf_slice(&all.out)))
				abort();
			yz_buf_free(&again.out);
			yz_buf_free(&wire);
		}
	}

	size_t e1, e2;
	unsigned long s1, s2;
	size_t n1 = scan(yz_buf_data(&all.out), yz_buf_len(&all.out), 0, &e1, &s1);
	size_t n2 = scan(yz_buf_data(&all.out), yz_buf_len(&all.out), 1, &e2, &s2);
	if (n1 != n2 || e1 != e2 || s1 != s2)
		abort();

	yz_buf_free(&all.out);
	yz_buf_free(&one.out);
	yz_buf_free(&chunked.out);
	free(in);
	return 0;
}
