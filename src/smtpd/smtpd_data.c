/*
 * smtpd_data.c: the message text: DATA (dot-unstuffed by the libsmtp
 * decoder, which ends the text only at CRLF.CRLF) and BDAT chunks
 * (RFC 3030, taken byte-exact), streamed into the queue writer with the
 * Received field first; header checks (hop count, and for submission the
 * Message-ID and Date fields added when missing).
 *
 * Decisions (reported to the lead for docs/):
 * - A text line longer than smtpd_text_line_limit does not end the
 *   session: the text is read to its end, then rejected with 500 5.5.2.
 * - A message larger than message_size_limit is read and discarded to its
 *   end, then rejected with 552 5.3.4 (a BDAT chunk that passes the limit
 *   is swallowed and answered 552 5.3.4 at once, ending the transaction).
 * - More Received fields than hopcount_limit: 554 5.4.6 after the text.
 * - A header section over SMTPD_HEADER_MAX: 552 5.3.4.
 * - A write or sync error: 451 4.3.0, the partial file is removed, the
 *   session goes on.
 * - DATA after BDAT in one transaction is a sequencing error (503 5.5.1,
 *   by the command table); a BDAT refused for its state still has its
 *   bytes read and dropped, then gets its 503.
 * Guarantees: 250 after the text only once the group commit holding the
 * message succeeded (smtpd_data_committed); nothing that was refused stays
 * on disk; memory per session stays bounded by SMTPD_HEADER_MAX +
 * SMTPD_CHUNK_MAX whatever the message size.
 * Never: end DATA on anything but CRLF.CRLF; let a header field a client
 * wrote in its HELO or address break out of our Received field.
 */
#include "smtpd/smtpd_private.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "libmail/date.h"
#include "libmail/msgid.h"

/* Free the data phase buffers of a transaction. */
void smtpd_data_clear(struct smtpd_txn *txn)
{
	yz_buf_free(&txn->chunk);
	yz_buf_free(&txn->header);
}

/* Stop writing: the message will be refused; give its disk space back now. */
static void data_fail(struct smtpd_session *s, const char *why)
{
	if (s->txn.writer != NULL)
		queue_writer_abort(&s->txn.writer);
	if (!s->txn.failed) {
		s->txn.failed = true;
		s->txn.fail_text = why;
	}
}

/* Append bytes to the queue file (unless the message is already refused). */
static void data_write(struct smtpd_session *s, const char *p, size_t len)
{
	const char *error;

	if (s->txn.writer == NULL || len == 0)
		return;
	if (queue_writer_append(s->txn.writer, p, len, &error) < 0) {
		yz_log_warn("%s: queue file write error: %s", s->txn.qid, error);
		s->srv->space_ok_until_ms = 0; /* the next MAIL looks at the disk */
		data_fail(s, "queue file write error");
	}
}

/* The header section is complete: write Received, the client's header, the
 * fields submission adds, then the rest. */
