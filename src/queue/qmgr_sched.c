/*
 * qmgr_sched.c: scheduling and delivery of recipients.
 *
 * An attempt: resolve the recipient in the directory (it may have changed
 * since RCPT time), hand a local target to the mailbox role with the
 * message's content fd (MBOX_DELIVER), and record the outcome durably in a
 * status batch (group commit, qmgr_commit) before logging it or acting on
 * it. Temporary failures back off from minimal_backoff_time doubling to
 * maximal_backoff_time; past maximal_queue_lifetime (bounce_queue_lifetime
 * for bounces) the recipient fails and a DSN goes to the sender. A blinked
 * IPC link (a role restarting) retries after QMGR_TRANSPORT_RETRY_MS and
 * does not count as an attempt.
 */
#include "queue/qmgr_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "store/directory/directory.h"

#define QMGR_TARGETS_MAX 1000
#define QMGR_SUBINDEX_SHIFT 16

/* Ordered from best to worst: a recipient with several targets takes the
 * worst outcome of its deliveries (each is idempotent, so a retry redoes
 * only what is missing). */
enum qmgr_outcome { QO_DELIVERED, QO_FAIL, QO_DEFER, QO_TRANSPORT };

static void qmgr_run(struct yz_loop *loop, void *arg);

static void qmgr_enqueue(struct qmgr *q, struct qmgr_msg *m, uint32_t index)
{
	struct qmgr_rcpt *r = &m->rs[index];
	if (r->busy || r->queued)
		return;
	r->queued = true;
	struct qmgr_job *j = yz_calloc(1, sizeof *j);
	j->q = q;
	j->m = m;
	j->index = index;
	m->busy++;
	if (q->ready_tail != NULL)
		q->ready_tail->next = j;
	else
		q->ready = j;
	q->ready_tail = j;
}

void qmgr_kick(struct qmgr *q)
{
	if (q->run_scheduled)
		return;
	q->run_scheduled = true;
	yz_loop_defer(q->loop, qmgr_run, q);
}

static void qmgr_wake_cb(struct yz_loop *loop, void *arg);
static void qmgr_enqueue(struct qmgr *q, struct qmgr_msg *m, uint32_t index);

/* Make sure the wake timer fires no later than due_ms. */
static void qmgr_arm(struct qmgr *q, uint64_t due_ms)
{
	uint64_t now = yz_now_ms();
	if (yz_service_stopping(q->svc))
		return;
	if (q->wake != NULL && q->wake_at <= due_ms)
		return;
	yz_timer_del(q->loop, &q->wake);
	q->wake_at = due_ms;
	q->wake = yz_timer_add(q->loop, due_ms > now ? due_ms - now : 0, qmgr_wake_cb, q);
}

/* Queue the due recipients of one message; arm the timer for the others. */
static void qmgr_consider(struct qmgr *q, struct qmgr_msg *m, uint64_t now)
{
	if (m->removing)
		return;
	for (size_t i = 0; i < m->qm->env.rcpt_count; i++) {
		struct queue_rcpt *rc = &m->qm->env.rcpts[i];
		struct qmgr_rcpt *r = &m->rs[i];
		if (rc->state == QUEUE_RCPT_DELIVERED || rc->state == QUEUE_RCPT_FAILED ||
		    r->busy || r->queued)
			continue;
		if (r->due_ms <= now)
			qmgr_enqueue(q, m, (uint32_t)i);
		else
			qmgr_arm(q, r->due_ms);
	}
}

/* The wake timer: every message is looked at once. */
static void qmgr_sweep(struct qmgr *q)
{
	uint64_t now = yz_now_ms();
	for (struct qmgr_msg *m = q->msgs; m != NULL; m = m->next)
		qmgr_consider(q, m, now);
	qmgr_kick(q);
}

static void qmgr_wake_cb(struct yz_loop *loop, void *arg)
{
	struct qmgr *q = arg;
	q->wake = NULL;
	qmgr_sweep(q);
}

void qmgr_schedule_msg(struct qmgr *q, struct qmgr_msg *m)
{
	uint64_t now = yz_now_ms();
	int64_t wall = (int64_t)time(NULL);
	for (size_t i = 0; i < m->qm->env.rcpt_count; i++) {
		struct queue_rcpt *rc = &m->qm->env.rcpts[i];
		int64_t wait_s = rc->state == QUEUE_RCPT_DEFERRED ? rc->next_retry - wall : 0;
		m->rs[i].due_ms = wait_s > 0 ? now + (uint64_t)wait_s * 1000 : now;
	}
	qmgr_consider(q, m, now);
	qmgr_kick(q);
}

