/*
 * io.c: buffered non-blocking connections with optional TLS (OpenSSL on the
 * socket fd), driven by the event loop.
 *
 * Guarantees: see io.h. Internally:
 * - State is explicit: PLAIN, TLS_PENDING (plaintext still being sent before
 *   the handshake; nothing is read meanwhile, so the peer's ClientHello goes
 *   to TLS), TLS_HANDSHAKE and TLS_READY.
 * - OpenSSL's cross-direction wants are honoured: a read that wants to write
 *   waits for EPOLLOUT and is retried there, a write that wants to read waits
 *   for EPOLLIN and is retried there.
 * - Every callback path into this file holds a reference on the io; a
 *   yz_io_free() from a handler only marks it dead (closing the fd at once)
 *   and the memory goes when the last reference does.
 * - EPOLLHUP/EPOLLERR are level-triggered and always reported: an io that
 *   does not want to read or write takes its fd out of epoll until it does,
 *   so a paused or finished connection never spins the loop.
 * - Few system calls per turn (epoll is level-triggered, which is what makes
 *   each of these safe: bytes left in the kernel are always reported again):
 *   - Pausing keeps EPOLLIN in the kernel ("lazy" pause, as nginx and libuv
 *     do): a request/response peer sends nothing while we wait for an IPC
 *     answer, so pause + resume costs no epoll_ctl at all. Only when input
 *     does arrive while paused is EPOLLIN taken out (one epoll_ctl, as an
 *     eager pause would have cost), and it comes back at resume.
 *   - A read that returned less than asked ends the turn: the socket is
 *     empty, another read would only return EAGAIN. With TLS the same holds
 *     when OpenSSL buffers nothing more (SSL_has_pending()).
 *   - A send that took less than offered ends the turn too: the socket
 *     buffer is full, EPOLLOUT tells when it is not.
 *   - The idle timer is not re-armed when a new period would end no earlier
 *     than the armed one: it re-arms itself for the rest when it fires.
 *
 * Never: blocks, reads plaintext once STARTTLS began, hands the caller a byte
 * that was buffered before STARTTLS, writes outside yz_io_flush() or the
 * loop's EPOLLOUT path.
 */
#include "lib/io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/tls.h"

/* An rbuf larger than this holding at most IO_RBUF_TRIM_LEN bytes shrinks. */
#define IO_RBUF_TRIM_CAP 4096
#define IO_RBUF_TRIM_LEN 512

enum io_state { IO_PLAIN, IO_TLS_PENDING, IO_TLS_HANDSHAKE, IO_TLS_READY };

struct yz_io {
	struct yz_loop *loop;
	int fd;
	unsigned refs;            /* callbacks of ours on the stack or queued */
	struct yz_buf rbuf, wbuf;
	size_t rbuf_max;
	yz_io_handler *handler;
	void *arg;

	uint64_t idle_ms, last_read;
	struct yz_timer *timer;
	uint64_t timer_due;       /* when timer fires, yz_now_ms() scale */

	bool registered;          /* fd is in the loop */
	unsigned events;          /* events asked of the loop */

	bool dead;                /* freed by the owner: no more handlers */
	bool paused, eof, failed, skipping;
	bool write_blocked;       /* wbuf not empty after a flush: EPOLLOUT armed */
	bool notify_drained;      /* report YZ_IO_DRAINED when wbuf empties */
	bool hup_seen;            /* out of epoll after HUP/ERR with no interest */
	bool read_spurious;       /* EPOLLIN came while we could not read */
	bool not_socket;          /* send() said ENOTSOCK: write() from now on */
	bool error_notified, eof_notified;
	bool defer_read, defer_readable, defer_error, defer_handshake;

	bool closing;             /* close_after_flush */
	bool finish_queued;
	void (*done)(void *arg);
	void *done_arg;

	enum io_state state;
	size_t plain_left;        /* TLS_PENDING: plaintext bytes still to send */
	SSL *ssl;
	bool hs_want_read, hs_want_write;
	bool read_wants_write, write_wants_read;

	char error[YZ_IO_ERROR_MAX];
};

static void io_update_events(struct yz_io *io);
static void io_do_read(struct yz_io *io);

