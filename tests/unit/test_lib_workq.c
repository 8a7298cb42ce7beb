/*
 * test_lib_workq.c: worker threads beside the loop: every accepted job is
 * worked in a thread and done in the loop exactly once; the queue bound
 * refuses beyond it; drain completes everything accepted; pause holds the
 * workers back; freeing with jobs in flight drops each job not done
 * exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/workq.h"

#define NJOBS 64

struct job {
	int worked;          /* set in the worker */
	int done;            /* set in the loop */
	int dropped;
	pthread_t worker;
	bool slow;
};

struct ctx {
	struct yz_loop *loop;
	size_t done;
	size_t want;
	pthread_t loop_thread;
};

static void work(void *arg)
{
	struct job *j = arg;
	j->worker = pthread_self();
	if (j->slow)
		usleep(20000);
	j->worked++;
}

static void done(void *arg, void *ctxp)
{
	struct job *j = arg;
	struct ctx *c = ctxp;
	assert_true(pthread_equal(pthread_self(), c->loop_thread));
	assert_int_equal(j->worked, 1);
	j->done++;
	c->done++;
	if (c->done == c->want)
		yz_loop_stop(c->loop);
}

static void drop(void *arg)
{
	struct job *j = arg;
	j->dropped++;
}

static void guard_cb(struct yz_loop *loop, void *arg)
{
	(void)arg;
	fail_msg("timeout");
	yz_loop_stop(loop);
}

static void test_all_jobs_done_once(void **state)
{
	(void)state;
	struct ctx c = { .loop = yz_loop_new(), .want = NJOBS, .loop_thread = pthread_self() };
	struct yz_workq_opts o = { .threads = 2, .max_queued = NJOBS };
	struct yz_workq *w = yz_workq_new(c.loop, &o, work, done, &c);
	assert_non_null(w);
	struct job *jobs = yz_calloc(NJOBS, sizeof *jobs);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(yz_workq_submit(w, &jobs[i]), 0);
	assert_int_equal(yz_workq_pending(w), NJOBS);
	/* The bound: one more is refused. */
	struct job extra;
	memset(&extra, 0, sizeof extra);
	assert_int_equal(yz_workq_submit(w, &extra), -1);
	assert_int_equal(c.done, 0); /* never from inside submit */
	struct yz_timer *g = yz_timer_add(c.loop, 10000, guard_cb, NULL);
	yz_loop_run(c.loop);
	yz_timer_del(c.loop, &g);
	assert_int_equal(c.done, NJOBS);
	assert_int_equal(yz_workq_pending(w), 0);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(jobs[i].worked, 1);
		assert_int_equal(jobs[i].done, 1);
		assert_false(pthread_equal(jobs[i].worker, c.loop_thread));
	}
	assert_int_equal(extra.worked, 0);
	/* Room again after they were done. */
	assert_int_equal(yz_workq_submit(w, &extra), 0);
	c.want = NJOBS + 1;
	g = yz_timer_add(c.loop, 10000, guard_cb, NULL);
	yz_loop_run(c.loop);
	yz_timer_del(c.loop, &g);
	assert_int_equal(extra.done, 1);
	yz_workq_free(&w, drop);
	assert_null(w);
	free(jobs);
	yz_loop_free(&c.loop);
}

static void test_free_drops_the_rest(void **state)
{
	(void)state;
	struct ctx c = { .loop = yz_loop_new(), .want = 1000, .loop_thread = pthread_self() };
	struct yz_workq_opts o = { .threads = 1, .max_queued = 16 };
	struct yz_workq *w = yz_workq_new(c.loop, &o, work, done, &c);
	assert_non_null(w);
	struct job jobs[8];
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < 8; i++) {
		jobs[i].slow = true;
		assert_int_equal(yz_workq_submit(w, &jobs[i]), 0);
	}
	usleep(5000); /* one is being worked on, most are queued */
	yz_workq_free(&w, drop);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(jobs[i].done, 0);
		assert_int_equal(jobs[i].dropped, 1);
		assert_true(jobs[i].worked <= 1);
	}
	yz_loop_free(&c.loop);
}

/* Drain completes every accepted job in the caller; pause holds them. */
static void test_drain_and_pause(void **state)
{
	(void)state;
	struct ctx c = { .loop = yz_loop_new(), .want = 1000, .loop_thread = pthread_self() };
	struct yz_workq_opts o = { .threads = 2, .max_queued = 16, .nice = 5 };
	struct yz_workq *w = yz_workq_new(c.loop, &o, work, done, &c);
	assert_non_null(w);
	struct job jobs[8];
	memset(jobs, 0, sizeof jobs);
	yz_workq_pause(w, true);
	for (int i = 0; i < 8; i++)
		assert_int_equal(yz_workq_submit(w, &jobs[i]), 0);
	usleep(20000);
	for (int i = 0; i < 8; i++)
		assert_int_equal(jobs[i].worked, 0); /* held back */
	yz_workq_pause(w, false);
	yz_workq_drain(w);
	assert_int_equal(c.done, 8);
	assert_int_equal(yz_workq_pending(w), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(jobs[i].worked, 1);
		assert_int_equal(jobs[i].done, 1);
	}
	yz_workq_drain(w); /* nothing accepted: returns at once */
	assert_int_equal(c.done, 8);
	yz_workq_free(&w, drop);
	for (int i = 0; i < 8; i++)
		assert_int_equal(jobs[i].dropped, 0);
	yz_loop_free(&c.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_jobs_done_once),
		cmocka_unit_test(test_free_drops_the_rest),
		cmocka_unit_test(test_drain_and_pause),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
