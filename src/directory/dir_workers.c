/*
 * dir_workers.c: the directory role's hashing threads (see dir_workers.h).
 *
 * One mutex guards two FIFO lists of nodes: todo (taken by the workers one
 * at a time) and done (handed back to the loop through an eventfd, all at
 * once). The loop owns the count of pending jobs.
 */
#include "directory/dir_workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"

/* Most threads a pool starts. */
#define DIR_WORKERS_MAX 64

struct dw_node {
	struct dw_node *next;
	void *job;
};

struct dir_workers {
	struct yz_loop *loop;
	dir_work_fn *work;
	dir_done_fn *done;
	void *arg;
	pthread_t threads[DIR_WORKERS_MAX];
	size_t nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dw_node *todo, **todo_tail; /* guarded by mu */
	struct dw_node *fin, **fin_tail;   /* done, not delivered; guarded by mu */
	bool quit;                         /* guarded by mu */
	int efd;
	size_t pending, max_queued;        /* loop thread only */
};

/* Worker: take a job, work, hand it back; until quit. */
static void *dw_main(void *arg)
{
	struct dir_workers *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->todo == NULL && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break; /* queued jobs are dropped by dir_workers_free */
		struct dw_node *n = w->todo;
		w->todo = n->next;
		if (w->todo == NULL)
			w->todo_tail = &w->todo;
		n->next = NULL;
		pthread_mutex_unlock(&w->mu);
		w->work(n->job);
		pthread_mutex_lock(&w->mu);
		bool wake = w->fin == NULL;
		*w->fin_tail = n;
		w->fin_tail = &n->next;
		if (wake) {
			uint64_t one = 1;
			while (write(w->efd, &one, sizeof one) < 0 && errno == EINTR)
				;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Take the finished list. */
static struct dw_node *dw_take_fin(struct dir_workers *w)
{
	pthread_mutex_lock(&w->mu);
	struct dw_node *list = w->fin;
	w->fin = NULL;
	w->fin_tail = &w->fin;
	pthread_mutex_unlock(&w->mu);
	return list;
}

/* The eventfd: deliver finished jobs. */
static void dw_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct dir_workers *w = arg;
	uint64_t v;

	(void)loop;
	(void)events;
	while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	struct dw_node *list = dw_take_fin(w);
	while (list != NULL) {
		struct dw_node *n = list;
		list = n->next;
		void *job = n->job;
		free(n);
		w->pending--;
		w->done(job, w->arg);
	}
}

/* Start the pool. */
struct dir_workers *dir_workers_new(struct yz_loop *loop, size_t nthreads, size_t max_queued,
				    dir_work_fn *work, dir_done_fn *done, void *arg)
{
	struct dir_workers *w = yz_calloc(1, sizeof *w);
	w->loop = loop;
	w->work = work;
	w->done = done;
	w->arg = arg;
	w->max_queued = max_queued > 0 ? max_queued : 1;
	w->todo_tail = &w->todo;
	w->fin_tail = &w->fin;
	if (nthreads == 0)
		nthreads = 1;
	if (nthreads > DIR_WORKERS_MAX)
		nthreads = DIR_WORKERS_MAX;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		yz_log_warn("password checks run in the event loop: eventfd: %s", strerror(errno));
		free(w);
		return NULL;
	}
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		yz_log_warn("password checks run in the event loop: no mutex");
		close(w->efd);
		free(w);
		return NULL;
	}
	if (pthread_cond_init(&w->cv, NULL) != 0 ||
	    yz_loop_add_fd(loop, w->efd, YZ_EV_READ, dw_fd_cb, w) < 0) {
		yz_log_warn("password checks run in the event loop: cannot set up the workers");
		pthread_mutex_destroy(&w->mu);
		close(w->efd);
		free(w);
		return NULL;
	}
	for (size_t i = 0; i < nthreads; i++) {
		int rc = pthread_create(&w->threads[i], NULL, dw_main, w);
		if (rc != 0) {
			yz_log_warn("password check thread %zu: %s", i + 1, strerror(rc));
			break;
		}
		w->nthreads++;
	}
	if (w->nthreads == 0) {
		dir_workers_free(&w, NULL);
		return NULL;
	}
	return w;
}

/* Queue a job. */
int dir_workers_submit(struct dir_workers *w, void *job)
{
	if (w->pending >= w->max_queued)
		return -1;
	struct dw_node *n = yz_calloc(1, sizeof *n);
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
size_t dir_workers_pending(const struct dir_workers *w)
{
	return w->pending;
}

/* Give a list of nodes' jobs to drop and free the nodes. */
static void dw_drop_list(struct dw_node *list, void (*drop)(void *job))
{
	while (list != NULL) {
		struct dw_node *n = list;
		list = n->next;
		if (drop != NULL)
			drop(n->job);
		free(n);
	}
}

/* Stop the threads and drop what is left. */
void dir_workers_free(struct dir_workers **wp, void (*drop)(void *job))
{
	struct dir_workers *w = *wp;
	if (w == NULL)
		return;
	*wp = NULL;
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	dw_drop_list(w->todo, drop);
	dw_drop_list(w->fin, drop);
	yz_loop_del_fd(w->loop, w->efd);
	close(w->efd);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
