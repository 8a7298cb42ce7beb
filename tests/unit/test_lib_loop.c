/*
 * test_lib_loop.c: the event loop (loop.h): timer order and deletion from
 * callbacks, deferred calls, signals through signalfd, fd registration and
 * deletion from inside callbacks (also of an fd pending in the same batch),
 * the loop ending when nothing is left, and the system call accounting:
 * restating an unchanged interest set costs no epoll_ctl, and what the loop
 * believes is registered is what the kernel shows in /proc/self/fdinfo.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/loop.h"

#define LOG_MAX 32

struct trace {
	struct yz_loop *loop;
	int log[LOG_MAX];
	size_t n;
	struct yz_timer *victim;
	struct yz_timer *self;
};

static void trace_push(struct trace *t, int v)
{
	assert_true(t->n < LOG_MAX);
	t->log[t->n++] = v;
}

struct tagged {
	struct trace *t;
	int tag;
};

static void on_timer(struct yz_loop *loop, void *arg)
{
	struct tagged *g = arg;
	trace_push(g->t, g->tag);
}

static void on_fail_timer(struct yz_loop *loop, void *arg)
{
	fail_msg("guard timer fired: the test hung");
}

/* Timers fire by deadline, ties in creation order. */
static void test_timer_order(void **state)
{
	struct trace t = { .loop = yz_loop_new() };
	struct tagged g[5] = { { &t, 30 }, { &t, 10 }, { &t, 20 }, { &t, 11 }, { &t, 0 } };
	uint64_t start = yz_now_ms();
	yz_timer_add(t.loop, 30, on_timer, &g[0]);
	yz_timer_add(t.loop, 10, on_timer, &g[1]);
	yz_timer_add(t.loop, 20, on_timer, &g[2]);
	yz_timer_add(t.loop, 10, on_timer, &g[3]);
	yz_timer_add(t.loop, 0, on_timer, &g[4]);
	assert_int_equal(yz_loop_run(t.loop), 0); /* ends when nothing is left */
	assert_true(yz_now_ms() - start >= 30);
	assert_int_equal(t.n, 5);
	int want[5] = { 0, 10, 11, 20, 30 };
	for (int i = 0; i < 5; i++)
		assert_int_equal(t.log[i], want[i]);
	yz_loop_free(&t.loop);
	assert_null(t.loop);
}

/* A timer deletes another one due in the same pass, and itself. */
static void on_killer(struct yz_loop *loop, void *arg)
{
	struct trace *t = arg;
	trace_push(t, 1);
	yz_timer_del(loop, &t->victim);
	assert_null(t->victim);
	yz_timer_del(loop, &t->self); /* itself: a no-op while it fires */
	assert_null(t->self);
	yz_timer_del(loop, NULL);
}

static void on_victim(struct yz_loop *loop, void *arg)
{
	struct trace *t = arg;
	trace_push(t, 2);
}

static void test_timer_delete_from_callback(void **state)
{
	struct trace t = { .loop = yz_loop_new() };
	t.self = yz_timer_add(t.loop, 5, on_killer, &t);
	t.victim = yz_timer_add(t.loop, 5, on_victim, &t);
	struct tagged late = { &t, 3 };
	struct yz_timer *never = yz_timer_add(t.loop, 1000, on_timer, &late);
	yz_timer_add(t.loop, 15, on_timer, &late);
	yz_timer_del(t.loop, &never);
	assert_int_equal(yz_loop_run(t.loop), 0);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.log[0], 1);
	assert_int_equal(t.log[1], 3);
	yz_loop_free(&t.loop);
}

/* Many timers, random-ish deadlines and deletions: heap order holds. */
static void on_order_timer(struct yz_loop *loop, void *arg)
{
	struct trace *t = arg;
	static uint64_t last;
	uint64_t now = yz_now_ms();
	if (t->n > 0)
		assert_true(now >= last);
	last = now;
	t->n++;
}

