/*
 * queue_write.c: the write path of new messages: a writer streams content
 * into incoming/<qid>, appends the envelope, joins a batch, and the batch
 * commit makes every member durable with shared syncs and then visible in
 * active/ (the state diagram is in queue_store.h).
 *
 * Guarantees: a batch item reports success only after its data was synced,
 * it was renamed into active/ without replacing anything, and active/ was
 * fsync'd; every failure removes the item's file; content is never held in
 * memory beyond QUEUE_WRITE_BUF bytes per writer. Must never: retry a failed
 * sync, report success for an item whose sync or directory sync failed, or
 * leave a failed item's file in active/.
 */
#include "store/queue/queue_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"

/* iovecs per pwritev of segment records (two per record). */
#define QUEUE_SEG_IOV_MAX 512

/* Attempts at a fresh queue ID when incoming/<qid> exists or vanished. */
#define QUEUE_OPEN_TRIES 8

enum writer_state { W_WRITING, W_FINISHED, W_FAILED, W_COMMITTED };

struct queue_writer {
	struct queue_store *s;
	char qid[QUEUE_ID_MAX];
	char path[QUEUE_PATH_MAX]; /* incoming/<qid>, later active/<qid> */
	int fd;                    /* holds flock(LOCK_EX) while the file is in incoming/ */
	enum writer_state state;
	uint64_t size;             /* content bytes accepted */
	unsigned char *buf;        /* QUEUE_WRITE_BUF bytes while writing */
	size_t buf_len;
	/* Segment candidate (store with segments, content so far within
	 * QUEUE_SEG_INLINE_MAX): no file; the record is built in memory. */
	bool mem;
	struct yz_buf rec;         /* content, then envelope + trailer */
	unsigned char hdr[QUEUE_SEG_HDR_LEN];
	char err[256];
};

/* Fail the writer: close and unlink its file, record the reason. */
static void writer_fail(struct queue_writer *w, int errnum, const char *what)
{
	if (w->mem) {
		yz_buf_free(&w->rec);
		w->state = W_FAILED;
		queue_errf(w->err, sizeof w->err, errnum, "%s: %s", w->qid, what);
		return;
	}
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	/* The unlink goes through the hooks too, so a crash test can stop here. */
	if (w->state != W_FAILED)
		(void)queue_io_unlink(w->s, w->path);
	w->state = W_FAILED;
	free(w->buf);
	w->buf = NULL;
	queue_errf(w->err, sizeof w->err, errnum, "%s: %s", w->qid, what);
}

/* Create incoming/<qid> O_EXCL 0600 and lock it (with a new queue ID, or
 * keeping w->qid when keep_id: it is already in the content); fd or -1
 * with errno. */
static int writer_create(struct queue_writer *w, bool keep_id)
{
	for (int tries = 0; tries < (keep_id ? 1 : QUEUE_OPEN_TRIES); tries++) {
		if (!keep_id)
			queue_id_new(w->qid);
		if (queue_path(w->s, QUEUE_SUB_INCOMING, w->qid, w->path, sizeof w->path) < 0)
			return -1;
		/* A finished file from free/ first (queue_recycle.c), else a new one. */
		int fd = w->s->hooks.write == NULL ? queue_recycle_take(w->s, w->qid, w->path) : -1;
		if (fd < 0)
			fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue; /* another process made the same ID */
			return -1;
		}
		/* The sweep of a restarting queue role unlinks unlocked files
		 * while holding their lock: if it got here between our open and
		 * our flock, the file has no link any more and we start over. */
		struct stat st;
		if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
			int saved = errno;
			close(fd);
			(void)unlink(w->path);
			errno = saved;
			return -1;
		}
		if (st.st_nlink == 0) {
			close(fd);
			continue;
		}
		/* After a clock step backwards an ID may exist in active/; the
		 * commit's RENAME_NOREPLACE would refuse it, so pick another now. */
		if (fstatat(w->s->active_fd, w->qid, &st, 0) == 0) {
			close(fd);
			(void)unlink(w->path);
			continue;
		}
		return fd;
	}
	errno = EEXIST;
	return -1;
}