static uint64_t qmgr_backoff_s(struct qmgr *q, uint32_t attempts)
{
	uint64_t min = yz_cfg_time_ms(q->cfg, YZ_P_MINIMAL_BACKOFF_TIME) / 1000;
	uint64_t max = yz_cfg_time_ms(q->cfg, YZ_P_MAXIMAL_BACKOFF_TIME) / 1000;
	uint64_t d = min ? min : 1;
	for (uint32_t i = 1; i < attempts && d < max; i++)
		d *= 2;
	return d > max ? max : d;
}

static bool qmgr_expired(struct qmgr *q, struct qmgr_msg *m)
{
	const struct queue_envelope *env = &m->qm->env;
	uint64_t life = yz_cfg_time_ms(q->cfg, env->sender == NULL || env->sender[0] == '\0'
						       ? YZ_P_BOUNCE_QUEUE_LIFETIME
						       : YZ_P_MAXIMAL_QUEUE_LIFETIME) / 1000;
	return (int64_t)time(NULL) - env->arrival >= (int64_t)life;
}

/* Does the sender want (and can it get) a failure DSN? */
static bool qmgr_wants_bounce(const struct qmgr_msg *m, uint32_t index)
{
	const struct queue_envelope *env = &m->qm->env;
	if (env->sender == NULL || env->sender[0] == '\0')
		return false; /* never bounce a bounce */
	unsigned notify = env->rcpts[index].notify;
	return notify == 0 || (notify & QUEUE_NOTIFY_FAILURE) != 0;
}

/* A delay notice once, after delay_warning_time, if NOTIFY allows it. */
static bool qmgr_wants_delay_notice(struct qmgr *q, const struct qmgr_msg *m, uint32_t index)
{
	const struct queue_envelope *env = &m->qm->env;
	uint64_t after = yz_cfg_time_ms(q->cfg, YZ_P_DELAY_WARNING_TIME) / 1000;
	if (after == 0 || env->sender == NULL || env->sender[0] == '\0')
		return false;
	unsigned notify = env->rcpts[index].notify;
	if (notify != 0 && (notify & QUEUE_NOTIFY_DELAY) == 0)
		return false;
	return (int64_t)time(NULL) - env->arrival >= (int64_t)after;
}

/* The end of an attempt: decide the new state and record it. */
static void qmgr_finish(struct qmgr_job *j, enum qmgr_outcome oc, const char *text, const char *relay)
{
	struct qmgr *q = j->q;
	struct qmgr_msg *m = j->m;
	struct queue_rcpt *rc = &m->qm->env.rcpts[j->index];
	struct qmgr_rcpt *r = &m->rs[j->index];
	uint64_t delay = yz_now_ms() - m->arrival_ms;
	q->inflight--;
	char buf[QUEUE_STATUS_TEXT_MAX + 1];
	if (oc == QO_TRANSPORT) {
		/* Not an attempt: try again shortly, state unchanged. */
		r->busy = false;
		r->due_ms = yz_now_ms() + QMGR_TRANSPORT_RETRY_MS;
		m->busy--;
		yz_log_debug("%s: to=<%s>: %s; retrying shortly", m->qm->qid, rc->addr, text);
		free(j->targets);
		free(j);
		qmgr_arm(q, r->due_ms);
		qmgr_kick(q);
		qmgr_maybe_exit(q);
		return;
	}
	uint32_t attempts = rc->attempts + 1;
	if (oc == QO_DEFER && qmgr_expired(q, m)) {
		/* Keep the last error's status code first: it is the DSN's Status. */
		snprintf(buf, sizeof buf, "%s (delivery time expired)", text);
		text = buf;
		oc = QO_FAIL;
	}
	unsigned flags = rc->flags;
	if (oc == QO_FAIL && qmgr_wants_bounce(m, j->index)) {
		const char *saved = rc->status;
		rc->status = text;
		int brc = qmgr_bounce(q, m, &j->index, 1, false);
		rc->status = saved;
		if (brc == 0) {
			flags |= QUEUE_RCPT_F_DSN_SENT;
		} else {
			/* No DSN yet: keep the recipient and try again later. */
			oc = QO_DEFER;
		}
	}
	if (oc == QO_DEFER && !(flags & QUEUE_RCPT_F_DELAY_SENT) && qmgr_wants_delay_notice(q, m, j->index)) {
		/* The status text of the DSN is the one of this attempt. */
		const char *saved = rc->status;
		rc->status = text;
		if (qmgr_bounce(q, m, &j->index, 1, true) == 0)
			flags |= QUEUE_RCPT_F_DELAY_SENT;
		rc->status = saved;
	}
	char targets[QMGR_TARGETS_LOG_MAX] = "";
	size_t tl = 0;
	for (size_t t = 0; t < j->ntargets; t++) {
		const struct qmgr_target *tg = &j->targets[t];
		if (j->ntargets == 1 && strcasecmp(tg->account, rc->addr) == 0 && tg->folder[0] == '\0')
			break; /* the recipient itself: nothing to add */
		int n = snprintf(targets + tl, sizeof targets - tl, "%s%s", tl ? " " : "", tg->account);
		if (n < 0 || (size_t)n >= sizeof targets - tl) {
			targets[tl] = '\0';
			break;
		}
		tl += (size_t)n;
	}
	switch (oc) {
	case QO_DELIVERED:
		qmgr_record(q, m, j->index, QUEUE_RCPT_DELIVERED, flags, attempts, 0, text, relay, delay,
			    targets);
		break;
	case QO_FAIL:
		qmgr_record(q, m, j->index, QUEUE_RCPT_FAILED, flags, attempts, 0, text, relay, delay,
			    targets);
		break;
	default:
		qmgr_record(q, m, j->index, QUEUE_RCPT_DEFERRED, flags, attempts,
			    (int64_t)time(NULL) + (int64_t)qmgr_backoff_s(q, attempts), text, relay, delay,
			    targets);
		break;
	}
	free(j->targets);
	free(j);
}

