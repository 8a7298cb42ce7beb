/*
 * smtpd_queue.c: group commit of finished messages across the sessions of
 * this process, and the QUEUE_NEW notice to the queue role.
 *
 * Every session whose message text is complete joins the current batch;
 * the batch is committed once, when the loop has handled everything that
 * was ready (yz_loop_defer) or after queue_group_commit_window, whichever
 * the configuration asks (a window of 0 means "at the end of this loop
 * turn"). Only then does each session answer: 250 for committed messages,
 * 451 4.3.0 for failed ones.
 * Guarantees: no 250 before the sync that covers the message; a session
 * that goes away while its message is in a batch is forgotten, not touched
 * (its message is still committed: the client may send it again, a
 * duplicate rather than a loss); the queue role is told of every committed
 * message, and if it is down it finds the message when it scans at start.
 * Never: commit from inside a session's own call stack in a way that
 * reenters it (answers go through smtpd_data_committed, which resumes the
 * session on the next loop turn).
 *
 * The commit itself (a segment pwritev + fdatasync, or file syncs and
 * renames) runs in one committer thread (a yz_workq of one worker and one
 * job), so that the loop keeps serving every other session while the disk
 * syncs: the next batch gathers during the sync and is committed as soon
 * as it ends (one commit in flight at a time). The thread touches nothing
 * but the batch it was handed and the store's segment writer; the loop
 * thread does not commit meanwhile. Where the thread cannot be started,
 * commits run in the loop as before. At exit, smtpd_queue_commit_now()
 * waits for the commit in flight and commits what is left in the loop
 * thread.
 */
#include "smtpd/smtpd_private.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/ipc.h"
#include "lib/ipc_msg.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/service.h"
#include "lib/workq.h"

/* Ignore the queue role's acknowledgement. */
static void queue_new_ack(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			  struct yz_ipc_reader *r, void *arg)
{
	(void)c;
	(void)hdr;
	(void)r;
	(void)arg;
}

/* Tell the queue role about a committed message (and where it is: a
 * segment record, or seg "" for a file in active/). */
static void queue_notify(struct smtpd_server *srv, const char *qid, const char *seg,
			 uint64_t offset)
{
	struct yz_ipc_msg m;

	if (srv->queue_link == NULL)
		return;
	/* Sent even while the link is still being made: the link holds the
	 * request until it is up. If the queue role is down, it finds the
	 * message when it rescans (at start and whenever an smtpd connects). */
	yz_ipc_msg_init(&m, YZ_MSG_QUEUE_NEW, 0);
	(void)yz_ipc_put_str(&m, qid);
	(void)yz_ipc_put_str(&m, seg);
	(void)yz_ipc_put_u64(&m, offset);
	(void)yz_link_request(srv->queue_link, &m, SMTPD_IPC_TIMEOUT_MS, queue_new_ack, NULL);
}

/* Answer the sessions of a committed batch, tell the queue role. */
static void commit_finish(struct smtpd_server *srv, struct queue_batch *batch,
			  struct smtpd_session **sessions, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct smtpd_session *s = sessions[i];
		const char *qid = NULL, *error = NULL;
		bool ok = queue_batch_result(batch, i, &qid, &error) == 0;

		const char *seg = "";
		uint64_t offset = 0;
		if (ok && queue_batch_location(batch, i, &seg, &offset) == 0)
			queue_notify(srv, qid, seg, offset);
		if (s == NULL) {
			if (ok)
				yz_log_info("%s: committed after its client went away", qid);
			continue;
		}
		s->in_commit = false;
		if (smtpd_session_release(s))
			smtpd_data_committed(s, ok, qid, error);
	}
	queue_batch_free(&batch);
	free(sessions);
}

/* The committer thread's work: one batch to stable storage. */
static void committer_work(void *job)
{
	(void)queue_batch_commit(job);
}

static void queue_commit_cb(struct yz_loop *loop, void *arg);

/* The commit in flight ended: answer, then start the next one. */
static void committer_done(void *job, void *arg)
{
	struct smtpd_server *srv = arg;
	struct smtpd_session **sessions = srv->flight_sessions;
	size_t n = srv->flight_count;

	srv->flight = NULL;
	srv->flight_sessions = NULL;
	srv->flight_count = 0;
	commit_finish(srv, job, sessions, n);
	/* What gathered during the sync goes now: it has waited already. */
	if (srv->batch != NULL) {
		yz_timer_del(srv->loop, &srv->commit_timer);
		srv->commit_scheduled = true;
		yz_loop_defer(srv->loop, queue_commit_cb, srv);
	}
}

/* Wait for the commit in flight, if any, and answer it. */
static void flight_wait(struct smtpd_server *srv)
{
	if (srv->committer != NULL && srv->flight != NULL)
		yz_workq_drain(srv->committer);
}

void smtpd_queue_committer_stop(struct smtpd_server *srv)
{
	/* The commit in flight ends first (its messages are durable; the
	 * queue role finds them when it rescans). */
	flight_wait(srv);
	yz_workq_free(&srv->committer, NULL);
}