/* ---- lifetime ---- */

/* Take a reference while a callback of ours uses io. */
static void io_ref(struct yz_io *io)
{
	io->refs++;
}

/* Release the memory of a dead io. */
static void io_destroy(struct yz_io *io)
{
	yz_buf_free(&io->rbuf);
	yz_buf_free(&io->wbuf);
	if (io->ssl != NULL)
		SSL_free(io->ssl);
	free(io);
}

/* Drop a reference; the last one of a dead io frees it. */
static void io_unref(struct yz_io *io)
{
	if (--io->refs == 0 && io->dead)
		io_destroy(io);
}

/* Close the fd and make io dead (idempotent); memory stays for now. */
static void io_close(struct yz_io *io)
{
	if (io->dead)
		return;
	io->dead = true;
	io->handler = NULL;
	yz_timer_del(io->loop, &io->timer);
	if (io->registered)
		yz_loop_del_fd(io->loop, io->fd);
	io->registered = false;
	if (io->ssl != NULL && io->state == IO_TLS_READY && !io->failed) {
		/* One non-blocking attempt at close_notify; never wait for it. */
		ERR_clear_error();
		(void)SSL_shutdown(io->ssl);
		ERR_clear_error();
	}
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
}

/* Free an io; safe from handlers. */
void yz_io_free(struct yz_io **iop)
{
	if (iop == NULL || *iop == NULL)
		return;
	struct yz_io *io = *iop;
	*iop = NULL;
	if (io->dead)
		return;
	io_close(io);
	if (io->refs == 0)
		io_destroy(io);
}

/* ---- errors and notifications ---- */

/* Record the first error; later ones are consequences. */
static void io_set_error(struct yz_io *io, const char *what, const char *detail)
{
	if (io->failed)
		return;
	io->failed = true;
	int n = snprintf(io->error, sizeof io->error, "%s%s%.120s", what,
			 detail != NULL ? ": " : "", detail != NULL ? detail : "");
	(void)n; /* truncation keeps the start, which says what failed */
}

/* Call the handler; false if io died meanwhile. Caller holds a reference. */
static bool io_notify(struct yz_io *io, enum yz_io_event ev)
{
	if (io->dead)
		return false;
	if (io->handler != NULL)
		io->handler(io, ev, io->arg);
	return !io->dead;
}

/* Report the error once; a closing io just finishes. */
static bool io_notify_error(struct yz_io *io);

/* Queue fn(io) on the loop with a reference held. */
static void io_defer(struct yz_io *io, yz_timer_cb *fn)
{
	io_ref(io);
	yz_loop_defer(io->loop, fn, io);
}

/* Finish a close_after_flush: free the io, then call done. */
static void io_finish_close(struct yz_io *io)
{
	if (io->dead)
		return;
	void (*done)(void *) = io->done;
	void *done_arg = io->done_arg;
	io_close(io);
	if (done != NULL)
		done(done_arg);
}

/* Deferred end of a close_after_flush. */
static void io_deferred_finish(struct yz_loop *loop, void *arg)
{
	struct yz_io *io = arg;
	io->finish_queued = false;
	io_finish_close(io);
	io_unref(io);
}

/* Queue the end of a close_after_flush (at most once). */
static void io_queue_finish(struct yz_io *io)
{
	if (io->finish_queued || io->dead)
		return;
	io->finish_queued = true;
	io_defer(io, io_deferred_finish);
}

static bool io_notify_error(struct yz_io *io)
{
	if (io->closing) {
		io_queue_finish(io);
		return !io->dead;
	}
	if (io->error_notified)
		return !io->dead;
	io->error_notified = true;
	return io_notify(io, YZ_IO_ERROR);
}

/* Deferred YZ_IO_ERROR after a failing synchronous call. */
static void io_deferred_error(struct yz_loop *loop, void *arg)
{
	struct yz_io *io = arg;
	io->defer_error = false;
	if (!io->dead)
		(void)io_notify_error(io);
	if (!io->dead)
		io_update_events(io);
	io_unref(io);
}

/* Queue an error notification (synchronous calls never call the handler). */
static void io_queue_error(struct yz_io *io)
{
	if (io->defer_error || io->error_notified || io->dead)
		return;
	io->defer_error = true;
	io_defer(io, io_deferred_error);
}

