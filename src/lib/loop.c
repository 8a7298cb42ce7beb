/*
 * loop.c: epoll reactor with a timer min-heap, signalfd signals and deferred
 * calls.
 *
 * Guarantees: an fd callback is only called while the fd is registered with
 * the same registration it had when epoll reported it (a generation number
 * travels in epoll_data, so del + re-add within one batch is safe); timers
 * fire in (deadline, creation) order; nothing added from a callback runs in
 * the same pass; yz_loop_mod_fd() to the interest set already registered
 * makes no system call (callers may restate their interest after every
 * turn), and the loop counts the system calls it makes (yz_loop_get_stats).
 *
 * Never: closes a registered fd, blocks outside epoll_wait(), or calls a
 * callback recursively.
 */
#include "lib/loop.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"

/* Highest signal number we accept (signalfd_siginfo.ssi_signo < _NSIG). */
#define LOOP_SIGNALS_MAX 65
/* Signals read from the signalfd per wake-up, so a storm cannot starve fds. */
#define LOOP_SIGINFO_BATCH 16

struct loop_fd {
	yz_fd_cb *cb;
	void *arg;
	unsigned events;
	uint32_t gen;      /* bumped at every add: stale epoll events are ignored */
	bool used;
	bool internal;     /* our signalfd: does not keep the loop alive */
};

struct yz_timer {
	uint64_t when;     /* deadline, yz_now_ms() scale */
	uint64_t seq;      /* creation order, ties and same-pass protection */
	size_t idx;        /* position in the heap */
	yz_timer_cb *cb;
	void *arg;
};

struct loop_defer {
	yz_timer_cb *cb;
	void *arg;
};

struct loop_signal {
	yz_signal_cb *cb;
	void *arg;
};

struct yz_loop {
	int epfd;
	bool stopping;

	struct loop_fd *fds;       /* indexed by fd */
	size_t fds_cap;
	size_t nfds_user;          /* registered fds that keep the loop alive */
	uint32_t gen;
	struct yz_loop_stats stats;

	struct yz_timer **heap;
	size_t heap_len, heap_cap;
	uint64_t timer_seq;
	struct yz_timer *firing;   /* timer whose callback is running */

	struct loop_defer *dq, *dq_spare;
	size_t dq_len, dq_cap, dq_spare_cap;
	struct loop_defer *dq_running; /* the calls loop_run_defers() is running */
	size_t dq_running_len;

	int sigfd;
	sigset_t sigmask;          /* signals delivered through sigfd */
	sigset_t sigmask_saved;    /* process mask before the first add_signal */
	bool sigmask_changed;
	struct loop_signal signals[LOOP_SIGNALS_MAX];
};

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t yz_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Create a loop; fatal if the kernel refuses an epoll fd. */
struct yz_loop *yz_loop_new(void)
{
	struct yz_loop *loop = yz_calloc(1, sizeof *loop);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		yz_fatal("epoll_create1: %s", strerror(errno));
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);

	/* A write to a closed socket must be an EPIPE error, not a death. */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		(void)sigaction(SIGPIPE, &sa, NULL);
	}
	return loop;
}

/* Free the loop and everything it owns except the registered fds. */
void yz_loop_free(struct yz_loop **loopp)
{
	struct yz_loop *loop = *loopp;
	if (loop == NULL)
		return;
	*loopp = NULL;
	for (size_t i = 0; i < loop->heap_len; i++)
		free(loop->heap[i]);
	free(loop->heap);
	free(loop->dq);
	free(loop->dq_spare);
	free(loop->fds);
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	close(loop->epfd);
	free(loop);
}

/* ---- fds ---- */

/* Translate YZ_EV_* to epoll bits. */
static uint32_t loop_to_epoll(unsigned events)
{
	uint32_t ev = 0;
	if (events & YZ_EV_READ)
		ev |= EPOLLIN;
	if (events & YZ_EV_WRITE)
		ev |= EPOLLOUT;
	return ev;
}

/* Grow the fd table so that fd is a valid index. */
static void loop_fds_reserve(struct yz_loop *loop, int fd)
{
	if ((size_t)fd < loop->fds_cap)
		return;
	size_t cap = loop->fds_cap ? loop->fds_cap : 64;
	while (cap <= (size_t)fd)
		cap *= 2;
	loop->fds = yz_realloc(loop->fds, cap * sizeof *loop->fds);
	memset(loop->fds + loop->fds_cap, 0, (cap - loop->fds_cap) * sizeof *loop->fds);
	loop->fds_cap = cap;
}

