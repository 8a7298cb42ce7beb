/*
 * dir_workers.h: a small pool of threads for the directory role's password
 * hashing, so that argon2id (tens of milliseconds each) runs on every core
 * and never stalls the event loop that answers lookups.
 *
 * Guarantees: work(job) runs in a worker thread, done(job) in the loop's
 * thread, exactly once per accepted job, in any order; at most max_queued
 * jobs are accepted but not yet done (submit refuses beyond); after
 * dir_workers_free nothing runs and every job not done was given to drop().
 * Must never: call done() from inside dir_workers_submit; touch a job from
 * two threads at once.
 */
#ifndef YZ_DIRECTORY_DIR_WORKERS_H
#define YZ_DIRECTORY_DIR_WORKERS_H

#include <stddef.h>

struct yz_loop;
struct dir_workers;

/* Runs in a worker thread. */
typedef void dir_work_fn(void *job);
/* Runs in the loop's thread once work(job) returned. */
typedef void dir_done_fn(void *job, void *arg);

/* nthreads workers (at least 1) on loop; NULL if no thread could start
 * (the caller then works in its own thread). */
struct dir_workers *dir_workers_new(struct yz_loop *loop, size_t nthreads, size_t max_queued,
				    dir_work_fn *work, dir_done_fn *done, void *arg);
/* Queue a job: 0, or -1 when max_queued jobs are already in the pool. */
int dir_workers_submit(struct dir_workers *w, void *job);
/* Jobs accepted and not yet done. */
size_t dir_workers_pending(const struct dir_workers *w);
/* Stop: wait for the jobs being worked on, then give every job not done
 * (queued, worked or finished) to drop(job). */
void dir_workers_free(struct dir_workers **w, void (*drop)(void *job));

#endif
