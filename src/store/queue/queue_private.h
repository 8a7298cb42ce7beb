/*
 * queue_private.h: internals shared by the files of the queue store, its
 * unit tests and its fuzzer: the store structure, the system-call wrappers
 * that honour the fault-injection hooks, and the on-disk formats (envelope
 * block, trailer, status records). Not for other rooms: they use
 * queue_store.h only.
 *
 * The decoders here are parsers of bytes read from disk: they are pure,
 * bounded by the limits of queue_store.h, and treat every input as hostile.
 */
#ifndef YZ_STORE_QUEUE_PRIVATE_H
#define YZ_STORE_QUEUE_PRIVATE_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/pool.h"
#include "store/queue/queue_store.h"

#define QUEUE_SUB_INCOMING "incoming"
#define QUEUE_SUB_ACTIVE "active"
#define QUEUE_SUB_STATUS "status"
#define QUEUE_SUB_CORRUPT "corrupt"
#define QUEUE_SUB_FREE "free"
#define QUEUE_SUB_LOG "log"
/* Finished queue files kept for reuse (see queue_recycle.c). */
#define QUEUE_FREE_MAX 1024
#define QUEUE_FREE_CACHE 256
#define QUEUE_FREE_RESCAN_MS 1000
#define QUEUE_FREE_RECOUNT 256
#define QUEUE_PATH_MAX (QUEUE_DIR_MAX + 64) /* dir + "/" + sub + "/" + name */

#define QUEUE_FORMAT_VERSION 1
#define QUEUE_ENV_MAGIC "YZQE"
#define QUEUE_TRAILER_MAGIC "YZQT"
#define QUEUE_TRAILER_LEN 32
/* Fixed part of the envelope block: magic, version, qid, arrival, 4 flag
 * bytes, 6 string lengths, rcpt count. */
#define QUEUE_ENV_FIXED (4 + 2 + QUEUE_ID_LEN + 8 + 4 + 6 * 2 + 4)
#define QUEUE_ENV_RCPT_MAX (2 + QUEUE_ADDR_MAX + 2 + QUEUE_ORCPT_MAX + 1)
#define QUEUE_ENVELOPE_MAX (QUEUE_ENV_FIXED + QUEUE_ADDR_MAX + QUEUE_ENVID_MAX + \
			    2 * QUEUE_HOST_MAX + QUEUE_CLIENT_ADDR_MAX + QUEUE_AUTH_MAX + \
			    (size_t)QUEUE_RCPT_MAX * QUEUE_ENV_RCPT_MAX)

/* Status record: u32 CRC-32C of the rest, u16 body length, body {u8
 * version, u32 index, u8 state, u8 flags, u32 attempts, i64 next_retry, u16
 * text length, text}. */
#define QUEUE_STATUS_HDR_LEN 6
#define QUEUE_STATUS_BODY_MIN 21
#define QUEUE_STATUS_BODY_MAX (QUEUE_STATUS_BODY_MIN + QUEUE_STATUS_TEXT_MAX)
#define QUEUE_STATUS_REC_MAX (QUEUE_STATUS_HDR_LEN + QUEUE_STATUS_BODY_MAX)
#define QUEUE_STATUS_READ_BUF 65536

/* Segment log (queue_seg.c): small messages appended by the smtpd role. */
#define QUEUE_SEG_MAGIC "YZQR"
#define QUEUE_SEG_VERSION 1
#define QUEUE_SEG_HDR_LEN 40
#define QUEUE_SEG_INLINE_MAX ((size_t)64 << 10) /* content bytes kept in memory for a segment */
#define QUEUE_SEG_SIZE ((uint64_t)16 << 20)     /* a writer starts a new segment beyond this */
#define QUEUE_SEG_DONE_SUFFIX ".done"
#define QUEUE_SEG_DONE_LINE (QUEUE_ID_LEN + 1)  /* "<qid>\n" */
#define QUEUE_SEG_EMPTY_AGE_S 60                /* an empty segment younger than this may be starting */
#define QUEUE_SEG_READ_BUF ((size_t)256 << 10)
#define QUEUE_SEG_DONE_MAX ((size_t)1 << 24)    /* bytes of a done file read at recovery */
#define QUEUE_SEG_OPEN_TRIES 8