/* Register fd; internal fds do not keep the loop running. */
static int loop_add(struct yz_loop *loop, int fd, unsigned events, yz_fd_cb *cb,
		    void *arg, bool internal)
{
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	loop_fds_reserve(loop, fd);
	struct loop_fd *e = &loop->fds[fd];
	if (e->used) {
		errno = EEXIST;
		return -1;
	}
	uint32_t gen = ++loop->gen;
	struct epoll_event ev = { .events = loop_to_epoll(events),
				  .data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd };
	loop->stats.ctl_calls++;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	e->cb = cb;
	e->arg = arg;
	e->events = events & (YZ_EV_READ | YZ_EV_WRITE);
	e->gen = gen;
	e->used = true;
	e->internal = internal;
	if (!internal)
		loop->nfds_user++;
	return 0;
}

/* Watch fd for events. */
int yz_loop_add_fd(struct yz_loop *loop, int fd, unsigned events, yz_fd_cb *cb, void *arg)
{
	return loop_add(loop, fd, events, cb, arg, false);
}

/* Change the watched events of a registered fd. */
int yz_loop_mod_fd(struct yz_loop *loop, int fd, unsigned events)
{
	if (fd < 0 || (size_t)fd >= loop->fds_cap || !loop->fds[fd].used) {
		errno = ENOENT;
		return -1;
	}
	struct loop_fd *e = &loop->fds[fd];
	events &= YZ_EV_READ | YZ_EV_WRITE;
	if (events == e->events)
		return 0;
	struct epoll_event ev = { .events = loop_to_epoll(events),
				  .data.u64 = ((uint64_t)e->gen << 32) | (uint32_t)fd };
	loop->stats.ctl_calls++;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -1;
	e->events = events;
	return 0;
}

/* Stop watching fd. */
void yz_loop_del_fd(struct yz_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->fds_cap || !loop->fds[fd].used)
		return;
	struct loop_fd *e = &loop->fds[fd];
	/* The fd may already be closed (then the kernel dropped it itself). */
	loop->stats.ctl_calls++;
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	if (!e->internal)
		loop->nfds_user--;
	e->used = false;
	e->cb = NULL;
	e->arg = NULL;
}

/* Is fd registered? */
bool yz_loop_has_fd(const struct yz_loop *loop, int fd)
{
	return fd >= 0 && (size_t)fd < loop->fds_cap && loop->fds[fd].used;
}

/* The events registered in the kernel for fd (0 if not registered). */
unsigned yz_loop_fd_events(const struct yz_loop *loop, int fd)
{
	return yz_loop_has_fd(loop, fd) ? loop->fds[fd].events : 0;
}

/* System call counters since yz_loop_new(). */
void yz_loop_get_stats(const struct yz_loop *loop, struct yz_loop_stats *stats_r)
{
	*stats_r = loop->stats;
}

/* ---- timers: a binary min-heap on (when, seq) ---- */

