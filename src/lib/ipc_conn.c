/*
 * ipc_conn.c: IPC connections on the event loop, and the blocking call
 * helper (see ipc_conn.h).
 *
 * Descriptor rule: a sender attaches the descriptors of a frame to the
 * sendmsg(2) that carries the frame's first byte, and such a sendmsg carries
 * no later frame; so a receiver has every descriptor of a frame by the time
 * the frame is complete, and none may be waiting once no partial frame is
 * left. Received descriptors queue in order; a complete frame takes as many
 * as it has FD fields. Too few, any left over with no partial frame behind
 * them, more than YZ_IPC_CONN_FDQ_MAX waiting, or a truncated control
 * message (MSG_CTRUNC) is an attack: the connection is dropped and every
 * descriptor closed.
 *
 * Lifetime: callbacks may free the connection; the structure itself is
 * released only once no callback of it is running (busy == 0).
 *
 * Never: block (except in yz_ipc_call_blocking); raise SIGPIPE; call a
 * reply callback twice; hand a callback a frame that was not fully checked.
 */
#include "lib/ipc_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"

/* Initial number of buckets of the pending-request table (power of two). */
#define CONN_PEND_BUCKETS_MIN 64
#define CONN_ID_HIGH 0x80000000u

/* A frame waiting to be written. Its fds go with its first byte. */
struct conn_out {
	struct conn_out *next;
	char *data;
	size_t len;
	size_t off;
	int fds[YZ_IPC_FDS_MAX];
	size_t nfds;
};

/* A request waiting for its reply. */
struct conn_pending {
	struct conn_pending *next;
	struct yz_ipc_conn *conn;
	uint32_t reqid;
	yz_ipc_reply_cb *cb;
	void *arg;
	struct yz_timer *timer;
};

struct yz_ipc_conn {
	struct yz_loop *loop;
	int fd;
	size_t max_payload;
	yz_ipc_msg_cb *on_msg;
	yz_ipc_close_cb *on_close;
	void *arg;

	struct yz_buf in;
	int in_fds[YZ_IPC_CONN_FDQ_MAX];
	size_t in_nfds;

	struct conn_out *out_head, *out_tail;
	size_t out_bytes;
	size_t out_max;
	unsigned events;

	struct conn_pending **pend;
	size_t pend_buckets;
	size_t pend_count;
	uint32_t next_id;
	uint32_t id_high;
	uint32_t stale[YZ_IPC_CONN_STALE_MAX];
	size_t stale_next;

	unsigned busy;   /* callbacks of this connection on the stack */
	bool flush_pending; /* conn_flush_cb is queued (yz_loop_defer) */
	bool closed;     /* fd closed: no more I/O */
	bool dead;       /* freed by the owner: release when busy == 0 */
};

/* Result of one receive: bytes, 0 at EOF, -1 (errno) on error, -2 attack. */
#define CONN_RECV_ATTACK (-2)

static void conn_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg);

/* Close n descriptors. */
static void fds_close(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/*
 * recvmsg into buf, appending received descriptors to fds (at most max_fds
 * in total). Descriptors that do not fit, or come in another control
 * message type, are closed and the read is an attack.
 */
static ssize_t conn_recv(int fd, void *buf, size_t len, int *fds, size_t *nfds,
			 size_t max_fds, const char **error_r)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * YZ_IPC_FDS_MAX)];
	} control;
	struct iovec iov = { buf, len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof control.buf,
	};
	ssize_t n;

	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;

	bool attack = false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			*error_r = "unexpected control message";
			attack = true;
			continue;
		}
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *data = CMSG_DATA(cm);
		for (size_t i = 0; i < k; i++) {
			int got;
			memcpy(&got, data + i * sizeof(int), sizeof got);
			if (*nfds < max_fds) {
				fds[(*nfds)++] = got;
			} else {
				close(got);
				*error_r = "too many descriptors";
				attack = true;
			}
		}
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		*error_r = "truncated control message";
		attack = true;
	}
	return attack ? CONN_RECV_ATTACK : n;
}

/* sendmsg the iovecs with fds (may be none); bytes written or -1. */
static ssize_t conn_sendv(int fd, struct iovec *iov, size_t iovcnt, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * YZ_IPC_FDS_MAX)];
	} control;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
	ssize_t n;

	if (nfds > 0) {
		memset(&control, 0, sizeof control);
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n;
}

/* ---- pending requests ---- */

