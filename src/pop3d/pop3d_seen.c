/*
 * pop3d_seen.c: marking retrieved messages seen off the event loop.
 *
 * Marking a Maildir message seen is a rename (new/x -> cur/x:2,S), and a
 * rename is most of what a bulk RETR costs the kernel. So RETR only queues
 * it: one marker thread per server (a yz_workq) renames, relative to the
 * session's open new/ and cur/ directories, and the loop applies the
 * results; it goes on streaming meanwhile (on the other core).
 *
 * Guarantees:
 * - A session with renames in flight (s->seen_pending > 0) keeps its lock,
 *   its directory fds and its snapshot: an ended one (QUIT answered, or
 *   dropped) lingers without io and is freed only once they are applied,
 *   so the next session of the mailbox sees every mark, as it did when
 *   RETR renamed in place; a login of that mailbox in this process waits
 *   for it (pop3_cmd_drop_released) instead of answering [IN-USE]. UPDATE
 *   waits for the marks of the messages it expunges. The thread never
 *   touches session memory: a job carries copies of the names, and the
 *   loop applies the result.
 * - A rename that finds the file gone (ENOENT) is retried in the loop by
 *   maildir_set_flags_at, which finds a moved message by its unique part.
 * - Bounded: at most POP3D_SEEN_QUEUE_MAX jobs wait; beyond that, or when
 *   the thread cannot start, RETR renames in place as before.
 * - pop3_seen_free joins the thread, then renames what it had not and
 *   applies every result, so no session is left waiting.
 * Never: logs or allocates in the thread; blocks the loop on the thread
 * except in pop3_seen_free.
 */
#include "pop3d/pop3d_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/workq.h"
#include "store/mailbox/maildir.h"

/* One rename to do, then its result. */
struct seen_job {
	struct pop3_session *s;
	size_t msg;          /* index in s->msgs */
	int from_fd, to_fd;  /* the session's new/ or cur/, and its cur/ */
	bool worked;         /* the rename was tried */
	int err;             /* 0, or errno of renameat */
	char std[8];         /* the new standard flags */
	char from[NAME_MAX + 1];
	char to[NAME_MAX + 1];
};

/* The marker thread's work: one rename. */
static void seen_work(void *arg)
{
	struct seen_job *j = arg;
	j->err = renameat(j->from_fd, j->from, j->to_fd, j->to) == 0 ? 0 : errno;
	j->worked = true;
}

/* Apply one result to its session (in the loop); frees the job. */
static void job_apply(struct seen_job *j, bool settle)
{
	struct pop3_session *s = j->s;
	struct maildir_msg *m = &s->msgs[j->msg];

	if (j->err == 0) {
		free(m->name);
		m->name = yz_strdup(j->to);
		m->in_new = false;
		memcpy(m->flags, j->std, sizeof m->flags);
	} else if (j->err != ENOENT ||
		   maildir_set_flags_at(s->new_fd, s->cur_fd, s->folder_dir, m, j->std) < 0) {
		int e = j->err != ENOENT ? j->err : errno;
		yz_log_warn("pop3: cannot mark %s seen: %s", m->name, strerror(e));
	}
	s->seen_queued[j->msg] = 0;
	s->seen_pending--;
	free(j);
	if (s->seen_pending == 0 && settle)
		pop3_session_settled(s);
}

/* A result handed back to the loop. */
static void seen_done(void *job, void *arg)
{
	(void)arg;
	job_apply(job, true);
}

/* At pop3_seen_free: finish a job here, without session callbacks. */
static void seen_drop(void *job)
{
	struct seen_job *j = job;
	if (!j->worked)
		seen_work(j);
	job_apply(j, false);
}

/* Start the marker if it is not running; false if it cannot run. */
static bool seen_start(struct pop3d *d)
{
	if (d->seen == NULL && !d->seen_failed) {
		const struct yz_workq_opts o = {
			.threads = 1,
			.max_queued = POP3D_SEEN_QUEUE_MAX,
			.nice = POP3D_SEEN_NICE, /* retrieval first; marks catch up */
		};
		d->seen = yz_workq_new(d->loop, &o, seen_work, seen_done, d);
		if (d->seen == NULL) {
			yz_log_warn("pop3: seen flags are set in the event loop");
			d->seen_failed = true;
		}
	}
	return d->seen != NULL;
}

/* RETR sent message i in full: mark it seen (see the header). */
void pop3_seen_mark(struct pop3_session *s, size_t i)
{
	struct pop3d *d = s->d;
	struct maildir_msg *m = &s->msgs[i];
	char flags[sizeof m->flags + 1];

	if (strchr(m->flags, 'S') != NULL || s->seen_queued[i])
		return;
	snprintf(flags, sizeof flags, "%sS", m->flags);
	int from_fd = m->in_new ? s->new_fd : s->cur_fd;
	struct seen_job *j = NULL;
	if (from_fd >= 0 && s->cur_fd >= 0 && seen_start(d)) {
		j = yz_calloc(1, sizeof *j);
		if (maildir_flagged_name(m->name, flags, j->std, j->to, sizeof j->to) < 0 ||
		    snprintf(j->from, sizeof j->from, "%s", m->name) >= (int)sizeof j->from) {
			yz_log_warn("pop3: cannot mark %s seen: %s", m->name, strerror(errno));
			free(j);
			return;
		}
		j->s = s;
		j->msg = i;
		j->from_fd = from_fd;
		j->to_fd = s->cur_fd;
		if (yz_workq_submit(d->seen, j) == 0) {
			s->seen_queued[i] = 1;
			s->seen_pending++;
			return;
		}
		free(j); /* POP3D_SEEN_QUEUE_MAX waiting: rename here */
	}
	if (maildir_set_flags_at(s->new_fd, s->cur_fd, s->folder_dir, m, flags) < 0)
		yz_log_warn("pop3: cannot mark %s seen: %s", m->name, strerror(errno));
}

/* Tests: hold the thread (queued marks wait), or let it go on. */
void pop3_seen_hold(struct pop3d *d, bool hold)
{
	if (seen_start(d))
		yz_workq_pause(d->seen, hold);
}

/* Stop the marker; rename what it had not, apply every result (no session
 * callbacks: the server is going away). */
void pop3_seen_free(struct pop3d *d)
{
	yz_workq_free(&d->seen, seen_drop);
}