/* Take the pending batch out of srv; NULL if there is none. */
static struct queue_batch *batch_take(struct smtpd_server *srv, struct smtpd_session ***sessions_r)
{
	struct queue_batch *batch = srv->batch;

	srv->commit_scheduled = false;
	yz_timer_del(srv->loop, &srv->commit_timer);
	if (batch == NULL)
		return NULL;
	*sessions_r = srv->batch_sessions;
	srv->batch = NULL;
	srv->batch_sessions = NULL;
	srv->batch_alloc = 0;
	return batch;
}

/* Commit the pending batch: in the committer thread when one can run it
 * now, else (a commit in flight: it will come back for this one) wait. */
static void queue_commit_start(struct smtpd_server *srv)
{
	if (srv->flight != NULL) {
		srv->commit_scheduled = false;
		yz_timer_del(srv->loop, &srv->commit_timer);
		return; /* committer_done starts it */
	}
	if (srv->committer == NULL && srv->batch != NULL) {
		const struct yz_workq_opts o = { .threads = 1, .max_queued = 1 };
		srv->committer = yz_workq_new(srv->loop, &o, committer_work, committer_done, srv);
		if (srv->committer == NULL)
			yz_log_warn("commits run in the event loop");
	}
	if (srv->committer == NULL) {
		smtpd_queue_commit_now(srv);
		return;
	}
	struct smtpd_session **sessions = NULL;
	struct queue_batch *batch = batch_take(srv, &sessions);
	if (batch == NULL)
		return;
	srv->flight = batch;
	srv->flight_sessions = sessions;
	srv->flight_count = queue_batch_count(batch);
	/* Cannot be refused: nothing else is in flight. */
	(void)yz_workq_submit(srv->committer, batch);
}

/* The deferred or timed commit. */
static void queue_commit_cb(struct yz_loop *loop, void *arg)
{
	struct smtpd_server *srv = arg;

	srv->commit_timer = NULL;
	queue_commit_start(srv);
}

/* Commit whatever is pending now, in this thread (after the commit in
 * flight, if any, has ended and been answered). */
void smtpd_queue_commit_now(struct smtpd_server *srv)
{
	struct smtpd_session **sessions = NULL;
	struct queue_batch *batch;

	flight_wait(srv);
	batch = batch_take(srv, &sessions);
	if (batch == NULL)
		return;
	size_t n = queue_batch_count(batch);
	(void)queue_batch_commit(batch);
	commit_finish(srv, batch, sessions, n);
}

/* Hand a finished writer to the next commit. */
void smtpd_queue_submit(struct smtpd_session *s)
{
	struct smtpd_server *srv = s->srv;
	const char *error;
	int idx;

	if (srv->batch == NULL)
		srv->batch = queue_batch_new(srv->queue);
	idx = queue_batch_add(srv->batch, &s->txn.writer, &error);
	if (idx < 0) {
		yz_log_warn("%s: cannot join the commit: %s", s->txn.qid, error);
		if (s->txn.writer != NULL)
			queue_writer_abort(&s->txn.writer);
		smtpd_reply(s, 451, "4.3.0", "Error: queue file write error");
		smtpd_txn_reset(s);
		return;
	}
	if ((size_t)idx >= srv->batch_alloc) {
		size_t n = srv->batch_alloc == 0 ? 16 : srv->batch_alloc * 2;

		while (n <= (size_t)idx)
			n *= 2;
		srv->batch_sessions = yz_realloc(srv->batch_sessions, n * sizeof(*srv->batch_sessions));
		memset(srv->batch_sessions + srv->batch_alloc, 0,
		       (n - srv->batch_alloc) * sizeof(*srv->batch_sessions));
		srv->batch_alloc = n;
	}
	srv->batch_sessions[idx] = s;
	s->in_commit = true;
	smtpd_session_hold(s);
	if (queue_batch_count(srv->batch) >= QUEUE_BATCH_MAX) {
		queue_commit_start(srv);
		return;
	}
	if (srv->commit_scheduled)
		return;
	srv->commit_scheduled = true;
	if (srv->set.group_commit_ms > 0)
		srv->commit_timer = yz_timer_add(srv->loop, srv->set.group_commit_ms,
						 queue_commit_cb, srv);
	else
		yz_loop_defer(srv->loop, queue_commit_cb, srv);
}

/* The session is going away: drop it from the batch. */
void smtpd_queue_forget(struct smtpd_server *srv, struct smtpd_session *s)
{
	size_t i, n;

	if (!s->in_commit)
		return;
	for (i = 0; srv->flight != NULL && i < srv->flight_count; i++) {
		if (srv->flight_sessions[i] == s) {
			srv->flight_sessions[i] = NULL;
			s->in_commit = false;
			if (s->refs > 0)
				s->refs--;
		}
	}
	if (srv->batch == NULL || !s->in_commit)
		return;
	n = queue_batch_count(srv->batch);
	for (i = 0; i < n && i < srv->batch_alloc; i++) {
		if (srv->batch_sessions[i] == s) {
			srv->batch_sessions[i] = NULL;
			s->in_commit = false;
			if (s->refs > 0)
				s->refs--;
		}
	}
}