static struct conn_pending **pend_slot(struct yz_ipc_conn *c, uint32_t reqid)
{
	struct conn_pending **pp = &c->pend[reqid & (c->pend_buckets - 1)];
	while (*pp != NULL && (*pp)->reqid != reqid)
		pp = &(*pp)->next;
	return pp;
}

/* Double the table when chains get long. */
static void pend_grow(struct yz_ipc_conn *c)
{
	size_t nb = c->pend_buckets * 2;
	struct conn_pending **t = yz_calloc(nb, sizeof *t);
	for (size_t i = 0; i < c->pend_buckets; i++) {
		struct conn_pending *p = c->pend[i];
		while (p != NULL) {
			struct conn_pending *next = p->next;
			size_t b = p->reqid & (nb - 1);
			p->next = t[b];
			t[b] = p;
			p = next;
		}
	}
	free(c->pend);
	c->pend = t;
	c->pend_buckets = nb;
}

/* Unlink and return the pending request with this id, or NULL. */
static struct conn_pending *pend_take(struct yz_ipc_conn *c, uint32_t reqid)
{
	struct conn_pending **pp = pend_slot(c, reqid);
	struct conn_pending *p = *pp;
	if (p != NULL) {
		*pp = p->next;
		p->next = NULL;
		c->pend_count--;
	}
	return p;
}

/* Unlink any one pending request, or NULL when none is left. */
static struct conn_pending *pend_take_any(struct yz_ipc_conn *c)
{
	if (c->pend_count == 0)
		return NULL;
	for (size_t i = 0; i < c->pend_buckets; i++)
		if (c->pend[i] != NULL)
			return pend_take(c, c->pend[i]->reqid);
	return NULL;
}

/* Remember a timed-out id so that its late reply is dropped quietly. */
static void stale_add(struct yz_ipc_conn *c, uint32_t reqid)
{
	c->stale[c->stale_next] = reqid;
	c->stale_next = (c->stale_next + 1) % YZ_IPC_CONN_STALE_MAX;
}

/* Was this id timed out recently? Forget it if so. */
static bool stale_take(struct yz_ipc_conn *c, uint32_t reqid)
{
	for (size_t i = 0; i < YZ_IPC_CONN_STALE_MAX; i++) {
		if (c->stale[i] == reqid) {
			c->stale[i] = 0;
			return true;
		}
	}
	return false;
}

/* ---- lifetime ---- */

/* Release the memory; only when nothing refers to it any more. */
static void conn_flush_cb(struct yz_loop *loop, void *arg);

static void conn_destroy(struct yz_ipc_conn *c)
{
	if (c->flush_pending)
		yz_loop_defer_cancel(c->loop, conn_flush_cb, c);
	yz_buf_free(&c->in);
	free(c->pend);
	free(c);
}

/* Leave a callback section; release the connection if it was freed. */
static bool conn_unbusy(struct yz_ipc_conn *c)
{
	c->busy--;
	if (c->busy == 0 && c->dead) {
		conn_destroy(c);
		return false;
	}
	return true;
}

