/*
 * queue_status.c: per-recipient state: batches of status records appended
 * to status/<qid> logs with shared syncs, and their replay when a message
 * is loaded.
 *
 * Guarantees: an update reports success only after its record was written
 * and synced (and, for a new log, status/ was fsync'd); the records of one
 * message in one batch go out in one write; a failed append is cut back
 * off the log (ftruncate), so later records stay readable; replay applies
 * records in order, stops at the first torn or corrupt one with a warning,
 * and is idempotent. Must never: report success after a failed write or
 * sync, or create a status log for an invalid queue ID.
 */
#include "store/queue/queue_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"

/* One update, encoded at add time. */
struct rcpt_item {
	char qid[QUEUE_ID_MAX];
	unsigned char rec[QUEUE_STATUS_REC_MAX];
	size_t rec_len;
	size_t group;  /* index into groups after commit */
};

/* The updates of one message within a commit. */
struct rcpt_group {
	const char *qid;
	int fd;
	bool created;
	bool failed;
	char err[200];
};

struct queue_rcpt_batch {
	struct queue_store *s;
	struct rcpt_item *items;
	size_t count, cap;
	struct rcpt_group *groups;
	size_t ngroups;
	bool committed;
};

struct queue_rcpt_batch *queue_rcpt_batch_new(struct queue_store *s)
{
	struct queue_rcpt_batch *b = yz_calloc(1, sizeof *b);
	b->s = s;
	return b;
}

int queue_rcpt_batch_add(struct queue_rcpt_batch *b, const struct queue_rcpt_update *u,
			 const char **error_r)
{
	if (b->committed || b->count >= QUEUE_BATCH_MAX) {
		*error_r = b->committed ? "batch already committed" : "batch full";
		return -1;
	}
	if (!queue_id_valid(u->qid)) {
		*error_r = "invalid queue ID";
		return -1;
	}
	if ((int)u->state < QUEUE_RCPT_PENDING || u->state > QUEUE_RCPT_FAILED ||
	    (u->flags & ~QUEUE_RCPT_F_ALL) != 0 || u->index >= QUEUE_RCPT_MAX) {
		*error_r = "invalid recipient update";
		return -1;
	}
	if (b->count == b->cap) {
		b->cap = b->cap == 0 ? 16 : b->cap * 2;
		b->items = yz_realloc(b->items, b->cap * sizeof *b->items);
	}
	struct rcpt_item *it = &b->items[b->count];
	memcpy(it->qid, u->qid, QUEUE_ID_MAX);
	it->rec_len = queue_status_encode(it->rec, u);
	it->group = 0;
	return (int)b->count++;
}

size_t queue_rcpt_batch_count(const struct queue_rcpt_batch *b)
{
	return b->count;
}

/* Order items by queue ID, then by position (stable: records of one
 * recipient keep their order). */
static int item_cmp(const void *a, const void *b, void *ctx)
{
	const struct queue_rcpt_batch *batch = ctx;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int c = memcmp(batch->items[ia].qid, batch->items[ib].qid, QUEUE_ID_MAX);
	if (c != 0)
		return c;
	return ia < ib ? -1 : ia > ib;
}

/* Mark a group failed with a reason. */
static void group_fail(struct rcpt_group *g, int errnum, const char *what)
{
	if (g->failed)
		return;
	g->failed = true;
	queue_errf(g->err, sizeof g->err, errnum, "%s: status log: %s", g->qid, what);
}

/* Open (creating if needed) the status log of g; records whether it was
 * created. A new log is only created for a message that exists. */
