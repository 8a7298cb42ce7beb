/*
 * io.h: one buffered connection over a non-blocking fd, optionally TLS, on
 * the process's event loop (OpenSMTPD's ioev, in yizhan's words).
 *
 * Guarantees:
 * - Input is handed over raw: lines up to and including their LF, so the
 *   protocol code sees CR, bare LF and NUL bytes and decides policy itself.
 * - Buffers are capped (rbuf_max, wbuf_max) and allocated lazily; an empty
 *   read buffer and a drained write buffer hold no memory, and TLS sessions
 *   release their record buffers when idle (SSL_MODE_RELEASE_BUFFERS).
 * - Queueing output never writes: replies to pipelined commands leave in one
 *   packet at yz_io_flush().
 * - yz_io_starttls() discards every byte of plaintext input buffered before
 *   it (the STARTTLS injection of CVE-2011-0411): nothing read before the
 *   handshake is ever seen as input after it.
 * - The handler is never called from inside a yz_io_* call made by the
 *   caller; it runs only from the loop. A handler may free its io (and any
 *   other io) at any time: the memory lives until nothing on the stack uses
 *   it.
 *
 * Never: blocks, writes without a flush, calls a handler after yz_io_free()
 * or yz_io_close_after_flush().
 *
 * Lifetime: free every io before its loop, then run the loop once more (or
 * until it returns) so that releases it deferred can happen; an io freed
 * inside its handler is released by the loop itself.
 */
#ifndef YZ_IO_H
#define YZ_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/loop.h"

struct yz_io;
struct yz_tls_ctx;

enum yz_io_event {
	YZ_IO_READABLE,   /* new bytes were added to the read buffer (or a TLS handshake finished and input may follow) */
	YZ_IO_DRAINED,    /* the write buffer became empty after a flush that could not complete at once */
	YZ_IO_EOF,        /* the peer closed its side; unread input may still be in the buffer */
	YZ_IO_ERROR,      /* I/O or TLS error; yz_io_error(io) says what */
	YZ_IO_TIMEOUT,    /* no input for the idle timeout */
	YZ_IO_TLS_READY,  /* yz_io_starttls() handshake completed */
};
typedef void yz_io_handler(struct yz_io *io, enum yz_io_event ev, void *arg);
enum yz_line_result { YZ_LINE_OK, YZ_LINE_AGAIN, YZ_LINE_TOOLONG };

/* Defaults used when yz_io_new() is given 0 for a buffer cap. */
#define YZ_IO_RBUF_DEFAULT ((size_t)64 * 1024)
#define YZ_IO_WBUF_DEFAULT ((size_t)256 * 1024)
/* Bytes asked of the kernel (or of TLS) per read call. */
#define YZ_IO_READ_CHUNK ((size_t)16 * 1024)
/* Read calls per readiness event, so one busy peer cannot starve others. */
#define YZ_IO_READ_ROUNDS 4
/* Longest error text kept by an io. */
#define YZ_IO_ERROR_MAX 160

/* Wrap fd (sets O_NONBLOCK, registers for reading). The io owns the fd from
 * now on. NULL with errno if the loop refuses the fd. */
struct yz_io *yz_io_new(struct yz_loop *loop, int fd, size_t rbuf_max, size_t wbuf_max);
/* Close the fd (TLS: best-effort close_notify, never blocks) and free the io;
 * NULL-safe, sets *io = NULL. Safe from inside any handler: the memory is
 * released when no callback on the stack still uses it. */
void yz_io_free(struct yz_io **io);
/* Set the callback for events (NULL: events are dropped). */
void yz_io_set_handler(struct yz_io *io, yz_io_handler *cb, void *arg);
/* Idle timeout: YZ_IO_TIMEOUT after idle_ms without input, then again every
 * idle_ms while it stays idle. 0 = none. Restarts the period now; reset by
 * each successful read. */
