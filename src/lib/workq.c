/*
 * workq.c: worker threads beside an event loop (see workq.h).
 *
 * One mutex guards two FIFO lists of nodes, todo (taken by the workers one
 * at a time) and fin (worked, handed back to the loop all at once through
 * an eventfd, written only when fin goes from empty to not empty), plus the
 * count of jobs being worked on. The loop alone owns the count of jobs
 * accepted and not yet done.
 */
#include "lib/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"

/* Most workers one queue starts. */
#define YZ_WORKQ_THREADS_MAX 64

struct wq_node {
	struct wq_node *next;
	void *job;
};

struct yz_workq {
	struct yz_loop *loop;
	yz_work_fn *work;
	yz_done_fn *done;
	void *arg;
	int nice;
	pthread_t threads[YZ_WORKQ_THREADS_MAX];
	size_t nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;               /* todo, pause or quit changed */
	pthread_cond_t idle_cv;          /* a job was handed back */
	struct wq_node *todo, **todo_tail; /* guarded by mu */
	struct wq_node *fin, **fin_tail;   /* guarded by mu */
	size_t busy;                     /* jobs being worked on; guarded by mu */
	bool paused, quit;               /* guarded by mu */
	int efd;
	size_t pending, max_queued;      /* loop thread only */
};

/* Worker: take a job, work, hand it back; until quit. */
static void *wq_main(void *arg)
{
	struct yz_workq *w = arg;

	if (w->nice != 0)
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while ((w->todo == NULL || w->paused) && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break; /* what is still queued goes to drop() */
		struct wq_node *n = w->todo;
		w->todo = n->next;
		if (w->todo == NULL)
			w->todo_tail = &w->todo;
		n->next = NULL;
		w->busy++;
		pthread_mutex_unlock(&w->mu);
		w->work(n->job);
		pthread_mutex_lock(&w->mu);
		w->busy--;
		bool wake = w->fin == NULL;
		*w->fin_tail = n;
		w->fin_tail = &n->next;
		pthread_cond_broadcast(&w->idle_cv);
		if (wake) {
			uint64_t one = 1;
			while (write(w->efd, &one, sizeof one) < 0 && errno == EINTR)
				;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Take the list of jobs handed back. */
static struct wq_node *wq_take_fin(struct yz_workq *w)
{
	pthread_mutex_lock(&w->mu);
	struct wq_node *list = w->fin;
	w->fin = NULL;
	w->fin_tail = &w->fin;
	pthread_mutex_unlock(&w->mu);
	return list;
}

/* Run done() for a list of handed-back jobs. */
static void wq_deliver(struct yz_workq *w, struct wq_node *list)
{
	while (list != NULL) {
		struct wq_node *n = list;
		list = n->next;
		void *job = n->job;
		free(n);
		w->pending--;
		w->done(job, w->arg);
	}
}

/* The eventfd: jobs were handed back. */
static void wq_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct yz_workq *w = arg;
	uint64_t v;

	(void)loop;
	(void)events;
	while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	wq_deliver(w, wq_take_fin(w));
}

/* Start the workers. */
struct yz_workq *yz_workq_new(struct yz_loop *loop, const struct yz_workq_opts *opts,
			      yz_work_fn *work, yz_done_fn *done, void *arg)
{
	struct yz_workq *w = yz_calloc(1, sizeof *w);
	w->loop = loop;
	w->work = work;
	w->done = done;
	w->arg = arg;
	w->nice = opts->nice;
	w->max_queued = opts->max_queued > 0 ? opts->max_queued : 1;
	w->todo_tail = &w->todo;
	w->fin_tail = &w->fin;
	size_t nthreads = opts->threads > 0 ? opts->threads : 1;
	if (nthreads > YZ_WORKQ_THREADS_MAX)
		nthreads = YZ_WORKQ_THREADS_MAX;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		yz_log_warn("worker threads: eventfd: %s", strerror(errno));
		free(w);
		return NULL;
	}
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		yz_log_warn("worker threads: no mutex");
		close(w->efd);
		free(w);
		return NULL;
	}
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->idle_cv, NULL);
	if (yz_loop_add_fd(loop, w->efd, YZ_EV_READ, wq_fd_cb, w) < 0) {
		yz_log_warn("worker threads: cannot watch the eventfd");
		pthread_cond_destroy(&w->idle_cv);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		close(w->efd);
		free(w);
		return NULL;
	}
	for (size_t i = 0; i < nthreads; i++) {
		int rc = pthread_create(&w->threads[i], NULL, wq_main, w);
		if (rc != 0) {
			yz_log_warn("worker thread %zu: %s", i + 1, strerror(rc));
			break;
		}
		w->nthreads++;
	}
	if (w->nthreads == 0) {
		yz_workq_free(&w, NULL);
		return NULL;
	}
	return w;
}

/* Hand a job over. */
int yz_workq_submit(struct yz_workq *w, void *job)
{
	if (w->pending >= w->max_queued)
		return -1;
	struct wq_node *n = yz_calloc(1, sizeof *n);
	n->job = job;
	w->pending++;
	pthread_mutex_lock(&w->mu);
	*w->todo_tail = n;
	w->todo_tail = &n->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* Jobs not yet done. */
size_t yz_workq_pending(const struct yz_workq *w)
{
	return w->pending;
}

/* Hold the workers back, or let them go on. */
void yz_workq_pause(struct yz_workq *w, bool pause)
{
	pthread_mutex_lock(&w->mu);
	w->paused = pause;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Wait for every accepted job, then complete them here. */
void yz_workq_drain(struct yz_workq *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->todo != NULL || w->busy > 0)
		pthread_cond_wait(&w->idle_cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	wq_deliver(w, wq_take_fin(w));
}

/* Give a list of nodes' jobs to drop and free the nodes. */
static void wq_drop_list(struct wq_node *list, void (*drop)(void *job))
{
	while (list != NULL) {
		struct wq_node *n = list;
		list = n->next;
		if (drop != NULL)
			drop(n->job);
		free(n);
	}
}

/* Stop the workers and drop what is left. */
void yz_workq_free(struct yz_workq **wp, void (*drop)(void *job))
{
	struct yz_workq *w = *wp;
	if (w == NULL)
		return;
	*wp = NULL;
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	wq_drop_list(w->fin, drop);
	wq_drop_list(w->todo, drop);
	yz_loop_del_fd(w->loop, w->efd);
	close(w->efd);
	pthread_cond_destroy(&w->idle_cv);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