static void data_header_flush(struct smtpd_session *s, size_t blank)
{
	struct smtpd_txn *t = &s->txn;
	struct smtpd_received_info ri;
	struct yz_slice h = yz_buf_slice(&t->header);
	char date[MAIL_DATE_MAX + 1];
	char unique[QUEUE_ID_MAX + 32];
	const char *error;
	struct yz_buf b;
	time_t now = time(NULL);

	t->header_done = true;
	if (mail_date_format(now, false, date, sizeof(date)) < 0)
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
	memset(&ri, 0, sizeof(ri));
	ri.helo = s->helo;
	ri.ip = s->ip;
	ri.hostname = s->srv->set.hostname;
	ri.protocol = smtpd_session_protocol(s);
	if (s->io != NULL && yz_io_tls_version(s->io) != NULL) {
		ri.tls_version = yz_io_tls_version(s->io);
		ri.tls_cipher = yz_io_tls_cipher(s->io);
		ri.tls_bits = yz_io_tls_bits(s->io);
	}
	ri.qid = t->qid;
	ri.rcpt = t->nrcpt == 1 ? t->rcpts[0].addr : NULL;
	ri.date = date;
	yz_buf_init(&b, SMTPD_TXT_MAX * 8);
	(void)smtpd_received_format(&b, &ri);
	data_write(s, yz_buf_data(&b), yz_buf_len(&b));
	data_write(s, h.p, blank);
	if (s->kind != SMTPD_PORT_SMTP) {
		/* Submission (RFC 6409 8.2, 8.3): complete the message. */
		yz_buf_reset(&b);
		snprintf(unique, sizeof(unique), "%lld.%s", (long long)now, t->qid);
		if (!t->has_message_id) {
			(void)yz_buf_append_str(&b, "Message-ID: ");
			if (mail_msgid_format(unique, s->srv->set.hostname, &b, &error) < 0) {
				yz_log_warn("%s: cannot make a Message-ID: %s", t->qid, error);
				yz_buf_reset(&b);
			} else {
				(void)yz_buf_append_str(&b, "\r\n");
			}
		}
		if (!t->has_date)
			(void)yz_buf_printf(&b, "Date: %s\r\n", date);
		data_write(s, yz_buf_data(&b), yz_buf_len(&b));
	}
	data_write(s, h.p + blank, h.len - blank);
	yz_buf_free(&b);
	yz_buf_free(&t->header);
}

/* Note what a header field tells us. */
static void data_header_field(struct smtpd_session *s, const struct mail_header_field *f)
{
	if (mail_header_field_is(f, "Received"))
		s->txn.received_count++;
	else if (mail_header_field_is(f, "Message-ID"))
		s->txn.has_message_id = true;
	else if (mail_header_field_is(f, "Date"))
		s->txn.has_date = true;
}

/* The scanner found the end of the header section. */
static void data_header_ended(struct smtpd_session *s)
{
	struct smtpd_txn *t = &s->txn;
	struct yz_slice h = yz_buf_slice(&t->header);
	size_t blank = t->hscan.header_len;

	if (blank > h.len)
		blank = h.len;
	/* Our fields go before the empty line (or before the first line that
	 * is not a header field, which belongs to the body). */
	if (!t->hscan.no_blank_line) {
		if (blank >= 2 && h.p[blank - 2] == '\r' && h.p[blank - 1] == '\n')
			blank -= 2;
		else if (blank >= 1 && h.p[blank - 1] == '\n')
			blank -= 1;
	}
	data_header_flush(s, blank);
}

/* Feed new header bytes to the scanner; eof: the message ended. */
static void data_header_feed(struct smtpd_session *s, const char *p, size_t len, bool eof)
{
	struct smtpd_txn *t = &s->txn;
	struct mail_header_field f;
	const char *error = NULL;
	size_t off = 0;

	while (!t->header_done && !t->header_too_big) {
		enum mail_header_status st;
		size_t consumed = 0;

		if (off < len) {
			st = mail_header_scan_feed(&t->hscan, p + off, len - off, &consumed, &f, &error);
			off += consumed;
		} else if (eof) {
			st = mail_header_scan_eof(&t->hscan, &f, &error);
		} else {
			return;
		}
		switch (st) {
		case MAIL_HEADER_FIELD:
			data_header_field(s, &f);
			break;
		case MAIL_HEADER_END:
			data_header_ended(s);
			return;
		case MAIL_HEADER_INVALID:
			yz_log_info("%s: header section refused: %s", t->qid,
				    error != NULL ? error : "malformed");
			t->header_too_big = true;
			if (t->writer != NULL)
				queue_writer_abort(&t->writer);
			return;
		case MAIL_HEADER_MORE:
			if (off >= len && !eof)
				return;
			if (consumed == 0 && off < len)
				return; /* no progress: cannot happen; be safe */
			break;
		}
	}
}