int queue_writer_open(struct queue_store *s, struct queue_writer **w_r, const char **error_r)
{
	struct queue_writer *w = yz_calloc(1, sizeof *w);
	w->s = s;
	if (s->seg_write) {
		/* Kept in memory until it outgrows a segment record. */
		w->mem = true;
		w->fd = -1;
		queue_id_new(w->qid);
		yz_buf_init(&w->rec, QUEUE_SEG_INLINE_MAX + QUEUE_ENVELOPE_MAX + QUEUE_TRAILER_LEN);
		w->state = W_WRITING;
		*w_r = w;
		return 0;
	}
	w->fd = writer_create(w, false);
	if (w->fd < 0) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "create %s/incoming file",
				      s->dir);
		free(w);
		return -1;
	}
	w->buf = yz_malloc(QUEUE_WRITE_BUF);
	w->state = W_WRITING;
	*w_r = w;
	return 0;
}

const char *queue_writer_id(const struct queue_writer *w)
{
	return w->qid;
}

uint64_t queue_writer_size(const struct queue_writer *w)
{
	return w->size;
}

/* Write out the buffered content. */
static int writer_flush(struct queue_writer *w)
{
	if (w->buf_len == 0)
		return 0;
	if (queue_io_write_full(w->s, w->fd, w->buf, w->buf_len) < 0) {
		writer_fail(w, errno, "write");
		return -1;
	}
	w->buf_len = 0;
	return 0;
}

/* A memory writer outgrew a segment record: continue in incoming/<qid>
 * (a new queue ID) with what it holds so far. */
static int writer_spill(struct queue_writer *w)
{
	struct yz_buf held = w->rec;
	memset(&w->rec, 0, sizeof w->rec); /* held owns the bytes now */
	w->mem = false;
	w->fd = writer_create(w, true);
	if (w->fd < 0) {
		int saved = errno;
		yz_buf_free(&held);
		w->state = W_FAILED;
		queue_errf(w->err, sizeof w->err, saved, "create %s/incoming file", w->s->dir);
		return -1;
	}
	w->buf = yz_malloc(QUEUE_WRITE_BUF);
	int r = queue_io_write_full(w->s, w->fd, yz_buf_data(&held), yz_buf_len(&held));
	int saved = errno;
	yz_buf_free(&held);
	if (r < 0) {
		writer_fail(w, saved, "write");
		return -1;
	}
	return 0;
}

int queue_writer_append(struct queue_writer *w, const void *data, size_t len,
			const char **error_r)
{
	if (w->state != W_WRITING) {
		*error_r = w->state == W_FAILED ? w->err : "writer not open for content";
		return -1;
	}
	if (w->mem) {
		if (len <= QUEUE_SEG_INLINE_MAX - w->size) {
			(void)yz_buf_append(&w->rec, data, len); /* within the cap */
			w->size += len;
			return 0;
		}
		if (writer_spill(w) < 0) {
			*error_r = w->err;
			return -1;
		}
	}
	if (len > QUEUE_CONTENT_MAX - w->size) {
		writer_fail(w, EFBIG, "content too large");
		*error_r = w->err;
		return -1;
	}
	if (w->buf_len + len <= QUEUE_WRITE_BUF) {
		memcpy(w->buf + w->buf_len, data, len);
		w->buf_len += len;
	} else {
		/* A big chunk goes straight to the file after what is buffered. */
		if (writer_flush(w) < 0) {
			*error_r = w->err;
			return -1;
		}
		if (len < QUEUE_WRITE_BUF) {
			memcpy(w->buf, data, len);
			w->buf_len = len;
		} else if (queue_io_write_full(w->s, w->fd, data, len) < 0) {
			writer_fail(w, errno, "write");
			*error_r = w->err;
			return -1;
		}
	}
	w->size += len;
	return 0;
}

