/*
 * test_lib_io.c: buffered connections (io.h) over socketpairs, and the
 * socket helpers (net.h) on loopback.
 *
 * Covers: line reading at exactly max and max + 1, TOOLONG and skip_line
 * resynchronisation (also byte at a time), CRLF / bare LF / CR returned raw,
 * a byte-at-a-time writer, the write buffer cap, partial writes and DRAINED,
 * close_after_flush, EOF with pending data, idle timeout, freeing from inside
 * the handler, pause and resume, rbuf_max backpressure, write errors, and no
 * busy loop on a hang-up while paused.
 * System calls (counted by the loop, by /proc/self/io and checked against
 * /proc/self/fdinfo): pause + resume without input costs no epoll_ctl, input
 * while paused takes EPOLLIN out once (no busy loop, nothing read); a short
 * read costs one read(), not a second one returning EAGAIN; a send the
 * socket takes only in part is not retried at once; re-setting the idle
 * timeout keeps or re-arms the timer as needed and the period still restarts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/io.h"
#include "lib/loop.h"
#include "lib/net.h"
#include "lib/tls.h"

#define EV_MAX 64
#define GUARD_MS 2000

struct ctx {
	struct yz_loop *loop;
	struct yz_io *io;
	int peer;
	enum yz_io_event ev[EV_MAX];
	size_t nev;
	bool free_on_event;
	bool keep_running;   /* do not stop the loop on events */
	int done_calls;
};

static void on_guard(struct yz_loop *loop, void *arg)
{
	fail_msg("guard timer fired: the test hung");
}

static void stop_cb(struct yz_loop *loop, void *arg)
{
	yz_loop_stop(loop);
}

static void handler(struct yz_io *io, enum yz_io_event ev, void *arg)
{
	struct ctx *c = arg;
	assert_true(io == c->io);
	assert_true(c->nev < EV_MAX);
	c->ev[c->nev++] = ev;
	if (c->free_on_event) {
		yz_io_free(&c->io);
		assert_null(c->io);
	}
	if (!c->keep_running)
		yz_loop_stop(c->loop);
}

static void ctx_init(struct ctx *c, size_t rbuf_max, size_t wbuf_max)
{
	memset(c, 0, sizeof *c);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c->loop = yz_loop_new();
	c->io = yz_io_new(c->loop, sv[0], rbuf_max, wbuf_max);
	assert_non_null(c->io);
	assert_int_equal(yz_io_fd(c->io), sv[0]);
	c->peer = sv[1];
	yz_io_set_handler(c->io, handler, c);
}

static void ctx_done(struct ctx *c)
{
	yz_io_free(&c->io);
	if (c->peer >= 0)
		close(c->peer);
	/* Run deferred releases, if any are left. */
	assert_int_equal(yz_loop_run(c->loop), 0);
	yz_loop_free(&c->loop);
}

/* len bytes of the test pattern (byte i is i % 251), heap. */
static char *pattern(size_t len)
{
	char *data = malloc(len);
	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i % 251);
	return data;
}

/* Run the loop until the handler stops it (or the guard fails the test). */
static void pump(struct ctx *c)
{
	struct yz_timer *guard = yz_timer_add(c->loop, GUARD_MS, on_guard, NULL);
	assert_int_equal(yz_loop_run(c->loop), 0);
	yz_timer_del(c->loop, &guard);
}

static void peer_send(struct ctx *c, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(write(c->peer, s, n), (ssize_t)n);
}

/* Pump until one event arrives and check it. */
static void expect_event(struct ctx *c, enum yz_io_event ev)
{
	size_t before = c->nev;
	pump(c);
	assert_true(c->nev > before);
	assert_int_equal(c->ev[c->nev - 1], ev);
}

static void expect_line(struct ctx *c, size_t max, const char *want)
{
	struct yz_slice line;
	assert_int_equal(yz_io_read_line(c->io, max, &line), YZ_LINE_OK);
	assert_int_equal(line.len, strlen(want));
	assert_memory_equal(line.p, want, line.len);
	yz_io_consume(c->io, line.len);
}

/* max bounds the bytes before the LF: exactly max is OK, max + 1 is not. */
static void test_line_limits(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	struct yz_slice line;
	assert_int_equal(yz_io_read_line(c.io, 10, &line), YZ_LINE_AGAIN); /* empty */

	peer_send(&c, "0123456789"); /* exactly max, no LF yet */
	expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_io_read_line(c.io, 10, &line), YZ_LINE_AGAIN);
	peer_send(&c, "\n");
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 10, "0123456789\n");

	peer_send(&c, "01234567890"); /* max + 1 without LF */
	expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_io_read_line(c.io, 10, &line), YZ_LINE_TOOLONG);
	yz_io_skip_line(&*c.io);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 0);
	assert_int_equal(yz_io_read_line(c.io, 10, &line), YZ_LINE_AGAIN);
	peer_send(&c, "still too long\nQUIT\r\n");
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 10, "QUIT\r\n"); /* resynchronised on the next LF */

	peer_send(&c, "01234567890\n"); /* max + 1 with its LF in one go */
	expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_io_read_line(c.io, 10, &line), YZ_LINE_TOOLONG);
	yz_io_skip_line(c.io); /* the LF is here: done at once */
	assert_int_equal(yz_io_read_line(c.io, 10, &line), YZ_LINE_AGAIN);

	/* max 0: only a bare LF fits. */
	peer_send(&c, "\nx\n");
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 0, "\n");
	assert_int_equal(yz_io_read_line(c.io, 0, &line), YZ_LINE_TOOLONG);
	yz_io_skip_line(c.io);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 0);
	ctx_done(&c);
}