/* Drop every queued output frame, closing its descriptors. */
static void conn_out_clear(struct yz_ipc_conn *c)
{
	while (c->out_head != NULL) {
		struct conn_out *o = c->out_head;
		c->out_head = o->next;
		fds_close(o->fds, o->nfds);
		free(o->data);
		free(o);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
}

/* Close the socket and fail every pending request (callbacks with NULLs). */
static void conn_shutdown(struct yz_ipc_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	yz_loop_del_fd(c->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	conn_out_clear(c);
	fds_close(c->in_fds, c->in_nfds);
	c->in_nfds = 0;
	yz_buf_reset(&c->in);
	struct conn_pending *p;
	while ((p = pend_take_any(c)) != NULL) {
		if (p->timer != NULL)
			yz_timer_del(c->loop, &p->timer);
		p->cb(c, NULL, NULL, p->arg);
		free(p);
	}
}

/* Close the connection for reason and tell the owner (once). */
static void conn_close(struct yz_ipc_conn *c, const char *reason, bool attack)
{
	if (c->closed)
		return;
	if (attack)
		yz_log_warn("ipc: dropping connection (fd %d): %s", c->fd, reason);
	c->busy++;
	conn_shutdown(c);
	if (!c->dead && c->on_close != NULL)
		c->on_close(c, reason, c->arg);
	conn_unbusy(c);
}

struct yz_ipc_conn *yz_ipc_conn_new(struct yz_loop *loop, int fd, size_t max_payload,
				    yz_ipc_msg_cb *on_msg, yz_ipc_close_cb *on_close, void *arg)
{
	if (max_payload == 0 || max_payload > YZ_IPC_FRAME_MAX)
		max_payload = YZ_IPC_FRAME_MAX;
	if (yz_fd_set_nonblock(fd, true) < 0 || yz_fd_set_cloexec(fd, true) < 0)
		return NULL;
	struct yz_ipc_conn *c = yz_calloc(1, sizeof *c);
	c->loop = loop;
	c->fd = fd;
	c->max_payload = max_payload;
	c->on_msg = on_msg;
	c->on_close = on_close;
	c->arg = arg;
	/* A partial frame plus one read always fits (see conn_read). */
	yz_buf_init(&c->in, YZ_IPC_HDR_SIZE + max_payload + YZ_IPC_CONN_READ_SIZE);
	c->out_max = YZ_IPC_CONN_OUT_MAX;
	c->pend_buckets = CONN_PEND_BUCKETS_MIN;
	c->pend = yz_calloc(c->pend_buckets, sizeof *c->pend);
	c->next_id = 1;
	c->events = YZ_EV_READ;
	if (yz_loop_add_fd(loop, fd, c->events, conn_fd_cb, c) < 0) {
		conn_destroy(c);
		return NULL;
	}
	return c;
}

void yz_ipc_conn_free(struct yz_ipc_conn **cp)
{
	struct yz_ipc_conn *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	if (c->dead)
		return;
	c->dead = true;
	c->busy++;
	conn_shutdown(c);
	conn_unbusy(c);
}

void yz_ipc_conn_fail(struct yz_ipc_conn *c, const char *reason)
{
	conn_close(c, reason, true);
}

bool yz_ipc_conn_closed(const struct yz_ipc_conn *c)
{
	return c->closed;
}

void yz_ipc_conn_set_id_space(struct yz_ipc_conn *c, bool high)
{
	c->id_high = high ? CONN_ID_HIGH : 0;
}

void yz_ipc_conn_set_out_max(struct yz_ipc_conn *c, size_t max)
{
	size_t min = YZ_IPC_HDR_SIZE + YZ_IPC_FRAME_MAX;
	c->out_max = max < min ? min : max;
}

size_t yz_ipc_conn_out_pending(const struct yz_ipc_conn *c)
{
	return c->out_bytes;
}

size_t yz_ipc_conn_requests_pending(const struct yz_ipc_conn *c)
{
	return c->pend_count;
}

uint32_t yz_ipc_conn_next_id(struct yz_ipc_conn *c)
{
	for (;;) {
		uint32_t id = (c->next_id++ & ~CONN_ID_HIGH) | c->id_high;
		if ((id & ~CONN_ID_HIGH) == 0)
			continue;
		if (*pend_slot(c, id) == NULL)
			return id;
	}
}

/* ---- output ---- */

/* Ask the loop for the events the connection needs now. */
static void conn_want(struct yz_ipc_conn *c)
{
	unsigned ev = YZ_EV_READ | (c->out_head != NULL ? YZ_EV_WRITE : 0);
	if (ev != c->events && !c->closed) {
		if (yz_loop_mod_fd(c->loop, c->fd, ev) == 0)
			c->events = ev;
	}
}

int yz_ipc_conn_send(struct yz_ipc_conn *c, struct yz_ipc_msg *m)
{
	struct yz_slice frame;

	if (c->closed || c->dead || yz_ipc_msg_frame(m, &frame) < 0 ||
	    frame.len > c->out_max - c->out_bytes || c->out_bytes > c->out_max) {
		yz_ipc_msg_free(m);
		return -1;
	}
	/* Move the bytes and descriptors instead of copying them. */
	struct conn_out *o = yz_calloc(1, sizeof *o);
	o->data = m->buf.data;
	o->off = m->buf.off;
	o->len = m->buf.len;
	memcpy(o->fds, m->fds, sizeof(int) * m->nfds);
	o->nfds = m->nfds;
	m->nfds = 0;
	yz_buf_init(&m->buf, m->buf.max);
	yz_ipc_msg_free(m);

	if (c->out_tail != NULL)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += o->len - o->off;
	/* Written at the end of this loop turn, with whatever else the turn
	 * sends (one sendmsg for them all); EPOLLOUT is armed only if the
	 * socket does not take it all then. */
	if (!c->flush_pending && !(c->events & YZ_EV_WRITE)) {
		c->flush_pending = true;
		yz_loop_defer(c->loop, conn_flush_cb, c);
	}
	return 0;
}

/* A request timed out: its callback gets NULLs. */
static void conn_pending_timeout(struct yz_loop *loop, void *arg)
{
	struct conn_pending *p = arg;
	struct yz_ipc_conn *c = p->conn;

	p->timer = NULL; /* the loop is done with a timer that fired */
	struct conn_pending *q = pend_take(c, p->reqid);
	if (q != p)
		yz_panic("ipc: timed-out request %u is not pending", (unsigned)p->reqid);
	stale_add(c, p->reqid);
	c->busy++;
	p->cb(c, NULL, NULL, p->arg);
	free(p);
	conn_unbusy(c);
}

int yz_ipc_conn_request(struct yz_ipc_conn *c, struct yz_ipc_msg *m, uint64_t timeout_ms,
			yz_ipc_reply_cb *cb, void *arg)
{
	if (c->closed || c->dead) {
		yz_ipc_msg_free(m);
		return -1;
	}
	uint32_t id = yz_ipc_conn_next_id(c);
	yz_ipc_msg_set_reqid(m, id);
	if (yz_ipc_conn_send(c, m) < 0)
		return -1;
	struct conn_pending *p = yz_calloc(1, sizeof *p);
	p->conn = c;
	p->reqid = id;
	p->cb = cb;
	p->arg = arg;
	if (timeout_ms > 0)
		p->timer = yz_timer_add(c->loop, timeout_ms, conn_pending_timeout, p);
	if (c->pend_count >= c->pend_buckets * 2)
		pend_grow(c);
	struct conn_pending **slot = pend_slot(c, id);
	p->next = NULL;
	*slot = p;
	c->pend_count++;
	return 0;
}

/* Write what the socket takes; returns -1 if the connection was closed. */
static int conn_write(struct yz_ipc_conn *c)
{
	while (c->out_head != NULL) {
		struct iovec iov[YZ_IPC_CONN_IOV_MAX];
		size_t cnt = 0;
		struct conn_out *head = c->out_head;
		const int *fds = NULL;
		size_t nfds = 0;

		if (head->nfds > 0) {
			/* A frame with descriptors goes alone (see the top). */
			iov[cnt++] = (struct iovec){ head->data + head->off, head->len - head->off };
			fds = head->fds;
			nfds = head->nfds;
		} else {
			for (struct conn_out *o = head; o != NULL && cnt < YZ_IPC_CONN_IOV_MAX;
			     o = o->next) {
				if (o->nfds > 0)
					break;
				iov[cnt++] = (struct iovec){ o->data + o->off, o->len - o->off };
			}
		}
		ssize_t n = conn_sendv(c->fd, iov, cnt, fds, nfds);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(c, errno == EPIPE || errno == ECONNRESET ? "connection closed by peer"
									     : "write error",
				   false);
			return -1;
		}
		if (nfds > 0) {
			/* The kernel holds its own references now. */
			fds_close(head->fds, head->nfds);
			head->nfds = 0;
		}
		size_t left = (size_t)n;
		c->out_bytes -= left;
		while (left > 0) {
			struct conn_out *o = c->out_head;
			size_t have = o->len - o->off;
			if (left < have) {
				o->off += left;
				break;
			}
			left -= have;
			c->out_head = o->next;
			if (c->out_head == NULL)
				c->out_tail = NULL;
			free(o->data);
			free(o);
		}
	}
	conn_want(c);
	return 0;
}

/* The end of the turn in which frames were queued: send them. */
static void conn_flush_cb(struct yz_loop *loop, void *arg)
{
	struct yz_ipc_conn *c = arg;

	(void)loop;
	c->flush_pending = false;
	if (c->closed || c->dead)
		return;
	c->busy++;
	conn_write(c);
	conn_unbusy(c);
}

/* ---- input ---- */

/* Hand one checked frame to its reply callback or on_msg. */
static void conn_dispatch(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			  const char *payload, size_t nfds)
{
	struct yz_ipc_reader r;

	yz_ipc_reader_init(&r, payload, hdr->len, c->in_fds, nfds);
	memmove(c->in_fds, c->in_fds + nfds, sizeof(int) * (c->in_nfds - nfds));
	c->in_nfds -= nfds;

	struct conn_pending *p = hdr->reqid != 0 ? pend_take(c, hdr->reqid) : NULL;
	if (p != NULL) {
		if (p->timer != NULL)
			yz_timer_del(c->loop, &p->timer);
		p->cb(c, hdr, &r, p->arg);
		free(p);
	} else if (hdr->reqid != 0 && stale_take(c, hdr->reqid)) {
		/* The reply to a request that timed out: nobody waits for it. */
	} else if (c->on_msg != NULL) {
		c->on_msg(c, hdr, &r, c->arg);
	}
	bool bad = yz_ipc_reader_failed(&r);
	yz_ipc_reader_free(&r);
	if (bad && !c->closed && !c->dead)
		conn_close(c, "malformed frame", true);
}

/* Deliver every complete frame in the input buffer. */
static void conn_frames(struct yz_ipc_conn *c)
{
	while (!c->closed && !c->dead) {
		struct yz_ipc_hdr hdr;
		const char *data = yz_buf_data(&c->in);
		size_t len = yz_buf_len(&c->in);
		enum yz_ipc_parse ret = yz_ipc_hdr_parse(data, len, &hdr);
		if (ret == YZ_IPC_INVALID) {
			conn_close(c, "invalid frame header", true);
			return;
		}
		if (ret == YZ_IPC_AGAIN)
			break;
		if (hdr.len > c->max_payload) {
			conn_close(c, "frame too large", true);
			return;
		}
		if (len - YZ_IPC_HDR_SIZE < hdr.len)
			break;
		size_t nfds;
		const char *payload = data + YZ_IPC_HDR_SIZE;
		if (yz_ipc_payload_scan(payload, hdr.len, &nfds) < 0) {
			conn_close(c, "malformed payload", true);
			return;
		}
		if (nfds > c->in_nfds) {
			conn_close(c, "frame declares descriptors that were not received", true);
			return;
		}
		conn_dispatch(c, &hdr, payload, nfds);
		/* The buffer is still ours even if the callback freed c
		 * (busy keeps it alive); the bytes are consumed either way. */
		yz_buf_consume(&c->in, YZ_IPC_HDR_SIZE + hdr.len);
	}
	if (!c->closed && yz_buf_len(&c->in) == 0 && c->in_nfds > 0)
		conn_close(c, "descriptors without a frame", true);
}

/* Read what the socket has and deliver the frames. */
static void conn_read(struct yz_ipc_conn *c, bool error_event)
{
	for (int i = 0; i < YZ_IPC_CONN_READS_MAX && !c->closed && !c->dead; i++) {
		/* After conn_frames, at most one partial frame (<= header +
		 * max_payload) is buffered, so this reserve always fits. */
		char *dst = yz_buf_reserve(&c->in, YZ_IPC_CONN_READ_SIZE);
		if (dst == NULL) {
			conn_close(c, "input buffer overflow", true);
			return;
		}
		const char *why = "";
		ssize_t n = conn_recv(c->fd, dst, YZ_IPC_CONN_READ_SIZE, c->in_fds, &c->in_nfds,
				      YZ_IPC_CONN_FDQ_MAX, &why);
		if (n == CONN_RECV_ATTACK) {
			conn_close(c, why, true);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (error_event)
					conn_close(c, "socket error", false);
				return;
			}
			conn_close(c, errno == ECONNRESET ? "connection closed by peer" : "read error",
				   false);
			return;
		}
		if (n == 0) {
			bool partial = yz_buf_len(&c->in) > 0 || c->in_nfds > 0;
			conn_close(c, partial ? "connection closed in the middle of a frame"
					      : "connection closed by peer",
				   partial);
			return;
		}
		yz_buf_commit(&c->in, (size_t)n);
		conn_frames(c);
		/* A short read does not mean the socket is empty: recvmsg stops
		 * at every frame that carries descriptors. Read on until EAGAIN
		 * (bounded), so that a burst of requests is handled in one pass
		 * and the receivers' group commits see all of it. */
	}
}

