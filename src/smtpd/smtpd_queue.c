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
 * renames) runs in one committer thread, so that the loop keeps serving
 * every other session while the disk syncs: the next batch gathers during
 * the sync and is committed as soon as it ends (one commit in flight at a
 * time). The thread touches nothing but the batch it was handed and the
 * store's segment writer; the loop thread does not commit meanwhile.
 * Results come back through an eventfd. Where the thread cannot be
 * started, commits run in the loop as before. At exit,
 * smtpd_queue_commit_now() waits for the commit in flight and commits
 * what is left in the loop thread.
 */
#include "smtpd/smtpd_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/ipc.h"
#include "lib/ipc_msg.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/service.h"

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

/* The committer thread and its hand-over slot. */
struct smtpd_committer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct queue_batch *job; /* to commit; NULL when idle */
	bool done;               /* job committed, results not yet taken */
	bool quit;
	int efd;                 /* eventfd: "done", read by the loop */
};

/* Thread body: commit each batch handed over, then say so. */
static void *committer_main(void *arg)
{
	struct smtpd_committer *cm = arg;

	pthread_mutex_lock(&cm->mu);
	for (;;) {
		while ((cm->job == NULL || cm->done) && !cm->quit)
			pthread_cond_wait(&cm->cv, &cm->mu);
		if (cm->job == NULL || cm->done)
			break; /* quit, and nothing left to commit */
		struct queue_batch *b = cm->job;
		pthread_mutex_unlock(&cm->mu);
		(void)queue_batch_commit(b);
		pthread_mutex_lock(&cm->mu);
		cm->done = true;
		pthread_cond_broadcast(&cm->cv); /* flight_collect(wait) */
		uint64_t one = 1;
		while (write(cm->efd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&cm->mu);
	return NULL;
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

/* Take the results of the commit in flight, if it is done (wait: block
 * until it is). false if none was in flight or it is still running. */
static bool flight_collect(struct smtpd_server *srv, bool wait)
{
	struct smtpd_committer *cm = srv->committer;

	if (cm == NULL || srv->flight == NULL)
		return false;
	pthread_mutex_lock(&cm->mu);
	while (wait && !cm->done)
		pthread_cond_wait(&cm->cv, &cm->mu);
	bool done = cm->done;
	if (done) {
		cm->done = false;
		cm->job = NULL;
	}
	pthread_mutex_unlock(&cm->mu);
	if (!done)
		return false;
	struct queue_batch *b = srv->flight;
	struct smtpd_session **sessions = srv->flight_sessions;
	size_t n = srv->flight_count;
	srv->flight = NULL;
	srv->flight_sessions = NULL;
	srv->flight_count = 0;
	commit_finish(srv, b, sessions, n);
	return true;
}

static void queue_commit_cb(struct yz_loop *loop, void *arg);

/* The committer says a commit ended: answer, then start the next one. */
static void committer_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct smtpd_server *srv = arg;
	uint64_t v;

	(void)loop;
	(void)events;
	while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	if (!flight_collect(srv, false))
		return;
	/* What gathered during the sync goes now: it has waited already. */
	if (srv->batch != NULL) {
		yz_timer_del(srv->loop, &srv->commit_timer);
		srv->commit_scheduled = true;
		yz_loop_defer(srv->loop, queue_commit_cb, srv);
	}
}

/* Start the committer thread; NULL (commits stay in the loop) on failure. */
static struct smtpd_committer *committer_start(struct smtpd_server *srv)
{
	struct smtpd_committer *cm = yz_calloc(1, sizeof *cm);

	cm->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cm->efd < 0 || pthread_mutex_init(&cm->mu, NULL) != 0) {
		yz_log_warn("commits run in the event loop: eventfd: %s", strerror(errno));
		if (cm->efd >= 0)
			close(cm->efd);
		free(cm);
		return NULL;
	}
	pthread_cond_init(&cm->cv, NULL);
	int err = pthread_create(&cm->thread, NULL, committer_main, cm);
	if (err != 0 || yz_loop_add_fd(srv->loop, cm->efd, YZ_EV_READ, committer_fd_cb, srv) < 0) {
		yz_log_warn("commits run in the event loop: %s",
			    err != 0 ? strerror(err) : "cannot watch the eventfd");
		if (err == 0) {
			pthread_mutex_lock(&cm->mu);
			cm->quit = true;
			pthread_cond_broadcast(&cm->cv);
			pthread_mutex_unlock(&cm->mu);
			pthread_join(cm->thread, NULL);
		}
		pthread_cond_destroy(&cm->cv);
		pthread_mutex_destroy(&cm->mu);
		close(cm->efd);
		free(cm);
		return NULL;
	}
	return cm;
}

void smtpd_queue_committer_stop(struct smtpd_server *srv)
{
	struct smtpd_committer *cm = srv->committer;

	if (cm == NULL)
		return;
	/* The commit in flight ends first (its messages are durable; the
	 * queue role finds them when it rescans). */
	(void)flight_collect(srv, true);
	pthread_mutex_lock(&cm->mu);
	cm->quit = true;
	pthread_cond_broadcast(&cm->cv);
	pthread_mutex_unlock(&cm->mu);
	pthread_join(cm->thread, NULL);
	yz_loop_del_fd(srv->loop, cm->efd);
	close(cm->efd);
	pthread_cond_destroy(&cm->cv);
	pthread_mutex_destroy(&cm->mu);
	free(cm);
	srv->committer = NULL;
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
		return; /* committer_fd_cb starts it */
	}
	if (srv->committer == NULL && srv->batch != NULL)
		srv->committer = committer_start(srv);
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
	pthread_mutex_lock(&srv->committer->mu);
	srv->committer->job = batch;
	srv->committer->done = false;
	pthread_cond_broadcast(&srv->committer->cv);
	pthread_mutex_unlock(&srv->committer->mu);
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

	(void)flight_collect(srv, true);
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