/* Take message bytes: size accounting, header holding, writing. */
static void data_sink(struct smtpd_session *s, const char *p, size_t len)
{
	struct smtpd_txn *t = &s->txn;

	t->size += len;
	if (t->size > s->srv->set.message_size_limit && !t->too_big) {
		t->too_big = true;
		if (t->writer != NULL)
			queue_writer_abort(&t->writer);
	}
	if (t->too_big || t->failed || t->header_too_big)
		return;
	if (t->header_done) {
		data_write(s, p, len);
		return;
	}
	if (yz_buf_append(&t->header, p, len) < 0) {
		t->header_too_big = true;
		if (t->writer != NULL)
			queue_writer_abort(&t->writer);
		return;
	}
	data_header_feed(s, p, len, false);
}

/* Open the queue file for a new message text; false (and a reply) if not. */
static bool data_begin(struct smtpd_session *s)
{
	struct smtpd_txn *t = &s->txn;
	const char *error;

	if (queue_writer_open(s->srv->queue, &t->writer, &error) < 0) {
		yz_log_warn("cannot create a queue file: %s", error);
		smtpd_reply(s, 451, "4.3.0", "Error: queue file write error");
		return false;
	}
	snprintf(t->qid, sizeof(t->qid), "%s", queue_writer_id(t->writer));
	if (s->auth_user != NULL)
		yz_log_info("%s: client=[%s], sasl_method=%s, sasl_username=%s", t->qid, s->ip,
			    "PLAIN/LOGIN", s->auth_user);
	else
		yz_log_info("%s: client=[%s]", t->qid, s->ip);
	yz_buf_init(&t->chunk, SMTPD_CHUNK_MAX);
	yz_buf_init(&t->header, SMTPD_HEADER_MAX);
	mail_header_scan_init(&t->hscan, SMTPD_HEADER_MAX, SMTPD_HEADER_FIELDS_MAX);
	t->size = 0;
	yz_io_set_timeout(s->io, s->srv->set.data_timeout_ms);
	return true;
}

/* Refuse the finished text: reply, log, drop the transaction. */
static void data_refuse(struct smtpd_session *s, int code, const char *enh, const char *text)
{
	smtpd_reply(s, code, enh, "%s", text);
	smtpd_log_reject(s, "END-OF-MESSAGE", code, enh, text);
	smtpd_txn_reset(s);
}

/* The text is complete: check it, finish the file, join the group commit. */
static void data_end(struct smtpd_session *s)
{
	struct smtpd_txn *t = &s->txn;
	struct queue_envelope env;
	const char *error;
	size_t i;

	s->input = SMTPD_IN_COMMAND;
	yz_io_set_timeout(s->io, s->srv->set.timeout_ms);
	if (!t->too_big && !t->failed && !t->header_too_big && !t->header_done) {
		/* The text ended inside the header section. */
		data_header_feed(s, NULL, 0, true);
		if (!t->header_done && !t->header_too_big)
			data_header_flush(s, yz_buf_len(&t->header));
	}
	if (t->failed) {
		data_refuse(s, 451, "4.3.0", "Error: queue file write error");
		return;
	}
	if (t->too_big) {
		data_refuse(s, 552, "5.3.4", "Error: message file too big");
		return;
	}
	if (t->header_too_big) {
		data_refuse(s, 552, "5.3.4", "Error: message header section too big");
		return;
	}
	if (!t->bdat && smtp_data_long_lines(&t->decoder) > 0) {
		data_refuse(s, 500, "5.5.2", "Error: message line too long");
		return;
	}
	if (t->received_count > s->srv->set.hopcount_limit) {
		data_refuse(s, 554, "5.4.6", "Error: too many hops (mail loop?)");
		return;
	}
	memset(&env, 0, sizeof(env));
	env.sender = t->sender;
	env.smtputf8 = t->params.smtputf8;
	env.body = t->params.body == SMTP_BODY_8BITMIME ? QUEUE_BODY_8BITMIME
		 : t->params.body == SMTP_BODY_7BIT ? QUEUE_BODY_7BIT : QUEUE_BODY_NONE;
	env.ret = t->params.ret == SMTP_RET_FULL ? QUEUE_RET_FULL
		: t->params.ret == SMTP_RET_HDRS ? QUEUE_RET_HDRS : QUEUE_RET_NONE;
	env.envid = t->params.envid;
	env.client_name = "unknown";
	env.client_addr = s->ip;
	env.helo = s->helo;
	env.auth_user = s->auth_user != NULL ? s->auth_user : "";
	env.rcpt_count = t->nrcpt;
	env.rcpts = yz_pool_alloc(s->txn_pool, (t->nrcpt + 1) * sizeof(*env.rcpts));
	for (i = 0; i < t->nrcpt; i++) {
		env.rcpts[i].addr = t->rcpts[i].addr;
		env.rcpts[i].orcpt = t->rcpts[i].orcpt;
		env.rcpts[i].notify = t->rcpts[i].notify;
	}
	if (queue_writer_finish(t->writer, &env, &error) < 0) {
		yz_log_warn("%s: queue file write error: %s", t->qid, error);
		queue_writer_abort(&t->writer);
		data_refuse(s, 451, "4.3.0", "Error: queue file write error");
		return;
	}
	smtpd_queue_submit(s);
}