static void test_timer_heap(void **state)
{
	struct trace t = { .loop = yz_loop_new() };
	struct yz_timer *timers[200];
	for (int i = 0; i < 200; i++)
		timers[i] = yz_timer_add(t.loop, (uint64_t)((i * 37) % 23), on_order_timer, &t);
	for (int i = 0; i < 200; i += 3)
		yz_timer_del(t.loop, &timers[i]);
	assert_int_equal(yz_loop_run(t.loop), 0);
	assert_int_equal(t.n, 200 - 67);
	yz_loop_free(&t.loop);
}

/* A timer added from a callback with 0 ms does not run in the same pass. */
static void on_rearm(struct yz_loop *loop, void *arg)
{
	struct trace *t = arg;
	trace_push(t, (int)t->n);
	if (t->n < 5)
		yz_timer_add(loop, 0, on_rearm, t);
}

static void test_timer_rearm(void **state)
{
	struct trace t = { .loop = yz_loop_new() };
	yz_timer_add(t.loop, 0, on_rearm, &t);
	assert_int_equal(yz_loop_run(t.loop), 0);
	assert_int_equal(t.n, 5);
	yz_loop_free(&t.loop);
}

/* Deferred calls run in order, before waiting; nested ones next pass. */
static void on_defer_nested(struct yz_loop *loop, void *arg)
{
	struct tagged *g = arg;
	trace_push(g->t, g->tag);
}

static struct tagged nested_tag;

static void on_defer(struct yz_loop *loop, void *arg)
{
	struct tagged *g = arg;
	trace_push(g->t, g->tag);
	if (g->tag == 1) {
		nested_tag = (struct tagged){ g->t, 9 };
		yz_loop_defer(loop, on_defer_nested, &nested_tag);
	}
}

static void test_defer(void **state)
{
	struct trace t = { .loop = yz_loop_new() };
	struct tagged g[3] = { { &t, 1 }, { &t, 2 }, { &t, 3 } };
	struct tagged timer_tag = { &t, 100 };
	yz_timer_add(t.loop, 0, on_timer, &timer_tag);
	for (int i = 0; i < 3; i++)
		yz_loop_defer(t.loop, on_defer, &g[i]);
	assert_int_equal(yz_loop_run(t.loop), 0);
	assert_int_equal(t.n, 5);
	assert_int_equal(t.log[0], 1);
	assert_int_equal(t.log[1], 2);
	assert_int_equal(t.log[2], 3);
	/* The nested defer runs at the next pass, before waiting: the 0 ms
	 * timer fired in the first pass already after the epoll wait. */
	assert_int_equal(t.log[3], 100);
	assert_int_equal(t.log[4], 9);
	yz_loop_free(&t.loop);
}

/* A deferred call left at free time is released, not run. */
static void test_defer_freed(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct trace t = { .loop = loop };
	struct tagged g = { &t, 1 };
	yz_loop_defer(loop, on_defer, &g);
	yz_timer_add(loop, 1000, on_timer, &g);
	yz_loop_free(&loop);
	assert_int_equal(t.n, 0);
}

/* Signals arrive through the signalfd. */
static void on_signal(struct yz_loop *loop, int signo, void *arg)
{
	struct trace *t = arg;
	trace_push(t, signo);
	if (t->n == 2)
		yz_loop_stop(loop);
}

static void test_signal(void **state)
{
	struct trace t = { .loop = yz_loop_new() };
	assert_int_equal(yz_loop_add_signal(t.loop, SIGUSR1, on_signal, &t), 0);
	assert_int_equal(yz_loop_add_signal(t.loop, SIGUSR2, on_signal, &t), 0);
	assert_int_equal(yz_loop_add_signal(t.loop, SIGKILL, on_signal, &t), -1);
	assert_int_equal(yz_loop_add_signal(t.loop, 0, on_signal, &t), -1);
	struct yz_timer *guard = yz_timer_add(t.loop, 2000, on_fail_timer, NULL);
	raise(SIGUSR1);
	raise(SIGUSR2);
	assert_int_equal(yz_loop_run(t.loop), 0);
	assert_int_equal(t.n, 2);
	assert_true((t.log[0] == SIGUSR1 && t.log[1] == SIGUSR2) ||
		    (t.log[0] == SIGUSR2 && t.log[1] == SIGUSR1));
	yz_timer_del(t.loop, &guard);
	yz_loop_sigmask_restore(t.loop);
	yz_loop_free(&t.loop);
	/* A registered signal alone does not keep a loop alive. */
	struct yz_loop *loop = yz_loop_new();
	assert_int_equal(yz_loop_add_signal(loop, SIGUSR1, on_signal, &t), 0);
	assert_int_equal(yz_loop_run(loop), 0);
	yz_loop_sigmask_restore(loop);
	yz_loop_free(&loop);
	/* SIGPIPE is ignored so writes to closed sockets give EPIPE. */
	struct sigaction sa;
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == SIG_IGN);
}