/* CR, bare LF, NUL and CR CR LF all come back raw. */
static void test_line_raw(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	assert_int_equal(write(c.peer, "a\r\nb\nc\r\r\nd\0e\r\nf", 15), 15);
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 100, "a\r\n");
	expect_line(&c, 100, "b\n");
	expect_line(&c, 100, "c\r\r\n");
	struct yz_slice line;
	assert_int_equal(yz_io_read_line(c.io, 100, &line), YZ_LINE_OK);
	assert_int_equal(line.len, 5);
	assert_memory_equal(line.p, "d\0e\r\n", 5);
	yz_io_consume(c.io, line.len);
	assert_int_equal(yz_io_read_line(c.io, 100, &line), YZ_LINE_AGAIN);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 1);
	ctx_done(&c);
}

/* A peer writing one byte at a time: AGAIN until the LF, then the line. */
static void test_byte_at_a_time(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	const char *msg = "EHLO client.example\r\n";
	struct yz_slice line;
	for (size_t i = 0; msg[i] != '\0'; i++) {
		assert_int_equal(write(c.peer, msg + i, 1), 1);
		expect_event(&c, YZ_IO_READABLE);
		enum yz_line_result r = yz_io_read_line(c.io, 64, &line);
		if (msg[i + 1] != '\0')
			assert_int_equal(r, YZ_LINE_AGAIN);
		else
			assert_int_equal(r, YZ_LINE_OK);
	}
	assert_int_equal(line.len, strlen(msg));
	assert_memory_equal(line.p, msg, line.len);
	yz_io_consume(c.io, line.len);

	/* A too-long line byte at a time: TOOLONG, then skipping across reads. */
	const char *bad = "xxxxxxxxxxxxxxxxxxxx\nOK\n";
	bool skipping = false;
	bool got_ok = false;
	for (size_t i = 0; bad[i] != '\0'; i++) {
		assert_int_equal(write(c.peer, bad + i, 1), 1);
		expect_event(&c, YZ_IO_READABLE);
		enum yz_line_result r = yz_io_read_line(c.io, 8, &line);
		if (r == YZ_LINE_TOOLONG) {
			assert_false(skipping);
			assert_int_equal(i, 8); /* the 9th byte without LF */
			yz_io_skip_line(c.io);
			skipping = true;
		} else if (r == YZ_LINE_OK) {
			assert_int_equal(line.len, 3);
			assert_memory_equal(line.p, "OK\n", 3);
			yz_io_consume(c.io, line.len);
			got_ok = true;
		}
	}
	assert_true(skipping);
	assert_true(got_ok);
	ctx_done(&c);
}

/* The write cap: at the cap is fine, over it fails and changes nothing. */
static void test_write_cap(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 16);
	assert_int_equal(yz_io_write(c.io, "0123456789", 10), 0);
	assert_int_equal(yz_io_printf(c.io, "%s", "abcdefg"), -1); /* 17 */
	assert_int_equal(yz_io_wpending(c.io), 10);
	assert_int_equal(yz_io_printf(c.io, "%d%s", 12, "3456"), 0); /* 16 */
	assert_int_equal(yz_io_wpending(c.io), 16);
	assert_int_equal(yz_io_write(c.io, "x", 1), -1);
	/* Queueing never writes: nothing reached the peer yet. */
	char buf[32];
	assert_int_equal(recv(c.peer, buf, sizeof buf, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(yz_io_flush(c.io), 0);
	assert_int_equal(yz_io_wpending(c.io), 0);
	assert_int_equal(read(c.peer, buf, sizeof buf), 16);
	assert_memory_equal(buf, "0123456789123456", 16);
	assert_int_equal(yz_io_write(c.io, "x", 1), 0); /* room again */
	assert_null(yz_io_error(c.io));
	ctx_done(&c);
}

/* Partial writes: the rest goes out on EPOLLOUT, then DRAINED. */
struct drain {
	struct ctx *c;
	size_t got;
	unsigned char sum;
};

static void on_peer_readable(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct drain *d = arg;
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof buf);
	assert_true(n > 0);
	for (ssize_t i = 0; i < n; i++)
		assert_int_equal((unsigned char)buf[i], (unsigned char)((d->got + (size_t)i) % 251));
	d->got += (size_t)n;
}