/* The group commit that held the message is over. */
void smtpd_data_committed(struct smtpd_session *s, bool ok, const char *qid, const char *error)
{
	struct smtpd_txn *t = &s->txn;

	if (ok) {
		yz_log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", qid, t->sender,
			    t->size, t->nrcpt);
		smtpd_reply(s, 250, "2.0.0", "Ok: queued as %s", qid);
	} else {
		yz_log_warn("%s: commit failed: %s", t->qid, error != NULL ? error : "unknown");
		s->srv->space_ok_until_ms = 0; /* the next MAIL looks at the disk */
		smtpd_reply(s, 451, "4.3.0", "Error: queue file write error");
	}
	smtpd_txn_reset(s);
	smtpd_session_resume(s);
}

/* DATA: 354, then the text until CRLF.CRLF. */
void smtpd_cmd_data(struct smtpd_session *s, struct yz_slice arg)
{
	if (yz_slice_trim(arg).len != 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (!data_begin(s))
		return;
	smtp_data_init(&s->txn.decoder, s->srv->set.text_line_limit);
	smtpd_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	s->input = SMTPD_IN_DATA;
}

/* Swallow a chunk, then answer code/enh/text. */
static void bdat_discard(struct smtpd_session *s, unsigned long long size, int code,
			 const char *enh, const char *text)
{
	s->txn.chunk_discard = true;
	s->txn.chunk_left = size;
	s->txn.chunk_reply_code = code;
	s->txn.chunk_reply_enh = enh;
	s->txn.chunk_reply_text = text;
	s->input = SMTPD_IN_CHUNK;
}

/* BDAT <size> [LAST] (RFC 3030). */
void smtpd_cmd_bdat(struct smtpd_session *s, struct yz_slice arg)
{
	struct smtpd_txn *t = &s->txn;
	unsigned long long size;
	const char *error;
	bool last;

	if (smtp_parse_bdat(arg, &size, &last, &error) < 0) {
		/* Without a size the chunk cannot be skipped: what follows
		 * is read as commands and fails as such. */
		smtpd_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]: %s", error);
		return;
	}
	if (s->state == SMTPD_S_INIT) {
		bdat_discard(s, size, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->state == SMTPD_S_READY) {
		bdat_discard(s, size, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (s->state == SMTPD_S_MAIL) {
		bdat_discard(s, size, 503, "5.5.1", "Error: need RCPT command");
		return;
	}
	if (s->state == SMTPD_S_RCPT) {
		if (!data_begin(s)) {
			/* data_begin answered 451 already: drop the bytes silently. */
			bdat_discard(s, size, 0, NULL, NULL);
			return;
		}
		t->bdat = true;
		s->state = SMTPD_S_BDAT;
	}
	if (t->size + size > s->srv->set.message_size_limit || t->size + size < t->size) {
		if (t->writer != NULL)
			queue_writer_abort(&t->writer);
		yz_log_info("%s: reject: BDAT from [%s]: 552 5.3.4 message file too big", t->qid,
			    s->ip);
		smtpd_txn_reset(s);
		bdat_discard(s, size, 552, "5.3.4", "Error: message file too big");
		return;
	}
	t->chunk_discard = false;
	t->chunk_left = size;
	t->bdat_last = last;
	s->input = SMTPD_IN_CHUNK;
	yz_io_set_timeout(s->io, s->srv->set.data_timeout_ms);
}

/* Consume DATA text through the decoder. */
static void data_text_input(struct smtpd_session *s)
{
	struct smtpd_txn *t = &s->txn;
	struct yz_buf *rb = yz_io_rbuf(s->io);

	while (yz_buf_len(rb) > 0 && s->input == SMTPD_IN_DATA) {
		size_t n = yz_buf_len(rb), consumed = 0;
		enum smtp_data_status st = SMTP_DATA_MORE;
		bool keep = !t->too_big && !t->failed && !t->header_too_big;

		/* Decoding may double a line end (bare LF -> CRLF): feed at
		 * most half the chunk buffer at once. */
		if (n > SMTPD_CHUNK_MAX / 2)
			n = SMTPD_CHUNK_MAX / 2;
		yz_buf_reset(&t->chunk);
		if (smtp_data_feed(&t->decoder, yz_buf_data(rb), n, keep ? &t->chunk : NULL,
				   &consumed, &st) < 0) {
			/* Cannot happen with the sizes above; be safe anyway. */
			data_fail(s, "decoder buffer overflow");
			(void)smtp_data_feed(&t->decoder, yz_buf_data(rb), n, NULL, &consumed, &st);
		}
		if (keep)
			data_sink(s, yz_buf_data(&t->chunk), yz_buf_len(&t->chunk));
		else
			t->size = smtp_data_bytes(&t->decoder);
		yz_io_consume(s->io, consumed);
		if (st == SMTP_DATA_DONE) {
			data_end(s);
			return;
		}
		if (consumed == 0)
			break;
	}
}

/* Consume BDAT chunk bytes. */
static void data_chunk_input(struct smtpd_session *s)
{
	struct smtpd_txn *t = &s->txn;
	struct yz_buf *rb = yz_io_rbuf(s->io);

	while (t->chunk_left > 0 && yz_buf_len(rb) > 0) {
		size_t n = yz_buf_len(rb);

		if (n > t->chunk_left)
			n = (size_t)t->chunk_left;
		if (!t->chunk_discard)
			data_sink(s, yz_buf_data(rb), n);
		yz_io_consume(s->io, n);
		t->chunk_left -= n;
	}
	if (t->chunk_left > 0)
		return;
	s->input = SMTPD_IN_COMMAND;
	yz_io_set_timeout(s->io, s->srv->set.timeout_ms);
	if (t->chunk_discard) {
		int code = t->chunk_reply_code;

		t->chunk_discard = false;
		if (code != 0)
			smtpd_reply(s, code, t->chunk_reply_enh, "%s", t->chunk_reply_text);
		return;
	}
	if (t->bdat_last) {
		data_end(s);
		return;
	}
	smtpd_reply(s, 250, "2.0.0", "Ok: %llu octets received", t->size);
}

/* DATA text or BDAT bytes are buffered: consume what is there. */
void smtpd_data_input(struct smtpd_session *s)
{
	if (s->input == SMTPD_IN_DATA)
		data_text_input(s);
	else if (s->input == SMTPD_IN_CHUNK)
		data_chunk_input(s);
}