static void conn_fd_cb(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct yz_ipc_conn *c = arg;

	c->busy++;
	if (!c->closed && !c->dead && (events & YZ_EV_WRITE))
		conn_write(c);
	if (!c->closed && !c->dead && (events & (YZ_EV_READ | YZ_EV_ERROR)))
		conn_read(c, (events & (YZ_EV_ERROR | YZ_EV_READ)) == YZ_EV_ERROR);
	conn_unbusy(c);
}

/* ---- blocking call ---- */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline (0: none) passes. */
static int wait_fd(int fd, short events, uint64_t deadline, const char **error_r)
{
	for (;;) {
		int to = -1;
		if (deadline != 0) {
			uint64_t now = mono_ms();
			if (now >= deadline) {
				*error_r = "timed out";
				return -1;
			}
			to = (int)(deadline - now);
		}
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, to);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			*error_r = "poll failed";
			return -1;
		}
	}
}

/* Read exactly len bytes, collecting descriptors. */
static int recv_exact(int fd, char *buf, size_t len, int *fds, size_t *nfds, uint64_t deadline,
		      const char **error_r)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = conn_recv(fd, buf + got, len - got, fds, nfds, YZ_IPC_FDS_MAX, error_r);
		if (n == CONN_RECV_ATTACK)
			return -1;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				*error_r = "read error";
				return -1;
			}
			if (wait_fd(fd, POLLIN, deadline, error_r) < 0)
				return -1;
			continue;
		}
		if (n == 0) {
			*error_r = "connection closed";
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/* Send a whole frame; the descriptors go with its first byte. */
static int send_all(int fd, struct yz_slice frame, const int *fds, size_t nfds,
		    uint64_t deadline, const char **error_r)
{
	size_t off = 0;
	while (off < frame.len) {
		struct iovec iov = { (char *)frame.p + off, frame.len - off };
		ssize_t n = conn_sendv(fd, &iov, 1, off == 0 ? fds : NULL, off == 0 ? nfds : 0);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				*error_r = "write error";
				return -1;
			}
			if (wait_fd(fd, POLLOUT, deadline, error_r) < 0)
				return -1;
			continue;
		}
		off += (size_t)n;
	}
	return 0;
}