static void test_partial_write_drained(void **state)
{
	struct ctx c;
	size_t total = 2 * 1024 * 1024;
	ctx_init(&c, 1024, total);
	char *data = pattern(total);
	assert_int_equal(yz_io_write(c.io, data, total), 0);
	free(data);
	assert_int_equal(yz_io_flush(c.io), 0);
	assert_true(yz_io_wpending(c.io) > 0); /* a socketpair takes less */
	struct drain d = { &c, 0, 0 };
	assert_int_equal(fcntl(c.peer, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(yz_loop_add_fd(c.loop, c.peer, YZ_EV_READ, on_peer_readable, &d), 0);
	expect_event(&c, YZ_IO_DRAINED);
	assert_int_equal(yz_io_wpending(c.io), 0);
	/* The last bytes may still be in the socket: collect them. */
	while (d.got < total) {
		char buf[65536];
		ssize_t n = read(c.peer, buf, sizeof buf);
		assert_true(n > 0);
		d.got += (size_t)n;
	}
	assert_int_equal(d.got, total);
	yz_loop_del_fd(c.loop, c.peer);
	ctx_done(&c);
}

/* close_after_flush: everything is sent, then the io is freed and done runs. */
static void on_done(void *arg)
{
	struct ctx *c = arg;
	c->done_calls++;
}

static void test_close_after_flush(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1 << 20);
	/* Big enough not to fit the socket at once. */
	size_t total = 600 * 1000;
	for (size_t i = 0; i < total / 10; i++)
		assert_int_equal(yz_io_write(c.io, "221 Bye\r\n\n", 10), 0);
	yz_io_close_after_flush(c.io, on_done, &c);
	c.io = NULL;
	assert_int_equal(c.done_calls, 0); /* never synchronously */
	/* Read everything while the loop runs in a child-free way: alternate. */
	size_t got = 0;
	char buf[65536];
	assert_int_equal(fcntl(c.peer, F_SETFL, O_NONBLOCK), 0);
	for (int rounds = 0; rounds < 10000 && c.done_calls == 0; rounds++) {
		ssize_t n = read(c.peer, buf, sizeof buf);
		if (n > 0)
			got += (size_t)n;
		yz_timer_add(c.loop, 0, stop_cb, NULL); /* one poll, then stop */
		assert_int_equal(yz_loop_run(c.loop), 0);
	}
	assert_int_equal(c.done_calls, 1);
	for (;;) {
		ssize_t n = read(c.peer, buf, sizeof buf);
		if (n <= 0) {
			assert_int_equal(n, 0); /* EOF: the io closed its fd */
			break;
		}
		got += (size_t)n;
	}
	assert_int_equal(got, total);
	assert_int_equal(c.nev, 0); /* the handler is not called while closing */
	ctx_done(&c);
}

/* close_after_flush with nothing queued finishes from the loop. */
static void test_close_after_flush_empty(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	yz_io_close_after_flush(c.io, on_done, &c);
	c.io = NULL;
	assert_int_equal(yz_loop_run(c.loop), 0);
	assert_int_equal(c.done_calls, 1);
	char ch;
	assert_int_equal(read(c.peer, &ch, 1), 0);
	ctx_done(&c);
}

/* EOF with input still buffered: READABLE, then EOF; the data stays. */
static void test_eof_with_pending(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	c.keep_running = true;
	peer_send(&c, "QUIT\r\npartial");
	close(c.peer);
	c.peer = -1;
	struct yz_timer *guard = yz_timer_add(c.loop, GUARD_MS, on_guard, NULL);
	/* The loop must go idle by itself: after EOF the io wants nothing, so
	 * the HUP does not keep it busy; stop it with a short timer. */
	yz_timer_add(c.loop, 50, stop_cb, NULL);
	assert_int_equal(yz_loop_run(c.loop), 0);
	yz_timer_del(c.loop, &guard);
	assert_true(c.nev >= 2);
	assert_int_equal(c.ev[c.nev - 1], YZ_IO_EOF);
	for (size_t i = 0; i + 1 < c.nev; i++)
		assert_int_equal(c.ev[i], YZ_IO_READABLE);
	expect_line(&c, 100, "QUIT\r\n");
	struct yz_buf *rb = yz_io_rbuf(c.io);
	assert_int_equal(yz_buf_len(rb), 7);
	assert_memory_equal(yz_buf_data(rb), "partial", 7);
	/* Writing to a closed peer fails with EPIPE, reported once. */
	assert_int_equal(yz_io_write(c.io, "x\r\n", 3), 0);
	assert_int_equal(yz_io_flush(c.io), -1);
	assert_non_null(yz_io_error(c.io));
	assert_int_equal(yz_io_flush(c.io), -1);
	assert_int_equal(yz_io_write(c.io, "x", 1), -1);
	c.keep_running = false;
	expect_event(&c, YZ_IO_ERROR);
	ctx_done(&c);
}

/* Idle timeout: reported after the period, reset by input. */
static void test_idle_timeout(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	uint64_t start = yz_now_ms();
	yz_io_set_timeout(c.io, 40);
	peer_send(&c, "x");
	expect_event(&c, YZ_IO_READABLE); /* resets the period */
	uint64_t read_at = yz_now_ms();
	expect_event(&c, YZ_IO_TIMEOUT);
	uint64_t now = yz_now_ms();
	assert_true(now - read_at >= 39);
	assert_true(now - start >= 39);
	expect_event(&c, YZ_IO_TIMEOUT); /* again while it stays idle */
	yz_io_set_timeout(c.io, 0);
	/* No timeout now: a 30 ms timer stops the loop first. */
	yz_timer_add(c.loop, 30, stop_cb, NULL);
	size_t before = c.nev;
	assert_int_equal(yz_loop_run(c.loop), 0);
	assert_int_equal(c.nev, before);
	ctx_done(&c);
}

/* The handler frees its own io, on input and on EOF. */
static void test_free_in_handler(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	c.free_on_event = true;
	yz_io_set_timeout(c.io, 1000);
	assert_int_equal(yz_io_write(c.io, "pending", 7), 0);
	peer_send(&c, "hello\r\n");
	close(c.peer); /* READABLE and EOF in one pass: EOF must not follow */
	c.peer = -1;
	assert_int_equal(yz_loop_run(c.loop), 0); /* nothing is left after */
	assert_int_equal(c.nev, 1);
	assert_int_equal(c.ev[0], YZ_IO_READABLE);
	assert_null(c.io);
	ctx_done(&c);

	/* Free with deferred work pending (resume with input buffered). */
	ctx_init(&c, 1024, 1024);
	c.free_on_event = false;
	peer_send(&c, "a\n");
	expect_event(&c, YZ_IO_READABLE);
	yz_io_pause(c.io, true);
	yz_io_pause(c.io, false); /* queues a READABLE */
	yz_io_free(&c.io);
	assert_int_equal(yz_loop_run(c.loop), 0);
	assert_int_equal(c.nev, 1);
	ctx_done(&c);
}

/* Pause: no reading while paused; resume gives READABLE for what is
 * buffered; rbuf_max stops reading until input is consumed. */
static void test_pause_and_backpressure(void **state)
{
	struct ctx c;
	ctx_init(&c, 32, 1024);
	peer_send(&c, "one\ntwo\n");
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 16, "one\n");
	yz_io_pause(c.io, true);
	peer_send(&c, "three\n");
	yz_timer_add(c.loop, 30, stop_cb, NULL);
	size_t before = c.nev;
	assert_int_equal(yz_loop_run(c.loop), 0);
	assert_int_equal(c.nev, before); /* paused: nothing read */
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 4);
	yz_io_pause(c.io, false);
	expect_event(&c, YZ_IO_READABLE); /* for "two\n" already buffered */
	expect_line(&c, 16, "two\n");
	struct yz_slice line;
	if (yz_io_read_line(c.io, 16, &line) != YZ_LINE_OK)
		expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 16, "three\n");

	/* 100 bytes against rbuf_max 32: reading stops at 32. */
	char big[100];
	memset(big, 'z', sizeof big);
	assert_int_equal(write(c.peer, big, sizeof big), 100);
	expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 32);
	assert_int_equal(yz_io_read_line(c.io, 64, &line), YZ_LINE_TOOLONG); /* full */
	yz_io_consume(c.io, 32);
	expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 32);
	yz_io_consume(c.io, 32);
	expect_event(&c, YZ_IO_READABLE);
	yz_io_consume(c.io, yz_buf_len(yz_io_rbuf(c.io)));
	ctx_done(&c);
}