/* ---- events registration ---- */

/* May we read from the socket into rbuf now? */
static bool io_can_read(const struct yz_io *io)
{
	return !io->dead && !io->failed && !io->eof && !io->paused && !io->closing &&
	       (io->state == IO_PLAIN || io->state == IO_TLS_READY) &&
	       yz_buf_len(&io->rbuf) < io->rbuf_max;
}

/* The events this io needs from the loop in its current state. */
static unsigned io_wanted_events(const struct yz_io *io)
{
	if (io->dead || io->failed)
		return 0;
	unsigned ev = 0;
	switch (io->state) {
	case IO_PLAIN:
	case IO_TLS_READY:
		if (io_can_read(io) || io->write_wants_read)
			ev |= YZ_EV_READ;
		if (io->write_blocked || io->read_wants_write)
			ev |= YZ_EV_WRITE;
		break;
	case IO_TLS_PENDING:
		ev |= YZ_EV_WRITE;
		break;
	case IO_TLS_HANDSHAKE:
		if (io->hs_want_read)
			ev |= YZ_EV_READ;
		if (io->hs_want_write)
			ev |= YZ_EV_WRITE;
		break;
	}
	return ev;
}

static void io_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg);

/* May EPOLLIN stay in the kernel although we do not want to read? Only
 * for a pause of a healthy connection whose input buffer has room, and
 * until input shows up anyway (then it is taken out, see io_handle). */
static bool io_read_lazy_ok(const struct yz_io *io)
{
	return io->paused && !io->read_spurious && !io->dead && !io->failed && !io->eof &&
	       !io->closing && (io->state == IO_PLAIN || io->state == IO_TLS_READY) &&
	       yz_buf_len(&io->rbuf) < io->rbuf_max;
}

/* Tell the loop what we want now (no system call if that did not change). */
static void io_update_events(struct yz_io *io)
{
	if (io->dead)
		return;
	unsigned want = io_wanted_events(io);
	if ((io->events & YZ_EV_READ) && !(want & YZ_EV_READ) && io->registered &&
	    io_read_lazy_ok(io))
		want |= YZ_EV_READ; /* lazy pause: keep it, it costs nothing */
	if (want & YZ_EV_READ)
		io->read_spurious = false;
	if (!io->registered) {
		/* Out after a hang-up (or a failure): come back only with interest. */
		if (want == 0 || io->failed)
			return;
		if (yz_loop_add_fd(io->loop, io->fd, want, io_fd_cb, io) < 0) {
			io_set_error(io, "epoll add", strerror(errno));
			io_queue_error(io);
			return;
		}
		io->registered = true;
		io->events = want;
		return;
	}
	if (io->failed) {
		yz_loop_del_fd(io->loop, io->fd);
		io->registered = false;
		return;
	}
	if (want != io->events) {
		if (yz_loop_mod_fd(io->loop, io->fd, want) < 0) {
			io_set_error(io, "epoll mod", strerror(errno));
			io_queue_error(io);
			return;
		}
		io->events = want;
	}
}

/* ---- reading ---- */

/* Deferred read, for TLS plaintext already decrypted inside OpenSSL. */
static void io_deferred_read(struct yz_loop *loop, void *arg)
{
	struct yz_io *io = arg;
	io->defer_read = false;
	if (!io->dead) {
		io_do_read(io);
		if (!io->dead)
			io_update_events(io);
	}
	io_unref(io);
}

/* Queue a read when OpenSSL holds input that epoll cannot announce. */
static void io_maybe_defer_read(struct yz_io *io)
{
	if (io->ssl == NULL || io->state != IO_TLS_READY || io->defer_read ||
	    !io_can_read(io) || SSL_pending(io->ssl) <= 0)
		return;
	io->defer_read = true;
	io_defer(io, io_deferred_read);
}