int yz_ipc_call_blocking(int fd, struct yz_ipc_msg *m, int timeout_ms, size_t max_payload,
			 struct yz_ipc_hdr *hdr_r, struct yz_buf *payload_r, int *fds_r,
			 size_t max_fds, size_t *nfds_r, const char **error_r)
{
	uint64_t deadline = timeout_ms > 0 ? mono_ms() + (uint64_t)timeout_ms : 0;
	struct yz_slice frame;

	*nfds_r = 0;
	if (max_payload == 0 || max_payload > YZ_IPC_FRAME_MAX)
		max_payload = YZ_IPC_FRAME_MAX;
	if (m->reqid == 0)
		yz_ipc_msg_set_reqid(m, 1);
	uint32_t reqid = m->reqid;
	if (yz_ipc_msg_frame(m, &frame) < 0) {
		yz_ipc_msg_free(m);
		*error_r = "message too large or malformed";
		return -1;
	}
	int ret = send_all(fd, frame, m->fds, m->nfds, deadline, error_r);
	yz_ipc_msg_free(m);
	if (ret < 0)
		return -1;

	for (;;) {
		char hbuf[YZ_IPC_HDR_SIZE];
		int fds[YZ_IPC_FDS_MAX];
		size_t nfds = 0;
		struct yz_ipc_hdr hdr;
		size_t declared;

		yz_buf_reset(payload_r);
		if (recv_exact(fd, hbuf, sizeof hbuf, fds, &nfds, deadline, error_r) < 0)
			goto fail;
		if (yz_ipc_hdr_parse(hbuf, sizeof hbuf, &hdr) != YZ_IPC_OK) {
			*error_r = "invalid frame header";
			goto fail;
		}
		if (hdr.len > max_payload) {
			*error_r = "frame too large";
			goto fail;
		}
		char *dst = yz_buf_reserve(payload_r, hdr.len);
		if (dst == NULL) {
			*error_r = "frame larger than the payload buffer";
			goto fail;
		}
		if (recv_exact(fd, dst, hdr.len, fds, &nfds, deadline, error_r) < 0)
			goto fail;
		yz_buf_commit(payload_r, hdr.len);
		if (yz_ipc_payload_scan(yz_buf_data(payload_r), hdr.len, &declared) < 0) {
			*error_r = "malformed payload";
			goto fail;
		}
		if (declared != nfds) {
			*error_r = "descriptors do not match the frame";
			goto fail;
		}
		if (hdr.reqid != reqid) {
			fds_close(fds, nfds);
			continue;
		}
		if (nfds > max_fds) {
			*error_r = "too many descriptors in the reply";
			goto fail;
		}
		memcpy(fds_r, fds, sizeof(int) * nfds);
		*nfds_r = nfds;
		*hdr_r = hdr;
		return 0;
	fail:
		fds_close(fds, nfds);
		yz_buf_reset(payload_r);
		return -1;
	}
}
