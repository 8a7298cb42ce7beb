/*
 * queue_store.h: the durable queue store: message files, envelopes with
 * per-recipient state, group commit, recovery. Used by the smtpd role (which
 * writes new messages) and the queue role (which schedules, records
 * per-recipient completion and removes). Files only: no sockets, no IPC.
 *
 * Guarantees: a message whose commit succeeded is on stable storage with its
 * envelope and survives any crash until queue_msg_remove(); a message whose
 * commit did not succeed never becomes visible to the queue role after a
 * restart; a recorded recipient state is durable before the call reports it.
 * Never: a message visible in active/ whose data was not synced first, a
 * failed fsync retried and trusted, a corrupt committed file silently
 * dropped, a path built from a queue ID that queue_id_valid() did not accept.
 *
 * ======================================================================
 * Design (copied into INTERNALS.md "Queue states")
 * ======================================================================
 *
 * Layout of the queue directory (all 0700, files 0600, one file system):
 *   incoming/<qid>   being written by an smtpd session (or aborted/crashed)
 *   active/<qid>     committed: content + envelope, never modified again
 *   status/<qid>     append-only recipient status log of active/<qid>
 *   corrupt/<qid>    committed files that failed validation (+ .status)
 *   log/<seg>        segment: committed small messages, appended (below)
 *   log/<seg>.done   queue IDs of the segment's finished records
 *   free/            finished message files kept for reuse
 *
 * Two homes for a committed message. A message whose content stays within
 * QUEUE_SEG_INLINE_MAX (64 KiB; most mail) and that an smtpd wrote
 * (queue_store_use_segments) is a record in that smtpd's current segment
 * until it is finished or must wait; every other message, and every
 * message that must wait for a retry, is a file active/<qid>. Segment
 * records need no file, no rename and no directory sync per message: a
 * commit is one pwritev at the segment's tail and one fdatasync.
 *
 * Segment log/<seg> (<seg> is a queue ID, so names sort by age): written
 * only by the smtpd process that created it (O_EXCL) and holds
 * flock(LOCK_EX) on it from before its first record until it closes it
 * (beyond QUEUE_SEG_SIZE, after a failed write or sync, at exit). Records:
 * a 40-byte header {magic "YZQR", version, header length, qid, content
 * length, envelope length, CRC-32C of the image, CRC-32C of the header}
 * then the image: content, envelope block, trailer, exactly the bytes of a
 * message file. The queue role learns a record from the smtpd's QUEUE_NEW
 * (qid, segment, offset: queue_seg_note()) or by reading the segment
 * (queue_list(), recovery), which stops at the first record that is short
 * or fails a checksum (a record still being written, or a torn tail);
 * once no writer holds the segment, a record whose header holds but whose
 * image does not is copied to corrupt/<qid> and skipped. Records below the
 * reader's scan offset are known: indexed as live, or finished.
 * Finishing a record appends "<qid>\n" to log/<seg>.done (no sync: like an
 * unlink, a lost mark only brings the message back, and redelivery is
 * idempotent). Before a record's first status record, queue_seg_migrate()
 * copies its image to incoming/<qid>, fdatasyncs it, renames it into
 * active/ and fsyncs active/, and only then marks the record done: a
 * crash in between leaves both, and a reader that finds active/<qid>
 * ignores the record. A segment is removed when no writer holds it (a
 * non-blocking flock succeeds), it was read to its end, no record is live,
 * and its done file was fdatasync'd (so a lost unlink cannot bring back
 * delivered mail); an empty segment only when older than
 * QUEUE_SEG_EMPTY_AGE_S (its writer may be between create and flock).
 *
 * Segment commit (queue_batch_commit, members that are segment records):
 *   0. one pwritev of header + image of each at the tail; on error the
 *      tail is cut back (ftruncate) and the segment abandoned;
 *   1. fdatasync of the segment (or the batch's syncfs when it has files);
 *   2. the first commit into a new segment fsyncs log/ once;
 *   then each member reports success with its location
 *   (queue_batch_location()); a failure at 1 or 2 fails every record of
 *   this batch and abandons the segment: those records were written but
 *   never acknowledged, so a reader may still deliver them (a duplicate of
 *   the client's retry, never a loss).
 *
 * Queue ID: 12 characters of Crockford base32 (0-9 A-Z without I L O U, in
 * ASCII order, so string order = time order): 52 bits of microseconds since
 * the epoch (good until 2112) then 8 bits of the pid. Within a process the
 * time part strictly increases (a second ID in the same microsecond takes
 * the next microsecond), so IDs of one process are unique and ordered; two
 * processes collide only with equal pid bits in the same microsecond, and
 * then O_EXCL in incoming/ and RENAME_NOREPLACE into active/ refuse the
 * second one (the writer picks a new ID; a commit fails with 451).
 *
 * Message file (active/<qid>): bytes [0, content_len) are the content exactly
 * as handed over (dot-unstuffed, CRLF, with the smtpd's Received header), so
 * queue_msg_content_fd() answers offset 0, length content_len and the
 * mailbox role reads that range of the fd. Then the envelope block (binary,
 * little-endian, versioned, every field bounded: queue_format.h), then a
 * 32-byte trailer {magic "YZQT", version, content_len, envelope length,
 * envelope CRC-32C, trailer CRC-32C}. A file is valid only when its size is
 * exactly content_len + envelope length + 32, both CRCs match and the
 * envelope's queue ID equals the file name.
 *
 * Status log (status/<qid>): records {CRC-32C, length, recipient index,
 * state, flags, attempts, next retry, status text}. Each record holds the
 * absolute state of one recipient (never a delta), so applying a record
 * twice is harmless and the last record of a recipient wins: replay is
 * idempotent. Replay stops at the first short, oversized or bad-CRC record
 * (a torn or zero-filled tail after a crash) and ignores the rest with a
 * warning; at worst a recipient looks less advanced than it was, so it is
 * tried again (a duplicate, never a loss; local delivery is idempotent).
 *
 * Message states and the function performing each transition:
 *
 *   (none) --queue_writer_open()--> WRITING      incoming/<qid> O_EXCL 0600,
 *                                                 flock(LOCK_EX) held
 *   WRITING --queue_writer_append()--> WRITING   buffered write(2)s
 *   WRITING --queue_writer_finish()--> FINISHED  envelope + trailer written
 *   WRITING/FINISHED --queue_writer_abort()--> (none)     unlink incoming/
 *   any write error -------------------------> FAILED     unlink incoming/
 *   FINISHED --queue_batch_add()--> BATCHED
 *   BATCHED --queue_batch_commit()--> COMMITTED, for every member at once:
 *       1. data: fdatasync(2) each file, or one syncfs(2) of the queue file
 *          system (QUEUE_SYNC_AUTO: syncfs above QUEUE_SYNCFS_MIN_FILES
 *          files, measured with tests/unit/bench_queue.c);
 *       2. close(2) checked (a dup keeps the flock until step 4);
 *       3. renameat2(incoming/<qid>, active/<qid>, RENAME_NOREPLACE);
 *       4. one fsync(2) of active/ for the whole batch;
 *       only then the item reports success: the smtpd answers 250 and tells
 *       the queue role (QUEUE_NEW). A failure at 1 fails the item(s) whose
 *       data it covers; at 2 or 3 the item; at 4 every item renamed by this
 *       batch. Failed items are unlinked wherever they are (the client gets
 *       451 4.3.0 and retries). A failed sync is never retried.
 *   COMMITTED --queue_rcpt_batch_commit()--> COMMITTED with new recipient
 *       states: records appended to status/<qid> (created on first use),
 *       then fdatasync each log or one syncfs, plus one fsync of status/ if
 *       a log was created. Only then the item reports success.
 *   COMMITTED, every recipient DELIVERED or FAILED (queue_msg_done()) and
 *       the states durable --queue_msg_remove()--> (none): unlink
 *       active/<qid> first, then status/<qid>. No sync is needed: a removal
 *       lost in a crash is redone by recovery, which finds every recipient
 *       done.
 *   COMMITTED --queue_recover() finds it invalid--> CORRUPT: renamed to
 *       corrupt/<qid> (its log to corrupt/<qid>.status), logged.
 *
 * Recipient states (enum queue_rcpt_state): PENDING (never tried) ->
 * DEFERRED (temporary failure; attempts, next_retry) -> DELIVERED or FAILED
 * (final). Flags record that a DSN was queued (QUEUE_RCPT_F_DSN_SENT) or a
 * delay notice sent (QUEUE_RCPT_F_DELAY_SENT). The queue role commits a
 * bounce message before it records FAILED|DSN_SENT, so "done" implies
 * "bounced" when a bounce was due.
 *
 * Crash reasoning (process crash or power loss at any instant):
 *   - during WRITING/FINISHED, or in commit before step 3 is durable: the
 *     file is in incoming/ (maybe partial); nothing was acknowledged;
 *     queue_recover()/queue_incoming_sweep() unlink every incoming/ file
 *     whose flock is free (a live writer of a running smtpd holds its lock).
 *   - after step 3 but before step 4 completed: the file may be in active/
 *     with its data durable (step 1 came first) but not acknowledged; it is
 *     delivered and the client may also retry: a duplicate, the SMTP norm.
 *     If the rename was not persisted, it is in incoming/: discarded.
 *   - after step 4: acknowledged, in active/, data and entry durable.
 *   - during a status commit: records not yet synced may be lost or torn;
 *     replay ignores the torn tail; the recipient is tried again.
 *   - during removal: active/ gone but status/ left: orphan, removed by
 *     recovery; active/ still there: reloaded, found done, removed.
 *   - a committed file that fails validation (disk corruption, a bug): moved
 *     to corrupt/ and logged, never deleted, so an admin can look at it.
 *
 * Invariants: a file in active/ is complete and synced; it is never written
 * again; its status log only grows; only the queue role writes status/,
 * removes from active/, writes done files, removes segments and runs
 * recovery; the smtpd role only creates in incoming/, renames into active/
 * and appends to the one segment it holds locked; a segment record is
 * never modified; a message never has a status log while it is a record.
 *
 * Threads: a store, writer or batch is used by one thread at a time.
 * Commit functions block on the disk; an event-driven caller runs them in a
 * helper thread or accepts the stall (both share the syncs of a batch).
 * Errors: functions return -1 (or a count of failed items) and an error text
 * valid until the next call on the same object; nothing is printed except
 * warnings about corrupt files found on disk (yz_log_warn).
 */