void yz_io_set_timeout(struct yz_io *io, uint64_t idle_ms);
int yz_io_fd(const struct yz_io *io);

/*
 * Line reading: the raw line up to and including the first LF (so the caller
 * sees CR, bare LF etc. and decides policy). max bounds the bytes before the
 * LF: a line is at most max + 1 bytes with its LF.
 * OK: *line_r set; the caller must call yz_io_consume(io, line_r->len) when
 *   done with it.
 * AGAIN: no complete line yet (at most max bytes buffered without LF, or
 *   nothing).
 * TOOLONG: more than max bytes without an LF (or the read buffer is full
 *   without one); call yz_io_skip_line() to discard through the next LF (it
 *   may take several reads; while skipping, further read_line calls return
 *   AGAIN until the LF is seen, then the next line is returned as usual).
 */
enum yz_line_result yz_io_read_line(struct yz_io *io, size_t max, struct yz_slice *line_r);
void yz_io_skip_line(struct yz_io *io);
/* Raw access for DATA/BDAT/literals; consume with yz_io_consume. */
struct yz_buf *yz_io_rbuf(struct yz_io *io);
/* Drop n bytes of input (n <= buffered). */
void yz_io_consume(struct yz_io *io, size_t n);
/* Stop/resume reading from the socket (backpressure, e.g. while waiting for
 * an IPC answer); buffered data stays. Reading also stops by itself while the
 * read buffer is at rbuf_max. Resuming with unconsumed input buffered gives
 * one YZ_IO_READABLE from the loop, so pipelined input is not forgotten.
 * Pausing is cheap: the fd's epoll interest is only changed if input
 * actually arrives while paused (a pause + resume around an IPC round trip
 * costs no system call). */
void yz_io_pause(struct yz_io *io, bool paused);

/* Queue bytes (never writes by itself). -1 if the write buffer cap would be
 * exceeded (nothing is queued then), or the io is closing or failed. */
int yz_io_write(struct yz_io *io, const void *data, size_t len);
int yz_io_printf(struct yz_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write what the socket takes now; arm EPOLLOUT for the rest (then
 * YZ_IO_DRAINED when done). -1 on error: the handler also gets YZ_IO_ERROR
 * from the loop. During a TLS handshake queued data waits for its end. */
int yz_io_flush(struct yz_io *io);
/* Bytes queued and not yet accepted by the socket (or by TLS). */
size_t yz_io_wpending(const struct yz_io *io);
/* Close after the write buffer has drained (e.g. after "221 Bye"): flushes,
 * stops reading and calling the handler, then frees the io and calls
 * done(arg) (done may be NULL). An error or the idle timeout ends the wait
 * early. The caller must not use or free io afterwards. */
void yz_io_close_after_flush(struct yz_io *io, void (*done)(void *arg), void *arg);

/* TLS: discards any buffered plaintext input first (STARTTLS injection,
 * CVE-2011-0411), sends what is still queued in plaintext (the "220 Ready"
 * reply), then a non-blocking handshake; the handler gets YZ_IO_TLS_READY or
 * YZ_IO_ERROR. Data queued meanwhile is sent encrypted after the handshake.
 * -1 if TLS is already on, or the io is closed or failed. */
int yz_io_starttls(struct yz_io *io, struct yz_tls_ctx *ctx, bool server);
/* Is TLS on (handshake started)? */
bool yz_io_is_tls(const struct yz_io *io);
/* After YZ_IO_TLS_READY: "TLSv1.3" / "TLS_AES_256_GCM_SHA384" / 256; else
 * NULL / NULL / 0. */
const char *yz_io_tls_version(const struct yz_io *io);
const char *yz_io_tls_cipher(const struct yz_io *io);
int yz_io_tls_bits(const struct yz_io *io);
/* What went wrong, after YZ_IO_ERROR (or a -1); NULL if nothing did. */
const char *yz_io_error(const struct yz_io *io);

#endif
