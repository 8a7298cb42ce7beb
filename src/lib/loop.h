/*
 * loop.h: the one event loop of a yizhan process (a small epoll reactor, as
 * Redis `ae` and OpenSMTPD's event loop): file descriptors, one-shot timers
 * kept in a min-heap (the epoll timeout is the nearest deadline), signals
 * delivered through a signalfd, and deferred calls.
 *
 * Guarantees:
 * - Callbacks run one at a time, never re-entered from inside the loop.
 * - yz_loop_del_fd() and yz_timer_del() may be called from any callback,
 *   also for an fd whose event is pending in the same epoll batch: a deleted
 *   fd's callback is never called afterwards, even if the same fd number is
 *   registered again within the batch.
 * - Timers with the same deadline fire in the order they were added.
 * - A timer or deferred call added from a callback never runs within the
 *   same pass, so a callback that re-arms itself cannot starve the loop.
 *
 * Never: the loop never closes an fd it did not open (registered fds stay the
 * caller's), never blocks anywhere but in epoll_wait().
 *
 * Side effects to know: yz_loop_new() sets SIGPIPE to SIG_IGN when it is at
 * its default, so that a write to a closed socket is reported as EPIPE
 * instead of killing the process. Signals given to yz_loop_add_signal() are
 * blocked in the process mask and stay blocked after yz_loop_free(); a child
 * about to exec should call yz_loop_sigmask_restore() first (or set its own
 * mask).
 */
#ifndef YZ_LOOP_H
#define YZ_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct yz_loop;
struct yz_timer;

enum {
	YZ_EV_READ = 1,
	YZ_EV_WRITE = 2,
	YZ_EV_ERROR = 4 /* EPOLLERR|EPOLLHUP, always reported */
};

typedef void yz_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg);
typedef void yz_timer_cb(struct yz_loop *loop, void *arg);
typedef void yz_signal_cb(struct yz_loop *loop, int signo, void *arg);

/* Most events taken from the kernel per epoll_wait(). */
#define YZ_LOOP_EVENTS_MAX 256

/* Create a loop; never NULL (failing to create an epoll fd is fatal). */
struct yz_loop *yz_loop_new(void);
/* Free the loop, its timers and pending deferred calls; sets *loop = NULL.
 * Does not close registered fds. */
void yz_loop_free(struct yz_loop **loop);

/* Watch fd for events (YZ_EV_READ|YZ_EV_WRITE, possibly 0: errors are always
 * reported). 0, or -1 with errno (EEXIST if fd is already registered). */
int yz_loop_add_fd(struct yz_loop *loop, int fd, unsigned events, yz_fd_cb *cb, void *arg);
/* Change the events watched on a registered fd. 0, or -1 with errno. No
 * system call when events equal the registered set. */
int yz_loop_mod_fd(struct yz_loop *loop, int fd, unsigned events);
/* Stop watching fd (no-op if it is not registered). Safe from any callback,
 * also for an fd whose event is pending in the same epoll batch. */
void yz_loop_del_fd(struct yz_loop *loop, int fd);
/* Is fd registered? */
bool yz_loop_has_fd(const struct yz_loop *loop, int fd);
/* The YZ_EV_READ|YZ_EV_WRITE set registered for fd, as the kernel has it
 * (0 if fd is not registered). */
unsigned yz_loop_fd_events(const struct yz_loop *loop, int fd);

/* System calls the loop made since yz_loop_new() (tests, metrics). */
struct yz_loop_stats {
	uint64_t ctl_calls;   /* epoll_ctl(): add, mod, del */
	uint64_t wait_calls;  /* epoll_wait() */
};
void yz_loop_get_stats(const struct yz_loop *loop, struct yz_loop_stats *stats_r);

/* One-shot timer firing after_ms from now. The handle is valid until the
 * callback returns (deleting it from inside its own callback is a no-op) or
 * until yz_timer_del(); never NULL. */
struct yz_timer *yz_timer_add(struct yz_loop *loop, uint64_t after_ms, yz_timer_cb *cb, void *arg);
/* Cancel a timer; NULL-safe (timer or *timer), sets *timer = NULL; safe from
 * callbacks. */
void yz_timer_del(struct yz_loop *loop, struct yz_timer **timer);

/* Deliver signo through the loop: blocks the signal and reads it from a
 * signalfd. One callback per signal (a second call replaces it). 0 or -1.
 * A registered signal alone does not keep yz_loop_run() running. */
int yz_loop_add_signal(struct yz_loop *loop, int signo, yz_signal_cb *cb, void *arg);
/* Restore the signal mask that was in force before the first
 * yz_loop_add_signal() of this loop (for a forked child before exec). */
void yz_loop_sigmask_restore(struct yz_loop *loop);

/* Run cb(arg) once at the next iteration, before waiting for events.
 * Deferred calls run in the order they were added. */
void yz_loop_defer(struct yz_loop *loop, yz_timer_cb *cb, void *arg);
/* Forget the pending deferred calls of cb(arg) (before arg is freed). */
void yz_loop_defer_cancel(struct yz_loop *loop, yz_timer_cb *cb, void *arg);

/* Run until yz_loop_stop() or until nothing (no fd, timer, deferred call) is
 * left: 0, or -1 with errno if epoll_wait() fails. */
int yz_loop_run(struct yz_loop *loop);
/* Make yz_loop_run() return after the current callback. */
void yz_loop_stop(struct yz_loop *loop);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t yz_now_ms(void);

#endif
