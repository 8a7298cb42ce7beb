/*
 * ipc.h: the frame and field codec of yizhan's IPC (pure: no I/O).
 *
 * A frame is a 12-byte header in network byte order
 *     uint16 version (YZ_IPC_VERSION), uint16 type, uint32 payload length,
 *     uint32 request id
 * followed by the payload: a sequence of typed fields, each a 1-byte tag and
 *     U32 4 bytes | U64 8 bytes | I64 8 bytes (two's complement) |
 *     BOOL 1 byte (0 or 1) | STR u32 length + bytes (no NUL inside) |
 *     BYTES u32 length + bytes | FD nothing (one descriptor travels with the
 *     frame by SCM_RIGHTS; FD fields and descriptors match in order).
 *
 * Guarantees: the reader never reads outside the payload it was given, every
 * length is checked before use, a failed getter makes every later getter and
 * yz_ipc_end() fail (sticky error), so a decoder can chain getters and check
 * once; descriptors that a reader received and nobody took are closed by
 * yz_ipc_reader_free(). A payload is never larger than YZ_IPC_FRAME_MAX.
 *
 * Never: trust a length from the wire before checking it against what is
 * there and against the caller's maximum; return a string with a NUL inside.
 * The message types live in lib/ipc_msg.h.
 */
#ifndef YZ_IPC_H
#define YZ_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct yz_pool;

#define YZ_IPC_VERSION 1
#define YZ_IPC_HDR_SIZE 12
/* Cap on the payload of one frame (16 MiB); a larger frame is INVALID. */
#define YZ_IPC_FRAME_MAX ((size_t)16 * 1024 * 1024)
/* Cap on the descriptors one frame may carry. */
#define YZ_IPC_FDS_MAX 16

enum yz_ipc_tag {
	YZ_IPC_T_U32 = 1,
	YZ_IPC_T_U64 = 2,
	YZ_IPC_T_I64 = 3,
	YZ_IPC_T_BOOL = 4,
	YZ_IPC_T_STR = 5,
	YZ_IPC_T_BYTES = 6,
	YZ_IPC_T_FD = 7,
};

enum yz_ipc_parse {
	YZ_IPC_OK = 0,      /* a whole frame (or header) is there */
	YZ_IPC_AGAIN = 1,   /* need more bytes */
	YZ_IPC_INVALID = 2, /* not a valid frame: drop the connection */
};

struct yz_ipc_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t len;   /* payload bytes after the header */
	uint32_t reqid; /* 0: not a request nor a reply */
};

/* A frame under construction: header + payload in buf, descriptors aside.
 * The message owns the descriptors given to yz_ipc_put_fd(). */
struct yz_ipc_msg {
	struct yz_buf buf;
	int fds[YZ_IPC_FDS_MAX];
	size_t nfds;
	uint16_t type;
	uint32_t reqid;
	bool failed; /* a put went over a limit: the message cannot be sent */
};

/* Reads the fields of one received payload (borrowed; must outlive it). */
struct yz_ipc_reader {
	const unsigned char *p;
	size_t len;
	size_t pos;
	int fds[YZ_IPC_FDS_MAX]; /* owned until taken by yz_ipc_get_fd() */
	size_t nfds;
	size_t fd_next;
	bool failed;
};

/* ---- frames ---- */

/* Check the header at the start of buf: OK once 12 valid bytes are there;
 * INVALID as soon as the version or the length is wrong. */
enum yz_ipc_parse yz_ipc_hdr_parse(const char *buf, size_t len, struct yz_ipc_hdr *hdr_r);
/* Is a whole frame (header + payload) at the start of buf? */
enum yz_ipc_parse yz_ipc_frame_parse(const char *buf, size_t len, struct yz_ipc_hdr *hdr_r);
/* Walk every field of a payload: 0 if well formed (tags known, lengths
 * inside, BOOL 0/1), with the number of FD fields in *nfds_r; -1 if not. */
int yz_ipc_payload_scan(const void *payload, size_t len, size_t *nfds_r);

/* ---- writer ---- */

void yz_ipc_msg_init(struct yz_ipc_msg *m, uint16_t type, uint32_t reqid);
void yz_ipc_msg_set_reqid(struct yz_ipc_msg *m, uint32_t reqid);
/* Appenders: 0, or -1 (and the message is failed) past YZ_IPC_FRAME_MAX. */
int yz_ipc_put_u32(struct yz_ipc_msg *m, uint32_t v);
int yz_ipc_put_u64(struct yz_ipc_msg *m, uint64_t v);
int yz_ipc_put_i64(struct yz_ipc_msg *m, int64_t v);
int yz_ipc_put_bool(struct yz_ipc_msg *m, bool v);
int yz_ipc_put_str(struct yz_ipc_msg *m, const char *s);
/* A STR from a slice; fails if the slice holds a NUL byte. */
int yz_ipc_put_slice(struct yz_ipc_msg *m, struct yz_slice s);
int yz_ipc_put_bytes(struct yz_ipc_msg *m, const void *p, size_t n);
/* The message takes ownership of fd (closed after sending or by
 * yz_ipc_msg_free), even when this fails (fd < 0 or too many fds). */
int yz_ipc_put_fd(struct yz_ipc_msg *m, int fd);
/* Finish the header and give the frame bytes (not the fds: m->fds).
 * -1 if a put failed. The slice is valid until the message changes. */
int yz_ipc_msg_frame(struct yz_ipc_msg *m, struct yz_slice *frame_r);
/* Free the bytes and close the descriptors still owned. */
void yz_ipc_msg_free(struct yz_ipc_msg *m);

/* ---- reader ---- */

/* Read payload; the reader takes ownership of the nfds descriptors (more
 * than YZ_IPC_FDS_MAX: the extra ones are closed and the reader fails). */
void yz_ipc_reader_init(struct yz_ipc_reader *r, const void *payload, size_t len,
			const int *fds, size_t nfds);
/* Close the descriptors not taken. */
void yz_ipc_reader_free(struct yz_ipc_reader *r);
/* Getters: 0, or -1 on a wrong tag, truncation, a value over max or an
 * earlier failure; on -1 the output is zero / empty / NULL / -1. */
int yz_ipc_get_u32(struct yz_ipc_reader *r, uint32_t *v_r);
int yz_ipc_get_u64(struct yz_ipc_reader *r, uint64_t *v_r);
int yz_ipc_get_i64(struct yz_ipc_reader *r, int64_t *v_r);
int yz_ipc_get_bool(struct yz_ipc_reader *r, bool *v_r);
/* A STR of at most max bytes without NUL; the slice points into the payload. */
int yz_ipc_get_str(struct yz_ipc_reader *r, size_t max, struct yz_slice *s_r);
/* The same, copied NUL-terminated into pool (or the heap, freed by the
 * caller, when pool is NULL). */
int yz_ipc_get_str_dup(struct yz_ipc_reader *r, size_t max, struct yz_pool *pool,
		       char **s_r);
/* A BYTES field of at most max bytes; the slice points into the payload. */
int yz_ipc_get_bytes(struct yz_ipc_reader *r, size_t max, struct yz_slice *s_r);
/* Take ownership of the next received descriptor. */
int yz_ipc_get_fd(struct yz_ipc_reader *r, int *fd_r);
/* 0 if every byte and descriptor was consumed and nothing failed; else -1
 * (and the reader is failed). */
int yz_ipc_end(struct yz_ipc_reader *r);
/* Has a getter or yz_ipc_end() failed? */
bool yz_ipc_reader_failed(const struct yz_ipc_reader *r);

#endif