/* fd callbacks and deletion from inside them. */
struct fdtest {
	struct yz_loop *loop;
	int a[2], b[2], c[2];
	int calls_a, calls_b, calls_c;
	int reused_fd;
};

static void on_c(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct fdtest *f = arg;
	f->calls_c++;
}

static void on_b(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct fdtest *f = arg;
	f->calls_b++;
	char ch;
	assert_int_equal(read(fd, &ch, 1), 1);
	yz_loop_del_fd(loop, fd);
}

/* a deletes b (pending in the same batch), closes it, and registers a new
 * pipe that gets b's fd number: b's stale event must reach nobody. */
static void on_a(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct fdtest *f = arg;
	f->calls_a++;
	assert_true(events & YZ_EV_READ);
	char ch;
	assert_int_equal(read(fd, &ch, 1), 1);
	yz_loop_del_fd(loop, fd);
	if (f->b[0] >= 0) {
		int old = f->b[0];
		yz_loop_del_fd(loop, old);
		yz_loop_del_fd(loop, old); /* twice: a no-op */
		close(f->b[0]);
		close(f->b[1]);
		f->b[0] = f->b[1] = -1;
		assert_int_equal(pipe2(f->c, O_CLOEXEC), 0);
		f->reused_fd = f->c[0] == old;
		/* Reading end, nothing written: only a stale event could fire. */
		assert_int_equal(yz_loop_add_fd(loop, f->c[0], YZ_EV_READ, on_c, f), 0);
		assert_int_equal(yz_loop_add_fd(loop, f->c[0], YZ_EV_READ, on_c, f), -1);
	}
}

static void on_stop_timer(struct yz_loop *loop, void *arg)
{
	yz_loop_stop(loop);
}

static void test_del_fd_in_batch(void **state)
{
	/* Register b first or a first: either way one of them runs first. Run
	 * both orders, so the deleted one is pending in the batch once. */
	int stale_cases = 0;
	for (int order = 0; order < 2; order++) {
		struct fdtest f = { .loop = yz_loop_new() };
		assert_int_equal(pipe2(f.a, O_CLOEXEC), 0);
		assert_int_equal(pipe2(f.b, O_CLOEXEC), 0);
		f.c[0] = f.c[1] = -1;
		if (order == 0) {
			assert_int_equal(yz_loop_add_fd(f.loop, f.a[0], YZ_EV_READ, on_a, &f), 0);
			assert_int_equal(yz_loop_add_fd(f.loop, f.b[0], YZ_EV_READ, on_b, &f), 0);
		} else {
			assert_int_equal(yz_loop_add_fd(f.loop, f.b[0], YZ_EV_READ, on_b, &f), 0);
			assert_int_equal(yz_loop_add_fd(f.loop, f.a[0], YZ_EV_READ, on_a, &f), 0);
		}
		assert_true(yz_loop_has_fd(f.loop, f.a[0]));
		assert_int_equal(write(f.a[1], "x", 1), 1);
		assert_int_equal(write(f.b[1], "y", 1), 1);
		yz_timer_add(f.loop, 30, on_stop_timer, NULL);
		assert_int_equal(yz_loop_run(f.loop), 0);
		assert_int_equal(f.calls_a, 1);
		assert_true(f.calls_b <= 1);
		assert_int_equal(f.calls_c, 0);
		if (f.calls_b == 0) {
			assert_true(f.reused_fd); /* the interesting case happened */
			stale_cases++;
		}
		yz_loop_del_fd(f.loop, f.c[0]);
		close(f.a[0]);
		close(f.a[1]);
		if (f.b[0] >= 0) {
			close(f.b[0]);
			close(f.b[1]);
		}
		if (f.c[0] >= 0) {
			close(f.c[0]);
			close(f.c[1]);
		}
		yz_loop_free(&f.loop);
	}
	assert_true(stale_cases > 0);
}