/* One target's delivery ended; the recipient ends with the last one. */
static void qmgr_target_done(struct qmgr_job *j, enum qmgr_outcome oc, const char *text)
{
	if ((int)oc > j->worst || j->text[0] == '\0') {
		if ((int)oc >= j->worst) {
			j->worst = (int)oc;
			snprintf(j->text, sizeof j->text, "%s", text);
		}
	}
	if (--j->pending > 0)
		return;
	char text_copy[QUEUE_STATUS_TEXT_MAX + 1];
	snprintf(text_copy, sizeof text_copy, "%s", j->text);
	qmgr_finish(j, (enum qmgr_outcome)j->worst, text_copy, "local");
}

static void qmgr_deliver_reply(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			       struct yz_ipc_reader *rd, void *arg)
{
	struct qmgr_job *j = arg;
	uint32_t st;
	struct yz_slice text;
	if (hdr == NULL || rd == NULL) {
		qmgr_target_done(j, QO_TRANSPORT, "mailbox role unavailable");
		return;
	}
	if (hdr->type != YZ_MSG_MBOX_DELIVER_REPLY || yz_ipc_get_u32(rd, &st) < 0 ||
	    yz_ipc_get_str(rd, YZ_IPC_TEXT_MAX, &text) < 0 || yz_ipc_end(rd) < 0) {
		qmgr_target_done(j, QO_TRANSPORT, "malformed reply from the mailbox role");
		return;
	}
	char t[QUEUE_STATUS_TEXT_MAX + 1];
	size_t n = text.len < QUEUE_STATUS_TEXT_MAX - 40 ? text.len : QUEUE_STATUS_TEXT_MAX - 40;
	switch (st) {
	case YZ_MBOX_DELIVERED:
		qmgr_target_done(j, QO_DELIVERED, "delivered to maildir");
		break;
	case YZ_MBOX_DUPLICATE:
		qmgr_target_done(j, QO_DELIVERED, "delivered to maildir (earlier attempt)");
		break;
	case YZ_MBOX_OVER_QUOTA:
		qmgr_target_done(j, QO_DEFER, "4.2.2 mailbox full");
		break;
	case YZ_MBOX_PERMFAIL:
		snprintf(t, sizeof t, "5.3.0 mailbox unavailable: %.*s", (int)n, text.p);
		qmgr_target_done(j, QO_FAIL, t);
		break;
	default:
		snprintf(t, sizeof t, "4.3.0 temporary mailbox failure: %.*s", (int)n, text.p);
		qmgr_target_done(j, QO_DEFER, t);
		break;
	}
}