int queue_writer_finish(struct queue_writer *w, const struct queue_envelope *env,
			const char **error_r)
{
	if (w->state != W_WRITING) {
		*error_r = w->state == W_FAILED ? w->err : "writer already finished";
		return -1;
	}
	const char *why;
	if (queue_envelope_check(env, &why) < 0) {
		writer_fail(w, 0, why);
		*error_r = w->err;
		return -1;
	}
	if (!w->mem && writer_flush(w) < 0) {
		*error_r = w->err;
		return -1;
	}
	struct queue_envelope e = *env;
	if (e.arrival == 0)
		e.arrival = (int64_t)time(NULL);
	struct yz_buf out;
	yz_buf_init(&out, QUEUE_ENVELOPE_MAX + QUEUE_TRAILER_LEN);
	if (queue_envelope_encode(&out, w->qid, &e) < 0) {
		/* Cannot happen for a checked envelope: the cap is its maximum. */
		yz_buf_free(&out);
		writer_fail(w, 0, "envelope too large");
		*error_r = w->err;
		return -1;
	}
	size_t env_len = yz_buf_len(&out);
	unsigned char trailer[QUEUE_TRAILER_LEN];
	queue_trailer_encode(trailer, w->size, (uint32_t)env_len,
			     queue_crc32c(0, yz_buf_data(&out), env_len));
	if (w->mem) {
		/* The record image: content, envelope, trailer; then its header. */
		if (yz_buf_append(&w->rec, yz_buf_data(&out), env_len) < 0 ||
		    yz_buf_append(&w->rec, trailer, sizeof trailer) < 0) {
			yz_buf_free(&out);
			writer_fail(w, 0, "envelope too large");
			*error_r = w->err;
			return -1;
		}
		yz_buf_free(&out);
		struct queue_seg_hdr h;
		memcpy(h.qid, w->qid, QUEUE_ID_MAX);
		h.content_len = (uint32_t)w->size;
		h.env_len = (uint32_t)env_len;
		h.image_crc = queue_crc32c(0, yz_buf_data(&w->rec), yz_buf_len(&w->rec));
		queue_seg_hdr_encode(w->hdr, &h);
		w->state = W_FINISHED;
		return 0;
	}
	int r = yz_buf_append(&out, trailer, sizeof trailer) < 0 ? -1 :
		queue_io_write_full(w->s, w->fd, yz_buf_data(&out), yz_buf_len(&out));
	int saved = errno;
	yz_buf_free(&out);
	if (r < 0) {
		writer_fail(w, saved, "write envelope");
		*error_r = w->err;
		return -1;
	}
	free(w->buf);
	w->buf = NULL;
	w->state = W_FINISHED;
	return 0;
}

void queue_writer_abort(struct queue_writer **wp)
{
	struct queue_writer *w = *wp;
	if (w == NULL)
		return;
	/* No sync: a file that survives a crash in incoming/ is swept at the
	 * queue role's next start. A committed message is not the writer's
	 * to remove any more. */
	if (!w->mem && (w->state == W_WRITING || w->state == W_FINISHED))
		(void)queue_io_unlink(w->s, w->path);
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	yz_buf_free(&w->rec);
	free(w);
	*wp = NULL;
}

/* One batch member. */
struct batch_item {
	struct queue_writer *w;
	int lock_fd;  /* dup of the writer's fd: keeps the flock through the rename */
	bool renamed; /* now in active/ */
	bool written; /* a segment record, written at seg_off of seg_name */
	uint64_t seg_off;
	char seg_name[QUEUE_ID_MAX];
};

struct queue_batch {
	struct queue_store *s;
	struct batch_item *items;
	size_t count, cap;
	bool committed;
};

struct queue_batch *queue_batch_new(struct queue_store *s)
{
	struct queue_batch *b = yz_calloc(1, sizeof *b);
	b->s = s;
	return b;
}

int queue_batch_add(struct queue_batch *b, struct queue_writer **wp, const char **error_r)
{
	struct queue_writer *w = *wp;
	if (b->committed || b->count >= QUEUE_BATCH_MAX) {
		*error_r = b->committed ? "batch already committed" : "batch full";
		return -1;
	}
	if (w->state != W_FINISHED) {
		*error_r = w->state == W_FAILED ? w->err : "writer not finished";
		return -1;
	}
	if (b->count == b->cap) {
		b->cap = b->cap == 0 ? 16 : b->cap * 2;
		b->items = yz_realloc(b->items, b->cap * sizeof *b->items);
	}
	b->items[b->count] = (struct batch_item){ .w = w, .lock_fd = -1 };
	*wp = NULL;
	return (int)b->count++;
}

size_t queue_batch_count(const struct queue_batch *b)
{
	return b->count;
}

/* Fail a batch item wherever its file is now. */
static void item_fail(struct queue_batch *b, struct batch_item *it, int errnum, const char *what)
{
	it->written = false;
	if (it->renamed) {
		/* Not acknowledged: remove it so that the client's retry does
		 * not make a second copy. Its path is the active/ one now. */
		(void)queue_io_unlink(b->s, it->w->path);
		it->w->state = W_FAILED;
		it->renamed = false;
	}
	if (it->lock_fd >= 0) {
		close(it->lock_fd);
		it->lock_fd = -1;
	}
	writer_fail(it->w, errnum, what);
}