#ifndef YZ_STORE_QUEUE_STORE_H
#define YZ_STORE_QUEUE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct yz_pool;

/* Bounds, each checked before the data is used. */
#define QUEUE_ID_LEN 12                 /* characters of a queue ID */
#define QUEUE_ID_MAX (QUEUE_ID_LEN + 1) /* with the NUL */
#define QUEUE_DIR_MAX 1024              /* queue directory path, bytes */
#define QUEUE_RCPT_MAX 10000            /* recipients of one message */
#define QUEUE_ADDR_MAX 512              /* sender / recipient address, bytes */
#define QUEUE_ORCPT_MAX 512             /* ORCPT as "addr-type;xtext-decoded" */
#define QUEUE_ENVID_MAX 100             /* RFC 3461 4.4 */
#define QUEUE_HOST_MAX 255              /* client host name, HELO name */
#define QUEUE_CLIENT_ADDR_MAX 64        /* textual IP address (+ port) */
#define QUEUE_AUTH_MAX 255              /* SASL login name */
#define QUEUE_STATUS_TEXT_MAX 512       /* last status text (cut at the bound) */
#define QUEUE_CONTENT_MAX ((uint64_t)1 << 32) /* content bytes (4 GiB) */
#define QUEUE_BATCH_MAX 4096            /* items in one batch */
#define QUEUE_LIST_MAX (1u << 22)       /* messages in one listing */
#define QUEUE_WRITE_BUF 16384           /* content buffered per writer */
/* AUTO: syncfs above this many files. tests/unit/bench_queue.c on the dev
 * VM (ext4 on virtio, disk shared with other builds; 4 KiB messages, median
 * msgs/s, fdatasync-each vs syncfs): batch 1: 187-1023 vs 175-811 (mixed);
 * 5: 322-790 vs 360-871; 10: 243-606 vs 230-787; 20: 344-562 vs 274-911;
 * 50: 312-799 vs 321-974; 100: 323-1091 vs 559-1667. syncfs wins from a
 * handful of files up, but it also flushes other writers' dirty data on the
 * file system, so small batches keep the bounded cost of fdatasync. */