static void group_open(struct queue_rcpt_batch *b, struct rcpt_group *g)
{
	struct queue_store *s = b->s;
	/* A message still in a segment moves to active/ before its first
	 * status record (segments hold only messages on their first try). */
	struct queue_seg_loc *l = queue_seg_find(s, g->qid);
	const char *why;
	if (l != NULL && queue_seg_migrate(s, l, &why) < 0) {
		g->failed = true;
		snprintf(g->err, sizeof g->err, "%s", why);
		return;
	}
	g->fd = openat(s->status_fd, g->qid, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (g->fd >= 0)
		return;
	if (errno != ENOENT) {
		group_fail(g, errno, "open");
		return;
	}
	struct stat st;
	if (fstatat(s->active_fd, g->qid, &st, 0) < 0) {
		group_fail(g, errno, "no such message");
		return;
	}
	g->fd = openat(s->status_fd, g->qid,
		       O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (g->fd < 0) {
		group_fail(g, errno, "create");
		return;
	}
	g->created = true;
}

/* Append the records of group g (items order[first..last)) in one write;
 * on failure cut the log back to its old size. */
static void group_write(struct queue_rcpt_batch *b, struct rcpt_group *g,
			const size_t *order, size_t first, size_t last)
{
	size_t len = 0;
	for (size_t k = first; k < last; k++)
		len += b->items[order[k]].rec_len;
	unsigned char *buf = yz_malloc(len);
	size_t off = 0;
	for (size_t k = first; k < last; k++) {
		const struct rcpt_item *it = &b->items[order[k]];
		memcpy(buf + off, it->rec, it->rec_len);
		off += it->rec_len;
	}
	struct stat st;
	if (fstat(g->fd, &st) < 0) {
		group_fail(g, errno, "fstat");
	} else if (queue_io_write_full(b->s, g->fd, buf, len) < 0) {
		int saved = errno;
		/* A torn record would hide every later one from replay. If this
		 * truncate fails too, later records are lost from view: the
		 * recipients are tried again (a duplicate, not a loss). */
		if (ftruncate(g->fd, st.st_size) < 0)
			group_fail(g, saved, "write (and the torn record stays)");
		else
			group_fail(g, saved, "write");
	}
	free(buf);
}

size_t queue_rcpt_batch_commit(struct queue_rcpt_batch *b)
{
	struct queue_store *s = b->s;
	if (b->committed || b->count == 0) {
		b->committed = true;
		size_t failed = 0;
		for (size_t i = 0; i < b->count; i++)
			failed += b->groups[b->items[i].group].failed;
		return failed;
	}
	b->committed = true;
	size_t *order = yz_malloc(b->count * sizeof *order);
	for (size_t i = 0; i < b->count; i++)
		order[i] = i;
	qsort_r(order, b->count, sizeof *order, item_cmp, b);

	/* Group by message: one open, one write, one sync per log. */
	b->groups = yz_calloc(b->count, sizeof *b->groups);
	b->ngroups = 0;
	size_t first = 0;
	bool created = false;
	while (first < b->count) {
		size_t last = first + 1;
		const char *qid = b->items[order[first]].qid;
		while (last < b->count && strcmp(b->items[order[last]].qid, qid) == 0)
			last++;
		struct rcpt_group *g = &b->groups[b->ngroups];
		g->qid = qid;
		g->fd = -1;
		for (size_t k = first; k < last; k++)
			b->items[order[k]].group = b->ngroups;
		b->ngroups++;
		group_open(b, g);
		if (!g->failed)
			group_write(b, g, order, first, last);
		created |= g->created && !g->failed;
		first = last;
	}
	free(order);

	size_t live = 0;
	for (size_t i = 0; i < b->ngroups; i++)
		live += !b->groups[i].failed;
	if (live > 0 && queue_use_syncfs(s, live)) {
		if (queue_io_syncfs(s, s->status_fd) < 0) {
			int saved = errno;
			for (size_t i = 0; i < b->ngroups; i++)
				group_fail(&b->groups[i], saved, "syncfs");
		}
	} else {
		for (size_t i = 0; i < b->ngroups; i++) {
			struct rcpt_group *g = &b->groups[i];
			if (!g->failed && queue_io_fdatasync(s, g->fd) < 0)
				group_fail(g, errno, "fdatasync");
		}
	}
	/* New logs need their directory entry on disk too. */
	if (created && queue_io_fsync(s, s->status_fd) < 0) {
		int saved = errno;
		for (size_t i = 0; i < b->ngroups; i++) {
			if (b->groups[i].created)
				group_fail(&b->groups[i], saved, "fsync status directory");
		}
	}
	size_t failed = 0;
	for (size_t i = 0; i < b->ngroups; i++) {
		struct rcpt_group *g = &b->groups[i];
		if (g->fd >= 0 && close(g->fd) < 0)
			group_fail(g, errno, "close");
		g->fd = -1;
	}
	for (size_t i = 0; i < b->count; i++)
		failed += b->groups[b->items[i].group].failed;
	return failed;
}

int queue_rcpt_batch_result(const struct queue_rcpt_batch *b, size_t i, const char **error_r)
{
	if (i >= b->count || !b->committed) {
		*error_r = i >= b->count ? "no such batch item" : "not committed";
		return -1;
	}
	const struct rcpt_group *g = &b->groups[b->items[i].group];
	if (g->failed) {
		*error_r = g->err;
		return -1;
	}
	*error_r = NULL;
	return 0;
}

void queue_rcpt_batch_clear(struct queue_rcpt_batch *b)
{
	free(b->groups);
	b->groups = NULL;
	b->ngroups = 0;
	b->count = 0;
	b->committed = false;
}

void queue_rcpt_batch_free(struct queue_rcpt_batch **bp)
{
	struct queue_rcpt_batch *b = *bp;
	if (b == NULL)
		return;
	queue_rcpt_batch_clear(b);
	free(b->items);
	free(b);
	*bp = NULL;
}

int queue_status_replay(struct queue_store *s, const char *qid, struct yz_pool *pool,
			struct queue_envelope *env, const char **error_r)
{
	int fd = openat(s->status_fd, qid, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* no recipient finished yet */
		*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: open status log", qid);
		return -1;
	}
	unsigned char *buf = yz_malloc(QUEUE_STATUS_READ_BUF);
	size_t have = 0;      /* bytes in buf */
	uint64_t offset = 0;  /* file offset of buf[0] */
	int ret = 0;
	bool eof = false, bad = false;
	while (!bad) {
		/* Decode what is buffered. */
		size_t pos = 0;
		for (;;) {
			struct queue_status_rec rec;
			long n = queue_status_decode(buf + pos, have - pos, &rec);
			if (n == 0)
				break;
			if (n < 0) {
				bad = true;
				break;
			}
			if (queue_status_apply(pool, env, &rec) < 0)
				yz_log_warn("%s: status log: record for recipient %u of %zu ignored",
					    qid, rec.index, env->rcpt_count);
			pos += (size_t)n;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
		offset += pos;
		if (bad || eof)
			break;
		ssize_t n = read(fd, buf + have, QUEUE_STATUS_READ_BUF - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: read status log", qid);
			ret = -1;
			break;
		}
		if (n == 0)
			eof = true;
		have += (size_t)n;
	}
	if (ret == 0 && (bad || have > 0)) {
		/* A crash tore the last append (or the disk corrupted it): the
		 * rest is ignored; at worst a recipient is tried again. */
		struct stat st;
		uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : offset + have;
		yz_log_warn("%s: status log: ignoring %llu bytes from offset %llu (%s)", qid,
			    (unsigned long long)(size - offset), (unsigned long long)offset,
			    bad ? "corrupt record" : "torn last record");
	}
	int saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return ret;
}