/* Write the records of the batch's memory writers at the tail of the
 * current segment (one pwritev per IOV_MAX/2 records); true if any. On a
 * failure the tail is cut back and the segment abandoned. */
static bool batch_write_segment(struct queue_batch *b)
{
	struct queue_store *s = b->s;
	size_t nseg = 0;
	for (size_t i = 0; i < b->count; i++)
		nseg += b->items[i].w->mem && b->items[i].w->state == W_FINISHED;
	if (nseg == 0)
		return false;
	if ((s->wseg_fd < 0 || s->wseg_tail >= QUEUE_SEG_SIZE) && queue_seg_writer_open(s) < 0) {
		int saved = errno;
		for (size_t i = 0; i < b->count; i++) {
			if (b->items[i].w->mem && b->items[i].w->state == W_FINISHED)
				item_fail(b, &b->items[i], saved, "create segment");
		}
		return false;
	}
	uint64_t start = s->wseg_tail, at = start;
	struct iovec iov[QUEUE_SEG_IOV_MAX];
	size_t niov = 0;
	uint64_t iov_bytes = 0;
	int err = 0;
	for (size_t i = 0; i <= b->count && err == 0; i++) {
		struct batch_item *it = i < b->count ? &b->items[i] : NULL;
		bool take = it != NULL && it->w->mem && it->w->state == W_FINISHED;
		if (take) {
			it->seg_off = at + iov_bytes;
			memcpy(it->seg_name, s->wseg_name, QUEUE_ID_MAX);
			iov[niov++] = (struct iovec){ it->w->hdr, QUEUE_SEG_HDR_LEN };
			iov[niov++] = (struct iovec){ (void *)yz_buf_data(&it->w->rec),
						      yz_buf_len(&it->w->rec) };
			iov_bytes += QUEUE_SEG_HDR_LEN + yz_buf_len(&it->w->rec);
		}
		if (niov > 0 && (it == NULL || niov + 2 > QUEUE_SEG_IOV_MAX)) {
			if (queue_io_pwritev_full(s, s->wseg_fd, iov, niov, at) < 0)
				err = errno;
			at += iov_bytes;
			niov = 0;
			iov_bytes = 0;
		}
	}
	if (err != 0) {
		/* Nothing of this batch may stay readable: cut it off. */
		if (ftruncate(s->wseg_fd, (off_t)start) < 0)
			yz_log_warn("segment %s: cutting a failed write: %s", s->wseg_name,
				    strerror(errno));
		queue_seg_writer_close(s);
		for (size_t i = 0; i < b->count; i++) {
			if (b->items[i].w->mem && b->items[i].w->state == W_FINISHED)
				item_fail(b, &b->items[i], err, "write segment");
		}
		return false;
	}
	s->wseg_tail = at;
	for (size_t i = 0; i < b->count; i++) {
		if (b->items[i].w->mem && b->items[i].w->state == W_FINISHED)
			b->items[i].written = true;
	}
	return true;
}

/* The segment sync failed (or its directory's): fail its records and
 * abandon it; the records stay unacknowledged (a retry is a duplicate at
 * worst, never a loss). */
static void batch_fail_segment(struct queue_batch *b, int errnum, const char *what)
{
	struct queue_store *s = b->s;
	for (size_t i = 0; i < b->count; i++) {
		if (b->items[i].written)
			item_fail(b, &b->items[i], errnum, what);
	}
	queue_seg_writer_close(s);
}