#define QUEUE_SYNCFS_MIN_FILES 4

/* DSN NOTIFY bits (RFC 3461); 0 = not given. */
#define QUEUE_NOTIFY_SUCCESS 0x1u
#define QUEUE_NOTIFY_FAILURE 0x2u
#define QUEUE_NOTIFY_DELAY 0x4u
#define QUEUE_NOTIFY_NEVER 0x8u
#define QUEUE_NOTIFY_ALL 0xfu

/* Recipient flags recorded with its state. */
#define QUEUE_RCPT_F_DSN_SENT 0x1u   /* the DSN for the final state is queued */
#define QUEUE_RCPT_F_DELAY_SENT 0x2u /* a delay notice was sent */
#define QUEUE_RCPT_F_ALL 0x3u

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0,   /* never tried */
	QUEUE_RCPT_DEFERRED = 1,  /* temporary failure, retry at next_retry */
	QUEUE_RCPT_DELIVERED = 2, /* final */
	QUEUE_RCPT_FAILED = 3,    /* final: permanent failure or expired */
};

enum queue_body { QUEUE_BODY_NONE = 0, QUEUE_BODY_7BIT, QUEUE_BODY_8BITMIME, QUEUE_BODY_BINARYMIME };
enum queue_ret { QUEUE_RET_NONE = 0, QUEUE_RET_FULL, QUEUE_RET_HDRS };