/* One read call into rbuf: >0 bytes, 0 nothing now, -1 EOF/error (flags set). */
static ssize_t io_read_once(struct yz_io *io, char *p, size_t n)
{
	if (io->ssl != NULL) {
		size_t got = 0;
		ERR_clear_error();
		if (SSL_read_ex(io->ssl, p, n, &got) == 1)
			return (ssize_t)got;
		int e = SSL_get_error(io->ssl, 0);
		switch (e) {
		case SSL_ERROR_WANT_READ:
			return 0;
		case SSL_ERROR_WANT_WRITE:
			io->read_wants_write = true;
			return 0;
		case SSL_ERROR_ZERO_RETURN:
			io->eof = true;
			return -1;
		case SSL_ERROR_SYSCALL:
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			io_set_error(io, "TLS read", ERR_peek_error() != 0 ?
				     yz_tls_last_error(NULL) : strerror(errno));
			return -1;
		default:
			io_set_error(io, "TLS read", yz_tls_last_error("protocol error"));
			return -1;
		}
	}
	for (;;) {
		ssize_t r = read(io->fd, p, n);
		if (r > 0)
			return r;
		if (r == 0) {
			io->eof = true;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		io_set_error(io, "read", strerror(errno));
		return -1;
	}
}

/* Keep little memory for little input: an empty read buffer is freed, and a
 * large one holding a short remainder (a half-sent command on an idle
 * connection) is moved to a small allocation. */
static void io_rbuf_trim(struct yz_io *io)
{
	size_t len = yz_buf_len(&io->rbuf);
	if (len == 0) {
		yz_buf_free(&io->rbuf);
		return;
	}
	if (io->rbuf.cap <= IO_RBUF_TRIM_CAP || len > IO_RBUF_TRIM_LEN)
		return;
	struct yz_buf small;
	yz_buf_init(&small, io->rbuf_max);
	if (yz_buf_append(&small, yz_buf_data(&io->rbuf), len) < 0)
		yz_panic("io: rbuf trim beyond its own cap");
	yz_buf_free(&io->rbuf);
	io->rbuf = small;
}

/* Read what is available (bounded), then tell the handler. */
static void io_do_read(struct yz_io *io)
{
	size_t total = 0;
	for (int round = 0; round < YZ_IO_READ_ROUNDS && io_can_read(io); round++) {
		size_t room = io->rbuf_max - yz_buf_len(&io->rbuf);
		size_t chunk = room < YZ_IO_READ_CHUNK ? room : YZ_IO_READ_CHUNK;
		char *p = yz_buf_reserve(&io->rbuf, chunk);
		if (p == NULL)
			break;
		ssize_t n = io_read_once(io, p, chunk);
		if (n <= 0)
			break;
		yz_buf_commit(&io->rbuf, (size_t)n);
		total += (size_t)n;
		/* A short read means the socket is empty: another read would
		 * only say EAGAIN (level-triggered epoll reports what comes
		 * later). With TLS, only if OpenSSL holds nothing more either:
		 * bytes it buffered are invisible to epoll. */
		if ((size_t)n < chunk && (io->ssl == NULL || !SSL_has_pending(io->ssl)))
			break;
	}
	io_rbuf_trim(io);
	if (total > 0) {
		io->last_read = yz_now_ms();
		if (!io_notify(io, YZ_IO_READABLE))
			return;
	}
	if (io->failed) {
		(void)io_notify_error(io);
		return;
	}
	if (io->eof && !io->closing) {
		/* Report EOF once: eof stays set, so reading never resumes. */
		if (!io->eof_notified) {
			io->eof_notified = true;
			(void)io_notify(io, YZ_IO_EOF);
		}
		return;
	}
	io_maybe_defer_read(io);
}

/* ---- writing ---- */

/* Send from wbuf what the socket takes: 0 (maybe incomplete), -1 on error.
 * In TLS_PENDING only the plaintext queued before STARTTLS goes out. */
static int io_write_some(struct yz_io *io)
{
	while (yz_buf_len(&io->wbuf) > 0) {
		const char *p = yz_buf_data(&io->wbuf);
		size_t len = yz_buf_len(&io->wbuf);
		if (io->state == IO_TLS_PENDING) {
			if (io->plain_left == 0)
				break;
			if (len > io->plain_left)
				len = io->plain_left;
		} else if (io->state == IO_TLS_HANDSHAKE) {
			break;
		}
		if (io->ssl != NULL && io->state == IO_TLS_READY) {
			size_t n = 0;
			ERR_clear_error();
			if (SSL_write_ex(io->ssl, p, len, &n) == 1) {
				yz_buf_consume(&io->wbuf, n);
				continue;
			}
			int e = SSL_get_error(io->ssl, 0);
			if (e == SSL_ERROR_WANT_WRITE)
				break;
			if (e == SSL_ERROR_WANT_READ) {
				io->write_wants_read = true;
				break;
			}
			if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EINTR))
				break;
			io_set_error(io, "TLS write", e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ?
				     strerror(errno) : yz_tls_last_error("protocol error"));
			return -1;
		}
		ssize_t n;
		if (io->not_socket) {
			n = write(io->fd, p, len);
		} else {
			n = send(io->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == ENOTSOCK) {
				io->not_socket = true; /* a pipe: ask once */
				n = write(io->fd, p, len);
			}
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			io_set_error(io, "write", strerror(errno));
			return -1;
		}
		yz_buf_consume(&io->wbuf, (size_t)n);
		if (io->state == IO_TLS_PENDING)
			io->plain_left -= (size_t)n;
		/* The socket took less than offered: it is full, and another
		 * send would only say EAGAIN; EPOLLOUT tells when to go on. */
		if ((size_t)n < len)
			break;
	}
	if (yz_buf_len(&io->wbuf) == 0) {
		yz_buf_free(&io->wbuf);
		io->write_blocked = false;
	} else {
		io->write_blocked = io->state == IO_PLAIN || io->state == IO_TLS_READY ||
				    (io->state == IO_TLS_PENDING && io->plain_left > 0);
	}
	return 0;
}