static void qmgr_deliver(struct qmgr_job *j)
{
	struct qmgr *q = j->q;
	struct qmgr_msg *m = j->m;
	const struct queue_envelope *env = &m->qm->env;
	const struct queue_rcpt *rc = &env->rcpts[j->index];
	char header[QUEUE_ADDR_MAX + 32];
	snprintf(header, sizeof header, "Return-Path: <%s>\r\n", env->sender ? env->sender : "");
	j->pending = j->ntargets;
	j->worst = QO_DELIVERED;
	for (size_t t = 0; t < j->ntargets; t++) {
		uint64_t off, len;
		const char *err;
		int fd = queue_msg_content_fd(q->store, m->qm->qid, &off, &len, &err);
		if (fd < 0) {
			qmgr_target_done(j, QO_DEFER, "4.3.0 cannot read the queued message");
			continue;
		}
		/* Each target has its own index in the Maildir file name, so
		 * every delivery is idempotent on its own. */
		uint32_t index = j->index | ((uint32_t)t << QMGR_SUBINDEX_SHIFT);
		struct yz_ipc_msg msg;
		yz_ipc_msg_init(&msg, YZ_MSG_MBOX_DELIVER, 0);
		yz_ipc_put_str(&msg, m->qm->qid);
		yz_ipc_put_u32(&msg, index);
		yz_ipc_put_str(&msg, rc->addr);
		yz_ipc_put_str(&msg, j->targets[t].account);
		yz_ipc_put_str(&msg, j->targets[t].folder);
		yz_ipc_put_u64(&msg, j->targets[t].quota);
		yz_ipc_put_bool(&msg, rc->attempts > 0 || m->recovered);
		yz_ipc_put_str(&msg, header);
		yz_ipc_put_fd(&msg, fd);
		yz_ipc_put_u64(&msg, off);
		yz_ipc_put_u64(&msg, len);
		if (yz_link_request(q->mbox_link, &msg, QMGR_DELIVER_TIMEOUT_MS, qmgr_deliver_reply, j) < 0)
			qmgr_target_done(j, QO_TRANSPORT, "mailbox role unavailable");
	}
}

static void qmgr_resolve_reply(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			       struct yz_ipc_reader *rd, void *arg)
{
	struct qmgr_job *j = arg;
	uint32_t status, n;
	struct yz_slice error;
	if (hdr == NULL || rd == NULL) {
		qmgr_finish(j, QO_TRANSPORT, "directory unavailable", "none");
		return;
	}
	if (hdr->type != YZ_MSG_DIR_RESOLVE_REPLY || yz_ipc_get_u32(rd, &status) < 0 ||
	    yz_ipc_get_str(rd, YZ_IPC_TEXT_MAX, &error) < 0 || yz_ipc_get_u32(rd, &n) < 0 ||
	    n > QMGR_TARGETS_MAX) {
		qmgr_finish(j, QO_TRANSPORT, "malformed reply from the directory", "none");
		return;
	}
	bool external = false, local = false;
	j->targets = yz_calloc(n ? n : 1, sizeof *j->targets);
	j->ntargets = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct yz_slice addr, folder;
		bool ext;
		uint64_t quota;
		if (yz_ipc_get_str(rd, YZ_IPC_ADDR_MAX, &addr) < 0 || yz_ipc_get_bool(rd, &ext) < 0 ||
		    yz_ipc_get_str(rd, YZ_IPC_ADDR_MAX, &folder) < 0 || yz_ipc_get_u64(rd, &quota) < 0) {
			qmgr_finish(j, QO_TRANSPORT, "malformed reply from the directory", "none");
			return;
		}
		if (ext) {
			external = true;
		} else {
			struct qmgr_target *t = &j->targets[j->ntargets++];
			local = true;
			snprintf(t->account, sizeof t->account, "%.*s", (int)addr.len, addr.p);
			snprintf(t->folder, sizeof t->folder, "%.*s", (int)folder.len, folder.p);
			t->quota = quota;
		}
	}
	if (yz_ipc_end(rd) < 0) {
		qmgr_finish(j, QO_TRANSPORT, "malformed reply from the directory", "none");
		return;
	}
	switch (status) {
	case YZ_RESOLVE_OK:
		/* Forwards among the targets wait for outbound delivery; local
		 * targets are delivered now. (Remote delivery is a later stage.) */
		if (local && !external) {
			qmgr_deliver(j);
			return;
		}
		if (external) {
			qmgr_finish(j, QO_DEFER, "4.4.1 remote delivery is not available yet", "none");
			return;
		}
		qmgr_finish(j, QO_FAIL, "5.1.1 no deliverable target", "none");
		return;
	case YZ_RESOLVE_NOT_LOCAL:
		qmgr_finish(j, QO_DEFER, "4.4.1 remote delivery is not available yet", "none");
		return;
	case YZ_RESOLVE_UNKNOWN:
		qmgr_finish(j, QO_FAIL, "5.1.1 unknown user", "local");
		return;
	case YZ_RESOLVE_DISABLED:
		qmgr_finish(j, QO_FAIL, "5.2.1 mailbox disabled", "local");
		return;
	case YZ_RESOLVE_LOOP:
	case YZ_RESOLVE_TOO_MANY:
		qmgr_finish(j, QO_FAIL, "5.4.6 alias loop or expansion limit", "local");
		return;
	default:
		qmgr_finish(j, QO_DEFER, "4.3.0 directory lookup failed", "none");
		return;
	}
}