size_t queue_batch_commit(struct queue_batch *b)
{
	struct queue_store *s = b->s;
	size_t failed = 0;
	if (b->committed) {
		for (size_t i = 0; i < b->count; i++)
			failed += b->items[i].w->state != W_COMMITTED;
		return failed;
	}
	b->committed = true;
	if (b->count == 0)
		return 0;

	/* 0. Segment records: one write at the tail of the segment. */
	bool seg = batch_write_segment(b);
	size_t nfiles = 0;
	for (size_t i = 0; i < b->count; i++)
		nfiles += !b->items[i].w->mem && b->items[i].w->state == W_FINISHED;

	/* 1. Data of every member on stable storage. */
	if (nfiles > 0 && queue_use_syncfs(s, nfiles + seg)) {
		if (queue_io_syncfs(s, s->incoming_fd) < 0) {
			int saved = errno;
			for (size_t i = 0; i < b->count; i++) {
				if (!b->items[i].w->mem)
					item_fail(b, &b->items[i], saved, "syncfs");
			}
			if (seg)
				batch_fail_segment(b, saved, "syncfs");
			seg = false;
		}
	} else {
		for (size_t i = 0; i < b->count; i++) {
			if (!b->items[i].w->mem && b->items[i].w->state == W_FINISHED &&
			    queue_io_fdatasync(s, b->items[i].w->fd) < 0)
				item_fail(b, &b->items[i], errno, "fdatasync");
		}
		if (seg && queue_io_fdatasync(s, s->wseg_fd) < 0) {
			batch_fail_segment(b, errno, "fdatasync segment");
			seg = false;
		}
	}
	/* A new segment's directory entry, once. */
	if (seg && s->wseg_new) {
		if (queue_io_fsync(s, s->log_fd) < 0) {
			batch_fail_segment(b, errno, "fsync log directory");
			seg = false;
		} else {
			s->wseg_new = false;
		}
	}

	/* 2 and 3. close (checked) while a dup keeps the lock, then rename. */
	size_t renamed = 0;
	for (size_t i = 0; i < b->count; i++) {
		struct batch_item *it = &b->items[i];
		struct queue_writer *w = it->w;
		if (w->state != W_FINISHED || w->mem)
			continue;
		it->lock_fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);
		if (it->lock_fd < 0) {
			item_fail(b, it, errno, "dup");
			continue;
		}
		int r = close(w->fd);
		w->fd = -1;
		if (r < 0) {
			item_fail(b, it, errno, "close");
			continue;
		}
		char dst[QUEUE_PATH_MAX];
		if (queue_path(s, QUEUE_SUB_ACTIVE, w->qid, dst, sizeof dst) < 0 ||
		    queue_io_rename(s, w->path, dst) < 0) {
			item_fail(b, it, errno, "rename into active");
			continue;
		}
		memcpy(w->path, dst, sizeof dst);
		it->renamed = true;
		renamed++;
	}

	/* 4. One directory sync makes every new entry durable. */
	if (renamed > 0 && queue_io_fsync(s, s->active_fd) < 0) {
		int saved = errno;
		for (size_t i = 0; i < b->count; i++) {
			if (b->items[i].renamed)
				item_fail(b, &b->items[i], saved, "fsync active directory");
		}
	}

	for (size_t i = 0; i < b->count; i++) {
		struct batch_item *it = &b->items[i];
		if (it->renamed) {
			it->w->state = W_COMMITTED;
			close(it->lock_fd);
			it->lock_fd = -1;
		} else if (it->written) {
			it->w->state = W_COMMITTED;
			yz_buf_free(&it->w->rec);
		} else {
			failed++;
		}
	}
	return failed;
}

int queue_batch_location(const struct queue_batch *b, size_t i, const char **seg_r,
			 uint64_t *offset_r)
{
	if (i >= b->count || b->items[i].w->state != W_COMMITTED)
		return -1;
	*seg_r = b->items[i].written ? b->items[i].seg_name : "";
	*offset_r = b->items[i].written ? b->items[i].seg_off : 0;
	return 0;
}

int queue_batch_result(const struct queue_batch *b, size_t i, const char **qid_r,
		       const char **error_r)
{
	if (i >= b->count) {
		*error_r = "no such batch item";
		return -1;
	}
	const struct queue_writer *w = b->items[i].w;
	if (qid_r != NULL)
		*qid_r = w->qid;
	if (w->state == W_COMMITTED) {
		*error_r = NULL;
		return 0;
	}
	*error_r = w->state == W_FAILED ? w->err : "not committed";
	return -1;
}

void queue_batch_clear(struct queue_batch *b)
{
	for (size_t i = 0; i < b->count; i++) {
		if (b->items[i].lock_fd >= 0)
			close(b->items[i].lock_fd);
		queue_writer_abort(&b->items[i].w);
	}
	b->count = 0;
	b->committed = false;
}

void queue_batch_free(struct queue_batch **bp)
{
	struct queue_batch *b = *bp;
	if (b == NULL)
		return;
	queue_batch_clear(b);
	free(b->items);
	free(b);
	*bp = NULL;
}
