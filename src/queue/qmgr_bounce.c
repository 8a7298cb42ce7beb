/*
 * qmgr_bounce.c: delivery status notifications (RFC 3464 inside an RFC 6522
 * multipart/report), queued as new messages from the null sender to the
 * original envelope sender. The DSN is committed to the spool before the
 * failed recipient is recorded as FAILED|DSN_SENT, so a crash can at worst
 * send a DSN twice, never lose it.
 * Never: a DSN about a DSN (the null sender gets none); a returned original
 * larger than QMGR_BOUNCE_FULL_MAX (then only its headers are returned).
 */
#include "queue/qmgr_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"

#define QMGR_BOUNCE_FULL_MAX (50 * 1024)   /* as Postfix's bounce_size_limit */
#define QMGR_BOUNCE_HEADERS_MAX (64 * 1024)
#define QMGR_BOUNCE_MAX (QMGR_BOUNCE_FULL_MAX + QMGR_BOUNCE_HEADERS_MAX + 64 * 1024)

static void qmgr_rfc5322_date(time_t t, char *out, size_t size)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* "5.1.1 text" -> "5.1.1"; otherwise the generic code of the class. */
static void qmgr_status_code(const char *text, bool failed, char *out, size_t size)
{
	if (isdigit((unsigned char)text[0]) && text[1] == '.') {
		size_t n = strspn(text, "0123456789.");
		if (n >= 5 && n < size) {
			memcpy(out, text, n);
			out[n] = '\0';
			return;
		}
	}
	snprintf(out, size, "%s", failed ? "5.0.0" : "4.0.0");
}

/* The original message, or its header section only when large or RET=HDRS. */
static int qmgr_bounce_original(struct qmgr *q, struct qmgr_msg *m, struct yz_buf *out, bool *full_r)
{
	uint64_t off, len;
	const char *err;
	int fd = queue_msg_content_fd(q->store, m->qm->qid, &off, &len, &err);
	if (fd < 0)
		return -1;
	bool full = m->qm->env.ret != QUEUE_RET_HDRS && len <= QMGR_BOUNCE_FULL_MAX;
	size_t want = full ? (size_t)len : (size_t)(len < QMGR_BOUNCE_HEADERS_MAX ? len : QMGR_BOUNCE_HEADERS_MAX);
	char *buf = yz_malloc(want + 1);
	ssize_t got = pread(fd, buf, want, (off_t)off);
	close(fd);
	if (got < 0) {
		free(buf);
		return -1;
	}
	size_t n = (size_t)got;
	if (!full) {
		buf[n] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		n = end != NULL ? (size_t)(end - buf) + 2 : n;
	}
	yz_buf_append(out, buf, n);
	if (n > 0 && (n < 2 || buf[n - 2] != '\r' || buf[n - 1] != '\n'))
		yz_buf_append_str(out, "\r\n");
	free(buf);
	*full_r = full;
	return 0;
}

