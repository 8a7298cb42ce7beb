/*
 * ipc.c: encoding and decoding of IPC frames and fields (see ipc.h).
 *
 * Guarantees: every read is bounds-checked against the payload before it is
 * made; a reader that failed stays failed; descriptors are never leaked: a
 * message or reader closes what it still owns when freed.
 * Never: perform I/O other than close(2) on owned descriptors; allocate
 * from a length that was not checked first.
 */
#include "lib/ipc.h"

#include <string.h>
#include <unistd.h>

#include "lib/mem.h"
#include "lib/pool.h"

/* Big-endian helpers. */
static void be16_put(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void be32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void be64_put(unsigned char *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static uint16_t be16_get(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32_get(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
	       (uint32_t)p[3];
}

static uint64_t be64_get(const unsigned char *p)
{
	return ((uint64_t)be32_get(p) << 32) | be32_get(p + 4);
}

/* ---- frames ---- */

enum yz_ipc_parse yz_ipc_hdr_parse(const char *buf, size_t len, struct yz_ipc_hdr *hdr_r)
{
	const unsigned char *p = (const unsigned char *)buf;

	/* Reject as early as the bytes allow, so a bad peer is dropped
	 * without waiting for a payload that will never be accepted. */
	if (len >= 2 && be16_get(p) != YZ_IPC_VERSION)
		return YZ_IPC_INVALID;
	if (len >= 8 && be32_get(p + 4) > YZ_IPC_FRAME_MAX)
		return YZ_IPC_INVALID;
	if (len < YZ_IPC_HDR_SIZE)
		return YZ_IPC_AGAIN;
	hdr_r->version = be16_get(p);
	hdr_r->type = be16_get(p + 2);
	hdr_r->len = be32_get(p + 4);
	hdr_r->reqid = be32_get(p + 8);
	return YZ_IPC_OK;
}

enum yz_ipc_parse yz_ipc_frame_parse(const char *buf, size_t len, struct yz_ipc_hdr *hdr_r)
{
	struct yz_ipc_hdr hdr;
	enum yz_ipc_parse ret = yz_ipc_hdr_parse(buf, len, &hdr);
	if (ret != YZ_IPC_OK)
		return ret;
	if (len - YZ_IPC_HDR_SIZE < hdr.len)
		return YZ_IPC_AGAIN;
	*hdr_r = hdr;
	return YZ_IPC_OK;
}

/* Size of the value after a fixed-size tag, or 0 for variable/unknown. */
static size_t tag_fixed_size(unsigned tag)
{
	switch (tag) {
	case YZ_IPC_T_U32:
		return 4;
	case YZ_IPC_T_U64:
	case YZ_IPC_T_I64:
		return 8;
	case YZ_IPC_T_BOOL:
		return 1;
	default:
		return 0;
	}
}

int yz_ipc_payload_scan(const void *payload, size_t len, size_t *nfds_r)
{
	const unsigned char *p = payload;
	size_t pos = 0, nfds = 0;

	*nfds_r = 0;
	while (pos < len) {
		unsigned tag = p[pos++];
		size_t avail = len - pos;
		size_t n = tag_fixed_size(tag);
		if (n > 0) {
			if (avail < n)
				return -1;
			if (tag == YZ_IPC_T_BOOL && p[pos] > 1)
				return -1;
			pos += n;
		} else if (tag == YZ_IPC_T_STR || tag == YZ_IPC_T_BYTES) {
			if (avail < 4)
				return -1;
			uint32_t flen = be32_get(p + pos);
			if (avail - 4 < flen)
				return -1;
			pos += 4 + (size_t)flen;
		} else if (tag == YZ_IPC_T_FD) {
			if (++nfds > YZ_IPC_FDS_MAX)
				return -1;
		} else {
			return -1;
		}
	}
	*nfds_r = nfds;
	return 0;
}

/* ---- writer ---- */

void yz_ipc_msg_init(struct yz_ipc_msg *m, uint16_t type, uint32_t reqid)
{
	memset(m, 0, sizeof *m);
	yz_buf_init(&m->buf, YZ_IPC_HDR_SIZE + YZ_IPC_FRAME_MAX);
	m->type = type;
	m->reqid = reqid;
	for (size_t i = 0; i < YZ_IPC_FDS_MAX; i++)
		m->fds[i] = -1;
	char *hdr = yz_buf_reserve(&m->buf, YZ_IPC_HDR_SIZE);
	memset(hdr, 0, YZ_IPC_HDR_SIZE);
	yz_buf_commit(&m->buf, YZ_IPC_HDR_SIZE);
}

void yz_ipc_msg_set_reqid(struct yz_ipc_msg *m, uint32_t reqid)
{
	m->reqid = reqid;
}

/* Append a tag and n value bytes, or fail the message. */
static int msg_put(struct yz_ipc_msg *m, unsigned tag, const void *v, size_t n)
{
	if (m->failed)
		return -1;
	if (yz_buf_len(&m->buf) < YZ_IPC_HDR_SIZE) {
		/* Used after yz_ipc_msg_free() without a new init. */
		m->failed = true;
		return -1;
	}
	char *dst = yz_buf_reserve(&m->buf, 1 + n);
	if (dst == NULL) {
		m->failed = true;
		return -1;
	}
	dst[0] = (char)tag;
	if (n > 0)
		memcpy(dst + 1, v, n);
	yz_buf_commit(&m->buf, 1 + n);
	return 0;
}

int yz_ipc_put_u32(struct yz_ipc_msg *m, uint32_t v)
{
	unsigned char b[4];
	be32_put(b, v);
	return msg_put(m, YZ_IPC_T_U32, b, sizeof b);
}

int yz_ipc_put_u64(struct yz_ipc_msg *m, uint64_t v)
{
	unsigned char b[8];
	be64_put(b, v);
	return msg_put(m, YZ_IPC_T_U64, b, sizeof b);
}

int yz_ipc_put_i64(struct yz_ipc_msg *m, int64_t v)
{
	unsigned char b[8];
	be64_put(b, (uint64_t)v);
	return msg_put(m, YZ_IPC_T_I64, b, sizeof b);
}

int yz_ipc_put_bool(struct yz_ipc_msg *m, bool v)
{
	unsigned char b = v ? 1 : 0;
	return msg_put(m, YZ_IPC_T_BOOL, &b, 1);
}

/* Append a length-prefixed field (STR or BYTES). */
static int msg_put_lv(struct yz_ipc_msg *m, unsigned tag, const void *p, size_t n)
{
	if (m->failed)
		return -1;
	if (n > YZ_IPC_FRAME_MAX) {
		m->failed = true;
		return -1;
	}
	/* Reserve the whole field first so a failure leaves nothing behind. */
	if (yz_buf_reserve(&m->buf, 1 + 4 + n) == NULL) {
		m->failed = true;
		return -1;
	}
	unsigned char l[4];
	be32_put(l, (uint32_t)n);
	if (msg_put(m, tag, l, sizeof l) < 0)
		return -1;
	if (n > 0 && yz_buf_append(&m->buf, p, n) < 0) {
		m->failed = true;
		return -1;
	}
	return 0;
}

int yz_ipc_put_str(struct yz_ipc_msg *m, const char *s)
{
	return msg_put_lv(m, YZ_IPC_T_STR, s, strlen(s));
}

int yz_ipc_put_slice(struct yz_ipc_msg *m, struct yz_slice s)
{
	if (s.len > 0 && memchr(s.p, '\0', s.len) != NULL) {
		m->failed = true;
		return -1;
	}
	return msg_put_lv(m, YZ_IPC_T_STR, s.p, s.len);
}

int yz_ipc_put_bytes(struct yz_ipc_msg *m, const void *p, size_t n)
{
	return msg_put_lv(m, YZ_IPC_T_BYTES, p, n);
}

int yz_ipc_put_fd(struct yz_ipc_msg *m, int fd)
{
	if (fd < 0) {
		m->failed = true;
		return -1;
	}
	if (m->nfds >= YZ_IPC_FDS_MAX || msg_put(m, YZ_IPC_T_FD, NULL, 0) < 0) {
		/* Ownership was passed in: never leak it. */
		close(fd);
		m->failed = true;
		return -1;
	}
	m->fds[m->nfds++] = fd;
	return 0;
}

int yz_ipc_msg_frame(struct yz_ipc_msg *m, struct yz_slice *frame_r)
{
	size_t total = yz_buf_len(&m->buf);
	*frame_r = (struct yz_slice){ "", 0 };
	if (m->failed || total < YZ_IPC_HDR_SIZE || total - YZ_IPC_HDR_SIZE > YZ_IPC_FRAME_MAX)
		return -1;
	unsigned char *h = (unsigned char *)m->buf.data + m->buf.off;
	be16_put(h, YZ_IPC_VERSION);
	be16_put(h + 2, m->type);
	be32_put(h + 4, (uint32_t)(total - YZ_IPC_HDR_SIZE));
	be32_put(h + 8, m->reqid);
	*frame_r = yz_buf_slice(&m->buf);
	return 0;
}

void yz_ipc_msg_free(struct yz_ipc_msg *m)
{
	for (size_t i = 0; i < m->nfds; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->nfds = 0;
	/* Frames can carry passwords (DIR_AUTH): never leave them in freed memory. */
	yz_buf_wipe(&m->buf);
	yz_buf_free(&m->buf);
}

/* ---- reader ---- */

void yz_ipc_reader_init(struct yz_ipc_reader *r, const void *payload, size_t len,
			const int *fds, size_t nfds)
{
	memset(r, 0, sizeof *r);
	r->p = payload;
	r->len = payload != NULL ? len : 0;
	for (size_t i = 0; i < nfds; i++) {
		if (i < YZ_IPC_FDS_MAX)
			r->fds[r->nfds++] = fds[i];
		else {
			close(fds[i]);
			r->failed = true;
		}
	}
}

void yz_ipc_reader_free(struct yz_ipc_reader *r)
{
	for (size_t i = r->fd_next; i < r->nfds; i++) {
		if (r->fds[i] >= 0)
			close(r->fds[i]);
		r->fds[i] = -1;
	}
	r->fd_next = r->nfds;
}

bool yz_ipc_reader_failed(const struct yz_ipc_reader *r)
{
	return r->failed;
}

/* Consume a tag and n value bytes; returns the value or NULL (failed). */
static const unsigned char *reader_take(struct yz_ipc_reader *r, unsigned tag, size_t n)
{
	if (r->failed || r->pos >= r->len || r->p[r->pos] != tag ||
	    r->len - r->pos - 1 < n) {
		r->failed = true;
		return NULL;
	}
	const unsigned char *v = r->p + r->pos + 1;
	r->pos += 1 + n;
	return v;
}

int yz_ipc_get_u32(struct yz_ipc_reader *r, uint32_t *v_r)
{
	const unsigned char *v = reader_take(r, YZ_IPC_T_U32, 4);
	*v_r = v != NULL ? be32_get(v) : 0;
	return v != NULL ? 0 : -1;
}

int yz_ipc_get_u64(struct yz_ipc_reader *r, uint64_t *v_r)
{
	const unsigned char *v = reader_take(r, YZ_IPC_T_U64, 8);
	*v_r = v != NULL ? be64_get(v) : 0;
	return v != NULL ? 0 : -1;
}

int yz_ipc_get_i64(struct yz_ipc_reader *r, int64_t *v_r)
{
	const unsigned char *v = reader_take(r, YZ_IPC_T_I64, 8);
	*v_r = v != NULL ? (int64_t)be64_get(v) : 0;
	return v != NULL ? 0 : -1;
}

int yz_ipc_get_bool(struct yz_ipc_reader *r, bool *v_r)
{
	*v_r = false;
	size_t save = r->pos;
	const unsigned char *v = reader_take(r, YZ_IPC_T_BOOL, 1);
	if (v == NULL)
		return -1;
	if (*v > 1) {
		r->pos = save;
		r->failed = true;
		return -1;
	}
	*v_r = *v == 1;
	return 0;
}

/* Consume a length-prefixed field of at most max bytes. */
static int reader_take_lv(struct yz_ipc_reader *r, unsigned tag, size_t max,
			  struct yz_slice *s_r)
{
	*s_r = (struct yz_slice){ "", 0 };
	size_t save = r->pos;
	const unsigned char *l = reader_take(r, tag, 4);
	if (l == NULL)
		return -1;
	uint32_t n = be32_get(l);
	if (n > max || r->len - r->pos < n) {
		r->pos = save;
		r->failed = true;
		return -1;
	}
	*s_r = (struct yz_slice){ (const char *)r->p + r->pos, n };
	r->pos += n;
	return 0;
}

int yz_ipc_get_str(struct yz_ipc_reader *r, size_t max, struct yz_slice *s_r)
{
	size_t save = r->pos;
	if (reader_take_lv(r, YZ_IPC_T_STR, max, s_r) < 0)
		return -1;
	if (s_r->len > 0 && memchr(s_r->p, '\0', s_r->len) != NULL) {
		/* Like every failed getter, leave the position at the field. */
		r->pos = save;
		*s_r = (struct yz_slice){ "", 0 };
		r->failed = true;
		return -1;
	}
	return 0;
}

int yz_ipc_get_str_dup(struct yz_ipc_reader *r, size_t max, struct yz_pool *pool,
		       char **s_r)
{
	struct yz_slice s;
	*s_r = NULL;
	if (yz_ipc_get_str(r, max, &s) < 0)
		return -1;
	*s_r = pool != NULL ? yz_pool_slice_dup(pool, s) : yz_strndup(s.len ? s.p : "", s.len);
	return 0;
}

int yz_ipc_get_bytes(struct yz_ipc_reader *r, size_t max, struct yz_slice *s_r)
{
	return reader_take_lv(r, YZ_IPC_T_BYTES, max, s_r);
}

int yz_ipc_get_fd(struct yz_ipc_reader *r, int *fd_r)
{
	*fd_r = -1;
	if (r->failed || r->fd_next >= r->nfds) {
		r->failed = true;
		return -1;
	}
	if (reader_take(r, YZ_IPC_T_FD, 0) == NULL)
		return -1;
	*fd_r = r->fds[r->fd_next];
	r->fds[r->fd_next++] = -1;
	return 0;
}

int yz_ipc_end(struct yz_ipc_reader *r)
{
	if (r->failed || r->pos != r->len || r->fd_next != r->nfds) {
		r->failed = true;
		return -1;
	}
	return 0;
}
