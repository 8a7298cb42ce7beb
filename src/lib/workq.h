/*
 * workq.h: worker threads beside an event loop, for work that would stall
 * it: a blocking system call (fdatasync, rename) or a long computation
 * (argon2id). The loop hands jobs over; each job's work runs in a worker
 * thread, and its completion runs back in the loop's thread.
 *
 * Guarantees: work(job) runs in a worker thread and done(job) in the loop's
 * thread, each exactly once per accepted job, done never from inside
 * yz_workq_submit; at most max_queued jobs are accepted and not yet done;
 * yz_workq_drain returns once every accepted job was done; after
 * yz_workq_free no thread runs and every job not done was handed to drop().
 * Must never: touch a job from two threads at once (a job belongs to the
 * worker between being taken and being handed back, to the loop otherwise);
 * block the loop except in drain and free.
 */
#ifndef YZ_WORKQ_H
#define YZ_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

struct yz_loop;
struct yz_workq;

/* Runs in a worker thread: may block, must touch only the job. */
typedef void yz_work_fn(void *job);
/* Runs in the loop's thread once work(job) returned. */
typedef void yz_done_fn(void *job, void *arg);

struct yz_workq_opts {
	size_t threads;    /* workers to start (0 means 1) */
	size_t max_queued; /* jobs accepted and not yet done (0 means 1) */
	int nice;          /* the workers' nice value (0: as the process) */
};

/* Workers for loop; NULL if none could start (the caller then does the
 * work in its own thread). */
struct yz_workq *yz_workq_new(struct yz_loop *loop, const struct yz_workq_opts *opts,
			      yz_work_fn *work, yz_done_fn *done, void *arg);
/* Hand a job over: 0, or -1 when max_queued jobs are already accepted. */
int yz_workq_submit(struct yz_workq *w, void *job);
/* Jobs accepted and not yet done. */
size_t yz_workq_pending(const struct yz_workq *w);
/* Stop (true) or let (false) the workers take jobs; jobs being worked on
 * finish. For tests that need work held back. */
void yz_workq_pause(struct yz_workq *w, bool pause);
/* Wait until every accepted job was worked, then run their done() here.
 * Not while paused with jobs queued (it would wait for ever). */
void yz_workq_drain(struct yz_workq *w);
/* Stop: wait for the jobs being worked on, join the workers, then give
 * every job not done (queued, or worked and not yet handed back) to
 * drop(job); drop may be NULL. Sets *w to NULL. */
void yz_workq_free(struct yz_workq **w, void (*drop)(void *job));

#endif