/* Write interest, mod_fd, and the loop ending when the last fd goes. */
struct wtest {
	int writes;
	int hups;
};

static void on_writable(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct wtest *w = arg;
	assert_true(events & YZ_EV_WRITE);
	w->writes++;
	if (w->writes == 1) {
		assert_int_equal(yz_loop_mod_fd(loop, fd, YZ_EV_WRITE), 0); /* unchanged */
		return;
	}
	yz_loop_del_fd(loop, fd);
}

static void on_hup(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct wtest *w = arg;
	assert_true(events & YZ_EV_ERROR);
	assert_false(events & YZ_EV_READ); /* not asked for */
	w->hups++;
	yz_loop_del_fd(loop, fd);
}

static void test_fd_write_and_error(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct wtest w = { 0 };
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(yz_loop_add_fd(loop, p[1], 0, on_writable, &w), 0);
	assert_int_equal(yz_loop_mod_fd(loop, p[1], YZ_EV_WRITE), 0);
	assert_int_equal(yz_loop_mod_fd(loop, 999, YZ_EV_WRITE), -1);
	assert_int_equal(yz_loop_add_fd(loop, -1, YZ_EV_READ, on_writable, &w), -1);
	assert_int_equal(yz_loop_run(loop), 0); /* ends when the fd is gone */
	assert_int_equal(w.writes, 2);
	/* Closing the write end: the read end sees HUP even with no interest. */
	assert_int_equal(yz_loop_add_fd(loop, p[0], 0, on_hup, &w), 0);
	close(p[1]);
	assert_int_equal(yz_loop_run(loop), 0);
	assert_int_equal(w.hups, 1);
	close(p[0]);
	yz_loop_free(&loop);
}

/* epoll_ctl only for real changes; the kernel agrees with the loop. */
static void test_ctl_accounting(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	int epfd = find_epoll_fd();
	struct yz_loop_stats st;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	yz_loop_get_stats(loop, &st);
	assert_int_equal(st.ctl_calls, 0);
	assert_int_equal(st.wait_calls, 0);

	assert_int_equal(yz_loop_add_fd(loop, p[0], YZ_EV_READ, on_hup, NULL), 0);
	yz_loop_get_stats(loop, &st);
	assert_int_equal(st.ctl_calls, 1);
	assert_int_equal(yz_loop_fd_events(loop, p[0]), YZ_EV_READ);
	assert_int_equal(kernel_events(epfd, p[0]), EPOLLIN);

	/* Restating the same set, even many times, is free. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(yz_loop_mod_fd(loop, p[0], YZ_EV_READ), 0);
	/* Bits other than READ|WRITE do not count as a change. */
	assert_int_equal(yz_loop_mod_fd(loop, p[0], YZ_EV_READ | YZ_EV_ERROR), 0);
	yz_loop_get_stats(loop, &st);
	assert_int_equal(st.ctl_calls, 1);

	/* A change is one call, and the kernel sees it. */
	assert_int_equal(yz_loop_mod_fd(loop, p[0], 0), 0);
	yz_loop_get_stats(loop, &st);
	assert_int_equal(st.ctl_calls, 2);
	assert_int_equal(yz_loop_fd_events(loop, p[0]), 0);
	assert_int_equal(kernel_events(epfd, p[0]), 0);
	assert_int_equal(yz_loop_mod_fd(loop, p[0], YZ_EV_READ | YZ_EV_WRITE), 0);
	assert_int_equal(kernel_events(epfd, p[0]), EPOLLIN | EPOLLOUT);
	assert_int_equal(yz_loop_fd_events(loop, p[0]), YZ_EV_READ | YZ_EV_WRITE);

	/* A failed mod of an unknown fd makes no call at all. */
	assert_int_equal(yz_loop_mod_fd(loop, p[1], YZ_EV_READ), -1);
	assert_int_equal(yz_loop_fd_events(loop, p[1]), 0);
	yz_loop_get_stats(loop, &st);
	assert_int_equal(st.ctl_calls, 3);

	yz_loop_del_fd(loop, p[0]);
	yz_loop_del_fd(loop, p[0]); /* not registered: no call */
	yz_loop_get_stats(loop, &st);
	assert_int_equal(st.ctl_calls, 4);
	assert_int_equal(kernel_events(epfd, p[0]), -1);
	assert_int_equal(yz_loop_fd_events(loop, p[0]), 0);

	/* One epoll_wait per pass that waits. */
	yz_timer_add(loop, 1, on_stop_timer, NULL);
	assert_int_equal(yz_loop_run(loop), 0);
	yz_loop_get_stats(loop, &st);
	assert_true(st.wait_calls >= 1 && st.wait_calls <= 3);
	close(p[0]);
	close(p[1]);
	yz_loop_free(&loop);
}