struct queue_seg;
struct queue_seg_loc;

/* A decoded segment record header. */
struct queue_seg_hdr {
	char qid[QUEUE_ID_MAX];
	uint32_t content_len;
	uint32_t env_len;
	uint32_t image_crc; /* CRC-32C of content + envelope + trailer */
};

struct queue_store {
	char dir[QUEUE_DIR_MAX];
	int incoming_fd; /* directory fds, opened at store open: syncfs on */
	int active_fd;   /* incoming_fd reports every error since then */
	int status_fd;
	int corrupt_fd;
	int free_fd;
	/* Recycling (queue_recycle.c): names seen in free/, and an estimate of
	 * how many files it holds. */
	char free_names[QUEUE_FREE_CACHE][QUEUE_ID_MAX];
	size_t nfree_names;
	uint64_t free_scan_ms;
	size_t free_estimate;
	unsigned removes_since_count;
	enum queue_sync sync;
	struct queue_io_hooks hooks;
	int log_fd;
	/* Writer side (the smtpd role): small messages go to a segment. */
	bool seg_write;
	int wseg_fd;                   /* current segment, flock(LOCK_EX) held; -1 none */
	char wseg_name[QUEUE_ID_MAX];
	uint64_t wseg_tail;
	bool wseg_new;                 /* log/ not yet fsync'd since it was created */
	/* Reader side (the queue role): known segments and live records. */
	struct queue_seg *segs;
	struct queue_seg_loc **idx;    /* open addressing by queue ID */
	size_t idx_cap, idx_count;
	char err[256];
};

/* Wrappers of the system calls that the fault-injection hooks replace. */
int queue_io_write_full(const struct queue_store *s, int fd, const void *buf, size_t len);
int queue_io_fdatasync(const struct queue_store *s, int fd);
/* pwritev all of iov at off (through the write hook when one is set). */
struct iovec;
int queue_io_pwritev_full(const struct queue_store *s, int fd, struct iovec *iov, size_t n,
			  uint64_t off);
int queue_io_fsync(const struct queue_store *s, int fd);
int queue_io_syncfs(const struct queue_store *s, int fd);
int queue_io_rename(const struct queue_store *s, const char *from, const char *to);
int queue_io_unlink(const struct queue_store *s, const char *path);
/* true when a batch of n files should use one syncfs. */
bool queue_use_syncfs(const struct queue_store *s, size_t n);

/* pread exactly len bytes at off; -1 with errno (EBADMSG when short). */
int queue_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* "<dir>/<sub>/<name>" into out; -1 (ENAMETOOLONG) if it does not fit. */
int queue_path(const struct queue_store *s, const char *sub, const char *name,
	       char *out, size_t outsz);
/* Format an error text into buf (with ": strerror(errnum)" if errnum != 0)
 * and return buf. */