/* ---- TLS ---- */

/* Advance the handshake; notify on completion or failure. */
static void io_tls_handshake(struct yz_io *io)
{
	ERR_clear_error();
	int r = SSL_do_handshake(io->ssl);
	io->hs_want_read = io->hs_want_write = false;
	if (r == 1) {
		io->state = IO_TLS_READY;
		if (io->closing) {
			/* Nothing to say any more but what is queued. */
		} else if (!io_notify(io, YZ_IO_TLS_READY)) {
			return;
		}
		if (yz_buf_len(&io->wbuf) > 0 && io_write_some(io) < 0) {
			(void)io_notify_error(io);
			return;
		}
		if (io->closing && yz_buf_len(&io->wbuf) == 0) {
			io_queue_finish(io);
			return;
		}
		/* Application data may have come with the last handshake flight. */
		io_do_read(io);
		return;
	}
	int e = SSL_get_error(io->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		io->hs_want_read = true;
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		io->hs_want_write = true;
		return;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		io_set_error(io, "TLS handshake failed", errno != 0 ? strerror(errno) :
			     "connection closed");
	else
		io_set_error(io, "TLS handshake failed", yz_tls_last_error("protocol error"));
	(void)io_notify_error(io);
}

/* Deferred first handshake step (starttls never notifies synchronously). */
static void io_deferred_handshake(struct yz_loop *loop, void *arg)
{
	struct yz_io *io = arg;
	io->defer_handshake = false;
	if (!io->dead && io->state == IO_TLS_HANDSHAKE) {
		io_tls_handshake(io);
		if (!io->dead)
			io_update_events(io);
	}
	io_unref(io);
}

/* Plaintext drained: start the handshake. */
static void io_tls_begin(struct yz_io *io)
{
	io->state = IO_TLS_HANDSHAKE;
	if (!io->defer_handshake) {
		io->defer_handshake = true;
		io_defer(io, io_deferred_handshake);
	}
}

/* ---- the loop's callbacks ---- */

/* Handle readiness in the current state. */
static void io_handle(struct yz_io *io, unsigned events)
{
	if ((events & YZ_EV_ERROR) && io_wanted_events(io) == 0) {
		/* Level-triggered HUP with nothing to do: leave epoll until we
		 * want something again (then the HUP shows up as EOF/EPIPE). */
		yz_loop_del_fd(io->loop, io->fd);
		io->registered = false;
		io->hup_seen = true;
		return;
	}
	if (events & YZ_EV_ERROR)
		events |= io->events; /* let read/write discover what happened */

	switch (io->state) {
	case IO_TLS_PENDING:
		if (events & YZ_EV_WRITE) {
			if (io_write_some(io) < 0) {
				(void)io_notify_error(io);
				return;
			}
			if (io->closing && yz_buf_len(&io->wbuf) == 0)
				io_queue_finish(io); /* nothing to say in TLS */
			else if (io->plain_left == 0)
				io_tls_begin(io);
		}
		return;
	case IO_TLS_HANDSHAKE:
		if (events & (YZ_EV_READ | YZ_EV_WRITE))
			io_tls_handshake(io);
		return;
	case IO_PLAIN:
	case IO_TLS_READY:
		break;
	}

	bool do_read = (events & YZ_EV_READ) ||
		       ((events & YZ_EV_WRITE) && io->read_wants_write);
	bool do_write = (events & YZ_EV_WRITE) ||
			((events & YZ_EV_READ) && io->write_wants_read);
	if (do_write) {
		io->write_wants_read = false;
		bool had = yz_buf_len(&io->wbuf) > 0;
		if (had && io_write_some(io) < 0) {
			(void)io_notify_error(io);
			return;
		}
		if (had && yz_buf_len(&io->wbuf) == 0) {
			if (io->closing) {
				io_queue_finish(io);
				return;
			}
			if (io->notify_drained) {
				io->notify_drained = false;
				if (!io_notify(io, YZ_IO_DRAINED))
					return;
			}
		}
	}
	if (do_read) {
		io->read_wants_write = false;
		if (io_can_read(io))
			io_do_read(io);
		else if (io->closing && (events & YZ_EV_ERROR))
			io_queue_finish(io); /* peer gone: nothing will drain */
		else if (events & YZ_EV_READ)
			io->read_spurious = true; /* paused: take EPOLLIN out now */
	}
}

/* The loop's fd callback. */
static void io_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct yz_io *io = arg;
	io_ref(io);
	io_handle(io, events);
	if (!io->dead)
		io_update_events(io);
	io_unref(io);
}