/* Memory: an emptied read buffer is freed; a big one left holding a short
 * remainder shrinks; a drained write buffer is freed. */
static void test_buffer_memory(void **state)
{
	struct ctx c;
	ctx_init(&c, 64 * 1024, 64 * 1024);
	char big[20000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (i % 100 == 99) ? '\n' : 'm';
	assert_int_equal(write(c.peer, big, sizeof big), (ssize_t)sizeof big);
	peer_send(&c, "partial");
	size_t lines = 0;
	while (lines < 200) {
		expect_event(&c, YZ_IO_READABLE);
		struct yz_slice line;
		while (yz_io_read_line(c.io, 512, &line) == YZ_LINE_OK) {
			assert_int_equal(line.len, 100);
			yz_io_consume(c.io, line.len);
			lines++;
		}
	}
	struct yz_buf *rb = yz_io_rbuf(c.io);
	if (yz_buf_len(rb) < 7)
		expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_buf_len(rb), 7);
	assert_true(rb->cap <= 4096);
	yz_io_consume(c.io, 7);
	assert_null(rb->data);
	assert_int_equal(yz_io_write(c.io, big, sizeof big), 0);
	assert_int_equal(yz_io_flush(c.io), 0);
	assert_int_equal(yz_io_wpending(c.io), 0);
	char buf[sizeof big];
	assert_int_equal(yz_read_full(c.peer, buf, sizeof buf), (ssize_t)sizeof buf);
	ctx_done(&c);
}

/* A hang-up while paused must not spin the loop. */
static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