/* One recipient. The state fields are ignored by queue_writer_finish()
 * (every recipient starts PENDING) and filled by queue_msg_load(). */
struct queue_rcpt {
	const char *addr;    /* non-empty */
	const char *orcpt;   /* NULL or "" = none */
	unsigned notify;     /* QUEUE_NOTIFY_* */
	enum queue_rcpt_state state;
	unsigned flags;      /* QUEUE_RCPT_F_* */
	uint32_t attempts;
	int64_t next_retry;  /* unix seconds; 0 = now */
	const char *status;  /* last status text, "" if none */
};

/* The envelope. Strings are NUL-terminated, contain no control characters
 * and respect the bounds above; NULL counts as "". */
struct queue_envelope {
	const char *sender;      /* "" = null sender <> */
	bool smtputf8;
	enum queue_body body;
	enum queue_ret ret;
	const char *envid;       /* DSN ENVID, xtext-decoded */
	const char *client_name; /* for logs and Received */
	const char *client_addr;
	const char *helo;
	const char *auth_user;   /* "" if not authenticated */
	int64_t arrival;         /* unix seconds; 0 = now (set at finish) */
	size_t rcpt_count;       /* 0 .. QUEUE_RCPT_MAX */
	struct queue_rcpt *rcpts;
};

/* A committed message as loaded, recipient states applied. */
struct queue_msg {
	char qid[QUEUE_ID_MAX];
	uint64_t content_len;
	struct queue_envelope env; /* strings and rcpts owned by the message */
	struct yz_pool *pool;
};

/* How commits make data durable. */
enum queue_sync {
	QUEUE_SYNC_AUTO = 0, /* syncfs above QUEUE_SYNCFS_MIN_FILES files, else each */
	QUEUE_SYNC_EACH,     /* fdatasync each file */
	QUEUE_SYNC_FS,       /* one syncfs(2) */
};

/* Fault injection for tests: a NULL member means the real system call. */
struct queue_io_hooks {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*syncfs)(int fd);
	int (*rename)(const char *from, const char *to); /* must not replace */
	int (*unlink)(const char *path);
};

struct queue_store;
struct queue_writer;
struct queue_batch;
struct queue_rcpt_batch;

/* Open (creating, 0700) the queue directory dir and its subdirectories. */
int queue_store_open(const char *dir, struct queue_store **store_r, const char **error_r);
void queue_store_close(struct queue_store **store);
void queue_store_set_sync(struct queue_store *s, enum queue_sync sync);
/* Writers of this store append messages of up to 64 KiB of content to a
 * segment of log/ (the smtpd role) instead of a file each. */
void queue_store_use_segments(struct queue_store *s, bool on);
/* Install fault-injection hooks (copied); NULL restores the system calls. */
void queue_store_set_io_hooks(struct queue_store *s, const struct queue_io_hooks *hooks);
/* true if the file system of dir has at least need_bytes free for us. */
bool queue_free_space_ok(const char *dir, uint64_t need_bytes);

/* A new unique, time-sortable queue ID. */
void queue_id_new(char out[QUEUE_ID_MAX]);
/* true if s is exactly a well-formed queue ID (safe as a file name). */
bool queue_id_valid(const char *s);

/* Start a message in incoming/. */
int queue_writer_open(struct queue_store *s, struct queue_writer **w_r, const char **error_r);
const char *queue_writer_id(const struct queue_writer *w);
/* Content bytes appended so far. */
uint64_t queue_writer_size(const struct queue_writer *w);
/* Append content. On error the file is already removed; abort the writer. */
int queue_writer_append(struct queue_writer *w, const void *data, size_t len,
			const char **error_r);
/* Write the envelope after the content; then queue_batch_add(). On error
 * the file is already removed; abort the writer. */
int queue_writer_finish(struct queue_writer *w, const struct queue_envelope *env,
			const char **error_r);
/* Drop the message (RSET, disconnect, size exceeded, error); *w = NULL. */
void queue_writer_abort(struct queue_writer **w);