/* now + ms, saturating (as yz_timer_add() computes deadlines). */
static uint64_t io_deadline(uint64_t now, uint64_t ms)
{
	return ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
}

/* The idle timer: report or re-arm for the rest of the period. */
static void io_timer_cb(struct yz_loop *loop, void *arg)
{
	struct yz_io *io = arg;
	io->timer = NULL; /* fired: the loop frees it */
	if (io->dead || io->idle_ms == 0)
		return;
	uint64_t now = yz_now_ms();
	uint64_t due = io_deadline(io->last_read, io->idle_ms);
	if (now < due) {
		io->timer = yz_timer_add(loop, due - now, io_timer_cb, io);
		io->timer_due = due;
		return;
	}
	io->last_read = now; /* the next report is one period later */
	io->timer = yz_timer_add(loop, io->idle_ms, io_timer_cb, io);
	io->timer_due = io_deadline(now, io->idle_ms);
	io_ref(io);
	if (io->closing)
		io_queue_finish(io);
	else
		(void)io_notify(io, YZ_IO_TIMEOUT);
	io_unref(io);
}

/* Deferred READABLE after a resume with unconsumed input. */
static void io_deferred_readable(struct yz_loop *loop, void *arg)
{
	struct yz_io *io = arg;
	io->defer_readable = false;
	if (!io->dead && !io->paused && !io->closing && yz_buf_len(&io->rbuf) > 0)
		(void)io_notify(io, YZ_IO_READABLE);
	io_unref(io);
}

/* ---- public API ---- */

/* Wrap a non-blocking fd. */
struct yz_io *yz_io_new(struct yz_loop *loop, int fd, size_t rbuf_max, size_t wbuf_max)
{
	if (yz_fd_set_nonblock(fd, true) < 0)
		return NULL;
	struct yz_io *io = yz_calloc(1, sizeof *io);
	io->loop = loop;
	io->fd = fd;
	io->rbuf_max = rbuf_max ? rbuf_max : YZ_IO_RBUF_DEFAULT;
	yz_buf_init(&io->rbuf, io->rbuf_max);
	yz_buf_init(&io->wbuf, wbuf_max ? wbuf_max : YZ_IO_WBUF_DEFAULT);
	io->state = IO_PLAIN;
	io->last_read = yz_now_ms();
	if (yz_loop_add_fd(loop, fd, YZ_EV_READ, io_fd_cb, io) < 0) {
		int e = errno;
		free(io);
		errno = e;
		return NULL;
	}
	io->registered = true;
	io->events = YZ_EV_READ;
	return io;
}