static void qmgr_start_job(struct qmgr *q, struct qmgr_job *j)
{
	struct qmgr_msg *m = j->m;
	struct qmgr_rcpt *r = &m->rs[j->index];
	r->queued = false;
	r->busy = true;
	q->inflight++;
	j->started_ms = yz_now_ms();
	struct yz_ipc_msg msg;
	yz_ipc_msg_init(&msg, YZ_MSG_DIR_RESOLVE, 0);
	yz_ipc_put_str(&msg, m->qm->env.rcpts[j->index].addr);
	if (yz_link_request(q->dir_link, &msg, QMGR_RESOLVE_TIMEOUT_MS, qmgr_resolve_reply, j) < 0)
		qmgr_finish(j, QO_TRANSPORT, "directory unavailable", "none");
}

static void qmgr_run(struct yz_loop *loop, void *arg)
{
	struct qmgr *q = arg;
	q->run_scheduled = false;
	while (q->ready != NULL && q->inflight < q->concurrency && !yz_service_stopping(q->svc)) {
		struct qmgr_job *j = q->ready;
		q->ready = j->next;
		if (q->ready == NULL)
			q->ready_tail = NULL;
		j->next = NULL;
		qmgr_start_job(q, j);
	}
}

/* ---- recording outcomes (group commit) ---------------------------------- */

static void qmgr_log_outcome(struct qmgr_msg *m, const struct qmgr_update *u)
{
	const struct queue_rcpt *rc = &m->qm->env.rcpts[u->index];
	const char *what = u->state == QUEUE_RCPT_DELIVERED ? "sent"
			   : u->state == QUEUE_RCPT_FAILED  ? "bounced"
							    : "deferred";
	if (u->targets[0] != '\0') {
		/* One line per final mailbox, with the address it was sent to. */
		const char *p = u->targets;
		while (*p != '\0') {
			size_t n = strcspn(p, " ");
			yz_log_info("%s: to=<%.*s>, orig_to=<%s>, relay=%s, delay=%.2f, status=%s (%s)",
				    m->qm->qid, (int)n, p, rc->addr, u->relay,
				    (double)u->delay_ms / 1000.0, what, u->status);
			p += n;
			while (*p == ' ')
				p++;
		}
		return;
	}
	char orig[QUEUE_ORCPT_MAX + 32] = "";
	if (rc->orcpt != NULL && rc->orcpt[0] != '\0') {
		const char *semi = strchr(rc->orcpt, ';');
		snprintf(orig, sizeof orig, ", orig_to=<%s>", semi ? semi + 1 : rc->orcpt);
	}
	yz_log_info("%s: to=<%s>%s, relay=%s, delay=%.2f, status=%s (%s)", m->qm->qid, rc->addr, orig,
		    u->relay, (double)u->delay_ms / 1000.0, what, u->status);
}

static void qmgr_after_commit(struct qmgr *q, struct qmgr_msg *m)
{
	if (m->busy > 0 || m->removing || !queue_msg_done(m->qm))
		return;
	m->removing = true;
	const char *err;
	if (queue_msg_remove(q->store, m->qm->qid, &err) < 0) {
		yz_log_warn("%s: cannot remove: %s", m->qm->qid, err);
		m->removing = false;
		return;
	}
	yz_log_info("%s: removed", m->qm->qid);
	qmgr_forget(q, m);
}

