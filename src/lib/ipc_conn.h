/*
 * ipc_conn.h: an IPC connection on the event loop (UNIX stream socket).
 *
 * A connection reads frames (ipc.h) of at most max_payload bytes, checks
 * each one completely (header, every field, the descriptors that travel
 * with it by SCM_RIGHTS) before any callback sees it, and delivers it either
 * to the reply callback of the request with the same request id, or to
 * on_msg. Anything malformed is an attack: the connection is logged and
 * dropped (on_close is called with the reason). A callback whose getters
 * failed, or whose yz_ipc_end() failed, has received a malformed frame too:
 * the connection is dropped after the callback returns.
 *
 * Ownership: yz_ipc_conn_send() and yz_ipc_conn_request() always consume the
 * message, on success and on failure: its bytes move to the output queue and
 * its descriptors are closed once sent (or at once on failure); afterwards
 * the message is as after yz_ipc_msg_free() and may be re-initialised.
 * Descriptors a callback does not take with yz_ipc_get_fd() are closed.
 *
 * Request ids: 0 means "no reply expected"; ids of requests are drawn from
 * yz_ipc_conn_next_id(), never 0 and never one still pending. If both ends
 * of one connection send requests, give them disjoint id spaces with
 * yz_ipc_conn_set_id_space() so that a request is never taken for a reply.
 *
 * Never: block; read a frame larger than max_payload; keep a descriptor that
 * no FD field claimed; call a reply callback twice.
 */
#ifndef YZ_IPC_CONN_H
#define YZ_IPC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/ipc.h"

struct yz_loop;

/* Default cap on queued output bytes (backpressure); see set_out_max. */
#define YZ_IPC_CONN_OUT_MAX ((size_t)64 * 1024 * 1024)
/* Received descriptors that may wait for the end of their frame. */
#define YZ_IPC_CONN_FDQ_MAX (4 * YZ_IPC_FDS_MAX)
/* Bytes asked from the kernel per read. */
#define YZ_IPC_CONN_READ_SIZE 65536
/* Reads per readiness callback, so that one busy peer cannot starve others. */
#define YZ_IPC_CONN_READS_MAX 256
/* Frames gathered into one sendmsg(2). */
#define YZ_IPC_CONN_IOV_MAX 64
/* Timed-out request ids remembered so their late replies are dropped. */
#define YZ_IPC_CONN_STALE_MAX 64

struct yz_ipc_conn;

/* An incoming frame (request or unsolicited); the reader is valid during
 * the call only. */
typedef void yz_ipc_msg_cb(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			   struct yz_ipc_reader *r, void *arg);
/* The connection is closed (peer gone, I/O error, malformed frame). The
 * owner still has to call yz_ipc_conn_free(), which it may do here. */
typedef void yz_ipc_close_cb(struct yz_ipc_conn *c, const char *reason, void *arg);
/* The reply to a request; hdr and r are NULL on timeout or close. */
typedef void yz_ipc_reply_cb(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			     struct yz_ipc_reader *r, void *arg);

/* Serve fd (made non-blocking and close-on-exec; owned by the connection).
 * max_payload 0 or above YZ_IPC_FRAME_MAX means YZ_IPC_FRAME_MAX. NULL if
 * the fd cannot be set up or added to the loop; the caller keeps fd then. */
struct yz_ipc_conn *yz_ipc_conn_new(struct yz_loop *loop, int fd, size_t max_payload,
				    yz_ipc_msg_cb *on_msg, yz_ipc_close_cb *on_close,
				    void *arg);
/* Close the fd and free; safe from inside any callback of this connection.
 * Pending requests get their reply callback with NULLs ("connection
 * closed"); on_close is not called. */
void yz_ipc_conn_free(struct yz_ipc_conn **c);
/* Queue a frame; consumes m (see above). 0, or -1 if the connection is
 * closed, the message failed, or the output queue would pass its cap. */
int yz_ipc_conn_send(struct yz_ipc_conn *c, struct yz_ipc_msg *m);
/* Send m with a fresh request id; cb gets the frame that carries the same
 * id back (any type), or NULLs exactly once on timeout (timeout_ms 0: none)
 * or close. Consumes m. -1 (and cb is never called) if it cannot be sent. */
int yz_ipc_conn_request(struct yz_ipc_conn *c, struct yz_ipc_msg *m, uint64_t timeout_ms,
			yz_ipc_reply_cb *cb, void *arg);
/* A fresh request id (nonzero, not pending). */
uint32_t yz_ipc_conn_next_id(struct yz_ipc_conn *c);
/* Request ids with the top bit set (high) or clear (default). */
void yz_ipc_conn_set_id_space(struct yz_ipc_conn *c, bool high);
/* Cap on queued output bytes (at least one maximal frame). */
void yz_ipc_conn_set_out_max(struct yz_ipc_conn *c, size_t max);
/* Output bytes queued and not yet written. */
size_t yz_ipc_conn_out_pending(const struct yz_ipc_conn *c);
/* Requests waiting for their reply. */
size_t yz_ipc_conn_requests_pending(const struct yz_ipc_conn *c);
/* Has the connection been closed (the fd is gone)? */
bool yz_ipc_conn_closed(const struct yz_ipc_conn *c);
/* Drop the connection as for a malformed frame: log reason, close, call
 * on_close. For decoders that find a semantic error. */
void yz_ipc_conn_fail(struct yz_ipc_conn *c, const char *reason);

/*
 * Blocking helper for the CLI and tests: send m (consumed) on fd and wait
 * for the frame with the same request id (m's id; 0 is replaced by 1);
 * frames with other ids are skipped. The reply's payload goes to payload_r
 * (reset first; its cap must allow max_payload), its descriptors to fds_r
 * (at most max_fds, owned by the caller). timeout_ms <= 0: no timeout.
 * 0, or -1 with *error_r (static string).
 */
int yz_ipc_call_blocking(int fd, struct yz_ipc_msg *m, int timeout_ms, size_t max_payload,
			 struct yz_ipc_hdr *hdr_r, struct yz_buf *payload_r, int *fds_r,
			 size_t max_fds, size_t *nfds_r, const char **error_r);

#endif