static void test_hup_while_paused(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	yz_io_pause(c.io, true);
	peer_send(&c, "late\n");
	close(c.peer);
	c.peer = -1;
	double cpu0 = cpu_ms();
	yz_timer_add(c.loop, 100, stop_cb, NULL);
	assert_int_equal(yz_loop_run(c.loop), 0);
	assert_true(cpu_ms() - cpu0 < 50.0);
	assert_int_equal(c.nev, 0);
	/* Resume: the data and the EOF are still there. */
	c.keep_running = true;
	yz_io_pause(c.io, false);
	yz_timer_add(c.loop, 50, stop_cb, NULL);
	assert_int_equal(yz_loop_run(c.loop), 0);
	assert_true(c.nev >= 2);
	assert_int_equal(c.ev[c.nev - 1], YZ_IO_EOF);
	expect_line(&c, 100, "late\n");
	ctx_done(&c);
}

/* ---- system call accounting ---- */

static uint64_t ctl_calls(struct yz_loop *loop)
{
	struct yz_loop_stats st;
	yz_loop_get_stats(loop, &st);
	return st.ctl_calls;
}

static uint64_t wait_calls(struct yz_loop *loop)
{
	struct yz_loop_stats st;
	yz_loop_get_stats(loop, &st);
	return st.wait_calls;
}

/* read()-family (syscr) or write()-family (syscw) calls of this process so
 * far, from /proc/self/io; the read that fetches them counts after. */
static uint64_t proc_io(const char *key)
{
	char buf[1024];
	int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof buf - 1); /* one read: counted */
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	const char *p = strstr(buf, key);
	assert_non_null(p);
	return strtoull(p + strlen(key), NULL, 10);
}

/* What two back-to-back probes of key differ by: the probe's own calls
 * (1 read natively; more under valgrind, which reads on our behalf). */
static uint64_t probe_cost(const char *key)
{
	uint64_t a = proc_io(key);
	uint64_t b = proc_io(key);
	uint64_t c = proc_io(key);
	assert_int_equal(b - a, c - b); /* stable, or the counts mean nothing */
	return b - a;
}

/* Are /proc/self/io counts ours alone? Not under valgrind, whose scheduler
 * reads and writes a pipe around each of our system calls: then the
 * call-count checks are skipped (the behaviour checks still run). */
static bool counts_exact(void)
{
	const char *pre = getenv("LD_PRELOAD");
	return pre == NULL || strstr(pre, "vgpreload") == NULL;
}

/* Check that calls counted under key between two probes are in [lo, hi]. */
static void assert_calls(const char *key, uint64_t before, uint64_t after, uint64_t lo,
			 uint64_t hi);

/* Calls counted under key between two probes, net of the probes. */
static uint64_t calls_between(const char *key, uint64_t before, uint64_t after)
{
	uint64_t cost = probe_cost(key);
	assert_true(after >= before + cost);
	return after - before - cost;
}

static void assert_calls(const char *key, uint64_t before, uint64_t after, uint64_t lo,
			 uint64_t hi)
{
	if (!counts_exact())
		return;
	uint64_t n = calls_between(key, before, after);
	if (n < lo || n > hi)
		fail_msg("%s%llu calls, expected %llu..%llu", key, (unsigned long long)n,
			 (unsigned long long)lo, (unsigned long long)hi);
}

/* Pause/resume around an IPC round trip costs nothing; input while paused
 * takes EPOLLIN out once, is not read, and comes back at resume. */
static void test_pause_syscalls(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	int epfd = find_epoll_fd();
	int fd = yz_io_fd(c.io);
	peer_send(&c, "a\n");
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 16, "a\n");

	uint64_t ctl0 = ctl_calls(c.loop);
	for (int i = 0; i < 10; i++) {
		yz_io_pause(c.io, true);
		yz_io_pause(c.io, false);
	}
	yz_io_pause(c.io, true);
	assert_int_equal(ctl_calls(c.loop), ctl0);
	assert_int_equal(kernel_events(epfd, fd), EPOLLIN); /* kept, lazily */

	/* Input while paused: not read, not reported, EPOLLIN taken out, and
	 * the loop sleeps instead of spinning. */
	peer_send(&c, "b\n");
	uint64_t waits0 = wait_calls(c.loop);
	yz_timer_add(c.loop, 50, stop_cb, NULL);
	size_t before = c.nev;
	assert_int_equal(yz_loop_run(c.loop), 0);
	assert_int_equal(c.nev, before);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 0);
	assert_int_equal(ctl_calls(c.loop), ctl0 + 1);
	assert_int_equal(kernel_events(epfd, fd), 0);
	assert_int_equal(yz_loop_fd_events(c.loop, fd), 0);
	assert_true(wait_calls(c.loop) - waits0 <= 3);

	/* Still paused: pausing again changes nothing. */
	yz_io_pause(c.io, true);
	assert_int_equal(ctl_calls(c.loop), ctl0 + 1);

	/* Resume: EPOLLIN back (one call), and the input arrives. */
	yz_io_pause(c.io, false);
	assert_int_equal(ctl_calls(c.loop), ctl0 + 2);
	assert_int_equal(kernel_events(epfd, fd), EPOLLIN);
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 16, "b\n");

	/* Lazy again after that. */
	yz_io_pause(c.io, true);
	yz_io_pause(c.io, false);
	assert_int_equal(ctl_calls(c.loop), ctl0 + 2);

	/* A full read buffer is not a lazy pause: EPOLLIN goes out at once. */
	char big[2048];
	memset(big, 'f', sizeof big);
	assert_int_equal(write(c.peer, big, sizeof big), (ssize_t)sizeof big);
	expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 1024);
	assert_int_equal(kernel_events(epfd, fd), 0);
	yz_io_pause(c.io, true);
	yz_io_consume(c.io, 1024);
	assert_int_equal(kernel_events(epfd, fd), 0); /* paused: data waits */
	yz_io_pause(c.io, false);
	assert_int_equal(kernel_events(epfd, fd), EPOLLIN);
	expect_event(&c, YZ_IO_READABLE);
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), 1024);
	yz_io_consume(c.io, 1024);
	ctx_done(&c);
}