/* yz_loop_stop() from a deferred call; the loop can be run again. */
static void on_defer_stop(struct yz_loop *loop, void *arg)
{
	int *n = arg;
	(*n)++;
	yz_loop_stop(loop);
}

static void test_stop_and_rerun(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	int n = 0;
	struct yz_timer *t = yz_timer_add(loop, 10000, on_fail_timer, NULL);
	yz_loop_defer(loop, on_defer_stop, &n);
	assert_int_equal(yz_loop_run(loop), 0);
	assert_int_equal(n, 1);
	yz_loop_defer(loop, on_defer_stop, &n);
	assert_int_equal(yz_loop_run(loop), 0);
	assert_int_equal(n, 2);
	yz_timer_del(loop, &t);
	assert_int_equal(yz_loop_run(loop), 0); /* nothing left */
	yz_loop_free(&loop);
	yz_loop_free(&loop); /* NULL-safe */
}

/* Deferred calls: counted by the callback. */
static void count_cb(struct yz_loop *loop, void *arg)
{
	(void)loop;
	(*(int *)arg)++;
}

/* A deferred call that cancels one queued after it in the same pass. */
static void cancel_cb(struct yz_loop *loop, void *arg)
{
	yz_loop_defer_cancel(loop, count_cb, arg);
}

/* yz_loop_defer_cancel drops queued calls of (cb, arg), also those of the
 * pass running now, and leaves other calls alone. */
static void test_defer_cancel(void **state)
{
	(void)state;
	struct yz_loop *loop = yz_loop_new();
	int a = 0, b = 0;
	yz_loop_defer(loop, count_cb, &a);
	yz_loop_defer(loop, count_cb, &b);
	yz_loop_defer(loop, count_cb, &a);
	yz_loop_defer_cancel(loop, count_cb, &a);
	yz_loop_run(loop);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	yz_loop_defer(loop, cancel_cb, &a);
	yz_loop_defer(loop, count_cb, &a);
	yz_loop_defer(loop, count_cb, &b);
	yz_loop_run(loop);
	assert_int_equal(a, 0);
	assert_int_equal(b, 2);
	yz_loop_defer_cancel(loop, count_cb, &b); /* nothing queued: no effect */
	yz_loop_free(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defer_cancel),
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_delete_from_callback),
		cmocka_unit_test(test_timer_heap),
		cmocka_unit_test(test_timer_rearm),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_defer_freed),
		cmocka_unit_test(test_signal),
		cmocka_unit_test(test_del_fd_in_batch),
		cmocka_unit_test(test_fd_write_and_error),
		cmocka_unit_test(test_ctl_accounting),
		cmocka_unit_test(test_stop_and_rerun),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