int qmgr_bounce(struct qmgr *q, struct qmgr_msg *m, const uint32_t *idx, size_t n, bool delay_notice)
{
	const struct queue_envelope *env = &m->qm->env;
	if (env->sender == NULL || env->sender[0] == '\0')
		return 0;
	char date[64], arrival[64], boundary[QUEUE_ID_MAX + 300];
	qmgr_rfc5322_date(time(NULL), date, sizeof date);
	qmgr_rfc5322_date((time_t)env->arrival, arrival, sizeof arrival);
	snprintf(boundary, sizeof boundary, "%s.%ld/%s", m->qm->qid, (long)time(NULL), q->hostname);
	struct yz_buf b;
	yz_buf_init(&b, QMGR_BOUNCE_MAX);
	yz_buf_printf(&b,
		      "Date: %s\r\n"
		      "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
		      "To: <%s>\r\n"
		      "Subject: %s\r\n"
		      "Message-ID: <%s.%s@%s>\r\n"
		      "Auto-Submitted: auto-replied\r\n"
		      "MIME-Version: 1.0\r\n"
		      "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		      "\tboundary=\"%s\"\r\n"
		      "\r\n"
		      "This is a MIME-encapsulated message.\r\n"
		      "\r\n"
		      "--%s\r\n"
		      "Content-Description: Notification\r\n"
		      "Content-Type: text/plain; charset=us-ascii\r\n"
		      "\r\n"
		      "This is the mail system at host %s.\r\n"
		      "\r\n",
		      date, q->hostname, env->sender,
		      delay_notice ? "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender",
		      m->qm->qid, delay_notice ? "delay" : "bounce", q->hostname, boundary, boundary,
		      q->hostname);
	if (delay_notice)
		yz_buf_append_str(&b, "Your message could not be delivered yet to the recipients\r\n"
				      "below. It will be retried; you do not need to send it again.\r\n\r\n");
	else
		yz_buf_append_str(&b, "I'm sorry to have to inform you that your message could not\r\n"
				      "be delivered to one or more recipients. The reasons are below.\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		const struct queue_rcpt *rc = &env->rcpts[idx[i]];
		yz_buf_printf(&b, "<%s>: %s\r\n", rc->addr, rc->status && rc->status[0] ? rc->status : "");
	}
	yz_buf_printf(&b,
		      "\r\n--%s\r\n"
		      "Content-Description: Delivery report\r\n"
		      "Content-Type: message/delivery-status\r\n"
		      "\r\n"
		      "Reporting-MTA: dns; %s\r\n"
		      "X-Yizhan-Queue-ID: %s\r\n"
		      "Arrival-Date: %s\r\n",
		      boundary, q->hostname, m->qm->qid, arrival);
	if (env->envid != NULL && env->envid[0] != '\0')
		yz_buf_printf(&b, "Original-Envelope-Id: %s\r\n", env->envid);
	for (size_t i = 0; i < n; i++) {
		const struct queue_rcpt *rc = &env->rcpts[idx[i]];
		char code[16];
		const char *text = rc->status ? rc->status : "";
		qmgr_status_code(text, !delay_notice, code, sizeof code);
		yz_buf_printf(&b, "\r\nFinal-Recipient: rfc822; %s\r\n", rc->addr);
		if (rc->orcpt != NULL && rc->orcpt[0] != '\0')
			yz_buf_printf(&b, "Original-Recipient: %s\r\n", rc->orcpt);
		yz_buf_printf(&b, "Action: %s\r\nStatus: %s\r\nDiagnostic-Code: X-Yizhan; %s\r\n",
			      delay_notice ? "delayed" : "failed", code, text);
	}
	bool full = false;
	struct yz_buf orig;
	yz_buf_init(&orig, QMGR_BOUNCE_FULL_MAX + QMGR_BOUNCE_HEADERS_MAX + 16);
	int have_orig = qmgr_bounce_original(q, m, &orig, &full);
	if (have_orig == 0) {
		yz_buf_printf(&b, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n\r\n",
			      boundary, full ? "Undelivered Message" : "Undelivered Message Headers",
			      full ? "message/rfc822" : "text/rfc822-headers");
		yz_buf_append_slice(&b, yz_buf_slice(&orig));
	}
	yz_buf_free(&orig);
	yz_buf_printf(&b, "\r\n--%s--\r\n", boundary);

	/* Queue it as a new message and commit it before the caller records. */
	struct queue_writer *w;
	const char *err;
	int rc = -1;
	if (queue_writer_open(q->store, &w, &err) < 0) {
		yz_log_warn("%s: cannot queue a DSN: %s", m->qm->qid, err);
		yz_buf_free(&b);
		return -1;
	}
	char bqid[QUEUE_ID_MAX];
	snprintf(bqid, sizeof bqid, "%s", queue_writer_id(w));
	struct queue_rcpt to = { .addr = env->sender, .notify = QUEUE_NOTIFY_NEVER };
	struct queue_envelope benv = {
		.sender = "", .body = QUEUE_BODY_8BITMIME, .client_name = "localhost",
		.client_addr = "127.0.0.1", .helo = q->hostname, .rcpt_count = 1, .rcpts = &to,
	};
	struct queue_batch *batch = queue_batch_new(q->store);
	bool added = queue_writer_append(w, yz_buf_data(&b), yz_buf_len(&b), &err) == 0 &&
		     queue_writer_finish(w, &benv, &err) == 0;
	/* queue_batch_add takes the writer (and clears w) only on success. */
	added = added && queue_batch_add(batch, &w, &err) == 0;
	if (!added) {
		yz_log_warn("%s: cannot queue a DSN: %s", m->qm->qid, err);
		queue_writer_abort(&w);
	} else if (queue_batch_commit(batch) != 0) {
		(void)queue_batch_result(batch, 0, NULL, &err);
		yz_log_warn("%s: cannot commit a DSN: %s", m->qm->qid, err);
	} else {
		rc = 0;
		yz_log_info("%s: sender %s notification: %s", m->qm->qid,
			    delay_notice ? "delay" : "non-delivery", bqid);
		yz_log_info("%s: from=<>, size=%zu, nrcpt=1 (queue active)", bqid, yz_buf_len(&b));
		struct queue_msg *bm;
		if (queue_msg_load(q->store, bqid, &bm, &err) == 0)
			(void)qmgr_adopt(q, bm, false);
	}
	queue_batch_free(&batch);
	yz_buf_free(&b);
	return rc;
}