/* A short read is the only read of its turn: no read() returning EAGAIN. */
static void test_short_read_syscalls(void **state)
{
	struct ctx c;
	ctx_init(&c, 64 * 1024, 1024);
	peer_send(&c, "hello\n");
	uint64_t r0 = proc_io("syscr: ");
	expect_event(&c, YZ_IO_READABLE);
	uint64_t r1 = proc_io("syscr: ");
	assert_calls("syscr: ", r0, r1, 1, 1);
	expect_line(&c, 16, "hello\n");

	/* More than one chunk: full chunk, then a short one, then stop. */
	size_t total = YZ_IO_READ_CHUNK + 100;
	char *data = malloc(total);
	assert_non_null(data);
	memset(data, 'q', total);
	assert_int_equal(write(c.peer, data, total), (ssize_t)total);
	free(data);
	r0 = proc_io("syscr: ");
	expect_event(&c, YZ_IO_READABLE);
	r1 = proc_io("syscr: ");
	assert_int_equal(yz_buf_len(yz_io_rbuf(c.io)), total);
	assert_calls("syscr: ", r0, r1, 2, 2);
	yz_io_consume(c.io, total);

	/* EOF still comes through (a read returning 0). */
	close(c.peer);
	c.peer = -1;
	expect_event(&c, YZ_IO_EOF);
	ctx_done(&c);
}

/* A write the fd takes in part is not retried before EPOLLOUT: over a pipe
 * (where write() shows in syscw) of one page, a flush is one write(). The
 * ENOTSOCK answer of send() is asked once per io. */