const char *queue_errf(char *buf, size_t bufsz, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Little-endian u32 store and load (queue_format.c). */
void queue_put_u32(unsigned char *p, uint32_t v);
uint32_t queue_get_u32(const unsigned char *p);
/* qsort/bsearch comparator of queue IDs (QUEUE_ID_LEN bytes). */
int queue_id_cmp(const void *a, const void *b);
/* A directory stream on a subdirectory fd (the fd stays the store's); NULL
 * with errno. */
DIR *queue_dir_stream(int dirfd);

/* CRC-32C (Castagnoli), continuing from crc (start with 0). */
uint32_t queue_crc32c(uint32_t crc, const void *data, size_t len);

/* queue_recycle.c: take a finished file from free/ as incoming/<qid>
 * (opened O_WRONLY|O_TRUNC), or -1 (errno ENOENT: none to take). */
int queue_recycle_take(struct queue_store *s, const char *qid, const char *path);
/* Move active/<qid> to free/ instead of unlinking it; -1 if it could not
 * (then the caller unlinks). */
int queue_recycle_put(struct queue_store *s, const char *qid);

/* Check an envelope against every bound (before anything is written). */
int queue_envelope_check(const struct queue_envelope *env, const char **error_r);
/* Append the envelope block of a checked envelope to out. */
int queue_envelope_encode(struct yz_buf *out, const char *qid, const struct queue_envelope *env);
/* Decode an envelope block; strings are allocated from pool, every
 * recipient starts PENDING. -1 with error_r if anything is out of bounds. */
int queue_envelope_decode(struct yz_pool *pool, const void *data, size_t len,
			  char qid_r[QUEUE_ID_MAX], struct queue_envelope *env_r,
			  const char **error_r);
void queue_trailer_encode(unsigned char out[QUEUE_TRAILER_LEN], uint64_t content_len,
			  uint32_t env_len, uint32_t env_crc);
int queue_trailer_decode(const unsigned char in[QUEUE_TRAILER_LEN], uint64_t *content_len_r,
			 uint32_t *env_len_r, uint32_t *env_crc_r);

/* A decoded status record; text points into the decoded bytes. */
struct queue_status_rec {
	uint32_t index;
	enum queue_rcpt_state state;
	unsigned flags;
	uint32_t attempts;
	int64_t next_retry;
	const char *text;
	size_t text_len;
};
/* Encode one record into out (QUEUE_STATUS_REC_MAX bytes); the status text
 * is cut at QUEUE_STATUS_TEXT_MAX (on a UTF-8 boundary) and control bytes
 * become spaces. Returns its length. */
size_t queue_status_encode(unsigned char out[QUEUE_STATUS_REC_MAX], const struct queue_rcpt_update *u);
/* Decode the record at the start of data. Returns its length, 0 if data is
 * too short for a whole record (need more, or a torn tail), -1 if the bytes
 * are not a valid record. */
long queue_status_decode(const void *data, size_t len, struct queue_status_rec *rec_r);
/* Apply a valid record to env (a record for an index out of range is
 * ignored and returns -1). Text is copied from pool. */
int queue_status_apply(struct yz_pool *pool, struct queue_envelope *env,
		       const struct queue_status_rec *rec);

/* Apply status/<qid> (if any) to env. A torn or corrupt tail is ignored
 * with a warning; -1 only for an I/O error (errno set). */
int queue_status_replay(struct queue_store *s, const char *qid, struct yz_pool *pool,
			struct queue_envelope *env, const char **error_r);

/* Segment record header: encode into out; decode (-1 if not a valid header). */
void queue_seg_hdr_encode(unsigned char out[QUEUE_SEG_HDR_LEN], const struct queue_seg_hdr *h);
int queue_seg_hdr_decode(const unsigned char in[QUEUE_SEG_HDR_LEN], struct queue_seg_hdr *h_r);

/* Writer side: open a new segment for appends (rotating out the current
 * one); -1 with errno. */
int queue_seg_writer_open(struct queue_store *s);
/* Abandon the current segment after a failure (the next commit starts a new one). */
void queue_seg_writer_close(struct queue_store *s);

/* Reader side. */
struct queue_seg_loc *queue_seg_find(struct queue_store *s, const char *qid);
int queue_seg_load(struct queue_store *s, struct queue_seg_loc *l, struct queue_msg **msg_r,
		   const char **error_r);
int queue_seg_content_fd(struct queue_store *s, struct queue_seg_loc *l, uint64_t *offset_r,
			 uint64_t *len_r, const char **error_r);
/* The message is finished: record it done and forget it (recycling the
 * segment when it was its last live record). */
int queue_seg_remove(struct queue_store *s, struct queue_seg_loc *l, const char **error_r);
/* Copy the message into active/<qid> (durably) and then mark it done in
 * its segment: before its first status record. */
int queue_seg_migrate(struct queue_store *s, struct queue_seg_loc *l, const char **error_r);
/* Find segments and records the queue role was not told of; -1 only when
 * log/ cannot be read. */
int queue_seg_scan_all(struct queue_store *s, const char **error_r);
/* Append the IDs of live segment records to *ids (growing it). */
int queue_seg_list(struct queue_store *s, char (**ids)[QUEUE_ID_MAX], size_t *n, size_t *cap,
		   const char **error_r);
/* Close every segment (store close). */
void queue_seg_close_all(struct queue_store *s);

#endif