struct queue_batch *queue_batch_new(struct queue_store *s);
/* Take a finished writer (*w = NULL on success); returns the item index. */
int queue_batch_add(struct queue_batch *b, struct queue_writer **w, const char **error_r);
size_t queue_batch_count(const struct queue_batch *b);
/* Make every item durable and visible; returns the number that failed. */
size_t queue_batch_commit(struct queue_batch *b);
/* 0 if item i is committed, else -1 and the reason; qid_r may be NULL. */
int queue_batch_result(const struct queue_batch *b, size_t i, const char **qid_r,
		       const char **error_r);
/* Where committed item i lives: *seg_r is the segment name and *offset_r
 * its record's offset, or *seg_r = "" for a file in active/. */
int queue_batch_location(const struct queue_batch *b, size_t i, const char **seg_r,
			 uint64_t *offset_r);
/* Empty the batch for reuse; uncommitted items are aborted. */
void queue_batch_clear(struct queue_batch *b);
void queue_batch_free(struct queue_batch **b);

/* The queue role learns that the smtpd committed qid at offset of segment
 * seg (a no-op for seg ""): the record is checked and indexed, so the
 * functions below find it. -1 if it is not a valid record there. */
int queue_seg_note(struct queue_store *s, const char *qid, const char *seg, uint64_t offset,
		   const char **error_r);

/* Load a committed message with its recipient states. errno: ENOENT (not
 * there), EBADMSG (corrupt), else an I/O error. */
int queue_msg_load(struct queue_store *s, const char *qid, struct queue_msg **msg_r,
		   const char **error_r);
void queue_msg_free(struct queue_msg **msg);
/* true when every recipient is DELIVERED or FAILED. */
bool queue_msg_done(const struct queue_msg *msg);
/* O_RDONLY fd of the message file; the content is [*offset_r, +*len_r). */
int queue_msg_content_fd(struct queue_store *s, const char *qid, uint64_t *offset_r,
			 uint64_t *len_r, const char **error_r);
/* Remove a message whose recipients are all done (durably recorded). */
int queue_msg_remove(struct queue_store *s, const char *qid, const char **error_r);

/* A recipient state change, for queue_rcpt_batch_add(). */
struct queue_rcpt_update {
	const char *qid;
	uint32_t index;        /* recipient index in the envelope */
	enum queue_rcpt_state state;
	unsigned flags;        /* QUEUE_RCPT_F_* */
	uint32_t attempts;
	int64_t next_retry;
	const char *status;    /* NULL = ""; control bytes become spaces, cut at the bound */
};

struct queue_rcpt_batch *queue_rcpt_batch_new(struct queue_store *s);
/* Add an update (copied); returns the item index or -1. */
int queue_rcpt_batch_add(struct queue_rcpt_batch *b, const struct queue_rcpt_update *u,
			 const char **error_r);
size_t queue_rcpt_batch_count(const struct queue_rcpt_batch *b);
/* Make every update durable; returns the number that failed. */
size_t queue_rcpt_batch_commit(struct queue_rcpt_batch *b);
int queue_rcpt_batch_result(const struct queue_rcpt_batch *b, size_t i, const char **error_r);
void queue_rcpt_batch_clear(struct queue_rcpt_batch *b);
void queue_rcpt_batch_free(struct queue_rcpt_batch **b);

/* IDs of the committed messages (active/), sorted = arrival order; free()
 * *ids_r. */
int queue_list(struct queue_store *s, char (**ids_r)[QUEUE_ID_MAX], size_t *count_r,
	       const char **error_r);

/* Unlink incoming/ files no live writer holds; *removed_r may be NULL. */
int queue_incoming_sweep(struct queue_store *s, size_t *removed_r, const char **error_r);

struct queue_recover_stats {
	size_t loaded;           /* handed to the callback */
	size_t incoming_removed; /* uncommitted files discarded */
	size_t done_removed;     /* finished messages whose removal was cut short */
	size_t orphans_removed;  /* status logs without a message */
	size_t corrupt;          /* moved to corrupt/ */
	size_t unreadable;       /* I/O errors: left in place, logged */
};
/* Called per message in ID order; owns msg (queue_msg_free it). Non-zero
 * return stops recovery. */
typedef int queue_recover_cb(struct queue_msg *msg, void *ctx);
/* Start-up of the queue role: sweep incoming/, load every committed message
 * (moving corrupt ones aside, finishing interrupted removals), drop orphan
 * status logs. */
int queue_recover(struct queue_store *s, queue_recover_cb *cb, void *ctx,
		  struct queue_recover_stats *stats_r, const char **error_r);

const char *queue_rcpt_state_name(enum queue_rcpt_state st);

#endif