/* Set the event handler. */
void yz_io_set_handler(struct yz_io *io, yz_io_handler *cb, void *arg)
{
	if (io->dead || io->closing)
		return;
	io->handler = cb;
	io->arg = arg;
}

/* Set the idle timeout. */
void yz_io_set_timeout(struct yz_io *io, uint64_t idle_ms)
{
	if (io->dead)
		return;
	uint64_t now = yz_now_ms();
	io->idle_ms = idle_ms;
	io->last_read = now;
	if (idle_ms == 0) {
		yz_timer_del(io->loop, &io->timer);
		return;
	}
	/* A timer due no later than the new period's end can stay: it re-arms
	 * itself for the rest when it fires (io_timer_cb). */
	if (io->timer != NULL && io->timer_due <= io_deadline(now, idle_ms))
		return;
	yz_timer_del(io->loop, &io->timer);
	io->timer = yz_timer_add(io->loop, idle_ms, io_timer_cb, io);
	io->timer_due = io_deadline(now, idle_ms);
}

/* The fd (-1 once freed). */
int yz_io_fd(const struct yz_io *io)
{
	return io->fd;
}

/* Extract one raw line. */
enum yz_line_result yz_io_read_line(struct yz_io *io, size_t max, struct yz_slice *line_r)
{
	if (io->skipping) {
		yz_io_skip_line(io);
		if (io->skipping)
			return YZ_LINE_AGAIN;
	}
	const char *p = yz_buf_data(&io->rbuf);
	size_t len = yz_buf_len(&io->rbuf);
	if (len == 0)
		return YZ_LINE_AGAIN;
	size_t scan = max < len ? max + 1 : len; /* max < len: max + 1 <= len */
	const char *lf = memchr(p, '\n', scan);
	if (lf != NULL) {
		line_r->p = p;
		line_r->len = (size_t)(lf - p) + 1;
		return YZ_LINE_OK;
	}
	if (len > max || len >= io->rbuf_max)
		return YZ_LINE_TOOLONG;
	return YZ_LINE_AGAIN;
}

/* Discard input through the next LF, now or as it arrives. */
void yz_io_skip_line(struct yz_io *io)
{
	const char *p = yz_buf_data(&io->rbuf);
	size_t len = yz_buf_len(&io->rbuf);
	const char *lf = len > 0 ? memchr(p, '\n', len) : NULL;
	if (lf != NULL) {
		io->skipping = false;
		yz_io_consume(io, (size_t)(lf - p) + 1);
	} else {
		io->skipping = true;
		yz_io_consume(io, len);
	}
}

/* Raw read buffer. */
struct yz_buf *yz_io_rbuf(struct yz_io *io)
{
	return &io->rbuf;
}

/* Drop consumed input; resume reading if the buffer had been full. */
void yz_io_consume(struct yz_io *io, size_t n)
{
	bool was_full = yz_buf_len(&io->rbuf) >= io->rbuf_max;
	yz_buf_consume(&io->rbuf, n);
	io_rbuf_trim(io); /* an idle connection holds little or no input memory */
	if (was_full && !io->dead) {
		io_update_events(io);
		io_maybe_defer_read(io);
	}
}

/* Stop or resume reading. */
void yz_io_pause(struct yz_io *io, bool paused)
{
	if (io->dead || io->paused == paused)
		return;
	io->paused = paused;
	io_update_events(io);
	if (!paused) {
		if (yz_buf_len(&io->rbuf) > 0 && !io->defer_readable) {
			io->defer_readable = true;
			io_defer(io, io_deferred_readable);
		}
		io_maybe_defer_read(io);
	}
}

/* Queue output. */
int yz_io_write(struct yz_io *io, const void *data, size_t len)
{
	if (io->dead || io->closing || io->failed)
		return -1;
	return yz_buf_append(&io->wbuf, data, len);
}

