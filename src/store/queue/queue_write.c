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
#include <time.h>
#include <unistd.h>

#include "lib/mem.h"

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
	char err[256];
};

/* Fail the writer: close and unlink its file, record the reason. */
static void writer_fail(struct queue_writer *w, int errnum, const char *what)
{
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

/* Create incoming/<qid> O_EXCL 0600 and lock it; fd or -1 with errno. */
static int writer_create(struct queue_writer *w)
{
	for (int tries = 0; tries < QUEUE_OPEN_TRIES; tries++) {
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
	w->fd = writer_create(w);
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

int queue_writer_append(struct queue_writer *w, const void *data, size_t len,
			const char **error_r)
{
	if (w->state != W_WRITING) {
		*error_r = w->state == W_FAILED ? w->err : "writer not open for content";
		return -1;
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
	if (writer_flush(w) < 0) {
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
	if (w->state == W_WRITING || w->state == W_FINISHED)
		(void)queue_io_unlink(w->s, w->path);
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w);
	*wp = NULL;
}

/* One batch member. */
struct batch_item {
	struct queue_writer *w;
	int lock_fd;  /* dup of the writer's fd: keeps the flock through the rename */
	bool renamed; /* now in active/ */
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
	b->items[b->count] = (struct batch_item){ w, -1, false };
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

	/* 1. Data of every member on stable storage. */
	if (queue_use_syncfs(s, b->count)) {
		if (queue_io_syncfs(s, s->incoming_fd) < 0) {
			int saved = errno;
			for (size_t i = 0; i < b->count; i++)
				item_fail(b, &b->items[i], saved, "syncfs");
		}
	} else {
		for (size_t i = 0; i < b->count; i++) {
			if (queue_io_fdatasync(s, b->items[i].w->fd) < 0)
				item_fail(b, &b->items[i], errno, "fdatasync");
		}
	}

	/* 2 and 3. close (checked) while a dup keeps the lock, then rename. */
	size_t renamed = 0;
	for (size_t i = 0; i < b->count; i++) {
		struct batch_item *it = &b->items[i];
		struct queue_writer *w = it->w;
		if (w->state != W_FINISHED)
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
		} else {
			failed++;
		}
	}
	return failed;
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