static void test_partial_write_syscalls(void **state)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	int pipe_size = fcntl(p[1], F_SETPIPE_SZ, 4096);
	assert_true(pipe_size >= 4096);
	struct ctx c;
	memset(&c, 0, sizeof c);
	c.loop = yz_loop_new();
	c.io = yz_io_new(c.loop, p[1], 1024, 64 * 1024);
	assert_non_null(c.io);
	c.peer = p[0];
	yz_io_set_handler(c.io, handler, &c);

	size_t total = (size_t)pipe_size * 3;
	char *data = pattern(total);
	assert_int_equal(yz_io_write(c.io, data, total), 0);
	free(data);
	uint64_t w0 = proc_io("syscw: ");
	assert_int_equal(yz_io_flush(c.io), 0);
	uint64_t w1 = proc_io("syscw: ");
	assert_calls("syscw: ", w0, w1, 1, 1);
	assert_int_equal(yz_io_wpending(c.io), total - (size_t)pipe_size);

	/* Drain the pipe as it fills: at most one write() per loop turn. */
	struct drain d = { &c, 0, 0 };
	assert_int_equal(fcntl(c.peer, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(yz_loop_add_fd(c.loop, c.peer, YZ_EV_READ, on_peer_readable, &d), 0);
	uint64_t waits0 = wait_calls(c.loop);
	w0 = proc_io("syscw: ");
	expect_event(&c, YZ_IO_DRAINED);
	w1 = proc_io("syscw: ");
	assert_calls("syscw: ", w0, w1, 1, wait_calls(c.loop) - waits0);
	assert_int_equal(yz_io_wpending(c.io), 0);
	while (d.got < total) {
		char buf[4096];
		ssize_t n = read(c.peer, buf, sizeof buf);
		assert_true(n > 0);
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal((unsigned char)buf[i], (unsigned char)((d.got + (size_t)i) % 251));
		d.got += (size_t)n;
	}
	yz_loop_del_fd(c.loop, c.peer);
	ctx_done(&c);
}

/* TLS: a short record read is not followed by a read() returning EAGAIN
 * when OpenSSL holds nothing more. */
struct tside {
	struct yz_loop *loop;
	int ready, readable;
};

static void tls_handler(struct yz_io *io, enum yz_io_event ev, void *arg)
{
	struct tside *t = arg;
	assert_int_not_equal(ev, YZ_IO_ERROR);
	if (ev == YZ_IO_TLS_READY)
		t->ready++;
	if (ev == YZ_IO_READABLE)
		t->readable++;
	yz_loop_stop(t->loop);
}

static void settle_cb(struct yz_loop *loop, void *arg)
{
	*(bool *)arg = true;
	yz_loop_stop(loop);
}

static void test_tls_short_read_syscalls(void **state)
{
	char dir[] = "/tmp/yz-io-tls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cert[64], key[64];
	assert_true(snprintf(cert, sizeof cert, "%s/cert.pem", dir) < (int)sizeof cert);
	assert_true(snprintf(key, sizeof key, "%s/key.pem", dir) < (int)sizeof key);
	const char *error = NULL;
	assert_int_equal(yz_tls_make_selfsigned(cert, key, "mx.example.org", &error), 0);
	struct yz_tls_ctx *sctx = yz_tls_server_ctx_new(cert, key, &error);
	struct yz_tls_ctx *cctx = yz_tls_client_ctx_new(&error);
	assert_non_null(sctx);
	assert_non_null(cctx);

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct yz_loop *loop = yz_loop_new();
	struct tside ts = { loop, 0, 0 }, tc = { loop, 0, 0 };
	struct yz_io *sio = yz_io_new(loop, sv[0], 4096, 4096);
	struct yz_io *cio = yz_io_new(loop, sv[1], 4096, 4096);
	assert_non_null(sio);
	assert_non_null(cio);
	yz_io_set_handler(sio, tls_handler, &ts);
	yz_io_set_handler(cio, tls_handler, &tc);
	assert_int_equal(yz_io_starttls(sio, sctx, true), 0);
	assert_int_equal(yz_io_starttls(cio, cctx, false), 0);
	struct yz_timer *guard = yz_timer_add(loop, GUARD_MS, on_guard, NULL);
	while (ts.ready == 0 || tc.ready == 0)
		assert_int_equal(yz_loop_run(loop), 0);
	/* Let the client take the session tickets the server sends. */
	bool settled = false;
	yz_timer_add(loop, 50, settle_cb, &settled);
	while (!settled)
		assert_int_equal(yz_loop_run(loop), 0);
	assert_int_equal(ts.readable, 0);

	for (int round = 0; round < 3; round++) {
		assert_int_equal(yz_io_write(cio, "hello\n", 6), 0);
		assert_int_equal(yz_io_flush(cio), 0);
		int before = ts.readable;
		uint64_t r0 = proc_io("syscr: ");
		while (ts.readable == before)
			assert_int_equal(yz_loop_run(loop), 0);
		uint64_t r1 = proc_io("syscr: ");
		/* One record: its header and its body, nothing more. */
		assert_calls("syscr: ", r0, r1, 1, 2);
		struct yz_slice line;
		assert_int_equal(yz_io_read_line(sio, 16, &line), YZ_LINE_OK);
		assert_int_equal(line.len, 6);
		assert_memory_equal(line.p, "hello\n", 6);
		yz_io_consume(sio, line.len);
	}
	yz_timer_del(loop, &guard);
	yz_io_free(&sio);
	yz_io_free(&cio);
	assert_int_equal(yz_loop_run(loop), 0);
	yz_loop_free(&loop);
	yz_tls_ctx_free(&sctx);
	yz_tls_ctx_free(&cctx);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

/* Re-setting the idle timeout: the period restarts at each call, whether
 * the armed timer is kept (due earlier) or replaced (due later). */
static void test_timeout_reset(void **state)
{
	struct ctx c;
	ctx_init(&c, 1024, 1024);
	c.keep_running = false;
	yz_io_set_timeout(c.io, 10000);
	yz_io_set_timeout(c.io, 60); /* shorter: must fire at 60, not 10000 */
	uint64_t start = yz_now_ms();
	expect_event(&c, YZ_IO_TIMEOUT);
	uint64_t el = yz_now_ms() - start;
	assert_true(el >= 59 && el < 1500);

	/* Same period again after 30 ms: the old timer is kept, yet the report
	 * comes a full period after the second call. */
	yz_io_set_timeout(c.io, 80);
	yz_timer_add(c.loop, 30, stop_cb, NULL);
	assert_int_equal(yz_loop_run(c.loop), 0);
	size_t before = c.nev;
	uint64_t second = yz_now_ms();
	yz_io_set_timeout(c.io, 80);
	expect_event(&c, YZ_IO_TIMEOUT);
	assert_int_equal(c.nev, before + 1);
	assert_true(yz_now_ms() - second >= 79);

	/* Longer than the armed timer: fires after the longer period. */
	yz_io_set_timeout(c.io, 20);
	yz_io_set_timeout(c.io, 100);
	start = yz_now_ms();
	expect_event(&c, YZ_IO_TIMEOUT);
	assert_true(yz_now_ms() - start >= 99);
	yz_io_set_timeout(c.io, 0);
	ctx_done(&c);
}

/* net.h: listen, connect, accept and addresses on loopback. */
static void test_net(void **state)
{
	const char *error = NULL;
	int lfd = yz_net_listen_tcp("127.0.0.1", 0, 16, &error);
	assert_true(lfd >= 0);
	char addr[YZ_NET_ADDR_MAX];
	unsigned port = 0;
	assert_int_equal(yz_net_local_addr(lfd, addr, sizeof addr, &port), 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_true(port > 0);
	int cfd = yz_net_connect_tcp("127.0.0.1", port, 1000, &error);
	assert_true(cfd >= 0);
	unsigned peer_port = 0;
	int afd = yz_net_accept(lfd, addr, sizeof addr, &peer_port);
	assert_true(afd >= 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_true(peer_port > 0);
	assert_true(fcntl(afd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(afd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(yz_net_peer_addr(cfd, addr, sizeof addr, &peer_port), 0);
	assert_int_equal(peer_port, port);
	assert_int_equal(yz_net_accept(lfd, NULL, 0, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	close(afd);
	close(cfd);
	/* The port is taken now (without SO_REUSEPORT). */
	assert_int_equal(yz_net_listen_tcp("127.0.0.1", port, 16, &error), -1);
	assert_non_null(strstr(error, "bind"));
	close(lfd);

	assert_int_equal(yz_net_listen_tcp("not-an-address", 25, 16, &error), -1);
	assert_int_equal(yz_net_listen_tcp("127.0.0.1", 70000, 16, &error), -1);
	assert_int_equal(yz_net_connect_tcp("127.0.0.1", 0, 100, &error), -1);

	/* IPv6 loopback, where the machine has it. */
	lfd = yz_net_listen_tcp("::1", 0, 16, &error);
	if (lfd >= 0) {
		assert_int_equal(yz_net_local_addr(lfd, addr, sizeof addr, &port), 0);
		assert_string_equal(addr, "::1");
		int one = 0;
		socklen_t len = sizeof one;
		assert_int_equal(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, &len), 0);
		assert_int_equal(one, 1);
		cfd = yz_net_connect_tcp("::1", port, 1000, &error);
		assert_true(cfd >= 0);
		close(cfd);
		close(lfd);
	}

	/* UNIX sockets: a stale socket is replaced, a regular file is not. */
	char dir[] = "/tmp/yz-net-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	assert_true(snprintf(path, sizeof path, "%s/ctl.sock", dir) < (int)sizeof path);
	lfd = yz_net_listen_unix(path, 0660, 8, &error);
	assert_true(lfd >= 0);
	close(lfd); /* leaves a stale socket file */
	lfd = yz_net_listen_unix(path, 0600, 8, &error);
	assert_true(lfd >= 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	cfd = yz_net_connect_unix(path, false, &error);
	assert_true(cfd >= 0);
	afd = yz_net_accept(lfd, addr, sizeof addr, &port);
	assert_true(afd >= 0);
	assert_string_equal(addr, "unix");
	close(afd);
	close(cfd);
	cfd = yz_net_connect_unix(path, true, &error);
	assert_true(cfd >= 0);
	close(cfd);
	close(lfd);
	unlink(path);
	assert_int_equal(yz_net_connect_unix(path, true, &error), -1);
	int ffd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(ffd >= 0);
	close(ffd);
	assert_int_equal(yz_net_listen_unix(path, 0600, 8, &error), -1);
	unlink(path);
	rmdir(dir);
}

/* An io over a TCP connection from net.h, end to end. */
static void test_io_over_tcp(void **state)
{
	const char *error = NULL;
	int lfd = yz_net_listen_tcp("127.0.0.1", 0, 16, &error);
	assert_true(lfd >= 0);
	unsigned port;
	assert_int_equal(yz_net_local_addr(lfd, NULL, 0, &port), 0);
	int cfd = yz_net_connect_tcp("127.0.0.1", port, 1000, &error);
	assert_true(cfd >= 0);
	int afd = yz_net_accept(lfd, NULL, 0, NULL);
	assert_true(afd >= 0);
	close(lfd);
	struct ctx c;
	memset(&c, 0, sizeof c);
	c.loop = yz_loop_new();
	c.io = yz_io_new(c.loop, afd, 1024, 1024);
	c.peer = cfd;
	yz_io_set_handler(c.io, handler, &c);
	assert_int_equal(yz_io_printf(c.io, "220 %s ESMTP\r\n", "mx.example"), 0);
	assert_int_equal(yz_io_flush(c.io), 0);
	char buf[64];
	assert_int_equal(read(cfd, buf, sizeof buf), 22);
	assert_memory_equal(buf, "220 mx.example ESMTP\r\n", 22);
	peer_send(&c, "QUIT\r\n");
	expect_event(&c, YZ_IO_READABLE);
	expect_line(&c, 512, "QUIT\r\n");
	shutdown(cfd, SHUT_WR);
	expect_event(&c, YZ_IO_EOF);
	ctx_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_line_raw),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_write_cap),
		cmocka_unit_test(test_partial_write_drained),
		cmocka_unit_test(test_close_after_flush),
		cmocka_unit_test(test_close_after_flush_empty),
		cmocka_unit_test(test_eof_with_pending),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_free_in_handler),
		cmocka_unit_test(test_pause_and_backpressure),
		cmocka_unit_test(test_buffer_memory),
		cmocka_unit_test(test_hup_while_paused),
		cmocka_unit_test(test_pause_syscalls),
		cmocka_unit_test(test_short_read_syscalls),
		cmocka_unit_test(test_partial_write_syscalls),
		cmocka_unit_test(test_timeout_reset),
		cmocka_unit_test(test_tls_short_read_syscalls),
		cmocka_unit_test(test_net),
		cmocka_unit_test(test_io_over_tcp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
