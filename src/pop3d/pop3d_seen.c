/*
 * pop3d_seen.c: marking retrieved messages seen off the event loop.
 *
 * Marking a Maildir message seen is a rename (new/x -> cur/x:2,S), and a
 * rename is most of what a bulk RETR costs the kernel. So RETR only queues
 * it: one marker thread per server renames, relative to the session's open
 * new/ and cur/ directories, and hands the results back through an eventfd;
 * the loop goes on streaming meanwhile (on the other core).
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
 * - pop3_seen_free runs what is queued, joins the thread and applies the
 *   results, so no session is left waiting.
 * Never: logs or allocates in the thread beyond its own job list; blocks the
 * loop on the thread except in pop3_seen_free.
 */
#include "pop3d/pop3d_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "store/mailbox/maildir.h"

/* One rename to do, then its result. */
struct seen_job {
	struct seen_job *next;
	struct pop3_session *s;
	size_t msg;          /* index in s->msgs */
	int from_fd, to_fd;  /* the session's new/ or cur/, and its cur/ */
	int err;             /* 0, or errno of renameat */
	char std[8];         /* the new standard flags */
	char from[NAME_MAX + 1];
	char to[NAME_MAX + 1];
};

struct pop3_seen {
	struct pop3d *d;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct seen_job *todo, **todo_tail; /* FIFO, guarded by mu */
	struct seen_job *done, **done_tail; /* FIFO, guarded by mu */
	size_t queued;                      /* jobs not yet applied (loop only) */
	bool quit;
	bool hold;                          /* tests: the thread takes no job */
	int efd;                            /* eventfd: results ready */
};

/* Thread body: rename everything queued, report, repeat. */
static void *seen_main(void *arg)
{
	struct pop3_seen *w = arg;

	/* Below the sessions: while they want the CPU, retrieval goes first
	 * and the marks catch up (the queue bound pushes back). */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), POP3D_SEEN_NICE);

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while ((w->todo == NULL || w->hold) && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->todo == NULL)
			break; /* quit, and nothing left */
		struct seen_job *batch = w->todo;
		w->todo = NULL;
		w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->mu);
		struct seen_job *last = NULL;
		for (struct seen_job *j = batch; j != NULL; j = j->next) {
			j->err = renameat(j->from_fd, j->from, j->to_fd, j->to) == 0 ? 0 : errno;
			last = j;
		}
		pthread_mutex_lock(&w->mu);
		*w->done_tail = batch;
		w->done_tail = &last->next;
		uint64_t one = 1;
		while (write(w->efd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Apply one result to its session (in the loop). */
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
	if (s->seen_pending == 0 && settle)
		pop3_session_settled(s);
}

/* Take the results handed back and apply them. */
static void seen_collect(struct pop3_seen *w, bool settle)
{
	pthread_mutex_lock(&w->mu);
	struct seen_job *list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	while (list != NULL) {
		struct seen_job *j = list;
		list = j->next;
		w->queued--;
		job_apply(j, settle);
		free(j);
	}
}

/* The eventfd: results are ready. */
static void seen_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	uint64_t v;

	(void)loop;
	(void)events;
	while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	seen_collect(arg, true);
}

/* Start the marker; NULL (RETR renames in place) on failure. */
static struct pop3_seen *seen_start(struct pop3d *d)
{
	struct pop3_seen *w = yz_calloc(1, sizeof *w);

	w->d = d;
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0)
		goto fail;
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		goto fail_fd;
	if (pthread_cond_init(&w->cv, NULL) != 0)
		goto fail_mu;
	if (yz_loop_add_fd(d->loop, w->efd, YZ_EV_READ, seen_fd_cb, w) < 0)
		goto fail_cv;
	int rc = pthread_create(&w->thread, NULL, seen_main, w);
	if (rc == 0)
		return w;
	errno = rc;
	yz_loop_del_fd(d->loop, w->efd);
fail_cv:
	pthread_cond_destroy(&w->cv);
fail_mu:
	pthread_mutex_destroy(&w->mu);
fail_fd:
	close(w->efd);
fail:
	yz_log_warn("pop3: seen flags are set in the event loop: %s", strerror(errno));
	free(w);
	return NULL;
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
	if (d->seen == NULL && !d->seen_failed && s->new_fd >= 0 && s->cur_fd >= 0) {
		d->seen = seen_start(d);
		d->seen_failed = d->seen == NULL;
	}
	struct pop3_seen *w = d->seen;
	int from_fd = m->in_new ? s->new_fd : s->cur_fd;
	if (w == NULL || from_fd < 0 || s->cur_fd < 0 || w->queued >= POP3D_SEEN_QUEUE_MAX) {
		if (maildir_set_flags_at(s->new_fd, s->cur_fd, s->folder_dir, m, flags) < 0)
			yz_log_warn("pop3: cannot mark %s seen: %s", m->name, strerror(errno));
		return;
	}
	struct seen_job *j = yz_calloc(1, sizeof *j);
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
	s->seen_queued[i] = 1;
	s->seen_pending++;
	w->queued++;
	pthread_mutex_lock(&w->mu);
	bool idle = w->todo == NULL;
	*w->todo_tail = j;
	w->todo_tail = &j->next;
	if (idle)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Tests: hold the thread (queued marks wait), or let it go on. */
void pop3_seen_hold(struct pop3d *d, bool hold)
{
	if (d->seen == NULL && !d->seen_failed) {
		d->seen = seen_start(d);
		d->seen_failed = d->seen == NULL;
	}
	struct pop3_seen *w = d->seen;
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->hold = hold;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Finish what is queued, stop the thread, apply the results (no session
 * callbacks: the server is going away). */
void pop3_seen_free(struct pop3d *d)
{
	struct pop3_seen *w = d->seen;

	if (w == NULL)
		return;
	d->seen = NULL;
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	seen_collect(w, false);
	yz_loop_del_fd(d->loop, w->efd);
	close(w->efd);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