/* Queue formatted output. */
int yz_io_printf(struct yz_io *io, const char *fmt, ...)
{
	if (io->dead || io->closing || io->failed)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int r = yz_buf_vprintf(&io->wbuf, fmt, ap);
	va_end(ap);
	return r;
}

/* Write what the socket takes now. */
int yz_io_flush(struct yz_io *io)
{
	if (io->dead || io->failed)
		return -1;
	if (io->state == IO_TLS_HANDSHAKE)
		return 0; /* sent when the handshake completes */
	if (io_write_some(io) < 0) {
		io_update_events(io);
		io_queue_error(io);
		return -1;
	}
	if (io->state == IO_TLS_PENDING) {
		if (io->plain_left == 0)
			io_tls_begin(io);
	} else if (io->write_blocked) {
		io->notify_drained = true;
	}
	io_update_events(io);
	return 0;
}

/* Queued bytes. */
size_t yz_io_wpending(const struct yz_io *io)
{
	return yz_buf_len(&io->wbuf);
}

/* Flush, then free and call done. */
void yz_io_close_after_flush(struct yz_io *io, void (*done)(void *arg), void *arg)
{
	if (io->dead)
		return;
	io->closing = true;
	io->handler = NULL;
	io->done = done;
	io->done_arg = arg;
	if (io->failed) {
		io_queue_finish(io);
		return;
	}
	if (io->state != IO_TLS_HANDSHAKE && io_write_some(io) < 0) {
		io_queue_finish(io);
		return;
	}
	if (yz_buf_len(&io->wbuf) == 0 && io->state != IO_TLS_HANDSHAKE) {
		io_queue_finish(io);
		return;
	}
	io_update_events(io);
}

/* Start TLS on the connection. */
int yz_io_starttls(struct yz_io *io, struct yz_tls_ctx *ctx, bool server)
{
	if (io->dead || io->failed || io->closing || io->ssl != NULL)
		return -1;
	/* CVE-2011-0411: whatever the peer sent before the handshake was sent
	 * in clear and must not be taken as protected input. */
	yz_buf_free(&io->rbuf);
	io->skipping = false;
	ERR_clear_error();
	io->ssl = SSL_new(yz_tls_ctx_ssl(ctx));
	if (io->ssl == NULL || SSL_set_fd(io->ssl, io->fd) != 1) {
		io_set_error(io, "TLS setup", yz_tls_last_error("SSL_new failed"));
		io_queue_error(io);
		return -1;
	}
	if (server)
		SSL_set_accept_state(io->ssl);
	else
		SSL_set_connect_state(io->ssl);
	io->state = IO_TLS_PENDING;
	io->plain_left = yz_buf_len(&io->wbuf);
	if (io_write_some(io) < 0) {
		io_update_events(io);
		io_queue_error(io);
		return 0;
	}
	if (io->plain_left == 0)
		io_tls_begin(io);
	io_update_events(io);
	return 0;
}

/* Is TLS on? */
bool yz_io_is_tls(const struct yz_io *io)
{
	return io->ssl != NULL;
}

/* Negotiated protocol version. */
const char *yz_io_tls_version(const struct yz_io *io)
{
	if (io->ssl == NULL || io->state != IO_TLS_READY)
		return NULL;
	return SSL_get_version(io->ssl);
}

/* Negotiated cipher suite. */
const char *yz_io_tls_cipher(const struct yz_io *io)
{
	if (io->ssl == NULL || io->state != IO_TLS_READY)
		return NULL;
	const SSL_CIPHER *c = SSL_get_current_cipher(io->ssl);
	return c != NULL ? SSL_CIPHER_get_name(c) : NULL;
}

/* Symmetric key bits of the cipher. */
int yz_io_tls_bits(const struct yz_io *io)
{
	if (io->ssl == NULL || io->state != IO_TLS_READY)
		return 0;
	const SSL_CIPHER *c = SSL_get_current_cipher(io->ssl);
	return c != NULL ? SSL_CIPHER_get_bits(c, NULL) : 0;
}

/* The error text. */
const char *yz_io_error(const struct yz_io *io)
{
	return io->failed ? io->error : NULL;
}