static void qmgr_commit(struct yz_loop *loop, void *arg)
{
	struct qmgr *q = arg;
	q->commit_scheduled = false;
	struct qmgr_update *list = q->updates;
	q->updates = NULL;
	if (list == NULL)
		return;
	/* Oldest first. */
	struct qmgr_update *rev = NULL;
	while (list != NULL) {
		struct qmgr_update *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	/* A message that this batch finishes (every recipient final, nothing
	 * else in flight) needs no status record: removing it is the record.
	 * A crash before the unlink reaches the disk brings it back, and the
	 * redelivery finds the Maildir files already there (idempotent). */
	for (struct qmgr_update *u = rev; u != NULL; u = u->next) {
		u->m->batch_updates = 0;
		u->m->remove_now = false;
	}
	for (struct qmgr_update *u = rev; u != NULL; u = u->next)
		u->m->batch_updates++;
	for (struct qmgr_update *u = rev; u != NULL; u = u->next) {
		struct qmgr_msg *m = u->m;
		if (m->busy != m->batch_updates || m->remove_now || m->removing)
			continue;
		bool done = true;
		for (size_t i = 0; i < m->qm->env.rcpt_count && done; i++) {
			enum queue_rcpt_state st = m->qm->env.rcpts[i].state;
			for (struct qmgr_update *v = rev; v != NULL; v = v->next)
				if (v->m == m && v->index == i)
					st = v->state;
			done = st == QUEUE_RCPT_DELIVERED || st == QUEUE_RCPT_FAILED;
		}
		m->remove_now = done;
	}
	struct queue_rcpt_batch *b = queue_rcpt_batch_new(q->store);
	size_t n = 0;
	for (struct qmgr_update *u = rev; u != NULL; u = u->next) {
		if (u->m->remove_now)
			continue;
		n++;
		struct queue_rcpt_update qu = {
			.qid = u->m->qm->qid, .index = u->index, .state = u->state, .flags = u->flags,
			.attempts = u->attempts, .next_retry = u->next_retry, .status = u->status,
		};
		const char *err;
		if (queue_rcpt_batch_add(b, &qu, &err) < 0)
			yz_log_warn("%s: cannot record a recipient state: %s", u->m->qm->qid, err);
	}
	if (n > 0)
		(void)queue_rcpt_batch_commit(b);
	size_t i = 0;
	while (rev != NULL) {
		struct qmgr_update *u = rev;
		rev = u->next;
		struct qmgr_msg *m = u->m;
		struct queue_rcpt *rc = &m->qm->env.rcpts[u->index];
		struct qmgr_rcpt *r = &m->rs[u->index];
		const char *err;
		bool recorded = m->remove_now;
		if (!recorded) {
			recorded = i < queue_rcpt_batch_count(b) && queue_rcpt_batch_result(b, i, &err) == 0;
			i++;
		}
		if (recorded) {
			rc->state = u->state;
			rc->flags = u->flags;
			rc->attempts = u->attempts;
			rc->next_retry = u->next_retry;
			qmgr_log_outcome(m, u);
			int64_t wait_s = u->next_retry - (int64_t)time(NULL);
			r->due_ms = yz_now_ms() + (wait_s > 0 ? (uint64_t)wait_s * 1000 : 0);
		} else {
			/* Not durable: the outcome is forgotten and the recipient
			 * tried again later (local delivery is idempotent). */
			yz_log_warn("%s: to=<%s>: recording the outcome failed; will retry",
				    m->qm->qid, rc->addr);
			r->due_ms = yz_now_ms() + QMGR_TRANSPORT_RETRY_MS;
		}
		r->busy = false;
		m->busy--;
		free(u);
		if (rc->state == QUEUE_RCPT_DEFERRED || r->due_ms > yz_now_ms())
			qmgr_arm(q, r->due_ms);
		qmgr_after_commit(q, m);
	}
	queue_rcpt_batch_free(&b);
	qmgr_kick(q);
	qmgr_maybe_exit(q);
}

void qmgr_record(struct qmgr *q, struct qmgr_msg *m, uint32_t index, enum queue_rcpt_state st,
		 unsigned flags, uint32_t attempts, int64_t next_retry, const char *status,
		 const char *relay, uint64_t delay_ms, const char *targets)
{
	struct qmgr_update *u = yz_calloc(1, sizeof *u);
	u->m = m;
	u->index = index;
	u->state = st;
	u->flags = flags;
	u->attempts = attempts;
	u->next_retry = next_retry;
	u->delay_ms = delay_ms;
	snprintf(u->status, sizeof u->status, "%s", status ? status : "");
	snprintf(u->relay, sizeof u->relay, "%s", relay ? relay : "none");
	snprintf(u->targets, sizeof u->targets, "%s", targets ? targets : "");
	u->next = q->updates;
	q->updates = u;
	if (!q->commit_scheduled) {
		q->commit_scheduled = true;
		yz_loop_defer(q->loop, qmgr_commit, q);
	}
}