/* Does a fire before b? */
static bool timer_before(const struct yz_timer *a, const struct yz_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Place t at heap index i. */
static void heap_set(struct yz_loop *loop, size_t i, struct yz_timer *t)
{
	loop->heap[i] = t;
	t->idx = i;
}

/* Move the timer at i up to its place. */
static void heap_up(struct yz_loop *loop, size_t i)
{
	struct yz_timer *t = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

/* Move the timer at i down to its place. */
static void heap_down(struct yz_loop *loop, size_t i)
{
	struct yz_timer *t = loop->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, best = i;
		const struct yz_timer *bt = t;
		if (l < loop->heap_len && timer_before(loop->heap[l], bt)) {
			best = l;
			bt = loop->heap[l];
		}
		if (l + 1 < loop->heap_len && timer_before(loop->heap[l + 1], bt))
			best = l + 1;
		if (best == i)
			break;
		heap_set(loop, i, loop->heap[best]);
		i = best;
	}
	heap_set(loop, i, t);
}

/* Take the timer at index i out of the heap. */
static void heap_remove(struct yz_loop *loop, size_t i)
{
	struct yz_timer *last = loop->heap[--loop->heap_len];
	if (i == loop->heap_len)
		return;
	heap_set(loop, i, last);
	if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

/* Arm a one-shot timer. */
struct yz_timer *yz_timer_add(struct yz_loop *loop, uint64_t after_ms, yz_timer_cb *cb, void *arg)
{
	struct yz_timer *t = yz_malloc(sizeof *t);
	uint64_t now = yz_now_ms();
	t->when = after_ms > UINT64_MAX - now ? UINT64_MAX : now + after_ms;
	t->seq = ++loop->timer_seq;
	t->cb = cb;
	t->arg = arg;
	if (loop->heap_len == loop->heap_cap) {
		loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		loop->heap = yz_realloc(loop->heap, loop->heap_cap * sizeof *loop->heap);
	}
	heap_set(loop, loop->heap_len++, t);
	heap_up(loop, t->idx);
	return t;
}

/* Cancel a timer. */
void yz_timer_del(struct yz_loop *loop, struct yz_timer **timer)
{
	if (timer == NULL || *timer == NULL)
		return;
	struct yz_timer *t = *timer;
	*timer = NULL;
	if (t == loop->firing)
		return; /* freed by the loop when its callback returns */
	if (t->idx >= loop->heap_len || loop->heap[t->idx] != t)
		yz_panic("yz_timer_del: unknown timer");
	heap_remove(loop, t->idx);
	free(t);
}

/* Fire the timers due now that existed when the pass began. */
static void loop_run_timers(struct yz_loop *loop)
{
	if (loop->heap_len == 0)
		return;
	uint64_t now = yz_now_ms();
	uint64_t seq_limit = loop->timer_seq;
	while (loop->heap_len > 0 && !loop->stopping) {
		struct yz_timer *t = loop->heap[0];
		if (t->when > now || t->seq > seq_limit)
			break;
		heap_remove(loop, 0);
		loop->firing = t;
		t->cb(loop, t->arg);
		loop->firing = NULL;
		free(t);
	}
}

/* ---- deferred calls ---- */

/* Queue cb(arg) for the next iteration. */
void yz_loop_defer(struct yz_loop *loop, yz_timer_cb *cb, void *arg)
{
	if (loop->dq_len == loop->dq_cap) {
		loop->dq_cap = loop->dq_cap ? loop->dq_cap * 2 : 16;
		loop->dq = yz_realloc(loop->dq, loop->dq_cap * sizeof *loop->dq);
	}
	loop->dq[loop->dq_len++] = (struct loop_defer){ cb, arg };
}

/* Drop the queued calls of cb(arg), also those of the pass now running. */
void yz_loop_defer_cancel(struct yz_loop *loop, yz_timer_cb *cb, void *arg)
{
	for (size_t i = 0; i < loop->dq_len; i++) {
		if (loop->dq[i].cb == cb && loop->dq[i].arg == arg)
			loop->dq[i].cb = NULL;
	}
	for (size_t i = 0; i < loop->dq_running_len; i++) {
		if (loop->dq_running[i].cb == cb && loop->dq_running[i].arg == arg)
			loop->dq_running[i].cb = NULL;
	}
}

/* Run the calls queued so far; those they queue wait for the next pass. */
static void loop_run_defers(struct yz_loop *loop)
{
	if (loop->dq_len == 0)
		return;
	struct loop_defer *items = loop->dq;
	size_t n = loop->dq_len, cap = loop->dq_cap;
	loop->dq = loop->dq_spare;
	loop->dq_cap = loop->dq_spare_cap;
	loop->dq_len = 0;
	loop->dq_spare = NULL;
	loop->dq_spare_cap = 0;
	loop->dq_running = items;
	loop->dq_running_len = n;
	for (size_t i = 0; i < n; i++) {
		if (items[i].cb != NULL)
			items[i].cb(loop, items[i].arg);
	}
	loop->dq_running = NULL;
	loop->dq_running_len = 0;
	/* Keep the larger array for reuse, free the other. */
	if (loop->dq_spare == NULL) {
		loop->dq_spare = items;
		loop->dq_spare_cap = cap;
	} else {
		free(items);
	}
}

/* ---- signals ---- */

/* Read pending signals from the signalfd and dispatch them. */
static void loop_signal_read(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo si[LOOP_SIGINFO_BATCH];
	ssize_t n = read(fd, si, sizeof si);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			yz_log_warn("signalfd read: %s", strerror(errno));
		return;
	}
	size_t count = (size_t)n / sizeof si[0];
	for (size_t i = 0; i < count; i++) {
		uint32_t signo = si[i].ssi_signo;
		if (signo >= LOOP_SIGNALS_MAX || loop->signals[signo].cb == NULL)
			continue;
		loop->signals[signo].cb(loop, (int)signo, loop->signals[signo].arg);
		if (loop->stopping)
			break;
	}
}

/* Deliver signo through the loop's signalfd. */
int yz_loop_add_signal(struct yz_loop *loop, int signo, yz_signal_cb *cb, void *arg)
{
	if (signo <= 0 || signo >= LOOP_SIGNALS_MAX || signo == SIGKILL || signo == SIGSTOP) {
		errno = EINVAL;
		return -1;
	}
	sigset_t add;
	sigemptyset(&add);
	sigaddset(&add, signo);
	sigset_t old;
	if (sigprocmask(SIG_BLOCK, &add, &old) < 0)
		return -1;
	if (!loop->sigmask_changed) {
		loop->sigmask_saved = old;
		loop->sigmask_changed = true;
	}
	sigaddset(&loop->sigmask, signo);
	int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (loop->sigfd < 0) {
		loop->sigfd = fd;
		if (loop_add(loop, fd, YZ_EV_READ, loop_signal_read, NULL, true) < 0) {
			int e = errno;
			close(fd);
			loop->sigfd = -1;
			errno = e;
			return -1;
		}
	}
	loop->signals[signo].cb = cb;
	loop->signals[signo].arg = arg;
	return 0;
}

/* Put back the process signal mask saved at the first add_signal. */
void yz_loop_sigmask_restore(struct yz_loop *loop)
{
	if (loop->sigmask_changed)
		(void)sigprocmask(SIG_SETMASK, &loop->sigmask_saved, NULL);
}

/* ---- running ---- */

/* Make yz_loop_run() return. */
void yz_loop_stop(struct yz_loop *loop)
{
	loop->stopping = true;
}

/* The epoll timeout for the nearest timer or pending deferred call. */
static int loop_timeout(const struct yz_loop *loop)
{
	if (loop->dq_len > 0)
		return 0;
	if (loop->heap_len == 0)
		return -1;
	uint64_t now = yz_now_ms(), when = loop->heap[0]->when;
	if (when <= now)
		return 0;
	uint64_t d = when - now;
	return d > INT_MAX ? INT_MAX : (int)d;
}

/* Dispatch one epoll batch. */
static void loop_dispatch(struct yz_loop *loop, const struct epoll_event *evs, int n)
{
	for (int i = 0; i < n && !loop->stopping; i++) {
		int fd = (int)(uint32_t)(evs[i].data.u64 & 0xffffffffu);
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		if ((size_t)fd >= loop->fds_cap)
			continue;
		struct loop_fd *e = &loop->fds[fd];
		if (!e->used || e->gen != gen)
			continue; /* deleted (or replaced) earlier in this batch */
		unsigned got = 0;
		if (evs[i].events & EPOLLIN)
			got |= YZ_EV_READ;
		if (evs[i].events & EPOLLOUT)
			got |= YZ_EV_WRITE;
		got &= e->events;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			got |= YZ_EV_ERROR;
		if (got != 0)
			e->cb(loop, fd, got, e->arg);
	}
}

/* The reactor's main loop. */
int yz_loop_run(struct yz_loop *loop)
{
	struct epoll_event evs[YZ_LOOP_EVENTS_MAX];
	int ret = 0;
	while (!loop->stopping) {
		loop_run_defers(loop);
		if (loop->stopping)
			break;
		if (loop->nfds_user == 0 && loop->heap_len == 0 && loop->dq_len == 0)
			break;
		loop->stats.wait_calls++;
		int n = epoll_wait(loop->epfd, evs, YZ_LOOP_EVENTS_MAX, loop_timeout(loop));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -1;
			break;
		}
		loop_dispatch(loop, evs, n);
		if (loop->stopping)
			break;
		loop_run_timers(loop);
	}
	loop->stopping = false;
	return ret;
}
